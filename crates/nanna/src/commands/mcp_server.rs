//! `nanna mcp-server`: nanna's tools for other MCP clients, under the same sandbox as a chat
//! session: file tools confined to the workspace, `shell` run by the OS sandbox of the mode
//! (`nanna-sandbox`), and only the tools the mode offers (`nanna_agent::offered`, the rule a
//! session's tool list follows).

use std::net::SocketAddr;
use std::sync::Arc;

use nanna_mcp::serve::{ToolServer, check_loopback, new_token};
use nanna_sandbox::{Sandbox, SandboxMode};
use nanna_tools::{ToolContext, ToolRegistry};
use tokio_util::sync::CancellationToken;

use crate::cli::{GlobalArgs, McpServerArgs};
use crate::error::{CliError, Result};
use crate::settings::Settings;

/// Variable holding the bearer token HTTP clients must send (else a random one is printed).
pub const TOKEN_VAR: &str = "NANNA_MCP_SERVER_TOKEN";

/// The tools a server in `mode` offers: the default coding set (not `echo` and `calculate`,
/// which are there for chat models), filtered as a session in that mode filters it.
pub fn registry(mode: SandboxMode, sandbox_enforced: bool) -> ToolRegistry {
    let mut registry = ToolRegistry::coding();
    registry.retain(|tool| nanna_agent::offered(tool.effect(), mode, sandbox_enforced));
    registry
}

/// Serves until the client disconnects (stdio) or Ctrl-C (HTTP).
pub fn run(args: &McpServerArgs, global: &GlobalArgs) -> Result<()> {
    let workspace = crate::task::workspace_dir(args.workspace.as_ref())?;
    let mode = args.sandbox.unwrap_or(SandboxMode::ReadOnly);
    let settings = Settings::resolve_with(global, args.network)?;
    let sandbox = Sandbox::new(settings.sandbox_policy(mode)?, &workspace)
        .map_err(|e| CliError::Config(e.to_string()))?;
    let enforced = sandbox.check();
    let registry = registry(mode, enforced.is_ok());
    let ctx = ToolContext::with_sandbox(Arc::new(sandbox));
    let mut server = ToolServer::new(registry, ctx);
    let mut notes = Vec::new();
    if mode == SandboxMode::ReadOnly {
        notes.push(
            "This server is read-only (`nanna mcp-server --sandbox read-only`, the default): \
             start it with --sandbox workspace-write to allow write_file and edit_file"
                .to_owned(),
        );
    }
    if let Err(e) = enforced {
        // Said once at start, and to a client that calls `shell` anyway.
        eprintln!("nanna mcp-server: `shell` is not offered: {e}");
        notes.push(format!("`shell` is not offered: {e}"));
    }
    if !notes.is_empty() {
        server = server.with_policy_note(notes.join(". "));
    }
    let http = match &args.http {
        None => None,
        Some(text) => {
            let addr: SocketAddr = text.parse().map_err(|_| {
                CliError::Config(format!(
                    "--http `{text}` is not an address; give IP:PORT, e.g. 127.0.0.1:8765"
                ))
            })?;
            check_loopback(addr).map_err(|e| CliError::Config(e.to_string()))?;
            Some(addr)
        }
    };
    let runtime = crate::runtime()?;
    runtime.block_on(async move {
        let Some(addr) = http else {
            return server
                .serve_stdio()
                .await
                .map_err(|e| CliError::Other(e.to_string()));
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| CliError::io(format!("listening on {addr}"), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::io("reading the listening address", e))?;
        let token = match std::env::var(TOKEN_VAR) {
            Ok(t) if !t.trim().is_empty() => {
                eprintln!("nanna mcp-server: http://{local}/mcp (bearer token from {TOKEN_VAR})");
                t.trim().to_owned()
            }
            _ => {
                let t = new_token().map_err(|e| CliError::Other(e.to_string()))?;
                eprintln!("nanna mcp-server: http://{local}/mcp bearer token {t}");
                t
            }
        };
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
        server
            .serve_http(listener, token, shutdown)
            .await
            .map_err(|e| CliError::Other(e.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(registry: &ToolRegistry) -> Vec<&str> {
        let mut names = registry.names();
        names.sort_unstable();
        names
    }

    #[test]
    fn the_policy_decides_which_tools_are_served() {
        // Where the OS sandbox works, `shell` is offered in every mode (read-only: it cannot
        // write); the file-writing tools only when the mode allows writes.
        assert_eq!(
            sorted(&registry(SandboxMode::ReadOnly, true)),
            ["glob", "grep", "list_dir", "read_file", "shell"]
        );
        assert_eq!(
            sorted(&registry(SandboxMode::WorkspaceWrite, true)),
            [
                "edit_file",
                "glob",
                "grep",
                "list_dir",
                "read_file",
                "shell",
                "write_file"
            ]
        );
        // Where it cannot be enforced, no `shell` at all.
        assert_eq!(
            sorted(&registry(SandboxMode::ReadOnly, false)),
            ["glob", "grep", "list_dir", "read_file"]
        );
        assert_eq!(
            sorted(&registry(SandboxMode::WorkspaceWrite, false)),
            [
                "edit_file",
                "glob",
                "grep",
                "list_dir",
                "read_file",
                "write_file"
            ]
        );
    }
}

//! Running the agent on one task: `nanna exec`, `nanna chat --prompt`, piped stdin; and
//! the pieces the REPL shares (policies, agent configuration, sessions).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use nanna_agent::{
    Agent, AgentConfig, ApprovalPolicy, RunOutcome, Session, SessionMeta, SessionStore,
};
use nanna_sandbox::SandboxMode;
use tokio_util::sync::CancellationToken;

use crate::approval;
use crate::cancel::CtrlC;
use crate::cli::{ApprovalArg, RunArgs};
use crate::error::{CliError, Result};
use crate::output::{EventOutput, JsonOutput, TerminalOutput};
use crate::settings::Settings;

/// How a single task reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `chat --prompt` or piped stdin: the answer on stdout, notices on stderr.
    OneShot,
    /// `exec`: like one-shot.
    Exec,
    /// `exec --json`: one JSON event per line.
    ExecJson,
}

/// Reads the whole task from stdin; an error when stdin is a terminal or empty.
pub fn read_stdin() -> Result<String> {
    if std::io::stdin().is_terminal() {
        return Err(CliError::Config(
            "no task given: pass it as an argument (`nanna exec \"TASK\"`) or pipe it on stdin"
                .into(),
        ));
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| CliError::io("reading the task from stdin", e))?;
    Ok(input)
}

/// Sandbox and approval from the flags. Interactive sessions default to workspace-write
/// and ask; one-shot runs default to read-only. `--full-auto` means workspace-write and
/// auto; explicit `--sandbox` / `--approval` win over it.
pub fn policies(run: &RunArgs, interactive: bool) -> (SandboxMode, ApprovalPolicy) {
    let (mut sandbox, mut approval) = if run.full_auto {
        (SandboxMode::WorkspaceWrite, ApprovalPolicy::Auto)
    } else if interactive {
        (SandboxMode::WorkspaceWrite, ApprovalPolicy::Ask)
    } else {
        (SandboxMode::ReadOnly, ApprovalPolicy::Ask)
    };
    if let Some(mode) = run.sandbox {
        sandbox = mode;
    }
    if let Some(a) = run.approval {
        approval = match a {
            ApprovalArg::Ask => ApprovalPolicy::Ask,
            ApprovalArg::Auto => ApprovalPolicy::Auto,
        };
    }
    (sandbox, approval)
}

/// The workspace directory: `-C DIR` or the current directory, which must exist.
pub fn workspace(run: &RunArgs) -> Result<PathBuf> {
    workspace_dir(run.workspace.as_ref())
}

/// `given` (a `-C DIR`) or the current directory, which must exist.
pub fn workspace_dir(given: Option<&PathBuf>) -> Result<PathBuf> {
    let dir = match given {
        Some(d) => d.clone(),
        None => {
            std::env::current_dir().map_err(|e| CliError::io("reading the current directory", e))?
        }
    };
    if !dir.is_dir() {
        return Err(CliError::Config(format!(
            "workspace `{}` is not a directory; pass an existing directory with -C",
            dir.display()
        )));
    }
    Ok(dir)
}

/// The agent's configuration for a run.
pub fn agent_config(settings: &Settings, run: &RunArgs, interactive: bool) -> Result<AgentConfig> {
    let mut config = AgentConfig::new(settings.model(), workspace(run)?);
    let (sandbox, approval) = policies(run, interactive);
    config.sandbox.mode = sandbox;
    config.approval = approval;
    settings.apply(&mut config)?;
    config.tools_enabled = run.tools_enabled();
    if let Some(n) = run.max_turns {
        if n == 0 {
            return Err(CliError::Config("--max-turns must be at least 1".into()));
        }
        config.max_turns = Some(n);
    }
    Ok(config)
}

/// The session to work in: the one `--resume` names (read-only with
/// `--session-read-only`), or a new one.
pub fn session(store: &SessionStore, run: &RunArgs, config: &AgentConfig) -> Result<Session> {
    match &run.resume {
        Some(id) if run.session_read_only => store
            .open_read_only(id)
            .map_err(|e| CliError::Agent(e.to_string())),
        Some(id) => store.open(id).map_err(|e| CliError::Agent(e.to_string())),
        None => store
            .create(SessionMeta {
                model: config.model.clone(),
                workspace: config.workspace.clone(),
            })
            .map_err(|e| CliError::Agent(e.to_string())),
    }
}

/// The session store in its default place.
pub fn store() -> Result<SessionStore> {
    SessionStore::default_location().map_err(|e| CliError::Agent(e.to_string()))
}

/// Shows `e` through `out`; when that reached the terminal, main need not print it again.
fn report(out: &mut EventOutput, e: CliError) -> CliError {
    if out.error(&e.to_string()) {
        e.reported()
    } else {
        e
    }
}

/// Runs `input` once and reports in `mode`; the outcome becomes the exit status.
pub fn run_once(settings: &Settings, run: &RunArgs, input: String, mode: Mode) -> Result<()> {
    if input.trim().is_empty() {
        return Err(CliError::Config(
            "the task is empty: give the assistant something to do".into(),
        ));
    }
    let config = agent_config(settings, run, false)?;
    let tools = settings.tools()?;
    let mcp_config = settings.mcp()?;
    let store = store()?;
    let session = session(&store, run, &config)?;
    let provider = settings.provider();
    let runtime = crate::runtime()?;
    runtime.block_on(async move {
        let mut out = match mode {
            Mode::ExecJson => EventOutput::Json(JsonOutput::default()),
            Mode::OneShot | Mode::Exec => {
                EventOutput::Terminal(Box::new(TerminalOutput::new(false)))
            }
        };
        let new_session = (!session.is_resumed()).then(|| session.id().to_owned());
        let (tools, servers) =
            match session_tools(tools, &config, &mcp_config, mode == Mode::ExecJson).await {
                Ok(started) => started,
                Err(e) => {
                    if let Some(id) = new_session {
                        let _ = store.remove(&id);
                    }
                    return Err(report(&mut out, e));
                }
            };
        let mut agent = match Agent::new(provider, tools, config, session).await {
            Ok(agent) => agent,
            Err(e) => {
                servers.shutdown().await;
                // Leave no empty session behind when nothing could start.
                if let Some(id) = new_session {
                    let _ = store.remove(&id);
                }
                let e = CliError::Agent(e.to_string());
                return Err(report(&mut out, e));
            }
        };
        if let Some(message) =
            crate::mcp::budget_warning(&agent.offered_tools(), mcp_config.tool_token_budget)
        {
            out.event(&nanna_agent::AgentEvent::Warning { message });
        }
        let cancel = CancellationToken::new();
        let approver = approval::for_this_process(cancel.clone());
        let _watch = CtrlC::watch(cancel.clone());
        let result = agent
            .run(&input, approver.as_ref(), cancel, &mut |event| {
                out.event(&event)
            })
            .await;
        out.finish();
        servers.shutdown().await;
        match result {
            Ok(RunOutcome::Completed { .. }) => Ok(()),
            Ok(RunOutcome::MaxTurns { turns }) => Err(report(&mut out, CliError::MaxTurns(turns))),
            Ok(RunOutcome::Cancelled { .. }) => Err(CliError::Cancelled),
            Err(e) => Err(report(&mut out, CliError::Agent(e.to_string()))),
        }
    })
}

/// The tools of a session: `tools` (the configured built-ins) plus the MCP servers' (started
/// here, when tools are on). A one-shot run fails when a server marked `required` did not
/// start.
pub async fn session_tools(
    mut tools: nanna_tools::ToolRegistry,
    config: &AgentConfig,
    mcp: &nanna_config::McpConfig,
    json: bool,
) -> Result<(nanna_tools::ToolRegistry, nanna_mcp::McpServers)> {
    if !config.tools_enabled {
        return Ok((tools, nanna_mcp::McpServers::none()));
    }
    let servers = crate::mcp::start(mcp, &config.workspace, &mut tools, json).await;
    if !servers.failed_required().is_empty() {
        let names = servers.failed_required().join(", ");
        servers.shutdown().await;
        return Err(CliError::Config(format!(
            "required MCP server(s) {names} did not start (see above); fix them, or set \
             `required = false` in their [mcp_servers] table to go on without them"
        )));
    }
    Ok((tools, servers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn run_args(args: &[&str]) -> RunArgs {
        let mut argv = vec!["nanna", "exec"];
        argv.extend_from_slice(args);
        argv.push("task");
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Exec(e) => e.run,
            _ => unreachable!(),
        }
    }

    #[test]
    fn defaults_depend_on_interactivity() {
        let run = run_args(&[]);
        assert_eq!(
            policies(&run, true),
            (SandboxMode::WorkspaceWrite, ApprovalPolicy::Ask)
        );
        assert_eq!(
            policies(&run, false),
            (SandboxMode::ReadOnly, ApprovalPolicy::Ask)
        );
    }

    #[test]
    fn full_auto_and_explicit_flags() {
        let run = run_args(&["--full-auto"]);
        assert_eq!(
            policies(&run, false),
            (SandboxMode::WorkspaceWrite, ApprovalPolicy::Auto)
        );
        let run = run_args(&["--full-auto", "--sandbox", "full"]);
        assert_eq!(
            policies(&run, false),
            (SandboxMode::Full, ApprovalPolicy::Auto)
        );
        let run = run_args(&["--approval", "auto"]);
        assert_eq!(
            policies(&run, false),
            (SandboxMode::ReadOnly, ApprovalPolicy::Auto)
        );
    }
}

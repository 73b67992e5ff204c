//! The MCP servers of a session: started before the first request, their events rendered,
//! the tool budget checked, stopped when the session ends.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use nanna_agent::estimate_text;
use nanna_mcp::{EventSink, McpConfig, McpEvent, McpServers};
use nanna_model::ToolDefinition;
use nanna_tools::ToolRegistry;

use crate::render::{Style, first_line};

/// Starts the enabled servers of `config` (in parallel) and adds their tools to `registry`.
/// Progress and failures are rendered as they happen (JSON lines with `json`).
pub async fn start(
    config: &McpConfig,
    workspace: &Path,
    registry: &mut ToolRegistry,
    json: bool,
) -> McpServers {
    if config.enabled().next().is_none() {
        return McpServers::none();
    }
    let servers = McpServers::start(config, workspace, sink(json)).await;
    servers.register(registry);
    servers
}

/// Where MCP events go: a line on stderr, or a JSON line on stdout.
pub fn sink(json: bool) -> EventSink {
    let style = Style::stderr();
    Arc::new(move |event: McpEvent| {
        if json {
            if let Ok(text) = serde_json::to_string(&event) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        } else {
            eprintln!("{}", render(&event, style));
        }
    })
}

/// The terminal line(s) for `event`.
fn render(event: &McpEvent, style: Style) -> String {
    match event {
        McpEvent::ServersStarting { servers } => {
            style.dim(&format!("mcp: starting {}…", servers.join(", ")))
        }
        McpEvent::ServerReady {
            server,
            implementation,
            tools,
            elapsed_ms,
        } => style.dim(&format!(
            "mcp: {server} ready ({implementation}, {tools} tool{}, {elapsed_ms} ms)",
            if *tools == 1 { "" } else { "s" }
        )),
        McpEvent::ServerFailed {
            server,
            message,
            stderr,
        }
        | McpEvent::ServerExited {
            server,
            message,
            stderr,
        } => {
            let mut line = format!(
                "{} mcp server {server}: {message}",
                style.yellow("warning:")
            );
            if !stderr.trim().is_empty() {
                line.push_str(&format!("\n{}", style.dim(&indent(stderr))));
            }
            line
        }
        McpEvent::ToolSkipped {
            server,
            tool,
            reason,
        } => format!(
            "{} mcp server {server}: tool `{tool}` is not offered: {}",
            style.yellow("warning:"),
            first_line(reason)
        ),
        McpEvent::Progress {
            tool,
            progress,
            total,
            message,
        } => {
            let amount = match total {
                Some(total) => format!("{progress}/{total}"),
                None => format!("{progress}"),
            };
            let words = message
                .as_deref()
                .map(|m| format!(" {m}"))
                .unwrap_or_default();
            style.dim(&format!("  ⋯ {tool} {amount}{words}"))
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Estimated prompt tokens of one tool's definition as sent with every request.
pub fn tool_tokens(def: &ToolDefinition) -> u32 {
    serde_json::to_string(def).map_or(0, |s| estimate_text(&s))
}

/// A warning when the offered tools' definitions (`Agent::offered_tools`: what the session's
/// policy lets run) pass `budget` estimated tokens.
pub fn budget_warning(defs: &[ToolDefinition], budget: u32) -> Option<String> {
    let total: u32 = defs.iter().map(tool_tokens).sum();
    (total > budget).then(|| {
        format!(
            "the {} tools offered take ~{total} tokens of every request's prompt, over the \
             tool_token_budget of {budget}: list only the tools you need with enabled_tools in \
             [mcp_servers.NAME] (`nanna tools` shows each tool's cost), or raise \
             tool_token_budget",
            defs.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_for_each_event() {
        let style = Style::detect(false);
        let failed = McpEvent::ServerFailed {
            server: "py".into(),
            message: "the MCP handshake failed".into(),
            stderr: "Traceback\nValueError".into(),
        };
        assert_eq!(
            render(&failed, style),
            "warning: mcp server py: the MCP handshake failed\n    Traceback\n    ValueError"
        );
        let progress = McpEvent::Progress {
            tool: "e__long".into(),
            progress: 2.0,
            total: Some(5.0),
            message: Some("step 2".into()),
        };
        assert_eq!(render(&progress, style), "  ⋯ e__long 2/5 step 2");
        let starting = McpEvent::ServersStarting {
            servers: vec!["fs".into(), "docs".into()],
        };
        assert_eq!(render(&starting, style), "mcp: starting fs, docs…");
    }

    #[test]
    fn budget_counts_every_offered_tool() {
        let defs = ToolRegistry::coding().definitions();
        let total: u32 = defs.iter().map(tool_tokens).sum();
        assert!(budget_warning(&defs, total).is_none());
        let warning = budget_warning(&defs, total - 1).unwrap();
        assert!(warning.contains(&format!("~{total} tokens")), "{warning}");
    }
}

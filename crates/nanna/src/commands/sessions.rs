//! `nanna sessions list|show ID|rm ID`: saved conversations.

use std::io::Write;

use nanna_model::MessageRole;
use serde_json::json;

use crate::cli::{SessionsAction, SessionsArgs};
use crate::error::{CliError, Result};
use crate::render::{Style, first_line, table};
use crate::task;

fn agent_err(e: impl std::fmt::Display) -> CliError {
    CliError::Agent(e.to_string())
}

/// Runs the sessions subcommand.
pub fn run(args: &SessionsArgs) -> Result<()> {
    let store = task::store()?;
    let mut out = std::io::stdout().lock();
    let write_err = |e| CliError::io("writing to stdout", e);
    let style = Style::stdout();
    match args.action.clone().unwrap_or(SessionsAction::List) {
        SessionsAction::List => {
            let mut sessions = store.list().map_err(agent_err)?;
            sessions.reverse();
            if args.json {
                let items: Vec<_> = sessions
                    .iter()
                    .map(|s| {
                        json!({
                            "id": s.id,
                            "created": s.created,
                            "model": s.model,
                            "workspace": s.workspace,
                            "messages": s.messages,
                            "title": s.title,
                            "path": s.path,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::Value::Array(items)).map_err(write_err)?;
            } else if sessions.is_empty() {
                writeln!(
                    out,
                    "no sessions yet in {} (start one with `nanna chat`)",
                    store.dir().display()
                )
                .map_err(write_err)?;
            } else {
                let rows: Vec<Vec<String>> = sessions
                    .iter()
                    .map(|s| {
                        vec![
                            s.id.clone(),
                            s.created.clone(),
                            s.model.clone(),
                            s.messages.to_string(),
                            s.title.as_deref().map(first_line).unwrap_or("").to_owned(),
                        ]
                    })
                    .collect();
                let text = table(&["ID", "CREATED", "MODEL", "MSGS", "TITLE"], &rows, style);
                out.write_all(text.as_bytes()).map_err(write_err)?;
            }
        }
        SessionsAction::Show { id } => {
            let session = store.open_read_only(&id).map_err(agent_err)?;
            let header = session.header();
            if args.json {
                let value = json!({
                    "id": header.id,
                    "created": header.created,
                    "model": header.model,
                    "workspace": header.workspace,
                    "messages": session.messages(),
                    "warnings": session.warnings(),
                });
                writeln!(out, "{value}").map_err(write_err)?;
                return Ok(());
            }
            writeln!(
                out,
                "{}",
                style.dim(&format!(
                    "session {} · {} · {} · {}",
                    header.id,
                    header.created,
                    header.model,
                    header.workspace.display()
                ))
            )
            .map_err(write_err)?;
            for warning in session.warnings() {
                writeln!(out, "{} {warning}", style.yellow("warning:")).map_err(write_err)?;
            }
            for m in session.messages() {
                let who = match m.role {
                    MessageRole::System => style.dim("system"),
                    MessageRole::User => style.green("user"),
                    MessageRole::Assistant => style.cyan("assistant"),
                    MessageRole::Tool => {
                        style.dim(&format!("tool {}", m.tool_name.as_deref().unwrap_or("")))
                    }
                };
                writeln!(out, "{who}: {}", m.content.trim_end()).map_err(write_err)?;
                for call in &m.tool_calls {
                    writeln!(out, "  → {}({})", call.name, call.arguments).map_err(write_err)?;
                }
            }
        }
        SessionsAction::Rm { id } => {
            let resolved = match id.as_str() {
                "last" => store
                    .list()
                    .map_err(agent_err)?
                    .pop()
                    .map(|s| s.id)
                    .unwrap_or(id.clone()),
                _ => id.clone(),
            };
            store.remove(&resolved).map_err(agent_err)?;
            if args.json {
                writeln!(out, "{}", json!({"removed": resolved})).map_err(write_err)?;
            } else {
                writeln!(out, "removed session {resolved}").map_err(write_err)?;
            }
        }
    }
    Ok(())
}

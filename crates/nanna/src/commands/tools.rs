//! `nanna tools`: the tools a session offers the model (built-ins and the configured MCP
//! servers'), with their schemas and what each costs in every request's prompt.

use std::io::Write;

use nanna_tools::ToolRegistry;
use serde_json::Value;

use crate::cli::ToolsArgs;
use crate::error::{CliError, Result};
use crate::mcp::tool_tokens;
use crate::render::Style;

/// Prints `builtins` (the session's configured set) and, with MCP servers configured (and not
/// `--no-mcp`), the servers' tools, starting them first.
pub fn run(args: &ToolsArgs, builtins: ToolRegistry, mcp: &nanna_config::McpConfig) -> Result<()> {
    let builtin_names: Vec<String> = builtins.names().into_iter().map(str::to_owned).collect();
    let mut registry = builtins;
    if !args.no_mcp && mcp.enabled().next().is_some() {
        let workspace = match &args.workspace {
            Some(dir) => dir.clone(),
            None => std::env::current_dir()
                .map_err(|e| CliError::io("reading the current directory", e))?,
        };
        let runtime = crate::runtime()?;
        runtime.block_on(async {
            let servers = crate::mcp::start(mcp, &workspace, &mut registry, false).await;
            servers.shutdown().await;
        });
    }
    let defs = registry.definitions();
    let rows: Vec<(String, &nanna_model::ToolDefinition, u32)> = defs
        .iter()
        .map(|def| {
            let source = if builtin_names.iter().any(|n| n == def.name()) {
                "builtin".to_owned()
            } else {
                match def.name().split_once("__") {
                    Some((server, _)) => format!("mcp:{server}"),
                    None => "mcp".to_owned(),
                }
            };
            (source, def, tool_tokens(def))
        })
        .collect();
    let total: u32 = rows.iter().map(|r| r.2).sum();
    let mut out = std::io::stdout().lock();
    let write_err = |e| CliError::io("writing the tool list", e);
    if args.json {
        let list: Vec<Value> = rows
            .iter()
            .map(|(source, def, tokens)| {
                let mut v = serde_json::to_value(def).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut v {
                    map.insert("source".into(), Value::from(source.as_str()));
                    map.insert("tokens".into(), Value::from(*tokens));
                }
                v
            })
            .collect();
        let text = serde_json::to_string(&list).map_err(|e| CliError::Other(e.to_string()))?;
        writeln!(out, "{text}").map_err(write_err)?;
        return Ok(());
    }
    let style = Style::stdout();
    for (source, def, tokens) in &rows {
        let f = &def.function;
        writeln!(
            out,
            "{}  {}  {}",
            style.bold(&f.name),
            style.dim(&format!("~{tokens} tokens · {source}")),
            f.description
        )
        .map_err(write_err)?;
        let schema =
            serde_json::to_string(&f.parameters).map_err(|e| CliError::Other(e.to_string()))?;
        writeln!(out, "    {}", style.dim(&schema)).map_err(write_err)?;
    }
    if rows.is_empty() {
        writeln!(out, "no tools are registered").map_err(write_err)?;
    } else {
        let over = if total > mcp.tool_token_budget {
            style.yellow(" (over the budget: trim with enabled_tools in [mcp_servers.NAME])")
        } else {
            String::new()
        };
        writeln!(
            out,
            "{} tools, ~{total} tokens in every request (tool_token_budget {}){over}",
            rows.len(),
            mcp.tool_token_budget
        )
        .map_err(write_err)?;
    }
    Ok(())
}

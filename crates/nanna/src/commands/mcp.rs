//! `nanna mcp list | get | add | remove`: the `[mcp_servers.NAME]` tables, as Codex's
//! `codex mcp` manages them (same keys, same command shapes).

use std::collections::BTreeMap;
use std::io::Write;

use nanna_config::edit::{self, NewServer};
use nanna_config::{McpConfig, McpServerConfig, McpTransport, Origin};
use serde_json::Value;

use crate::cli::{GlobalArgs, McpAction, McpArgs};
use crate::error::{CliError, Result};
use crate::render::{Style, table};
use crate::settings::{config_files, mcp_config};

/// Runs one `nanna mcp` action.
pub fn run(args: &McpArgs, global: &GlobalArgs) -> Result<()> {
    match args.action.clone().unwrap_or(McpAction::List) {
        McpAction::List => list(&mcp_config(global)?, args.json),
        McpAction::Get { name } => get(&mcp_config(global)?, &name, args.json),
        McpAction::Add {
            name,
            url,
            bearer_token_env_var,
            env,
            command,
        } => {
            let server = match url {
                Some(url) => NewServer::StreamableHttp {
                    url,
                    bearer_token_env_var,
                },
                None => {
                    let mut parts = command.into_iter();
                    let Some(program) = parts.next() else {
                        return Err(CliError::Config(
                            "give the server's command after `--` (`nanna mcp add NAME -- CMD \
                             ARGS...`) or its URL (`nanna mcp add NAME --url URL`)"
                                .into(),
                        ));
                    };
                    NewServer::Stdio {
                        command: program,
                        args: parts.collect(),
                        env: parse_env(&env)?,
                    }
                }
            };
            let (user, _) = config_files(global);
            let Some(path) = user else {
                return Err(CliError::Config(
                    "no user config file: set HOME or XDG_CONFIG_HOME, or pass --config FILE"
                        .into(),
                ));
            };
            validate_new(&name, &server)?;
            let replaced =
                edit::add(&path, &name, &server).map_err(|e| CliError::Config(e.to_string()))?;
            println!(
                "{} MCP server `{name}` in {}; its tools join the next session (`nanna tools` \
                 lists them)",
                if replaced { "replaced" } else { "added" },
                path.display()
            );
            // The whole configuration must still load (e.g. with the system file's tables).
            if let Err(e) = mcp_config(global) {
                eprintln!("{} {e}", Style::stderr().yellow("warning:"));
            }
            Ok(())
        }
        McpAction::Remove { name } => {
            let (user, system) = config_files(global);
            let Some(path) = user else {
                return Err(CliError::Config(
                    "no user config file: set HOME or XDG_CONFIG_HOME, or pass --config FILE"
                        .into(),
                ));
            };
            edit::remove(&path, &name, Some(&system))
                .map_err(|e| CliError::Config(e.to_string()))?;
            println!("removed MCP server `{name}` from {}", path.display());
            Ok(())
        }
    }
}

/// Checks a new server's table the way loading will, before the file is touched.
fn validate_new(name: &str, server: &NewServer) -> Result<()> {
    let mut table = toml::Table::new();
    match server {
        NewServer::Stdio { command, args, env } => {
            table.insert("command".into(), command.clone().into());
            table.insert("args".into(), args.clone().into());
            let env: toml::Table = env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect();
            table.insert("env".into(), env.into());
        }
        NewServer::StreamableHttp {
            url,
            bearer_token_env_var,
        } => {
            table.insert("url".into(), url.clone().into());
            if let Some(var) = bearer_token_env_var {
                table.insert("bearer_token_env_var".into(), var.clone().into());
            }
        }
    }
    nanna_config::mcp::validate_table(
        name,
        toml::Value::Table(table),
        &Origin::Flag("`nanna mcp add`".into()),
    )
    .map(|_| ())
    .map_err(|e| CliError::Config(e.to_string()))
}

fn parse_env(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(CliError::Config(format!("--env `{pair}` is not KEY=VALUE"))),
        })
        .collect()
}

fn list(config: &McpConfig, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let write_err = |e| CliError::io("writing the server list", e);
    if json {
        let list: Vec<Value> = config
            .servers
            .values()
            .map(|s| describe(s, false))
            .collect();
        let text = serde_json::to_string(&list).map_err(|e| CliError::Other(e.to_string()))?;
        return writeln!(out, "{text}").map_err(write_err);
    }
    if config.servers.is_empty() {
        return writeln!(
            out,
            "no MCP servers configured; add one with `nanna mcp add NAME -- CMD ARGS...` or \
             `nanna mcp add NAME --url URL`"
        )
        .map_err(write_err);
    }
    let style = Style::stdout();
    let rows: Vec<Vec<String>> = config
        .servers
        .values()
        .map(|s| {
            vec![
                s.name.clone(),
                transport_name(s).to_owned(),
                s.target(),
                if s.enabled { "yes" } else { "no" }.to_owned(),
                tools_filter(s),
                source(&s.source),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        table(
            &[
                "NAME",
                "TRANSPORT",
                "COMMAND / URL",
                "ENABLED",
                "TOOLS",
                "FROM"
            ],
            &rows,
            style
        )
    )
    .map_err(write_err)
}

fn get(config: &McpConfig, name: &str, json: bool) -> Result<()> {
    let Some(server) = config.servers.get(name) else {
        let known: Vec<&str> = config.servers.keys().map(String::as_str).collect();
        return Err(CliError::Config(format!(
            "no MCP server `{name}` is configured{}",
            if known.is_empty() {
                String::new()
            } else {
                format!(" (configured: {})", known.join(", "))
            }
        )));
    };
    let mut out = std::io::stdout().lock();
    let write_err = |e| CliError::io("writing the server", e);
    if json {
        let text = serde_json::to_string_pretty(&describe(server, true))
            .map_err(|e| CliError::Other(e.to_string()))?;
        return writeln!(out, "{text}").map_err(write_err);
    }
    let mut lines = vec![
        format!("{}", server.name),
        format!("  enabled: {}", server.enabled),
        format!("  transport: {}", transport_name(server)),
    ];
    match &server.transport {
        McpTransport::Stdio {
            command,
            args,
            env,
            env_vars,
            cwd,
        } => {
            lines.push(format!("  command: {command}"));
            lines.push(format!("  args: {}", args.join(" ")));
            let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            lines.push(format!(
                "  env: {}",
                if env.is_empty() {
                    "-".into()
                } else {
                    env.join(", ")
                }
            ));
            if !env_vars.is_empty() {
                lines.push(format!("  env_vars: {}", env_vars.join(", ")));
            }
            if let Some(cwd) = cwd {
                lines.push(format!("  cwd: {}", cwd.display()));
            }
        }
        McpTransport::StreamableHttp {
            url,
            bearer_token_env_var,
            ..
        } => {
            lines.push(format!("  url: {url}"));
            if let Some(var) = bearer_token_env_var {
                lines.push(format!("  bearer_token_env_var: {var}"));
            }
        }
    }
    lines.push(format!("  tools: {}", tools_filter(server)));
    lines.push(format!(
        "  startup_timeout_sec: {}",
        server.startup_timeout.as_secs_f64()
    ));
    lines.push(format!(
        "  tool_timeout_sec: {}",
        server.tool_timeout.as_secs_f64()
    ));
    if server.required {
        lines.push("  required: true".into());
    }
    lines.push(format!("  from: {}", server.source));
    writeln!(out, "{}", lines.join("\n")).map_err(write_err)
}

/// The server as JSON; `env` values are masked unless `full` (they may hold secrets).
fn describe(server: &McpServerConfig, full: bool) -> Value {
    let mut value = serde_json::to_value(server).unwrap_or(Value::Null);
    if !full && let Some(Value::Object(env)) = value.get_mut("env") {
        for v in env.values_mut() {
            *v = Value::from("*****");
        }
    }
    value
}

/// Where a server's table came from, for the listing: the file's path, else the layer.
fn source(origin: &Origin) -> String {
    match origin {
        Origin::File(path) => path.display().to_string(),
        other => other.to_string(),
    }
}

fn transport_name(server: &McpServerConfig) -> &'static str {
    match server.transport {
        McpTransport::Stdio { .. } => "stdio",
        McpTransport::StreamableHttp { .. } => "http",
    }
}

fn tools_filter(server: &McpServerConfig) -> String {
    let mut text = match &server.enabled_tools {
        Some(list) => list.join(", "),
        None => "all".to_owned(),
    };
    if !server.disabled_tools.is_empty() {
        text.push_str(&format!(" except {}", server.disabled_tools.join(", ")));
    }
    text
}

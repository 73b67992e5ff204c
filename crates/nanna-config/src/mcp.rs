//! `[mcp_servers.NAME]` tables: which MCP servers a session starts, with Codex CLI's keys.
//!
//! The keys and their meaning follow Codex (`codex-rs/core/src/config/types.rs`,
//! `RawMcpServerConfig` and its `Deserialize`): a stdio server has `command` (+ `args`, `env`,
//! `env_vars`, `cwd`); a streamable-HTTP server has `url` (+ `bearer_token_env_var`,
//! `http_headers`, `env_http_headers`); both take `enabled`, `required`, `enabled_tools`,
//! `disabled_tools`, `startup_timeout_sec`, `tool_timeout_sec`. A key that belongs to the
//! other transport is an error, as in Codex. Unknown keys are errors.
//!
//! Layering: the tables of every layer (system `/etc/nanna/config.toml`, the user's file,
//! `-c mcp_servers.NAME.KEY=...`) are merged key by key by the loader, later layers winning,
//! so the user can turn off a server the system file defines with `enabled = false` alone.
//! The merged tables are checked here, when a command uses MCP.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Origin};

/// Time a server may take to start, answer the handshake and list its tools when
/// `startup_timeout_sec` is not set. Codex's default (`DEFAULT_STARTUP_TIMEOUT` in
/// `codex-rs/codex-mcp/src/rmcp_client.rs`).
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Time one tool call may take when `tool_timeout_sec` is not set. Codex's default
/// (`DEFAULT_TOOL_TIMEOUT`, same file).
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(300);

pub use crate::config::DEFAULT_TOOL_TOKEN_BUDGET;

/// How nanna reaches one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum McpTransport {
    /// A program started by nanna, speaking MCP on its stdin and stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Variables set for it (on top of the few every server inherits, and `env_vars`).
        env: BTreeMap<String, String>,
        /// Names of further variables it inherits from nanna's environment.
        env_vars: Vec<String>,
        /// Its working directory (default: the workspace).
        cwd: Option<PathBuf>,
    },
    /// A server already running, reached over streamable HTTP.
    StreamableHttp {
        /// The MCP endpoint.
        url: String,
        /// Variable holding a bearer token sent as `Authorization: Bearer ...`.
        bearer_token_env_var: Option<String>,
        /// Headers sent with every request.
        http_headers: BTreeMap<String, String>,
        /// Headers whose values are read from the named variables.
        env_http_headers: BTreeMap<String, String>,
    },
}

/// One `[mcp_servers.NAME]` table, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct McpServerConfig {
    /// The table's name; prefixes the server's tools (`NAME__tool`).
    pub name: String,
    /// Where and how the server runs.
    #[serde(flatten)]
    pub transport: McpTransport,
    /// `false` keeps the server configured but not started.
    pub enabled: bool,
    /// `true`: a one-shot run (`nanna exec`) fails when this server does not start.
    pub required: bool,
    /// Only these tools are offered (server-side names); `None`: all.
    pub enabled_tools: Option<Vec<String>>,
    /// These tools are never offered, applied after `enabled_tools`.
    pub disabled_tools: Vec<String>,
    /// Bound on start, handshake and tool listing.
    #[serde(serialize_with = "secs")]
    pub startup_timeout: Duration,
    /// Bound on one tool call.
    #[serde(serialize_with = "secs")]
    pub tool_timeout: Duration,
    /// The layer that last set a key of this table (a file, or `-c`); in JSON a file's path.
    #[serde(serialize_with = "source_text")]
    pub source: Origin,
}

fn source_text<S: serde::Serializer>(origin: &Origin, s: S) -> Result<S::Ok, S::Error> {
    match origin {
        Origin::File(path) => s.collect_str(&path.display()),
        other => s.collect_str(other),
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl McpServerConfig {
    /// Whether the server offers the tool it calls `tool` (server-side name), after
    /// `enabled_tools` and `disabled_tools`.
    pub fn offers(&self, tool: &str) -> bool {
        let allowed = self
            .enabled_tools
            .as_ref()
            .is_none_or(|list| list.iter().any(|t| t == tool));
        allowed && !self.disabled_tools.iter().any(|t| t == tool)
    }

    /// The command line, or the URL, in one line for listings.
    pub fn target(&self) -> String {
        match &self.transport {
            McpTransport::Stdio { command, args, .. } => {
                let mut line = command.clone();
                for arg in args {
                    line.push(' ');
                    line.push_str(arg);
                }
                line
            }
            McpTransport::StreamableHttp { url, .. } => url.clone(),
        }
    }
}

/// The MCP part of the configuration: the servers and the tool budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct McpConfig {
    /// Every configured server, enabled or not, by name.
    pub servers: BTreeMap<String, McpServerConfig>,
    /// `tool_token_budget`: warn when the offered tools' schemas exceed this many estimated
    /// prompt tokens.
    pub tool_token_budget: u32,
}

impl Default for McpConfig {
    /// No servers, the default budget.
    fn default() -> Self {
        Self {
            servers: BTreeMap::new(),
            tool_token_budget: DEFAULT_TOOL_TOKEN_BUDGET,
        }
    }
}

impl McpConfig {
    /// The servers a session starts.
    pub fn enabled(&self) -> impl Iterator<Item = &McpServerConfig> {
        self.servers.values().filter(|s| s.enabled)
    }

    /// Names of the variables holding HTTP servers' credentials (`bearer_token_env_var`,
    /// the values of `env_http_headers`): secrets whatever they are called, so the sandbox
    /// keeps them from the model's commands even when the name has no `TOKEN` or `KEY`.
    pub fn credential_env_vars(&self) -> Vec<String> {
        let mut names = Vec::new();
        for server in self.servers.values() {
            if let McpTransport::StreamableHttp {
                bearer_token_env_var,
                env_http_headers,
                ..
            } = &server.transport
            {
                names.extend(bearer_token_env_var.iter().cloned());
                names.extend(env_http_headers.values().cloned());
            }
        }
        names.sort();
        names.dedup();
        names
    }
}

/// A configuration that could not be used: which file, which server, what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum McpConfigError {
    /// A file cannot be read, is not valid TOML, or `tool_token_budget` is wrong (the
    /// loader's error).
    #[error(transparent)]
    File(#[from] ConfigError),
    /// A server's table is wrong.
    #[error("[mcp_servers.{server}] (from {origin}): {reason}")]
    Server {
        /// The table's name.
        server: String,
        /// The layer that last set a key of it.
        origin: Origin,
        /// What is wrong and what is accepted.
        reason: String,
    },
}

/// Whether `name` may name a server: letters, digits, `_` and `-`, as Codex requires
/// (`validate_mcp_server_name`), so that `NAME__tool` stays a valid tool name.
pub fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The table as written, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    command: Option<String>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    env_vars: Option<Vec<String>>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    bearer_token_env_var: Option<String>,
    http_headers: Option<BTreeMap<String, String>>,
    env_http_headers: Option<BTreeMap<String, String>>,
    enabled: Option<bool>,
    required: Option<bool>,
    enabled_tools: Option<Vec<String>>,
    disabled_tools: Option<Vec<String>>,
    startup_timeout_sec: Option<f64>,
    startup_timeout_ms: Option<u64>,
    tool_timeout_sec: Option<f64>,
}

const ACCEPTED_KEYS: &str = "command, args, env, env_vars, cwd (stdio); url, \
    bearer_token_env_var, http_headers, env_http_headers (streamable HTTP); enabled, required, \
    enabled_tools, disabled_tools, startup_timeout_sec, tool_timeout_sec";

/// Checks the merged `[mcp_servers]` tables (`sources`: where each got its last key).
pub(crate) fn validate(
    servers: &BTreeMap<String, toml::Table>,
    sources: &BTreeMap<String, Origin>,
    tool_token_budget: u32,
) -> Result<McpConfig, McpConfigError> {
    let mut checked = BTreeMap::new();
    for (name, table) in servers {
        let source = sources.get(name).cloned().unwrap_or(Origin::Default);
        let server = validate_table(name, toml::Value::Table(table.clone()), &source)?;
        checked.insert(name.clone(), server);
    }
    Ok(McpConfig {
        servers: checked,
        tool_token_budget,
    })
}

/// Validates one `[mcp_servers.NAME]` table (`source`: where it came from, for messages).
pub fn validate_table(
    name: &str,
    value: toml::Value,
    source: &Origin,
) -> Result<McpServerConfig, McpConfigError> {
    let err = |reason: String| McpConfigError::Server {
        server: name.to_owned(),
        origin: source.clone(),
        reason,
    };
    if !valid_server_name(name) {
        return Err(err(
            "a server name may hold only letters, digits, `_` and `-` (at most 48), because it \
             prefixes its tools' names"
                .into(),
        ));
    }
    let raw: RawServer = value.try_into().map_err(|e: toml::de::Error| {
        let message = e.message().trim().to_owned();
        if message.contains("unknown field") {
            err(format!("{message}; accepted keys: {ACCEPTED_KEYS}"))
        } else {
            err(message)
        }
    })?;
    let not_for = |transport: &str, key: &str, set: bool| {
        if set {
            Err(err(format!(
                "`{key}` is not supported for a {transport} server"
            )))
        } else {
            Ok(())
        }
    };
    let transport = match (raw.command, raw.url) {
        (Some(_), Some(_)) => {
            return Err(err(
                "set either `command` (a stdio server nanna starts) or `url` (a streamable-HTTP \
                 server), not both"
                    .into(),
            ));
        }
        (None, None) => {
            return Err(err(
                "missing `command` (a stdio server nanna starts) or `url` (a streamable-HTTP \
                 server)"
                    .into(),
            ));
        }
        (Some(command), None) => {
            not_for(
                "stdio",
                "bearer_token_env_var",
                raw.bearer_token_env_var.is_some(),
            )?;
            not_for("stdio", "http_headers", raw.http_headers.is_some())?;
            not_for("stdio", "env_http_headers", raw.env_http_headers.is_some())?;
            if command.trim().is_empty() {
                return Err(err("`command` is empty; name the program to run".into()));
            }
            McpTransport::Stdio {
                command,
                args: raw.args.unwrap_or_default(),
                env: raw.env.unwrap_or_default(),
                env_vars: raw.env_vars.unwrap_or_default(),
                cwd: raw.cwd,
            }
        }
        (None, Some(url)) => {
            not_for("streamable HTTP", "args", raw.args.is_some())?;
            not_for("streamable HTTP", "env", raw.env.is_some())?;
            not_for("streamable HTTP", "env_vars", raw.env_vars.is_some())?;
            not_for("streamable HTTP", "cwd", raw.cwd.is_some())?;
            match url::Url::parse(&url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                Ok(parsed) => {
                    return Err(err(format!(
                        "`url` must be an http:// or https:// URL, not `{}:`",
                        parsed.scheme()
                    )));
                }
                Err(e) => return Err(err(format!("`url` `{url}` is not a URL: {e}"))),
            }
            McpTransport::StreamableHttp {
                url,
                bearer_token_env_var: raw.bearer_token_env_var,
                http_headers: raw.http_headers.unwrap_or_default(),
                env_http_headers: raw.env_http_headers.unwrap_or_default(),
            }
        }
    };
    let seconds = |key: &str, value: f64| -> Result<Duration, McpConfigError> {
        if value > 0.0 {
            Duration::try_from_secs_f64(value).map_err(|e| err(format!("`{key}`: {e}")))
        } else {
            Err(err(format!(
                "`{key}` must be a positive number of seconds, got {value}"
            )))
        }
    };
    let startup_timeout = match (raw.startup_timeout_sec, raw.startup_timeout_ms) {
        (Some(s), _) => seconds("startup_timeout_sec", s)?,
        (None, Some(ms)) if ms > 0 => Duration::from_millis(ms),
        (None, Some(_)) => return Err(err("`startup_timeout_ms` must be positive".into())),
        (None, None) => DEFAULT_STARTUP_TIMEOUT,
    };
    let tool_timeout = match raw.tool_timeout_sec {
        Some(s) => seconds("tool_timeout_sec", s)?,
        None => DEFAULT_TOOL_TIMEOUT,
    };
    Ok(McpServerConfig {
        name: name.to_owned(),
        transport,
        enabled: raw.enabled.unwrap_or(true),
        required: raw.required.unwrap_or(false),
        enabled_tools: raw.enabled_tools,
        disabled_tools: raw.disabled_tools.unwrap_or_default(),
        startup_timeout,
        tool_timeout,
        source: source.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_stay_tool_name_safe() {
        assert!(valid_server_name("fs"));
        assert!(valid_server_name("my-server_2"));
        assert!(!valid_server_name(""));
        assert!(!valid_server_name("a b"));
        assert!(!valid_server_name("a.b"));
        assert!(!valid_server_name(&"x".repeat(49)));
    }
}

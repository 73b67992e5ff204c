//! `[mcp_servers.NAME]` tables: which MCP servers a session starts, with Codex CLI's keys.
//!
//! The keys and their meaning follow Codex (`codex-rs/core/src/config/types.rs`,
//! `RawMcpServerConfig` and its `Deserialize`): a stdio server has `command` (+ `args`, `env`,
//! `env_vars`, `cwd`); a streamable-HTTP server has `url` (+ `bearer_token_env_var`,
//! `http_headers`, `env_http_headers`); both take `enabled`, `required`, `enabled_tools`,
//! `disabled_tools`, `startup_timeout_sec`, `tool_timeout_sec`. A key that belongs to the
//! other transport is an error, as in Codex. Unknown keys are errors.
//!
//! Layering: the tables of every file (system `/etc/nanna/config.toml`, then the user's file)
//! are merged key by key, later files winning, so the user can turn off a server the system
//! file defines with `enabled = false` alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Time a server may take to start, answer the handshake and list its tools when
/// `startup_timeout_sec` is not set. Codex's default (`DEFAULT_STARTUP_TIMEOUT` in
/// `codex-rs/codex-mcp/src/rmcp_client.rs`).
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Time one tool call may take when `tool_timeout_sec` is not set. Codex's default
/// (`DEFAULT_TOOL_TIMEOUT`, same file).
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(300);

/// Default of `tool_token_budget`: the estimated prompt tokens all offered tools (built-in and
/// MCP) may take before a session warns. The built-in coding set is about 1,000.
pub const DEFAULT_TOOL_TOKEN_BUDGET: u32 = 4_000;

/// Environment variables a stdio server inherits besides those its table names: the set
/// Codex passes (`DEFAULT_ENV_VARS` in `codex-rs/rmcp-client/src/utils.rs`). Everything else
/// (API keys, tokens) stays out of third-party servers unless listed in `env_vars`.
pub const INHERITED_ENV_VARS: &[&str] = &[
    "HOME", "LOGNAME", "PATH", "SHELL", "USER", "LANG", "LC_ALL", "TERM", "TMPDIR", "TZ",
];

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
        /// Variables set for it (on top of [`INHERITED_ENV_VARS`] and `env_vars`).
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
    /// The file that last set a key of this table.
    pub source: PathBuf,
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
    /// A file cannot be read or is not valid TOML (the main loader's error).
    #[error(transparent)]
    File(#[from] nanna_model::ConfigError),
    /// A server's table is wrong.
    #[error("[mcp_servers.{server}] (in {}): {reason}", path.display())]
    Server {
        /// The table's name.
        server: String,
        /// The last file that set a key of it.
        path: PathBuf,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// A top-level MCP setting is wrong.
    #[error("{setting} (in {}): {reason}", path.display())]
    Setting {
        /// The key.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
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

/// Reads `[mcp_servers]` and `tool_token_budget` from `files` (layer order; `true` = the file
/// must exist) and validates them.
pub fn load(files: &[(PathBuf, bool)]) -> Result<McpConfig, McpConfigError> {
    let mut merged = toml::Table::new();
    let mut sources: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut budget: Option<(toml::Value, PathBuf)> = None;
    for (path, required) in files {
        let Some(mut table) = nanna_model::config::read_table(path, *required)? else {
            continue;
        };
        if let Some(value) = table.remove("tool_token_budget") {
            budget = Some((value, path.clone()));
        }
        match table.remove("mcp_servers") {
            None => {}
            Some(toml::Value::Table(servers)) => {
                for (name, value) in servers {
                    sources.insert(name.clone(), path.clone());
                    merge(&mut merged, name, value);
                }
            }
            Some(other) => {
                return Err(McpConfigError::Setting {
                    setting: "mcp_servers",
                    path: path.clone(),
                    reason: format!(
                        "must be a table of servers (`[mcp_servers.NAME]`), not a {}",
                        other.type_str()
                    ),
                });
            }
        }
    }
    let tool_token_budget = match budget {
        None => DEFAULT_TOOL_TOKEN_BUDGET,
        Some((toml::Value::Integer(n), path)) => {
            u32::try_from(n).map_err(|_| McpConfigError::Setting {
                setting: "tool_token_budget",
                path,
                reason: format!("must be a whole number of tokens from 0 to {}", u32::MAX),
            })?
        }
        Some((other, path)) => {
            return Err(McpConfigError::Setting {
                setting: "tool_token_budget",
                path,
                reason: format!("must be a whole number of tokens, not {other}"),
            });
        }
    };
    let mut servers = BTreeMap::new();
    for (name, value) in merged {
        let source = sources.remove(&name).unwrap_or_default();
        let server = validate_table(&name, value, &source)?;
        servers.insert(name, server);
    }
    Ok(McpConfig {
        servers,
        tool_token_budget,
    })
}

/// Merges `value` into `table[key]`: tables key by key (recursively), anything else replaced.
fn merge(table: &mut toml::Table, key: String, value: toml::Value) {
    match (table.get_mut(&key), value) {
        (Some(toml::Value::Table(old)), toml::Value::Table(new)) => {
            for (k, v) in new {
                merge(old, k, v);
            }
        }
        (_, value) => {
            table.insert(key, value);
        }
    }
}

/// Validates one `[mcp_servers.NAME]` table (`source`: where it came from, for messages).
pub fn validate_table(
    name: &str,
    value: toml::Value,
    source: &Path,
) -> Result<McpServerConfig, McpConfigError> {
    let err = |reason: String| McpConfigError::Server {
        server: name.to_owned(),
        path: source.to_owned(),
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
        source: source.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn codex_style_tables_parse() {
        let dir = tempfile::tempdir().unwrap();
        let user = write(
            dir.path(),
            "config.toml",
            r#"
model = "qwen2.5-coder:7b"
tool_token_budget = 2500

[mcp_servers.fs]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv"]
env = { DEBUG = "1" }
startup_timeout_sec = 12.5
tool_timeout_sec = 5
enabled_tools = ["read_text_file", "list_directory"]

[mcp_servers.docs]
url = "http://127.0.0.1:3000/mcp"
bearer_token_env_var = "DOCS_TOKEN"
enabled = false
"#,
        );
        let config = load(&[(user.clone(), true)]).unwrap();
        assert_eq!(config.tool_token_budget, 2500);
        let fs = &config.servers["fs"];
        assert_eq!(fs.startup_timeout, Duration::from_millis(12_500));
        assert_eq!(fs.tool_timeout, Duration::from_secs(5));
        assert!(fs.offers("read_text_file") && !fs.offers("write_file"));
        assert_eq!(
            fs.target(),
            "npx -y @modelcontextprotocol/server-filesystem /srv"
        );
        assert_eq!(fs.source, user);
        let McpTransport::Stdio { env, cwd, .. } = &fs.transport else {
            panic!("stdio")
        };
        assert_eq!(env["DEBUG"], "1");
        assert!(cwd.is_none());
        let docs = &config.servers["docs"];
        assert!(!docs.enabled);
        assert_eq!(docs.startup_timeout, DEFAULT_STARTUP_TIMEOUT);
        assert_eq!(
            config
                .enabled()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["fs"]
        );
    }

    #[test]
    fn later_files_merge_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let system = write(
            dir.path(),
            "system.toml",
            "[mcp_servers.fs]\ncommand = \"fs-server\"\ndisabled_tools = [\"write_file\"]\n",
        );
        let user = write(
            dir.path(),
            "user.toml",
            "[mcp_servers.fs]\nenabled = false\n",
        );
        let config = load(&[(system, false), (user.clone(), false)]).unwrap();
        let fs = &config.servers["fs"];
        assert!(!fs.enabled);
        assert_eq!(fs.target(), "fs-server");
        assert_eq!(fs.disabled_tools, ["write_file"]);
        assert_eq!(fs.source, user);
        assert_eq!(config.tool_token_budget, DEFAULT_TOOL_TOKEN_BUDGET);
    }

    #[test]
    fn the_nixos_modules_settings_define_system_wide_servers() {
        // `services.nanna-coder.settings.mcp_servers.docs = { url = ...; enabled_tools = [..];
        // tool_timeout_sec = 20; };` as `pkgs.formats.toml` writes /etc/nanna/config.toml
        // (keys sorted, one table per server, integers for whole numbers).
        let dir = tempfile::tempdir().unwrap();
        let system = write(
            dir.path(),
            "etc-nanna-config.toml",
            "context_window = 32768\nmodel = \"qwen2.5-coder:7b\"\nprovider = \"ollama\"\n\
             url = \"http://127.0.0.1:11434\"\n\n[mcp_servers.docs]\nenabled_tools = [\"search\"]\n\
             tool_timeout_sec = 20\nurl = \"http://127.0.0.1:3000/mcp\"\n",
        );
        let user = dir.path().join("absent-user.toml");
        let config = load(&[(system.clone(), false), (user, false)]).unwrap();
        let docs = &config.servers["docs"];
        assert_eq!(docs.source, system);
        assert_eq!(docs.tool_timeout, Duration::from_secs(20));
        assert!(docs.offers("search") && !docs.offers("delete"));
    }

    #[test]
    fn missing_optional_files_are_skipped_and_required_ones_reported() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("absent.toml");
        assert_eq!(
            load(&[(absent.clone(), false)]).unwrap(),
            McpConfig {
                tool_token_budget: DEFAULT_TOOL_TOKEN_BUDGET,
                ..McpConfig::default()
            }
        );
        let err = load(&[(absent, true)]).unwrap_err();
        assert!(
            err.to_string().contains("cannot read configuration file"),
            "{err}"
        );
    }

    #[test]
    fn mistakes_are_reported_with_the_server_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("[mcp_servers.a]\nargs = [\"x\"]\n", "missing `command`"),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nurl = \"http://h\"\n",
                "not both",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nbearer_token_env_var = \"T\"\n",
                "`bearer_token_env_var` is not supported for a stdio server",
            ),
            (
                "[mcp_servers.a]\nurl = \"http://h/mcp\"\nargs = []\n",
                "`args` is not supported for a streamable HTTP server",
            ),
            (
                "[mcp_servers.a]\nurl = \"ftp://h\"\n",
                "http:// or https://",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nstartup_timeout_sec = 0\n",
                "positive number of seconds",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\ncomand = \"y\"\n",
                "accepted keys: command",
            ),
            (
                "[mcp_servers.\"a.b\"]\ncommand = \"x\"\n",
                "only letters, digits",
            ),
            ("[mcp_servers.a]\ncommand = 3\n", "invalid type"),
        ];
        for (text, expected) in cases {
            let path = write(dir.path(), "c.toml", text);
            let err = load(&[(path.clone(), true)]).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
        let path = write(dir.path(), "c.toml", "tool_token_budget = \"lots\"\n");
        let err = load(&[(path, true)]).unwrap_err().to_string();
        assert!(err.contains("whole number of tokens"), "{err}");
        let path = write(dir.path(), "c.toml", "mcp_servers = 3\n");
        let err = load(&[(path, true)]).unwrap_err().to_string();
        assert!(err.contains("table of servers"), "{err}");
        let path = write(dir.path(), "c.toml", "[mcp_servers.a\n");
        let err = load(&[(path, true)]).unwrap_err().to_string();
        assert!(err.contains(":1:"), "{err}");
    }

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

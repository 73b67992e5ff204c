//! Layered configuration of the model connection.
//!
//! Later layers win: built-in defaults < system file `/etc/nanna/config.toml` (written by
//! the NixOS module) < user file (`$NANNA_CONFIG`, else `$XDG_CONFIG_HOME/nanna/config.toml`,
//! else `~/.config/nanna/config.toml`) < environment < command-line flags
//! ([`ConfigOverrides`]). Every value remembers where it came from ([`Origin`]), and every
//! error names the setting and its origin.
//!
//! The file holds flat keys:
//!
//! ```toml
//! provider = "ollama"              # or "openai" (any OpenAI-compatible server)
//! url = "http://localhost:11434"
//! model = "llama3.1:8b"
//! context_window = 110000
//! temperature = 0.2                # 0 to 2
//! keep_alive = "30m"               # Ollama: "5m", "1h", -1 (forever), 0 (unload at once)
//! max_tokens = 4096
//! think = "low"                   # thinking models: true, false, low, medium, high, max
//! connect_timeout_secs = 5
//! idle_timeout_secs = 300          # silence allowed before and within a reply
//! sandbox_network = false          # let commands use the network (read-only, workspace-write)
//! sandbox_env_include = ["GITHUB_TOKEN", "AWS_*"]   # variables commands keep after scrubbing
//! sandbox_env_exclude = ["HTTP_PROXY"]              # and variables they lose besides
//! extra_tools = ["calculate"]      # built-ins outside the default coding set (echo, calculate)
//! turn_timeout_secs = 600          # one whole model turn, however busy the connection
//! max_line_bytes = 16777216        # largest NDJSON line / SSE event
//! max_reply_bytes = 67108864       # largest reply body
//! native_tools = "auto"            # "auto" (ask the server), true, false
//! json_tool_calls = false          # bare or fenced JSON in prose counts as a call
//! ```
//!
//! Environment: `NANNA_PROVIDER`, `NANNA_URL`, `NANNA_MODEL`, `NANNA_CONTEXT_WINDOW`,
//! `NANNA_TEMPERATURE`, `NANNA_KEEP_ALIVE`, `NANNA_MAX_TOKENS`, `NANNA_THINK`, `NANNA_CONNECT_TIMEOUT`,
//! `NANNA_IDLE_TIMEOUT`, `NANNA_TURN_TIMEOUT` (seconds), `NANNA_MAX_LINE_BYTES`,
//! `NANNA_MAX_REPLY_BYTES`, `NANNA_NATIVE_TOOLS`, `NANNA_JSON_TOOL_CALLS`,
//! `NANNA_SANDBOX_NETWORK` (`true`/`false`), `NANNA_EXTRA_TOOLS` (comma-separated),
//! `NANNA_API_KEY` (else `OPENAI_API_KEY`); for the Ollama
//! provider also Ollama's own `OLLAMA_URL`, `OLLAMA_HOST` (`host:port`, `:port`, a URL;
//! `0.0.0.0` means this machine) and `OLLAMA_MODEL`, below their `NANNA_*` equivalents.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::ollama::{DEFAULT_CONTEXT_WINDOW, OllamaProvider};
use crate::openai::OpenAiProvider;
use crate::provider::ModelProvider;
use crate::redact::redact_url;
use crate::stream::DEFAULT_MAX_FRAME;
use crate::transport::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_REPLY_BYTES, DEFAULT_TURN_TIMEOUT,
    Limits,
};
use crate::types::{ChatOptions, Think};

/// Where the system-wide configuration file lives.
pub const SYSTEM_CONFIG_PATH: &str = "/etc/nanna/config.toml";

/// Default model.
pub const DEFAULT_MODEL: &str = "llama3.1:8b";

/// Default URL of an Ollama server.
pub const DEFAULT_OLLAMA_URL: &str = "http://localhost:11434";

/// Default URL of an OpenAI-compatible server (llama.cpp's `llama-server` default port).
pub const DEFAULT_OPENAI_URL: &str = "http://localhost:8080/v1";

/// Which kind of server to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProviderKind {
    /// Ollama's native API.
    #[default]
    Ollama,
    /// An OpenAI-compatible `/v1/chat/completions` server (llama.cpp, vLLM, hosted).
    OpenAi,
}

impl ProviderKind {
    /// The name used in files, variables and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::OpenAi => "openai",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "ollama" => Some(Self::Ollama),
            "openai" | "openai-compatible" | "llama.cpp" | "llamacpp" | "vllm" => {
                Some(Self::OpenAi)
            }
            _ => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built into Nanna.
    Default,
    /// A configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// A configuration that could not be loaded, naming the setting and where it came from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A value is out of range or not understood.
    #[error("invalid {setting} `{value}` (from {origin}): {reason}")]
    Invalid {
        /// The setting (file key).
        setting: &'static str,
        /// The value as given.
        value: String,
        /// Where it came from.
        origin: Origin,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// A configuration file is not valid TOML or has an unknown key.
    #[error("{}:{line}:{column}: {message}; fix the file or move it aside", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A configuration file exists but cannot be read.
    #[error("cannot read configuration file {}: {detail}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying cause.
        detail: String,
    },
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigOverrides {
    /// `--config`: the user configuration file to read instead of the usual one.
    pub config_file: Option<PathBuf>,
    /// `--provider`: `ollama` or `openai`.
    pub provider: Option<String>,
    /// `--url`: the server's base URL.
    pub url: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// `--context-window`, in tokens.
    pub context_window: Option<u32>,
    /// `--temperature`, 0 to 2.
    pub temperature: Option<f32>,
    /// `--keep-alive`, e.g. `30m` or `-1`.
    pub keep_alive: Option<String>,
    /// `--max-tokens`.
    pub max_tokens: Option<u32>,
    /// `--think`: `true`, `false`, `low`, `medium`, `high` or `max`.
    pub think: Option<String>,
    /// `--idle-timeout`, in seconds.
    pub idle_timeout_secs: Option<u64>,
    /// `--network`: commands may use the network.
    pub sandbox_network: Option<bool>,
    /// `--turn-timeout`, in seconds.
    pub turn_timeout_secs: Option<u64>,
    /// `--native-tools`: `auto`, `true` or `false`.
    pub native_tools: Option<String>,
    /// `--json-tool-calls`.
    pub json_tool_calls: Option<bool>,
}

/// The validated configuration of the model connection.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// Kind of server.
    pub provider: ProviderKind,
    /// Base URL of the server.
    pub url: Url,
    /// Model name.
    pub model: String,
    /// Context window asked for, in tokens (Ollama: capped at the model's maximum).
    pub context_window: u32,
    /// Sampling temperature, when set.
    pub temperature: Option<f32>,
    /// How long the server keeps the model loaded (Ollama), when set.
    pub keep_alive: Option<String>,
    /// Cap on generated tokens per reply, when set.
    pub max_tokens: Option<u32>,
    /// Whether thinking models reason first (and how hard); `None` leaves the server's
    /// default (Ollama turns thinking on for models that can).
    pub think: Option<Think>,
    /// Bearer token for hosted endpoints, when set.
    pub api_key: Option<String>,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed between two parts of a reply.
    pub idle_timeout: Duration,
    /// Whether commands the model runs may use the network in `read-only` and
    /// `workspace-write` sessions (default: no).
    pub sandbox_network: bool,
    /// Variable patterns (`NAME` or `PREFIX*`) commands keep although the default scrubbing
    /// would drop them.
    pub sandbox_env_include: Vec<String>,
    /// Variable patterns commands never get (wins over the include list).
    pub sandbox_env_exclude: Vec<String>,
    /// Built-in tools offered besides the default coding set (`echo`, `calculate`).
    pub extra_tools: Vec<String>,
    /// Time allowed for one whole exchange (a model turn).
    pub turn_timeout: Duration,
    /// Largest NDJSON line or SSE event accepted, in bytes.
    pub max_line_bytes: usize,
    /// Largest reply body accepted, in bytes.
    pub max_reply_bytes: u64,
    /// Whether the model calls tools natively: `None` asks the server (Ollama's `/api/show`
    /// capabilities; assumed yes when the server does not say).
    pub native_tools: Option<bool>,
    /// Whether bare or fenced JSON in a reply counts as a tool call even for a model with
    /// native tool calling (explicit `<tool_call>` markup always does).
    pub json_tool_calls: bool,
    origins: BTreeMap<&'static str, Origin>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("provider", &self.provider)
            .field("url", &redact_url(self.url.as_str()))
            .field("model", &self.model)
            .field("context_window", &self.context_window)
            .field("temperature", &self.temperature)
            .field("keep_alive", &self.keep_alive)
            .field("max_tokens", &self.max_tokens)
            .field("think", &self.think)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("sandbox_network", &self.sandbox_network)
            .field("sandbox_env_include", &self.sandbox_env_include)
            .field("sandbox_env_exclude", &self.sandbox_env_exclude)
            .field("extra_tools", &self.extra_tools)
            .field("turn_timeout", &self.turn_timeout)
            .field("max_line_bytes", &self.max_line_bytes)
            .field("max_reply_bytes", &self.max_reply_bytes)
            .field("native_tools", &self.native_tools)
            .field("json_tool_calls", &self.json_tool_calls)
            .finish()
    }
}

impl Config {
    /// Loads the configuration from the files, the process environment and `overrides`.
    pub fn load(overrides: &ConfigOverrides) -> Result<Self, ConfigError> {
        ConfigLoader::from_process().load(overrides)
    }

    /// Where `setting` (a file key such as `url` or `temperature`) got its value; `None`
    /// for an unknown setting or one left unset.
    pub fn origin(&self, setting: &str) -> Option<&Origin> {
        self.origins.get(setting)
    }

    /// The provider this configuration describes.
    pub fn provider(&self) -> Arc<dyn ModelProvider> {
        match self.provider {
            ProviderKind::Ollama => Arc::new(
                OllamaProvider::from_url(&self.url)
                    .with_default_context_window(self.context_window)
                    .with_keep_alive(self.keep_alive.clone())
                    .with_api_key(self.api_key.clone())
                    .with_limits(self.limits()),
            ),
            ProviderKind::OpenAi => Arc::new(
                OpenAiProvider::from_url(&self.url)
                    .with_api_key(self.api_key.clone())
                    .with_limits(self.limits()),
            ),
        }
    }

    /// The timeouts and size limits of this configuration.
    pub fn limits(&self) -> Limits {
        Limits {
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            turn_timeout: self.turn_timeout,
            max_line_bytes: self.max_line_bytes,
            max_reply_bytes: self.max_reply_bytes,
        }
    }

    /// The URL for messages: credentials redacted.
    pub fn shown_url(&self) -> String {
        redact_url(self.url.as_str())
    }

    /// Request options carrying this configuration's context window, temperature,
    /// keep-alive and token cap.
    pub fn chat_options(&self) -> ChatOptions {
        ChatOptions {
            context_window: Some(self.context_window),
            temperature: self.temperature,
            keep_alive: self.keep_alive.clone(),
            max_tokens: self.max_tokens,
            seed: None,
            think: self.think,
        }
    }
}

/// Loads a [`Config`] from an explicit environment and file locations; use it in tests
/// instead of mutating the process environment.
#[derive(Debug, Clone, Default)]
pub struct ConfigLoader {
    env: HashMap<String, String>,
    system_file: Option<PathBuf>,
    user_file: Option<PathBuf>,
}

impl ConfigLoader {
    /// A loader with an empty environment and no files.
    pub fn new() -> Self {
        Self::default()
    }

    /// A loader reading the process environment, the system file and the user file.
    pub fn from_process() -> Self {
        let env = std::env::vars_os()
            .filter_map(|(name, value)| {
                let name = name.into_string().ok()?;
                let relevant = name.starts_with("NANNA_")
                    || name.starts_with("OLLAMA_")
                    || matches!(name.as_str(), "OPENAI_API_KEY" | "XDG_CONFIG_HOME" | "HOME");
                relevant.then(|| (name, value.to_string_lossy().into_owned()))
            })
            .collect();
        Self {
            env,
            system_file: Some(PathBuf::from(SYSTEM_CONFIG_PATH)),
            user_file: None,
        }
    }

    /// Sets an environment variable of this loader's environment.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Sets the system file (`None`: no system file).
    pub fn system_file(mut self, path: Option<PathBuf>) -> Self {
        self.system_file = path;
        self
    }

    /// Sets the user file, instead of deriving it from `NANNA_CONFIG`, `XDG_CONFIG_HOME`
    /// and `HOME`.
    pub fn user_file(mut self, path: PathBuf) -> Self {
        self.user_file = Some(path);
        self
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The user file and whether it was named explicitly (then it must exist).
    fn user_file_path(&self, overrides: &ConfigOverrides) -> Option<(PathBuf, bool)> {
        if let Some(path) = &overrides.config_file {
            return Some((path.clone(), true));
        }
        if let Some(path) = &self.user_file {
            return Some((path.clone(), false));
        }
        if let Some(path) = self.var("NANNA_CONFIG") {
            return Some((PathBuf::from(path), true));
        }
        if let Some(dir) = self.var("XDG_CONFIG_HOME") {
            return Some((Path::new(dir).join("nanna/config.toml"), false));
        }
        self.var("HOME")
            .map(|home| (Path::new(home).join(".config/nanna/config.toml"), false))
    }

    /// The configuration files in layer order (system, then user), each with whether it
    /// must exist (a file named by `--config` or `NANNA_CONFIG`). Other crates that keep
    /// their settings in the same files (`[mcp_servers]`) read them from here.
    pub fn files(&self, overrides: &ConfigOverrides) -> Vec<(PathBuf, bool)> {
        let mut files = Vec::with_capacity(2);
        if let Some(path) = &self.system_file {
            files.push((path.clone(), false));
        }
        files.extend(self.user_file_path(overrides));
        files
    }

    /// The user's configuration file, the one `nanna mcp add` writes.
    pub fn user_file_for(&self, overrides: &ConfigOverrides) -> Option<PathBuf> {
        self.user_file_path(overrides).map(|(path, _)| path)
    }

    /// Merges every layer and validates the result.
    pub fn load(&self, overrides: &ConfigOverrides) -> Result<Config, ConfigError> {
        let mut raw = Raw::default();
        for (path, required) in self.files(overrides) {
            if let Some(file) = read_file(&path, required)? {
                raw.apply_file(file, &path);
            }
        }
        self.apply_env(&mut raw)?;
        raw.apply_flags(overrides);
        raw.validate()
    }

    fn apply_env(&self, raw: &mut Raw) -> Result<(), ConfigError> {
        let text = |name: &'static str| {
            self.var(name)
                .map(|v| (v.to_owned(), Origin::Env(name.into())))
        };
        set(&mut raw.provider, text("NANNA_PROVIDER"));
        set(&mut raw.model, text("NANNA_MODEL"));
        set(&mut raw.keep_alive, text("NANNA_KEEP_ALIVE"));
        set(&mut raw.think, text("NANNA_THINK"));
        set(&mut raw.api_key, text("OPENAI_API_KEY"));
        set(&mut raw.api_key, text("NANNA_API_KEY"));
        // Ollama's own variables apply to the Ollama provider only; they are resolved in
        // `validate` once the provider is known.
        raw.ollama_url = text("OLLAMA_URL");
        raw.ollama_host = text("OLLAMA_HOST");
        raw.ollama_model = text("OLLAMA_MODEL");
        set(&mut raw.url, text("NANNA_URL"));
        set(
            &mut raw.context_window,
            self.number("NANNA_CONTEXT_WINDOW", "context_window")?,
        );
        set(
            &mut raw.max_tokens,
            self.number("NANNA_MAX_TOKENS", "max_tokens")?,
        );
        set(
            &mut raw.connect_timeout,
            self.number("NANNA_CONNECT_TIMEOUT", "connect_timeout_secs")?,
        );
        set(
            &mut raw.idle_timeout,
            self.number("NANNA_IDLE_TIMEOUT", "idle_timeout_secs")?,
        );
        if let Some(value) = self.var("NANNA_SANDBOX_NETWORK") {
            let origin = Origin::Env("NANNA_SANDBOX_NETWORK".into());
            let parsed = match value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        setting: "sandbox_network",
                        value: value.to_owned(),
                        origin,
                        reason: "expected true or false".into(),
                    });
                }
            };
            raw.sandbox_network = Some((parsed, origin));
        }
        if let Some(value) = self.var("NANNA_EXTRA_TOOLS") {
            let names = value
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
            raw.extra_tools = Some((names, Origin::Env("NANNA_EXTRA_TOOLS".into())));
        }
        set(
            &mut raw.turn_timeout,
            self.number("NANNA_TURN_TIMEOUT", "turn_timeout_secs")?,
        );
        set(
            &mut raw.max_line_bytes,
            self.number("NANNA_MAX_LINE_BYTES", "max_line_bytes")?,
        );
        set(
            &mut raw.max_reply_bytes,
            self.number("NANNA_MAX_REPLY_BYTES", "max_reply_bytes")?,
        );
        set(&mut raw.native_tools, text("NANNA_NATIVE_TOOLS"));
        if let Some(value) = self.var("NANNA_JSON_TOOL_CALLS") {
            let origin = Origin::Env("NANNA_JSON_TOOL_CALLS".into());
            let parsed = parse_bool(value).ok_or_else(|| ConfigError::Invalid {
                setting: "json_tool_calls",
                value: value.to_owned(),
                origin: origin.clone(),
                reason: "expected true or false".into(),
            })?;
            raw.json_tool_calls = Some((parsed, origin));
        }
        if let Some(value) = self.var("NANNA_TEMPERATURE") {
            let origin = Origin::Env("NANNA_TEMPERATURE".into());
            let parsed = value.parse::<f32>().map_err(|_| ConfigError::Invalid {
                setting: "temperature",
                value: value.to_owned(),
                origin: origin.clone(),
                reason: "expected a number from 0 to 2".into(),
            })?;
            raw.temperature = Some((parsed, origin));
        }
        Ok(())
    }

    fn number<T: std::str::FromStr>(
        &self,
        name: &'static str,
        setting: &'static str,
    ) -> Result<Option<(T, Origin)>, ConfigError> {
        let Some(value) = self.var(name) else {
            return Ok(None);
        };
        let origin = Origin::Env(name.into());
        match value.parse::<T>() {
            Ok(n) => Ok(Some((n, origin))),
            Err(_) => Err(ConfigError::Invalid {
                setting,
                value: value.to_owned(),
                origin,
                reason: "expected a whole number".into(),
            }),
        }
    }
}

/// `true`/`false` as people write them in environment variables.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn set<T>(slot: &mut Option<(T, Origin)>, value: Option<(T, Origin)>) {
    if value.is_some() {
        *slot = value;
    }
}

/// The configuration file's schema.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    provider: Option<String>,
    url: Option<String>,
    model: Option<String>,
    context_window: Option<u32>,
    temperature: Option<f32>,
    keep_alive: Option<KeepAlive>,
    max_tokens: Option<u32>,
    think: Option<ThinkSetting>,
    connect_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    sandbox_network: Option<bool>,
    sandbox_env_include: Option<Vec<String>>,
    sandbox_env_exclude: Option<Vec<String>>,
    extra_tools: Option<Vec<String>>,
    /// `[mcp_servers.NAME]` tables and the tool budget: parsed and validated by `nanna-mcp`
    /// from the same files, accepted (not read) here.
    #[serde(default, rename = "mcp_servers")]
    _mcp_servers: Option<toml::Table>,
    #[serde(default, rename = "tool_token_budget")]
    _tool_token_budget: Option<toml::Value>,
    turn_timeout_secs: Option<u64>,
    max_line_bytes: Option<u64>,
    max_reply_bytes: Option<u64>,
    native_tools: Option<NativeTools>,
    json_tool_calls: Option<bool>,
}

/// `native_tools` may be written `"auto"` or as a boolean.
#[derive(Deserialize)]
#[serde(untagged)]
enum NativeTools {
    Flag(bool),
    Text(String),
}

/// `think` may be written as a boolean (`think = false`) or a word (`think = "high"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum ThinkSetting {
    Flag(bool),
    Word(String),
}

/// `keep_alive` may be written as a string (`"30m"`) or a number of seconds (`-1`).
#[derive(Deserialize)]
#[serde(untagged)]
enum KeepAlive {
    Text(String),
    Seconds(i64),
}

fn read_file(path: &Path, required: bool) -> Result<Option<FileConfig>, ConfigError> {
    parse_file(path, required)
}

/// One configuration file as a TOML table, for settings other crates read from the same
/// files (`[mcp_servers]`); `None` when it is absent and not `required`. Errors are worded
/// like the main loader's (path, line and column).
pub fn read_table(path: &Path, required: bool) -> Result<Option<toml::Table>, ConfigError> {
    parse_file(path, required)
}

fn parse_file<T: serde::de::DeserializeOwned>(
    path: &Path,
    required: bool,
) -> Result<Option<T>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(error) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                detail: error.to_string(),
            });
        }
    };
    toml::from_str(&text).map(Some).map_err(|error| {
        let (line, column) = error
            .span()
            .map_or((1, 1), |span| line_and_column(&text, span.start));
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message: error.message().trim().to_owned(),
        }
    })
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Merged but unvalidated values, each with its origin.
#[derive(Default)]
struct Raw {
    provider: Option<(String, Origin)>,
    url: Option<(String, Origin)>,
    model: Option<(String, Origin)>,
    context_window: Option<(u32, Origin)>,
    temperature: Option<(f32, Origin)>,
    keep_alive: Option<(String, Origin)>,
    max_tokens: Option<(u32, Origin)>,
    think: Option<(String, Origin)>,
    api_key: Option<(String, Origin)>,
    connect_timeout: Option<(u64, Origin)>,
    idle_timeout: Option<(u64, Origin)>,
    turn_timeout: Option<(u64, Origin)>,
    max_line_bytes: Option<(u64, Origin)>,
    max_reply_bytes: Option<(u64, Origin)>,
    native_tools: Option<(String, Origin)>,
    json_tool_calls: Option<(bool, Origin)>,
    ollama_url: Option<(String, Origin)>,
    ollama_host: Option<(String, Origin)>,
    ollama_model: Option<(String, Origin)>,
    sandbox_network: Option<(bool, Origin)>,
    sandbox_env_include: Option<(Vec<String>, Origin)>,
    sandbox_env_exclude: Option<(Vec<String>, Origin)>,
    extra_tools: Option<(Vec<String>, Origin)>,
}

/// Whether a value may be replaced by Ollama's own variables: they rank below the
/// `NANNA_*` variables and flags, above the files.
fn below_env<T>(value: &Option<(T, Origin)>) -> bool {
    !matches!(value, Some((_, Origin::Env(_) | Origin::Flag(_))))
}

impl Raw {
    fn apply_file(&mut self, file: FileConfig, path: &Path) {
        let origin = || Origin::File(path.to_owned());
        let with = |v: Option<String>| v.map(|v| (v, origin()));
        set(&mut self.provider, with(file.provider));
        set(&mut self.url, with(file.url));
        set(&mut self.model, with(file.model));
        set(
            &mut self.context_window,
            file.context_window.map(|v| (v, origin())),
        );
        set(
            &mut self.temperature,
            file.temperature.map(|v| (v, origin())),
        );
        set(
            &mut self.keep_alive,
            file.keep_alive.map(|v| {
                let text = match v {
                    KeepAlive::Text(text) => text,
                    KeepAlive::Seconds(n) => n.to_string(),
                };
                (text, origin())
            }),
        );
        set(&mut self.max_tokens, file.max_tokens.map(|v| (v, origin())));
        set(
            &mut self.think,
            file.think.map(|v| {
                let text = match v {
                    ThinkSetting::Flag(flag) => flag.to_string(),
                    ThinkSetting::Word(word) => word,
                };
                (text, origin())
            }),
        );
        set(
            &mut self.connect_timeout,
            file.connect_timeout_secs.map(|v| (v, origin())),
        );
        set(
            &mut self.idle_timeout,
            file.idle_timeout_secs.map(|v| (v, origin())),
        );
        set(
            &mut self.sandbox_network,
            file.sandbox_network.map(|v| (v, origin())),
        );
        set(
            &mut self.sandbox_env_include,
            file.sandbox_env_include.map(|v| (v, origin())),
        );
        set(
            &mut self.sandbox_env_exclude,
            file.sandbox_env_exclude.map(|v| (v, origin())),
        );
        set(
            &mut self.extra_tools,
            file.extra_tools.map(|v| (v, origin())),
        );
        set(
            &mut self.turn_timeout,
            file.turn_timeout_secs.map(|v| (v, origin())),
        );
        set(
            &mut self.max_line_bytes,
            file.max_line_bytes.map(|v| (v, origin())),
        );
        set(
            &mut self.max_reply_bytes,
            file.max_reply_bytes.map(|v| (v, origin())),
        );
        set(
            &mut self.native_tools,
            file.native_tools.map(|v| {
                let text = match v {
                    NativeTools::Flag(b) => b.to_string(),
                    NativeTools::Text(text) => text,
                };
                (text, origin())
            }),
        );
        set(
            &mut self.json_tool_calls,
            file.json_tool_calls.map(|v| (v, origin())),
        );
    }

    fn apply_flags(&mut self, flags: &ConfigOverrides) {
        let flag = |name: &str| Origin::Flag(name.into());
        set(
            &mut self.provider,
            flags.provider.clone().map(|v| (v, flag("--provider"))),
        );
        set(&mut self.url, flags.url.clone().map(|v| (v, flag("--url"))));
        set(
            &mut self.model,
            flags.model.clone().map(|v| (v, flag("--model"))),
        );
        set(
            &mut self.context_window,
            flags.context_window.map(|v| (v, flag("--context-window"))),
        );
        set(
            &mut self.temperature,
            flags.temperature.map(|v| (v, flag("--temperature"))),
        );
        set(
            &mut self.keep_alive,
            flags.keep_alive.clone().map(|v| (v, flag("--keep-alive"))),
        );
        set(
            &mut self.max_tokens,
            flags.max_tokens.map(|v| (v, flag("--max-tokens"))),
        );
        set(
            &mut self.idle_timeout,
            flags.idle_timeout_secs.map(|v| (v, flag("--idle-timeout"))),
        );
        set(
            &mut self.think,
            flags.think.clone().map(|v| (v, flag("--think"))),
        );
        set(
            &mut self.sandbox_network,
            flags.sandbox_network.map(|v| (v, flag("--network"))),
        );
        set(
            &mut self.turn_timeout,
            flags.turn_timeout_secs.map(|v| (v, flag("--turn-timeout"))),
        );
        set(
            &mut self.native_tools,
            flags
                .native_tools
                .clone()
                .map(|v| (v, flag("--native-tools"))),
        );
        set(
            &mut self.json_tool_calls,
            flags
                .json_tool_calls
                .map(|v| (v, flag("--json-tool-calls"))),
        );
    }

    fn validate(self) -> Result<Config, ConfigError> {
        let mut origins = BTreeMap::new();

        let (provider, origin) = match self.provider {
            Some((text, origin)) => match ProviderKind::parse(&text) {
                Some(kind) => (kind, origin),
                None => {
                    return Err(ConfigError::Invalid {
                        setting: "provider",
                        value: text,
                        origin,
                        reason: "expected `ollama` or `openai` (any OpenAI-compatible server)"
                            .into(),
                    });
                }
            },
            None => (ProviderKind::Ollama, Origin::Default),
        };
        origins.insert("provider", origin);

        // URL: flag > NANNA_URL > OLLAMA_URL > OLLAMA_HOST > file > default.
        let mut from_ollama_host = false;
        let mut url = self.url;
        if provider == ProviderKind::Ollama && below_env(&url) {
            if let Some(value) = self.ollama_url {
                url = Some(value);
            } else if let Some(value) = self.ollama_host {
                url = Some(value);
                from_ollama_host = true;
            }
        }
        let (url, origin) = match url {
            Some((text, origin)) => {
                let parsed = if from_ollama_host {
                    ollama_host_url(&text)
                } else {
                    parse_url(&text)
                };
                match parsed {
                    Ok(url) => (url, origin),
                    Err(reason) => {
                        return Err(ConfigError::Invalid {
                            setting: "url",
                            value: redact_url(&text),
                            origin,
                            reason: crate::redact::redact_urls(&reason),
                        });
                    }
                }
            }
            None => {
                let default = match provider {
                    ProviderKind::Ollama => DEFAULT_OLLAMA_URL,
                    ProviderKind::OpenAi => DEFAULT_OPENAI_URL,
                };
                let url = parse_url(default).map_err(|reason| ConfigError::Invalid {
                    setting: "url",
                    value: default.into(),
                    origin: Origin::Default,
                    reason,
                })?;
                (url, Origin::Default)
            }
        };
        origins.insert("url", origin);

        let mut model = self.model;
        if provider == ProviderKind::Ollama && below_env(&model) && self.ollama_model.is_some() {
            model = self.ollama_model;
        }
        let (model, origin) = model.unwrap_or_else(|| (DEFAULT_MODEL.into(), Origin::Default));
        let model = model.trim().to_owned();
        if model.is_empty() || model.chars().any(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                setting: "model",
                value: model,
                origin,
                reason: "expected a model name without spaces, e.g. `llama3.1:8b`".into(),
            });
        }
        origins.insert("model", origin);

        let (context_window, origin) = self
            .context_window
            .unwrap_or((DEFAULT_CONTEXT_WINDOW, Origin::Default));
        if context_window == 0 {
            return Err(ConfigError::Invalid {
                setting: "context_window",
                value: "0".into(),
                origin,
                reason: "the context window must be at least 1 token (e.g. 32768)".into(),
            });
        }
        origins.insert("context_window", origin);

        let temperature = match self.temperature {
            Some((t, origin)) => {
                if !(0.0..=2.0).contains(&t) {
                    return Err(ConfigError::Invalid {
                        setting: "temperature",
                        value: t.to_string(),
                        origin,
                        reason: "expected a number from 0 to 2".into(),
                    });
                }
                origins.insert("temperature", origin);
                Some(t)
            }
            None => None,
        };

        let keep_alive = match self.keep_alive {
            Some((text, origin)) => {
                let text = text.trim().to_owned();
                if !is_keep_alive(&text) {
                    return Err(ConfigError::Invalid {
                        setting: "keep_alive",
                        value: text,
                        origin,
                        reason: "expected a duration such as `30s`, `5m`, `1h30m`, or a number of \
                                 seconds (`-1` keeps the model loaded)"
                            .into(),
                    });
                }
                origins.insert("keep_alive", origin);
                Some(text)
            }
            None => None,
        };

        let max_tokens = match self.max_tokens {
            Some((0, origin)) => {
                return Err(ConfigError::Invalid {
                    setting: "max_tokens",
                    value: "0".into(),
                    origin,
                    reason: "expected at least 1 (leave it unset for no cap)".into(),
                });
            }
            Some((n, origin)) => {
                origins.insert("max_tokens", origin);
                Some(n)
            }
            None => None,
        };

        let think = match self.think {
            Some((text, origin)) => match Think::parse(&text) {
                Some(think) => {
                    origins.insert("think", origin);
                    Some(think)
                }
                None => {
                    return Err(ConfigError::Invalid {
                        setting: "think",
                        value: text,
                        origin,
                        reason: format!("expected {}", Think::ACCEPTED),
                    });
                }
            },
            None => None,
        };

        let api_key = self.api_key.map(|(key, origin)| {
            origins.insert("api_key", origin);
            key
        });

        let connect_timeout = timeout(
            "connect_timeout_secs",
            self.connect_timeout,
            DEFAULT_CONNECT_TIMEOUT,
            &mut origins,
        )?;
        let idle_timeout = timeout(
            "idle_timeout_secs",
            self.idle_timeout,
            DEFAULT_IDLE_TIMEOUT,
            &mut origins,
        )?;

        let mut list = |setting: &'static str, value: Option<(Vec<String>, Origin)>| {
            value.map_or_else(Vec::new, |(v, origin)| {
                origins.insert(setting, origin);
                v
            })
        };
        let sandbox_env_include = list("sandbox_env_include", self.sandbox_env_include);
        let sandbox_env_exclude = list("sandbox_env_exclude", self.sandbox_env_exclude);
        let extra_tools = list("extra_tools", self.extra_tools);
        let sandbox_network = self.sandbox_network.is_some_and(|(v, origin)| {
            origins.insert("sandbox_network", origin);
            v
        });
        let turn_timeout = timeout(
            "turn_timeout_secs",
            self.turn_timeout,
            DEFAULT_TURN_TIMEOUT,
            &mut origins,
        )?;
        let max_line_bytes = size(
            "max_line_bytes",
            self.max_line_bytes,
            DEFAULT_MAX_FRAME as u64,
            &mut origins,
        )?;
        let max_reply_bytes = size(
            "max_reply_bytes",
            self.max_reply_bytes,
            DEFAULT_MAX_REPLY_BYTES,
            &mut origins,
        )?;
        let native_tools = match self.native_tools {
            Some((text, origin)) => {
                let value = match text.trim().to_ascii_lowercase().as_str() {
                    "auto" => None,
                    other => Some(parse_bool(other).ok_or_else(|| ConfigError::Invalid {
                        setting: "native_tools",
                        value: text.clone(),
                        origin: origin.clone(),
                        reason: "expected `auto` (ask the server), `true` or `false`".into(),
                    })?),
                };
                origins.insert("native_tools", origin);
                value
            }
            None => None,
        };
        let json_tool_calls = match self.json_tool_calls {
            Some((value, origin)) => {
                origins.insert("json_tool_calls", origin);
                value
            }
            None => false,
        };

        Ok(Config {
            provider,
            url,
            model,
            context_window,
            temperature,
            keep_alive,
            max_tokens,
            think,
            api_key,
            connect_timeout,
            idle_timeout,
            sandbox_network,
            sandbox_env_include,
            sandbox_env_exclude,
            extra_tools,
            turn_timeout,
            max_line_bytes: usize::try_from(max_line_bytes).unwrap_or(usize::MAX),
            max_reply_bytes,
            native_tools,
            json_tool_calls,
            origins,
        })
    }
}

fn timeout(
    setting: &'static str,
    value: Option<(u64, Origin)>,
    default: Duration,
    origins: &mut BTreeMap<&'static str, Origin>,
) -> Result<Duration, ConfigError> {
    let (secs, origin) = value.unwrap_or((default.as_secs(), Origin::Default));
    if secs == 0 {
        return Err(ConfigError::Invalid {
            setting,
            value: "0".into(),
            origin,
            reason: "expected at least 1 second".into(),
        });
    }
    origins.insert(setting, origin);
    Ok(Duration::from_secs(secs))
}

/// A size in bytes, at least 1 KiB (smaller limits would cut every real reply).
fn size(
    setting: &'static str,
    value: Option<(u64, Origin)>,
    default: u64,
    origins: &mut BTreeMap<&'static str, Origin>,
) -> Result<u64, ConfigError> {
    let (bytes, origin) = value.unwrap_or((default, Origin::Default));
    if bytes < 1024 {
        return Err(ConfigError::Invalid {
            setting,
            value: bytes.to_string(),
            origin,
            reason: format!("expected a number of bytes, at least 1024 (default {default})"),
        });
    }
    origins.insert(setting, origin);
    Ok(bytes)
}

/// Parses an absolute http(s) URL with a host.
fn parse_url(text: &str) -> Result<Url, String> {
    let text = text.trim();
    let url = Url::parse(text).map_err(|error| {
        format!("not a URL ({error}); write it with its scheme, e.g. http://localhost:11434")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme must be http or https, not `{}`; write e.g. http://{text}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a server URL takes no query or fragment".into());
    }
    Ok(url)
}

/// Interprets `OLLAMA_HOST` the way Ollama's own client does: `host`, `host:port`,
/// `:port` or a URL; a missing port is 11434 (80/443 with an explicit scheme); an
/// unspecified address (`0.0.0.0`, `::`), which a server binds to, means this machine.
pub fn ollama_host_url(value: &str) -> Result<Url, String> {
    let value = value.trim();
    let (scheme, rest, default_port) = match value.split_once("://") {
        Some(("http", rest)) => ("http", rest, 80),
        Some(("https", rest)) => ("https", rest, 443),
        Some((other, _)) => {
            return Err(format!("the scheme must be http or https, not `{other}`"));
        }
        None => ("http", value, 11434),
    };
    let (host_port, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, ""),
    };
    let (host, port) = split_host_port(host_port)?;
    let port = port.unwrap_or(default_port);
    let host = match host.trim_start_matches('[').trim_end_matches(']') {
        "" | "0.0.0.0" | "::" => "127.0.0.1".to_owned(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.to_owned(),
    };
    parse_url(&format!("{scheme}://{host}:{port}{path}"))
}

/// Splits `host:port`, `[v6]:port`, `:port`, `host` or `[v6]`.
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("`{p}` is not a port number (1 to 65535)"))
    };
    if let Some(rest) = text.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err("unclosed `[` in an IPv6 address".into());
        };
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(parse_port(port)?))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected `{after}` after the IPv6 address")),
        };
    }
    match text.matches(':').count() {
        0 => Ok((text, None)),
        1 => {
            let (host, port) = text.split_once(':').unwrap_or((text, ""));
            Ok((host, Some(parse_port(port)?)))
        }
        // A bare IPv6 address without a port.
        _ => Ok((text, None)),
    }
}

/// Whether `text` is a keep-alive Ollama accepts: a number of seconds or a Go duration.
fn is_keep_alive(text: &str) -> bool {
    if text.parse::<f64>().is_ok() {
        return true;
    }
    let body = text.strip_prefix('-').unwrap_or(text);
    if body.is_empty() {
        return false;
    }
    let mut rest = body;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 || rest[..digits].parse::<f64>().is_err() {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(**u))
            .max_by_key(|u| u.len());
        match unit {
            Some(unit) => rest = &rest[unit.len()..],
            None => return false,
        }
    }
    true
}

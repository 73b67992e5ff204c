//! [`Config`]: every setting, one field each, with its doc, its rule and its default.
//!
//! Adding a setting: a field here (its doc, a rule from `value.rs` if it has one), its
//! default in [`Config::defaults`], and where it is used. The loader derives the rest: the
//! file key is the field's name, the environment variable is `NANNA_` + the key in capitals
//! (a trailing `_SECS` dropped), `-c key=value` works, errors name it and where its value
//! came from, and [`Config::origin`] tells where that was.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use nanna_model::{
    ChatOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_CONTEXT_WINDOW, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_REPLY_BYTES, DEFAULT_TURN_TIMEOUT, Endpoint, Limits, ModelProvider, ProviderKind,
    Think,
};
use serde::{Deserialize, Serialize};

use crate::error::Origin;
use crate::mcp::{self, McpConfig, McpConfigError};
use crate::value::{self, Secret, ServerUrl};

/// Default model.
pub const DEFAULT_MODEL: &str = "llama3.1:8b";

/// Default of `tool_token_budget`: the estimated prompt tokens all offered tools (built-in and
/// MCP) may take before a session warns. The built-in coding set is about 1,000.
pub const DEFAULT_TOOL_TOKEN_BUDGET: u32 = 4_000;

/// The settings, validated, with where each value came from.
///
/// The file holds the fields by name (`connect_timeout_secs` for `connect_timeout` and the
/// other timeouts; `api_key` only from the environment):
///
/// ```toml
/// provider = "ollama"              # or "openai" (any OpenAI-compatible server)
/// url = "http://localhost:11434"
/// model = "llama3.1:8b"
/// context_window = 110000
/// temperature = 0.2                # 0 to 2
/// keep_alive = "30m"               # Ollama: "5m", "1h", -1 (forever), 0 (unload at once)
/// max_tokens = 4096
/// think = "low"                    # thinking models: true, false, low, medium, high, max
/// connect_timeout_secs = 5
/// idle_timeout_secs = 300          # silence allowed before and within a reply
/// turn_timeout_secs = 600          # one whole model turn, however busy the connection
/// max_line_bytes = 16777216        # largest NDJSON line / SSE event
/// max_reply_bytes = 67108864       # largest reply body
/// sandbox_network = false          # let commands use the network (read-only, workspace-write)
/// sandbox_env_include = ["GITHUB_TOKEN", "AWS_*"]   # variables commands keep after scrubbing
/// sandbox_env_exclude = ["HTTP_PROXY"]              # and variables they lose besides
/// extra_tools = ["calculate"]      # built-ins outside the default coding set (echo, calculate)
/// native_tools = "auto"            # "auto" (ask the server), true, false
/// json_tool_calls = false          # bare or fenced JSON in prose counts as a call
/// tool_token_budget = 4000         # warn when the offered tools' schemas exceed this
///
/// [mcp_servers.fs]                 # see `mcp`
/// command = "npx"
/// args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv"]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Kind of server: `ollama` (its native API) or `openai` (an OpenAI-compatible
    /// `/v1/chat/completions`: llama.cpp, vLLM, hosted).
    pub provider: ProviderKind,
    /// Base URL of the server; by default the provider's (Ollama's `http://localhost:11434`,
    /// llama.cpp's `http://localhost:8080/v1`). For Ollama also `OLLAMA_URL` and
    /// `OLLAMA_HOST`, below `NANNA_URL`.
    pub url: ServerUrl,
    /// Model name. For Ollama also `OLLAMA_MODEL`, below `NANNA_MODEL`.
    #[serde(deserialize_with = "value::model")]
    pub model: String,
    /// Context window asked for, in tokens (Ollama: capped at the model's maximum).
    #[serde(deserialize_with = "value::context_window")]
    pub context_window: u32,
    /// Sampling temperature, when set.
    #[serde(deserialize_with = "value::temperature")]
    pub temperature: Option<f32>,
    /// How long the server keeps the model loaded after a request (Ollama), when set.
    #[serde(deserialize_with = "value::keep_alive")]
    pub keep_alive: Option<String>,
    /// Cap on generated tokens per reply, when set.
    #[serde(deserialize_with = "value::max_tokens")]
    pub max_tokens: Option<u32>,
    /// Whether thinking models reason first (and how hard); `None` leaves the server's
    /// default (Ollama turns thinking on for models that can).
    #[serde(deserialize_with = "value::think")]
    pub think: Option<Think>,
    /// Bearer token for hosted endpoints: `NANNA_API_KEY`, else `OPENAI_API_KEY`; never read
    /// from files or flags, where it would sit in plain text or in `ps`.
    pub api_key: Option<Secret>,
    /// Time allowed to open a connection.
    #[serde(rename = "connect_timeout_secs", with = "value::seconds")]
    pub connect_timeout: Duration,
    /// Time allowed between two parts of a reply, and before the first.
    #[serde(rename = "idle_timeout_secs", with = "value::seconds")]
    pub idle_timeout: Duration,
    /// Time allowed for one whole exchange (a model turn).
    #[serde(rename = "turn_timeout_secs", with = "value::seconds")]
    pub turn_timeout: Duration,
    /// Largest NDJSON line or SSE event accepted, in bytes.
    #[serde(deserialize_with = "value::bytes")]
    pub max_line_bytes: usize,
    /// Largest reply body accepted, in bytes.
    #[serde(deserialize_with = "value::bytes")]
    pub max_reply_bytes: u64,
    /// Whether commands the model runs may use the network in `read-only` and
    /// `workspace-write` sessions.
    pub sandbox_network: bool,
    /// Variable patterns (`NAME` or `PREFIX*`) commands keep although the default scrubbing
    /// would drop them.
    pub sandbox_env_include: Vec<String>,
    /// Variable patterns commands never get (wins over the include list).
    pub sandbox_env_exclude: Vec<String>,
    /// Built-in tools offered besides the default coding set (`echo`, `calculate`).
    pub extra_tools: Vec<String>,
    /// Whether the model calls tools natively: `None` (`auto`) asks the server (Ollama's
    /// `/api/show` capabilities; assumed yes when the server does not say).
    #[serde(with = "value::native_tools")]
    pub native_tools: Option<bool>,
    /// Whether bare or fenced JSON in a reply counts as a tool call even for a model with
    /// native tool calling (explicit `<tool_call>` markup always does).
    pub json_tool_calls: bool,
    /// Warn when the offered tools' schemas (built-in and MCP) exceed this many estimated
    /// prompt tokens.
    pub tool_token_budget: u32,
    /// `[mcp_servers.NAME]` tables, merged key by key across the layers; checked by
    /// [`Config::mcp`], so that a broken table stops only what uses MCP.
    pub mcp_servers: BTreeMap<String, toml::Table>,
    /// Where each top-level setting got its value.
    #[serde(skip)]
    pub(crate) origins: BTreeMap<String, Origin>,
    /// Where each MCP server's table got its last key.
    #[serde(skip)]
    pub(crate) mcp_sources: BTreeMap<String, Origin>,
}

impl Default for Config {
    /// The defaults for Ollama.
    fn default() -> Self {
        Self::defaults(ProviderKind::Ollama)
    }
}

impl Config {
    /// Every setting's default for `provider` (only the URL depends on it).
    pub fn defaults(provider: ProviderKind) -> Self {
        let limits = Limits::default();
        Self {
            provider,
            url: ServerUrl::parse(provider.default_url())
                .unwrap_or_else(|reason| unreachable!("default URL: {reason}")),
            model: DEFAULT_MODEL.into(),
            context_window: DEFAULT_CONTEXT_WINDOW,
            temperature: None,
            keep_alive: None,
            max_tokens: None,
            think: None,
            api_key: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            turn_timeout: DEFAULT_TURN_TIMEOUT,
            max_line_bytes: limits.max_line_bytes,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
            sandbox_network: false,
            sandbox_env_include: Vec::new(),
            sandbox_env_exclude: Vec::new(),
            extra_tools: Vec::new(),
            native_tools: None,
            json_tool_calls: false,
            tool_token_budget: DEFAULT_TOOL_TOKEN_BUDGET,
            mcp_servers: BTreeMap::new(),
            origins: BTreeMap::new(),
            mcp_sources: BTreeMap::new(),
        }
    }

    /// Where `setting` (a file key such as `url` or `idle_timeout_secs`) got its value;
    /// `None` for an unknown setting or one left unset.
    pub fn origin(&self, setting: &str) -> Option<&Origin> {
        self.origins.get(setting)
    }

    /// How to reach the model server.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            kind: self.provider,
            url: self.url.url().clone(),
            api_key: self.api_key.as_deref().map(str::to_owned),
            limits: self.limits(),
            context_window: self.context_window,
            keep_alive: self.keep_alive.clone(),
        }
    }

    /// The provider for the configured server (no network traffic until used).
    pub fn provider(&self) -> Arc<dyn ModelProvider> {
        self.endpoint().provider()
    }

    /// The timeouts and size limits.
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
        nanna_model::redact_url(self.url.as_str())
    }

    /// The options every request carries: context window, temperature, keep-alive, token
    /// cap, thinking. The one path from settings to requests.
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

    /// The MCP servers, each table checked (Codex's keys and rules), and the tool budget.
    pub fn mcp(&self) -> Result<McpConfig, McpConfigError> {
        mcp::validate(&self.mcp_servers, &self.mcp_sources, self.tool_token_budget)
    }
}

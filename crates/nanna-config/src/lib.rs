//! `nanna-config`: Nanna Coder's settings in one place, layered, each value with its origin.
//!
//! Later layers win: built-in defaults < the system file `/etc/nanna/config.toml` (the
//! NixOS module writes it) < the user file (`--config`, else `$NANNA_CONFIG`, else
//! `$XDG_CONFIG_HOME/nanna/config.toml`, else `~/.config/nanna/config.toml`) < environment
//! variables < `-c key=value` overrides < command-line flags. `figment` merges the layers
//! and remembers which one gave each value, so every error names the setting, the value,
//! where it came from (file and line, variable, flag) and what is accepted.
//!
//! - [`Config`]: every setting, one field each with its doc, rule and default; the provider
//!   ([`Config::provider`]), request options ([`Config::chat_options`]) and MCP servers
//!   ([`Config::mcp`]) come from it.
//! - [`ConfigLoader`]: reads the layers ([`ConfigLoader::load`], [`ConfigLoader::load_mcp`]).
//! - [`Overrides`]: the command line's part (`--config`, `-c`, flags).
//! - [`mcp`]: `[mcp_servers.NAME]` tables with Codex's keys; [`edit`]: `nanna mcp add` and
//!   `remove` on the user's file, comments kept.
//!
//! Environment: `NANNA_<KEY>` for every top-level key (`_SECS` dropped: `NANNA_IDLE_TIMEOUT`;
//! lists comma-separated: `NANNA_EXTRA_TOOLS=echo,calculate`), `NANNA_API_KEY` (else
//! `OPENAI_API_KEY`); for the Ollama provider also Ollama's own `OLLAMA_URL`, `OLLAMA_HOST`
//! (`host:port`, `:port`, a URL; `0.0.0.0` means this machine) and `OLLAMA_MODEL`, below
//! their `NANNA_*` equivalents. Empty variables count as unset.

#![warn(missing_docs)]

mod config;
pub mod edit;
mod error;
mod load;
pub mod mcp;
mod overrides;
mod value;

pub use config::{Config, DEFAULT_MODEL, DEFAULT_TOOL_TOKEN_BUDGET};
pub use error::{ConfigError, Origin};
pub use load::{ConfigLoader, SYSTEM_CONFIG_PATH, env_var, ollama_host_url};
pub use mcp::{McpConfig, McpConfigError, McpServerConfig, McpTransport};
pub use nanna_model::ProviderKind;
pub use overrides::Overrides;
pub use value::{Secret, ServerUrl};

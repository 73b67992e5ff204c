//! [`Settings`]: the layered configuration (`nanna-config`: defaults, config files,
//! environment, `-c`, flags) resolved once per process, as the commands need it.

use std::path::PathBuf;
use std::sync::Arc;

use nanna_agent::AgentConfig;
use nanna_config::{Config, ConfigLoader, McpConfig, Overrides};
use nanna_model::ModelProvider;
use nanna_sandbox::{EnvPolicy, Policy, SandboxMode};
use nanna_tools::ToolRegistry;

use crate::cli::{GlobalArgs, NativeToolsArg};
use crate::error::{CliError, Result};

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    config: Config,
}

/// The command line's part of the configuration: `--config`, `-c` and the flags, each flag
/// named so that errors say which one gave a value. `network`: `--network` of the subcommand.
fn overrides(global: &GlobalArgs, network: bool) -> Overrides {
    let native_tools = global.native_tools.map(|n| match n {
        NativeToolsArg::Auto => "auto",
        NativeToolsArg::On => "true",
        NativeToolsArg::Off => "false",
    });
    global
        .set
        .iter()
        .fold(
            Overrides::new().with_file(global.config.clone()),
            Overrides::with_setting,
        )
        .with_flag(
            "--provider",
            "provider",
            global.provider.map(|p| p.as_str()),
        )
        .with_flag("--url", "url", global.url.as_deref())
        .with_flag("--model", "model", global.model.as_deref())
        .with_flag("--context-window", "context_window", global.context_window)
        .with_flag("--temperature", "temperature", global.temperature)
        .with_flag("--keep-alive", "keep_alive", global.keep_alive.as_deref())
        .with_flag("--max-tokens", "max_tokens", global.max_tokens)
        .with_flag("--think", "think", global.think.as_deref())
        .with_flag("--idle-timeout", "idle_timeout_secs", global.idle_timeout)
        .with_flag("--turn-timeout", "turn_timeout_secs", global.turn_timeout)
        .with_flag("--native-tools", "native_tools", native_tools)
        .with_flag(
            "--json-tool-calls",
            "json_tool_calls",
            global.json_tool_calls.then_some(true),
        )
        .with_flag("--network", "sandbox_network", network.then_some(true))
}

impl Settings {
    /// Loads the configuration with the command line on top.
    pub fn resolve(global: &GlobalArgs) -> Result<Self> {
        Self::resolve_with(global, false)
    }

    /// [`Settings::resolve`], with `--network` given to the subcommand.
    pub fn resolve_with(global: &GlobalArgs, network_flag: bool) -> Result<Self> {
        let config = ConfigLoader::from_process()
            .load(&overrides(global, network_flag))
            .map_err(|e| CliError::Config(e.to_string()))?;
        Ok(Self { config })
    }

    /// The `[mcp_servers]` tables and tool budget.
    pub fn mcp(&self) -> Result<McpConfig> {
        self.config
            .mcp()
            .map_err(|e| CliError::Config(e.to_string()))
    }

    /// The model to use.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// A provider for the configured server (no network traffic until used).
    pub fn provider(&self) -> Arc<dyn ModelProvider> {
        self.config.provider()
    }

    /// Copies the request options (`Config::chat_options`, the one path from settings to
    /// requests) and the tool-calling settings into an agent configuration, and the
    /// sandbox's network and environment settings into its policy.
    pub fn apply(&self, agent: &mut AgentConfig) -> Result<()> {
        agent.options = self.config.chat_options();
        agent.native_tools = self.config.native_tools;
        agent.json_tool_calls = self.config.json_tool_calls;
        agent.sandbox = self.sandbox_policy(agent.sandbox.mode)?;
        Ok(())
    }

    /// The sandbox policy for `mode` with the configured network and environment rules.
    /// The variables holding MCP servers' credentials are excluded too (an unreadable MCP
    /// configuration is reported where the servers start, not here).
    pub fn sandbox_policy(&self, mode: SandboxMode) -> Result<Policy> {
        let mut exclude = self.config.sandbox_env_exclude.clone();
        if let Ok(mcp) = self.mcp() {
            // Only what can be a variable's name (a pattern with `*` would drop more).
            exclude.extend(mcp.credential_env_vars().into_iter().filter(|name| {
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            }));
        }
        let env =
            EnvPolicy::new(self.config.sandbox_env_include.clone(), exclude).map_err(|e| {
                let origin = ["sandbox_env_include", "sandbox_env_exclude"]
                    .iter()
                    .find_map(|k| self.config.origin(k))
                    .map(|o| format!(" (from {o})"))
                    .unwrap_or_default();
                CliError::Config(format!("invalid sandbox_env_include/exclude{origin}: {e}"))
            })?;
        Ok(Policy {
            mode,
            network: self.config.sandbox_network,
            env,
        })
    }

    /// The tools for a session: the default coding set plus the configured `extra_tools`.
    pub fn tools(&self) -> Result<ToolRegistry> {
        let mut registry = ToolRegistry::coding();
        for name in &self.config.extra_tools {
            registry.add_builtin(name).map_err(|e| {
                let origin = self
                    .config
                    .origin("extra_tools")
                    .map(|o| format!(" (from {o})"))
                    .unwrap_or_default();
                CliError::Config(format!("invalid extra_tools{origin}: {e}"))
            })?;
        }
        Ok(registry)
    }
}

/// The MCP configuration alone (`nanna mcp ...` works whatever the model server settings
/// are, and can mend a file whose other settings are wrong).
pub fn mcp_config(global: &GlobalArgs) -> Result<McpConfig> {
    ConfigLoader::from_process()
        .load_mcp(&overrides(global, false))
        .map_err(|e| CliError::Config(e.to_string()))
}

/// The user's configuration file (`--config`, `NANNA_CONFIG`, XDG), the one `nanna mcp add`
/// writes, and the system file it does not.
pub fn config_files(global: &GlobalArgs) -> (Option<PathBuf>, PathBuf) {
    let overrides = Overrides::new().with_file(global.config.clone());
    (
        ConfigLoader::from_process().user_file_for(&overrides),
        PathBuf::from(nanna_config::SYSTEM_CONFIG_PATH),
    )
}

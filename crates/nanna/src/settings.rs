//! [`Settings`]: the layered configuration (defaults, config files, environment, flags)
//! resolved once per process, as the commands need it.

use std::sync::Arc;

use std::path::PathBuf;

use nanna_agent::AgentConfig;
use nanna_model::{Config, ConfigLoader, ConfigOverrides, ModelProvider};
use nanna_sandbox::{EnvPolicy, Policy, SandboxMode};
use nanna_tools::ToolRegistry;

use crate::cli::{GlobalArgs, NativeToolsArg, ProviderKind};
use crate::error::{CliError, Result};

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    config: Config,
    overrides: ConfigOverrides,
}

impl Settings {
    /// Loads the configuration with the command-line flags on top.
    pub fn resolve(global: &GlobalArgs) -> Result<Self> {
        Self::resolve_with(global, false)
    }

    /// [`Settings::resolve`], with `--network` given to the subcommand.
    pub fn resolve_with(global: &GlobalArgs, network_flag: bool) -> Result<Self> {
        let overrides = ConfigOverrides {
            config_file: global.config.clone(),
            provider: global.provider.map(|p| {
                match p {
                    ProviderKind::Ollama => "ollama",
                    ProviderKind::Openai => "openai",
                }
                .to_owned()
            }),
            url: global.url.clone(),
            model: global.model.clone(),
            context_window: global.context_window,
            temperature: global.temperature,
            keep_alive: global.keep_alive.clone(),
            max_tokens: global.max_tokens,
            think: global.think.clone(),
            sandbox_network: network_flag.then_some(true),
            idle_timeout_secs: global.idle_timeout,
            turn_timeout_secs: global.turn_timeout,
            native_tools: global.native_tools.map(|n| {
                match n {
                    NativeToolsArg::Auto => "auto",
                    NativeToolsArg::On => "true",
                    NativeToolsArg::Off => "false",
                }
                .to_owned()
            }),
            json_tool_calls: global.json_tool_calls.then_some(true),
        };
        let config = Config::load(&overrides).map_err(|e| CliError::Config(e.to_string()))?;
        Ok(Self { config, overrides })
    }

    /// The `[mcp_servers]` tables and tool budget, from the same layered files.
    pub fn mcp(&self) -> Result<nanna_mcp::McpConfig> {
        mcp_config(&self.overrides)
    }

    /// The model to use.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// A provider for the configured server (no network traffic until used).
    pub fn provider(&self) -> Arc<dyn ModelProvider> {
        self.config.provider()
    }

    /// Copies the sampling and context settings into an agent configuration, and the
    /// sandbox's network and environment settings into its policy.
    pub fn apply(&self, agent: &mut AgentConfig) -> Result<()> {
        agent.context_window = self.config.context_window;
        agent.temperature = self.config.temperature;
        agent.max_tokens = self.config.max_tokens;
        agent.keep_alive = self.config.keep_alive.clone();
        agent.think = self.config.think;
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

/// The MCP configuration for `--config` (`None`: the usual files), without resolving the
/// model settings (`nanna mcp ...` works whatever the model server settings are).
pub fn mcp_config(overrides: &ConfigOverrides) -> Result<nanna_mcp::McpConfig> {
    let files = ConfigLoader::from_process().files(overrides);
    nanna_mcp::config::load(&files).map_err(|e| CliError::Config(e.to_string()))
}

/// The user's configuration file (`--config`, `NANNA_CONFIG`, XDG), the one `nanna mcp add`
/// writes, and the system file it does not.
pub fn config_files(global: &GlobalArgs) -> (Option<PathBuf>, PathBuf) {
    let overrides = ConfigOverrides {
        config_file: global.config.clone(),
        ..ConfigOverrides::default()
    };
    (
        ConfigLoader::from_process().user_file_for(&overrides),
        PathBuf::from(nanna_model::config::SYSTEM_CONFIG_PATH),
    )
}

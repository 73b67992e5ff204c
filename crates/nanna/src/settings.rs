//! [`Settings`]: the layered configuration (defaults, config files, environment, flags)
//! resolved once per process, as the commands need it.

use std::sync::Arc;

use nanna_agent::AgentConfig;
use nanna_model::{Config, ConfigOverrides, ModelProvider};

use crate::cli::{GlobalArgs, ProviderKind};
use crate::error::{CliError, Result};

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    config: Config,
}

impl Settings {
    /// Loads the configuration with the command-line flags on top.
    pub fn resolve(global: &GlobalArgs) -> Result<Self> {
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
            ..ConfigOverrides::default()
        };
        let config = Config::load(&overrides).map_err(|e| CliError::Config(e.to_string()))?;
        Ok(Self { config })
    }

    /// The model to use.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// A provider for the configured server (no network traffic until used).
    pub fn provider(&self) -> Arc<dyn ModelProvider> {
        self.config.provider()
    }

    /// Copies the sampling and context settings into an agent configuration.
    pub fn apply(&self, agent: &mut AgentConfig) {
        agent.context_window = self.config.context_window;
        agent.temperature = self.config.temperature;
        agent.max_tokens = self.config.max_tokens;
        agent.keep_alive = self.config.keep_alive.clone();
        agent.think = self.config.think;
    }
}

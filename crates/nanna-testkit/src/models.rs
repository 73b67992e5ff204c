//! The models the server pretends to host, and the server's configuration.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TestkitError;

/// A model the scripted server pretends to host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSpec {
    /// Name with tag, e.g. `llama3.1:8b` (a name without tag means `:latest`).
    pub name: String,
    /// Maximum context, reported as `model_info["<family>.context_length"]` by `/api/show`.
    pub context_length: u32,
    /// Capabilities reported by `/api/show`: `completion`, `tools`, `vision`, `thinking`, ...
    pub capabilities: Vec<String>,
    /// Architecture family, e.g. `llama`, `qwen3`; also the `model_info` key prefix.
    pub family: String,
    /// Parameter size as Ollama prints it, e.g. `8.0B`.
    pub parameter_size: String,
    /// Quantization level, e.g. `Q4_K_M`.
    pub quantization: String,
    /// Size on disk in bytes (`/api/tags`, `/api/pull` totals).
    pub size_bytes: u64,
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            name: "llama3.1:8b".to_owned(),
            context_length: 131_072,
            capabilities: vec!["completion".to_owned(), "tools".to_owned()],
            family: "llama".to_owned(),
            parameter_size: "8.0B".to_owned(),
            quantization: "Q4_K_M".to_owned(),
            size_bytes: 4_920_753_328,
        }
    }
}

impl ModelSpec {
    /// A model called `name` with the defaults of [`ModelSpec::default`] (tools, 128k context).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Sets the maximum context length.
    pub fn with_context_length(mut self, n: u32) -> Self {
        self.context_length = n;
        self
    }

    /// Replaces the capabilities.
    pub fn with_capabilities<S: Into<String>>(mut self, caps: impl IntoIterator<Item = S>) -> Self {
        self.capabilities = caps.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the architecture family.
    pub fn with_family(mut self, family: impl Into<String>) -> Self {
        self.family = family.into();
        self
    }

    /// Whether the model has `capability`.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }

    /// The name with an explicit tag (`x` becomes `x:latest`).
    pub fn full_name(&self) -> String {
        full_name(&self.name)
    }

    /// A stable fake sha256 digest (64 hex digits) derived from the name.
    pub fn digest(&self) -> String {
        let full = self.full_name();
        let mut out = String::with_capacity(64);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for round in 0u8..4 {
            for b in full.bytes().chain(std::iter::once(round)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            out.push_str(&format!("{h:016x}"));
        }
        out
    }
}

/// `x` -> `x:latest`; names with a tag are unchanged.
pub(crate) fn full_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

/// Configuration of a [`crate::ScriptedServer`]. Build it with `..ServerConfig::default()`
/// so that fields added later do not break your code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Models served from the start (default: `llama3.1:8b` with tools and a 131072 context).
    pub models: Vec<ModelSpec>,
    /// Models that `/api/pull` can fetch; a pulled model joins [`ServerConfig::models`].
    /// Pulling a model in neither list fails like Ollama (`file does not exist`).
    pub pullable_models: Vec<ModelSpec>,
    /// Version reported by `/api/version` (default `0.12.0`).
    pub version: String,
    /// Append every request as a JSON line to this file (`method`, `path`, `body`,
    /// `received_unix_ms`).
    pub record_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            models: vec![ModelSpec::default()],
            pullable_models: Vec::new(),
            version: "0.12.0".to_owned(),
            record_file: None,
        }
    }
}

impl ServerConfig {
    /// The default configuration with these models instead of the default one.
    pub fn with_models(models: Vec<ModelSpec>) -> Self {
        Self {
            models,
            ..Self::default()
        }
    }

    /// Reads a model list from a JSON (`.json`) or YAML file: either a list of models or
    /// `{"models": [...]}`. Missing fields of a model take the [`ModelSpec::default`] values.
    pub fn read_models_file(path: impl AsRef<Path>) -> Result<Vec<ModelSpec>, TestkitError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum ModelsFile {
            List(Vec<ModelSpec>),
            Wrapped { models: Vec<ModelSpec> },
        }
        Ok(
            match crate::script::read_structured::<ModelsFile>(path.as_ref())? {
                ModelsFile::List(m) | ModelsFile::Wrapped { models: m } => m,
            },
        )
    }
}

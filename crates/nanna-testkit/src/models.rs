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

    /// Whether the model may think (Ollama's `thinking` capability).
    pub fn thinks(&self) -> bool {
        self.has_capability("thinking")
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

/// `0.12.6` (or `v0.12.6-rc1`) as numbers.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let text = text.trim().trim_start_matches('v');
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
        parts.next().flatten().unwrap_or(0),
    ))
}

/// The key Ollama finds a model under: host `registry.ollama.ai`, namespace `library` and tag
/// `latest` filled in, compared case-insensitively (types/model/name.go `ParseName`;
/// server/routes.go `getExistingName` matches each part with `strings.EqualFold`).
pub(crate) fn ollama_key(name: &str) -> String {
    let name = name.trim();
    let (rest, tag) = match (name.rfind(':'), name.rfind('/')) {
        (Some(colon), slash) if slash.is_none_or(|slash| colon > slash) => {
            (&name[..colon], &name[colon + 1..])
        }
        _ => (name, ""),
    };
    let mut parts = rest.rsplitn(3, '/');
    let model = parts.next().unwrap_or_default();
    let namespace = parts.next().unwrap_or("library");
    let host = parts.next().unwrap_or("registry.ollama.ai");
    let host = host.split_once("://").map_or(host, |(_, host)| host);
    let tag = if tag.is_empty() { "latest" } else { tag };
    format!("{host}/{namespace}/{model}:{tag}").to_lowercase()
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

/// Which real server the scripted server imitates. Each answers the OpenAI-compatible API
/// in its own way (chunk shapes, reasoning field, tool-call deltas, errors), and only Ollama
/// has the native `/api/*` endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// Ollama: `/api/*` and its `/v1` layer (middleware/openai.go).
    #[default]
    Ollama,
    /// llama.cpp's `llama-server` (tools/server/): `/v1`, `/props`, `/health`.
    #[serde(rename = "llama.cpp", alias = "llamacpp")]
    LlamaCpp,
    /// vLLM's OpenAI server (vllm/entrypoints/openai/): `/v1`, `/version`.
    Vllm,
}

impl Flavor {
    /// Parses `ollama`, `llama.cpp` (or `llamacpp`) or `vllm`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "ollama" => Some(Self::Ollama),
            "llama.cpp" | "llamacpp" | "llama-server" => Some(Self::LlamaCpp),
            "vllm" => Some(Self::Vllm),
            _ => None,
        }
    }
}

/// Configuration of a [`crate::ScriptedServer`]. Build it with `..ServerConfig::default()`
/// (or [`ServerConfig::llama_cpp`], [`ServerConfig::vllm`]) so that fields added later do
/// not break your code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The server imitated (default Ollama).
    pub flavor: Flavor,
    /// Models served from the start (default: `llama3.1:8b` with tools and a 131072 context).
    /// llama.cpp serves one model: the first, listed under its name (an `--alias`, or the
    /// file path when started without one).
    pub models: Vec<ModelSpec>,
    /// Models that `/api/pull` can fetch; a pulled model joins [`ServerConfig::models`].
    /// Pulling a model in neither list fails like Ollama (`file does not exist`).
    pub pullable_models: Vec<ModelSpec>,
    /// Version: Ollama's `/api/version` (default `0.13.0`; features follow it: `index` in
    /// every tool call since 0.12.6, tool-call ids since 0.12.10, think `"max"` since 0.21.3),
    /// llama.cpp's `build_info`, vLLM's `/version`.
    pub version: String,
    /// Ollama: the window a model is loaded with when a request sets no `num_ctx` (the
    /// smallest VRAM tier's 4096, server/routes.go; `OLLAMA_CONTEXT_LENGTH` on a real server).
    pub default_num_ctx: u32,
    /// llama.cpp's `-c` / vLLM's `--max-model-len`: the window served (default: each
    /// model's `context_length`). Longer prompts are refused with the server's own error.
    pub serving_context: Option<u32>,
    /// Ollama: how many `/api/show` requests fail (500) before it answers, as a server
    /// that is still starting or rewriting a manifest does.
    pub show_failures: u32,
    /// Append every request as a JSON line to this file (`method`, `path`, `body`,
    /// `received_unix_ms`).
    pub record_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            flavor: Flavor::Ollama,
            models: vec![ModelSpec::default()],
            pullable_models: Vec::new(),
            version: "0.13.0".to_owned(),
            default_num_ctx: 4096,
            serving_context: None,
            show_failures: 0,
            record_file: None,
        }
    }
}

impl ServerConfig {
    /// A llama.cpp server (`llama-server -m FILE [--alias NAME] -c 4096`) serving `model`.
    pub fn llama_cpp(model: ModelSpec) -> Self {
        Self {
            flavor: Flavor::LlamaCpp,
            models: vec![model],
            version: "b6890-7e4c0a9".to_owned(),
            serving_context: Some(4096),
            ..Self::default()
        }
    }

    /// A vLLM server (`vllm serve MODEL`) serving `model`.
    pub fn vllm(model: ModelSpec) -> Self {
        Self {
            flavor: Flavor::Vllm,
            models: vec![model],
            version: "0.11.0".to_owned(),
            ..Self::default()
        }
    }

    /// Whether the imitated Ollama is at least `version` (`major.minor.patch`; a
    /// version that does not parse counts as the newest).
    pub(crate) fn ollama_at_least(&self, version: &str) -> bool {
        match (parse_version(&self.version), parse_version(version)) {
            (Some(have), Some(want)) => have >= want,
            _ => true,
        }
    }

    /// The window a request for `model` is served with.
    pub(crate) fn serving_context(&self, model: &ModelSpec) -> u32 {
        self.serving_context.unwrap_or(model.context_length)
    }

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

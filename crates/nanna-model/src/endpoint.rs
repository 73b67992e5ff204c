//! [`ProviderKind`] and [`Endpoint`]: which kind of server, where, and how to talk to it.
//! The one place a provider is built from settings (`nanna-config` fills an `Endpoint`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use url::Url;

use crate::ollama::OllamaProvider;
use crate::openai::OpenAiProvider;
use crate::provider::ModelProvider;
use crate::transport::Limits;
use crate::types::DEFAULT_CONTEXT_WINDOW;

/// Which kind of server to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ProviderKind {
    /// Ollama's native API.
    #[default]
    Ollama,
    /// An OpenAI-compatible chat completions API (llama.cpp, vLLM, LM Studio, hosted).
    #[cfg_attr(
        feature = "clap",
        value(
            name = "openai",
            alias = "llama.cpp",
            alias = "llamacpp",
            alias = "vllm"
        )
    )]
    OpenAi,
}

impl ProviderKind {
    /// Every accepted spelling, for messages.
    pub const ACCEPTED: &'static str =
        "`ollama` or `openai` (any OpenAI-compatible server: llama.cpp, vLLM...)";

    /// The name used in files, variables and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::OpenAi => "openai",
        }
    }

    /// The URL its server answers on when nothing says otherwise: Ollama's default
    /// (`OLLAMA_HOST` 127.0.0.1:11434, envconfig/config.go `Host`), llama.cpp's
    /// `llama-server` port 8080 (tools/server/server-context.cpp, `--port`).
    pub fn default_url(self) -> &'static str {
        match self {
            Self::Ollama => "http://localhost:11434",
            Self::OpenAi => "http://localhost:8080/v1",
        }
    }
}

impl FromStr for ProviderKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "ollama" => Ok(Self::Ollama),
            "openai" | "openai-compatible" | "llama.cpp" | "llamacpp" | "vllm" => Ok(Self::OpenAi),
            _ => Err(format!("expected {}", Self::ACCEPTED)),
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ProviderKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ProviderKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d).map_err(|_| {
            serde::de::Error::custom(format!("expected {}", ProviderKind::ACCEPTED))
        })?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks that `text` is a model server's base URL: absolute http(s), with a host, without
/// query or fragment. The reason says what is wrong and how to write it.
pub fn parse_server_url(text: &str) -> Result<Url, String> {
    let text = text.trim();
    let url = Url::parse(text).map_err(|error| {
        format!("not a URL ({error}); write it with its scheme, e.g. http://localhost:11434")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        // `localhost:11434` parses with the scheme `localhost`: suggest the whole text.
        let rest = text.split_once("://").map_or(text, |(_, rest)| rest);
        return Err(format!(
            "the scheme must be http or https, not `{}`; write e.g. http://{rest}",
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

/// Everything a provider needs before its first request: the kind of server, its URL, a
/// bearer token, timeouts and limits, and (Ollama) the defaults for requests that set none.
#[derive(Clone, PartialEq)]
pub struct Endpoint {
    /// Kind of server.
    pub kind: ProviderKind,
    /// Base URL (OpenAI-compatible: with or without its `/v1`).
    pub url: Url,
    /// Bearer token, for hosted endpoints and authenticating proxies.
    pub api_key: Option<String>,
    /// Timeouts and size limits.
    pub limits: Limits,
    /// Ollama: the context window of requests that set none (`num_ctx`).
    pub context_window: u32,
    /// Ollama: how long the model stays loaded after requests that do not say.
    pub keep_alive: Option<String>,
}

impl Endpoint {
    /// An endpoint with default limits and no token.
    pub fn new(kind: ProviderKind, url: Url) -> Self {
        Self {
            kind,
            url,
            api_key: None,
            limits: Limits::default(),
            context_window: DEFAULT_CONTEXT_WINDOW,
            keep_alive: None,
        }
    }

    /// The provider for this endpoint (no network traffic until used).
    pub fn provider(&self) -> Arc<dyn ModelProvider> {
        match self.kind {
            ProviderKind::Ollama => Arc::new(
                OllamaProvider::from_url(&self.url)
                    .with_default_context_window(self.context_window)
                    .with_keep_alive(self.keep_alive.clone())
                    .with_api_key(self.api_key.clone())
                    .with_limits(self.limits),
            ),
            ProviderKind::OpenAi => Arc::new(
                OpenAiProvider::from_url(&self.url)
                    .with_api_key(self.api_key.clone())
                    .with_limits(self.limits),
            ),
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("kind", &self.kind)
            .field("url", &crate::redact::redact_url(self.url.as_str()))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("limits", &self.limits)
            .field("context_window", &self.context_window)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_with_their_aliases() {
        for text in ["ollama", " Ollama "] {
            assert_eq!(text.parse::<ProviderKind>(), Ok(ProviderKind::Ollama));
        }
        for text in [
            "openai",
            "llama.cpp",
            "llamacpp",
            "vllm",
            "openai-compatible",
        ] {
            assert_eq!(text.parse::<ProviderKind>(), Ok(ProviderKind::OpenAi));
        }
        let err = "gpt".parse::<ProviderKind>().unwrap_err();
        assert!(err.contains("`ollama` or `openai`"), "{err}");
    }

    #[test]
    fn server_urls_need_scheme_and_host() {
        assert!(parse_server_url("http://localhost:11434").is_ok());
        assert!(parse_server_url("https://box/ollama").is_ok());
        for bad in [
            "localhost:11434",
            "ftp://x",
            "http://x/?q=1",
            "http://x/#f",
            "not a url",
        ] {
            assert!(parse_server_url(bad).is_err(), "{bad}");
        }
    }
}

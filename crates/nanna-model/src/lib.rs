//! `nanna-model`: the typed chat protocol Nanna Coder speaks, and the providers that
//! carry it to model servers.
//!
//! - [`types`]: messages, tool definitions with a typed JSON Schema, requests, responses,
//!   stream events, model metadata.
//! - [`provider`]: the [`ModelProvider`] trait every backend implements and [`ModelError`],
//!   errors worded so a person can act on them.
//! - [`ollama`]: [`OllamaProvider`], Ollama's native API (always sends `num_ctx`).
//! - [`openai`]: [`OpenAiProvider`], OpenAI-compatible servers (llama.cpp, vLLM, hosted).
//! - [`stream`]: incremental NDJSON and SSE decoders (linear time, bounded frames).
//! - [`redact`]: credentials in URLs replaced before anything is shown.
//! - [`Endpoint`]: the kind of server ([`ProviderKind`]), its URL, token and limits; the
//!   one place a provider is built from settings ([`Endpoint::provider`]).
//!
//! [`collect`] folds a [`ChatStream`] into a [`ChatResponse`].

mod endpoint;
#[doc(hidden)]
pub mod fuzzing;
pub mod ollama;
pub mod openai;
pub mod provider;
pub mod redact;
mod reply;
pub mod stream;
mod transport;
pub mod types;
mod wire;

pub use endpoint::{Endpoint, ProviderKind, parse_server_url};
pub use ollama::OllamaProvider;
pub use openai::{OpenAiProvider, ServerKind};
pub use provider::{
    ChatStream, ModelError, ModelProvider, PullStream, Result, error_chain, missing_model_fix,
};
pub use redact::{redact_url, redact_urls};
pub use reply::collect;
pub use transport::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_REPLY_BYTES, DEFAULT_TURN_TIMEOUT,
    Limits,
};
pub use types::*;

/// Everything a typical caller needs, in one import.
pub mod prelude {
    pub use crate::provider::{ChatStream, ModelError, ModelProvider, PullStream};
    pub use crate::types::*;
}

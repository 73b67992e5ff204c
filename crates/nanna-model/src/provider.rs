//! The [`ModelProvider`] trait and the errors providers report.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;

use crate::types::{
    ChatRequest, ChatResponse, ModelInfo, ModelSummary, PullProgress, RunningModel, StreamEvent,
};

/// A streamed chat reply: events until [`StreamEvent::Done`], or an error.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<StreamEvent>> + Send>>;

/// A stream of model-download progress reports.
pub type PullStream = Pin<Box<dyn Stream<Item = Result<PullProgress>> + Send>>;

/// Result alias for provider operations.
pub type Result<T> = std::result::Result<T, ModelError>;

/// What went wrong talking to a model server, worded so a person can act on it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The server could not be reached at all.
    #[error(
        "cannot reach the model server at {url}: {detail}. Start it with `ollama serve` or \
         `nanna-deploy up`, or point OLLAMA_URL (or --url) at a running server"
    )]
    Unreachable {
        /// The URL that was tried.
        url: String,
        /// The underlying cause.
        detail: String,
    },
    /// The model is not on the server.
    #[error(
        "model `{model}` is not available on the server; {}",
        missing_model_fix(model, *pullable)
    )]
    ModelNotFound {
        /// The missing model.
        model: String,
        /// Whether the server can download it (`nanna pull`): Ollama can, OpenAI-compatible
        /// servers cannot.
        pullable: bool,
    },
    /// Tools were offered to a model that cannot call them.
    #[error(
        "model `{model}` does not support tool calling; pick a model with tool support \
         (see `nanna models`) or run without tools (`--no-tools`)"
    )]
    ToolsUnsupported {
        /// The model.
        model: String,
    },
    /// The reply broke the request's [`ToolChoice`](crate::types::ToolChoice), which the
    /// server does not enforce itself (Ollama ignores `tool_choice`; the client checks it).
    #[error(
        "model `{model}` did not follow the request's tool choice: {detail}; the server cannot \
         enforce it, so retry, rephrase the request, or pick a model that calls tools reliably"
    )]
    ToolChoiceIgnored {
        /// The model.
        model: String,
        /// What the reply did instead.
        detail: String,
    },
    /// The server answered with an HTTP error.
    #[error("the model server answered HTTP {status}: {message}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// The server's own message.
        message: String,
    },
    /// The server reported an error in the middle of a stream.
    #[error("the model server reported an error: {message}")]
    Server {
        /// The server's own message.
        message: String,
    },
    /// No answer in time.
    #[error(
        "the model server did not answer within {} ({operation}); if the server is only slow, \
         raise {setting}",
        seconds(*after)
    )]
    Timeout {
        /// What timed out.
        operation: String,
        /// How long we waited.
        after: Duration,
        /// The setting that sets this limit, as a person would change it.
        setting: String,
    },
    /// The server sent more than a size limit allows; the reply was stopped there.
    #[error(
        "the model server sent {what} larger than the limit of {} and was stopped; if the \
         server is trusted and such replies are expected, raise {setting}",
        bytes(*limit)
    )]
    TooLarge {
        /// What was too large (a line, an event, a whole reply).
        what: String,
        /// The limit, in bytes.
        limit: u64,
        /// The setting that sets this limit, as a person would change it.
        setting: String,
    },
    /// The server sent something that does not follow its protocol.
    #[error("malformed response from the model server: {detail}")]
    Malformed {
        /// What was wrong.
        detail: String,
    },
    /// The connection broke before the reply was complete.
    #[error("the connection to the model server closed before the reply was complete: {detail}")]
    Interrupted {
        /// The underlying cause.
        detail: String,
    },
    /// The operation does not exist on this kind of server.
    #[error("{operation} is not supported by the {provider} provider")]
    Unsupported {
        /// The operation.
        operation: String,
        /// The provider's name.
        provider: String,
    },
}

/// `after` in whole seconds (or milliseconds below one second), for messages.
fn seconds(after: Duration) -> String {
    if after >= Duration::from_secs(1) {
        format!("{} s", after.as_secs())
    } else {
        format!("{} ms", after.as_millis())
    }
}

/// `n` bytes in the largest binary unit that divides it, for messages.
pub(crate) fn bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// How to get a missing `model`: `nanna pull` where the server can download models, else
/// the server's own tooling or another model.
pub fn missing_model_fix(model: &str, pullable: bool) -> String {
    if pullable {
        format!("download it with `nanna pull {model}`, or pick one from `nanna models`")
    } else {
        "load it with the server's own tooling, or pick one from `nanna models` (--model)"
            .to_string()
    }
}

/// An error and its causes in one line, joined by `: ` (reqwest's and hyper's own messages
/// omit the OS error underneath), a cause already quoted left out, credentials in any URL
/// redacted.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    crate::redact::redact_urls(&text)
}

/// A backend that serves chat models: Ollama's native API, an OpenAI-compatible server, or
/// a test double.
#[async_trait]
pub trait ModelProvider: Send + Sync {
    /// Short name of the provider (`ollama`, `openai`).
    fn name(&self) -> &str;

    /// Base URL of the server.
    fn base_url(&self) -> &str;

    /// Sends a request and waits for the whole reply.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse>;

    /// Sends a request and streams the reply as it is generated.
    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream>;

    /// Lists the models the server has.
    async fn list_models(&self) -> Result<Vec<ModelSummary>>;

    /// Details of one model: context length, capabilities.
    async fn model_info(&self, model: &str) -> Result<ModelInfo>;

    /// Checks the server answers.
    async fn health(&self) -> Result<()>;

    /// The server's version string.
    async fn version(&self) -> Result<String>;

    /// Downloads a model, reporting progress.
    async fn pull(&self, model: &str) -> Result<PullStream>;

    /// The server's own count of the prompt `request` would send (chat template applied,
    /// tools included), where the server has a tokenizer endpoint; `Ok(None)` where it has
    /// none (Ollama). Cheap next to evaluating the prompt: nothing is generated.
    async fn count_prompt_tokens(&self, _request: &ChatRequest) -> Result<Option<u32>> {
        Ok(None)
    }

    /// Models currently loaded in memory.
    async fn running_models(&self) -> Result<Vec<RunningModel>> {
        Err(ModelError::Unsupported {
            operation: "listing running models".into(),
            provider: self.name().into(),
        })
    }
}

//! HTTP plumbing shared by the providers: a lazily built client, timeouts and size limits,
//! and the mapping of transport failures and HTTP error bodies to [`ModelError`].

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::provider::{ModelError, Result, error_chain};
use crate::redact::redact_url;

/// Default time allowed to open a TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time allowed between two parts of a reply (and before the first one). Generous
/// because a local model may spend minutes on prefill before its first token.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Default time allowed for one whole exchange (a model turn: the request, the wait for
/// the first token and the whole reply). Bounds a server that keeps the connection busy
/// without finishing, e.g. one byte per second, which the idle timeout never catches.
pub const DEFAULT_TURN_TIMEOUT: Duration = Duration::from_secs(600);

/// Default largest reply body accepted: 64 MiB. A 32k-token answer streamed token by token
/// is about 5 MB of NDJSON; the limit bounds memory and the size of the session line a
/// runaway or hostile server could cause.
pub const DEFAULT_MAX_REPLY_BYTES: u64 = 64 * 1024 * 1024;

/// Largest error body quoted in a message.
const MAX_ERROR_TEXT: usize = 500;

/// Most bytes of an HTTP error body read (the message is in the first few hundred).
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// How long and how much a provider waits for and accepts from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time allowed to open a TCP connection (`connect_timeout_secs`).
    pub connect_timeout: Duration,
    /// Time allowed between two parts of a reply, and before the first one
    /// (`idle_timeout_secs`). A non-streamed `chat` receives nothing until generation ends,
    /// so for it this bounds the whole reply: prefer `chat_stream` for long generations.
    pub idle_timeout: Duration,
    /// Time allowed for a whole exchange, from sending the request to the end of the reply
    /// (`turn_timeout_secs`). Model downloads are exempt.
    pub turn_timeout: Duration,
    /// Largest NDJSON line or SSE event, in bytes (`max_line_bytes`).
    pub max_line_bytes: usize,
    /// Largest reply body, in bytes (`max_reply_bytes`). Model downloads are exempt.
    pub max_reply_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            turn_timeout: DEFAULT_TURN_TIMEOUT,
            max_line_bytes: crate::stream::DEFAULT_MAX_FRAME,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
        }
    }
}

/// How the settings are named in messages: the file key, its variable and its flag.
pub(crate) const IDLE_TIMEOUT_SETTING: &str =
    "idle_timeout_secs (NANNA_IDLE_TIMEOUT, --idle-timeout)";
pub(crate) const CONNECT_TIMEOUT_SETTING: &str = "connect_timeout_secs (NANNA_CONNECT_TIMEOUT)";
pub(crate) const TURN_TIMEOUT_SETTING: &str =
    "turn_timeout_secs (NANNA_TURN_TIMEOUT, --turn-timeout)";
pub(crate) const MAX_LINE_SETTING: &str = "max_line_bytes (NANNA_MAX_LINE_BYTES)";
pub(crate) const MAX_REPLY_SETTING: &str = "max_reply_bytes (NANNA_MAX_REPLY_BYTES)";

/// An HTTP endpoint with its client, timeouts and limits.
#[derive(Debug)]
pub(crate) struct Transport {
    /// Base URL without a trailing slash (credentials included: reqwest turns them into a
    /// basic-auth header).
    base: String,
    /// `base` with any credentials replaced, for messages.
    shown: String,
    client: OnceLock<reqwest::Client>,
    pub(crate) limits: Limits,
    pub(crate) api_key: Option<String>,
}

/// A successful response head, with the deadline of its exchange.
pub(crate) struct Answer {
    response: reqwest::Response,
    deadline: Instant,
}

impl Transport {
    /// A transport for `base_url`, which must be an `http` or `https` URL.
    #[cfg(test)]
    pub(crate) fn new(base_url: &str) -> Result<Self> {
        Ok(Self::from_url(&parse_base_url(base_url)?))
    }

    /// A transport for a validated `http`/`https` URL.
    pub(crate) fn from_url(url: &Url) -> Self {
        let base = url.as_str().trim_end_matches('/').to_owned();
        Self {
            shown: redact_url(&base),
            base,
            client: OnceLock::new(),
            limits: Limits::default(),
            api_key: None,
        }
    }

    /// The base URL, without a trailing slash (with credentials, if any: never print it).
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The base URL for messages: credentials redacted.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// `base` + `path` (`path` starts with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The HTTP client, built on first use.
    ///
    /// Plain-HTTP endpoints (the usual local server) get a client that does not load the
    /// system's root certificates: that load costs milliseconds at start-up and fails on
    /// systems without a CA bundle, and such a client never needs it.
    fn client(&self) -> Result<&reqwest::Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.limits.connect_timeout)
            .tcp_nodelay(true)
            .user_agent(concat!("nanna/", env!("CARGO_PKG_VERSION")));
        if self.base.starts_with("http://") {
            builder = builder.tls_certs_only(std::iter::empty());
        }
        let client = builder.build().map_err(|error| ModelError::Unreachable {
            url: self.shown.clone(),
            detail: format!("could not set up the HTTP client: {}", error_chain(&error)),
        })?;
        Ok(self.client.get_or_init(|| client))
    }

    /// Starts a request to `path`.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder> {
        self.request_to(method, &self.url(path))
    }

    /// Starts a request to an absolute `url` (on the same server).
    pub(crate) fn request_to(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder> {
        let mut builder = self.client()?.request(method, url);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        Ok(builder)
    }

    /// A POST of `body` as JSON.
    pub(crate) fn post_json<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<reqwest::RequestBuilder> {
        let bytes = serde_json::to_vec(body).map_err(|error| ModelError::Malformed {
            detail: format!("could not encode the request: {error}"),
        })?;
        Ok(self
            .request(reqwest::Method::POST, path)?
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes))
    }

    /// Sends a request and waits (up to the idle timeout and the exchange's deadline) for
    /// the response head. HTTP errors are returned as [`HttpFailure`] for the provider to
    /// classify.
    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
        operation: &str,
    ) -> Result<std::result::Result<Answer, HttpFailure>> {
        let deadline = Instant::now() + self.limits.turn_timeout;
        let waited = Waited::start(self.limits.idle_timeout, Some(deadline));
        let response = match tokio::time::timeout_at(waited.end, request.send()).await {
            Err(_) => {
                return Err(waited.expired(
                    &format!("{operation}: waiting for the server to start its answer"),
                    self.limits.turn_timeout,
                ));
            }
            Ok(Err(error)) => return Err(self.map_send_error(&error, operation)),
            Ok(Ok(response)) => response,
        };
        if response.status().is_success() {
            return Ok(Ok(Answer { response, deadline }));
        }
        let status = response.status().as_u16();
        let mut body = self.body(Answer { response, deadline }, operation);
        let bytes = body.read_prefix(MAX_ERROR_BODY).await.unwrap_or_default();
        Ok(Err(HttpFailure {
            status,
            message: error_message(status, &bytes),
        }))
    }

    /// The body of `answer`, bounded by the idle timeout, the exchange's deadline and the
    /// reply size limit.
    pub(crate) fn body(&self, answer: Answer, operation: &str) -> Body {
        Body {
            response: answer.response,
            idle_timeout: self.limits.idle_timeout,
            deadline: Some((answer.deadline, self.limits.turn_timeout)),
            limit: Some(self.limits.max_reply_bytes),
            received: 0,
            operation: operation.to_owned(),
        }
    }

    /// Sends a chat request and returns its body, a failure mapped by `classify` (each
    /// server says "no such model" its own way).
    pub(crate) async fn open(
        &self,
        request: reqwest::RequestBuilder,
        operation: &str,
        classify: impl FnOnce(HttpFailure) -> ModelError,
    ) -> Result<Body> {
        let answer = self.send(request, operation).await?.map_err(classify)?;
        Ok(self.body(answer, operation))
    }

    /// The body of `answer` bounded by the idle timeout only: a model download may take
    /// hours and stream any amount of progress.
    pub(crate) fn unbounded_body(&self, answer: Answer, operation: &str) -> Body {
        Body {
            deadline: None,
            limit: None,
            ..self.body(answer, operation)
        }
    }

    /// Sends a request and decodes its JSON reply; HTTP errors become [`ModelError::Http`].
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        operation: &str,
    ) -> Result<T> {
        let answer = self
            .send(request, operation)
            .await?
            .map_err(HttpFailure::into_error)?;
        let bytes = self.body(answer, operation).read_to_end().await?;
        decode_json(&bytes, operation)
    }

    fn map_send_error(&self, error: &reqwest::Error, operation: &str) -> ModelError {
        if error.is_timeout() {
            ModelError::Timeout {
                operation: format!("{operation}: connecting to {}", self.shown),
                after: self.limits.connect_timeout,
                setting: CONNECT_TIMEOUT_SETTING.into(),
            }
        } else if error.is_connect() || error.is_builder() {
            ModelError::Unreachable {
                url: self.shown.clone(),
                detail: error_chain(error),
            }
        } else {
            ModelError::Interrupted {
                detail: format!("{operation}: {}", error_chain(error)),
            }
        }
    }
}

/// An HTTP error status with the server's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpFailure {
    pub(crate) status: u16,
    pub(crate) message: String,
}

impl HttpFailure {
    /// The error for a failed request about `model`, by what the servers answer: a missing
    /// model (Ollama: 404 `model 'x' not found`, server/routes.go; vLLM: 404 ``The model `x`
    /// does not exist.``, serving_engine.py `_check_model`), a model without tool calling
    /// (Ollama: 400 `... does not support tools`; llama.cpp without `--jinja`: `tools param
    /// requires --jinja flag`, from `oaicompat_chat_params_parse`, as a 500 in some builds),
    /// a missing or wrong key (401), else the generic error. `pullable`: the server can
    /// download the model.
    pub(crate) fn about_model(self, model: &str, pullable: bool) -> ModelError {
        let lower = self.message.to_lowercase();
        if self.status == 404
            && lower.contains("model")
            && (lower.contains("not found") || lower.contains("does not exist"))
        {
            ModelError::ModelNotFound {
                model: model.to_owned(),
                pullable,
            }
        } else if lower.contains("does not support tools") || lower.contains("tools param requires")
        {
            ModelError::ToolsUnsupported {
                model: model.to_owned(),
            }
        } else if self.status == 401 {
            ModelError::Http {
                status: 401,
                message: format!(
                    "{} (set NANNA_API_KEY or OPENAI_API_KEY to the server's key)",
                    self.message
                ),
            }
        } else {
            self.into_error()
        }
    }

    /// The generic error for this failure.
    pub(crate) fn into_error(self) -> ModelError {
        ModelError::Http {
            status: self.status,
            message: self.message,
        }
    }
}

/// When a wait ends, and which limit ends it.
struct Waited {
    end: Instant,
    /// The exchange's deadline comes before the idle timeout.
    by_deadline: bool,
    idle: Duration,
}

impl Waited {
    fn start(idle: Duration, deadline: Option<Instant>) -> Self {
        let idle_end = Instant::now() + idle;
        match deadline {
            Some(deadline) if deadline <= idle_end => Self {
                end: deadline,
                by_deadline: true,
                idle,
            },
            _ => Self {
                end: idle_end,
                by_deadline: false,
                idle,
            },
        }
    }

    /// The error for a wait that ran out while doing `operation`.
    fn expired(&self, operation: &str, turn_timeout: Duration) -> ModelError {
        if self.by_deadline {
            ModelError::Timeout {
                operation: format!(
                    "{operation}; the per-turn deadline counts the whole exchange, however busy \
                     the connection"
                ),
                after: turn_timeout,
                setting: TURN_TIMEOUT_SETTING.into(),
            }
        } else {
            ModelError::Timeout {
                operation: operation.to_owned(),
                after: self.idle,
                setting: IDLE_TIMEOUT_SETTING.into(),
            }
        }
    }
}

/// A response body read chunk by chunk, each chunk within the idle timeout, the whole
/// within the exchange's deadline and size limit.
pub(crate) struct Body {
    response: reqwest::Response,
    idle_timeout: Duration,
    /// The exchange's deadline and the timeout it came from.
    deadline: Option<(Instant, Duration)>,
    /// Most bytes accepted.
    limit: Option<u64>,
    received: u64,
    operation: String,
}

impl Body {
    /// The next chunk, `None` at the end of the body.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>> {
        let waited = Waited::start(self.idle_timeout, self.deadline.map(|(at, _)| at));
        match tokio::time::timeout_at(waited.end, self.response.chunk()).await {
            Err(_) => Err(waited.expired(
                &format!("{}: waiting for the next part of the reply", self.operation),
                self.deadline.map_or(Duration::ZERO, |(_, timeout)| timeout),
            )),
            Ok(Err(error)) => Err(ModelError::Interrupted {
                detail: format!("{}: {}", self.operation, error_chain(&error)),
            }),
            Ok(Ok(Some(chunk))) => {
                self.received += chunk.len() as u64;
                match self.limit {
                    Some(limit) if self.received > limit => Err(ModelError::TooLarge {
                        what: format!("a reply ({})", self.operation),
                        limit,
                        setting: MAX_REPLY_SETTING.into(),
                    }),
                    _ => Ok(Some(chunk)),
                }
            }
            Ok(Ok(None)) => Ok(None),
        }
    }

    /// The whole remaining body.
    pub(crate) async fn read_to_end(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// At most about `max` bytes of the body; the rest is not read.
    async fn read_prefix(&mut self, max: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while (out.len() as u64) < max {
            match self.chunk().await? {
                Some(chunk) => out.extend_from_slice(&chunk),
                None => break,
            }
        }
        Ok(out)
    }
}

/// Parses a JSON reply, naming the operation when it is not what we expect.
pub(crate) fn decode_json<T: DeserializeOwned>(bytes: &[u8], operation: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|error| ModelError::Malformed {
        detail: format!(
            "{operation}: unexpected reply ({error}): {}",
            excerpt(&String::from_utf8_lossy(bytes))
        ),
    })
}

/// Validates a base URL: absolute, `http` or `https`, with a host.
pub(crate) fn parse_base_url(base_url: &str) -> Result<Url> {
    crate::endpoint::parse_server_url(base_url).map_err(|detail| ModelError::Unreachable {
        url: redact_url(base_url),
        detail: crate::redact::redact_urls(&detail),
    })
}

/// The server's own error text from an error body: `{"error": "..."}` (Ollama),
/// `{"error": {"message": "..."}}` (OpenAI), `{"message": "..."}`, or the raw text.
pub(crate) fn error_message(status: u16, body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let text = match value.get("error") {
            Some(serde_json::Value::String(text)) => Some(text.clone()),
            Some(error @ serde_json::Value::Object(_)) => error
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
                .or_else(|| Some(error.to_string())),
            _ => value
                .get("message")
                .or_else(|| value.get("detail"))
                .and_then(|m| m.as_str())
                .map(str::to_owned),
        };
        if let Some(text) = text {
            return excerpt(&text);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no message")
            .to_owned()
    } else {
        excerpt(text)
    }
}

/// At most [`MAX_ERROR_TEXT`] characters of `text`.
pub(crate) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_reads_every_common_shape() {
        assert_eq!(
            error_message(404, br#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(
            error_message(
                400,
                br#"{"error":{"message":"bad","type":"invalid_request_error"}}"#
            ),
            "bad"
        );
        assert_eq!(error_message(500, br#"{"message":"boom"}"#), "boom");
        assert_eq!(error_message(502, b"upstream down\n"), "upstream down");
        assert_eq!(error_message(503, b""), "Service Unavailable");
    }

    #[test]
    fn long_error_bodies_are_cut() {
        let long = "x".repeat(2000);
        assert_eq!(
            error_message(500, long.as_bytes()).chars().count(),
            MAX_ERROR_TEXT + 1
        );
    }

    #[test]
    fn base_url_validation() {
        assert!(parse_base_url("http://localhost:11434").is_ok());
        assert!(parse_base_url("https://api.example.com/v1").is_ok());
        for bad in [
            "localhost:11434",
            "ftp://x",
            "http://",
            "not a url",
            "http://h/?q=1",
        ] {
            let error = parse_base_url(bad).expect_err(bad);
            assert!(
                matches!(&error, ModelError::Unreachable { url, .. } if url == bad),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn trailing_slash_is_dropped() {
        let transport = Transport::new("http://localhost:11434/").expect("valid");
        assert_eq!(
            transport.url("/api/chat"),
            "http://localhost:11434/api/chat"
        );
    }
}

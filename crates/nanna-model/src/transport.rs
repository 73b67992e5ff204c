//! HTTP plumbing shared by the providers: a lazily built client, timeouts, and the mapping
//! of transport failures and HTTP error bodies to [`ModelError`].

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::provider::{ModelError, Result};

/// Default time allowed to open a TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time allowed between two parts of a reply (and before the first one). Generous
/// because a local model may spend minutes on prefill before its first token.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Largest error body quoted in a message.
const MAX_ERROR_TEXT: usize = 500;

/// An HTTP endpoint with its client and timeouts.
#[derive(Debug)]
pub(crate) struct Transport {
    /// Base URL without a trailing slash.
    base: String,
    client: OnceLock<reqwest::Client>,
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) api_key: Option<String>,
}

impl Transport {
    /// A transport for `base_url`, which must be an `http` or `https` URL.
    #[cfg(test)]
    pub(crate) fn new(base_url: &str) -> Result<Self> {
        Ok(Self::from_url(&parse_base_url(base_url)?))
    }

    /// A transport for a validated `http`/`https` URL.
    pub(crate) fn from_url(url: &Url) -> Self {
        Self {
            base: url.as_str().trim_end_matches('/').to_owned(),
            client: OnceLock::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            api_key: None,
        }
    }

    /// The base URL, without a trailing slash.
    pub(crate) fn base(&self) -> &str {
        &self.base
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
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .user_agent(concat!("nanna/", env!("CARGO_PKG_VERSION")));
        if self.base.starts_with("http://") {
            builder = builder.tls_certs_only(std::iter::empty());
        }
        let client = builder.build().map_err(|error| ModelError::Unreachable {
            url: self.base.clone(),
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

    /// Sends a request and waits (up to the idle timeout) for the response head.
    /// HTTP errors are returned as [`HttpFailure`] for the provider to classify.
    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
        operation: &str,
    ) -> Result<std::result::Result<reqwest::Response, HttpFailure>> {
        let response = match tokio::time::timeout(self.idle_timeout, request.send()).await {
            Err(_) => {
                return Err(ModelError::Timeout {
                    operation: format!("{operation}: waiting for the server to start its answer"),
                    after: self.idle_timeout,
                });
            }
            Ok(Err(error)) => return Err(self.map_send_error(&error, operation)),
            Ok(Ok(response)) => response,
        };
        if response.status().is_success() {
            return Ok(Ok(response));
        }
        let status = response.status().as_u16();
        let mut body = Body::new(response, self.idle_timeout, operation);
        let bytes = body.read_to_end().await.unwrap_or_default();
        Ok(Err(HttpFailure {
            status,
            message: error_message(status, &bytes),
        }))
    }

    /// Sends a request and decodes its JSON reply; HTTP errors become [`ModelError::Http`].
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        operation: &str,
    ) -> Result<T> {
        let response = self
            .send(request, operation)
            .await?
            .map_err(HttpFailure::into_error)?;
        let bytes = Body::new(response, self.idle_timeout, operation)
            .read_to_end()
            .await?;
        decode_json(&bytes, operation)
    }

    fn map_send_error(&self, error: &reqwest::Error, operation: &str) -> ModelError {
        if error.is_timeout() {
            ModelError::Timeout {
                operation: format!("{operation}: connecting to {}", self.base),
                after: self.connect_timeout,
            }
        } else if error.is_connect() || error.is_builder() {
            ModelError::Unreachable {
                url: self.base.clone(),
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
    /// The generic error for this failure.
    pub(crate) fn into_error(self) -> ModelError {
        ModelError::Http {
            status: self.status,
            message: self.message,
        }
    }
}

/// A response body read chunk by chunk, each chunk within the idle timeout.
pub(crate) struct Body {
    response: reqwest::Response,
    idle_timeout: Duration,
    operation: String,
}

impl Body {
    pub(crate) fn new(
        response: reqwest::Response,
        idle_timeout: Duration,
        operation: &str,
    ) -> Self {
        Self {
            response,
            idle_timeout,
            operation: operation.to_owned(),
        }
    }

    /// The next chunk, `None` at the end of the body.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>> {
        match tokio::time::timeout(self.idle_timeout, self.response.chunk()).await {
            Err(_) => Err(ModelError::Timeout {
                operation: format!("{}: waiting for the next part of the reply", self.operation),
                after: self.idle_timeout,
            }),
            Ok(Err(error)) => Err(ModelError::Interrupted {
                detail: format!("{}: {}", self.operation, error_chain(&error)),
            }),
            Ok(Ok(chunk)) => Ok(chunk),
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
    let invalid = |detail: String| ModelError::Unreachable {
        url: base_url.to_owned(),
        detail,
    };
    let url = Url::parse(base_url.trim()).map_err(|error| {
        invalid(format!(
            "not a valid URL ({error}); expected e.g. http://localhost:11434"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "unsupported scheme `{}`; use http:// or https://",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "a server base URL takes no query or fragment".into(),
        ));
    }
    Ok(url)
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

/// An error and its causes, joined by `: ` (reqwest's own message omits the OS error).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
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
    text
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

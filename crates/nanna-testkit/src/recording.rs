//! Recording of every request the server receives, for assertions.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::error::TestkitError;

/// One request received by the server.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without query, e.g. `/api/chat`.
    pub path: String,
    /// The body parsed as JSON; `Null` when empty, a JSON string when it was not JSON.
    pub body: Value,
    /// When the server received it.
    pub received_at: Instant,
}

static EMPTY: Vec<Value> = Vec::new();

impl RecordedRequest {
    /// Whether this is a chat request (`/api/chat` or `/v1/chat/completions`).
    pub fn is_chat(&self) -> bool {
        is_chat_path(&self.path)
    }

    /// The `model` field.
    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(Value::as_str)
    }

    /// The `messages` array (empty when absent).
    pub fn messages(&self) -> &[Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .unwrap_or(&EMPTY)
    }

    /// The `tools` array (empty when absent).
    pub fn tools(&self) -> &[Value] {
        self.body
            .get("tools")
            .and_then(Value::as_array)
            .unwrap_or(&EMPTY)
    }

    /// The `options` object (Ollama), if any.
    pub fn options(&self) -> Option<&Value> {
        self.body.get("options")
    }

    /// `options.num_ctx` (Ollama), if set.
    pub fn num_ctx(&self) -> Option<u64> {
        self.options()?.get("num_ctx")?.as_u64()
    }

    /// The effective stream flag (absent means `true` on Ollama's API, `false` on OpenAI's).
    pub fn stream(&self) -> bool {
        self.body
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(!self.path.starts_with("/v1/"))
    }
}

pub(crate) fn is_chat_path(path: &str) -> bool {
    path == "/api/chat" || path == "/v1/chat/completions"
}

/// Keeps recorded requests in memory and optionally appends them to a file.
pub(crate) struct Recorder {
    requests: Mutex<Vec<RecordedRequest>>,
    sink: Option<Mutex<File>>,
    arrived: tokio::sync::Notify,
}

impl Recorder {
    pub(crate) fn new(file: Option<&Path>) -> Result<Self, TestkitError> {
        let sink = match file {
            None => None,
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| TestkitError::ReadFile {
                        path: path.display().to_string(),
                        source,
                    })?,
            )),
        };
        Ok(Self {
            requests: Mutex::new(Vec::new()),
            sink,
            arrived: tokio::sync::Notify::new(),
        })
    }

    /// Parses and records a request; returns the parsed body.
    pub(crate) fn record(&self, method: &str, path: &str, raw: &[u8]) -> Value {
        let received_at = Instant::now();
        let body = parse_body(raw);
        if let Some(sink) = &self.sink {
            let unix_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            let line = json!({
                "method": method,
                "path": path,
                "body": body,
                "received_unix_ms": unix_ms,
            });
            let mut text = line.to_string();
            text.push('\n');
            let mut file = sink.lock().unwrap_or_else(|p| p.into_inner());
            // A failing record file must not break the server; the test reading it will notice.
            let _ = file.write_all(text.as_bytes());
        }
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests.push(RecordedRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            body: body.clone(),
            received_at,
        });
        drop(requests);
        self.arrived.notify_waiters();
        body
    }

    /// Waits until `done` holds for the recorded requests, or `timeout` passes.
    pub(crate) async fn wait_until(
        &self,
        timeout: std::time::Duration,
        done: impl Fn(&[RecordedRequest]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&self.requests.lock().unwrap_or_else(|p| p.into_inner())) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.requests.lock().unwrap_or_else(|p| p.into_inner()));
            }
        }
    }

    pub(crate) fn all(&self) -> Vec<RecordedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn clear(&self) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

fn parse_body(raw: &[u8]) -> Value {
    if raw.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()))
}

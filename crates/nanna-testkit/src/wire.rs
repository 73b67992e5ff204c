//! Building responses: plans derived from turns, streamed bodies with faults, token estimates.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use crate::script::{Fault, Turn};

/// Content type of JSON bodies, as Ollama sends it.
pub(crate) const JSON: &str = "application/json; charset=utf-8";
/// Content type of Ollama's streamed NDJSON bodies.
pub(crate) const NDJSON: &str = "application/x-ndjson";
/// Content type of OpenAI's server-sent events.
pub(crate) const SSE: &str = "text/event-stream";

/// How one turn is to be served, faults resolved.
pub(crate) struct Plan<'a> {
    pub(crate) turn: &'a Turn,
    pub(crate) first_delay: Duration,
    pub(crate) chunk_delay: Duration,
    pub(crate) byte_delay: Duration,
    pub(crate) http_error: Option<(StatusCode, &'a str)>,
    pub(crate) close_after: Option<usize>,
    pub(crate) malformed: bool,
    pub(crate) error_line: Option<&'a str>,
    pub(crate) busy: bool,
    pub(crate) out_of_memory: bool,
    /// Whether the reply carries the turn's thinking (the model thinks and the request did
    /// not turn thinking off); set by each API.
    pub(crate) thinking: bool,
    pub(crate) done_reason: &'a str,
    pub(crate) prompt_tokens: u64,
    pub(crate) output_tokens: u64,
}

impl<'a> Plan<'a> {
    pub(crate) fn new(turn: &'a Turn, request: &Value) -> Self {
        let mut plan = Plan {
            turn,
            first_delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            byte_delay: Duration::ZERO,
            http_error: None,
            close_after: None,
            malformed: false,
            error_line: None,
            busy: false,
            out_of_memory: false,
            thinking: true,
            done_reason: turn.done_reason.as_deref().unwrap_or("stop"),
            prompt_tokens: turn
                .prompt_eval_count
                .unwrap_or_else(|| estimate_prompt_tokens(request)),
            output_tokens: turn
                .eval_count
                .unwrap_or_else(|| estimate_output_tokens(turn)),
        };
        for fault in &turn.faults {
            match fault {
                Fault::HttpError { status, message } => {
                    let status =
                        StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    plan.http_error = Some((status, message));
                }
                Fault::CloseAfterChunks(n) => plan.close_after = Some(*n),
                Fault::MalformedLine => plan.malformed = true,
                Fault::ErrorLineMidStream(m) => plan.error_line = Some(m),
                Fault::Length => plan.done_reason = "length",
                Fault::Delay(d) => plan.first_delay += *d,
                Fault::ChunkDelay(d) => plan.chunk_delay += *d,
                Fault::Busy => plan.busy = true,
                Fault::OutOfMemory => plan.out_of_memory = true,
                Fault::ByteDelay(d) => plan.byte_delay += *d,
            }
        }
        plan
    }

    /// The thinking pieces to send.
    pub(crate) fn thinking(&self) -> &'a [String] {
        if self.thinking {
            &self.turn.thinking
        } else {
            &[]
        }
    }

    /// Sleeps for the first-byte delay, if any.
    pub(crate) async fn wait_first_byte(&self) {
        if !self.first_delay.is_zero() {
            tokio::time::sleep(self.first_delay).await;
        }
    }

    /// A fresh body builder honouring this plan's chunk delay and connection close.
    pub(crate) fn body(&self) -> Steps {
        Steps {
            steps: Vec::with_capacity(self.turn.chunks.len() + 4),
            sent: 0,
            close_after: self.close_after,
            chunk_delay: self.chunk_delay,
            byte_delay: self.byte_delay,
            closed: false,
        }
    }
}

/// One step of a streamed body.
enum Step {
    Data(Bytes),
    Sleep(Duration),
    Abort,
}

/// A streamed body under construction: data pieces, delays, an abrupt close.
pub(crate) struct Steps {
    steps: Vec<Step>,
    sent: usize,
    close_after: Option<usize>,
    chunk_delay: Duration,
    /// Send each piece one byte at a time with this pause after every byte.
    byte_delay: Duration,
    closed: bool,
}

impl Steps {
    /// A body without faults.
    pub(crate) fn plain() -> Self {
        Steps {
            steps: Vec::new(),
            sent: 0,
            close_after: None,
            chunk_delay: Duration::ZERO,
            byte_delay: Duration::ZERO,
            closed: false,
        }
    }

    /// Adds one line/event, unless the connection is to be closed before it.
    pub(crate) fn push(&mut self, data: impl Into<Bytes>) {
        if self.closed {
            return;
        }
        if self.close_after == Some(self.sent) {
            self.abort();
            return;
        }
        if self.sent > 0 && !self.chunk_delay.is_zero() {
            self.steps.push(Step::Sleep(self.chunk_delay));
        }
        let data: Bytes = data.into();
        if self.byte_delay.is_zero() {
            self.steps.push(Step::Data(data));
        } else {
            for i in 0..data.len() {
                self.steps.push(Step::Data(data.slice(i..=i)));
                self.steps.push(Step::Sleep(self.byte_delay));
            }
        }
        self.sent += 1;
    }

    /// Adds the final line/event; when a close fault is planned, closes instead.
    pub(crate) fn push_final(&mut self, data: impl Into<Bytes>) {
        if self.close_after.is_some() {
            self.abort();
        } else {
            self.push(data);
        }
    }

    /// Ends the body here, normally.
    pub(crate) fn end(&mut self) {
        self.closed = true;
    }

    /// Ends the body with an abrupt connection close.
    pub(crate) fn abort(&mut self) {
        if !self.closed {
            self.steps.push(Step::Abort);
            self.closed = true;
        }
    }

    /// Turns the steps into a response with status 200.
    pub(crate) fn into_response(self, content_type: &'static str) -> Response {
        let simple = self.steps.iter().all(|s| matches!(s, Step::Data(_)));
        let body = if simple {
            Body::from_stream(futures::stream::iter(self.steps.into_iter().filter_map(
                |s| match s {
                    Step::Data(b) => Some(Ok::<_, io::Error>(b)),
                    Step::Sleep(_) | Step::Abort => None,
                },
            )))
        } else {
            Body::from_stream(futures::stream::unfold(
                self.steps.into_iter(),
                |mut it| async move {
                    loop {
                        match it.next()? {
                            Step::Data(b) => return Some((Ok(b), it)),
                            Step::Sleep(d) => tokio::time::sleep(d).await,
                            Step::Abort => {
                                // Let the server flush what was sent so far: the client must
                                // see the partial body, then the broken connection.
                                tokio::task::yield_now().await;
                                tokio::time::sleep(Duration::from_millis(2)).await;
                                return Some((
                                    Err(io::Error::new(
                                        io::ErrorKind::ConnectionAborted,
                                        "scripted fault: connection closed mid-stream",
                                    )),
                                    it,
                                ));
                            }
                        }
                    }
                },
            ))
        };
        (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
    }
}

/// How an OpenAI-style request wants its reply: `None` for one object, `Some(include_usage)`
/// for a stream (`stream: true`; `stream_options.include_usage` asks for the usage chunk).
pub(crate) fn openai_stream(request: &Value) -> Option<bool> {
    request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .then(|| {
            request
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
}

/// A complete JSON response.
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, JSON)],
        serde_json::to_vec(value).unwrap_or_default(),
    )
        .into_response()
}

/// A JSON value as one NDJSON line.
pub(crate) fn ndjson_line(value: &Value) -> Bytes {
    let mut out = serde_json::to_vec(value).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// A JSON value as one server-sent event (`data: {...}\n\n`).
pub(crate) fn sse_event(value: &Value) -> Bytes {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"data: ");
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, value);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Counts bytes written, to size JSON without allocating it.
struct ByteCounter(u64);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn json_len(value: Option<&Value>) -> u64 {
    let mut counter = ByteCounter(0);
    if let Some(v) = value {
        let _ = serde_json::to_writer(&mut counter, v);
    }
    counter.0
}

/// Deterministic prompt size: bytes of the JSON of `messages` plus `tools`, divided by 4
/// (rounded up, at least 1).
pub(crate) fn estimate_prompt_tokens(request: &Value) -> u64 {
    let bytes = json_len(request.get("messages")) + json_len(request.get("tools"));
    bytes.div_ceil(4).max(1)
}

/// Deterministic output size: bytes of text, thinking and tool calls (name + arguments JSON),
/// divided by 4 (rounded up, at least 1).
pub(crate) fn estimate_output_tokens(turn: &Turn) -> u64 {
    let text: usize = turn
        .chunks
        .iter()
        .chain(&turn.thinking)
        .map(String::len)
        .sum();
    let calls: u64 = turn
        .tool_calls
        .iter()
        .map(|c| c.name.len() as u64 + json_len(Some(&c.arguments)))
        .sum();
    (text as u64 + calls).div_ceil(4).max(1)
}

/// Fake but deterministic Ollama timings (nanoseconds).
pub(crate) struct Timings {
    pub(crate) total: u64,
    pub(crate) load: u64,
    pub(crate) prompt_eval: u64,
    pub(crate) eval: u64,
}

impl Timings {
    /// 1.5 ms load, 0.2 ms per prompt token, 20 ms per output token, 0.5 ms overhead.
    pub(crate) fn for_counts(prompt_tokens: u64, output_tokens: u64) -> Self {
        let load = 1_500_000;
        let prompt_eval = prompt_tokens.saturating_mul(200_000);
        let eval = output_tokens.saturating_mul(20_000_000);
        Timings {
            total: load + prompt_eval + eval + 500_000,
            load,
            prompt_eval,
            eval,
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The current time in RFC 3339 with nanoseconds and `Z`, as Ollama's `created_at`.
pub(crate) fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_nanos())
}

/// Formats a Unix time as RFC 3339 UTC with nanoseconds (the year 9999 at the latest).
pub(crate) fn rfc3339(secs: u64, nanos: u32) -> String {
    let time = UNIX_EPOCH
        .checked_add(Duration::new(secs.min(MAX_RFC3339_SECS), nanos))
        .unwrap_or(UNIX_EPOCH);
    humantime::format_rfc3339_nanos(time).to_string()
}

/// The last second RFC 3339 can write: 9999-12-31T23:59:59Z.
const MAX_RFC3339_SECS: u64 = 253_402_300_799;

/// JSON the way Python's `json.dumps(value, ensure_ascii=False)` writes it: `", "` between
/// items and `": "` after keys (vLLM's tool parsers write arguments with it).
pub(crate) fn python_json(value: &Value) -> String {
    struct Python;
    impl serde_json::ser::Formatter for Python {
        fn begin_array_value<W: ?Sized + io::Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> io::Result<()> {
            if first {
                Ok(())
            } else {
                writer.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + io::Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> io::Result<()> {
            if first {
                Ok(())
            } else {
                writer.write_all(b", ")
            }
        }
        fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
            writer.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Python);
    // Serializing a Value into a Vec cannot fail.
    let _ = serde::Serialize::serialize(value, &mut serializer);
    String::from_utf8(out).unwrap_or_default()
}

/// A lowercase hex string of `len` digits derived from `seed` (ids that look random but
/// are reproducible).
pub(crate) fn hex_id(seed: u64, len: usize) -> String {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
        out.push_str(&format!("{h:016x}"));
    }
    out.truncate(len);
    out
}

/// Splits `s` into about `parts` fragments at character boundaries (at least one
/// fragment per byte-group; an empty string gives no fragment).
pub(crate) fn fragments(s: &str, parts: usize) -> Vec<&str> {
    let target = s.len().div_ceil(parts.max(1)).max(1);
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    while start < s.len() {
        let mut end = (start + target).min(s.len());
        while !s.is_char_boundary(end) {
            end += 1;
        }
        out.push(&s[start..end]);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_like_ollama() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_721_680_408, 123_456_789),
            "2024-07-22T20:33:28.123456789Z"
        );
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn fragments_cover_the_string_at_char_boundaries() {
        let s = r#"{"path":"ünïcödé.txt"}"#;
        let parts = fragments(s, 3);
        assert!(parts.len() >= 2, "{parts:?}");
        assert_eq!(parts.concat(), s);
        assert_eq!(fragments("{}", 3), vec!["{", "}"]);
        assert!(fragments("", 3).is_empty());
    }
}

//! Incremental stream decoders for the wire formats model servers stream in.
//!
//! - [`ndjson`]: newline-delimited JSON (Ollama).
//! - [`sse`]: server-sent events (OpenAI-compatible servers).

pub mod ndjson;
pub mod sse;

pub use ndjson::NdjsonDecoder;
pub use sse::{SseDecoder, SseEvent};

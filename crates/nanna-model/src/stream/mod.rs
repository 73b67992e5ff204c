//! Incremental stream decoders for the wire formats model servers stream in.
//!
//! - [`ndjson`]: newline-delimited JSON (Ollama).
//! - [`sse`]: server-sent events (OpenAI-compatible servers).
//!
//! Both share one buffer (`buffer`): linear time whatever the line length, memory bounded
//! by a per-frame limit.

mod buffer;
pub mod ndjson;
pub mod sse;

pub use ndjson::NdjsonDecoder;
pub use sse::{SseDecoder, SseEvent};

/// Default largest NDJSON line or SSE event accepted: 16 MiB. A token-by-token stream sends
/// frames of a few hundred bytes; a non-streamed reply is one frame holding the whole answer.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// A line (NDJSON) or event (SSE) larger than the decoder's limit. The decoder has dropped
/// it and stays failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame {frame} of the stream is larger than the limit of {limit} bytes")]
pub struct FrameTooLarge {
    /// 1-based number of the offending line or event.
    pub frame: u64,
    /// The limit, in bytes.
    pub limit: usize,
}

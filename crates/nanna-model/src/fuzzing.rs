//! Entry points of the fuzz targets in `fuzz/`, replayed over the committed corpus by the
//! ordinary test `tests/fuzz_corpus.rs`: an input that once broke an invariant stays a
//! test on stable Rust. Each function panics when an invariant breaks.

use crate::stream::{FrameTooLarge, NdjsonDecoder, SseDecoder, SseEvent};

/// Reads the fuzzer's settings from the first two bytes: a frame limit (64 B to 16 KiB) and
/// a chunk size (1 to 256 bytes); the rest is the stream.
fn settings(data: &[u8]) -> (usize, usize, &[u8]) {
    match data {
        [a, b, rest @ ..] => (64 << (a % 9), 1 + usize::from(*b), rest),
        _ => (1024, 1, &[]),
    }
}

/// Decodes `stream` fed in `chunk`-byte pieces; checks memory stays within the limit.
fn ndjson_lines(
    stream: &[u8],
    chunk: usize,
    limit: usize,
) -> (Vec<Vec<u8>>, Option<FrameTooLarge>) {
    let mut decoder = NdjsonDecoder::with_max_line(limit);
    let mut lines = Vec::new();
    for piece in stream.chunks(chunk) {
        decoder.push(piece);
        assert!(
            decoder.pending() <= limit + piece.len(),
            "buffer beyond its bound"
        );
        loop {
            match decoder.next_line() {
                Ok(Some(line)) => {
                    assert!(!line.is_empty() && line.len() <= limit);
                    assert!(!line.contains(&b'\n'));
                    lines.push(line.to_vec());
                }
                Ok(None) => break,
                Err(error) => return (lines, Some(error)),
            }
        }
    }
    match decoder.finish() {
        Ok(Some(line)) => lines.push(line.to_vec()),
        Ok(None) => {}
        Err(error) => return (lines, Some(error)),
    }
    assert_eq!(decoder.line_number(), lines.len() as u64);
    (lines, None)
}

/// NDJSON framing: the same lines (and the same error) whatever the chunking, every line
/// within the limit, the buffer within the limit plus one chunk.
pub fn ndjson(data: &[u8]) {
    let (limit, chunk, stream) = settings(data);
    let whole = ndjson_lines(stream, stream.len().max(1), limit);
    let pieces = ndjson_lines(stream, chunk, limit);
    assert_eq!(whole, pieces, "chunking changed the lines");
}

fn sse_events(stream: &[u8], chunk: usize, limit: usize) -> (Vec<SseEvent>, Option<FrameTooLarge>) {
    let mut decoder = SseDecoder::with_max_event(limit);
    let mut events = Vec::new();
    for piece in stream.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => {
                    // Lossy UTF-8 may widen invalid bytes up to three times.
                    assert!(event.data.len() <= 3 * limit);
                    events.push(event);
                }
                Ok(None) => break,
                Err(error) => return (events, Some(error)),
            }
        }
    }
    match decoder.finish() {
        Ok(Some(event)) => events.push(event),
        Ok(None) => {}
        Err(error) => return (events, Some(error)),
    }
    (events, None)
}

/// SSE framing: the same events (and the same error) whatever the chunking, including a
/// `\r\n` split between two chunks and a byte-order mark split at any point.
pub fn sse(data: &[u8]) {
    let (limit, chunk, stream) = settings(data);
    let whole = sse_events(stream, stream.len().max(1), limit);
    let pieces = sse_events(stream, chunk, limit);
    assert_eq!(whole, pieces, "chunking changed the events");
}

//! Newline-delimited JSON framing (Ollama's streaming format).
//!
//! [`NdjsonDecoder`] splits a byte stream into lines. Chunks may end anywhere: inside a line,
//! inside a UTF-8 code point, between `\r` and `\n`. Every byte is scanned once whatever the
//! line length, and a line longer than the decoder's limit is an error as soon as its bytes
//! arrive (see [`buffer`](super::buffer)), so time is linear and memory bounded.

use super::FrameTooLarge;
use super::buffer::LineBuffer;

/// Incremental splitter of a byte stream into non-empty lines.
///
/// Feed chunks with [`push`](Self::push), then drain complete lines with
/// [`next_line`](Self::next_line). A trailing `\r` is removed from each line; blank lines are
/// skipped. At the end of the stream, [`finish`](Self::finish) returns a last line that had
/// no newline. After an error the decoder stays failed.
#[derive(Debug)]
pub struct NdjsonDecoder {
    lines: LineBuffer,
    /// Lines returned so far, for error messages.
    count: u64,
}

impl Default for NdjsonDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl NdjsonDecoder {
    /// A decoder accepting lines up to [`DEFAULT_MAX_FRAME`](super::DEFAULT_MAX_FRAME) bytes.
    pub fn new() -> Self {
        Self::with_max_line(super::DEFAULT_MAX_FRAME)
    }

    /// A decoder accepting lines up to `max_line` bytes.
    pub fn with_max_line(max_line: usize) -> Self {
        Self {
            lines: LineBuffer::new(max_line),
            count: 0,
        }
    }

    /// Appends a chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.lines.push(chunk);
    }

    /// The next complete, non-blank line (without its line ending), if one has arrived.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, FrameTooLarge> {
        loop {
            let found = self
                .lines
                .next_line(|bytes| memchr::memchr(b'\n', bytes))
                .map_err(|_| self.too_large())?;
            let Some(range) = found else {
                return Ok(None);
            };
            if !self.lines.get(range.clone()).trim_ascii().is_empty() {
                self.count += 1;
                return Ok(Some(self.lines.get(range).trim_ascii()));
            }
        }
    }

    /// Ends the stream: the last line if it had no newline, else `None`.
    pub fn finish(&mut self) -> Result<Option<&[u8]>, FrameTooLarge> {
        let range = self.lines.take_rest().map_err(|_| self.too_large())?;
        if self.lines.get(range.clone()).trim_ascii().is_empty() {
            return Ok(None);
        }
        self.count += 1;
        Ok(Some(self.lines.get(range).trim_ascii()))
    }

    fn too_large(&self) -> FrameTooLarge {
        FrameTooLarge {
            frame: self.count + 1,
            limit: self.lines.max_line(),
        }
    }

    /// How many lines have been returned so far (the 1-based number of the last one).
    pub fn line_number(&self) -> u64 {
        self.count
    }

    /// Bytes received but not yet returned as a line.
    pub fn pending(&self) -> usize {
        self.lines.pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real Ollama `/api/chat` stream: text, a tool call with non-ASCII arguments, an
    /// error-free end, CRLF line ends on some lines and a final line without newline.
    const SAMPLE: &str = concat!(
        "{\"model\":\"llama3.1:8b\",\"created_at\":\"2025-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Grüße, \"},\"done\":false}\n",
        "{\"model\":\"llama3.1:8b\",\"created_at\":\"2025-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"世界 🌍\"},\"done\":false}\r\n",
        "\n",
        "{\"model\":\"llama3.1:8b\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"read_file\",\"arguments\":{\"path\":\"ñotes.txt\"}}}]},\"done\":false}\r\n",
        "{\"model\":\"llama3.1:8b\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"eval_count\":12}",
    );

    fn decode_in_chunks(input: &[u8], cuts: &[usize]) -> Vec<String> {
        let mut dec = NdjsonDecoder::new();
        let mut out = Vec::new();
        let mut prev = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            dec.push(&input[prev..cut]);
            prev = cut;
            while let Some(line) = dec.next_line().expect("small lines") {
                out.push(String::from_utf8(line.to_vec()).expect("complete UTF-8 line"));
            }
        }
        if let Some(line) = dec.finish().expect("small lines") {
            out.push(String::from_utf8(line.to_vec()).expect("complete UTF-8 line"));
        }
        out
    }

    #[test]
    fn splits_lines_and_skips_blank_ones() {
        let lines = decode_in_chunks(SAMPLE.as_bytes(), &[]);
        assert_eq!(lines.len(), 4);
        assert!(lines[1].contains("世界 🌍"));
        assert!(lines.iter().all(|l| !l.ends_with('\r')));
        for line in &lines {
            serde_json::from_str::<serde_json::Value>(line).expect("each line is JSON");
        }
    }

    #[test]
    fn every_single_split_point_gives_identical_lines() {
        let input = SAMPLE.as_bytes();
        let whole = decode_in_chunks(input, &[]);
        for cut in 0..=input.len() {
            assert_eq!(
                decode_in_chunks(input, &[cut]),
                whole,
                "split at byte {cut}"
            );
        }
    }

    #[test]
    fn every_pair_of_split_points_gives_identical_lines() {
        let input = SAMPLE.as_bytes();
        let whole = decode_in_chunks(input, &[]);
        for a in 0..=input.len() {
            for b in (a..=input.len()).step_by(7) {
                assert_eq!(
                    decode_in_chunks(input, &[a, b]),
                    whole,
                    "split at {a} and {b}"
                );
            }
        }
    }

    #[test]
    fn byte_by_byte_gives_identical_lines() {
        let input = SAMPLE.as_bytes();
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(decode_in_chunks(input, &cuts), decode_in_chunks(input, &[]));
    }

    #[test]
    fn counts_lines_and_tracks_pending_bytes() {
        let mut dec = NdjsonDecoder::new();
        dec.push(b"{\"a\":1}\n{\"b\":");
        assert_eq!(dec.next_line(), Ok(Some(&b"{\"a\":1}"[..])));
        assert_eq!(dec.line_number(), 1);
        assert_eq!(dec.next_line(), Ok(None));
        assert_eq!(dec.pending(), 5);
        dec.push(b"2}");
        assert_eq!(dec.next_line(), Ok(None));
        assert_eq!(dec.finish(), Ok(Some(&b"{\"b\":2}"[..])));
        assert_eq!(dec.line_number(), 2);
        assert_eq!(dec.finish(), Ok(None));
    }

    #[test]
    fn buffer_is_compacted_on_long_streams() {
        let mut dec = NdjsonDecoder::new();
        for i in 0..10_000 {
            dec.push(format!("{{\"n\":{i}}}\n").as_bytes());
            assert!(dec.next_line().expect("small").is_some());
        }
        assert!(dec.lines.capacity() < 4096, "consumed lines are dropped");
    }

    #[test]
    fn a_line_over_the_limit_is_an_error_naming_it() {
        let mut dec = NdjsonDecoder::with_max_line(8);
        dec.push(b"{\"a\":1}\n{\"b\":");
        assert_eq!(dec.next_line(), Ok(Some(&b"{\"a\":1}"[..])));
        assert_eq!(dec.next_line(), Ok(None));
        dec.push(b"\"long\"");
        let error = dec.next_line().expect_err("over the limit");
        assert_eq!(error, FrameTooLarge { frame: 2, limit: 8 });
        assert_eq!(dec.pending(), 0, "the oversized line is dropped");
    }

    #[test]
    fn a_newline_free_stream_fails_at_the_limit_not_at_its_end() {
        let mut dec = NdjsonDecoder::with_max_line(1 << 20);
        let piece = vec![b'x'; 16 * 1024];
        let mut fed = 0;
        loop {
            dec.push(&piece);
            fed += piece.len();
            if dec.next_line().is_err() {
                break;
            }
            assert!(fed <= (1 << 20) + piece.len(), "never stopped");
        }
        assert!(fed > 1 << 20);
    }
}

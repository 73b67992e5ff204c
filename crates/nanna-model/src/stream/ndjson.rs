//! Newline-delimited JSON framing (Ollama's streaming format).
//!
//! [`NdjsonDecoder`] splits a byte stream into lines. Chunks may end anywhere: inside a line,
//! inside a UTF-8 code point, between `\r` and `\n`. Every byte is scanned once: the decoder
//! remembers how far it has searched for a line end, so long lines arriving in many small
//! chunks cost linear time.

/// Incremental splitter of a byte stream into non-empty lines.
///
/// Feed chunks with [`push`](Self::push), then drain complete lines with
/// [`next_line`](Self::next_line). A trailing `\r` is removed from each line; blank lines are
/// skipped. At the end of the stream, [`finish`](Self::finish) returns a last line that had
/// no newline.
#[derive(Debug, Default)]
pub struct NdjsonDecoder {
    buf: Vec<u8>,
    /// Start of the first unreturned byte.
    start: usize,
    /// Bytes before this offset (and after `start`) hold no newline.
    scanned: usize,
    /// Lines returned so far, for error messages.
    lines: u64,
}

impl NdjsonDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        // Drop consumed bytes before growing, so the buffer stays as small as the longest
        // incomplete line (amortised: we only move bytes once per compaction).
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.len() / 2) {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete, non-blank line (without its line ending), if one has arrived.
    pub fn next_line(&mut self) -> Option<&[u8]> {
        loop {
            let found = memchr::memchr(b'\n', &self.buf[self.scanned..])?;
            let end = self.scanned + found;
            let begin = self.start;
            self.start = end + 1;
            self.scanned = self.start;
            if !trim_line(&self.buf[begin..end]).is_empty() {
                self.lines += 1;
                return Some(trim_line(&self.buf[begin..end]));
            }
        }
    }

    /// Ends the stream: the last line if it had no newline, else `None`.
    pub fn finish(&mut self) -> Option<&[u8]> {
        let begin = self.start;
        self.start = self.buf.len();
        self.scanned = self.start;
        if trim_line(&self.buf[begin..]).is_empty() {
            return None;
        }
        self.lines += 1;
        Some(trim_line(&self.buf[begin..]))
    }

    /// How many lines have been returned so far (the 1-based number of the last one).
    pub fn line_number(&self) -> u64 {
        self.lines
    }

    /// Bytes received but not yet returned as a line.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Strips the `\r` of a CRLF line end and any other surrounding ASCII whitespace.
fn trim_line(line: &[u8]) -> &[u8] {
    line.trim_ascii()
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
            while let Some(line) = dec.next_line() {
                out.push(String::from_utf8(line.to_vec()).expect("complete UTF-8 line"));
            }
        }
        if let Some(line) = dec.finish() {
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
        assert_eq!(dec.next_line(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(dec.line_number(), 1);
        assert_eq!(dec.next_line(), None);
        assert_eq!(dec.pending(), 5);
        dec.push(b"2}");
        assert_eq!(dec.next_line(), None);
        assert_eq!(dec.finish(), Some(&b"{\"b\":2}"[..]));
        assert_eq!(dec.line_number(), 2);
        assert_eq!(dec.finish(), None);
    }

    #[test]
    fn buffer_is_compacted_on_long_streams() {
        let mut dec = NdjsonDecoder::new();
        for i in 0..10_000 {
            dec.push(format!("{{\"n\":{i}}}\n").as_bytes());
            assert!(dec.next_line().is_some());
        }
        assert!(dec.buf.capacity() < 4096, "consumed lines are dropped");
    }
}

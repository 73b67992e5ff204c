//! Server-sent events framing (OpenAI-compatible streaming).
//!
//! [`SseDecoder`] follows the WHATWG event-stream rules: lines end with `\r\n`, `\n` or `\r`;
//! `data:` lines of one event are joined with `\n`; lines starting with `:` are comments; a
//! blank line ends an event. Chunks may end anywhere, including between `\r` and `\n` and
//! inside a UTF-8 code point: lines are decoded only once complete. Every byte is scanned
//! once whatever the line length, and an event (or line) larger than the decoder's limit is
//! an error as soon as its bytes arrive (see [`buffer`](super::buffer)).

use memchr::memchr2;

use super::FrameTooLarge;
use super::buffer::LineBuffer;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, when the server set one.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The `id:` field, when the server set one.
    pub id: Option<String>,
}

/// Incremental decoder of a server-sent-events byte stream.
///
/// Feed chunks with [`push`](Self::push), then drain events with
/// [`next_event`](Self::next_event); call [`finish`](Self::finish) at the end of the stream.
/// After an error the decoder stays failed.
#[derive(Debug)]
pub struct SseDecoder {
    lines: LineBuffer,
    /// The previous line ended with `\r`: a `\n` right after it belongs to that line end.
    skip_lf: bool,
    /// Whether a leading byte-order mark has been dealt with.
    bom_checked: bool,
    /// The event being assembled.
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    /// Events dispatched so far, for error messages.
    count: u64,
    failed: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// A decoder accepting events up to [`DEFAULT_MAX_FRAME`](super::DEFAULT_MAX_FRAME) bytes.
    pub fn new() -> Self {
        Self::with_max_event(super::DEFAULT_MAX_FRAME)
    }

    /// A decoder accepting events (their joined `data`, and every line) up to `max_event`
    /// bytes.
    pub fn with_max_event(max_event: usize) -> Self {
        Self {
            lines: LineBuffer::new(max_event),
            skip_lf: false,
            bom_checked: false,
            event: None,
            data: String::new(),
            has_data: false,
            id: None,
            count: 0,
            failed: false,
        }
    }

    /// Appends a chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.lines.push(chunk);
    }

    /// The next complete event, if one has arrived.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, FrameTooLarge> {
        if self.failed {
            return Err(self.too_large());
        }
        if !self.bom_checked && !self.check_bom(false) {
            return Ok(None);
        }
        loop {
            if self.skip_lf && self.lines.pending() > 0 {
                if self.lines.unconsumed().first() == Some(&b'\n') {
                    self.lines.skip(1);
                }
                self.skip_lf = false;
            }
            let found = self
                .lines
                .next_line(|bytes| memchr2(b'\n', b'\r', bytes))
                .map_err(|_| self.fail())?;
            let Some(line) = found else {
                return Ok(None);
            };
            self.skip_lf = self.lines.byte(line.end) == Some(b'\r');
            if let Some(event) = self.process_line(line)? {
                return Ok(Some(event));
            }
        }
    }

    /// Ends the stream: processes a last unterminated line and returns the event being
    /// assembled, if it has data. (Strict SSE would drop it; servers that close right after
    /// their last `data:` line are tolerated.)
    pub fn finish(&mut self) -> Result<Option<SseEvent>, FrameTooLarge> {
        if self.failed {
            return Err(self.too_large());
        }
        if !self.bom_checked {
            self.check_bom(true);
        }
        let rest = self.lines.take_rest().map_err(|_| self.fail())?;
        if !rest.is_empty()
            && let Some(event) = self.process_line(rest)?
        {
            return Ok(Some(event));
        }
        Ok(self.dispatch())
    }

    /// Strips a leading UTF-8 byte-order mark. Returns false while too few bytes have
    /// arrived to tell.
    fn check_bom(&mut self, at_end: bool) -> bool {
        let pending = self.lines.unconsumed();
        if pending.len() < BOM.len() && BOM.starts_with(pending) && !at_end {
            return false;
        }
        if pending.starts_with(BOM) {
            self.lines.skip(BOM.len());
        }
        self.bom_checked = true;
        true
    }

    fn too_large(&self) -> FrameTooLarge {
        FrameTooLarge {
            frame: self.count + 1,
            limit: self.lines.max_line(),
        }
    }

    /// Marks the decoder failed and drops the event being assembled.
    fn fail(&mut self) -> FrameTooLarge {
        self.failed = true;
        self.data = String::new();
        self.has_data = false;
        self.too_large()
    }

    /// Interprets one line; returns an event when the line ends one.
    fn process_line(
        &mut self,
        range: std::ops::Range<usize>,
    ) -> Result<Option<SseEvent>, FrameTooLarge> {
        let line = self.lines.get(range);
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                let extra = value.len() + usize::from(self.has_data);
                if self.data.len() + extra > self.lines.max_line() {
                    return Err(self.fail());
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
            }
            _ => {}
        }
        Ok(None)
    }

    /// Emits the assembled event if it has data, and starts a new one.
    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        self.count += 1;
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id: self.id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A llama.cpp-style chat stream with the awkward parts of the format: a BOM, comments,
    /// CRLF and lone CR line ends, an event type, a multi-line data field, non-ASCII text,
    /// a usage chunk and `[DONE]`.
    const SAMPLE: &[u8] = b"\xEF\xBB\xBF: keep-alive comment\r\n\r\n\
data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Gr\xC3\xBC\xC3\x9Fe \"}}]}\r\n\r\n\
data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x8C\x8D\"}}]}\n\n\
event: message\rid: 7\rdata: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"function\":{\"name\":\"read_file\",\"arguments\":\"{\\\"pa\"}}]}}]}\r\r\
data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\r\
data: \"function\":{\"arguments\":\"th\\\": \\\"x\\\"}\"}}]}}]}\n\n\
:another comment\n\
data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5}}\r\n\r\n\
data: [DONE]\n\n";

    fn decode_in_chunks(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut dec = SseDecoder::new();
        let mut out = Vec::new();
        let mut prev = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            dec.push(&input[prev..cut]);
            prev = cut;
            while let Some(event) = dec.next_event().expect("small events") {
                out.push(event);
            }
        }
        out.extend(dec.finish().expect("small events"));
        out
    }

    #[test]
    fn decodes_events_fields_and_multi_line_data() {
        let events = decode_in_chunks(SAMPLE, &[]);
        assert_eq!(events.len(), 7, "{events:#?}");
        assert!(
            events[0].data.contains("Grüße"),
            "BOM stripped, UTF-8 decoded"
        );
        assert!(events[1].data.contains("世界 🌍"));
        assert_eq!(events[2].event.as_deref(), Some("message"));
        assert_eq!(events[2].id.as_deref(), Some("7"));
        assert!(
            events[3].data.contains("\n\"function\""),
            "data lines joined by \\n"
        );
        assert_eq!(events[3].id.as_deref(), Some("7"), "last event id persists");
        assert_eq!(events[3].event, None, "event type resets after dispatch");
        assert_eq!(events[6].data, "[DONE]");
        for event in &events[..6] {
            serde_json::from_str::<serde_json::Value>(&event.data).expect("data is JSON");
        }
    }

    #[test]
    fn every_single_split_point_gives_identical_events() {
        let whole = decode_in_chunks(SAMPLE, &[]);
        for cut in 0..=SAMPLE.len() {
            assert_eq!(
                decode_in_chunks(SAMPLE, &[cut]),
                whole,
                "split at byte {cut}"
            );
        }
    }

    #[test]
    fn every_pair_of_split_points_gives_identical_events() {
        let whole = decode_in_chunks(SAMPLE, &[]);
        for a in 0..=SAMPLE.len() {
            for b in (a..=SAMPLE.len()).step_by(5) {
                assert_eq!(
                    decode_in_chunks(SAMPLE, &[a, b]),
                    whole,
                    "split at {a} and {b}"
                );
            }
        }
    }

    #[test]
    fn byte_by_byte_gives_identical_events() {
        let cuts: Vec<usize> = (1..SAMPLE.len()).collect();
        assert_eq!(
            decode_in_chunks(SAMPLE, &cuts),
            decode_in_chunks(SAMPLE, &[])
        );
    }

    #[test]
    fn crlf_split_between_cr_and_lf_is_one_line_end() {
        // "data: a\r" then "\ndata: b\n\n": one event with two data lines, not two events.
        let events = decode_in_chunks(b"data: a\r\ndata: b\n\n", &[8]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "a\nb");
    }

    #[test]
    fn field_without_colon_and_without_space() {
        let events = decode_in_chunks(b"data\ndata:x\n\n", &[]);
        assert_eq!(events[0].data, "\nx");
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert!(decode_in_chunks(b"event: ping\n\n: c\n\n", &[]).is_empty());
    }

    #[test]
    fn unterminated_last_event_is_returned_by_finish() {
        let events = decode_in_chunks(b"data: {\"x\":1}", &[3]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "{\"x\":1}");
    }

    #[test]
    fn an_event_over_the_limit_is_an_error_naming_it() {
        let mut dec = SseDecoder::with_max_event(16);
        dec.push(b"data: small\n\ndata: 0123456789\ndata: 0123456789\n\n");
        assert_eq!(
            dec.next_event().expect("fits").expect("event").data,
            "small"
        );
        assert_eq!(
            dec.next_event(),
            Err(FrameTooLarge {
                frame: 2,
                limit: 16
            })
        );
        assert!(dec.next_event().is_err(), "the decoder stays failed");
        assert!(dec.finish().is_err());
    }

    #[test]
    fn a_line_without_end_fails_at_the_limit() {
        let mut dec = SseDecoder::with_max_event(1 << 20);
        dec.push(b"data: ");
        let piece = vec![b'x'; 16 * 1024];
        let mut fed = 0;
        while dec.next_event().is_ok() {
            dec.push(&piece);
            fed += piece.len();
            assert!(fed <= (1 << 20) + piece.len(), "never stopped");
        }
        assert!(fed + 6 > 1 << 20, "stopped early at {fed}");
    }
}

//! Bounding tool output: keep the head and tail of long text and state what was cut.

use std::collections::VecDeque;

/// The note placed where bytes were cut.
pub(crate) fn omitted_note(bytes: usize) -> String {
    format!("\n[... {bytes} bytes omitted ...]\n")
}

/// `text` if it fits in `max` bytes; otherwise its head and tail (about half each) with the
/// number of omitted bytes stated between them.
pub(crate) fn head_tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let half = max / 2;
    let head_end = floor_char_boundary(text, half);
    let tail_start = ceil_char_boundary(text, text.len() - (max - half));
    let tail_start = tail_start.max(head_end);
    let mut out = String::with_capacity(max + 40);
    out.push_str(&text[..head_end]);
    out.push_str(&omitted_note(tail_start - head_end));
    out.push_str(&text[tail_start..]);
    out
}

/// `line` cut to at most `max` bytes (at a character boundary) with a marker when cut.
pub(crate) fn cut_line(line: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if line.len() <= max {
        line.into()
    } else {
        let end = floor_char_boundary(line, max);
        format!("{}... [line cut, {} bytes]", &line[..end], line.len()).into()
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i.min(s.len())
}

/// Collects a byte stream of unknown length in bounded memory: the first `head_cap` bytes
/// and the last `tail_cap` bytes, counting what falls between.
#[derive(Debug)]
pub(crate) struct HeadTail {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    omitted: usize,
}

impl HeadTail {
    /// A collector keeping at most `max` bytes in total.
    pub(crate) fn new(max: usize) -> Self {
        let head_cap = max / 2;
        Self {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_cap,
            tail_cap: max - head_cap,
            omitted: 0,
        }
    }

    /// Appends `bytes`.
    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        if self.head.len() < self.head_cap {
            let take = bytes.len().min(self.head_cap - self.head.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if bytes.len() >= self.tail_cap {
            self.omitted += self.tail.len() + bytes.len() - self.tail_cap;
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.omitted += overflow;
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// Total bytes seen.
    #[cfg(test)]
    pub(crate) fn total(&self) -> usize {
        self.head.len() + self.omitted + self.tail.len()
    }

    /// The kept text (lossy UTF-8) with the cut stated.
    pub(crate) fn render(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.omitted > 0 {
            out.push_str(&omitted_note(self.omitted));
        }
        let (a, b) = self.tail.as_slices();
        let mut tail = Vec::with_capacity(a.len() + b.len());
        tail.extend_from_slice(a);
        tail.extend_from_slice(b);
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_tail_keeps_both_ends_and_states_the_cut() {
        let text: String = (0..1000).map(|i| format!("{i:04}\n")).collect();
        let out = head_tail(&text, 100);
        assert!(out.starts_with("0000\n0001\n"));
        assert!(out.ends_with("0998\n0999\n"));
        assert!(out.contains("[... 4900 bytes omitted ...]"), "{out}");
        assert_eq!(head_tail("short", 100), "short");
    }

    #[test]
    fn head_tail_respects_char_boundaries() {
        let text = "é".repeat(100);
        let out = head_tail(&text, 11);
        assert!(out.contains("bytes omitted"));
    }

    #[test]
    fn collector_matches_head_tail_for_any_chunking() {
        let text: String = (0..500).map(|i| format!("line {i}\n")).collect();
        for chunk in [1, 7, 64, 1000, 10_000] {
            let mut c = HeadTail::new(200);
            for piece in text.as_bytes().chunks(chunk) {
                c.push(piece);
            }
            assert_eq!(c.total(), text.len());
            assert_eq!(c.render(), head_tail(&text, 200), "chunk {chunk}");
        }
        let mut small = HeadTail::new(200);
        small.push(b"hello");
        assert_eq!(small.render(), "hello");
    }

    #[test]
    fn cut_line_marks_long_lines() {
        assert_eq!(cut_line("abc", 10), "abc");
        assert_eq!(cut_line("abcdef", 3), "abc... [line cut, 6 bytes]");
    }
}

//! The buffer both decoders share: bytes received but not yet consumed, split into lines.
//!
//! Two properties make a hostile stream harmless:
//! - **Linear time.** The search for a line end resumes where the previous search stopped
//!   (`scanned`), so a line arriving in a million small chunks is scanned once, not a
//!   million times (restarting from the line's start cost quadratic time: a 128 MB body
//!   without a newline took 40 s).
//! - **Bounded memory.** A line longer than `max_line` is an error as soon as its bytes
//!   arrive, without waiting for its end; after that the buffer is emptied and ignores
//!   further input. Memory is at most `max_line` plus one network chunk.

use std::ops::Range;

/// Capacity kept after a long line has been consumed; beyond it the buffer shrinks.
const KEEP_CAPACITY: usize = 64 * 1024;

/// A line longer than the buffer's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

#[derive(Debug)]
pub(crate) struct LineBuffer {
    buf: Vec<u8>,
    /// Start of the first unconsumed byte.
    start: usize,
    /// Bytes in `start..scanned` hold no line end.
    scanned: usize,
    /// Longest line accepted, in bytes (without its terminator).
    max_line: usize,
    /// A line overflowed: the content was dropped and input is ignored from now on.
    overflowed: bool,
}

impl LineBuffer {
    pub(crate) fn new(max_line: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_line,
            overflowed: false,
        }
    }

    pub(crate) fn max_line(&self) -> usize {
        self.max_line
    }

    /// Appends a chunk, first dropping consumed bytes when that is cheap (amortised: each
    /// byte moves at most once per halving of the buffer).
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.start > 0 {
            if self.start == self.buf.len() {
                self.buf.clear();
                self.start = 0;
                self.scanned = 0;
            } else if self.start >= self.buf.len() / 2 {
                self.buf.drain(..self.start);
                self.scanned -= self.start;
                self.start = 0;
            }
        }
        if self.buf.capacity() > KEEP_CAPACITY && self.buf.len() < self.buf.capacity() / 4 {
            self.buf.shrink_to((self.buf.len() * 2).max(KEEP_CAPACITY));
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line, found by `find` (the offset of the first line end in a
    /// slice). The range excludes the terminator, which is consumed; `byte(range.end)` is
    /// the terminator itself.
    pub(crate) fn next_line(
        &mut self,
        find: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<Option<Range<usize>>, Overflow> {
        if self.overflowed {
            return Err(Overflow);
        }
        match find(&self.buf[self.scanned..]) {
            Some(offset) => {
                let end = self.scanned + offset;
                let line = self.start..end;
                self.start = end + 1;
                self.scanned = self.start;
                if line.len() > self.max_line {
                    return Err(self.overflow());
                }
                Ok(Some(line))
            }
            None => {
                self.scanned = self.buf.len();
                if self.pending() > self.max_line {
                    return Err(self.overflow());
                }
                Ok(None)
            }
        }
    }

    /// Everything not yet consumed (the stream ended): a last line without terminator.
    pub(crate) fn take_rest(&mut self) -> Result<Range<usize>, Overflow> {
        if self.overflowed {
            return Err(Overflow);
        }
        let rest = self.start..self.buf.len();
        self.start = self.buf.len();
        self.scanned = self.start;
        if rest.len() > self.max_line {
            return Err(self.overflow());
        }
        Ok(rest)
    }

    fn overflow(&mut self) -> Overflow {
        self.overflowed = true;
        self.buf = Vec::new();
        self.start = 0;
        self.scanned = 0;
        Overflow
    }

    /// Consumes `n` unconsumed bytes (a byte-order mark, the `\n` of a split `\r\n`).
    pub(crate) fn skip(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        self.scanned = self.scanned.max(self.start);
    }

    /// The bytes of `range` (as returned by this buffer).
    pub(crate) fn get(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// The byte at `at`, if received.
    pub(crate) fn byte(&self, at: usize) -> Option<u8> {
        self.buf.get(at).copied()
    }

    /// The unconsumed bytes.
    pub(crate) fn unconsumed(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// How many bytes are received but not consumed.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nl(bytes: &[u8]) -> Option<usize> {
        memchr::memchr(b'\n', bytes)
    }

    #[test]
    fn a_long_line_in_small_chunks_is_scanned_once() {
        let mut lines = LineBuffer::new(1 << 20);
        for _ in 0..10_000 {
            lines.push(b"0123456789");
            assert_eq!(lines.next_line(nl), Ok(None));
            // The search resumes at the end of what was already scanned.
            assert_eq!(lines.scanned, lines.buf.len());
        }
        lines.push(b"\nrest");
        let line = lines.next_line(nl).expect("fits").expect("complete");
        assert_eq!(line.len(), 100_000);
        assert_eq!(lines.unconsumed(), b"rest");
    }

    #[test]
    fn overflow_is_reported_before_the_line_ends_and_frees_the_memory() {
        let mut lines = LineBuffer::new(16);
        lines.push(b"0123456789");
        assert_eq!(lines.next_line(nl), Ok(None));
        lines.push(b"0123456789");
        assert_eq!(lines.next_line(nl), Err(Overflow));
        assert_eq!(lines.capacity(), 0);
        lines.push(b"more\n");
        assert_eq!(lines.pending(), 0, "input after an overflow is ignored");
        assert_eq!(lines.next_line(nl), Err(Overflow));
        assert_eq!(lines.take_rest(), Err(Overflow));
    }

    #[test]
    fn a_complete_line_over_the_limit_is_an_overflow_too() {
        let mut lines = LineBuffer::new(4);
        lines.push(b"abcd\nabcde\n");
        assert_eq!(lines.next_line(nl), Ok(Some(0..4)));
        assert_eq!(lines.next_line(nl), Err(Overflow));
        let mut rest = LineBuffer::new(4);
        rest.push(b"abcde");
        assert_eq!(rest.take_rest(), Err(Overflow));
    }

    #[test]
    fn capacity_shrinks_after_a_long_line() {
        let mut lines = LineBuffer::new(1 << 24);
        lines.push(&vec![b'x'; 4 << 20]);
        lines.push(b"\n");
        assert!(lines.next_line(nl).expect("fits").is_some());
        lines.push(b"{}\n");
        assert!(lines.capacity() <= KEEP_CAPACITY, "{}", lines.capacity());
    }
}

//! Terminal output: ANSI styles (off under `NO_COLOR` or when not a terminal), a
//! streaming-safe markdown highlighter, the wait spinner and one-line tool reports.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Which ANSI styles to emit; all empty when colour is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

const RESET: &str = "\x1b[0m";

impl Style {
    /// Colour when `NO_COLOR` is unset (or empty) and `is_tty` holds.
    pub fn detect(is_tty: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            color: is_tty && !no_color,
        }
    }

    /// Style for standard output.
    pub fn stdout() -> Self {
        Self::detect(std::io::stdout().is_terminal())
    }

    /// Style for standard error.
    pub fn stderr() -> Self {
        Self::detect(std::io::stderr().is_terminal())
    }

    /// Whether colour is on.
    pub fn enabled(self) -> bool {
        self.color
    }

    fn code(self, code: &'static str) -> &'static str {
        if self.color { code } else { "" }
    }

    /// Resets all attributes.
    pub fn reset(self) -> &'static str {
        self.code(RESET)
    }

    /// Wraps `text` in `code` ... reset.
    fn wrap(self, code: &'static str, text: &str) -> String {
        if self.color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    /// Dim text.
    pub fn dim(self, text: &str) -> String {
        self.wrap("\x1b[2m", text)
    }

    /// Bold text.
    pub fn bold(self, text: &str) -> String {
        self.wrap("\x1b[1m", text)
    }

    /// Red text.
    pub fn red(self, text: &str) -> String {
        self.wrap("\x1b[31m", text)
    }

    /// Green text.
    pub fn green(self, text: &str) -> String {
        self.wrap("\x1b[32m", text)
    }

    /// Yellow text.
    pub fn yellow(self, text: &str) -> String {
        self.wrap("\x1b[33m", text)
    }

    /// Cyan text.
    pub fn cyan(self, text: &str) -> String {
        self.wrap("\x1b[36m", text)
    }
}

const HEADING: &str = "\x1b[1;35m";
const BOLD: &str = "\x1b[1m";
const CODE: &str = "\x1b[36m";
const FENCE: &str = "\x1b[2m";

/// Where the highlighter is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// Still reading the first characters to classify the line.
    Undecided,
    /// Ordinary text with inline `**bold**` and `` `code` ``.
    Text,
    /// A heading: the whole line is styled.
    Heading,
    /// A fence line (```lang): dimmed.
    Fence,
    /// A line inside a fenced code block.
    Code,
}

/// A streaming markdown highlighter: feed it text deltas as they arrive, it returns what
/// can be printed now. Lines are classified from their first characters (headings, code
/// fences, code block bodies); inline bold and code spans are styled as they stream. With
/// colour off it passes text through unchanged.
#[derive(Debug)]
pub struct MarkdownStream {
    style: Style,
    kind: LineKind,
    /// Start of the current line, held back until it can be classified.
    head: String,
    in_code_block: bool,
    bold: bool,
    inline_code: bool,
    /// A `*` that may open or close bold, waiting for the next character.
    pending_star: bool,
}

impl MarkdownStream {
    /// A highlighter at the start of a line.
    pub fn new(style: Style) -> Self {
        Self {
            style,
            kind: LineKind::Undecided,
            head: String::new(),
            in_code_block: false,
            bold: false,
            inline_code: false,
            pending_star: false,
        }
    }

    /// Consumes a delta, returning the text to print now.
    pub fn push(&mut self, delta: &str) -> String {
        if !self.style.enabled() {
            return delta.to_owned();
        }
        let mut out = String::with_capacity(delta.len() + 16);
        for c in delta.chars() {
            self.push_char(c, &mut out);
        }
        out
    }

    /// Flushes everything held back (end of the reply) and resets styles.
    pub fn finish(&mut self) -> String {
        if !self.style.enabled() {
            return String::new();
        }
        let mut out = String::new();
        if self.kind == LineKind::Undecided && !self.head.is_empty() {
            self.classify(&mut out);
        }
        if self.pending_star {
            self.pending_star = false;
            out.push('*');
        }
        if self.kind != LineKind::Undecided || self.bold || self.inline_code {
            out.push_str(RESET);
        }
        self.kind = LineKind::Undecided;
        self.head.clear();
        self.bold = false;
        self.inline_code = false;
        self.in_code_block = false;
        out
    }

    fn push_char(&mut self, c: char, out: &mut String) {
        if c == '\n' {
            if self.kind == LineKind::Undecided {
                self.classify(out);
            }
            self.end_line(out);
            return;
        }
        match self.kind {
            LineKind::Undecided => {
                self.head.push(c);
                if self.head.chars().count() >= 3 || !could_be_marker(&self.head) {
                    self.classify(out);
                }
            }
            LineKind::Text => self.inline(c, out),
            LineKind::Heading | LineKind::Fence | LineKind::Code => out.push(c),
        }
    }

    /// Decides what the held-back line start is and emits it.
    fn classify(&mut self, out: &mut String) {
        let head = std::mem::take(&mut self.head);
        let trimmed = head.trim_start();
        if trimmed.starts_with("```") {
            self.kind = LineKind::Fence;
            self.in_code_block = !self.in_code_block;
            out.push_str(FENCE);
            out.push_str(&head);
        } else if self.in_code_block {
            self.kind = LineKind::Code;
            out.push_str(CODE);
            out.push_str(&head);
        } else if head.starts_with('#') {
            self.kind = LineKind::Heading;
            out.push_str(HEADING);
            out.push_str(&head);
        } else {
            self.kind = LineKind::Text;
            if self.bold {
                out.push_str(BOLD);
            }
            for c in head.chars() {
                self.inline(c, out);
            }
        }
    }

    fn inline(&mut self, c: char, out: &mut String) {
        if self.pending_star {
            self.pending_star = false;
            if c == '*' {
                self.bold = !self.bold;
                out.push_str(if self.bold { BOLD } else { RESET });
                if !self.bold && self.inline_code {
                    out.push_str(CODE);
                }
                return;
            }
            out.push('*');
        }
        match c {
            '*' if !self.inline_code => self.pending_star = true,
            '`' => {
                self.inline_code = !self.inline_code;
                if self.inline_code {
                    out.push_str(CODE);
                    out.push('`');
                } else {
                    out.push('`');
                    out.push_str(RESET);
                    if self.bold {
                        out.push_str(BOLD);
                    }
                }
            }
            _ => out.push(c),
        }
    }

    fn end_line(&mut self, out: &mut String) {
        if self.pending_star {
            self.pending_star = false;
            out.push('*');
        }
        match self.kind {
            LineKind::Text if !self.bold && !self.inline_code => {}
            LineKind::Undecided => {}
            _ => out.push_str(RESET),
        }
        // Inline spans do not cross lines; bold may (it is re-opened at classify).
        self.inline_code = false;
        out.push('\n');
        self.kind = LineKind::Undecided;
    }
}

/// Renders a thinking model's reasoning so it never reads as the answer: dim, each line
/// behind a `│` gutter (the gutter alone marks it when colour is off), opened by a
/// `thinking` label and closed when the answer starts.
#[derive(Debug)]
pub struct ThinkingBlock {
    style: Style,
    open: bool,
    at_line_start: bool,
}

impl ThinkingBlock {
    /// A closed block.
    pub fn new(style: Style) -> Self {
        Self {
            style,
            open: false,
            at_line_start: true,
        }
    }

    /// The text to print for more reasoning (opening the block first).
    pub fn push(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 16);
        if !self.open {
            self.open = true;
            self.at_line_start = true;
            out.push_str(&self.style.dim("thinking"));
            out.push('\n');
        }
        let mut lines = text.split('\n').peekable();
        while let Some(line) = lines.next() {
            if !line.is_empty() {
                if self.at_line_start {
                    out.push_str(&self.style.dim("│ "));
                    self.at_line_start = false;
                }
                out.push_str(&self.style.dim(line));
            }
            if lines.peek().is_some() {
                if self.at_line_start {
                    out.push_str(&self.style.dim("│"));
                }
                out.push('\n');
                self.at_line_start = true;
            }
        }
        out
    }

    /// The text that closes an open block (ends its line); empty when closed.
    pub fn close(&mut self) -> String {
        if !self.open {
            return String::new();
        }
        self.open = false;
        let mut out = self.style.reset().to_owned();
        if !self.at_line_start {
            out.push('\n');
        }
        self.at_line_start = true;
        out
    }
}

/// Whether `head` may still grow into a fence or heading marker.
fn could_be_marker(head: &str) -> bool {
    let t = head.trim_start();
    t.is_empty() || "```".starts_with(t) || t.starts_with('#')
}

/// A spinner drawn on standard error while waiting for the model; no-op when stderr is
/// not a terminal. Stops (and erases itself) on [`Spinner::stop`] or drop.
#[derive(Debug)]
pub struct Spinner {
    running: Option<Arc<AtomicBool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    /// Starts a spinner with `label` when stderr is a terminal.
    pub fn start(label: &str, style: Style) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self {
                running: None,
                thread: None,
            };
        }
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let label = style.dim(label);
        let thread = std::thread::Builder::new()
            .name("spinner".into())
            .spawn(move || {
                const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
                let mut i = 0;
                // Only draw once the wait is noticeable, so fast replies never flicker.
                std::thread::sleep(Duration::from_millis(120));
                while flag.load(Ordering::Acquire) {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r{} {label}\x1b[K", FRAMES[i % FRAMES.len()]);
                    let _ = err.flush();
                    drop(err);
                    i += 1;
                    std::thread::park_timeout(Duration::from_millis(80));
                }
            })
            .ok();
        Self {
            running: Some(running),
            thread,
        }
    }

    /// Stops and erases the spinner.
    pub fn stop(&mut self) {
        if let Some(flag) = self.running.take() {
            flag.store(false, Ordering::Release);
            if let Some(t) = self.thread.take() {
                t.thread().unpark();
                let _ = t.join();
            }
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// First line of `text`, for one-line reports.
pub fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim_end()
}

/// One line reporting a finished tool call: `● summary`, or a red `✗ name: error`.
pub fn tool_line(style: Style, name: &str, ok: bool, summary: &str, output: &str) -> String {
    if ok {
        let text = if summary.is_empty() { name } else { summary };
        format!("{} {}", style.green("●"), text)
    } else {
        let err = if summary.is_empty() {
            first_line(output)
        } else {
            first_line(summary)
        };
        style.red(&format!("✗ {name}: {err}"))
    }
}

/// Human-readable byte count (`4.7 GB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Prints rows as left-aligned columns under `header`.
pub fn table(header: &[&str], rows: &[Vec<String>], style: Style) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let fmt_row = |cells: Vec<&str>| -> String {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        line.trim_end().to_owned()
    };
    let mut out = style.bold(&fmt_row(header.to_vec()));
    out.push('\n');
    for row in rows {
        out.push_str(&fmt_row(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: Style = Style { color: true };
    const OFF: Style = Style { color: false };

    #[test]
    fn thinking_is_a_dim_gutter_block_that_closes_before_the_answer() {
        let mut block = ThinkingBlock::new(OFF);
        let mut out = block.push("Let me ");
        out.push_str(&block.push("see.\nThe file"));
        out.push_str(&block.push(" is small."));
        out.push_str(&block.close());
        assert_eq!(out, "thinking\n│ Let me see.\n│ The file is small.\n");
        assert_eq!(block.close(), "", "closing twice prints nothing");

        let mut block = ThinkingBlock::new(ON);
        let out = block.push("a\n") + &block.close();
        assert_eq!(
            out,
            "\x1b[2mthinking\x1b[0m\n\x1b[2m│ \x1b[0m\x1b[2ma\x1b[0m\n\x1b[0m"
        );
    }

    fn render(style: Style, chunks: &[&str]) -> String {
        let mut md = MarkdownStream::new(style);
        let mut out: String = chunks.iter().map(|c| md.push(c)).collect();
        out.push_str(&md.finish());
        out
    }

    #[test]
    fn plain_when_colour_is_off() {
        let text = "# Title\n**bold** and `code`\n```rust\nfn x() {}\n```\n";
        assert_eq!(render(OFF, &[text]), text);
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let text =
            "# Title\nsome **bold** text and `code`.\n```rust\nlet a = 1 * 2;\n```\nafter * star\n";
        let whole = render(ON, &[text]);
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(render(ON, &refs), whole);
        let strip = |s: &str| {
            let mut out = String::new();
            let mut esc = false;
            for c in s.chars() {
                if c == '\x1b' {
                    esc = true;
                } else if esc {
                    if c == 'm' {
                        esc = false;
                    }
                } else {
                    out.push(c);
                }
            }
            out
        };
        // Bold markers are consumed; everything else survives.
        assert_eq!(
            strip(&whole),
            text.replace("**bold**", "bold"),
            "text must survive styling"
        );
    }

    #[test]
    fn styles_headings_bold_and_code() {
        let out = render(ON, &["## Head\nsome **b** `c`\n"]);
        assert!(out.starts_with(HEADING), "{out:?}");
        assert!(out.contains(&format!("{BOLD}b{RESET}")), "{out:?}");
        assert!(out.contains(&format!("{CODE}`c`{RESET}")), "{out:?}");
    }

    #[test]
    fn code_block_lines_are_not_parsed_as_markdown() {
        let out = render(ON, &["```\n# not a heading **x**\n```\n"]);
        assert!(
            out.contains(&format!("{CODE}# not a heading **x**")),
            "{out:?}"
        );
        assert!(!out.contains(HEADING));
    }

    #[test]
    fn text_streams_without_waiting_for_newline() {
        let mut md = MarkdownStream::new(ON);
        assert_eq!(md.push("Hello wor"), "Hello wor");
    }

    #[test]
    fn tool_line_reports_failure_first_line() {
        let line = tool_line(OFF, "shell", false, "", "exit 1\nmore");
        assert_eq!(line, "✗ shell: exit 1");
        let line = tool_line(OFF, "edit", true, "edit src/main.rs (+3 -1)", "");
        assert_eq!(line, "● edit src/main.rs (+3 -1)");
    }

    #[test]
    fn human_bytes_scales() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(4_700_000_000), "4.7 GB");
    }
}

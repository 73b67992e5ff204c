//! Turning [`AgentEvent`]s into output: styled terminal text, or one JSON object per line.

use std::io::Write;
use std::time::{Duration, Instant};

use nanna_agent::AgentEvent;
use nanna_model::redact_urls;

use crate::render::{MarkdownStream, Spinner, Style, ThinkingBlock, first_line, tool_line};

/// Where a run's events go.
pub enum EventOutput {
    /// Human-readable output.
    Terminal(Box<TerminalOutput>),
    /// JSON lines on stdout.
    Json(JsonOutput),
}

impl EventOutput {
    /// Handles one event.
    pub fn event(&mut self, event: &AgentEvent) {
        match self {
            Self::Terminal(t) => t.event(event),
            Self::Json(j) => j.event(event),
        }
    }

    /// Reports an error the agent returned (printed once, even if an event carried it).
    /// Returns whether it was shown on the terminal (stderr) already.
    pub fn error(&mut self, message: &str) -> bool {
        match self {
            Self::Terminal(t) => {
                t.error(message);
                true
            }
            Self::Json(j) => {
                j.error(message);
                false
            }
        }
    }

    /// Ends the run's output (stops the spinner, closes styles).
    pub fn finish(&mut self) {
        if let Self::Terminal(t) = self {
            t.finish();
        }
    }
}

/// Writes every event as one JSON line on stdout.
#[derive(Debug, Default)]
pub struct JsonOutput {
    saw_error: bool,
}

impl JsonOutput {
    fn write_line(value: &impl serde::Serialize) {
        let mut out = std::io::stdout().lock();
        if let Ok(text) = serde_json::to_string(value) {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }

    /// Reasoning goes out as one `thinking` event per block (a viewer folds it); its
    /// deltas would repeat it line by line.
    fn event(&mut self, event: &AgentEvent) {
        match event {
            AgentEvent::Error { message } => {
                self.saw_error = true;
                Self::write_line(&AgentEvent::Error {
                    message: redact_urls(message),
                });
            }
            AgentEvent::Warning { message } => Self::write_line(&AgentEvent::Warning {
                message: redact_urls(message),
            }),
            AgentEvent::ThinkingDelta { .. } => {}
            _ => Self::write_line(event),
        }
    }

    fn error(&mut self, message: &str) {
        if !self.saw_error {
            self.saw_error = true;
            Self::write_line(&AgentEvent::Error {
                message: redact_urls(message),
            });
        }
    }
}

/// Streams answer text to stdout (markdown-highlighted), tool lines and notices to
/// stderr, a spinner while waiting, and (interactive) a dim usage line per run.
pub struct TerminalOutput {
    err_style: Style,
    markdown: MarkdownStream,
    spinner: Option<Spinner>,
    interactive: bool,
    /// Whether stdout's last character was a newline (or nothing was printed).
    at_line_start: bool,
    prompt_tokens: u64,
    completion_tokens: u64,
    generation: Duration,
    first_token: Option<Instant>,
    saw_error: bool,
    thinking: ThinkingBlock,
}

impl TerminalOutput {
    /// Output for an interactive session (session banner, usage line) or a one-shot run.
    pub fn new(interactive: bool) -> Self {
        let out_style = Style::stdout();
        Self {
            err_style: Style::stderr(),
            markdown: MarkdownStream::new(out_style),
            spinner: None,
            interactive,
            at_line_start: true,
            prompt_tokens: 0,
            completion_tokens: 0,
            generation: Duration::ZERO,
            first_token: None,
            saw_error: false,
            thinking: ThinkingBlock::new(Style::stderr()),
        }
    }

    fn stop_spinner(&mut self) {
        if let Some(mut s) = self.spinner.take() {
            s.stop();
        }
    }

    fn print_out(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.at_line_start = text.ends_with('\n');
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// Closes the streamed text: flushes held-back markdown and ends the line.
    fn end_text(&mut self) {
        let rest = self.markdown.finish();
        self.print_out(&rest);
        self.close_thinking();
        if !self.at_line_start {
            self.print_out("\n");
        }
    }

    fn close_thinking(&mut self) {
        let close = self.thinking.close();
        if !close.is_empty() {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(close.as_bytes());
            let _ = err.flush();
        }
    }

    /// Reports an error once (the agent may already have sent it as an event).
    pub fn error(&mut self, message: &str) {
        self.stop_spinner();
        self.end_text();
        if !self.saw_error {
            self.saw_error = true;
            eprintln!("{} {}", self.err_style.red("error:"), redact_urls(message));
        }
    }

    /// Stops the spinner and ends the streamed text.
    pub fn finish(&mut self) {
        self.stop_spinner();
        self.end_text();
    }

    /// Renders one event.
    pub fn event(&mut self, event: &AgentEvent) {
        match event {
            AgentEvent::SessionStarted {
                session_id,
                model,
                workspace,
                resumed,
            } => {
                if self.interactive {
                    let verb = if *resumed { "resumed" } else { "session" };
                    eprintln!(
                        "{}",
                        self.err_style.dim(&format!(
                            "{verb} {session_id} · {model} · {}",
                            workspace.display()
                        ))
                    );
                }
            }
            AgentEvent::WaitingForModel => {
                self.stop_spinner();
                self.saw_error = false;
                self.first_token = None;
                self.spinner = Some(Spinner::start("thinking", self.err_style));
            }
            AgentEvent::TextDelta { text } => {
                self.stop_spinner();
                self.close_thinking();
                self.first_token.get_or_insert_with(Instant::now);
                let rendered = self.markdown.push(text);
                self.print_out(&rendered);
            }
            AgentEvent::ThinkingDelta { text } => {
                self.stop_spinner();
                self.first_token.get_or_insert_with(Instant::now);
                let rendered = self.thinking.push(text);
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(rendered.as_bytes());
                let _ = err.flush();
            }
            // Already streamed as deltas; the block ends with the answer or a tool call.
            AgentEvent::Thinking { .. } => self.close_thinking(),
            AgentEvent::ToolCall { .. } => {
                self.stop_spinner();
                self.end_text();
            }
            AgentEvent::ToolResult {
                name,
                ok,
                summary,
                output,
                ..
            } => {
                self.stop_spinner();
                self.end_text();
                eprintln!("{}", tool_line(self.err_style, name, *ok, summary, output));
            }
            AgentEvent::TurnEnd { usage, .. } => {
                if let Some(u) = usage {
                    self.prompt_tokens += u64::from(u.prompt_tokens);
                    self.completion_tokens += u64::from(u.completion_tokens);
                    let eval = u.timings.and_then(|t| t.eval);
                    let measured = self.first_token.map(|t| t.elapsed());
                    if let Some(d) = eval.or(measured) {
                        self.generation += d;
                    }
                }
            }
            AgentEvent::ContextCompacted {
                step,
                tokens_before,
                tokens_after,
                after_counted,
                messages_compacted,
                ..
            } => {
                self.stop_spinner();
                self.end_text();
                let about = if *after_counted { "" } else { "~" };
                eprintln!(
                    "{}",
                    self.err_style.dim(&format!(
                        "context compacted ({}, {messages_compacted} messages): \
                         {tokens_before} → {about}{tokens_after} tokens",
                        step.describe()
                    ))
                );
            }
            AgentEvent::Warning { message } => {
                self.stop_spinner();
                self.end_text();
                eprintln!(
                    "{} {}",
                    self.err_style.yellow("warning:"),
                    first_line(&redact_urls(message))
                );
            }
            AgentEvent::Error { message } => self.error(message),
            AgentEvent::Done { turns, .. } => {
                self.stop_spinner();
                self.end_text();
                if self.interactive {
                    let mut line =
                        format!("{} in · {} out", self.prompt_tokens, self.completion_tokens);
                    let secs = self.generation.as_secs_f64();
                    if secs > 0.0 && self.completion_tokens > 0 {
                        line.push_str(&format!(
                            " · {:.1} tok/s",
                            self.completion_tokens as f64 / secs
                        ));
                    }
                    line.push_str(&format!(
                        " · {turns} turn{}",
                        if *turns == 1 { "" } else { "s" }
                    ));
                    eprintln!("{}", self.err_style.dim(&line));
                }
                self.prompt_tokens = 0;
                self.completion_tokens = 0;
                self.generation = Duration::ZERO;
            }
        }
    }
}

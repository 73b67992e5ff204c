//! Prompt size: the server's count of the last request plus an estimate of what was appended
//! since.
//!
//! The heuristic is `ceil(bytes / 3.5)` per text plus 4 tokens of framing per message. It is
//! only a unit: the ledger learns, per model, how it maps onto the server's tokens,
//!
//! ```text
//! prompt ≈ base + ratio × Σ heuristic(messages after the system prompt)
//! ```
//!
//! - `base` is what the server counts besides the conversation: the system prompt, the tool
//!   schemas as the chat template renders them (some render none, e.g. SmolLM2's), the
//!   template's framing. Every server report sets it to `reported − ratio × Σ heuristic(sent
//!   messages)`, so the estimate of the request just reported is the server's own count and
//!   the next one is that count plus `ratio ×` what was appended since.
//! - `ratio` is server tokens per heuristic token, learned in both directions from
//!   consecutive reports of an append-only history (`Δ reported / Δ heuristic`), with older
//!   observations fading. It matters for what is appended and for what a compaction removes.
//!
//! What the servers report, from their sources: Ollama's `prompt_eval_count` is the whole
//! prompt since 0.3.13 (`runner/*/runner.go`: `numPromptInputs = len(inputs)`; with the
//! llama-server engine, `llm/llama_server.go`: `cache_n + prompt_n`), and only the evaluated
//! part before (llama.cpp's `prompt_n`). llama.cpp's `usage.prompt_tokens` is the whole prompt
//! (`server-task.cpp`, `usage_json_oaicompat`: `n_prompt_tokens`, with the cached part in
//! `prompt_tokens_details.cached_tokens`). A report smaller than the previous one while the
//! history only grew can only come from a server counting evaluated tokens: from then on
//! reports only raise the base, never lower it.

use nanna_model::ChatMessage;
use serde::{Deserialize, Serialize};

/// Framing tokens per message (role markers, separators).
const MESSAGE_OVERHEAD: u32 = 4;
/// Bounds of the learned ratio: no tokenizer is 4× denser or sparser than the heuristic.
const RATIO_MIN: f64 = 0.25;
const RATIO_MAX: f64 = 4.0;
/// Weight kept by older observations at each new one.
const RATIO_DECAY: f64 = 0.7;
/// Appended heuristic tokens below which a report says too little about the ratio.
const MIN_SAMPLE: u64 = 16;

/// Estimated tokens of `text`.
pub fn estimate_text(text: &str) -> u32 {
    let tokens = (text.len() as u64 * 2).div_ceil(7);
    u32::try_from(tokens).unwrap_or(u32::MAX)
}

/// Estimated tokens of one message, tool calls included.
pub fn estimate_message(message: &ChatMessage) -> u32 {
    let mut tokens = MESSAGE_OVERHEAD
        .saturating_add(estimate_text(&message.content))
        .saturating_add(estimate_text(&message.thinking));
    for call in &message.tool_calls {
        let args = serde_json::to_string(&call.arguments).map_or(0, |s| s.len());
        tokens = tokens
            .saturating_add(estimate_text(&call.name))
            .saturating_add(u32::try_from(args.div_ceil(3)).unwrap_or(u32::MAX))
            .saturating_add(MESSAGE_OVERHEAD);
    }
    if let Some(name) = &message.tool_name {
        tokens = tokens.saturating_add(estimate_text(name));
    }
    tokens
}

/// What the ledger has learned about a model, kept in the session so that a resumed
/// conversation starts from the server's numbers rather than from the heuristic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Calibration {
    /// Server tokens per heuristic token.
    pub(crate) ratio: f64,
    /// Whether the server's reports cover the whole prompt (not only what it evaluated).
    pub(crate) whole_prompt: bool,
}

/// Running size of the request's messages, kept in step with the history.
#[derive(Debug, Clone)]
pub(crate) struct TokenLedger {
    /// Heuristic tokens of each message, aligned with the request (index 0: system prompt).
    raw: Vec<u32>,
    /// Sum of `raw[1..]`.
    conversation_raw: u64,
    /// Heuristic tokens of the tool schemas.
    tools_raw: u32,
    ratio: f64,
    /// Decayed sums of Δ reported and Δ heuristic behind `ratio`.
    ratio_num: f64,
    ratio_den: f64,
    /// Learned from the server; `None` until the first report (then the heuristic is used).
    base: Option<f64>,
    /// The last count: messages it covered and the tokens. Cleared when the history is
    /// rewritten (the next report then says nothing about the ratio).
    last: Option<(usize, u32)>,
    whole_prompt: bool,
}

impl TokenLedger {
    pub(crate) fn new() -> Self {
        Self {
            raw: Vec::new(),
            conversation_raw: 0,
            tools_raw: 0,
            ratio: 1.0,
            ratio_num: 0.0,
            ratio_den: 0.0,
            base: None,
            last: None,
            whole_prompt: true,
        }
    }

    /// One more message at the end of the history.
    pub(crate) fn push(&mut self, message: &ChatMessage) {
        let t = estimate_message(message);
        if !self.raw.is_empty() {
            self.conversation_raw += u64::from(t);
        }
        self.raw.push(t);
    }

    /// The history was replaced (a compaction): recount it. The base stays (the system
    /// prompt and tools did not change); the last report no longer describes a prefix.
    pub(crate) fn rebuild(&mut self, messages: &[ChatMessage]) {
        self.raw.clear();
        self.conversation_raw = 0;
        self.last = None;
        for m in messages {
            self.push(m);
        }
    }

    /// The system prompt or the tools changed: what was learned about them is void.
    pub(crate) fn reset_base(&mut self, messages: &[ChatMessage]) {
        self.base = None;
        self.rebuild(messages);
    }

    /// Sets the heuristic size of the tool schemas (before any report).
    pub(crate) fn set_tools_raw(&mut self, tools_raw: u32) {
        self.tools_raw = tools_raw;
    }

    /// The prompt's size apart from the conversation: learned, or the heuristic's guess.
    pub(crate) fn base(&self) -> u32 {
        let base = self.base.unwrap_or_else(|| {
            let system = self.raw.first().copied().unwrap_or(0);
            self.ratio * f64::from(system.saturating_add(self.tools_raw))
        });
        to_u32(base)
    }

    /// Whether the base comes from the server (a report or a count), not the heuristic.
    pub(crate) fn is_anchored(&self) -> bool {
        self.base.is_some()
    }

    /// Server tokens of `raw` heuristic tokens of conversation.
    fn scale(&self, raw: u64) -> f64 {
        self.ratio * raw as f64
    }

    /// Estimated tokens of the whole request as it stands.
    pub(crate) fn total(&self) -> u32 {
        to_u32(f64::from(self.base()) + self.scale(self.conversation_raw))
    }

    /// Estimated tokens of these messages (framing included) in this model's tokens.
    pub(crate) fn messages_cost(&self, messages: &[ChatMessage]) -> u32 {
        let raw: u64 = messages
            .iter()
            .map(|m| u64::from(estimate_message(m)))
            .sum();
        to_u32(self.scale(raw).ceil())
    }

    /// Estimated tokens of `text` in this model's tokens.
    pub(crate) fn text_cost(&self, text: &str) -> u32 {
        to_u32(self.scale(u64::from(estimate_text(text))).ceil())
    }

    /// Estimated tokens of a request made of `messages` (system prompt first) with the
    /// current system prompt and tools.
    pub(crate) fn prompt_cost(&self, messages: &[ChatMessage]) -> u32 {
        self.base()
            .saturating_add(self.messages_cost(messages.get(1..).unwrap_or(&[])))
    }

    /// Server tokens per heuristic token.
    pub(crate) fn ratio(&self) -> f64 {
        self.ratio
    }

    /// Learns from the server's count (`reported`) of a request made of the first `sent`
    /// messages of the history.
    pub(crate) fn observe(&mut self, sent: usize, reported: u32) {
        let sent = sent.min(self.raw.len());
        if let Some((before, reported_before)) = self.last
            && before <= sent
        {
            if reported < reported_before {
                // The history only grew: this server counts only what it evaluated.
                self.whole_prompt = false;
            } else if self.whole_prompt {
                let appended: u64 = self.raw[before..sent].iter().map(|&t| u64::from(t)).sum();
                if appended >= MIN_SAMPLE {
                    self.ratio_num =
                        self.ratio_num * RATIO_DECAY + f64::from(reported - reported_before);
                    self.ratio_den = self.ratio_den * RATIO_DECAY + appended as f64;
                    self.ratio = (self.ratio_num / self.ratio_den).clamp(RATIO_MIN, RATIO_MAX);
                }
            }
        }
        let sent_raw: u64 = self
            .raw
            .get(1..sent)
            .map_or(0, |s| s.iter().map(|&t| u64::from(t)).sum());
        if self.whole_prompt && sent_raw > 0 && f64::from(reported) < self.scale(sent_raw) {
            // The conversation alone costs more than the whole prompt: the ratio is at most
            // `reported / sent_raw` (the base cannot be negative).
            self.ratio = (f64::from(reported) / sent_raw as f64).clamp(RATIO_MIN, RATIO_MAX);
            self.ratio_num = f64::from(reported);
            self.ratio_den = sent_raw as f64;
        }
        let base = (f64::from(reported) - self.scale(sent_raw)).max(0.0);
        self.base = Some(if self.whole_prompt {
            base
        } else {
            base.max(f64::from(self.base()))
        });
        self.last = Some((sent, reported));
    }

    /// What was learned, to keep in the session.
    pub(crate) fn calibration(&self) -> Calibration {
        Calibration {
            ratio: self.ratio,
            whole_prompt: self.whole_prompt,
        }
    }

    /// Starts from what an earlier process learned about the same model.
    pub(crate) fn restore(&mut self, calibration: Calibration) {
        if calibration.ratio.is_finite() {
            self.ratio = calibration.ratio.clamp(RATIO_MIN, RATIO_MAX);
            // Counts as one earlier observation of moderate weight.
            self.ratio_num = self.ratio * 64.0;
            self.ratio_den = 64.0;
        }
        self.whole_prompt = calibration.whole_prompt;
    }
}

fn to_u32(x: f64) -> u32 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        x.ceil() as u32
    }
}

/// A stable 64-bit FNV-1a hash of `parts`, as hex: says whether a stored count was made
/// with the same model, system prompt and tools.
pub(crate) fn fingerprint(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in part.as_bytes().iter().chain(&[0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanna_model::ToolCall;
    use serde_json::json;

    #[test]
    fn text_estimate_rounds_up() {
        assert_eq!(estimate_text(""), 0);
        assert_eq!(estimate_text("a"), 1);
        assert_eq!(estimate_text("abcdefg"), 2);
        assert_eq!(estimate_text(&"x".repeat(3500)), 1000);
        let call = ChatMessage::assistant_with_tool_calls(
            "",
            vec![ToolCall {
                id: "1".into(),
                name: "read_file".into(),
                arguments: json!({"path": "src/lib.rs"}),
            }],
        );
        assert!(estimate_message(&call) > 8);
    }

    fn ledger_with(messages: &[ChatMessage], tools_raw: u32) -> TokenLedger {
        let mut l = TokenLedger::new();
        l.set_tools_raw(tools_raw);
        for m in messages {
            l.push(m);
        }
        l
    }

    #[test]
    fn the_heuristic_is_used_until_the_server_reports() {
        let sys = ChatMessage::system("x".repeat(350)); // 100 + 4
        let user = ChatMessage::user("y".repeat(700)); // 200 + 4
        let l = ledger_with(&[sys, user], 96);
        assert!(!l.is_anchored());
        assert_eq!(l.base(), 200);
        assert_eq!(l.total(), 404);
    }

    /// The server counts far fewer tokens than the heuristic (tools not rendered, a sparser
    /// tokenizer): the estimate follows it down, and appended text is scaled by the learned
    /// ratio.
    #[test]
    fn a_report_anchors_the_estimate_and_the_ratio_is_learned_downwards() {
        let mut history = vec![
            ChatMessage::system("s".repeat(700)),
            ChatMessage::user("u".repeat(700)),
        ];
        let mut l = ledger_with(&history, 600);
        assert_eq!(l.total(), 204 + 600 + 204);
        l.observe(2, 300);
        assert!(l.is_anchored());
        assert_eq!(l.total(), 300, "exactly the server's count");
        // The reply and the next request: 400 heuristic tokens, 200 server tokens.
        for m in [
            ChatMessage::assistant("a".repeat(700)),
            ChatMessage::user("v".repeat(700)),
        ] {
            l.push(&m);
            history.push(m);
        }
        assert_eq!(l.total(), 300 + 408, "ratio not learned yet");
        l.observe(4, 300 + 204);
        assert_eq!(l.total(), 504);
        assert!((l.ratio() - 0.5).abs() < 0.01, "{}", l.ratio());
        let m = ChatMessage::assistant("b".repeat(700));
        l.push(&m);
        assert_eq!(l.total(), 504 + 102);
    }

    #[test]
    fn the_ratio_is_learned_upwards_too() {
        let mut l = ledger_with(&[ChatMessage::system("s"), ChatMessage::user("u")], 0);
        l.observe(2, 50);
        l.push(&ChatMessage::assistant("a".repeat(3500))); // 1004
        l.observe(3, 50 + 2008);
        assert!((l.ratio() - 2.0).abs() < 0.01, "{}", l.ratio());
        l.push(&ChatMessage::user("b".repeat(3500)));
        assert_eq!(l.total(), 2058 + 2008);
    }

    /// Ollama before 0.3.13 reported only the evaluated part of a cached prompt: a report
    /// that shrinks while the history grew must not pull the estimate down.
    #[test]
    fn reports_of_evaluated_tokens_only_raise_the_base() {
        let mut l = ledger_with(&[ChatMessage::system("s"), ChatMessage::user("u")], 0);
        l.observe(2, 500);
        l.push(&ChatMessage::assistant("a".repeat(350)));
        l.push(&ChatMessage::user("b".repeat(350)));
        let before = l.total();
        l.observe(4, 210); // only the appended tokens were evaluated
        assert!(!l.calibration().whole_prompt);
        assert_eq!(l.total(), before, "the estimate does not shrink");
        l.push(&ChatMessage::assistant("c".repeat(350)));
        l.observe(5, 20);
        assert!(l.total() >= before);
    }

    #[test]
    fn a_rewrite_keeps_the_base_and_forgets_the_last_report() {
        let history = vec![
            ChatMessage::system("s".repeat(350)),
            ChatMessage::user("u".repeat(3500)),
            ChatMessage::assistant("a".repeat(3500)),
        ];
        let mut l = ledger_with(&history, 0);
        l.observe(3, 3000);
        let base = l.base();
        assert_eq!(base, 3000 - 2008);
        let compacted = vec![history[0].clone(), ChatMessage::user("summary")];
        l.rebuild(&compacted);
        assert_eq!(l.base(), base);
        assert_eq!(l.total(), base + l.messages_cost(&compacted[1..]));
        assert_eq!(l.prompt_cost(&compacted), l.total());
        // The next report says nothing about the ratio (no common prefix with the last).
        let ratio = l.ratio();
        l.observe(2, base + 10);
        assert_eq!(l.ratio(), ratio);
        l.reset_base(&compacted);
        assert!(!l.is_anchored());
    }

    #[test]
    fn a_conversation_costing_more_than_the_prompt_bounds_the_ratio() {
        let mut l = ledger_with(
            &[
                ChatMessage::system("s"),
                ChatMessage::user("u".repeat(3500)),
            ],
            0,
        );
        l.observe(2, 502);
        assert!((l.ratio() - 0.5).abs() < 0.01, "{}", l.ratio());
        assert_eq!(l.total(), 502);
    }

    #[test]
    fn calibration_round_trips_and_fingerprints_are_stable() {
        let mut l = TokenLedger::new();
        l.restore(Calibration {
            ratio: 0.6,
            whole_prompt: true,
        });
        assert!((l.ratio() - 0.6).abs() < 1e-9);
        l.restore(Calibration {
            ratio: 99.0,
            whole_prompt: false,
        });
        assert_eq!(l.ratio(), RATIO_MAX);
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["ab", ""]), fingerprint(&["a", "b"]));
        assert_eq!(fingerprint(&[]), "cbf29ce484222325");
    }
}

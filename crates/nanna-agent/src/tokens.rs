//! Cheap prompt-size estimation, cached per message.
//!
//! Estimator: `ceil(bytes / 3.5)` per text plus 4 tokens of framing per message. On
//! code, JSON and English prose BPE tokenizers (cl100k, Llama 3, Qwen) average 3.5–4.5 bytes
//! per token, so this errs on the high side: compaction triggers early rather than late.
//! A correction factor learned from the server's reported `prompt_tokens` raises estimates
//! when the model's tokenizer is denser (it is never lowered, because servers that reuse
//! their prompt cache may report only the newly evaluated tokens).

use nanna_model::ChatMessage;

/// Framing tokens per message (role markers, separators).
const MESSAGE_OVERHEAD: u32 = 4;

/// Estimated tokens of `text`.
pub fn estimate_text(text: &str) -> u32 {
    let tokens = (text.len() as u64 * 2).div_ceil(7);
    u32::try_from(tokens).unwrap_or(u32::MAX)
}

/// Estimated tokens of one message, tool calls included.
pub fn estimate_message(message: &ChatMessage) -> u32 {
    let mut tokens = MESSAGE_OVERHEAD.saturating_add(estimate_text(&message.content));
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

/// Running estimate of a message list, kept in step with the history.
#[derive(Debug, Clone)]
pub(crate) struct TokenLedger {
    per_message: Vec<u32>,
    messages_total: u64,
    /// Tokens of what is sent besides messages (tool schemas).
    fixed: u32,
    /// Learned correction (≥ 1.0).
    ratio: f64,
}

impl TokenLedger {
    pub(crate) fn new(fixed: u32) -> Self {
        Self {
            per_message: Vec::new(),
            messages_total: 0,
            fixed,
            ratio: 1.0,
        }
    }

    pub(crate) fn push(&mut self, message: &ChatMessage) {
        let t = estimate_message(message);
        self.per_message.push(t);
        self.messages_total += u64::from(t);
    }

    pub(crate) fn rebuild(&mut self, messages: &[ChatMessage]) {
        self.per_message.clear();
        self.messages_total = 0;
        for m in messages {
            self.push(m);
        }
    }

    pub(crate) fn set_fixed(&mut self, fixed: u32) {
        self.fixed = fixed;
    }

    /// Raw (uncorrected) estimate of the messages `from..`.
    pub(crate) fn raw_suffix(&self, from: usize) -> u64 {
        self.per_message
            .get(from..)
            .map_or(0, |s| s.iter().map(|&t| u64::from(t)).sum())
    }

    fn raw_total(&self) -> u64 {
        self.messages_total + u64::from(self.fixed)
    }

    /// Corrected estimate of the whole prompt.
    pub(crate) fn total(&self) -> u32 {
        self.correct(self.raw_total())
    }

    pub(crate) fn correct(&self, raw: u64) -> u32 {
        u32::try_from((raw as f64 * self.ratio).ceil() as u64).unwrap_or(u32::MAX)
    }

    /// Learns from the server's count for a prompt whose corrected estimate was `estimate`.
    pub(crate) fn observe(&mut self, estimate: u32, reported: u32) {
        let raw = self.raw_total().max(1) as f64;
        if reported > estimate {
            self.ratio = (f64::from(reported) / raw).clamp(1.0, 2.0);
        }
    }
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
    }

    #[test]
    fn ledger_tracks_pushes_and_learns_upward_only() {
        let mut l = TokenLedger::new(100);
        let m = ChatMessage::user("x".repeat(350));
        l.push(&m);
        assert_eq!(l.total(), 100 + 104);
        l.observe(l.total(), 100); // server counted fewer (cache): ignored
        assert_eq!(l.total(), 204);
        l.observe(l.total(), 408);
        assert_eq!(l.total(), 408);
        let call = ChatMessage::assistant_with_tool_calls(
            "",
            vec![ToolCall {
                id: "1".into(),
                name: "read_file".into(),
                arguments: json!({"path": "src/lib.rs"}),
            }],
        );
        assert!(estimate_message(&call) > 8);
        assert_eq!(l.raw_suffix(0), 104);
        assert_eq!(l.raw_suffix(5), 0);
    }
}

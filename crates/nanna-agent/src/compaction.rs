//! Context compaction: choosing which older messages to summarize, the summary request,
//! and the message that replaces them.

use std::fmt::Write as _;

use nanna_model::{ChatMessage, MessageRole};

use crate::tokens::TokenLedger;

/// Prefix of tool results sent as user messages to models without native tools.
pub(crate) const TEXT_RESULT_PREFIX: &str = "<tool_result";

/// Prefix of the message that replaces compacted turns.
pub(crate) const SUMMARY_PREFIX: &str =
    "[Summary of the earlier conversation, written by you when the context window filled up]";

pub(crate) const SUMMARY_SYSTEM: &str = "You condense conversations between a user and a coding \
assistant so that the assistant can continue the work without the original messages.";

const SUMMARY_INSTRUCTIONS: &str = "\n\nWrite a concise summary of the conversation above \
(at most about 300 words, bullet points). Keep: the user's goals and constraints; decisions \
made; files read or changed (with paths) and the facts about them that matter; commands run \
and their outcomes; errors still open; what remains to do. Do not call tools.";

/// Whether the kept part of the history may start at `message`: a turn boundary that does
/// not separate a tool call from its result.
fn is_cut_point(message: &ChatMessage) -> bool {
    match message.role {
        MessageRole::Assistant => true,
        MessageRole::User => !message.content.starts_with(TEXT_RESULT_PREFIX),
        MessageRole::System | MessageRole::Tool => false,
    }
}

/// Index `k` such that `messages[1..k]` are summarized and `messages[k..]` kept: the
/// smallest turn boundary whose suffix fits `keep_budget` tokens (keeping as much as
/// possible), else the latest boundary. At least two messages must be summarized.
pub(crate) fn choose_cut(
    messages: &[ChatMessage],
    ledger: &TokenLedger,
    keep_budget: u32,
) -> Option<usize> {
    let mut latest = None;
    for (k, message) in messages.iter().enumerate().skip(3) {
        if !is_cut_point(message) {
            continue;
        }
        if ledger.correct(ledger.raw_suffix(k)) <= keep_budget {
            return Some(k);
        }
        latest = Some(k);
    }
    latest
}

/// The user's latest request (not a tool result, not a summary), as index and text.
pub(crate) fn latest_request(messages: &[ChatMessage]) -> Option<(usize, &str)> {
    messages.iter().enumerate().rev().find_map(|(i, m)| {
        let is_request = m.role == MessageRole::User
            && !m.content.starts_with(TEXT_RESULT_PREFIX)
            && !m.content.starts_with(SUMMARY_PREFIX);
        is_request.then_some((i, m.content.as_str()))
    })
}

/// The summary request's user message: a transcript of `messages` within about
/// `budget_chars`, then the instructions.
pub(crate) fn summary_prompt(messages: &[ChatMessage], budget_chars: usize) -> String {
    let mut cap = 4000;
    let mut transcript = render(messages, cap);
    while transcript.len() > budget_chars && cap > 200 {
        cap /= 2;
        transcript = render(messages, cap);
    }
    if transcript.len() > budget_chars {
        let mut start = transcript.len() - budget_chars;
        while !transcript.is_char_boundary(start) {
            start += 1;
        }
        transcript = format!("[the oldest part is omitted]\n{}", &transcript[start..]);
    }
    transcript.push_str(SUMMARY_INSTRUCTIONS);
    transcript
}

fn render(messages: &[ChatMessage], cap: usize) -> String {
    let mut out = String::from("Conversation to summarize:\n");
    for m in messages {
        let who = match m.role {
            MessageRole::System => "SYSTEM",
            MessageRole::User => "USER",
            MessageRole::Assistant => "ASSISTANT",
            MessageRole::Tool => "TOOL RESULT",
        };
        out.push('\n');
        out.push_str(who);
        if let Some(name) = &m.tool_name {
            let _ = write!(out, " ({name})");
        }
        out.push_str(": ");
        push_capped(&mut out, &m.content, cap);
        for call in &m.tool_calls {
            let _ = write!(out, "\n  [called {} ", call.name);
            push_capped(&mut out, &call.arguments.to_string(), cap);
            out.push(']');
        }
    }
    out
}

fn push_capped(out: &mut String, text: &str, cap: usize) {
    if text.len() <= cap {
        out.push_str(text);
        return;
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let _ = write!(
        out,
        "{}… [{} bytes omitted]",
        &text[..end],
        text.len() - end
    );
}

/// The message that replaces the summarized turns.
pub(crate) fn summary_message(summary: &str, current_request: Option<&str>) -> String {
    let mut out = format!("{SUMMARY_PREFIX}\n{}", summary.trim());
    if let Some(request) = current_request {
        out.push_str("\n\nThe user's current request, verbatim:\n");
        push_capped(&mut out, request, 4000);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanna_model::ToolCall;
    use serde_json::json;

    fn history() -> Vec<ChatMessage> {
        let call = |id: &str| {
            ChatMessage::assistant_with_tool_calls(
                "",
                vec![ToolCall {
                    id: id.into(),
                    name: "read_file".into(),
                    arguments: json!({"path": "a"}),
                }],
            )
        };
        vec![
            ChatMessage::system("sys"),
            ChatMessage::user("task"),
            call("1"),
            ChatMessage::tool_result("1", "read_file", "x".repeat(3500)),
            call("2"),
            ChatMessage::tool_result("2", "read_file", "y".repeat(3500)),
            call("3"),
            ChatMessage::tool_result("3", "read_file", "short"),
        ]
    }

    #[test]
    fn cut_keeps_what_fits_and_never_splits_a_call_from_its_result() {
        let h = history();
        let mut ledger = TokenLedger::new(0);
        ledger.rebuild(&h);
        // Budget fits only the last call and its result.
        assert_eq!(choose_cut(&h, &ledger, 100), Some(6));
        // Budget fits the last two exchanges.
        assert_eq!(choose_cut(&h, &ledger, 1200), Some(4));
        // Nothing fits: still cut at the latest boundary.
        assert_eq!(choose_cut(&h, &ledger, 1), Some(6));
        // Too short to summarize two messages.
        assert_eq!(choose_cut(&h[..3], &ledger, 1), None);
        for k in [4, 6] {
            assert_eq!(h[k].role, MessageRole::Assistant);
        }
    }

    #[test]
    fn summary_prompt_respects_budget() {
        let h = history();
        let full = summary_prompt(&h[1..], 100_000);
        assert!(full.contains("USER: task"));
        assert!(full.contains("[called read_file {\"path\":\"a\"}]"));
        assert!(full.contains("TOOL RESULT (read_file): "));
        let small = summary_prompt(&h[1..], 1000);
        assert!(
            small.len() < 1000 + SUMMARY_INSTRUCTIONS.len() + 64,
            "{}",
            small.len()
        );
        assert!(small.ends_with(SUMMARY_INSTRUCTIONS));
    }

    #[test]
    fn latest_request_skips_results_and_summaries() {
        let h = vec![
            ChatMessage::system("s"),
            ChatMessage::user(format!("{SUMMARY_PREFIX}\nold")),
            ChatMessage::user("do it"),
            ChatMessage::user("<tool_result name=\"x\">r</tool_result>"),
        ];
        assert_eq!(latest_request(&h), Some((2, "do it")));
        let msg = summary_message(" facts ", Some("do it"));
        assert!(msg.starts_with(SUMMARY_PREFIX));
        assert!(msg.contains("facts\n\nThe user's current request, verbatim:\ndo it"));
    }
}

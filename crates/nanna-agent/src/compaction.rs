//! The compaction ladder: what makes the prompt fit the context window.
//!
//! The prompt may take the window minus what is kept for the reply (the *limit*). Past
//! `compaction_threshold` of the window (the *trigger*) the history is rewritten down to the
//! *target*, half-way between the fixed cost (system prompt, tools) and the trigger, so that
//! compactions are rare and the server's prompt cache is reused between them. The steps, each
//! tried only when the previous one did not reach the target:
//!
//! 1. **Elide old tool outputs**: most of a coding session's tokens. Each output, oldest
//!    first, becomes a one-line stub with its size and the call that made it; the results of
//!    the latest tool turn stay.
//! 2. **Summarize** the older turns, with the previous summary: the model writes one new
//!    summary (flat, never a summary of a summary's header) within an output limit derived
//!    from the room the kept turns leave. A summary that does not shrink what it replaces is
//!    rejected.
//! 3. **Drop the oldest turns**, with a notice in their place (and the user's current request
//!    verbatim), as a last resort; then the latest tool outputs are elided too.
//!
//! If even that does not fit the limit (one message larger than the window), nothing is
//! sent: the error says what is too big and what to do.

use std::fmt::Write as _;

use futures::StreamExt as _;
use nanna_model::{ChatMessage, ChatRequest, MessageRole, ModelError, ModelProvider, StreamEvent};
use tokio_util::sync::CancellationToken;

use crate::event::{AgentEvent, CompactionStep};
use crate::tokens::TokenLedger;

/// Prefix of tool results sent as user messages to models without native tools.
pub(crate) const TEXT_RESULT_PREFIX: &str = "<tool_result";

/// Prefix of the message that replaces summarized turns.
const SUMMARY_PREFIX: &str =
    "[Summary of the earlier conversation, written by you when the context window filled up]";

/// Prefix of the notice that replaces dropped turns.
const DROPPED_PREFIX: &str = "[Earlier messages were removed to fit the context window";

/// Start of the stub that replaces an elided tool output.
const ELIDED_PREFIX: &str = "[output elided to save context:";

/// Where the verbatim copy of the user's request starts in a summary or notice.
const CURRENT_REQUEST: &str = "\n\nThe user's current request, verbatim:\n";

/// Most bytes of the user's request copied verbatim into a summary or notice.
const REQUEST_COPY_MAX: usize = 4000;

/// Start of the request that asks for a summary in the conversation's own prompt.
const COMPACTION_REQUEST: &str = "[Context compaction]";

/// System prompt of a summary request made from a transcript.
const SUMMARY_SYSTEM: &str = "You condense conversations between a user and a coding \
assistant so that the assistant can continue the work without the original messages.";

/// Most tokens a summary may take, whatever the window.
const SUMMARY_MAX_TOKENS: u32 = 2048;
/// A summary limit below this is not worth a request.
const SUMMARY_MIN_TOKENS: u32 = 16;
/// Tokens kept spare in the summary request for the template's framing.
const SUMMARY_REQUEST_MARGIN: u32 = 64;
/// The summary limit may shrink down to this so that the request fits the window as the
/// conversation's own (cached) prefix.
const PREFIX_SUMMARY_MIN_TOKENS: u32 = 64;

/// How much room the prompt has, in server tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// The context window.
    pub(crate) window: u32,
    /// Kept for the reply.
    pub(crate) reserve: u32,
    /// Past this the history is compacted.
    pub(crate) trigger: u32,
}

impl Budget {
    /// The reply keeps `max_tokens` when set, else an eighth of the window (256 to 4096
    /// tokens), and never more than half the window.
    pub(crate) fn new(window: u32, max_tokens: Option<u32>, threshold: f32) -> Self {
        let reserve = max_tokens
            .unwrap_or((window / 8).clamp(256, 4096))
            .min(window / 2);
        let limit = window - reserve;
        let trigger =
            ((f64::from(window) * f64::from(threshold.clamp(0.05, 1.0))) as u32).min(limit);
        Self {
            window,
            reserve,
            trigger,
        }
    }

    /// The largest prompt that may be sent.
    pub(crate) fn limit(&self) -> u32 {
        self.window - self.reserve
    }

    /// Where a compaction aims, given the fixed cost `base`.
    fn target(&self, base: u32) -> u32 {
        base.saturating_add(self.trigger.saturating_sub(base) / 2)
    }
}

/// Why the ladder runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode<'a> {
    /// Before a request: only when the prompt passed the trigger.
    Auto,
    /// `/compact`: summarize now, keeping what the user asks to keep.
    Requested { instruction: Option<&'a str> },
}

/// A rewritten history that fits.
#[derive(Debug)]
pub(crate) struct Compacted {
    /// The new history, system prompt first.
    pub(crate) messages: Vec<ChatMessage>,
    pub(crate) step: CompactionStep,
    pub(crate) messages_compacted: usize,
    pub(crate) tokens_before: u32,
    pub(crate) tokens_after: u32,
}

/// What the ladder decided.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Nothing to do.
    Unchanged,
    /// The history was rewritten.
    Compacted(Compacted),
    /// Cancelled while the model wrote the summary.
    Cancelled,
    /// Nothing can make it fit; nothing may be sent.
    Overflow(String),
}

/// What the ladder works with.
pub(crate) struct Ladder<'a> {
    pub(crate) provider: &'a dyn ModelProvider,
    /// The request as it would be sent: history, options, tools.
    pub(crate) request: &'a ChatRequest,
    pub(crate) ledger: &'a TokenLedger,
    pub(crate) budget: Budget,
    /// The user's reply limit, which also bounds the summary.
    pub(crate) max_tokens: Option<u32>,
}

impl Ladder<'_> {
    /// Runs the ladder. Warnings (a failed or rejected summary) are emitted as events.
    pub(crate) async fn run(
        &self,
        mode: Mode<'_>,
        cancel: &CancellationToken,
        on_event: &mut (dyn FnMut(AgentEvent) + Send + '_),
    ) -> Outcome {
        let messages = &self.request.messages;
        let before = self.ledger.total();
        let base = self.ledger.base();
        let limit = self.budget.limit();
        let target = self.budget.target(base);
        if let Mode::Requested { instruction } = mode {
            // Everything before the user's latest request is summarized.
            return match self
                .summarize(
                    messages,
                    messages,
                    Keep::LatestRequest,
                    before,
                    target,
                    instruction,
                    cancel,
                    on_event,
                )
                .await
            {
                Summary::Done(c) => Outcome::Compacted(c),
                Summary::Cancelled => Outcome::Cancelled,
                Summary::Failed(reason) => {
                    on_event(AgentEvent::Warning {
                        message: format!("nothing was compacted: {}", reason.reason),
                    });
                    Outcome::Unchanged
                }
            };
        }
        if before <= self.budget.trigger {
            return Outcome::Unchanged;
        }

        // 1. Elide old tool outputs.
        let protect_from = latest_tool_turn(messages);
        let (elided, count) = elide(messages, self.ledger, protect_from, target);
        let after = self.ledger.prompt_cost(&elided);
        if count > 0 && after <= target {
            return Outcome::Compacted(Compacted {
                messages: elided,
                step: CompactionStep::ElideToolOutputs,
                messages_compacted: count,
                tokens_before: before,
                tokens_after: after,
            });
        }

        // 2. Summarize the older turns (the model reads them as they were).
        let failure = match self
            .summarize(
                messages,
                &elided,
                Keep::WhatFits,
                before,
                target,
                None,
                cancel,
                on_event,
            )
            .await
        {
            Summary::Done(c) => return Outcome::Compacted(c),
            Summary::Cancelled => return Outcome::Cancelled,
            Summary::Failed(reason) => reason,
        };
        if before <= limit && failure.transient {
            // The prompt still fits: go on with it and try again at the next request rather
            // than lose turns to a passing server error.
            on_event(AgentEvent::Warning {
                message: format!(
                    "could not compact the context ({}); continuing with the full conversation",
                    failure.reason
                ),
            });
            return Outcome::Unchanged;
        }
        on_event(AgentEvent::Warning {
            message: format!(
                "could not summarize the older turns ({}); dropping the oldest ones instead",
                failure.reason
            ),
        });

        // 3. Drop the oldest turns.
        match drop_oldest(&elided, self.ledger, target, limit) {
            Some((rewritten, dropped)) => {
                let tokens_after = self.ledger.prompt_cost(&rewritten);
                let elided = newly_elided(&rewritten, messages);
                Outcome::Compacted(Compacted {
                    messages: rewritten,
                    step: CompactionStep::DropOldest,
                    messages_compacted: dropped + elided,
                    tokens_before: before,
                    tokens_after,
                })
            }
            None => Outcome::Overflow(overflow_detail(
                &elided,
                self.ledger,
                self.budget,
                "the latest turn",
            )),
        }
    }

    /// Replaces the older part of `messages` (the previous summary included) by one summary
    /// the model writes, keeping the most recent turns that leave it room. `original` is the
    /// same history before elision (same indexes), which the transcript shows.
    #[allow(clippy::too_many_arguments)]
    async fn summarize(
        &self,
        original: &[ChatMessage],
        messages: &[ChatMessage],
        keep: Keep,
        before: u32,
        target: u32,
        instruction: Option<&str>,
        cancel: &CancellationToken,
        on_event: &mut (dyn FnMut(AgentEvent) + Send + '_),
    ) -> Summary {
        let ledger = self.ledger;
        let base = ledger.base();
        let room = target.saturating_sub(base);
        // The summary gets at least a quarter of the room; the kept turns the rest.
        let summary_room = (room / 4).max(64).min(room);
        let cut = match keep {
            Keep::WhatFits => choose_cut(messages, ledger, room - summary_room),
            Keep::LatestRequest => latest_request(messages)
                .map(|(i, _)| i)
                .filter(|&i| i >= 2 && messages[1..i].iter().any(|m| !is_recap(m)))
                .or_else(|| choose_cut(messages, ledger, 0)),
        };
        let Some(cut) = cut else {
            return Summary::Failed(Failure::permanent("there are no older turns to summarize"));
        };
        let older = &messages[1..cut];
        let kept = &messages[cut..];
        let replaced_cost = ledger.messages_cost(older);
        let request_copy = latest_request(messages)
            .filter(|&(i, _)| i < cut)
            .map(|(_, text)| capped(text, REQUEST_COPY_MAX));
        let fixed = ledger.text_cost(SUMMARY_PREFIX)
            + request_copy.as_deref().map_or(0, |r| {
                ledger.text_cost(r) + ledger.text_cost(CURRENT_REQUEST)
            })
            + 8;
        let kept_cost = ledger.messages_cost(kept);
        let mut max_tokens = target
            .saturating_sub(base + kept_cost + fixed)
            .min(replaced_cost.saturating_sub(fixed + 1))
            .min(SUMMARY_MAX_TOKENS);
        if let Some(user_max) = self.max_tokens {
            max_tokens = max_tokens.min(user_max.max(SUMMARY_MIN_TOKENS));
        }
        if max_tokens < SUMMARY_MIN_TOKENS {
            return Summary::Failed(Failure::permanent(
                "the turns to summarize are already shorter than a useful summary",
            ));
        }

        let request = self.summary_request(&original[..cut], max_tokens, instruction);
        on_event(AgentEvent::WaitingForModel);
        let text = match collect_text(self.provider, &request, cancel).await {
            Ok(Some(text)) => text,
            Ok(None) => return Summary::Cancelled,
            Err(e) => return Summary::Failed(Failure::transient(e.to_string())),
        };
        let text = text.trim();
        if text.is_empty() {
            return Summary::Failed(Failure::permanent("the model wrote an empty summary"));
        }
        let summary = summary_message(text, request_copy.as_deref());
        let summary_cost = ledger.messages_cost(std::slice::from_ref(&summary));
        if summary_cost >= replaced_cost {
            return Summary::Failed(Failure::permanent(format!(
                "the summary (~{summary_cost} tokens) is not shorter than the {} messages it \
                 would replace (~{replaced_cost} tokens)",
                older.len()
            )));
        }
        let mut rewritten = Vec::with_capacity(kept.len() + 2);
        rewritten.push(messages[0].clone());
        rewritten.push(summary);
        rewritten.extend_from_slice(kept);
        let after = ledger.prompt_cost(&rewritten);
        if after > self.budget.limit() {
            return Summary::Failed(Failure::permanent(format!(
                "even with the summary the prompt (~{after} tokens) exceeds the {} tokens it \
                 may take",
                self.budget.limit()
            )));
        }
        let elided = newly_elided(&rewritten, original);
        Summary::Done(Compacted {
            messages: rewritten,
            step: CompactionStep::Summarize,
            messages_compacted: older.len() + elided,
            tokens_before: before,
            tokens_after: after,
        })
    }
}

/// Which recent turns a summary leaves verbatim.
#[derive(Clone, Copy)]
enum Keep {
    /// As many as leave the summary its room.
    WhatFits,
    /// The user's latest request and what follows it (`/compact`).
    LatestRequest,
}

impl Ladder<'_> {
    /// The request for a summary of `older` (system prompt first, as sent before). Where it
    /// fits the window (the summary limit may shrink for it, down to 64 tokens), it is the
    /// conversation as the server last saw it, cut at the same place, plus the instructions:
    /// the server's prompt cache holds that prefix, so only the instructions are evaluated.
    /// Otherwise (the older part alone is too large) it is a transcript cut to fit,
    /// evaluated in full.
    fn summary_request(
        &self,
        older: &[ChatMessage],
        max_tokens: u32,
        instruction: Option<&str>,
    ) -> ChatRequest {
        let ledger = self.ledger;
        let instructions = instructions(max_tokens, instruction);
        let mut request = ChatRequest::new(self.request.model.clone(), Vec::new());
        request.options = self.request.options.clone();
        request.options.max_tokens = Some(max_tokens);
        let prefix_cost = ledger.prompt_cost(older) + ledger.text_cost(&instructions) + 8;
        let room = self
            .budget
            .window
            .saturating_sub(prefix_cost + SUMMARY_REQUEST_MARGIN);
        // A shorter summary from the cached prefix beats re-evaluating a transcript.
        if room >= max_tokens.min(PREFIX_SUMMARY_MIN_TOKENS) {
            request.options.max_tokens = Some(max_tokens.min(room));
            request.messages = older.to_vec();
            request.messages.push(ChatMessage::user(format!(
                "{COMPACTION_REQUEST} Do not answer or continue the conversation above.{instructions}"
            )));
            request.tools = self.request.tools.clone();
            return request;
        }
        let prompt_budget = self.budget.window.saturating_sub(
            max_tokens
                + SUMMARY_REQUEST_MARGIN
                + ledger.text_cost(SUMMARY_SYSTEM)
                + ledger.text_cost(&instructions),
        );
        let budget_chars = (f64::from(prompt_budget) * 3.5 / ledger.ratio()) as usize;
        let mut prompt = transcript(older.get(1..).unwrap_or(&[]), budget_chars);
        prompt.push_str(&instructions);
        request.messages = vec![
            ChatMessage::system(SUMMARY_SYSTEM),
            ChatMessage::user(prompt),
        ];
        request
    }
}

enum Summary {
    Done(Compacted),
    Cancelled,
    Failed(Failure),
}

struct Failure {
    reason: String,
    /// A server error that may pass, rather than a summary that cannot help.
    transient: bool,
}

impl Failure {
    fn permanent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            transient: false,
        }
    }

    fn transient(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            transient: true,
        }
    }
}

/// Whether `message` is a tool's output (native, or as text for models without tools).
fn is_tool_output(message: &ChatMessage) -> bool {
    match message.role {
        MessageRole::Tool => true,
        MessageRole::User => message.content.starts_with(TEXT_RESULT_PREFIX),
        MessageRole::System | MessageRole::Assistant => false,
    }
}

/// Whether `message` stands for earlier turns (a summary or a drop notice).
fn is_recap(message: &ChatMessage) -> bool {
    message.role == MessageRole::User
        && (message.content.starts_with(SUMMARY_PREFIX)
            || message.content.starts_with(DROPPED_PREFIX))
}

/// Index of the latest assistant message: the tool results after it are the ones the model
/// has not seen yet.
fn latest_tool_turn(messages: &[ChatMessage]) -> usize {
    messages
        .iter()
        .rposition(|m| m.role == MessageRole::Assistant)
        .unwrap_or(messages.len())
}

/// Replaces tool outputs before `protect_from`, oldest first, by a stub, until the prompt
/// fits `target`. Returns the new history and how many outputs were elided.
fn elide(
    messages: &[ChatMessage],
    ledger: &TokenLedger,
    protect_from: usize,
    target: u32,
) -> (Vec<ChatMessage>, usize) {
    let mut out = messages.to_vec();
    let mut cost = ledger.prompt_cost(&out);
    let mut count = 0;
    for i in 1..protect_from.min(out.len()) {
        if cost <= target {
            break;
        }
        if !is_tool_output(&out[i]) || out[i].content.contains(ELIDED_PREFIX) {
            continue;
        }
        let stub = elided(&out[i], messages);
        let saved = ledger
            .messages_cost(std::slice::from_ref(&out[i]))
            .saturating_sub(ledger.messages_cost(std::slice::from_ref(&stub)));
        if saved < 16 {
            continue;
        }
        out[i] = stub;
        cost = cost.saturating_sub(saved);
        count += 1;
    }
    (out, count)
}

/// How many tool outputs of `rewritten` were elided by this compaction (not before it).
fn newly_elided(rewritten: &[ChatMessage], original: &[ChatMessage]) -> usize {
    rewritten
        .iter()
        .filter(|m| m.content.contains(ELIDED_PREFIX))
        .filter(|m| !original.iter().any(|o| o.content == m.content))
        .count()
}

/// The stub of a tool output: its size, and the call that made it (to run it again).
fn elided(result: &ChatMessage, history: &[ChatMessage]) -> ChatMessage {
    let call = result.tool_call_id.as_deref().and_then(|id| {
        history
            .iter()
            .flat_map(|m| &m.tool_calls)
            .find(|c| c.id == id)
    });
    let name = result
        .tool_name
        .as_deref()
        .or(call.map(|c| c.name.as_str()))
        .or_else(|| text_result_name(&result.content))
        .unwrap_or("a tool");
    let mut stub = format!(
        "{ELIDED_PREFIX} {} bytes from `{name}",
        result.content.len()
    );
    if let Some(call) = call {
        stub.push(' ');
        stub.push_str(&capped(&call.arguments.to_string(), 200));
    }
    stub.push_str("`; run it again if you need it]");
    let mut message = result.clone();
    message.content = if result.role == MessageRole::User {
        format!("{TEXT_RESULT_PREFIX} name=\"{name}\">\n{stub}\n</tool_result>")
    } else {
        stub
    };
    message
}

/// The tool's name in a `<tool_result name="...">` message.
fn text_result_name(content: &str) -> Option<&str> {
    let rest = content.strip_prefix(TEXT_RESULT_PREFIX)?.trim_start();
    let rest = rest.strip_prefix("name=\"")?;
    rest.split('"').next()
}

/// Whether the kept part of the history may start at `message`: a turn boundary that does
/// not separate a tool call from its result.
fn is_cut_point(message: &ChatMessage) -> bool {
    match message.role {
        MessageRole::Assistant => true,
        MessageRole::User => !is_tool_output(message),
        MessageRole::System | MessageRole::Tool => false,
    }
}

/// Index `k` such that `messages[1..k]` are summarized and `messages[k..]` kept: the
/// earliest turn boundary whose suffix fits `keep_budget` (keeping as much as possible),
/// else everything is summarized. `None` when there is nothing but an earlier recap to
/// summarize.
fn choose_cut(messages: &[ChatMessage], ledger: &TokenLedger, keep_budget: u32) -> Option<usize> {
    let fits = |k: usize| ledger.messages_cost(&messages[k..]) <= keep_budget;
    let has_turns = |k: usize| messages[1..k].iter().any(|m| !is_recap(m));
    (2..messages.len())
        .filter(|&k| is_cut_point(&messages[k]) && has_turns(k))
        .find(|&k| fits(k))
        .or_else(|| (messages.len() > 1 && has_turns(messages.len())).then_some(messages.len()))
}

/// The user's latest request (not a tool result, not a recap), as index and text.
fn latest_request(messages: &[ChatMessage]) -> Option<(usize, &str)> {
    messages.iter().enumerate().rev().find_map(|(i, m)| {
        let is_request = m.role == MessageRole::User && !is_tool_output(m) && !is_recap(m);
        is_request.then_some((i, m.content.as_str()))
    })
}

/// The summary request's instructions.
fn instructions(max_tokens: u32, keep: Option<&str>) -> String {
    let words = (max_tokens * 3 / 4).max(10);
    let mut out = format!(
        "\n\nWrite one concise summary of the whole conversation above (the earlier summary, \
         if any, and the messages after it), at most about {words} words, as bullet points. \
         Keep: the user's goals and constraints; decisions made; files read or changed (with \
         paths) and the facts about them that matter; commands run and their outcomes; errors \
         still open; what remains to do. Do not call tools."
    );
    if let Some(keep) = keep.map(str::trim).filter(|k| !k.is_empty()) {
        let _ = write!(out, "\nThe user asks you to keep in particular: {keep}");
    }
    out
}

/// The conversation to summarize, within about `budget_chars`: an earlier recap as plain
/// text (never its header, so summaries do not nest), then the messages, each capped.
fn transcript(messages: &[ChatMessage], budget_chars: usize) -> String {
    let mut cap = 4000;
    let mut text = render(messages, cap);
    while text.len() > budget_chars && cap > 200 {
        cap /= 2;
        text = render(messages, cap);
    }
    if text.len() > budget_chars {
        let mut start = text.len() - budget_chars;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text = format!("[the oldest part is omitted]\n{}", &text[start..]);
    }
    text
}

fn render(messages: &[ChatMessage], cap: usize) -> String {
    let mut out = String::new();
    for m in messages {
        if is_recap(m) {
            let body = recap_body(&m.content);
            out.push_str("Summary of the conversation before:\n");
            push_capped(&mut out, body, cap.max(2000));
            out.push_str("\n\nConversation since then:\n");
            continue;
        }
        let who = match m.role {
            MessageRole::System => "SYSTEM",
            MessageRole::User if is_tool_output(m) => "TOOL RESULT",
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
    if !out.starts_with("Summary of") {
        out.insert_str(0, "Conversation to summarize:\n");
    }
    out
}

/// A recap's text without its header and without the verbatim copy of the request.
fn recap_body(content: &str) -> &str {
    let body = content
        .strip_prefix(SUMMARY_PREFIX)
        .or_else(|| content.strip_prefix(DROPPED_PREFIX).map(|_| ""))
        .unwrap_or(content);
    let body = body.split(CURRENT_REQUEST).next().unwrap_or(body);
    body.trim()
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

fn capped(text: &str, cap: usize) -> String {
    let mut out = String::new();
    push_capped(&mut out, text, cap);
    out
}

/// The message that replaces the summarized turns.
fn summary_message(summary: &str, current_request: Option<&str>) -> ChatMessage {
    // A model that repeats the header it saw must not nest it.
    let mut text = summary.trim();
    while let Some(rest) = text.strip_prefix(SUMMARY_PREFIX) {
        text = rest.trim_start();
    }
    let mut out = format!("{SUMMARY_PREFIX}\n{text}");
    if let Some(request) = current_request {
        out.push_str(CURRENT_REQUEST);
        out.push_str(request);
    }
    ChatMessage::user(out)
}

/// Drops the oldest turns (keeping an earlier summary when it fits) until the prompt fits
/// `target`, or at least `limit`; then elides the latest tool outputs too. `None` when not
/// even the latest turn fits. Returns the history and how many messages were dropped.
fn drop_oldest(
    messages: &[ChatMessage],
    ledger: &TokenLedger,
    target: u32,
    limit: u32,
) -> Option<(Vec<ChatMessage>, usize)> {
    let summary = messages
        .get(1)
        .filter(|m| m.content.starts_with(SUMMARY_PREFIX));
    let build = |k: usize, keep_summary: bool| {
        let first = if keep_summary { 2 } else { 1 };
        let dropped = k - first;
        let request = latest_request(messages)
            .filter(|&(i, _)| i < k)
            .map(|(_, text)| capped(text, REQUEST_COPY_MAX));
        let mut notice = format!(
            "{DROPPED_PREFIX}: {dropped} message(s) are no longer available. Ask the user or \
             use the tools again for what you need from them.]"
        );
        if let Some(request) = request {
            notice.push_str(CURRENT_REQUEST);
            notice.push_str(&request);
        }
        let mut out = Vec::with_capacity(messages.len() - k + 3);
        out.push(messages[0].clone());
        if keep_summary && let Some(s) = summary {
            out.push(s.clone());
        }
        out.push(ChatMessage::user(notice));
        out.extend_from_slice(&messages[k..]);
        (out, dropped)
    };
    let cuts: Vec<usize> = (2..=messages.len())
        .filter(|&k| k == messages.len() || is_cut_point(&messages[k]))
        .collect();
    for goal in [target, limit] {
        for keep_summary in [summary.is_some(), false] {
            let first = if keep_summary { 3 } else { 2 };
            for &k in cuts.iter().filter(|&&k| k >= first) {
                let (out, dropped) = build(k, keep_summary);
                if dropped > 0 && ledger.prompt_cost(&out) <= goal {
                    return Some((out, dropped));
                }
            }
        }
    }
    // Only the latest turn is left and it is too big: elide its tool outputs as well.
    let last = cuts.iter().rev().find(|&&k| k < messages.len()).copied()?;
    let (out, dropped) = build(last, false);
    let (out, _) = elide(&out, ledger, out.len(), target);
    (ledger.prompt_cost(&out) <= limit).then_some((out, dropped))
}

/// Why nothing fits: the largest message and what to do.
pub(crate) fn overflow_detail(
    messages: &[ChatMessage],
    ledger: &TokenLedger,
    budget: Budget,
    scope: &str,
) -> String {
    let base = ledger.base();
    let largest = messages
        .iter()
        .skip(1)
        .map(|m| (ledger.messages_cost(std::slice::from_ref(m)), m))
        .max_by_key(|(cost, _)| *cost);
    let what = match largest {
        Some((cost, m)) => format!("; its largest message ({}) is ~{cost} tokens", describe(m)),
        None => String::new(),
    };
    // When the fixed part alone is too big, shortening the conversation cannot help.
    let advice = if base >= budget.limit() {
        "The system prompt and tools alone do not fit: offer fewer tools (MCP servers, \
         extra_tools, tool_token_budget), shorten AGENTS.md, raise --context-window (if the \
         model allows more) or lower --max-tokens"
    } else {
        "Shorten the message, raise --context-window (if the model allows more) or lower \
         --max-tokens, or start a new session"
    };
    format!(
        "{scope} does not fit the context window: the system prompt and tools take ~{base} \
         tokens{what}, and the window is {} tokens with {} kept for the reply. {advice}",
        budget.window, budget.reserve
    )
}

fn describe(message: &ChatMessage) -> String {
    match message.role {
        MessageRole::User if is_tool_output(message) => "a tool result".into(),
        MessageRole::User => "your message".into(),
        MessageRole::Tool => format!(
            "the output of {}",
            message.tool_name.as_deref().unwrap_or("a tool")
        ),
        MessageRole::Assistant => "a reply of the model".into(),
        MessageRole::System => "the system prompt".into(),
    }
}

/// Streams a request without tools and returns its text; `None` if cancelled.
async fn collect_text(
    provider: &dyn ModelProvider,
    request: &ChatRequest,
    cancel: &CancellationToken,
) -> Result<Option<String>, ModelError> {
    let mut stream = tokio::select! {
        biased;
        () = cancel.cancelled() => return Ok(None),
        s = provider.chat_stream(request) => s?,
    };
    let mut text = String::new();
    loop {
        let item = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(None),
            item = stream.next() => item,
        };
        match item {
            None | Some(Ok(StreamEvent::Done { .. })) => return Ok(Some(text)),
            Some(Ok(StreamEvent::TextDelta { text: t })) => text.push_str(&t),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanna_model::ToolCall;
    use serde_json::json;

    fn call(id: &str, path: &str) -> ChatMessage {
        ChatMessage::assistant_with_tool_calls(
            "",
            vec![ToolCall {
                id: id.into(),
                name: "read_file".into(),
                arguments: json!({"path": path}),
            }],
        )
    }

    fn history() -> Vec<ChatMessage> {
        vec![
            ChatMessage::system("sys"),
            ChatMessage::user("task"),
            call("1", "a"),
            ChatMessage::tool_result("1", "read_file", "x".repeat(3500)),
            call("2", "b"),
            ChatMessage::tool_result("2", "read_file", "y".repeat(3500)),
            call("3", "c"),
            ChatMessage::tool_result("3", "read_file", "z".repeat(3500)),
        ]
    }

    fn ledger(messages: &[ChatMessage]) -> TokenLedger {
        let mut l = TokenLedger::new();
        l.rebuild(messages);
        l
    }

    #[test]
    fn an_overflow_advises_what_can_help() {
        let h = history();
        let l = ledger(&h);
        // A window the conversation passes but the system prompt fits: shorten it.
        let roomy = Budget::new(2048, Some(256), 0.8);
        let text = overflow_detail(&h, &l, roomy, "the conversation");
        assert!(
            text.contains("its largest message (the output of read_file)"),
            "{text}"
        );
        assert!(text.contains("Shorten the message"), "{text}");
        // The fixed part alone passes the limit: fewer tools, not a shorter message.
        let big = vec![
            ChatMessage::system("s ".repeat(4000)),
            ChatMessage::user("hi"),
        ];
        let l = ledger(&big);
        let tight = Budget::new(1024, Some(256), 0.8);
        let text = overflow_detail(&big, &l, tight, "your message");
        assert!(
            text.contains("alone do not fit: offer fewer tools"),
            "{text}"
        );
        assert!(!text.contains("Shorten the message"), "{text}");
    }

    #[test]
    fn budget_keeps_the_reply_and_triggers_below_the_limit() {
        let b = Budget::new(1536, Some(200), 0.8);
        assert_eq!((b.reserve, b.limit(), b.trigger), (200, 1336, 1228));
        assert_eq!(b.target(224), 224 + (1228 - 224) / 2);
        let b = Budget::new(110_000, None, 0.8);
        assert_eq!((b.reserve, b.trigger), (4096, 88_000));
        let b = Budget::new(1024, Some(4096), 0.95);
        assert_eq!((b.reserve, b.limit(), b.trigger), (512, 512, 512));
    }

    #[test]
    fn elision_goes_oldest_first_spares_the_latest_results_and_says_how_to_get_them_back() {
        let h = history();
        let l = ledger(&h);
        let protect = latest_tool_turn(&h);
        assert_eq!(protect, 6);
        let before = l.prompt_cost(&h);
        // Room for one large output: the first goes.
        let (out, n) = elide(&h, &l, protect, before - 900);
        assert_eq!(n, 1);
        assert!(
            out[3].content.starts_with(ELIDED_PREFIX),
            "{}",
            out[3].content
        );
        assert!(out[3].content.contains("3500 bytes"));
        assert!(
            out[3].content.contains(r#"read_file {"path":"a"}"#),
            "{}",
            out[3].content
        );
        assert_eq!(out[3].tool_call_id.as_deref(), Some("1"));
        assert_eq!(out[5].content, h[5].content);
        // No room at all: every old one goes, never the latest.
        let (out, n) = elide(&h, &l, protect, 0);
        assert_eq!(n, 2);
        assert_eq!(out[7].content, h[7].content);
        // Elided stubs are not elided again.
        let (_, again) = elide(&out, &l, protect, 0);
        assert_eq!(again, 0);
    }

    #[test]
    fn text_tool_results_are_elided_in_their_own_form() {
        let h = vec![
            ChatMessage::system("s"),
            ChatMessage::user("task"),
            ChatMessage::assistant("calling"),
            ChatMessage::user(format!(
                "<tool_result name=\"grep\">\n{}\n</tool_result>",
                "m".repeat(2000)
            )),
            ChatMessage::assistant("more"),
        ];
        let l = ledger(&h);
        let (out, n) = elide(&h, &l, 4, 0);
        assert_eq!(n, 1);
        assert!(
            out[3]
                .content
                .starts_with("<tool_result name=\"grep\">\n[output elided")
        );
        assert!(is_tool_output(&out[3]));
    }

    #[test]
    fn cut_keeps_what_fits_and_never_splits_a_call_from_its_result() {
        let h = history();
        let l = ledger(&h);
        assert_eq!(choose_cut(&h, &l, 1100), Some(6));
        assert_eq!(choose_cut(&h, &l, 2200), Some(4));
        // Nothing fits: everything is summarized.
        assert_eq!(choose_cut(&h, &l, 1), Some(h.len()));
        // Only an earlier summary before the cut: nothing new to summarize there.
        let recap = vec![
            ChatMessage::system("s"),
            summary_message("old", None),
            ChatMessage::user("next"),
        ];
        assert_eq!(choose_cut(&recap, &ledger(&recap), 10_000), Some(3));
        assert_eq!(choose_cut(&recap[..2], &ledger(&recap), 0), None);
    }

    #[test]
    fn summaries_stay_flat() {
        let first = summary_message("facts A", Some("do it"));
        let h = vec![
            ChatMessage::system("s"),
            first.clone(),
            ChatMessage::user("then B"),
            ChatMessage::assistant("ok B"),
        ];
        let text = transcript(&h[1..], 100_000);
        assert!(
            text.starts_with("Summary of the conversation before:\nfacts A\n"),
            "{text}"
        );
        assert!(!text.contains(SUMMARY_PREFIX));
        assert!(!text.contains("verbatim"), "{text}");
        assert!(text.contains("USER: then B"));
        // A model that echoes the header does not nest it.
        let echoed = summary_message(&format!("{SUMMARY_PREFIX}\n{SUMMARY_PREFIX} facts"), None);
        assert_eq!(echoed.content.matches(SUMMARY_PREFIX).count(), 1);
        assert_eq!(latest_request(&h), Some((2, "then B")));
        assert!(
            first
                .content
                .contains("facts A\n\nThe user's current request, verbatim:\ndo it")
        );
    }

    #[test]
    fn transcript_respects_its_budget() {
        let h = history();
        let full = transcript(&h[1..], 100_000);
        assert!(full.contains("USER: task"));
        assert!(full.contains("[called read_file {\"path\":\"a\"}]"));
        assert!(full.contains("TOOL RESULT (read_file): "));
        let small = transcript(&h[1..], 1000);
        assert!(small.len() < 1100, "{}", small.len());
    }

    #[test]
    fn dropping_keeps_the_latest_turns_the_summary_and_the_request() {
        let mut h = vec![
            ChatMessage::system("s"),
            summary_message("old facts", None),
            ChatMessage::user("first question"),
            ChatMessage::assistant("a".repeat(3500)),
            ChatMessage::user("the request"),
            ChatMessage::assistant("b".repeat(3500)),
            ChatMessage::user("c".repeat(350)),
        ];
        let l = ledger(&h);
        let (out, dropped) = drop_oldest(&h, &l, 400, 400).expect("fits");
        assert_eq!(dropped, 4, "{out:#?}");
        assert_eq!(out[1].content, h[1].content, "the summary is kept");
        assert!(out[2].content.starts_with(DROPPED_PREFIX));
        assert!(
            !out[2].content.contains("verbatim"),
            "the latest request is kept as it is"
        );
        assert_eq!(out.last(), h.last());
        // Too small for the summary: it goes too.
        let (out, _) = drop_oldest(&h, &l, 170, 170).expect("fits");
        assert!(out[1].content.starts_with(DROPPED_PREFIX));
        assert!(out.iter().all(|m| !m.content.starts_with(SUMMARY_PREFIX)));
        // The request itself is dropped: the notice carries it word for word.
        let mid_task = vec![
            ChatMessage::system("s"),
            ChatMessage::user("the request"),
            ChatMessage::assistant("a".repeat(3500)),
            ChatMessage::assistant("b".repeat(350)),
        ];
        let (out, dropped) = drop_oldest(&mid_task, &ledger(&mid_task), 200, 200).expect("fits");
        assert_eq!(dropped, 2);
        assert!(
            out[1].content.ends_with("verbatim:\nthe request"),
            "{}",
            out[1].content
        );
        assert_eq!(out[2], mid_task[3]);
        // The only message left is too large: nothing fits.
        h.push(ChatMessage::user("d".repeat(35_000)));
        assert!(drop_oldest(&h, &ledger(&h), 1000, 1000).is_none());
    }
}

//! What the agent reports while it works ([`AgentEvent`]) and how a run ends ([`RunOutcome`]).

use std::path::PathBuf;

use nanna_model::{FinishReason, Usage};
use serde::Serialize;
use serde_json::Value;

/// Progress of a run, in order. Serializes as `{"type": "text_delta", ...}` for JSON-lines output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    /// Emitted once per agent, at the start of its first run.
    SessionStarted {
        /// Session identifier.
        session_id: String,
        /// Model in use.
        model: String,
        /// Workspace directory.
        workspace: PathBuf,
        /// Whether the session was reopened rather than created.
        resumed: bool,
    },
    /// A request was sent; nothing has arrived yet (show a spinner).
    WaitingForModel,
    /// More answer text.
    TextDelta {
        /// The new text.
        text: String,
    },
    /// More reasoning text (thinking models), as it streams.
    ThinkingDelta {
        /// The new text.
        text: String,
    },
    /// A block of reasoning is complete: the model moved on to its answer or its tool calls.
    /// One event per block, so a viewer can fold it; the deltas came before. Kept in the
    /// history and sent back with the tool results.
    Thinking {
        /// The whole block.
        text: String,
    },
    /// A tool call is about to run (approval may follow).
    ToolCall {
        /// Call identifier.
        id: String,
        /// Tool name.
        name: String,
        /// One-line description of the call.
        description: String,
        /// Arguments the model gave.
        arguments: Value,
    },
    /// A tool call finished (or was refused, declined, cancelled).
    ToolResult {
        /// Call identifier.
        id: String,
        /// Tool name.
        name: String,
        /// Whether the tool succeeded.
        ok: bool,
        /// One line for the terminal.
        summary: String,
        /// The text sent to the model.
        output: String,
    },
    /// A model reply is complete.
    TurnEnd {
        /// 1-based turn number within the run.
        turn: u32,
        /// Why the model stopped.
        finish_reason: FinishReason,
        /// Token counts reported by the server.
        usage: Option<Usage>,
        /// The agent's own estimate of the prompt's tokens.
        prompt_tokens_estimate: u32,
    },
    /// The history was rewritten to fit the context window (or because the user asked,
    /// `/compact`). Between two of these the history only grows, so the server's prompt
    /// cache is reused.
    ContextCompacted {
        /// The step of the ladder that made it fit.
        step: CompactionStep,
        /// Whether the user asked for it rather than the window filling up.
        requested: bool,
        /// Prompt tokens before: the server's count of the last request plus an estimate
        /// of what was appended since.
        tokens_before: u32,
        /// Prompt tokens after: the server's count where it has a tokenizer endpoint
        /// (llama.cpp), else the calibrated estimate.
        tokens_after: u32,
        /// Whether the server counted `tokens_after`.
        after_counted: bool,
        /// Messages elided, summarized or dropped.
        messages_compacted: usize,
    },
    /// Something the user should know; the run goes on.
    Warning {
        /// What happened and what to do.
        message: String,
    },
    /// The run failed; the same error is returned by [`Agent::run`](crate::Agent::run).
    Error {
        /// What went wrong.
        message: String,
    },
    /// The run ended (completed, stopped at the turn limit, or cancelled).
    Done {
        /// Model requests made in the run.
        turns: u32,
        /// The model's last answer text.
        final_text: String,
    },
}

/// The steps of the compaction ladder, cheapest and most faithful first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactionStep {
    /// Old tool outputs were replaced by a one-line stub (size, and the call that made them).
    ElideToolOutputs,
    /// Older turns (and the previous summary) were replaced by one summary the model wrote.
    Summarize,
    /// The oldest turns were dropped, with a notice in their place.
    DropOldest,
}

impl CompactionStep {
    /// How the terminal names it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ElideToolOutputs => "old tool outputs elided",
            Self::Summarize => "older turns summarized",
            Self::DropOldest => "oldest turns dropped",
        }
    }
}

/// How a run ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RunOutcome {
    /// The model answered without calling tools.
    Completed {
        /// Model requests made.
        turns: u32,
        /// The final answer.
        final_text: String,
    },
    /// `max_turns` was reached; the history is consistent and a new run can continue.
    MaxTurns {
        /// Model requests made.
        turns: u32,
    },
    /// The user cancelled; unfinished tool calls were answered "cancelled by the user".
    Cancelled {
        /// Model requests made (including the interrupted one).
        turns: u32,
    },
}

impl RunOutcome {
    /// Model requests made in the run.
    pub fn turns(&self) -> u32 {
        match self {
            Self::Completed { turns, .. }
            | Self::MaxTurns { turns }
            | Self::Cancelled { turns } => *turns,
        }
    }
}

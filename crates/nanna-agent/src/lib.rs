//! `nanna-agent`: the agent loop between a model server and the tools.
//!
//! - [`Agent`]: runs a user task as model ↔ tool turns, streaming [`AgentEvent`]s, asking an
//!   [`Approver`] before writes and commands, compacting the history when the context window
//!   fills, and recording everything in a [`Session`].
//! - [`SessionStore`]: conversations as append-only JSON Lines files, resumable after a crash.
//! - [`system_prompt`]: the lean, stable system prompt.
//! - [`parse_text_tool_calls`]: tool calls written as text by models without native tools.
//!
//! Behaviour the rest of Nanna relies on:
//! - **Prompt-cache friendly.** The history is append-only: each request's messages extend
//!   the previous request's, except across an explicit compaction ([`AgentEvent::ContextCompacted`]).
//!   The system prompt has no clock or other changing text.
//! - **Context.** `num_ctx` is the context window of [`AgentConfig::options`] capped at the
//!   model's maximum. The prompt's size is the server's count of the last request plus a per-model calibrated
//!   estimate of what was appended (see [`estimate_text`]). Past
//!   [`AgentConfig::compaction_threshold`] of the window a ladder rewrites the history, each
//!   step only if the previous one was not enough ([`CompactionStep`]): old tool outputs are
//!   elided, older turns summarized by the model (flat; rejected unless shorter), the oldest
//!   turns dropped with a notice. A prompt that does not fit the window minus the reply's
//!   share is never sent ([`AgentError::ContextOverflow`]). [`Agent::compact`] compacts on
//!   request.
//! - **Tools.** Only the tools the session's policy lets run are offered: no write tools in
//!   `read-only`, no `shell` where the OS sandbox cannot enforce the mode (a warning says
//!   why). Read-only calls of one reply run concurrently, the others in order; write calls
//!   are refused in `read-only`; write and exec calls need the [`Approver`] under
//!   [`ApprovalPolicy::Ask`], except commands in a `read-only` sandbox without network, which
//!   cannot change anything. Every command runs in the session's `nanna_sandbox::Sandbox`.
//!   Failures (unknown tool, bad arguments, refusals) go back to the
//!   model as `error: ...` results. Models without native tool calling get the tools
//!   described in the system prompt, and their results back as `<tool_result>` user messages.
//! - **Sessions.** One JSON Lines file per conversation, one record per message written and
//!   flushed as it happens; reopening repairs a partial last line and unanswered tool calls.

mod agent;
mod approval;
mod compaction;
mod config;
mod error;
mod event;
#[doc(hidden)]
pub mod fuzzing;
mod prompt;
mod session;
mod textcalls;
mod tokens;

pub use agent::Agent;
pub use approval::{ApprovalDecision, ApprovalRequest, Approver, FixedApprover, offered};
pub use config::{AgentConfig, ApprovalPolicy};
pub use error::{AgentError, SessionError};
pub use event::{AgentEvent, CompactionStep, RunOutcome};
pub use prompt::{AGENTS_MD_MAX_BYTES, system_prompt, text_tool_instructions};
pub use session::{Session, SessionHeader, SessionMeta, SessionStore, SessionSummary};
pub use textcalls::{TextCallForms, TextToolCall, parse_text_tool_calls, strip_calls};
pub use tokens::{estimate_message, estimate_text};

pub use nanna_tools::Effect;
pub use tokio_util::sync::CancellationToken;

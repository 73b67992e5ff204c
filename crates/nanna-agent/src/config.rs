//! [`AgentConfig`] and the policies that bound what the agent may do.

use std::path::PathBuf;

use nanna_model::{ChatOptions, DEFAULT_CONTEXT_WINDOW};
use nanna_sandbox::Policy;
use nanna_tools::Limits;

/// When the user is asked before a tool call that writes or executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApprovalPolicy {
    /// Ask the [`Approver`](crate::Approver) before every write or exec call (unless the user
    /// answered "always" for that tool).
    #[default]
    Ask,
    /// Run every allowed call without asking.
    Auto,
}

/// Settings of an [`Agent`](crate::Agent). Build with [`AgentConfig::new`] and adjust fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// Model name as the server knows it.
    pub model: String,
    /// What every request carries (`nanna_config::Config::chat_options` fills it): the
    /// context window asked for (capped at the model's maximum when the server reports one,
    /// and sent as Ollama's `num_ctx`; [`DEFAULT_CONTEXT_WINDOW`] when unset), sampling,
    /// keep-alive, thinking, and the token cap per reply, which is also the share of the
    /// window the prompt leaves free for the reply (unset: an eighth of the window, 256 to
    /// 4096 tokens).
    pub options: ChatOptions,
    /// Maximum model requests per [`Agent::run`](crate::Agent::run); `None` means no limit.
    pub max_turns: Option<u32>,
    /// Directory the tools work in.
    pub workspace: PathBuf,
    /// Whether tools are offered to the model at all.
    pub tools_enabled: bool,
    /// What write tools may do and what commands run under (mode, network, environment):
    /// write tools are refused in `read-only`, `shell` runs in the OS sandbox of the mode.
    pub sandbox: Policy,
    /// Whether write and exec calls need the user's approval.
    pub approval: ApprovalPolicy,
    /// Fraction of the context window past which the history is compacted (default 0.8;
    /// never past the window minus the reply's share).
    pub compaction_threshold: f32,
    /// Output and time bounds of tool calls.
    pub tool_limits: Limits,
    /// Whether the model calls tools natively: `None` asks the server (Ollama's `/api/show`
    /// capabilities; assumed yes when the server does not say).
    pub native_tools: Option<bool>,
    /// Whether bare or fenced JSON in a reply counts as a tool call even for a model with
    /// native tool calling. Off by default: a fenced block that shows an example would run.
    /// Explicit `<tool_call>` markup always counts.
    pub json_tool_calls: bool,
}

impl AgentConfig {
    /// A configuration for `model` working in `workspace`, with defaults: a 110,000-token
    /// window, 50 turns, tools on, workspace-write sandbox without network, ask before writes
    /// and commands.
    pub fn new(model: impl Into<String>, workspace: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            options: ChatOptions {
                context_window: Some(DEFAULT_CONTEXT_WINDOW),
                ..ChatOptions::default()
            },
            max_turns: Some(50),
            workspace: workspace.into(),
            tools_enabled: true,
            sandbox: Policy::default(),
            approval: ApprovalPolicy::default(),
            compaction_threshold: 0.8,
            tool_limits: Limits::default(),
            native_tools: None,
            json_tool_calls: false,
        }
    }
}

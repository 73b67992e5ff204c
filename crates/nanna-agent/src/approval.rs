//! The gate every write and exec call passes: the sandbox policy, then the approval policy
//! ([`Approver`]).

use std::collections::HashSet;

use async_trait::async_trait;
use nanna_model::ToolCall;
use nanna_sandbox::{Sandbox, SandboxMode};
use nanna_tools::{Effect, Tool, ToolError};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::{AgentConfig, ApprovalPolicy};

/// The user's answer to an [`ApprovalRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalDecision {
    /// Run this call.
    Yes,
    /// Do not run it; the model is told the user declined.
    No,
    /// Run it, and every later call of the same tool in this session, without asking.
    Always,
}

/// A tool call waiting for the user's approval.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRequest {
    /// Tool name.
    pub tool: String,
    /// What the tool does to the world.
    pub effect: Effect,
    /// One-line description of the call (`Tool::describe`).
    pub description: String,
    /// The arguments the model gave.
    pub arguments: Value,
}

/// Decides whether a write or exec tool call may run (a terminal prompt, a test double...).
#[async_trait]
pub trait Approver: Send + Sync {
    /// Answers one request. Cancellation of the run is handled by the agent.
    async fn approve(&self, req: &ApprovalRequest) -> ApprovalDecision;
}

/// An [`Approver`] that gives the same answer to every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedApprover(pub ApprovalDecision);

#[async_trait]
impl Approver for FixedApprover {
    async fn approve(&self, _req: &ApprovalRequest) -> ApprovalDecision {
        self.0
    }
}

/// Applies the sandbox and approval policies to a call of `tool`. `Err` is the refusal to
/// send to the model instead of running it. "Always" answers are remembered in `always`.
pub(crate) async fn gate(
    call: &ToolCall,
    tool: &dyn Tool,
    config: &AgentConfig,
    sandbox: &Sandbox,
    always: &mut HashSet<String>,
    approver: &dyn Approver,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let effect = tool.effect();
    if effect == Effect::ReadOnly {
        return Ok(());
    }
    if !config.tools_enabled {
        return Err("tools are turned off in this session".into());
    }
    let mode = config.sandbox.mode;
    if effect == Effect::Write && mode == SandboxMode::ReadOnly {
        return Err(format!(
            "refused: this session is read-only (sandbox read-only), so `{}` may not change \
             files. Tell the user what you would change instead",
            call.name
        ));
    }
    if effect == Effect::Exec {
        if let Err(e) = sandbox.check() {
            return Err(format!(
                "refused: {e}. Do not retry; tell the user what you would run"
            ));
        }
        // Nothing a read-only sandbox without network runs can change anything.
        if mode == SandboxMode::ReadOnly && config.sandbox.network_denied() {
            return Ok(());
        }
    }
    if config.approval == ApprovalPolicy::Auto || always.contains(&call.name) {
        return Ok(());
    }
    let request = ApprovalRequest {
        tool: call.name.clone(),
        effect,
        description: tool.describe(&call.arguments),
        arguments: call.arguments.clone(),
    };
    let decision = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(ToolError::Cancelled.to_string()),
        decision = approver.approve(&request) => decision,
    };
    match decision {
        ApprovalDecision::Yes => Ok(()),
        ApprovalDecision::Always => {
            always.insert(call.name.clone());
            Ok(())
        }
        ApprovalDecision::No => Err(
            "the user declined this call. Do not retry it; ask the user \
             how to proceed or take another approach"
                .into(),
        ),
    }
}

/// Whether a session with `config` offers a tool with `effect`, given whether its sandbox
/// can enforce the mode: no write tools in `read-only`, no commands where the sandbox
/// cannot confine them.
pub(crate) fn offers(effect: Effect, config: &AgentConfig, sandbox_enforced: bool) -> bool {
    offered(effect, config.sandbox.mode, sandbox_enforced)
}

/// The same rule for anything that serves nanna's tools under a sandbox mode (`nanna
/// mcp-server`): reading tools always, write tools unless `read-only`, commands only where
/// the sandbox can confine them.
pub fn offered(effect: Effect, mode: SandboxMode, sandbox_enforced: bool) -> bool {
    match effect {
        Effect::ReadOnly => true,
        Effect::Write => mode != SandboxMode::ReadOnly,
        Effect::Exec => sandbox_enforced,
    }
}

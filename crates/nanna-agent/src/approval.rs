//! Asking the user before a tool call changes something: [`Approver`].

use async_trait::async_trait;
use nanna_tools::Effect;
use serde_json::Value;

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

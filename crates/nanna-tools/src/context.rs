//! [`ToolContext`] and [`Limits`]: what a tool call runs against.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nanna_sandbox::{Policy, Sandbox};
use tokio_util::sync::CancellationToken;

use crate::error::ToolError;

/// Bounds applied to every tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum bytes of tool output sent to the model; longer output is cut with a note.
    pub max_output_bytes: usize,
    /// Default time limit of a `shell` call.
    pub shell_timeout: Duration,
    /// Default and maximum number of lines `read_file` returns per call.
    pub max_read_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_output_bytes: 32 * 1024,
            shell_timeout: Duration::from_secs(120),
            max_read_lines: 2000,
        }
    }
}

/// Where and how a tool call runs.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// Workspace root, canonicalized. File tools never reach outside it.
    pub workspace: PathBuf,
    /// Fires when the user cancels; long-running tools stop promptly.
    pub cancel: CancellationToken,
    /// Output and time bounds.
    pub limits: Limits,
    /// Where commands run: `shell` starts every process through it.
    pub sandbox: Arc<Sandbox>,
}

impl ToolContext {
    /// A context for `workspace` (canonicalized here) with default limits, a fresh token
    /// and a sandbox with the default policy (workspace-write, no network).
    pub fn new(workspace: impl AsRef<Path>) -> Result<Self, ToolError> {
        let root = workspace.as_ref();
        let sandbox = Sandbox::new(Policy::default(), root).map_err(|e| match e {
            nanna_sandbox::SandboxError::Io { source, .. } => ToolError::io(root, &source),
            other => ToolError::Failed(other.to_string()),
        })?;
        Ok(Self::with_sandbox(Arc::new(sandbox)))
    }

    /// A context for the sandbox's workspace, with default limits and a fresh token.
    pub fn with_sandbox(sandbox: Arc<Sandbox>) -> Self {
        Self {
            workspace: sandbox.workspace().to_path_buf(),
            cancel: CancellationToken::new(),
            limits: Limits::default(),
            sandbox,
        }
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Replaces the cancellation token.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }
}

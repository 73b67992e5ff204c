//! [`ToolError`]: what went wrong with a tool call, worded for the model to act on.

use std::path::PathBuf;
use std::time::Duration;

/// Why a tool call failed. The `Display` text is sent back to the model, so each message
/// says what was wrong and what to do instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// The model called a tool that is not registered.
    #[error("unknown tool `{name}`; call one of: {}", available.join(", "))]
    UnknownTool {
        /// The name the model used.
        name: String,
        /// Names of the registered tools.
        available: Vec<String>,
    },
    /// The arguments do not match the tool's schema.
    #[error("invalid arguments for `{tool}`: {detail}")]
    InvalidArguments {
        /// The tool called.
        tool: String,
        /// What was wrong and how to fix it.
        detail: String,
    },
    /// A path resolves outside the workspace.
    #[error("`{}` is outside the workspace; paths must stay inside it: use a path relative to the workspace root", path.display())]
    PathOutsideWorkspace {
        /// The path as given.
        path: PathBuf,
    },
    /// A path does not exist.
    #[error("`{}` does not exist; check the path with list_dir or glob", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// A filesystem operation failed.
    #[error("cannot access `{}`: {detail}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The operating system's message.
        detail: String,
    },
    /// The tool ran longer than allowed and was killed. The message carries what it printed
    /// before the kill, so the model can see where it hung.
    #[error("{}", timeout_message(*after, output))]
    Timeout {
        /// The time limit that was hit.
        after: Duration,
        /// What the tool printed before it was killed, already bounded (head and tail kept,
        /// the cut stated); may be empty.
        output: String,
    },
    /// The call was cancelled by the user.
    #[error("cancelled by the user")]
    Cancelled,
    /// The tool failed for another reason, described in full.
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    /// An [`ToolError::Io`] for `path` from an I/O error.
    pub fn io(path: impl Into<PathBuf>, err: &std::io::Error) -> Self {
        let path = path.into();
        if err.kind() == std::io::ErrorKind::NotFound {
            return Self::NotFound { path };
        }
        Self::Io {
            path,
            detail: err.to_string(),
        }
    }
}

/// The text of [`ToolError::Timeout`]: what happened and what to do, then the output
/// produced before the kill and the exit status, laid out like a normal `shell` result.
fn timeout_message(after: Duration, output: &str) -> String {
    let secs = after.as_secs();
    let output = if output.trim().is_empty() {
        "(no output)"
    } else {
        output
    };
    let newline = if output.ends_with('\n') { "" } else { "\n" };
    format!(
        "timed out after {secs}s and was killed; raise timeout_secs (up to its maximum) or run \
         the command in a way that finishes sooner (e.g. a narrower test filter, or a flag that \
         avoids waiting for input). Output before the kill:\n\
         {output}{newline}[killed after {secs}s (timeout)]"
    )
}

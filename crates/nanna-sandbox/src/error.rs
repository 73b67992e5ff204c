//! [`SandboxError`]: why a command could not be set up.

use crate::mode::SandboxMode;

/// Why a command could not be put in the sandbox. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The kernel (or the missing bubblewrap) cannot enforce the mode: the command is
    /// refused rather than run unconfined.
    #[error("the {mode} sandbox cannot be enforced on this machine: {reason}; to fix: {fix}")]
    Unsupported {
        /// The mode asked for.
        mode: SandboxMode,
        /// What is missing.
        reason: String,
        /// What to do.
        fix: String,
    },
    /// The seccomp filter could not be built for this architecture.
    #[error("cannot build the seccomp filter: {0}")]
    Filter(String),
    /// A file or pipe the sandbox needs could not be made.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl SandboxError {
    /// What is missing or went wrong, without the fix.
    pub fn reason(&self) -> String {
        match self {
            Self::Unsupported { reason, .. } => reason.clone(),
            other => other.to_string(),
        }
    }

    /// What to do, when known.
    pub fn fix(&self) -> Option<&str> {
        match self {
            Self::Unsupported { fix, .. } => Some(fix),
            _ => None,
        }
    }
}

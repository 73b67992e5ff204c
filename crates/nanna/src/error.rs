//! [`CliError`]: what can make a command fail, and the exit code it maps to.

use std::process::ExitCode;

use nanna_model::ModelError;

/// Exit code of a failed run (model error, bad settings...).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code when the agent stopped at the turn limit.
pub const EXIT_MAX_TURNS: u8 = 3;
/// Exit code when the user cancelled (Ctrl-C), as shells report SIGINT.
pub const EXIT_CANCELLED: u8 = 130;

/// Why a command failed. Each message says what was wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The model server failed.
    #[error("{0}")]
    Model(#[from] ModelError),
    /// Settings (flags, config file, environment) are wrong.
    #[error("{0}")]
    Config(String),
    /// A health check failed; details were already printed.
    #[error("unhealthy: {failed} of {total} checks failed (see the ✗ lines above for the fix)")]
    Unhealthy {
        /// Failed checks.
        failed: usize,
        /// All checks.
        total: usize,
    },
    /// The agent stopped at the turn limit.
    #[error("stopped after {0} turns without finishing; raise --max-turns or narrow the task")]
    MaxTurns(u32),
    /// The user cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The agent failed.
    #[error("{0}")]
    Agent(String),
    /// Input or output failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Anything else, already worded for the user.
    #[error("{0}")]
    Other(String),
    /// A failure already shown to the user; only the exit code is left to set.
    #[error("{message}")]
    Reported {
        /// What failed (not printed again).
        message: String,
        /// The exit code.
        code: u8,
    },
}

impl CliError {
    /// An I/O error while doing `context`.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Marks this error as already shown to the user.
    pub fn reported(self) -> Self {
        let code = match self {
            Self::MaxTurns(_) => EXIT_MAX_TURNS,
            Self::Cancelled => EXIT_CANCELLED,
            Self::Reported { code, .. } => code,
            _ => EXIT_FAILURE,
        };
        Self::Reported {
            message: self.to_string(),
            code,
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Reported { code, .. } => *code,
            Self::MaxTurns(_) => EXIT_MAX_TURNS,
            Self::Cancelled => EXIT_CANCELLED,
            _ => EXIT_FAILURE,
        })
    }
}

/// Result alias for commands.
pub type Result<T> = std::result::Result<T, CliError>;

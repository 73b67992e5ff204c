//! [`AgentError`] and [`SessionError`]: what can stop the agent, worded so a person can act.

use std::path::PathBuf;

use nanna_model::ModelError;

/// Why a session could not be created, opened, listed or written.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No session has this id (or id prefix).
    #[error("no session `{id}` in {}; list sessions with `nanna sessions`", dir.display())]
    NotFound {
        /// The id asked for.
        id: String,
        /// The sessions directory.
        dir: PathBuf,
    },
    /// `last` was asked for but there is no session yet.
    #[error("there are no sessions in {} yet; start one without --resume", dir.display())]
    NoSessions {
        /// The sessions directory.
        dir: PathBuf,
    },
    /// An id prefix matches several sessions.
    #[error("`{id}` matches several sessions ({}); give more of the id", candidates.join(", "))]
    Ambiguous {
        /// The prefix asked for.
        id: String,
        /// Matching ids.
        candidates: Vec<String>,
    },
    /// A session id that could escape the sessions directory.
    #[error("`{id}` is not a valid session id; ids look like 20261126T123456-ab12")]
    InvalidId {
        /// The id given.
        id: String,
    },
    /// A filesystem operation failed.
    #[error("session file {}: {detail}; check the directory exists and is writable", path.display())]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The operating system's message.
        detail: String,
    },
    /// The file does not start with a session header.
    #[error("{} is not a Nanna session (first line: {detail}); remove it or pick another session", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// Another process is writing the session.
    #[error(
        "session `{id}` is in use by another nanna process ({}); wait for it to finish, or \
         continue it without saving with --session-read-only",
        pid.map_or_else(|| "process id unknown".to_owned(), |pid| format!("pid {pid}"))
    )]
    Locked {
        /// The session.
        id: String,
        /// The process holding it, when it could be read.
        pid: Option<u32>,
    },
    /// Neither `XDG_DATA_HOME` nor `HOME` is set.
    #[error("cannot find a place for sessions: set XDG_DATA_HOME or HOME")]
    NoDataDir,
}

impl SessionError {
    pub(crate) fn io(path: impl Into<PathBuf>, err: &std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            detail: err.to_string(),
        }
    }
}

/// Why the agent could not start or finish a run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The model server failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The session store failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The prompt cannot be made to fit the context window, even by the last step of the
    /// compaction ladder (for instance one message larger than the window). Nothing was sent.
    #[error("{detail}")]
    ContextOverflow {
        /// What is too big, by how much, and what to do.
        detail: String,
    },
    /// The workspace cannot be used.
    #[error("workspace {}: {detail}; pass an existing directory with --workspace", path.display())]
    Workspace {
        /// The workspace given.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The session's sandbox could not be set up.
    #[error(transparent)]
    Sandbox(#[from] nanna_sandbox::SandboxError),
}

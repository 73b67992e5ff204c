//! Errors of the testkit.

/// What went wrong starting or configuring a scripted server.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The listen address could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; pick a free port (e.g. 127.0.0.1:0) or stop whatever uses it"
    )]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The listen address could not be understood.
    #[error(
        "invalid listen address {addr:?}: {reason}; use HOST:PORT such as 127.0.0.1:11434 or 0.0.0.0:11434"
    )]
    Address {
        /// The address given.
        addr: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A script, model or record file could not be read or opened.
    #[error("cannot read or open {path}: {source}; check the path and its permissions")]
    ReadFile {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A script or model list did not parse.
    #[error(
        "invalid script or model file {origin}: {message}; see crates/nanna-testkit/README.md for the format"
    )]
    Parse {
        /// Where the text came from (a path, or `<json>`/`<yaml>` for strings).
        origin: String,
        /// The parser's message.
        message: String,
    },
}

impl TestkitError {
    pub(crate) fn parse(origin: &str, err: impl std::fmt::Display) -> Self {
        TestkitError::Parse {
            origin: origin.to_owned(),
            message: err.to_string(),
        }
    }
}

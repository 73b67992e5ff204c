//! [`Origin`] (where a value came from) and [`ConfigError`] (what is wrong, and where).

use std::fmt;
use std::path::PathBuf;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Built into Nanna.
    Default,
    /// A configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag (`--model`), or a `-c key=value` override (named with its text).
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

impl serde::Serialize for Origin {
    /// As in messages: `file /etc/nanna/config.toml`, `environment variable NANNA_MODEL`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A configuration that could not be loaded, naming the setting, the value, where it came
/// from and what is accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A value is out of range, of the wrong type, or not understood; or a `-c` override
    /// names no setting.
    #[error("invalid {setting} `{value}` (from {origin}{}): {reason}", Position(*position))]
    Invalid {
        /// The setting (its key in the file, e.g. `idle_timeout_secs`).
        setting: String,
        /// The value as given (credentials in URLs redacted).
        value: String,
        /// Where it came from.
        origin: Origin,
        /// Line and column (1-based) in the file, for a value from a file.
        position: Option<(u32, u32)>,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// A configuration file is not valid TOML or has a key that is no setting.
    #[error("{}:{line}:{column}: {message}; fix the file or move it aside", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: u32,
        /// 1-based column of the problem.
        column: u32,
        /// What is wrong.
        message: String,
    },
    /// A configuration file exists (or was named) but cannot be read.
    #[error("cannot read configuration file {}: {detail}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying cause.
        detail: String,
    },
}

/// `, line L, column C` when known.
struct Position(Option<(u32, u32)>);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, column)) => write!(f, ", line {line}, column {column}"),
            None => Ok(()),
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_and_column(text: &str, offset: usize) -> (u32, u32) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    (small(line), small(column))
}

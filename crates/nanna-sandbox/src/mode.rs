//! [`SandboxMode`] and [`Policy`]: what a command started for the model may do.

use std::fmt;
use std::str::FromStr;

use crate::env::EnvPolicy;

/// How much a command started for the model may change on the machine. The one name for
/// this concept: the agent, the tools and the command line all use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum SandboxMode {
    /// Reads anywhere the user can; writes nowhere (a private, discarded `/tmp` excepted).
    ReadOnly,
    /// Writes only in the workspace and the session's temporary directory (`TMPDIR`);
    /// `.git/hooks` and `.git/config` stay read-only.
    #[default]
    WorkspaceWrite,
    /// No confinement of files or network (dangerous); commands still end with their call.
    Full,
}

impl SandboxMode {
    /// Every mode, strictest first.
    pub const ALL: [Self; 3] = [Self::ReadOnly, Self::WorkspaceWrite, Self::Full];

    /// The name used in flags and files: `read-only`, `workspace-write`, `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::WorkspaceWrite => "workspace-write",
            Self::Full => "full",
        }
    }

    /// Whether the kernel must confine this mode's file writes (and, by default, network).
    pub fn is_confined(self) -> bool {
        !matches!(self, Self::Full)
    }
}

impl fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode name that is not one of [`SandboxMode::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sandbox mode `{0}`; use read-only, workspace-write or full")]
pub struct UnknownMode(pub String);

impl FromStr for SandboxMode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == wanted)
            .ok_or_else(|| UnknownMode(s.to_owned()))
    }
}

/// Everything that bounds a command: the mode, the network and the environment it gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// File-system confinement.
    pub mode: SandboxMode,
    /// Whether commands may use the network (and the host's Unix sockets) in `read-only`
    /// and `workspace-write`. `full` always has the network.
    pub network: bool,
    /// Which environment variables commands inherit.
    pub env: EnvPolicy,
}

impl Policy {
    /// A policy of `mode` with the network denied and the default environment scrubbing.
    pub fn new(mode: SandboxMode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// Whether commands are cut off from the network.
    pub fn network_denied(&self) -> bool {
        self.mode.is_confined() && !self.network
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_say_what_is_accepted() {
        for mode in SandboxMode::ALL {
            assert_eq!(mode.as_str().parse::<SandboxMode>(), Ok(mode));
            assert_eq!(mode.to_string(), mode.as_str());
        }
        assert_eq!(
            "Workspace_Write".parse::<SandboxMode>(),
            Ok(SandboxMode::WorkspaceWrite)
        );
        let err = "danger".parse::<SandboxMode>().unwrap_err().to_string();
        assert!(err.contains("read-only, workspace-write or full"), "{err}");
    }

    #[test]
    fn network_is_denied_by_default_except_in_full() {
        assert!(Policy::new(SandboxMode::ReadOnly).network_denied());
        assert!(Policy::new(SandboxMode::WorkspaceWrite).network_denied());
        assert!(!Policy::new(SandboxMode::Full).network_denied());
        let open = Policy {
            network: true,
            ..Policy::new(SandboxMode::WorkspaceWrite)
        };
        assert!(!open.network_denied());
    }
}

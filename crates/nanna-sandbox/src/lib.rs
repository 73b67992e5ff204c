//! `nanna-sandbox`: runs the commands the model asks for under an OS-enforced policy.
//!
//! - [`SandboxMode`] (`read-only`, `workspace-write`, `full`) and [`Policy`] (the mode, the
//!   network, the environment): the one vocabulary of the agent, the tools and the CLI.
//! - [`Sandbox::command`]: "run this program under this policy" as a
//!   [`std::process::Command`] the caller spawns; refused with
//!   [`SandboxError::Unsupported`] when the kernel cannot enforce the mode.
//! - [`Support`]: which protections this machine enforces (`nanna health`).
//!
//! The mechanism is bubblewrap (namespaces) plus a seccomp filter; ARCHITECTURE.md says
//! why, and README.md what each mode guarantees and what it does not.
//!
//! ```no_run
//! # fn demo() -> Result<(), nanna_sandbox::SandboxError> {
//! use nanna_sandbox::{Policy, Sandbox, SandboxMode};
//! let sandbox = Sandbox::new(Policy::new(SandboxMode::WorkspaceWrite), ".".as_ref())?;
//! let status = sandbox.shell("make test")?.status();
//! # let _ = status;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod env;
mod error;
mod mode;
mod sandbox;
mod seccomp;
mod support;
mod tmpdir;

pub use env::{EnvPolicy, InvalidPattern};
pub use error::SandboxError;
pub use mode::{Policy, SandboxMode, UnknownMode};
pub use sandbox::Sandbox;
pub use support::{BWRAP_ENV, Bubblewrap, Protection, Support};

//! `nanna-tools`: the [`Tool`] trait, the [`ToolRegistry`] that validates arguments and runs
//! tools, and Nanna Coder's built-in coding tools.
//!
//! Built-ins ([`ToolRegistry::with_builtins`]): `read_file`, `write_file`, `edit_file`,
//! `list_dir`, `glob`, `grep`, `shell`, `echo`, `calculate`; the default coding set
//! ([`ToolRegistry::coding`]) leaves out `echo` and `calculate`. File tools are confined to
//! [`ToolContext::workspace`] (no `..`, absolute or symlink escapes, checked again at the
//! moment of use through a handle on the root, so a concurrent symlink swap cannot win);
//! listing and search honour `.gitignore`; `shell` runs `sh -c` through
//! [`ToolContext::sandbox`] (see `nanna-sandbox`), in its own process group, killed as a whole
//! on timeout or cancellation, every process it started ending with it. Errors
//! ([`ToolError`]) are worded for the model.
//!
//! ```no_run
//! # async fn demo() -> Result<(), nanna_tools::ToolError> {
//! use nanna_tools::{ToolContext, ToolRegistry};
//! let registry = ToolRegistry::with_builtins();
//! let ctx = ToolContext::new(".")?;
//! let out = registry
//!     .execute("read_file", serde_json::json!({"path": "Cargo.toml", "limit": 20}), &ctx)
//!     .await?;
//! println!("{}\n{}", out.summary, out.content);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod atomic;
mod builtins;
mod context;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod output;
mod registry;
mod schema;
mod tool;
mod workspace;

pub use context::{Limits, ToolContext};
pub use error::ToolError;
pub use registry::ToolRegistry;
pub use tool::{Effect, Tool, ToolOutput};

//! `nanna-model`: the typed chat protocol Nanna Coder speaks, and the providers that
//! carry it to model servers.
//!
//! - [`types`]: messages, tool definitions with a typed JSON Schema, requests, responses,
//!   stream events, model metadata.
//! - [`provider`]: the [`ModelProvider`] trait every backend implements and [`ModelError`],
//!   errors worded so a person can act on them.

pub mod provider;
pub mod types;

pub use provider::{ChatStream, ModelError, ModelProvider, PullStream, Result};
pub use types::*;

/// Everything a typical caller needs, in one import.
pub mod prelude {
    pub use crate::provider::{ChatStream, ModelError, ModelProvider, PullStream};
    pub use crate::types::*;
}

//! Nanna Coder deployment: detection of GPUs and container engines, the container recipe
//! the model server needs on this machine, and the stack (model server + assistant) on
//! Podman or Docker.
//!
//! Entry points: [`detect::detect`] / [`detect::detect_offline`] (what the host has),
//! [`stack::locate`] / [`stack::connect`] (an engine), and the stack operations
//! [`stack::up`], [`stack::down`], [`stack::status`]... which take a [`stack::StackContext`]
//! and report progress as [`DeployEvent`]s. The library never prints; the `nanna-deploy`
//! binary renders.

pub mod accelerator;
pub mod detect;
pub mod engine;
pub mod event;
pub mod gpu;
pub mod host;
pub mod recipe;
pub mod recommend;
mod resources;
pub mod stack;

pub use accelerator::{Accelerator, GpuChoice};
pub use detect::{DetectError, DetectOptions, Detection, Warning, detect, detect_offline};
pub use engine::{Engine, EngineChoice, EngineError, EngineKind};
pub use event::{DeployEvent, Reporter};
pub use gpu::{Gpu, GpuInventory};
pub use host::{HostRoot, ProbeEnv};
pub use recommend::Recommendation;
pub use resources::HostResources;

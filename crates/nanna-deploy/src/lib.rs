//! Nanna Coder deployment: detection of GPUs and container engines, and the container recipe
//! (image, devices, groups, environment) the model server needs on this machine.
//!
//! Entry points: [`detect::detect`] (everything, optionally probing engine sockets),
//! [`detect::detect_offline`] (no sockets), [`engine::connect`] (a ready engine client) and
//! [`recommend::Recommendation`] (what to give the model-server container).

pub mod cli;
pub mod detect;
pub mod engine;
pub mod gpu;
pub mod host;
pub mod recommend;
pub mod report;
pub mod resources;
pub mod stack;

pub use detect::{DetectError, DetectOptions, Detection, Warning, detect, detect_offline};
pub use engine::{Engine, EngineChoice, EngineError, EngineKind, connect};
pub use gpu::{Gpu, GpuInventory, GpuVendor};
pub use host::{HostRoot, ProbeEnv};
pub use recommend::{Accelerator, GpuChoice, Recommendation};

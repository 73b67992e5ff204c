//! The Nanna stack: an Ollama model server and the assistant (`nanna serve`) in containers,
//! on a user-defined network or in a Podman pod, managed through the engine's API.
//!
//! Layers, each using only the ones below it:
//!
//! - pure: [`spec`] (the desired state: one value a renderer reads), `confinement` (the
//!   containers' confinement, `images/container-security.json`, shared with Nix), [`validate`] (input
//!   checks shared by every command), [`plan`] (desired vs actual), [`bodies`] (engine
//!   request bodies rendered from the spec), [`export`] (the same spec as Kubernetes
//!   manifests or a Compose file);
//! - engine state: `state` (find by label, inspect, create by name without duplicates,
//!   stop and remove, exec) and `podman` (libpod: pods, CDI devices);
//! - `probe` (health probes, device checks), `images`, `model` (the model server through
//!   `nanna-model`), `lock` (one writer per stack), `record` (which engine a stack runs
//!   on), `wait` (health waits that watch the containers);
//! - commands: `apply` ([`up`], [`update`]) and `ops` ([`down`], [`status`], [`logs`],
//!   [`restart`], [`exec`], [`attach`]).
//!
//! Nothing here prints: progress goes to the context's [`Reporter`] as
//! [`DeployEvent`](crate::event::DeployEvent)s, failures come back as [`StackError`]s.

mod apply;
pub mod bodies;
mod confinement;
mod error;
pub mod export;
mod images;
mod lock;
mod model;
mod ops;
pub mod plan;
mod podman;
mod probe;
mod record;
pub mod spec;
mod state;
pub mod validate;
mod wait;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use apply::{UpOptions, UpReport, desired, up, update};
pub use error::{ImageRole, StackError};
pub use images::{
    BuildReport, BuildRequest, DEFAULT_PULL_TIMEOUT, build, image_id, is_local_reference, load,
    spec_for,
};
pub use lock::{DEFAULT_LOCK_WAIT, LABEL_CLAIM};
pub use model::pull_model;
pub use ops::{
    DownOptions, DownReport, LogLine, ServiceStatus, StackStatus, attach, default_command, down,
    exec, exit_code, logs, resize, restart, status,
};
pub use plan::{Plan, Step};
pub use probe::{DeviceCheck, Health, health_path, in_container_check, probe, verify_devices};
pub use record::{EngineRecord, StackRecord, locate};
pub use spec::{Layout, Service, StackSettings, StackSpec};
pub use state::{Attached, ExecRequest, actual};

use crate::engine::{self, Engine, EngineChoice};
use crate::event::Reporter;
use crate::host::ProbeEnv;

/// How long one engine request may take before bollard gives up waiting for its answer
/// (stopping a container waits its grace; loading a large image takes a while).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// What every stack operation works with: the engine, the host, where events go, and the
/// signal to stop (SIGINT/SIGTERM in the binary). Operations that change the stack roll
/// back what they created when `cancel` fires.
pub struct StackContext<'a> {
    /// The engine.
    pub engine: &'a Engine,
    /// The host (GPU detection, the user's home, where stacks are remembered).
    pub env: &'a ProbeEnv,
    /// Where events go.
    pub events: &'a dyn Reporter,
    /// Cancelled to stop the operation.
    pub cancel: CancellationToken,
}

impl<'a> StackContext<'a> {
    /// A context that reports nothing and is never cancelled.
    pub fn quiet(engine: &'a Engine, env: &'a ProbeEnv) -> Self {
        Self {
            engine,
            env,
            events: &crate::event::Silent,
            cancel: CancellationToken::new(),
        }
    }
}

/// Connects to the engine `choice` selects through [`engine::connect`] (one `GET /_ping` per
/// candidate; its error lists what was tried and how to start an engine), with a request
/// timeout long enough for image loads and stops.
pub async fn connect(choice: EngineChoice, env: &ProbeEnv) -> Result<Engine, StackError> {
    let mut engine = engine::connect(choice, env).await?;
    engine.client.set_timeout(REQUEST_TIMEOUT);
    Ok(engine)
}

/// A duration as people read it, exactly: `5 s`, `1.5 s`, `250 ms`, `2 min 30 s`.
pub fn fmt_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis} ms");
    }
    let secs = duration.as_secs();
    if secs >= 60 && duration.subsec_millis() == 0 {
        let (minutes, rest) = (secs / 60, secs % 60);
        return if rest == 0 {
            format!("{minutes} min")
        } else {
            format!("{minutes} min {rest} s")
        };
    }
    if duration.subsec_millis() == 0 {
        format!("{secs} s")
    } else {
        let text = format!("{:.3}", duration.as_secs_f64());
        format!("{} s", text.trim_end_matches('0').trim_end_matches('.'))
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_duration;
    use std::time::Duration;

    #[test]
    fn durations_print_exactly() {
        assert_eq!(fmt_duration(Duration::from_secs(5)), "5 s");
        assert_eq!(fmt_duration(Duration::from_millis(4999)), "4.999 s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(fmt_duration(Duration::from_secs(300)), "5 min");
        assert_eq!(fmt_duration(Duration::from_secs(150)), "2 min 30 s");
    }
}

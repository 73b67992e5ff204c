//! The Nanna stack: an Ollama model server and the assistant (`nanna serve`) in containers,
//! on a user-defined network or in a Podman pod, managed through the engine's API.
//!
//! [`spec::desired`] computes the containers the settings call for (pure);
//! [`plan::plan`] compares them with what the engine has (found by the `dev.nanna.*`
//! labels); [`apply::up`] checks, creates, starts, waits for health and verifies GPU
//! devices; [`ops`] has `down`, `status`, `logs`, `restart` and `shell`; [`images`] loads
//! and builds images.

pub mod apply;
pub mod cli;
pub mod connect;
pub mod health;
pub(crate) mod http;
pub mod images;
pub mod ops;
pub mod plan;
pub(crate) mod podman;
pub mod spec;

use std::net::SocketAddr;
use std::time::Duration;

pub use apply::{UpOptions, UpReport, up, update};
pub use connect::connect;
pub use ops::{DownReport, StackStatus, down, exec, logs, restart, shell, status};
pub use plan::{Plan, Step};
pub use spec::{Layout, Service, StackSettings, StackSpec};

use crate::detect::DetectError;
use crate::engine::EngineError;

/// Text every "image absent" error ends with.
pub const IMAGE_HINT: &str =
    "load it with --image-archive or build it with `nanna-deploy images build`";

/// What went wrong while managing a stack; every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// No engine answered.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// GPU detection or a forced `--gpu` failed.
    #[error(transparent)]
    Detect(#[from] DetectError),
    /// The settings cannot make a stack.
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    /// An engine API call failed.
    #[error("{action} failed: {message}")]
    Api {
        /// What was being done (`create container nanna-x-ollama`).
        action: String,
        /// The engine's answer.
        message: String,
    },
    /// A host port is taken.
    #[error(
        "{addr} (for {what}) is already in use on this host: stop what listens there or choose another address ({flag} ADDR:PORT)"
    )]
    PortInUse {
        /// The address.
        addr: SocketAddr,
        /// Which service.
        what: String,
        /// The flag that changes it.
        flag: &'static str,
    },
    /// An image is neither present nor pullable.
    #[error(
        "image {image} is not present on the {engine} engine and could not be pulled ({reason}): {IMAGE_HINT}"
    )]
    ImageUnavailable {
        /// The reference.
        image: String,
        /// The engine.
        engine: String,
        /// Why the pull failed.
        reason: String,
    },
    /// A device to pass through does not exist on the host.
    #[error(
        "device {path} (for --gpu {gpu}) does not exist on this host: check the driver is loaded, or use --gpu none for CPU only"
    )]
    DeviceMissing {
        /// Host path.
        path: String,
        /// Accelerator.
        gpu: String,
    },
    /// NVIDIA on Podman needs a CDI spec.
    #[error(
        "NVIDIA GPUs on Podman need a CDI spec for nvidia.com/gpu in /etc/cdi or /var/run/cdi, and there is none: run `sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` (NixOS: hardware.nvidia-container-toolkit.enable = true), or use --engine docker with the NVIDIA runtime, or --gpu none"
    )]
    NvidiaNeedsCdi,
    /// A requested GPU is not visible in the running container.
    #[error(
        "the GPU was requested but {missing:?} is not visible inside {container} ({method}); refusing to run on the CPU silently. Check the engine's GPU support (NVIDIA container toolkit / CDI, device permissions), or use --gpu none"
    )]
    GpuNotVisible {
        /// Container name.
        container: String,
        /// Paths missing.
        missing: Vec<String>,
        /// How it was checked.
        method: String,
    },
    /// A service did not become healthy in time.
    #[error("{service} did not become healthy within {} s: {last}. Last log lines:\n{logs}\nRaise --timeout, or see `nanna-deploy logs {service}`", .timeout.as_secs())]
    Unhealthy {
        /// Service name.
        service: String,
        /// The wait.
        timeout: Duration,
        /// The last probe result.
        last: String,
        /// Tail of its logs.
        logs: String,
    },
    /// A service container exited.
    #[error("{service} exited ({detail}). Last log lines:\n{logs}")]
    Exited {
        /// Service name.
        service: String,
        /// Exit code or state.
        detail: String,
        /// Tail of its logs.
        logs: String,
    },
    /// The stack has no objects on this engine.
    #[error(
        "no stack named {stack:?} on the {engine} engine: start it with `nanna-deploy up --name {stack}`"
    )]
    NoStack {
        /// Stack name.
        stack: String,
        /// Engine.
        engine: String,
    },
    /// The stack has no container for a service.
    #[error("stack {stack:?} has no {service} container (was it started with --no-assistant?)")]
    NoService {
        /// Stack name.
        stack: String,
        /// Service.
        service: String,
    },
    /// Building or loading an image failed.
    #[error(transparent)]
    Image(#[from] nanna_image::ImageError),
    /// A local file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Pulling a model failed.
    #[error(
        "pulling model {model} failed: {message}. The containers keep running; check the name (e.g. qwen2.5-coder:7b) and that the model server can reach its registry, then run `nanna-deploy up --model NAME` again"
    )]
    Pull {
        /// Model name.
        model: String,
        /// Why.
        message: String,
    },
    /// A run failed part-way; what it created was removed (or could not be).
    #[error("{cause}\n{}", rollback_text(.removed, .left))]
    PartWay {
        /// The failure.
        cause: Box<StackError>,
        /// Objects this run created and then removed.
        removed: Vec<String>,
        /// Objects that remain (with why).
        left: Vec<String>,
    },
    /// `nanna` could not be found for `images build`.
    #[error(
        "cannot find the `nanna` binary beside nanna-deploy ({beside}) or on PATH: build it (`cargo build --release -p nanna`) or pass --binary PATH"
    )]
    NoBinary {
        /// Where we looked first.
        beside: String,
    },
}

fn rollback_text(removed: &[String], left: &[String]) -> String {
    let mut text = String::new();
    if removed.is_empty() {
        text.push_str("Nothing this run created needed removing.");
    } else {
        text.push_str(&format!(
            "Removed what this run created: {}.",
            removed.join(", ")
        ));
    }
    if left.is_empty() {
        text.push_str(" Nothing is left behind.");
    } else {
        text.push_str(&format!(" Left: {}.", left.join("; ")));
    }
    text
}

/// Turns a bollard error into [`StackError::Api`].
pub(crate) fn api(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> StackError {
    let action = action.into();
    move |error| StackError::Api {
        action,
        message: bollard_message(&error),
    }
}

/// The engine's message from a bollard error, without the status boilerplate.
pub(crate) fn bollard_message(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Whether a bollard error is a 404.
pub(crate) fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

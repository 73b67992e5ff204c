//! [`StackError`]: what went wrong while managing a stack, as a stable code, the problem and
//! the fix, so the binary can print a sentence for people or `{code, message, fix}` for
//! programs.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::export::ExportError;
use super::fmt_duration;
use super::spec::SpecError;
use crate::detect::DetectError;
use crate::engine::{Engine, EngineError, error_chain};

/// Which image of the stack an image error is about (the fix differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRole {
    /// The model server's (an Ollama build; comes from a registry or from Nix).
    ModelServer,
    /// The assistant's (built locally by `nanna-deploy images build`).
    Assistant,
}

/// What went wrong while managing a stack.
#[derive(Debug)]
#[non_exhaustive]
pub enum StackError {
    /// No engine answered.
    Engine(EngineError),
    /// GPU detection or a forced `--gpu` failed.
    Detect(DetectError),
    /// The settings cannot make a stack (bad name, address, workspace...).
    Spec(SpecError),
    /// The stack cannot be exported as asked (a name the target refuses, the output
    /// directory...).
    Export(ExportError),
    /// An engine API call was refused.
    Api {
        /// What was being done (`create container nanna-x-ollama`).
        action: String,
        /// The engine's answer.
        message: String,
    },
    /// The engine stopped answering (its service died or its socket went away).
    EngineGone {
        /// `podman` or `docker`.
        engine: String,
        /// Its address.
        address: String,
        /// What was being done.
        action: String,
        /// The transport error.
        message: String,
    },
    /// A host address is taken.
    PortInUse {
        /// The address.
        addr: SocketAddr,
        /// Which service.
        what: String,
        /// The flag that changes it.
        flag: &'static str,
    },
    /// An image is neither present nor pullable.
    ImageUnavailable {
        /// The reference.
        image: String,
        /// The engine.
        engine: String,
        /// Why the pull failed or was not tried.
        reason: String,
        /// Which image of the stack.
        role: ImageRole,
    },
    /// A device to pass through does not exist on the host.
    DeviceMissing {
        /// Host path.
        path: String,
        /// Accelerator.
        gpu: String,
    },
    /// NVIDIA on Podman needs a CDI spec.
    NvidiaNeedsCdi,
    /// A requested GPU is not visible in the running container.
    GpuNotVisible {
        /// Container name.
        container: String,
        /// Paths missing.
        missing: Vec<String>,
        /// How it was checked.
        method: String,
    },
    /// A service did not become healthy in time.
    Unhealthy {
        /// Service name.
        service: String,
        /// The wait the user gave.
        timeout: Duration,
        /// The last probe result.
        last: String,
        /// Tail of its logs.
        logs: String,
    },
    /// A service container exited (or keeps being restarted after exiting).
    Exited {
        /// Service name.
        service: String,
        /// Its last exit code, when the engine reports one.
        exit_code: Option<i64>,
        /// What happened (`exited`, `is in a restart loop (restarted 2 times)`).
        detail: String,
        /// Tail of its logs.
        logs: String,
    },
    /// The stack has no objects on this engine.
    NoStack {
        /// Stack name.
        stack: String,
        /// Engine.
        engine: String,
    },
    /// The stack has no container for a service.
    NoService {
        /// Stack name.
        stack: String,
        /// Service.
        service: String,
    },
    /// Building or loading an image failed.
    Image(nanna_image::ImageError),
    /// A local file operation failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Pulling a model failed (the containers keep running).
    Pull {
        /// Model name.
        model: String,
        /// Why, in the model server's words when it gave any.
        message: String,
    },
    /// A run failed part-way; what it created was removed (or could not be).
    PartWay {
        /// The failure.
        cause: Box<StackError>,
        /// Objects this run created and then removed.
        removed: Vec<String>,
        /// Objects that remain (with why).
        left: Vec<String>,
    },
    /// `nanna` could not be found for `images build`.
    NoBinary {
        /// Where we looked first.
        beside: String,
    },
    /// SIGINT or SIGTERM arrived.
    Interrupted,
    /// Another `nanna-deploy` holds the stack.
    Busy {
        /// Stack name.
        stack: String,
        /// Who holds it (pid, command, host, since when).
        holder: String,
        /// How long this run waited.
        waited: Duration,
        /// The exact command that removes a stale claim, when the claim lives on the engine.
        unlock: Option<String>,
    },
    /// Stacks of this name run on several engines.
    AmbiguousEngine {
        /// Stack name.
        stack: String,
        /// The engines (`podman at unix:///...`).
        engines: Vec<String>,
    },
    /// The engine the stack was deployed on does not answer.
    RememberedEngineDown {
        /// Stack name.
        stack: String,
        /// `podman` or `docker`.
        engine: String,
        /// Its address.
        address: String,
        /// Why it did not answer.
        reason: String,
    },
    /// An object of the stack's name exists but belongs to something else.
    NameTaken {
        /// `network`, `volume`, `container`, `pod`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
}

impl StackError {
    /// A stable identifier for programs (`--json`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Engine(_) => "engine_not_found",
            Self::Detect(DetectError::HostRoot { .. }) => "bad_host_root",
            Self::Detect(DetectError::Gpu(_)) => "gpu_unavailable",
            Self::Detect(DetectError::Engine(_)) => "engine_not_found",
            Self::Spec(error) => error.code(),
            Self::Export(error) => error.code(),
            Self::Api { .. } => "engine_api",
            Self::EngineGone { .. } => "engine_gone",
            Self::PortInUse { .. } => "port_in_use",
            Self::ImageUnavailable { .. } => "image_unavailable",
            Self::DeviceMissing { .. } => "device_missing",
            Self::NvidiaNeedsCdi => "nvidia_needs_cdi",
            Self::GpuNotVisible { .. } => "gpu_not_visible",
            Self::Unhealthy { .. } => "unhealthy",
            Self::Exited { .. } => "service_exited",
            Self::NoStack { .. } => "no_stack",
            Self::NoService { .. } => "no_service",
            Self::Image(_) => "image_build",
            Self::Io { .. } => "io",
            Self::Pull { .. } => "model_pull",
            Self::PartWay { cause, .. } => cause.code(),
            Self::NoBinary { .. } => "no_binary",
            Self::Interrupted => "interrupted",
            Self::Busy { .. } => "stack_busy",
            Self::AmbiguousEngine { .. } => "ambiguous_engine",
            Self::RememberedEngineDown { .. } => "engine_unreachable",
            Self::NameTaken { .. } => "name_taken",
        }
    }

    /// What went wrong, without the advice.
    pub fn problem(&self) -> String {
        match self {
            Self::Engine(error) => error.problem(),
            Self::Detect(error) => error.to_string(),
            Self::Spec(error) => error.to_string(),
            Self::Export(error) => error.to_string(),
            Self::Api { action, message } => format!("{action} failed: {message}"),
            Self::EngineGone {
                engine,
                address,
                action,
                message,
            } => format!(
                "the {engine} engine at {address} stopped answering ({action}: {message})"
            ),
            Self::PortInUse { addr, what, .. } => {
                format!("{addr} (for {what}) is already in use on this host")
            }
            Self::ImageUnavailable {
                image,
                engine,
                reason,
                ..
            } => format!(
                "image {image} is not present on the {engine} engine and could not be pulled ({reason})"
            ),
            Self::DeviceMissing { path, gpu } => {
                format!("device {path} (for --gpu {gpu}) does not exist on this host")
            }
            Self::NvidiaNeedsCdi => "NVIDIA GPUs on Podman need a CDI spec for nvidia.com/gpu in /etc/cdi or /var/run/cdi, and there is none".to_string(),
            Self::GpuNotVisible {
                container,
                missing,
                method,
            } => format!(
                "the GPU was requested but {missing:?} is not visible inside {container} ({method}); refusing to run on the CPU silently"
            ),
            Self::Unhealthy {
                service,
                timeout,
                last,
                logs,
            } => format!(
                "{service} did not become healthy within {}: {last}. Last log lines:\n{logs}",
                fmt_duration(*timeout)
            ),
            Self::Exited {
                service,
                exit_code,
                detail,
                logs,
            } => format!(
                "{service} {detail}{}. Last log lines:\n{logs}",
                exit_code.map_or(String::new(), |code| format!(" (exit code {code})"))
            ),
            Self::NoStack { stack, engine } => {
                format!("no stack named {stack:?} on the {engine} engine")
            }
            Self::NoService { stack, service } => {
                format!("stack {stack:?} has no {service} container")
            }
            Self::Image(error) => error.to_string(),
            Self::Io { what, source } => format!("{what}: {source}"),
            Self::Pull { model, message } => format!("pulling model {model} failed: {message}"),
            Self::PartWay {
                cause,
                removed,
                left,
            } => format!("{}\n{}", cause.problem(), rollback_text(removed, left)),
            Self::NoBinary { beside } => format!(
                "cannot find the `nanna` binary beside nanna-deploy ({beside}) or on PATH"
            ),
            Self::Interrupted => "interrupted".to_string(),
            Self::Busy {
                stack,
                holder,
                waited,
                ..
            } => format!(
                "stack {stack:?} is being changed by another nanna-deploy ({holder}); waited {}",
                fmt_duration(*waited)
            ),
            Self::AmbiguousEngine { stack, engines } => format!(
                "a stack named {stack:?} exists on several engines: {}",
                engines.join("; ")
            ),
            Self::RememberedEngineDown {
                stack,
                engine,
                address,
                reason,
            } => format!(
                "stack {stack:?} was deployed on the {engine} engine at {address}, which does not answer ({reason})"
            ),
            Self::NameTaken { kind, name } => format!(
                "a {kind} named {name} exists but does not belong to this stack (it lacks the dev.nanna.stack label)"
            ),
        }
    }

    /// What to do about it, when there is something to do.
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            Self::Engine(error) => error.fix(),
            Self::Detect(_) | Self::Image(_) | Self::Io { .. } => return None,
            Self::Spec(_) | Self::Export(_) => return None,
            Self::Api { .. } => {
                "see the engine's message above; `nanna-deploy status` shows what exists".to_string()
            }
            Self::EngineGone { engine, .. } => format!(
                "start the {engine} engine again, then run `nanna-deploy up` (it picks up what exists) or `nanna-deploy down` to clean up"
            ),
            Self::PortInUse { flag, .. } => format!(
                "stop what listens there or choose another address ({flag} ADDR:PORT)"
            ),
            Self::ImageUnavailable { image, role, .. } => match role {
                ImageRole::Assistant => format!(
                    "build it with `nanna-deploy images build` (or `images build --tag {image}`), or load an archive with --image-archive"
                ),
                ImageRole::ModelServer => format!(
                    "load a model-server image with --image-archive (e.g. from `nix build .#ollama-cpu-image`), pull it on a machine with registry access and `docker save`/`podman save` it, or pass --ollama-image with an image you have (`nanna-deploy images build` makes only the assistant image; {image} is the model server)"
                ),
            },
            Self::DeviceMissing { .. } => {
                "check the driver is loaded, or use --gpu none for CPU only".to_string()
            }
            Self::NvidiaNeedsCdi => "run `sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` (NixOS: hardware.nvidia-container-toolkit.enable = true), or use --engine docker with the NVIDIA runtime, or --gpu none".to_string(),
            Self::GpuNotVisible { .. } => "check the engine's GPU support (NVIDIA container toolkit / CDI, device permissions), or use --gpu none".to_string(),
            Self::Unhealthy { service, .. } => {
                format!("raise --timeout, or see `nanna-deploy logs {service}`")
            }
            Self::Exited { service, .. } => format!(
                "see `nanna-deploy logs {service}`; check the image runs on this host (--ollama-image / --harness-image)"
            ),
            Self::NoStack { stack, .. } => {
                format!("start it with `nanna-deploy up --name {stack}`, or pass --engine if it runs on another engine")
            }
            Self::NoService { .. } => {
                "was it started with --no-assistant? Run `nanna-deploy up` to bring it back".to_string()
            }
            Self::Pull { .. } => "the containers keep running; check the name (e.g. qwen2.5-coder:7b) and that the model server can reach its registry, then run `nanna-deploy up --model NAME` again".to_string(),
            Self::PartWay { cause, .. } => return cause.fix(),
            Self::NoBinary { .. } => {
                "build it (`cargo build --release -p nanna`) or pass --binary PATH".to_string()
            }
            Self::Interrupted => return None,
            Self::Busy { unlock, .. } => {
                let mut text = "wait for the other run to finish, or stop it".to_string();
                if let Some(command) = unlock {
                    text.push_str(&format!(
                        "; if no other nanna-deploy is running, remove its claim: `{command}`"
                    ));
                }
                text
            }
            Self::AmbiguousEngine { .. } => {
                "pass --engine podman or --engine docker to say which one".to_string()
            }
            Self::RememberedEngineDown { engine, .. } => format!(
                "start the {engine} engine, or pass --engine to manage a stack on another engine"
            ),
            Self::NameTaken { kind, name } => format!(
                "remove or rename that {kind} ({name}), or choose another stack name (--name)"
            ),
        })
    }

    /// The rolled-back objects of a part-way failure: (removed, left).
    pub fn rollback(&self) -> Option<(&[String], &[String])> {
        match self {
            Self::PartWay { removed, left, .. } => Some((removed, left)),
            _ => None,
        }
    }

    /// Whether the run was stopped by a signal (directly or during a rollback).
    pub fn is_interrupted(&self) -> bool {
        match self {
            Self::Interrupted => true,
            Self::PartWay { cause, .. } => cause.is_interrupted(),
            _ => false,
        }
    }

    /// A bollard error from `engine` while doing `action`: the engine's refusal, or
    /// [`StackError::EngineGone`] when the engine did not answer at all.
    pub(crate) fn engine_call(
        engine: &Engine,
        action: impl Into<String>,
        error: &bollard::errors::Error,
    ) -> Self {
        let action = action.into();
        if is_transport(error) {
            Self::EngineGone {
                engine: engine.kind.as_str().to_string(),
                address: engine.socket.clone(),
                action,
                message: error_chain(error),
            }
        } else {
            Self::Api {
                action,
                message: bollard_message(error),
            }
        }
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem())?;
        if let Some(fix) = self.fix() {
            write!(f, "\nTo fix: {fix}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Engine(error) => Some(error),
            Self::Detect(error) => Some(error),
            Self::Spec(error) => Some(error),
            Self::Export(error) => Some(error),
            Self::Image(error) => Some(error),
            Self::Io { source, .. } => Some(source),
            Self::PartWay { cause, .. } => Some(cause.as_ref()),
            _ => None,
        }
    }
}

impl From<EngineError> for StackError {
    fn from(error: EngineError) -> Self {
        Self::Engine(error)
    }
}

impl From<ExportError> for StackError {
    fn from(error: ExportError) -> Self {
        Self::Export(error)
    }
}

impl From<DetectError> for StackError {
    fn from(error: DetectError) -> Self {
        Self::Detect(error)
    }
}

impl From<SpecError> for StackError {
    fn from(error: SpecError) -> Self {
        Self::Spec(error)
    }
}

impl From<nanna_image::ImageError> for StackError {
    fn from(error: nanna_image::ImageError) -> Self {
        Self::Image(error)
    }
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

/// The engine's message from a bollard error, without the status boilerplate.
pub(crate) fn bollard_message(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => error_chain(other),
    }
}

/// Whether a bollard error is a 404.
pub(crate) fn is_not_found(error: &bollard::errors::Error) -> bool {
    status_of(error) == Some(404)
}

/// Whether a bollard error says the object exists already (409, or Podman's wording).
pub(crate) fn is_conflict(error: &bollard::errors::Error) -> bool {
    status_of(error) == Some(409)
        || matches!(error, bollard::errors::Error::DockerResponseServerError { message, .. }
            if message.contains("already exists") || message.contains("already in use"))
}

fn status_of(error: &bollard::errors::Error) -> Option<u16> {
    match error {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Whether a bollard error means the engine did not answer (connection refused or reset,
/// socket gone, no answer in time) rather than that it refused the request.
pub(crate) fn is_transport(error: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    matches!(
        error,
        E::IOError { .. }
            | E::HyperResponseError { .. }
            | E::HyperLegacyError { .. }
            | E::HttpClientError { .. }
            | E::RequestTimeoutError
            | E::SocketNotFoundError(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_problem_then_the_fix() {
        let error = StackError::ImageUnavailable {
            image: "localhost/x:1".into(),
            engine: "docker".into(),
            reason: "local references are never pulled".into(),
            role: ImageRole::Assistant,
        };
        let text = error.to_string();
        assert!(
            text.starts_with("image localhost/x:1 is not present"),
            "{text}"
        );
        assert!(
            text.contains("\nTo fix: build it with `nanna-deploy images build`"),
            "{text}"
        );
        assert_eq!(error.code(), "image_unavailable");
        let model_server = StackError::ImageUnavailable {
            image: "docker.io/ollama/ollama:latest".into(),
            engine: "podman".into(),
            reason: "no registry".into(),
            role: ImageRole::ModelServer,
        };
        let fix = model_server.fix().unwrap();
        assert!(fix.contains("--image-archive"), "{fix}");
        assert!(fix.contains("makes only the assistant image"), "{fix}");
    }

    #[test]
    fn part_way_failures_keep_the_cause_code_and_list_what_is_left() {
        let error = StackError::PartWay {
            cause: Box::new(StackError::Interrupted),
            removed: vec!["container a".into()],
            left: vec!["network n (the engine does not answer)".into()],
        };
        assert_eq!(error.code(), "interrupted");
        assert!(error.is_interrupted());
        let text = error.to_string();
        assert!(
            text.contains("Removed what this run created: container a."),
            "{text}"
        );
        assert!(text.contains("Left: network n"), "{text}");
    }

    #[test]
    fn durations_are_exact() {
        let error = StackError::Unhealthy {
            service: "ollama".into(),
            timeout: Duration::from_secs(5),
            last: "connection refused".into(),
            logs: "  (no output)".into(),
        };
        assert!(error.to_string().contains("within 5 s:"), "{error}");
        let error = StackError::Unhealthy {
            service: "ollama".into(),
            timeout: Duration::from_millis(1500),
            last: "x".into(),
            logs: String::new(),
        };
        assert!(error.to_string().contains("within 1.5 s:"), "{error}");
    }
}

//! Probes, and only probes: is a service healthy (HTTP from the host through its published
//! port), and are the GPU devices visible inside the model server. Waiting and deciding
//! belong to the layers above.

use std::net::SocketAddr;
use std::time::Duration;

use http::Method;
use serde::Serialize;
use serde_json::Value;

use super::StackError;
use super::spec::{ASSISTANT_PORT, ContainerSpec, Service};
use super::state::{self, Call};
use crate::engine::Engine;
use crate::engine::http_client::{Endpoint, request};

/// One probe's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "health", rename_all = "lowercase")]
pub enum Health {
    /// Answering as expected.
    Healthy,
    /// Answering, or not, but not as expected.
    Unhealthy {
        /// What was seen.
        detail: String,
    },
}

impl Health {
    /// Whether healthy.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Healthy)
    }
}

/// The HTTP path that tells a service is healthy.
pub fn health_path(service: Service) -> &'static str {
    match service {
        Service::Ollama => "/",
        Service::Assistant => "/health",
    }
}

/// The same health check as a command run inside the service's container, for targets that
/// check from there (Compose health checks, Kubernetes exec probes): the model server's own
/// CLI asks it for its models (`ollama list`: `GET /api/tags` through `OLLAMA_HOST`, exit 1
/// when the server does not answer; ollama `cmd/cmd.go` `ListHandler`), and the assistant
/// asks its own `/health` (`nanna serve --check`: 200 and the model server reachable).
/// Both binaries are the images' entrypoints, at `/bin` in the official, Nix and
/// `nanna-image` images.
pub fn in_container_check(service: Service) -> Vec<String> {
    match service {
        Service::Ollama => vec!["/bin/ollama".to_string(), "list".to_string()],
        Service::Assistant => vec![
            "/bin/nanna".to_string(),
            "serve".to_string(),
            "--check".to_string(),
            "--listen".to_string(),
            format!("127.0.0.1:{ASSISTANT_PORT}"),
        ],
    }
}

/// Probes `service` at `addr` once: the model server must answer `GET /` with 200, the
/// assistant `GET /health` with 200 and `"model_server": "reachable"`.
pub async fn probe(service: Service, addr: SocketAddr, timeout: Duration) -> Health {
    let endpoint = Endpoint::tcp(addr);
    match request(&endpoint, Method::GET, health_path(service), None, timeout).await {
        Err(e) => Health::Unhealthy {
            detail: e.to_string(),
        },
        Ok(answer) if !answer.status.is_success() => Health::Unhealthy {
            detail: format!(
                "HTTP {} from {}: {}",
                answer.status.as_u16(),
                health_path(service),
                String::from_utf8_lossy(&answer.body).trim()
            ),
        },
        Ok(answer) => match service {
            Service::Ollama => Health::Healthy,
            Service::Assistant => {
                let reachable = serde_json::from_slice::<Value>(&answer.body)
                    .ok()
                    .and_then(|v| {
                        v.get("model_server")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    });
                match reachable.as_deref() {
                    Some("reachable") | None => Health::Healthy,
                    Some(other) => Health::Unhealthy {
                        detail: format!("its /health says the model server is {other}"),
                    },
                }
            }
        },
    }
}

/// How device visibility was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceCheck {
    /// Paths that must exist in the container.
    pub paths: Vec<String>,
    /// `exec` (test -e inside the container) or `inspect` (the container's configuration,
    /// when the image has no `test` program).
    pub method: &'static str,
}

/// Checks that every path of `spec.check_paths` exists inside the running container: by
/// `test -e` through exec, or, when the image cannot run that, by inspecting the devices the
/// engine gave it. A missing path is [`StackError::GpuNotVisible`].
/// The command that tells whether the assistant can confine the `shell` tool's commands:
/// what `shell` runs in a `workspace-write` session, with nothing to do.
pub const ASSISTANT_SANDBOX_CHECK: &[&str] = &[
    "nanna",
    "sandbox",
    "--mode",
    "workspace-write",
    "--",
    "true",
];

/// Whether bubblewrap can build the `workspace-write` sandbox inside the running assistant
/// container: `None` when it can, else nanna's refusal (it says why and what to set). The
/// container's settings allow it on both engines; a host's AppArmor or SELinux policy, or
/// an image without bubblewrap, may still not.
pub async fn assistant_sandbox(engine: &Engine, spec: &ContainerSpec) -> Option<String> {
    let cmd = ASSISTANT_SANDBOX_CHECK
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut out = Vec::new();
    match state::exec_captured(engine, &spec.name, cmd, &mut out).await {
        Ok(Some(0)) => None,
        Ok(code) => Some(
            String::from_utf8_lossy(&out)
                .trim()
                .trim_start_matches("error: ")
                .to_string()
                + &code
                    .map(|c| format!(" (exit code {c})"))
                    .unwrap_or_default(),
        ),
        Err(e) => Some(format!("the check could not run: {e}")),
    }
}

pub async fn verify_devices(
    engine: &Engine,
    spec: &ContainerSpec,
) -> Result<Option<DeviceCheck>, StackError> {
    if spec.check_paths.is_empty() {
        return Ok(None);
    }
    let mut missing = Vec::new();
    let mut exec_works = true;
    for path in &spec.check_paths {
        match exec_status(
            engine,
            &spec.name,
            vec!["test".to_string(), "-e".to_string(), path.clone()],
        )
        .await
        {
            Some(0) => {}
            Some(1) => missing.push(path.clone()),
            _ => {
                exec_works = false;
                break;
            }
        }
    }
    if exec_works {
        if missing.is_empty() {
            return Ok(Some(DeviceCheck {
                paths: spec.check_paths.clone(),
                method: "exec",
            }));
        }
        return Err(StackError::GpuNotVisible {
            container: spec.name.clone(),
            missing,
            method: "checked with `test -e` inside the container".to_string(),
        });
    }
    let info = engine
        .client
        .inspect_container(&spec.name, None)
        .await
        .on(engine, format!("inspect container {}", spec.name))?;
    let host = info.host_config.unwrap_or_default();
    let mapped: Vec<String> = host
        .devices
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| d.path_in_container)
        .collect();
    let requested_gpus = host.device_requests.is_some_and(|r| !r.is_empty());
    let missing: Vec<String> = spec
        .check_paths
        .iter()
        .filter(|path| {
            let under = |m: &String| path == &m || path.starts_with(&format!("{m}/"));
            let nvidia = path.starts_with("/dev/nvidia")
                && (requested_gpus || !spec.cdi_devices.is_empty() && !mapped.is_empty());
            !mapped.iter().any(under) && !nvidia
        })
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(Some(DeviceCheck {
            paths: spec.check_paths.clone(),
            method: "inspect",
        }))
    } else {
        Err(StackError::GpuNotVisible {
            container: spec.name.clone(),
            missing,
            method: "the image cannot run `test`, so its configuration was inspected".to_string(),
        })
    }
}

/// Runs `cmd` in `container` and returns its exit code, or `None` when it could not run
/// (no exec support, or the image lacks the command: exit 126/127).
async fn exec_status(engine: &Engine, container: &str, cmd: Vec<String>) -> Option<i64> {
    match state::exec_captured(engine, container, cmd, &mut std::io::sink()).await {
        Ok(Some(126 | 127) | None) | Err(_) => None,
        Ok(Some(code)) => Some(code),
    }
}

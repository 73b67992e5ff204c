//! Health of the services (HTTP from the host through their published ports), GPU devices
//! seen from inside the model server, and pulling a model through Ollama's API.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bollard::query_parameters::LogsOptions;
use futures::StreamExt;
use http::Method;
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::Value;

use super::StackError;
use super::http::{Endpoint, request, send};
use super::spec::{ContainerSpec, Service};
use crate::engine::Engine;

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

/// Probes `service` at `addr` once: the model server must answer `GET /` with 200, the
/// assistant `GET /health` with 200 and `"model_server": "reachable"`.
pub async fn probe(service: Service, addr: SocketAddr, timeout: Duration) -> Health {
    let endpoint = Endpoint::tcp(addr);
    match request(&endpoint, Method::GET, health_path(service), None, timeout).await {
        Err(e) => Health::Unhealthy {
            detail: e.to_string(),
        },
        Ok((status, body)) if !status.is_success() => Health::Unhealthy {
            detail: format!(
                "HTTP {} from {}: {}",
                status.as_u16(),
                health_path(service),
                String::from_utf8_lossy(&body).trim()
            ),
        },
        Ok((_, body)) => match service {
            Service::Ollama => Health::Healthy,
            Service::Assistant => {
                let reachable = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
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

/// The last `lines` log lines of a container, as text.
pub async fn tail_logs(engine: &Engine, container: &str, lines: usize) -> String {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..Default::default()
    };
    let mut stream = engine.client.logs(container, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    if text.trim().is_empty() {
        "  (no output)".to_string()
    } else {
        text.lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Waits until `spec`'s service is healthy, its container still running, within `timeout`.
pub async fn wait_healthy(
    engine: &Engine,
    spec: &ContainerSpec,
    timeout: Duration,
    progress: bool,
) -> Result<(), StackError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(25);
    let mut reported = false;
    loop {
        let last = match probe(spec.service, spec.probe_addr, Duration::from_secs(2)).await {
            Health::Healthy => {
                if progress && reported {
                    eprintln!(
                        "{} is healthy after {:.1} s",
                        spec.service.as_str(),
                        start.elapsed().as_secs_f64()
                    );
                }
                return Ok(());
            }
            Health::Unhealthy { detail } => detail,
        };
        if let Ok(info) = engine.client.inspect_container(&spec.name, None).await {
            let state = info.state.unwrap_or_default();
            if state.running == Some(false) && state.restarting != Some(true) {
                return Err(StackError::Exited {
                    service: spec.service.as_str().to_string(),
                    detail: format!(
                        "exit code {}{}",
                        state.exit_code.unwrap_or_default(),
                        state
                            .error
                            .filter(|e| !e.is_empty())
                            .map_or(String::new(), |e| format!(", {e}"))
                    ),
                    logs: tail_logs(engine, &spec.name, 20).await,
                });
            }
        }
        if start.elapsed() >= timeout {
            return Err(StackError::Unhealthy {
                service: spec.service.as_str().to_string(),
                timeout,
                last,
                logs: tail_logs(engine, &spec.name, 20).await,
            });
        }
        if progress && !reported && start.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "waiting for {} at http://{}{} ...",
                spec.service.as_str(),
                spec.probe_addr,
                health_path(spec.service)
            );
            reported = true;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
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
        .map_err(super::api(format!("inspect container {}", spec.name)))?;
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
pub async fn exec_status(engine: &Engine, container: &str, cmd: Vec<String>) -> Option<i64> {
    match super::ops::run_captured(engine, container, cmd, &mut std::io::sink()).await {
        Ok(Some(126 | 127) | None) | Err(_) => None,
        Ok(Some(code)) => Some(code),
    }
}

/// Pulls `model` through the model server's `POST /api/pull` at `addr`, drawing progress on
/// stderr when `progress` is set.
pub async fn pull_model(addr: SocketAddr, model: &str, progress: bool) -> Result<(), StackError> {
    let fail = |message: String| StackError::Pull {
        model: model.to_string(),
        message,
    };
    let body = serde_json::json!({ "model": model, "stream": true })
        .to_string()
        .into_bytes();
    let response = send(&Endpoint::tcp(addr), Method::POST, "/api/pull", Some(body))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    let mut body = response.into_body();
    let mut buffer: Vec<u8> = Vec::new();
    let mut last_status = String::new();
    let mut success = false;
    let mut stderr = std::io::stderr();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| fail(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=pos).collect();
            let Ok(value) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(error) = value.get("error").and_then(Value::as_str) {
                if progress {
                    let _ = writeln!(stderr);
                }
                return Err(fail(error.to_string()));
            }
            let text = value
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if text == "success" {
                success = true;
            }
            if progress {
                let total = value.get("total").and_then(Value::as_u64);
                let done = value.get("completed").and_then(Value::as_u64).unwrap_or(0);
                match total {
                    Some(total) if total > 0 => {
                        let width = 30usize;
                        let filled =
                            ((done.min(total) as f64 / total as f64) * width as f64) as usize;
                        let _ = write!(
                            stderr,
                            "\r{text:<24} [{}{}] {:>3}% {:.1}/{:.1} MB",
                            "#".repeat(filled),
                            " ".repeat(width - filled),
                            done.min(total) * 100 / total,
                            done as f64 / 1e6,
                            total as f64 / 1e6
                        );
                    }
                    _ if text != last_status => {
                        let _ = write!(stderr, "\r{text:<70}");
                    }
                    _ => {}
                }
                let _ = stderr.flush();
            }
            last_status = text;
        }
    }
    if progress {
        let _ = writeln!(stderr);
    }
    if !status.is_success() {
        return Err(fail(format!("HTTP {}", status.as_u16())));
    }
    if success {
        Ok(())
    } else {
        Err(fail(format!(
            "the server stopped before reporting success (last status: {last_status:?})"
        )))
    }
}

//! Operations on an existing stack: `down`, `status`, `logs`, `restart`, and running a
//! command in a container (`shell`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bollard::exec::ResizeExecOptions;
use bollard::query_parameters::{LogsOptions, RestartContainerOptions};
use futures::StreamExt;
use serde::Serialize;

use super::lock::{DEFAULT_LOCK_WAIT, WriterLock};
use super::plan::{Actual, ActualContainer};
use super::podman::Libpod;
use super::probe::{self, Health};
use super::spec::{
    self, ASSISTANT_STOP_TIMEOUT, DEFAULT_STOP_TIMEOUT, LABEL_DEVICES, LABEL_GPU, LABEL_PROBE,
    Layout, Service,
};
use super::state::{self, Attached, Call, ExecRequest, Stored};
use super::wait::{self, Target};
use super::{StackContext, StackError, record};
use crate::event::DeployEvent;

/// How `down` goes about it.
#[derive(Debug, Clone)]
pub struct DownOptions {
    /// Also remove the models volume.
    pub volumes: bool,
    /// Seconds the model server gets after SIGTERM; `None`: what the stack was created with.
    pub stop_timeout: Option<u32>,
    /// How long to wait for another run that holds the stack.
    pub lock_wait: Duration,
}

impl Default for DownOptions {
    fn default() -> Self {
        Self {
            volumes: false,
            stop_timeout: None,
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }
}

/// What `down` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    /// The stack.
    pub stack: String,
    /// Containers removed.
    pub containers: Vec<String>,
    /// Pods removed.
    pub pods: Vec<String>,
    /// Networks removed.
    pub networks: Vec<String>,
    /// Volumes removed (with `--volumes`).
    pub volumes: Vec<String>,
    /// Volumes kept (without `--volumes`).
    pub kept_volumes: Vec<String>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
}

/// The grace a container gets between SIGTERM and SIGKILL: the model server's from the
/// options or its stored settings, the assistant's fixed one.
fn grace(
    container: &ActualContainer,
    stored: Option<&Stored>,
    model_server: Option<u32>,
) -> Duration {
    let seconds = match container.service {
        Some(Service::Ollama) | None => model_server
            .or_else(|| stored.map(|s| s.settings.stop_timeout))
            .unwrap_or(DEFAULT_STOP_TIMEOUT),
        Some(Service::Assistant) => ASSISTANT_STOP_TIMEOUT,
    };
    Duration::from_secs(seconds.into())
}

/// Removes the stack's containers (stopped together, each with its grace), pod and
/// network, and with `volumes` its models volume, as the stack's one writer.
pub async fn down(
    ctx: &StackContext<'_>,
    stack: &str,
    options: &DownOptions,
) -> Result<DownReport, StackError> {
    let start = Instant::now();
    let engine = ctx.engine;
    let mut report = DownReport {
        stack: stack.to_string(),
        ..DownReport::default()
    };
    if state::actual(engine, stack).await?.is_empty() {
        record::forget(ctx.env, stack, engine)?;
        report.elapsed_ms = start.elapsed().as_millis();
        return Ok(report);
    }
    let mut lock = WriterLock::acquire(ctx, stack, "down", options.lock_wait).await?;
    let result = async {
        lock.claim(ctx, stack, options.lock_wait).await?;
        remove_all(ctx, stack, options, &mut report).await
    }
    .await;
    lock.release(ctx).await;
    result?;
    if report.kept_volumes.is_empty() {
        record::forget(ctx.env, stack, engine)?;
    }
    report.elapsed_ms = start.elapsed().as_millis();
    Ok(report)
}

async fn remove_all(
    ctx: &StackContext<'_>,
    stack: &str,
    options: &DownOptions,
    report: &mut DownReport,
) -> Result<(), StackError> {
    let engine = ctx.engine;
    let current = state::actual(engine, stack).await?;
    let stored = Stored::newest(&current);
    for container in &current.containers {
        ctx.events.report(DeployEvent::Step {
            action: "remove",
            object: "container",
            name: container.name.clone(),
            detail: None,
        });
    }
    let removals = current.containers.iter().map(|container| {
        let grace = grace(container, stored.as_ref(), options.stop_timeout);
        async move { state::remove_container(engine, &container.name, grace).await }
    });
    for (container, result) in current
        .containers
        .iter()
        .zip(futures::future::join_all(removals).await)
    {
        result?;
        report.containers.push(container.name.clone());
    }
    if !current.pods.is_empty() {
        let libpod = Libpod::new(engine)?;
        for pod in &current.pods {
            ctx.events.report(DeployEvent::Step {
                action: "remove",
                object: "pod",
                name: pod.name.clone(),
                detail: None,
            });
            libpod.remove_pod(&pod.name).await?;
            report.pods.push(pod.name.clone());
        }
    }
    for network in &current.networks {
        ctx.events.report(DeployEvent::Step {
            action: "remove",
            object: "network",
            name: network.name.clone(),
            detail: None,
        });
        state::remove_network(engine, network).await?;
        report.networks.push(network.name.clone());
    }
    for volume in &current.volumes {
        if options.volumes {
            ctx.events.report(DeployEvent::Step {
                action: "remove",
                object: "volume",
                name: volume.clone(),
                detail: None,
            });
            state::remove_volume(engine, volume).await?;
            report.volumes.push(volume.clone());
        } else {
            report.kept_volumes.push(volume.clone());
        }
    }
    Ok(())
}

/// The state of one service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// Service.
    pub service: Service,
    /// Container name.
    pub container: String,
    /// Engine state (`running`, `exited`...), or `missing` when the container is gone.
    pub state: String,
    /// `healthy`, `unhealthy`, `stopped`, `missing` or `unknown`.
    pub health: String,
    /// Why it is unhealthy.
    pub health_detail: Option<String>,
    /// Image reference.
    pub image: String,
    /// Image id.
    pub image_id: String,
    /// Published ports (`127.0.0.1:11434->11434/tcp`); in the pod layout, the pod's ports
    /// for this service.
    pub ports: Vec<String>,
    /// Health URL.
    pub url: Option<String>,
    /// Accelerator.
    pub gpu: String,
    /// Device paths handed to the container.
    pub devices: Vec<String>,
}

/// The stack as the engine has it.
#[derive(Debug, Clone, Serialize)]
pub struct StackStatus {
    /// Stack name.
    pub stack: String,
    /// Engine kind.
    pub engine: String,
    /// Engine address.
    pub address: String,
    /// Pod (pod layout).
    pub pod: Option<String>,
    /// Networks.
    pub networks: Vec<String>,
    /// Volumes.
    pub volumes: Vec<String>,
    /// Services, the expected ones first (missing ones included).
    pub services: Vec<ServiceStatus>,
    /// Objects the stack should have and the engine does not (`container nanna-x-assistant`).
    pub missing: Vec<String>,
    /// Objects labelled as the stack's that are not part of it (duplicates, leftovers).
    pub extra: Vec<String>,
}

impl StackStatus {
    /// Whether everything expected is there, nothing else is, and every service is healthy.
    pub fn is_healthy(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.services.iter().all(|s| s.health == "healthy")
    }
}

/// The state of every service of the stack, with what is missing and what is extra;
/// [`StackError::NoStack`] when the engine has nothing of it.
pub async fn status(ctx: &StackContext<'_>, stack: &str) -> Result<StackStatus, StackError> {
    let engine = ctx.engine;
    let current = state::actual(engine, stack).await?;
    if current.is_empty() {
        return Err(StackError::NoStack {
            stack: stack.to_string(),
            engine: engine.kind.as_str().to_string(),
        });
    }
    let stored = Stored::newest(&current);
    let (layout, expected) = expected(&current, stored.as_ref());
    let pod_ports = match current.pods.first() {
        Some(pod) => Libpod::new(engine)?
            .pod_ports(&pod.name)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let mut missing = Vec::new();
    let mut extra = Vec::new();
    let mut services = Vec::new();
    for service in &expected {
        let name = spec::container_name(stack, *service);
        match current
            .containers
            .iter()
            .find(|c| c.service == Some(*service) && c.name == name)
        {
            Some(container) => {
                services.push(service_status(ctx, *service, container, &pod_ports).await);
            }
            None => {
                missing.push(format!("container {name}"));
                services.push(ServiceStatus {
                    service: *service,
                    container: name,
                    state: "missing".to_string(),
                    health: "missing".to_string(),
                    health_detail: Some(
                        "the container does not exist; `nanna-deploy up` recreates it".to_string(),
                    ),
                    image: String::new(),
                    image_id: String::new(),
                    ports: Vec::new(),
                    url: None,
                    gpu: String::new(),
                    devices: Vec::new(),
                });
            }
        }
    }
    for container in &current.containers {
        let wanted = container.service.is_some_and(|s| {
            expected.contains(&s) && container.name == spec::container_name(stack, s)
        });
        if !wanted {
            extra.push(format!("container {}", container.name));
        }
    }
    let group = spec::group_name(stack);
    match layout {
        Layout::Network => {
            let named: Vec<_> = current
                .networks
                .iter()
                .filter(|n| n.name == group)
                .collect();
            if named.is_empty() {
                missing.push(format!("network {group}"));
            }
            for network in current
                .networks
                .iter()
                .filter(|n| n.name != group)
                .chain(named.iter().skip(1).copied())
            {
                extra.push(format!(
                    "network {} ({})",
                    network.name,
                    short_id(&network.id)
                ));
            }
            extra.extend(current.pods.iter().map(|p| format!("pod {}", p.name)));
        }
        Layout::Pod => {
            if !current.pods.iter().any(|p| p.name == group) {
                missing.push(format!("pod {group}"));
            }
            extra.extend(
                current
                    .pods
                    .iter()
                    .filter(|p| p.name != group)
                    .map(|p| format!("pod {}", p.name)),
            );
            extra.extend(
                current
                    .networks
                    .iter()
                    .map(|n| format!("network {}", n.name)),
            );
        }
    }
    let volume = spec::volume_name(stack);
    if !current.volumes.contains(&volume) {
        missing.push(format!("volume {volume}"));
    }
    extra.extend(
        current
            .volumes
            .iter()
            .filter(|v| **v != volume)
            .map(|v| format!("volume {v}")),
    );
    Ok(StackStatus {
        stack: stack.to_string(),
        engine: engine.kind.as_str().to_string(),
        address: engine.socket.clone(),
        pod: current.pods.first().map(|p| p.name.clone()),
        networks: current.networks.iter().map(|n| n.name.clone()).collect(),
        volumes: current.volumes,
        services,
        missing,
        extra,
    })
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The layout and services the stack was created with (from the stored settings; without
/// any container left, what the other objects suggest).
fn expected(current: &Actual, stored: Option<&Stored>) -> (Layout, Vec<Service>) {
    match stored {
        Some(stored) => {
            let mut services = vec![Service::Ollama];
            if stored.settings.assistant {
                services.push(Service::Assistant);
            }
            (stored.settings.layout, services)
        }
        None => {
            let layout = if current.pods.is_empty() {
                Layout::Network
            } else {
                Layout::Pod
            };
            (layout, vec![Service::Ollama, Service::Assistant])
        }
    }
}

async fn service_status(
    ctx: &StackContext<'_>,
    service: Service,
    container: &ActualContainer,
    pod_ports: &[(u16, String)],
) -> ServiceStatus {
    let probe_addr = container
        .labels
        .get(LABEL_PROBE)
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok());
    let (health, detail) = if !container.running() {
        ("stopped".to_string(), None)
    } else if let Some(addr) = probe_addr {
        match probe::probe(service, addr, Duration::from_secs(2)).await {
            Health::Healthy => ("healthy".to_string(), None),
            Health::Unhealthy { detail } => ("unhealthy".to_string(), Some(detail)),
        }
    } else {
        ("unknown".to_string(), None)
    };
    let ports = if pod_ports.is_empty() {
        published_ports(ctx, &container.name).await
    } else {
        let port = match service {
            Service::Ollama => spec::OLLAMA_PORT,
            Service::Assistant => spec::ASSISTANT_PORT,
        };
        pod_ports
            .iter()
            .filter(|(p, _)| *p == port)
            .map(|(_, text)| text.clone())
            .collect()
    };
    ServiceStatus {
        service,
        container: container.name.clone(),
        state: container.state.clone(),
        health,
        health_detail: detail,
        image: container.image.clone(),
        image_id: container.image_id.clone(),
        ports,
        url: probe_addr.map(|a| format!("http://{a}")),
        gpu: container
            .labels
            .get(LABEL_GPU)
            .cloned()
            .unwrap_or_else(|| "none".to_string()),
        devices: container
            .labels
            .get(LABEL_DEVICES)
            .map(|d| d.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    }
}

async fn published_ports(ctx: &StackContext<'_>, container: &str) -> Vec<String> {
    match ctx.engine.client.inspect_container(container, None).await {
        Ok(info) => info
            .host_config
            .and_then(|h| h.port_bindings)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(port, bindings)| {
                bindings.unwrap_or_default().into_iter().map(move |b| {
                    format!(
                        "{}:{}->{port}",
                        b.host_ip.unwrap_or_default(),
                        b.host_port.unwrap_or_default()
                    )
                })
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Restarts the stack's containers (model server first), as the stack's one writer, and
/// waits until they answer, watching them as `up` does.
pub async fn restart(
    ctx: &StackContext<'_>,
    stack: &str,
    timeout: Duration,
    lock_wait: Duration,
) -> Result<(), StackError> {
    let mut lock = WriterLock::acquire(ctx, stack, "restart", lock_wait).await?;
    let result = async {
        lock.claim(ctx, stack, lock_wait).await?;
        restart_locked(ctx, stack, timeout).await
    }
    .await;
    lock.release(ctx).await;
    result
}

async fn restart_locked(
    ctx: &StackContext<'_>,
    stack: &str,
    timeout: Duration,
) -> Result<(), StackError> {
    let engine = ctx.engine;
    let current = state::actual(engine, stack).await?;
    let stored = Stored::newest(&current);
    let mut containers: Vec<_> = current
        .containers
        .iter()
        .filter(|c| c.service.is_some())
        .collect();
    if containers.is_empty() {
        return Err(StackError::NoStack {
            stack: stack.to_string(),
            engine: engine.kind.as_str().to_string(),
        });
    }
    containers.sort_by_key(|c| c.service);
    for container in &containers {
        if ctx.cancel.is_cancelled() {
            return Err(StackError::Interrupted);
        }
        ctx.events.report(DeployEvent::Step {
            action: "restart",
            object: "container",
            name: container.name.clone(),
            detail: None,
        });
        let seconds = grace(container, stored.as_ref(), None).as_secs();
        engine
            .client
            .restart_container(
                &container.name,
                Some(RestartContainerOptions {
                    t: Some(i32::try_from(seconds).unwrap_or(i32::MAX)),
                    signal: None,
                }),
            )
            .await
            .on(engine, format!("restart container {}", container.name))?;
    }
    let deadline = Instant::now() + timeout;
    for container in &containers {
        let (Some(service), Some(addr)) = (
            container.service,
            container
                .labels
                .get(LABEL_PROBE)
                .and_then(|a| a.parse().ok()),
        ) else {
            continue;
        };
        let target = Target {
            service,
            container: &container.name,
            probe_addr: addr,
            fresh: false,
        };
        wait::healthy(ctx, &target, deadline, timeout).await?;
    }
    Ok(())
}

fn find(current: &Actual, stack: &str, service: Service) -> Result<String, StackError> {
    current
        .service(service)
        .map(|c| c.name.clone())
        .ok_or_else(|| StackError::NoService {
            stack: stack.to_string(),
            service: service.as_str().to_string(),
        })
}

/// One line of a service's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// The service.
    pub service: Service,
    /// The line, without its newline.
    pub line: String,
}

/// Sends the log lines of `service` (or of every service, interleaved as they come) to
/// `sink`; follows with `follow` until cancelled; `tail` limits to the last lines.
pub async fn logs(
    ctx: &StackContext<'_>,
    stack: &str,
    service: Option<Service>,
    follow: bool,
    tail: Option<usize>,
    sink: &mut (dyn FnMut(LogLine) + Send),
) -> Result<(), StackError> {
    let engine = ctx.engine;
    let current = state::actual(engine, stack).await?;
    if current.containers.is_empty() {
        return Err(StackError::NoStack {
            stack: stack.to_string(),
            engine: engine.kind.as_str().to_string(),
        });
    }
    let targets: Vec<(Service, String)> = match service {
        Some(service) => vec![(service, find(&current, stack, service)?)],
        None => {
            let mut all: Vec<(Service, String)> = current
                .containers
                .iter()
                .filter_map(|c| c.service.map(|s| (s, c.name.clone())))
                .collect();
            all.sort();
            all
        }
    };
    let streams = targets.into_iter().map(|(service, name)| {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()),
            ..Default::default()
        };
        engine
            .client
            .logs(&name, Some(options))
            .map(move |item| (service, item))
            .boxed()
    });
    let mut merged = futures::stream::select_all(streams);
    let mut partial: BTreeMap<Service, String> = BTreeMap::new();
    loop {
        let next = tokio::select! {
            next = merged.next() => next,
            () = ctx.cancel.cancelled() => return Err(StackError::Interrupted),
        };
        let Some((service, item)) = next else {
            break;
        };
        let chunk = item.on(engine, format!("read logs of {}", service.as_str()))?;
        let buffer = partial.entry(service).or_default();
        buffer.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        while let Some(pos) = buffer.find('\n') {
            let line: String = buffer.drain(..=pos).collect();
            sink(LogLine {
                service,
                line: line.trim_end_matches(['\n', '\r']).to_string(),
            });
        }
    }
    for (service, rest) in partial {
        if !rest.is_empty() {
            sink(LogLine {
                service,
                line: rest,
            });
        }
    }
    Ok(())
}

/// The command `shell` runs by default: `nanna chat` in the assistant, a shell in the model
/// server.
pub fn default_command(service: Service) -> Vec<String> {
    match service {
        Service::Assistant => vec!["nanna".to_string(), "chat".to_string()],
        Service::Ollama => vec!["/bin/sh".to_string()],
    }
}

/// Starts `request` in the container of `service`, attached (the binary connects it to the
/// terminal). Finish with [`exit_code`].
pub async fn attach(
    ctx: &StackContext<'_>,
    stack: &str,
    service: Service,
    request: ExecRequest,
) -> Result<Attached, StackError> {
    let current = state::actual(ctx.engine, stack).await?;
    let name = find(&current, stack, service)?;
    state::start_exec(ctx.engine, &name, request).await
}

/// Tells an attached exec the size of its terminal.
pub async fn resize(ctx: &StackContext<'_>, exec: &str, rows: u16, cols: u16) {
    let _ = ctx
        .engine
        .client
        .resize_exec(
            exec,
            ResizeExecOptions {
                height: rows,
                width: cols,
            },
        )
        .await;
}

/// The exit code of a finished exec (0 when the engine reports none).
pub async fn exit_code(ctx: &StackContext<'_>, exec: &str) -> Result<i64, StackError> {
    Ok(state::exec_exit_code(ctx.engine, exec).await?.unwrap_or(0))
}

/// Runs `cmd` in the container of `service` without a terminal or input, writing its output
/// to `out`; returns its exit code (what `shell SERVICE -- CMD` does, for scripts and tests).
pub async fn exec(
    ctx: &StackContext<'_>,
    stack: &str,
    service: Service,
    cmd: Vec<String>,
    out: &mut (dyn std::io::Write + Send),
) -> Result<i64, StackError> {
    let current = state::actual(ctx.engine, stack).await?;
    let name = find(&current, stack, service)?;
    Ok(state::exec_captured(ctx.engine, &name, cmd, out)
        .await?
        .unwrap_or(0))
}

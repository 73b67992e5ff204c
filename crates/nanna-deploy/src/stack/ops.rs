//! Operations on a running stack: `down`, `status`, `logs`, `restart` and `shell`.

use std::io::Write;
use std::time::Duration;

use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{LogsOptions, RemoveVolumeOptions, RestartContainerOptions};
use futures::StreamExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::apply::{actual, remove_container};
use super::health::{self, Health};
use super::podman::Libpod;
use super::spec::{LABEL_DEVICES, LABEL_GPU, LABEL_PROBE, Service};
use super::{StackError, api, is_not_found};
use crate::engine::Engine;

/// What `down` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
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
}

/// Removes the stack's containers, pod and network, and with `volumes` its models volume.
pub async fn down(engine: &Engine, stack: &str, volumes: bool) -> Result<DownReport, StackError> {
    let current = actual(engine, stack).await?;
    let mut report = DownReport::default();
    for container in &current.containers {
        remove_container(engine, &container.name).await?;
        report.containers.push(container.name.clone());
    }
    if !current.pods.is_empty() {
        let libpod = Libpod::new(engine)?;
        for pod in &current.pods {
            libpod.remove_pod(&pod.name).await?;
            report.pods.push(pod.name.clone());
        }
    }
    for network in &current.networks {
        match engine.client.remove_network(network).await {
            Ok(()) => report.networks.push(network.clone()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api(format!("remove network {network}"))(e)),
        }
    }
    for volume in &current.volumes {
        if volumes {
            match engine
                .client
                .remove_volume(volume, Some(RemoveVolumeOptions { force: true }))
                .await
            {
                Ok(()) => report.volumes.push(volume.clone()),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api(format!("remove volume {volume}"))(e)),
            }
        } else {
            report.kept_volumes.push(volume.clone());
        }
    }
    Ok(report)
}

/// One service's state.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// Service.
    pub service: Service,
    /// Container name.
    pub container: String,
    /// Engine state (`running`, `exited`...).
    pub state: String,
    /// `healthy`, `unhealthy` or `stopped`.
    pub health: String,
    /// Why unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_detail: Option<String>,
    /// Image reference.
    pub image: String,
    /// Image id.
    pub image_id: String,
    /// Published ports (`127.0.0.1:11434->11434/tcp`).
    pub ports: Vec<String>,
    /// Where it answers HTTP from the host.
    pub url: Option<String>,
    /// Accelerator (`nvidia`, `amd`, `intel`, `none`).
    pub gpu: String,
    /// Device paths given to it.
    pub devices: Vec<String>,
}

/// The whole stack's state.
#[derive(Debug, Clone, Serialize)]
pub struct StackStatus {
    /// Stack name.
    pub stack: String,
    /// Engine kind.
    pub engine: String,
    /// Pod, when the pod layout is used.
    pub pod: Option<String>,
    /// Networks.
    pub networks: Vec<String>,
    /// Volumes.
    pub volumes: Vec<String>,
    /// Services.
    pub services: Vec<ServiceStatus>,
}

/// The state of every service of the stack; [`StackError::NoStack`] when it has nothing.
pub async fn status(engine: &Engine, stack: &str) -> Result<StackStatus, StackError> {
    let current = actual(engine, stack).await?;
    if current.is_empty() {
        return Err(StackError::NoStack {
            stack: stack.to_string(),
            engine: engine.kind.as_str().to_string(),
        });
    }
    let mut services = Vec::new();
    let mut containers = current.containers.clone();
    containers.sort_by_key(|c| c.service);
    for container in &containers {
        let Some(service) = container.service else {
            continue;
        };
        let probe_addr = container
            .labels
            .get(LABEL_PROBE)
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok());
        let (health, detail) = if !container.running() {
            ("stopped".to_string(), None)
        } else if let Some(addr) = probe_addr {
            match health::probe(service, addr, Duration::from_secs(2)).await {
                Health::Healthy => ("healthy".to_string(), None),
                Health::Unhealthy { detail } => ("unhealthy".to_string(), Some(detail)),
            }
        } else {
            ("unknown".to_string(), None)
        };
        let ports = match engine.client.inspect_container(&container.name, None).await {
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
        };
        services.push(ServiceStatus {
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
        });
    }
    Ok(StackStatus {
        stack: stack.to_string(),
        engine: engine.kind.as_str().to_string(),
        pod: current.pods.first().map(|p| p.name.clone()),
        networks: current.networks,
        volumes: current.volumes,
        services,
    })
}

/// Restarts the stack's containers (model server first) and waits until they answer.
pub async fn restart(
    engine: &Engine,
    stack: &str,
    timeout: Duration,
    progress: bool,
) -> Result<(), StackError> {
    let current = actual(engine, stack).await?;
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
        if progress {
            eprintln!("restarting {}", container.name);
        }
        engine
            .client
            .restart_container(
                &container.name,
                Some(RestartContainerOptions {
                    t: Some(10),
                    signal: None,
                }),
            )
            .await
            .map_err(api(format!("restart container {}", container.name)))?;
    }
    let deadline = std::time::Instant::now() + timeout;
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
        loop {
            match health::probe(service, addr, Duration::from_secs(2)).await {
                Health::Healthy => break,
                Health::Unhealthy { detail } => {
                    if std::time::Instant::now() >= deadline {
                        return Err(StackError::Unhealthy {
                            service: service.as_str().to_string(),
                            timeout,
                            last: detail,
                            logs: health::tail_logs(engine, &container.name, 20).await,
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    Ok(())
}

fn find(
    current: &super::plan::Actual,
    stack: &str,
    service: Service,
) -> Result<String, StackError> {
    current
        .service(service)
        .map(|c| c.name.clone())
        .ok_or_else(|| StackError::NoService {
            stack: stack.to_string(),
            service: service.as_str().to_string(),
        })
}

/// Writes the logs of `service` (or every service, prefixed) to stdout; follows with
/// `follow`; `tail` limits to the last lines.
pub async fn logs(
    engine: &Engine,
    stack: &str,
    service: Option<Service>,
    follow: bool,
    tail: Option<usize>,
    out: &mut (dyn Write + Send),
) -> Result<(), StackError> {
    let current = actual(engine, stack).await?;
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
    let prefix = targets.len() > 1;
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
    let mut partial: std::collections::BTreeMap<Service, String> = Default::default();
    while let Some((service, item)) = merged.next().await {
        let chunk = item.map_err(api(format!("read logs of {}", service.as_str())))?;
        let text = String::from_utf8_lossy(&chunk.into_bytes()).into_owned();
        if !prefix {
            let _ = out.write_all(text.as_bytes());
            continue;
        }
        let buffer = partial.entry(service).or_default();
        buffer.push_str(&text);
        while let Some(pos) = buffer.find('\n') {
            let line: String = buffer.drain(..=pos).collect();
            let _ = write!(out, "{:<9}| {line}", service.as_str());
        }
    }
    for (service, rest) in partial {
        if !rest.is_empty() {
            let _ = writeln!(out, "{:<9}| {rest}", service.as_str());
        }
    }
    let _ = out.flush();
    Ok(())
}

/// Raw terminal mode for the life of the value (when stdin is a terminal).
struct RawMode {
    saved: Option<libc::termios>,
}

impl RawMode {
    fn enter() -> Self {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a properly sized, zeroed termios struct.
        unsafe {
            if libc::isatty(0) != 1 {
                return Self { saved: None };
            }
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return Self { saved: None };
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(0, libc::TCSANOW, &raw) != 0 {
                return Self { saved: None };
            }
            Self { saved: Some(saved) }
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: restores the settings read in `enter`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, saved);
            }
        }
    }
}

fn terminal_size() -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ fills a winsize struct for a terminal fd.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        (libc::ioctl(1, libc::TIOCGWINSZ, &mut size) == 0 && size.ws_row > 0)
            .then_some((size.ws_row, size.ws_col))
    }
}

/// Runs `cmd` (default `nanna chat`) in the container of `service`, attached to this
/// terminal (with a TTY when stdin is one); returns the command's exit code.
pub async fn shell(
    engine: &Engine,
    stack: &str,
    service: Service,
    cmd: Vec<String>,
) -> Result<i64, StackError> {
    let current = actual(engine, stack).await?;
    let name = find(&current, stack, service)?;
    let cmd = if cmd.is_empty() {
        match service {
            Service::Assistant => vec!["nanna".to_string(), "chat".to_string()],
            Service::Ollama => vec!["/bin/sh".to_string()],
        }
    } else {
        cmd
    };
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(0) == 1 };
    let exec = engine
        .client
        .create_exec(
            &name,
            CreateExecOptions {
                cmd: Some(cmd.clone()),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(tty),
                env: Some(vec![format!(
                    "TERM={}",
                    std::env::var("TERM").unwrap_or_else(|_| "xterm".to_string())
                )]),
                ..Default::default()
            },
        )
        .await
        .map_err(api(format!("exec {} in {name}", cmd.join(" "))))?;
    let started = engine
        .client
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: false,
                tty,
                output_capacity: None,
            }),
        )
        .await
        .map_err(api(format!("start {} in {name}", cmd.join(" "))))?;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    else {
        return Ok(0);
    };
    if tty && let Some((rows, cols)) = terminal_size() {
        let _ = engine
            .client
            .resize_exec(
                &exec.id,
                ResizeExecOptions {
                    height: rows,
                    width: cols,
                },
            )
            .await;
    }
    let raw = RawMode::enter();
    // Stdin is read on a plain thread (blocking reads) and forwarded to the exec's input.
    let (keys, mut key_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin();
        let mut buffer = [0u8; 1024];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if keys.blocking_send(buffer[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let pump = tokio::spawn(async move {
        while let Some(bytes) = key_rx.recv().await {
            if input.write_all(&bytes).await.is_err() {
                break;
            }
            let _ = input.flush().await;
        }
        let _ = input.shutdown().await;
    });
    let mut stdout = std::io::stdout();
    while let Some(Ok(chunk)) = output.next().await {
        if stdout.write_all(&chunk.into_bytes()).is_err() {
            break;
        }
        let _ = stdout.flush();
    }
    pump.abort();
    drop(raw);
    let code = engine
        .client
        .inspect_exec(&exec.id)
        .await
        .ok()
        .and_then(|i| i.exit_code)
        .unwrap_or(0);
    Ok(code)
}

/// Runs `cmd` in the container of `service` without a terminal or input, writing its output
/// to `out`; returns its exit code (what `shell SERVICE -- CMD` does, for scripts and tests).
pub async fn exec(
    engine: &Engine,
    stack: &str,
    service: Service,
    cmd: Vec<String>,
    out: &mut (dyn Write + Send),
) -> Result<i64, StackError> {
    let current = actual(engine, stack).await?;
    let name = find(&current, stack, service)?;
    Ok(run_captured(engine, &name, cmd, out).await?.unwrap_or(0))
}

/// Runs `cmd` in `container` without a terminal or input, copying its output to `out`;
/// returns the exit code the engine reports (`None` when it reports none).
pub(crate) async fn run_captured(
    engine: &Engine,
    container: &str,
    cmd: Vec<String>,
    out: &mut (dyn Write + Send),
) -> Result<Option<i64>, StackError> {
    let what = cmd.join(" ");
    let exec = engine
        .client
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(api(format!("exec {what} in {container}")))?;
    let started = engine
        .client
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: false,
                tty: false,
                output_capacity: None,
            }),
        )
        .await
        .map_err(api(format!("start {what} in {container}")))?;
    if let StartExecResults::Attached { mut output, .. } = started {
        while let Some(chunk) = output.next().await {
            let chunk = chunk.map_err(api(format!("read the output of {what}")))?;
            let _ = out.write_all(&chunk.into_bytes());
        }
    }
    let _ = out.flush();
    let inspect = engine
        .client
        .inspect_exec(&exec.id)
        .await
        .map_err(api(format!("inspect {what} in {container}")))?;
    Ok(inspect.exit_code)
}

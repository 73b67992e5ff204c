//! The bottom layer of the stack: what the engine has and the primitive changes to it.
//! Finding the stack's objects by label, inspecting, creating by name without duplicates,
//! stopping and removing, and running a command in a container. Everything above
//! (`apply`, `ops`, `wait`, `probe`) goes through here; nothing here knows about plans.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::pin::Pin;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    LogsOptions, RemoveContainerOptions, RemoveVolumeOptions, StopContainerOptions,
};
use futures::{Stream, StreamExt};
use tokio::io::AsyncWrite;

use super::StackError;
use super::error::{is_conflict, is_not_found};
use super::plan::{Actual, ActualContainer, ActualNetwork, ActualPod};
use super::podman::Libpod;
use serde::{Deserialize, Serialize};

use super::spec::{
    LABEL_HASH, LABEL_OBJECT, LABEL_SERVICE, LABEL_SETTINGS, LABEL_STACK, Service, StackSettings,
};
use crate::accelerator::GpuChoice;
use crate::engine::Engine;
use crate::engine::EngineKind;
use crate::engine::http_client::{self, Endpoint};

fn strip_digest(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

/// The engine filter that selects the objects labelled as stack `stack`'s.
pub(crate) fn label_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{LABEL_STACK}={stack}")])])
}

/// A bollard result mapped to a [`StackError`] that says what was being done.
pub(crate) trait Call<T> {
    /// Maps the error; `action` is what was being done (`create network x`).
    fn on(self, engine: &Engine, action: impl Into<String>) -> Result<T, StackError>;
}

impl<T> Call<T> for Result<T, bollard::errors::Error> {
    fn on(self, engine: &Engine, action: impl Into<String>) -> Result<T, StackError> {
        self.map_err(|error| StackError::engine_call(engine, action, &error))
    }
}

/// Settings stored on each container (label [`LABEL_SETTINGS`]) for `update` and `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub settings: StackSettings,
    pub gpu: GpuChoice,
}

impl Stored {
    /// The settings the newest container of `current` was created with.
    pub(crate) fn newest(current: &Actual) -> Option<Self> {
        current
            .containers
            .iter()
            .filter_map(|c| {
                let text = c.labels.get(LABEL_SETTINGS)?;
                serde_json::from_str::<Stored>(text)
                    .ok()
                    .map(|s| (c.created, s))
            })
            .max_by_key(|(created, _)| *created)
            .map(|(_, s)| s)
    }
}

/// Everything the engine has for stack `stack` (found by its label). Objects labelled as
/// the stack's but not part of it (a pod's infra container, the writer's claim) are left out.
pub async fn actual(engine: &Engine, stack: &str) -> Result<Actual, StackError> {
    let (containers, networks, volumes) = futures::join!(
        engine.client.list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(label_filter(stack)),
            ..Default::default()
        })),
        engine.client.list_networks(Some(ListNetworksOptions {
            filters: Some(label_filter(stack)),
        })),
        engine.client.list_volumes(Some(ListVolumesOptions {
            filters: Some(label_filter(stack)),
        })),
    );
    let containers = containers
        .on(engine, "list containers")?
        .into_iter()
        // A pod's infra container carries the pod's labels (object `pod`): not ours to manage.
        .filter(|c| {
            c.labels
                .as_ref()
                .and_then(|l| l.get(LABEL_OBJECT))
                .is_none_or(|object| object == "container")
        })
        .map(|c| {
            let labels: BTreeMap<String, String> =
                c.labels.unwrap_or_default().into_iter().collect();
            ActualContainer {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                service: labels
                    .get(LABEL_SERVICE)
                    .and_then(|s| Service::from_label(s)),
                settings_hash: labels.get(LABEL_HASH).cloned(),
                image_id: strip_digest(c.image_id.as_deref().unwrap_or_default()).to_string(),
                image: c.image.unwrap_or_default(),
                state: c
                    .state
                    .map(|s| s.to_string())
                    .unwrap_or_default()
                    .to_lowercase(),
                labels,
                created: c.created.unwrap_or_default(),
            }
        })
        .collect();
    let networks = networks
        .on(engine, "list networks")?
        .into_iter()
        .filter_map(|n| {
            Some(ActualNetwork {
                id: n.id.unwrap_or_default(),
                name: n.name?,
            })
        })
        .collect();
    let volumes = volumes
        .on(engine, "list volumes")?
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.labels.get(LABEL_OBJECT).is_none_or(|o| o != "claim"))
        .map(|v| v.name)
        .collect();
    let pods = if engine.kind == EngineKind::Podman {
        Libpod::new(engine)?
            .list_pods(stack)
            .await?
            .into_iter()
            .map(|p| ActualPod {
                settings_hash: p.labels.as_ref().and_then(|l| l.get(LABEL_HASH).cloned()),
                name: p.name,
                status: p.status,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Actual {
        containers,
        networks,
        volumes,
        pods,
    })
}

/// Whether the engine answers `GET /_ping` within two seconds (used before a rollback, so
/// a dead engine is reported instead of waited on object by object).
pub(crate) async fn answers(engine: &Engine) -> bool {
    let Some(endpoint) = Endpoint::parse(&engine.socket) else {
        return false;
    };
    http_client::request(
        &endpoint,
        http::Method::GET,
        "/_ping",
        None,
        Duration::from_secs(2),
    )
    .await
    .is_ok_and(|answer| answer.status.is_success())
}

/// How a creation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Created {
    /// This call created it.
    New,
    /// It existed already with this stack's label (another run made it): not ours to roll back.
    Existing,
}

/// Creates network `name` unless the engine has one of that name already; never makes a
/// second network of the same name (Docker allows duplicate names, which makes every later
/// lookup by name fail as ambiguous).
pub(crate) async fn ensure_network(
    engine: &Engine,
    name: &str,
    stack: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Created, StackError> {
    if let Some(found) = network_named(engine, name).await? {
        return owned(found, stack, "network", name);
    }
    let created = engine
        .client
        .create_network(NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        })
        .await;
    match created {
        Ok(_) => Ok(Created::New),
        // Lost a race: whoever won made it; re-read.
        Err(error) if is_conflict(&error) => match network_named(engine, name).await? {
            Some(found) => owned(found, stack, "network", name),
            None => Err(StackError::engine_call(
                engine,
                format!("create network {name}"),
                &error,
            )),
        },
        Err(error) => Err(StackError::engine_call(
            engine,
            format!("create network {name}"),
            &error,
        )),
    }
}

/// The stack label of the network named exactly `name`, if there is one.
async fn network_named(engine: &Engine, name: &str) -> Result<Option<Option<String>>, StackError> {
    let found = engine
        .client
        .list_networks(Some(ListNetworksOptions {
            filters: Some(HashMap::from([(
                "name".to_string(),
                vec![name.to_string()],
            )])),
        }))
        .await
        .on(engine, "list networks")?;
    // The name filter matches substrings: keep the exact name.
    Ok(found
        .into_iter()
        .find(|n| n.name.as_deref() == Some(name))
        .map(|n| n.labels.and_then(|l| l.get(LABEL_STACK).cloned())))
}

fn owned(
    label: Option<String>,
    stack: &str,
    kind: &'static str,
    name: &str,
) -> Result<Created, StackError> {
    if label.as_deref() == Some(stack) {
        Ok(Created::Existing)
    } else {
        Err(StackError::NameTaken {
            kind,
            name: name.to_string(),
        })
    }
}

/// Creates volume `name` unless it exists. Docker returns an existing volume of that name
/// instead of failing (moby `volume/service/store.go`, `VolumeStore.create`); Podman
/// refuses with "already exists". Either way the labels tell whose it is.
pub(crate) async fn ensure_volume(
    engine: &Engine,
    name: &str,
    stack: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Created, StackError> {
    let label = |volume: &bollard::models::Volume| volume.labels.get(LABEL_STACK).cloned();
    match engine.client.inspect_volume(name).await {
        Ok(volume) => return owned(label(&volume), stack, "volume", name),
        Err(error) if is_not_found(&error) => {}
        Err(error) => {
            return Err(StackError::engine_call(
                engine,
                format!("inspect volume {name}"),
                &error,
            ));
        }
    }
    match engine
        .client
        .create_volume(VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        })
        .await
    {
        Ok(volume) if volume.labels.get(LABEL_STACK).is_some_and(|s| s == stack) => {
            Ok(Created::New)
        }
        Ok(volume) => owned(label(&volume), stack, "volume", name),
        Err(error) if is_conflict(&error) => {
            let volume = engine
                .client
                .inspect_volume(name)
                .await
                .on(engine, format!("inspect volume {name}"))?;
            owned(label(&volume), stack, "volume", name)
        }
        Err(error) => Err(StackError::engine_call(
            engine,
            format!("create volume {name}"),
            &error,
        )),
    }
}

/// Creates a container through the Docker API; a name already taken by this stack's
/// container with the same settings hash counts as [`Created::Existing`].
pub(crate) async fn create_docker_container(
    engine: &Engine,
    name: &str,
    stack: &str,
    settings_hash: &str,
    body: ContainerCreateBody,
) -> Result<Created, StackError> {
    match engine
        .client
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_string()),
                ..Default::default()
            }),
            body,
        )
        .await
    {
        Ok(_) => Ok(Created::New),
        Err(error) if is_conflict(&error) => {
            same_container(engine, name, stack, settings_hash).await
        }
        Err(error) => Err(StackError::engine_call(
            engine,
            format!("create container {name}"),
            &error,
        )),
    }
}

/// After a "name in use" answer: whether the container that has the name is the one this
/// run wanted (same stack, same settings), created by a concurrent run.
pub(crate) async fn same_container(
    engine: &Engine,
    name: &str,
    stack: &str,
    settings_hash: &str,
) -> Result<Created, StackError> {
    let info = engine
        .client
        .inspect_container(name, None)
        .await
        .on(engine, format!("inspect container {name}"))?;
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    if labels.get(LABEL_STACK).map(String::as_str) != Some(stack) {
        return Err(StackError::NameTaken {
            kind: "container",
            name: name.to_string(),
        });
    }
    if labels.get(LABEL_HASH).map(String::as_str) == Some(settings_hash) {
        Ok(Created::Existing)
    } else {
        Err(StackError::Api {
            action: format!("create container {name}"),
            message: "a concurrent run created it with other settings; run `nanna-deploy up` again"
                .to_string(),
        })
    }
}

/// Stops a container, giving it `grace` between SIGTERM and SIGKILL (the same on both
/// engines, instead of each engine's default), then removes it with its anonymous volumes.
/// Absent is fine.
pub(crate) async fn remove_container(
    engine: &Engine,
    name: &str,
    grace: Duration,
) -> Result<(), StackError> {
    let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
    match engine
        .client
        .stop_container(
            name,
            Some(StopContainerOptions {
                t: Some(seconds),
                signal: None,
            }),
        )
        .await
    {
        Ok(()) => {}
        Err(error) if is_not_found(&error) => return Ok(()),
        // 304: already stopped.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => {}
        Err(error) if super::error::is_transport(&error) => {
            return Err(StackError::engine_call(
                engine,
                format!("stop container {name}"),
                &error,
            ));
        }
        // Podman answers 500 for a container that is not running; removal decides.
        Err(_) => {}
    }
    match engine
        .client
        .remove_container(
            name,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => Err(StackError::engine_call(
            engine,
            format!("remove container {name}"),
            &error,
        )),
    }
}

/// Removes a network by id (names may be ambiguous on Docker); absent is fine.
pub(crate) async fn remove_network(
    engine: &Engine,
    network: &ActualNetwork,
) -> Result<(), StackError> {
    let target = if network.id.is_empty() {
        &network.name
    } else {
        &network.id
    };
    match engine.client.remove_network(target).await {
        Ok(()) => Ok(()),
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => Err(StackError::engine_call(
            engine,
            format!("remove network {}", network.name),
            &error,
        )),
    }
}

/// Removes a volume (forcefully); absent is fine.
pub(crate) async fn remove_volume(engine: &Engine, name: &str) -> Result<(), StackError> {
    match engine
        .client
        .remove_volume(name, Some(RemoveVolumeOptions { force: true }))
        .await
    {
        Ok(()) => Ok(()),
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => Err(StackError::engine_call(
            engine,
            format!("remove volume {name}"),
            &error,
        )),
    }
}

/// Starts a container.
pub(crate) async fn start_container(engine: &Engine, name: &str) -> Result<(), StackError> {
    engine
        .client
        .start_container(name, None)
        .await
        .on(engine, format!("start container {name}"))
}

/// What the engine says about a running (or not) container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Liveness {
    /// Running now.
    pub running: bool,
    /// Being restarted by its restart policy.
    pub restarting: bool,
    /// Times the restart policy restarted it.
    pub restart_count: i64,
    /// Last exit code.
    pub exit_code: Option<i64>,
    /// The engine's error text, if any.
    pub error: Option<String>,
}

/// The state of container `name`; `Ok(None)` when it does not exist. Read with the
/// crate's HTTP client and only the fields needed: Podman reports states (`stopped`) that
/// bollard's model of the Docker API rejects.
pub(crate) async fn liveness(engine: &Engine, name: &str) -> Result<Option<Liveness>, StackError> {
    #[derive(Deserialize)]
    struct Inspect {
        #[serde(rename = "State", default)]
        state: InspectState,
        #[serde(rename = "RestartCount", default)]
        restart_count: i64,
    }
    #[derive(Deserialize, Default)]
    struct InspectState {
        #[serde(rename = "Running", default)]
        running: bool,
        #[serde(rename = "Restarting", default)]
        restarting: bool,
        #[serde(rename = "ExitCode", default)]
        exit_code: Option<i64>,
        #[serde(rename = "Error", default)]
        error: Option<String>,
    }
    let gone = |message: String| StackError::EngineGone {
        engine: engine.kind.as_str().to_string(),
        address: engine.socket.clone(),
        action: format!("inspect container {name}"),
        message,
    };
    let endpoint =
        Endpoint::parse(&engine.socket).ok_or_else(|| gone("unsupported address".to_string()))?;
    let path = format!(
        "/v{}/containers/{}/json",
        engine.api_version,
        http_client::encode_query(name)
    );
    let answer = http_client::request(
        &endpoint,
        http::Method::GET,
        &path,
        None,
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| gone(e.to_string()))?;
    if answer.status == http::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !answer.status.is_success() {
        return Err(StackError::Api {
            action: format!("inspect container {name}"),
            message: format!(
                "HTTP {}: {}",
                answer.status.as_u16(),
                String::from_utf8_lossy(&answer.body).trim()
            ),
        });
    }
    let info: Inspect = serde_json::from_slice(&answer.body).map_err(|e| StackError::Api {
        action: format!("inspect container {name}"),
        message: format!("unexpected answer: {e}"),
    })?;
    Ok(Some(Liveness {
        running: info.state.running,
        restarting: info.state.restarting,
        restart_count: info.restart_count,
        exit_code: info.state.exit_code,
        error: info.state.error.filter(|e| !e.is_empty()),
    }))
}

/// The last `lines` log lines of a container, indented, for error messages.
pub(crate) async fn tail_logs(engine: &Engine, container: &str, lines: usize) -> String {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..Default::default()
    };
    let mut stream = engine.client.logs(container, Some(options));
    let mut text = String::new();
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
    };
    // An engine that stops answering must not hold an error message back.
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    if text.trim().is_empty() {
        "  (no output)".to_string()
    } else {
        text.lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A command to run in a container.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The program and its arguments.
    pub cmd: Vec<String>,
    /// Attach standard input.
    pub stdin: bool,
    /// Give it a terminal.
    pub tty: bool,
    /// Extra environment (`TERM=xterm`).
    pub env: Vec<String>,
}

/// A started exec: its id, its output and its input.
pub struct Attached {
    /// The exec id (for resizing and the exit code).
    pub id: String,
    /// What it writes (stdout and stderr; one stream with a terminal).
    pub output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    /// Its standard input.
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

/// Creates and starts an exec in `container`, attached.
pub(crate) async fn start_exec(
    engine: &Engine,
    container: &str,
    request: ExecRequest,
) -> Result<Attached, StackError> {
    let what = request.cmd.join(" ");
    let exec = engine
        .client
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(request.cmd),
                attach_stdin: Some(request.stdin),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(request.tty),
                env: (!request.env.is_empty()).then_some(request.env),
                ..Default::default()
            },
        )
        .await
        .on(engine, format!("exec {what} in {container}"))?;
    let started = engine
        .client
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: false,
                tty: request.tty,
                output_capacity: None,
            }),
        )
        .await
        .on(engine, format!("start {what} in {container}"))?;
    match started {
        StartExecResults::Attached { output, input } => Ok(Attached {
            id: exec.id,
            output,
            input,
        }),
        StartExecResults::Detached => Err(StackError::Api {
            action: format!("start {what} in {container}"),
            message: "the engine started it detached".to_string(),
        }),
    }
}

/// The exit code of a finished exec (`None` when the engine reports none).
pub(crate) async fn exec_exit_code(engine: &Engine, exec: &str) -> Result<Option<i64>, StackError> {
    Ok(engine
        .client
        .inspect_exec(exec)
        .await
        .on(engine, "inspect exec")?
        .exit_code)
}

/// Runs `cmd` in `container` without a terminal or input, copying its output to `out`;
/// returns the exit code the engine reports (`None` when it reports none).
pub(crate) async fn exec_captured(
    engine: &Engine,
    container: &str,
    cmd: Vec<String>,
    out: &mut (dyn Write + Send),
) -> Result<Option<i64>, StackError> {
    let what = cmd.join(" ");
    let mut attached = start_exec(
        engine,
        container,
        ExecRequest {
            cmd,
            ..Default::default()
        },
    )
    .await?;
    while let Some(chunk) = attached.output.next().await {
        let chunk = chunk.on(engine, format!("read the output of {what}"))?;
        let _ = out.write_all(&chunk.into_bytes());
    }
    let _ = out.flush();
    exec_exit_code(engine, &attached.id).await
}

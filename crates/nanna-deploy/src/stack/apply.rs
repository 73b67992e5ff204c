//! `up` and `update`: check everything first, then create what the plan says (removing what
//! this run created if a step fails), wait for health, verify GPU devices, pull the model.

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, DeviceMapping as BollardDevice, DeviceRequest, EndpointSettings,
    HostConfig, Mount, MountType, NetworkCreateRequest, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    RemoveContainerOptions, RemoveVolumeOptions,
};
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::health::{self, DeviceCheck};
use super::http::{Endpoint, request};
use super::images;
use super::plan::{Actual, ActualContainer, ActualPod, Plan, Step, plan};
use super::podman::{Libpod, Placement};
use super::spec::{
    self, ContainerSpec, LABEL_HASH, LABEL_OBJECT, LABEL_SERVICE, LABEL_SETTINGS, LABEL_STACK,
    Layout, MountSpec, Service, StackSettings, StackSpec,
};
use super::{StackError, api, bollard_message, is_not_found};
use crate::detect;
use crate::engine::{Engine, EngineKind};
use crate::host::ProbeEnv;
use crate::recommend::{Accelerator, GpuChoice};

/// Everything `up` needs besides the engine.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The stack's settings.
    pub settings: StackSettings,
    /// `--gpu`.
    pub gpu: GpuChoice,
    /// Archives to load before anything else.
    pub image_archives: Vec<PathBuf>,
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// How long services get to become healthy.
    pub timeout: Duration,
    /// How long a pull of an absent image may take.
    pub pull_timeout: Duration,
    /// Print progress on stderr.
    pub progress: bool,
}

impl UpOptions {
    /// Options for `settings` with default timeouts, `--gpu auto`, no progress output.
    pub fn new(settings: StackSettings) -> Self {
        Self {
            settings,
            gpu: GpuChoice::Auto,
            image_archives: Vec::new(),
            dry_run: false,
            timeout: Duration::from_secs(120),
            pull_timeout: images::DEFAULT_PULL_TIMEOUT,
            progress: false,
        }
    }
}

/// What `up` did.
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    /// The desired stack.
    pub spec: StackSpec,
    /// The plan.
    pub plan: Plan,
    /// Whether anything was changed (false for a no-op and for `--dry-run`).
    pub changed: bool,
    /// Image ids by reference (only present images during `--dry-run`).
    pub image_ids: BTreeMap<String, String>,
    /// How GPU devices were verified, if the model server got any and was (re)started.
    pub devices: Option<DeviceCheck>,
    /// References loaded from `--image-archive`.
    pub loaded: Vec<String>,
    /// The model pulled, if any.
    pub model_pulled: Option<String>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
}

/// Settings stored on each container (label [`LABEL_SETTINGS`]) for `update`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    settings: StackSettings,
    gpu: String,
}

fn gpu_name(choice: GpuChoice) -> &'static str {
    match choice {
        GpuChoice::Auto => "auto",
        GpuChoice::Nvidia => "nvidia",
        GpuChoice::Amd => "amd",
        GpuChoice::Intel => "intel",
        GpuChoice::None => "none",
    }
}

fn gpu_from_name(name: &str) -> GpuChoice {
    match name {
        "nvidia" => GpuChoice::Nvidia,
        "amd" => GpuChoice::Amd,
        "intel" => GpuChoice::Intel,
        "none" => GpuChoice::None,
        _ => GpuChoice::Auto,
    }
}

fn strip_digest(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

fn label_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{LABEL_STACK}={stack}")])])
}

/// Everything the engine has for stack `stack` (found by its label).
pub async fn actual(engine: &Engine, stack: &str) -> Result<Actual, StackError> {
    let containers = engine
        .client
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(label_filter(stack)),
            ..Default::default()
        }))
        .await
        .map_err(api("list containers"))?;
    // A pod's infra container carries the pod's labels (object `pod`): not ours to manage.
    let containers = containers
        .into_iter()
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
    let networks = engine
        .client
        .list_networks(Some(ListNetworksOptions {
            filters: Some(label_filter(stack)),
        }))
        .await
        .map_err(api("list networks"))?
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    let volumes = engine
        .client
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(label_filter(stack)),
        }))
        .await
        .map_err(api("list volumes"))?
        .volumes
        .unwrap_or_default()
        .into_iter()
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

/// The desired stack for `settings` on `engine`, with the GPU recipe for `gpu` (detected
/// below the probe environment's host root). Forced GPUs the host lacks, and NVIDIA on
/// Podman without a CDI spec, are errors here.
pub fn desired(
    engine: &Engine,
    env: &ProbeEnv,
    settings: &StackSettings,
    gpu: GpuChoice,
) -> Result<StackSpec, StackError> {
    spec::validate_name(&settings.name)?;
    if settings.layout == Layout::Pod && engine.kind == EngineKind::Docker {
        return Err(spec::SpecError::PodOnDocker.into());
    }
    let detection = detect::detect_offline(env, gpu)?;
    let rec = &detection.recommendation;
    if rec.gpu == Accelerator::Nvidia
        && engine.kind == EngineKind::Podman
        && detection
            .inventory
            .nvidia
            .as_ref()
            .is_none_or(|n| n.cdi_specs.is_empty())
    {
        return Err(StackError::NvidiaNeedsCdi);
    }
    let groups = env
        .host_root
        .read_to_string("/etc/group")
        .map(|text| spec::parse_groups(&text))
        .unwrap_or_default();
    Ok(spec::desired(settings, engine.kind, rec, &groups)?)
}

/// Brings the stack to `options.settings` (see the module docs). With `dry_run` it only
/// computes the plan.
pub async fn up(
    engine: &Engine,
    env: &ProbeEnv,
    options: &UpOptions,
) -> Result<UpReport, StackError> {
    let start = Instant::now();
    let mut loaded = Vec::new();
    if !options.dry_run {
        for archive in &options.image_archives {
            if options.progress {
                eprintln!("loading {} ...", archive.display());
            }
            loaded.extend(images::load(engine, archive).await?);
        }
    }
    let spec = desired(engine, env, &options.settings, options.gpu)?;
    let references: Vec<String> = spec.services.iter().map(|s| s.image.clone()).collect();
    if options.dry_run {
        let image_ids = images::present(engine, &references).await?;
        let current = actual(engine, &spec.stack).await?;
        let plan = plan(&spec, &current, &image_ids);
        return Ok(UpReport {
            spec,
            plan,
            changed: false,
            image_ids,
            devices: None,
            loaded,
            model_pulled: None,
            elapsed_ms: start.elapsed().as_millis(),
        });
    }
    if let Some(ollama) = spec.service(Service::Ollama) {
        for device in &ollama.devices {
            if !env.host_root.exists(&device.path_on_host) {
                return Err(StackError::DeviceMissing {
                    path: device.path_on_host.clone(),
                    gpu: ollama.gpu.as_str().to_string(),
                });
            }
        }
    }
    let image_ids =
        images::ensure(engine, &references, options.pull_timeout, options.progress).await?;
    let current = actual(engine, &spec.stack).await?;
    let plan = plan(&spec, &current, &image_ids);
    check_ports(&spec, &current, &plan)?;

    let stored = serde_json::to_string(&Stored {
        settings: options.settings.clone(),
        gpu: gpu_name(options.gpu).to_string(),
    })
    .unwrap_or_default();
    let mut run = Run::new(engine)?;
    if let Err(error) = run.execute(&spec, &plan, &stored, options.progress).await {
        return Err(run.rollback(error).await);
    }
    let devices = match finish(engine, &spec, &plan, options).await {
        Ok(devices) => devices,
        Err(error) => return Err(run.rollback(error).await),
    };
    let mut model_pulled = None;
    if let (Some(model), Some(ollama)) = (&options.settings.model, spec.service(Service::Ollama))
        && !has_model(ollama.probe_addr, model).await
    {
        if options.progress {
            eprintln!("pulling model {model} ...");
        }
        health::pull_model(ollama.probe_addr, model, options.progress).await?;
        model_pulled = Some(model.clone());
    }
    Ok(UpReport {
        changed: !plan.is_noop(),
        spec,
        plan,
        image_ids,
        devices,
        loaded,
        model_pulled,
        elapsed_ms: start.elapsed().as_millis(),
    })
}

/// Re-applies the settings the stack was last created with, after loading `options`'
/// archives and pulling newer images where a registry answers: recreates only the services
/// whose image id or settings changed; the models volume is kept.
pub async fn update(
    engine: &Engine,
    env: &ProbeEnv,
    stack: &str,
    options: &UpOptions,
) -> Result<UpReport, StackError> {
    let current = actual(engine, stack).await?;
    let stored = current
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
        .ok_or_else(|| StackError::NoStack {
            stack: stack.to_string(),
            engine: engine.kind.as_str().to_string(),
        })?;
    let mut options = options.clone();
    options.settings = stored.settings;
    options.gpu = gpu_from_name(&stored.gpu);
    if !options.dry_run {
        for archive in std::mem::take(&mut options.image_archives) {
            images::load(engine, &archive).await?;
        }
        let spec = desired(engine, env, &options.settings, options.gpu)?;
        for service in &spec.services {
            if service.image.starts_with("localhost/") {
                continue;
            }
            if let Err(reason) = images::pull(engine, &service.image, options.pull_timeout).await
                && options.progress
            {
                eprintln!(
                    "note: could not pull a newer {} ({reason}); using the local image",
                    service.image
                );
            }
        }
    }
    up(engine, env, &options).await
}

async fn has_model(addr: SocketAddr, model: &str) -> bool {
    let Ok((status, body)) = request(
        &Endpoint::tcp(addr),
        Method::GET,
        "/api/tags",
        None,
        Duration::from_secs(5),
    )
    .await
    else {
        return false;
    };
    if !status.is_success() {
        return false;
    }
    let wanted = if model.contains(':') {
        model.to_string()
    } else {
        format!("{model}:latest")
    };
    serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("models").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|m| {
            m.get("name")
                .or_else(|| m.get("model"))
                .and_then(Value::as_str)
        })
        .any(|name| name == wanted || name == model)
}

/// Health for every service, then devices of a (re)started model server.
async fn finish(
    engine: &Engine,
    spec: &StackSpec,
    plan: &Plan,
    options: &UpOptions,
) -> Result<Option<DeviceCheck>, StackError> {
    let deadline = Instant::now() + options.timeout;
    let mut devices = None;
    for service in &spec.services {
        let left = deadline.saturating_duration_since(Instant::now());
        health::wait_healthy(engine, service, left, options.progress).await?;
        let touched = plan.steps.iter().any(|s| match s {
            Step::CreateContainer { name, .. } | Step::StartContainer { name, .. } => {
                name == &service.name
            }
            _ => false,
        });
        if service.service == Service::Ollama && touched {
            devices = health::verify_devices(engine, service).await?;
        }
    }
    Ok(devices)
}

/// Fails when a host port the plan will publish is taken by something other than this
/// stack's own containers.
fn check_ports(spec: &StackSpec, current: &Actual, plan: &Plan) -> Result<(), StackError> {
    let held: Vec<u16> = current
        .containers
        .iter()
        .filter_map(|c| c.labels.get(spec::LABEL_PROBE))
        .filter_map(|addr| addr.parse::<SocketAddr>().ok())
        .map(|addr| addr.port())
        .collect();
    let creates_pod = plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::CreatePod { .. }));
    let mut to_check: Vec<(SocketAddr, String, &'static str)> = Vec::new();
    let flag = |port: u16| {
        if port == spec::OLLAMA_PORT {
            "--listen"
        } else {
            "--assistant-listen"
        }
    };
    if let (Some(pod), true) = (&spec.pod, creates_pod) {
        for port in &pod.ports {
            if let Ok(ip) = port.host_ip.parse() {
                to_check.push((
                    SocketAddr::new(ip, port.host_port),
                    format!("pod {}", pod.name),
                    flag(port.container_port),
                ));
            }
        }
    }
    for service in &spec.services {
        let created = plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::CreateContainer { name, .. } if name == &service.name));
        if !created {
            continue;
        }
        for port in &service.ports {
            if let Ok(ip) = port.host_ip.parse() {
                to_check.push((
                    SocketAddr::new(ip, port.host_port),
                    service.service.as_str().to_string(),
                    flag(port.container_port),
                ));
            }
        }
    }
    for (addr, what, flag) in to_check {
        if addr.port() == 0 || held.contains(&addr.port()) {
            continue;
        }
        if TcpListener::bind(addr).is_err() {
            return Err(StackError::PortInUse { addr, what, flag });
        }
    }
    Ok(())
}

/// An object this run created (for rollback).
#[derive(Debug, Clone)]
enum Created {
    Container(String),
    Pod(String),
    Network(String),
    Volume(String),
}

impl Created {
    fn describe(&self) -> String {
        match self {
            Self::Container(n) => format!("container {n}"),
            Self::Pod(n) => format!("pod {n}"),
            Self::Network(n) => format!("network {n}"),
            Self::Volume(n) => format!("volume {n}"),
        }
    }
}

/// One execution of a plan, remembering what it created and removed.
struct Run<'a> {
    engine: &'a Engine,
    libpod: Option<Libpod>,
    created: Vec<Created>,
    replaced: Vec<String>,
}

impl<'a> Run<'a> {
    fn new(engine: &'a Engine) -> Result<Self, StackError> {
        let libpod = match engine.kind {
            EngineKind::Podman => Some(Libpod::new(engine)?),
            EngineKind::Docker => None,
        };
        Ok(Self {
            engine,
            libpod,
            created: Vec::new(),
            replaced: Vec::new(),
        })
    }

    async fn execute(
        &mut self,
        spec: &StackSpec,
        plan: &Plan,
        stored: &str,
        progress: bool,
    ) -> Result<(), StackError> {
        let say = |text: String| {
            if progress {
                eprintln!("{text}");
            }
        };
        for step in &plan.steps {
            match step {
                Step::RemoveContainer { name, reason } => {
                    say(format!("removing container {name} ({reason})"));
                    remove_container(self.engine, name).await?;
                    if reason != "not part of the stack any more" {
                        self.replaced.push(name.clone());
                    }
                }
                Step::RemovePod { name, reason } => {
                    say(format!("removing pod {name} ({reason})"));
                    if let Some(libpod) = &self.libpod {
                        libpod.remove_pod(name).await?;
                    }
                }
                Step::RemoveNetwork { name } => {
                    say(format!("removing network {name}"));
                    match self.engine.client.remove_network(name).await {
                        Ok(()) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(api(format!("remove network {name}"))(e)),
                    }
                }
                Step::CreateNetwork { name } => {
                    say(format!("creating network {name}"));
                    let labels = spec
                        .network
                        .as_ref()
                        .map(|n| n.labels.clone())
                        .unwrap_or_default();
                    self.engine
                        .client
                        .create_network(NetworkCreateRequest {
                            name: name.clone(),
                            driver: Some("bridge".to_string()),
                            labels: Some(labels.into_iter().collect()),
                            ..Default::default()
                        })
                        .await
                        .map_err(api(format!("create network {name}")))?;
                    self.created.push(Created::Network(name.clone()));
                }
                Step::CreatePod { name } => {
                    say(format!("creating pod {name}"));
                    if let (Some(libpod), Some(pod)) = (&self.libpod, &spec.pod) {
                        libpod.create_pod(pod).await?;
                        self.created.push(Created::Pod(name.clone()));
                    }
                }
                Step::CreateVolume { name } => {
                    say(format!("creating volume {name}"));
                    self.engine
                        .client
                        .create_volume(VolumeCreateRequest {
                            name: Some(name.clone()),
                            labels: Some(spec.volume.labels.clone().into_iter().collect()),
                            ..Default::default()
                        })
                        .await
                        .map_err(api(format!("create volume {name}")))?;
                    self.created.push(Created::Volume(name.clone()));
                }
                Step::CreateContainer {
                    service,
                    name,
                    reason,
                } => {
                    let Some(container) = spec.service(*service) else {
                        continue;
                    };
                    say(format!(
                        "creating container {name} ({reason}) from {}",
                        container.image
                    ));
                    self.create_container(spec, container, stored).await?;
                    self.created.push(Created::Container(name.clone()));
                    say(format!("starting {name}"));
                    self.engine
                        .client
                        .start_container(name, None)
                        .await
                        .map_err(api(format!("start container {name}")))?;
                }
                Step::StartContainer { name, .. } => {
                    say(format!("starting {name}"));
                    self.engine
                        .client
                        .start_container(name, None)
                        .await
                        .map_err(api(format!("start container {name}")))?;
                }
                Step::Keep { .. } => {}
            }
        }
        Ok(())
    }

    async fn create_container(
        &self,
        spec: &StackSpec,
        container: &ContainerSpec,
        stored: &str,
    ) -> Result<(), StackError> {
        let mut labels = container.labels.clone();
        labels.insert(LABEL_SETTINGS.to_string(), stored.to_string());
        let mut container = container.clone();
        container.labels = labels;
        match &self.libpod {
            Some(libpod) => {
                libpod.create_container(&container, placement(spec)).await?;
            }
            None => {
                let network = spec
                    .network
                    .as_ref()
                    .map(|n| n.name.clone())
                    .unwrap_or_default();
                self.engine
                    .client
                    .create_container(
                        Some(CreateContainerOptions {
                            name: Some(container.name.clone()),
                            ..Default::default()
                        }),
                        docker_body(&container, &network),
                    )
                    .await
                    .map_err(api(format!("create container {}", container.name)))?;
            }
        }
        Ok(())
    }

    /// Removes what this run created, newest first, and wraps `cause` with what happened.
    async fn rollback(self, cause: StackError) -> StackError {
        let mut removed = Vec::new();
        let mut left = Vec::new();
        for object in self.created.iter().rev() {
            let result = match object {
                Created::Container(name) => remove_container(self.engine, name).await,
                Created::Pod(name) => match &self.libpod {
                    Some(libpod) => libpod.remove_pod(name).await,
                    None => Ok(()),
                },
                Created::Network(name) => self
                    .engine
                    .client
                    .remove_network(name)
                    .await
                    .map_err(api(format!("remove network {name}"))),
                Created::Volume(name) => self
                    .engine
                    .client
                    .remove_volume(name, Some(RemoveVolumeOptions { force: true }))
                    .await
                    .map_err(api(format!("remove volume {name}"))),
            };
            match result {
                Ok(()) => removed.push(object.describe()),
                Err(e) => left.push(format!("{} (could not remove it: {e})", object.describe())),
            }
        }
        for name in &self.replaced {
            if !self
                .created
                .iter()
                .any(|c| matches!(c, Created::Container(n) if n == name))
            {
                left.push(format!(
                    "container {name} was removed to be recreated and is missing now; run `nanna-deploy up` again"
                ));
            } else {
                left.push(format!(
                    "container {name} (the previous version) was removed to be recreated; run `nanna-deploy up` again"
                ));
            }
        }
        StackError::PartWay {
            cause: Box::new(cause),
            removed,
            left,
        }
    }
}

/// Removes a container (forcefully, with its anonymous volumes); absent is fine.
pub(crate) async fn remove_container(engine: &Engine, name: &str) -> Result<(), StackError> {
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
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(StackError::Api {
            action: format!("remove container {name}"),
            message: bollard_message(&e),
        }),
    }
}

/// The libpod `containers/create` body (SpecGenerator) for `container` of `stack`: in its
/// pod, or on its network with aliases and published ports; CDI devices as `devices`.
pub fn libpod_create_body(stack: &StackSpec, container: &ContainerSpec) -> Value {
    super::podman::container_body(container, placement(stack))
}

/// The libpod `pods/create` body of the stack's pod, if it has one.
pub fn libpod_pod_body(stack: &StackSpec) -> Option<Value> {
    stack.pod.as_ref().map(super::podman::pod_body)
}

fn placement(spec: &StackSpec) -> Placement<'_> {
    match (&spec.pod, &spec.network) {
        (Some(pod), _) => Placement::Pod(&pod.name),
        (None, Some(network)) => Placement::Network(&network.name),
        (None, None) => Placement::Network("podman"),
    }
}

/// The Docker Engine API `containers/create` body for `spec` on `network` (empty: the
/// engine's default network).
pub fn docker_body(spec: &ContainerSpec, network: &str) -> ContainerCreateBody {
    let mut port_bindings = HashMap::new();
    let mut exposed = Vec::new();
    for port in &spec.ports {
        let key = format!("{}/tcp", port.container_port);
        exposed.push(key.clone());
        port_bindings.insert(
            key,
            Some(vec![PortBinding {
                host_ip: Some(port.host_ip.clone()),
                host_port: Some(if port.host_port == 0 {
                    String::new()
                } else {
                    port.host_port.to_string()
                }),
            }]),
        );
    }
    let mounts = spec
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Volume { source, target } => Mount {
                target: Some(target.clone()),
                source: Some(source.clone()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            },
            MountSpec::Bind { source, target } => Mount {
                target: Some(target.clone()),
                source: Some(source.clone()),
                typ: Some(MountType::BIND),
                ..Default::default()
            },
        })
        .collect();
    let devices: Vec<BollardDevice> = spec
        .devices
        .iter()
        .map(|d| BollardDevice {
            path_on_host: Some(d.path_on_host.clone()),
            path_in_container: Some(d.path_in_container.clone()),
            cgroup_permissions: Some(d.cgroup_permissions.clone()),
        })
        .collect();
    let device_requests: Vec<DeviceRequest> = spec
        .device_requests
        .iter()
        .map(|r| DeviceRequest {
            driver: Some(r.driver.clone()),
            count: Some(r.count),
            capabilities: Some(r.capabilities.clone()),
            ..Default::default()
        })
        .collect();
    let host_config = HostConfig {
        port_bindings: Some(port_bindings),
        mounts: Some(mounts),
        devices: Some(devices),
        device_requests: (!device_requests.is_empty()).then_some(device_requests),
        group_add: (!spec.group_add.is_empty()).then(|| spec.group_add.clone()),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        network_mode: (!network.is_empty()).then(|| network.to_string()),
        ..Default::default()
    };
    let networking_config = (!network.is_empty()).then(|| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            network.to_string(),
            EndpointSettings {
                aliases: Some(spec.aliases.clone()),
                ..Default::default()
            },
        )])),
    });
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(spec.labels.clone().into_iter().collect()),
        exposed_ports: Some(exposed),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

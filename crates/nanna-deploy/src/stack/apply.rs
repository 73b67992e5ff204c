//! `up` and `update`: check everything first, then, as the stack's one writer, create what
//! the plan says (removing what this run created if a step fails or a signal arrives), wait
//! for health while watching the containers, verify GPU devices, pull the model.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::bodies::{Placement, docker_body};
use super::error::ImageRole;
use super::lock::{DEFAULT_LOCK_WAIT, WriterLock};
use super::plan::{Actual, ActualNetwork, Plan, Step, plan};
use super::podman::Libpod;
use super::probe::DeviceCheck;
use super::spec::{
    self, ASSISTANT_STOP_TIMEOUT, ContainerSpec, HostFacts, LABEL_SETTINGS, Service, StackSettings,
    StackSpec,
};
use super::state::{self, Created, Stored};
use super::wait::{self, Target};
use super::{StackContext, StackError, images, model, probe, record, validate};
use crate::accelerator::{Accelerator, GpuChoice};
use crate::detect::{self, Warning};
use crate::engine::{Engine, EngineKind};
use crate::event::DeployEvent;
use crate::host::ProbeEnv;

/// Everything `up` needs besides the context.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The stack's settings.
    pub settings: StackSettings,
    /// `--gpu`.
    pub gpu: GpuChoice,
    /// Archives to load before anything else.
    pub image_archives: Vec<PathBuf>,
    /// Compute the plan, change nothing.
    pub dry_run: bool,
    /// How long services get to become healthy.
    pub timeout: Duration,
    /// How long a pull of an absent image may take.
    pub pull_timeout: Duration,
    /// How long to wait for another run that holds the stack.
    pub lock_wait: Duration,
}

impl UpOptions {
    /// Options for `settings` with default timeouts and `--gpu auto`.
    pub fn new(settings: StackSettings) -> Self {
        Self {
            settings,
            gpu: GpuChoice::Auto,
            image_archives: Vec::new(),
            dry_run: false,
            timeout: Duration::from_secs(120),
            pull_timeout: images::DEFAULT_PULL_TIMEOUT,
            lock_wait: DEFAULT_LOCK_WAIT,
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
    /// Things to know about the deployment (e.g. a model server reachable from the network).
    pub warnings: Vec<Warning>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
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
    spec::check(settings, engine.kind, env.home.as_deref())?;
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
    Ok(spec::desired(
        settings,
        engine.kind,
        rec,
        &host_facts(env, settings),
    )?)
}

/// What the spec needs to know about this host: its groups, the workspace's owner, the home.
pub(crate) fn host_facts(env: &ProbeEnv, settings: &StackSettings) -> HostFacts {
    HostFacts {
        groups: env
            .host_root
            .groups()
            .into_iter()
            .map(|g| (g.name, g.gid))
            .collect(),
        workspace_owner: std::fs::metadata(&settings.workspace).ok().map(|meta| {
            use std::os::unix::fs::MetadataExt;
            (meta.uid(), meta.gid())
        }),
        home: env.home.clone(),
    }
}

/// Brings the stack to `options.settings` (see the module docs). With `dry_run` it only
/// computes the plan.
pub async fn up(ctx: &StackContext<'_>, options: &UpOptions) -> Result<UpReport, StackError> {
    let start = Instant::now();
    let engine = ctx.engine;
    let mut settings = options.settings.clone();
    spec::check(&settings, engine.kind, ctx.env.home.as_deref())?;
    if settings.assistant && !options.dry_run {
        settings.workspace = validate::workspace(&settings.workspace, ctx.env.home.as_deref())?;
    }
    let warnings = validate::exposure_warnings(&settings);
    for warning in &warnings {
        ctx.events.report(DeployEvent::Warning {
            code: warning.code,
            message: warning.message.clone(),
            fix: warning.fix.clone(),
        });
    }
    let mut loaded = Vec::new();
    if !options.dry_run {
        for archive in &options.image_archives {
            loaded.extend(images::load(ctx, archive).await?);
        }
    }
    let spec = desired(engine, ctx.env, &settings, options.gpu)?;
    let mut report = UpReport {
        plan: Plan::default(),
        changed: false,
        image_ids: BTreeMap::new(),
        devices: None,
        loaded,
        model_pulled: None,
        warnings,
        elapsed_ms: 0,
        spec,
    };
    if options.dry_run {
        let references: Vec<String> = report
            .spec
            .services
            .iter()
            .map(|s| s.image.clone())
            .collect();
        report.image_ids = images::present(engine, &references).await?;
        let current = state::actual(engine, &report.spec.stack).await?;
        report.plan = plan(&report.spec, &current, &report.image_ids);
        report.elapsed_ms = start.elapsed().as_millis();
        return Ok(report);
    }
    if let Some(ollama) = report.spec.service(Service::Ollama) {
        for device in &ollama.devices {
            if !ctx.env.host_root.exists(&device.path_on_host) {
                return Err(StackError::DeviceMissing {
                    path: device.path_on_host.clone(),
                    gpu: ollama.gpu.as_str().to_string(),
                });
            }
        }
    }
    let references: Vec<(String, ImageRole)> = report
        .spec
        .services
        .iter()
        .map(|s| {
            let role = match s.service {
                Service::Ollama => ImageRole::ModelServer,
                Service::Assistant => ImageRole::Assistant,
            };
            (s.image.clone(), role)
        })
        .collect();
    report.image_ids = images::ensure(ctx, &references, options.pull_timeout).await?;

    let stack = report.spec.stack.clone();
    let mut lock = WriterLock::acquire(ctx, &stack, "up", options.lock_wait).await?;
    let result = as_writer(ctx, &mut lock, options, &settings, &mut report).await;
    lock.release(ctx).await;
    result?;
    report.elapsed_ms = start.elapsed().as_millis();
    Ok(report)
}

/// The part of `up` that runs while holding the stack's lock.
async fn as_writer(
    ctx: &StackContext<'_>,
    lock: &mut WriterLock,
    options: &UpOptions,
    settings: &StackSettings,
    report: &mut UpReport,
) -> Result<(), StackError> {
    let engine = ctx.engine;
    let spec = &report.spec;
    let mut current = state::actual(engine, &spec.stack).await?;
    let mut steps = plan(spec, &current, &report.image_ids);
    if !steps.is_noop() {
        // Changes ahead: claim the stack on the engine too, then look again, since another
        // writer may have changed it while this run waited.
        lock.claim(ctx, &spec.stack, options.lock_wait).await?;
        current = state::actual(engine, &spec.stack).await?;
        steps = plan(spec, &current, &report.image_ids);
    }
    report.plan = steps.clone();
    let mut warnings = Vec::new();
    if steps.is_noop() {
        report.devices = finish(ctx, spec, &steps, options, &mut warnings).await?;
    } else {
        check_ports(spec, &current, &steps)?;
        let existed = !current.is_empty();
        record::remember(ctx.env, &spec.stack, engine)?;
        let stored = serde_json::to_string(&Stored {
            settings: settings.clone(),
            gpu: options.gpu,
        })
        .unwrap_or_default();
        let mut run = Run::new(ctx)?;
        let outcome = match run.execute(spec, &steps, &stored).await {
            Ok(()) => finish(ctx, spec, &steps, options, &mut warnings).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(devices) => report.devices = devices,
            Err(error) => {
                let error = run.rollback(error).await;
                if !existed
                    && error.rollback().is_some_and(|(_, left)| left.is_empty())
                    && run.replaced.is_empty()
                {
                    let _ = record::forget(ctx.env, &spec.stack, engine);
                }
                return Err(error);
            }
        }
        report.changed = true;
    }
    report.warnings.extend(warnings);
    if let (Some(model), Some(ollama)) = (&settings.model, spec.service(Service::Ollama))
        && !model::has_model(ollama.probe_addr, model).await
    {
        model::pull_model(ctx, ollama.probe_addr, model).await?;
        report.model_pulled = Some(model.clone());
    }
    Ok(())
}

/// Re-applies the settings the stack was last created with, after loading `options`'
/// archives and pulling newer images where a registry answers: recreates only the services
/// whose image id or settings changed; the models volume is kept.
pub async fn update(
    ctx: &StackContext<'_>,
    stack: &str,
    options: &UpOptions,
) -> Result<UpReport, StackError> {
    let engine = ctx.engine;
    let current = state::actual(engine, stack).await?;
    let stored = Stored::newest(&current).ok_or_else(|| StackError::NoStack {
        stack: stack.to_string(),
        engine: engine.kind.as_str().to_string(),
    })?;
    let mut options = options.clone();
    options.settings = stored.settings;
    options.gpu = stored.gpu;
    if !options.dry_run {
        for archive in std::mem::take(&mut options.image_archives) {
            images::load(ctx, &archive).await?;
        }
        let spec = desired(engine, ctx.env, &options.settings, options.gpu)?;
        for service in &spec.services {
            if images::is_local_reference(&service.image) {
                continue;
            }
            if let Err(reason) = images::pull(ctx, &service.image, options.pull_timeout).await {
                if ctx.cancel.is_cancelled() {
                    return Err(StackError::Interrupted);
                }
                ctx.events.report(DeployEvent::Warning {
                    code: "image_not_updated",
                    message: format!("could not pull a newer {} ({reason})", service.image),
                    fix: Some("the local image is used".to_string()),
                });
            }
        }
    }
    up(ctx, &options).await
}

/// Health for every service (watching its container), then devices of a (re)started model
/// server.
async fn finish(
    ctx: &StackContext<'_>,
    spec: &StackSpec,
    plan: &Plan,
    options: &UpOptions,
    warnings: &mut Vec<Warning>,
) -> Result<Option<DeviceCheck>, StackError> {
    let deadline = Instant::now() + options.timeout;
    let mut devices = None;
    for service in &spec.services {
        let created = plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::CreateContainer { name, .. } if name == &service.name));
        let touched = created
            || plan
                .steps
                .iter()
                .any(|s| matches!(s, Step::StartContainer { name, .. } if name == &service.name));
        let target = Target {
            service: service.service,
            container: &service.name,
            probe_addr: service.probe_addr,
            fresh: created,
        };
        wait::healthy(ctx, &target, deadline, options.timeout).await?;
        if service.service == Service::Ollama && touched {
            devices = probe::verify_devices(ctx.engine, service).await?;
        }
        // A new or restarted assistant: can `shell` confine commands in it? Not an error
        // (the stack works, and nanna refuses rather than run unconfined), but said now
        // rather than at the first command.
        if service.service == Service::Assistant
            && touched
            && let Some(refusal) = probe::assistant_sandbox(ctx.engine, service).await
        {
            let warning = Warning {
                code: "assistant_sandbox",
                message: format!(
                    "`shell` in the assistant will refuse commands in the read-only and \
                     workspace-write modes: {refusal}"
                ),
                fix: Some(
                    "see crates/nanna-deploy/README.md, \"The assistant's sandbox\" (AppArmor \
                     and SELinux hosts need a setting nanna-deploy does not make); `nanna-deploy \
                     shell -- nanna health` shows the state"
                        .to_string(),
                ),
            };
            ctx.events.report(DeployEvent::Warning {
                code: warning.code,
                message: warning.message.clone(),
                fix: warning.fix.clone(),
            });
            warnings.push(warning);
        }
    }
    Ok(devices)
}

/// Fails when a host address the plan will publish is taken by something other than this
/// stack's own containers. Addresses compare with their IP: 127.0.0.2:8080 does not clash
/// with 127.0.0.1:8080.
fn check_ports(spec: &StackSpec, current: &Actual, plan: &Plan) -> Result<(), StackError> {
    let held: Vec<SocketAddr> = current
        .containers
        .iter()
        .filter_map(|c| c.labels.get(spec::LABEL_PROBE))
        .filter_map(|addr| addr.parse::<SocketAddr>().ok())
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
        // The stack's own container publishes it now: recreating it frees the address.
        let probe = spec::probe_address(addr);
        if held
            .iter()
            .any(|h| *h == probe || validate::addresses_clash(*h, addr))
        {
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
enum Made {
    Container(String),
    Pod(String),
    Network(String),
    Volume(String),
}

impl Made {
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
struct Run<'a, 'b> {
    ctx: &'a StackContext<'b>,
    libpod: Option<Libpod>,
    made: Vec<Made>,
    replaced: Vec<String>,
    /// The object being created when the engine stopped answering (it may exist).
    in_flight: Option<Made>,
}

impl<'a, 'b> Run<'a, 'b> {
    fn new(ctx: &'a StackContext<'b>) -> Result<Self, StackError> {
        let libpod = match ctx.engine.kind {
            EngineKind::Podman => Some(Libpod::new(ctx.engine)?),
            EngineKind::Docker => None,
        };
        Ok(Self {
            ctx,
            libpod,
            made: Vec::new(),
            replaced: Vec::new(),
            in_flight: None,
        })
    }

    fn step(&self, action: &'static str, object: &'static str, name: &str, detail: Option<String>) {
        self.ctx.events.report(DeployEvent::Step {
            action,
            object,
            name: name.to_string(),
            detail,
        });
    }

    fn record(&mut self, created: Created, made: Made) {
        self.in_flight = None;
        if created == Created::New {
            self.made.push(made);
        }
    }

    async fn execute(
        &mut self,
        spec: &StackSpec,
        plan: &Plan,
        stored: &str,
    ) -> Result<(), StackError> {
        let engine = self.ctx.engine;
        for step in &plan.steps {
            // Between steps, never inside one: an interrupted API call could leave an
            // object this run does not know it made.
            if self.ctx.cancel.is_cancelled() {
                return Err(StackError::Interrupted);
            }
            match step {
                Step::RemoveContainer { name, reason } => {
                    self.step("remove", "container", name, Some(reason.clone()));
                    let grace = spec
                        .services
                        .iter()
                        .find(|s| &s.name == name)
                        .map_or(ASSISTANT_STOP_TIMEOUT, |s| s.stop_timeout);
                    state::remove_container(engine, name, Duration::from_secs(grace.into()))
                        .await?;
                    if reason != "not part of the stack any more" {
                        self.replaced.push(name.clone());
                    }
                }
                Step::RemovePod { name, reason } => {
                    self.step("remove", "pod", name, Some(reason.clone()));
                    if let Some(libpod) = &self.libpod {
                        libpod.remove_pod(name).await?;
                    }
                }
                Step::RemoveNetwork { name, id } => {
                    self.step("remove", "network", name, None);
                    let network = ActualNetwork {
                        id: id.clone(),
                        name: name.clone(),
                    };
                    state::remove_network(engine, &network).await?;
                }
                Step::CreateNetwork { name } => {
                    self.step("create", "network", name, None);
                    let labels = spec
                        .network
                        .as_ref()
                        .map(|n| n.labels.clone())
                        .unwrap_or_default();
                    self.in_flight = Some(Made::Network(name.clone()));
                    let created = state::ensure_network(engine, name, &spec.stack, &labels).await?;
                    self.record(created, Made::Network(name.clone()));
                }
                Step::CreatePod { name } => {
                    self.step("create", "pod", name, None);
                    if let (Some(libpod), Some(pod)) = (&self.libpod, &spec.pod) {
                        self.in_flight = Some(Made::Pod(name.clone()));
                        let created = libpod.create_pod(pod, &spec.stack).await?;
                        self.record(created, Made::Pod(name.clone()));
                    }
                }
                Step::CreateVolume { name } => {
                    self.step("create", "volume", name, None);
                    self.in_flight = Some(Made::Volume(name.clone()));
                    let created =
                        state::ensure_volume(engine, name, &spec.stack, &spec.volume.labels)
                            .await?;
                    self.record(created, Made::Volume(name.clone()));
                }
                Step::CreateContainer {
                    service,
                    name,
                    reason,
                } => {
                    let Some(container) = spec.service(*service) else {
                        continue;
                    };
                    self.step(
                        "create",
                        "container",
                        name,
                        Some(format!("{reason}; image {}", container.image)),
                    );
                    self.in_flight = Some(Made::Container(name.clone()));
                    let created = self.create_container(spec, container, stored).await?;
                    self.record(created, Made::Container(name.clone()));
                    self.step("start", "container", name, None);
                    state::start_container(engine, name).await?;
                }
                Step::StartContainer { name, .. } => {
                    self.step("start", "container", name, None);
                    state::start_container(engine, name).await?;
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
    ) -> Result<Created, StackError> {
        let mut container = container.clone();
        container
            .labels
            .insert(LABEL_SETTINGS.to_string(), stored.to_string());
        let engine = self.ctx.engine;
        match &self.libpod {
            Some(libpod) => {
                if libpod
                    .create_container(&container, Placement::of(spec))
                    .await?
                {
                    Ok(Created::New)
                } else {
                    state::same_container(
                        engine,
                        &container.name,
                        &spec.stack,
                        &container.settings_hash,
                    )
                    .await
                }
            }
            None => {
                let network = spec
                    .network
                    .as_ref()
                    .map(|n| n.name.clone())
                    .unwrap_or_default();
                state::create_docker_container(
                    engine,
                    &container.name,
                    &spec.stack,
                    &container.settings_hash,
                    docker_body(&container, &network),
                )
                .await
            }
        }
    }

    /// Removes what this run created, newest first, and wraps `cause` with what happened.
    /// An engine that does not answer is not waited on object by object: everything is
    /// reported as left, with the way to clean up.
    async fn rollback(&self, cause: StackError) -> StackError {
        self.ctx.events.report(DeployEvent::RollingBack {
            reason: cause
                .problem()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        });
        let engine = self.ctx.engine;
        let mut removed = Vec::new();
        let mut left = Vec::new();
        let reachable =
            !matches!(cause, StackError::EngineGone { .. }) || state::answers(engine).await;
        // The object being created when the engine stopped answering may exist; after any
        // other failure it does not (and its name may belong to someone else).
        let in_flight = self
            .in_flight
            .as_ref()
            .filter(|_| matches!(cause, StackError::EngineGone { .. }));
        let mut made = self.made.clone();
        if let Some(object) = in_flight {
            made.push(object.clone());
        }
        for object in made.iter().rev() {
            let maybe = in_flight.is_some_and(|f| f.describe() == object.describe());
            if !reachable {
                left.push(format!(
                    "{}{} (the engine does not answer; once it is back, `nanna-deploy down` removes it)",
                    object.describe(),
                    if maybe { ", if it was created" } else { "" }
                ));
                continue;
            }
            let result = match object {
                Made::Container(name) => {
                    state::remove_container(engine, name, Duration::ZERO).await
                }
                Made::Pod(name) => match &self.libpod {
                    Some(libpod) => libpod.remove_pod(name).await,
                    None => Ok(()),
                },
                Made::Network(name) => {
                    let network = ActualNetwork {
                        id: String::new(),
                        name: name.clone(),
                    };
                    state::remove_network(engine, &network).await
                }
                Made::Volume(name) => state::remove_volume(engine, name).await,
            };
            match result {
                Ok(()) if maybe => {}
                Ok(()) => removed.push(object.describe()),
                Err(e) => left.push(format!(
                    "{} (could not remove it: {})",
                    object.describe(),
                    e.problem()
                )),
            }
        }
        for name in &self.replaced {
            if !self
                .made
                .iter()
                .any(|c| matches!(c, Made::Container(n) if n == name))
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

//! `nanna-deploy up` (`start`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use nanna_deploy::stack::spec::{
    DEFAULT_ASSISTANT_IMAGE, DEFAULT_CONTEXT_LENGTH, DEFAULT_KEEP_ALIVE, DEFAULT_STOP_TIMEOUT,
    ExtraDevice, MountSpec,
};
use nanna_deploy::stack::{
    self, Layout, StackError, StackSettings, Step, UpReport, health_path, validate,
};

use super::{EngineArg, GpuArg, Session, StackName, WaitArgs, locate, probe_env};
use crate::render::Output;

/// Examples shown by `up --help`.
pub const HELP: &str = "Examples:
  nanna-deploy up                                   # GPU auto-detected, Podman or Docker
  nanna-deploy up --gpu amd --model qwen2.5-coder:7b
  nanna-deploy up --type pod --engine podman        # one Podman pod, shared localhost
  nanna-deploy up --image-archive ./result          # load a `nix build` image first
  nanna-deploy up --dry-run --json                  # print the plan, touch nothing

Running `up` again changes nothing unless a flag or an image changed; then only the affected
container is recreated. The model server listens on 127.0.0.1:11434, the assistant's /health
on 127.0.0.1:8080. A failure, Ctrl-C or SIGTERM removes what the run created.";

/// What the stack is: the flags `up` and `export` share, so that an export renders exactly
/// the stack `up` would run.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// Stack.
    #[command(flatten)]
    pub name: StackName,
    /// GPU.
    #[command(flatten)]
    pub gpu: GpuArg,
    /// Model to pull once the server is healthy (and to give the assistant).
    #[arg(long, env = "OLLAMA_MODEL", value_name = "MODEL")]
    pub model: Option<String>,
    /// Model-server image (default: ollama/ollama, or ollama/ollama:rocm for AMD).
    #[arg(long, value_name = "IMAGE")]
    pub ollama_image: Option<String>,
    /// Assistant image.
    #[arg(long, visible_alias = "assistant-image", default_value = DEFAULT_ASSISTANT_IMAGE, value_name = "IMAGE")]
    pub harness_image: String,
    /// Run only the model server.
    #[arg(long)]
    pub no_assistant: bool,
    /// Host address for the model server's port (a non-loopback address is reachable from
    /// other machines, and Ollama has no authentication).
    #[arg(long, default_value = "127.0.0.1:11434", value_name = "ADDR:PORT", value_parser = validate::listen_address)]
    pub listen: SocketAddr,
    /// Host address for the assistant's port (its /health).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT", value_parser = validate::listen_address)]
    pub assistant_listen: SocketAddr,
    /// Context length of the model server (OLLAMA_CONTEXT_LENGTH).
    #[arg(long, env = "OLLAMA_CONTEXT_LENGTH", default_value_t = DEFAULT_CONTEXT_LENGTH, value_name = "TOKENS")]
    pub context_length: u32,
    /// How long a model stays loaded (OLLAMA_KEEP_ALIVE).
    #[arg(long, env = "OLLAMA_KEEP_ALIVE", default_value = DEFAULT_KEEP_ALIVE, value_name = "DURATION")]
    pub keep_alive: String,
    /// Project mounted at /workspace in the assistant (default: current directory; system
    /// directories, your home and the directories above it are refused).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Seconds the model server gets to exit after SIGTERM before it is killed.
    #[arg(long, default_value_t = DEFAULT_STOP_TIMEOUT, value_name = "SECS")]
    pub stop_timeout: u32,
    /// Directory holding the host's / (GPU detection reads below it).
    #[arg(long, env = "NANNA_HOST_ROOT", value_name = "DIR")]
    pub host_root: Option<PathBuf>,
    /// Extra device for the model server, HOST[:CONTAINER] (checked inside after start).
    #[arg(long = "device", value_name = "HOST[:CONTAINER]", value_parser = ExtraDevice::parse, hide = true)]
    pub devices: Vec<ExtraDevice>,
}

impl StackArgs {
    /// The settings these flags describe (the network layout; `up --type` may change it).
    pub fn settings(&self) -> Result<StackSettings, StackError> {
        let workspace = match &self.workspace {
            Some(dir) => std::path::absolute(dir),
            None => std::env::current_dir(),
        }
        .map_err(|source| StackError::Io {
            what: "find the workspace directory".to_string(),
            source,
        })?;
        // Refused before any engine is asked: `/`, system directories, the home and above.
        let workspace = if self.no_assistant {
            workspace
        } else {
            validate::workspace(&workspace, probe_env(None).home.as_deref())?
        };
        let mut settings = StackSettings::new(&self.name.name, workspace);
        settings.ollama_image = self.ollama_image.clone();
        settings.assistant_image = self.harness_image.clone();
        settings.assistant = !self.no_assistant;
        settings.listen = self.listen;
        settings.assistant_listen = self.assistant_listen;
        settings.context_length = self.context_length;
        settings.keep_alive = self.keep_alive.clone();
        settings.model = self.model.clone();
        settings.extra_devices = self.devices.clone();
        settings.stop_timeout = self.stop_timeout;
        Ok(settings)
    }
}

/// Arguments of `up`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Engine.
    #[command(flatten)]
    pub engine: EngineArg,
    /// What the stack is.
    #[command(flatten)]
    pub stack: StackArgs,
    /// Waits.
    #[command(flatten)]
    pub waits: WaitArgs,
    /// Network (both engines) or pod (Podman only).
    #[arg(
        long = "type",
        value_enum,
        default_value = "network",
        ignore_case = true
    )]
    pub layout: Layout,
    /// docker-archive or OCI tarball to load first (repeatable).
    #[arg(long, value_name = "PATH")]
    pub image_archive: Vec<PathBuf>,
    /// Print the plan (containers, images, devices, env, mounts, ports); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long an absent image's pull may take, in seconds.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub pull_timeout: u64,
}

/// Runs `up`.
pub async fn run(args: Args, output: &Output, session: &Session) -> Result<ExitCode, StackError> {
    let env = probe_env(args.stack.host_root.as_ref());
    let mut settings = args.stack.settings()?;
    settings.layout = args.layout;
    let mut options = args.waits.up_options(
        settings,
        &args.image_archive,
        args.dry_run,
        args.pull_timeout,
    );
    options.gpu = args.stack.gpu.gpu;
    let name = &args.stack.name.name;
    let engine = locate(session, args.engine.engine, &env, name).await?;
    let ctx = session.context(&engine, &env, output);
    let report = stack::up(&ctx, &options).await?;
    Ok(report_up(&report, output, args.dry_run))
}

/// Prints what `up` or `update` did.
pub fn report_up(report: &UpReport, output: &Output, dry_run: bool) -> ExitCode {
    if output.is_json() {
        return output.result(report);
    }
    if dry_run {
        print!("{}", render_plan(report));
        return ExitCode::SUCCESS;
    }
    let elapsed = stack::fmt_duration(std::time::Duration::from_millis(
        u64::try_from(report.elapsed_ms).unwrap_or(u64::MAX),
    ));
    if report.changed {
        println!("stack {} is up ({elapsed})", report.spec.stack);
    } else {
        println!(
            "stack {} is up to date; nothing changed ({elapsed})",
            report.spec.stack
        );
    }
    for service in &report.spec.services {
        println!(
            "  {:<9} http://{}{}",
            service.service.as_str(),
            service.probe_addr,
            health_path(service.service)
        );
    }
    if let Some(check) = &report.devices {
        println!(
            "  GPU devices visible in the model server ({}): {}",
            check.method,
            check.paths.join(", ")
        );
    }
    if let Some(model) = &report.model_pulled {
        println!("  pulled model {model}");
    }
    ExitCode::SUCCESS
}

/// The plan as text: steps, then each container's image, devices, env, mounts and ports.
pub fn render_plan(report: &UpReport) -> String {
    let spec = &report.spec;
    let mut out = format!(
        "stack {} on {} ({} layout){}\n",
        spec.stack,
        spec.engine.as_str(),
        spec.layout.as_str(),
        if report.plan.is_noop() {
            ": nothing to do"
        } else {
            ""
        }
    );
    for warning in &report.warnings {
        out.push_str(&format!("warning: {}\n", warning.message));
    }
    out.push_str("plan:\n");
    for step in &report.plan.steps {
        let line = match step {
            Step::RemoveContainer { name, reason } => format!("remove container {name} ({reason})"),
            Step::RemovePod { name, reason } => format!("remove pod {name} ({reason})"),
            Step::RemoveNetwork { name, .. } => format!("remove network {name}"),
            Step::CreateNetwork { name } => format!("create network {name}"),
            Step::CreatePod { name } => format!("create pod {name}"),
            Step::CreateVolume { name } => format!("create volume {name}"),
            Step::CreateContainer { name, reason, .. } => {
                format!("create and start container {name} ({reason})")
            }
            Step::StartContainer { name, .. } => format!("start container {name}"),
            Step::Keep { name, .. } => format!("keep container {name} (up to date)"),
        };
        out.push_str(&format!("  - {line}\n"));
    }
    if let Some(pod) = &spec.pod {
        let ports: Vec<String> = pod
            .ports
            .iter()
            .map(|p| format!("{}:{}->{}", p.host_ip, p.host_port, p.container_port))
            .collect();
        out.push_str(&format!("pod {}: ports {}\n", pod.name, ports.join(", ")));
    }
    for c in &spec.services {
        out.push_str(&format!("{} ({}):\n", c.name, c.service.as_str()));
        let id = report.image_ids.get(&c.image).map_or_else(
            || "absent: will be pulled, or load/build it".to_string(),
            |id| id.clone(),
        );
        out.push_str(&format!("  image    {} [{id}]\n", c.image));
        let ports: Vec<String> = c
            .ports
            .iter()
            .map(|p| format!("{}:{}->{}", p.host_ip, p.host_port, p.container_port))
            .collect();
        if !ports.is_empty() {
            out.push_str(&format!("  ports    {}\n", ports.join(", ")));
        }
        for m in &c.mounts {
            match m {
                MountSpec::Volume { source, target } => {
                    out.push_str(&format!("  mount    volume {source} -> {target}\n"))
                }
                MountSpec::Bind { source, target } => {
                    out.push_str(&format!("  mount    {source} -> {target}\n"))
                }
            }
        }
        for (target, options) in &c.security.tmpfs {
            out.push_str(&format!("  mount    tmpfs -> {target} ({options})\n"));
        }
        out.push_str(&format!("  gpu      {}\n", c.gpu.as_str()));
        for d in &c.devices {
            out.push_str(&format!(
                "  device   {} -> {} ({})\n",
                d.path_on_host, d.path_in_container, d.cgroup_permissions
            ));
        }
        for d in &c.cdi_devices {
            out.push_str(&format!("  device   CDI {d}\n"));
        }
        for r in &c.device_requests {
            out.push_str(&format!(
                "  device   request driver {} count {}\n",
                r.driver, r.count
            ));
        }
        if !c.group_add.is_empty() {
            out.push_str(&format!("  groups   {}\n", c.group_add.join(", ")));
        }
        let security = &c.security;
        out.push_str(&format!(
            "  security cap-drop {}{}{}, user {}\n",
            security.cap_drop.join(","),
            if security.no_new_privileges {
                ", no-new-privileges"
            } else {
                ""
            },
            if security.read_only_rootfs {
                ", read-only root"
            } else {
                ""
            },
            security.user.as_deref().unwrap_or("the image's")
        ));
        for (k, v) in &c.env {
            out.push_str(&format!("  env      {k}={v}\n"));
        }
    }
    out
}

//! Command-line front end of the stack commands (`up`, `down`, `restart`, `status`, `logs`,
//! `update`, `shell`, `images`); `main.rs` flattens [`StackCommand`] into its subcommands.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::apply::{UpOptions, UpReport};
use super::images::{self, BuildRequest};
use super::plan::Step;
use super::spec::{
    DEFAULT_ASSISTANT_IMAGE, DEFAULT_CONTEXT_LENGTH, DEFAULT_KEEP_ALIVE, ExtraDevice, Layout,
    Service, StackSettings,
};
use super::{StackError, apply, ops};
use crate::engine::{Engine, EngineChoice};
use crate::host::{HostRoot, ProbeEnv};
use crate::recommend::GpuChoice;

/// The stack subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum StackCommand {
    /// Start the stack (model server + assistant), or bring it in line with the flags.
    #[command(visible_alias = "start", after_help = UP_HELP)]
    Up(Box<UpArgs>),
    /// Remove the stack's containers, pod and network (and with --volumes its models).
    #[command(
        visible_alias = "stop",
        after_help = "Examples:\n  nanna-deploy down\n  nanna-deploy down --volumes      # also delete downloaded models"
    )]
    Down(DownArgs),
    /// Restart the stack's containers and wait until they answer.
    Restart(TargetArgs),
    /// Show each service's state, health, image, ports and GPU devices.
    #[command(
        after_help = "Examples:\n  nanna-deploy status\n  nanna-deploy status --json | jq '.services[].health'"
    )]
    Status(StatusArgs),
    /// Print a service's logs (both services, prefixed, by default).
    #[command(
        after_help = "Examples:\n  nanna-deploy logs ollama --tail 50\n  nanna-deploy logs --follow"
    )]
    Logs(LogsArgs),
    /// Recreate only the services whose image or settings changed (models volume kept).
    #[command(
        after_help = "Examples:\n  nanna-deploy images build && nanna-deploy update\n  nanna-deploy update --image-archive result   # after `nix build`"
    )]
    Update(Box<UpdateArgs>),
    /// Open `nanna chat` (or CMD) inside a service's container.
    #[command(
        after_help = "Examples:\n  nanna-deploy shell                    # nanna chat in the assistant\n  nanna-deploy shell ollama -- ollama list"
    )]
    Shell(ShellArgs),
    /// Load or build images.
    #[command(subcommand)]
    Images(ImagesCommand),
}

const UP_HELP: &str = "Examples:
  nanna-deploy up                                   # GPU auto-detected, Podman or Docker
  nanna-deploy up --gpu amd --model qwen2.5-coder:7b
  nanna-deploy up --type pod --engine podman        # one Podman pod, shared localhost
  nanna-deploy up --image-archive ./result          # load a `nix build` image first
  nanna-deploy up --dry-run --json                  # print the plan, touch nothing

Running `up` again changes nothing unless a flag or an image changed; then only the affected
container is recreated. The model server listens on 127.0.0.1:11434, the assistant's /health
on 127.0.0.1:8080.";

/// Which engine and stack.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Container engine.
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub engine: EngineChoice,
    /// Stack name (prefixes every object: nanna-<name>-ollama...).
    #[arg(
        long = "name",
        default_value = "nanna",
        env = "NANNA_STACK",
        value_name = "STACK"
    )]
    pub name: String,
    /// How long services may take to become healthy, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
}

/// Arguments of `up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Engine, stack name, timeout.
    #[command(flatten)]
    pub target: TargetArgs,
    /// GPU for the model server: auto picks the best usable one.
    #[arg(
        long,
        value_enum,
        env = "GPU_SUPPORT",
        default_value = "auto",
        ignore_case = true
    )]
    pub gpu: GpuChoice,
    /// Network (both engines) or pod (Podman only).
    #[arg(
        long = "type",
        value_enum,
        default_value = "network",
        ignore_case = true
    )]
    pub layout: Layout,
    /// Model to pull once the server is healthy (and to give the assistant).
    #[arg(long, env = "OLLAMA_MODEL", value_name = "MODEL")]
    pub model: Option<String>,
    /// Model-server image (default: ollama/ollama, or ollama/ollama:rocm for AMD).
    #[arg(long, value_name = "IMAGE")]
    pub ollama_image: Option<String>,
    /// Assistant image.
    #[arg(long, visible_alias = "assistant-image", default_value = DEFAULT_ASSISTANT_IMAGE, value_name = "IMAGE")]
    pub harness_image: String,
    /// docker-archive or OCI tarball to load first (repeatable).
    #[arg(long, value_name = "PATH")]
    pub image_archive: Vec<PathBuf>,
    /// Run only the model server.
    #[arg(long)]
    pub no_assistant: bool,
    /// Print the plan (containers, images, devices, env, mounts, ports); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Host address for the model server's port.
    #[arg(long, default_value = "127.0.0.1:11434", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Host address for the assistant's port (its /health).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub assistant_listen: SocketAddr,
    /// Context length of the model server (OLLAMA_CONTEXT_LENGTH).
    #[arg(long, env = "OLLAMA_CONTEXT_LENGTH", default_value_t = DEFAULT_CONTEXT_LENGTH, value_name = "TOKENS")]
    pub context_length: u32,
    /// How long a model stays loaded (OLLAMA_KEEP_ALIVE).
    #[arg(long, env = "OLLAMA_KEEP_ALIVE", default_value = DEFAULT_KEEP_ALIVE, value_name = "DURATION")]
    pub keep_alive: String,
    /// Project mounted at /workspace in the assistant (default: current directory).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// How long an absent image's pull may take, in seconds.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub pull_timeout: u64,
    /// Directory holding the host's / (GPU detection reads below it).
    #[arg(long, env = "NANNA_HOST_ROOT", value_name = "DIR")]
    pub host_root: Option<PathBuf>,
    /// Extra device for the model server, HOST[:CONTAINER] (checked inside after start).
    #[arg(long = "device", value_name = "HOST[:CONTAINER]", value_parser = ExtraDevice::parse, hide = true)]
    pub devices: Vec<ExtraDevice>,
}

/// Arguments of `down`.
#[derive(Debug, Clone, clap::Args)]
pub struct DownArgs {
    /// Engine and stack.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Also remove the models volume.
    #[arg(long)]
    pub volumes: bool,
}

/// Arguments of `status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Engine and stack.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `logs`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// Engine and stack.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Service (default: both).
    #[arg(value_enum)]
    pub service: Option<Service>,
    /// Keep printing new lines.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
}

/// Arguments of `update`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpdateArgs {
    /// Engine and stack.
    #[command(flatten)]
    pub target: TargetArgs,
    /// docker-archive or OCI tarball to load first (repeatable).
    #[arg(long, value_name = "PATH")]
    pub image_archive: Vec<PathBuf>,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// How long a pull may take, in seconds.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub pull_timeout: u64,
}

/// Arguments of `shell`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShellArgs {
    /// Engine and stack.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Service (default: assistant).
    #[arg(value_enum, default_value = "assistant")]
    pub service: Service,
    /// Command to run instead of `nanna chat`.
    #[arg(last = true)]
    pub cmd: Vec<String>,
}

/// `images` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ImagesCommand {
    /// Load a docker-archive or OCI tarball into the engine.
    Load {
        /// Container engine.
        #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
        engine: EngineChoice,
        /// The archive.
        path: PathBuf,
    },
    /// Build an image from a binary and its shared libraries, and load it.
    #[command(
        after_help = "Examples:\n  nanna-deploy images build                 # the assistant image from `nanna`\n  nanna-deploy images build --binary ./srv --tag localhost/srv:1 --port 9000 --env RUST_LOG=info"
    )]
    Build(BuildArgs),
}

/// Arguments of `images build`.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    /// Container engine.
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub engine: EngineChoice,
    /// Binary to package (default: `nanna` beside nanna-deploy or on PATH, as the assistant image).
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Image reference.
    #[arg(long, value_name = "REF")]
    pub tag: Option<String>,
    /// Entrypoint (repeat for arguments).
    #[arg(long, value_name = "ARG")]
    pub entrypoint: Vec<String>,
    /// Environment variable K=V (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Port to expose (repeatable).
    #[arg(long = "port", value_name = "N")]
    pub ports: Vec<u16>,
    /// Extra executable HOST:IMAGE_PATH (repeatable).
    #[arg(long = "file", value_name = "HOST:IMAGE_PATH", value_parser = parse_file)]
    pub files: Vec<(PathBuf, String)>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not K=V"))
}

fn parse_file(text: &str) -> Result<(PathBuf, String), String> {
    text.split_once(':')
        .filter(|(_, image)| image.starts_with('/'))
        .map(|(host, image)| (PathBuf::from(host), image.to_string()))
        .ok_or_else(|| format!("{text:?} is not HOST:/IMAGE/PATH"))
}

fn probe_env(host_root: Option<&PathBuf>) -> ProbeEnv {
    let mut env = ProbeEnv::from_process();
    // A loaded machine's Podman can take a second to answer /version.
    env.engine_timeout = Duration::from_secs(5);
    if let Some(root) = host_root {
        env.host_root = HostRoot::new(root);
    }
    env
}

async fn connect(choice: EngineChoice, env: &ProbeEnv) -> Result<Engine, StackError> {
    super::connect::connect(choice, env).await
}

fn fail(error: StackError) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::FAILURE
}

fn print_json(value: &impl serde::Serialize) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot serialise the result: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a stack subcommand; returns the process exit code.
pub async fn run(command: StackCommand) -> ExitCode {
    match command {
        StackCommand::Up(args) => run_up(*args).await,
        StackCommand::Down(args) => {
            let env = probe_env(None);
            let result = async {
                let engine = connect(args.target.engine, &env).await?;
                ops::down(&engine, &args.target.name, args.volumes).await
            }
            .await;
            match result {
                Ok(report) => {
                    let removed: Vec<String> = report
                        .containers
                        .iter()
                        .map(|c| format!("container {c}"))
                        .chain(report.pods.iter().map(|p| format!("pod {p}")))
                        .chain(report.networks.iter().map(|n| format!("network {n}")))
                        .chain(report.volumes.iter().map(|v| format!("volume {v}")))
                        .collect();
                    if removed.is_empty() {
                        println!("stack {} has nothing to remove", args.target.name);
                    } else {
                        println!("removed {}", removed.join(", "));
                    }
                    if !report.kept_volumes.is_empty() {
                        println!(
                            "kept {} (models; remove with --volumes)",
                            report.kept_volumes.join(", ")
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        StackCommand::Restart(args) => {
            let env = probe_env(None);
            let result = async {
                let engine = connect(args.engine, &env).await?;
                ops::restart(&engine, &args.name, Duration::from_secs(args.timeout), true).await
            }
            .await;
            match result {
                Ok(()) => {
                    println!("stack {} restarted and healthy", args.name);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        StackCommand::Status(args) => {
            let env = probe_env(None);
            let result = async {
                let engine = connect(args.target.engine, &env).await?;
                ops::status(&engine, &args.target.name).await
            }
            .await;
            match result {
                Ok(status) if args.json => print_json(&status),
                Ok(status) => {
                    println!(
                        "stack {} on {} ({})",
                        status.stack,
                        status.engine,
                        status
                            .pod
                            .as_ref()
                            .map(|p| format!("pod {p}"))
                            .unwrap_or_else(|| format!("network {}", status.networks.join(",")))
                    );
                    for s in &status.services {
                        println!(
                            "  {:<9} {:<8} {:<9} {} ports {} gpu {}{}{}",
                            s.service.as_str(),
                            s.state,
                            s.health,
                            s.image,
                            if s.ports.is_empty() {
                                s.url.clone().unwrap_or_else(|| "-".to_string())
                            } else {
                                s.ports.join(",")
                            },
                            s.gpu,
                            if s.devices.is_empty() {
                                String::new()
                            } else {
                                format!(" devices {}", s.devices.join(","))
                            },
                            s.health_detail
                                .as_ref()
                                .map(|d| format!("\n            {d}"))
                                .unwrap_or_default()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        StackCommand::Logs(args) => {
            let env = probe_env(None);
            let result = async {
                let engine = connect(args.target.engine, &env).await?;
                let mut out = std::io::stdout();
                ops::logs(
                    &engine,
                    &args.target.name,
                    args.service,
                    args.follow,
                    args.tail,
                    &mut out,
                )
                .await
            }
            .await;
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
        StackCommand::Update(args) => {
            let env = probe_env(None);
            let workspace = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            let mut options = UpOptions::new(StackSettings::new(&args.target.name, workspace));
            options.image_archives = args.image_archive.clone();
            options.dry_run = args.dry_run;
            options.timeout = Duration::from_secs(args.timeout_secs());
            options.pull_timeout = Duration::from_secs(args.pull_timeout);
            options.progress = !args.json;
            let result = async {
                let engine = connect(args.target.engine, &env).await?;
                apply::update(&engine, &env, &args.target.name, &options).await
            }
            .await;
            report_up(result, args.json, args.dry_run)
        }
        StackCommand::Shell(args) => {
            let env = probe_env(None);
            let result = async {
                let engine = connect(args.target.engine, &env).await?;
                ops::shell(&engine, &args.target.name, args.service, args.cmd.clone()).await
            }
            .await;
            match result {
                Ok(0) => ExitCode::SUCCESS,
                Ok(code) => ExitCode::from(u8::try_from(code.clamp(1, 255)).unwrap_or(1)),
                Err(e) => fail(e),
            }
        }
        StackCommand::Images(ImagesCommand::Load { engine, path }) => {
            let env = probe_env(None);
            let result = async {
                let engine = connect(engine, &env).await?;
                images::load(&engine, &path).await
            }
            .await;
            match result {
                Ok(loaded) => {
                    println!("loaded {}", loaded.join(", "));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        StackCommand::Images(ImagesCommand::Build(args)) => {
            let env = probe_env(None);
            let request = BuildRequest {
                binary: args.binary.clone(),
                tag: args.tag.clone(),
                entrypoint: args.entrypoint.clone(),
                env: args.env.iter().cloned().collect::<BTreeMap<_, _>>(),
                ports: args.ports.clone(),
                files: args.files.clone(),
            };
            let result = async {
                let engine = connect(args.engine, &env).await?;
                images::build(&engine, &request).await
            }
            .await;
            match result {
                Ok(report) if args.json => print_json(&report),
                Ok(report) => {
                    eprintln!(
                        "built {} ({}, {:.1} MB, {} layers)",
                        report.reference,
                        report.image_id,
                        report.size_bytes as f64 / 1e6,
                        report.layers
                    );
                    println!("{}", report.reference);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

impl UpdateArgs {
    fn timeout_secs(&self) -> u64 {
        self.target.timeout
    }
}

/// The settings `up`'s flags describe.
pub fn settings_from(args: &UpArgs) -> Result<StackSettings, StackError> {
    let workspace = match &args.workspace {
        Some(dir) => std::path::absolute(dir),
        None => std::env::current_dir(),
    }
    .map_err(|source| StackError::Io {
        what: "find the workspace directory".to_string(),
        source,
    })?;
    let mut settings = StackSettings::new(&args.target.name, workspace);
    settings.layout = args.layout;
    settings.ollama_image = args.ollama_image.clone();
    settings.assistant_image = args.harness_image.clone();
    settings.assistant = !args.no_assistant;
    settings.listen = args.listen;
    settings.assistant_listen = args.assistant_listen;
    settings.context_length = args.context_length;
    settings.keep_alive = args.keep_alive.clone();
    settings.model = args.model.clone();
    settings.extra_devices = args.devices.clone();
    Ok(settings)
}

async fn run_up(args: UpArgs) -> ExitCode {
    let env = probe_env(args.host_root.as_ref());
    let result = async {
        let settings = settings_from(&args)?;
        let mut options = UpOptions::new(settings);
        options.gpu = args.gpu;
        options.image_archives = args.image_archive.clone();
        options.dry_run = args.dry_run;
        options.timeout = Duration::from_secs(args.target.timeout);
        options.pull_timeout = Duration::from_secs(args.pull_timeout);
        options.progress = !args.json;
        let engine = connect(args.target.engine, &env).await?;
        apply::up(&engine, &env, &options).await
    }
    .await;
    report_up(result, args.json, args.dry_run)
}

fn report_up(result: Result<UpReport, StackError>, json: bool, dry_run: bool) -> ExitCode {
    let report = match result {
        Ok(report) => report,
        Err(e) => return fail(e),
    };
    if json {
        return print_json(&report);
    }
    if dry_run {
        print!("{}", render_plan(&report));
        return ExitCode::SUCCESS;
    }
    if report.changed {
        println!(
            "stack {} is up ({} ms)",
            report.spec.stack, report.elapsed_ms
        );
    } else {
        println!(
            "stack {} is up to date; nothing changed ({} ms)",
            report.spec.stack, report.elapsed_ms
        );
    }
    for service in &report.spec.services {
        let path = super::health::health_path(service.service);
        println!(
            "  {:<9} http://{}{path}",
            service.service.as_str(),
            service.probe_addr
        );
    }
    if let Some(check) = &report.devices {
        println!(
            "  GPU devices visible in the model server ({}): {}",
            check.method,
            check.paths.join(", ")
        );
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
    out.push_str("plan:\n");
    for step in &report.plan.steps {
        let line = match step {
            Step::RemoveContainer { name, reason } => format!("remove container {name} ({reason})"),
            Step::RemovePod { name, reason } => format!("remove pod {name} ({reason})"),
            Step::RemoveNetwork { name } => format!("remove network {name}"),
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
                super::spec::MountSpec::Volume { source, target } => {
                    out.push_str(&format!("  mount    volume {source} -> {target}\n"))
                }
                super::spec::MountSpec::Bind { source, target } => {
                    out.push_str(&format!("  mount    {source} -> {target}\n"))
                }
            }
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
        for (k, v) in &c.env {
            out.push_str(&format!("  env      {k}={v}\n"));
        }
    }
    out
}

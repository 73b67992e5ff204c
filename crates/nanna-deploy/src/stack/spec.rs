//! The desired stack, computed without touching an engine: which network or pod, volume and
//! containers (image, environment, ports, mounts, devices, labels) the settings and the GPU
//! recommendation call for.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{confinement, validate};
use crate::accelerator::Accelerator;
use crate::engine::EngineKind;
use crate::recommend::{DeviceMapping, GpuDeviceRequest, Recommendation};

/// Label naming the stack an object belongs to.
pub const LABEL_STACK: &str = "dev.nanna.stack";
/// Label naming the service of a container or volume (`ollama`, `assistant`).
pub const LABEL_SERVICE: &str = "dev.nanna.service";
/// Label holding the hash of the settings an object was created with.
pub const LABEL_HASH: &str = "dev.nanna.settings-hash";
/// Label naming the kind of object (`container`, `network`, `pod`, `volume`).
pub const LABEL_OBJECT: &str = "dev.nanna.object";
/// Label holding the accelerator of the model server (`nvidia`, `amd`, `intel`, `none`).
pub const LABEL_GPU: &str = "dev.nanna.gpu";
/// Label holding the container paths of the devices handed to a container (comma-separated).
pub const LABEL_DEVICES: &str = "dev.nanna.devices";

/// Label holding the host address a service answers HTTP on (`127.0.0.1:11434`).
pub const LABEL_PROBE: &str = "dev.nanna.probe";
/// Label (on the model server) holding the stack's settings as JSON, for `update`.
pub const LABEL_SETTINGS: &str = "dev.nanna.settings";

/// Ollama's port inside its container.
pub const OLLAMA_PORT: u16 = 11434;
/// `nanna serve`'s port inside the assistant container.
pub const ASSISTANT_PORT: u16 = 8080;
/// Context length given to the model server: Nanna's default window.
pub const DEFAULT_CONTEXT_LENGTH: u32 = nanna_model::DEFAULT_CONTEXT_WINDOW;
/// How long the model server keeps a model loaded after its last use.
pub const DEFAULT_KEEP_ALIVE: &str = "30m";
/// The assistant image `nanna-deploy images build` produces.
pub const DEFAULT_ASSISTANT_IMAGE: &str = "localhost/nanna-coder-assistant:latest";
/// Where the models volume is mounted in the model server.
pub const MODELS_DIR: &str = "/root/.ollama";
/// Where the user's project is mounted in the assistant.
pub const WORKSPACE_DIR: &str = "/workspace";
/// Restart policy of every container.
pub const RESTART_POLICY: &str = "unless-stopped";
/// Seconds the model server gets to exit after SIGTERM before SIGKILL: short, because it
/// holds no state a kill can corrupt (models are written to a temporary file and renamed).
pub const DEFAULT_STOP_TIMEOUT: u32 = 2;
/// Seconds the assistant gets to exit after SIGTERM (`nanna serve` exits at once; a
/// `nanna chat` started with `shell` may be writing a file).
pub const ASSISTANT_STOP_TIMEOUT: u32 = 10;

/// How the containers are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// A user-defined network `nanna-<stack>`; containers reach each other by name.
    Network,
    /// One Podman pod; containers share `localhost`.
    Pod,
}

impl Layout {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Pod => "pod",
        }
    }
}

/// A service of the stack.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// The Ollama model server.
    Ollama,
    /// The assistant (`nanna serve`).
    Assistant,
}

impl Service {
    /// Lower-case name, as in labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::Assistant => "assistant",
        }
    }

    /// The service a label value names.
    pub fn from_label(value: &str) -> Option<Self> {
        match value {
            "ollama" => Some(Self::Ollama),
            "assistant" => Some(Self::Assistant),
            _ => None,
        }
    }
}

/// A device given to the model server besides the GPU's (e.g. a stand-in in tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraDevice {
    /// Path on the host.
    pub path_on_host: String,
    /// Path in the container.
    pub path_in_container: String,
}

impl ExtraDevice {
    /// Parses `HOST[:CONTAINER]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (host, container) = text.split_once(':').unwrap_or((text, text));
        if !host.starts_with('/') || !container.starts_with('/') {
            return Err(format!(
                "device {text:?} must be HOST[:CONTAINER] with absolute paths"
            ));
        }
        Ok(Self {
            path_on_host: host.to_string(),
            path_in_container: container.to_string(),
        })
    }
}

/// What the user asked for (command-line flags and their defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackSettings {
    /// Stack name (`nanna`): prefixes every object and fills the stack label.
    pub name: String,
    /// Network or pod.
    pub layout: Layout,
    /// Model-server image override (`--ollama-image`); else chosen by GPU.
    pub ollama_image: Option<String>,
    /// Assistant image.
    pub assistant_image: String,
    /// Whether to run the assistant.
    pub assistant: bool,
    /// Host address the model server's port is published on.
    pub listen: SocketAddr,
    /// Host address the assistant's port is published on.
    pub assistant_listen: SocketAddr,
    /// `OLLAMA_CONTEXT_LENGTH`.
    pub context_length: u32,
    /// `OLLAMA_KEEP_ALIVE`.
    pub keep_alive: String,
    /// The project mounted at `/workspace` in the assistant (absolute).
    pub workspace: PathBuf,
    /// Model to pull and to give the assistant (`NANNA_MODEL`).
    pub model: Option<String>,
    /// Extra devices for the model server, beyond the GPU's (also checked after start).
    pub extra_devices: Vec<ExtraDevice>,
    /// Seconds the model server gets to exit after SIGTERM before SIGKILL (`--stop-timeout`).
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: u32,
}

fn default_stop_timeout() -> u32 {
    DEFAULT_STOP_TIMEOUT
}

impl StackSettings {
    /// Defaults for a stack called `name` with the project at `workspace`.
    pub fn new(name: &str, workspace: PathBuf) -> Self {
        Self {
            name: name.to_string(),
            layout: Layout::Network,
            ollama_image: None,
            assistant_image: DEFAULT_ASSISTANT_IMAGE.to_string(),
            assistant: true,
            listen: SocketAddr::from(([127, 0, 0, 1], OLLAMA_PORT)),
            assistant_listen: SocketAddr::from(([127, 0, 0, 1], ASSISTANT_PORT)),
            context_length: DEFAULT_CONTEXT_LENGTH,
            keep_alive: DEFAULT_KEEP_ALIVE.to_string(),
            workspace,
            model: None,
            extra_devices: Vec::new(),
            stop_timeout: DEFAULT_STOP_TIMEOUT,
        }
    }
}

/// Facts about the host that shape the containers, read by the caller so that
/// [`desired`] stays pure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Host group name to id (`/etc/group`), to give device groups as host ids.
    pub groups: BTreeMap<String, u32>,
    /// Owner (uid, gid) of the workspace directory: the assistant runs as that user when it
    /// is not root, so files it writes in `/workspace` belong to their owner.
    pub workspace_owner: Option<(u32, u32)>,
    /// The user's home directory (refused as a workspace).
    pub home: Option<PathBuf>,
}

/// The assistant's system-call filter on engines whose default refuses user namespaces
/// (Docker): `images/assistant-seccomp.json`, named by `images/container-security.json` and
/// shared with the Nix deployment and the exports.
pub const ASSISTANT_SECCOMP_JSON: &str = include_str!("../../../../images/assistant-seccomp.json");

/// `/sys` paths that stay masked when `/proc` is unmasked (`sys_masked_paths` of
/// `images/container-security.json`): the `/sys` entries of Docker's default masked paths
/// (moby `oci/defaults.go`: firmware tables, and RAPL energy counters, a power side
/// channel, since Engine 25). Podman masks these and more by itself (containers/common
/// `config.DefaultMaskedPaths`); naming them again there is harmless.
pub fn sys_masked_paths() -> &'static [String] {
    confinement::sys_masked_paths()
}

/// The system-call filter of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SeccompSpec {
    /// The engine's default profile.
    EngineDefault,
    /// A profile in the engines' JSON format (Docker's `seccomp=` option, Podman's
    /// `seccomp_profile_path`, Kubernetes' `Localhost` profiles).
    Profile(SeccompProfile),
}

/// A seccomp profile of our own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompProfile {
    /// Short name, for files (`nanna-assistant`).
    pub name: String,
    /// SHA-256 of `json`, so the settings hash (and a dry run) follows the content.
    pub sha256: String,
    /// The profile.
    #[serde(skip)]
    pub json: String,
}

impl SeccompProfile {
    /// The profile `json`, under `name`.
    pub fn new(name: &str, json: &str) -> Self {
        Self {
            name: name.to_string(),
            sha256: Sha256::digest(json.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            json: json.to_string(),
        }
    }
}

/// How `/proc` is mounted in a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcMount {
    /// The engine's default: kernel files under `/proc` masked (bind mounts of `/dev/null` or
    /// an empty tmpfs), `/proc/sys`, `/proc/bus`... read-only bind mounts.
    Masked,
    /// Nothing under `/proc` masked or read-only; [`sys_masked_paths`] stay masked. The
    /// kernel lets a user namespace mount a fresh `/proc` only where the `/proc` it sees
    /// has no locked mount covering anything (`mount_too_revealing` and
    /// `mnt_already_visible` in fs/namespace.c), so bubblewrap's `--proc` needs this
    /// (measured on both engines: `Can't mount proc on /newroot/proc: Operation not
    /// permitted` with any one of those mounts left). Docker: `systempaths=unconfined`
    /// without its `/sys` part; Podman: `unmask=/proc/*`; Kubernetes: `procMount: Unmasked`.
    Unmasked,
}

/// How a container is confined (issue 9: least privilege for what the stack runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecuritySpec {
    /// Capabilities dropped (`ALL`).
    pub cap_drop: Vec<String>,
    /// `no-new-privileges`: set-uid programs and file capabilities grant nothing.
    pub no_new_privileges: bool,
    /// Read-only root filesystem.
    pub read_only_rootfs: bool,
    /// tmpfs mounts (path, options), for what must stay writable.
    pub tmpfs: Vec<(String, String)>,
    /// `uid:gid` to run as; `None` keeps the image's user.
    pub user: Option<String>,
    /// The system-call filter.
    pub seccomp: SeccompSpec,
    /// How `/proc` is mounted.
    pub proc_mount: ProcMount,
}

impl SecuritySpec {
    /// How `service`'s container is confined on `engine` (its row of
    /// `images/container-security.json`): every container drops all capabilities and sets
    /// `no-new-privileges`; the model server keeps the engine's seccomp profile, `/proc`
    /// masks, its image's user and a writable root. The assistant gets a read-only root
    /// with a tmpfs on `/tmp`, runs as `workspace_owner` (when not root), and gets what
    /// bubblewrap needs to confine the commands of its `shell` tool inside the container
    /// (see crates/nanna-deploy/README.md):
    /// - user namespaces: Podman's default seccomp profile allows `clone`/`unshare` with
    ///   namespace flags, `mount`, `umount2` and `pivot_root` to every container
    ///   (containers/common `pkg/seccomp/seccomp.json`), so Podman keeps its default;
    ///   Docker's allows them only with CAP_SYS_ADMIN (moby `profiles/seccomp/default.json`),
    ///   so Docker gets [`ASSISTANT_SECCOMP_JSON`];
    /// - `/proc` unmasked ([`ProcMount::Unmasked`]), on both engines.
    ///
    /// Capabilities stay dropped and `no-new-privileges` set: bubblewrap is not set-uid, it
    /// gets its privileges inside the user namespace it creates.
    pub fn of(service: Service, engine: EngineKind, workspace_owner: Option<(u32, u32)>) -> Self {
        confinement::of(service).security(engine, workspace_owner)
    }
}

/// A port published on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortSpec {
    /// Host address (`127.0.0.1`).
    pub host_ip: String,
    /// Host port.
    pub host_port: u16,
    /// Port in the container (or pod).
    pub container_port: u16,
}

impl PortSpec {
    fn from_addr(addr: SocketAddr, container_port: u16) -> Self {
        Self {
            host_ip: addr.ip().to_string(),
            host_port: addr.port(),
            container_port,
        }
    }
}

/// A mount in a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MountSpec {
    /// A named volume.
    Volume {
        /// Volume name.
        source: String,
        /// Path in the container.
        target: String,
    },
    /// A host directory.
    Bind {
        /// Host path.
        source: String,
        /// Path in the container.
        target: String,
    },
}

/// One container of the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    /// Which service.
    pub service: Service,
    /// Container name (`nanna-<stack>-ollama`).
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Labels (stack, service, object, settings hash, GPU).
    pub labels: BTreeMap<String, String>,
    /// Ports published by this container (empty in the pod layout: the pod publishes).
    pub ports: Vec<PortSpec>,
    /// Mounts.
    pub mounts: Vec<MountSpec>,
    /// Host devices, cgroup `rwm`.
    pub devices: Vec<DeviceMapping>,
    /// CDI devices (Podman, through libpod).
    pub cdi_devices: Vec<String>,
    /// Device requests (Docker).
    pub device_requests: Vec<GpuDeviceRequest>,
    /// Supplementary groups (host group ids when known, else names).
    pub group_add: Vec<String>,
    /// Network aliases (network layout).
    pub aliases: Vec<String>,
    /// Accelerator of the model server (`None` for the assistant).
    pub gpu: Accelerator,
    /// Paths that must exist inside the container once it runs (GPU devices).
    pub check_paths: Vec<String>,
    /// Whether the engine runs an init as PID 1 (Docker `--init`: tini as `docker-init`;
    /// Podman `--init`: catatonit) that reaps orphans. The assistant needs one: the
    /// sandbox's PID-namespace init outlives bubblewrap's monitor by a moment and is then
    /// reparented to PID 1 (measured: without an init, one zombie per command piled up
    /// under `nanna serve`).
    pub init: bool,
    /// Capabilities, privileges, root filesystem and user.
    pub security: SecuritySpec,
    /// Seconds between SIGTERM and SIGKILL when the container is stopped.
    pub stop_timeout: u32,
    /// Hash of everything above but the labels; stored in [`LABEL_HASH`].
    pub settings_hash: String,
    /// Where the service answers HTTP from the host (`127.0.0.1:11434`).
    pub probe_addr: SocketAddr,
}

/// The user-defined network of the network layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSpec {
    /// `nanna-<stack>`.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// The Podman pod of the pod layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodSpec {
    /// `nanna-<stack>`.
    pub name: String,
    /// Ports the pod publishes.
    pub ports: Vec<PortSpec>,
    /// Labels (including the settings hash).
    pub labels: BTreeMap<String, String>,
    /// Hash of name and ports.
    pub settings_hash: String,
}

/// The models volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSpec {
    /// `nanna-<stack>-models`.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// Everything a stack consists of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackSpec {
    /// Stack name.
    pub stack: String,
    /// Engine the spec is for.
    pub engine: EngineKind,
    /// Layout.
    pub layout: Layout,
    /// Network (network layout).
    pub network: Option<NetworkSpec>,
    /// Pod (pod layout).
    pub pod: Option<PodSpec>,
    /// Models volume.
    pub volume: VolumeSpec,
    /// Containers, model server first.
    pub services: Vec<ContainerSpec>,
}

impl StackSpec {
    /// The container of `service`, if the stack has it.
    pub fn service(&self, service: Service) -> Option<&ContainerSpec> {
        self.services.iter().find(|s| s.service == service)
    }
}

/// Settings that cannot make a stack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The stack name is unusable in object names.
    #[error(
        "stack name {name:?} is not valid: use 1 to 40 characters from a-z, 0-9, '-' and '_', starting with a letter or digit (e.g. --name nanna)"
    )]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// Pods exist only on Podman.
    #[error(
        "--type pod needs Podman, but the engine is Docker, which has no pods. Use --type network (works on both engines) or --engine podman"
    )]
    PodOnDocker,
    /// Two services would publish the same host address.
    #[error(
        "the model server and the assistant would both publish {addr}: give them different ports or addresses (--listen / --assistant-listen)"
    )]
    PortClash {
        /// The address.
        addr: SocketAddr,
    },
    /// A host address cannot be published.
    #[error("address {given:?} is not usable: {reason} (--listen / --assistant-listen)")]
    InvalidAddress {
        /// What was given.
        given: String,
        /// Why not.
        reason: String,
    },
    /// The workspace cannot be mounted.
    #[error(
        "workspace {path} is refused: {reason}. Pass --workspace with your project's directory"
    )]
    Workspace {
        /// The path given.
        path: String,
        /// Why not.
        reason: String,
    },
}

impl SpecError {
    /// A stable identifier for programs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidName { .. } => "invalid_name",
            Self::PodOnDocker => "pod_on_docker",
            Self::PortClash { .. } => "port_clash",
            Self::InvalidAddress { .. } => "invalid_address",
            Self::Workspace { .. } => "invalid_workspace",
        }
    }
}

/// Name of the network or pod of stack `name`.
pub fn group_name(stack: &str) -> String {
    format!("nanna-{stack}")
}

/// Name of the container of `service` in stack `name`.
pub fn container_name(stack: &str, service: Service) -> String {
    format!("nanna-{stack}-{}", service.as_str())
}

/// Name of the models volume of stack `name`.
pub fn volume_name(stack: &str) -> String {
    format!("nanna-{stack}-models")
}

fn hash_of(value: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn base_labels(stack: &str, object: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_STACK.to_string(), stack.to_string()),
        (LABEL_OBJECT.to_string(), object.to_string()),
    ])
}

/// The host address to probe for a published address (`0.0.0.0` becomes `127.0.0.1`).
pub fn probe_address(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// Checks settings without touching anything: name, addresses, workspace, layout.
pub fn check(
    settings: &StackSettings,
    engine: EngineKind,
    home: Option<&std::path::Path>,
) -> Result<(), SpecError> {
    validate::stack_name(&settings.name)?;
    if settings.layout == Layout::Pod && engine == EngineKind::Docker {
        return Err(SpecError::PodOnDocker);
    }
    validate::check_listen(settings.listen)?;
    if settings.assistant {
        validate::check_listen(settings.assistant_listen)?;
        if validate::addresses_clash(settings.listen, settings.assistant_listen) {
            return Err(SpecError::PortClash {
                addr: settings.assistant_listen,
            });
        }
        validate::workspace_path(&settings.workspace, home)?;
    }
    Ok(())
}

/// Computes the desired stack for `settings` on an engine of kind `engine`, with the GPU
/// recipe `rec` and what the caller read from the host (`facts`). This one value is all a
/// renderer needs: the engine request bodies are made from it, and so can other formats.
pub fn desired(
    settings: &StackSettings,
    engine: EngineKind,
    rec: &Recommendation,
    facts: &HostFacts,
) -> Result<StackSpec, SpecError> {
    check(settings, engine, facts.home.as_deref())?;
    let host_groups = &facts.groups;
    let stack = settings.name.as_str();
    let group = group_name(stack);
    let pod_layout = settings.layout == Layout::Pod;

    let ollama_port = PortSpec::from_addr(settings.listen, OLLAMA_PORT);
    let assistant_port = PortSpec::from_addr(settings.assistant_listen, ASSISTANT_PORT);

    let pod = pod_layout.then(|| {
        let mut ports = vec![ollama_port.clone()];
        if settings.assistant {
            ports.push(assistant_port.clone());
        }
        let settings_hash = hash_of(&(&group, &ports));
        let mut labels = base_labels(stack, "pod");
        labels.insert(LABEL_HASH.to_string(), settings_hash.clone());
        PodSpec {
            name: group.clone(),
            ports,
            labels,
            settings_hash,
        }
    });
    let network = (!pod_layout).then(|| NetworkSpec {
        name: group.clone(),
        labels: base_labels(stack, "network"),
    });
    let volume = {
        let mut labels = base_labels(stack, "volume");
        labels.insert(
            LABEL_SERVICE.to_string(),
            Service::Ollama.as_str().to_string(),
        );
        VolumeSpec {
            name: volume_name(stack),
            labels,
        }
    };

    // Model server.
    let mut env = BTreeMap::from([
        ("OLLAMA_HOST".to_string(), format!("0.0.0.0:{OLLAMA_PORT}")),
        (
            "OLLAMA_CONTEXT_LENGTH".to_string(),
            settings.context_length.to_string(),
        ),
        ("OLLAMA_KEEP_ALIVE".to_string(), settings.keep_alive.clone()),
    ]);
    env.extend(rec.env.clone());
    // The GPU reaches the container as device mappings (with the groups that own them, as
    // host group ids), or through the runtime's hook in the engine's form: Docker's device
    // requests or Podman's CDI devices (Podman's Docker API ignores device requests).
    let recipe = rec.gpu.recipe();
    let (cdi_devices, device_requests) = match engine {
        EngineKind::Docker => (Vec::new(), recipe.docker_device_requests.clone()),
        EngineKind::Podman => (recipe.cdi_devices.clone(), Vec::new()),
    };
    let mut devices = rec.devices.clone();
    let group_add: Vec<String> = rec
        .group_add
        .iter()
        .map(|name| {
            host_groups
                .get(name)
                .map_or_else(|| name.clone(), |gid| gid.to_string())
        })
        .collect();
    let mut check_paths = recipe.check_paths.clone();
    check_paths.extend(devices.iter().map(|d| d.path_in_container.clone()));
    for extra in &settings.extra_devices {
        devices.push(DeviceMapping {
            path_on_host: extra.path_on_host.clone(),
            path_in_container: extra.path_in_container.clone(),
            cgroup_permissions: "rwm".to_string(),
        });
        check_paths.push(extra.path_in_container.clone());
    }
    let ollama_name = container_name(stack, Service::Ollama);
    let mut ollama = ContainerSpec {
        service: Service::Ollama,
        name: ollama_name.clone(),
        image: settings
            .ollama_image
            .clone()
            .unwrap_or_else(|| rec.image.clone()),
        env,
        labels: BTreeMap::new(),
        ports: if pod_layout {
            Vec::new()
        } else {
            vec![ollama_port]
        },
        mounts: vec![MountSpec::Volume {
            source: volume.name.clone(),
            target: MODELS_DIR.to_string(),
        }],
        devices,
        cdi_devices,
        device_requests,
        group_add,
        aliases: if pod_layout {
            Vec::new()
        } else {
            vec![Service::Ollama.as_str().to_string()]
        },
        gpu: rec.gpu,
        check_paths,
        // Ollama's documented `docker run` lines need no capability for any GPU: NVIDIA
        // devices come from the runtime hook (CDI or `--gpus`), AMD and Intel from device
        // cgroup rules plus the video/render groups (ollama/ollama docs/docker.md). Its
        // root filesystem stays writable: the image runs as root and its runners may
        // unpack into it, which cannot be tested here without the real image.
        init: confinement::of(Service::Ollama).init,
        security: SecuritySpec::of(Service::Ollama, engine, None),
        stop_timeout: settings.stop_timeout,
        settings_hash: String::new(),
        probe_addr: probe_address(settings.listen),
    };

    let mut services = vec![];
    let pod_hash = pod.as_ref().map(|p| p.settings_hash.clone());
    finish(&mut ollama, stack, settings.layout, pod_hash.as_deref());
    services.push(ollama);

    if settings.assistant {
        let model_url = if pod_layout {
            format!("http://127.0.0.1:{OLLAMA_PORT}")
        } else {
            format!("http://{ollama_name}:{OLLAMA_PORT}")
        };
        let confined = confinement::of(Service::Assistant);
        let mut env = BTreeMap::from([("OLLAMA_URL".to_string(), model_url)]);
        // The root filesystem is read-only: HOME (sessions, history, caches) goes to tmpfs.
        if let Some(home) = &confined.home {
            env.insert("HOME".to_string(), home.clone());
        }
        if let Some(model) = &settings.model {
            env.insert("NANNA_MODEL".to_string(), model.clone());
        }
        let mut assistant = ContainerSpec {
            service: Service::Assistant,
            name: container_name(stack, Service::Assistant),
            image: settings.assistant_image.clone(),
            env,
            labels: BTreeMap::new(),
            ports: if pod_layout {
                Vec::new()
            } else {
                vec![assistant_port]
            },
            mounts: vec![MountSpec::Bind {
                source: settings.workspace.display().to_string(),
                target: WORKSPACE_DIR.to_string(),
            }],
            devices: Vec::new(),
            cdi_devices: Vec::new(),
            device_requests: Vec::new(),
            group_add: Vec::new(),
            aliases: if pod_layout {
                Vec::new()
            } else {
                vec![Service::Assistant.as_str().to_string()]
            },
            gpu: Accelerator::None,
            check_paths: Vec::new(),
            init: confined.init,
            security: confined.security(engine, facts.workspace_owner),
            stop_timeout: ASSISTANT_STOP_TIMEOUT,
            settings_hash: String::new(),
            probe_addr: probe_address(settings.assistant_listen),
        };
        finish(&mut assistant, stack, settings.layout, pod_hash.as_deref());
        services.push(assistant);
    }

    Ok(StackSpec {
        stack: stack.to_string(),
        engine,
        layout: settings.layout,
        network,
        pod,
        volume,
        services,
    })
}

/// Computes the settings hash (over everything but labels and the hash itself, plus the
/// layout and pod hash) and fills the labels.
fn finish(spec: &mut ContainerSpec, stack: &str, layout: Layout, pod_hash: Option<&str>) {
    spec.settings_hash = hash_of(&(&*spec, layout, pod_hash));
    let mut labels = base_labels(stack, "container");
    labels.insert(LABEL_SERVICE.to_string(), spec.service.as_str().to_string());
    labels.insert(LABEL_HASH.to_string(), spec.settings_hash.clone());
    labels.insert(LABEL_GPU.to_string(), spec.gpu.as_str().to_string());
    labels.insert(LABEL_PROBE.to_string(), spec.probe_addr.to_string());
    if !spec.check_paths.is_empty() {
        labels.insert(LABEL_DEVICES.to_string(), spec.check_paths.join(","));
    }
    spec.labels = labels;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// images/assistant-seccomp.json: allows by default, leaves bubblewrap's calls alone
    /// (without any of clone, unshare, mount, umount2 or pivot_root it fails, measured on
    /// Docker 20.10), and denies with EPERM what Docker's default profile denies to a
    /// container without capabilities (moby profiles/seccomp/default.json; the list in
    /// crates/nanna-deploy/README.md).
    #[test]
    fn the_assistant_profile_denies_what_docker_does_but_the_namespace_calls() {
        let profile: serde_json::Value = serde_json::from_str(ASSISTANT_SECCOMP_JSON).unwrap();
        assert_eq!(profile["defaultAction"], "SCMP_ACT_ALLOW");
        let mut denied = Vec::new();
        for rule in profile["syscalls"].as_array().unwrap() {
            assert_eq!(rule["action"], "SCMP_ACT_ERRNO", "{rule}");
            assert_eq!(rule["errnoRet"], 1, "EPERM, as Docker's profile: {rule}");
            if rule.get("args").is_none() {
                denied.extend(
                    rule["names"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|n| n.as_str().unwrap()),
                );
            }
        }
        for needed in [
            "clone",
            "clone3",
            "unshare",
            "mount",
            "umount2",
            "pivot_root",
        ] {
            assert!(!denied.contains(&needed), "bubblewrap needs {needed}");
        }
        for must in [
            "setns",
            "open_tree",
            "fsopen",
            "move_mount",
            "init_module",
            "finit_module",
            "kexec_load",
            "reboot",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "io_uring_setup",
            "keyctl",
            "add_key",
            "request_key",
            "open_by_handle_at",
        ] {
            assert!(denied.contains(&must), "{must} is not denied");
        }
        // Docker allows ptrace (kernel >= 4.8), and so does this profile.
        assert!(!denied.contains(&"ptrace"));
        let vsock = &profile["syscalls"].as_array().unwrap().last().unwrap();
        assert_eq!(vsock["names"][0], "socket");
        assert_eq!(vsock["args"][0]["value"], 40, "AF_VSOCK");
        let sha = SeccompProfile::new("nanna-assistant", ASSISTANT_SECCOMP_JSON).sha256;
        assert_eq!(sha.len(), 64);
    }

    #[test]
    fn old_settings_without_a_stop_timeout_still_parse() {
        let mut value = serde_json::to_value(StackSettings::new("x", PathBuf::from("/w"))).unwrap();
        value.as_object_mut().unwrap().remove("stop_timeout");
        let settings: StackSettings = serde_json::from_value(value).unwrap();
        assert_eq!(settings.stop_timeout, DEFAULT_STOP_TIMEOUT);
    }
}

//! `nanna-deploy detect`: what the machine has (GPUs, CPU, memory, container engine), what
//! the model server should run with, and what a person should fix.
//!
//! # JSON schema (`detect --json`, `schema_version` 1)
//!
//! Stable: fields are only ever added. Sizes are bytes; unknown values are `null`.
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "host_root": "/",
//!   "host": { "cpu_brand": str|null, "logical_cpus": int, "memory_total_bytes": int,
//!             "memory_available_bytes": int, "source": "sysinfo"|"host-root" },
//!   "gpus": [ { "card": "card1"|null, "vendor": "nvidia"|"amd"|"intel",
//!               "device_id": "0x2684"|null, "name": str|null, "pci_address": "0000:01:00.0"|null,
//!               "driver": "nvidia"|"amdgpu"|"i915"|…|null, "render_node": "/dev/dri/renderD128"|null,
//!               "memory_bytes": int|null, "form_factor": "integrated"|"discrete"|"unknown",
//!               "boot_vga": bool, "uuid": str|null, "gfx_target": "gfx1100"|null } ],
//!   "ignored_cards": [ { "card": str, "pci_address": str|null, "vendor_raw": str|null, "reason": str } ],
//!   "nvidia": null | { "driver_loaded": bool, "driver_version": str|null, "device_nodes": [str],
//!                      "nvidia_smi": str|null, "nvidia_smi_error": str|null, "cdi_specs": [str] },
//!   "amd": null | { "kfd_present": bool, "gfx_targets": [str], "missing_groups": [str] },
//!   "engine": null | { "kind": "podman"|"docker", "socket": str, "version": str, "api_version": str },
//!   "engine_probe": { "probed": bool, "choice": "auto"|"podman"|"docker",
//!                     "installed": { "podman": str|null, "docker": str|null },
//!                     "attempts": [ { "address": str, "source": str, "outcome": { "status": str, … } } ] },
//!   "recommendation": { "gpu": "nvidia"|"amd"|"intel"|"none", "reason": str, "image": str,
//!                       "gpu_pci_addresses": [str],
//!                       "devices": [ { "path_on_host": str, "path_in_container": str, "cgroup_permissions": "rwm" } ],
//!                       "cdi_devices": [str], "device_requests": [ { "driver": str, "count": int, "capabilities": [[str]] } ],
//!                       "group_add": [str], "env": { str: str }, "model_memory_bytes": int,
//!                       "model_memory_source": "vram"|"ram", "suggested_model": str|null, "notes": [str] },
//!   "warnings": [ { "code": str, "message": str, "fix": str|null } ]
//! }
//! ```
//!
//! Warning codes: `unknown_gpu_vendor`, `nvidia_driver_not_loaded`, `nvidia_device_nodes_missing`,
//! `nvidia_smi_missing`, `nvidia_smi_failed`, `nvidia_cdi_missing`, `amd_kfd_missing`,
//! `amd_device_groups`, `amd_gfx_unsupported`, `intel_no_render_node`, `hybrid_graphics`, `no_engine`.

use serde::Serialize;

use crate::accelerator::{Accelerator, GpuChoice};
use crate::engine::{
    self, Engine, EngineChoice, EngineError, EngineInfo, EngineKind, InstalledEngines, ProbeAttempt,
};
use crate::gpu::{self, FormFactor, GpuInventory, amd};
use crate::host::ProbeEnv;
use crate::recommend::{self, GpuUnavailable, Recommendation};
use crate::resources::{self, HostResources};

/// Version of the JSON schema documented in this module.
pub const SCHEMA_VERSION: u32 = 1;

/// What to detect and which choices to force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DetectOptions {
    /// `--gpu`.
    pub gpu: GpuChoice,
    /// `--engine`.
    pub engine: EngineChoice,
    /// Whether to probe engine sockets (`--no-engine` turns it off).
    pub probe_engine: bool,
}

/// Something a person should act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Stable identifier (see the module docs).
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: Option<String>,
}

impl Warning {
    fn new(code: &'static str, message: impl Into<String>, fix: Option<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fix,
        }
    }
}

/// How the engine probe went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineReport {
    /// Whether sockets were probed (`false` with `--no-engine`).
    pub probed: bool,
    /// The `--engine` choice.
    pub choice: &'static str,
    /// `podman` / `docker` on the tool path.
    pub installed: InstalledEngines,
    /// Every socket tried, in priority order.
    pub attempts: Vec<ProbeAttempt>,
}

/// The full detection result; serialises to the schema in the module docs.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The host root probed.
    pub host_root: String,
    /// CPU and memory.
    pub host: HostResources,
    /// GPUs, ignored cards, NVIDIA and AMD stack status.
    #[serde(flatten)]
    pub inventory: GpuInventory,
    /// The engine that answered, if any.
    pub engine: Option<EngineInfo>,
    /// Details of the engine probe.
    pub engine_probe: EngineReport,
    /// What the model server should run with.
    pub recommendation: Recommendation,
    /// Things to fix.
    pub warnings: Vec<Warning>,
    /// The connected engine, for callers that go on to deploy.
    #[serde(skip)]
    pub connected: Option<Engine>,
}

/// Why detection could not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The host root is not a directory.
    #[error(
        "host root {path} is not a readable directory: {reason}. Pass --host-root (or NANNA_HOST_ROOT) a directory holding the host's /"
    )]
    HostRoot {
        /// The path given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A forced `--gpu` the host cannot honour.
    #[error(transparent)]
    Gpu(#[from] GpuUnavailable),
    /// A forced `--engine` that did not answer.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Detects everything, probing engine sockets unless `options.probe_engine` is false.
pub async fn detect(env: &ProbeEnv, options: &DetectOptions) -> Result<Detection, DetectError> {
    check_root(env)?;
    let inventory = gpu::scan(env);
    let host = resources::probe(env);
    let installed = engine::installed(env);
    let (connected, attempts) = if options.probe_engine {
        let probe = engine::probe(options.engine, env).await;
        if probe.engine.is_none() && options.engine != EngineChoice::Auto {
            return Err(EngineError::NotFound {
                choice: options.engine,
                attempts: probe.attempts,
                installed,
            }
            .into());
        }
        (probe.engine, probe.attempts)
    } else {
        (None, Vec::new())
    };
    assemble(
        env, options, inventory, host, installed, connected, attempts,
    )
}

/// Detects GPUs, CPU and memory without touching any engine socket (the fast path).
pub fn detect_offline(env: &ProbeEnv, gpu: GpuChoice) -> Result<Detection, DetectError> {
    check_root(env)?;
    let options = DetectOptions {
        gpu,
        engine: EngineChoice::Auto,
        probe_engine: false,
    };
    let inventory = gpu::scan(env);
    let host = resources::probe(env);
    let installed = engine::installed(env);
    assemble(env, &options, inventory, host, installed, None, Vec::new())
}

fn check_root(env: &ProbeEnv) -> Result<(), DetectError> {
    let dir = env.host_root.dir();
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(DetectError::HostRoot {
            path: dir.display().to_string(),
            reason: "not a directory".into(),
        }),
        Err(error) => Err(DetectError::HostRoot {
            path: dir.display().to_string(),
            reason: error.to_string(),
        }),
    }
}

fn assemble(
    env: &ProbeEnv,
    options: &DetectOptions,
    inventory: GpuInventory,
    host: HostResources,
    installed: InstalledEngines,
    connected: Option<Engine>,
    attempts: Vec<ProbeAttempt>,
) -> Result<Detection, DetectError> {
    let engine_kind = connected.as_ref().map(|e| e.kind);
    let recommendation = recommend::recommend(&inventory, &host, engine_kind, options.gpu)?;
    let warnings = collect_warnings(
        &inventory,
        &recommendation,
        engine_kind,
        &installed,
        options,
    );
    Ok(Detection {
        schema_version: SCHEMA_VERSION,
        host_root: env.host_root.dir().display().to_string(),
        host,
        engine: connected.as_ref().map(Engine::info),
        engine_probe: EngineReport {
            probed: options.probe_engine,
            choice: options.engine.as_str(),
            installed,
            attempts,
        },
        inventory,
        recommendation,
        warnings,
        connected,
    })
}

/// `NVIDIA (0x10de), AMD (0x1002) and Intel (0x8086)`, from the recipe table.
fn supported_vendors() -> String {
    let mut names: Vec<String> = crate::recipe::all()
        .iter()
        .filter(|r| !r.pci_vendor_ids.is_empty())
        .map(|r| format!("{} ({})", r.display_name, r.pci_vendor_ids.join(", ")))
        .collect();
    let last = names.pop().unwrap_or_default();
    if names.is_empty() {
        last
    } else {
        format!("{} and {last}", names.join(", "))
    }
}

fn collect_warnings(
    inventory: &GpuInventory,
    recommendation: &Recommendation,
    engine_kind: Option<EngineKind>,
    installed: &InstalledEngines,
    options: &DetectOptions,
) -> Vec<Warning> {
    let mut warnings = Vec::new();

    for card in inventory.ignored_cards.iter().filter(|card| card.warn) {
        warnings.push(Warning::new(
            "unknown_gpu_vendor",
            format!(
                "{}{}: {} (vendor file says {:?}); it is ignored",
                card.card,
                card.pci_address
                    .as_deref()
                    .map_or(String::new(), |a| format!(" at {a}")),
                card.reason,
                card.vendor_raw.as_deref().unwrap_or("")
            ),
            Some(format!(
                "nanna supports {} GPUs; if this is one of them, check `lspci -nn` and the driver",
                supported_vendors()
            )),
        ));
    }

    if let Some(nvidia) = &inventory.nvidia
        && inventory.has_vendor(Accelerator::Nvidia)
    {
        match recommend::usability(inventory, Accelerator::Nvidia) {
            Err(reason) => warnings.push(Warning::new(
                "nvidia_driver_not_loaded",
                reason,
                Some(
                    "install and load the NVIDIA driver (`sudo modprobe nvidia`), then check \
                     with `nvidia-smi`"
                        .into(),
                ),
            )),
            Ok(()) => {
                if nvidia.driver_loaded && !nvidia.has_control_nodes() {
                    warnings.push(Warning::new(
                        "nvidia_device_nodes_missing",
                        format!(
                            "the NVIDIA driver is loaded but /dev/nvidiactl or /dev/nvidia-uvm is \
                             missing (found: {})",
                            if nvidia.device_nodes.is_empty() {
                                "none".to_string()
                            } else {
                                nvidia.device_nodes.join(", ")
                            }
                        ),
                        Some("create them with `sudo nvidia-modprobe -u -c=0` (or run `nvidia-smi` once as root)".into()),
                    ));
                }
                let podman_side = engine_kind == Some(EngineKind::Podman)
                    || (engine_kind.is_none() && installed.podman.is_some());
                if podman_side && nvidia.cdi_specs.is_empty() {
                    warnings.push(Warning::new(
                        "nvidia_cdi_missing",
                        "NVIDIA GPU with Podman but no CDI spec for nvidia.com/gpu in /etc/cdi or \
                         /var/run/cdi: Podman cannot hand the GPU to containers",
                        Some(
                            "install nvidia-container-toolkit and run `sudo nvidia-ctk cdi generate \
                             --output=/etc/cdi/nvidia.yaml` (NixOS: hardware.nvidia-container-toolkit.enable = true)"
                                .into(),
                        ),
                    ));
                }
            }
        }
        if let Some(error) = &nvidia.nvidia_smi_error {
            warnings.push(Warning::new(
                "nvidia_smi_failed",
                format!("nvidia-smi failed: {error}"),
                Some("GPU names and memory are unknown; check the driver with `nvidia-smi`".into()),
            ));
        } else if nvidia.nvidia_smi.is_none() && nvidia.driver_loaded {
            warnings.push(Warning::new(
                "nvidia_smi_missing",
                "nvidia-smi is not on PATH, so GPU names and memory are unknown",
                Some(
                    "install the NVIDIA driver utilities (nvidia-utils) or add nvidia-smi to PATH"
                        .into(),
                ),
            ));
        }
    }

    if let Some(amd_status) = &inventory.amd {
        if !amd_status.kfd_present {
            warnings.push(Warning::new(
                "amd_kfd_missing",
                "AMD GPU present but /dev/kfd is missing: ROCm (and the ollama:rocm image) cannot use it",
                Some("load amdgpu with KFD support (`sudo modprobe amdgpu`; kernel option CONFIG_HSA_AMD=y)".into()),
            ));
        }
        if !amd_status.missing_groups.is_empty() {
            let groups = amd_status.missing_groups.join(",");
            warnings.push(Warning::new(
                "amd_device_groups",
                format!(
                    "you are not in the {} group(s) that own /dev/kfd and /dev/dri",
                    amd_status.missing_groups.join(" and ")
                ),
                Some(format!(
                    "`sudo usermod -aG {groups} $USER`, then log out and back in"
                )),
            ));
        }
        for gfx in &amd_status.gfx_targets {
            let has_override = recommendation.env.contains_key("HSA_OVERRIDE_GFX_VERSION");
            if amd::hsa_override(gfx).is_none() && !amd::rocm_supported(gfx) && !has_override {
                warnings.push(Warning::new(
                    "amd_gfx_unsupported",
                    format!("{gfx} is not a target of the ROCm model-server build and has no known stand-in"),
                    Some("expect a CPU fallback; try --gpu intel/none, or set HSA_OVERRIDE_GFX_VERSION yourself".into()),
                ));
            }
        }
    }

    if inventory.has_vendor(Accelerator::Intel)
        && !inventory
            .of_vendor(Accelerator::Intel)
            .any(|gpu| gpu.render_node.is_some())
    {
        warnings.push(Warning::new(
            "intel_no_render_node",
            "Intel GPU present but without a render node (/dev/dri/renderD*)",
            Some("load the i915 or xe kernel driver".into()),
        ));
    }

    let integrated: Vec<_> = inventory
        .gpus
        .iter()
        .filter(|g| g.form_factor == FormFactor::Integrated)
        .collect();
    let discrete: Vec<_> = inventory
        .gpus
        .iter()
        .filter(|g| g.form_factor == FormFactor::Discrete)
        .collect();
    if !integrated.is_empty() && !discrete.is_empty() {
        let list = |gpus: &[&gpu::Gpu]| {
            gpus.iter()
                .map(|g| {
                    format!(
                        "{} {}",
                        g.vendor.display_name(),
                        g.pci_address.as_deref().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let chosen = match recommendation.gpu {
            Accelerator::None => "the CPU".to_string(),
            other => {
                let on_discrete = discrete.iter().any(|g| g.vendor == other);
                let name = inventory
                    .gpus
                    .iter()
                    .find(|g| g.vendor == other)
                    .map_or(other.as_str(), |g| g.vendor.display_name());
                format!(
                    "the {} {name} GPU",
                    if on_discrete {
                        "discrete"
                    } else {
                        "integrated"
                    },
                )
            }
        };
        let alternative = integrated
            .first()
            .map(|g| g.vendor.as_str())
            .unwrap_or("none");
        warnings.push(Warning::new(
            "hybrid_graphics",
            format!(
                "hybrid graphics: integrated {} and discrete {}; using {chosen}",
                list(&integrated),
                list(&discrete)
            ),
            Some(format!(
                "pass --gpu {alternative} (or GPU_SUPPORT={alternative}) to use the integrated GPU instead"
            )),
        ));
    }

    if options.probe_engine && engine_kind.is_none() {
        warnings.push(Warning::new(
            "no_engine",
            "no container engine answered at any of the sockets tried",
            Some(engine::start_hint(options.engine, installed)),
        ));
    }
    warnings
}

//! Which accelerator to use and what the model-server container needs for it: image, device
//! mappings, CDI devices, Docker device requests, groups and environment, from the recipe
//! table ([`crate::recipe`]) plus what detection found on this host.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::accelerator::{Accelerator, GpuChoice};
use crate::engine::EngineKind;
use crate::gpu::{self, FormFactor, Gpu, GpuInventory};
use crate::recipe;
use crate::resources::HostResources;

/// A host device to map into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceMapping {
    /// Path on the host (`/dev/kfd`).
    pub path_on_host: String,
    /// Path in the container.
    pub path_in_container: String,
    /// cgroup permissions (`rwm`).
    pub cgroup_permissions: String,
}

impl DeviceMapping {
    fn same_path(path: &str) -> Self {
        Self {
            path_on_host: path.to_string(),
            path_in_container: path.to_string(),
            cgroup_permissions: "rwm".to_string(),
        }
    }
}

/// A Docker device request (`--gpus all` is driver `nvidia`, count -1, capabilities `[["gpu"]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuDeviceRequest {
    /// Device driver (`nvidia`).
    pub driver: String,
    /// Number of devices; -1 means all.
    pub count: i64,
    /// Capability sets (`[["gpu"]]`).
    pub capabilities: Vec<Vec<String>>,
}

/// What the model-server container should be given. The deploy commands build containers
/// from this.
///
/// NVIDIA needs different mechanisms per engine: Docker takes `device_requests`, Podman's
/// Docker-compatible API ignores them and needs `cdi_devices` (through the libpod API). When
/// the engine was not probed both are filled; use the one that matches the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recommendation {
    /// The accelerator chosen.
    pub gpu: Accelerator,
    /// Why it was chosen (one sentence).
    pub reason: String,
    /// Model-server image.
    pub image: String,
    /// PCI addresses of the GPUs the choice covers.
    pub gpu_pci_addresses: Vec<String>,
    /// Devices to map (`/dev/kfd`, `/dev/dri`), cgroup `rwm`.
    pub devices: Vec<DeviceMapping>,
    /// CDI devices (`nvidia.com/gpu=all`), for Podman.
    pub cdi_devices: Vec<String>,
    /// Docker device requests, for Docker.
    pub device_requests: Vec<GpuDeviceRequest>,
    /// Supplementary groups for the container process (`video`, `render`).
    pub group_add: Vec<String>,
    /// Environment for the model server (`HSA_OVERRIDE_GFX_VERSION`, `OLLAMA_VULKAN`).
    pub env: BTreeMap<String, String>,
    /// Memory a model may use, in bytes: most of the chosen GPUs' VRAM, else half the RAM.
    pub model_memory_bytes: u64,
    /// Where `model_memory_bytes` comes from: `vram` or `ram`.
    pub model_memory_source: &'static str,
    /// A coding model that roughly fits (quantised, with room for an 8k context), if any.
    pub suggested_model: Option<String>,
    /// Extra facts behind the choice (e.g. why an override is set).
    pub notes: Vec<String>,
}

impl Recommendation {
    /// The device mappings as bollard's `HostConfig.devices`.
    pub fn bollard_devices(&self) -> Vec<bollard::models::DeviceMapping> {
        self.devices
            .iter()
            .map(|d| bollard::models::DeviceMapping {
                path_on_host: Some(d.path_on_host.clone()),
                path_in_container: Some(d.path_in_container.clone()),
                cgroup_permissions: Some(d.cgroup_permissions.clone()),
            })
            .collect()
    }

    /// The device requests as bollard's `HostConfig.device_requests` (Docker only).
    pub fn bollard_device_requests(&self) -> Vec<bollard::models::DeviceRequest> {
        self.device_requests
            .iter()
            .map(|r| bollard::models::DeviceRequest {
                driver: Some(r.driver.clone()),
                count: Some(r.count),
                capabilities: Some(r.capabilities.clone()),
                ..Default::default()
            })
            .collect()
    }
}

/// Whether GPUs of `vendor` can be used, or why not (a sentence naming the fix): whether
/// any was found, then what the vendor's detection module requires (see [`gpu::usability`]).
pub fn usability(inventory: &GpuInventory, vendor: Accelerator) -> Result<(), String> {
    if vendor == Accelerator::None {
        return Ok(());
    }
    if !inventory.has_vendor(vendor) {
        return Err(format!(
            "no {} GPU was found (looked at /sys/class/drm/card*/device/vendor{})",
            vendor.display_name(),
            if vendor == Accelerator::Nvidia {
                " and nvidia-smi"
            } else {
                ""
            }
        ));
    }
    gpu::usability(inventory, vendor)
}

/// The preferred usable GPU for `--gpu auto`: discrete before integrated, then in the recipe
/// table's order (NVIDIA, AMD, Intel).
pub fn auto_choice(inventory: &GpuInventory) -> Option<&Gpu> {
    let rank = |gpu: &Gpu| {
        let form = match gpu.form_factor {
            FormFactor::Discrete => 0,
            FormFactor::Unknown => 1,
            FormFactor::Integrated => 2,
        };
        (form, recipe::preference(gpu.vendor))
    };
    inventory
        .gpus
        .iter()
        .filter(|gpu| usability(inventory, gpu.vendor).is_ok())
        .filter(|gpu| gpu::card_usable(gpu))
        .min_by_key(|gpu| rank(gpu))
}

/// A `--gpu` choice the host cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--gpu {requested} cannot be used: {reason}. Use --gpu auto to pick what the host has, or --gpu none for CPU only"
)]
pub struct GpuUnavailable {
    /// What was asked for.
    pub requested: &'static str,
    /// Why it cannot be used, with the fix.
    pub reason: String,
}

/// Chooses the accelerator and builds the container recipe for it.
pub fn recommend(
    inventory: &GpuInventory,
    resources: &HostResources,
    engine: Option<EngineKind>,
    choice: GpuChoice,
) -> Result<Recommendation, GpuUnavailable> {
    let (gpu, reason) = match choice {
        GpuChoice::Auto => match auto_choice(inventory) {
            Some(best) => {
                let label = describe(best);
                (best.vendor, format!("auto: {label} is the best usable GPU"))
            }
            None if inventory.gpus.is_empty() => (
                Accelerator::None,
                "auto: no GPU found, using the CPU".to_string(),
            ),
            None => (
                Accelerator::None,
                "auto: no GPU found is usable (see warnings), using the CPU".to_string(),
            ),
        },
        GpuChoice::Only(Accelerator::None) => {
            (Accelerator::None, "--gpu none: CPU only".to_string())
        }
        GpuChoice::Only(accelerator) => {
            usability(inventory, accelerator).map_err(|reason| GpuUnavailable {
                requested: accelerator.as_str(),
                reason,
            })?;
            (
                accelerator,
                format!("--gpu {}: requested", accelerator.as_str()),
            )
        }
    };
    Ok(build(inventory, resources, engine, gpu, reason))
}

/// The recipe of `accelerator` alone, for a machine other than this one (`export --gpu X`
/// where this host has no such GPU): no host-specific additions, no memory estimate.
pub fn for_target(accelerator: Accelerator, engine: Option<EngineKind>) -> Recommendation {
    let inventory = GpuInventory {
        gpus: Vec::new(),
        ignored_cards: Vec::new(),
        nvidia: None,
        amd: None,
    };
    let resources = HostResources {
        cpu_brand: None,
        logical_cpus: 0,
        memory_total_bytes: 0,
        memory_available_bytes: 0,
        source: "none",
    };
    let mut rec = build(
        &inventory,
        &resources,
        engine,
        accelerator,
        format!(
            "--gpu {}: the recipe for another machine (this one has no usable {} GPU)",
            accelerator.as_str(),
            accelerator.display_name()
        ),
    );
    rec.model_memory_source = "unknown";
    rec.suggested_model = None;
    rec
}

fn describe(gpu: &Gpu) -> String {
    let form = match gpu.form_factor {
        FormFactor::Discrete => " discrete",
        FormFactor::Integrated => " integrated",
        FormFactor::Unknown => "",
    };
    let at = gpu
        .pci_address
        .as_deref()
        .map_or(String::new(), |a| format!(" at {a}"));
    format!("the{form} {} GPU{at}", gpu.vendor.display_name())
}

fn build(
    inventory: &GpuInventory,
    resources: &HostResources,
    engine: Option<EngineKind>,
    gpu: Accelerator,
    reason: String,
) -> Recommendation {
    let chosen: Vec<&Gpu> = if gpu.is_gpu() {
        inventory.of_vendor(gpu).collect()
    } else {
        Vec::new()
    };
    let recipe = gpu.recipe();
    let mut recommendation = Recommendation {
        gpu,
        reason,
        image: recipe.image.clone(),
        gpu_pci_addresses: chosen
            .iter()
            .filter_map(|gpu| gpu.pci_address.clone())
            .collect(),
        devices: recipe
            .devices
            .iter()
            .map(|path| DeviceMapping::same_path(path))
            .collect(),
        // The runtime-hook forms, for the engines that take them (both when not probed).
        cdi_devices: if engine == Some(EngineKind::Docker) {
            Vec::new()
        } else {
            recipe.cdi_devices.clone()
        },
        device_requests: if engine == Some(EngineKind::Podman) {
            Vec::new()
        } else {
            recipe.docker_device_requests.clone()
        },
        group_add: recipe.groups.clone(),
        env: recipe.env.clone(),
        model_memory_bytes: 0,
        model_memory_source: "ram",
        suggested_model: None,
        notes: Vec::new(),
    };
    // What the vendor's detection adds for these particular GPUs (AMD: a gfx override).
    for (key, value, note) in gpu::extra_env(gpu, &chosen) {
        recommendation.env.insert(key, value);
        recommendation.notes.push(note);
    }

    let vram: u64 = chosen
        .iter()
        .filter(|gpu| gpu.form_factor != FormFactor::Integrated)
        .filter_map(|gpu| gpu.memory_bytes)
        .sum();
    if vram > 0 {
        recommendation.model_memory_bytes = vram / 10 * 9;
        recommendation.model_memory_source = "vram";
    } else {
        recommendation.model_memory_bytes = resources.memory_total_bytes / 2;
    }
    recommendation.suggested_model = suggest_model(recommendation.model_memory_bytes);
    recommendation
}

const GB: u64 = 1_000_000_000;

/// Rough download sizes (4-bit quantised) of a coding-model ladder.
const MODEL_LADDER: [(&str, u64); 6] = [
    ("qwen2.5-coder:32b", 20 * GB),
    ("qwen2.5-coder:14b", 9 * GB),
    ("qwen2.5-coder:7b", 47 * GB / 10),
    ("qwen2.5-coder:3b", 19 * GB / 10),
    ("qwen2.5-coder:1.5b", GB),
    ("qwen2.5-coder:0.5b", 4 * GB / 10),
];

/// The largest model of the ladder whose weights plus ~1 GB of context fit in `budget`.
pub fn suggest_model(budget: u64) -> Option<String> {
    MODEL_LADDER
        .iter()
        .find(|(_, size)| size + GB <= budget)
        .map(|(name, _)| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ladder() {
        assert_eq!(suggest_model(24 * GB).as_deref(), Some("qwen2.5-coder:32b"));
        assert_eq!(suggest_model(8 * GB).as_deref(), Some("qwen2.5-coder:7b"));
        assert_eq!(suggest_model(GB), None);
    }
}

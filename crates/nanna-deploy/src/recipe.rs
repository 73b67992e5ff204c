//! The per-accelerator recipe table, `images/gpu-recipes.json`: what the model server needs
//! for each kind of GPU (or the CPU). The same file is read by Nix (`images/lib.nix`: the
//! NixOS module, the images, the deploy app and the checks), so `up`, `export`, `detect`
//! and NixOS hosts cannot disagree. Adding a vendor is a row here plus a detection module
//! (`gpu/`) and its [`Accelerator`] variant.
//!
//! Where the values come from:
//! - PCI vendor ids: the PCI-SIG registry as the kernel's `include/linux/pci_ids.h` spells
//!   it (`PCI_VENDOR_ID_NVIDIA 0x10de`, `PCI_VENDOR_ID_ATI 0x1002`, `PCI_VENDOR_ID_INTEL
//!   0x8086`); sysfs writes them in `/sys/class/drm/card*/device/vendor`.
//! - Images: Ollama's `docs/docker.md` (`ollama/ollama` for CPU and NVIDIA,
//!   `ollama/ollama:rocm` for AMD, `OLLAMA_VULKAN=1` to use Vulkan) and its `Dockerfile`.
//! - Devices and groups: Ollama's `docs/docker.md` (`--device /dev/kfd --device /dev/dri`
//!   for ROCm) and the kernel's `drivers/gpu/drm` and `amdkfd` nodes, owned by `video` and
//!   `render` on Debian, Fedora and NixOS (`nixos/modules/misc/ids.nix`).
//! - NVIDIA: the container toolkit's CDI device `nvidia.com/gpu=all` (`nvidia-ctk cdi
//!   generate`), Docker's `--gpus all` as a device request (driver `nvidia`, count -1,
//!   capability `gpu`; moby `opts/gpus.go`), and `/dev/nvidiactl`, which the toolkit always
//!   mounts, as the proof that the GPU reached the container.
//! - Kubernetes resources: the device plugins' names, `nvidia.com/gpu`
//!   (NVIDIA/k8s-device-plugin), `amd.com/gpu` (ROCm/k8s-device-plugin),
//!   `gpu.intel.com/i915` (intel/intel-device-plugins-for-kubernetes, `cmd/gpu_plugin`);
//!   the `nvidia` RuntimeClass that the GPU Operator creates and that k3s and clusters
//!   whose default runtime is not NVIDIA's need (GPU Operator docs, "CDI support";
//!   k3s-io/k3s discussion 9705). Without it the pod would run without a GPU; with it a
//!   cluster lacking the class refuses the pod with a message that names it.
//! - Nix: nixpkgs' `ollama` package variants (`pkgs/by-name/ol/ollama/package.nix`:
//!   `ollama-cpu`, `ollama-cuda`, `ollama-rocm`, `ollama-vulkan`), systemd's `DeviceAllow=`
//!   device classes (`char-nvidiactl`..., as in nixpkgs' `services.ollama` unit) and the
//!   NVIDIA container toolkit module.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::accelerator::Accelerator;
use crate::recommend::GpuDeviceRequest;

/// The table as embedded at build time.
const RECIPES_JSON: &str = include_str!("../../../images/gpu-recipes.json");

/// One accelerator's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuRecipe {
    /// `--gpu` name, JSON and label value (`nvidia`).
    pub name: String,
    /// Name for people (`NVIDIA`).
    pub display_name: String,
    /// The compute stack (`CUDA`), `None` for the CPU.
    pub compute: Option<String>,
    /// Other names `--gpu` accepts (`cuda`).
    pub aliases: Vec<String>,
    /// PCI vendor ids of the GPUs (`0x10de`).
    pub pci_vendor_ids: Vec<String>,
    /// Model-server image.
    pub image: String,
    /// Model-server environment (`OLLAMA_VULKAN=1`).
    pub env: BTreeMap<String, String>,
    /// Device nodes mapped into the model server at the same path (`/dev/kfd`).
    pub devices: Vec<String>,
    /// Supplementary groups that own those nodes (`video`, `render`).
    pub groups: Vec<String>,
    /// CDI devices (Podman, NixOS containers, Docker >= 25 with CDI).
    pub cdi_devices: Vec<String>,
    /// Docker Engine device requests (`--gpus all`).
    pub docker_device_requests: Vec<GpuDeviceRequest>,
    /// Paths that must exist in the model server besides `devices` (proof of a GPU that
    /// arrives through a runtime hook rather than a device mapping).
    pub check_paths: Vec<String>,
    /// Kubernetes scheduling.
    pub kubernetes: KubernetesRecipe,
    /// Nix: packages, images, the NixOS module (read by `images/lib.nix`; kept here so the
    /// table is validated as a whole).
    pub nix: serde_json::Value,
}

/// How a GPU is requested from Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesRecipe {
    /// The device plugin's extended resource (`nvidia.com/gpu`); `None` for the CPU.
    pub resource: Option<String>,
    /// RuntimeClass the runtime hook needs (`nvidia`).
    pub runtime_class: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[allow(dead_code)]
    about: String,
    accelerators: Vec<GpuRecipe>,
}

static TABLE: LazyLock<Vec<GpuRecipe>> = LazyLock::new(|| {
    // The file is part of the build, not input: `tests::table_is_valid` proves it parses
    // and covers every accelerator, so this cannot fail in a tested build.
    serde_json::from_str::<Table>(RECIPES_JSON)
        .map(|table| table.accelerators)
        .unwrap_or_else(|e| panic!("images/gpu-recipes.json is invalid: {e}"))
});

/// Every recipe, in `--gpu auto`'s order of preference (the CPU last).
pub fn all() -> &'static [GpuRecipe] {
    &TABLE
}

/// The recipe of `accelerator`.
pub fn of(accelerator: Accelerator) -> &'static GpuRecipe {
    let name = accelerator.as_str();
    all()
        .iter()
        .find(|recipe| recipe.name == name)
        .unwrap_or_else(|| panic!("images/gpu-recipes.json has no row for {name}"))
}

/// Position of `accelerator` in `--gpu auto`'s order (0 is preferred).
pub fn preference(accelerator: Accelerator) -> usize {
    let name = accelerator.as_str();
    all()
        .iter()
        .position(|recipe| recipe.name == name)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accelerator::parse_hex_id;

    fn is_dns_subdomain(text: &str) -> bool {
        !text.is_empty()
            && text.len() <= 253
            && text.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    }

    #[test]
    fn table_is_valid() {
        let table: Table = serde_json::from_str(RECIPES_JSON).expect("parses");
        let names: Vec<&str> = table.accelerators.iter().map(|r| r.name.as_str()).collect();
        // One row per accelerator and one accelerator per row, the CPU last.
        let mut wanted: Vec<&str> = Accelerator::ALL.iter().map(|a| a.as_str()).collect();
        let mut got = names.clone();
        wanted.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, wanted, "rows and Accelerator variants differ");
        assert_eq!(names.last(), Some(&"none"));
        let mut ids = Vec::new();
        let mut words = Vec::new();
        for recipe in &table.accelerators {
            let gpu = recipe.name != "none";
            words.push(recipe.name.clone());
            words.extend(recipe.aliases.iter().cloned());
            assert_eq!(recipe.compute.is_some(), gpu, "{}: compute", recipe.name);
            assert_eq!(!recipe.pci_vendor_ids.is_empty(), gpu, "{}", recipe.name);
            for id in &recipe.pci_vendor_ids {
                assert!(id.starts_with("0x") && id.len() == 6, "{id}: write 0xNNNN");
                ids.push(parse_hex_id(id).expect("hex"));
            }
            // A GPU must reach the container somehow, and be checked once it has.
            let reaches = !recipe.devices.is_empty() || !recipe.cdi_devices.is_empty();
            assert_eq!(reaches, gpu, "{}: devices or CDI devices", recipe.name);
            assert_eq!(
                recipe.cdi_devices.is_empty(),
                recipe.docker_device_requests.is_empty(),
                "{}: a runtime-hook GPU needs both the CDI and the Docker form",
                recipe.name
            );
            if !recipe.cdi_devices.is_empty() {
                assert!(
                    !recipe.check_paths.is_empty(),
                    "{}: check_paths",
                    recipe.name
                );
            }
            for path in recipe.devices.iter().chain(&recipe.check_paths) {
                assert!(path.starts_with("/dev/"), "{path}: a device node");
            }
            for cdi in &recipe.cdi_devices {
                let (kind, device) = cdi.split_once('=').expect("vendor.com/class=name");
                assert!(kind.contains('/') && !device.is_empty(), "{cdi}");
            }
            for key in recipe.env.keys() {
                assert!(
                    key.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                    "{key}"
                );
            }
            assert!(
                recipe.image.starts_with("docker.io/ollama/ollama:"),
                "{}: an Ollama image, fully qualified (Podman has no default registry)",
                recipe.image
            );
            // Kubernetes: an extended resource is `domain/name` (a DNS subdomain, then a
            // name); only GPUs have one.
            match &recipe.kubernetes.resource {
                Some(resource) => {
                    let (domain, name) = resource.split_once('/').expect("domain/name");
                    assert!(is_dns_subdomain(domain) && !name.is_empty(), "{resource}");
                    assert!(gpu);
                }
                None => assert!(!gpu, "{}: no Kubernetes resource", recipe.name),
            }
            if let Some(class) = &recipe.kubernetes.runtime_class {
                assert!(is_dns_subdomain(class), "{class}");
            }
            let nix = &recipe.nix;
            for key in ["variant", "ollama_package"] {
                assert!(nix[key].is_string(), "{}: nix.{key}", recipe.name);
            }
            assert!(
                nix["ollama_package"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("ollama-")),
                "{}: a nixpkgs ollama variant",
                recipe.name
            );
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            table.accelerators.len() - 1,
            "PCI ids are unique"
        );
        words.sort_unstable();
        let all = words.len();
        words.dedup();
        assert_eq!(words.len(), all, "names and aliases are unique");
        assert!(!words.iter().any(|w| w == "auto"), "auto is a choice");
    }

    /// The rows agree with what their sources say (see the module docs); a change here is a
    /// change of behaviour, reviewed as such.
    #[test]
    fn rows_match_their_sources() {
        let nvidia = of(Accelerator::Nvidia);
        assert_eq!(nvidia.pci_vendor_ids, ["0x10de"]);
        assert_eq!(nvidia.cdi_devices, ["nvidia.com/gpu=all"]);
        assert_eq!(
            nvidia.docker_device_requests,
            [GpuDeviceRequest {
                driver: "nvidia".to_string(),
                count: -1,
                capabilities: vec![vec!["gpu".to_string()]],
            }]
        );
        assert_eq!(
            nvidia.kubernetes.resource.as_deref(),
            Some("nvidia.com/gpu")
        );
        let amd = of(Accelerator::Amd);
        assert_eq!(amd.image, "docker.io/ollama/ollama:rocm");
        assert_eq!(amd.devices, ["/dev/kfd", "/dev/dri"]);
        assert_eq!(amd.groups, ["video", "render"]);
        assert_eq!(amd.kubernetes.resource.as_deref(), Some("amd.com/gpu"));
        let intel = of(Accelerator::Intel);
        assert_eq!(
            intel.env.get("OLLAMA_VULKAN").map(String::as_str),
            Some("1")
        );
        assert_eq!(
            intel.kubernetes.resource.as_deref(),
            Some("gpu.intel.com/i915")
        );
        assert_eq!(
            of(Accelerator::None).image,
            "docker.io/ollama/ollama:latest"
        );
    }
}

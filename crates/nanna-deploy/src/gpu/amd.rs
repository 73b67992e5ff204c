//! AMD stack: `/dev/kfd` (ROCm's compute interface), the KFD topology (gfx targets, APU or
//! discrete) and the device groups the user needs.

use serde::Serialize;

use super::{CardFacts, FormFactor, Gpu, GpuInventory};
use crate::accelerator::Accelerator;
use crate::host::ProbeEnv;

const KFD_NODE: &str = "/dev/kfd";
const KFD_TOPOLOGY: &str = "/sys/class/kfd/kfd/topology/nodes";
/// An AMD GPU reporting less VRAM than this is taken for an APU's carve-out when the KFD
/// topology does not say.
pub(crate) const APU_VRAM_LIMIT: u64 = 2 * 1024 * 1024 * 1024;

/// gfx targets the ROCm build of the model server (`ollama/ollama:rocm`) ships kernels for.
const SUPPORTED_GFX: [&str; 14] = [
    "gfx900", "gfx906", "gfx908", "gfx90a", "gfx940", "gfx941", "gfx942", "gfx1030", "gfx1100",
    "gfx1101", "gfx1102", "gfx1151", "gfx1200", "gfx1201",
];

/// State of the AMD stack on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmdStatus {
    /// Whether `/dev/kfd` exists (ROCm cannot run without it).
    pub kfd_present: bool,
    /// gfx targets of the GPU nodes in the KFD topology (`gfx1100`).
    pub gfx_targets: Vec<String>,
    /// Device groups (`render`, `video`) that exist on the host but the user is not in.
    pub missing_groups: Vec<String>,
}

pub(crate) fn probe(env: &ProbeEnv, gpus: &mut [Gpu]) -> AmdStatus {
    let host = &env.host_root;
    let kfd_present = host.exists(KFD_NODE);
    let mut gfx_targets = Vec::new();
    for node in host.list_dir(KFD_TOPOLOGY) {
        let Ok(text) = host.read_to_string(format!("{KFD_TOPOLOGY}/{node}/properties")) else {
            continue;
        };
        let props = NodeProperties::parse(&text);
        let Some(gfx) = props.gfx_target() else {
            continue; // a CPU node
        };
        if !gfx_targets.contains(&gfx) {
            gfx_targets.push(gfx.clone());
        }
        let render = props
            .render_minor
            .map(|minor| format!("/dev/dri/renderD{minor}"));
        let matched = gpus.iter_mut().find(|gpu| {
            gpu.vendor == Accelerator::Amd && render.is_some() && gpu.render_node == render
        });
        if let Some(gpu) = matched {
            gpu.gfx_target = Some(gfx);
            if props.simd_count > 0 {
                gpu.form_factor = if props.cpu_cores_count > 0 {
                    FormFactor::Integrated
                } else {
                    FormFactor::Discrete
                };
            }
        }
    }
    AmdStatus {
        kfd_present,
        gfx_targets,
        missing_groups: missing_groups(env),
    }
}

/// VRAM from sysfs, and from it a first guess at the form factor (refined by the KFD
/// topology in [`probe`]).
pub(crate) fn card_facts(env: &ProbeEnv, device: &str) -> CardFacts {
    let memory_bytes = env
        .host_root
        .read_trimmed(format!("{device}/mem_info_vram_total"))
        .and_then(|text| text.parse::<u64>().ok());
    let form_factor = match memory_bytes {
        Some(bytes) if bytes < APU_VRAM_LIMIT => FormFactor::Integrated,
        Some(_) => FormFactor::Discrete,
        None => FormFactor::Unknown,
    };
    CardFacts {
        memory_bytes,
        form_factor,
    }
}

/// ROCm needs `/dev/kfd`.
pub(crate) fn usability(inventory: &GpuInventory) -> Result<(), String> {
    if inventory.amd.as_ref().is_some_and(|amd| amd.kfd_present) {
        Ok(())
    } else {
        Err(
            "an AMD GPU is present but /dev/kfd is missing, so ROCm cannot use it: \
             load amdgpu with KFD support (`sudo modprobe amdgpu`, kernel with \
             CONFIG_HSA_AMD)"
                .to_string(),
        )
    }
}

/// `HSA_OVERRIDE_GFX_VERSION` when every chosen GPU needs the same stand-in target.
pub(crate) fn extra_env(chosen: &[&Gpu]) -> Vec<(String, String, String)> {
    let overrides: Vec<(&str, &str)> = chosen
        .iter()
        .filter_map(|gpu| gpu.gfx_target.as_deref())
        .filter_map(|gfx| hsa_override(gfx).map(|ov| (gfx, ov)))
        .collect();
    match overrides.first() {
        Some((gfx, value)) if overrides.iter().all(|(_, other)| other == value) => vec![(
            "HSA_OVERRIDE_GFX_VERSION".to_string(),
            value.to_string(),
            format!(
                "HSA_OVERRIDE_GFX_VERSION={value}: the ROCm build ships no kernels for {gfx}, \
                 the nearest supported target is used"
            ),
        )],
        _ => Vec::new(),
    }
}

/// The fields of a KFD topology node's `properties` file that detection uses.
#[derive(Debug, Default, PartialEq, Eq)]
struct NodeProperties {
    gfx_target_version: u64,
    render_minor: Option<u64>,
    cpu_cores_count: u64,
    simd_count: u64,
}

impl NodeProperties {
    fn parse(text: &str) -> Self {
        let mut props = Self::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(key), Some(value)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(value) = value.parse::<u64>() else {
                continue;
            };
            match key {
                "gfx_target_version" => props.gfx_target_version = value,
                "drm_render_minor" => props.render_minor = Some(value),
                "cpu_cores_count" => props.cpu_cores_count = value,
                "simd_count" => props.simd_count = value,
                _ => {}
            }
        }
        props
    }

    fn gfx_target(&self) -> Option<String> {
        gfx_name(self.gfx_target_version)
    }
}

/// `gfx_target_version` (major*10000 + minor*100 + stepping) as a gfx name:
/// 110000 -> `gfx1100`, 90010 -> `gfx90a`. `None` for 0 (CPU nodes).
pub fn gfx_name(version: u64) -> Option<String> {
    if version == 0 {
        return None;
    }
    let major = version / 10000;
    let minor = (version / 100) % 100;
    let stepping = version % 100;
    Some(format!("gfx{major}{minor:x}{stepping:x}"))
}

/// Whether the ROCm model-server build ships kernels for `gfx_target`.
pub fn rocm_supported(gfx_target: &str) -> bool {
    SUPPORTED_GFX.contains(&gfx_target)
}

/// The `HSA_OVERRIDE_GFX_VERSION` that lets the ROCm build run on a gfx target it ships no
/// kernels for, by borrowing the nearest supported target of the same family. `None` when
/// the target is supported or no safe stand-in is known. A heuristic, from community
/// practice with RDNA2/RDNA3 cards and APUs.
pub fn hsa_override(gfx_target: &str) -> Option<&'static str> {
    if rocm_supported(gfx_target) {
        return None;
    }
    if gfx_target.starts_with("gfx103") {
        Some("10.3.0")
    } else if gfx_target.starts_with("gfx110") {
        Some("11.0.0")
    } else if gfx_target.starts_with("gfx90") {
        Some("9.0.0")
    } else {
        None
    }
}

/// Device groups that exist in the host's `/etc/group` and that the user is not in; empty
/// for root.
fn missing_groups(env: &ProbeEnv) -> Vec<String> {
    let user = &env.user;
    if user.is_root() {
        return Vec::new();
    }
    let mut missing = Vec::new();
    for group in env.host_root.groups() {
        // The groups that own /dev/kfd and the render nodes: the recipe's.
        if !Accelerator::Amd.recipe().groups.contains(&group.name) {
            continue;
        }
        let listed = user
            .name
            .as_ref()
            .is_some_and(|name| group.members.contains(name));
        if !user.gids.contains(&group.gid) && !listed {
            missing.push(group.name);
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gfx_names() {
        assert_eq!(gfx_name(110000).as_deref(), Some("gfx1100"));
        assert_eq!(gfx_name(100300).as_deref(), Some("gfx1030"));
        assert_eq!(gfx_name(90010).as_deref(), Some("gfx90a"));
        assert_eq!(gfx_name(90402).as_deref(), Some("gfx942"));
        assert_eq!(gfx_name(0), None);
    }

    #[test]
    fn overrides_only_for_unsupported_targets() {
        assert_eq!(hsa_override("gfx1100"), None);
        assert_eq!(hsa_override("gfx1031"), Some("10.3.0"));
        assert_eq!(hsa_override("gfx1103"), Some("11.0.0"));
        assert_eq!(hsa_override("gfx90c"), Some("9.0.0"));
        assert_eq!(hsa_override("gfx1010"), None);
    }

    #[test]
    fn parses_topology_properties() {
        let props = NodeProperties::parse(
            "cpu_cores_count 0\nsimd_count 192\ngfx_target_version 110000\ndrm_render_minor 128\nbogus\n",
        );
        assert_eq!(props.gfx_target().as_deref(), Some("gfx1100"));
        assert_eq!(props.render_minor, Some(128));
        assert_eq!(props.simd_count, 192);
    }
}

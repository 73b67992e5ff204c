//! NVIDIA stack: kernel driver, device nodes, `nvidia-smi` and CDI specs for containers.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::debug;

use super::{CardFacts, FormFactor, Gpu, GpuInventory, normalize_pci_address};
use crate::accelerator::Accelerator;
use crate::host::ProbeEnv;

/// Directories searched for CDI specs (Container Device Interface).
pub const CDI_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];
/// The CDI kind NVIDIA's toolkit generates.
pub const CDI_KIND: &str = "nvidia.com/gpu";
const DRIVER_VERSION_FILE: &str = "/proc/driver/nvidia/version";
const MIB: u64 = 1024 * 1024;

/// State of the NVIDIA stack on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NvidiaStatus {
    /// Whether the kernel driver is loaded (`/proc/driver/nvidia/version` exists).
    pub driver_loaded: bool,
    /// Driver version from `/proc/driver/nvidia/version`, when loaded.
    pub driver_version: Option<String>,
    /// NVIDIA device nodes present under `/dev` (`/dev/nvidiactl`, `/dev/nvidia0`, …).
    pub device_nodes: Vec<String>,
    /// Path of `nvidia-smi`, when it is on the tool path.
    pub nvidia_smi: Option<String>,
    /// Why `nvidia-smi` gave nothing, when it was run and failed.
    pub nvidia_smi_error: Option<String>,
    /// CDI spec files that define `nvidia.com/gpu` devices.
    pub cdi_specs: Vec<String>,
}

impl NvidiaStatus {
    /// Whether `/dev/nvidiactl` and `/dev/nvidia-uvm` both exist (CUDA needs both).
    pub fn has_control_nodes(&self) -> bool {
        ["/dev/nvidiactl", "/dev/nvidia-uvm"]
            .iter()
            .all(|node| self.device_nodes.iter().any(|present| present == node))
    }
}

/// NVIDIA makes discrete GPUs only (Tegra has no PCI DRM card); memory comes from
/// `nvidia-smi`.
pub(crate) fn card_facts() -> CardFacts {
    CardFacts {
        memory_bytes: None,
        form_factor: FormFactor::Discrete,
    }
}

/// Whether the NVIDIA driver answers: the kernel module is loaded, or `nvidia-smi` reported
/// GPUs (e.g. WSL, where `/proc/driver/nvidia` does not exist).
pub(crate) fn driver_usable(inventory: &GpuInventory) -> bool {
    inventory.nvidia.as_ref().is_some_and(|nvidia| {
        nvidia.driver_loaded
            || (nvidia.nvidia_smi_error.is_none()
                && nvidia.nvidia_smi.is_some()
                && inventory
                    .of_vendor(Accelerator::Nvidia)
                    .any(|gpu| gpu.uuid.is_some()))
    })
}

/// CUDA needs the proprietary driver.
pub(crate) fn usability(inventory: &GpuInventory) -> Result<(), String> {
    if driver_usable(inventory) {
        return Ok(());
    }
    let bound = inventory
        .of_vendor(Accelerator::Nvidia)
        .find_map(|gpu| gpu.driver.clone().filter(|d| d != "nvidia"));
    Err(format!(
        "an NVIDIA GPU is present but the NVIDIA driver is not loaded \
         (no /proc/driver/nvidia/version{}): install the proprietary driver and \
         load it (`sudo modprobe nvidia`; NixOS: services.xserver.videoDrivers = [\"nvidia\"])",
        bound.map_or(String::new(), |d| format!("; the card is bound to `{d}`"))
    ))
}

/// One line of `nvidia-smi --query-gpu=name,memory.total,uuid,pci.bus_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmiGpu {
    /// Product name.
    pub name: String,
    /// Total memory in bytes (`nvidia-smi` reports MiB), when reported.
    pub memory_bytes: Option<u64>,
    /// GPU UUID.
    pub uuid: Option<String>,
    /// Normalised PCI address.
    pub pci_address: Option<String>,
}

/// Probes the NVIDIA stack and enriches `gpus` with what `nvidia-smi` reports. Returns
/// `None` when there is no trace of NVIDIA at all.
pub(crate) fn probe(env: &ProbeEnv, gpus: &mut Vec<Gpu>, has_card: bool) -> Option<NvidiaStatus> {
    let host = &env.host_root;
    let driver_version = host
        .read_to_string(DRIVER_VERSION_FILE)
        .ok()
        .map(|text| parse_driver_version(&text).unwrap_or_else(|| "unknown".to_string()));
    let driver_loaded = driver_version.is_some();
    let smi = env.find_tool("nvidia-smi");
    let no_cards = gpus.is_empty();
    let worth_probing = has_card || driver_loaded || (no_cards && smi.is_some());
    if !worth_probing {
        return None;
    }

    let mut nvidia_smi_error = None;
    if let Some(path) = &smi {
        match run_smi(path, env.tool_timeout) {
            Ok(output) => merge_smi(gpus, parse_smi(&output)),
            Err(error) => {
                debug!(%error, "nvidia-smi failed");
                nvidia_smi_error = Some(error);
            }
        }
    }
    if !has_card && !gpus.iter().any(|gpu| gpu.vendor == Accelerator::Nvidia) && !driver_loaded {
        // nvidia-smi is installed but reports nothing and there is no driver: no NVIDIA here.
        return None;
    }

    let device_nodes = host
        .list_dir("/dev")
        .into_iter()
        .filter(|name| is_nvidia_node(name))
        .map(|name| format!("/dev/{name}"))
        .collect();
    Some(NvidiaStatus {
        driver_loaded,
        driver_version,
        device_nodes,
        nvidia_smi: smi.map(|path| path.display().to_string()),
        nvidia_smi_error,
        cdi_specs: find_cdi_specs(env),
    })
}

fn is_nvidia_node(name: &str) -> bool {
    match name.strip_prefix("nvidia") {
        Some("ctl") | Some("-uvm") => true,
        Some(rest) => !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Extracts the version from `/proc/driver/nvidia/version`
/// (`NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb …`).
fn parse_driver_version(text: &str) -> Option<String> {
    let line = text.lines().find(|line| line.starts_with("NVRM"))?;
    let after = line.split("Kernel Module").nth(1).unwrap_or(line);
    after
        .split_whitespace()
        .find(|word| word.contains('.') && word.bytes().next().is_some_and(|b| b.is_ascii_digit()))
        .map(str::to_string)
}

/// CDI spec files (YAML or JSON) under [`CDI_DIRS`] that mention [`CDI_KIND`], as host paths.
pub fn find_cdi_specs(env: &ProbeEnv) -> Vec<String> {
    let host = &env.host_root;
    let mut specs: Vec<String> = Vec::new();
    let mut seen = Vec::new();
    for dir in CDI_DIRS {
        let Ok(real_dir) = host.resolve(dir) else {
            continue;
        };
        if seen.contains(&real_dir) {
            continue;
        }
        seen.push(real_dir);
        for name in host.list_dir(dir) {
            let is_spec = [".yaml", ".yml", ".json"]
                .iter()
                .any(|ext| name.ends_with(ext));
            if !is_spec {
                continue;
            }
            let path = format!("{dir}/{name}");
            if host
                .read_to_string(&path)
                .is_ok_and(|text| text.contains(CDI_KIND))
            {
                specs.push(path);
            }
        }
    }
    specs
}

/// Runs `nvidia-smi` with a deadline; returns its stdout or a one-line reason.
fn run_smi(path: &Path, timeout: Duration) -> Result<String, String> {
    let mut child = Command::new(path)
        .args([
            "--query-gpu=name,memory.total,uuid,pci.bus_id",
            "--format=csv,noheader,nounits",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run {}: {error}", path.display()))?;
    let stdout = child.stdout.take().map(read_in_background);
    let stderr = child.stderr.take().map(read_in_background);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not answer within {} ms (driver hung?)",
                    path.display(),
                    timeout.as_millis()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(error) => return Err(format!("waiting for {}: {error}", path.display())),
        }
    };
    let stdout = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        let reason = stderr
            .lines()
            .chain(stdout.lines())
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("no output")
            .to_string();
        Err(format!("nvidia-smi exited with {status}: {reason}"))
    }
}

fn read_in_background(mut source: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = source.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Parses `nvidia-smi --query-gpu=name,memory.total,uuid,pci.bus_id --format=csv,noheader,nounits`
/// output. Lines that do not have the four fields are skipped.
pub fn parse_smi(output: &str) -> Vec<SmiGpu> {
    output
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() < 4 {
                return None;
            }
            // A name could contain commas: the last three fields are fixed.
            let n = fields.len();
            let name = fields[..n - 3].join(", ");
            let known = |value: &str| !value.is_empty() && !value.starts_with('[');
            Some(SmiGpu {
                name,
                memory_bytes: fields[n - 3]
                    .parse::<u64>()
                    .ok()
                    .map(|mib| mib.saturating_mul(MIB)),
                uuid: Some(fields[n - 2].to_string()).filter(|v| known(v)),
                pci_address: normalize_pci_address(fields[n - 1]),
            })
        })
        .collect()
}

/// Fills names, memory and UUIDs of sysfs GPUs from `nvidia-smi`, matching by PCI address;
/// GPUs only `nvidia-smi` knows (no DRM card, e.g. WSL or a container) are appended.
fn merge_smi(gpus: &mut Vec<Gpu>, reported: Vec<SmiGpu>) {
    for smi in reported {
        let existing = gpus.iter_mut().find(|gpu| {
            gpu.vendor == Accelerator::Nvidia
                && smi.pci_address.is_some()
                && gpu.pci_address.as_deref().and_then(normalize_pci_address) == smi.pci_address
        });
        match existing {
            Some(gpu) => {
                gpu.name = Some(smi.name);
                gpu.memory_bytes = smi.memory_bytes.or(gpu.memory_bytes);
                gpu.uuid = smi.uuid;
            }
            None => gpus.push(Gpu {
                card: None,
                vendor: Accelerator::Nvidia,
                device_id: None,
                name: Some(smi.name),
                pci_address: smi.pci_address,
                driver: Some("nvidia".to_string()),
                render_node: None,
                memory_bytes: smi.memory_bytes,
                form_factor: FormFactor::Discrete,
                boot_vga: false,
                uuid: smi.uuid,
                gfx_target: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_smi_lines() {
        let out = "NVIDIA GeForce RTX 4090, 24564, GPU-0b1c, 00000000:01:00.0\n\
                   Tesla T4, [N/A], [N/A], 00000000:3B:00.0\n\
                   garbage line\n";
        let gpus = parse_smi(out);
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].name, "NVIDIA GeForce RTX 4090");
        assert_eq!(gpus[0].memory_bytes, Some(24564 * MIB));
        assert_eq!(gpus[0].uuid.as_deref(), Some("GPU-0b1c"));
        assert_eq!(gpus[0].pci_address.as_deref(), Some("0000:01:00.0"));
        assert_eq!(gpus[1].memory_bytes, None);
        assert_eq!(gpus[1].uuid, None);
        assert_eq!(gpus[1].pci_address.as_deref(), Some("0000:3b:00.0"));
    }

    #[test]
    fn parses_driver_version() {
        let text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\nGCC version:  gcc version 12.2.0\n";
        assert_eq!(parse_driver_version(text).as_deref(), Some("550.54.14"));
        assert_eq!(parse_driver_version("nonsense"), None);
    }

    #[test]
    fn recognises_device_nodes() {
        assert!(is_nvidia_node("nvidiactl"));
        assert!(is_nvidia_node("nvidia0"));
        assert!(is_nvidia_node("nvidia12"));
        assert!(is_nvidia_node("nvidia-uvm"));
        assert!(!is_nvidia_node("nvidia-uvm-tools"));
        assert!(!is_nvidia_node("nvidia"));
        assert!(!is_nvidia_node("nvidia-caps"));
    }
}

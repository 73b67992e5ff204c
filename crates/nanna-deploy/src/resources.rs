//! Host CPU and memory, used to say what model size fits when there is no usable GPU memory.

use serde::Serialize;
use sysinfo::{CpuRefreshKind, System};

use crate::host::ProbeEnv;

/// CPU and memory of the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostResources {
    /// CPU model name, when known.
    pub cpu_brand: Option<String>,
    /// Logical CPUs.
    pub logical_cpus: usize,
    /// Total memory in bytes (0 when unknown).
    pub memory_total_bytes: u64,
    /// Memory available to new processes, in bytes (0 when unknown).
    pub memory_available_bytes: u64,
    /// Where the figures come from: `sysinfo` (this machine) or `host-root` (`/proc` below
    /// the host root).
    pub source: &'static str,
}

/// Reads CPU and memory. With the real `/` as host root this asks `sysinfo` (memory and the
/// CPU list only); with another root it parses that root's `/proc/meminfo` and
/// `/proc/cpuinfo`, falling back to `sysinfo` when they are absent.
pub fn probe(env: &ProbeEnv) -> HostResources {
    if !env.host_root.is_system_root()
        && let Some(resources) = from_host_proc(env)
    {
        return resources;
    }
    from_sysinfo()
}

fn from_sysinfo() -> HostResources {
    let Ok(mut system) = System::new() else {
        return HostResources {
            cpu_brand: None,
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_total_bytes: 0,
            memory_available_bytes: 0,
            source: "sysinfo",
        };
    };
    system.refresh_memory();
    system.refresh_cpu_list(CpuRefreshKind::nothing());
    let cpus = system.cpus();
    HostResources {
        cpu_brand: cpus
            .first()
            .map(|cpu| cpu.brand().trim().to_string())
            .filter(|brand| !brand.is_empty()),
        logical_cpus: cpus.len().max(1),
        memory_total_bytes: system.total_memory(),
        memory_available_bytes: system.available_memory(),
        source: "sysinfo",
    }
}

fn from_host_proc(env: &ProbeEnv) -> Option<HostResources> {
    let meminfo = env.host_root.read_to_string("/proc/meminfo").ok()?;
    let kib = |key: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib.saturating_mul(1024))
    };
    let cpuinfo = env
        .host_root
        .read_to_string("/proc/cpuinfo")
        .unwrap_or_default();
    let logical_cpus = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let cpu_brand = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, value)| value.trim().to_string());
    Some(HostResources {
        cpu_brand,
        logical_cpus: logical_cpus.max(1),
        memory_total_bytes: kib("MemTotal"),
        memory_available_bytes: kib("MemAvailable"),
        source: "host-root",
    })
}

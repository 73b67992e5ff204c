//! Builds fake host trees (sysfs, /dev, /proc, /etc entries as plain files and symlinks) for
//! detection tests and the benchmark. Links are made the way the kernel lays them out: some
//! relative, some absolute within the root, so resolution must stay inside the fixture.
#![allow(dead_code)]

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// One DRM card to create.
#[derive(Clone, Copy)]
pub struct Card<'a> {
    /// Card number (`card{n}`).
    pub n: u32,
    /// Content of the vendor file, as sysfs writes it (`0x10de`).
    pub vendor: &'a str,
    /// Content of the device file.
    pub device: &'a str,
    /// PCI address.
    pub pci: &'a str,
    /// Bound kernel driver.
    pub driver: Option<&'a str>,
    /// Render node minor (128 -> renderD128).
    pub render_minor: Option<u32>,
    /// boot_vga flag.
    pub boot_vga: bool,
    /// AMD mem_info_vram_total.
    pub vram: Option<u64>,
}

impl<'a> Card<'a> {
    pub fn new(n: u32, vendor: &'a str, device: &'a str, pci: &'a str) -> Self {
        Self {
            n,
            vendor,
            device,
            pci,
            driver: None,
            render_minor: Some(128 + n),
            boot_vga: false,
            vram: None,
        }
    }
    pub fn driver(mut self, driver: &'a str) -> Self {
        self.driver = Some(driver);
        self
    }
    pub fn vram(mut self, bytes: u64) -> Self {
        self.vram = Some(bytes);
        self
    }
    pub fn boot_vga(mut self) -> Self {
        self.boot_vga = true;
        self
    }
    pub fn no_render(mut self) -> Self {
        self.render_minor = None;
        self
    }
}

pub const GIB: u64 = 1024 * 1024 * 1024;

/// A fake host root in a temporary directory.
pub struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// An empty host with /sys/class/drm, /dev/dri, /etc/group (render, video), 16 GiB RAM,
    /// 8 CPUs and `/var/run -> /run` (an absolute link).
    pub fn new() -> Self {
        let fixture = Self {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        fixture.mkdir("sys/class/drm");
        fixture.mkdir("dev/dri");
        fixture.mkdir("run");
        fixture.mkdir("var");
        fixture.mkdir("bin");
        symlink("/run", fixture.path("var/run")).expect("var/run link");
        fixture.write(
            "etc/group",
            "root:x:0:\nvideo:x:44:\nrender:x:105:\nalice:x:1000:\n",
        );
        fixture.meminfo(16 * GIB);
        let mut cpuinfo = String::new();
        for i in 0..8 {
            cpuinfo.push_str(&format!(
                "processor\t: {i}\nmodel name\t: Fixture CPU 9000\n\n"
            ));
        }
        fixture.write("proc/cpuinfo", &cpuinfo);
        fixture
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path below the root (`rel` without a leading slash).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel.trim_start_matches('/'))
    }

    /// The fixture's tool directory (for fake `nvidia-smi`, `podman`).
    pub fn bin(&self) -> PathBuf {
        self.path("bin")
    }

    pub fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.path(rel)).expect("mkdir");
    }

    pub fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir parent");
        }
        std::fs::write(path, content).expect("write");
    }

    pub fn meminfo(&self, total: u64) {
        self.write(
            "proc/meminfo",
            &format!(
                "MemTotal:       {} kB\nMemFree:        1000 kB\nMemAvailable:   {} kB\n",
                total / 1024,
                total / 2048
            ),
        );
    }

    /// Creates a DRM card the way sysfs lays it out, plus a connector entry and /dev nodes.
    pub fn card(&self, card: Card<'_>) {
        let bus_dir = format!("sys/devices/pci0000:00/{}", card.pci);
        self.write(&format!("{bus_dir}/vendor"), &format!("{}\n", card.vendor));
        self.write(&format!("{bus_dir}/device"), &format!("{}\n", card.device));
        self.write(
            &format!("{bus_dir}/boot_vga"),
            if card.boot_vga { "1\n" } else { "0\n" },
        );
        if let Some(vram) = card.vram {
            self.write(
                &format!("{bus_dir}/mem_info_vram_total"),
                &format!("{vram}\n"),
            );
        }
        if let Some(driver) = card.driver {
            self.mkdir(&format!("sys/bus/pci/drivers/{driver}"));
            symlink(
                format!("../../../bus/pci/drivers/{driver}"),
                self.path(&format!("{bus_dir}/driver")),
            )
            .expect("driver link");
        }
        let card_dir = format!("{bus_dir}/drm/card{}", card.n);
        self.mkdir(&card_dir);
        // Absolute within the root: resolution must not leave the fixture.
        symlink(
            format!("/{bus_dir}"),
            self.path(&format!("{card_dir}/device")),
        )
        .expect("device link");
        symlink(
            format!("../../devices/pci0000:00/{}/drm/card{}", card.pci, card.n),
            self.path(&format!("sys/class/drm/card{}", card.n)),
        )
        .expect("class link");
        let connector = format!("{bus_dir}/drm/card{}/card{}-DP-1", card.n, card.n);
        self.mkdir(&connector);
        symlink(
            format!(
                "../../devices/pci0000:00/{}/drm/card{}/card{}-DP-1",
                card.pci, card.n, card.n
            ),
            self.path(&format!("sys/class/drm/card{}-DP-1", card.n)),
        )
        .expect("connector link");
        self.write(&format!("dev/dri/card{}", card.n), "");
        if let Some(minor) = card.render_minor {
            self.mkdir(&format!("{bus_dir}/drm/renderD{minor}"));
            symlink(
                format!("../../devices/pci0000:00/{}/drm/renderD{minor}", card.pci),
                self.path(&format!("sys/class/drm/renderD{minor}")),
            )
            .expect("render link");
            self.write(&format!("dev/dri/renderD{minor}"), "");
        }
    }

    /// A firmware framebuffer card (no PCI vendor file), as `simpledrm` creates.
    pub fn simple_framebuffer(&self, n: u32) {
        let dev = "sys/devices/platform/simple-framebuffer.0";
        self.mkdir(&format!("{dev}/drm/card{n}"));
        symlink(
            "../../../simple-framebuffer.0",
            self.path(&format!("{dev}/drm/card{n}/device")),
        )
        .expect("fb device link");
        symlink(
            format!("../../devices/platform/simple-framebuffer.0/drm/card{n}"),
            self.path(&format!("sys/class/drm/card{n}")),
        )
        .expect("fb class link");
    }

    /// NVIDIA kernel driver loaded, with device nodes for `gpus` GPUs.
    pub fn nvidia_driver(&self, gpus: u32) {
        self.write(
            "proc/driver/nvidia/version",
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\nGCC version:  gcc version 12.2.0\n",
        );
        self.write("dev/nvidiactl", "");
        self.write("dev/nvidia-uvm", "");
        self.write("dev/nvidia-uvm-tools", "");
        for i in 0..gpus {
            self.write(&format!("dev/nvidia{i}"), "");
        }
    }

    /// A CDI spec for nvidia.com/gpu at `rel` (e.g. `etc/cdi/nvidia.yaml`).
    pub fn nvidia_cdi(&self, rel: &str) {
        self.write(
            rel,
            "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0\"\n- name: all\n",
        );
    }

    /// `/dev/kfd` present.
    pub fn kfd(&self) {
        self.write("dev/kfd", "");
    }

    /// A KFD topology node (`gfx_version` 0 for a CPU node).
    pub fn kfd_node(
        &self,
        index: u32,
        gfx_version: u64,
        render_minor: u32,
        cpu_cores: u32,
        simd: u32,
    ) {
        self.write(
            &format!("sys/class/kfd/kfd/topology/nodes/{index}/properties"),
            &format!(
                "cpu_cores_count {cpu_cores}\nsimd_count {simd}\nmem_banks_count 1\n\
                 gfx_target_version {gfx_version}\nvendor_id 4098\ndrm_render_minor {render_minor}\n"
            ),
        );
    }

    /// An executable script in the fixture's tool directory.
    pub fn tool(&self, name: &str, script: &str) {
        let path = self.bin().join(name);
        std::fs::write(&path, script).expect("write tool");
        let mut perms = std::fs::metadata(&path).expect("stat tool").permissions();
        perms.set_mode(0o755);
        std::fs::set_permissions(&path, perms).expect("chmod tool");
    }

    /// A fake `nvidia-smi` that prints `lines` for the documented query and fails otherwise.
    pub fn fake_nvidia_smi(&self, lines: &[&str]) {
        let body = lines.join("\n");
        self.tool(
            "nvidia-smi",
            &format!(
                "#!/bin/sh\n\
                 [ \"$1\" = \"--query-gpu=name,memory.total,uuid,pci.bus_id\" ] || exit 3\n\
                 [ \"$2\" = \"--format=csv,noheader,nounits\" ] || exit 4\n\
                 cat <<'EOF'\n{body}\nEOF\n"
            ),
        );
    }
}

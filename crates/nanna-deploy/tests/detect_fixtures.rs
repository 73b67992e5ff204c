//! Detection against fake host trees, through the library.

mod common;

use common::fixture::{Card, Fixture, GIB};
use nanna_deploy::detect::{DetectError, Detection, detect_offline};
use nanna_deploy::engine::EngineKind;
use nanna_deploy::gpu::FormFactor;
use nanna_deploy::host::{HostRoot, ProbeEnv, UserIdentity};
use nanna_deploy::recommend;
use nanna_deploy::{Accelerator, GpuChoice};

const MIB: u64 = 1024 * 1024;

fn env_for(fixture: &Fixture) -> ProbeEnv {
    let mut env = ProbeEnv::isolated(HostRoot::new(fixture.root()));
    env.tool_path = Some(fixture.bin().into_os_string());
    env.user = UserIdentity {
        uid: Some(0),
        name: Some("root".into()),
        gids: vec![0],
    };
    env
}

fn run(fixture: &Fixture, gpu: GpuChoice) -> Result<Detection, DetectError> {
    detect_offline(&env_for(fixture), gpu)
}

fn codes(detection: &Detection) -> Vec<&'static str> {
    detection.warnings.iter().map(|w| w.code).collect()
}

fn nvidia_card(n: u32, pci: &str) -> Card<'_> {
    Card::new(n, "0x10de", "0x2684", pci).driver("nvidia")
}

#[test]
fn one_nvidia_gpu_with_driver_and_cdi() {
    let fx = Fixture::new();
    fx.simple_framebuffer(0);
    fx.card(nvidia_card(1, "0000:01:00.0").boot_vga());
    fx.nvidia_driver(1);
    fx.nvidia_cdi("etc/cdi/nvidia.yaml");
    fx.fake_nvidia_smi(&["NVIDIA GeForce RTX 4090, 24564, GPU-aaaa-1111, 00000000:01:00.0"]);

    let d = run(&fx, GpuChoice::Auto).unwrap();
    assert_eq!(d.inventory.gpus.len(), 1);
    let gpu = &d.inventory.gpus[0];
    assert_eq!(gpu.card.as_deref(), Some("card1"));
    assert_eq!(gpu.vendor, Accelerator::Nvidia);
    assert_eq!(gpu.device_id.as_deref(), Some("0x2684"));
    assert_eq!(gpu.pci_address.as_deref(), Some("0000:01:00.0"));
    assert_eq!(gpu.driver.as_deref(), Some("nvidia"));
    assert_eq!(gpu.render_node.as_deref(), Some("/dev/dri/renderD129"));
    assert_eq!(gpu.memory_bytes, Some(24564 * MIB));
    assert_eq!(gpu.name.as_deref(), Some("NVIDIA GeForce RTX 4090"));
    assert_eq!(gpu.uuid.as_deref(), Some("GPU-aaaa-1111"));
    assert_eq!(gpu.form_factor, FormFactor::Discrete);
    assert!(gpu.boot_vga);
    // The firmware framebuffer is listed as ignored, without a warning.
    assert_eq!(d.inventory.ignored_cards.len(), 1);
    assert_eq!(d.inventory.ignored_cards[0].card, "card0");
    assert_eq!(
        d.inventory.ignored_cards[0].pci_address.as_deref(),
        Some("simple-framebuffer.0")
    );

    let nvidia = d.inventory.nvidia.as_ref().unwrap();
    assert!(nvidia.driver_loaded);
    assert_eq!(nvidia.driver_version.as_deref(), Some("550.54.14"));
    assert_eq!(
        nvidia.device_nodes,
        vec!["/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidiactl"]
    );
    assert_eq!(nvidia.cdi_specs, vec!["/etc/cdi/nvidia.yaml"]);
    assert!(
        codes(&d).is_empty(),
        "unexpected warnings: {:?}",
        d.warnings
    );

    let rec = &d.recommendation;
    assert_eq!(rec.gpu, Accelerator::Nvidia);
    assert_eq!(rec.image, "docker.io/ollama/ollama:latest");
    // Engine unknown: both mechanisms are given.
    assert_eq!(rec.cdi_devices, vec!["nvidia.com/gpu=all"]);
    assert_eq!(rec.device_requests.len(), 1);
    assert_eq!(rec.model_memory_source, "vram");
    assert_eq!(rec.model_memory_bytes, 24564 * MIB / 10 * 9);
    assert_eq!(rec.suggested_model.as_deref(), Some("qwen2.5-coder:32b"));
    assert!(rec.devices.is_empty());

    // Per engine, only the mechanism that engine honours.
    let podman = recommend::recommend(
        &d.inventory,
        &d.host,
        Some(EngineKind::Podman),
        GpuChoice::Auto,
    )
    .unwrap();
    assert_eq!(podman.cdi_devices, vec!["nvidia.com/gpu=all"]);
    assert!(podman.device_requests.is_empty());
    let docker = recommend::recommend(
        &d.inventory,
        &d.host,
        Some(EngineKind::Docker),
        GpuChoice::Auto,
    )
    .unwrap();
    assert!(docker.cdi_devices.is_empty());
    let requests = docker.bollard_device_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].driver.as_deref(), Some("nvidia"));
    assert_eq!(requests[0].count, Some(-1));
    assert_eq!(
        requests[0].capabilities,
        Some(vec![vec!["gpu".to_string()]])
    );
}

#[test]
fn cdi_spec_under_var_run_is_found_through_an_absolute_link() {
    let fx = Fixture::new();
    fx.card(nvidia_card(0, "0000:01:00.0"));
    fx.nvidia_driver(1);
    fx.nvidia_cdi("run/cdi/nvidia.json");
    fx.write("etc/cdi/other.yaml", "kind: vendor.com/fpga\n");
    fx.tool("podman", "#!/bin/sh\nexit 0\n");
    let d = run(&fx, GpuChoice::Auto).unwrap();
    assert_eq!(
        d.inventory.nvidia.as_ref().unwrap().cdi_specs,
        vec!["/var/run/cdi/nvidia.json"]
    );
    assert!(!codes(&d).contains(&"nvidia_cdi_missing"));
}

#[test]
fn nvidia_with_podman_but_no_cdi_spec_warns_with_the_fix() {
    let fx = Fixture::new();
    fx.card(nvidia_card(0, "0000:01:00.0"));
    fx.nvidia_driver(1);
    fx.tool("podman", "#!/bin/sh\nexit 0\n");
    let d = run(&fx, GpuChoice::Auto).unwrap();
    assert_eq!(d.recommendation.gpu, Accelerator::Nvidia);
    let warning = d
        .warnings
        .iter()
        .find(|w| w.code == "nvidia_cdi_missing")
        .unwrap();
    assert!(
        warning
            .fix
            .as_deref()
            .unwrap()
            .contains("nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml")
    );
    // nvidia-smi is absent: memory unknown, said so.
    assert!(codes(&d).contains(&"nvidia_smi_missing"));
    assert_eq!(d.inventory.gpus[0].memory_bytes, None);
    assert_eq!(d.recommendation.model_memory_source, "ram");
    assert_eq!(d.recommendation.model_memory_bytes, 8 * GIB);
}

#[test]
fn nvidia_without_driver_falls_back_and_forcing_it_fails() {
    let fx = Fixture::new();
    fx.card(Card::new(0, "0x10de", "0x1f08", "0000:01:00.0").driver("nouveau"));
    let d = run(&fx, GpuChoice::Auto).unwrap();
    let nvidia = d.inventory.nvidia.as_ref().unwrap();
    assert!(!nvidia.driver_loaded);
    assert_eq!(d.recommendation.gpu, Accelerator::None);
    let warning = d
        .warnings
        .iter()
        .find(|w| w.code == "nvidia_driver_not_loaded")
        .unwrap();
    assert!(warning.message.contains("nouveau"), "{}", warning.message);
    assert!(warning.fix.as_deref().unwrap().contains("modprobe nvidia"));

    // No nvidia-smi either, but that follows from the missing driver: one warning, not two.
    assert_eq!(codes(&d), vec!["nvidia_driver_not_loaded"]);

    let error = run(&fx, GpuChoice::Only(Accelerator::Nvidia)).unwrap_err();
    let DetectError::Gpu(unavailable) = &error else {
        panic!("expected a GPU error, got {error}");
    };
    assert_eq!(unavailable.requested, "nvidia");
    assert!(
        error.to_string().contains("driver is not loaded"),
        "{error}"
    );
}

#[test]
fn two_nvidia_gpus_are_matched_to_nvidia_smi_by_pci_address() {
    let fx = Fixture::new();
    fx.card(nvidia_card(0, "0000:01:00.0"));
    fx.card(Card::new(1, "0x10DE", "0x2204", "0000:0a:00.0").driver("nvidia"));
    fx.nvidia_driver(2);
    fx.nvidia_cdi("etc/cdi/nvidia.yaml");
    // nvidia-smi lists them in another order, with upper-case hex.
    fx.fake_nvidia_smi(&[
        "NVIDIA GeForce RTX 3090, 24576, GPU-bbbb, 00000000:0A:00.0",
        "NVIDIA GeForce RTX 4090, 24564, GPU-aaaa, 00000000:01:00.0",
    ]);
    let d = run(&fx, GpuChoice::Auto).unwrap();
    assert_eq!(d.inventory.gpus.len(), 2);
    assert_eq!(d.inventory.gpus[0].uuid.as_deref(), Some("GPU-aaaa"));
    assert_eq!(d.inventory.gpus[1].uuid.as_deref(), Some("GPU-bbbb"));
    assert_eq!(d.inventory.gpus[1].memory_bytes, Some(24576 * MIB));
    assert_eq!(d.inventory.gpus[1].vendor, Accelerator::Nvidia);
    let rec = &d.recommendation;
    assert_eq!(rec.gpu, Accelerator::Nvidia);
    assert_eq!(rec.gpu_pci_addresses, vec!["0000:01:00.0", "0000:0a:00.0"]);
    assert_eq!(rec.model_memory_bytes, (24564 + 24576) * MIB / 10 * 9);
    assert_eq!(
        d.inventory.nvidia.as_ref().unwrap().device_nodes,
        vec![
            "/dev/nvidia-uvm",
            "/dev/nvidia0",
            "/dev/nvidia1",
            "/dev/nvidiactl"
        ]
    );
}

#[test]
fn failing_nvidia_smi_is_reported() {
    let fx = Fixture::new();
    fx.card(nvidia_card(0, "0000:01:00.0"));
    fx.nvidia_driver(1);
    fx.tool(
        "nvidia-smi",
        "#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\"\nexit 9\n",
    );
    let d = run(&fx, GpuChoice::Auto).unwrap();
    let warning = d
        .warnings
        .iter()
        .find(|w| w.code == "nvidia_smi_failed")
        .unwrap();
    assert!(
        warning.message.contains("couldn't communicate"),
        "{}",
        warning.message
    );
    // The driver is loaded, so the GPU is still used.
    assert_eq!(d.recommendation.gpu, Accelerator::Nvidia);
}

#[test]
fn nvidia_smi_only_gpus_are_listed_without_a_card() {
    // WSL or a container without /sys/class/drm: only nvidia-smi knows the GPU.
    let fx = Fixture::new();
    fx.fake_nvidia_smi(&["NVIDIA RTX A2000, 6138, GPU-cccc, 00000000:02:00.0"]);
    let d = run(&fx, GpuChoice::Auto).unwrap();
    assert_eq!(d.inventory.gpus.len(), 1);
    assert_eq!(d.inventory.gpus[0].card, None);
    assert_eq!(
        d.inventory.gpus[0].pci_address.as_deref(),
        Some("0000:02:00.0")
    );
    assert_eq!(d.recommendation.gpu, Accelerator::Nvidia);
}

fn amd_fixture(kfd: bool, gfx: u64) -> Fixture {
    let fx = Fixture::new();
    fx.card(
        Card::new(0, "0x1002", "0x744c", "0000:03:00.0")
            .driver("amdgpu")
            .vram(24 * GIB),
    );
    fx.kfd_node(0, 0, 0, 16, 0);
    fx.kfd_node(1, gfx, 128, 0, 192);
    if kfd {
        fx.kfd();
    }
    fx
}

#[test]
fn amd_with_kfd() {
    let fx = amd_fixture(true, 110000);
    let mut env = env_for(&fx);
    // alice is in render (listed by name) but not in video.
    env.user = UserIdentity {
        uid: Some(1000),
        name: Some("alice".into()),
        gids: vec![1000],
    };
    fx.write(
        "etc/group",
        "video:x:44:\nrender:x:105:bob,alice\nalice:x:1000:\n",
    );
    let d = detect_offline(&env, GpuChoice::Auto).unwrap();
    let gpu = &d.inventory.gpus[0];
    assert_eq!(gpu.vendor, Accelerator::Amd);
    assert_eq!(gpu.memory_bytes, Some(24 * GIB));
    assert_eq!(gpu.gfx_target.as_deref(), Some("gfx1100"));
    assert_eq!(gpu.form_factor, FormFactor::Discrete);
    let amd = d.inventory.amd.as_ref().unwrap();
    assert!(amd.kfd_present);
    assert_eq!(amd.gfx_targets, vec!["gfx1100"]);
    assert_eq!(amd.missing_groups, vec!["video"]);

    let rec = &d.recommendation;
    assert_eq!(rec.gpu, Accelerator::Amd);
    assert_eq!(rec.image, "docker.io/ollama/ollama:rocm");
    let devices: Vec<_> = rec
        .devices
        .iter()
        .map(|d| (d.path_on_host.as_str(), d.cgroup_permissions.as_str()))
        .collect();
    assert_eq!(devices, vec![("/dev/kfd", "rwm"), ("/dev/dri", "rwm")]);
    assert_eq!(rec.group_add, vec!["video", "render"]);
    assert!(
        rec.env.is_empty(),
        "gfx1100 needs no override: {:?}",
        rec.env
    );
    assert!(rec.cdi_devices.is_empty() && rec.device_requests.is_empty());
    assert_eq!(rec.bollard_devices().len(), 2);

    let warning = d
        .warnings
        .iter()
        .find(|w| w.code == "amd_device_groups")
        .unwrap();
    assert!(
        warning
            .fix
            .as_deref()
            .unwrap()
            .contains("usermod -aG video")
    );
    assert_eq!(codes(&d), vec!["amd_device_groups"]);
}

#[test]
fn amd_rdna2_variant_gets_an_hsa_override() {
    let fx = amd_fixture(true, 100301);
    let d = run(&fx, GpuChoice::Auto).unwrap();
    assert_eq!(d.inventory.gpus[0].gfx_target.as_deref(), Some("gfx1031"));
    assert_eq!(
        d.recommendation
            .env
            .get("HSA_OVERRIDE_GFX_VERSION")
            .map(String::as_str),
        Some("10.3.0")
    );
}

#[test]
fn amd_without_kfd() {
    let fx = amd_fixture(false, 110000);
    let d = run(&fx, GpuChoice::Auto).unwrap();
    assert!(!d.inventory.amd.as_ref().unwrap().kfd_present);
    assert_eq!(d.recommendation.gpu, Accelerator::None);
    assert!(codes(&d).contains(&"amd_kfd_missing"));
    let error = run(&fx, GpuChoice::Only(Accelerator::Amd)).unwrap_err();
    assert!(error.to_string().contains("/dev/kfd is missing"), "{error}");
}

#[test]
fn amd_apu_is_integrated() {
    let fx = Fixture::new();
    fx.card(
        Card::new(0, "0x1002", "0x15bf", "0000:c4:00.0")
            .driver("amdgpu")
            .vram(512 * MIB),
    );
    fx.kfd();
    fx.kfd_node(0, 110003, 128, 16, 12);
    let d = run(&fx, GpuChoice::Auto).unwrap();
    assert_eq!(d.inventory.gpus[0].form_factor, FormFactor::Integrated);
    assert_eq!(d.recommendation.gpu, Accelerator::Amd);
    // An APU's carve-out is not the budget: RAM is.
    assert_eq!(d.recommendation.model_memory_source, "ram");
}

#[test]
fn intel_only() {
    let fx = Fixture::new();
    fx.card(
        Card::new(0, "0x8086", "0x9a49", "0000:00:02.0")
            .driver("i915")
            .boot_vga(),
    );
    let d = run(&fx, GpuChoice::Auto).unwrap();
    let gpu = &d.inventory.gpus[0];
    assert_eq!(gpu.vendor, Accelerator::Intel);
    assert_eq!(gpu.form_factor, FormFactor::Integrated);
    assert_eq!(gpu.render_node.as_deref(), Some("/dev/dri/renderD128"));
    assert_eq!(gpu.memory_bytes, None);
    let rec = &d.recommendation;
    assert_eq!(rec.gpu, Accelerator::Intel);
    assert_eq!(rec.image, "docker.io/ollama/ollama:latest");
    assert_eq!(rec.devices.len(), 1);
    assert_eq!(rec.devices[0].path_on_host, "/dev/dri");
    assert_eq!(rec.env.get("OLLAMA_VULKAN").map(String::as_str), Some("1"));
    assert_eq!(rec.model_memory_bytes, 8 * GIB);
    assert_eq!(rec.suggested_model.as_deref(), Some("qwen2.5-coder:7b"));
    assert!(d.inventory.nvidia.is_none() && d.inventory.amd.is_none());
    assert!(codes(&d).is_empty(), "{:?}", d.warnings);
    assert_eq!(d.host.logical_cpus, 8);
    assert_eq!(d.host.cpu_brand.as_deref(), Some("Fixture CPU 9000"));
    assert_eq!(d.host.memory_total_bytes, 16 * GIB);
}

#[test]
fn hybrid_laptop_prefers_the_discrete_gpu() {
    let fx = Fixture::new();
    fx.card(
        Card::new(0, "0x8086", "0xa7a0", "0000:00:02.0")
            .driver("i915")
            .boot_vga(),
    );
    fx.card(nvidia_card(1, "0000:01:00.0"));
    fx.nvidia_driver(1);
    fx.nvidia_cdi("etc/cdi/nvidia.yaml");
    fx.fake_nvidia_smi(&["NVIDIA GeForce RTX 4060 Laptop GPU, 8188, GPU-dddd, 00000000:01:00.0"]);
    let d = run(&fx, GpuChoice::Auto).unwrap();
    assert_eq!(d.recommendation.gpu, Accelerator::Nvidia);
    assert_eq!(d.recommendation.gpu_pci_addresses, vec!["0000:01:00.0"]);
    let warning = d
        .warnings
        .iter()
        .find(|w| w.code == "hybrid_graphics")
        .unwrap();
    assert!(
        warning.message.contains("using the discrete NVIDIA GPU"),
        "{}",
        warning.message
    );
    assert!(
        warning.message.contains("Intel 0000:00:02.0"),
        "{}",
        warning.message
    );
    assert!(warning.fix.as_deref().unwrap().contains("--gpu intel"));

    let forced = run(&fx, GpuChoice::Only(Accelerator::Intel)).unwrap();
    assert_eq!(forced.recommendation.gpu, Accelerator::Intel);
    let warning = forced
        .warnings
        .iter()
        .find(|w| w.code == "hybrid_graphics")
        .unwrap();
    assert!(
        warning.message.contains("using the integrated Intel GPU"),
        "{}",
        warning.message
    );
}

#[test]
fn no_gpu_at_all() {
    let fx = Fixture::new();
    let d = run(&fx, GpuChoice::Auto).unwrap();
    assert!(d.inventory.gpus.is_empty());
    assert!(d.inventory.ignored_cards.is_empty());
    assert_eq!(d.recommendation.gpu, Accelerator::None);
    assert_eq!(d.recommendation.image, "docker.io/ollama/ollama:latest");
    assert!(d.warnings.is_empty());
    for choice in [
        GpuChoice::Only(Accelerator::Nvidia),
        GpuChoice::Only(Accelerator::Amd),
        GpuChoice::Only(Accelerator::Intel),
    ] {
        let error = run(&fx, choice).unwrap_err();
        assert!(error.to_string().contains("was found"), "{error}");
    }
    assert_eq!(
        run(&fx, GpuChoice::Only(Accelerator::None))
            .unwrap()
            .recommendation
            .gpu,
        Accelerator::None
    );
}

#[test]
fn unexpected_vendor_content_is_ignored_with_a_warning() {
    let fx = Fixture::new();
    fx.card(Card::new(0, "not-a-vendor", "0x0000", "0000:00:01.0"));
    fx.card(Card::new(1, "0x1af4", "0x1050", "0000:00:05.0").driver("virtio-pci"));
    fx.card(Card::new(2, "0x8086", "0x56a0", "0000:03:00.0").driver("i915"));
    let d = run(&fx, GpuChoice::Auto).unwrap();
    assert_eq!(d.inventory.gpus.len(), 1);
    // Intel on another bus than 00:02.0 is a discrete Arc card.
    assert_eq!(d.inventory.gpus[0].form_factor, FormFactor::Discrete);
    let ignored: Vec<_> = d
        .inventory
        .ignored_cards
        .iter()
        .map(|c| (c.card.as_str(), c.vendor_raw.as_deref(), c.reason.as_str()))
        .collect();
    assert_eq!(
        ignored,
        vec![
            (
                "card0",
                Some("not-a-vendor"),
                "unparseable vendor id \"not-a-vendor\""
            ),
            ("card1", Some("0x1af4"), "unsupported GPU vendor 0x1af4"),
        ]
    );
    let unknown: Vec<_> = d
        .warnings
        .iter()
        .filter(|w| w.code == "unknown_gpu_vendor")
        .collect();
    assert_eq!(unknown.len(), 2);
    assert!(
        unknown[0].message.contains("card0 at 0000:00:01.0"),
        "{}",
        unknown[0].message
    );
    assert_eq!(d.recommendation.gpu, Accelerator::Intel);
}

#[test]
fn a_missing_host_root_is_an_error() {
    let env = ProbeEnv::isolated(HostRoot::new("/nonexistent/nanna-host-root"));
    let error = detect_offline(&env, GpuChoice::Auto).unwrap_err();
    assert!(matches!(error, DetectError::HostRoot { .. }));
    assert!(error.to_string().contains("--host-root"), "{error}");
}

#[test]
fn json_follows_the_documented_schema() {
    let fx = Fixture::new();
    fx.card(Card::new(0, "0x8086", "0x9a49", "0000:00:02.0").driver("i915"));
    let d = run(&fx, GpuChoice::Auto).unwrap();
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["gpus"][0]["vendor"], "intel");
    assert_eq!(json["gpus"][0]["pci_address"], "0000:00:02.0");
    assert_eq!(json["gpus"][0]["device_id"], "0x9a49");
    assert_eq!(json["gpus"][0]["driver"], "i915");
    assert_eq!(json["gpus"][0]["render_node"], "/dev/dri/renderD128");
    assert!(json["gpus"][0]["memory_bytes"].is_null());
    assert!(json["engine"].is_null());
    assert_eq!(json["engine_probe"]["probed"], false);
    assert_eq!(json["recommendation"]["gpu"], "intel");
    assert_eq!(
        json["recommendation"]["image"],
        "docker.io/ollama/ollama:latest"
    );
    assert_eq!(
        json["recommendation"]["devices"][0]["path_on_host"],
        "/dev/dri"
    );
    assert!(json["warnings"].as_array().unwrap().is_empty());
    assert!(json["nvidia"].is_null());
}

//! The real `nanna-deploy` binary against fixture host trees (and real engines when present).

mod common;

use std::process::{Command, Output};

use common::fixture::{Card, Fixture};
use serde_json::Value;

/// Runs the binary with a clean environment: the fixture as host root, its `bin/` as the
/// only tool path, no engine variables.
fn run(fixture: &Fixture, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nanna-deploy"));
    command
        .args(args)
        .env_clear()
        .env("NANNA_HOST_ROOT", fixture.root())
        .env("NANNA_TOOL_PATH", fixture.bin())
        .env("PATH", "/usr/bin:/bin");
    for (key, value) in extra_env {
        command.env(key, value);
    }
    command.output().expect("run nanna-deploy")
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

fn nvidia_fixture() -> Fixture {
    let fx = Fixture::new();
    fx.card(Card::new(0, "0x10de", "0x2684", "0000:01:00.0").driver("nvidia"));
    fx.nvidia_driver(1);
    fx.nvidia_cdi("etc/cdi/nvidia.yaml");
    fx.fake_nvidia_smi(&["NVIDIA GeForce RTX 4090, 24564, GPU-aaaa, 00000000:01:00.0"]);
    fx
}

#[test]
fn json_for_one_nvidia_gpu() {
    let fx = nvidia_fixture();
    let json = json_of(&run(&fx, &["detect", "--json", "--no-engine"], &[]));
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["host_root"], fx.root().display().to_string());
    let gpu = &json["gpus"][0];
    assert_eq!(gpu["vendor"], "nvidia");
    assert_eq!(gpu["pci_address"], "0000:01:00.0");
    assert_eq!(gpu["device_id"], "0x2684");
    assert_eq!(gpu["driver"], "nvidia");
    assert_eq!(gpu["render_node"], "/dev/dri/renderD128");
    assert_eq!(gpu["memory_bytes"], 24564u64 * 1024 * 1024);
    assert_eq!(gpu["name"], "NVIDIA GeForce RTX 4090");
    assert!(json["engine"].is_null());
    let rec = &json["recommendation"];
    assert_eq!(rec["gpu"], "nvidia");
    assert_eq!(rec["image"], "docker.io/ollama/ollama:latest");
    assert_eq!(rec["cdi_devices"][0], "nvidia.com/gpu=all");
    assert_eq!(rec["device_requests"][0]["driver"], "nvidia");
    assert_eq!(rec["device_requests"][0]["count"], -1);
    assert_eq!(rec["device_requests"][0]["capabilities"][0][0], "gpu");
    assert_eq!(
        json["warnings"].as_array().unwrap().len(),
        0,
        "{}",
        json["warnings"]
    );
    assert_eq!(json["host"]["logical_cpus"], 8);
}

#[test]
fn json_for_amd_without_kfd_warns() {
    let fx = Fixture::new();
    fx.card(
        Card::new(0, "0x1002", "0x73bf", "0000:03:00.0")
            .driver("amdgpu")
            .vram(16 << 30),
    );
    let json = json_of(&run(&fx, &["detect", "--json", "--no-engine"], &[]));
    assert_eq!(json["gpus"][0]["vendor"], "amd");
    assert_eq!(json["gpus"][0]["memory_bytes"], 16u64 << 30);
    assert_eq!(json["amd"]["kfd_present"], false);
    assert_eq!(json["recommendation"]["gpu"], "none");
    let codes: Vec<_> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap().to_string())
        .collect();
    assert!(codes.contains(&"amd_kfd_missing".to_string()), "{codes:?}");
}

#[test]
fn json_for_amd_with_kfd_via_host_root_flag() {
    let fx = Fixture::new();
    fx.card(
        Card::new(0, "0x1002", "0x744c", "0000:03:00.0")
            .driver("amdgpu")
            .vram(24 << 30),
    );
    fx.kfd();
    fx.kfd_node(1, 110000, 128, 0, 192);
    // --host-root wins over NANNA_HOST_ROOT.
    let mut command = Command::new(env!("CARGO_BIN_EXE_nanna-deploy"));
    let output = command
        .args(["detect", "--json", "--no-engine", "--host-root"])
        .arg(fx.root())
        .env_clear()
        .env("NANNA_HOST_ROOT", "/nonexistent")
        .env("NANNA_TOOL_PATH", fx.bin())
        .output()
        .unwrap();
    let json = json_of(&output);
    let rec = &json["recommendation"];
    assert_eq!(rec["gpu"], "amd");
    assert_eq!(rec["image"], "docker.io/ollama/ollama:rocm");
    assert_eq!(rec["devices"][0]["path_on_host"], "/dev/kfd");
    assert_eq!(rec["devices"][0]["cgroup_permissions"], "rwm");
    assert_eq!(rec["devices"][1]["path_on_host"], "/dev/dri");
    assert_eq!(rec["group_add"], serde_json::json!(["video", "render"]));
    assert_eq!(json["gpus"][0]["gfx_target"], "gfx1100");
}

#[test]
fn forcing_a_missing_gpu_exits_1_with_the_reason() {
    let fx = Fixture::new();
    fx.card(Card::new(0, "0x8086", "0x9a49", "0000:00:02.0").driver("i915"));
    let output = run(&fx, &["detect", "--no-engine", "--gpu", "amd"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--gpu amd cannot be used: no AMD GPU was found"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    // The same through GPU_SUPPORT, and its aliases.
    let output = run(&fx, &["detect", "--no-engine"], &[("GPU_SUPPORT", "rocm")]);
    assert_eq!(output.status.code(), Some(1));
    let json = json_of(&run(
        &fx,
        &["detect", "--json", "--no-engine"],
        &[("GPU_SUPPORT", "CPU")],
    ));
    assert_eq!(json["recommendation"]["gpu"], "none");
    let json = json_of(&run(
        &fx,
        &["detect", "--json", "--no-engine"],
        &[("GPU_SUPPORT", "auto")],
    ));
    assert_eq!(json["recommendation"]["gpu"], "intel");
}

#[test]
fn an_invalid_value_from_the_environment_names_the_variable() {
    let fx = Fixture::new();
    let output = run(&fx, &["detect", "--no-engine"], &[("GPU_SUPPORT", "bogus")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid value 'bogus'"), "{stderr}");
    assert!(
        stderr.contains("the value comes from the environment variable GPU_SUPPORT"),
        "{stderr}"
    );
    let output = run(
        &fx,
        &["detect", "--no-engine", "--json"],
        &[("GPU_SUPPORT", "bogus")],
    );
    assert_eq!(output.status.code(), Some(2));
    let json: Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    let message = json["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("(from the environment variable GPU_SUPPORT)"),
        "{json}"
    );
    // Given on the command line, the flag is the source: no note.
    let output = run(
        &fx,
        &["detect", "--no-engine", "--gpu", "bogus"],
        &[("GPU_SUPPORT", "bogus")],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("environment variable"));
}

#[test]
fn human_output_has_a_table_and_actionable_warnings() {
    let fx = Fixture::new();
    fx.card(Card::new(0, "0x8086", "0xa7a0", "0000:00:02.0").driver("i915"));
    fx.card(Card::new(1, "0x10de", "0x28e0", "0000:01:00.0").driver("nvidia"));
    fx.card(Card::new(2, "garbage", "0x0", "0000:05:00.0"));
    fx.nvidia_driver(1);
    fx.fake_nvidia_smi(&["NVIDIA GeForce RTX 4060 Laptop GPU, 8188, GPU-dddd, 00000000:01:00.0"]);
    fx.tool("podman", "#!/bin/sh\nexit 0\n");
    let output = run(&fx, &["detect", "--no-engine"], &[]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("CARD"), "{text}");
    assert!(
        text.contains("NVIDIA GeForce RTX 4060 Laptop GPU"),
        "{text}"
    );
    assert!(text.contains("integrated"), "{text}");
    assert!(
        text.contains("Use:     nvidia with docker.io/ollama/ollama:latest"),
        "{text}"
    );
    assert!(text.contains("hybrid graphics"), "{text}");
    assert!(
        text.contains("nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"),
        "{text}"
    );
    assert!(text.contains("unparseable vendor id \"garbage\""), "{text}");
    assert!(text.contains("Engine:  not probed"), "{text}");
}

#[test]
fn no_engine_found_is_a_warning_with_advice() {
    let fx = Fixture::new();
    let json = json_of(&run(
        &fx,
        &["detect", "--json", "--engine-timeout-ms", "300"],
        &[],
    ));
    assert!(json["engine"].is_null());
    assert_eq!(json["engine_probe"]["probed"], true);
    let attempts = json["engine_probe"]["attempts"].as_array().unwrap();
    assert!(
        attempts.iter().all(|a| a["outcome"]["status"] == "missing"),
        "{attempts:?}"
    );
    let warning = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "no_engine")
        .expect("no_engine warning");
    assert!(
        warning["fix"].as_str().unwrap().contains("install Podman"),
        "{warning}"
    );
    // Asking for a specific engine that is not there is an error.
    let output = run(&fx, &["detect", "--engine", "docker"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no Docker engine answered"), "{stderr}");
    assert!(stderr.contains("install Docker"), "{stderr}");
}

#[test]
fn real_engine_shows_up_in_json() {
    let socket = match std::env::var("NANNA_TEST_PODMAN_SOCKET") {
        Ok(socket) if !socket.is_empty() => socket,
        _ => {
            if std::env::var("NANNA_TEST_REQUIRE_ENGINES").as_deref() == Ok("1") {
                panic!("NANNA_TEST_PODMAN_SOCKET is not set but NANNA_TEST_REQUIRE_ENGINES=1");
            }
            println!("skipping: set NANNA_TEST_PODMAN_SOCKET (see .ci/engines.sh)");
            return;
        }
    };
    let fx = Fixture::new();
    fx.card(Card::new(0, "0x10de", "0x2684", "0000:01:00.0").driver("nvidia"));
    fx.nvidia_driver(1);
    let address = format!("unix://{socket}");
    let json = json_of(&run(
        &fx,
        &["detect", "--json", "--engine", "podman"],
        &[("CONTAINER_HOST", address.as_str())],
    ));
    assert_eq!(json["engine"]["kind"], "podman");
    assert_eq!(json["engine"]["socket"], address);
    assert!(json["engine"]["version"].as_str().unwrap().contains('.'));
    // With Podman known, NVIDIA goes through CDI only, and the missing spec is flagged.
    assert_eq!(
        json["recommendation"]["cdi_devices"][0],
        "nvidia.com/gpu=all"
    );
    assert_eq!(
        json["recommendation"]["device_requests"],
        serde_json::json!([])
    );
    assert!(
        json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "nvidia_cdi_missing")
    );
}

#[test]
fn help_has_examples() {
    let output = Command::new(env!("CARGO_BIN_EXE_nanna-deploy"))
        .args(["detect", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(text.contains("Examples:"), "{text}");
    assert!(text.contains("GPU_SUPPORT"), "{text}");
    assert!(text.contains("--no-engine"), "{text}");
}

/// `RUST_LOG` reaches the library's `tracing` events, on stderr: stdout stays the JSON result.
#[test]
fn rust_log_writes_diagnostics_to_stderr_only() {
    let fx = nvidia_fixture();
    fx.simple_framebuffer(1);
    let args = ["detect", "--json", "--no-engine"];
    let output = run(&fx, &args, &[("RUST_LOG", "nanna_deploy=debug")]);
    let json = json_of(&output);
    assert_eq!(json["gpus"][0]["vendor"], "nvidia");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("DEBUG") && l.contains("ignoring DRM card")),
        "{stderr}"
    );
    let quiet = run(&fx, &args, &[]);
    json_of(&quiet);
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(!stderr.contains("ignoring DRM card"), "{stderr}");
}

//! `nanna-deploy export`, checked by its consumers: the rendered files against pinned
//! golden copies (reviewed once by eye: `NANNA_BLESS=1 cargo test -p nanna-deploy --test
//! export` rewrites them), every Kubernetes export against the Kubernetes OpenAPI schemas
//! (`kubernetes-validate`, PyPI; `.ci/export-consumers.sh` installs it), and bad input
//! through the real binary. The engines' own consumers (`podman kube play`,
//! `docker-compose`, `podman-compose`) run the exports in `tests/export_engines.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fixture::{Card, Fixture, GIB};
use nanna_deploy::engine::EngineKind;
use nanna_deploy::host::{HostRoot, ProbeEnv, UserIdentity};
use nanna_deploy::stack::export::{self, ExportFormat, ExportOptions};
use nanna_deploy::stack::spec::StackSettings;
use nanna_deploy::{Accelerator, GpuChoice};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/export")
}

/// Whether the consumers must be present (CI), rather than skipped with a message.
pub fn required() -> bool {
    std::env::var("NANNA_TEST_REQUIRE_ENGINES").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A host with one GPU of `gpu` (the CPU: none), as detection sees it.
fn host(gpu: Accelerator) -> Fixture {
    let fx = Fixture::new();
    match gpu {
        Accelerator::Nvidia => {
            fx.card(Card::new(0, "0x10de", "0x2684", "0000:01:00.0").driver("nvidia"));
            fx.nvidia_driver(1);
            fx.fake_nvidia_smi(&[
                "NVIDIA GeForce RTX 4090, 24564, GPU-aaaa-1111, 00000000:01:00.0",
            ]);
            fx.nvidia_cdi("etc/cdi/nvidia.yaml");
        }
        Accelerator::Amd => {
            // An RX 6700 XT (gfx1031), which the ROCm build runs as gfx1030.
            fx.card(
                Card::new(0, "0x1002", "0x73df", "0000:03:00.0")
                    .driver("amdgpu")
                    .vram(12 * GIB),
            );
            fx.kfd_node(0, 0, 0, 16, 0);
            fx.kfd_node(1, 100301, 128, 0, 80);
            fx.kfd();
        }
        Accelerator::Intel => {
            fx.card(
                Card::new(0, "0x8086", "0x56a0", "0000:03:00.0")
                    .driver("i915")
                    .boot_vga(),
            );
        }
        Accelerator::None => {}
        // Any other vendor: one card with its PCI id from the recipe table.
        #[allow(unreachable_patterns)]
        other => {
            let id = &other.recipe().pci_vendor_ids[0];
            fx.card(Card::new(0, id, "0x0001", "0000:05:00.0"));
        }
    }
    fx
}

fn env_for(fx: &Fixture) -> ProbeEnv {
    let mut env = ProbeEnv::isolated(HostRoot::new(fx.root()));
    env.tool_path = Some(fx.bin().into_os_string());
    env.user = UserIdentity {
        uid: Some(0),
        name: Some("root".into()),
        gids: vec![0],
    };
    env
}

fn settings() -> StackSettings {
    let mut s = StackSettings::new("team", PathBuf::from("/home/alice/project"));
    s.model = Some("qwen2.5-coder:7b".into());
    s
}

fn render(gpu: Accelerator, format: ExportFormat, engine: EngineKind) -> String {
    let fx = host(gpu);
    let options = ExportOptions {
        settings: settings(),
        gpu: GpuChoice::Only(gpu),
        format,
        engine,
        output_dir: None,
    };
    let export = export::export(&env_for(&fx), &options).expect("renders");
    // Only the note that a Compose file for Docker refers to the assistant's profile.
    assert!(
        export
            .notes
            .iter()
            .all(|n| n.contains("nanna-assistant.json")),
        "{:?}",
        export.notes
    );
    export.text
}

/// Compares `text` with the pinned copy, or rewrites it with `NANNA_BLESS=1`.
fn golden(name: &str, text: &str) {
    let path = golden_dir().join(name);
    if std::env::var("NANNA_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; review the output and pin it with NANNA_BLESS=1",
            path.display()
        )
    });
    if pinned != text {
        let line = pinned
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(pinned.lines().count().min(text.lines().count()));
        panic!(
            "{name} differs from the pinned copy from line {}:\n  pinned:   {:?}\n  rendered: {:?}\nreview it, then NANNA_BLESS=1 to pin",
            line + 1,
            pinned.lines().nth(line),
            text.lines().nth(line)
        );
    }
}

#[test]
fn every_vendor_renders_as_pinned() {
    for gpu in Accelerator::ALL {
        let name = gpu.as_str();
        golden(
            &format!("kubernetes-{name}.yaml"),
            &render(gpu, ExportFormat::Kubernetes, EngineKind::Docker),
        );
        golden(
            &format!("compose-{name}.yaml"),
            &render(gpu, ExportFormat::Compose, EngineKind::Docker),
        );
    }
    // NVIDIA for podman-compose: the CDI device instead of a device reservation.
    golden(
        "compose-nvidia-podman.yaml",
        &render(
            Accelerator::Nvidia,
            ExportFormat::Compose,
            EngineKind::Podman,
        ),
    );
}

#[test]
fn the_gpu_plumbing_comes_from_the_recipe() {
    let nvidia = render(
        Accelerator::Nvidia,
        ExportFormat::Kubernetes,
        EngineKind::Docker,
    );
    assert!(nvidia.contains("nvidia.com/gpu: 1"), "{nvidia}");
    assert!(nvidia.contains("runtimeClassName: nvidia"));
    let amd = render(
        Accelerator::Amd,
        ExportFormat::Kubernetes,
        EngineKind::Docker,
    );
    assert!(amd.contains("amd.com/gpu: 1") && amd.contains("ollama:rocm"));
    // What detection adds for this host's GPU travels with the export.
    assert!(amd.contains("HSA_OVERRIDE_GFX_VERSION"), "{amd}");
    let intel = render(
        Accelerator::Intel,
        ExportFormat::Kubernetes,
        EngineKind::Docker,
    );
    assert!(intel.contains("gpu.intel.com/i915: 1") && intel.contains("OLLAMA_VULKAN"));
    let cpu = render(
        Accelerator::None,
        ExportFormat::Kubernetes,
        EngineKind::Docker,
    );
    assert!(
        !cpu.contains("limits:")
            && !cpu.contains("runtimeClassName")
            && !cpu.contains("tolerations")
    );

    let docker = render(
        Accelerator::Nvidia,
        ExportFormat::Compose,
        EngineKind::Docker,
    );
    assert!(docker.contains("driver: nvidia") && docker.contains("count: all"));
    let podman = render(
        Accelerator::Nvidia,
        ExportFormat::Compose,
        EngineKind::Podman,
    );
    assert!(podman.contains("- nvidia.com/gpu=all") && !podman.contains("reservations"));
    let amd = render(Accelerator::Amd, ExportFormat::Compose, EngineKind::Docker);
    // The fixture host's video and render group ids, as `up` gives them.
    assert!(
        amd.contains("/dev/kfd:/dev/kfd:rwm") && amd.contains("- '44'"),
        "{amd}"
    );
}

#[test]
fn a_gpu_this_host_lacks_gets_its_recipe_with_a_note() {
    let fx = host(Accelerator::None);
    let options = ExportOptions {
        settings: settings(),
        gpu: GpuChoice::Only(Accelerator::Amd),
        format: ExportFormat::Kubernetes,
        engine: EngineKind::Docker,
        output_dir: None,
    };
    let export = export::export(&env_for(&fx), &options).unwrap();
    assert!(export.text.contains("amd.com/gpu: 1"));
    assert!(!export.text.contains("HSA_OVERRIDE_GFX_VERSION"));
    assert_eq!(export.notes.len(), 1, "{:?}", export.notes);
    assert!(export.notes[0].contains("--gpu amd"), "{:?}", export.notes);
}

fn tool(name: &str) -> Option<PathBuf> {
    let found = which::which(name).ok();
    if found.is_none() {
        assert!(
            !required(),
            "{name} is missing but required here (.ci/export-consumers.sh installs it)"
        );
        println!("skipping: {name} is not installed (.ci/export-consumers.sh)");
    }
    found
}

fn validate(files: &[PathBuf]) -> Output {
    let validator = tool("kubernetes-validate").expect("checked by the caller");
    Command::new(validator)
        .arg("--strict")
        .arg("--quiet")
        .args(files)
        .output()
        .unwrap()
}

/// Every Kubernetes export (each vendor, the CPU, without the assistant, without a model)
/// against the OpenAPI schemas of a current Kubernetes (kubernetes-validate's default), in
/// strict mode (unknown fields are errors).
#[test]
fn kubernetes_exports_validate_against_the_schemas() {
    if tool("kubernetes-validate").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for gpu in Accelerator::ALL {
        for (variant, assistant, model) in [
            ("full", true, true),
            ("server-only", false, true),
            ("no-model", true, false),
        ] {
            let fx = host(gpu);
            let mut s = settings();
            s.assistant = assistant;
            if !model {
                s.model = None;
            }
            let options = ExportOptions {
                settings: s,
                gpu: GpuChoice::Only(gpu),
                format: ExportFormat::Kubernetes,
                engine: EngineKind::Docker,
                output_dir: None,
            };
            let text = export::export(&env_for(&fx), &options).unwrap().text;
            let path = dir.path().join(format!("{}-{variant}.yaml", gpu.as_str()));
            std::fs::write(&path, text).unwrap();
            files.push(path);
        }
    }
    let out = validate(&files);
    assert!(
        out.status.success(),
        "kubernetes-validate refused an export:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The validator is not a rubber stamp: a misspelt field fails.
    let broken = dir.path().join("broken.yaml");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    std::fs::write(&broken, text.replacen("containers:", "containerz:", 1)).unwrap();
    let out = validate(&[broken]);
    assert!(!out.status.success(), "a misspelt field passed validation");
}

fn deploy(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nanna-deploy"))
        .args(args)
        .current_dir(cwd)
        .env("NANNA_HOST_ROOT", cwd)
        .env_remove("GPU_SUPPORT")
        .env_remove("NANNA_STACK")
        .env_remove("OLLAMA_MODEL")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_binary_writes_stdout_or_a_directory_whole() {
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let ws = project.to_str().unwrap();

    let out = deploy(
        &[
            "export",
            "--format",
            "compose",
            "--gpu",
            "none",
            "--workspace",
            ws,
        ],
        work.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("services:") && text.contains(ws), "{text}");

    // Into a new directory, then again into the same one (the file is replaced).
    let dir = work.path().join("out/k8s");
    for _ in 0..2 {
        let out = deploy(
            &[
                "export",
                "--format",
                "kubernetes",
                "--gpu",
                "none",
                "--workspace",
                ws,
                "-o",
                dir.to_str().unwrap(),
            ],
            work.path(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["kubernetes.yaml"]);
    }
    let json = deploy(
        &[
            "--json",
            "export",
            "--format",
            "kubernetes",
            "--gpu",
            "none",
            "--workspace",
            ws,
            "-o",
            dir.to_str().unwrap(),
        ],
        work.path(),
    );
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["format"], "kubernetes");
}

/// Bad input: a clear message, a non-zero exit, nothing written.
#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let ws = project.to_str().unwrap();
    let out_dir = work.path().join("out");
    let o = out_dir.to_str().unwrap();
    let base = |extra: &[&str]| {
        let mut args = vec!["export", "--workspace", ws, "-o", o];
        args.extend_from_slice(extra);
        deploy(&args, work.path())
    };

    // An unknown vendor: clap's usage error names the choices.
    let out = base(&["--format", "kubernetes", "--gpu", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nvidia") && stderr(&out).contains("tpu"),
        "{}",
        stderr(&out)
    );

    // A name Kubernetes refuses (DNS-1123), though `up` takes it.
    let out = base(&[
        "--format",
        "kubernetes",
        "--gpu",
        "none",
        "--name",
        "my_stack",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot name Kubernetes objects") && stderr(&out).contains("'_'"),
        "{}",
        stderr(&out)
    );
    let json = deploy(
        &[
            "--json",
            "export",
            "--format",
            "kubernetes",
            "--gpu",
            "none",
            "--name",
            "my_stack",
            "--workspace",
            ws,
        ],
        work.path(),
    );
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["error"]["code"], "invalid_name");
    // Compose takes it.
    let out = base(&["--format", "compose", "--gpu", "none", "--name", "my_stack"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_dir_all(&out_dir).unwrap();

    // A port out of range.
    let out = base(&["--format", "compose", "--listen", "127.0.0.1:70000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("70000"), "{}", stderr(&out));

    // Host devices have no Kubernetes form.
    let out = base(&[
        "--format",
        "kubernetes",
        "--gpu",
        "none",
        "--device",
        "/dev/null",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("device plugins"), "{}", stderr(&out));
    assert!(!out_dir.exists(), "a refused export created {o}");

    // An output directory that holds other files: refused, left as it was.
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::write(out_dir.join("notes.txt"), "mine").unwrap();
    let out = base(&["--format", "compose", "--gpu", "none"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already holds other files (notes.txt)"),
        "{}",
        stderr(&out)
    );
    let names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["notes.txt"]);

    // A file where the directory should be.
    let file = work.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = deploy(
        &[
            "export",
            "--format",
            "compose",
            "--gpu",
            "none",
            "--workspace",
            ws,
            "-o",
            file.to_str().unwrap(),
        ],
        work.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

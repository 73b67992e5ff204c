//! Benchmark of `detect`: on fixture trees and on this machine, without and with the engine
//! probe, plus the whole `nanna-deploy detect --json --no-engine` process. Prints median,
//! p95 and min in milliseconds. Run: `cargo bench -p nanna-deploy --bench detect`.

#[path = "../tests/common/fixture.rs"]
mod fixture;

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use fixture::{Card, Fixture, GIB};
use nanna_deploy::GpuChoice;
use nanna_deploy::detect::{DetectOptions, detect, detect_offline};
use nanna_deploy::engine::EngineChoice;
use nanna_deploy::host::{HostRoot, ProbeEnv};

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = samples[samples.len() / 2];
    let p95 = samples[(samples.len() * 95 / 100).min(samples.len() - 1)];
    println!(
        "{name:<52} n={:<4} median {:>8.3} ms  p95 {:>8.3} ms  min {:>8.3} ms",
        samples.len(),
        ms(median),
        ms(p95),
        ms(samples[0])
    );
}

fn measure(iterations: usize, mut f: impl FnMut()) -> Vec<Duration> {
    f(); // warm-up
    (0..iterations)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

fn fixture_env(fx: &Fixture) -> ProbeEnv {
    let mut env = ProbeEnv::isolated(HostRoot::new(fx.root()));
    env.tool_path = Some(fx.bin().into_os_string());
    env
}

fn main() {
    // A busy workstation: Intel iGPU, AMD dGPU with ROCm, an NVIDIA dGPU without tools.
    let busy = Fixture::new();
    busy.card(
        Card::new(0, "0x8086", "0xa7a0", "0000:00:02.0")
            .driver("i915")
            .boot_vga(),
    );
    busy.card(
        Card::new(1, "0x1002", "0x744c", "0000:03:00.0")
            .driver("amdgpu")
            .vram(24 * GIB),
    );
    busy.card(Card::new(2, "0x10de", "0x2684", "0000:01:00.0").driver("nvidia"));
    busy.kfd();
    busy.kfd_node(0, 0, 0, 16, 0);
    busy.kfd_node(1, 110000, 129, 0, 192);
    busy.nvidia_driver(1);
    busy.nvidia_cdi("etc/cdi/nvidia.yaml");
    let env = fixture_env(&busy);
    report(
        "fixture, 3 GPUs, no engine (library)",
        measure(500, || {
            black_box(detect_offline(&env, GpuChoice::Auto).ok());
        }),
    );

    let smi = Fixture::new();
    smi.card(Card::new(0, "0x10de", "0x2684", "0000:01:00.0").driver("nvidia"));
    smi.nvidia_driver(1);
    smi.fake_nvidia_smi(&["NVIDIA GeForce RTX 4090, 24564, GPU-aaaa, 00000000:01:00.0"]);
    let env = fixture_env(&smi);
    report(
        "fixture, NVIDIA + fake nvidia-smi (sh), no engine",
        measure(100, || {
            black_box(detect_offline(&env, GpuChoice::Auto).ok());
        }),
    );

    let host = ProbeEnv::from_process();
    report(
        "this machine, no engine (library)",
        measure(500, || {
            black_box(detect_offline(&host, GpuChoice::Auto).ok());
        }),
    );

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start a runtime: {error}");
            return;
        }
    };
    let options = DetectOptions {
        gpu: GpuChoice::Auto,
        engine: EngineChoice::Auto,
        probe_engine: true,
    };
    let engines = [
        (
            "DOCKER_HOST",
            std::env::var("NANNA_TEST_DOCKER_SOCKET").ok(),
            "docker",
        ),
        (
            "CONTAINER_HOST",
            std::env::var("NANNA_TEST_PODMAN_SOCKET").ok(),
            "podman",
        ),
    ];
    let mut any = false;
    for (_, socket, name) in &engines {
        let Some(socket) = socket else { continue };
        any = true;
        let mut env = ProbeEnv::from_process();
        env.docker_host = None;
        env.container_host = Some(format!("unix://{socket}"));
        let iterations = if *name == "podman" { 10 } else { 50 };
        report(
            &format!("this machine, engine probe ({name} answers)"),
            measure(iterations, || {
                black_box(runtime.block_on(detect(&env, &options)).ok());
            }),
        );
    }
    if !any {
        println!("(engine probe with a real engine skipped: source /run/nanna-test/env.sh)");
    }
    let mut none = ProbeEnv::from_process();
    none.docker_host = None;
    none.container_host = None;
    none.xdg_runtime_dir = None;
    report(
        "this machine, engine probe (no engine answers)",
        measure(100, || {
            black_box(runtime.block_on(detect(&none, &options)).ok());
        }),
    );

    let exe = env!("CARGO_BIN_EXE_nanna-deploy");
    report(
        "process: nanna-deploy detect --json --no-engine",
        measure(50, || {
            let output = Command::new(exe)
                .args(["detect", "--json", "--no-engine"])
                .output();
            black_box(output.ok());
        }),
    );
}

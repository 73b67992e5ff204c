//! Image build time and archive size for a ~10 MB binary, plus load time into each
//! engine that is configured (`NANNA_TEST_PODMAN_SOCKET`, `NANNA_TEST_DOCKER_SOCKET`).
//!
//! `cargo bench -p nanna-image --bench build`; `NANNA_BENCH_BINARY=/path` picks the
//! binary, `NANNA_BENCH_RUNS` the number of runs (default 9).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nanna_image::{ImageSpec, load_archive, write_docker_archive};

fn is_elf_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return false;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

/// The candidate binary whose size is closest to 10 MB (workspace builds, then /usr/bin).
fn pick_binary() -> PathBuf {
    if let Ok(path) = std::env::var("NANNA_BENCH_BINARY") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let mut candidates = Vec::new();
    for dir in [
        target.join("release"),
        target.join("debug"),
        PathBuf::from("/usr/bin"),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            candidates.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| is_elf_executable(p)),
            );
        }
    }
    let distance = |p: &PathBuf| {
        let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(1).max(1) as f64;
        (size / 10e6).ln().abs()
    };
    candidates
        .into_iter()
        .filter(|p| ImageSpec::for_binary(p, "localhost/probe", "/bin/app").is_ok())
        .min_by(|a, b| distance(a).total_cmp(&distance(b)))
        .unwrap_or_else(|| PathBuf::from("/usr/bin/env"))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let runs: usize = std::env::var("NANNA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9)
        .max(1);
    let binary = pick_binary();
    let binary_size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    println!(
        "binary: {} ({:.1} MB), {runs} runs",
        binary.display(),
        binary_size as f64 / 1e6
    );

    let reference = format!("localhost/nanna-image-bench-{}:latest", std::process::id());
    let mut resolve = Vec::new();
    let mut build = Vec::new();
    let mut archive = Vec::new();
    let mut built = None;
    for _ in 0..runs {
        let start = Instant::now();
        let mut spec = match ImageSpec::for_binary(&binary, &reference, "/bin/app") {
            Ok(spec) => spec,
            Err(e) => {
                eprintln!("cannot describe an image for {}: {e}", binary.display());
                return;
            }
        };
        spec.labels
            .insert("dev.nanna.test".into(), "nanna-image-bench".into());
        resolve.push(start.elapsed());
        let start = Instant::now();
        let mut out = Vec::with_capacity(binary_size as usize * 2);
        match write_docker_archive(&spec, &mut out) {
            Ok(b) => built = Some(b),
            Err(e) => {
                eprintln!("build failed: {e}");
                return;
            }
        }
        build.push(start.elapsed());
        archive = out;
    }
    let Some(built) = built else { return };
    println!(
        "describe (ELF + library resolution): median {} (min {}, max {})",
        ms(median(resolve.clone())),
        ms(*resolve.iter().min().unwrap_or(&Duration::ZERO)),
        ms(*resolve.iter().max().unwrap_or(&Duration::ZERO))
    );
    println!(
        "write docker-archive (in memory):    median {} (min {}, max {})",
        ms(median(build.clone())),
        ms(*build.iter().min().unwrap_or(&Duration::ZERO)),
        ms(*build.iter().max().unwrap_or(&Duration::ZERO))
    );
    println!(
        "archive: {:.2} MB, {} layers, id {}",
        built.size_bytes as f64 / 1e6,
        built.layers,
        built.image_id
    );

    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("bench.tar");
    if let Err(e) = std::fs::write(&path, &archive) {
        eprintln!("cannot write {}: {e}", path.display());
        return;
    }
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        return;
    };
    for var in ["NANNA_TEST_PODMAN_SOCKET", "NANNA_TEST_DOCKER_SOCKET"] {
        let Ok(socket) = std::env::var(var) else {
            println!("load: skipped ({var} not set)");
            continue;
        };
        runtime.block_on(async {
            let docker = match bollard::Docker::connect_with_unix(&socket, 300, bollard::API_DEFAULT_VERSION) {
                Ok(d) => match d.negotiate_version().await {
                    Ok(d) => d,
                    Err(e) => return eprintln!("{var}: {e}"),
                },
                Err(e) => return eprintln!("{var}: {e}"),
            };
            let remove = || async {
                let options = bollard::query_parameters::RemoveImageOptions { force: true, ..Default::default() };
                let _ = docker.remove_image(&reference, Some(options), None).await;
            };
            let load_runs = runs.min(5);
            let mut loads = Vec::new();
            for _ in 0..load_runs {
                remove().await;
                let start = Instant::now();
                if let Err(e) = load_archive(&docker, &path).await {
                    remove().await;
                    return eprintln!("{var}: {e}");
                }
                loads.push(start.elapsed());
            }
            let start = Instant::now();
            let again = load_archive(&docker, &path).await.is_ok();
            let reload = start.elapsed();
            remove().await;
            println!(
                "load into {var}: median {} of {load_runs} fresh loads (min {}, max {}); reload of a present image {}{}",
                ms(median(loads.clone())),
                ms(*loads.iter().min().unwrap_or(&Duration::ZERO)),
                ms(*loads.iter().max().unwrap_or(&Duration::ZERO)),
                ms(reload),
                if again { "" } else { " (failed)" }
            );
        });
    }
}

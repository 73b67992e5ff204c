//! Stack benchmark (prints figures; `cargo bench -p nanna-deploy --bench stack`).
//!
//! On each engine whose socket is set (NANNA_TEST_PODMAN_SOCKET / NANNA_TEST_DOCKER_SOCKET,
//! `source /run/nanna-test/env.sh`): `up` to healthy (library and `nanna-deploy up`), a no-op
//! `up` (library, and the CLI including process start and engine probe), against the same
//! stack started with the engine's own CLI (network create, volume create, run ollama, run
//! assistant, poll health); then `up`, no-op `up` and `down` of `nanna-deploy` against
//! docker-compose / podman-compose on the same two containers (alternating runs; Compose
//! cannot wait for health, so the bench polls the same health URLs after `up -d`). Also
//! the assistant image's build time and size.
//! Targets: no-op `up` <= 0.2 s; `up` to healthy within 1.2x of the CLI sequence.
//! NANNA_BENCH_RUNS sets the runs per figure (default 3).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nanna_deploy::engine::{Engine, EngineChoice, EngineKind};
use nanna_deploy::host::{HostRoot, ProbeEnv};
use nanna_deploy::stack::spec::{Layout, StackSettings};
use nanna_deploy::stack::{self, BuildRequest, DownOptions, StackContext, UpOptions};
use nanna_deploy::{Accelerator, GpuChoice};

const OLLAMA: &str = "localhost/nanna-bench-ollama:1";
const ASSISTANT: &str = "localhost/nanna-bench-assistant:1";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn binary(name: &str, package: &str) -> PathBuf {
    for profile in ["release", "debug"] {
        let path = target_dir().join(profile).join(name);
        if path.is_file() {
            return path;
        }
    }
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "-p", package, "--bin", name])
        .current_dir(workspace_root())
        .status()
        .expect("cargo build");
    assert!(status.success());
    target_dir().join("debug").join(name)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_ok(addr: SocketAddr, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") && &buf[9..12] == b"200"
}

fn build_archive(request: &BuildRequest, reference: &str, dir: &Path) -> (PathBuf, f64, u64) {
    let start = Instant::now();
    let mut spec = stack::spec_for(request).unwrap();
    spec.reference = reference.to_string();
    let path = dir.join(format!("{}.tar", reference.replace(['/', ':'], "_")));
    let file = std::fs::File::create(&path).unwrap();
    let built = nanna_image::write_docker_archive(&spec, std::io::BufWriter::new(file)).unwrap();
    (path, start.elapsed().as_secs_f64(), built.size_bytes)
}

struct Cli {
    program: &'static str,
}

impl Cli {
    fn run(&self, args: &[&str]) {
        let out = Command::new(self.program)
            .args(args)
            .output()
            .expect("engine CLI");
        assert!(
            out.status.success(),
            "{} {args:?}: {}",
            self.program,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn quiet(&self, args: &[&str]) {
        let _ = Command::new(self.program).args(args).output();
    }
}

/// The same stack through the engine's CLI; returns seconds to healthy.
fn cli_sequence(cli: &Cli, name: &str, workspace: &str) -> f64 {
    let (p1, p2) = (free_port(), free_port());
    let (net, vol) = (format!("bench-{name}"), format!("bench-{name}-models"));
    let (a, b) = (
        format!("bench-{name}-ollama"),
        format!("bench-{name}-assistant"),
    );
    let start = Instant::now();
    cli.run(&["network", "create", &net]);
    cli.run(&["volume", "create", &vol]);
    cli.run(&[
        "run",
        "-d",
        "--name",
        &a,
        "--network",
        &net,
        "--network-alias",
        "ollama",
        "-p",
        &format!("127.0.0.1:{p1}:11434"),
        "-v",
        &format!("{vol}:/root/.ollama"),
        "-e",
        "OLLAMA_HOST=0.0.0.0:11434",
        "-e",
        "OLLAMA_CONTEXT_LENGTH=110000",
        "-e",
        "OLLAMA_KEEP_ALIVE=30m",
        "--restart",
        "unless-stopped",
        OLLAMA,
    ]);
    cli.run(&[
        "run",
        "-d",
        "--name",
        &b,
        "--network",
        &net,
        "-p",
        &format!("127.0.0.1:{p2}:8080"),
        "-v",
        &format!("{workspace}:/workspace"),
        "-e",
        &format!("OLLAMA_URL=http://{a}:11434"),
        "--restart",
        "unless-stopped",
        ASSISTANT,
    ]);
    let ollama = SocketAddr::from(([127, 0, 0, 1], p1));
    let assistant = SocketAddr::from(([127, 0, 0, 1], p2));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(http_ok(ollama, "/") && http_ok(assistant, "/health")) {
        assert!(Instant::now() < deadline, "CLI stack never became healthy");
        std::thread::sleep(Duration::from_millis(25));
    }
    let elapsed = start.elapsed().as_secs_f64();
    cli.quiet(&["rm", "-f", &a, &b]);
    cli.quiet(&["network", "rm", &net]);
    cli.quiet(&["volume", "rm", &vol]);
    elapsed
}

fn settings(name: &str, workspace: &Path) -> StackSettings {
    let mut s = StackSettings::new(name, workspace.to_path_buf());
    s.ollama_image = Some(OLLAMA.to_string());
    s.assistant_image = ASSISTANT.to_string();
    s.listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    s.assistant_listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    s
}

/// The same two containers as a Compose file (network, models volume, ports, environment,
/// restart policy, workspace mount).
fn compose_file(dir: &Path, p1: u16, p2: u16, workspace: &str) -> PathBuf {
    let text = format!(
        "version: \"3\"
services:
  ollama:
    image: {OLLAMA}
    ports: [\"127.0.0.1:{p1}:11434\"]
    volumes: [\"models:/root/.ollama\"]
    environment:
      OLLAMA_HOST: \"0.0.0.0:11434\"
      OLLAMA_CONTEXT_LENGTH: \"110000\"
      OLLAMA_KEEP_ALIVE: \"30m\"
    restart: unless-stopped
  assistant:
    image: {ASSISTANT}
    ports: [\"127.0.0.1:{p2}:8080\"]
    volumes: [\"{workspace}:/workspace\"]
    environment:
      OLLAMA_URL: \"http://ollama:11434\"
    restart: unless-stopped
volumes:
  models: {{}}
"
    );
    let path = dir.join(format!("compose-{p1}.yml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn timed(command: &mut Command) -> f64 {
    let start = Instant::now();
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed().as_secs_f64()
}

fn wait_healthy(p1: u16, p2: u16) {
    let ollama = SocketAddr::from(([127, 0, 0, 1], p1));
    let assistant = SocketAddr::from(([127, 0, 0, 1], p2));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(http_ok(ollama, "/") && http_ok(assistant, "/health")) {
        assert!(Instant::now() < deadline, "never became healthy");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `nanna-deploy` against Compose: up to healthy, no-op up, down; alternating runs.
fn compose_comparison(
    kind: EngineKind,
    deploy: &Path,
    host_var: &str,
    address: &str,
    workspace: &Path,
    dir: &Path,
    runs: usize,
) {
    let (tool, tool_args): (&str, &[&str]) = match kind {
        EngineKind::Docker => ("docker-compose", &[]),
        EngineKind::Podman => ("podman-compose", &[]),
    };
    if which(tool).is_none() {
        println!("{tool} not installed (apt-get install {tool}): no Compose comparison");
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let mut ours = (Vec::new(), Vec::new(), Vec::new());
    let mut theirs = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let name = format!("cmp{}r{run}", std::process::id() % 10_000);
        let s = settings(&name, workspace);
        let nanna = |args: Vec<String>| {
            let mut c = Command::new(deploy);
            c.args(args)
                .env(host_var, address)
                .env("XDG_STATE_HOME", state.path())
                .env_remove(if host_var == "DOCKER_HOST" {
                    "CONTAINER_HOST"
                } else {
                    "DOCKER_HOST"
                });
            c
        };
        ours.0.push(timed(&mut nanna(up_args(&s, kind.as_str()))));
        ours.1.push(timed(&mut nanna(up_args(&s, kind.as_str()))));
        let down = vec![
            "down".to_string(),
            "--engine".into(),
            kind.as_str().into(),
            "--name".into(),
            name.clone(),
            "--volumes".into(),
        ];
        ours.2.push(timed(&mut nanna(down)));

        let project = format!("cmpc{}r{run}", std::process::id() % 10_000);
        let (p1, p2) = (free_port(), free_port());
        let file = compose_file(dir, p1, p2, &workspace.display().to_string());
        let compose = |verb: &[&str]| {
            let mut c = Command::new(tool);
            c.args(tool_args)
                .arg("-p")
                .arg(&project)
                .arg("-f")
                .arg(&file)
                .args(verb);
            if kind == EngineKind::Docker {
                c.env("DOCKER_HOST", address);
            }
            c
        };
        let start = Instant::now();
        timed(&mut compose(&["up", "-d"]));
        wait_healthy(p1, p2);
        theirs.0.push(start.elapsed().as_secs_f64());
        theirs.1.push(timed(&mut compose(&["up", "-d"])));
        theirs.2.push(timed(&mut compose(&["down", "-v"])));
        if kind == EngineKind::Podman {
            // podman-compose 1.0.3 leaves its network behind.
            let _ = Command::new("podman")
                .args(["network", "rm", &format!("{project}_default")])
                .output();
        }
    }
    println!(
        "vs {tool} (median of {runs}): up to healthy {:.3} s vs {:.3} s; no-op up {:.3} s vs {:.3} s; down {:.3} s vs {:.3} s",
        median(ours.0),
        median(theirs.0),
        median(ours.1),
        median(theirs.1),
        median(ours.2),
        median(theirs.2)
    );
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|path| path.is_file())
    })
}

fn up_args(s: &StackSettings, engine: &str) -> Vec<String> {
    vec![
        "up".into(),
        "--engine".into(),
        engine.into(),
        "--name".into(),
        s.name.clone(),
        "--gpu".into(),
        "none".into(),
        "--ollama-image".into(),
        OLLAMA.into(),
        "--harness-image".into(),
        ASSISTANT.into(),
        "--listen".into(),
        s.listen.to_string(),
        "--assistant-listen".into(),
        s.assistant_listen.to_string(),
        "--workspace".into(),
        s.workspace.display().to_string(),
    ]
}

fn main() {
    let runs: usize = std::env::var("NANNA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = target_dir().join("nanna-deploy-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let workspace = tempfile::tempdir().unwrap();

    // Images.
    let nanna = binary("nanna", "nanna");
    let llm = binary("nanna-scripted-llm", "nanna-testkit");
    let assistant_request = BuildRequest {
        binary: Some(nanna.clone()),
        ..Default::default()
    };
    let mut build_times = Vec::new();
    let mut assistant = (PathBuf::new(), 0.0, 0);
    for _ in 0..runs {
        assistant = build_archive(&assistant_request, ASSISTANT, &dir);
        build_times.push(assistant.1);
    }
    println!(
        "assistant image ({}): build {:.2} s median of {runs}, archive {:.1} MB",
        nanna.display(),
        median(build_times),
        assistant.2 as f64 / 1e6
    );
    let ollama_request = BuildRequest {
        binary: Some(llm),
        ports: vec![11434],
        ..Default::default()
    };
    let (ollama_archive, ollama_secs, ollama_size) = build_archive(&ollama_request, OLLAMA, &dir);
    println!(
        "stand-in model-server image: build {ollama_secs:.2} s, {:.1} MB",
        ollama_size as f64 / 1e6
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let deploy = PathBuf::from(env!("CARGO_BIN_EXE_nanna-deploy"));
    for kind in [EngineKind::Podman, EngineKind::Docker] {
        let var = match kind {
            EngineKind::Podman => "NANNA_TEST_PODMAN_SOCKET",
            EngineKind::Docker => "NANNA_TEST_DOCKER_SOCKET",
        };
        let Some(socket) = std::env::var(var).ok().filter(|v| !v.is_empty()) else {
            println!("skipping {kind}: set {var} (see .ci/engines.sh)");
            continue;
        };
        let mut env = ProbeEnv::isolated(HostRoot::system());
        let address = format!("unix://{socket}");
        let (choice, cli, host_var) = match kind {
            EngineKind::Podman => {
                env.container_host = Some(address.clone());
                (
                    EngineChoice::Podman,
                    Cli { program: "podman" },
                    "CONTAINER_HOST",
                )
            }
            EngineKind::Docker => {
                env.docker_host = Some(address.clone());
                (
                    EngineChoice::Docker,
                    Cli { program: "docker" },
                    "DOCKER_HOST",
                )
            }
        };
        env.engine_timeout = Duration::from_secs(20);
        let engine: Engine = runtime.block_on(stack::connect(choice, &env)).unwrap();
        let ctx = StackContext::quiet(&engine, &env);
        let load = Instant::now();
        runtime.block_on(stack::load(&ctx, &assistant.0)).unwrap();
        let load_secs = load.elapsed().as_secs_f64();
        runtime
            .block_on(stack::load(&ctx, &ollama_archive))
            .unwrap();
        let all = DownOptions {
            volumes: true,
            ..DownOptions::default()
        };
        println!("\n== {kind} {} ==", engine.version);
        println!("assistant image load: {load_secs:.2} s");

        let mut ours = Vec::new();
        let mut ours_cli = Vec::new();
        let mut noop = Vec::new();
        let mut noop_cli = Vec::new();
        let mut theirs = Vec::new();
        for run in 0..runs {
            // Library: up to healthy, then no-op ups.
            let name = format!("bench{}r{run}", std::process::id() % 10_000);
            let mut options = UpOptions::new(settings(&name, workspace.path()));
            options.gpu = GpuChoice::Only(Accelerator::None);
            options.settings.layout = Layout::Network;
            let start = Instant::now();
            runtime.block_on(stack::up(&ctx, &options)).unwrap();
            ours.push(start.elapsed().as_secs_f64());
            for _ in 0..3 {
                let start = Instant::now();
                let report = runtime.block_on(stack::up(&ctx, &options)).unwrap();
                noop.push(start.elapsed().as_secs_f64());
                assert!(!report.changed);
            }
            // The CLI binary: no-op (process start + engine probe + checks).
            for _ in 0..2 {
                let start = Instant::now();
                let out = Command::new(&deploy)
                    .args(up_args(&options.settings, kind.as_str()))
                    .env(host_var, &address)
                    .env("XDG_STATE_HOME", dir.join("state"))
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                noop_cli.push(start.elapsed().as_secs_f64());
            }
            runtime.block_on(stack::down(&ctx, &name, &all)).unwrap();

            // The CLI binary: up to healthy.
            let name = format!("benchc{}r{run}", std::process::id() % 10_000);
            let s = settings(&name, workspace.path());
            let start = Instant::now();
            let out = Command::new(&deploy)
                .args(up_args(&s, kind.as_str()))
                .env(host_var, &address)
                .env("XDG_STATE_HOME", dir.join("state"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            ours_cli.push(start.elapsed().as_secs_f64());
            runtime.block_on(stack::down(&ctx, &name, &all)).unwrap();

            // The engine's CLI.
            let name = format!("{}r{run}", std::process::id() % 10_000);
            theirs.push(cli_sequence(
                &cli,
                &name,
                &workspace.path().display().to_string(),
            ));
        }
        let (ours_m, ours_cli_m, theirs_m) = (median(ours), median(ours_cli), median(theirs));
        println!("up to healthy, library:          {ours_m:.3} s (median of {runs})");
        println!("up to healthy, nanna-deploy up:  {ours_cli_m:.3} s");
        println!(
            "up to healthy, {} CLI sequence: {theirs_m:.3} s",
            cli.program
        );
        println!(
            "ratio nanna-deploy up / CLI:     {:.2}x (target <= 1.2x), library {:.2}x",
            ours_cli_m / theirs_m,
            ours_m / theirs_m
        );
        println!(
            "no-op up, library:               {:.3} s (target <= 0.2 s)",
            median(noop)
        );
        println!("no-op up, nanna-deploy process:  {:.3} s", median(noop_cli));
        compose_comparison(
            kind,
            &deploy,
            host_var,
            &address,
            workspace.path(),
            &dir,
            runs,
        );
    }
}

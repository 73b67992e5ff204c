//! `nanna-deploy` under faults, on the real engines (issue 17): two `up`s at once, signals
//! during the health wait, the engine dying during create and during the wait, a stack
//! found without `--engine`. The engine that dies is a private one this test starts (a
//! Podman API service, or a dockerd with its own data root and no iptables changes): the
//! shared engines are never stopped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bollard::query_parameters::ListNetworksOptions;
use common::stack::*;
use nanna_deploy::engine::{Engine, EngineKind};
use nanna_deploy::stack::spec::Layout;
use nanna_deploy::stack::{self, DownOptions, StackContext, StackError};
use nanna_deploy::{DeployEvent, Reporter};
use serde_json::Value;

fn json_line(bytes: &[u8]) -> Value {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn networks_named(engine: &Engine, name: &str) -> usize {
    engine
        .client
        .list_networks(None::<ListNetworksOptions>)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.name.as_deref() == Some(name))
        .count()
}

/// Issue 17 item 1: two `up`s of one stack at once, bounded repetitions: on this host (one
/// lock file), as two users (two runtime directories: the engine claim decides), and in
/// Podman's pod layout. Both succeed, one waiting for the other; never two networks or
/// pods of one name; `down` cleans up.
async fn concurrent_ups(kind: EngineKind) {
    let Some((engine, env)) = engine(kind).await else {
        return;
    };
    ensure_images(&engine, &env).await;
    let ctx = StackContext::quiet(&engine, &env);
    let address = engine.socket.clone();
    let state = tempfile::tempdir().unwrap();
    let (run_a, run_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ws = workspace();
    let mut rounds = vec![(Layout::Network, true), (Layout::Network, false)];
    if kind == EngineKind::Podman {
        rounds.push((Layout::Pod, true));
    }
    for (layout, same_host) in rounds {
        let stack = unique("c");
        let _cleanup = Cleanup::new(&engine, &stack);
        let s = settings(&stack, layout, OLLAMA_BASE, ws.path());
        let spawn = |runtime: &Path| {
            deploy(runtime, state.path())
                .args(up_args(&s, kind))
                .env(host_var(kind), &address)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let first = spawn(run_a.path());
        let second = spawn(if same_host {
            run_a.path()
        } else {
            run_b.path()
        });
        for child in [first, second] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{layout:?} same_host={same_host}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let group = format!("nanna-{stack}");
        match layout {
            Layout::Network => assert_eq!(networks_named(&engine, &group).await, 1),
            Layout::Pod => {
                let current = stack::actual(&engine, &stack).await.unwrap();
                assert_eq!(current.pods.len(), 1, "{current:?}");
            }
        }
        let status = stack::status(&ctx, &stack).await.unwrap();
        assert!(status.is_healthy(), "{status:?}");
        let all = DownOptions {
            volumes: true,
            ..DownOptions::default()
        };
        stack::down(&ctx, &stack, &all).await.unwrap();
        assert_nothing_left(&engine, &stack).await;
        assert!(
            stack::actual(&engine, &stack).await.unwrap().is_empty(),
            "the claim is gone too"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ups_on_podman() {
    concurrent_ups(EngineKind::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ups_on_docker() {
    concurrent_ups(EngineKind::Docker).await;
}

/// Issue 17 item 3: SIGINT and SIGTERM during the health wait roll back (exit 130 / 143,
/// the error as JSON), nothing left.
async fn signals_roll_back(kind: EngineKind) {
    let Some((engine, env)) = engine(kind).await else {
        return;
    };
    ensure_images(&engine, &env).await;
    let address = engine.socket.clone();
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ws = workspace();
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let stack = unique("s");
        let _cleanup = Cleanup::new(&engine, &stack);
        let s = settings(&stack, Layout::Network, SLEEPER, ws.path());
        let child = deploy(dirs.0.path(), dirs.1.path())
            .args(up_args(&s, kind))
            .arg("--json")
            .env(host_var(kind), &address)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Both containers run: the wait for the model server has begun.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let current = stack::actual(&engine, &stack).await.unwrap();
            if current.containers.len() == 2 && current.containers.iter().all(|c| c.running()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the stack never started: {current:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pid = i32::try_from(child.id()).unwrap();
        // SAFETY: signals the child this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let error = json_line(&out.stdout);
        assert_eq!(error["error"]["code"], "interrupted", "{error}");
        assert!(
            error["error"]["removed"]
                .as_array()
                .is_some_and(|r| r.len() >= 4),
            "{error}"
        );
        assert_eq!(error["error"]["left"], serde_json::json!([]), "{error}");
        assert_nothing_left(&engine, &stack).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_during_the_wait_roll_back_on_podman() {
    signals_roll_back(EngineKind::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_during_the_wait_roll_back_on_docker() {
    signals_roll_back(EngineKind::Docker).await;
}

/// Whether the engine on `socket` answers `GET /_ping` with 200.
fn pings(socket: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}

/// An engine this test owns and may kill.
struct PrivateEngine {
    kind: EngineKind,
    dir: tempfile::TempDir,
    data: Option<PathBuf>,
    child: Option<Child>,
}

impl PrivateEngine {
    fn socket(&self) -> PathBuf {
        self.dir.path().join("engine.sock")
    }

    fn address(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The private dockerd's default bridge (interface names have at most 15 characters).
    fn bridge(&self) -> String {
        format!("nanit{}", std::process::id() % 1_000_000)
    }

    fn make_bridge(&self) {
        let name = self.bridge();
        let third = std::process::id() % 200 + 20;
        for args in [
            vec!["link", "add", name.as_str(), "type", "bridge"],
            vec![
                "addr",
                "add",
                &format!("10.231.{third}.1/24"),
                "dev",
                name.as_str(),
            ],
            vec!["link", "set", name.as_str(), "up"],
        ] {
            let _ = Command::new("ip").args(&args).output();
        }
    }

    fn start(kind: EngineKind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = (kind == EngineKind::Docker).then(|| {
            // overlay2 needs ext4/xfs: below /var/lib, not the temporary directory.
            let path = PathBuf::from(format!(
                "/var/lib/nanna-deploy-it/docker-{}",
                std::process::id()
            ));
            std::fs::create_dir_all(&path).unwrap();
            path
        });
        let mut engine = Self {
            kind,
            dir,
            data,
            child: None,
        };
        if kind == EngineKind::Docker {
            engine.make_bridge();
        }
        engine.spawn();
        engine
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let log = std::fs::File::create(self.dir.path().join("engine.log")).unwrap();
        let mut command = match self.kind {
            // Shares the storage of the shared service (CONTAINERS_CONF/_STORAGE_CONF), so
            // its images are there; killing it leaves containers running, as on a host.
            EngineKind::Podman => {
                let mut c = Command::new("podman");
                c.args(["system", "service", "--time=0", &self.address()])
                    .env_remove("CONTAINER_HOST");
                c
            }
            EngineKind::Docker => {
                let pid_file = self.dir.path().join("dockerd.pid");
                // A dockerd killed hard leaves its pid file behind.
                let _ = std::fs::remove_file(&pid_file);
                let mut c = Command::new("dockerd");
                c.arg("--data-root")
                    .arg(self.data.as_ref().unwrap())
                    .arg("--exec-root")
                    .arg(self.dir.path().join("exec"))
                    .arg("-H")
                    .arg(self.address())
                    .arg("--pidfile")
                    .arg(pid_file)
                    // Its own default bridge: with `--bridge=none` dockerd deletes the host's
                    // docker0, which belongs to the shared engine (moby daemon_unix.go,
                    // removeDefaultBridgeInterface). No iptables changes either.
                    .arg(format!("--bridge={}", self.bridge()))
                    .args(["--iptables=false", "--ip-masq=false"]);
                c
            }
        };
        command.stdout(log.try_clone().unwrap()).stderr(log);
        self.child = Some(command.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pings(&self.socket()) {
            assert!(
                Instant::now() < deadline,
                "the private engine did not start: {}",
                std::fs::read_to_string(self.dir.path().join("engine.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL for the engine: the Podman service, or dockerd and its containerd (the
    /// containers' shims live on, as on a host whose engine service dies).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.kind == EngineKind::Docker {
            let pid_file = self.dir.path().join("exec/containerd/containerd.pid");
            if let Some(pid) = std::fs::read_to_string(pid_file)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                // SAFETY: the containerd the private dockerd started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let deadline = Instant::now() + Duration::from_secs(10);
                while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Processes the private engine started that are still running (containers' shims and
    /// what they run), found by the engine's directory on their command line.
    fn leftovers(&self) -> Vec<i32> {
        let marker = self.dir.path().display().to_string();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                pids.push(pid);
            }
        }
        pids
    }

    fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .map_or(0, |c| i32::try_from(c.id()).unwrap_or(0))
    }
}

/// Removes every container, network and volume of the private engine (on a test failure
/// they would otherwise outlive it: bridges stay on the host).
fn empty(kind: EngineKind, address: String) {
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let env = probe_env(kind, &address);
            let Ok(engine) = stack::connect(nanna_deploy::EngineChoice::only(kind), &env).await
            else {
                return;
            };
            let client = &engine.client;
            let all = bollard::query_parameters::ListContainersOptions {
                all: true,
                ..Default::default()
            };
            for c in client.list_containers(Some(all)).await.unwrap_or_default() {
                if let Some(id) = c.id {
                    let force = bollard::query_parameters::RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    };
                    let _ = client.remove_container(&id, Some(force)).await;
                }
            }
            for n in client
                .list_networks(None::<ListNetworksOptions>)
                .await
                .unwrap_or_default()
            {
                if let (Some(id), Some(name)) = (n.id, n.name)
                    && !["bridge", "host", "none", "podman"].contains(&name.as_str())
                {
                    let _ = client.remove_network(&id).await;
                }
            }
        });
    })
    .join();
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.child.is_some() && self.kind == EngineKind::Docker {
            empty(self.kind, self.address());
        }
        if let Some(mut child) = self.child.take() {
            // SAFETY: asks the engine this test started to shut down (dockerd then stops
            // its containerd and containers).
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Shims (and their containers) outlive a killed engine: end them by pid.
        for pid in self.leftovers() {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            for child in children
                .split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok())
            {
                // SAFETY: a container process of the private engine.
                unsafe { libc::kill(child, libc::SIGKILL) };
            }
            // SAFETY: a shim of the private engine.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let marker = self.dir.path().display().to_string();
        for target in mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|t| t.starts_with(&marker))
        {
            let _ = Command::new("umount").arg(target).output();
        }
        if let Some(data) = &self.data {
            let _ = Command::new("umount").arg("-R").arg(data).output();
            let _ = std::fs::remove_dir_all(data);
            let _ = Command::new("ip")
                .args(["link", "delete", &self.bridge()])
                .output();
        }
    }
}

/// Issue 17 item 4: the engine dies while `up` creates, and while it waits for health:
/// the failure is immediate and says what is left; after a restart `up` recovers and
/// `down` cleans.
async fn engine_dies(kind: EngineKind) {
    if socket(kind).is_none() {
        return;
    }
    let mut private = tokio::task::spawn_blocking(move || PrivateEngine::start(kind))
        .await
        .unwrap();
    let (engine, env) = connect(kind, &private.address()).await;
    ensure_images(&engine, &env).await;
    let ws = workspace();

    // During the wait: the model server never answers; the engine is killed once both
    // containers run.
    let stack = unique("d");
    let s = settings(&stack, Layout::Network, SLEEPER, ws.path());
    let up = {
        let (engine, env, s) = (engine.clone(), env.clone(), s.clone());
        tokio::spawn(async move {
            let ctx = StackContext::quiet(&engine, &env);
            let mut o = options(s);
            o.timeout = Duration::from_secs(300);
            stack::up(&ctx, &o).await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let current = stack::actual(&engine, &stack).await.unwrap();
        if current.containers.len() == 2 && current.containers.iter().all(|c| c.running()) {
            break;
        }
        assert!(Instant::now() < deadline, "the stack never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    private.kill();
    let error = tokio::time::timeout(Duration::from_secs(60), up)
        .await
        .expect("up noticed the engine was gone")
        .unwrap()
        .unwrap_err();
    check_engine_gone(&error);
    recover(&mut private, kind, &stack, &s).await;

    // During create: killed when the first container is about to be created.
    let stack = unique("d");
    let s = settings(&stack, Layout::Network, OLLAMA_BASE, ws.path());
    let pid = private.pid();
    let fired = Arc::new(AtomicBool::new(false));
    let killer = {
        let fired = fired.clone();
        move |event: DeployEvent| {
            if matches!(
                &event,
                DeployEvent::Step {
                    action: "create",
                    object: "container",
                    ..
                }
            ) && !fired.swap(true, Ordering::SeqCst)
            {
                // SAFETY: kills the private engine this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    let (engine, env) = connect(kind, &private.address()).await;
    let ctx = StackContext {
        events: &killer as &dyn Reporter,
        ..StackContext::quiet(&engine, &env)
    };
    let error = stack::up(&ctx, &options(s.clone())).await.unwrap_err();
    assert!(fired.load(Ordering::SeqCst));
    private.kill();
    check_engine_gone(&error);
    recover(&mut private, kind, &stack, &s).await;
}

fn check_engine_gone(error: &StackError) {
    match error {
        StackError::PartWay { cause, left, .. } => {
            assert!(
                matches!(cause.as_ref(), StackError::EngineGone { .. }),
                "{error}"
            );
            assert!(!left.is_empty(), "{error}");
            assert!(
                left.iter().all(|l| l.contains("does not answer")),
                "{error}"
            );
        }
        other => panic!("expected the engine to be reported gone: {other}"),
    }
    assert_eq!(error.code(), "engine_gone");
    assert!(error.to_string().contains("nanna-deploy down"), "{error}");
}

/// Restarts the engine; `up` (with a healthy model server) recovers; `down` leaves nothing.
/// On Docker only `down`: the private dockerd runs without iptables rules (so as not to
/// touch the shared engine's), and after a crash it does not forward published ports to
/// containers again, so no health probe can pass there; that is the private engine's
/// limit, not Docker's as installed.
async fn recover(
    private: &mut PrivateEngine,
    kind: EngineKind,
    stack: &str,
    s: &nanna_deploy::stack::StackSettings,
) {
    let down_first = kind == EngineKind::Docker;
    tokio::task::block_in_place(|| private.spawn());
    let (engine, env) = connect(kind, &private.address()).await;
    let ctx = StackContext::quiet(&engine, &env);
    let all = DownOptions {
        volumes: true,
        stop_timeout: Some(0),
        ..DownOptions::default()
    };
    if down_first {
        stack::down(&ctx, stack, &all).await.unwrap();
        assert_nothing_left(&engine, stack).await;
        return;
    }
    let mut healthy = s.clone();
    healthy.ollama_image = Some(OLLAMA_BASE.to_string());
    // A new address for the assistant too: a private dockerd without iptables rules does
    // not restore a kept container's port proxy after a crash, which is not what is tested.
    healthy.assistant_listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let report = stack::up(&ctx, &options(healthy)).await.unwrap();
    assert!(report.changed);
    stack::down(&ctx, stack, &all).await.unwrap();
    assert_nothing_left(&engine, stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_dying_is_noticed_on_podman() {
    engine_dies(EngineKind::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_dying_is_noticed_on_docker() {
    engine_dies(EngineKind::Docker).await;
}

/// Issue 17 items 5 and 7: after `up --engine podman`, `status` and `down` find the stack
/// without `--engine` although `$DOCKER_HOST` (which auto tries first) points at Docker;
/// with the stack on both engines they say so; errors are JSON objects on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_remembers_its_engine() {
    let (Some((podman, penv)), Some((docker, denv))) = (
        engine(EngineKind::Podman).await,
        engine(EngineKind::Docker).await,
    ) else {
        return;
    };
    ensure_images(&podman, &penv).await;
    ensure_images(&docker, &denv).await;
    let stack = unique("r");
    let _clean_podman = Cleanup::new(&podman, &stack);
    let _clean_docker = Cleanup::new(&docker, &stack);
    let (runtime, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ws = workspace();
    let run = |args: &[String]| {
        deploy(runtime.path(), state.path())
            .args(args)
            .env("DOCKER_HOST", &docker.socket)
            .env("CONTAINER_HOST", &podman.socket)
            .output()
            .unwrap()
    };
    let s = settings(&stack, Layout::Network, OLLAMA_BASE, ws.path());
    let up = run(&up_args(&s, EngineKind::Podman));
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );

    let named = |command: &str| {
        vec![
            command.to_string(),
            "--name".into(),
            stack.clone(),
            "--json".into(),
        ]
    };
    let status = run(&named("status"));
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(json_line(&status.stdout)["engine"], "podman");

    // The same stack on Docker too: now the name is ambiguous.
    let mut on_docker = s.clone();
    on_docker.listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    on_docker.assistant_listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let up = run(&up_args(&on_docker, EngineKind::Docker));
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let status = run(&named("status"));
    assert_eq!(status.status.code(), Some(1));
    assert_eq!(
        json_line(&status.stdout)["error"]["code"],
        "ambiguous_engine"
    );
    let mut down_docker = named("down");
    down_docker.extend(["--engine".into(), "docker".into(), "--volumes".into()]);
    assert!(run(&down_docker).status.success());

    // down without --engine finds Podman.
    let down = run(&named("down"));
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let report = json_line(&down.stdout);
    assert_eq!(
        report["containers"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );
    let left = stack::actual(&podman, &stack).await.unwrap();
    assert!(
        left.containers.is_empty() && left.networks.is_empty(),
        "{left:?}"
    );
    assert_nothing_left(&docker, &stack).await;
    let mut volumes = named("down");
    volumes.push("--volumes".into());
    assert!(run(&volumes).status.success());
    assert_nothing_left(&podman, &stack).await;

    // A stack nowhere: a JSON error on stdout.
    let status = run(&named("status"));
    assert_eq!(status.status.code(), Some(1));
    assert_eq!(json_line(&status.stdout)["error"]["code"], "no_stack");
}

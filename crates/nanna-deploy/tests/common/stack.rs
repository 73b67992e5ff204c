//! Helpers for the tests that run the stack on the real engines (NANNA_TEST_PODMAN_SOCKET /
//! NANNA_TEST_DOCKER_SOCKET, see .ci/engines.sh): engines, the test images (built here
//! with nanna-image: no registry), names, ports, the binary, cleanup.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nanna_deploy::engine::{Engine, EngineChoice, EngineKind};
use nanna_deploy::host::{HostRoot, ProbeEnv};
use nanna_deploy::stack::spec::{Layout, StackSettings};
use nanna_deploy::stack::{self, BuildRequest, DownOptions, StackContext, UpOptions};
use nanna_deploy::{Accelerator, GpuChoice};

/// The scripted LLM server as a model server, with busybox as `/bin/test` (device checks).
pub const OLLAMA_BASE: &str = "localhost/nanna-test-ollama:it-base";
/// The same with another environment (another image id).
pub const OLLAMA_REV2: &str = "localhost/nanna-test-ollama:it-rev2";
/// `nanna serve`, with busybox at `/bin/busybox` (to attack the container from inside).
pub const ASSISTANT: &str = "localhost/nanna-test-assistant:it";
/// A model server that exits with code 3 at once, after a line on stderr.
pub const CRASHER: &str = "localhost/nanna-test-crash:it";
/// A model server that never answers (sleeps).
pub const SLEEPER: &str = "localhost/nanna-test-sleep:it";
/// What the crashing image prints before it exits.
pub const CRASH_LINE: &str = "model server failed to start: no usable backend";

pub fn require() -> bool {
    std::env::var("NANNA_TEST_REQUIRE_ENGINES").is_ok_and(|v| v == "1")
}

pub fn socket_var(kind: EngineKind) -> &'static str {
    match kind {
        EngineKind::Podman => "NANNA_TEST_PODMAN_SOCKET",
        EngineKind::Docker => "NANNA_TEST_DOCKER_SOCKET",
    }
}

/// The socket of `kind`, or `None` (test skipped) when its variable is unset.
pub fn socket(kind: EngineKind) -> Option<String> {
    let var = socket_var(kind);
    match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        Some(socket) => Some(socket),
        None => {
            assert!(
                !require(),
                "{var} is unset but NANNA_TEST_REQUIRE_ENGINES=1"
            );
            println!("skipping: set {var} (see .ci/engines.sh)");
            None
        }
    }
}

pub fn probe_env(kind: EngineKind, address: &str) -> ProbeEnv {
    let mut env = ProbeEnv::isolated(HostRoot::system());
    match kind {
        EngineKind::Podman => env.container_host = Some(address.to_string()),
        EngineKind::Docker => env.docker_host = Some(address.to_string()),
    }
    env.engine_timeout = Duration::from_secs(20);
    env
}

/// Connects to the engine of `kind` at `address`.
pub async fn connect(kind: EngineKind, address: &str) -> (Engine, ProbeEnv) {
    let env = probe_env(kind, address);
    let engine = stack::connect(EngineChoice::only(kind), &env)
        .await
        .unwrap_or_else(|e| panic!("{address} does not answer: {e}"));
    assert_eq!(engine.kind, kind);
    (engine, env)
}

/// The shared engine of `kind`, or `None` (test skipped).
pub async fn engine(kind: EngineKind) -> Option<(Engine, ProbeEnv)> {
    let socket = socket(kind)?;
    Some(connect(kind, &format!("unix://{socket}")).await)
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// `target/debug/<name>`, built with `cargo build -p <package>` when missing.
pub fn binary(name: &str, package: &str) -> PathBuf {
    let path = target_dir().join("debug").join(name);
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", package, "--bin", name])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
    }
    path
}

fn busybox_image(tag: &str, script: &[&str]) -> BuildRequest {
    let mut entrypoint = vec!["/bin/busybox".to_string()];
    entrypoint.extend(script.iter().map(|s| s.to_string()));
    BuildRequest {
        binary: Some(PathBuf::from("/bin/busybox")),
        tag: Some(tag.to_string()),
        entrypoint,
        ..Default::default()
    }
}

/// Image archives, written once per test process.
pub fn archives() -> &'static BTreeMap<&'static str, PathBuf> {
    static ARCHIVES: OnceLock<BTreeMap<&'static str, PathBuf>> = OnceLock::new();
    ARCHIVES.get_or_init(|| {
        // Same inputs, same bytes: concurrent writers are harmless (write, then rename).
        let dir = target_dir().join("nanna-deploy-it-images");
        std::fs::create_dir_all(&dir).unwrap();
        let llm = binary("nanna-scripted-llm", "nanna-testkit");
        let nanna = binary("nanna", "nanna");
        let busybox = Path::new("/bin/busybox");
        assert!(busybox.is_file(), "the engine tests need busybox-static");
        let base = BuildRequest {
            binary: Some(llm),
            tag: Some(OLLAMA_BASE.to_string()),
            ports: vec![11434],
            files: vec![(busybox.to_path_buf(), "/bin/test".to_string())],
            ..Default::default()
        };
        let mut rev2 = base.clone();
        rev2.tag = Some(OLLAMA_REV2.to_string());
        rev2.env
            .insert("NANNA_TEST_REVISION".to_string(), "2".to_string());
        let assistant = BuildRequest {
            binary: Some(nanna),
            files: vec![(busybox.to_path_buf(), "/bin/busybox".to_string())],
            ..Default::default()
        };
        let crash = format!("echo '{CRASH_LINE}' >&2; exit 3");
        let requests = vec![
            (OLLAMA_BASE, base),
            (OLLAMA_REV2, rev2),
            (ASSISTANT, assistant),
            (CRASHER, busybox_image(CRASHER, &["sh", "-c", &crash])),
            (SLEEPER, busybox_image(SLEEPER, &["sleep", "3600"])),
        ];
        let mut out = BTreeMap::new();
        for (name, request) in requests {
            let mut spec = stack::spec_for(&request).unwrap();
            spec.reference = name.to_string();
            let file = name.replace(['/', ':'], "_");
            let path = dir.join(format!("{file}.tar"));
            let partial = dir.join(format!("{file}.{}.part", std::process::id()));
            let writer = std::fs::File::create(&partial).unwrap();
            nanna_image::write_docker_archive(&spec, std::io::BufWriter::new(writer)).unwrap();
            std::fs::rename(&partial, &path).unwrap();
            out.insert(name, path);
        }
        out
    })
}

/// Loads the test images into `engine` once per process and engine address.
pub async fn ensure_images(engine: &Engine, env: &ProbeEnv) {
    static LOADED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let archives = tokio::task::spawn_blocking(archives).await.unwrap();
    if LOADED.lock().unwrap().contains(&engine.socket) {
        return;
    }
    let ctx = StackContext::quiet(engine, env);
    for (tag, path) in archives {
        load_replacing(&ctx, tag, path).await;
    }
    LOADED.lock().unwrap().push(engine.socket.clone());
}

/// Loads `archive` (which tags `tag`); when that moves the tag to a new image (the binary
/// was rebuilt), removes the image the tag named before, so no dangling image is left.
pub async fn load_replacing(ctx: &StackContext<'_>, tag: &str, archive: &Path) {
    let before = stack::image_id(ctx.engine, tag).await.unwrap();
    stack::load(ctx, archive).await.unwrap();
    let after = stack::image_id(ctx.engine, tag).await.unwrap();
    if let Some(old) = before.filter(|old| Some(old) != after.as_ref()) {
        let _ = ctx
            .engine
            .client
            .remove_image(
                &old,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    }
}

pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "it{prefix}{}x{}",
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A workspace directory of the test's own (the temporary directory itself is refused).
pub fn workspace() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Removes the stack (with volumes) when dropped, so a failing test cleans up.
pub struct Cleanup {
    pub kind: EngineKind,
    pub address: String,
    pub stack: String,
    /// Image tags the test made, removed too.
    pub images: Vec<String>,
}

impl Cleanup {
    pub fn new(engine: &Engine, stack: &str) -> Self {
        Self {
            kind: engine.kind,
            address: engine.socket.clone(),
            stack: stack.to_string(),
            images: Vec::new(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (kind, address, stack) = (self.kind, self.address.clone(), self.stack.clone());
        let images = std::mem::take(&mut self.images);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let env = probe_env(kind, &address);
                if let Ok(engine) = stack::connect(EngineChoice::only(kind), &env).await {
                    let ctx = StackContext::quiet(&engine, &env);
                    let options = DownOptions {
                        volumes: true,
                        stop_timeout: Some(0),
                        ..DownOptions::default()
                    };
                    let _ = stack::down(&ctx, &stack, &options).await;
                    for image in images {
                        let _ = engine
                            .client
                            .remove_image(
                                &image,
                                None::<bollard::query_parameters::RemoveImageOptions>,
                                None,
                            )
                            .await;
                    }
                }
            });
        })
        .join();
    }
}

pub fn settings(
    stack: &str,
    layout: Layout,
    ollama_image: &str,
    workspace: &Path,
) -> StackSettings {
    let mut s = StackSettings::new(stack, workspace.to_path_buf());
    s.layout = layout;
    s.ollama_image = Some(ollama_image.to_string());
    s.assistant_image = ASSISTANT.to_string();
    s.listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    s.assistant_listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    s
}

pub fn options(settings: StackSettings) -> UpOptions {
    let mut options = UpOptions::new(settings);
    options.gpu = GpuChoice::Only(Accelerator::None);
    options.timeout = Duration::from_secs(90);
    options.pull_timeout = Duration::from_secs(5);
    options.lock_wait = Duration::from_secs(30);
    options
}

pub async fn assert_nothing_left(engine: &Engine, stack: &str) {
    let left = stack::actual(engine, stack).await.unwrap();
    assert!(left.is_empty(), "objects left behind: {left:?}");
}

/// `nanna-deploy` with no engine, host root or GPU setting from the test's environment, and
/// its own runtime and state directories.
pub fn deploy(runtime_dir: &Path, state_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nanna-deploy"));
    for var in [
        "DOCKER_HOST",
        "CONTAINER_HOST",
        "NANNA_HOST_ROOT",
        "GPU_SUPPORT",
        "OLLAMA_MODEL",
        "NANNA_STACK",
    ] {
        command.env_remove(var);
    }
    command
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .env("XDG_STATE_HOME", state_dir);
    command
}

/// The `up` arguments for `settings` on `kind`.
pub fn up_args(s: &StackSettings, kind: EngineKind) -> Vec<String> {
    let mut args = vec![
        "up".to_string(),
        "--engine".into(),
        kind.as_str().into(),
        "--name".into(),
        s.name.clone(),
        "--gpu".into(),
        "none".into(),
        "--type".into(),
        s.layout.as_str().into(),
        "--ollama-image".into(),
        s.ollama_image.clone().unwrap_or_default(),
        "--harness-image".into(),
        s.assistant_image.clone(),
        "--listen".into(),
        s.listen.to_string(),
        "--assistant-listen".into(),
        s.assistant_listen.to_string(),
        "--workspace".into(),
        s.workspace.display().to_string(),
        "--timeout".into(),
        "90".into(),
    ];
    if !s.assistant {
        args.push("--no-assistant".into());
    }
    args
}

/// The environment variable that points the binary at `kind`'s engine.
pub fn host_var(kind: EngineKind) -> &'static str {
    match kind {
        EngineKind::Podman => "CONTAINER_HOST",
        EngineKind::Docker => "DOCKER_HOST",
    }
}

/// GET over plain TCP (HTTP/1.0), returning the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

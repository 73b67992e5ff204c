//! The stack on the real engines (NANNA_TEST_PODMAN_SOCKET / NANNA_TEST_DOCKER_SOCKET, see
//! .ci/engines.sh), with images built here: the model server is `nanna-scripted-llm` (plus
//! busybox as `/bin/test`, so device checks run inside), the assistant is `nanna serve`.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bollard::query_parameters::TagImageOptions;
use common::fixture::{Card, Fixture};
use nanna_deploy::engine::{Engine, EngineChoice, EngineKind};
use nanna_deploy::host::{HostRoot, ProbeEnv, UserIdentity};
use nanna_deploy::recommend::GpuChoice;
use nanna_deploy::stack::apply::{self, UpOptions};
use nanna_deploy::stack::health::{self, Health};
use nanna_deploy::stack::images::{self, BuildRequest};
use nanna_deploy::stack::plan::Step;
use nanna_deploy::stack::spec::{ExtraDevice, Layout, Service, StackSettings};
use nanna_deploy::stack::{StackError, ops};

const OLLAMA_BASE: &str = "localhost/nanna-test-ollama:it-base";
const OLLAMA_REV2: &str = "localhost/nanna-test-ollama:it-rev2";
const ASSISTANT: &str = "localhost/nanna-test-assistant:it";

fn require() -> bool {
    std::env::var("NANNA_TEST_REQUIRE_ENGINES").is_ok_and(|v| v == "1")
}

fn socket_var(kind: EngineKind) -> &'static str {
    match kind {
        EngineKind::Podman => "NANNA_TEST_PODMAN_SOCKET",
        EngineKind::Docker => "NANNA_TEST_DOCKER_SOCKET",
    }
}

fn probe_env(kind: EngineKind, socket: &str) -> ProbeEnv {
    let mut env = ProbeEnv::isolated(HostRoot::system());
    match kind {
        EngineKind::Podman => env.container_host = Some(format!("unix://{socket}")),
        EngineKind::Docker => env.docker_host = Some(format!("unix://{socket}")),
    }
    env.engine_timeout = Duration::from_secs(20);
    env
}

/// The engine of `kind`, or `None` (test skipped) when its socket variable is unset.
async fn engine(kind: EngineKind) -> Option<(Engine, ProbeEnv)> {
    let var = socket_var(kind);
    let Some(socket) = std::env::var(var).ok().filter(|v| !v.is_empty()) else {
        if require() {
            panic!("{var} is unset but NANNA_TEST_REQUIRE_ENGINES=1");
        }
        println!("skipping: set {var} (see .ci/engines.sh)");
        return None;
    };
    let env = probe_env(kind, &socket);
    let choice = match kind {
        EngineKind::Podman => EngineChoice::Podman,
        EngineKind::Docker => EngineChoice::Docker,
    };
    let engine = nanna_deploy::stack::connect(choice, &env)
        .await
        .unwrap_or_else(|e| panic!("{var}={socket} does not answer: {e}"));
    assert_eq!(engine.kind, kind);
    Some((engine, env))
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// `target/debug/<name>`, built with `cargo build -p <package>` when missing.
fn binary(name: &str, package: &str) -> PathBuf {
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

/// Image archives, written once per test process.
fn archives() -> &'static BTreeMap<&'static str, PathBuf> {
    static ARCHIVES: OnceLock<BTreeMap<&'static str, PathBuf>> = OnceLock::new();
    ARCHIVES.get_or_init(|| {
        // Same inputs, same bytes: concurrent writers are harmless (write, then rename).
        let dir = target_dir().join("nanna-deploy-it-images");
        std::fs::create_dir_all(&dir).unwrap();
        let llm = binary("nanna-scripted-llm", "nanna-testkit");
        let nanna = binary("nanna", "nanna");
        let busybox = Path::new("/bin/busybox");
        let mut requests = vec![
            (
                OLLAMA_BASE,
                BuildRequest {
                    binary: Some(llm.clone()),
                    tag: Some(OLLAMA_BASE.to_string()),
                    ports: vec![11434],
                    files: if busybox.is_file() {
                        vec![(busybox.to_path_buf(), "/bin/test".to_string())]
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                },
            ),
            (
                ASSISTANT,
                BuildRequest {
                    binary: Some(nanna),
                    ..Default::default()
                },
            ),
        ];
        let mut rev2 = requests[0].1.clone();
        rev2.tag = Some(OLLAMA_REV2.to_string());
        rev2.env
            .insert("NANNA_TEST_REVISION".to_string(), "2".to_string());
        requests.push((OLLAMA_REV2, rev2));
        let mut out = BTreeMap::new();
        for (name, request) in requests {
            let mut spec = images::spec_for(&request).unwrap();
            spec.reference = name.to_string();
            let path = dir.join(format!("{}.tar", name.replace(['/', ':'], "_")));
            let partial = dir.join(format!(
                "{}.{}.part",
                name.replace(['/', ':'], "_"),
                std::process::id()
            ));
            let file = std::fs::File::create(&partial).unwrap();
            nanna_image::write_docker_archive(&spec, std::io::BufWriter::new(file)).unwrap();
            std::fs::rename(&partial, &path).unwrap();
            out.insert(name, path);
        }
        out
    })
}

/// Loads the test images into `engine` once per process.
async fn ensure_images(engine: &Engine) {
    static LOADED: Mutex<Vec<EngineKind>> = Mutex::new(Vec::new());
    let archives = tokio::task::spawn_blocking(archives).await.unwrap();
    if LOADED.lock().unwrap().contains(&engine.kind) {
        return;
    }
    for path in archives.values() {
        images::load(engine, path).await.unwrap();
    }
    LOADED.lock().unwrap().push(engine.kind);
}

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "it{prefix}{}x{}",
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes the stack (with volumes) when dropped, so a failing test cleans up.
struct Cleanup {
    kind: EngineKind,
    stack: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let kind = self.kind;
        let stack = self.stack.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Some((engine, _)) = engine(kind).await {
                    let _ = ops::down(&engine, &stack, true).await;
                }
            });
        })
        .join();
    }
}

fn settings(stack: &str, layout: Layout, ollama_image: &str) -> StackSettings {
    let workspace = std::env::temp_dir();
    let mut s = StackSettings::new(stack, workspace);
    s.layout = layout;
    s.ollama_image = Some(ollama_image.to_string());
    s.assistant_image = ASSISTANT.to_string();
    s.listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    s.assistant_listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    s
}

fn options(settings: StackSettings) -> UpOptions {
    let mut options = UpOptions::new(settings);
    options.gpu = GpuChoice::None;
    options.timeout = Duration::from_secs(90);
    options.pull_timeout = Duration::from_secs(5);
    options
}

async fn assert_nothing_left(engine: &Engine, stack: &str) {
    let left = apply::actual(engine, stack).await.unwrap();
    assert!(left.is_empty(), "objects left behind: {left:?}");
}

/// up → healthy → assistant reaches the model server → status → logs → device checks →
/// model pull → update after an image change recreates only that service → up is a no-op
/// → down leaves nothing.
async fn flow(kind: EngineKind, layout: Layout) {
    let Some((engine, env)) = engine(kind).await else {
        return;
    };
    ensure_images(&engine).await;
    let stack = unique(if layout == Layout::Pod { "p" } else { "n" });
    let _cleanup = Cleanup {
        kind,
        stack: stack.clone(),
    };
    let flow_image = format!("localhost/nanna-test-ollama:{stack}");
    let (repo, tag) = flow_image.rsplit_once(':').unwrap();
    let tag_as = |source: &'static str| {
        let client = engine.client.clone();
        let (repo, tag) = (repo.to_string(), tag.to_string());
        async move {
            client
                .tag_image(
                    source,
                    Some(TagImageOptions {
                        repo: Some(repo),
                        tag: Some(tag),
                    }),
                )
                .await
                .unwrap()
        }
    };
    tag_as(OLLAMA_BASE).await;

    let mut s = settings(&stack, layout, &flow_image);
    s.extra_devices = vec![ExtraDevice::parse("/dev/null:/dev/fake-gpu").unwrap()];
    s.model = Some("llama3.1:8b".to_string());
    let opts = options(s.clone());

    // up: everything created, healthy, device visible inside.
    let report = apply::up(&engine, &env, &opts).await.unwrap();
    assert!(report.changed);
    assert_eq!(
        report.plan.created_services(),
        vec![Service::Ollama, Service::Assistant]
    );
    let devices = report.devices.expect("device check ran");
    assert_eq!(devices.paths, vec!["/dev/fake-gpu".to_string()]);
    assert_eq!(devices.method, "exec");
    // The model is served already, so nothing is pulled.
    assert_eq!(report.model_pulled, None);

    // The assistant's /health says the model server is reachable (through the network
    // alias or the pod's localhost).
    let assistant_addr = s.assistant_listen;
    assert_eq!(
        health::probe(Service::Assistant, assistant_addr, Duration::from_secs(5)).await,
        Health::Healthy
    );
    let body = reqwest_like_get(assistant_addr, "/health").await;
    assert!(body.contains("\"model_server\":\"reachable\""), "{body}");
    let expected_url = match layout {
        Layout::Network => format!("http://nanna-{stack}-ollama:11434"),
        Layout::Pod => "http://127.0.0.1:11434".to_string(),
    };
    assert!(body.contains(&expected_url), "{body}");

    // status --json
    let status = ops::status(&engine, &stack).await.unwrap();
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["services"].as_array().unwrap().len(), 2);
    for service in json["services"].as_array().unwrap() {
        assert_eq!(service["state"], "running", "{service}");
        assert_eq!(service["health"], "healthy", "{service}");
    }
    assert_eq!(json["services"][0]["service"], "ollama");
    assert_eq!(json["services"][0]["devices"][0], "/dev/fake-gpu");
    assert_eq!(json["services"][0]["image"], flow_image.as_str());
    match layout {
        Layout::Pod => assert_eq!(json["pod"], format!("nanna-{stack}").as_str()),
        Layout::Network => {
            assert_eq!(json["networks"][0], format!("nanna-{stack}").as_str());
            assert_eq!(
                json["services"][0]["ports"][0],
                format!("127.0.0.1:{}->11434/tcp", s.listen.port()).as_str()
            );
        }
    }

    // logs
    let mut out = Vec::new();
    ops::logs(
        &engine,
        &stack,
        Some(Service::Ollama),
        false,
        Some(50),
        &mut out,
    )
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("11434"), "ollama logs: {text}");
    let mut out = Vec::new();
    ops::logs(&engine, &stack, None, false, None, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("ollama   |"), "{text}");

    // Commands in the containers (what `shell SERVICE -- CMD` runs).
    let mut out = Vec::new();
    let code = ops::exec(
        &engine,
        &stack,
        Service::Ollama,
        vec!["test".into(), "-e".into(), "/dev/fake-gpu".into()],
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(code, 0);
    let code = ops::exec(
        &engine,
        &stack,
        Service::Ollama,
        vec!["test".into(), "-e".into(), "/dev/nope".into()],
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(code, 1);
    let mut out = Vec::new();
    let code = ops::exec(
        &engine,
        &stack,
        Service::Assistant,
        vec!["nanna".into(), "--version".into()],
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(code, 0);
    assert!(
        String::from_utf8_lossy(&out).contains("nanna"),
        "{}",
        String::from_utf8_lossy(&out)
    );

    // A device that is not in the container is reported, never ignored.
    let spec = apply::desired(&engine, &env, &s, GpuChoice::None).unwrap();
    let mut ollama = spec.service(Service::Ollama).unwrap().clone();
    ollama.check_paths = vec!["/dev/not-there".to_string()];
    let error = health::verify_devices(&engine, &ollama).await.unwrap_err();
    assert!(matches!(error, StackError::GpuNotVisible { .. }), "{error}");

    // Pulling through the model server's API, with progress lines.
    health::pull_model(s.listen, "llama3.1:8b", false)
        .await
        .unwrap();
    let error = health::pull_model(s.listen, "no-such-model:1b", false)
        .await
        .unwrap_err();
    assert!(matches!(error, StackError::Pull { .. }), "{error}");

    // A no-op up.
    let ids_before = container_ids(&engine, &stack).await;
    let again = apply::up(&engine, &env, &opts).await.unwrap();
    assert!(!again.changed, "{:?}", again.plan);
    assert!(again.plan.is_noop());
    assert_eq!(container_ids(&engine, &stack).await, ids_before);

    // The model server's image changes: update recreates only it.
    tag_as(OLLAMA_REV2).await;
    let updated = apply::update(&engine, &env, &stack, &options(s.clone()))
        .await
        .unwrap();
    assert!(updated.changed);
    assert_eq!(updated.plan.created_services(), vec![Service::Ollama]);
    assert!(updated.plan.steps.iter().any(
        |st| matches!(st, Step::CreateContainer { service: Service::Ollama, reason, .. } if reason == "image changed")
    ));
    let ids_after = container_ids(&engine, &stack).await;
    assert_eq!(
        ids_after[&Service::Assistant],
        ids_before[&Service::Assistant]
    );
    assert_ne!(ids_after[&Service::Ollama], ids_before[&Service::Ollama]);
    assert_eq!(
        health::probe(Service::Assistant, assistant_addr, Duration::from_secs(5)).await,
        Health::Healthy
    );
    // And up with the same settings is a no-op again.
    assert!(!apply::up(&engine, &env, &opts).await.unwrap().changed);

    // A changed setting recreates only the service that uses it.
    let mut changed = s.clone();
    changed.context_length = 4096;
    let report = apply::up(&engine, &env, &options(changed.clone()))
        .await
        .unwrap();
    assert_eq!(report.plan.created_services(), vec![Service::Ollama]);

    // restart keeps the containers and comes back healthy.
    let before_restart = container_ids(&engine, &stack).await;
    ops::restart(&engine, &stack, Duration::from_secs(60), false)
        .await
        .unwrap();
    assert_eq!(container_ids(&engine, &stack).await, before_restart);
    assert_eq!(
        health::probe(Service::Assistant, assistant_addr, Duration::from_secs(5)).await,
        Health::Healthy
    );

    // down keeps the models volume unless asked.
    let down = ops::down(&engine, &stack, false).await.unwrap();
    assert_eq!(down.containers.len(), 2);
    assert_eq!(down.kept_volumes, vec![format!("nanna-{stack}-models")]);
    let left = apply::actual(&engine, &stack).await.unwrap();
    assert!(left.containers.is_empty() && left.networks.is_empty() && left.pods.is_empty());
    assert_eq!(left.volumes.len(), 1);
    let down = ops::down(&engine, &stack, true).await.unwrap();
    assert_eq!(down.volumes, vec![format!("nanna-{stack}-models")]);
    assert_nothing_left(&engine, &stack).await;
    let _ = engine
        .client
        .remove_image(
            &flow_image,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
}

async fn container_ids(engine: &Engine, stack: &str) -> BTreeMap<Service, String> {
    apply::actual(engine, stack)
        .await
        .unwrap()
        .containers
        .into_iter()
        .filter_map(|c| c.service.map(|s| (s, c.id)))
        .collect()
}

/// GET over plain TCP (HTTP/1.0), returning the body.
async fn reqwest_like_get(addr: SocketAddr, path: &str) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_stack_on_podman() {
    flow(EngineKind::Podman, Layout::Network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_stack_on_docker() {
    flow(EngineKind::Docker, Layout::Network).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_stack_on_podman() {
    flow(EngineKind::Podman, Layout::Pod).await;
}

/// Every check that must fail before anything is created, on one engine.
async fn preflight_errors(kind: EngineKind) {
    let Some((engine, env)) = engine(kind).await else {
        return;
    };
    ensure_images(&engine).await;
    let stack = unique("e");
    let _cleanup = Cleanup {
        kind,
        stack: stack.clone(),
    };

    // Port in use.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = settings(&stack, Layout::Network, OLLAMA_BASE);
    s.listen = taken.local_addr().unwrap();
    let error = apply::up(&engine, &env, &options(s)).await.unwrap_err();
    assert!(matches!(error, StackError::PortInUse { .. }), "{error}");
    assert!(error.to_string().contains("--listen"), "{error}");
    assert_nothing_left(&engine, &stack).await;
    drop(taken);

    // Image absent and not pullable.
    let s = settings(&stack, Layout::Network, "localhost/nanna-test-absent:nope");
    let error = apply::up(&engine, &env, &options(s)).await.unwrap_err();
    assert!(
        matches!(error, StackError::ImageUnavailable { .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("load it with --image-archive or build it with `nanna-deploy images build`"),
        "{error}"
    );
    assert_nothing_left(&engine, &stack).await;

    // Requested GPU absent (fixture host without GPUs).
    let fx = Fixture::new();
    let mut fixture_env = ProbeEnv::isolated(HostRoot::new(fx.root()));
    fixture_env.user = UserIdentity {
        uid: Some(0),
        name: Some("root".into()),
        gids: vec![0],
    };
    for gpu in [GpuChoice::Nvidia, GpuChoice::Amd, GpuChoice::Intel] {
        let mut o = options(settings(&stack, Layout::Network, OLLAMA_BASE));
        o.gpu = gpu;
        let error = apply::up(&engine, &fixture_env, &o).await.unwrap_err();
        assert!(matches!(error, StackError::Detect(_)), "{gpu:?}: {error}");
    }
    assert_nothing_left(&engine, &stack).await;

    // NVIDIA present but no CDI spec: refused on Podman before anything is created.
    let nv = Fixture::new();
    nv.card(Card::new(0, "0x10de", "0x2684", "0000:01:00.0").driver("nvidia"));
    nv.nvidia_driver(1);
    let mut nv_env = ProbeEnv::isolated(HostRoot::new(nv.root()));
    nv_env.user = fixture_env.user.clone();
    let mut o = options(settings(&stack, Layout::Network, OLLAMA_BASE));
    o.gpu = GpuChoice::Nvidia;
    match (kind, apply::up(&engine, &nv_env, &o).await) {
        (EngineKind::Podman, Err(error)) => {
            assert!(matches!(error, StackError::NvidiaNeedsCdi), "{error}")
        }
        // dockerd without the NVIDIA runtime fails at start: rolled back, nothing left.
        (EngineKind::Docker, Err(error)) => {
            assert!(matches!(error, StackError::PartWay { .. }), "{error}");
            assert!(
                error.to_string().contains("Removed what this run created"),
                "{error}"
            );
        }
        (_, Ok(report)) => panic!("NVIDIA without GPU support started: {:?}", report.plan),
    }
    assert_nothing_left(&engine, &stack).await;

    // The pod layout on Docker.
    if kind == EngineKind::Docker {
        let error = apply::up(
            &engine,
            &env,
            &options(settings(&stack, Layout::Pod, OLLAMA_BASE)),
        )
        .await
        .unwrap_err();
        assert!(
            error.to_string().contains("--type pod needs Podman"),
            "{error}"
        );
    }

    // A failure part-way (a device that is not a device node) removes what was created.
    let mut s = settings(&stack, Layout::Network, OLLAMA_BASE);
    s.assistant = false;
    s.extra_devices = vec![ExtraDevice::parse("/etc/hostname:/dev/fake").unwrap()];
    let error = apply::up(&engine, &env, &options(s)).await.unwrap_err();
    match &error {
        StackError::PartWay { removed, left, .. } => {
            assert!(left.is_empty(), "{error}");
            assert!(removed.iter().any(|r| r.starts_with("network")), "{error}");
            assert!(removed.iter().any(|r| r.starts_with("volume")), "{error}");
        }
        other => panic!("expected a part-way failure, got {other}"),
    }
    assert_nothing_left(&engine, &stack).await;

    // Dry run touches nothing.
    let mut o = options(settings(&stack, Layout::Network, OLLAMA_BASE));
    o.dry_run = true;
    let report = apply::up(&engine, &env, &o).await.unwrap();
    assert!(!report.changed);
    assert_eq!(
        report.plan.created_services(),
        vec![Service::Ollama, Service::Assistant]
    );
    assert_nothing_left(&engine, &stack).await;

    // status/logs of a stack that does not exist.
    let error = ops::status(&engine, &stack).await.unwrap_err();
    assert!(matches!(error, StackError::NoStack { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_errors_on_podman() {
    preflight_errors(EngineKind::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_errors_on_docker() {
    preflight_errors(EngineKind::Docker).await;
}

#[tokio::test]
async fn an_unreachable_engine_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = ProbeEnv::isolated(HostRoot::new(dir.path()));
    env.docker_host = Some(format!("unix://{}/missing.sock", dir.path().display()));
    env.engine_timeout = Duration::from_millis(500);
    let error = nanna_deploy::stack::connect(EngineChoice::Auto, &env)
        .await
        .unwrap_err();
    assert!(matches!(error, StackError::Engine(_)), "{error}");
    let text = error.to_string();
    assert!(text.contains("no container engine answered"), "{text}");
    assert!(text.contains("missing.sock"), "{text}");
    assert!(text.contains("To fix"), "{text}");
}

//! The stack on the real engines (NANNA_TEST_PODMAN_SOCKET / NANNA_TEST_DOCKER_SOCKET, see
//! .ci/engines.sh), with images built here: the model server is `nanna-scripted-llm` (plus
//! busybox as `/bin/test`, so device checks run inside), the assistant is `nanna serve`.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use bollard::query_parameters::TagImageOptions;
use common::fixture::{Card, Fixture};
use common::stack::*;
use nanna_deploy::engine::{Engine, EngineKind};
use nanna_deploy::host::{HostRoot, ProbeEnv, UserIdentity};
use nanna_deploy::stack::spec::{ExtraDevice, Layout, Service};
use nanna_deploy::stack::{self, DownOptions, Health, ImageRole, StackContext, StackError, Step};
use nanna_deploy::{Accelerator, GpuChoice};

/// up → healthy → assistant reaches the model server → status → logs → device checks →
/// model pull → update after an image change recreates only that service → up is a no-op
/// → down leaves nothing.
async fn flow(kind: EngineKind, layout: Layout) {
    let Some((engine, env)) = engine(kind).await else {
        return;
    };
    ensure_images(&engine, &env).await;
    let ctx = StackContext::quiet(&engine, &env);
    let stack = unique(if layout == Layout::Pod { "p" } else { "n" });
    let mut cleanup = Cleanup::new(&engine, &stack);
    let ws = workspace();
    // The assistant runs as the workspace's owner when that is not root (network layout);
    // else as the image's user (1000, the assistant image's `nanna`).
    let uid = match layout {
        Layout::Network => {
            std::os::unix::fs::chown(ws.path(), Some(4242), Some(4242)).unwrap();
            4242
        }
        Layout::Pod => 1000,
    };
    let flow_image = format!("localhost/nanna-test-ollama:{stack}");
    cleanup.images.push(flow_image.clone());
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

    let mut s = settings(&stack, layout, &flow_image, ws.path());
    s.extra_devices = vec![ExtraDevice::parse("/dev/null:/dev/fake-gpu").unwrap()];
    s.model = Some("llama3.1:8b".to_string());
    let opts = options(s.clone());

    // up: everything created, healthy, device visible inside.
    let report = stack::up(&ctx, &opts).await.unwrap();
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
        stack::probe(Service::Assistant, assistant_addr, Duration::from_secs(5)).await,
        Health::Healthy
    );
    let body = http_get(assistant_addr, "/health").await;
    assert!(body.contains("\"model_server\":\"reachable\""), "{body}");
    let expected_url = match layout {
        Layout::Network => format!("http://nanna-{stack}-ollama:11434"),
        Layout::Pod => "http://127.0.0.1:11434".to_string(),
    };
    assert!(body.contains(&expected_url), "{body}");

    // status --json
    let status = stack::status(&ctx, &stack).await.unwrap();
    assert!(status.is_healthy(), "{status:?}");
    assert!(
        status.missing.is_empty() && status.extra.is_empty(),
        "{status:?}"
    );
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["services"].as_array().unwrap().len(), 2);
    for service in json["services"].as_array().unwrap() {
        assert_eq!(service["state"], "running", "{service}");
        assert_eq!(service["health"], "healthy", "{service}");
    }
    assert_eq!(json["services"][0]["service"], "ollama");
    assert_eq!(json["services"][0]["devices"][0], "/dev/fake-gpu");
    assert_eq!(json["services"][0]["image"], flow_image.as_str());
    // The published ports, in the pod layout too (the pod publishes them).
    assert_eq!(
        json["services"][0]["ports"][0],
        format!("127.0.0.1:{}->11434/tcp", s.listen.port()).as_str(),
        "{json}"
    );
    match layout {
        Layout::Pod => assert_eq!(json["pod"], format!("nanna-{stack}").as_str()),
        Layout::Network => assert_eq!(json["networks"][0], format!("nanna-{stack}").as_str()),
    }

    // logs
    let mut lines = Vec::new();
    stack::logs(
        &ctx,
        &stack,
        Some(Service::Ollama),
        false,
        Some(50),
        &mut |l| lines.push(l),
    )
    .await
    .unwrap();
    assert!(
        lines.iter().any(|l| l.line.contains("11434")),
        "ollama logs: {lines:?}"
    );
    let mut lines = Vec::new();
    stack::logs(&ctx, &stack, None, false, None, &mut |l| lines.push(l))
        .await
        .unwrap();
    assert!(
        lines.iter().any(|l| l.service == Service::Assistant),
        "{lines:?}"
    );

    // Commands in the containers (what `shell SERVICE -- CMD` runs).
    let mut out = Vec::new();
    let test = |path: &str| vec!["test".to_string(), "-e".to_string(), path.to_string()];
    let code = stack::exec(
        &ctx,
        &stack,
        Service::Ollama,
        test("/dev/fake-gpu"),
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(code, 0);
    let code = stack::exec(&ctx, &stack, Service::Ollama, test("/dev/nope"), &mut out)
        .await
        .unwrap();
    assert_eq!(code, 1);
    let mut out = Vec::new();
    let code = stack::exec(
        &ctx,
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

    // Issue 9: the containers are confined, seen from the engine and attacked from inside.
    confined(&engine, &ctx, &stack, uid).await;

    // A device that is not in the container is reported, never ignored.
    let spec = stack::desired(&engine, &env, &s, GpuChoice::Only(Accelerator::None)).unwrap();
    let mut ollama = spec.service(Service::Ollama).unwrap().clone();
    ollama.check_paths = vec!["/dev/not-there".to_string()];
    let error = stack::verify_devices(&engine, &ollama).await.unwrap_err();
    assert!(matches!(error, StackError::GpuNotVisible { .. }), "{error}");

    // Pulling through the model server's API (nanna-model's client), with progress events.
    let events = nanna_deploy::event::Recorder::new();
    let pulling = StackContext {
        events: &events,
        ..StackContext::quiet(&engine, &env)
    };
    stack::pull_model(&pulling, s.listen, "llama3.1:8b")
        .await
        .unwrap();
    assert!(
        events.events().iter().any(|e| matches!(
            e,
            nanna_deploy::DeployEvent::Progress {
                current: Some(_),
                total: Some(_),
                ..
            }
        )),
        "{:?}",
        events.events()
    );
    let error = stack::pull_model(&ctx, s.listen, "no-such-model:1b")
        .await
        .unwrap_err();
    assert!(matches!(error, StackError::Pull { .. }), "{error}");
    assert!(error.to_string().contains("file does not exist"), "{error}");

    // A no-op up.
    let ids_before = container_ids(&engine, &stack).await;
    let again = stack::up(&ctx, &opts).await.unwrap();
    assert!(!again.changed, "{:?}", again.plan);
    assert!(again.plan.is_noop());
    assert_eq!(container_ids(&engine, &stack).await, ids_before);

    // The model server's image changes: update recreates only it.
    tag_as(OLLAMA_REV2).await;
    let updated = stack::update(&ctx, &stack, &options(s.clone()))
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
        stack::probe(Service::Assistant, assistant_addr, Duration::from_secs(5)).await,
        Health::Healthy
    );
    // And up with the same settings is a no-op again.
    assert!(!stack::up(&ctx, &opts).await.unwrap().changed);

    // A changed setting recreates only the service that uses it.
    let mut changed = s.clone();
    changed.context_length = 4096;
    let report = stack::up(&ctx, &options(changed.clone())).await.unwrap();
    assert_eq!(report.plan.created_services(), vec![Service::Ollama]);

    // restart keeps the containers and comes back healthy.
    let before_restart = container_ids(&engine, &stack).await;
    stack::restart(
        &ctx,
        &stack,
        Duration::from_secs(60),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(container_ids(&engine, &stack).await, before_restart);
    assert_eq!(
        stack::probe(Service::Assistant, assistant_addr, Duration::from_secs(5)).await,
        Health::Healthy
    );

    // Issue 17 item 6: a container removed by hand is reported missing.
    let assistant = format!("nanna-{stack}-assistant");
    engine
        .client
        .remove_container(
            &assistant,
            Some(bollard::query_parameters::RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    let status = stack::status(&ctx, &stack).await.unwrap();
    assert!(!status.is_healthy());
    assert_eq!(status.missing, vec![format!("container {assistant}")]);
    let missing = status
        .services
        .iter()
        .find(|s| s.service == Service::Assistant)
        .expect("the missing service is listed");
    assert_eq!(missing.state, "missing");
    // up brings it back.
    let report = stack::up(&ctx, &options(changed)).await.unwrap();
    assert_eq!(report.plan.created_services(), vec![Service::Assistant]);

    // down keeps the models volume unless asked.
    let down = stack::down(&ctx, &stack, &DownOptions::default())
        .await
        .unwrap();
    assert_eq!(down.containers.len(), 2);
    assert_eq!(down.kept_volumes, vec![format!("nanna-{stack}-models")]);
    let left = stack::actual(&engine, &stack).await.unwrap();
    assert!(left.containers.is_empty() && left.networks.is_empty() && left.pods.is_empty());
    assert_eq!(left.volumes.len(), 1);
    let all = DownOptions {
        volumes: true,
        ..DownOptions::default()
    };
    let down = stack::down(&ctx, &stack, &all).await.unwrap();
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

/// Issue 9, "the deployed containers": inspected on the engine, then attacked from inside
/// the assistant with busybox.
async fn confined(engine: &Engine, ctx: &StackContext<'_>, stack: &str, uid: u32) {
    let assistant = format!("nanna-{stack}-assistant");
    let ollama = format!("nanna-{stack}-ollama");
    for name in [&assistant, &ollama] {
        let info = engine.client.inspect_container(name, None).await.unwrap();
        let host = info.host_config.unwrap();
        // Docker keeps "ALL"; Podman lists each capability of its default set.
        let drop = host.cap_drop.unwrap_or_default();
        let all = drop.iter().any(|c| c.eq_ignore_ascii_case("all"))
            || [
                "CHOWN",
                "DAC_OVERRIDE",
                "FOWNER",
                "KILL",
                "NET_RAW",
                "SETUID",
                "SETGID",
                "SYS_CHROOT",
            ]
            .iter()
            .all(|cap| drop.iter().any(|c| c.trim_start_matches("CAP_") == *cap));
        assert!(all, "{name}: cap_drop {drop:?}");
        let security = host.security_opt.unwrap_or_default();
        assert!(
            security.iter().any(|o| o.starts_with("no-new-privileges")),
            "{name}: security_opt {security:?}"
        );
        if name == &assistant {
            assert_eq!(host.readonly_rootfs, Some(true), "{name}");
            let user = info.config.unwrap().user.unwrap_or_default();
            assert!(
                !user.is_empty() && !user.starts_with('0'),
                "{name}: user {user:?}"
            );
        }
        let stop = engine
            .client
            .inspect_container(name, None)
            .await
            .unwrap()
            .config
            .unwrap()
            .stop_timeout;
        let want = if name == &ollama { 2 } else { 10 };
        assert_eq!(
            stop,
            Some(want),
            "{name}: the stop grace is set, the same on both engines"
        );
    }
    let run = |cmd: &str| {
        let cmd: Vec<String> = ["/bin/busybox", "sh", "-c", cmd]
            .iter()
            .map(|s| s.to_string())
            .collect();
        async move {
            let mut out = Vec::new();
            let code = stack::exec(ctx, stack, Service::Assistant, cmd, &mut out)
                .await
                .unwrap();
            (code, String::from_utf8_lossy(&out).into_owned())
        }
    };
    let (code, out) = run("echo pwned > /pwned").await;
    assert_ne!(code, 0, "wrote to the root filesystem: {out}");
    assert!(out.contains("Read-only file system"), "{out}");
    let (code, out) = run("echo fine > /tmp/ok && cat /tmp/ok").await;
    assert_eq!((code, out.trim()), (0, "fine"), "the tmpfs is writable");
    let (code, out) = run("/bin/busybox id -u").await;
    assert_eq!(code, 0);
    assert_eq!(out.trim(), uid.to_string(), "the assistant's user");
    let (_, status) = run("cat /proc/self/status").await;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(field("NoNewPrivs:"), "1", "{status}");
    assert_eq!(field("CapEff:"), "0000000000000000", "{status}");
    assert_eq!(field("CapBnd:"), "0000000000000000", "{status}");
}

async fn container_ids(engine: &Engine, stack: &str) -> BTreeMap<Service, String> {
    stack::actual(engine, stack)
        .await
        .unwrap()
        .containers
        .into_iter()
        .filter_map(|c| c.service.map(|s| (s, c.id)))
        .collect()
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
    ensure_images(&engine, &env).await;
    let ctx = StackContext::quiet(&engine, &env);
    let stack = unique("e");
    let _cleanup = Cleanup::new(&engine, &stack);
    let ws = workspace();
    let settings = |image: &str| settings(&stack, Layout::Network, image, ws.path());

    // Address in use.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = settings(OLLAMA_BASE);
    s.listen = taken.local_addr().unwrap();
    let error = stack::up(&ctx, &options(s)).await.unwrap_err();
    assert!(matches!(error, StackError::PortInUse { .. }), "{error}");
    assert!(error.to_string().contains("--listen"), "{error}");
    assert_nothing_left(&engine, &stack).await;

    // Issue 9: the same port on another loopback address is not a clash.
    let mut s = settings(OLLAMA_BASE);
    s.listen = SocketAddr::from(([127, 0, 0, 2], taken.local_addr().unwrap().port()));
    s.assistant = false;
    let report = stack::up(&ctx, &options(s.clone())).await.unwrap();
    assert!(report.changed);
    assert_eq!(
        stack::probe(Service::Ollama, s.listen, Duration::from_secs(5)).await,
        Health::Healthy
    );
    let all = DownOptions {
        volumes: true,
        ..DownOptions::default()
    };
    stack::down(&ctx, &stack, &all).await.unwrap();
    drop(taken);

    // Images absent and not pullable: a local reference is never pulled, and the fix
    // fits the image (issue 17 item 10).
    let s = settings("localhost/nanna-test-absent:nope");
    let error = stack::up(&ctx, &options(s)).await.unwrap_err();
    match &error {
        StackError::ImageUnavailable { role, reason, .. } => {
            assert_eq!(*role, ImageRole::ModelServer);
            assert!(reason.contains("never pulled"), "{error}");
        }
        other => panic!("expected an absent image, got {other}"),
    }
    let fix = error.fix().unwrap();
    assert!(fix.contains("--image-archive"), "{fix}");
    assert!(fix.contains("makes only the assistant image"), "{fix}");
    let mut s = settings(OLLAMA_BASE);
    s.assistant_image = "localhost/nanna-test-absent-assistant:nope".to_string();
    let error = stack::up(&ctx, &options(s)).await.unwrap_err();
    assert!(
        matches!(
            error,
            StackError::ImageUnavailable {
                role: ImageRole::Assistant,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("nanna-deploy images build"),
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
    let fixture_ctx = StackContext::quiet(&engine, &fixture_env);
    for gpu in [Accelerator::Nvidia, Accelerator::Amd, Accelerator::Intel] {
        let mut o = options(settings(OLLAMA_BASE));
        o.gpu = GpuChoice::Only(gpu);
        let error = stack::up(&fixture_ctx, &o).await.unwrap_err();
        assert!(matches!(error, StackError::Detect(_)), "{gpu:?}: {error}");
    }
    assert_nothing_left(&engine, &stack).await;

    // NVIDIA present but no CDI spec: refused on Podman before anything is created.
    let nv = Fixture::new();
    nv.card(Card::new(0, "0x10de", "0x2684", "0000:01:00.0").driver("nvidia"));
    nv.nvidia_driver(1);
    let mut nv_env = ProbeEnv::isolated(HostRoot::new(nv.root()));
    nv_env.user = fixture_env.user.clone();
    let nv_ctx = StackContext::quiet(&engine, &nv_env);
    let mut o = options(settings(OLLAMA_BASE));
    o.gpu = GpuChoice::Only(Accelerator::Nvidia);
    match (kind, stack::up(&nv_ctx, &o).await) {
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
        let mut s = settings(OLLAMA_BASE);
        s.layout = Layout::Pod;
        let error = stack::up(&ctx, &options(s)).await.unwrap_err();
        assert!(
            error.to_string().contains("--type pod needs Podman"),
            "{error}"
        );
    }

    // A failure part-way (a device that is not a device node) removes what was created.
    let mut s = settings(OLLAMA_BASE);
    s.assistant = false;
    s.extra_devices = vec![ExtraDevice::parse("/etc/hostname:/dev/fake").unwrap()];
    let error = stack::up(&ctx, &options(s)).await.unwrap_err();
    match &error {
        StackError::PartWay { removed, left, .. } => {
            assert!(left.is_empty(), "{error}");
            assert!(removed.iter().any(|r| r.starts_with("network")), "{error}");
            assert!(removed.iter().any(|r| r.starts_with("volume")), "{error}");
        }
        other => panic!("expected a part-way failure, got {other}"),
    }
    assert_nothing_left(&engine, &stack).await;

    // Issue 17 item 2: a model server that exits at once fails within seconds, with its
    // exit code and last log lines, and is rolled back.
    let mut o = options(settings(CRASHER));
    o.timeout = Duration::from_secs(120);
    let error = stack::up(&ctx, &o).await.unwrap_err();
    match &error {
        StackError::PartWay { cause, left, .. } => {
            assert!(
                matches!(
                    cause.as_ref(),
                    StackError::Exited {
                        exit_code: Some(3),
                        ..
                    }
                ),
                "{error}"
            );
            assert!(left.is_empty(), "{error}");
        }
        other => panic!("expected the crash to be reported, got {other}"),
    }
    let text = error.to_string();
    assert!(text.contains("exit code 3"), "{text}");
    assert!(text.contains(CRASH_LINE), "{text}");
    assert_nothing_left(&engine, &stack).await;

    // Dry run touches nothing.
    let mut o = options(settings(OLLAMA_BASE));
    o.dry_run = true;
    let report = stack::up(&ctx, &o).await.unwrap();
    assert!(!report.changed);
    assert_eq!(
        report.plan.created_services(),
        vec![Service::Ollama, Service::Assistant]
    );
    assert_nothing_left(&engine, &stack).await;

    // status of a stack that does not exist.
    let error = stack::status(&ctx, &stack).await.unwrap_err();
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
    let error = stack::connect(nanna_deploy::EngineChoice::Auto, &env)
        .await
        .unwrap_err();
    assert!(matches!(error, StackError::Engine(_)), "{error}");
    let text = error.to_string();
    assert!(text.contains("no container engine answered"), "{text}");
    assert!(text.contains("missing.sock"), "{text}");
    assert!(text.contains("To fix") || text.contains("start"), "{text}");
}

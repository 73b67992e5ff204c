//! Issue 9 where it is deployed: inside the assistant container `up` creates (all
//! capabilities dropped, `no-new-privileges`, read-only root, a user that is not root), the
//! `shell` tool's sandbox holds as on a host. `nanna sandbox -- CMD` (what `shell` runs)
//! is attacked from inside the container on both real engines (NANNA_TEST_PODMAN_SOCKET /
//! NANNA_TEST_DOCKER_SOCKET): a write outside the workspace, the API keys, a TCP connection
//! to the model server, processes left behind; each is first shown to work in the
//! container without the sandbox, so the sandbox is what stops it. The legitimate work (a
//! write in the workspace and in TMPDIR, the network when allowed) succeeds. A container
//! of the same image with the engine's defaults refuses instead, saying why and what to do.

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use bollard::query_parameters::{CreateContainerOptions, StartContainerOptions};
use common::stack::*;
use futures::StreamExt;
use nanna_deploy::engine::{Engine, EngineKind};
use nanna_deploy::stack::spec::{Layout, ProcMount, SeccompSpec, Service};
use nanna_deploy::stack::{self, StackContext, bodies};
use nanna_deploy::{Accelerator, GpuChoice};

/// This test's assistant image: `images build`'s (nanna plus the programs of
/// images/assistant.json from this host) with busybox for the attacks, under a tag of its
/// own so that a concurrent run of other tests cannot swap it.
const SANDBOX_ASSISTANT: &str = "localhost/nanna-test-assistant:sandbox";

/// `nanna serve` alone, as `images build --binary` makes it: an image without bubblewrap
/// (as assistant images were before it was added).
const BARE_ASSISTANT: &str = "localhost/nanna-test-assistant:no-bwrap";

async fn load_assistants(engine: &Engine, env: &nanna_deploy::host::ProbeEnv) {
    type Archives = Vec<(&'static str, std::path::PathBuf)>;
    static ARCHIVES: std::sync::OnceLock<Archives> = std::sync::OnceLock::new();
    let archives = tokio::task::spawn_blocking(|| {
        ARCHIVES.get_or_init(|| {
            let nanna = binary("nanna", "nanna");
            let with_sandbox = stack::BuildRequest {
                binary: Some(nanna.clone()),
                files: vec![("/bin/busybox".into(), "/bin/busybox".to_string())],
                ..Default::default()
            };
            let bare = stack::BuildRequest {
                binary: Some(nanna),
                tag: Some(BARE_ASSISTANT.to_string()),
                entrypoint: ["/bin/nanna", "serve", "--listen", "0.0.0.0:8080"]
                    .map(str::to_string)
                    .to_vec(),
                ..Default::default()
            };
            let dir = target_dir().join("nanna-deploy-it-images");
            std::fs::create_dir_all(&dir).unwrap();
            [(SANDBOX_ASSISTANT, with_sandbox), (BARE_ASSISTANT, bare)]
                .into_iter()
                .map(|(tag, request)| {
                    let mut spec = stack::spec_for(&request).unwrap();
                    spec.reference = tag.to_string();
                    let file = tag.replace(['/', ':'], "_");
                    let path = dir.join(format!("{file}.tar"));
                    let partial = dir.join(format!("{file}.{}.part", std::process::id()));
                    let writer = std::fs::File::create(&partial).unwrap();
                    nanna_image::write_docker_archive(&spec, std::io::BufWriter::new(writer))
                        .unwrap();
                    std::fs::rename(&partial, &path).unwrap();
                    (tag, path)
                })
                .collect()
        })
    })
    .await
    .unwrap();
    for (tag, archive) in archives {
        load_replacing(&StackContext::quiet(engine, env), tag, archive).await;
    }
}

/// Runs `sh -c script` in the stack's assistant; returns (exit code, output).
async fn sh(ctx: &StackContext<'_>, stack: &str, script: &str) -> (i64, String) {
    let cmd = ["/bin/sh", "-c", script].map(str::to_string).to_vec();
    let mut out = Vec::new();
    let code = stack::exec(ctx, stack, Service::Assistant, cmd, &mut out)
        .await
        .unwrap();
    (code, String::from_utf8_lossy(&out).into_owned())
}

/// Runs `cmd` in the container `name` through the engine; returns (exit code, output).
async fn exec_in(engine: &Engine, name: &str, cmd: &[&str]) -> (i64, String) {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    let exec = engine
        .client
        .create_exec(
            name,
            CreateExecOptions {
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut text = String::new();
    if let StartExecResults::Attached { mut output, .. } =
        engine.client.start_exec(&exec.id, None).await.unwrap()
    {
        while let Some(chunk) = output.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap().into_bytes()));
        }
    }
    let code = engine
        .client
        .inspect_exec(&exec.id)
        .await
        .unwrap()
        .exit_code
        .unwrap_or(-1);
    (code, text)
}

/// The model server's address as the assistant reaches it, by IP (there is no name
/// resolution inside the sandbox's network namespace, so a refusal by name would prove
/// nothing): on the stack's network, or the pod's shared loopback.
async fn ollama_ip(engine: &Engine, stack: &str, layout: Layout) -> String {
    if layout == Layout::Pod {
        return "127.0.0.1".to_string();
    }
    let info = engine
        .client
        .inspect_container(&format!("nanna-{stack}-ollama"), None)
        .await
        .unwrap();
    let networks = info.network_settings.unwrap().networks.unwrap();
    networks[&format!("nanna-{stack}")]
        .ip_address
        .clone()
        .filter(|ip| !ip.is_empty())
        .expect("the model server has an address on the stack's network")
}

async fn sandbox_in_the_assistant(kind: EngineKind, layout: Layout) {
    let Some((engine, env)) = engine(kind).await else {
        return;
    };
    ensure_images(&engine, &env).await;
    load_assistants(&engine, &env).await;
    let ctx = StackContext::quiet(&engine, &env);
    let stack = unique("sb");
    let _cleanup = Cleanup::new(&engine, &stack);
    let ws = workspace();
    // The assistant runs as the workspace's owner: a user the image does not know.
    std::os::unix::fs::chown(ws.path(), Some(4242), Some(4242)).unwrap();
    let mut s = settings(&stack, layout, OLLAMA_BASE, ws.path());
    s.assistant_image = SANDBOX_ASSISTANT.to_string();
    let report = stack::up(&ctx, &options(s.clone())).await.unwrap();
    assert!(
        report
            .warnings
            .iter()
            .all(|w| w.code != "assistant_sandbox"),
        "{:?}",
        report.warnings
    );

    // The container keeps a seccomp filter (ours on Docker, Podman's default), no
    // capability and no-new-privileges.
    let (_, status) = sh(&ctx, &stack, "cat /proc/self/status").await;
    for (field, want) in [
        ("Seccomp:", "2"),
        ("NoNewPrivs:", "1"),
        ("CapEff:", "0000000000000000"),
        ("CapBnd:", "0000000000000000"),
    ] {
        let got = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .map(str::trim);
        assert_eq!(got, Some(want), "{field} {status}");
    }

    // `nanna health` inside says the confined modes are enforced.
    let (code, out) = sh(&ctx, &stack, "nanna health").await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("sandbox workspace-write: commands write only in the workspace"),
        "{out}"
    );

    // Legitimate work: a write in the workspace (on the host, owned by the workspace's
    // owner) and in TMPDIR.
    let (code, out) = sh(
        &ctx,
        &stack,
        "nanna sandbox -- sh -c 'echo built > made.txt && cat made.txt \
         && echo scratch > \"$TMPDIR/t\" && cat \"$TMPDIR/t\"'",
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "built\nscratch\n"));
    let made = ws.path().join("made.txt");
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "built\n");
    assert_eq!(std::fs::metadata(&made).unwrap().uid(), 4242);

    // Outside write. The container's user can write /dev/shm and its /tmp (where HOME,
    // sessions and caches live); a sandboxed command reaches neither.
    let (code, out) = sh(&ctx, &stack, "echo x > /dev/shm/ctl && rm /dev/shm/ctl").await;
    assert_eq!(code, 0, "the container's user can write /dev/shm: {out}");
    let (_, out) = sh(
        &ctx,
        &stack,
        "nanna sandbox -- sh -c 'echo pwned > /dev/shm/pwned; echo pwned > /tmp/pwned; \
         ls -a /tmp'",
    )
    .await;
    assert!(
        !out.contains(".cache"),
        "nanna's own files in the container's /tmp are visible: {out}"
    );
    let (code, out) = sh(&ctx, &stack, "ls -a /dev/shm /tmp").await;
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("pwned"), "a sandboxed write escaped: {out}");

    // Keys: neither in the command's environment nor readable through /proc.
    let (code, out) = sh(
        &ctx,
        &stack,
        "env NANNA_API_KEY=sk-nanna-secret OPENAI_API_KEY=sk-openai-secret \
         MY_TOKEN=tok-secret nanna sandbox -- sh -c \
         'env; cat /proc/[0-9]*/environ 2>/dev/null | tr \"\\0\" \"\\n\"'",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PATH="), "{out}");
    for secret in ["sk-nanna-secret", "sk-openai-secret", "tok-secret"] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }

    // TCP to the model server: open to the container, closed to a sandboxed command unless
    // the network is allowed.
    let ip = ollama_ip(&engine, &stack, layout).await;
    let nc = format!("busybox nc -w 3 {ip} 11434 </dev/null");
    let (code, out) = sh(&ctx, &stack, &nc).await;
    assert_eq!(code, 0, "the container reaches the model server: {out}");
    let (code, out) = sh(&ctx, &stack, &format!("nanna sandbox -- sh -c '{nc}'")).await;
    assert_ne!(code, 0, "a sandboxed command reached {ip}: {out}");
    // No route off the sandbox's network namespace; its loopback is its own, where
    // nothing listens (the pod's model server is on the pod's loopback).
    assert!(
        out.contains("Network is unreachable") || out.contains("Connection refused"),
        "{out}"
    );
    let (code, out) = sh(
        &ctx,
        &stack,
        &format!("nanna sandbox --network -- sh -c '{nc}'"),
    )
    .await;
    assert_eq!(code, 0, "--network allows it: {out}");

    // Processes left behind (setsid, nohup) end with the command, and none is left as a
    // zombie under PID 1 (the engine's init reaps the sandbox's).
    let (code, out) = sh(
        &ctx,
        &stack,
        "nanna sandbox -- sh -c 'busybox setsid busybox sleep 4244 >/dev/null 2>&1 & \
         busybox nohup busybox sleep 4245 >/dev/null 2>&1 & sleep 0.3; echo started'",
    )
    .await;
    assert_eq!((code, out.trim()), (0, "started"));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, ps) = sh(&ctx, &stack, "busybox ps -o pid,stat,args").await;
        let left: Vec<&str> = ps
            .lines()
            .filter(|l| l.contains("sleep 424") || l.split_whitespace().nth(1) == Some("Z"))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes outlived their command: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The same image with the engine's default seccomp profile and /proc masks (all the
    // other confinement kept): `nanna sandbox` refuses, saying why and what to set, and
    // `nanna health` fails with the same.
    let spec = stack::desired(&engine, &env, &s, GpuChoice::Only(Accelerator::None)).unwrap();
    let mut bare = spec.service(Service::Assistant).unwrap().clone();
    bare.name = format!("nanna-{stack}-bare");
    bare.ports.clear();
    bare.aliases.clear();
    bare.security.seccomp = SeccompSpec::EngineDefault;
    bare.security.proc_mount = ProcMount::Masked;
    engine
        .client
        .create_container(
            Some(CreateContainerOptions {
                name: Some(bare.name.clone()),
                ..Default::default()
            }),
            bodies::docker_body(&bare, ""),
        )
        .await
        .unwrap();
    engine
        .client
        .start_container(&bare.name, None::<StartContainerOptions>)
        .await
        .unwrap();
    let (code, out) = exec_in(&engine, &bare.name, &["nanna", "sandbox", "--", "true"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("workspace-write sandbox cannot be enforced"),
        "{out}"
    );
    let fix = match kind {
        // Docker's default profile refuses the user namespace first.
        EngineKind::Docker => "seccomp=images/assistant-seccomp.json",
        // Podman's allows it; its /proc masks stop the fresh /proc.
        EngineKind::Podman => "unmask=/proc/*",
    };
    assert!(
        out.contains(fix) && out.contains("nanna-deploy up"),
        "{out}"
    );
    let (code, out) = exec_in(&engine, &bare.name, &["nanna", "health"]).await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("shell refused") && out.contains(fix), "{out}");
    // `full` still runs (unconfined, as documented).
    let (code, out) = exec_in(
        &engine,
        &bare.name,
        &["nanna", "sandbox", "--mode", "full", "--", "true"],
    )
    .await;
    assert_eq!(code, 0, "{out}");

    // `up` with an assistant image that has no bubblewrap works, and says at once that
    // `shell` will refuse commands there, and why.
    s.assistant_image = BARE_ASSISTANT.to_string();
    let report = stack::up(&ctx, &options(s.clone())).await.unwrap();
    let warning = report
        .warnings
        .iter()
        .find(|w| w.code == "assistant_sandbox")
        .unwrap_or_else(|| panic!("no assistant_sandbox warning: {:?}", report.warnings));
    assert!(
        warning.message.contains("bubblewrap")
            && warning.message.contains("nanna-deploy images build"),
        "{warning:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_holds_in_the_assistant_on_podman() {
    sandbox_in_the_assistant(EngineKind::Podman, Layout::Network).await;
}

/// In a pod the model server is on the assistant's own loopback: the sandbox's private
/// loopback must still not reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_holds_in_the_assistant_in_a_podman_pod() {
    sandbox_in_the_assistant(EngineKind::Podman, Layout::Pod).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_holds_in_the_assistant_on_docker() {
    sandbox_in_the_assistant(EngineKind::Docker, Layout::Network).await;
}

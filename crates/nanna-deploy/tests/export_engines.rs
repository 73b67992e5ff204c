//! The exports run by their real consumers on the real engines (NANNA_TEST_PODMAN_SOCKET /
//! NANNA_TEST_DOCKER_SOCKET, `.ci/engines.sh`; the tools from `.ci/export-consumers.sh`):
//! `podman kube play` of the CPU Kubernetes export, `docker-compose` and `podman-compose`
//! of the Compose export, with images built here. The model server stand-in is
//! `nanna-scripted-llm` installed as `/bin/ollama` (it answers `serve`, `list` and `pull`
//! like Ollama's binary) beside busybox as `/bin/sh`, as in Ollama's image, where Podman
//! runs health checks with `/bin/sh -c`.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions, ListVolumesOptions};
use common::stack::*;
use nanna_deploy::engine::{Engine, EngineKind};
use nanna_deploy::stack::spec::Service;
use nanna_deploy::stack::{self, BuildRequest, Health, StackContext};

/// The model-server stand-in of these tests.
const OLLAMA_CLI: &str = "localhost/nanna-test-ollama:it-export";
/// The assistant of these tests (`nanna serve` with this tree's `serve --check`), under a
/// tag of its own so other test runs on the shared engines cannot swap it.
const ASSISTANT_CLI: &str = "localhost/nanna-test-assistant:it-export";
/// A model the stand-in serves (and so can "pull").
const MODEL: &str = "llama3.1:8b";

fn required() -> bool {
    require() || std::env::var("CI").is_ok_and(|v| v == "true")
}

fn tool(name: &str) -> Option<PathBuf> {
    let found = which::which(name).ok();
    if found.is_none() {
        assert!(
            !required(),
            "{name} is missing (.ci/export-consumers.sh installs it)"
        );
        println!("skipping: {name} is not installed (.ci/export-consumers.sh)");
    }
    found
}

/// The stand-ins' archives, written once per test process.
fn archives() -> &'static [(&'static str, PathBuf)] {
    static ARCHIVES: OnceLock<Vec<(&'static str, PathBuf)>> = OnceLock::new();
    ARCHIVES.get_or_init(|| {
        let llm = binary("nanna-scripted-llm", "nanna-testkit");
        let nanna = binary("nanna", "nanna");
        let busybox = PathBuf::from("/bin/busybox");
        assert!(busybox.is_file(), "the engine tests need busybox-static");
        let ollama = BuildRequest {
            binary: Some(llm.clone()),
            tag: Some(OLLAMA_CLI.to_string()),
            entrypoint: vec!["/bin/ollama".into(), "serve".into()],
            ports: vec![11434],
            files: vec![
                (llm, "/bin/ollama".into()),
                (busybox.clone(), "/bin/sh".into()),
                (busybox.clone(), "/bin/test".into()),
            ],
            ..Default::default()
        };
        // No tag: the assistant image of images/assistant.json (`serve` on 0.0.0.0:8080),
        // renamed below.
        let assistant = BuildRequest {
            binary: Some(nanna),
            files: vec![(busybox, "/bin/busybox".into())],
            ..Default::default()
        };
        let dir = target_dir().join("nanna-deploy-it-images");
        std::fs::create_dir_all(&dir).unwrap();
        [(OLLAMA_CLI, ollama), (ASSISTANT_CLI, assistant)]
            .into_iter()
            .map(|(tag, request)| {
                let mut spec = stack::spec_for(&request).unwrap();
                spec.reference = tag.to_string();
                let file = tag.replace(['/', ':'], "_");
                let path = dir.join(format!("{file}.tar"));
                let partial = dir.join(format!("{file}.{}.part", std::process::id()));
                let writer = std::fs::File::create(&partial).unwrap();
                nanna_image::write_docker_archive(&spec, std::io::BufWriter::new(writer)).unwrap();
                std::fs::rename(&partial, &path).unwrap();
                (tag, path)
            })
            .collect()
    })
}

/// The engine of `kind` with the test images, or `None` (skipped).
async fn engine_with_images(kind: EngineKind) -> Option<(Engine, nanna_deploy::ProbeEnv)> {
    let (engine, env) = engine(kind).await?;
    let archives = tokio::task::spawn_blocking(archives).await.unwrap();
    for (tag, archive) in archives {
        load_replacing(&StackContext::quiet(&engine, &env), tag, archive).await;
    }
    Some((engine, env))
}

/// `nanna-deploy export` into `dir`, the stand-in images and `extra` flags.
fn export(format: &str, stack: &str, workspace: &Path, dir: &Path, extra: &[&str]) -> PathBuf {
    let host_root = tempfile::tempdir().unwrap();
    let out = deploy(host_root.path(), host_root.path())
        .args([
            "export",
            "--format",
            format,
            "--gpu",
            "none",
            "--name",
            stack,
            "--ollama-image",
            OLLAMA_CLI,
            "--harness-image",
            ASSISTANT_CLI,
            "--model",
            MODEL,
            "--workspace",
        ])
        .arg(workspace)
        .arg("-o")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    dir.join(if format == "kubernetes" {
        "kubernetes.yaml"
    } else {
        "compose.yaml"
    })
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(command: &mut Command) -> Output {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {}", text(&out));
    out
}

/// The shared Podman engine through its CLI (`podman kube play`, `podman-compose`): the
/// configuration .ci/engines.sh wrote, so the CLI and the API service share storage.
fn podman_cli_ready() -> bool {
    let ready = std::env::var_os("CONTAINERS_CONF").is_some()
        && std::env::var_os("CONTAINERS_STORAGE_CONF").is_some();
    if !ready {
        assert!(
            !required(),
            "CONTAINERS_CONF and CONTAINERS_STORAGE_CONF must be set (source the env.sh of .ci/engines.sh)"
        );
        println!("skipping: CONTAINERS_CONF is unset (source /run/nanna-test/env.sh)");
    }
    ready
}

async fn containers(engine: &Engine, label: &str) -> Vec<bollard::models::ContainerSummary> {
    engine
        .client
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![label.to_string()],
            )])),
            ..Default::default()
        }))
        .await
        .unwrap()
}

async fn volumes(engine: &Engine, label: &str) -> Vec<String> {
    engine
        .client
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![label.to_string()],
            )])),
        }))
        .await
        .unwrap()
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect()
}

async fn networks(engine: &Engine, label: &str) -> Vec<String> {
    engine
        .client
        .list_networks(Some(ListNetworksOptions {
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![label.to_string()],
            )])),
        }))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|n| n.name)
        .collect()
}

/// Waits until `check` holds (or panics with `what` after `limit`).
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        match check().await {
            Ok(()) => return,
            Err(why) => last = why,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what} did not happen within {limit:?}: {last}");
}

/// Removes what a test left on failure (by label), best effort.
struct Sweep {
    kind: EngineKind,
    label: String,
    volumes: Vec<String>,
    networks: Vec<String>,
}

impl Drop for Sweep {
    fn drop(&mut self) {
        let cli = match self.kind {
            EngineKind::Podman => "podman",
            EngineKind::Docker => "docker",
        };
        let mut ps = Command::new(cli);
        ps.args(["ps", "-aq", "--filter", &format!("label={}", self.label)]);
        if self.kind == EngineKind::Docker
            && let Some(socket) = socket(EngineKind::Docker)
        {
            ps.env("DOCKER_HOST", format!("unix://{socket}"));
        }
        let ids = ps.output().map(|o| o.stdout).unwrap_or_default();
        for id in String::from_utf8_lossy(&ids).split_whitespace() {
            let _ = Command::new(cli).args(["rm", "-f", id]).output();
        }
        if self.kind == EngineKind::Podman {
            let pods = Command::new("podman")
                .args(["pod", "ps", "-q", "--filter"])
                .arg(format!("label={}", self.label))
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default();
            for pod in String::from_utf8_lossy(&pods).split_whitespace() {
                let _ = Command::new("podman")
                    .args(["pod", "rm", "-f", pod])
                    .output();
            }
        }
        for volume in &self.volumes {
            let _ = Command::new(cli)
                .args(["volume", "rm", "-f", volume])
                .output();
        }
        for network in &self.networks {
            let _ = Command::new(cli).args(["network", "rm", network]).output();
        }
    }
}

/// `podman kube play` of the CPU export: both Deployments become running pods, the
/// assistant reaches the model server through the name the manifests give it, the model
/// server's liveness check runs as Podman runs it, the kinds Podman skips are skipped, and
/// `podman kube down` plus the volumes Podman 4.3 keeps leave nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_kube_play_runs_the_cpu_export() {
    if tool("podman").is_none() || !podman_cli_ready() {
        return;
    }
    let Some((engine, _env)) = engine_with_images(EngineKind::Podman).await else {
        return;
    };
    let stack = unique("kp");
    let ws = workspace();
    let out_dir = tempfile::tempdir().unwrap();
    let file = export(
        "kubernetes",
        &stack,
        ws.path(),
        &out_dir.path().join("k"),
        &[],
    );
    let label = format!("app.kubernetes.io/instance={stack}");
    let models = format!("nanna-{stack}-models");
    let tmp = format!("nanna-{stack}-assistant-tmp0");
    let _sweep = Sweep {
        kind: EngineKind::Podman,
        label: label.clone(),
        volumes: vec![models.clone(), tmp.clone()],
        networks: Vec::new(),
    };

    let played = run(Command::new("podman").args(["kube", "play"]).arg(&file));
    let played = String::from_utf8_lossy(&played.stdout).into_owned();
    assert_eq!(played.matches("Pod:").count(), 2, "{played}");

    let ollama = format!("nanna-{stack}-ollama-pod-0-nanna-{stack}-ollama-pod-0");
    let assistant = format!("nanna-{stack}-assistant-pod-0-assistant");
    eventually("both containers running", Duration::from_secs(60), || {
        let (engine, label) = (&engine, &label);
        async move {
            let running: Vec<String> = containers(engine, label)
                .await
                .into_iter()
                .filter(|c| c.state.as_ref().map(|s| s.to_string()).as_deref() == Some("running"))
                .flat_map(|c| c.names.unwrap_or_default())
                .collect();
            if running.len() == 2 {
                Ok(())
            } else {
                Err(format!("running: {running:?}"))
            }
        }
    })
    .await;
    // The assistant's own health check: its /health is 200 only when it reaches the model
    // server, here through the pod name the Service is named after.
    eventually(
        "the assistant reaches the model server",
        Duration::from_secs(60),
        || {
            let assistant = assistant.clone();
            async move {
                let out = Command::new("podman")
                    .args(["exec", &assistant])
                    .args(stack::in_container_check(Service::Assistant))
                    .output()
                    .unwrap();
                if out.status.success() {
                    Ok(())
                } else {
                    Err(text(&out))
                }
            }
        },
    )
    .await;
    let health = run(Command::new("podman")
        .args(["exec", &assistant])
        .args(stack::in_container_check(Service::Assistant)));
    let body = String::from_utf8_lossy(&health.stdout);
    assert!(
        body.contains(&format!("http://nanna-{stack}-ollama-pod-0:11434")),
        "{body}"
    );
    // The liveness probe as Podman runs it (`/bin/sh -c "/bin/ollama list || exit 1"`).
    run(Command::new("podman").args(["healthcheck", "run", &ollama]));
    // The Job is one of the kinds Podman skips: no pull container.
    assert_eq!(containers(&engine, &label).await.len(), 2);

    run(Command::new("podman").args(["kube", "down"]).arg(&file));
    assert!(containers(&engine, &label).await.is_empty());
    let pods = run(Command::new("podman").args([
        "pod",
        "ps",
        "-q",
        "--filter",
        &format!("label={label}"),
    ]));
    assert!(pods.stdout.is_empty(), "pods left: {}", text(&pods));
    // Podman 4.3's `kube down` removes the emptyDir's volume with its pod but keeps the
    // claim's (no --force yet), as `nanna-deploy down` keeps the models without --volumes.
    let kept = volumes(&engine, &label).await;
    assert_eq!(kept, vec![models.clone()], "labelled volumes left");
    let tmp_left = run(Command::new("podman").args([
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("name={tmp}"),
    ]));
    assert!(tmp_left.stdout.is_empty(), "{}", text(&tmp_left));
    run(Command::new("podman").args(["volume", "rm", &models]));
    // The network `kube play` makes for every play (podman-default-kube-network) is
    // Podman's, shared by all plays; removed when nothing else uses it.
    let _ = Command::new("podman")
        .args(["network", "rm", "podman-default-kube-network"])
        .output();
    assert!(volumes(&engine, &label).await.is_empty());
}

/// Brings the Compose export up with `tool` on `kind` and checks it as `up` would: both
/// services healthy, the assistant reaching the model server through its published port,
/// the model pulled by the one-shot service; then `down -v` leaves nothing.
async fn compose_flow(kind: EngineKind, tool_name: &str) {
    let Some(compose) = tool(tool_name) else {
        return;
    };
    if kind == EngineKind::Podman && !podman_cli_ready() {
        return;
    }
    let Some((engine, _env)) = engine_with_images(kind).await else {
        return;
    };
    let stack = unique("c");
    let project = format!("nanna{stack}");
    let ws = workspace();
    let out_dir = tempfile::tempdir().unwrap();
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let assistant_listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let file = export(
        "compose",
        &stack,
        ws.path(),
        &out_dir.path().join("c"),
        &[
            "--engine",
            kind.as_str(),
            "--listen",
            &listen.to_string(),
            "--assistant-listen",
            &assistant_listen.to_string(),
        ],
    );
    let label = format!("com.docker.compose.project={project}");
    let podman_label = format!("io.podman.compose.project={project}");
    let _sweep = Sweep {
        kind,
        label: if kind == EngineKind::Podman {
            podman_label.clone()
        } else {
            label.clone()
        },
        volumes: vec![format!("{project}_models")],
        networks: vec![format!("{project}_default")],
    };
    let socket = socket(kind).unwrap();
    let command = |verb: &[&str]| {
        let mut c = Command::new(&compose);
        c.arg("-p").arg(&project).arg("-f").arg(&file).args(verb);
        if kind == EngineKind::Docker {
            c.env("DOCKER_HOST", format!("unix://{socket}"));
        }
        c
    };
    if kind == EngineKind::Docker {
        run(&mut command(&["config", "-q"]));
    }
    run(&mut command(&["up", "-d"]));

    // Healthy as the engine sees it (Docker runs the health checks; Podman without systemd
    // runs them on request, as its timers would). podman-compose 1.0.3 rewrites a `CMD`
    // health check into `/bin/sh -c '...'` (podman_compose.py, `container_to_args`), so it
    // works only in images with a shell: Ollama's (and the stand-in) have one, the
    // assistant image `nanna-deploy images build` makes has none, and Podman then reports
    // it unhealthy without acting on it. Its health is checked from the host below, as
    // `up` checks it.
    let checked: &[&str] = match kind {
        EngineKind::Docker => &["ollama", "assistant"],
        EngineKind::Podman => &["ollama"],
    };
    for &service in checked {
        let mut found = containers(&engine, &label).await;
        found.extend(containers(&engine, &podman_label).await);
        let name = found
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .map(|n| n.trim_start_matches('/').to_string())
            .find(|n| n.contains(&format!("_{service}_")))
            .unwrap_or_else(|| panic!("no {service} container"));
        eventually(
            &format!("{service} healthy"),
            Duration::from_secs(90),
            || {
                let (engine, name) = (&engine, name.clone());
                async move {
                    if kind == EngineKind::Podman {
                        let out = Command::new("podman")
                            .args(["healthcheck", "run", &name])
                            .output()
                            .unwrap();
                        return if out.status.success() {
                            Ok(())
                        } else {
                            Err(text(&out))
                        };
                    }
                    let info = engine.client.inspect_container(&name, None).await.unwrap();
                    let status = info
                        .state
                        .and_then(|s| s.health)
                        .and_then(|h| h.status)
                        .map(|s| s.to_string());
                    match status.as_deref() {
                        Some("healthy") => Ok(()),
                        other => Err(format!("health {other:?}")),
                    }
                }
            },
        )
        .await;
    }
    // As `up` checks it, from the host.
    assert_eq!(
        stack::probe(Service::Assistant, assistant_listen, Duration::from_secs(5)).await,
        Health::Healthy
    );
    assert_eq!(
        stack::probe(Service::Ollama, listen, Duration::from_secs(5)).await,
        Health::Healthy
    );
    // The one-shot pull finished with success.
    eventually("the model pull", Duration::from_secs(60), || {
        let (engine, label, podman_label) = (&engine, &label, &podman_label);
        async move {
            let mut found = containers(engine, label).await;
            found.extend(containers(engine, podman_label).await);
            let pull = found
                .into_iter()
                .find(|c| c.names.iter().flatten().any(|n| n.contains("_model-pull_")))
                .ok_or("no model-pull container")?;
            let id = pull.id.unwrap_or_default();
            let info = engine.client.inspect_container(&id, None).await.unwrap();
            let state = info.state.unwrap_or_default();
            match (state.running, state.exit_code) {
                (Some(false), Some(0)) => Ok(()),
                other => Err(format!("model-pull state {other:?}")),
            }
        }
    })
    .await;

    run(&mut command(&["down", "-v"]));
    if kind == EngineKind::Podman {
        // podman-compose 1.0.3 removes the containers and volumes but leaves its network
        // (it never removes networks); remove it as the bench does.
        let _ = Command::new("podman")
            .args(["network", "rm", &format!("{project}_default")])
            .output();
    }
    let mut left = containers(&engine, &label).await;
    left.extend(containers(&engine, &podman_label).await);
    assert!(left.is_empty(), "containers left: {left:?}");
    for l in [&label, &podman_label] {
        assert!(volumes(&engine, l).await.is_empty(), "volumes left ({l})");
        assert!(networks(&engine, l).await.is_empty(), "networks left ({l})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_compose_runs_the_compose_export() {
    compose_flow(EngineKind::Docker, "docker-compose").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_compose_runs_the_compose_export() {
    compose_flow(EngineKind::Podman, "podman-compose").await;
}

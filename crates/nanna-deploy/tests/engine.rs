//! Engine detection against real Podman and Docker API sockets (when the test environment
//! provides them) and against sockets that do not answer.

use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use nanna_deploy::engine::{
    self, CandidateSource, EngineChoice, EngineError, EngineKind, ProbeOutcome,
};
use nanna_deploy::host::{HostRoot, ProbeEnv};

/// The socket path in `var`, or `None` after printing a skip line (panics when
/// `NANNA_TEST_REQUIRE_ENGINES=1`).
fn engine_socket(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(path) if !path.is_empty() => Some(path),
        _ => {
            if std::env::var("NANNA_TEST_REQUIRE_ENGINES").as_deref() == Ok("1") {
                panic!("{var} is not set but NANNA_TEST_REQUIRE_ENGINES=1");
            }
            println!("skipping: set {var} (see .ci/engines.sh)");
            None
        }
    }
}

/// A probe environment that sees no well-known sockets (empty host root) and only the given
/// environment variables.
fn isolated_env(root: &std::path::Path) -> ProbeEnv {
    let mut env = ProbeEnv::isolated(HostRoot::new(root));
    env.engine_timeout = Duration::from_millis(2000);
    env
}

#[tokio::test]
async fn real_podman_is_identified() {
    let Some(socket) = engine_socket("NANNA_TEST_PODMAN_SOCKET") else {
        return;
    };
    let engine = engine::connect_to(&socket, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(engine.kind, EngineKind::Podman);
    assert!(
        engine.version.starts_with(|c: char| c.is_ascii_digit()),
        "{}",
        engine.version
    );
    assert!(
        engine.api_version.starts_with("1."),
        "{}",
        engine.api_version
    );
    assert_eq!(engine.socket, format!("unix://{socket}"));
    // The client is usable after negotiation.
    engine.client.ping().await.unwrap();

    // Found through CONTAINER_HOST by `connect`, for auto and podman; refused for docker.
    let root = tempfile::tempdir().unwrap();
    let mut env = isolated_env(root.path());
    env.container_host = Some(format!("unix://{socket}"));
    for choice in [EngineChoice::Auto, EngineChoice::Podman] {
        let engine = engine::connect(choice, &env).await.unwrap();
        assert_eq!(engine.kind, EngineKind::Podman);
    }
    let error = engine::connect(EngineChoice::Docker, &env)
        .await
        .unwrap_err();
    let EngineError::NotFound { attempts, .. } = &error;
    // CONTAINER_HOST is not a Docker candidate at all.
    assert!(
        attempts
            .iter()
            .all(|a| a.candidate.source != CandidateSource::ContainerHostEnv)
    );

    // Via DOCKER_HOST, --engine docker sees Podman and says so.
    env.container_host = None;
    env.docker_host = Some(format!("unix://{socket}"));
    let error = engine::connect(EngineChoice::Docker, &env)
        .await
        .unwrap_err();
    let EngineError::NotFound { attempts, .. } = &error;
    assert_eq!(
        attempts[0].outcome,
        ProbeOutcome::WrongKind {
            kind: EngineKind::Podman
        }
    );
    assert!(
        error.to_string().contains("answered, but it is Podman"),
        "{error}"
    );
}

#[tokio::test]
async fn real_docker_is_identified() {
    let Some(socket) = engine_socket("NANNA_TEST_DOCKER_SOCKET") else {
        return;
    };
    let engine = engine::connect_to(&socket, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(engine.kind, EngineKind::Docker);
    assert!(
        engine.version.starts_with(|c: char| c.is_ascii_digit()),
        "{}",
        engine.version
    );
    assert!(
        engine.api_version.starts_with("1."),
        "{}",
        engine.api_version
    );
    engine.client.ping().await.unwrap();

    let root = tempfile::tempdir().unwrap();
    let mut env = isolated_env(root.path());
    env.docker_host = Some(format!("unix://{socket}"));
    let engine = engine::connect(EngineChoice::Docker, &env).await.unwrap();
    assert_eq!(engine.kind, EngineKind::Docker);
    let error = engine::connect(EngineChoice::Podman, &env)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("answered, but it is Docker"),
        "{error}"
    );
}

#[tokio::test]
async fn with_both_engines_the_priority_order_and_choice_decide() {
    let (Some(podman), Some(docker)) = (
        engine_socket("NANNA_TEST_PODMAN_SOCKET"),
        engine_socket("NANNA_TEST_DOCKER_SOCKET"),
    ) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let mut env = isolated_env(root.path());
    env.docker_host = Some(format!("unix://{docker}"));
    env.container_host = Some(format!("unix://{podman}"));
    let probe = engine::probe(EngineChoice::Auto, &env).await;
    let sources: Vec<_> = probe.attempts.iter().map(|a| a.candidate.source).collect();
    assert_eq!(
        sources,
        vec![
            CandidateSource::DockerHostEnv,
            CandidateSource::ContainerHostEnv,
            CandidateSource::SystemPodman,
            CandidateSource::SystemDocker,
        ]
    );
    // Both answer; DOCKER_HOST comes first for auto.
    assert!(matches!(
        probe.attempts[0].outcome,
        ProbeOutcome::Connected {
            kind: EngineKind::Docker,
            ..
        }
    ));
    assert!(matches!(
        probe.attempts[1].outcome,
        ProbeOutcome::Connected {
            kind: EngineKind::Podman,
            ..
        }
    ));
    assert_eq!(probe.engine.unwrap().kind, EngineKind::Docker);
    assert_eq!(
        engine::connect(EngineChoice::Podman, &env)
            .await
            .unwrap()
            .kind,
        EngineKind::Podman
    );
    assert_eq!(
        engine::connect(EngineChoice::Docker, &env)
            .await
            .unwrap()
            .kind,
        EngineKind::Docker
    );
}

#[tokio::test]
async fn a_plain_file_is_not_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("docker.sock");
    std::fs::write(&file, "not a socket").unwrap();
    let mut env = isolated_env(dir.path());
    env.docker_host = Some(format!("unix://{}", file.display()));
    let start = Instant::now();
    let error = engine::connect(EngineChoice::Auto, &env).await.unwrap_err();
    let elapsed = start.elapsed();
    let EngineError::NotFound { attempts, .. } = &error;
    assert_eq!(attempts[0].outcome, ProbeOutcome::NotASocket);
    let text = error.to_string();
    assert!(text.contains("exists but is not a socket"), "{text}");
    assert!(text.contains("To fix:"), "{text}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[tokio::test]
async fn a_dead_unix_socket_fails_fast_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.sock");
    drop(UnixListener::bind(&path).unwrap()); // the socket file stays, nobody listens
    let mut env = isolated_env(dir.path());
    env.docker_host = Some(path.display().to_string());
    let probe = engine::probe(EngineChoice::Auto, &env).await;
    assert!(probe.engine.is_none());
    let ProbeOutcome::Failed { error } = &probe.attempts[0].outcome else {
        panic!("expected a failure, got {:?}", probe.attempts[0].outcome);
    };
    assert!(error.to_lowercase().contains("refused"), "{error}");
    // The remaining well-known candidates below the empty root are simply missing.
    assert!(
        probe.attempts[1..]
            .iter()
            .all(|a| a.outcome == ProbeOutcome::Missing)
    );
}

#[tokio::test]
async fn a_socket_that_never_answers_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let _listener = UnixListener::bind(&path).unwrap(); // accepts into the backlog, never replies
    let mut env = isolated_env(dir.path());
    env.docker_host = Some(format!("unix://{}", path.display()));
    env.engine_timeout = Duration::from_millis(200);
    let start = Instant::now();
    let probe = engine::probe(EngineChoice::Auto, &env).await;
    assert_eq!(
        probe.attempts[0].outcome,
        ProbeOutcome::TimedOut { timeout_ms: 200 }
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn ssh_addresses_are_reported_as_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = isolated_env(dir.path());
    env.container_host = Some("ssh://core@example.invalid/run/podman/podman.sock".into());
    let probe = engine::probe(EngineChoice::Podman, &env).await;
    assert!(matches!(
        probe.attempts[0].outcome,
        ProbeOutcome::Unsupported { .. }
    ));
}

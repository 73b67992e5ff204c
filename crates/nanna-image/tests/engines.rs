//! Builds images from real binaries on this machine, loads them into real engines
//! (Podman and Docker, through their Engine APIs), runs them and inspects them.
//!
//! Needs `NANNA_TEST_PODMAN_SOCKET` / `NANNA_TEST_DOCKER_SOCKET` (see .ci/engines.sh);
//! skipped without them unless `NANNA_TEST_REQUIRE_ENGINES=1`.

use std::collections::HashMap;
use std::path::Path;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, RemoveContainerOptions, RemoveImageOptions,
};
use futures::StreamExt;
use nanna_image::{ImageError, ImageSpec, load_archive, write_docker_archive, write_oci_archive};

const TEST_LABEL: &str = "dev.nanna.test";

async fn engine(var: &str) -> Option<Docker> {
    let Ok(socket) = std::env::var(var) else {
        if std::env::var("NANNA_TEST_REQUIRE_ENGINES").as_deref() == Ok("1") {
            panic!("{var} is not set but NANNA_TEST_REQUIRE_ENGINES=1");
        }
        println!("skipping: set {var} (see .ci/engines.sh)");
        return None;
    };
    let docker = Docker::connect_with_unix(&socket, 120, bollard::API_DEFAULT_VERSION)
        .unwrap_or_else(|e| panic!("connect to {socket}: {e}"));
    Some(
        docker
            .negotiate_version()
            .await
            .unwrap_or_else(|e| panic!("negotiate with {socket}: {e}")),
    )
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Runs a container to completion and returns (exit code, stdout+stderr). Removes it.
async fn run(
    docker: &Docker,
    image: &str,
    name: &str,
    entrypoint: Option<Vec<String>>,
) -> Result<(i64, String), String> {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint,
        labels: Some(HashMap::from([(
            TEST_LABEL.to_string(),
            "nanna-image".to_string(),
        )])),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(name.to_string()),
        ..Default::default()
    };
    docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| format!("create {name}: {e}"))?;
    let result = async {
        docker
            .start_container(name, None)
            .await
            .map_err(|e| format!("start {name}: {e}"))?;
        let mut code = 0;
        let mut wait = docker.wait_container(name, None);
        while let Some(item) = wait.next().await {
            match item {
                Ok(r) => code = r.status_code,
                Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => code = c,
                Err(e) => return Err(format!("wait {name}: {e}")),
            }
        }
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut logs = docker.logs(name, Some(options));
        let mut text = String::new();
        while let Some(chunk) = logs.next().await {
            text.push_str(&chunk.map_err(|e| format!("logs {name}: {e}"))?.to_string());
        }
        Ok((code, text))
    }
    .await;
    let remove = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    let _ = docker.remove_container(name, Some(remove)).await;
    result
}

async fn remove_image(docker: &Docker, image: &str) {
    let options = RemoveImageOptions {
        force: true,
        ..Default::default()
    };
    let _ = docker.remove_image(image, Some(options), None).await;
}

/// The whole round trip; returns an error message instead of panicking so the caller
/// can clean up first.
async fn round_trip(docker: &Docker, reference: &str) -> Result<(), String> {
    let mut spec = ImageSpec::for_binary(Path::new("/usr/bin/env"), reference, "/bin/env")
        .map_err(|e| e.to_string())?;
    spec.add_binary(Path::new("/usr/bin/id"), "/bin/id")
        .map_err(|e| e.to_string())?;
    spec.env
        .insert("GREETING".into(), "hello-from-nanna-image".into());
    spec.user = Some("nanna".into());
    spec.workdir = Some("/work".into());
    spec.exposed_ports = vec![8080];
    spec.labels.insert(TEST_LABEL.into(), "nanna-image".into());
    spec.labels
        .insert("org.opencontainers.image.title".into(), "env".into());

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let archive = dir.path().join("image.tar");
    let file = std::fs::File::create(&archive).map_err(|e| e.to_string())?;
    let built =
        write_docker_archive(&spec, std::io::BufWriter::new(file)).map_err(|e| e.to_string())?;

    let loaded = load_archive(docker, &archive)
        .await
        .map_err(|e| e.to_string())?;
    if !loaded
        .iter()
        .any(|l| l.ends_with(&built.reference) || l.contains(&built.image_id[7..19]))
    {
        return Err(format!(
            "load reported {loaded:?}, expected {}",
            built.reference
        ));
    }

    let inspect = docker
        .inspect_image(reference)
        .await
        .map_err(|e| format!("inspect: {e}"))?;
    let id = inspect.id.clone().unwrap_or_default();
    if id.trim_start_matches("sha256:") != built.image_id.trim_start_matches("sha256:") {
        return Err(format!("engine id {id} != built id {}", built.image_id));
    }
    let config = inspect.config.ok_or("image has no config")?;
    let checks = [
        (
            config.user.as_deref() == Some("nanna"),
            format!("user {:?}", config.user),
        ),
        (
            config.entrypoint == Some(vec!["/bin/env".to_string()]),
            format!("entrypoint {:?}", config.entrypoint),
        ),
        (
            config.working_dir.as_deref() == Some("/work"),
            format!("workdir {:?}", config.working_dir),
        ),
        (
            config.exposed_ports == Some(vec!["8080/tcp".to_string()]),
            format!("ports {:?}", config.exposed_ports),
        ),
        (
            config
                .labels
                .as_ref()
                .and_then(|l| l.get(TEST_LABEL))
                .map(String::as_str)
                == Some("nanna-image")
                && config
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("org.opencontainers.image.title"))
                    .map(String::as_str)
                    == Some("env"),
            format!("labels {:?}", config.labels),
        ),
        (
            inspect.architecture.as_deref() == Some(spec.architecture.as_str()),
            format!("architecture {:?}", inspect.architecture),
        ),
    ];
    for (ok, what) in checks {
        if !ok {
            return Err(format!("inspect mismatch: {what}"));
        }
    }

    let (code, out) = run(docker, reference, &unique("nanna-image-env"), None).await?;
    if code != 0
        || !out.contains("GREETING=hello-from-nanna-image")
        || !out.contains("HOME=/home/nanna")
    {
        return Err(format!("env container exited {code} with output:\n{out}"));
    }
    let (code, out) = run(
        docker,
        reference,
        &unique("nanna-image-id"),
        Some(vec!["/bin/id".into()]),
    )
    .await?;
    if code != 0 || !out.contains("uid=1000(nanna) gid=1000(nanna)") {
        return Err(format!("id container exited {code} with output:\n{out}"));
    }
    Ok(())
}

async fn exercise(var: &str) {
    let Some(docker) = engine(var).await else {
        return;
    };
    let reference = format!("localhost/{}:test", unique("nanna-image-rt"));
    let result = round_trip(&docker, &reference).await;
    remove_image(&docker, &reference).await;
    if let Err(message) = result {
        panic!("{var}: {message}");
    }

    // A broken archive gives a clear load error, not a hang or a silent success.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive").unwrap();
    let err = load_archive(&docker, &junk).await.unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::Load { .. } | ImageError::NothingLoaded { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("junk.tar"), "{err}");
}

#[tokio::test]
async fn builds_loads_runs_and_inspects_on_podman() {
    exercise("NANNA_TEST_PODMAN_SOCKET").await;
}

#[tokio::test]
async fn builds_loads_runs_and_inspects_on_docker() {
    exercise("NANNA_TEST_DOCKER_SOCKET").await;
}

/// Podman also loads the OCI layout archive through the same endpoint.
#[tokio::test]
async fn podman_loads_the_oci_archive() {
    let Some(docker) = engine("NANNA_TEST_PODMAN_SOCKET").await else {
        return;
    };
    let reference = format!("localhost/{}:oci", unique("nanna-image-oci"));
    let mut spec =
        ImageSpec::for_binary(Path::new("/usr/bin/env"), &reference, "/bin/env").unwrap();
    spec.labels.insert(TEST_LABEL.into(), "nanna-image".into());
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("oci.tar");
    let built = write_oci_archive(&spec, std::fs::File::create(&archive).unwrap()).unwrap();
    let loaded = load_archive(&docker, &archive).await;
    let inspect = docker.inspect_image(&reference).await;
    remove_image(&docker, &reference).await;
    let loaded = loaded.unwrap();
    let id = inspect
        .unwrap_or_else(|e| panic!("{reference} not found after {loaded:?}: {e}"))
        .id;
    assert_eq!(
        id.unwrap_or_default().trim_start_matches("sha256:"),
        built.image_id.trim_start_matches("sha256:")
    );
}

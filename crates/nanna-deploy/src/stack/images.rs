//! Images: making sure the stack's images are on the engine (present, else a short pull
//! attempt), loading archives (`--image-archive`, `images load`) and building the assistant
//! image from the `nanna` binary (`images build`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use bollard::query_parameters::CreateImageOptions;
use futures::StreamExt;
use nanna_image::{BuiltImage, ImageSpec};
use serde::Serialize;

use super::error::{ImageRole, bollard_message, is_not_found};
use super::{StackContext, StackError};
use crate::engine::Engine;
use crate::event::{DeployEvent, ProgressThrottle, Transfer};

/// How long a pull of an absent image may take before it counts as unpullable.
pub const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(15);

/// The id the engine has for `reference`, or `None` when absent.
pub async fn image_id(engine: &Engine, reference: &str) -> Result<Option<String>, StackError> {
    match engine.client.inspect_image(reference).await {
        Ok(image) => Ok(image.id),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(StackError::engine_call(
            engine,
            format!("inspect image {reference}"),
            &e,
        )),
    }
}

/// Whether `reference` names an image that exists only locally: its first component is
/// `localhost`, which both engines would otherwise take for a registry on localhost:80
/// (the reference grammar of distribution/reference: a first component with a `.` or `:`,
/// or `localhost`, is a registry host).
pub fn is_local_reference(reference: &str) -> bool {
    reference
        .split_once('/')
        .is_some_and(|(first, _)| first == "localhost" || first.starts_with("localhost:"))
}

/// Pulls `reference` within `timeout`, reporting per-layer progress.
pub async fn pull(
    ctx: &StackContext<'_>,
    reference: &str,
    timeout: Duration,
) -> Result<(), String> {
    let options = CreateImageOptions {
        from_image: Some(reference.to_string()),
        ..Default::default()
    };
    let transfer = Transfer::ImagePull(reference.to_string());
    let mut stream = ctx.engine.client.create_image(Some(options), None, None);
    let mut throttle = ProgressThrottle::new();
    let drain = async {
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| bollard_message(&e))?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(detail);
            }
            let (current, total) = info.progress_detail.map_or((None, None), |d| {
                (
                    d.current.map(|c| c.max(0) as u64),
                    d.total.map(|t| t.max(0) as u64),
                )
            });
            let status = info.status.unwrap_or_default();
            if throttle.pass(&info.id, &status, current, total) {
                ctx.events.report(DeployEvent::Progress {
                    transfer: transfer.clone(),
                    item: info.id,
                    status,
                    current,
                    total,
                });
            }
        }
        Ok(())
    };
    let result = tokio::select! {
        result = tokio::time::timeout(timeout, drain) => match result {
            Ok(result) => result,
            Err(_) => Err(format!("no progress within {}", super::fmt_duration(timeout))),
        },
        () = ctx.cancel.cancelled() => Err("interrupted".to_string()),
    };
    if result.is_ok() {
        ctx.events.report(DeployEvent::Done {
            transfer,
            result: vec![reference.to_string()],
        });
    }
    result
}

/// The ids of `references`, pulling absent ones (each within `pull_timeout`); references
/// under `localhost/` are never pulled. Fails on the first image that is neither present
/// nor pullable, with the fix for its role.
pub(crate) async fn ensure(
    ctx: &StackContext<'_>,
    references: &[(String, ImageRole)],
    pull_timeout: Duration,
) -> Result<BTreeMap<String, String>, StackError> {
    let engine = ctx.engine;
    let mut ids = BTreeMap::new();
    for (reference, role) in references {
        if ids.contains_key(reference) {
            continue;
        }
        let unavailable = |reason: String| StackError::ImageUnavailable {
            image: reference.clone(),
            engine: engine.kind.as_str().to_string(),
            reason,
            role: *role,
        };
        let id = match image_id(engine, reference).await? {
            Some(id) => id,
            None if is_local_reference(reference) => {
                return Err(unavailable(
                    "a localhost/ reference names a local image, which is never pulled".to_string(),
                ));
            }
            None => {
                pull(ctx, reference, pull_timeout)
                    .await
                    .map_err(unavailable)?;
                if ctx.cancel.is_cancelled() {
                    return Err(StackError::Interrupted);
                }
                image_id(engine, reference).await?.ok_or_else(|| {
                    unavailable("the pull reported success but the image is not there".to_string())
                })?
            }
        };
        ids.insert(reference.clone(), id);
    }
    Ok(ids)
}

/// Ids of whichever of `references` are present (no pulls).
pub async fn present(
    engine: &Engine,
    references: &[String],
) -> Result<BTreeMap<String, String>, StackError> {
    let mut ids = BTreeMap::new();
    for reference in references {
        if let Some(id) = image_id(engine, reference).await? {
            ids.insert(reference.clone(), id);
        }
    }
    Ok(ids)
}

/// Loads a docker-archive or OCI-archive tarball, reporting the bytes sent; returns what
/// the engine loaded.
pub async fn load(ctx: &StackContext<'_>, archive: &Path) -> Result<Vec<String>, StackError> {
    let transfer = Transfer::ImageLoad(archive.display().to_string());
    let events = ctx.events;
    let throttle = Mutex::new(ProgressThrottle::new());
    let item = Some(archive.file_name().map_or_else(
        || archive.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    ));
    let progress = |sent: u64, total: u64| {
        let pass = throttle
            .lock()
            .map(|mut t| t.pass(&item, "loading", Some(sent), Some(total)))
            .unwrap_or(true);
        if pass {
            events.report(DeployEvent::Progress {
                transfer: transfer.clone(),
                item: item.clone(),
                status: "loading".to_string(),
                current: Some(sent),
                total: Some(total),
            });
        }
    };
    let load = nanna_image::load_archive_with_progress(&ctx.engine.client, archive, &progress);
    let loaded = tokio::select! {
        loaded = load => loaded?,
        () = ctx.cancel.cancelled() => return Err(StackError::Interrupted),
    };
    events.report(DeployEvent::Done {
        transfer,
        result: loaded.clone(),
    });
    Ok(loaded)
}

/// What `images build` should build.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The binary; `None` means the `nanna` assistant binary (a binary named `nanna` without
    /// a tag also makes the assistant image).
    pub binary: Option<PathBuf>,
    /// The reference; `None` means the assistant's (`localhost/nanna-coder-assistant:latest`)
    /// for the assistant, or `localhost/<binary name>:latest`.
    pub tag: Option<String>,
    /// Entrypoint override (first item is the program).
    pub entrypoint: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Ports to expose.
    pub ports: Vec<u16>,
    /// Extra files: (host path, image path), mode 0755.
    pub files: Vec<(PathBuf, String)>,
}

/// What `images build` produced.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    /// The reference.
    pub reference: String,
    /// Image id (sha256 of the config).
    pub image_id: String,
    /// Archive size in bytes.
    pub size_bytes: u64,
    /// Layers.
    pub layers: usize,
    /// What the engine reported loading.
    pub loaded: Vec<String>,
}

/// Finds the `nanna` binary: beside this executable, else on `PATH`.
pub fn find_nanna() -> Result<PathBuf, StackError> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("nanna")));
    if let Some(path) = &beside
        && path.is_file()
    {
        return Ok(path.clone());
    }
    which::which("nanna").map_err(|_| StackError::NoBinary {
        beside: beside.map_or_else(|| "unknown".to_string(), |p| p.display().to_string()),
    })
}

/// The image spec for a build request.
pub fn spec_for(request: &BuildRequest) -> Result<ImageSpec, StackError> {
    let is_nanna = |binary: &PathBuf| binary.file_name().is_some_and(|n| n == "nanna");
    let mut spec = match &request.binary {
        None => ImageSpec::assistant(&find_nanna()?)?,
        Some(binary) if is_nanna(binary) && request.tag.is_none() => ImageSpec::assistant(binary)?,
        Some(binary) => {
            let stem = binary
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "app".to_string());
            let reference = request
                .tag
                .clone()
                .unwrap_or_else(|| format!("localhost/{stem}:latest"));
            ImageSpec::for_binary(binary, &reference, &format!("/bin/{stem}"))?
        }
    };
    if let Some(tag) = &request.tag {
        spec.reference = tag.clone();
    }
    if !request.entrypoint.is_empty() {
        spec.entrypoint = request.entrypoint.clone();
    }
    spec.env.extend(request.env.clone());
    for port in &request.ports {
        if !spec.exposed_ports.contains(port) {
            spec.exposed_ports.push(*port);
        }
    }
    for (host, image_path) in &request.files {
        spec.add_file(host, image_path, 0o755)?;
    }
    Ok(spec)
}

/// Builds the image as a docker-archive in a temporary file and loads it into the engine.
pub async fn build(
    ctx: &StackContext<'_>,
    request: &BuildRequest,
) -> Result<BuildReport, StackError> {
    let spec = spec_for(request)?;
    let dir = tempfile_dir()?;
    let archive = dir.join("image.tar");
    let built: BuiltImage = {
        let archive = archive.clone();
        let written = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::create(&archive).map_err(|source| StackError::Io {
                what: format!("create {}", archive.display()),
                source,
            })?;
            let built = nanna_image::write_docker_archive(&spec, std::io::BufWriter::new(file))?;
            Ok::<_, StackError>(built)
        })
        .await
        .map_err(|e| StackError::Io {
            what: "build the image".to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        match written {
            Ok(built) => built,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        }
    };
    let loaded = load(ctx, &archive).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(BuildReport {
        reference: built.reference,
        image_id: built.image_id,
        size_bytes: built.size_bytes,
        layers: built.layers,
        loaded: loaded?,
    })
}

fn tempfile_dir() -> Result<PathBuf, StackError> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = base.join(format!("nanna-deploy-build-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| StackError::Io {
        what: format!("create {}", dir.display()),
        source,
    })?;
    Ok(dir)
}

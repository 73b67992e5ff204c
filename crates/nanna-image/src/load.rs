//! Loading an image archive into a Docker or Podman engine through the Engine API.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::ImportImageOptions;
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use crate::ImageError;

/// How often [`load_archive_with_progress`] reports the bytes sent.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Streams the docker-archive at `archive` to the engine's `POST /images/load` and
/// returns what the engine reports loading: references (e.g. `localhost/x:latest`) or,
/// for untagged images, ids. Works with Docker Engine and Podman's compatible API.
pub async fn load_archive(docker: &Docker, archive: &Path) -> Result<Vec<String>, ImageError> {
    load_archive_with_progress(docker, archive, &|_, _| {}).await
}

/// [`load_archive`], calling `progress(sent, total)` with the bytes of the archive sent so
/// far, every [`PROGRESS_EVERY`] and once at the end.
pub async fn load_archive_with_progress(
    docker: &Docker,
    archive: &Path,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Vec<String>, ImageError> {
    let read_failed = |source| ImageError::Read {
        path: archive.to_path_buf(),
        source,
    };
    let file = tokio::fs::File::open(archive).await.map_err(read_failed)?;
    let total = file.metadata().await.map_err(read_failed)?.len();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let chunks = ReaderStream::with_capacity(file, 256 * 1024).inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
    });
    let body = bollard::body_try_stream(chunks);
    let options = ImportImageOptions {
        quiet: true,
        platform: None,
    };
    let mut stream = docker.import_image(options, body, None);
    let mut loaded = Vec::new();
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    loop {
        let item = tokio::select! {
            item = stream.next() => item,
            _ = ticker.tick() => {
                progress(sent.load(Ordering::Relaxed), total);
                continue;
            }
        };
        let Some(item) = item else {
            break;
        };
        let info = item.map_err(|e| ImageError::Load {
            archive: archive.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Some(text) = info.stream.as_deref() {
            loaded.extend(parse_loaded(text));
        }
    }
    progress(sent.load(Ordering::Relaxed), total);
    if loaded.is_empty() {
        return Err(ImageError::NothingLoaded {
            archive: archive.to_path_buf(),
        });
    }
    Ok(loaded)
}

/// Extracts names from `Loaded image: a`, `Loaded image ID: sha256:..` (Docker) and
/// `Loaded image(s): a,b` / `Loaded image: a,b` (Podman) lines.
fn parse_loaded(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            ["Loaded image ID:", "Loaded image(s):", "Loaded image:"]
                .iter()
                .find_map(|prefix| line.strip_prefix(prefix))
        })
        .flat_map(|names| names.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_loaded;

    #[test]
    fn parses_both_engines_load_reports() {
        assert_eq!(
            parse_loaded("Loaded image: localhost/a:latest\n"),
            vec!["localhost/a:latest"]
        );
        assert_eq!(
            parse_loaded("Loaded image ID: sha256:abc\n"),
            vec!["sha256:abc"]
        );
        assert_eq!(
            parse_loaded("Loaded image(s): localhost/a:latest,localhost/b:1"),
            vec!["localhost/a:latest", "localhost/b:1"]
        );
        assert!(parse_loaded("{\"status\":\"progress\"}").is_empty());
    }
}

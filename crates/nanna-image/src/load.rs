//! Loading an image archive into a Docker or Podman engine through the Engine API.

use std::path::Path;

use bollard::Docker;
use bollard::query_parameters::ImportImageOptions;
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use crate::ImageError;

/// Streams the docker-archive at `archive` to the engine's `POST /images/load` and
/// returns what the engine reports loading: references (e.g. `localhost/x:latest`) or,
/// for untagged images, ids. Works with Docker Engine and Podman's compatible API.
pub async fn load_archive(docker: &Docker, archive: &Path) -> Result<Vec<String>, ImageError> {
    let file = tokio::fs::File::open(archive)
        .await
        .map_err(|source| ImageError::Read {
            path: archive.to_path_buf(),
            source,
        })?;
    let body = bollard::body_try_stream(ReaderStream::with_capacity(file, 256 * 1024));
    let options = ImportImageOptions {
        quiet: true,
        platform: None,
    };
    let mut stream = docker.import_image(options, body, None);
    let mut loaded = Vec::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| ImageError::Load {
            archive: archive.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Some(text) = info.stream.as_deref() {
            loaded.extend(parse_loaded(text));
        }
    }
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

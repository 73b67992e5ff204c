//! Turning an [`ImageSpec`] into reproducible layer tarballs, an image config, and a
//! docker-archive (or OCI layout) tarball.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::spec::{Content, Entry, Files, IMAGE_CA_BUNDLE, image_path};
use crate::{ImageError, ImageSpec};

/// What was written: the image's identity and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltImage {
    /// The image id, `sha256:<hex>` of the config; what `docker images --no-trunc` shows.
    pub image_id: String,
    /// The tagged reference the archive names, e.g. `localhost/x:latest`.
    pub reference: String,
    /// Bytes of archive written.
    pub size_bytes: u64,
    /// Number of layers.
    pub layers: usize,
}

/// One built layer.
struct Layer {
    tar: Vec<u8>,
    hex: String,
    created_by: &'static str,
}

/// Layers and config of an image, ready to be packaged.
struct Assembled {
    reference: String,
    layers: Vec<Layer>,
    config: Vec<u8>,
    config_hex: String,
}

/// Writes `spec` as a docker-archive tarball (`manifest.json`, `<config digest>.json`,
/// `<layer digest>.tar`), as `docker save` does; loadable by `docker load`, `podman load`
/// and the Engine API's `POST /images/load`. Same spec and input files, same bytes.
pub fn write_docker_archive(spec: &ImageSpec, out: impl Write) -> Result<BuiltImage, ImageError> {
    let image = assemble(spec)?;
    let manifest = vec![DockerManifest {
        config: format!("{}.json", image.config_hex),
        repo_tags: vec![image.reference.clone()],
        layers: image
            .layers
            .iter()
            .map(|l| format!("{}.tar", l.hex))
            .collect(),
    }];
    let manifest = to_json(&manifest)?;
    let mut entries: BTreeMap<String, &[u8]> = BTreeMap::new();
    entries.insert("manifest.json".into(), &manifest);
    entries.insert(format!("{}.json", image.config_hex), &image.config);
    for layer in &image.layers {
        entries.insert(format!("{}.tar", layer.hex), &layer.tar);
    }
    let size_bytes = write_outer(entries, spec.source_date_epoch, out)?;
    Ok(built(&image, size_bytes))
}

/// Writes `spec` as an OCI image layout tarball (`oci-layout`, `index.json`,
/// `blobs/sha256/...`), the `oci-archive` format of Podman and skopeo. The index names the
/// image with the `org.opencontainers.image.ref.name` annotation (the full reference).
pub fn write_oci_archive(spec: &ImageSpec, out: impl Write) -> Result<BuiltImage, ImageError> {
    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    let image = assemble(spec)?;
    let manifest = OciManifest {
        schema_version: 2,
        media_type: MANIFEST,
        config: descriptor(
            "application/vnd.oci.image.config.v1+json",
            &image.config_hex,
            image.config.len(),
            None,
        ),
        layers: image
            .layers
            .iter()
            .map(|l| {
                descriptor(
                    "application/vnd.oci.image.layer.v1.tar",
                    &l.hex,
                    l.tar.len(),
                    None,
                )
            })
            .collect(),
    };
    let manifest = to_json(&manifest)?;
    let manifest_hex = hex::encode(Sha256::digest(&manifest));
    let annotations = BTreeMap::from([
        ("io.containerd.image.name", image.reference.clone()),
        ("org.opencontainers.image.ref.name", image.reference.clone()),
    ]);
    let index = OciIndex {
        schema_version: 2,
        media_type: "application/vnd.oci.image.index.v1+json",
        manifests: vec![descriptor(
            MANIFEST,
            &manifest_hex,
            manifest.len(),
            Some(annotations),
        )],
    };
    let index = to_json(&index)?;
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let mut entries: BTreeMap<String, &[u8]> = BTreeMap::new();
    entries.insert("oci-layout".into(), layout);
    entries.insert("index.json".into(), &index);
    entries.insert(format!("blobs/sha256/{manifest_hex}"), &manifest);
    entries.insert(format!("blobs/sha256/{}", image.config_hex), &image.config);
    for layer in &image.layers {
        entries.insert(format!("blobs/sha256/{}", layer.hex), &layer.tar);
    }
    let size_bytes = write_outer(entries, spec.source_date_epoch, out)?;
    Ok(built(&image, size_bytes))
}

fn built(image: &Assembled, size_bytes: u64) -> BuiltImage {
    BuiltImage {
        image_id: format!("sha256:{}", image.config_hex),
        reference: image.reference.clone(),
        size_bytes,
        layers: image.layers.len(),
    }
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, ImageError> {
    serde_json::to_vec(value).map_err(|e| ImageError::Write(std::io::Error::other(e)))
}

fn assemble(spec: &ImageSpec) -> Result<Assembled, ImageError> {
    let reference = normalize_reference(&spec.reference)?;
    let (uid, gid) = spec.user_ids()?;
    let dirs = special_dirs(spec, uid, gid)?;
    let base = base_files(spec, &dirs);
    let mut layers = Vec::new();
    for (files, created_by) in [
        (
            &base,
            "nanna-image: base (passwd, group, nsswitch.conf, CA certificates, directories)",
        ),
        (
            &spec.libraries,
            "nanna-image: dynamic loader and shared libraries",
        ),
        (&spec.files, "nanna-image: application files"),
    ] {
        if files.is_empty() {
            continue;
        }
        let tar = layer_tar(files, &dirs, spec.source_date_epoch)?;
        let hex = hex::encode(Sha256::digest(&tar));
        layers.push(Layer {
            tar,
            hex,
            created_by,
        });
    }
    let created =
        rfc3339(spec.source_date_epoch).ok_or_else(|| ImageError::InvalidSourceDateEpoch {
            value: spec.source_date_epoch.to_string(),
        })?;
    let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let config = ConfigFile {
        architecture: &spec.architecture,
        config: RunConfig {
            user: spec.user.as_deref().filter(|u| !u.is_empty()),
            exposed_ports: spec
                .exposed_ports
                .iter()
                .map(|p| (format!("{p}/tcp"), Empty {}))
                .collect(),
            env,
            entrypoint: &spec.entrypoint,
            cmd: &spec.cmd,
            working_dir: spec.workdir.as_deref(),
            labels: &spec.labels,
        },
        created: &created,
        history: layers
            .iter()
            .map(|l| History {
                created: &created,
                created_by: l.created_by,
            })
            .collect(),
        os: "linux",
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|l| format!("sha256:{}", l.hex)).collect(),
        },
    };
    let config = to_json(&config)?;
    let config_hex = hex::encode(Sha256::digest(&config));
    Ok(Assembled {
        reference,
        layers,
        config,
        config_hex,
    })
}

/// Directories whose owner or mode differs from root 0755, keyed by image path.
fn special_dirs(spec: &ImageSpec, uid: u64, gid: u64) -> Result<Files, ImageError> {
    let dir = |mode, uid, gid| Entry {
        content: Content::Directory,
        mode,
        uid,
        gid,
    };
    let mut dirs = Files::new();
    if let Some(workdir) = &spec.workdir {
        dirs.insert(image_path(workdir)?, dir(0o755, uid, gid));
    }
    dirs.insert("tmp".into(), dir(0o1777, 0, 0));
    dirs.insert("root".into(), dir(0o700, 0, 0));
    dirs.insert("home/nanna".into(), dir(0o755, 1000, 1000));
    Ok(dirs)
}

fn base_files(spec: &ImageSpec, dirs: &Files) -> Files {
    let file = |text: &str| Entry {
        content: Content::Bytes(text.as_bytes().to_vec()),
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    let mut files = dirs.clone();
    files.insert(
        "etc/passwd".into(),
        file("root:x:0:0:root:/root:/sbin/nologin\nnanna:x:1000:1000:nanna:/home/nanna:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"),
    );
    files.insert(
        "etc/group".into(),
        file("root:x:0:\nnanna:x:1000:\nnogroup:x:65534:\n"),
    );
    files.insert(
        "etc/nsswitch.conf".into(),
        file("passwd: files\ngroup: files\nhosts: files dns\n"),
    );
    if let Some(ca) = &spec.ca_certificates {
        files.insert(
            IMAGE_CA_BUNDLE.into(),
            Entry {
                content: Content::Host(ca.clone()),
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
        );
    }
    files
}

/// A layer tarball: the files plus every parent directory, sorted by path, with fixed
/// owners, modes and timestamps.
fn layer_tar(files: &Files, dirs: &Files, mtime: u64) -> Result<Vec<u8>, ImageError> {
    let mut all = files.clone();
    for path in files.keys() {
        let mut parent = path.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            all.entry(up.to_string()).or_insert_with(|| {
                dirs.get(up).cloned().unwrap_or(Entry {
                    content: Content::Directory,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                })
            });
            parent = up;
        }
    }
    let mut tar = tar::Builder::new(Vec::new());
    for (path, entry) in &all {
        let mut header = new_header(entry.mode, entry.uid, entry.gid, mtime)?;
        let written = match &entry.content {
            Content::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, format!("{path}/"), std::io::empty())
            }
            Content::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, path, target)
            }
            Content::Bytes(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, path, data.as_slice())
            }
            Content::Host(host) => {
                let data = std::fs::read(host).map_err(|source| ImageError::Read {
                    path: host.clone(),
                    source,
                })?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, path, data.as_slice())
            }
        };
        written.map_err(ImageError::Write)?;
    }
    tar.into_inner().map_err(ImageError::Write)
}

/// A GNU tar header with every numeric field set (owner names left empty).
fn new_header(mode: u32, uid: u64, gid: u64, mtime: u64) -> Result<tar::Header, ImageError> {
    let mut header = tar::Header::new_gnu();
    header.set_mode(mode);
    header.set_uid(uid);
    header.set_gid(gid);
    header.set_mtime(mtime);
    header.set_device_major(0).map_err(ImageError::Write)?;
    header.set_device_minor(0).map_err(ImageError::Write)?;
    Ok(header)
}

/// Writes the outer archive (entries sorted by name) and returns its size.
fn write_outer(
    entries: BTreeMap<String, &[u8]>,
    mtime: u64,
    out: impl Write,
) -> Result<u64, ImageError> {
    let mut tar = tar::Builder::new(CountingWriter {
        inner: out,
        count: 0,
    });
    let mut dirs_written = std::collections::BTreeSet::new();
    for (name, data) in entries {
        if let Some((dir, _)) = name.rsplit_once('/') {
            let mut prefix = String::new();
            for part in dir.split('/') {
                prefix = if prefix.is_empty() {
                    part.to_string()
                } else {
                    format!("{prefix}/{part}")
                };
                if dirs_written.insert(prefix.clone()) {
                    let mut header = new_header(0o755, 0, 0, mtime)?;
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    tar.append_data(&mut header, format!("{prefix}/"), std::io::empty())
                        .map_err(ImageError::Write)?;
                }
            }
        }
        let mut header = new_header(0o644, 0, 0, mtime)?;
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        tar.append_data(&mut header, &name, data)
            .map_err(ImageError::Write)?;
    }
    let mut counting = tar.into_inner().map_err(ImageError::Write)?;
    counting.flush().map_err(ImageError::Write)?;
    Ok(counting.count)
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Checks `name[:tag]` and adds `:latest` when there is no tag.
fn normalize_reference(reference: &str) -> Result<String, ImageError> {
    let invalid = |reason| ImageError::InvalidReference {
        reference: reference.to_string(),
        reason,
    };
    if reference.contains('@') {
        return Err(invalid("digest references cannot name a loaded image"));
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            Some(&reference[last_slash + i + 1..]),
        ),
        None => (reference, None),
    };
    if name.is_empty() || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(invalid("the name is empty or has an empty path component"));
    }
    let (host, path) = match name.split_once('/') {
        Some((h, p)) if h.contains(['.', ':']) || h == "localhost" => (Some(h), p),
        _ => (None, name),
    };
    if host.is_some_and(|h| {
        !h.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c))
    }) {
        return Err(invalid("the registry host has invalid characters"));
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
    {
        return Err(invalid(
            "the name may only contain lower-case letters, digits, '.', '_', '-' and '/'",
        ));
    }
    let tag = tag.unwrap_or("latest");
    if tag.is_empty()
        || tag.len() > 128
        || tag.starts_with(['.', '-'])
        || !tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(invalid(
            "the tag must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
        ));
    }
    Ok(format!("{name}:{tag}"))
}

/// Formats seconds since 1970 as RFC 3339 UTC (`1970-01-01T00:00:00Z`); `None` past the
/// year 9999, which RFC 3339 cannot write.
fn rfc3339(epoch: u64) -> Option<String> {
    use std::fmt::Write as _;
    let time = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(epoch))?;
    let mut text = String::new();
    write!(text, "{}", humantime::format_rfc3339_seconds(time)).ok()?;
    Some(text)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

#[derive(Serialize)]
struct ConfigFile<'a> {
    architecture: &'a str,
    config: RunConfig<'a>,
    created: &'a str,
    history: Vec<History<'a>>,
    os: &'static str,
    rootfs: RootFs,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    exposed_ports: BTreeMap<String, Empty>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    entrypoint: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    cmd: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
    created_by: &'static str,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OciManifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OciIndex {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: &'static str,
    digest: String,
    size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<&'static str, String>>,
}

fn descriptor(
    media_type: &'static str,
    hex: &str,
    size: usize,
    annotations: Option<BTreeMap<&'static str, String>>,
) -> Descriptor {
    Descriptor {
        media_type,
        digest: format!("sha256:{hex}"),
        size,
        annotations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::path::Path;

    /// (path, entry type, mode, uid, gid, mtime, link target, data) of every tar entry, in order.
    type Item = (
        String,
        tar::EntryType,
        u32,
        u64,
        u64,
        u64,
        Option<String>,
        Vec<u8>,
    );

    fn entries(tar_bytes: &[u8]) -> Vec<Item> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned());
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (
                    path,
                    h.entry_type(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                    link,
                    data,
                )
            })
            .collect()
    }

    fn files(tar_bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
        entries(tar_bytes).into_iter().map(|i| (i.0, i.7)).collect()
    }

    fn sample_spec(binary: &Path) -> ImageSpec {
        let mut spec =
            ImageSpec::for_binary(binary, "localhost/nanna-image-unit", "/bin/env").unwrap();
        spec.cmd = vec!["-0".into()];
        spec.env.insert("GREETING".into(), "hello".into());
        spec.user = Some("nanna".into());
        spec.workdir = Some("/work".into());
        spec.exposed_ports = vec![8080, 53];
        spec.labels.insert("dev.nanna.test".into(), "unit".into());
        spec.source_date_epoch = 0;
        spec
    }

    fn build(spec: &ImageSpec) -> (BuiltImage, Vec<u8>) {
        let mut out = Vec::new();
        let built = write_docker_archive(spec, &mut out).expect("build");
        (built, out)
    }

    #[test]
    fn docker_archive_structure_matches_the_spec() {
        let spec = sample_spec(Path::new("/usr/bin/env"));
        let (built, bytes) = build(&spec);
        assert_eq!(built.size_bytes, bytes.len() as u64);
        let outer = files(&bytes);
        let names: Vec<&String> = outer.keys().collect();
        let order: Vec<String> = entries(&bytes).into_iter().map(|i| i.0).collect();
        assert_eq!(
            names.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            order,
            "sorted"
        );

        let manifest: serde_json::Value = serde_json::from_slice(&outer["manifest.json"]).unwrap();
        let item = &manifest[0];
        assert_eq!(item["RepoTags"][0], "localhost/nanna-image-unit:latest");
        let config_name = item["Config"].as_str().unwrap();
        let config_bytes = &outer[config_name];
        let config_hex = hex::encode(Sha256::digest(config_bytes));
        assert_eq!(config_name, format!("{config_hex}.json"));
        assert_eq!(built.image_id, format!("sha256:{config_hex}"));

        let config: serde_json::Value = serde_json::from_slice(config_bytes).unwrap();
        let c = &config["config"];
        assert_eq!(config["architecture"], spec.architecture.as_str());
        assert_eq!(config["os"], "linux");
        assert_eq!(config["created"], "1970-01-01T00:00:00Z");
        assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/env"]));
        assert_eq!(c["Cmd"], serde_json::json!(["-0"]));
        assert_eq!(c["User"], "nanna");
        assert_eq!(c["WorkingDir"], "/work");
        assert_eq!(c["Env"], serde_json::json!(["GREETING=hello"]));
        assert_eq!(
            c["ExposedPorts"],
            serde_json::json!({"53/tcp": {}, "8080/tcp": {}})
        );
        assert_eq!(c["Labels"], serde_json::json!({"dev.nanna.test": "unit"}));

        let layers: Vec<&str> = item["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(layers.len(), 3);
        assert_eq!(built.layers, 3);
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        assert_eq!(diff_ids.len(), 3);
        assert_eq!(config["history"].as_array().unwrap().len(), 3);
        for (layer, diff_id) in layers.iter().zip(diff_ids) {
            let digest = format!("sha256:{}", hex::encode(Sha256::digest(&outer[*layer])));
            assert_eq!(diff_id.as_str().unwrap(), digest);
        }
        for layer in &layers {
            let items = entries(&outer[*layer]);
            let paths: Vec<&String> = items.iter().map(|i| &i.0).collect();
            let mut sorted = paths.clone();
            sorted.sort();
            assert_eq!(paths, sorted, "layer entries sorted");
            assert!(items.iter().all(|i| i.5 == 0), "fixed mtime");
        }

        let base = entries(&outer[layers[0]]);
        let find = |items: &[Item], path: &str| -> Item {
            items
                .iter()
                .find(|i| i.0.trim_end_matches('/') == path)
                .unwrap_or_else(|| panic!("{path} missing"))
                .clone()
        };
        let passwd = String::from_utf8(find(&base, "etc/passwd").7).unwrap();
        assert!(
            passwd.contains("nanna:x:1000:1000::/home/nanna")
                || passwd.contains("nanna:x:1000:1000:nanna:/home/nanna:")
        );
        assert!(
            String::from_utf8(find(&base, "etc/group").7)
                .unwrap()
                .contains("nanna:x:1000:")
        );
        let tmp = find(&base, "tmp");
        assert_eq!((tmp.1, tmp.2), (tar::EntryType::Directory, 0o1777));
        let home = find(&base, "home/nanna");
        assert_eq!((home.3, home.4), (1000, 1000));
        let work = find(&base, "work");
        assert_eq!((work.3, work.4), (1000, 1000), "workdir owned by the user");
        if let Some(ca) = &spec.ca_certificates {
            assert_eq!(
                find(&base, "etc/ssl/certs/ca-certificates.crt").7,
                std::fs::read(ca).unwrap()
            );
        }

        let libs = entries(&outer[layers[1]]);
        let data = std::fs::read("/usr/bin/env").unwrap();
        let interp = crate::elf::parse(&data, Path::new("/usr/bin/env"))
            .unwrap()
            .interpreter
            .unwrap();
        let loader = find(&libs, interp.trim_start_matches('/'));
        if loader.1 == tar::EntryType::Symlink {
            // The link's target must be in the layer too.
            let target = loader.6.unwrap();
            let parent = Path::new(&interp).parent().unwrap();
            let resolved = crate::libs::normalize(&parent.join(target));
            let resolved = find(&libs, resolved.to_string_lossy().trim_start_matches('/'));
            assert!(!resolved.7.is_empty());
        } else {
            assert_eq!(loader.2, 0o755, "the loader is executable");
        }
        assert!(
            libs.iter().any(|i| i.0.contains("libc.so")),
            "libc in libs layer"
        );

        let app = entries(&outer[layers[2]]);
        let bin = find(&app, "bin/env");
        assert_eq!((bin.2, bin.3, bin.7.len()), (0o755, 0, data.len()));
    }

    #[test]
    fn same_input_same_bytes_even_with_new_mtimes() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("env");
        std::fs::copy("/usr/bin/env", &copy).unwrap();
        let (first, bytes1) = build(&sample_spec(&copy));
        let (second, bytes2) = build(&sample_spec(&copy));
        assert_eq!(first, second);
        assert!(bytes1 == bytes2, "identical archives");

        let file = std::fs::File::options().write(true).open(&copy).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567_890))
            .unwrap();
        drop(file);
        let (third, bytes3) = build(&sample_spec(&copy));
        assert_eq!(first.image_id, third.image_id);
        assert!(bytes1 == bytes3, "mtime of inputs does not matter");

        let mut spec = sample_spec(&copy);
        spec.source_date_epoch = 1_700_000_000;
        let (fourth, bytes4) = build(&spec);
        assert_ne!(first.image_id, fourth.image_id);
        let outer = files(&bytes4);
        let manifest: serde_json::Value = serde_json::from_slice(&outer["manifest.json"]).unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&outer[manifest[0]["Config"].as_str().unwrap()]).unwrap();
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        let layer = &outer[manifest[0]["Layers"][0].as_str().unwrap()];
        assert!(entries(layer).iter().all(|i| i.5 == 1_700_000_000));
    }

    #[test]
    fn a_rebuilt_binary_changes_only_the_last_layer() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("env");
        std::fs::copy("/usr/bin/env", &copy).unwrap();
        let diff_ids = |bytes: &[u8]| -> Vec<String> {
            let outer = files(bytes);
            let manifest: serde_json::Value =
                serde_json::from_slice(&outer["manifest.json"]).unwrap();
            manifest[0]["Layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.to_string())
                .collect()
        };
        let (_, before) = build(&sample_spec(&copy));
        // Trailing bytes keep the ELF valid but change the file.
        let mut data = std::fs::read(&copy).unwrap();
        data.extend_from_slice(b"rebuilt");
        std::fs::write(&copy, data).unwrap();
        let (_, after) = build(&sample_spec(&copy));
        let (before, after) = (diff_ids(&before), diff_ids(&after));
        assert_eq!(before[..2], after[..2]);
        assert_ne!(before[2], after[2]);
    }

    #[test]
    fn added_files_land_in_the_app_layer_with_their_modes() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("config.toml");
        std::fs::write(&host, b"answer = 42\n").unwrap();
        let mut spec = sample_spec(Path::new("/usr/bin/env"));
        spec.add_file(&host, "/etc/nanna/config.toml", 0o640)
            .unwrap();
        spec.add_bytes("/work/notes.txt", "hello", 0o600).unwrap();
        assert!(spec.add_bytes("relative", "x", 0o644).is_err());
        assert!(
            spec.add_file(dir.path(), "/dir", 0o644).is_err(),
            "a directory is not a file"
        );
        let (_, bytes) = build(&spec);
        let outer = files(&bytes);
        let manifest: serde_json::Value = serde_json::from_slice(&outer["manifest.json"]).unwrap();
        let app = entries(&outer[manifest[0]["Layers"][2].as_str().unwrap()]);
        let get = |p: &str| {
            app.iter()
                .find(|i| i.0.trim_end_matches('/') == p)
                .unwrap()
                .clone()
        };
        let config = get("etc/nanna/config.toml");
        assert_eq!(
            (config.2, config.7.as_slice()),
            (0o640, &b"answer = 42\n"[..])
        );
        let notes = get("work/notes.txt");
        assert_eq!((notes.2, notes.7.as_slice()), (0o600, &b"hello"[..]));
        // The workdir keeps the owner it has in the base layer.
        let work = get("work");
        assert_eq!((work.3, work.4), (1000, 1000));
    }

    #[test]
    fn static_binary_has_no_library_layer() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("static");
        std::fs::write(&bin, crate::elf::tests::static_elf_x86_64()).unwrap();
        let spec = ImageSpec::for_binary(&bin, "localhost/static", "/app").unwrap();
        let (built, _) = build(&spec);
        assert_eq!(built.layers, 2);
    }

    #[test]
    fn oci_archive_describes_the_same_image() {
        let spec = sample_spec(Path::new("/usr/bin/env"));
        let (docker, _) = build(&spec);
        let mut out = Vec::new();
        let oci = write_oci_archive(&spec, &mut out).unwrap();
        assert_eq!(oci.image_id, docker.image_id);
        let outer = files(&out);
        assert_eq!(outer["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
        let index: serde_json::Value = serde_json::from_slice(&outer["index.json"]).unwrap();
        let desc = &index["manifests"][0];
        assert_eq!(
            desc["annotations"]["org.opencontainers.image.ref.name"],
            "localhost/nanna-image-unit:latest"
        );
        let digest = desc["digest"].as_str().unwrap();
        let manifest_bytes = &outer[&format!("blobs/sha256/{}", &digest[7..])];
        assert_eq!(desc["size"], manifest_bytes.len());
        let manifest: serde_json::Value = serde_json::from_slice(manifest_bytes).unwrap();
        assert_eq!(manifest["config"]["digest"], oci.image_id.as_str());
        for layer in manifest["layers"].as_array().unwrap() {
            let hex = &layer["digest"].as_str().unwrap()[7..];
            let blob = &outer[&format!("blobs/sha256/{hex}")];
            assert_eq!(hex::encode(Sha256::digest(blob)), hex);
            assert_eq!(layer["size"], blob.len());
        }
    }

    #[test]
    fn bad_users_and_references_are_rejected() {
        let mut spec = sample_spec(Path::new("/usr/bin/env"));
        spec.user = Some("mallory".into());
        assert!(matches!(build_err(&spec), ImageError::UnknownUser { .. }));
        let mut spec = sample_spec(Path::new("/usr/bin/env"));
        spec.reference = "Upper/Case".into();
        assert!(matches!(
            build_err(&spec),
            ImageError::InvalidReference { .. }
        ));
    }

    fn build_err(spec: &ImageSpec) -> ImageError {
        write_docker_archive(spec, Vec::new()).unwrap_err()
    }

    #[test]
    fn references_are_normalized() {
        assert_eq!(
            normalize_reference("localhost/a").unwrap(),
            "localhost/a:latest"
        );
        assert_eq!(
            normalize_reference("localhost:5000/a/b:v1.2").unwrap(),
            "localhost:5000/a/b:v1.2"
        );
        assert_eq!(normalize_reference("nanna").unwrap(), "nanna:latest");
        for bad in ["", "a//b", "a:", "a@sha256:00", "A", "a:-x", "/a"] {
            assert!(normalize_reference(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn formats_timestamps() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(1_700_000_000).as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(
            rfc3339(951_782_400).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(rfc3339(253_402_300_800), None, "past 9999-12-31");
        assert_eq!(rfc3339(u64::MAX), None);
    }
}

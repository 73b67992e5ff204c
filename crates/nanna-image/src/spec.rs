//! What goes into an image: metadata (entrypoint, env, user, ...) and files, split into
//! a libraries layer and an application layer (the base layer is derived at build time).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{ImageError, elf, libs};

/// Where the host's CA bundle usually is (Debian, Ubuntu, Alpine, Arch).
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Image path of the CA bundle.
pub(crate) const IMAGE_CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// The assistant image's metadata, shared with the Nix-built image.
const ASSISTANT_JSON: &str = include_str!("../../../images/assistant.json");

/// Where the content of an image file comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Content {
    /// A host file, read when the image is built.
    Host(PathBuf),
    /// Bytes given by the caller.
    Bytes(Vec<u8>),
    /// A symbolic link with this target.
    Symlink(String),
    /// A directory.
    Directory,
}

/// One entry of a layer: content plus the owner and mode it gets in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub content: Content,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl Entry {
    fn root(content: Content, mode: u32) -> Self {
        Entry {
            content,
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// Layer contents keyed by image path without the leading `/` (e.g. `etc/passwd`).
pub(crate) type Files = BTreeMap<String, Entry>;

/// Everything needed to build an image: run configuration plus files.
///
/// Files go into three layers, so a rebuilt binary only changes the last one:
/// a base layer (`/etc/passwd`, `/etc/group`, `/etc/nsswitch.conf`, CA certificates,
/// `/tmp`, `/root`, `/home/nanna`, the workdir), a layer with the shared libraries and
/// dynamic loader of the binaries added, and a layer with the binaries and other files.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// Name the image is loaded as, e.g. `localhost/nanna-coder-assistant:latest`
    /// (`:latest` is added when there is no tag). Use a `localhost/` name so both Docker
    /// and Podman keep it as written.
    pub reference: String,
    /// `ENTRYPOINT`.
    pub entrypoint: Vec<String>,
    /// `CMD`.
    pub cmd: Vec<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// `USER`: `None` (root), `"nanna"`, `"root"` or a numeric `uid[:gid]`. Default `"1000:1000"` (nanna).
    pub user: Option<String>,
    /// `WORKDIR`; the directory is created, owned by the image user.
    pub workdir: Option<String>,
    /// Exposed TCP ports.
    pub exposed_ports: Vec<u16>,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// OCI architecture (`amd64`, `arm64`, ...), taken from the first binary's ELF header.
    pub architecture: String,
    /// Timestamp (seconds since 1970) of every file and of the config's `created`:
    /// `SOURCE_DATE_EPOCH` when set, else 0.
    pub source_date_epoch: u64,
    /// Host CA bundle copied to `/etc/ssl/certs/ca-certificates.crt`; defaults to the
    /// host's `/etc/ssl/certs/ca-certificates.crt` when it exists.
    pub ca_certificates: Option<PathBuf>,
    pub(crate) libraries: Files,
    pub(crate) files: Files,
}

/// The keys of `images/assistant.json`.
#[derive(Deserialize)]
struct AssistantJson {
    name: String,
    tag: String,
    #[serde(default)]
    entrypoint: Vec<String>,
    #[serde(default)]
    cmd: Vec<String>,
    user: Option<String>,
    workdir: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    exposed_ports: Vec<u16>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    packages: Vec<PackageJson>,
}

/// One entry of `images/assistant.json`'s `packages`: the programs the image has besides
/// `nanna`. The Nix image takes the nixpkgs package `nix`; this builder copies each program
/// from the host (with its libraries) to `/bin/<program>`.
#[derive(Deserialize)]
struct PackageJson {
    nix: String,
    programs: Vec<String>,
    /// The image is useless without it (`bwrap` confines the `shell` tool's commands, `sh`
    /// runs them): a host without it is an error; other programs are copied when present.
    #[serde(default)]
    required: bool,
}

/// Where host programs are looked up: the absolute directories of `PATH`, then the usual
/// system places (a relative entry such as `.` could supply a project's own `bwrap`).
fn program_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .filter(|d| d.is_absolute())
                .collect()
        })
        .unwrap_or_default();
    for dir in ["/usr/local/bin", "/usr/bin", "/bin"] {
        if !dirs.iter().any(|d| d == Path::new(dir)) {
            dirs.push(PathBuf::from(dir));
        }
    }
    dirs
}

/// What to install for a missing required program.
fn install_fix(program: &str) -> String {
    let how = match program {
        "bwrap" => "`apt install bubblewrap`, `dnf install bubblewrap` or `pacman -S bubblewrap`",
        _ => "your distribution's package of it",
    };
    format!(
        "install it ({how}) and build again, or build the image with Nix (`nix build \
         .#assistant-image`)"
    )
}

impl ImageSpec {
    /// An image with no files but the base layer, for `architecture` (e.g. `amd64`).
    ///
    /// Fails if `SOURCE_DATE_EPOCH` is set to something other than a number.
    pub fn new(reference: &str, architecture: &str) -> Result<Self, ImageError> {
        let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(value) if !value.trim().is_empty() => value
                .trim()
                .parse()
                .map_err(|_| ImageError::InvalidSourceDateEpoch { value })?,
            _ => 0,
        };
        let host_ca = Path::new(HOST_CA_BUNDLE);
        Ok(ImageSpec {
            reference: reference.to_string(),
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: BTreeMap::new(),
            user: Some("1000:1000".to_string()),
            workdir: None,
            exposed_ports: Vec::new(),
            labels: BTreeMap::new(),
            architecture: architecture.to_string(),
            source_date_epoch,
            ca_certificates: host_ca.is_file().then(|| host_ca.to_path_buf()),
            libraries: Files::new(),
            files: Files::new(),
        })
    }

    /// An image running `binary` (installed at `install_as`, e.g. `/bin/nanna`) as its
    /// entrypoint, with the shared libraries and loader it needs.
    pub fn for_binary(
        binary: &Path,
        reference: &str,
        install_as: &str,
    ) -> Result<Self, ImageError> {
        let data = std::fs::read(binary).map_err(|source| ImageError::Read {
            path: binary.to_path_buf(),
            source,
        })?;
        let architecture = elf::parse(&data, binary)?.architecture(binary)?;
        let mut spec = ImageSpec::new(reference, architecture)?;
        spec.add_binary(binary, install_as)?;
        spec.entrypoint = vec![install_as.to_string()];
        Ok(spec)
    }

    /// The `nanna` assistant image: `binary` at `/bin/nanna`, metadata and the other
    /// programs (bubblewrap, a shell, coreutils, git...) from `images/assistant.json`
    /// (shared with the Nix-built image), those programs copied from this host.
    pub fn assistant(binary: &Path) -> Result<Self, ImageError> {
        Self::assistant_from(binary, &program_dirs())
    }

    /// [`Self::assistant`] with host programs looked up in `dirs`.
    fn assistant_from(binary: &Path, dirs: &[PathBuf]) -> Result<Self, ImageError> {
        let meta: AssistantJson =
            serde_json::from_str(ASSISTANT_JSON).map_err(ImageError::AssistantSpec)?;
        let reference = format!("{}:{}", meta.name, meta.tag);
        let mut spec = ImageSpec::for_binary(binary, &reference, "/bin/nanna")?;
        spec.entrypoint = meta.entrypoint;
        spec.cmd = meta.cmd;
        spec.user = meta.user;
        spec.workdir = meta.workdir;
        spec.env.extend(meta.env);
        spec.exposed_ports = meta.exposed_ports;
        spec.labels = meta.labels;
        for package in &meta.packages {
            for program in &package.programs {
                let found = dirs.iter().map(|d| d.join(program)).find(|p| p.is_file());
                let added = match &found {
                    Some(path) => spec.add_binary(path, &format!("/bin/{program}")),
                    None => Err(ImageError::MissingProgram {
                        program: program.clone(),
                        package: package.nix.clone(),
                        searched: std::env::join_paths(dirs)
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        fix: install_fix(program),
                    }),
                };
                // An optional program that is missing, or is a script rather than an ELF
                // binary, is left out: the image works without it.
                if let Err(e) = added
                    && package.required
                {
                    return Err(e);
                }
            }
        }
        Ok(spec)
    }

    /// Adds an ELF executable at `install_as` (mode 0755) and, in the libraries layer,
    /// the dynamic loader and shared libraries it needs (symlinks kept as symlinks).
    /// Libraries found outside the loader's default directories are put on `LD_LIBRARY_PATH`.
    pub fn add_binary(&mut self, binary: &Path, install_as: &str) -> Result<(), ImageError> {
        let key = image_path(install_as)?;
        let deps = libs::resolve(binary)?;
        if let Some(info) = &deps.info {
            let found = info.architecture(binary)?;
            if found != self.architecture {
                return Err(ImageError::ArchitectureMismatch {
                    path: binary.to_path_buf(),
                    expected: self.architecture.clone(),
                    found: found.to_string(),
                });
            }
        }
        for file in &deps.files {
            add_host_chain(&mut self.libraries, file)?;
        }
        if !deps.extra_dirs.is_empty() {
            let mut dirs: Vec<String> = self
                .env
                .get("LD_LIBRARY_PATH")
                .map(|v| {
                    v.split(':')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            for dir in &deps.extra_dirs {
                let dir = dir.to_string_lossy().into_owned();
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
            self.env
                .insert("LD_LIBRARY_PATH".to_string(), dirs.join(":"));
        }
        self.files
            .insert(key, Entry::root(Content::Host(binary.to_path_buf()), 0o755));
        Ok(())
    }

    /// Adds the host file `host` at `at` in the application layer, owned by root,
    /// with permission bits `mode` (e.g. `0o644`). Its content is read at build time.
    pub fn add_file(&mut self, host: &Path, at: &str, mode: u32) -> Result<(), ImageError> {
        let key = image_path(at)?;
        let meta = std::fs::metadata(host).map_err(|source| ImageError::Read {
            path: host.to_path_buf(),
            source,
        })?;
        if !meta.is_file() {
            return Err(ImageError::Read {
                path: host.to_path_buf(),
                source: std::io::Error::other("not a regular file"),
            });
        }
        self.files.insert(
            key,
            Entry::root(Content::Host(host.to_path_buf()), mode & 0o7777),
        );
        Ok(())
    }

    /// Adds a file with the given bytes at `at` in the application layer, owned by
    /// root, with permission bits `mode`.
    pub fn add_bytes(
        &mut self,
        at: &str,
        contents: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Result<(), ImageError> {
        let key = image_path(at)?;
        self.files.insert(
            key,
            Entry::root(Content::Bytes(contents.into()), mode & 0o7777),
        );
        Ok(())
    }

    /// The uid and gid of the image user (as defined in the image's `/etc/passwd`).
    pub(crate) fn user_ids(&self) -> Result<(u64, u64), ImageError> {
        let Some(user) = self.user.as_deref().filter(|u| !u.is_empty()) else {
            return Ok((0, 0));
        };
        let unknown = || ImageError::UnknownUser {
            user: user.to_string(),
        };
        let id = |name: &str| -> Result<u64, ImageError> {
            match name {
                "root" => Ok(0),
                "nanna" => Ok(1000),
                n => n.parse().map_err(|_| unknown()),
            }
        };
        match user.split_once(':') {
            Some((u, g)) => Ok((id(u)?, id(g)?)),
            None => {
                let uid = id(user)?;
                // A bare uid takes its passwd group when defined there, else group 0.
                Ok((uid, if uid == 1000 { 1000 } else { 0 }))
            }
        }
    }
}

/// Validates an absolute image path and returns it without the leading `/`.
pub(crate) fn image_path(path: &str) -> Result<String, ImageError> {
    let invalid = |reason| ImageError::InvalidImagePath {
        path: path.to_string(),
        reason,
    };
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| invalid("it must be absolute"))?;
    if path.contains('\0') {
        return Err(invalid("it contains a NUL byte"));
    }
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(invalid("it names the root directory"));
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(invalid("it contains . or .. components"));
    }
    Ok(parts.join("/"))
}

/// Adds `path` to `files` at the same path; when it is a symlink, adds the link and,
/// in turn, what it points to, until a regular file.
fn add_host_chain(files: &mut Files, path: &Path) -> Result<(), ImageError> {
    let mut current = libs::normalize(path);
    for _ in 0..40 {
        let read_err = |source| ImageError::Read {
            path: current.clone(),
            source,
        };
        let meta = std::fs::symlink_metadata(&current).map_err(read_err)?;
        let key = image_path(&current.to_string_lossy())?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&current).map_err(|source| ImageError::Read {
                path: current.clone(),
                source,
            })?;
            let next = match current.parent() {
                Some(parent) => libs::normalize(&parent.join(&target)),
                None => libs::normalize(&target),
            };
            files.insert(
                key,
                Entry::root(
                    Content::Symlink(target.to_string_lossy().into_owned()),
                    0o777,
                ),
            );
            current = next;
            continue;
        }
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        files.insert(key, Entry::root(Content::Host(current.clone()), mode));
        return Ok(());
    }
    Err(ImageError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::other("too many levels of symbolic links"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_are_validated() {
        assert_eq!(image_path("/bin//nanna").unwrap(), "bin/nanna");
        assert!(image_path("bin/nanna").is_err());
        assert!(image_path("/").is_err());
        assert!(image_path("/etc/../x").is_err());
    }

    #[test]
    fn users_map_to_ids() {
        let mut spec = ImageSpec::new("localhost/t", "amd64").unwrap();
        for (user, ids) in [
            (None, (0, 0)),
            (Some("nanna"), (1000, 1000)),
            (Some("1000:1000"), (1000, 1000)),
            (Some("1000"), (1000, 1000)),
            (Some("root"), (0, 0)),
            (Some("4242:nanna"), (4242, 1000)),
        ] {
            spec.user = user.map(str::to_string);
            assert_eq!(spec.user_ids().unwrap(), ids, "{user:?}");
        }
        spec.user = Some("mallory".into());
        let err = spec.user_ids().unwrap_err();
        assert!(err.to_string().contains("mallory"), "{err}");
    }

    #[test]
    fn symlinked_libraries_keep_their_links() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("libx.so.1.2.3"), b"lib").unwrap();
        std::os::unix::fs::symlink("libx.so.1.2.3", d.join("libx.so.1")).unwrap();
        std::os::unix::fs::symlink(d.join("libx.so.1"), d.join("abs-link")).unwrap();
        let mut files = Files::new();
        add_host_chain(&mut files, &d.join("abs-link")).unwrap();
        let key = |name: &str| image_path(&d.join(name).to_string_lossy()).unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(
            files[&key("abs-link")].content,
            Content::Symlink(d.join("libx.so.1").to_string_lossy().into_owned())
        );
        assert_eq!(
            files[&key("libx.so.1")].content,
            Content::Symlink("libx.so.1.2.3".into())
        );
        assert_eq!(
            files[&key("libx.so.1.2.3")].content,
            Content::Host(d.join("libx.so.1.2.3"))
        );
        assert_eq!(files[&key("libx.so.1.2.3")].mode, 0o644);
    }

    #[test]
    fn assistant_metadata_comes_from_the_shared_json() {
        let spec = ImageSpec::assistant(Path::new("/usr/bin/env")).expect("assistant spec");
        let json: serde_json::Value = serde_json::from_str(ASSISTANT_JSON).unwrap();
        assert_eq!(
            spec.reference,
            format!(
                "{}:{}",
                json["name"].as_str().unwrap(),
                json["tag"].as_str().unwrap()
            )
        );
        assert_eq!(
            spec.entrypoint,
            vec![json["entrypoint"][0].as_str().unwrap().to_string()]
        );
        assert_eq!(spec.user.as_deref(), json["user"].as_str());
        assert_eq!(spec.workdir.as_deref(), json["workdir"].as_str());
        assert_eq!(
            spec.exposed_ports.len(),
            json["exposed_ports"].as_array().unwrap().len()
        );
        assert_eq!(spec.labels.len(), json["labels"].as_object().unwrap().len());
        assert_eq!(spec.env["HOME"], json["env"]["HOME"].as_str().unwrap());
        assert!(spec.files.contains_key("bin/nanna"));
        assert!(
            !spec.libraries.is_empty(),
            "the dynamic test binary needs libraries"
        );
    }

    /// The programs of `packages` come from the host, each at `/bin/<name>`; a required one
    /// the host lacks is an error that names it and says what to install.
    #[test]
    fn assistant_programs_come_from_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("bin");
        std::fs::create_dir_all(&host).unwrap();
        let link = |program: &str| {
            std::os::unix::fs::symlink("/usr/bin/env", host.join(program)).unwrap();
        };
        link("sh");
        link("git");
        // A script, not an ELF binary: an optional program is then left out.
        std::fs::write(host.join("ls"), "#!/bin/sh\n").unwrap();
        let err = ImageSpec::assistant_from(Path::new("/usr/bin/env"), std::slice::from_ref(&host))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`bwrap` (nixpkgs `bubblewrap`)"), "{err}");
        assert!(err.contains("apt install bubblewrap"), "{err}");
        assert!(err.contains(&host.display().to_string()), "{err}");

        link("bwrap");
        let spec = ImageSpec::assistant_from(Path::new("/usr/bin/env"), &[host]).unwrap();
        for present in ["bin/bwrap", "bin/sh", "bin/git"] {
            assert!(spec.files.contains_key(present), "{present}");
        }
        for absent in ["bin/ls", "bin/cat"] {
            assert!(!spec.files.contains_key(absent), "{absent}");
        }
    }
}

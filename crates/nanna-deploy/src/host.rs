//! The machine being probed: a host root for file probes, the tool search path, the
//! environment variables that locate container engines, and the user's identity.
//!
//! Every file probe goes through [`HostRoot`], so detection can run against a fixture tree in
//! tests or against the host's `/` mounted at `/host` inside a container.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Symlink hops allowed while resolving one path (same limit as Linux's `MAXSYMLINKS`).
const MAX_SYMLINK_HOPS: usize = 40;

/// A directory that stands for the host's `/`; host paths like `/sys/class/drm` are read
/// below it, and symlinks are resolved without leaving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    root: PathBuf,
    is_system_root: bool,
}

impl Default for HostRoot {
    fn default() -> Self {
        Self::system()
    }
}

impl HostRoot {
    /// The real filesystem root `/`.
    pub fn system() -> Self {
        Self {
            root: PathBuf::from("/"),
            is_system_root: true,
        }
    }

    /// A host root at `dir` (e.g. `/host` or a test fixture).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let root: PathBuf = dir.into();
        let is_system_root = root == Path::new("/");
        Self {
            root,
            is_system_root,
        }
    }

    /// The directory standing for `/`.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Whether this is the real `/` (no translation needed).
    pub fn is_system_root(&self) -> bool {
        self.is_system_root
    }

    /// `host_path` below the root, without resolving symlinks (the final component is left
    /// as is, so `lstat`-style checks see the entry itself).
    pub fn join(&self, host_path: impl AsRef<Path>) -> PathBuf {
        let host_path = host_path.as_ref();
        if self.is_system_root {
            return host_path.to_path_buf();
        }
        let relative = host_path.strip_prefix("/").unwrap_or(host_path);
        self.root.join(relative)
    }

    /// The path in this filesystem that `host_path` designates, following every symlink
    /// inside the root: relative targets are taken from the link's directory, absolute
    /// targets from the root, and `..` never climbs above the root.
    pub fn resolve(&self, host_path: impl AsRef<Path>) -> io::Result<PathBuf> {
        let host_path = host_path.as_ref();
        if self.is_system_root {
            return Ok(host_path.to_path_buf());
        }
        let mut pending: VecDeque<OsString> = VecDeque::new();
        push_components(&mut pending, host_path);
        let mut resolved: Vec<OsString> = Vec::new();
        let mut hops = 0usize;
        while let Some(name) = pending.pop_front() {
            if name == ".." {
                resolved.pop();
                continue;
            }
            let candidate = self.under_root(&resolved).join(&name);
            match std::fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(io::Error::other(format!(
                            "too many symlinks while resolving {}",
                            host_path.display()
                        )));
                    }
                    let target = std::fs::read_link(&candidate)?;
                    if target.is_absolute() {
                        resolved.clear();
                    }
                    let mut front = VecDeque::new();
                    push_components(&mut front, &target);
                    while let Some(component) = front.pop_back() {
                        pending.push_front(component);
                    }
                }
                _ => resolved.push(name),
            }
        }
        Ok(self.under_root(&resolved))
    }

    fn under_root(&self, components: &[OsString]) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(components);
        path
    }

    /// Reads a host file as text.
    pub fn read_to_string(&self, host_path: impl AsRef<Path>) -> io::Result<String> {
        std::fs::read_to_string(self.resolve(host_path)?)
    }

    /// Reads a host file and returns its trimmed content, or `None` when it is unreadable.
    pub fn read_trimmed(&self, host_path: impl AsRef<Path>) -> Option<String> {
        self.read_to_string(host_path)
            .ok()
            .map(|text| text.trim().to_string())
    }

    /// Whether a host path exists (following symlinks inside the root).
    pub fn exists(&self, host_path: impl AsRef<Path>) -> bool {
        self.resolve(host_path)
            .map(|path| path.exists())
            .unwrap_or(false)
    }

    /// The file name of a symlink's target (e.g. the PCI address a sysfs `device` link points
    /// to), or `None` when `host_path` is not a symlink.
    pub fn link_target_name(&self, host_path: impl AsRef<Path>) -> Option<String> {
        let host_path = host_path.as_ref();
        let parent = host_path.parent()?;
        let name = host_path.file_name()?;
        let link = self.resolve(parent).ok()?.join(name);
        let target = std::fs::read_link(link).ok()?;
        target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
    }

    /// The entry names of a host directory, sorted; empty when it is missing or unreadable.
    pub fn list_dir(&self, host_path: impl AsRef<Path>) -> Vec<String> {
        let Ok(dir) = self.resolve(host_path) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn push_components(queue: &mut VecDeque<OsString>, path: &Path) {
    for component in path.components() {
        match component {
            Component::Normal(name) => queue.push_back(name.to_os_string()),
            Component::ParentDir => queue.push_back(OsString::from("..")),
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
        }
    }
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Users listed as members.
    pub members: Vec<String>,
}

/// Parses `/etc/group` text (`name:password:gid:member,member`); malformed lines are skipped.
pub fn parse_groups(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?.trim();
            let gid = fields.nth(1)?.trim().parse().ok()?;
            let members = fields
                .next()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            (!name.is_empty()).then(|| GroupEntry {
                name: name.to_string(),
                gid,
                members,
            })
        })
        .collect()
}

impl HostRoot {
    /// The host's groups (`/etc/group` below the root); empty when unreadable.
    pub fn groups(&self) -> Vec<GroupEntry> {
        self.read_to_string("/etc/group")
            .map(|text| parse_groups(&text))
            .unwrap_or_default()
    }
}

/// Who runs the probe: used to tell whether device groups (`render`, `video`) are granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserIdentity {
    /// Real user id, when known.
    pub uid: Option<u32>,
    /// Login name, when known (from `$USER`).
    pub name: Option<String>,
    /// Supplementary and primary group ids of the process.
    pub gids: Vec<u32>,
}

impl UserIdentity {
    /// The identity of this process, read from `/proc/self/status` and `$USER`.
    pub fn of_process() -> Self {
        let mut identity = UserIdentity {
            name: std::env::var("USER").ok().filter(|name| !name.is_empty()),
            ..UserIdentity::default()
        };
        let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
            return identity;
        };
        for line in status.lines() {
            if let Some(rest) = line.strip_prefix("Uid:") {
                identity.uid = rest.split_whitespace().next().and_then(|v| v.parse().ok());
            } else if let Some(rest) = line.strip_prefix("Gid:") {
                if let Some(gid) = rest.split_whitespace().next().and_then(|v| v.parse().ok()) {
                    identity.gids.push(gid);
                }
            } else if let Some(rest) = line.strip_prefix("Groups:") {
                identity.gids.extend(
                    rest.split_whitespace()
                        .filter_map(|v| v.parse::<u32>().ok()),
                );
            }
        }
        identity
    }

    /// Whether this is root (which needs no device groups).
    pub fn is_root(&self) -> bool {
        self.uid == Some(0)
    }
}

/// Everything a probe looks at, gathered once: host root, tool search path, engine-locating
/// environment variables, user identity and timeouts. Tests build one by hand.
#[derive(Debug, Clone)]
pub struct ProbeEnv {
    /// Where host files are read.
    pub host_root: HostRoot,
    /// Search path for tools (`nvidia-smi`, `podman`, `docker`); `$NANNA_TOOL_PATH`, else `$PATH`.
    pub tool_path: Option<OsString>,
    /// `$DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// `$CONTAINER_HOST` (Podman's equivalent of `DOCKER_HOST`).
    pub container_host: Option<String>,
    /// `$XDG_RUNTIME_DIR` (rootless sockets live there).
    pub xdg_runtime_dir: Option<PathBuf>,
    /// The user whose device access is checked.
    pub user: UserIdentity,
    /// How long one engine socket may take to answer.
    pub engine_timeout: Duration,
    /// How long a vendor tool (`nvidia-smi`) may run.
    pub tool_timeout: Duration,
    /// `$HOME` of the user (refused as a workspace: it holds keys and credentials).
    pub home: Option<PathBuf>,
    /// Where `nanna-deploy` remembers which engine each stack runs on
    /// (`$XDG_STATE_HOME/nanna-deploy`, else `~/.local/state/nanna-deploy`); `None` keeps
    /// no memory (tests).
    pub state_dir: Option<PathBuf>,
}

/// Default time an engine socket gets to answer `GET /version`.
pub const DEFAULT_ENGINE_TIMEOUT: Duration = Duration::from_millis(3000);
/// Default time `nvidia-smi` gets to answer.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(5);

impl ProbeEnv {
    /// A probe environment for `host_root` with nothing else set: no tools, no engine
    /// variables, an unknown non-root user. Tests start here and fill in what they need.
    pub fn isolated(host_root: HostRoot) -> Self {
        Self {
            host_root,
            tool_path: None,
            docker_host: None,
            container_host: None,
            xdg_runtime_dir: None,
            user: UserIdentity::default(),
            engine_timeout: DEFAULT_ENGINE_TIMEOUT,
            tool_timeout: DEFAULT_TOOL_TIMEOUT,
            home: None,
            state_dir: None,
        }
    }

    /// The probe environment of this process: `$NANNA_HOST_ROOT` (default `/`),
    /// `$NANNA_TOOL_PATH` or `$PATH`, `$DOCKER_HOST`, `$CONTAINER_HOST`, `$XDG_RUNTIME_DIR`,
    /// `$HOME` and `$XDG_STATE_HOME`.
    pub fn from_process() -> Self {
        let host_root = non_empty_var("NANNA_HOST_ROOT")
            .map(HostRoot::new)
            .unwrap_or_default();
        let home = non_empty_var("HOME").map(PathBuf::from);
        Self {
            host_root,
            tool_path: std::env::var_os("NANNA_TOOL_PATH")
                .filter(|value| !value.is_empty())
                .or_else(|| std::env::var_os("PATH")),
            docker_host: non_empty_var("DOCKER_HOST"),
            container_host: non_empty_var("CONTAINER_HOST"),
            xdg_runtime_dir: non_empty_var("XDG_RUNTIME_DIR").map(PathBuf::from),
            user: UserIdentity::of_process(),
            engine_timeout: DEFAULT_ENGINE_TIMEOUT,
            tool_timeout: DEFAULT_TOOL_TIMEOUT,
            home: home.clone(),
            state_dir: non_empty_var("XDG_STATE_HOME")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".local/state")))
                .map(|dir| dir.join("nanna-deploy")),
        }
    }

    /// Finds a tool on the tool search path.
    pub fn find_tool(&self, name: impl AsRef<OsStr>) -> Option<PathBuf> {
        let paths = self.tool_path.as_ref()?;
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        which::which_in(name, Some(paths), cwd).ok()
    }
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_absolute_links_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sys/devices/pci0000:00/0000:01:00.0")).unwrap();
        std::fs::write(
            root.join("sys/devices/pci0000:00/0000:01:00.0/vendor"),
            "0x10de\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.join("sys/class/drm/card0")).unwrap();
        symlink(
            "/sys/devices/pci0000:00/0000:01:00.0",
            root.join("sys/class/drm/card0/device"),
        )
        .unwrap();
        let host = HostRoot::new(root);
        assert_eq!(
            host.read_trimmed("/sys/class/drm/card0/device/vendor")
                .as_deref(),
            Some("0x10de")
        );
        assert_eq!(
            host.link_target_name("/sys/class/drm/card0/device")
                .as_deref(),
            Some("0000:01:00.0")
        );
    }

    #[test]
    fn relative_links_and_dotdot_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/file"), "inside").unwrap();
        symlink("../../../../../../a/file", root.join("a/b/up")).unwrap();
        symlink("../file", root.join("a/b/rel")).unwrap();
        let host = HostRoot::new(root);
        assert_eq!(host.read_trimmed("/a/b/rel").as_deref(), Some("inside"));
        assert_eq!(host.read_trimmed("/a/b/up").as_deref(), Some("inside"));
        assert_eq!(host.resolve("/a/b/up").unwrap(), root.join("a/file"));
    }

    #[test]
    fn symlink_loops_are_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/loop", dir.path().join("loop")).unwrap();
        let host = HostRoot::new(dir.path());
        assert!(host.resolve("/loop/x").is_err());
        assert!(!host.exists("/loop"));
    }
}

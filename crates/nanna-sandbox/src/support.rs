//! [`Support`]: which protections this machine can enforce, found once per process by
//! running bubblewrap with every namespace and the seccomp filter the sandbox uses.

use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use crate::error::SandboxError;
use crate::mode::SandboxMode;

/// Environment variable naming the bubblewrap binary (an absolute path); without it nanna
/// uses the one it was built with (`NANNA_DEFAULT_BWRAP` at build time) if present, else
/// looks `bwrap` up in the absolute directories of `PATH`, then `/usr/bin` and
/// `/usr/local/bin`.
pub const BWRAP_ENV: &str = "NANNA_BWRAP";

/// What to do when bubblewrap is missing.
const INSTALL_FIX: &str = "install bubblewrap (Debian/Ubuntu: `apt install bubblewrap`; Fedora: \
`dnf install bubblewrap`; Arch: `pacman -S bubblewrap`; NixOS: add `bubblewrap` to the system \
packages) or point NANNA_BWRAP at it; or run with `--sandbox full` (`nanna sandbox --mode \
full`) to let commands run unconfined (dangerous)";

/// What to do when bubblewrap cannot create namespaces on a machine (not in a container).
const NAMESPACE_FIX: &str = "allow unprivileged user namespaces (Debian: `sysctl -w \
kernel.unprivileged_userns_clone=1`; Ubuntu 24.04 and later: use the distribution's bubblewrap, \
whose AppArmor profile allows them: `apt install bubblewrap`, and `NANNA_BWRAP=/usr/bin/bwrap` \
when nanna comes from Nix) or, inside a container, run it with user namespaces \
permitted; or run with `--sandbox full` (`nanna sandbox --mode full`) to let commands run \
unconfined (dangerous)";

/// The last resort every fix ends with.
const OR_FULL: &str = "or run with `--sandbox full` (`nanna sandbox --mode full`) to let \
commands run unconfined (dangerous)";

/// The bubblewrap a packager built nanna against (`NANNA_DEFAULT_BWRAP` at build time; the
/// Nix package sets it to nixpkgs' bubblewrap), tried after [`BWRAP_ENV`] and before `PATH`.
/// It is an absolute path fixed at build time, not something a project can supply.
const BUILT_IN_BWRAP: Option<&str> = option_env!("NANNA_DEFAULT_BWRAP");

/// The container engine this process runs under, from what each engine puts in its
/// containers: Podman the variable `container=podman` and (with a writable `/run`)
/// `/run/.containerenv`; Docker `/.dockerenv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Docker,
    Podman,
}

impl Container {
    fn detect() -> Option<Self> {
        if std::env::var_os("container").is_some_and(|v| v == "podman")
            || Path::new("/run/.containerenv").exists()
        {
            Some(Self::Podman)
        } else if Path::new("/.dockerenv").exists() {
            Some(Self::Docker)
        } else {
            None
        }
    }
}

/// What to do when bubblewrap is missing: in a container, the image lacks it.
fn install_fix(container: Option<Container>) -> String {
    match container {
        None => INSTALL_FIX.to_owned(),
        Some(_) => format!(
            "install bubblewrap in this container's image (Debian/Ubuntu: `apt install \
             bubblewrap`; Fedora: `dnf install bubblewrap`; Nanna Coder's assistant image: \
             rebuild it with `nanna-deploy images build` on a host with bubblewrap, or `nix \
             build .#assistant-image`) or point NANNA_BWRAP at it; {OR_FULL}"
        ),
    }
}

/// What to do when bubblewrap failed with `reason`, where it runs. In a container the
/// engine's confinement is the usual cause, and bubblewrap's message says which part:
/// - a `/proc` mount refused with EPERM: the engine's masked and read-only paths under
///   `/proc` (the kernel refuses a fresh `/proc` in a user namespace while any of them
///   covers part of the container's, `mount_too_revealing` in fs/namespace.c);
/// - other EPERMs (creating the namespace, `unshare`, `mount`, `pivot_root`): the seccomp
///   profile (Docker's default allows them only with CAP_SYS_ADMIN);
/// - EACCES: a security module (AppArmor's `docker-default` and Podman's profile deny
///   `mount`; SELinux's container policy denies some mounts).
fn namespace_fix(reason: &str, container: Option<Container>) -> String {
    let Some(container) = container else {
        return NAMESPACE_FIX.to_owned();
    };
    let redeploy = "`nanna-deploy up` creates the assistant container so";
    if reason.contains("Permission denied") {
        return format!(
            "a security module of the host (AppArmor or SELinux) forbids the mounts bubblewrap \
             makes inside this container: run it with `--security-opt apparmor=unconfined` (or \
             an AppArmor profile that allows `mount` and `userns`) or, with SELinux, \
             `--security-opt label=disable`; {OR_FULL}"
        );
    }
    if reason.contains("mount proc") {
        let option = match container {
            Container::Podman => "`--security-opt unmask=/proc/*`",
            Container::Docker => "`--security-opt systempaths=unconfined`",
        };
        return format!(
            "this container hides parts of /proc (the engine's masked paths), so bubblewrap \
             cannot mount a /proc of its own: start the container with {option} ({redeploy}); \
             {OR_FULL}"
        );
    }
    let option = match container {
        Container::Podman => {
            "Podman's default seccomp profile allows them; check `seccomp_profile` in \
             containers.conf"
        }
        Container::Docker => {
            "Docker's default seccomp profile allows them only with CAP_SYS_ADMIN: start the \
             container with `--security-opt seccomp=images/assistant-seccomp.json` from Nanna \
             Coder's sources"
        }
    };
    format!(
        "this container's seccomp profile refuses user namespaces ({option}; {redeploy}); \
         the host must allow them too (Debian: `sysctl -w kernel.unprivileged_userns_clone=1`); \
         {OR_FULL}"
    )
}

/// A bubblewrap binary that answered `--version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bubblewrap {
    /// Where it is.
    pub path: PathBuf,
    /// What it printed, e.g. `bubblewrap 0.8.0`.
    pub version: String,
    /// Whether it has `--disable-userns` (0.8.0 and later).
    pub(crate) disable_userns: bool,
}

/// Which protections this machine can enforce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Support {
    bubblewrap: Result<Bubblewrap, String>,
    /// The confined probe (user, mount, PID, network and IPC namespaces plus seccomp).
    confined: Result<(), String>,
    /// The lifetime probe for `full` (a PID namespace only).
    lifetime: Result<(), String>,
    privileged: bool,
}

/// One protection, as `nanna health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    /// Short name, e.g. `bubblewrap` or `workspace-write`.
    pub name: String,
    /// Whether it is enforced here.
    pub active: bool,
    /// What it does, or why it is not available.
    pub detail: String,
    /// What to do when it is not available.
    pub fix: Option<String>,
}

static PROBED: OnceLock<Arc<Support>> = OnceLock::new();

impl Support {
    /// This machine's support, probed on first use and then kept for the process. A
    /// successful probe is also remembered on disk until the next boot (`ProbeCache`),
    /// which saves bubblewrap's two runs at every start.
    pub fn probe() -> Arc<Support> {
        PROBED
            .get_or_init(|| {
                let configured = std::env::var_os(BWRAP_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from);
                let cache = ProbeCache::for_user();
                let found = find(configured.as_deref());
                if let (Some(cache), Ok(path)) = (&cache, &found)
                    && let Some(support) = cache.read(path)
                {
                    return Arc::new(support);
                }
                let support = Self::detect(configured.as_deref());
                if let (Some(cache), Some(bw)) = (&cache, support.bubblewrap())
                    && support.confined.is_ok()
                {
                    cache.write(bw);
                }
                Arc::new(support)
            })
            .clone()
    }

    /// Probes with bubblewrap at `bwrap` (or looked up as [`BWRAP_ENV`] describes), uncached.
    pub fn detect(bwrap: Option<&Path>) -> Support {
        let privileged = geteuid() == 0;
        let bubblewrap = find(bwrap).and_then(|path| version(&path));
        let (confined, lifetime) = match &bubblewrap {
            Ok(bw) => {
                let confined = run_probe(bw, &confined_probe_args(bw), true);
                let lifetime = if confined.is_ok() {
                    Ok(())
                } else {
                    run_probe(bw, &lifetime_args(privileged), false)
                };
                (confined, lifetime)
            }
            Err(e) => (Err(e.clone()), Err(e.clone())),
        };
        Support {
            bubblewrap,
            confined,
            lifetime,
            privileged,
        }
    }

    /// The fix for a failed confined probe, for this machine or container.
    fn namespace_fix(&self) -> String {
        match &self.confined {
            Err(reason) => namespace_fix(reason, Container::detect()),
            Ok(()) => NAMESPACE_FIX.to_owned(),
        }
    }

    /// A machine where nothing can be enforced, for `reason` (tests of the refusal path).
    pub fn unsupported(reason: impl Into<String>) -> Support {
        let reason = reason.into();
        Support {
            bubblewrap: Err(reason.clone()),
            confined: Err(reason.clone()),
            lifetime: Err(reason),
            privileged: geteuid() == 0,
        }
    }

    /// The bubblewrap binary in use, if any.
    pub fn bubblewrap(&self) -> Option<&Bubblewrap> {
        self.bubblewrap.as_ref().ok()
    }

    /// Whether this process runs as root (then `full` keeps root's capabilities).
    pub(crate) fn privileged(&self) -> bool {
        self.privileged
    }

    /// Whether `full` commands get their own PID namespace (every process they start ends
    /// with them); without it they run as plain child processes.
    pub fn full_lifetime(&self) -> bool {
        self.lifetime.is_ok()
    }

    /// `Ok` when `mode` is enforced here; otherwise why not and what to do.
    pub fn check(&self, mode: SandboxMode) -> Result<(), SandboxError> {
        if !mode.is_confined() {
            return Ok(());
        }
        match (&self.bubblewrap, &self.confined) {
            (Err(reason), _) => Err(SandboxError::Unsupported {
                mode,
                reason: reason.clone(),
                fix: install_fix(Container::detect()),
            }),
            (Ok(_), Err(reason)) => Err(SandboxError::Unsupported {
                mode,
                reason: format!("bubblewrap could not create the sandbox: {reason}"),
                fix: self.namespace_fix(),
            }),
            (Ok(_), Ok(())) => Ok(()),
        }
    }

    /// Every protection and whether it is active, for `nanna health`.
    pub fn protections(&self) -> Vec<Protection> {
        let mut out = Vec::new();
        out.push(match &self.bubblewrap {
            Ok(bw) => Protection {
                name: "bubblewrap".into(),
                active: true,
                detail: format!("{} at {}", bw.version, bw.path.display()),
                fix: None,
            },
            Err(reason) => Protection {
                name: "bubblewrap".into(),
                active: false,
                detail: reason.clone(),
                fix: Some(install_fix(Container::detect())),
            },
        });
        if self.bubblewrap.is_ok() {
            out.push(match &self.confined {
                Ok(()) => Protection {
                    name: "namespaces".into(),
                    active: true,
                    detail: "user, mount, PID, network and IPC namespaces and the seccomp \
                             filter work"
                        .into(),
                    fix: None,
                },
                Err(reason) => Protection {
                    name: "namespaces".into(),
                    active: false,
                    detail: format!("bubblewrap could not create the sandbox: {reason}"),
                    fix: Some(self.namespace_fix()),
                },
            });
        }
        for mode in SandboxMode::ALL {
            let (active, detail, fix) = match (mode, self.check(mode)) {
                (SandboxMode::ReadOnly, Ok(())) => (
                    true,
                    "commands read anywhere, write nowhere, no network unless allowed; \
                     every process ends with its command"
                        .to_owned(),
                    None,
                ),
                (SandboxMode::WorkspaceWrite, Ok(())) => (
                    true,
                    "commands write only in the workspace and TMPDIR (.git/hooks and \
                     .git/config read-only), no network unless allowed; every process ends \
                     with its command"
                        .to_owned(),
                    None,
                ),
                (SandboxMode::Full, Ok(())) if self.full_lifetime() => (
                    true,
                    "no confinement (dangerous); every process ends with its command".to_owned(),
                    None,
                ),
                (SandboxMode::Full, _) => (
                    true,
                    "no confinement (dangerous); processes a command leaves in the background \
                     may outlive it (no PID namespace)"
                        .to_owned(),
                    None,
                ),
                (_, Err(e)) => (
                    false,
                    format!("shell refused: {}", e.reason()),
                    e.fix().map(str::to_owned),
                ),
            };
            out.push(Protection {
                name: mode.as_str().into(),
                active,
                detail,
                fix,
            });
        }
        out
    }
}

/// A successful probe remembered on disk (`$XDG_CACHE_HOME/nanna/sandbox-probe`), valid
/// for the same boot, kernel, user and bubblewrap binary (path, size, modification time).
/// Only success is remembered: a stale entry (user namespaces turned off since) makes
/// bubblewrap fail at the command, which then does not run; it never runs unconfined.
struct ProbeCache {
    file: PathBuf,
}

impl ProbeCache {
    fn for_user() -> Option<Self> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })?;
        Some(Self {
            file: base.join("nanna/sandbox-probe"),
        })
    }

    /// What the probe's validity depends on, as one line (its version changes with the
    /// probe's command line: v2 covers `/proc/sys`, v3 remounts `/proc` read-only).
    fn key(bwrap: &Path) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
        let meta = std::fs::metadata(bwrap).ok()?;
        Some(format!(
            "v3 boot={} kernel={} euid={} bwrap={} size={} mtime={}.{}",
            boot.trim(),
            kernel.trim(),
            geteuid(),
            bwrap.display(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec()
        ))
    }

    fn read(&self, bwrap: &Path) -> Option<Support> {
        let key = Self::key(bwrap)?;
        let text = std::fs::read_to_string(&self.file).ok()?;
        let mut lines = text.lines();
        if lines.next()? != key {
            return None;
        }
        let version = lines.next()?.to_owned();
        let disable_userns = lines.next()? == "disable-userns";
        Some(Support {
            bubblewrap: Ok(Bubblewrap {
                path: bwrap.to_owned(),
                version,
                disable_userns,
            }),
            confined: Ok(()),
            lifetime: Ok(()),
            privileged: geteuid() == 0,
        })
    }

    /// Best effort: a cache that cannot be written only costs the next start a probe.
    fn write(&self, bw: &Bubblewrap) {
        let (Some(key), Some(dir)) = (Self::key(&bw.path), self.file.parent()) else {
            return;
        };
        let flag = if bw.disable_userns {
            "disable-userns"
        } else {
            "-"
        };
        let text = format!("{key}\n{}\n{flag}\n", bw.version);
        let _ = std::fs::create_dir_all(dir).and_then(|()| {
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(text.as_bytes())?;
            tmp.persist(&self.file).map(|_| ()).map_err(|e| e.error)
        });
    }
}

fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The bubblewrap binary: `configured` if given, else the one nanna was built against (if
/// it is there), else the first `bwrap` in an absolute `PATH` directory (relative entries
/// such as `.` are skipped: a project must not be able to supply its own "sandbox"), else
/// the usual system places.
fn find(configured: Option<&Path>) -> Result<PathBuf, String> {
    find_with(configured, BUILT_IN_BWRAP.map(Path::new))
}

fn find_with(configured: Option<&Path>, built_in: Option<&Path>) -> Result<PathBuf, String> {
    if !cfg!(target_os = "linux") {
        return Err(format!(
            "commands are confined only on Linux (this is {})",
            std::env::consts::OS
        ));
    }
    if let Some(path) = configured {
        if !path.is_absolute() {
            return Err(format!(
                "{BWRAP_ENV} must be an absolute path, not `{}`",
                path.display()
            ));
        }
        return if path.is_file() {
            Ok(path.to_owned())
        } else {
            Err(format!(
                "bubblewrap not found at {} ({BWRAP_ENV})",
                path.display()
            ))
        };
    }
    if let Some(path) = built_in.filter(|p| p.is_absolute() && p.is_file()) {
        return Ok(path.to_owned());
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .filter(|d| d.is_absolute())
        .chain(["/usr/bin".into(), "/usr/local/bin".into(), "/bin".into()])
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())
        .ok_or_else(|| "bubblewrap (`bwrap`) is not installed".to_owned())
}

/// Runs `bwrap --version`.
fn version(path: &Path) -> Result<Bubblewrap, String> {
    let out = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !text.starts_with("bubblewrap") {
        return Err(format!(
            "{} is not a working bubblewrap (`--version` printed `{text}`)",
            path.display()
        ));
    }
    let numbers: Vec<u32> = text
        .trim_start_matches("bubblewrap")
        .trim()
        .split('.')
        .map_while(|n| n.parse().ok())
        .collect();
    let at_least_0_8 = match numbers.as_slice() {
        [major, ..] if *major > 0 => true,
        [0, minor, ..] => *minor >= 8,
        _ => false,
    };
    Ok(Bubblewrap {
        path: path.to_owned(),
        version: text,
        disable_userns: at_least_0_8,
    })
}

/// Everything a read-only command uses, on a throwaway root view.
fn confined_probe_args(bw: &Bubblewrap) -> Vec<String> {
    let mut args: Vec<String> = crate::sandbox::CONFINED_COMMON
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    if bw.disable_userns {
        args.push("--disable-userns".into());
    }
    args.push("--unshare-net".into());
    args.extend(
        crate::sandbox::CONFINED_ROOT
            .iter()
            .map(|s| (*s).to_owned()),
    );
    args.extend(["--tmpfs", "/tmp"].map(str::to_owned));
    args
}

fn lifetime_args(privileged: bool) -> Vec<String> {
    crate::sandbox::full_args(privileged)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Runs `sh -c 'exit 0'` under `args` (plus the seccomp filter when `seccomp`); `Err` holds
/// bubblewrap's complaint.
fn run_probe(bw: &Bubblewrap, args: &[String], seccomp: bool) -> Result<(), String> {
    let mut cmd = Command::new(&bw.path);
    cmd.args(args);
    if seccomp {
        let program = crate::seccomp::program(true)?;
        let (reader, mut writer) =
            std::io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
        writer
            .write_all(&program)
            .map_err(|e| format!("cannot pass the seccomp filter: {e}"))?;
        drop(writer);
        cmd.arg("--seccomp").arg(reader.as_raw_fd().to_string());
        crate::sandbox::inherit_fd(&mut cmd, reader.into());
    }
    let out = cmd
        .args(["--", "sh", "-c", "exit 0"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/run/current-system/sw/bin")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bw.path.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Err(if err.is_empty() {
        format!("it exited with {}", out.status)
    } else {
        err
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successful_probe_is_remembered_for_the_same_binary_only() {
        let Ok(bwrap) = find(None) else {
            eprintln!("skipping: no bubblewrap");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let cache = ProbeCache {
            file: dir.path().join("nanna/sandbox-probe"),
        };
        assert!(cache.read(&bwrap).is_none());
        let bw = version(&bwrap).unwrap();
        cache.write(&bw);
        let remembered = cache.read(&bwrap).unwrap();
        assert_eq!(remembered.bubblewrap(), Some(&bw));
        assert!(remembered.check(SandboxMode::ReadOnly).is_ok());
        // Another binary (or the same one changed) does not match.
        let copy = dir.path().join("bwrap");
        std::fs::copy(&bwrap, &copy).unwrap();
        assert!(cache.read(&copy).is_none());
        // A damaged file is ignored.
        std::fs::write(&cache.file, "garbage").unwrap();
        assert!(cache.read(&bwrap).is_none());
    }

    #[test]
    fn a_missing_or_relative_bubblewrap_is_explained() {
        let s = Support::detect(Some(Path::new("/nonexistent/bwrap")));
        let err = s.check(SandboxMode::ReadOnly).unwrap_err().to_string();
        assert!(err.contains("not found at /nonexistent/bwrap"), "{err}");
        assert!(err.contains("apt install bubblewrap"), "{err}");
        assert!(s.check(SandboxMode::Full).is_ok());
        assert!(!s.full_lifetime());
        let s = Support::detect(Some(Path::new("bin/bwrap")));
        let err = s
            .check(SandboxMode::WorkspaceWrite)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be an absolute path"), "{err}");
    }

    #[test]
    fn the_built_in_bubblewrap_comes_after_the_variable_and_before_path() {
        let dir = tempfile::tempdir().unwrap();
        let built_in = dir.path().join("store-bwrap");
        std::fs::write(&built_in, "").unwrap();
        let configured = dir.path().join("configured-bwrap");
        std::fs::write(&configured, "").unwrap();
        assert_eq!(
            find_with(Some(&configured), Some(&built_in)).unwrap(),
            configured
        );
        assert_eq!(find_with(None, Some(&built_in)).unwrap(), built_in);
        // Gone (e.g. the binary was copied into an image without it): PATH, as before.
        let gone = dir.path().join("gone");
        assert_eq!(find_with(None, Some(&gone)), find_with(None, None));
        // Never a relative one.
        assert_eq!(
            find_with(None, Some(Path::new("bwrap"))),
            find_with(None, None)
        );
    }

    #[test]
    fn a_refusal_in_a_container_names_the_engine_setting() {
        // bubblewrap 0.8.0's messages (bubblewrap.c) for each cause, as measured in
        // containers of Podman 4.3 and Docker 20.10.
        let proc = "Can't mount proc on /newroot/proc: Operation not permitted";
        let userns = "No permissions to create new namespace, likely because the kernel does \
                      not allow non-privileged user namespaces.";
        let lsm = "Failed to make / slave: Permission denied";
        let fix = namespace_fix(proc, Some(Container::Podman));
        assert!(
            fix.contains("unmask=/proc/*") && fix.contains("nanna-deploy up"),
            "{fix}"
        );
        let fix = namespace_fix(proc, Some(Container::Docker));
        assert!(fix.contains("systempaths=unconfined"), "{fix}");
        let fix = namespace_fix(userns, Some(Container::Docker));
        assert!(
            fix.contains("seccomp") && fix.contains("assistant-seccomp.json"),
            "{fix}"
        );
        let fix = namespace_fix(userns, Some(Container::Podman));
        assert!(fix.contains("containers.conf"), "{fix}");
        let fix = namespace_fix(lsm, Some(Container::Docker));
        assert!(fix.contains("apparmor=unconfined"), "{fix}");
        for fix in [
            namespace_fix(proc, Some(Container::Docker)),
            namespace_fix(userns, None),
        ] {
            assert!(fix.contains("--sandbox full"), "{fix}");
        }
        assert_eq!(namespace_fix(proc, None), NAMESPACE_FIX);
        assert_eq!(install_fix(None), INSTALL_FIX);
        let fix = install_fix(Some(Container::Docker));
        assert!(fix.contains("nanna-deploy images build"), "{fix}");
    }

    #[test]
    fn a_bubblewrap_that_cannot_create_namespaces_is_explained() {
        // A stand-in that answers --version but fails as bwrap does when user namespaces are
        // refused (its message from bubblewrap.c, `die_with_error`).
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("bwrap");
        std::fs::write(
            &fake,
            "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'bubblewrap 0.8.0'; exit 0; }\n\
             echo 'bwrap: No permissions to creating new namespace, likely because the kernel \
             does not allow non-privileged user namespaces.' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let s = Support::detect(Some(&fake));
        assert_eq!(
            s.bubblewrap().map(|b| b.version.as_str()),
            Some("bubblewrap 0.8.0")
        );
        let err = s
            .check(SandboxMode::WorkspaceWrite)
            .unwrap_err()
            .to_string();
        assert!(err.contains("non-privileged user namespaces"), "{err}");
        assert!(err.contains("unprivileged_userns_clone"), "{err}");
        let report = s.protections();
        let ns = report.iter().find(|p| p.name == "namespaces").unwrap();
        assert!(!ns.active);
        let ro = report.iter().find(|p| p.name == "read-only").unwrap();
        assert!(!ro.active && ro.fix.is_some());
    }
}

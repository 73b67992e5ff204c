//! The session's temporary directory, and the clean-up of those a killed session left.
//!
//! The directory is removed when the [`Sandbox`](crate::Sandbox) is dropped; a nanna killed
//! with SIGKILL cannot do that, so its directory (and whatever its commands wrote there)
//! would stay in `/tmp` for good. Each name therefore carries its owner: the PID namespace
//! and the process id (`nanna-tmp-<pidns>-<pid>-XXXXXX`), and a new session removes, in the
//! background, the directories of its own user whose process no longer exists. A directory
//! made in another PID namespace (a container sharing `/tmp`) is never touched: its process
//! cannot be seen from here.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

const PREFIX: &str = "nanna-tmp-";

/// Creates this session's directory in the system's temporary directory and starts the
/// sweep of the directories dead sessions left there.
pub(crate) fn create() -> std::io::Result<tempfile::TempDir> {
    let namespace = pid_namespace();
    let prefix = match namespace {
        Some(ns) => format!("{PREFIX}{ns}-{}-", std::process::id()),
        None => PREFIX.to_string(),
    };
    let dir = tempfile::Builder::new().prefix(&prefix).tempdir()?;
    if let (Some(ns), Some(parent)) = (namespace, dir.path().parent()) {
        let parent = parent.to_path_buf();
        // Off the start-up path: a large /tmp takes a while to list.
        let _ = std::thread::Builder::new()
            .name("nanna-tmp-sweep".into())
            .spawn(move || sweep(&parent, ns));
    }
    Ok(dir)
}

/// This process's PID namespace (the inode of `/proc/self/ns/pid`).
fn pid_namespace() -> Option<u64> {
    std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
}

/// Removes the session directories under `parent` made in PID namespace `ns` by a process
/// that no longer exists, owned by this user. Returns what it removed.
pub(crate) fn sweep(parent: &Path, ns: u64) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return removed;
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| owner_pid(n, ns)) else {
            continue;
        };
        if process_exists(pid) {
            continue;
        }
        let path = entry.path();
        // Never a link, never another user's directory.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// The process id in a directory name made in namespace `ns`.
fn owner_pid(name: &str, ns: u64) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (found_ns, rest) = rest.split_once('-')?;
    if found_ns.parse::<u64>().ok()? != ns {
        return None;
    }
    let (pid, _random) = rest.split_once('-')?;
    pid.parse::<i32>().ok().filter(|pid| *pid > 0)
}

/// Whether a process with this id exists (signal 0; `EPERM` means it does, as another
/// user's).
fn process_exists(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for the process; pid > 0 targets one process.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_back_only_for_this_namespace() {
        assert_eq!(
            owner_pid("nanna-tmp-4026531836-1234-AbC123", 4026531836),
            Some(1234)
        );
        assert_eq!(owner_pid("nanna-tmp-4026531836-1234-AbC123", 7), None);
        assert_eq!(owner_pid("nanna-tmp-AbC123", 4026531836), None);
        assert_eq!(owner_pid("nanna-tmp-4026531836-0-x", 4026531836), None);
        assert_eq!(owner_pid("other-4026531836-1234-x", 4026531836), None);
    }

    #[test]
    fn the_sweep_removes_dead_sessions_only() {
        let parent = tempfile::tempdir().unwrap();
        let ns = pid_namespace().unwrap();
        // A process that has surely ended, and one that is alive (this one).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let alive = std::process::id();
        let dead_dir = parent.path().join(format!("{PREFIX}{ns}-{dead}-aaaaaa"));
        let live_dir = parent.path().join(format!("{PREFIX}{ns}-{alive}-bbbbbb"));
        let other_ns = parent
            .path()
            .join(format!("{PREFIX}{}-{dead}-cccccc", ns + 1));
        let old_style = parent.path().join(format!("{PREFIX}dddddd"));
        for dir in [&dead_dir, &live_dir, &other_ns, &old_style] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("file"), "x").unwrap();
        }
        // A link named like a dead session's directory is not followed nor removed.
        let target = tempfile::tempdir().unwrap();
        std::fs::write(target.path().join("keep"), "x").unwrap();
        let link = parent.path().join(format!("{PREFIX}{ns}-{dead}-eeeeee"));
        std::os::unix::fs::symlink(target.path(), &link).unwrap();

        let removed = sweep(parent.path(), ns);
        assert_eq!(removed, vec![dead_dir.clone()]);
        assert!(!dead_dir.exists());
        assert!(live_dir.join("file").exists());
        assert!(other_ns.join("file").exists());
        assert!(old_style.join("file").exists());
        assert!(target.path().join("keep").exists());
        assert!(link.symlink_metadata().is_ok());
    }
}

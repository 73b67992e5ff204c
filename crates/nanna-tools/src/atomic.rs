//! Atomic file replacement: write a temporary file in the same directory, then rename it
//! over the target, so readers see the old content or the new, never a partial file. Every
//! step goes through directory handles beneath the workspace root (see `workspace`), so a
//! directory swapped for a symlink mid-write cannot carry the file outside.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::fs::{Dir, OpenOptions};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether the target existed before the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// A new file was created.
    Created,
    /// An existing file was replaced; its permissions were kept.
    Replaced,
}

/// Writes `data` to `rel` (relative to `root`) atomically, creating missing parent
/// directories and keeping the permissions of an existing file. No temporary file is left
/// behind on failure.
///
/// The data is not fsynced: durability across power loss is traded for latency, as in
/// editors' default save (ext4 and XFS order the rename after the data anyway).
pub(crate) fn write(root: &Dir, rel: &Path, data: &[u8]) -> io::Result<Written> {
    write_via(root, rel, data, |dir, from, to| dir.rename(from, dir, to))
}

/// [`write`] with the final rename injectable, so tests can make it fail.
fn write_via(
    root: &Dir,
    rel: &Path,
    data: &[u8],
    rename: impl FnOnce(&Dir, &Path, &Path) -> io::Result<()>,
) -> io::Result<Written> {
    let name = rel.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "path has no file name; give a file path",
        )
    })?;
    let parent = rel.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = match parent {
        Some(parent) => {
            root.create_dir_all(parent)?;
            root.open_dir(parent)?
        }
        None => root.try_clone()?,
    };
    let name = Path::new(name);
    let existing = match dir.metadata(name) {
        Ok(meta) if meta.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory; give a file path",
            ));
        }
        Ok(meta) => Some(cap_std::fs::PermissionsExt::mode(&meta.permissions())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let tmp = temp_name(name);
    let result = write_temp(&dir, &tmp, data, existing).and_then(|()| rename(&dir, &tmp, name));
    if result.is_err() {
        // Best effort: the temp file may not exist if creating it failed.
        let _ = dir.remove_file(&tmp);
    }
    result.map(|()| {
        if existing.is_some() {
            Written::Replaced
        } else {
            Written::Created
        }
    })
}

fn write_temp(dir: &Dir, tmp: &Path, data: &[u8], mode: Option<u32>) -> io::Result<()> {
    // `create_new` with the default mode: a new file gets 0666 minus the umask, like any
    // editor would create it.
    let file = dir.open_with(tmp, OpenOptions::new().write(true).create_new(true))?;
    let mut file = file.into_std();
    file.write_all(data)?;
    if let Some(mode) = mode {
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn temp_name(name: &Path) -> PathBuf {
    let name: String = name.to_string_lossy().chars().take(100).collect();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(format!(".{name}.{}.{n}.nanna-tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn root(dir: &Path) -> Dir {
        Dir::open_ambient_dir(dir, cap_std::ambient_authority()).unwrap()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn creates_parents_and_replaces_keeping_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c.sh");
        let r = root(dir.path());
        let rel = Path::new("a/b/c.sh");
        assert_eq!(write(&r, rel, b"one").unwrap(), Written::Created);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(write(&r, rel, b"two").unwrap(), Written::Replaced);
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        assert_eq!(entries(&dir.path().join("a/b")), vec!["c.sh"]);
    }

    #[test]
    fn failed_rename_leaves_no_temp_file_and_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        fs::write(&path, "old").unwrap();
        let err = write_via(
            &root(dir.path()),
            Path::new("f.txt"),
            b"new",
            |d, from, _| {
                assert!(
                    d.exists(from),
                    "the temp file was written before the rename"
                );
                Err(io::Error::other("injected rename failure"))
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "injected rename failure");
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(entries(dir.path()), vec!["f.txt"]);
    }

    #[test]
    fn long_file_names_get_a_valid_temp_name() {
        let dir = tempfile::tempdir().unwrap();
        let name = "n".repeat(250);
        assert_eq!(
            write(&root(dir.path()), Path::new(&name), b"x").unwrap(),
            Written::Created
        );
        assert_eq!(entries(dir.path()), vec!["n".repeat(250)]);
    }

    #[test]
    fn directories_are_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::create_dir(&target).unwrap();
        let err = write(&root(dir.path()), Path::new("target"), b"data").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
        assert_eq!(entries(dir.path()), vec!["target"]);
    }
}

//! Atomic file replacement: write a temporary file in the same directory, then rename it
//! over the target, so readers see the old content or the new, never a partial file.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether the target existed before the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// A new file was created.
    Created,
    /// An existing file was replaced; its permissions were kept.
    Replaced,
}

/// Writes `data` to `path` atomically, creating missing parent directories and keeping the
/// permissions of an existing file. No temporary file is left behind on failure.
///
/// The data is not fsynced: durability across power loss is traded for latency, as in
/// editors' default save (ext4 and XFS order the rename after the data anyway).
pub(crate) fn write(path: &Path, data: &[u8]) -> io::Result<Written> {
    write_via(path, data, |from, to| fs::rename(from, to))
}

/// [`write`] with the final rename injectable, so tests can make it fail.
fn write_via(
    path: &Path,
    data: &[u8],
    rename: impl FnOnce(&Path, &Path) -> io::Result<()>,
) -> io::Result<Written> {
    let dir = path.parent().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "path has no parent directory")
    })?;
    fs::create_dir_all(dir)?;
    let existing = match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory; give a file path",
            ));
        }
        Ok(meta) => Some(meta.permissions()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let tmp = temp_path(dir, path);
    let result = write_temp(&tmp, data, existing.clone()).and_then(|()| rename(&tmp, path));
    if result.is_err() {
        // Best effort: the temp file may not exist if creating it failed.
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| {
        if existing.is_some() {
            Written::Replaced
        } else {
            Written::Created
        }
    })
}

fn write_temp(tmp: &Path, data: &[u8], permissions: Option<fs::Permissions>) -> io::Result<()> {
    // `create_new` with the default mode: a new file gets 0666 minus the umask, like any
    // editor would create it.
    let mut file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    file.write_all(data)?;
    if let Some(perms) = permissions {
        file.set_permissions(perms)?;
    }
    Ok(())
}

fn temp_path(dir: &Path, path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(100).collect::<String>())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}.{n}.nanna-tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
        assert_eq!(write(&path, b"one").unwrap(), Written::Created);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(write(&path, b"two").unwrap(), Written::Replaced);
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
        let err = write_via(&path, b"new", |from, _| {
            assert!(from.exists(), "the temp file was written before the rename");
            Err(io::Error::other("injected rename failure"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "injected rename failure");
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(entries(dir.path()), vec!["f.txt"]);
    }

    #[test]
    fn long_file_names_get_a_valid_temp_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n".repeat(250));
        assert_eq!(write(&path, b"x").unwrap(), Written::Created);
        assert_eq!(entries(dir.path()), vec!["n".repeat(250)]);
    }

    #[test]
    fn directories_are_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::create_dir(&target).unwrap();
        let err = write(&target, b"data").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
        assert_eq!(entries(dir.path()), vec!["target"]);
    }
}

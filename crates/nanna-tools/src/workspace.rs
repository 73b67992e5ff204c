//! Confinement of file paths to the workspace.
//!
//! Two layers. [`resolve`] turns what the model wrote into a canonical path relative to the
//! root: it canonicalizes the longest existing ancestor (following every symlink on the way),
//! appends the components that do not exist yet, and refuses a result outside the canonical
//! root; relative paths are taken from the root, absolute ones accepted only inside it. That
//! check alone can be raced: another process may swap a directory for a symlink to the
//! outside between the check and the use (measured before this layer: 1 of 300 `read_file`
//! and 1 of 300 `write_file` calls escaped; the issue saw 78). So every access then goes
//! through [`open_root`], a directory handle on the root, with the relative path: cap-std
//! resolves it with `openat2(RESOLVE_BENEATH)` (or an `O_NOFOLLOW` walk on kernels before
//! 5.6), which fails on any `..` or symlink leading out at the moment of use.

use std::path::{Component, Path, PathBuf};

use cap_std::fs::Dir;

use crate::error::ToolError;

/// The workspace root as a directory handle; every file access goes through it.
pub(crate) fn open_root(root: &Path) -> Result<Dir, ToolError> {
    Dir::open_ambient_dir(root, cap_std::ambient_authority()).map_err(|e| ToolError::io(root, &e))
}

/// A [`ToolError`] for an I/O error on `rel`; an escape found at the moment of use (a path
/// swapped for a symlink to the outside) is reported as outside the workspace.
pub(crate) fn io_error(rel: &str, err: &std::io::Error) -> ToolError {
    if err.kind() == std::io::ErrorKind::PermissionDenied
        && err.to_string().contains("outside of the filesystem")
    {
        return ToolError::PathOutsideWorkspace { path: rel.into() };
    }
    ToolError::io(rel, err)
}

/// A path checked to lie inside the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkspacePath {
    /// Absolute, with every existing symlink resolved.
    pub(crate) abs: PathBuf,
    /// Relative to the workspace root, for messages (`.` for the root itself).
    pub(crate) rel: String,
}

/// Resolves `raw` (as the model wrote it) against `root` (the canonical workspace).
pub(crate) fn resolve(root: &Path, raw: &str) -> Result<WorkspacePath, ToolError> {
    let trimmed = raw.trim();
    let given = if trimmed.is_empty() { "." } else { trimmed };
    let outside = || ToolError::PathOutsideWorkspace {
        path: PathBuf::from(given),
    };
    let given_path = Path::new(given);
    let joined = if given_path.is_absolute() {
        given_path.to_path_buf()
    } else {
        root.join(given_path)
    };

    // Split into the longest existing prefix (canonicalized, following symlinks) and the
    // missing tail (applied lexically: nothing in it exists, so no symlink can be in it).
    let comps: Vec<Component<'_>> = joined.components().collect();
    let mut split = comps.len();
    let base = loop {
        if split == 0 {
            return Err(ToolError::NotFound { path: given.into() });
        }
        let prefix: PathBuf = comps[..split].iter().collect();
        match std::fs::symlink_metadata(&prefix) {
            Ok(_) => match std::fs::canonicalize(&prefix) {
                Ok(canon) => break canon,
                // It exists but cannot be followed: a dangling or looping symlink. Its target
                // is unknown, so it is refused rather than written through.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ToolError::Failed(format!(
                        "`{given}` passes through a symlink whose target does not exist; \
                         use the real path"
                    )));
                }
                Err(e) => return Err(ToolError::io(given, &e)),
            },
            Err(_) => split -= 1,
        }
    };
    let mut abs = base;
    for comp in &comps[split..] {
        match comp {
            Component::Normal(name) => abs.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                if !abs.pop() {
                    return Err(outside());
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    let rel = match abs.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => return Err(outside()),
    };
    Ok(WorkspacePath { abs, rel })
}

/// `abs` relative to `root` for display, or `abs` itself when outside.
pub(crate) fn relative(root: &Path, abs: &Path) -> String {
    match abs.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => abs.to_string_lossy().into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, tempfile::TempDir, PathBuf) {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join("src")).unwrap();
        std::fs::write(ws.path().join("src/lib.rs"), "x").unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let root = std::fs::canonicalize(ws.path()).unwrap();
        (ws, outside, root)
    }

    #[test]
    fn relative_and_inside_absolute_paths_resolve() {
        let (_ws, _o, root) = setup();
        let p = resolve(&root, "src/lib.rs").unwrap();
        assert_eq!(p.abs, root.join("src/lib.rs"));
        assert_eq!(p.rel, "src/lib.rs");
        let abs = root.join("src/lib.rs");
        assert_eq!(
            resolve(&root, abs.to_str().unwrap()).unwrap().rel,
            "src/lib.rs"
        );
        assert_eq!(resolve(&root, "").unwrap().rel, ".");
        assert_eq!(
            resolve(&root, "./src/../src/lib.rs").unwrap().rel,
            "src/lib.rs"
        );
        assert_eq!(
            resolve(&root, "new/dir/file.txt").unwrap().rel,
            "new/dir/file.txt"
        );
        assert_eq!(resolve(&root, "new/../other.txt").unwrap().rel, "other.txt");
    }

    #[test]
    fn parent_escapes_are_refused() {
        let (_ws, _o, root) = setup();
        for raw in [
            "..",
            "../x",
            "src/../../x",
            "new/../../x",
            "a/b/../../../etc",
        ] {
            let err = resolve(&root, raw).unwrap_err();
            assert!(
                matches!(err, ToolError::PathOutsideWorkspace { .. }),
                "{raw}: {err}"
            );
        }
    }

    #[test]
    fn absolute_paths_outside_are_refused() {
        let (_ws, outside, root) = setup();
        let err = resolve(&root, "/etc/passwd").unwrap_err();
        assert!(matches!(err, ToolError::PathOutsideWorkspace { .. }));
        let p = outside.path().join("secret");
        let err = resolve(&root, p.to_str().unwrap()).unwrap_err();
        assert!(matches!(err, ToolError::PathOutsideWorkspace { .. }));
        let msg = err.to_string();
        assert!(msg.contains("relative to the workspace root"), "{msg}");
    }

    #[test]
    fn symlinks_leading_outside_are_refused() {
        let (_ws, outside, root) = setup();
        symlink(outside.path().join("secret"), root.join("link")).unwrap();
        symlink(outside.path(), root.join("src/outdir")).unwrap();
        for raw in [
            "link",
            "src/outdir",
            "src/outdir/secret",
            "src/outdir/new/file",
        ] {
            let err = resolve(&root, raw).unwrap_err();
            assert!(
                matches!(err, ToolError::PathOutsideWorkspace { .. }),
                "{raw}: {err}"
            );
        }
    }

    #[test]
    fn symlinks_inside_are_followed() {
        let (_ws, _o, root) = setup();
        symlink(root.join("src"), root.join("alias")).unwrap();
        assert_eq!(resolve(&root, "alias/lib.rs").unwrap().rel, "src/lib.rs");
    }

    #[test]
    fn dangling_symlinks_are_refused() {
        let (_ws, outside, root) = setup();
        symlink(outside.path().join("nothing"), root.join("dangling")).unwrap();
        let err = resolve(&root, "dangling").unwrap_err();
        assert!(
            err.to_string()
                .contains("symlink whose target does not exist"),
            "{err}"
        );
    }
}

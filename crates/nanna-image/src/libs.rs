//! Finding the shared libraries (and the dynamic loader) a binary needs, the way the
//! glibc loader would: `DT_RPATH`, `DT_RUNPATH`, `/etc/ld.so.conf`, then the default
//! directories; `ldd` is consulted only for names this search cannot find.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Component, Path, PathBuf};

use crate::ImageError;
use crate::elf::{self, ElfInfo};

/// The host files a dynamically linked binary needs at run time.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Dependencies {
    /// The parsed binary.
    pub info: Option<ElfInfo>,
    /// Host paths, as the loader would open them (possibly symlinks), in discovery order:
    /// the interpreter first, then libraries breadth-first.
    pub files: Vec<PathBuf>,
    /// Directories outside the in-image loader's default search path (and outside the
    /// objects' absolute RPATH/RUNPATH) that hold needed libraries: they must be on
    /// `LD_LIBRARY_PATH` in the image.
    pub extra_dirs: BTreeSet<PathBuf>,
}

/// Resolves everything `binary` needs to run. A static binary needs nothing.
pub(crate) fn resolve(binary: &Path) -> Result<Dependencies, ImageError> {
    let conf = ld_so_conf_dirs(Path::new("/etc/ld.so.conf"));
    resolve_with(binary, &conf)
}

fn read(path: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(|source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn resolve_with(
    binary: &Path,
    conf_dirs: &[PathBuf],
) -> Result<Dependencies, ImageError> {
    let data = read(binary)?;
    let main = elf::parse(&data, binary)?;
    let defaults = default_dirs(&main);
    let mut deps = Dependencies::default();
    if let Some(interp) = &main.interpreter {
        deps.files.push(PathBuf::from(interp));
    }
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut queue: VecDeque<(PathBuf, ElfInfo)> = VecDeque::new();
    queue.push_back((binary.to_path_buf(), main.clone()));
    let mut ldd: Option<BTreeMap<String, PathBuf>> = None;
    while let Some((object, info)) = queue.pop_front() {
        for name in &info.needed {
            if found.contains_key(name) {
                continue;
            }
            let (path, lib_info, dir_ok) =
                match find(name, &object, &info, &main, conf_dirs, &defaults) {
                    Some(hit) => hit,
                    None => {
                        let map = ldd.get_or_insert_with(|| ldd_map(binary));
                        let Some(path) = map.get(name) else {
                            let searched = search_dirs(&object, &info, &main, conf_dirs, &defaults)
                                .iter()
                                .map(|d| d.display().to_string())
                                .collect::<Vec<_>>()
                                .join(":");
                            return Err(ImageError::MissingLibrary {
                                name: name.clone(),
                                needed_by: object.clone(),
                                searched,
                            });
                        };
                        let lib_info = elf::parse(&read(path)?, path)?;
                        let in_defaults = path
                            .parent()
                            .is_some_and(|d| defaults.iter().any(|x| x == d));
                        (path.clone(), lib_info, in_defaults)
                    }
                };
            let path = normalize(&path);
            if !dir_ok && let Some(dir) = path.parent() {
                deps.extra_dirs.insert(dir.to_path_buf());
            }
            found.insert(name.clone(), path.clone());
            if !deps.files.contains(&path) {
                deps.files.push(path.clone());
            }
            queue.push_back((path, lib_info));
        }
    }
    deps.info = Some(main);
    Ok(deps)
}

/// Searches for `name` needed by `object`. Returns the path, its ELF facts, and whether
/// the in-image loader will find it without `LD_LIBRARY_PATH`.
fn find(
    name: &str,
    object: &Path,
    info: &ElfInfo,
    main: &ElfInfo,
    conf_dirs: &[PathBuf],
    defaults: &[PathBuf],
) -> Option<(PathBuf, ElfInfo, bool)> {
    let usable = |candidate: &Path| -> Option<ElfInfo> {
        let data = std::fs::read(candidate).ok()?;
        let lib = elf::parse(&data, candidate).ok()?;
        main.compatible_with(&lib).then_some(lib)
    };
    if name.contains('/') {
        let path = PathBuf::from(name);
        return usable(&path).map(|lib| (path, lib, true));
    }
    for (dir, literal) in own_paths(object, info, main) {
        let candidate = dir.join(name);
        if let Some(lib) = usable(&candidate) {
            return Some((candidate, lib, literal || defaults.contains(&dir)));
        }
    }
    for dir in conf_dirs.iter().chain(defaults) {
        let candidate = dir.join(name);
        if let Some(lib) = usable(&candidate) {
            return Some((candidate, lib, defaults.contains(dir)));
        }
    }
    None
}

/// The RPATH/RUNPATH directories for `object`, with `$ORIGIN` expanded; the flag says
/// whether the entry is a literal absolute path (and so valid unchanged in the image).
fn own_paths(object: &Path, info: &ElfInfo, main: &ElfInfo) -> Vec<(PathBuf, bool)> {
    let origin = object.parent().unwrap_or(Path::new("/"));
    let entries: Vec<&String> = if info.runpath.is_empty() {
        // DT_RPATH applies (and the executable's DT_RPATH is inherited) only without DT_RUNPATH.
        info.rpath.iter().chain(&main.rpath).collect()
    } else {
        info.runpath.iter().collect()
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let literal = !entry.contains('$') && entry.starts_with('/');
            let expanded = entry
                .replace("${ORIGIN}", &origin.to_string_lossy())
                .replace("$ORIGIN", &origin.to_string_lossy());
            (!expanded.contains('$')).then(|| (PathBuf::from(expanded), literal))
        })
        .collect()
}

fn search_dirs(
    object: &Path,
    info: &ElfInfo,
    main: &ElfInfo,
    conf_dirs: &[PathBuf],
    defaults: &[PathBuf],
) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = own_paths(object, info, main)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    dirs.extend(conf_dirs.iter().cloned());
    dirs.extend(defaults.iter().cloned());
    dirs
}

/// Directories a glibc loader searches without a cache, for the binary's CPU type
/// (Debian's multiarch directories, then the lib64 and plain lib directories).
fn default_dirs(main: &ElfInfo) -> Vec<PathBuf> {
    let triplet = match (main.machine, main.is_64) {
        (object::elf::EM_X86_64, true) => Some("x86_64-linux-gnu"),
        (object::elf::EM_AARCH64, true) => Some("aarch64-linux-gnu"),
        (object::elf::EM_386, false) => Some("i386-linux-gnu"),
        (object::elf::EM_ARM, false) => Some("arm-linux-gnueabihf"),
        (object::elf::EM_PPC64, true) => Some("powerpc64le-linux-gnu"),
        (object::elf::EM_S390, true) => Some("s390x-linux-gnu"),
        (object::elf::EM_RISCV, true) => Some("riscv64-linux-gnu"),
        _ => None,
    };
    let mut dirs = Vec::new();
    if let Some(t) = triplet {
        dirs.push(PathBuf::from(format!("/lib/{t}")));
        dirs.push(PathBuf::from(format!("/usr/lib/{t}")));
    }
    if main.is_64 {
        dirs.push(PathBuf::from("/lib64"));
        dirs.push(PathBuf::from("/usr/lib64"));
    }
    dirs.push(PathBuf::from("/lib"));
    dirs.push(PathBuf::from("/usr/lib"));
    dirs
}

/// The directories listed in an `ld.so.conf` file, following `include` lines (globs with
/// `*` in the file name). A missing or unreadable file contributes nothing.
pub(crate) fn ld_so_conf_dirs(conf: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    read_conf(conf, &mut dirs, 0);
    let mut seen = BTreeSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

fn read_conf(conf: &Path, dirs: &mut Vec<PathBuf>, depth: usize) {
    if depth > 8 {
        return;
    }
    let Ok(text) = std::fs::read_to_string(conf) else {
        return;
    };
    let base = conf.parent().unwrap_or(Path::new("/"));
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with("hwcap ") {
            continue;
        }
        if let Some(pattern) = line.strip_prefix("include") {
            for pattern in pattern.split_whitespace() {
                for file in expand_glob(&base.join(pattern)) {
                    read_conf(&file, dirs, depth + 1);
                }
            }
            continue;
        }
        for dir in line
            .split([':', ',', ' ', '\t'])
            .filter(|s| s.starts_with('/'))
        {
            dirs.push(PathBuf::from(dir));
        }
    }
}

/// Expands a path whose last component may contain one `*`; results are sorted.
fn expand_glob(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![pattern.to_path_buf()];
    };
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.len() >= prefix.len() + suffix.len() && n.starts_with(prefix) && n.ends_with(suffix)
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// Asks `ldd` (which runs the binary's loader) for library paths; only a fallback.
fn ldd_map(binary: &Path) -> BTreeMap<String, PathBuf> {
    let Ok(out) = std::process::Command::new("ldd").arg(binary).output() else {
        return BTreeMap::new();
    };
    parse_ldd(&String::from_utf8_lossy(&out.stdout))
}

fn parse_ldd(text: &str) -> BTreeMap<String, PathBuf> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.trim().split_once(" => ")?;
            let path = rest.split(" (").next()?.trim();
            path.starts_with('/')
                .then(|| (name.trim().to_string(), PathBuf::from(path)))
        })
        .collect()
}

/// Resolves `path` lexically: `.` dropped, `..` pops a component (symlinked ancestors
/// are not followed; in the image every ancestor is a real directory).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(c) => out.push(c),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_libc_and_loader_of_a_real_binary() {
        let deps = resolve(Path::new("/usr/bin/env")).expect("resolve /usr/bin/env");
        let info = deps.info.as_ref().expect("info");
        let interp = info.interpreter.as_ref().expect("interp");
        assert_eq!(
            deps.files.first(),
            Some(&PathBuf::from(interp)),
            "loader first"
        );
        let libc = deps
            .files
            .iter()
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("libc.so"))
            })
            .expect("libc among the dependencies");
        assert!(libc.is_file(), "{}", libc.display());
        // The host's own loader agrees on which libc it is.
        let ldd = ldd_map(Path::new("/usr/bin/env"));
        if let Some(expected) = ldd.get("libc.so.6") {
            assert_eq!(
                std::fs::canonicalize(expected).unwrap(),
                std::fs::canonicalize(libc).unwrap()
            );
        }
        assert!(deps.extra_dirs.is_empty(), "{:?}", deps.extra_dirs);
    }

    #[test]
    fn static_binary_needs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("static");
        std::fs::write(&bin, crate::elf::tests::static_elf_x86_64()).unwrap();
        let deps = resolve(&bin).expect("resolve");
        assert!(deps.files.is_empty());
    }

    /// Builds `bin/app` linked against `lib/libnannatest.so` with RUNPATH `$ORIGIN/../lib`.
    /// Returns `None` (test skipped) when no C compiler is installed.
    fn build_app_with_private_lib(root: &Path) -> Option<PathBuf> {
        let cc = |args: &[&str]| {
            std::process::Command::new("cc")
                .args(args)
                .current_dir(root)
                .status()
                .ok()
                .filter(|s| s.success())
        };
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(
            root.join("lib.c"),
            "int nanna_answer(void) { return 42; }\n",
        )
        .unwrap();
        std::fs::write(
            root.join("main.c"),
            "int nanna_answer(void);\nint main(void) { return nanna_answer() == 42 ? 0 : 1; }\n",
        )
        .unwrap();
        cc(&["-shared", "-fPIC", "-o", "lib/libnannatest.so", "lib.c"])?;
        cc(&[
            "-o",
            "bin/app",
            "main.c",
            "-Llib",
            "-lnannatest",
            "-Wl,-rpath,$ORIGIN/../lib",
        ])?;
        Some(root.join("bin/app"))
    }

    #[test]
    fn origin_runpath_is_followed_and_missing_library_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let Some(app) = build_app_with_private_lib(dir.path()) else {
            println!("skipping: no C compiler (cc) to build a test binary");
            return;
        };
        let deps = resolve(&app).expect("resolve app");
        let private = dir.path().join("lib/libnannatest.so");
        assert!(deps.files.contains(&private), "{:?}", deps.files);
        assert!(
            deps.files
                .iter()
                .any(|p| p.to_string_lossy().contains("libc.so"))
        );
        // $ORIGIN is relative to the host location, so the image needs LD_LIBRARY_PATH.
        assert!(
            deps.extra_dirs.contains(&dir.path().join("lib")),
            "{:?}",
            deps.extra_dirs
        );

        std::fs::remove_file(dir.path().join("lib/libnannatest.so")).unwrap();
        let err = resolve(&app).unwrap_err();
        match &err {
            ImageError::MissingLibrary {
                name,
                needed_by,
                searched,
            } => {
                assert_eq!(name, "libnannatest.so");
                assert_eq!(needed_by, &app);
                assert!(searched.contains("/lib"), "{searched}");
            }
            other => panic!("unexpected error {other}"),
        }
        assert!(err.to_string().contains("install it on the host"), "{err}");
    }

    #[test]
    fn default_dirs_suffice_without_ld_so_conf() {
        let deps = resolve_with(Path::new("/usr/bin/env"), &[]).expect("defaults suffice");
        assert!(deps.files.len() >= 2, "{:?}", deps.files);
        assert!(deps.extra_dirs.is_empty(), "{:?}", deps.extra_dirs);
    }

    #[test]
    fn ld_so_conf_follows_includes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("conf.d")).unwrap();
        std::fs::write(
            d.join("ld.so.conf"),
            "# top\n/opt/first\ninclude conf.d/*.conf\n",
        )
        .unwrap();
        std::fs::write(d.join("conf.d/b.conf"), "/opt/b # comment\n").unwrap();
        std::fs::write(d.join("conf.d/a.conf"), "/opt/a:/opt/a2\n/opt/first\n").unwrap();
        std::fs::write(d.join("conf.d/skip.txt"), "/opt/never\n").unwrap();
        let dirs = ld_so_conf_dirs(&d.join("ld.so.conf"));
        let expected: Vec<PathBuf> = ["/opt/first", "/opt/a", "/opt/a2", "/opt/b"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(dirs, expected);
    }

    #[test]
    fn parses_ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n\tlibgone.so => not found\n";
        let map = parse_ldd(text);
        assert_eq!(map.len(), 1);
        assert_eq!(
            map["libc.so.6"],
            PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6")
        );
    }

    #[test]
    fn normalizes_lexically() {
        assert_eq!(
            normalize(Path::new("/lib/x/../y/./z")),
            PathBuf::from("/lib/y/z")
        );
        assert_eq!(normalize(Path::new("/../a")), PathBuf::from("/a"));
    }
}

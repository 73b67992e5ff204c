//! [`Sandbox`]: builds the command line that runs a program under a [`Policy`].
//!
//! Every command runs through bubblewrap (see ARCHITECTURE.md for why):
//! - `--unshare-pid` with bubblewrap's reaper as PID 1, and `--die-with-parent`: bubblewrap's
//!   monitor exits as soon as the command (PID 2) exits (`monitor_child` in bubblewrap.c);
//!   PID 1 would wait for every process left (`do_init`), but `--die-with-parent` gives it
//!   `PR_SET_PDEATHSIG(SIGKILL)` tied to the monitor, and when PID 1 dies the kernel kills
//!   everything in the namespace, `setsid`/`nohup`/double-fork children included. The
//!   monitor has the same signal tied to nanna, so nanna's death (SIGKILL included) ends it
//!   all too. The attack tests check each of these paths;
//! - a lifeline for the one gap in that chain: bubblewrap's init forks the command *before*
//!   it arms its own parent-death signal (`do_init` after the fork in bubblewrap.c, with no
//!   check that the monitor still lives), so a nanna killed in those microseconds left the
//!   command running (1 in 5 runs of the attack test on a loaded machine). Every command
//!   therefore starts behind a tiny `/bin/sh` watcher ([`lifeline_prefix`]; a shell script
//!   gets it as the first line of its own shell) that blocks
//!   reading a pipe whose only writer is nanna's [`Sandbox`]; at end of file (nanna gone,
//!   for any reason, at any moment) it kills every process of the PID namespace. It runs
//!   detached from the command (a double fork, reaped by bubblewrap's init), so a command
//!   that waits for all its children does not wait for it;
//! - confined modes: a user namespace with every capability dropped (so the command cannot
//!   remount what it sees), `--ro-bind / /` and the writable binds on top, a fresh `/proc`
//!   (nanna's own environment, with its API key, is not visible there) and `/dev`, a network
//!   namespace with only a private loopback unless the network is allowed, and the seccomp
//!   filter of [`crate::seccomp`].

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::error::SandboxError;
use crate::mode::{Policy, SandboxMode};
use crate::support::Support;

/// Namespaces and hardening shared by the confined modes (`--disable-userns` is added when
/// the bubblewrap has it).
pub(crate) const CONFINED_COMMON: &[&str] = &[
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
];

/// The root view of the confined modes: everything read-only, a private `/dev` and a fresh
/// `/proc` whose kernel settings stay read-only. A command whose user is root outside the
/// sandbox keeps that identity inside its user namespace, and `/proc/sys` files check only
/// the file mode against that identity (`test_perm` in the kernel's fs/proc/proc_sysctl.c),
/// so without the cover such a command could set `kernel.core_pattern` and have the kernel
/// run a program of its choice as root (measured: nanna run as root could write it from
/// `read-only`). bubblewrap tries to cover `/proc/sys` itself, but skips it when `access()`
/// reports the directory unwritable (`SETUP_MOUNT_PROC` in bubblewrap.c), which procfs
/// always does; hence the explicit binds (`-try`: the files may be absent from a kernel).
/// Then the whole `/proc` is remounted read-only: `/proc/1/mem` was writable, so a command
/// could rewrite the sandbox's init (bubblewrap), which reports the command's end (the
/// seccomp filter closes `ptrace` and `process_vm_writev` on it).
pub(crate) const CONFINED_ROOT: &[&str] = &[
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "--ro-bind-try",
    "/proc/sys",
    "/proc/sys",
    "--ro-bind-try",
    "/proc/sysrq-trigger",
    "/proc/sysrq-trigger",
    "--remount-ro",
    "/proc",
];

/// Where a confined command sees its temporary directory (`TMPDIR`).
const SANDBOX_TMP: &str = "/tmp";

/// `full`: the whole file system as it is, a PID namespace for the lifetime guarantee. Root
/// keeps its capabilities (no user namespace), anyone else needs one for the PID namespace.
pub(crate) fn full_args(privileged: bool) -> Vec<&'static str> {
    let mut args = Vec::with_capacity(8);
    if !privileged {
        args.push("--unshare-user");
    }
    args.extend([
        "--unshare-pid",
        "--die-with-parent",
        "--new-session",
        "--dev-bind",
        "/",
        "/",
        "--proc",
        "/proc",
    ]);
    args
}

/// Runs programs for one session under one [`Policy`]: holds the workspace, the session's
/// temporary directory (removed when the sandbox is dropped) and the machine's [`Support`].
#[derive(Debug)]
pub struct Sandbox {
    policy: Policy,
    workspace: PathBuf,
    tmp: tempfile::TempDir,
    support: Arc<Support>,
    /// Why the bubblewrap found cannot be trusted for this workspace (it lies inside it,
    /// where commands may replace it); then it is never run.
    untrusted: Option<String>,
    /// The read end every command's watcher blocks on; the write end is held here only, so
    /// its end of file means this sandbox (or nanna) is gone.
    lifeline: Lifeline,
}

/// A pipe nobody writes to: [`Sandbox`] holds both ends (close-on-exec), commands get a
/// duplicate of the read end.
#[derive(Debug)]
struct Lifeline {
    read: OwnedFd,
    _write: OwnedFd,
}

/// What a sandboxed command runs.
enum Run<'a> {
    /// A program with its arguments.
    Program(OsString, Vec<OsString>),
    /// A script for `/bin/sh -c`.
    Shell(&'a str),
}

impl Sandbox {
    /// A sandbox for `workspace` (an existing directory) on this machine.
    pub fn new(policy: Policy, workspace: &Path) -> Result<Self, SandboxError> {
        Self::with_support(policy, workspace, Support::probe())
    }

    /// A sandbox that assumes `support` instead of probing (tests force "unsupported" so).
    pub fn with_support(
        policy: Policy,
        workspace: &Path,
        support: Arc<Support>,
    ) -> Result<Self, SandboxError> {
        let workspace = std::fs::canonicalize(workspace).map_err(|e| SandboxError::Io {
            context: format!("cannot open the workspace {}", workspace.display()),
            source: e,
        })?;
        let untrusted = support
            .bubblewrap()
            .filter(|bw| bw.path.starts_with(&workspace))
            .map(|bw| {
                format!(
                    "the bubblewrap found ({}) lies inside the workspace, which commands may \
                     change",
                    bw.path.display()
                )
            });
        let tmp = crate::tmpdir::create().map_err(|e| SandboxError::Io {
            context: "cannot create the session's temporary directory".into(),
            source: e,
        })?;
        let (read, write) = std::io::pipe().map_err(|e| SandboxError::Io {
            context: "cannot create the sandbox's lifeline pipe".into(),
            source: e,
        })?;
        Ok(Self {
            policy,
            workspace,
            tmp,
            support,
            untrusted,
            lifeline: Lifeline {
                read: read.into(),
                _write: write.into(),
            },
        })
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The workspace, canonical.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// What this machine can enforce.
    pub fn support(&self) -> &Support {
        &self.support
    }

    /// The session's temporary directory on the host (commands see it as `TMPDIR`).
    pub fn tmp_dir(&self) -> &Path {
        self.tmp.path()
    }

    /// `Ok` when the policy's mode is enforced here; otherwise why not and what to do.
    pub fn check(&self) -> Result<(), SandboxError> {
        if let Some(reason) = &self.untrusted
            && self.policy.mode.is_confined()
        {
            return Err(SandboxError::Unsupported {
                mode: self.policy.mode,
                reason: reason.clone(),
                fix: "use a bubblewrap installed outside the project (NANNA_BWRAP)".into(),
            });
        }
        self.support.check(self.policy.mode)
    }

    /// A warning when `workspace-write` would let commands change the home directory (the
    /// workspace is the home or above it): shell startup files, `~/.ssh` and nanna's own
    /// configuration (whose MCP servers run unconfined) all run outside the sandbox later.
    pub fn home_warning(&self) -> Option<String> {
        if self.policy.mode != SandboxMode::WorkspaceWrite {
            return None;
        }
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
        let home = std::fs::canonicalize(home).ok()?;
        home.starts_with(&self.workspace).then(|| {
            format!(
                "the workspace {} holds your home directory: in workspace-write, commands and \
                 file edits may change your shell's startup files, ~/.ssh and nanna's own \
                 configuration, which run outside the sandbox later; start nanna in a project \
                 directory (or use --sandbox read-only)",
                self.workspace.display()
            )
        })
    }

    /// Why a file tool may not write `path` (canonical, inside the workspace) under this
    /// policy, or `None` when it may. File tools write from nanna's own process, outside the
    /// OS sandbox, so they keep its rules themselves: `read-only` writes nothing, and
    /// `workspace-write` keeps git's metadata out of reach (any `.git` in the path, and the
    /// git directories [`git_protections`] finds), since git runs hooks and settings from it
    /// outside the sandbox (measured: `edit_file` planting `core.fsmonitor` in `.git/config`
    /// ran at the user's next `git status`). `full` confines nothing.
    pub fn write_refusal(&self, path: &Path) -> Option<String> {
        match self.policy.mode {
            SandboxMode::Full => None,
            SandboxMode::ReadOnly => Some("the read-only sandbox lets nothing be written".into()),
            SandboxMode::WorkspaceWrite => {
                let rel = path.strip_prefix(&self.workspace).unwrap_or(path);
                let in_git_dir = rel.components().any(|c| c.as_os_str() == ".git")
                    || git_protections(&self.workspace)
                        .iter()
                        .any(|(mount, dir)| *mount == GitMount::Bind && path.starts_with(dir));
                in_git_dir.then(|| {
                    format!(
                        "`{}` is git's metadata, which the sandbox keeps read-only (git runs \
                         hooks and settings from it outside the sandbox); change the \
                         repository with git commands through `shell` instead",
                        rel.display()
                    )
                })
            }
        }
    }

    /// A command that runs `program` with `args` in the workspace under the policy, with a
    /// scrubbed environment. The caller sets standard I/O and spawns it. Refused with
    /// [`SandboxError::Unsupported`] when the kernel cannot enforce the mode: never a silent
    /// unconfined run.
    pub fn command<I, S>(
        &self,
        program: impl AsRef<OsStr>,
        args: I,
    ) -> Result<Command, SandboxError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let program = program.as_ref().to_owned();
        let args = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self.build(Run::Program(program, args))
    }

    /// A command that runs `script` with `/bin/sh -c` in the workspace under the policy, as
    /// [`Sandbox::command`] does. Under bubblewrap the lifeline is the first line of the same
    /// shell, so a shell command costs one `/bin/sh`, not two.
    pub fn shell(&self, script: &str) -> Result<Command, SandboxError> {
        self.build(Run::Shell(script))
    }

    fn build(&self, run: Run<'_>) -> Result<Command, SandboxError> {
        self.check()?;
        let env = self.policy.env.scrub(std::env::vars_os());
        let parent = std::process::id();
        let Some(bw) = self.support.bubblewrap().filter(|_| {
            self.untrusted.is_none()
                && (self.policy.mode.is_confined() || self.support.full_lifetime())
        }) else {
            // `full` without bubblewrap: a plain child, still scrubbed and killed with nanna.
            let mut cmd = match run {
                Run::Program(program, args) => {
                    let mut cmd = Command::new(program);
                    cmd.args(args);
                    cmd
                }
                Run::Shell(script) => {
                    // `$0` is `sh`, as under bubblewrap.
                    let mut cmd = Command::new("/bin/sh");
                    cmd.arg0("sh").args(["-c", script]);
                    cmd
                }
            };
            cmd.current_dir(&self.workspace)
                .env_clear()
                .envs(env)
                .env("TMPDIR", self.tmp.path());
            die_with(&mut cmd, parent);
            return Ok(cmd);
        };
        let mut cmd = Command::new(&bw.path);
        let mut filter = None;
        match self.policy.mode {
            SandboxMode::Full => {
                cmd.args(full_args(self.support.privileged()));
            }
            mode => {
                cmd.args(CONFINED_COMMON);
                if bw.disable_userns {
                    cmd.arg("--disable-userns");
                }
                if self.policy.network_denied() {
                    cmd.arg("--unshare-net");
                }
                cmd.args(CONFINED_ROOT);
                if mode == SandboxMode::WorkspaceWrite {
                    cmd.arg("--bind").arg(self.tmp.path()).arg(SANDBOX_TMP);
                    bind(&mut cmd, "--bind", &self.workspace);
                    for (mount, path) in git_protections(&self.workspace) {
                        mount.apply(&mut cmd, &path);
                    }
                } else {
                    // A private /tmp, then the workspace again in case it lives under /tmp.
                    cmd.args(["--tmpfs", SANDBOX_TMP]);
                    bind(&mut cmd, "--ro-bind", &self.workspace);
                }
                let program = crate::seccomp::program(self.policy.network_denied())
                    .map_err(SandboxError::Filter)?;
                let (reader, mut writer) = std::io::pipe().map_err(|e| SandboxError::Io {
                    context: "cannot create a pipe for the seccomp filter".into(),
                    source: e,
                })?;
                writer.write_all(&program).map_err(|e| SandboxError::Io {
                    context: "cannot pass the seccomp filter".into(),
                    source: e,
                })?;
                drop(writer);
                cmd.arg("--seccomp").arg(reader.as_raw_fd().to_string());
                filter = Some(OwnedFd::from(reader));
            }
        }
        // The lifeline's read end goes in at a small fixed number (`/bin/sh` redirects only
        // single-digit descriptors), away from the filter's.
        let filter_fd = filter.as_ref().map(AsRawFd::as_raw_fd);
        let slot = LIFELINE_SLOTS
            .into_iter()
            .find(|n| Some(*n) != filter_fd)
            .unwrap_or(LIFELINE_SLOTS[0]);
        let lifeline = self
            .lifeline
            .read
            .try_clone()
            .map_err(|e| SandboxError::Io {
                context: "cannot pass the sandbox's lifeline".into(),
                source: e,
            })?;
        cmd.arg("--chdir").arg(&self.workspace).arg("--");
        match run {
            Run::Program(program, args) => {
                let script = format!("{} exec \"$@\"", lifeline_prefix(slot));
                cmd.args(["/bin/sh", "-c", &script, "nanna-lifeline"])
                    .arg(program)
                    .args(args);
            }
            Run::Shell(script) => {
                // `$0` is `sh`, as with `sh -c`; the script's own line 1 is the line the
                // lifeline is on, so error messages keep their line numbers.
                let script = format!("{} {script}", lifeline_prefix(slot));
                cmd.args(["/bin/sh", "-c", &script, "sh"]);
            }
        }
        cmd.current_dir(&self.workspace);
        // The scrubbed environment is bubblewrap's, which passes it on to the command.
        cmd.env_clear()
            .envs(env)
            .env("TMPDIR", tmp_value(self.policy.mode, self.tmp.path()));
        let mut keep = vec![(lifeline, slot)];
        if let Some(fd) = filter {
            let at = fd.as_raw_fd();
            keep.push((fd, at));
        }
        die_with(&mut cmd, parent);
        pass_fds(&mut cmd, keep);
        Ok(cmd)
    }
}

/// `TMPDIR` as the command sees it.
fn tmp_value(mode: SandboxMode, host_tmp: &Path) -> OsString {
    match mode {
        SandboxMode::Full => host_tmp.as_os_str().to_owned(),
        _ => OsString::from(SANDBOX_TMP),
    }
}

fn bind(cmd: &mut Command, flag: &str, path: &Path) {
    cmd.arg(flag).arg(path).arg(path);
}

/// How [`git_protections`] mounts a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum GitMount {
    /// Writable, but a mount point: it cannot be renamed away and replaced.
    Bind,
    /// Read-only.
    ReadOnly,
    /// An empty read-only directory where git would look for one that does not exist yet
    /// (bubblewrap creates the mount point, an empty directory, on the host).
    EmptyReadOnly,
}

impl GitMount {
    fn apply(self, cmd: &mut Command, path: &Path) {
        match self {
            GitMount::Bind => bind(cmd, "--bind", path),
            GitMount::ReadOnly => bind(cmd, "--ro-bind", path),
            GitMount::EmptyReadOnly => {
                cmd.arg("--tmpfs").arg(path).arg("--remount-ro").arg(path);
            }
        }
    }
}

/// Most git directories protected per command (submodules included): each costs a mount.
const MAX_GIT_DIRS: usize = 64;

/// Binds that keep git from running code the command planted: in every git directory of
/// the workspace (`.git`, the git dir a `.git` file names when it lies in the workspace,
/// and the submodules' under `modules/`), `hooks` and `config` read-only, and the directory
/// itself a mount point so it cannot be renamed away and replaced (measured: without that
/// bind, `mv .git .git2` succeeds inside the sandbox). A missing `hooks` directory gets an
/// empty read-only one (measured: without it, `mkdir .git/hooks` and a planted
/// `pre-commit` ran at the user's next commit); a submodule's config is read by a plain
/// `git status` in the superproject (measured: a `core.fsmonitor` planted in
/// `.git/modules/sub/config` ran). For a `.git` file (worktree, submodule checkout) the
/// file itself is read-only, so it cannot be pointed elsewhere.
fn git_protections(workspace: &Path) -> Vec<(GitMount, PathBuf)> {
    let mut out = Vec::new();
    let dot_git = workspace.join(".git");
    let Ok(meta) = std::fs::symlink_metadata(&dot_git) else {
        return out;
    };
    let git_dir = if meta.is_dir() {
        Some(dot_git)
    } else if meta.is_file() {
        out.push((GitMount::ReadOnly, dot_git.clone()));
        std::fs::read_to_string(&dot_git)
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("gitdir:"))
                    .map(|p| workspace.join(p.trim()))
            })
            .and_then(|p| std::fs::canonicalize(p).ok())
            .filter(|p| p.starts_with(workspace) && p.is_dir())
    } else {
        None
    };
    let mut budget = MAX_GIT_DIRS;
    if let Some(dir) = git_dir {
        protect_git_dir(workspace, &dir, &mut out, &mut budget, 0);
    }
    out
}

/// Protects one git directory, then the submodules' below its `modules/`. The directory and
/// every directory between it and the workspace become mount points: a mount point cannot
/// be renamed, while a directory holding one can (measured: `mv .git/modules .git/m2`, then a
/// writable copy put back as `.git/modules`, undid the protection of the submodules).
fn protect_git_dir(
    workspace: &Path,
    dir: &Path,
    out: &mut Vec<(GitMount, PathBuf)>,
    budget: &mut usize,
    depth: usize,
) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    let between: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(workspace) && *a != workspace)
        .collect();
    for ancestor in between.into_iter().rev() {
        let entry = (GitMount::Bind, ancestor.to_path_buf());
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    out.push((GitMount::Bind, dir.to_path_buf()));
    let hooks = dir.join("hooks");
    match std::fs::symlink_metadata(&hooks) {
        Ok(m) if m.is_dir() => out.push((GitMount::ReadOnly, hooks)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            out.push((GitMount::EmptyReadOnly, hooks));
        }
        _ => {}
    }
    let config = dir.join("config");
    if std::fs::symlink_metadata(&config).is_ok_and(|m| m.is_file()) {
        out.push((GitMount::ReadOnly, config));
    }
    find_module_dirs(workspace, &dir.join("modules"), out, budget, depth);
}

/// Submodules' git directories below `modules` (a name may hold slashes, so a directory
/// without `HEAD` is searched further), to a bounded depth.
fn find_module_dirs(
    workspace: &Path,
    modules: &Path,
    out: &mut Vec<(GitMount, PathBuf)>,
    budget: &mut usize,
    depth: usize,
) {
    if depth >= 4 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(modules) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        if path.join("HEAD").is_file() {
            protect_git_dir(workspace, &path, out, budget, depth + 1);
        } else {
            find_module_dirs(workspace, &path, out, budget, depth + 1);
        }
    }
}

/// Makes `fd` survive into the spawned program (everything else stays close-on-exec); the
/// descriptor stays open in this process until `cmd` is dropped.
pub(crate) fn inherit_fd(cmd: &mut Command, fd: OwnedFd) {
    let at = fd.as_raw_fd();
    die_with(cmd, std::process::id());
    pass_fds(cmd, vec![(fd, at)]);
}

/// Where a command's watcher finds the lifeline, first choice first; any but the seccomp
/// filter's number.
const LIFELINE_SLOTS: [RawFd; 2] = [9, 8];

/// The `/bin/sh -c` script every sandboxed command starts behind (`$@` is the command):
/// a detached watcher blocks reading the lifeline at descriptor `slot`, which only nanna
/// could write; at end of file it kills every process of the PID namespace but itself and
/// bubblewrap's init (`kill -1`, confined to the namespace), and the command's end ends the
/// namespace. The command itself gets neither the descriptor nor the watcher as a child,
/// and the watcher holds none of the command's standard streams (a reader waiting for their
/// end of file must not wait for it; measured: its "No such process" reached the output).
fn lifeline_prefix(slot: RawFd) -> String {
    format!(
        "( (read -r _ <&{slot}; kill -s KILL -- -1) </dev/null >/dev/null 2>&1 & ); \
         exec {slot}<&-;"
    )
}

/// In the child, before `exec`: asks for SIGKILL when this process dies (and gives up if it
/// already has) and marks every descriptor above standard error close-on-exec. Descriptors
/// nanna inherited without close-on-exec (from a shell, an editor, a CI runner) would
/// otherwise pass through bubblewrap into the command: a file opened for writing outside the
/// workspace stayed writable from `read-only` (measured). Descriptors the command needs are
/// added afterwards by [`pass_fds`] (pre-exec hooks run in the order they were added).
fn die_with(cmd: &mut Command, parent: u32) {
    // SAFETY: the closure calls only async-signal-safe functions (prctl, getppid, syscall,
    // getrlimit, fcntl) and allocates nothing, as required between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other(
                    "nanna exited while starting the command",
                ));
            }
            cloexec_from(3);
            Ok(())
        });
    }
}

/// In the child, before `exec`, after [`die_with`]: each `(fd, at)` is made available to the
/// program at descriptor number `at` (moved there with `dup2`, or kept where it is), without
/// close-on-exec. The descriptors stay open in this process until `cmd` is dropped.
fn pass_fds(cmd: &mut Command, keep: Vec<(OwnedFd, RawFd)>) {
    // SAFETY: only dup2 and fcntl, async-signal-safe, no allocation. Targets are distinct
    // small numbers chosen away from every source (see `LIFELINE_SLOTS`), so no move
    // overwrites a descriptor another one still needs.
    unsafe {
        cmd.pre_exec(move || {
            for (fd, at) in &keep {
                let from = fd.as_raw_fd();
                let result = if from == *at {
                    libc::fcntl(from, libc::F_SETFD, 0)
                } else {
                    libc::dup2(from, *at)
                };
                if result < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Marks every descriptor from `first` on close-on-exec: one `close_range` (Linux 5.11),
/// else one `fcntl` per possible descriptor. Async-signal-safe.
///
/// # Safety
/// Only between fork and exec (it changes descriptors the process may still use).
unsafe fn cloexec_from(first: u32) {
    // SAFETY: plain system calls on descriptor numbers; an unused number fails harmlessly.
    unsafe {
        let flags = libc::CLOSE_RANGE_CLOEXEC as libc::c_ulong;
        if libc::syscall(libc::SYS_close_range, first, u32::MAX, flags) == 0 {
            return;
        }
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 20) as i32
        } else {
            1024
        };
        for fd in first as i32..max {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn unsupported_modes_are_refused_and_full_runs_plain() {
        let ws = tempfile::tempdir().unwrap();
        let support = Arc::new(Support::unsupported("forced for a test"));
        for mode in [SandboxMode::ReadOnly, SandboxMode::WorkspaceWrite] {
            let sb = Sandbox::with_support(Policy::new(mode), ws.path(), support.clone()).unwrap();
            let err = sb.command("true", ["x"]).unwrap_err().to_string();
            assert!(err.contains("forced for a test"), "{err}");
            assert!(err.contains(mode.as_str()), "{err}");
        }
        let sb = Sandbox::with_support(Policy::new(SandboxMode::Full), ws.path(), support).unwrap();
        let cmd = sb.command("true", ["x"]).unwrap();
        assert_eq!(cmd.get_program(), "true");
        assert_eq!(args(&cmd), ["x"]);
    }

    #[test]
    fn a_bubblewrap_inside_the_workspace_is_never_run() {
        let ws = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(ws.path()).unwrap();
        let fake = root.join("bin/bwrap");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(&fake, "#!/bin/sh\necho 'bubblewrap 0.8.0'\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let support = Arc::new(Support::detect(Some(&fake)));
        let sb = Sandbox::with_support(
            Policy::new(SandboxMode::WorkspaceWrite),
            &root,
            support.clone(),
        )
        .unwrap();
        let err = sb.check().unwrap_err().to_string();
        assert!(err.contains("inside the workspace"), "{err}");
        assert!(sb.command("true", ["x"]).is_err());
        let sb = Sandbox::with_support(Policy::new(SandboxMode::Full), &root, support).unwrap();
        assert_eq!(sb.command("true", ["x"]).unwrap().get_program(), "true");
    }

    #[test]
    fn git_protections_cover_hooks_config_and_the_directory() {
        use GitMount::*;
        let ws = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(ws.path()).unwrap();
        assert!(git_protections(&root).is_empty());
        std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
        std::fs::write(root.join(".git/config"), "").unwrap();
        let got = git_protections(&root);
        assert_eq!(
            got,
            vec![
                (Bind, root.join(".git")),
                (ReadOnly, root.join(".git/hooks")),
                (ReadOnly, root.join(".git/config")),
            ]
        );
        // A worktree's `.git` file: the file itself, and its git dir inside the workspace.
        let wt = root.join("wt");
        std::fs::create_dir_all(wt.join("modules/wt/hooks")).unwrap();
        std::fs::write(wt.join(".git"), "gitdir: modules/wt\n").unwrap();
        let got = git_protections(&wt);
        assert_eq!(
            got,
            vec![
                (ReadOnly, wt.join(".git")),
                (Bind, wt.join("modules")),
                (Bind, wt.join("modules/wt")),
                (ReadOnly, wt.join("modules/wt/hooks")),
            ]
        );
        // Outside the workspace, the git dir is read-only anyway: only the file is bound.
        std::fs::write(wt.join(".git"), "gitdir: ../.git\n").unwrap();
        assert_eq!(git_protections(&wt), vec![(ReadOnly, wt.join(".git"))]);
    }

    #[test]
    fn git_protections_cover_a_missing_hooks_directory_and_submodules() {
        use GitMount::*;
        let ws = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(ws.path()).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/config"), "").unwrap();
        // A submodule named `libs/a` (its git dir nests) and one without hooks.
        for sub in ["libs/a", "b"] {
            let dir = root.join(".git/modules").join(sub);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("HEAD"), "ref: refs/heads/main\n").unwrap();
            std::fs::write(dir.join("config"), "").unwrap();
        }
        std::fs::create_dir_all(root.join(".git/modules/libs/a/hooks")).unwrap();
        let mut got = git_protections(&root);
        got.sort();
        let mut want = vec![
            (Bind, root.join(".git")),
            (EmptyReadOnly, root.join(".git/hooks")),
            (ReadOnly, root.join(".git/config")),
            (Bind, root.join(".git/modules")),
            (Bind, root.join(".git/modules/libs")),
            (Bind, root.join(".git/modules/b")),
            (EmptyReadOnly, root.join(".git/modules/b/hooks")),
            (ReadOnly, root.join(".git/modules/b/config")),
            (Bind, root.join(".git/modules/libs/a")),
            (ReadOnly, root.join(".git/modules/libs/a/hooks")),
            (ReadOnly, root.join(".git/modules/libs/a/config")),
        ];
        want.sort();
        assert_eq!(got, want);
    }
}

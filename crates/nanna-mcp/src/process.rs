//! Starting a stdio server as a child process nanna can always take down, with its stderr
//! kept for error messages.
//!
//! The child leads a new process group, so the servers that are launchers (`npx`, `uvx`,
//! shell wrappers) and the processes they start are stopped together with `killpg`. The
//! child also gets `PR_SET_PDEATHSIG = SIGKILL` (prctl(2)), so it dies with nanna even when
//! nanna itself is killed without a chance to clean up. Every live group is also killed by
//! an `atexit(3)` handler, so a `std::process::exit` (the second Ctrl-C) leaves no server
//! or server's child behind either.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{ChildStderr, Command};

/// Environment variables a stdio server inherits besides those its table names: the set
/// Codex passes (`DEFAULT_ENV_VARS` in `codex-rs/rmcp-client/src/utils.rs`). Everything else
/// (API keys, tokens) stays out of third-party servers unless listed in `env_vars`.
pub(crate) const INHERITED_ENV_VARS: &[&str] = &[
    "HOME", "LOGNAME", "PATH", "SHELL", "USER", "LANG", "LC_ALL", "TERM", "TMPDIR", "TZ",
];

/// Lines of stderr kept per server.
const TAIL_LINES: usize = 20;
/// Bytes kept of one stderr line.
const TAIL_LINE_BYTES: usize = 400;

/// The command for a stdio server: its environment scrubbed to [`INHERITED_ENV_VARS`] plus
/// `env_vars` plus `env` (Codex's rule), working in `cwd`, leading its own process group.
pub(crate) fn command(
    program: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    env_vars: &[String],
    cwd: &Path,
) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in INHERITED_ENV_VARS
        .iter()
        .copied()
        .chain(env_vars.iter().map(String::as_str))
    {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.envs(env);
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Process groups of the stdio servers still running in this process.
static LIVE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Records a server's process group, to be killed at exit if nothing else stops it.
pub(crate) fn track_group(pgid: i32) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registering a plain `extern "C" fn` with atexit(3).
        unsafe {
            libc::atexit(kill_live_groups);
        }
    });
    if let Ok(mut groups) = LIVE_GROUPS.lock() {
        groups.push(pgid);
    }
}

extern "C" fn kill_live_groups() {
    if let Ok(groups) = LIVE_GROUPS.try_lock() {
        for &pgid in groups.iter() {
            signal_group(pgid);
        }
    }
}

/// Sends SIGKILL to process group `pgid` and forgets it; a group that is already gone is
/// fine.
pub(crate) fn kill_group(pgid: i32) {
    signal_group(pgid);
    if let Ok(mut groups) = LIVE_GROUPS.lock() {
        groups.retain(|&g| g != pgid);
    }
}

fn signal_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: killpg has no memory-safety preconditions.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// The last lines a server wrote to stderr.
#[derive(Debug, Clone, Default)]
pub(crate) struct StderrTail {
    inner: Arc<Mutex<Tail>>,
}

#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<String>,
    closed: bool,
}

impl StderrTail {
    /// Reads `stderr` until it closes, keeping the last lines.
    pub(crate) fn collect(&self, stderr: ChildStderr) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let mut line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                        if line.len() > TAIL_LINE_BYTES {
                            let mut end = TAIL_LINE_BYTES;
                            while !line.is_char_boundary(end) {
                                end -= 1;
                            }
                            line.truncate(end);
                            line.push('…');
                        }
                        let Ok(mut tail) = inner.lock() else { break };
                        if tail.lines.len() == TAIL_LINES {
                            tail.lines.pop_front();
                        }
                        tail.lines.push_back(line);
                    }
                }
            }
            if let Ok(mut tail) = inner.lock() {
                tail.closed = true;
            }
        });
    }

    /// The kept lines, after waiting up to `wait` for the stream to close (a process that
    /// just died may still have lines in the pipe).
    pub(crate) async fn text(&self, wait: Duration) -> String {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let closed = self.inner.lock().map(|t| t.closed).unwrap_or(true);
            if closed || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.inner
            .lock()
            .map(|t| t.lines.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

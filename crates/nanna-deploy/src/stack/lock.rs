//! One writer per stack. Two layers, because two runs can meet in two ways:
//!
//! - on this host: an advisory lock (`flock`) on a file in the user's runtime directory, per
//!   engine address and stack. The kernel releases it when the process dies, so it is never
//!   stale.
//! - on the engine (another user, another host, another socket path to the same engine): a
//!   claim, a volume `nanna-<stack>-claim` whose label names its holder. Creating a volume of
//!   an existing name returns the existing volume on both engines (moby
//!   `volume/service/store.go`, `VolumeStore.create`; Podman's compat handler does the same),
//!   so the label read back says who won. A claim whose holder was a process on this host
//!   that is gone is stale and taken over.
//!
//! A run that only reads (a no-op `up`, `status`, `logs`) takes neither.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::models::VolumeCreateRequest;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::state;
use super::{StackContext, StackError};
use crate::event::DeployEvent;

/// Label on the claim volume holding its [`Holder`] as JSON.
pub const LABEL_CLAIM: &str = "dev.nanna.claim";
/// How long a run waits for another by default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(50);

/// Who holds a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Holder {
    host: String,
    pid: u32,
    /// Start time of the process in clock ticks since boot (`/proc/PID/stat` field 22), to
    /// tell a live holder from a reused pid.
    start: u64,
    command: String,
    /// Seconds since the epoch.
    since: u64,
    /// This claim among the claims of one process (a library user may run several).
    #[serde(default)]
    token: String,
}

/// Claims this process holds now, by token: a claim naming this process but none of these
/// was left by a run of this process that could not release it (its engine died).
static ACTIVE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn active() -> std::sync::MutexGuard<'static, Vec<String>> {
    ACTIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Holder {
    fn me(command: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let pid = std::process::id();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            host: hostname(),
            pid,
            start: process_start(pid).unwrap_or(0),
            command: command.to_string(),
            since: now.as_secs(),
            token: format!(
                "{pid}-{}-{}",
                now.as_nanos(),
                COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
        }
    }

    fn describe(&self) -> String {
        let since = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.since));
        format!(
            "pid {} (`nanna-deploy {}`) on {} since {since}",
            self.pid, self.command, self.host
        )
    }

    /// Whether the holder was a process on this host that no longer runs, or a run of this
    /// process that has ended.
    fn is_gone(&self) -> bool {
        if self.host != hostname() {
            return false;
        }
        if process_start(self.pid) != Some(self.start) {
            return true;
        }
        self.pid == std::process::id() && !active().contains(&self.token)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses).
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The writer lock of one stack on one engine; release it with [`WriterLock::release`].
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
    /// The lock file, removed (while still locked) on release, so none pile up.
    path: PathBuf,
    /// The claim volume and its token, once claimed.
    claim: Option<(String, String)>,
    command: String,
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        if let Some((_, token)) = &self.claim {
            active().retain(|t| t != token);
        }
        // Still locked here (the file closes after this): a waiter that locks the removed
        // file sees it is gone and opens the path again.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where the lock files live: `$XDG_RUNTIME_DIR/nanna-deploy`, else `/run/nanna-deploy` for
/// root, else a directory of the user's own in the temporary directory.
fn lock_dir(ctx: &StackContext<'_>) -> PathBuf {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    match &ctx.env.xdg_runtime_dir {
        Some(dir) => dir.join("nanna-deploy"),
        None if uid == 0 => PathBuf::from("/run/nanna-deploy"),
        None => std::env::temp_dir().join(format!("nanna-deploy-{uid}")),
    }
}

fn open_lock_file(ctx: &StackContext<'_>, stack: &str) -> Result<(File, PathBuf), StackError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
    let dir = lock_dir(ctx);
    let io = |what: String| move |source| StackError::Io { what, source };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io(format!("create the lock directory {}", dir.display())))?;
    // In a shared temporary directory, refuse a directory someone else planted.
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(io(format!("inspect the lock directory {}", dir.display())))?;
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    if !meta.is_dir() || meta.uid() != uid {
        return Err(StackError::Io {
            what: format!("use the lock directory {}", dir.display()),
            source: std::io::Error::other("it is not a directory owned by this user"),
        });
    }
    let engine = Sha256::digest(ctx.engine.socket.as_bytes());
    let key: String = engine.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("{stack}@{key}.lock"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o600)
        .open(&path)
        .map_err(io(format!("open the lock file {}", path.display())))?;
    Ok((file, path))
}

/// Whether `file` is still the file at `path` (a holder removes the file when it releases,
/// so a lock taken on a removed file is worth nothing: open again).
fn still_there(file: &File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(held), Ok(named)) => held.ino() == named.ino() && held.dev() == named.dev(),
        _ => false,
    }
}

impl WriterLock {
    /// Takes the local lock of `stack` on the context's engine, waiting up to `wait` (and
    /// saying so) while another run holds it.
    pub(crate) async fn acquire(
        ctx: &StackContext<'_>,
        stack: &str,
        command: &str,
        wait: Duration,
    ) -> Result<Self, StackError> {
        let (mut file, mut path) = open_lock_file(ctx, stack)?;
        let start = Instant::now();
        let mut announced = false;
        loop {
            match file.try_lock() {
                Ok(()) if still_there(&file, &path) => break,
                Ok(()) => {
                    (file, path) = open_lock_file(ctx, stack)?;
                    continue;
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(StackError::Io {
                        what: "lock the stack".to_string(),
                        source,
                    });
                }
            }
            let holder = read_holder(&mut file);
            if !announced {
                ctx.events.report(DeployEvent::LockWait {
                    stack: stack.to_string(),
                    holder: holder.clone(),
                });
                announced = true;
            }
            if start.elapsed() >= wait {
                return Err(StackError::Busy {
                    stack: stack.to_string(),
                    holder,
                    waited: wait,
                    unlock: None,
                });
            }
            tokio::select! {
                () = ctx.cancel.cancelled() => return Err(StackError::Interrupted),
                () = tokio::time::sleep(POLL) => {}
            }
        }
        let me = Holder::me(command);
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = file.write_all(me.describe().as_bytes());
        let _ = file.flush();
        Ok(Self {
            _file: file,
            path,
            claim: None,
            command: command.to_string(),
        })
    }

    /// Claims the stack on the engine too (see the module docs), waiting up to `wait`.
    pub(crate) async fn claim(
        &mut self,
        ctx: &StackContext<'_>,
        stack: &str,
        wait: Duration,
    ) -> Result<(), StackError> {
        if self.claim.is_some() {
            return Ok(());
        }
        let engine = ctx.engine;
        let name = format!("nanna-{stack}-claim");
        let me = Holder::me(&self.command);
        let mine = serde_json::to_string(&me).unwrap_or_default();
        let labels = std::collections::HashMap::from([
            (super::spec::LABEL_STACK.to_string(), stack.to_string()),
            (super::spec::LABEL_OBJECT.to_string(), "claim".to_string()),
            (LABEL_CLAIM.to_string(), mine.clone()),
        ]);
        let start = Instant::now();
        let mut announced = false;
        loop {
            let created = engine
                .client
                .create_volume(VolumeCreateRequest {
                    name: Some(name.clone()),
                    labels: Some(labels.clone()),
                    ..Default::default()
                })
                .await;
            let holder_text = match created {
                Ok(volume) if volume.labels.contains_key(LABEL_CLAIM) => {
                    volume.labels.get(LABEL_CLAIM).cloned()
                }
                Ok(_) => engine
                    .client
                    .inspect_volume(&name)
                    .await
                    .ok()
                    .and_then(|v| v.labels.get(LABEL_CLAIM).cloned()),
                Err(error) if super::error::is_conflict(&error) => engine
                    .client
                    .inspect_volume(&name)
                    .await
                    .ok()
                    .and_then(|v| v.labels.get(LABEL_CLAIM).cloned()),
                Err(error) => {
                    return Err(StackError::engine_call(
                        engine,
                        format!("claim the stack (create volume {name})"),
                        &error,
                    ));
                }
            };
            if holder_text.as_deref() == Some(mine.as_str()) {
                active().push(me.token.clone());
                self.claim = Some((name, me.token.clone()));
                return Ok(());
            }
            let holder: Option<Holder> = holder_text
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok());
            // A holder on this host that has ended (killed before it could release), or a
            // claim whose label the engine lost (it died before writing it down).
            if holder.as_ref().is_none_or(Holder::is_gone) {
                state::remove_volume(engine, &name).await?;
                continue;
            }
            let described = holder
                .as_ref()
                .map_or_else(|| "an unknown process".to_string(), Holder::describe);
            if !announced {
                ctx.events.report(DeployEvent::LockWait {
                    stack: stack.to_string(),
                    holder: described.clone(),
                });
                announced = true;
            }
            if start.elapsed() >= wait {
                return Err(StackError::Busy {
                    stack: stack.to_string(),
                    holder: described,
                    waited: wait,
                    unlock: Some(format!("{} volume rm {name}", engine.kind.as_str())),
                });
            }
            tokio::select! {
                () = ctx.cancel.cancelled() => return Err(StackError::Interrupted),
                () = tokio::time::sleep(POLL * 2) => {}
            }
        }
    }

    /// Gives the claim back (the local lock goes with the value).
    pub(crate) async fn release(self, ctx: &StackContext<'_>) {
        if let Some((name, _)) = &self.claim {
            let _ = state::remove_volume(ctx.engine, name).await;
        }
    }
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut text);
    let text = text.trim();
    if text.is_empty() {
        "another nanna-deploy on this host".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_pid_is_gone() {
        let me = Holder::me("up");
        active().push(me.token.clone());
        assert!(!me.is_gone());
        active().retain(|t| t != &me.token);
        assert!(me.is_gone(), "a run of this process that ended");
        let mut dead = me.clone();
        dead.start += 1;
        assert!(dead.is_gone(), "a reused pid is not the holder");
        let mut elsewhere = dead.clone();
        elsewhere.host = "another-host".to_string();
        assert!(
            !elsewhere.is_gone(),
            "a holder on another host cannot be checked"
        );
        assert!(me.describe().contains("nanna-deploy up"));
    }
}

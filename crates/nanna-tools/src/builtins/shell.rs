//! `shell`: runs `sh -c` in the workspace through the session's sandbox, in its own process
//! group, bounded in time and output.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use nanna_model::{JsonSchema, SchemaType, ToolDefinition};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::Command;

use super::{bare, params, required_str, uint_arg};
use crate::context::ToolContext;
use crate::error::ToolError;
use crate::output::{HeadTail, cut_line};
use crate::tool::{Effect, Tool, ToolOutput};

/// Largest `timeout_secs` a call may ask for.
const MAX_TIMEOUT_SECS: u64 = 600;
/// How long to keep reading output after the command ends (from processes that left the
/// process group but still hold the pipe).
const DRAIN_GRACE: Duration = Duration::from_millis(300);
/// Bytes of `max_output_bytes` kept free for what follows the output: the exit status, or
/// the timeout message with its hint.
const STATUS_ROOM: usize = 512;

/// Runs a shell command.
pub(crate) struct Shell {
    def: ToolDefinition,
}

impl Shell {
    pub(crate) fn new() -> Self {
        Self {
            def: ToolDefinition::function(
                "shell",
                "Run a command with sh -c in the workspace, sandboxed; returns output and exit \
                 code. Background processes end with it.",
                params(vec![
                    ("command", bare(SchemaType::String), true),
                    (
                        "timeout_secs",
                        JsonSchema::integer("Default 120")
                            .range(Some(1.0), Some(MAX_TIMEOUT_SECS as f64)),
                        false,
                    ),
                ]),
            ),
        }
    }
}

/// How a command run ended.
enum Ending {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
}

#[async_trait]
impl Tool for Shell {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }

    fn effect(&self) -> Effect {
        Effect::Exec
    }

    fn describe(&self, args: &Value) -> String {
        format!(
            "shell {}",
            one_line(super::str_arg(args, "command").unwrap_or("?"))
        )
    }

    async fn execute(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let command = required_str(&args, "shell", "command")?;
        let timeout = uint_arg(&args, "timeout_secs")
            .map(|s| Duration::from_secs(s.clamp(1, MAX_TIMEOUT_SECS)))
            .unwrap_or(ctx.limits.shell_timeout);
        let spawn_err = |e: std::io::Error| ToolError::Failed(format!("could not start sh: {e}"));

        // One pipe for stdout and stderr, so the output interleaves as in a terminal.
        let (sender, mut output) = pipe::pipe().map_err(spawn_err)?;
        let writer: OwnedFd = sender.into_blocking_fd().map_err(spawn_err)?;
        // The sandbox refuses (never runs unconfined) when the kernel cannot enforce the mode.
        let sandboxed = ctx.sandbox.shell(command).map_err(|e| {
            ToolError::Failed(format!(
                "refused: {e}. Do not retry shell; tell the user what you would run"
            ))
        })?;
        let mut cmd = Command::from(sandboxed);
        cmd.stdin(Stdio::null())
            .stdout(writer.try_clone().map_err(spawn_err)?)
            .stderr(writer)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_PAGER", "cat")
            .env("PAGER", "cat")
            .env("NO_COLOR", "1")
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(spawn_err)?;
        // The command holds our copies of the pipe's write end: drop them so EOF can come.
        drop(cmd);
        // Kills the group if this future is dropped mid-run (e.g. the caller's task aborted).
        let mut group = GroupGuard(child.id().map(|id| id as libc::pid_t));

        let mut collected = HeadTail::new(
            ctx.limits
                .max_output_bytes
                .saturating_sub(STATUS_ROOM)
                .max(256),
        );
        let mut chunk = vec![0u8; 16 * 1024];
        let mut eof = false;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let ending = loop {
            tokio::select! {
                read = output.read(&mut chunk), if !eof => match read {
                    Ok(0) | Err(_) => eof = true,
                    Ok(n) => collected.push(&chunk[..n]),
                },
                status = child.wait() => match status {
                    Ok(status) => break Ending::Exited(status),
                    Err(e) => return Err(ToolError::Failed(format!("waiting for sh failed: {e}"))),
                },
                () = &mut deadline => break Ending::TimedOut,
                () = ctx.cancel.cancelled() => break Ending::Cancelled,
            }
        };
        // Whatever remains of the group (background jobs, or everything on timeout/cancel).
        group.kill();
        if !matches!(ending, Ending::Exited(_)) {
            let _ = child.wait().await;
        }
        // Read what is left in the pipe; stop early if a process that left the group
        // still holds it open.
        let drain = async {
            while !eof {
                match output.read(&mut chunk).await {
                    Ok(0) | Err(_) => eof = true,
                    Ok(n) => collected.push(&chunk[..n]),
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_GRACE, drain).await;

        let mut content = collected.render();
        let status = match ending {
            Ending::Exited(status) => status,
            Ending::TimedOut => {
                return Err(ToolError::Timeout {
                    after: timeout,
                    output: content,
                });
            }
            Ending::Cancelled => return Err(ToolError::Cancelled),
        };
        if content.is_empty() {
            content.push_str("(no output)");
        }
        if !content.ends_with('\n') {
            content.push('\n');
        }
        let (note, short) = match (status.code(), status.signal()) {
            (Some(code), _) => (format!("[exit code {code}]"), format!("exit {code}")),
            (None, Some(sig)) => (format!("[killed by signal {sig}]"), format!("signal {sig}")),
            (None, None) => ("[exit status unknown]".to_owned(), "exit ?".to_owned()),
        };
        content.push_str(&note);
        Ok(ToolOutput::new(
            content,
            format!("shell {} ({short})", one_line(command)),
        ))
    }
}

/// The process group of a running command; killed when dropped unless already killed.
struct GroupGuard(Option<libc::pid_t>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            kill_group(pgid);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends SIGKILL to every process of group `pgid`.
fn kill_group(pgid: libc::pid_t) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: `killpg` has no memory-safety preconditions; a group that no longer exists
    // yields ESRCH, which is fine to ignore.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// The first line of a command, cut for one-line display.
fn one_line(command: &str) -> String {
    let first = command.trim().lines().next().unwrap_or("");
    let cut = cut_line(first, 80);
    if command.trim().lines().nth(1).is_some() {
        format!("{cut} ...")
    } else {
        cut.into_owned()
    }
}

//! `nanna-deploy down` (`stop`).

use std::process::ExitCode;

use nanna_deploy::stack::{self, DownOptions, StackError};

use super::{Session, TargetArgs, locate, probe_env, secs};
use crate::render::Output;

/// Examples shown by `down --help`.
pub const HELP: &str = "Examples:
  nanna-deploy down
  nanna-deploy down --volumes      # also delete downloaded models
  nanna-deploy down --json | jq .containers

Each container gets SIGTERM, then SIGKILL after its grace: the model server's --stop-timeout
(default 2 s, or what `up` set), the assistant's 10 s; both stop at the same time.";

/// Arguments of `down`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Engine and stack.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Also remove the models volume.
    #[arg(long)]
    pub volumes: bool,
    /// Seconds the model server gets to exit after SIGTERM (default: what `up` set).
    #[arg(long, value_name = "SECS")]
    pub stop_timeout: Option<u32>,
}

/// Runs `down`. A signal does not stop it half-way (nothing to roll back); a second one does.
pub async fn run(args: Args, output: &Output, session: &Session) -> Result<ExitCode, StackError> {
    let env = probe_env(None);
    let engine = locate(session, args.target.engine.engine, &env, args.target.name()).await?;
    let mut ctx = session.context(&engine, &env, output);
    // Removing is finished even after a signal: cancel only the waits for a lock.
    ctx.cancel = tokio_util::sync::CancellationToken::new();
    let options = DownOptions {
        volumes: args.volumes,
        stop_timeout: args.stop_timeout,
        lock_wait: secs(args.target.waits.lock_timeout),
    };
    let report = stack::down(&ctx, args.target.name(), &options).await?;
    if output.is_json() {
        return Ok(output.result(&report));
    }
    let removed: Vec<String> = report
        .containers
        .iter()
        .map(|c| format!("container {c}"))
        .chain(report.pods.iter().map(|p| format!("pod {p}")))
        .chain(report.networks.iter().map(|n| format!("network {n}")))
        .chain(report.volumes.iter().map(|v| format!("volume {v}")))
        .collect();
    if removed.is_empty() {
        println!(
            "stack {} has nothing to remove on the {} engine at {}",
            args.target.name(),
            engine.kind.as_str(),
            engine.socket
        );
    } else {
        println!("removed {}", removed.join(", "));
    }
    if !report.kept_volumes.is_empty() {
        println!(
            "kept {} (models; remove with --volumes)",
            report.kept_volumes.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

//! `nanna-deploy restart`.

use std::process::ExitCode;

use nanna_deploy::stack::{self, StackError};
use serde_json::json;

use super::{Session, TargetArgs, locate, probe_env, secs};
use crate::render::Output;

/// Arguments of `restart`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Engine and stack.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Runs `restart`.
pub async fn run(args: Args, output: &Output, session: &Session) -> Result<ExitCode, StackError> {
    let env = probe_env(None);
    let engine = locate(session, args.target.engine.engine, &env, args.target.name()).await?;
    let ctx = session.context(&engine, &env, output);
    stack::restart(
        &ctx,
        args.target.name(),
        secs(args.target.waits.timeout),
        secs(args.target.waits.lock_timeout),
    )
    .await?;
    if output.is_json() {
        return Ok(output
            .result(&json!({ "stack": args.target.name(), "restarted": true, "healthy": true })));
    }
    println!("stack {} restarted and healthy", args.target.name());
    Ok(ExitCode::SUCCESS)
}

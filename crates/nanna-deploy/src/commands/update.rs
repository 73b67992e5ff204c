//! `nanna-deploy update`.

use std::path::PathBuf;
use std::process::ExitCode;

use nanna_deploy::stack::{self, StackError, StackSettings};

use super::{Session, TargetArgs, locate, probe_env};
use crate::render::Output;

/// Examples shown by `update --help`.
pub const HELP: &str = "Examples:
  nanna-deploy images build && nanna-deploy update
  nanna-deploy update --image-archive result   # after `nix build`";

/// Arguments of `update`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Engine and stack.
    #[command(flatten)]
    pub target: TargetArgs,
    /// docker-archive or OCI tarball to load first (repeatable).
    #[arg(long, value_name = "PATH")]
    pub image_archive: Vec<PathBuf>,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long a pull may take, in seconds.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub pull_timeout: u64,
}

/// Runs `update`.
pub async fn run(args: Args, output: &Output, session: &Session) -> Result<ExitCode, StackError> {
    let env = probe_env(None);
    // The stack's stored settings replace these; only the name matters here.
    let options = args.target.waits.up_options(
        StackSettings::new(args.target.name(), PathBuf::from("/")),
        &args.image_archive,
        args.dry_run,
        args.pull_timeout,
    );
    let engine = locate(session, args.target.engine.engine, &env, args.target.name()).await?;
    let ctx = session.context(&engine, &env, output);
    let report = stack::update(&ctx, args.target.name(), &options).await?;
    Ok(super::up::report_up(&report, output, args.dry_run))
}

//! `nanna-deploy detect`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use nanna_deploy::detect::{self, DetectOptions};
use nanna_deploy::host::{HostRoot, ProbeEnv};
use nanna_deploy::stack::StackError;

use super::{EngineArg, GpuArg, Session, detect_text};
use crate::render::Output;

/// Arguments of `nanna-deploy detect`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:
  nanna-deploy detect                      # table, warnings and what to run
  nanna-deploy detect --json | jq .recommendation
  nanna-deploy detect --no-engine          # GPUs only, no socket probe (fast)
  nanna-deploy detect --gpu amd            # fail (exit 1) unless an AMD GPU is usable
  nanna-deploy detect --engine podman      # only accept a Podman engine
  nanna-deploy detect --host-root /host    # inside a container with the host's / at /host

Exit codes: 0 detection done (warnings may remain), 1 error (forced --gpu/--engine unavailable, bad host root).
Debug logs: RUST_LOG=nanna_deploy=debug.")]
pub struct Args {
    /// GPU.
    #[command(flatten)]
    pub gpu: GpuArg,
    /// Container engine to look for.
    #[command(flatten)]
    pub engine: EngineArg,
    /// Directory holding the host's / (all file probes go below it).
    #[arg(long, env = "NANNA_HOST_ROOT", value_name = "DIR")]
    pub host_root: Option<PathBuf>,
    /// Do not probe container engine sockets.
    #[arg(long)]
    pub no_engine: bool,
    /// How long each engine socket may take to answer, in milliseconds.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub engine_timeout_ms: u64,
}

/// Runs `detect` and prints the result.
pub async fn run(args: Args, output: &Output, session: &Session) -> Result<ExitCode, StackError> {
    let mut env = ProbeEnv::from_process();
    if let Some(root) = &args.host_root {
        env.host_root = HostRoot::new(root);
    }
    env.engine_timeout = Duration::from_millis(args.engine_timeout_ms.max(1));
    let options = DetectOptions {
        gpu: args.gpu.gpu,
        engine: args.engine.engine,
        probe_engine: !args.no_engine,
    };
    let detection = session
        .interruptible(async { Ok(detect::detect(&env, &options).await?) })
        .await?;
    if output.is_json() {
        return Ok(output.result(&detection));
    }
    print!("{}", detect_text::render_text(&detection));
    Ok(ExitCode::SUCCESS)
}

//! Command-line front ends of the library (argument structs and runners); `main.rs` only
//! dispatches to them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::detect::{self, DetectOptions};
use crate::engine::EngineChoice;
use crate::host::{HostRoot, ProbeEnv};
use crate::recommend::GpuChoice;
use crate::report;

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
pub struct DetectArgs {
    /// Print JSON (schema: crates/nanna-deploy/README.md) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// GPU to use: auto picks the best usable one; forcing one the host lacks is an error.
    #[arg(
        long,
        value_enum,
        env = "GPU_SUPPORT",
        default_value = "auto",
        ignore_case = true
    )]
    pub gpu: GpuChoice,
    /// Container engine to look for.
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub engine: EngineChoice,
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

/// Runs `detect` and prints the result; returns the process exit code.
pub async fn run_detect(args: DetectArgs) -> ExitCode {
    let mut env = ProbeEnv::from_process();
    if let Some(root) = &args.host_root {
        env.host_root = HostRoot::new(root);
    }
    env.engine_timeout = Duration::from_millis(args.engine_timeout_ms.max(1));
    let options = DetectOptions {
        gpu: args.gpu,
        engine: args.engine,
        probe_engine: !args.no_engine,
    };
    match detect::detect(&env, &options).await {
        Ok(detection) => {
            if args.json {
                match serde_json::to_string_pretty(&detection) {
                    Ok(text) => println!("{text}"),
                    Err(error) => {
                        eprintln!("error: cannot serialise the detection: {error}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", report::render_text(&detection));
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

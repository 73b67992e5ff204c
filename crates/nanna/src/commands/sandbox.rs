//! `nanna sandbox [--mode M] [--network] -- CMD...`: runs one command exactly as the model's
//! commands run (same policy, environment scrubbing and lifetime), with this terminal's
//! standard input and output, and exits with its status.

use std::os::unix::process::ExitStatusExt;

use nanna_sandbox::Sandbox;

use crate::cli::SandboxArgs;
use crate::error::{CliError, EXIT_FAILURE, Result};
use crate::settings::Settings;

/// Runs `args.command` under `args.mode`.
pub fn run(settings: &Settings, args: &SandboxArgs) -> Result<()> {
    let workspace = crate::task::workspace_dir(args.workspace.as_ref())?;
    let policy = settings.sandbox_policy(args.mode)?;
    let sandbox = Sandbox::new(policy, &workspace).map_err(|e| CliError::Other(e.to_string()))?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| CliError::Config("no command given: put it after `--`".into()))?;
    let mut cmd = sandbox
        .command(program, rest)
        .map_err(|e| CliError::Other(format!("refused: {e}")))?;
    let status = cmd
        .status()
        .map_err(|e| CliError::io(format!("running `{program}`"), e))?;
    // The sandbox (and its temporary directory) goes away before the process exits.
    drop(sandbox);
    let code = match (status.code(), status.signal()) {
        (Some(0), _) => return Ok(()),
        (Some(code), _) => u8::try_from(code).unwrap_or(EXIT_FAILURE),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(EXIT_FAILURE),
        (None, None) => EXIT_FAILURE,
    };
    Err(CliError::Reported {
        message: format!("`{program}` exited with {status}"),
        code,
    })
}

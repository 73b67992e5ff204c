//! `nanna-deploy logs`.

use std::io::Write;
use std::process::ExitCode;

use nanna_deploy::stack::{self, LogLine, Service, StackError};

use super::{Session, TargetArgs, locate, probe_env};
use crate::render::Output;

/// Examples shown by `logs --help`.
pub const HELP: &str = "Examples:
  nanna-deploy logs ollama --tail 50
  nanna-deploy logs --follow
  nanna-deploy logs --json | jq -r 'select(.service == \"ollama\") | .line'";

/// Arguments of `logs`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Engine and stack.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Service (default: both, prefixed).
    #[arg(value_enum)]
    pub service: Option<Service>,
    /// Keep following.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
}

/// Runs `logs`: lines on stdout (`service  | line` for several services; one JSON object
/// per line with `--json`).
pub async fn run(args: Args, output: &Output, session: &Session) -> Result<ExitCode, StackError> {
    let env = probe_env(None);
    let engine = locate(session, args.target.engine.engine, &env, args.target.name()).await?;
    let ctx = session.context(&engine, &env, output);
    let prefix = args.service.is_none();
    let json = output.is_json();
    let mut stdout = std::io::stdout();
    let mut sink = |line: LogLine| {
        let _ = if json {
            match serde_json::to_string(&line) {
                Ok(text) => writeln!(stdout, "{text}"),
                Err(_) => Ok(()),
            }
        } else if prefix {
            writeln!(stdout, "{:<9}| {}", line.service.as_str(), line.line)
        } else {
            writeln!(stdout, "{}", line.line)
        };
        let _ = stdout.flush();
    };
    match stack::logs(
        &ctx,
        args.target.name(),
        args.service,
        args.follow,
        args.tail,
        &mut sink,
    )
    .await
    {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // Ctrl-C is how `logs --follow` ends: no error message, the usual 130.
        Err(error) if error.is_interrupted() => Ok(ExitCode::from(130)),
        Err(error) => Err(error),
    }
}

//! `nanna-deploy status`.

use std::process::ExitCode;

use nanna_deploy::stack::{self, StackError};

use super::{Session, TargetArgs, locate, probe_env};
use crate::render::Output;

/// Examples shown by `status --help`.
pub const HELP: &str = "Examples:
  nanna-deploy status
  nanna-deploy status --json | jq '.services[].health'

Exit code 0 when every object is there and every service is healthy, 1 otherwise (missing,
extra, stopped or unhealthy: the output says which).";

/// Arguments of `status`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Engine and stack.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Runs `status`.
pub async fn run(args: Args, output: &Output, session: &Session) -> Result<ExitCode, StackError> {
    let env = probe_env(None);
    let engine = locate(session, args.target.engine.engine, &env, args.target.name()).await?;
    let ctx = session.context(&engine, &env, output);
    let status = session
        .interruptible(stack::status(&ctx, args.target.name()))
        .await?;
    let code = if status.is_healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if output.is_json() {
        output.result(&status);
        return Ok(code);
    }
    println!(
        "stack {} on {} at {} ({})",
        status.stack,
        status.engine,
        status.address,
        status
            .pod
            .as_ref()
            .map(|p| format!("pod {p}"))
            .unwrap_or_else(|| if status.networks.is_empty() {
                "no network".to_string()
            } else {
                format!("network {}", status.networks.join(","))
            })
    );
    for s in &status.services {
        println!(
            "  {:<9} {:<8} {:<9} {} ports {} gpu {}{}{}",
            s.service.as_str(),
            s.state,
            s.health,
            if s.image.is_empty() { "-" } else { &s.image },
            if s.ports.is_empty() {
                s.url.clone().unwrap_or_else(|| "-".to_string())
            } else {
                s.ports.join(",")
            },
            if s.gpu.is_empty() { "-" } else { &s.gpu },
            if s.devices.is_empty() {
                String::new()
            } else {
                format!(" devices {}", s.devices.join(","))
            },
            s.health_detail
                .as_ref()
                .map(|d| format!("\n            {d}"))
                .unwrap_or_default()
        );
    }
    if !status.missing.is_empty() {
        println!(
            "  missing: {} (`nanna-deploy up` recreates them)",
            status.missing.join(", ")
        );
    }
    if !status.extra.is_empty() {
        println!(
            "  extra:   {} (`nanna-deploy up` removes what is not part of the stack)",
            status.extra.join(", ")
        );
    }
    Ok(code)
}

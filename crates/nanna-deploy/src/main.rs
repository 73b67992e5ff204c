//! `nanna-deploy`: the command-line dispatcher. Logic lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nanna_deploy::cli::{self, DetectArgs};
use tracing_subscriber::EnvFilter;

/// Deploy and inspect Nanna Coder's local model server.
#[derive(Debug, Parser)]
#[command(name = "nanna-deploy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Detect GPUs and the container engine, and say what the model server should run with.
    Detect(DetectArgs),
    /// The stack commands (up, down, restart, status, logs, update, shell, images).
    #[command(flatten)]
    Stack(nanna_deploy::stack::cli::StackCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Detect(args) => runtime.block_on(cli::run_detect(args)),
        Command::Stack(command) => runtime.block_on(nanna_deploy::stack::cli::run(command)),
    }
}

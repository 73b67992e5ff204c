//! `nanna`: the Nanna Coder command line. A thin layer over `nanna-agent`, `nanna-model`
//! and `nanna-tools`: parse flags, resolve settings, run a command, map the outcome to an
//! exit code.

mod approval;
mod cancel;
mod cli;
mod commands;
mod error;
mod mcp;
mod output;
mod render;
mod repl;
mod settings;
mod task;

use std::io::IsTerminal;
use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::{CliError, Result};
use crate::render::Style;
use crate::settings::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    init_logging();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !matches!(e, CliError::Reported { .. }) {
                let message = nanna_model::redact_urls(&e.to_string());
                eprintln!("{} {message}", Style::stderr().red("error:"));
            }
            e.exit_code()
        }
    }
}

/// Diagnostics through `tracing`, filtered by `RUST_LOG` (`RUST_LOG=warn`,
/// `RUST_LOG=nanna_model=debug`), written to stderr: stdout carries answers, `--json` events
/// and `nanna mcp-server`'s protocol. Unset (or unreadable), only errors show: what a user
/// must see is rendered by the commands themselves, and the libraries' warnings repeat it
/// (the agent's "could not read the model's details" is `nanna_model`'s warning too).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(Style::stderr().enabled())
        .init();
}

/// A single-threaded runtime: start-up cost and memory stay small, and nothing here
/// needs parallel CPU work.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io("starting the async runtime", e))
}

fn dispatch(cli: Cli) -> Result<()> {
    let global = cli.global;
    match cli.command {
        Command::Completions(args) => {
            // Generated into memory first: clap_complete panics when its writer fails (a
            // closed pipe), writing ourselves turns that into an error.
            let mut script = Vec::new();
            clap_complete::generate(
                args.shell,
                &mut Cli::command_with_settings(),
                "nanna",
                &mut script,
            );
            std::io::Write::write_all(&mut std::io::stdout().lock(), &script)
                .map_err(|e| CliError::io("writing the completion script", e))
        }
        Command::Tools(args) => {
            let settings = Settings::resolve(&global)?;
            // --no-mcp still reads the budget, but a broken [mcp_servers] does not stop it.
            let mcp = match settings.mcp() {
                Ok(config) => config,
                Err(_) if args.no_mcp => nanna_config::McpConfig::default(),
                Err(e) => return Err(e),
            };
            commands::tools::run(&args, settings.tools()?, &mcp)
        }
        Command::Mcp(args) => commands::mcp::run(&args, &global),
        Command::McpServer(args) => commands::mcp_server::run(&args, &global),
        Command::Sessions(args) => commands::sessions::run(&args),
        Command::Models(flag) => {
            let settings = Settings::resolve(&global)?;
            let provider = settings.provider();
            runtime()?.block_on(commands::models::run(provider.as_ref(), flag.json))
        }
        Command::Health(flag) => {
            let settings = Settings::resolve(&global)?;
            let provider = settings.provider();
            runtime()?.block_on(commands::health::run(
                provider.as_ref(),
                settings.model(),
                flag.json,
            ))
        }
        Command::Pull(args) => {
            let settings = Settings::resolve(&global)?;
            let provider = settings.provider();
            runtime()?.block_on(commands::pull::run(
                provider.as_ref(),
                &args.model,
                args.json,
            ))
        }
        Command::Serve(args) if args.check => {
            runtime()?.block_on(commands::serve::check(&args.listen))
        }
        Command::Serve(args) => {
            let settings = Settings::resolve(&global)?;
            let provider = settings.provider();
            let model = settings.model().to_owned();
            runtime()?.block_on(commands::serve::run(provider, model, &args.listen))
        }
        Command::Sandbox(args) => {
            let settings = Settings::resolve_with(&global, args.network)?;
            commands::sandbox::run(&settings, &args)
        }
        Command::Chat(args) => {
            let settings = Settings::resolve_with(&global, args.run.network)?;
            match args.prompt {
                Some(prompt) => task::run_once(&settings, &args.run, prompt, task::Mode::OneShot),
                None if std::io::stdin().is_terminal() => repl::run(&settings, &args.run),
                None => {
                    let input = task::read_stdin()?;
                    task::run_once(&settings, &args.run, input, task::Mode::OneShot)
                }
            }
        }
        Command::Exec(args) => {
            let settings = Settings::resolve_with(&global, args.run.network)?;
            let input = if args.task.is_empty() {
                task::read_stdin()?
            } else {
                args.task.join(" ")
            };
            let mode = if args.json {
                task::Mode::ExecJson
            } else {
                task::Mode::Exec
            };
            task::run_once(&settings, &args.run, input, mode)
        }
    }
}

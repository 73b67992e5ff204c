//! `nanna-deploy`: parses the command line, renders what the library reports (lines and
//! progress bars, or JSON with `--json`) and maps the outcome to an exit code. One module
//! per subcommand under `commands/`; the logic lives in the library.

mod commands;
mod render;
mod terminal;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::commands::Session;
use crate::render::Output;

/// Deploy and inspect Nanna Coder's local model server and assistant.
#[derive(Debug, Parser)]
#[command(
    name = "nanna-deploy",
    version,
    about,
    after_help = "Exit codes: 0 done, 1 error (or `status` of an incomplete or unhealthy stack), 2 bad usage, 130/143 interrupted by SIGINT/SIGTERM (after rolling back).
With --json: the result, or the error as {\"error\": {\"code\", \"message\", \"fix\"}}, is one JSON line on stdout; progress events are JSON lines on stderr."
)]
struct Cli {
    /// Print JSON: the result (or the error) as one line on stdout, events as JSON lines on
    /// stderr.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Detect GPUs and the container engine, and say what the model server should run with.
    Detect(commands::detect::Args),
    /// Start the stack (model server + assistant), or bring it in line with the flags.
    #[command(visible_alias = "start", after_help = commands::up::HELP)]
    Up(Box<commands::up::Args>),
    /// Remove the stack's containers, pod and network (and with --volumes its models).
    #[command(visible_alias = "stop", after_help = commands::down::HELP)]
    Down(commands::down::Args),
    /// Restart the stack's containers and wait until they answer.
    Restart(commands::restart::Args),
    /// Show each service's state, health, image, ports and GPU devices, and what is missing.
    #[command(after_help = commands::status::HELP)]
    Status(commands::status::Args),
    /// Print a service's logs (both services, prefixed, by default).
    #[command(after_help = commands::logs::HELP)]
    Logs(commands::logs::Args),
    /// Recreate only the services whose image or settings changed (models volume kept).
    #[command(after_help = commands::update::HELP)]
    Update(Box<commands::update::Args>),
    /// Open `nanna chat` (or CMD) inside a service's container.
    #[command(after_help = commands::shell::HELP)]
    Shell(commands::shell::Args),
    /// Write the stack `up` would run as Kubernetes manifests or a Compose file.
    #[command(after_help = commands::export::HELP)]
    Export(Box<commands::export::Args>),
    /// Load or build images.
    #[command(subcommand)]
    Images(commands::images::Command),
}

/// A command line clap refuses: its own message, or with `--json` the same as a JSON error
/// on stdout; exit 2 (0 for `--help` and `--version`).
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    let from_env = value_from_env(error);
    if informational || !std::env::args().any(|a| a == "--json") {
        let _ = error.print();
        if let Some(variable) = &from_env {
            eprintln!("note: the value comes from the environment variable {variable}");
        }
        return if informational {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        };
    }
    let message = error.render().to_string();
    let mut first = message
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    if let Some(variable) = &from_env {
        first.push_str(&format!(" (from the environment variable {variable})"));
    }
    let value = serde_json::json!({ "error": {
        "code": "usage",
        "message": first,
        "fix": "see `nanna-deploy --help` or `nanna-deploy COMMAND --help`",
    }});
    println!("{value}");
    ExitCode::from(2)
}

/// The environment variable an invalid value came from (`GPU_SUPPORT=bogus`), when the
/// flag itself is not on the command line: clap's message names only the flag.
fn value_from_env(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        error.get(ContextKind::InvalidArg),
        error.get(ContextKind::InvalidValue),
    ) else {
        return None;
    };
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    if std::env::args().any(|a| a == format!("--{long}") || a.starts_with(&format!("--{long}="))) {
        return None;
    }
    fn find(command: &clap::Command, long: &str) -> Option<String> {
        command
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_env())
            .map(|env| env.to_string_lossy().into_owned())
            .or_else(|| command.get_subcommands().find_map(|sub| find(sub, long)))
    }
    let variable = find(&Cli::command(), long)?;
    (std::env::var(&variable).ok().as_deref() == Some(value.as_str())).then_some(variable)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let output = Output::new(cli.json);
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
    runtime.block_on(async {
        let session = Session::start(&output);
        let result = match cli.command {
            Command::Detect(args) => commands::detect::run(args, &output, &session).await,
            Command::Up(args) => commands::up::run(*args, &output, &session).await,
            Command::Down(args) => commands::down::run(args, &output, &session).await,
            Command::Restart(args) => commands::restart::run(args, &output, &session).await,
            Command::Status(args) => commands::status::run(args, &output, &session).await,
            Command::Logs(args) => commands::logs::run(args, &output, &session).await,
            Command::Update(args) => commands::update::run(*args, &output, &session).await,
            Command::Shell(args) => commands::shell::run(args, &output, &session).await,
            Command::Export(args) => commands::export::run(*args, &output).await,
            Command::Images(command) => commands::images::run(command, &output, &session).await,
        };
        match result {
            Ok(code) => code,
            Err(error) => output.error(&error, session.failure_code(&error)),
        }
    })
}

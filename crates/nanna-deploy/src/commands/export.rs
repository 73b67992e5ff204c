//! `nanna-deploy export`: the stack `up` would run, as Kubernetes manifests or a Compose
//! file, to stdout or into a directory.

use std::path::PathBuf;
use std::process::ExitCode;

use nanna_deploy::engine::{EngineChoice, EngineKind};
use nanna_deploy::stack::StackError;
use nanna_deploy::stack::export::{self, ExportFormat, ExportOptions};

use super::probe_env;
use super::up::StackArgs;
use crate::render::Output;

/// Examples shown by `export --help`.
pub const HELP: &str = "Examples:
  nanna-deploy export --format compose > compose.yaml
  nanna-deploy export --format kubernetes --gpu nvidia --model qwen2.5-coder:7b -o deploy/
  nanna-deploy export --format compose --engine podman --gpu nvidia   # CDI for podman-compose

The flags describing the stack are `up`'s, with the same defaults: the export is the stack
`up` would run. --gpu auto detects this machine's GPU; naming a GPU this machine lacks
exports that GPU's recipe (for the machine that has it). -o DIR writes DIR/kubernetes.yaml
or DIR/compose.yaml whole or not at all, into a new or empty directory.";

/// Arguments of `export`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// What to render.
    #[arg(long, value_enum, ignore_case = true)]
    pub format: ExportFormat,
    /// Directory to write the file into (new or empty); default: stdout.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Engine a Compose file is for (auto: Docker's form; podman: NVIDIA as a CDI device).
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub engine: EngineChoice,
    /// What the stack is (`up`'s flags).
    #[command(flatten)]
    pub stack: StackArgs,
}

/// Runs `export`.
pub async fn run(args: Args, output: &Output) -> Result<ExitCode, StackError> {
    let env = probe_env(args.stack.host_root.as_ref());
    let output_dir = match &args.output {
        Some(dir) => Some(std::path::absolute(dir).map_err(|source| StackError::Io {
            what: format!("resolve the output directory {}", dir.display()),
            source,
        })?),
        None => None,
    };
    let options = ExportOptions {
        settings: args.stack.settings()?,
        gpu: args.stack.gpu.gpu,
        format: args.format,
        engine: match args.engine {
            EngineChoice::Podman => EngineKind::Podman,
            EngineChoice::Auto | EngineChoice::Docker => EngineKind::Docker,
        },
        output_dir: output_dir.clone(),
    };
    let rendered = export::export(&env, &options)?;
    for note in &rendered.notes {
        output.note(format_args!("note: {note}"));
    }
    match &output_dir {
        Some(dir) => {
            let path = export::write(dir, &rendered)?;
            if output.is_json() {
                return Ok(output.result(&serde_json::json!({
                    "format": rendered.format,
                    "path": path,
                    "notes": rendered.notes,
                })));
            }
            eprintln!("wrote {}", path.display());
        }
        None => {
            if output.is_json() {
                return Ok(output.result(&serde_json::json!({
                    "format": rendered.format,
                    "text": rendered.text,
                    "notes": rendered.notes,
                })));
            }
            print!("{}", rendered.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `nanna-deploy images load|build`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use nanna_deploy::stack::{self, BuildRequest, StackError};
use serde_json::json;

use super::{EngineArg, Session, probe_env};
use crate::render::Output;

/// `images` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Load a docker-archive or OCI tarball into the engine.
    Load {
        /// Container engine.
        #[command(flatten)]
        engine: EngineArg,
        /// The archive.
        path: PathBuf,
    },
    /// Build an image from a binary and its shared libraries, and load it.
    #[command(
        after_help = "Examples:\n  nanna-deploy images build                 # the assistant image from `nanna`\n  nanna-deploy images build --binary ./srv --tag localhost/srv:1 --port 9000 --env RUST_LOG=info\n\nThis builds the assistant (or any single binary); the model-server image comes from a registry\n(ollama/ollama) or from Nix (`nix build .#ollama-cpu-image`, then --image-archive)."
    )]
    Build(BuildArgs),
}

/// Arguments of `images build`.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    /// Container engine.
    #[command(flatten)]
    pub engine: EngineArg,
    /// Binary to package (default: `nanna` beside nanna-deploy or on PATH, as the assistant image).
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Image reference.
    #[arg(long, value_name = "REF")]
    pub tag: Option<String>,
    /// Entrypoint (repeat for arguments).
    #[arg(long, value_name = "ARG")]
    pub entrypoint: Vec<String>,
    /// Environment variable K=V (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Port to expose (repeatable).
    #[arg(long = "port", value_name = "N")]
    pub ports: Vec<u16>,
    /// Extra executable HOST:IMAGE_PATH (repeatable).
    #[arg(long = "file", value_name = "HOST:IMAGE_PATH", value_parser = parse_file)]
    pub files: Vec<(PathBuf, String)>,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not K=V"))
}

fn parse_file(text: &str) -> Result<(PathBuf, String), String> {
    text.split_once(':')
        .filter(|(_, image)| image.starts_with('/'))
        .map(|(host, image)| (PathBuf::from(host), image.to_string()))
        .ok_or_else(|| format!("{text:?} is not HOST:/IMAGE/PATH"))
}

/// Runs `images load` or `images build`.
pub async fn run(
    command: Command,
    output: &Output,
    session: &Session,
) -> Result<ExitCode, StackError> {
    let env = probe_env(None);
    match command {
        Command::Load { engine, path } => {
            let engine = session
                .interruptible(stack::connect(engine.engine, &env))
                .await?;
            let ctx = session.context(&engine, &env, output);
            let loaded = stack::load(&ctx, &path).await?;
            if output.is_json() {
                return Ok(output.result(&json!({ "loaded": loaded })));
            }
            println!("loaded {}", loaded.join(", "));
            Ok(ExitCode::SUCCESS)
        }
        Command::Build(args) => {
            let request = BuildRequest {
                binary: args.binary.clone(),
                tag: args.tag.clone(),
                entrypoint: args.entrypoint.clone(),
                env: args.env.iter().cloned().collect::<BTreeMap<_, _>>(),
                ports: args.ports.clone(),
                files: args.files.clone(),
            };
            let engine = session
                .interruptible(stack::connect(args.engine.engine, &env))
                .await?;
            let ctx = session.context(&engine, &env, output);
            let report = stack::build(&ctx, &request).await?;
            if output.is_json() {
                return Ok(output.result(&report));
            }
            output.note(format_args!(
                "built {} ({}, {:.1} MB, {} layers)",
                report.reference,
                report.image_id,
                report.size_bytes as f64 / 1e6,
                report.layers
            ));
            println!("{}", report.reference);
            Ok(ExitCode::SUCCESS)
        }
    }
}

//! `nanna-scripted-llm`: a scripted stand-in for an Ollama / OpenAI-compatible model server.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nanna_testkit::{Flavor, ModelSpec, Script, ScriptedServer, ServerConfig, TestkitError};

/// Serves Ollama's API and the OpenAI-compatible API, answering chats from a script.
#[derive(Debug, Parser)]
#[command(name = "nanna-scripted-llm", version, about)]
struct Args {
    /// Script file (JSON if it ends in .json, YAML otherwise). Without it every chat is
    /// answered with --text.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,

    /// Reply to every chat when no script is given.
    #[arg(
        long,
        value_name = "TEXT",
        default_value = "Hello from nanna-scripted-llm."
    )]
    text: String,

    /// Address to listen on (HOST:PORT, :PORT, HOST, or http://HOST:PORT, as OLLAMA_HOST).
    #[arg(
        long,
        value_name = "ADDR",
        env = "OLLAMA_HOST",
        default_value = "127.0.0.1:11434"
    )]
    listen: String,

    /// Model list file (JSON or YAML: a list of models or {"models": [...]}).
    #[arg(long, value_name = "FILE")]
    models_file: Option<PathBuf>,

    /// A model to serve, with tools and a 131072 context (repeatable; adds to --models-file).
    #[arg(long = "model", value_name = "NAME")]
    models: Vec<String>,

    /// Server to imitate: ollama, llama.cpp or vllm.
    #[arg(long, value_name = "KIND", default_value = "ollama", value_parser = parse_flavor)]
    flavor: Flavor,

    /// Version reported by /api/version (Ollama; features follow it), /props build_info
    /// (llama.cpp) or /version (vLLM). Default: a current version of the chosen server.
    #[arg(long, value_name = "VERSION")]
    server_version: Option<String>,

    /// Append every request to this file as a JSON line.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
}

fn parse_flavor(text: &str) -> Result<Flavor, String> {
    Flavor::parse(text)
        .ok_or_else(|| format!("unknown server `{text}`: use ollama, llama.cpp or vllm"))
}

/// Parses a listen address the way Ollama reads `OLLAMA_HOST`.
fn parse_listen(raw: &str) -> Result<SocketAddr, TestkitError> {
    let bad = |reason: &str| TestkitError::Address {
        addr: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let mut s = raw.trim();
    for scheme in ["http://", "https://"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            s = rest;
        }
    }
    let s = s.trim_end_matches('/');
    let with_port = if s.is_empty() {
        "127.0.0.1:11434".to_owned()
    } else if let Some(port) = s.strip_prefix(':').filter(|p| !p.contains(':')) {
        format!("127.0.0.1:{port}")
    } else if s.starts_with('[') {
        if s.contains("]:") {
            s.to_owned()
        } else {
            format!("{s}:11434")
        }
    } else if s.matches(':').count() == 1 {
        s.to_owned()
    } else if s.contains(':') {
        format!("[{s}]:11434")
    } else {
        format!("{s}:11434")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| bad(&e.to_string()))?
        .next()
        .ok_or_else(|| bad("the host name resolves to no address"))
}

async fn run(args: Args) -> Result<(), TestkitError> {
    let script = match &args.script {
        Some(path) => Script::from_file(path)?,
        None => Script::always_text(&args.text),
    };
    let mut models = match &args.models_file {
        Some(path) => ServerConfig::read_models_file(path)?,
        None => Vec::new(),
    };
    models.extend(args.models.iter().map(ModelSpec::new));
    if models.is_empty() {
        models.push(ModelSpec::default());
    }
    let mut config = match args.flavor {
        Flavor::Ollama => ServerConfig::default(),
        Flavor::LlamaCpp => ServerConfig::llama_cpp(ModelSpec::default()),
        Flavor::Vllm => ServerConfig::vllm(ModelSpec::default()),
    };
    config.models = models;
    config.record_file = args.record.clone();
    if let Some(version) = &args.server_version {
        config.version = version.clone();
    }
    let addr = parse_listen(&args.listen)?;
    let signals = StopSignals::install();
    let server = ScriptedServer::bind(addr, config, script).await?;
    println!("listening on {}", server.url());
    signals.wait().await;
    server.shutdown().await;
    Ok(())
}

/// SIGINT/SIGTERM listeners, installed before the server announces itself so that a signal
/// sent right after "listening on" is never lost.
struct StopSignals {
    #[cfg(unix)]
    streams: Vec<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = [SignalKind::interrupt(), SignalKind::terminate()]
                .into_iter()
                .filter_map(|kind| signal(kind).ok())
                .collect();
            Self { streams }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Waits for the first stop signal.
    async fn wait(self) {
        #[cfg(unix)]
        {
            let waits = self.streams.into_iter().map(|mut s| {
                Box::pin(async move {
                    s.recv().await;
                })
            });
            let waits: Vec<_> = waits.collect();
            if waits.is_empty() {
                std::future::pending::<()>().await;
            }
            futures::future::select_all(waits).await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nanna-scripted-llm: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nanna-scripted-llm: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_listen;

    #[test]
    fn listen_addresses_follow_ollama_host_rules() {
        let p = |s: &str| parse_listen(s).unwrap().to_string();
        assert_eq!(p("0.0.0.0"), "0.0.0.0:11434");
        assert_eq!(p("0.0.0.0:8080"), "0.0.0.0:8080");
        assert_eq!(p(":9000"), "127.0.0.1:9000");
        assert_eq!(p("http://127.0.0.1:7000/"), "127.0.0.1:7000");
        assert_eq!(p(""), "127.0.0.1:11434");
        assert_eq!(p("[::1]"), "[::1]:11434");
        assert_eq!(p("::"), "[::]:11434");
        assert!(parse_listen("127.0.0.1:notaport").is_err());
    }
}

//! `nanna-scripted-llm`: a scripted stand-in for an Ollama / OpenAI-compatible model server.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nanna_testkit::{Flavor, ModelSpec, Script, ScriptedServer, ServerConfig, TestkitError};

/// Serves Ollama's API and the OpenAI-compatible API, answering chats from a script.
///
/// Like the `ollama` binary it stands in for (the images put it at `/bin/ollama`), it is
/// also the server's client: `list` and `pull MODEL`, so health checks and pull steps
/// written for Ollama's images run against it.
#[derive(Debug, Parser)]
#[command(
    name = "nanna-scripted-llm",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Client>,

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

/// The client commands of `ollama` this stand-in answers (ollama `cmd/cmd.go`).
#[derive(Debug, clap::Subcommand)]
enum Client {
    /// Serve (the default; `ollama serve`).
    Serve,
    /// List the server's models (`ollama list`: `GET /api/tags`, exit 1 when the server
    /// does not answer).
    List,
    /// Pull a model through the server (`ollama pull`: `POST /api/pull`, streamed progress,
    /// exit 1 on an error line).
    Pull {
        /// Model name.
        model: String,
    },
}

/// Where the client finds the server: `OLLAMA_HOST` read as ollama's `envconfig.Host`
/// reads it (scheme http, host 127.0.0.1, port 11434 by default), with an unspecified bind
/// address replaced by loopback (`envconfig.ConnectableHost`).
fn client_target() -> (String, u16) {
    let raw = std::env::var("OLLAMA_HOST").unwrap_or_default();
    let raw = raw.trim();
    let (scheme, rest) = raw.split_once("://").unwrap_or(("http", raw));
    let rest = rest.split('/').next().unwrap_or_default();
    let default_port = match (raw.contains("://"), scheme) {
        (true, "https") => 443,
        (true, _) => 80,
        (false, _) => 11434,
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !port.contains(']') => {
            (host.to_string(), port.parse().unwrap_or(default_port))
        }
        _ if rest.is_empty() => ("127.0.0.1".to_string(), default_port),
        _ => (rest.to_string(), default_port),
    };
    let host = host.trim_matches(|c| c == '[' || c == ']').to_string();
    let host = match host.as_str() {
        "" | "0.0.0.0" => "127.0.0.1".to_string(),
        "::" => "::1".to_string(),
        _ => host,
    };
    (host, port)
}

/// One HTTP/1.0 exchange (no chunking, the body ends with the connection): status and body.
async fn exchange(method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (host, port) = client_target();
    let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("could not connect to ollama server at {host}:{port}: {e}"))?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {head:?}"))?;
    Ok((status, body.to_string()))
}

async fn client(command: Client) -> Result<(), String> {
    match command {
        Client::Serve => unreachable!("serving is not a client command"),
        Client::List => {
            let (status, body) = exchange("GET", "/api/tags", "").await?;
            if status != 200 {
                return Err(format!("HTTP {status}: {body}"));
            }
            let tags: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            println!("NAME");
            for model in tags["models"].as_array().into_iter().flatten() {
                println!("{}", model["name"].as_str().unwrap_or_default());
            }
            Ok(())
        }
        Client::Pull { model } => {
            let request = serde_json::json!({ "model": model, "stream": true }).to_string();
            let (status, body) = exchange("POST", "/api/pull", &request).await?;
            let mut last = String::new();
            for line in body.lines().filter(|l| !l.trim().is_empty()) {
                let value: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
                if let Some(error) = value["error"].as_str() {
                    return Err(error.to_string());
                }
                last = value["status"].as_str().unwrap_or_default().to_string();
                println!("{last}");
            }
            if status != 200 || last != "success" {
                return Err(format!("HTTP {status}, last status {last:?}"));
            }
            Ok(())
        }
    }
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
    let mut args = Args::parse();
    let command = args.command.take();
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
    if let Some(command) = command.filter(|c| !matches!(c, Client::Serve)) {
        return match runtime.block_on(client(command)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
    use super::{client_target, parse_listen};

    #[test]
    fn the_client_reads_ollama_host_as_ollama_does() {
        let with = |value: &str| {
            // SAFETY: this test alone reads or writes OLLAMA_HOST in this process.
            unsafe { std::env::set_var("OLLAMA_HOST", value) };
            client_target()
        };
        assert_eq!(with("0.0.0.0:11434"), ("127.0.0.1".into(), 11434));
        assert_eq!(with("http://srv:8000"), ("srv".into(), 8000));
        assert_eq!(with("http://srv"), ("srv".into(), 80));
        assert_eq!(with("srv"), ("srv".into(), 11434));
        assert_eq!(with(""), ("127.0.0.1".into(), 11434));
        assert_eq!(with("[::]:1"), ("::1".into(), 1));
    }

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

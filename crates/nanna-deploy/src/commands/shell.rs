//! `nanna-deploy shell`: a command in a service's container, attached to this terminal.

use std::process::ExitCode;

use futures::StreamExt;
use nanna_deploy::stack::{self, ExecRequest, Service, StackError};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::{Session, TargetArgs, locate, probe_env};
use crate::render::Output;
use crate::terminal::{self, RawMode};

/// Examples shown by `shell --help`.
pub const HELP: &str = "Examples:
  nanna-deploy shell                    # nanna chat in the assistant
  nanna-deploy shell ollama -- ollama list
  nanna-deploy shell assistant --json -- nanna --version   # {\"exit_code\": 0, \"output\": \"...\"}

The exit code is the command's.";

/// Arguments of `shell`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Engine and stack.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Service (default: assistant).
    #[arg(value_enum, default_value = "assistant")]
    pub service: Service,
    /// Command to run instead of `nanna chat`.
    #[arg(last = true)]
    pub cmd: Vec<String>,
}

fn code_of(exit: i64) -> ExitCode {
    if exit == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(u8::try_from(exit.clamp(1, 255)).unwrap_or(1))
    }
}

/// Runs `shell`.
pub async fn run(args: Args, output: &Output, session: &Session) -> Result<ExitCode, StackError> {
    let env = probe_env(None);
    let engine = locate(session, args.target.engine.engine, &env, args.target.name()).await?;
    let ctx = session.context(&engine, &env, output);
    let cmd = if args.cmd.is_empty() {
        stack::default_command(args.service)
    } else {
        args.cmd.clone()
    };
    if output.is_json() {
        // No terminal: run it, capture what it writes, report both.
        let mut captured = Vec::new();
        let exit = session
            .interruptible(stack::exec(
                &ctx,
                args.target.name(),
                args.service,
                cmd,
                &mut captured,
            ))
            .await?;
        output.result(&json!({
            "exit_code": exit,
            "output": String::from_utf8_lossy(&captured),
        }));
        return Ok(code_of(exit));
    }
    let tty = terminal::stdin_is_terminal();
    let request = ExecRequest {
        cmd,
        stdin: true,
        tty,
        env: vec![format!(
            "TERM={}",
            std::env::var("TERM").unwrap_or_else(|_| "xterm".to_string())
        )],
    };
    let mut attached = stack::attach(&ctx, args.target.name(), args.service, request).await?;
    if tty && let Some((rows, cols)) = terminal::size() {
        stack::resize(&ctx, &attached.id, rows, cols).await;
    }
    let raw = RawMode::enter();
    // Stdin is read on a plain thread (blocking reads) and forwarded to the exec's input.
    let (keys, mut key_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin();
        let mut buffer = [0u8; 1024];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if keys.blocking_send(buffer[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut input = attached.input;
    let pump = tokio::spawn(async move {
        while let Some(bytes) = key_rx.recv().await {
            if input.write_all(&bytes).await.is_err() {
                break;
            }
            let _ = input.flush().await;
        }
        let _ = input.shutdown().await;
    });
    let copy = async {
        use std::io::Write;
        let mut stdout = std::io::stdout();
        while let Some(Ok(chunk)) = attached.output.next().await {
            if stdout.write_all(&chunk.into_bytes()).is_err() {
                break;
            }
            let _ = stdout.flush();
        }
    };
    let interrupted = tokio::select! {
        () = copy => false,
        () = session.cancel.cancelled() => true,
    };
    pump.abort();
    drop(raw);
    if interrupted {
        return Err(StackError::Interrupted);
    }
    Ok(code_of(stack::exit_code(&ctx, &attached.id).await?))
}

//! The model on the model server, through `nanna-model`'s Ollama client (one client per
//! protocol): whether the server has it, and pulling it with progress events.

use std::net::SocketAddr;

use futures::StreamExt;
use nanna_model::{ModelError, ModelProvider, OllamaProvider};

use super::{StackContext, StackError};
use crate::event::{DeployEvent, ProgressThrottle, Transfer};

/// A client of the stack's Ollama (nanna-model's, with its default limits: 5 s to connect).
fn provider(addr: SocketAddr) -> Result<OllamaProvider, StackError> {
    OllamaProvider::new(&format!("http://{addr}")).map_err(|error| StackError::Pull {
        model: String::new(),
        message: error.to_string(),
    })
}

/// Whether the model server at `addr` has `model` (`POST /api/show`, which resolves names
/// the way the server does, e.g. `llama3.1` as `llama3.1:latest`). Any failure counts as
/// absent: the pull that follows reports the server's own error.
pub(crate) async fn has_model(addr: SocketAddr, model: &str) -> bool {
    match provider(addr) {
        Ok(provider) => provider.model_info(model).await.is_ok(),
        Err(_) => false,
    }
}

/// Pulls `model` through the model server at `addr`, reporting progress per layer. The
/// server's own error text is kept, whether it arrives as a progress line or as the body
/// of an HTTP error (which Ollama writes without a trailing newline).
pub async fn pull_model(
    ctx: &StackContext<'_>,
    addr: SocketAddr,
    model: &str,
) -> Result<(), StackError> {
    let failed = |error: ModelError| StackError::Pull {
        model: model.to_string(),
        message: match error {
            ModelError::Http { status, message } => format!("HTTP {status}: {message}"),
            ModelError::Server { message } => message,
            other => other.to_string(),
        },
    };
    let provider = provider(addr)?;
    let transfer = Transfer::ModelPull(model.to_string());
    let run = async {
        let mut stream = provider.pull(model).await.map_err(failed)?;
        let mut throttle = ProgressThrottle::new();
        while let Some(item) = stream.next().await {
            let progress = item.map_err(failed)?;
            if throttle.pass(
                &progress.digest,
                &progress.status,
                progress.completed,
                progress.total,
            ) {
                ctx.events.report(DeployEvent::Progress {
                    transfer: transfer.clone(),
                    item: progress.digest,
                    status: progress.status,
                    current: progress.completed,
                    total: progress.total,
                });
            }
        }
        Ok::<(), StackError>(())
    };
    tokio::select! {
        result = run => result?,
        () = ctx.cancel.cancelled() => return Err(StackError::Interrupted),
    }
    ctx.events.report(DeployEvent::Done {
        transfer,
        result: vec![model.to_string()],
    });
    Ok(())
}

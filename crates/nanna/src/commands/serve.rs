//! `nanna serve`: the assistant container's main process. Stays up and answers
//! `GET /health` with the model server's state; stops gracefully on SIGTERM or Ctrl-C.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use nanna_model::ModelProvider;
use serde_json::{Value, json};

use crate::error::{CliError, Result};

/// What the health handler needs.
struct ServeState {
    provider: Arc<dyn ModelProvider>,
    model: String,
}

async fn health(State(state): State<Arc<ServeState>>) -> (StatusCode, Json<Value>) {
    let provider = state.provider.as_ref();
    match provider.health().await {
        Ok(()) => {
            let version = provider.version().await.ok();
            (
                StatusCode::OK,
                Json(json!({
                    "status": "ok",
                    "model_server": "reachable",
                    "url": provider.base_url(),
                    "model": state.model,
                    "version": version,
                })),
            )
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "unavailable",
                "model_server": "unreachable",
                "url": provider.base_url(),
                "model": state.model,
                "version": null,
                "error": e.to_string(),
            })),
        ),
    }
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `nanna serve --check`: asks the server at `listen` (an unspecified address means this
/// machine) for `/health`, as `nanna-deploy up` does from the host, and succeeds only on
/// 200 (the model server reachable). Used as the container's health check.
pub async fn check(listen: &str) -> Result<()> {
    let addr: std::net::SocketAddr = listen.parse().map_err(|e| {
        CliError::Other(format!(
            "--listen {listen:?} is not an address and port ({e}); e.g. 127.0.0.1:8080"
        ))
    })?;
    let addr = if addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let url = format!("http://{addr}/health");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| CliError::Other(format!("cannot make an HTTP client: {e}")))?;
    let answer = client
        .get(&url)
        .send()
        .await
        .map_err(|e| CliError::Other(format!("{url} did not answer: {e}")))?;
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    if status.is_success() {
        println!("{body}");
        Ok(())
    } else {
        Err(CliError::Other(format!(
            "{url}: HTTP {}: {body}",
            status.as_u16()
        )))
    }
}

/// Serves until a termination signal.
pub async fn run(provider: Arc<dyn ModelProvider>, model: String, listen: &str) -> Result<()> {
    let state = Arc::new(ServeState { provider, model });
    let app = Router::new()
        .route("/health", get(health))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        CliError::io(
            format!("cannot listen on {listen} (is the port taken? pick another with --listen)"),
            e,
        )
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::io("reading the listening address", e))?;
    eprintln!("nanna serve: listening on http://{local} (GET /health)");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| CliError::io("serving HTTP", e))?;
    eprintln!("nanna serve: stopped");
    Ok(())
}

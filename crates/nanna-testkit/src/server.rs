//! The HTTP server: shared state, routes, start and shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::TestkitError;
use crate::models::{Flavor, ModelSpec, ServerConfig, full_name, ollama_key};
use crate::recording::{RecordedRequest, Recorder, is_chat_path};
use crate::script::{Next, Player, Script};
use crate::wire::Plan;
use crate::{llamacpp, ollama, openai, vllm};

/// State shared by all handlers.
pub(crate) struct AppState {
    pub(crate) config: ServerConfig,
    models: RwLock<Vec<Arc<ModelSpec>>>,
    /// Models with the window each was loaded with (Ollama's `/api/ps`).
    loaded: Mutex<Vec<(Arc<ModelSpec>, u32)>>,
    player: Player,
    pub(crate) recorder: Recorder,
    seq: AtomicU64,
    /// `/api/show` failures still to serve.
    show_failures: AtomicU64,
}

impl AppState {
    fn new(config: ServerConfig, script: Script) -> Result<Self, TestkitError> {
        let recorder = Recorder::new(config.record_file.as_deref())?;
        let config_show_failures = config.show_failures;
        Ok(Self {
            models: RwLock::new(config.models.iter().cloned().map(Arc::new).collect()),
            config,
            loaded: Mutex::new(Vec::new()),
            player: Player::new(script),
            recorder,
            seq: AtomicU64::new(0),
            show_failures: AtomicU64::new(u64::from(config_show_failures)),
        })
    }

    /// Records a request and returns its parsed body.
    pub(crate) fn record(&self, method: &Method, uri: &Uri, body: &[u8]) -> Value {
        self.recorder.record(method.as_str(), uri.path(), body)
    }

    /// A number unique to this request (ids, call ids).
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The served models, in order.
    pub(crate) fn models(&self) -> Vec<Arc<ModelSpec>> {
        self.models
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Finds a served model by name, as Ollama does (`x` is `x:latest`, `library/x` is `x`,
    /// case does not matter).
    pub(crate) fn find_model(&self, name: &str) -> Option<Arc<ModelSpec>> {
        let wanted = ollama_key(name);
        self.models
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|m| ollama_key(&m.name) == wanted)
            .cloned()
    }

    /// Finds a model that `/api/pull` may fetch (served or pullable).
    pub(crate) fn find_pullable(&self, name: &str) -> Option<Arc<ModelSpec>> {
        if let Some(m) = self.find_model(name) {
            return Some(m);
        }
        let wanted = full_name(name);
        self.config
            .pullable_models
            .iter()
            .find(|m| m.full_name() == wanted)
            .cloned()
            .map(Arc::new)
    }

    /// Makes a pulled model available.
    pub(crate) fn install(&self, model: Arc<ModelSpec>) {
        let mut models = self.models.write().unwrap_or_else(|p| p.into_inner());
        if !models.iter().any(|m| m.full_name() == model.full_name()) {
            models.push(model);
        }
    }

    /// Notes that `model` is loaded with a `num_ctx`-token window (a new window reloads it).
    pub(crate) fn mark_loaded(&self, model: &Arc<ModelSpec>, num_ctx: u32) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        loaded.retain(|(m, _)| !Arc::ptr_eq(m, model));
        loaded.push((model.clone(), num_ctx));
    }

    /// Unloads `model` (`keep_alive: 0`).
    pub(crate) fn unload(&self, model: &Arc<ModelSpec>) {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(m, _)| !Arc::ptr_eq(m, model));
    }

    /// The loaded models and their windows (for `/api/ps`).
    pub(crate) fn loaded(&self) -> Vec<(Arc<ModelSpec>, u32)> {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether this `/api/show` is one of the configured failures.
    pub(crate) fn show_fails(&self) -> bool {
        self.show_failures
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// The next turn of the script.
    pub(crate) fn next_turn(&self) -> Next<'_> {
        self.player.next()
    }

    /// The script's next turn planned for `request` (`thinking`: whether the request lets
    /// the model think), after the turn's first-byte delay; or the HTTP error to answer with
    /// instead: the script ran out, or the turn's `http_error` fault. Each flavor words the
    /// error body its own way.
    pub(crate) async fn plan(
        &self,
        request: &Value,
        thinking: bool,
    ) -> Result<Plan<'_>, (StatusCode, String)> {
        let turn = match self.next_turn() {
            Next::Turn(turn) => turn,
            Next::Error { status, message } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return Err((status, message.to_owned()));
            }
        };
        let mut plan = Plan::new(turn, request);
        plan.thinking = thinking;
        plan.wait_first_byte().await;
        match plan.http_error {
            Some((status, message)) => Err((status, message.to_owned())),
            None => Ok(plan),
        }
    }
}

fn router(state: Arc<AppState>) -> Router {
    let router = match state.config.flavor {
        Flavor::Ollama => Router::new()
            .route("/", get(root))
            .route("/api/version", get(ollama::version))
            .route("/api/tags", get(ollama::tags))
            .route("/api/ps", get(ollama::ps))
            .route("/api/show", post(ollama::show))
            .route("/api/pull", post(ollama::pull))
            .route("/api/chat", post(ollama::chat))
            .route("/v1/chat/completions", post(openai::chat))
            .route("/v1/models", get(openai::models))
            .fallback(not_found),
        // llama-server answers both with and without the /v1 prefix (tools/server/server.cpp
        // routes), and JSON errors for unknown paths.
        Flavor::LlamaCpp => Router::new()
            .route("/health", get(llamacpp::health))
            .route("/props", get(llamacpp::props))
            .route("/models", get(llamacpp::models))
            .route("/v1/models", get(llamacpp::models))
            .route("/chat/completions", post(llamacpp::chat))
            .route("/v1/chat/completions", post(llamacpp::chat))
            .fallback(llamacpp::not_found),
        Flavor::Vllm => Router::new()
            .route("/health", get(vllm::health))
            .route("/version", get(vllm::version))
            .route("/v1/models", get(vllm::models))
            .route("/v1/chat/completions", post(vllm::chat))
            .fallback(vllm::not_found),
    };
    router.with_state(state)
}

/// `GET /` and `HEAD /`: Ollama's liveness answer.
async fn root(State(st): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    st.record(&method, &uri, &[]);
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Ollama is running",
    )
        .into_response()
}

/// Any other path: Go's plain 404, as Ollama answers.
async fn not_found(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    st.record(&method, &uri, &body);
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "404 page not found",
    )
        .into_response()
}

/// A running scripted LLM server. Dropping it stops the server abruptly;
/// [`ScriptedServer::shutdown`] stops it gracefully.
pub struct ScriptedServer {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ScriptedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ScriptedServer {
    /// Starts a server on `127.0.0.1:0` with the default configuration.
    pub async fn start(script: Script) -> Result<Self, TestkitError> {
        Self::start_with(ServerConfig::default(), script).await
    }

    /// Starts a server on `127.0.0.1:0` with `config`.
    pub async fn start_with(config: ServerConfig, script: Script) -> Result<Self, TestkitError> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config, script).await
    }

    /// Starts a server on `addr`.
    pub async fn bind(
        addr: SocketAddr,
        config: ServerConfig,
        script: Script,
    ) -> Result<Self, TestkitError> {
        let bind_error = |source| TestkitError::Bind {
            addr: addr.to_string(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let state = Arc::new(AppState::new(config, script)?);
        let app = router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let listener = listener.tap_io(|tcp| {
            // Small writes must leave at once: latency is what tests measure.
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:43125` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.recorder.all()
    }

    /// The chat requests (`/api/chat`, `/v1/chat/completions`) received so far.
    pub fn chat_requests(&self) -> Vec<RecordedRequest> {
        let mut all = self.state.recorder.all();
        all.retain(|r| is_chat_path(&r.path));
        all
    }

    /// Waits until at least `n` chat requests have been recorded (since the last
    /// [`ScriptedServer::clear_requests`]); returns `false` if `timeout` passed first.
    pub async fn wait_for_chat_requests(&self, n: usize, timeout: Duration) -> bool {
        self.state
            .recorder
            .wait_until(timeout, |reqs| {
                reqs.iter().filter(|r| is_chat_path(&r.path)).count() >= n
            })
            .await
    }

    /// Forgets the requests recorded so far (the record file is kept).
    pub fn clear_requests(&self) {
        self.state.recorder.clear();
    }

    /// How many chat requests have drawn a turn (or the exhausted answer) from the script.
    pub fn turns_served(&self) -> u64 {
        self.state.player.served()
    }

    /// Stops accepting connections and waits (up to 5 s) for open responses to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

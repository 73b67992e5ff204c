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
use crate::models::{ModelSpec, ServerConfig, full_name};
use crate::recording::{RecordedRequest, Recorder, is_chat_path};
use crate::script::{Next, Player, Script, Turn};
use crate::{ollama, openai};

/// State shared by all handlers.
pub(crate) struct AppState {
    pub(crate) version: String,
    models: RwLock<Vec<Arc<ModelSpec>>>,
    pullable: Vec<Arc<ModelSpec>>,
    loaded: Mutex<Vec<Arc<ModelSpec>>>,
    player: Player,
    pub(crate) recorder: Recorder,
    seq: AtomicU64,
}

/// Why a chat request names no usable model.
pub(crate) enum ModelProblem {
    /// No `model` field.
    Missing,
    /// Not among the served models.
    NotFound(String),
    /// Tools were sent to a model without the `tools` capability (full name).
    NoTools(String),
    /// `think` was requested from a model without the `thinking` capability (name as asked).
    NoThinking(String),
}

impl AppState {
    fn new(config: ServerConfig, script: Script) -> Result<Self, TestkitError> {
        Ok(Self {
            version: config.version,
            models: RwLock::new(config.models.into_iter().map(Arc::new).collect()),
            pullable: config.pullable_models.into_iter().map(Arc::new).collect(),
            loaded: Mutex::new(Vec::new()),
            player: Player::new(script),
            recorder: Recorder::new(config.record_file.as_deref())?,
            seq: AtomicU64::new(0),
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

    /// Finds a served model by name (`x` matches `x:latest`).
    pub(crate) fn find_model(&self, name: &str) -> Option<Arc<ModelSpec>> {
        let wanted = full_name(name);
        self.models
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|m| m.full_name() == wanted)
            .cloned()
    }

    /// Finds a model that `/api/pull` may fetch (served or pullable).
    pub(crate) fn find_pullable(&self, name: &str) -> Option<Arc<ModelSpec>> {
        if let Some(m) = self.find_model(name) {
            return Some(m);
        }
        let wanted = full_name(name);
        self.pullable
            .iter()
            .find(|m| m.full_name() == wanted)
            .cloned()
    }

    /// Makes a pulled model available.
    pub(crate) fn install(&self, model: Arc<ModelSpec>) {
        let mut models = self.models.write().unwrap_or_else(|p| p.into_inner());
        if !models.iter().any(|m| m.full_name() == model.full_name()) {
            models.push(model);
        }
    }

    /// The models that have answered a chat (for `/api/ps`).
    pub(crate) fn loaded(&self) -> Vec<Arc<ModelSpec>> {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Checks the model and tools of a chat request; marks the model as loaded.
    /// Records a chat request and resolves its model and the scripted turn to play. A request
    /// the server refuses (not an object, unknown model, missing capability, script exhausted)
    /// comes back as the response to send, rendered by the API's own `error`.
    pub(crate) fn start_chat(
        &self,
        method: &Method,
        uri: &Uri,
        body: &[u8],
        error: fn(StatusCode, &str) -> Response,
    ) -> Result<(Value, Arc<ModelSpec>, &Turn), Box<Response>> {
        let req = self.record(method, uri, body);
        if !req.is_object() {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "invalid request body: expected a JSON object",
            )));
        }
        let model = self.chat_model(&req).map_err(|problem| {
            Box::new(match problem {
                ModelProblem::Missing => error(StatusCode::BAD_REQUEST, "model is required"),
                ModelProblem::NotFound(name) => error(
                    StatusCode::NOT_FOUND,
                    &format!("model \"{name}\" not found, try pulling it first"),
                ),
                ModelProblem::NoTools(full) => error(
                    StatusCode::BAD_REQUEST,
                    &format!("registry.ollama.ai/library/{full} does not support tools"),
                ),
                ModelProblem::NoThinking(name) => error(
                    StatusCode::BAD_REQUEST,
                    &format!("\"{name}\" does not support thinking"),
                ),
            })
        })?;
        match self.next_turn() {
            Next::Turn(turn) => Ok((req, model, turn)),
            Next::Error { status, message } => Err(Box::new(error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                message,
            ))),
        }
    }

    pub(crate) fn chat_model(&self, request: &Value) -> Result<Arc<ModelSpec>, ModelProblem> {
        let name = request
            .get("model")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or(ModelProblem::Missing)?;
        let model = self
            .find_model(name)
            .ok_or_else(|| ModelProblem::NotFound(name.to_owned()))?;
        let has_tools = request
            .get("tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty());
        if has_tools && !model.has_capability("tools") {
            return Err(ModelProblem::NoTools(model.full_name()));
        }
        let think = request.get("think").is_some_and(|t| match t {
            Value::Bool(b) => *b,
            Value::String(level) => !level.is_empty(),
            _ => false,
        });
        if think && !model.has_capability("thinking") {
            return Err(ModelProblem::NoThinking(name.to_owned()));
        }
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if !loaded.iter().any(|m| Arc::ptr_eq(m, &model)) {
            loaded.push(model.clone());
        }
        Ok(model)
    }

    /// The next turn of the script.
    pub(crate) fn next_turn(&self) -> Next<'_> {
        self.player.next()
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/api/version", get(ollama::version))
        .route("/api/tags", get(ollama::tags))
        .route("/api/ps", get(ollama::ps))
        .route("/api/show", post(ollama::show))
        .route("/api/pull", post(ollama::pull))
        .route("/api/chat", post(ollama::chat))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/models", get(openai::models))
        .fallback(not_found)
        .with_state(state)
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

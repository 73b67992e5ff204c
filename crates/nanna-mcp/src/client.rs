//! [`McpServers`]: the configured servers of one session, started in parallel, their tools
//! adapted to nanna's [`Tool`] trait, stopped with the session.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nanna_model::ToolDefinition;
use nanna_tools::{Effect, Tool, ToolContext, ToolError, ToolOutput, ToolRegistry};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotification, CancelledNotificationParam,
    ClientCapabilities, ClientConfig, ClientRequest, Implementation, ProgressNotificationParam,
    ProgressToken, RequestId, ServerResult,
};
use rmcp::service::{NotificationContext, Peer, PeerRequestOptions, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceError, ServiceExt as _};
use serde_json::Value;

use crate::content;
use crate::event::{EventSink, McpEvent};
use crate::names::NameAllocator;
use crate::process::{self, StderrTail};
use crate::schema;
use nanna_config::mcp::{McpConfig, McpServerConfig, McpTransport};

/// How long a stopping server may take to exit on its own (stdin closed) before its
/// process group is killed.
const STOP_GRACE: Duration = Duration::from_millis(1500);

/// How long to wait for a dead server's last stderr lines.
const STDERR_GRACE: Duration = Duration::from_millis(300);

/// The running servers of a session. Dropping it kills every stdio server's process group;
/// [`McpServers::shutdown`] first lets them exit cleanly.
pub struct McpServers {
    servers: Vec<Arc<Server>>,
    /// Servers marked `required` that did not start.
    failed_required: Vec<String>,
}

impl std::fmt::Debug for McpServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServers")
            .field(
                "servers",
                &self.servers.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// One running server.
struct Server {
    name: String,
    peer: Peer<RoleClient>,
    service: tokio::sync::Mutex<Option<RunningService<RoleClient, Handler>>>,
    /// The stdio server's process group (its pid); `None` for HTTP servers.
    pgid: Option<i32>,
    stderr: StderrTail,
    tool_timeout: Duration,
    /// The tools offered (filters applied, schemas translated), in the server's order.
    tools: Vec<Offered>,
    /// Progress tokens of the calls in flight → their tool's qualified name.
    progress: Arc<Mutex<HashMap<ProgressToken, String>>>,
    /// Set once the server's exit has been reported.
    exit_reported: Mutex<bool>,
    events: EventSink,
}

/// Receives the server's notifications: progress goes to the event sink under the name of
/// the tool call it belongs to.
#[derive(Clone)]
struct Handler {
    progress: Arc<Mutex<HashMap<ProgressToken, String>>>,
    events: EventSink,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("nanna", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let tool = self
            .progress
            .lock()
            .ok()
            .and_then(|map| map.get(&params.progress_token).cloned());
        if let Some(tool) = tool {
            (self.events)(McpEvent::Progress {
                tool,
                progress: params.progress,
                total: params.total,
                message: params.message,
            });
        }
    }
}

impl McpServers {
    /// No servers.
    pub fn none() -> Self {
        Self {
            servers: Vec::new(),
            failed_required: Vec::new(),
        }
    }

    /// Starts every enabled server of `config` in parallel, each bounded by its
    /// `startup_timeout_sec`; stdio servers work in their `cwd` or else `workspace`. A server
    /// that fails is reported once through `events` ([`McpEvent::ServerFailed`], with its
    /// stderr's last lines) and left out; this never fails as a whole.
    pub async fn start(config: &McpConfig, workspace: &Path, events: EventSink) -> Self {
        let enabled: Vec<&McpServerConfig> = config.enabled().collect();
        if enabled.is_empty() {
            return Self::none();
        }
        events(McpEvent::ServersStarting {
            servers: enabled.iter().map(|s| s.name.clone()).collect(),
        });
        let started = futures::future::join_all(
            enabled
                .iter()
                .map(|server| start_one(server, workspace, events.clone())),
        )
        .await;
        let mut servers = Vec::new();
        let mut failed_required = Vec::new();
        for (config, result) in enabled.into_iter().zip(started) {
            match result {
                Ok(server) => servers.push(Arc::new(server)),
                Err(failure) => {
                    if config.required {
                        failed_required.push(config.name.clone());
                    }
                    events(McpEvent::ServerFailed {
                        server: config.name.clone(),
                        message: failure.message,
                        stderr: failure.stderr,
                    });
                }
            }
        }
        Self {
            servers,
            failed_required,
        }
    }

    /// Names of the servers marked `required = true` that did not start (a one-shot run
    /// fails when this is not empty).
    pub fn failed_required(&self) -> &[String] {
        &self.failed_required
    }

    /// Names of the servers that are running.
    pub fn running(&self) -> Vec<&str> {
        self.servers.iter().map(|s| s.name.as_str()).collect()
    }

    /// Adds the servers' tools to `registry` as `SERVER__tool`, in configuration order
    /// (those `enabled_tools` / `disabled_tools` leave out and those whose schema could not
    /// be used were dropped at start). Names never clash with tools already in `registry`,
    /// and are the same every time (a new registry for `/clear` gets the same names).
    /// Returns how many tools were added.
    pub fn register(&self, registry: &mut ToolRegistry) -> usize {
        let mut names = NameAllocator::new(registry.names());
        let mut added = 0;
        for server in &self.servers {
            for (index, tool) in server.tools.iter().enumerate() {
                let name = names.qualify(&server.name, &tool.remote);
                registry.register(Box::new(McpTool {
                    definition: ToolDefinition::function(
                        name,
                        tool.description.clone(),
                        tool.schema.clone(),
                    ),
                    server: server.clone(),
                    index,
                }));
                added += 1;
            }
        }
        added
    }

    /// Stops every server: closes its connection, gives it a moment to exit, then kills
    /// its whole process group (children included).
    pub async fn shutdown(mut self) {
        let servers = std::mem::take(&mut self.servers);
        futures::future::join_all(servers.iter().map(|s| s.stop())).await;
    }
}

impl Drop for McpServers {
    fn drop(&mut self) {
        for server in &self.servers {
            if let Some(pgid) = server.pgid {
                process::kill_group(pgid);
            }
        }
    }
}

impl Server {
    async fn stop(&self) {
        if let Some(service) = self.service.lock().await.take() {
            let _ = tokio::time::timeout(STOP_GRACE, service.cancel()).await;
        }
        if let Some(pgid) = self.pgid {
            process::kill_group(pgid);
        }
    }

    /// The message for a call to a server that is gone, reported as an event once.
    async fn gone(&self) -> ToolError {
        let stderr = self.stderr.text(STDERR_GRACE).await;
        let message = format!(
            "the MCP server `{}` stopped; its tools cannot be used for the rest of this session \
             (restart nanna to start it again)",
            self.name
        );
        let first = self
            .exit_reported
            .lock()
            .map(|mut reported| !std::mem::replace(&mut *reported, true))
            .unwrap_or(false);
        if first {
            (self.events)(McpEvent::ServerExited {
                server: self.name.clone(),
                message: message.clone(),
                stderr: stderr.clone(),
            });
        }
        ToolError::Failed(with_stderr(message, &stderr))
    }
}

/// A tool the server offers, ready to register.
struct Offered {
    remote: String,
    description: String,
    schema: nanna_model::JsonSchema,
    read_only: bool,
}

impl Offered {
    /// `None` (and [`McpEvent::ToolSkipped`]) when the tool's schema cannot be used.
    fn new(server: &str, tool: &rmcp::model::Tool, events: &EventSink) -> Option<Self> {
        let translated = match schema::translate(&tool.input_schema) {
            Ok(t) => t,
            Err(e) => {
                events(McpEvent::ToolSkipped {
                    server: server.to_owned(),
                    tool: tool.name.to_string(),
                    reason: e.to_string(),
                });
                return None;
            }
        };
        let mut description = tool
            .description
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .or_else(|| tool.title.clone())
            .unwrap_or_else(|| format!("`{}` of the MCP server `{server}`", tool.name));
        for note in translated.notes {
            description.push(' ');
            description.push_str(&note);
        }
        // The specification leaves every hint to the server; only an explicit
        // `readOnlyHint: true` lets a call skip approval, anything else may change things.
        let read_only = tool
            .annotations
            .as_ref()
            .and_then(|a| a.read_only_hint)
            .unwrap_or(false);
        Some(Self {
            remote: tool.name.to_string(),
            description,
            schema: translated.schema,
            read_only,
        })
    }
}

/// Why a server did not start.
struct Failure {
    message: String,
    stderr: String,
}

async fn start_one(
    config: &McpServerConfig,
    workspace: &Path,
    events: EventSink,
) -> Result<Server, Failure> {
    let started = Instant::now();
    let progress: Arc<Mutex<HashMap<ProgressToken, String>>> = Arc::default();
    let handler = Handler {
        progress: progress.clone(),
        events: events.clone(),
    };
    let stderr = StderrTail::default();
    let (running, pgid) = match &config.transport {
        McpTransport::Stdio {
            command,
            args,
            env,
            env_vars,
            cwd,
        } => {
            let dir: PathBuf = match cwd {
                Some(dir) if dir.is_relative() => workspace.join(dir),
                Some(dir) => dir.clone(),
                None => workspace.to_owned(),
            };
            let cmd = process::command(command, args, env, env_vars, &dir);
            let (transport, pipe) = TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| Failure {
                    message: spawn_message(command, &dir, &e),
                    stderr: String::new(),
                })?;
            let pgid = transport.id().and_then(|pid| i32::try_from(pid).ok());
            if let Some(pgid) = pgid {
                process::track_group(pgid);
            }
            if let Some(pipe) = pipe {
                stderr.collect(pipe);
            }
            let handshake = handshake(handler, transport, config);
            match tokio::time::timeout(config.startup_timeout, handshake).await {
                Ok(Ok(ok)) => (ok, pgid),
                outcome => {
                    if let Some(pgid) = pgid {
                        process::kill_group(pgid);
                    }
                    let message = match outcome {
                        Ok(Err(message)) => message,
                        _ => timeout_message(config),
                    };
                    return Err(Failure {
                        message,
                        stderr: stderr.text(STDERR_GRACE).await,
                    });
                }
            }
        }
        McpTransport::StreamableHttp {
            url,
            bearer_token_env_var,
            http_headers,
            env_http_headers,
        } => {
            let transport_config = http_config(
                &config.name,
                url,
                bearer_token_env_var.as_deref(),
                http_headers,
                env_http_headers,
            )
            .map_err(|message| Failure {
                message,
                stderr: String::new(),
            })?;
            let transport = StreamableHttpClientTransport::from_config(transport_config);
            let handshake = handshake(handler, transport, config);
            match tokio::time::timeout(config.startup_timeout, handshake).await {
                Ok(Ok(ok)) => (ok, None),
                Ok(Err(message)) => {
                    return Err(Failure {
                        message,
                        stderr: String::new(),
                    });
                }
                Err(_) => {
                    return Err(Failure {
                        message: timeout_message(config),
                        stderr: String::new(),
                    });
                }
            }
        }
    };
    let (service, tools) = running;
    let implementation = service
        .peer()
        .peer_info()
        .and_then(|info| {
            info.server_info
                .as_ref()
                .map(|i| format!("{} {}", i.name, i.version))
        })
        .unwrap_or_else(|| "unnamed server".to_owned());
    let tools: Vec<Offered> = tools
        .iter()
        .filter(|t| config.offers(&t.name))
        .filter_map(|t| Offered::new(&config.name, t, &events))
        .collect();
    events(McpEvent::ServerReady {
        server: config.name.clone(),
        implementation,
        tools: tools.len(),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    Ok(Server {
        name: config.name.clone(),
        peer: service.peer().clone(),
        service: tokio::sync::Mutex::new(Some(service)),
        pgid,
        stderr,
        tool_timeout: config.tool_timeout,
        tools,
        progress,
        exit_reported: Mutex::new(false),
        events,
    })
}

type Started = (RunningService<RoleClient, Handler>, Vec<rmcp::model::Tool>);

/// The MCP handshake (`initialize`, `notifications/initialized`), then `tools/list` (every
/// page).
async fn handshake<T, E, A>(
    handler: Handler,
    transport: T,
    config: &McpServerConfig,
) -> Result<Started, String>
where
    T: rmcp::transport::IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let service = handler.serve(transport).await.map_err(|e| {
        format!(
            "the MCP handshake with `{}` failed: {}; check that `{}` is an MCP server \
             speaking {}",
            config.name,
            init_error(&e),
            config.target(),
            match config.transport {
                McpTransport::Stdio { .. } => "JSON-RPC on its stdin and stdout",
                McpTransport::StreamableHttp { .. } => "streamable HTTP at that URL",
            }
        )
    })?;
    let tools = service.peer().list_all_tools().await.map_err(|e| {
        format!(
            "`{}` answered the handshake but listing its tools failed: {}",
            config.name,
            describe_service_error(&e)
        )
    })?;
    Ok((service, tools))
}

fn timeout_message(config: &McpServerConfig) -> String {
    format!(
        "`{}` did not finish the MCP handshake and list its tools within {} s; it was stopped. \
         If it is only slow to start (first `npx` download), raise startup_timeout_sec in \
         [mcp_servers.{}]",
        config.name,
        secs(config.startup_timeout),
        config.name
    )
}

fn spawn_message(command: &str, dir: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound && !dir.is_dir() {
        return format!(
            "cannot start `{command}`: its working directory {} does not exist; fix `cwd`",
            dir.display()
        );
    }
    match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "cannot start `{command}`: no such program; install it or give its full path in \
             `command` (the server's PATH is nanna's PATH)"
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot start `{command}`: permission denied; is it executable?")
        }
        _ => format!("cannot start `{command}`: {e}"),
    }
}

fn http_config(
    name: &str,
    url: &str,
    bearer_token_env_var: Option<&str>,
    http_headers: &std::collections::BTreeMap<String, String>,
    env_http_headers: &std::collections::BTreeMap<String, String>,
) -> Result<StreamableHttpClientTransportConfig, String> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(var) = bearer_token_env_var {
        match std::env::var(var) {
            Ok(token) if !token.trim().is_empty() => {
                // rmcp adds the `Bearer ` scheme itself.
                config = config.auth_header(token.trim().to_owned());
            }
            _ => {
                return Err(format!(
                    "the bearer token variable {var} named by [mcp_servers.{name}] is not set; \
                     export it or remove bearer_token_env_var"
                ));
            }
        }
    }
    let mut headers = HashMap::new();
    let mut add = |key: &str, value: &str| -> Result<(), String> {
        let header = http::HeaderName::from_bytes(key.as_bytes())
            .map_err(|e| format!("[mcp_servers.{name}]: header name `{key}` is invalid: {e}"))?;
        let value = http::HeaderValue::from_str(value).map_err(|e| {
            format!("[mcp_servers.{name}]: header `{key}` has an invalid value: {e}")
        })?;
        headers.insert(header, value);
        Ok(())
    };
    for (key, value) in http_headers {
        add(key, value)?;
    }
    for (key, var) in env_http_headers {
        if let Ok(value) = std::env::var(var)
            && !value.trim().is_empty()
        {
            add(key, value.trim())?;
        }
    }
    if !headers.is_empty() {
        config = config.custom_headers(headers);
    }
    Ok(config)
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

fn with_stderr(message: String, stderr: &str) -> String {
    if stderr.trim().is_empty() {
        message
    } else {
        format!("{message}. Its last stderr lines:\n{stderr}")
    }
}

/// What went wrong in the handshake, in words: the innermost cause of a transport error
/// (e.g. `Connection refused (os error 111)`) rather than rmcp's transport type names.
fn init_error(e: &rmcp::service::ClientInitializeError) -> String {
    match e {
        rmcp::service::ClientInitializeError::TransportError { error, context } => {
            let mut current: &(dyn std::error::Error + 'static) = error.error.as_ref();
            while let Some(next) = current.source() {
                current = next;
            }
            format!("{current} (when it tried to {context})")
        }
        other => other.to_string(),
    }
}

fn describe_service_error(e: &ServiceError) -> String {
    match e {
        ServiceError::McpError(data) => format!("the server answered with error {}: {}", data.code.0, data.message),
        ServiceError::TransportClosed => "the connection closed (the server exited)".to_owned(),
        ServiceError::UnexpectedResponse => "the server sent a reply nanna could not read (for example a tool whose inputSchema is not an object)".to_owned(),
        other => other.to_string(),
    }
}

/// One MCP tool, offered to the model under its qualified name.
struct McpTool {
    definition: ToolDefinition,
    server: Arc<Server>,
    /// Its place in `server.tools`.
    index: usize,
}

impl McpTool {
    fn offered(&self) -> &Offered {
        &self.server.tools[self.index]
    }
}

#[async_trait]
impl Tool for McpTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    /// `ReadOnly` when the server says so (`readOnlyHint`), else `Write`: the call may change
    /// things, needs approval and is never made in a read-only session. Not `Exec`: that
    /// means commands nanna itself runs (under its OS sandbox), which an MCP server is not.
    fn effect(&self) -> Effect {
        if self.offered().read_only {
            Effect::ReadOnly
        } else {
            Effect::Write
        }
    }

    fn describe(&self, args: &Value) -> String {
        let mut text = args.to_string();
        if text.len() > 100 {
            let mut end = 97;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str("...");
        }
        format!(
            "{} (MCP {}) {text}",
            self.offered().remote,
            self.server.name
        )
    }

    async fn execute(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        let server = &self.server;
        if server.peer.is_transport_closed() {
            return Err(server.gone().await);
        }
        let arguments = match args {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            other => {
                return Err(ToolError::InvalidArguments {
                    tool: self.definition.name().to_owned(),
                    detail: format!("arguments must be a JSON object, got {other}"),
                });
            }
        };
        let params =
            CallToolRequestParams::new(self.offered().remote.clone()).with_arguments(arguments);
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = match server
            .peer
            .send_cancellable_request(
                request,
                PeerRequestOptions::with_timeout(server.tool_timeout),
            )
            .await
        {
            Ok(handle) => handle,
            Err(ServiceError::TransportClosed) => return Err(server.gone().await),
            Err(e) => return Err(ToolError::Failed(describe_service_error(&e))),
        };
        let label = self.definition.name().to_owned();
        let progress = ProgressGuard::register(
            &server.progress,
            handle.progress_token.clone(),
            label.clone(),
        );
        let mut cancel_guard = CancelOnDrop {
            peer: server.peer.clone(),
            id: Some(handle.id.clone()),
        };
        let outcome = tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => {
                cancel_guard.send("cancelled by the user");
                return Err(ToolError::Cancelled);
            }
            outcome = handle.await_response() => outcome,
        };
        cancel_guard.id = None;
        drop(progress);
        match outcome {
            Ok(ServerResult::CallToolResult(result)) => content::to_output(&label, result),
            Ok(_) => Err(ToolError::Failed(format!(
                "`{}` answered the call with something other than a tool result",
                server.name
            ))),
            Err(ServiceError::Timeout { timeout }) => Err(ToolError::Failed(format!(
                "`{label}` did not answer within {} s and was cancelled; if it needs longer, raise \
                 tool_timeout_sec in [mcp_servers.{}]",
                secs(timeout),
                server.name
            ))),
            Err(ServiceError::TransportClosed) => Err(server.gone().await),
            Err(ServiceError::McpError(data)) => Err(ToolError::Failed(format!(
                "the MCP server `{}` refused the call (error {}): {}",
                server.name, data.code.0, data.message
            ))),
            Err(e) => Err(ToolError::Failed(format!(
                "the call to `{label}` failed: {}",
                describe_service_error(&e)
            ))),
        }
    }
}

/// Routes a call's progress notifications to its label while it runs.
struct ProgressGuard {
    map: Arc<Mutex<HashMap<ProgressToken, String>>>,
    token: ProgressToken,
}

impl ProgressGuard {
    fn register(
        map: &Arc<Mutex<HashMap<ProgressToken, String>>>,
        token: ProgressToken,
        label: String,
    ) -> Self {
        if let Ok(mut m) = map.lock() {
            m.insert(token.clone(), label);
        }
        Self {
            map: map.clone(),
            token,
        }
    }
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&self.token);
        }
    }
}

/// Sends `notifications/cancelled` for a request that is abandoned before its answer: the
/// user pressed Ctrl-C, or the agent dropped the call.
struct CancelOnDrop {
    peer: Peer<RoleClient>,
    id: Option<RequestId>,
}

impl CancelOnDrop {
    fn send(&mut self, reason: &str) {
        let Some(id) = self.id.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let peer = self.peer.clone();
        let notification = CancelledNotification::new(CancelledNotificationParam::new(
            Some(id),
            Some(reason.to_owned()),
        ));
        runtime.spawn(async move {
            let _ = peer.send_notification(notification.into()).await;
        });
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.send("the call was abandoned");
    }
}

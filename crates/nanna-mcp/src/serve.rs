//! `nanna mcp-server`: nanna's own tools for other MCP clients (editors, other agents), over
//! stdio or streamable HTTP on a loopback address.
//!
//! The server offers exactly the tools of the registry it is given (the CLI builds it from
//! the sandbox policy, so a read-only server has no write or exec tools at all) and runs every
//! call through [`ToolRegistry::execute`] with one [`ToolContext`]: the same argument
//! validation, workspace confinement and output bounds as in a chat session. A client's
//! `notifications/cancelled` cancels the call (rmcp cancels the request's token).
//!
//! Over HTTP, the MCP specification's transport security applies (Streamable HTTP,
//! "Security Warning": validate `Origin`, bind to localhost, authenticate): the listener must
//! be a loopback address, rmcp checks `Host` against loopback names (DNS rebinding), any
//! browser `Origin` is refused, and every request must carry `Authorization: Bearer TOKEN`,
//! because any local user can reach a loopback port.

use std::net::SocketAddr;
use std::sync::Arc;

use nanna_tools::{Effect, ToolContext, ToolError, ToolRegistry};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler, ServiceExt as _};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address is not a loopback address.
    #[error(
        "refusing to listen on {0}: `nanna mcp-server --http` serves only a loopback address \
         (127.0.0.1 or [::1]), because its tools read and change files; reach it from elsewhere \
         through an SSH tunnel"
    )]
    NotLoopback(SocketAddr),
    /// The MCP session could not start or broke.
    #[error("MCP server: {0}")]
    Protocol(String),
    /// Listening or serving failed.
    #[error("MCP server: {0}")]
    Io(#[from] std::io::Error),
}

/// nanna's tools as an MCP server.
#[derive(Clone)]
pub struct ToolServer {
    registry: Arc<ToolRegistry>,
    ctx: ToolContext,
    instructions: String,
    /// Said when a client calls a tool this server does not offer (e.g. why writes are off).
    policy_note: Option<String>,
}

impl ToolServer {
    /// Serves the tools of `registry`, each call running in `ctx` (workspace, limits).
    pub fn new(registry: ToolRegistry, ctx: ToolContext) -> Self {
        let instructions = format!(
            "nanna's coding tools. Paths are relative to the workspace {} and cannot leave it.",
            ctx.workspace.display()
        );
        Self {
            registry: Arc::new(registry),
            ctx,
            instructions,
            policy_note: None,
        }
    }

    /// Adds `note` to the error for a tool that is not offered (say which policy left it out
    /// and how to allow it).
    pub fn with_policy_note(mut self, note: impl Into<String>) -> Self {
        self.policy_note = Some(note.into());
        self
    }

    /// The tools as MCP lists them.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.registry
            .definitions()
            .into_iter()
            .map(|def| {
                let effect = self
                    .registry
                    .get(def.name())
                    .map_or(Effect::Exec, |t| t.effect());
                let schema = match serde_json::to_value(&def.function.parameters) {
                    Ok(Value::Object(map)) => map,
                    _ => serde_json::Map::new(),
                };
                let annotations = ToolAnnotations::new()
                    .read_only(effect == Effect::ReadOnly)
                    .destructive(effect != Effect::ReadOnly);
                rmcp::model::Tool::new(
                    def.function.name.clone(),
                    def.function.description.clone(),
                    Arc::new(schema),
                )
                .with_annotations(annotations)
            })
            .collect()
    }

    /// Serves one client on stdin/stdout until it disconnects. Nothing else may write to
    /// stdout meanwhile.
    pub async fn serve_stdio(self) -> Result<(), ServeError> {
        let running = self
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| ServeError::Protocol(e.to_string()))?;
        running
            .waiting()
            .await
            .map_err(|e| ServeError::Protocol(e.to_string()))?;
        Ok(())
    }

    /// Serves streamable HTTP at `/mcp` on `listener` (which must be bound to a loopback
    /// address) until `shutdown` fires. Requests without `Authorization: Bearer {token}` get
    /// 401.
    pub async fn serve_http(
        self,
        listener: tokio::net::TcpListener,
        token: String,
        shutdown: CancellationToken,
    ) -> Result<(), ServeError> {
        let addr = listener.local_addr()?;
        check_loopback(addr)?;
        let config = StreamableHttpServerConfig::default()
            .enforce_origin_validation()
            .with_cancellation_token(shutdown.child_token());
        let server = self.clone();
        let service: StreamableHttpService<ToolServer, LocalSessionManager> =
            StreamableHttpService::new(move || Ok(server.clone()), Default::default(), config);
        let expected = Arc::new(format!("Bearer {token}"));
        let router = axum::Router::new().nest_service("/mcp", service).layer(
            axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let expected = expected.clone();
                    async move {
                        let given = request
                            .headers()
                            .get(http::header::AUTHORIZATION)
                            .map(|v| v.as_bytes())
                            .unwrap_or_default();
                        if constant_time_eq(given, expected.as_bytes()) {
                            next.run(request).await
                        } else {
                            axum::response::IntoResponse::into_response((
                                http::StatusCode::UNAUTHORIZED,
                                [(http::header::WWW_AUTHENTICATE, "Bearer")],
                                "missing or wrong bearer token: send the token `nanna mcp-server` \
                                 printed as `Authorization: Bearer TOKEN`\n",
                            ))
                        }
                    }
                },
            ),
        );
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await?;
        Ok(())
    }
}

/// Refuses any address but a loopback one.
pub fn check_loopback(addr: SocketAddr) -> Result<(), ServeError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(ServeError::NotLoopback(addr))
    }
}

/// A fresh random bearer token (256 bits, hex).
pub fn new_token() -> Result<String, ServeError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ServeError::Protocol(format!("cannot make a random token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ServerHandler for ToolServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("nanna", env!("CARGO_PKG_VERSION")))
            .with_instructions(self.instructions.clone())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = Value::Object(request.arguments.unwrap_or_default());
        let ctx = self.ctx.clone().with_cancel(context.ct.clone());
        match self.registry.execute(&request.name, args, &ctx).await {
            Ok(output) => {
                let mut content = vec![ContentBlock::text(output.content)];
                for image in output.images {
                    content.push(ContentBlock::image(image, "image/png"));
                }
                Ok(CallToolResult::success(content).into())
            }
            // An unknown tool is a protocol error; everything else is the tool's own error,
            // which the specification asks servers to return as a result so that the model
            // can correct itself.
            Err(e @ ToolError::UnknownTool { .. }) => {
                let message = match &self.policy_note {
                    Some(note) => format!("{e}. {note}"),
                    None => e.to_string(),
                };
                Err(ErrorData::invalid_params(message, None))
            }
            Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(e.to_string())]).into()),
        }
    }
}

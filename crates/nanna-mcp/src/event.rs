//! [`McpEvent`]: what the MCP client reports while servers start, work and stop. The CLI
//! renders them (a line on the terminal, a JSON object with `exec --json`).

use std::sync::Arc;

use serde::Serialize;

/// Something the user should see about the MCP servers. Serializes as
/// `{"type": "mcp_server_ready", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum McpEvent {
    /// The enabled servers are being started (in parallel).
    #[serde(rename = "mcp_servers_starting")]
    ServersStarting {
        /// Their names.
        servers: Vec<String>,
    },
    /// A server answered the handshake and listed its tools.
    #[serde(rename = "mcp_server_ready")]
    ServerReady {
        /// The server's configured name.
        server: String,
        /// Its own name and version, as it reported them.
        implementation: String,
        /// Tools offered to the model (after `enabled_tools` / `disabled_tools`).
        tools: usize,
        /// Time from start to tool list.
        elapsed_ms: u64,
    },
    /// A server could not be started; the session goes on without it.
    #[serde(rename = "mcp_server_failed")]
    ServerFailed {
        /// The server's configured name.
        server: String,
        /// What went wrong and what to do.
        message: String,
        /// The last lines it wrote to stderr (stdio servers), possibly empty.
        stderr: String,
    },
    /// One of a server's tools is not offered (its schema cannot be used).
    #[serde(rename = "mcp_tool_skipped")]
    ToolSkipped {
        /// The server's configured name.
        server: String,
        /// The tool's own name.
        tool: String,
        /// Why.
        reason: String,
    },
    /// A running tool reported progress.
    #[serde(rename = "mcp_progress")]
    Progress {
        /// The tool's name as the model calls it (`server__tool`).
        tool: String,
        /// Progress so far (increases with every notification).
        progress: f64,
        /// The total, when the server knows it.
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<f64>,
        /// The server's words about the step.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A server stopped while the session was using it; its tools now fail with a message.
    #[serde(rename = "mcp_server_exited")]
    ServerExited {
        /// The server's configured name.
        server: String,
        /// What happened.
        message: String,
        /// The last lines it wrote to stderr, possibly empty.
        stderr: String,
    },
}

/// Where [`McpEvent`]s go; called from any task, so it must not block.
pub type EventSink = Arc<dyn Fn(McpEvent) + Send + Sync>;

/// A sink that drops every event.
pub fn ignore_events() -> EventSink {
    Arc::new(|_| {})
}

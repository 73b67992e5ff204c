//! `nanna-mcp`: the Model Context Protocol for Nanna Coder, on the official Rust SDK (`rmcp`).
//!
//! - Client: [`McpServers::start`] starts the `[mcp_servers.NAME]` servers of the
//!   configuration (`nanna_config::Config::mcp`) in parallel, each bounded by its startup timeout, and
//!   [`McpServers::register`] adds their tools to a [`nanna_tools::ToolRegistry`] as
//!   `NAME__tool`, so the agent treats them like built-ins: schemas validated, approval
//!   unless the server marks a tool read-only, results mapped from MCP content, progress
//!   reported, calls cancelled on Ctrl-C. What happens is reported as [`McpEvent`]s.
//! - Server: [`serve`] exposes nanna's own tools to other MCP clients.

#![warn(missing_docs)]

mod client;
mod content;
mod event;
mod names;
mod process;
mod schema;
pub mod serve;

pub use client::McpServers;
pub use event::{EventSink, McpEvent, ignore_events};
pub use names::{MAX_TOOL_NAME, is_valid_tool_name};
pub use nanna_config::mcp::{McpConfig, McpServerConfig, McpTransport};
pub use schema::SchemaError;

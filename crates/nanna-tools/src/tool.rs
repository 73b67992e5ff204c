//! The [`Tool`] trait, its [`Effect`] and [`ToolOutput`].

use async_trait::async_trait;
use nanna_model::ToolDefinition;
use serde_json::Value;

use crate::context::ToolContext;
use crate::error::ToolError;

/// What a tool does to the world: drives approval and concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Only reads; needs no approval and may run concurrently with other reads.
    ReadOnly,
    /// Changes files; needs approval.
    Write,
    /// Runs commands; needs approval.
    Exec,
}

/// The result of a successful tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// What the model sees.
    pub content: String,
    /// One line for the terminal, e.g. `edit src/main.rs (+3 -1)`.
    pub summary: String,
    /// Base64-encoded images the tool returned (an MCP tool's image content). `content`
    /// already mentions them in words; vision models also get the pixels.
    pub images: Vec<String>,
}

impl ToolOutput {
    /// An output with `content` for the model and `summary` for the terminal.
    pub fn new(content: impl Into<String>, summary: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            summary: summary.into(),
            images: Vec::new(),
        }
    }

    /// Attaches base64-encoded images.
    pub fn with_images(mut self, images: Vec<String>) -> Self {
        self.images = images;
        self
    }
}

/// A function the model can call.
#[async_trait]
pub trait Tool: Send + Sync {
    /// Name, description and argument schema offered to the model.
    fn definition(&self) -> &ToolDefinition;
    /// What the tool does to the world.
    fn effect(&self) -> Effect;
    /// One-line description of a call before it runs, e.g. `read src/lib.rs:1-40`.
    fn describe(&self, args: &Value) -> String;
    /// Runs the call. `args` have been validated against the schema by the registry.
    async fn execute(&self, args: Value, ctx: &ToolContext) -> Result<ToolOutput, ToolError>;
}

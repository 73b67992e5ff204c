//! The built-in tools and helpers they share.

pub(crate) mod calc;
mod files;
mod search;
mod shell;

use nanna_model::{JsonSchema, SchemaType};
use serde_json::Value;

use crate::context::ToolContext;
use crate::error::ToolError;
use crate::tool::Tool;
use crate::workspace::{self, WorkspacePath};

/// Built-ins outside the default coding set: they cost prompt tokens on every request and
/// rarely help with code. Offered only when configured (`extra_tools`).
pub(crate) const NOT_IN_CODING_SET: [&str; 2] = ["echo", "calculate"];

/// Every built-in tool, in the order offered to the model.
pub(crate) fn all() -> Vec<Box<dyn Tool>> {
    vec![
        Box::new(files::ReadFile::new()),
        Box::new(files::WriteFile::new()),
        Box::new(files::EditFile::new()),
        Box::new(search::ListDir::new()),
        Box::new(search::Glob::new()),
        Box::new(search::Grep::new()),
        Box::new(shell::Shell::new()),
        Box::new(calc::Echo::new()),
        Box::new(calc::Calculate::new()),
    ]
}

/// An object schema that refuses unknown properties, built from `(name, schema, required)`.
fn params(props: Vec<(&str, JsonSchema, bool)>) -> JsonSchema {
    let mut schema = JsonSchema::object();
    for (name, prop, required) in props {
        schema = schema.property(name, prop, required);
    }
    schema.additional_properties = Some(false);
    schema
}

/// A schema of `ty` without a description (for self-explanatory arguments).
fn bare(ty: SchemaType) -> JsonSchema {
    JsonSchema::of(ty)
}

/// A string argument (validated present if required by the schema).
fn str_arg<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

/// A required string argument; the registry has validated it, but direct callers may not.
fn required_str<'a>(args: &'a Value, tool: &str, name: &str) -> Result<&'a str, ToolError> {
    str_arg(args, name).ok_or_else(|| ToolError::InvalidArguments {
        tool: tool.to_owned(),
        detail: format!("missing required argument `{name}` (a string)"),
    })
}

/// A non-negative integer argument.
fn uint_arg(args: &Value, name: &str) -> Option<u64> {
    args.get(name).and_then(Value::as_u64)
}

/// A boolean argument, `false` when absent.
fn flag(args: &Value, name: &str) -> bool {
    args.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// The canonical workspace root. `ToolContext::new` canonicalizes already; this guards
/// contexts built by hand with a relative or symlinked root.
fn root(ctx: &ToolContext) -> std::path::PathBuf {
    std::fs::canonicalize(&ctx.workspace).unwrap_or_else(|_| ctx.workspace.clone())
}

/// Resolves a path argument inside the workspace.
fn resolve(ctx: &ToolContext, raw: &str) -> Result<WorkspacePath, ToolError> {
    workspace::resolve(&root(ctx), raw)
}

/// [`resolve`] for a path a tool is about to write: also refused where the session's
/// sandbox forbids the write (git's metadata in `workspace-write`).
fn resolve_writable(ctx: &ToolContext, raw: &str) -> Result<WorkspacePath, ToolError> {
    let path = resolve(ctx, raw)?;
    match ctx.sandbox.write_refusal(&path.abs) {
        Some(why) => Err(ToolError::Failed(format!("refused: {why}"))),
        None => Ok(path),
    }
}

/// Runs blocking filesystem work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ToolError::Failed(format!("internal error: tool task failed: {e}")))?
}

/// `path` for a one-line description, falling back to `?`.
fn path_for_display(args: &Value) -> &str {
    str_arg(args, "path").unwrap_or("?")
}

//! [`ToolRegistry`]: the set of tools offered to the model.

use nanna_model::ToolDefinition;
use serde_json::Value;

use crate::context::ToolContext;
use crate::error::ToolError;
use crate::tool::{Tool, ToolOutput};

/// The tools offered to the model, in registration order.
#[derive(Default)]
pub struct ToolRegistry {
    tools: Vec<Box<dyn Tool>>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRegistry")
            .field("tools", &self.names())
            .finish()
    }
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with every built-in tool.
    pub fn with_builtins() -> Self {
        let mut registry = Self::new();
        for tool in crate::builtins::all() {
            registry.register(tool);
        }
        registry
    }

    /// The default coding set: every built-in except `echo` and `calculate` (add those with
    /// [`ToolRegistry::add_builtin`] when configured).
    pub fn coding() -> Self {
        let mut registry = Self::new();
        for tool in crate::builtins::all() {
            if !crate::builtins::NOT_IN_CODING_SET.contains(&tool.definition().name()) {
                registry.register(tool);
            }
        }
        registry
    }

    /// Adds the built-in tool called `name`; an error naming the built-ins if there is none.
    pub fn add_builtin(&mut self, name: &str) -> Result<(), ToolError> {
        let mut all = crate::builtins::all();
        let Some(i) = all.iter().position(|t| t.definition().name() == name) else {
            return Err(ToolError::UnknownTool {
                name: name.to_owned(),
                available: all
                    .iter()
                    .map(|t| t.definition().name().to_owned())
                    .collect(),
            });
        };
        self.register(all.swap_remove(i));
        Ok(())
    }

    /// Adds `tool`, replacing a tool of the same name.
    pub fn register(&mut self, tool: Box<dyn Tool>) {
        let name = tool.definition().name().to_owned();
        match self
            .tools
            .iter()
            .position(|t| t.definition().name() == name)
        {
            Some(i) => self.tools[i] = tool,
            None => self.tools.push(tool),
        }
    }

    /// Keeps only the tools `keep` accepts (e.g. those a policy lets run).
    pub fn retain(&mut self, mut keep: impl FnMut(&dyn Tool) -> bool) {
        self.tools.retain(|t| keep(t.as_ref()));
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&dyn Tool> {
        self.tools
            .iter()
            .find(|t| t.definition().name() == name)
            .map(|t| t.as_ref())
    }

    /// Definitions of all tools, to send with a request.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.tools.iter().map(|t| t.definition().clone()).collect()
    }

    /// Names of all tools.
    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.definition().name()).collect()
    }

    /// Checks that `name` exists and `args` fit its schema, returning the arguments as
    /// [`ToolRegistry::execute`] would pass them (numbers sent as strings coerced, `null`
    /// optional arguments dropped). Lets a caller refuse a bad call before asking for approval.
    pub fn validate(&self, name: &str, args: Value) -> Result<Value, ToolError> {
        self.checked(name, args).map(|(_, args)| args)
    }

    fn checked(&self, name: &str, args: Value) -> Result<(&dyn Tool, Value), ToolError> {
        let tool = self.get(name).ok_or_else(|| ToolError::UnknownTool {
            name: name.to_owned(),
            available: self.names().into_iter().map(str::to_owned).collect(),
        })?;
        let def = tool.definition();
        let args = crate::schema::validate(&def.function.parameters, args).map_err(|detail| {
            ToolError::InvalidArguments {
                tool: name.to_owned(),
                detail,
            }
        })?;
        Ok((tool, args))
    }

    /// Validates `args` against the tool's schema (coercing numbers sent as strings), then
    /// runs it and caps its output at `ctx.limits.max_output_bytes`, keeping head and tail.
    /// Unknown tools and invalid arguments are errors for the model, never panics.
    pub async fn execute(
        &self,
        name: &str,
        args: Value,
        ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let (tool, args) = self.checked(name, args)?;
        if ctx.cancel.is_cancelled() {
            return Err(ToolError::Cancelled);
        }
        let mut output = tool.execute(args, ctx).await?;
        let max = ctx.limits.max_output_bytes;
        if output.content.len() > max {
            output.content = crate::output::head_tail(&output.content, max.saturating_sub(40));
        }
        Ok(output)
    }
}

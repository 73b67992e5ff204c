//! `nanna tools`: the tools offered to the model, with their JSON schemas.

use std::io::Write;

use nanna_tools::ToolRegistry;

use crate::error::{CliError, Result};
use crate::render::Style;

/// Prints the built-in tools.
pub fn run(json: bool) -> Result<()> {
    let defs = ToolRegistry::with_builtins().definitions();
    let mut out = std::io::stdout().lock();
    let write_err = |e| CliError::io("writing the tool list", e);
    if json {
        let text = serde_json::to_string(&defs).map_err(|e| CliError::Other(e.to_string()))?;
        writeln!(out, "{text}").map_err(write_err)?;
        return Ok(());
    }
    let style = Style::stdout();
    for def in &defs {
        let f = &def.function;
        writeln!(out, "{}  {}", style.bold(&f.name), f.description).map_err(write_err)?;
        let schema =
            serde_json::to_string(&f.parameters).map_err(|e| CliError::Other(e.to_string()))?;
        writeln!(out, "    {}", style.dim(&schema)).map_err(write_err)?;
    }
    if defs.is_empty() {
        writeln!(out, "no tools are registered").map_err(write_err)?;
    }
    Ok(())
}

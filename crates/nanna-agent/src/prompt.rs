//! The system prompt: lean, stable across turns (no clocks, no changing text) so the
//! server's prompt cache keeps matching.

use std::fmt::Write as _;
use std::path::Path;

use nanna_model::{JsonSchema, SchemaType, ToolDefinition};

/// Largest `AGENTS.md` included in the prompt, in bytes; longer files are cut with a note.
pub const AGENTS_MD_MAX_BYTES: usize = 8 * 1024;

const BASE: &str = "You are Nanna, a coding assistant. You work in the user's project and help \
with software tasks: reading and changing code, running commands, answering questions.";

const WITH_TOOLS: &str = "\
How to work:
- Look before you act: read files and search with the tools instead of guessing. Paths are relative to the workspace.
- Make focused changes in the project's existing style; edit files rather than rewriting them.
- After changing code, run the relevant build or tests when you can, and fix what fails.
- Never invent file contents or command output.
- If a tool call fails, read the error and change your approach; do not repeat the same failing call.
- If the user declines a call, do not retry it; explain or ask.
- Ask the user only when the task is truly ambiguous.
- When done, answer briefly: what you changed or found, and what is left.";

const WITHOUT_TOOLS: &str = "\
Tools are off in this session: you cannot read files or run commands. Answer from the \
conversation, and say so when you would need to see a file or run something.";

/// Builds the base system prompt for `workspace`, with the project's `AGENTS.md` (cut at
/// [`AGENTS_MD_MAX_BYTES`], with a note) and the working rules for a session with or without
/// tools. Deterministic: the same inputs give the same text.
pub fn system_prompt(workspace: &Path, agents_md: Option<&str>, tools_enabled: bool) -> String {
    let mut out = String::with_capacity(1536);
    out.push_str(BASE);
    let _ = write!(out, "\nWorkspace: {}\n\n", workspace.display());
    out.push_str(if tools_enabled {
        WITH_TOOLS
    } else {
        WITHOUT_TOOLS
    });
    if let Some(md) = agents_md.map(str::trim).filter(|md| !md.is_empty()) {
        out.push_str("\n\nProject instructions (AGENTS.md):\n");
        if md.len() > AGENTS_MD_MAX_BYTES {
            let mut cut = AGENTS_MD_MAX_BYTES;
            while !md.is_char_boundary(cut) {
                cut -= 1;
            }
            // End at a line break when there is one reasonably close.
            if let Some(nl) = md[..cut].rfind('\n').filter(|&nl| nl > cut / 2) {
                cut = nl;
            }
            out.push_str(&md[..cut]);
            let _ = write!(
                out,
                "\n[AGENTS.md truncated: {} of {} bytes omitted; read the file for the rest]",
                md.len() - cut,
                md.len()
            );
        } else {
            out.push_str(md);
        }
    }
    out
}

/// One line telling the model what its commands may do, so it does not try what the
/// sandbox forbids (installing packages without network, writing outside the workspace).
/// `None` for `full`, where nothing is confined.
pub(crate) fn sandbox_note(mode: nanna_sandbox::SandboxMode, network: bool) -> Option<String> {
    use nanna_sandbox::SandboxMode;
    let files = match mode {
        SandboxMode::ReadOnly => "commands cannot write files",
        SandboxMode::WorkspaceWrite => "commands write only in the workspace and $TMPDIR",
        SandboxMode::Full => return None,
    };
    let net = if network { "" } else { "; no network" };
    Some(format!("\nSandbox: {files}{net}."))
}

/// Tool instructions for a model without native tool calling: how to write a call as text,
/// and one compact line per tool (`name(arg: type, opt?: type): description`).
pub fn text_tool_instructions(tools: &[ToolDefinition]) -> String {
    let mut out = String::with_capacity(256 + tools.len() * 120);
    out.push_str(
        "\n\nTools: to call one, reply with only this block (one block per call), then wait for the result:\n\
<tool_call>{\"name\": \"TOOL\", \"arguments\": {...}}</tool_call>\n\
Results come back in <tool_result> blocks. When you need no tool, answer normally. Available tools:",
    );
    for tool in tools {
        let f = &tool.function;
        let _ = write!(out, "\n- {}(", f.name);
        if let Some(props) = &f.parameters.properties {
            let required = f.parameters.required.as_deref().unwrap_or(&[]);
            for (i, (name, schema)) in props.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let opt = if required.iter().any(|r| r == name) {
                    ""
                } else {
                    "?"
                };
                let _ = write!(out, "{name}{opt}: {}", type_name(schema));
            }
        }
        let _ = write!(out, "): {}", first_sentence(&f.description));
    }
    out
}

fn type_name(schema: &JsonSchema) -> String {
    match schema.schema_type {
        SchemaType::Array => match &schema.items {
            Some(items) => format!("{}[]", type_name(items)),
            None => "array".into(),
        },
        SchemaType::String => match &schema.enum_values {
            Some(values) => values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("|"),
            None => "string".into(),
        },
        SchemaType::Object => "object".into(),
        SchemaType::Integer => "integer".into(),
        SchemaType::Number => "number".into(),
        SchemaType::Boolean => "boolean".into(),
        SchemaType::Null => "null".into(),
    }
}

fn first_sentence(text: &str) -> &str {
    let text = text.trim();
    match text.find(". ") {
        Some(i) => &text[..=i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::estimate_text;

    #[test]
    fn prompt_is_deterministic_and_lean() {
        let ws = Path::new("/home/u/project");
        let a = system_prompt(ws, None, true);
        let b = system_prompt(ws, None, true);
        assert_eq!(a, b);
        assert!(a.contains("/home/u/project"));
        assert!(
            estimate_text(&a) <= 500,
            "base prompt ~{} tokens",
            estimate_text(&a)
        );
        let off = system_prompt(ws, None, false);
        assert!(off.contains("Tools are off"));
        assert!(!off.contains("How to work"));
    }

    #[test]
    fn agents_md_is_included_and_bounded() {
        let ws = Path::new("/w");
        let p = system_prompt(ws, Some("Use tabs.\n"), true);
        assert!(p.ends_with("AGENTS.md):\nUse tabs."));
        let big = "line of rules é\n".repeat(1000);
        let p = system_prompt(ws, Some(&big), true);
        assert!(p.contains("[AGENTS.md truncated:"));
        assert!(p.len() < AGENTS_MD_MAX_BYTES + 2000);
        let blank = system_prompt(ws, Some("  \n"), true);
        assert!(!blank.contains("AGENTS.md"));
    }

    #[test]
    fn text_tool_lines_are_compact() {
        let def = ToolDefinition::function(
            "read_file",
            "Read a file. Long explanation follows.",
            JsonSchema::object()
                .property("path", JsonSchema::string("p"), true)
                .property("limit", JsonSchema::integer("n"), false),
        );
        let s = text_tool_instructions(&[def]);
        assert!(
            s.contains("- read_file(limit?: integer, path: string): Read a file."),
            "{s}"
        );
        assert!(s.contains("<tool_call>"));
    }
}

//! Recognising tool calls that a model wrote as text instead of using native tool calling.
//!
//! Accepted forms, only when the name is a known tool:
//! - `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (Hermes/Qwen style; a missing
//!   closing tag at the end of the reply is tolerated);
//! - a fenced code block (```` ```json ````, ```` ```tool_call ```` or unlabeled) holding such an object
//!   or an array of them;
//! - a bare JSON object starting a line.
//!
//! Arguments may be under `arguments`, `parameters`, `args` or `input`, and may be a JSON
//! string holding an object. OpenAI-shaped `{"type": "function", "function": {...}}` and
//! `{"tool_calls": [...]}` wrappers are unwrapped.

use std::ops::Range;

use serde_json::{Map, Value};

/// A tool call found in text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextToolCall {
    /// Tool name.
    pub name: String,
    /// Arguments (normally an object).
    pub arguments: Value,
    /// Byte range of the text the call was written in.
    pub span: Range<usize>,
}

/// Finds the tool calls written in `content`, in order; `is_known` says which names are tools.
pub fn parse_text_tool_calls(content: &str, is_known: &dyn Fn(&str) -> bool) -> Vec<TextToolCall> {
    let tagged = tagged_calls(content, is_known);
    if !tagged.is_empty() {
        return tagged;
    }
    let fenced = fenced_calls(content, is_known);
    if !fenced.is_empty() {
        return fenced;
    }
    bare_calls(content, is_known)
}

/// `content` without the text of `calls`, trimmed.
pub fn strip_calls(content: &str, calls: &[TextToolCall]) -> String {
    let mut out = String::with_capacity(content.len());
    let mut at = 0;
    for call in calls {
        if call.span.start >= at {
            out.push_str(&content[at..call.span.start]);
            at = call.span.end;
        }
    }
    out.push_str(&content[at.min(content.len())..]);
    out.trim().to_owned()
}

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

fn tagged_calls(content: &str, is_known: &dyn Fn(&str) -> bool) -> Vec<TextToolCall> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = content[from..].find(OPEN) {
        let start = from + rel;
        let inner_start = start + OPEN.len();
        let rest = &content[inner_start..];
        let (inner_end, end) = match (rest.find(CLOSE), rest.find(OPEN)) {
            (Some(c), Some(o)) if o < c => (inner_start + o, inner_start + o),
            (Some(c), _) => (inner_start + c, inner_start + c + CLOSE.len()),
            (None, Some(o)) => (inner_start + o, inner_start + o),
            (None, None) => (content.len(), content.len()),
        };
        let inner = strip_fence(content[inner_start..inner_end].trim());
        if let Ok(value) = serde_json::from_str::<Value>(inner) {
            push_calls(value, start..end, is_known, &mut out);
        }
        from = end.max(inner_start);
    }
    out
}

fn strip_fence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else {
        return text;
    };
    let body = rest.split_once('\n').map_or("", |(_, body)| body);
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

fn fenced_calls(content: &str, is_known: &dyn Fn(&str) -> bool) -> Vec<TextToolCall> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = content[from..].find("```") {
        let start = from + rel;
        let after = start + 3;
        let Some(nl) = content[after..].find('\n') else {
            break;
        };
        let label = content[after..after + nl].trim().to_ascii_lowercase();
        let body_start = after + nl + 1;
        let Some(close_rel) = content[body_start..].find("```") else {
            break;
        };
        let body_end = body_start + close_rel;
        let end = body_end + 3;
        if matches!(label.as_str(), "" | "json" | "tool_call" | "tool" | "jsonc")
            && let Ok(value) = serde_json::from_str::<Value>(content[body_start..body_end].trim())
        {
            push_calls(value, start..end, is_known, &mut out);
        }
        from = end;
    }
    out
}

fn bare_calls(content: &str, is_known: &dyn Fn(&str) -> bool) -> Vec<TextToolCall> {
    let mut out = Vec::new();
    let bytes = content.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if (bytes[i] == b'{' || bytes[i] == b'[') && starts_line(content, i) {
            let mut stream = serde_json::Deserializer::from_str(&content[i..]).into_iter::<Value>();
            if let Some(Ok(value)) = stream.next() {
                let end = i + stream.byte_offset();
                let before = out.len();
                push_calls(value, i..end, is_known, &mut out);
                if out.len() > before {
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

fn starts_line(content: &str, at: usize) -> bool {
    content[..at]
        .bytes()
        .rev()
        .take_while(|&b| b != b'\n')
        .all(|b| b == b' ' || b == b'\t')
}

fn push_calls(
    value: Value,
    span: Range<usize>,
    is_known: &dyn Fn(&str) -> bool,
    out: &mut Vec<TextToolCall>,
) {
    match value {
        Value::Array(items) => {
            for item in items {
                push_calls(item, span.clone(), is_known, out);
            }
        }
        Value::Object(mut obj) => {
            if let Some(Value::Array(calls)) = obj.remove("tool_calls") {
                for call in calls {
                    push_calls(call, span.clone(), is_known, out);
                }
                return;
            }
            if let Some(Value::Object(function)) = obj.remove("function") {
                push_calls(Value::Object(function), span, is_known, out);
                return;
            }
            if let Some(call) = call_from_object(obj, is_known) {
                out.push(TextToolCall {
                    name: call.0,
                    arguments: call.1,
                    span,
                });
            }
        }
        _ => {}
    }
}

fn call_from_object(
    mut obj: Map<String, Value>,
    is_known: &dyn Fn(&str) -> bool,
) -> Option<(String, Value)> {
    let name = match obj.remove("name")? {
        Value::String(name) => name,
        _ => return None,
    };
    if !is_known(&name) {
        return None;
    }
    let arguments = ["arguments", "parameters", "args", "input"]
        .iter()
        .find_map(|key| obj.remove(*key));
    let arguments = match arguments {
        Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(v @ Value::Object(_)) => v,
            _ => Value::String(s),
        },
        Some(Value::Null) | None => {
            // `{"name": "x"}` alone is a call without arguments; anything else is not a call.
            let only_noise = obj.keys().all(|k| k == "type" || k == "id");
            if !only_noise {
                return None;
            }
            Value::Object(Map::new())
        }
        Some(v) => v,
    };
    Some((name, arguments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn known(name: &str) -> bool {
        matches!(name, "read_file" | "shell" | "list_dir")
    }

    fn parse(s: &str) -> Vec<(String, Value)> {
        parse_text_tool_calls(s, &known)
            .into_iter()
            .map(|c| (c.name, c.arguments))
            .collect()
    }

    #[test]
    fn hermes_tags_single_and_multiple() {
        let s = "Let me look.\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.rs\"}}\n</tool_call>";
        assert_eq!(
            parse(s),
            vec![("read_file".into(), json!({"path": "a.rs"}))]
        );
        let s = "<tool_call>{\"name\":\"read_file\",\"arguments\":{\"path\":\"a\"}}</tool_call>\n<tool_call>{\"name\":\"shell\",\"arguments\":{\"command\":\"ls\"}}</tool_call>";
        assert_eq!(
            parse(s),
            vec![
                ("read_file".into(), json!({"path": "a"})),
                ("shell".into(), json!({"command": "ls"}))
            ]
        );
    }

    #[test]
    fn hermes_tag_without_close_and_with_inner_fence() {
        let s = "<tool_call>{\"name\": \"list_dir\", \"arguments\": {}}";
        assert_eq!(parse(s), vec![("list_dir".into(), json!({}))]);
        let s = "<tool_call>\n```json\n{\"name\": \"list_dir\", \"arguments\": {\"path\": \".\"}}\n```\n</tool_call>";
        assert_eq!(parse(s), vec![("list_dir".into(), json!({"path": "."}))]);
    }

    #[test]
    fn fenced_json_block() {
        let s = "I'll run it:\n```json\n{\"name\": \"shell\", \"parameters\": {\"command\": \"cargo test\"}}\n```\nthen report.";
        assert_eq!(
            parse(s),
            vec![("shell".into(), json!({"command": "cargo test"}))]
        );
        let s = "```\n[{\"name\": \"read_file\", \"arguments\": {\"path\": \"x\"}}, {\"name\": \"read_file\", \"arguments\": {\"path\": \"y\"}}]\n```";
        assert_eq!(parse(s).len(), 2);
    }

    #[test]
    fn fenced_code_in_other_languages_is_ignored() {
        let s = "```rust\nfn main() { let x = {\"name\": 1}; }\n```";
        assert!(parse(s).is_empty());
    }

    #[test]
    fn bare_object_and_argument_variants() {
        assert_eq!(
            parse("{\"name\": \"read_file\", \"arguments\": \"{\\\"path\\\": \\\"z\\\"}\"}"),
            vec![("read_file".into(), json!({"path": "z"}))]
        );
        assert_eq!(
            parse("Sure.\n  {\"name\": \"shell\", \"args\": {\"command\": \"ls\"}}"),
            vec![("shell".into(), json!({"command": "ls"}))]
        );
        assert_eq!(
            parse(
                "{\"type\": \"function\", \"function\": {\"name\": \"list_dir\", \"arguments\": {\"path\": \"src\"}}}"
            ),
            vec![("list_dir".into(), json!({"path": "src"}))]
        );
        assert_eq!(
            parse(
                "{\"tool_calls\": [{\"function\": {\"name\": \"list_dir\", \"arguments\": {}}}]}"
            ),
            vec![("list_dir".into(), json!({}))]
        );
        assert_eq!(
            parse("{\"name\": \"list_dir\"}"),
            vec![("list_dir".into(), json!({}))]
        );
    }

    #[test]
    fn unknown_names_and_non_calls_are_not_calls() {
        assert!(parse("{\"name\": \"rm_rf\", \"arguments\": {}}").is_empty());
        assert!(parse("<tool_call>{\"name\": \"nope\", \"arguments\": {}}</tool_call>").is_empty());
        assert!(parse("{\"name\": \"read_file\", \"age\": 3}").is_empty());
        assert!(
            parse("The config is {\"name\": \"read_file\", \"arguments\": {}} inline.").is_empty()
        );
        assert!(parse("Plain answer with { braces } and [brackets].").is_empty());
        assert!(parse("<tool_call>not json</tool_call>").is_empty());
        assert!(
            parse("```json\n{\"name\": \"shell\", \"arguments\": {\"command\": \n```").is_empty()
        );
        assert!(parse("").is_empty());
    }

    #[test]
    fn strip_removes_call_text() {
        let s = "Reading it now.\n<tool_call>{\"name\":\"read_file\",\"arguments\":{\"path\":\"a\"}}</tool_call>\n";
        let calls = parse_text_tool_calls(s, &known);
        assert_eq!(strip_calls(s, &calls), "Reading it now.");
        let s = "<tool_call>{\"name\":\"read_file\",\"arguments\":{\"path\":\"a\"}}</tool_call>";
        let calls = parse_text_tool_calls(s, &known);
        assert_eq!(calls[0].span, 0..s.len());
        assert_eq!(strip_calls(s, &calls), "");
    }

    #[test]
    fn malformed_input_never_panics() {
        for s in [
            "<tool_call>",
            "</tool_call><tool_call>",
            "```",
            "```json",
            "```json\n",
            "{",
            "[{\"name\": \"read_file\"",
            "é<tool_call>é{\"name\":\"shell\"}é",
            "\n{\n",
        ] {
            let _ = parse(s);
        }
        assert_eq!(parse("é<tool_call>{\"name\":\"shell\"}").len(), 1);
    }
}

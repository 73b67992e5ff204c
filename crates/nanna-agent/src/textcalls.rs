//! Recognising tool calls that a model wrote as text instead of using native tool calling.
//!
//! Forms, in order of precedence:
//! - `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (Hermes/Qwen style; a missing
//!   closing tag at the end of the reply is tolerated). Always recognised: Qwen models emit it
//!   in content when the server's parser misses it. Markup whose content starts like JSON but
//!   cannot be read as a call is reported ([`TextToolCall::problem`]) so the model learns
//!   what was wrong, and any tool name is taken (an unknown one gets the registry's error).
//! - a fenced code block (```` ```json ````, ```` ```tool_call ```` or unlabeled) holding such
//!   an object or an array of them, and a bare JSON object starting a line. Recognised only
//!   with [`TextCallForms::Any`], i.e. for models without native tool calling or when the user
//!   opted in: otherwise a fenced block that shows an example would run.
//!
//! Arguments may be under `arguments`, `parameters`, `args` or `input`, and may be a JSON
//! string holding an object. OpenAI-shaped `{"type": "function", "function": {...}}` and
//! `{"tool_calls": [...]}` wrappers are unwrapped. Time is linear in the text's length.

use std::ops::Range;

use serde_json::{Map, Value};

/// A tool call found in text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextToolCall {
    /// Tool name (for an unreadable call, the name found in its text, or empty).
    pub name: String,
    /// Arguments (normally an object; for an unreadable call, its text verbatim).
    pub arguments: Value,
    /// Byte range of the text the call was written in.
    pub span: Range<usize>,
    /// Why explicit `<tool_call>` markup could not be read as a call; `None` when it could.
    pub problem: Option<String>,
}

/// Which written forms count as tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextCallForms {
    /// Only explicit `<tool_call>` markup (a model with native tool calling).
    Markup,
    /// Markup, fenced JSON blocks and bare JSON objects (a model without native tool calling,
    /// or the user opted in).
    Any,
}

/// Finds the tool calls written in `content`, in order; `is_known` says which names are
/// tools (fenced and bare JSON must name one; markup may name any).
pub fn parse_text_tool_calls(
    content: &str,
    is_known: &dyn Fn(&str) -> bool,
    forms: TextCallForms,
) -> Vec<TextToolCall> {
    let tagged = tagged_calls(content);
    if !tagged.is_empty() || forms == TextCallForms::Markup {
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

/// Calls in `<tool_call>` markup. Each tag's content runs to its closing tag, the next
/// opening tag or the end; both tag lists are found in one pass each, so the walk is linear.
fn tagged_calls(content: &str) -> Vec<TextToolCall> {
    let opens: Vec<usize> = content.match_indices(OPEN).map(|(i, _)| i).collect();
    if opens.is_empty() {
        return Vec::new();
    }
    let closes: Vec<usize> = content.match_indices(CLOSE).map(|(i, _)| i).collect();
    let mut out = Vec::new();
    let mut next_close = 0;
    let mut consumed = 0;
    for (n, &start) in opens.iter().enumerate() {
        if start < consumed {
            continue;
        }
        let inner_start = start + OPEN.len();
        while next_close < closes.len() && closes[next_close] < inner_start {
            next_close += 1;
        }
        let next_open = opens.get(n + 1).copied();
        let close = closes.get(next_close).copied();
        let (inner_end, end) = match (close, next_open) {
            (Some(c), Some(o)) if o < c => (o, o),
            (Some(c), _) => (c, c + CLOSE.len()),
            (None, Some(o)) => (o, o),
            (None, None) => (content.len(), content.len()),
        };
        consumed = end;
        let inner = strip_fence(content[inner_start..inner_end].trim());
        if !inner.starts_with(['{', '[']) {
            // Prose that mentions the tag (or an empty tag): not an attempt at a call.
            continue;
        }
        let span = start..end;
        match serde_json::from_str::<Value>(inner) {
            Ok(value) => {
                let before = out.len();
                push_calls(value, span.clone(), &|_| true, &mut out);
                if out.len() == before {
                    out.push(unreadable(
                        inner,
                        span,
                        "it holds no `name` of a tool with its `arguments`".into(),
                    ));
                }
            }
            Err(error) => out.push(unreadable(
                inner,
                span,
                format!("the text inside <tool_call> is not valid JSON ({error})"),
            )),
        }
    }
    out
}

/// A call in markup that could not be read, keeping its text and any name it mentions.
fn unreadable(inner: &str, span: Range<usize>, problem: String) -> TextToolCall {
    TextToolCall {
        name: mentioned_name(inner).unwrap_or_default(),
        arguments: Value::String(inner.to_owned()),
        span,
        problem: Some(problem),
    }
}

/// The value of the first `"name": "..."` in broken JSON, when it is a plain identifier.
fn mentioned_name(text: &str) -> Option<String> {
    let after_key = &text[text.find("\"name\"")? + 6..];
    let after_colon = after_key.trim_start().strip_prefix(':')?.trim_start();
    let value = after_colon.strip_prefix('"')?;
    let name = &value[..value.find('"')?];
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    plain.then(|| name.to_owned())
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
                    problem: None,
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
        parse_text_tool_calls(s, &known, TextCallForms::Any)
            .into_iter()
            .map(|c| (c.name, c.arguments))
            .collect()
    }

    fn parse_markup(s: &str) -> Vec<TextToolCall> {
        parse_text_tool_calls(s, &known, TextCallForms::Markup)
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
        let calls = parse_markup(s);
        assert_eq!(strip_calls(s, &calls), "Reading it now.");
        let s = "<tool_call>{\"name\":\"read_file\",\"arguments\":{\"path\":\"a\"}}</tool_call>";
        let calls = parse_markup(s);
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

    #[test]
    fn with_native_tools_only_markup_counts() {
        let example = "To create it you would run:\n```json\n{\"name\": \"shell\", \"arguments\": {\"command\": \"touch PWNED\"}}\n```\nThat is an example.";
        assert!(
            parse_markup(example).is_empty(),
            "a fenced example is not a call"
        );
        assert_eq!(parse(example).len(), 1, "without native tools it is one");
        let bare = "{\"name\": \"shell\", \"arguments\": {\"command\": \"ls\"}}";
        assert!(parse_markup(bare).is_empty());
        let tagged =
            "<tool_call>{\"name\": \"shell\", \"arguments\": {\"command\": \"ls\"}}</tool_call>";
        assert_eq!(parse_markup(tagged).len(), 1);
    }

    #[test]
    fn markup_that_cannot_be_read_is_reported_with_what_was_wrong() {
        let calls = parse_markup(
            "<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\": </tool_call> and <tool_call>{\"name\":\"list_dir\",\"arguments\":{}}</tool_call>",
        );
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0].name, "read_file");
        let problem = calls[0].problem.as_deref().expect("unreadable");
        assert!(problem.contains("not valid JSON"), "{problem}");
        assert_eq!(
            calls[0].arguments,
            Value::String("{\"name\": \"read_file\", \"arguments\": {\"path\":".into()),
            "the model's text is kept"
        );
        assert_eq!(calls[1].problem, None);
        assert_eq!(calls[1].name, "list_dir");

        let no_name = parse_markup("<tool_call>{\"arguments\": {}}</tool_call>");
        assert_eq!(no_name.len(), 1);
        assert_eq!(no_name[0].name, "");
        assert!(
            no_name[0]
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("no `name`"))
        );

        // An unknown tool in markup is still a call: the registry tells the model the names.
        let unknown =
            parse_markup("<tool_call>{\"name\": \"nope\", \"arguments\": {}}</tool_call>");
        assert_eq!(unknown.len(), 1);
        assert_eq!(
            (unknown[0].name.as_str(), unknown[0].problem.as_deref()),
            ("nope", None)
        );

        // Prose that mentions the tag is not an attempt at a call.
        assert!(parse_markup("Qwen writes <tool_call> tags around its calls.").is_empty());
        assert!(parse_markup("<tool_call></tool_call>").is_empty());
    }

    #[test]
    fn many_unclosed_tags_take_linear_time() {
        // Each tag used to search for a closing tag to the end of the text: quadratic.
        let text = "<tool_call>{\n".repeat(50_000);
        let calls = parse_markup(&text);
        assert_eq!(calls.len(), 50_000);
        assert!(calls.iter().all(|c| c.problem.is_some()));
    }
}

//! An MCP tool's `inputSchema` (any JSON Schema) in nanna's typed subset ([`JsonSchema`]).
//!
//! The registry validates arguments against that subset, and it is what the model sees. The
//! providers keep about as much: Ollama decodes tool parameters into `ToolProperty` (`type`,
//! `anyOf`, `items`, `description`, `enum`, `properties`, `required`; `api/types.go`) and
//! drops every other keyword. Codex narrows MCP schemas the same way
//! (`sanitize_json_schema` in `codex-rs/core/src/tools/spec.rs`: infer a missing `type`,
//! fill what its enum needs). The translation here:
//! - keeps `type`, `description`, `properties`, `required`, `items`, `enum`, `minimum`,
//!   `maximum`, `additionalProperties: false`;
//! - resolves local `$ref`s (`#/$defs/X`, `#/definitions/X`), collapses nullable forms
//!   (`type: ["string", "null"]`, `anyOf: [X, {type: null}]`, Pydantic's `Optional`), reads
//!   `const` as a one-value enum, and infers a missing `type` from `properties`, `items` or
//!   the enum's values;
//! - folds `default`, `format` and a `title` (when there is no description) into the
//!   description, so the model still learns them;
//! - never rejects what the server would accept: a property it cannot express (a union of
//!   different types, `{}`, an unresolvable `$ref`) is left out of `properties` (so the
//!   registry passes it through unchecked) and described in words instead, with its schema.
//!
//! A schema that is not JSON Schema at all (the root is not an object schema, an unknown
//! `type`, `properties` that is not an object) is [`SchemaError`]: the tool is not offered
//! and the user is told why.

use std::collections::BTreeMap;

use nanna_model::{JsonSchema, SchemaType};
use serde_json::{Map, Value};

/// How deep `$ref`s and nesting are followed before a part is treated as unexpressible.
const MAX_DEPTH: usize = 16;

/// Why a tool's input schema cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("its input schema is not valid JSON Schema: {0}")]
pub struct SchemaError(pub String);

/// The translated schema, and words for what it could not express (to append to the tool's
/// description, where the model reads them).
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The object schema of the tool's arguments.
    pub schema: JsonSchema,
    /// Sentences about top-level arguments the schema leaves unchecked.
    pub notes: Vec<String>,
}

/// Translates a tool's `inputSchema`.
pub fn translate(input: &Map<String, Value>) -> Result<Translated, SchemaError> {
    let root = Value::Object(input.clone());
    let mut ctx = Ctx {
        root: &root,
        notes: Vec::new(),
    };
    match ctx.node(&root, "the root", 0)? {
        Node::Typed(schema) if schema.schema_type == SchemaType::Object => Ok(Translated {
            schema,
            notes: ctx.notes,
        }),
        Node::Typed(schema) => Err(SchemaError(format!(
            "the root must describe an object (`\"type\": \"object\"`), not {}",
            type_name(schema.schema_type)
        ))),
        Node::Any { .. } => Err(SchemaError(
            "the root must describe an object (`\"type\": \"object\"`)".into(),
        )),
    }
}

/// A translated sub-schema.
enum Node {
    /// Expressible in the subset.
    Typed(JsonSchema),
    /// Not expressible: accept anything here; `summary` says what the server expects.
    Any { summary: String },
}

struct Ctx<'a> {
    root: &'a Value,
    /// Words about the root object's unchecked properties.
    notes: Vec<String>,
}

impl Ctx<'_> {
    fn node(&mut self, value: &Value, at: &str, depth: usize) -> Result<Node, SchemaError> {
        let map = match value {
            Value::Object(map) => map,
            // `true` accepts anything, `false` nothing: neither is a typed argument.
            Value::Bool(_) => return Ok(any(value)),
            other => {
                return Err(SchemaError(format!(
                    "{at} must be a schema object, got {}",
                    kind(other)
                )));
            }
        };
        if depth > MAX_DEPTH {
            return Ok(any(value));
        }
        if let Some(reference) = map.get("$ref") {
            let Some(target) = reference.as_str().and_then(|r| self.resolve(r)) else {
                return Ok(any(value));
            };
            let mut node = self.node(&target, at, depth + 1)?;
            if let (Node::Typed(schema), Some(d)) = (&mut node, describe(map)) {
                schema.description = Some(d);
            }
            return Ok(node);
        }
        let schema_type = match map.get("type") {
            None => None,
            Some(Value::String(name)) => Some(parse_type(name, at)?),
            Some(Value::Array(names)) => {
                let mut types = Vec::new();
                for n in names {
                    let Some(name) = n.as_str() else {
                        return Err(SchemaError(format!(
                            "{at}: `type` must list type names, got {}",
                            kind(n)
                        )));
                    };
                    types.push(parse_type(name, at)?);
                }
                let non_null: Vec<SchemaType> = types
                    .iter()
                    .copied()
                    .filter(|t| *t != SchemaType::Null)
                    .collect();
                match non_null.as_slice() {
                    [] if types.is_empty() => None,
                    [] => Some(SchemaType::Null),
                    [one] => Some(*one),
                    _ => return Ok(any(value)),
                }
            }
            Some(other) => {
                return Err(SchemaError(format!(
                    "{at}: `type` must be a type name or a list of them, got {}",
                    kind(other)
                )));
            }
        };
        let schema_type = match schema_type {
            Some(t) => t,
            None => {
                // Unions: only the nullable form ("X or null") is expressible.
                for key in ["anyOf", "oneOf", "allOf"] {
                    if let Some(variants) = map.get(key) {
                        let Some(variants) = variants.as_array() else {
                            return Err(SchemaError(format!("{at}: `{key}` must be a list")));
                        };
                        let real: Vec<&Value> = variants.iter().filter(|v| !is_null(v)).collect();
                        return match real.as_slice() {
                            [only] => {
                                let mut node = self.node(only, at, depth + 1)?;
                                if let (Node::Typed(schema), Some(d)) = (&mut node, describe(map)) {
                                    schema.description = Some(d);
                                }
                                Ok(node)
                            }
                            _ => Ok(any(value)),
                        };
                    }
                }
                match infer_type(map) {
                    Some(t) => t,
                    None => return Ok(any(value)),
                }
            }
        };
        let mut schema = JsonSchema::of(schema_type);
        schema.description = describe(map);
        if let Some(values) = map.get("enum") {
            let Some(values) = values.as_array() else {
                return Err(SchemaError(format!("{at}: `enum` must be a list")));
            };
            schema.enum_values = Some(values.iter().filter(|v| !v.is_null()).cloned().collect());
        } else if let Some(value) = map.get("const") {
            schema.enum_values = Some(vec![value.clone()]);
        }
        schema.minimum = number(map, "minimum").or_else(|| number(map, "exclusiveMinimum"));
        schema.maximum = number(map, "maximum").or_else(|| number(map, "exclusiveMaximum"));
        match schema_type {
            SchemaType::Object => self.object(map, &mut schema, at, depth)?,
            SchemaType::Array => {
                if let Some(items) = map.get("items") {
                    if items.is_array() {
                        // Tuple form (draft 4-7): leave the items unchecked.
                    } else if let Node::Typed(item) =
                        self.node(items, &format!("{at}.items"), depth + 1)?
                    {
                        schema.items = Some(Box::new(item));
                    }
                }
            }
            _ => {}
        }
        Ok(Node::Typed(schema))
    }

    fn object(
        &mut self,
        map: &Map<String, Value>,
        schema: &mut JsonSchema,
        at: &str,
        depth: usize,
    ) -> Result<(), SchemaError> {
        if let Some(properties) = map.get("properties") {
            let Some(properties) = properties.as_object() else {
                return Err(SchemaError(format!(
                    "{at}: `properties` must be an object of schemas, got {}",
                    kind(properties)
                )));
            };
            let mut typed = BTreeMap::new();
            let mut loose = Vec::new();
            for (name, value) in properties {
                match self.node(value, &format!("property `{name}`"), depth + 1)? {
                    Node::Typed(s) => {
                        typed.insert(name.clone(), s);
                    }
                    Node::Any { summary } => loose.push(format!("`{name}`: {summary}")),
                }
            }
            schema.properties = Some(typed);
            if !loose.is_empty() {
                let note = format!("Also takes {}.", loose.join("; "));
                if depth == 0 {
                    // The root's description is dropped by Ollama: the tool's carries it.
                    self.notes.push(note);
                } else {
                    schema.description = Some(match schema.description.take() {
                        Some(d) => format!("{d} {note}"),
                        None => note,
                    });
                }
            }
        } else {
            schema.properties = Some(BTreeMap::new());
        }
        if let Some(required) = map.get("required") {
            let names = required.as_array().and_then(|list| {
                list.iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            });
            let Some(names) = names else {
                return Err(SchemaError(format!(
                    "{at}: `required` must be a list of property names"
                )));
            };
            if !names.is_empty() {
                schema.required = Some(names);
            }
        }
        if let Some(Value::Bool(false)) = map.get("additionalProperties") {
            schema.additional_properties = Some(false);
        }
        Ok(())
    }

    /// The schema a local `$ref` points at (`#`, `#/$defs/X`, `#/definitions/X`, any JSON
    /// pointer into the root).
    fn resolve(&self, reference: &str) -> Option<Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer).cloned()
    }
}

fn any(value: &Value) -> Node {
    let mut text = value.to_string();
    if text.len() > 300 {
        let mut end = 297;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    let summary = match value.get("description").and_then(Value::as_str) {
        Some(d) => format!("{d} (any JSON value matching {text})"),
        None => format!("any JSON value matching {text}"),
    };
    Node::Any { summary }
}

fn is_null(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("null")
}

fn parse_type(name: &str, at: &str) -> Result<SchemaType, SchemaError> {
    Ok(match name {
        "object" => SchemaType::Object,
        "string" => SchemaType::String,
        "integer" => SchemaType::Integer,
        "number" => SchemaType::Number,
        "boolean" => SchemaType::Boolean,
        "array" => SchemaType::Array,
        "null" => SchemaType::Null,
        other => {
            return Err(SchemaError(format!(
                "{at}: unknown type `{other}` (JSON Schema types are object, string, integer, \
                 number, boolean, array, null)"
            )));
        }
    })
}

/// A missing `type` read from the other keywords, as Codex does.
fn infer_type(map: &Map<String, Value>) -> Option<SchemaType> {
    if map.contains_key("properties") {
        return Some(SchemaType::Object);
    }
    if map.contains_key("items") {
        return Some(SchemaType::Array);
    }
    let values: Vec<&Value> = match (map.get("enum"), map.get("const")) {
        (Some(Value::Array(values)), _) => values.iter().filter(|v| !v.is_null()).collect(),
        (_, Some(value)) => vec![value],
        _ => return None,
    };
    let first = values.first()?;
    let ty = json_type(first);
    values.iter().all(|v| json_type(v) == ty).then_some(ty)
}

fn json_type(value: &Value) -> SchemaType {
    match value {
        Value::Null => SchemaType::Null,
        Value::Bool(_) => SchemaType::Boolean,
        Value::Number(n) if n.is_i64() || n.is_u64() => SchemaType::Integer,
        Value::Number(_) => SchemaType::Number,
        Value::String(_) => SchemaType::String,
        Value::Array(_) => SchemaType::Array,
        Value::Object(_) => SchemaType::Object,
    }
}

fn number(map: &Map<String, Value>, key: &str) -> Option<f64> {
    map.get(key).and_then(Value::as_f64)
}

/// The description, with what the subset drops but the model should know.
fn describe(map: &Map<String, Value>) -> Option<String> {
    let mut text = map
        .get("description")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .or_else(|| map.get("title").and_then(Value::as_str))
        .unwrap_or("")
        .to_owned();
    let mut extra = Vec::new();
    if let Some(format) = map.get("format").and_then(Value::as_str) {
        extra.push(format!("format: {format}"));
    }
    if let Some(default) = map.get("default").filter(|d| !d.is_null()) {
        extra.push(format!("default: {default}"));
    }
    if !extra.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push('(');
        text.push_str(&extra.join(", "));
        text.push(')');
    }
    (!text.is_empty()).then_some(text)
}

fn type_name(t: SchemaType) -> &'static str {
    match t {
        SchemaType::Object => "an object",
        SchemaType::String => "a string",
        SchemaType::Integer => "an integer",
        SchemaType::Number => "a number",
        SchemaType::Boolean => "a boolean",
        SchemaType::Array => "an array",
        SchemaType::Null => "null",
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tr(v: Value) -> Result<Translated, SchemaError> {
        translate(v.as_object().expect("object"))
    }

    #[test]
    fn server_filesystem_edit_file_schema() {
        // As listed by @modelcontextprotocol/server-filesystem 2026.8.31 (zod → draft-07).
        let t = tr(json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "edits": {"type": "array", "items": {"type": "object", "properties": {
                    "oldText": {"type": "string", "description": "Text to search for - must match exactly"},
                    "newText": {"type": "string", "description": "Text to replace with"}},
                    "required": ["oldText", "newText"], "additionalProperties": false}},
                "dryRun": {"default": false, "description": "Preview changes using git-style diff format", "type": "boolean"}
            },
            "required": ["path", "edits"],
            "additionalProperties": false,
            "$schema": "http://json-schema.org/draft-07/schema#"
        }))
        .unwrap();
        assert!(t.notes.is_empty());
        let s = t.schema;
        assert_eq!(
            s.required.as_deref(),
            Some(&["path".to_owned(), "edits".to_owned()][..])
        );
        assert_eq!(s.additional_properties, Some(false));
        let props = s.properties.as_ref().unwrap();
        assert_eq!(
            props["dryRun"].description.as_deref(),
            Some("Preview changes using git-style diff format (default: false)")
        );
        let item = props["edits"].items.as_ref().unwrap();
        assert_eq!(item.schema_type, SchemaType::Object);
        assert_eq!(item.properties.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn nullable_forms_and_refs_collapse() {
        // Pydantic (the Python SDK's MCPServer) writes Optional[int] and model parameters so.
        let t = tr(json!({
            "type": "object",
            "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
            "properties": {
                "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null, "title": "Limit"},
                "name": {"type": ["string", "null"], "description": "Who"},
                "at": {"$ref": "#/$defs/Point", "description": "Where"},
                "mode": {"const": "fast"},
                "level": {"enum": [1, 2, 3]}
            }
        }))
        .unwrap();
        let props = t.schema.properties.unwrap();
        assert_eq!(props["limit"].schema_type, SchemaType::Integer);
        assert_eq!(props["limit"].description.as_deref(), Some("Limit"));
        assert_eq!(props["name"].schema_type, SchemaType::String);
        assert_eq!(props["at"].schema_type, SchemaType::Object);
        assert_eq!(props["at"].description.as_deref(), Some("Where"));
        assert_eq!(props["at"].required.as_deref(), Some(&["x".to_owned()][..]));
        assert_eq!(props["mode"].schema_type, SchemaType::String);
        assert_eq!(props["mode"].enum_values, Some(vec![json!("fast")]));
        assert_eq!(props["level"].schema_type, SchemaType::Integer);
    }

    #[test]
    fn unexpressible_properties_are_described_not_rejected() {
        let t = tr(json!({
            "type": "object",
            "properties": {
                "value": {"anyOf": [{"type": "string"}, {"type": "number"}], "description": "A value"},
                "anything": {},
                "ok": {"type": "string"}
            },
            "required": ["value"]
        }))
        .unwrap();
        let props = t.schema.properties.as_ref().unwrap();
        assert_eq!(props.keys().collect::<Vec<_>>(), ["ok"]);
        assert_eq!(
            t.schema.required.as_deref(),
            Some(&["value".to_owned()][..])
        );
        assert_eq!(t.schema.description, None);
        assert_eq!(t.notes.len(), 1);
        assert!(
            t.notes[0].contains("`value`: A value (any JSON value matching"),
            "{:?}",
            t.notes
        );
        assert!(t.notes[0].contains("`anything`"), "{:?}", t.notes);
    }

    #[test]
    fn recursive_refs_end() {
        let t = tr(json!({
            "type": "object",
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
            "properties": {"head": {"$ref": "#/$defs/Node"}}
        }))
        .unwrap();
        assert!(t.schema.properties.unwrap().contains_key("head"));
    }

    #[test]
    fn malformed_schemas_are_errors() {
        for (schema, expected) in [
            (json!({"type": "string"}), "root must describe an object"),
            (
                json!({"type": "object", "properties": {"a": {"type": "strnig"}}}),
                "unknown type `strnig`",
            ),
            (
                json!({"type": "object", "properties": []}),
                "`properties` must be an object",
            ),
            (
                json!({"type": "object", "properties": {"a": 5}}),
                "property `a` must be a schema object",
            ),
            (
                json!({"type": "object", "required": "a"}),
                "`required` must be a list",
            ),
            (json!({"type": 7}), "`type` must be a type name"),
            (json!({}), "root must describe an object"),
        ] {
            let err = tr(schema.clone()).unwrap_err().to_string();
            assert!(err.contains(expected), "{schema}: {err}");
        }
    }

    #[test]
    fn an_object_without_properties_takes_none() {
        let t = tr(json!({"type": "object"})).unwrap();
        assert_eq!(t.schema.properties, Some(BTreeMap::new()));
    }
}

//! Validation of tool arguments against the typed JSON Schema subset of `nanna-model`.
//!
//! Hand-written rather than the `jsonschema` crate: the schemas are our own typed subset
//! (types, required, enum, min/max, additionalProperties, items), the crate would add a large
//! dependency tree and per-call compilation, and we want messages worded for a model plus the
//! lenient coercions weak local models need (numbers and booleans sent as strings, `null` for
//! an omitted optional argument, arguments sent as a JSON string).

use nanna_model::{JsonSchema, SchemaType};
use serde_json::{Map, Value};

/// Checks `args` against `schema`, returning them (possibly coerced) or a message saying
/// everything that was wrong and how to fix it.
pub(crate) fn validate(schema: &JsonSchema, args: Value) -> Result<Value, String> {
    let args = match args {
        // No arguments at all: treat as an empty object.
        Value::Null if schema.schema_type == SchemaType::Object => Value::Object(Map::new()),
        // Arguments sent as a JSON-encoded string (OpenAI style) by a confused model, or
        // argument text that was not valid JSON at all (cut short, written badly), which the
        // providers keep verbatim as a string.
        Value::String(s) if schema.schema_type == SchemaType::Object => {
            match serde_json::from_str::<Value>(&s) {
                Ok(v @ Value::Object(_)) => v,
                Ok(_) => {
                    return Err(format!(
                        "arguments must be a JSON object, got the string {}",
                        preview(&Value::String(s))
                    ));
                }
                Err(error) => {
                    return Err(format!(
                        "the arguments are not valid JSON ({error}): {}; send the call again \
                         with the arguments as one complete JSON object",
                        preview(&Value::String(s))
                    ));
                }
            }
        }
        other => other,
    };
    let mut problems = Vec::new();
    let value = check(schema, args, "", &mut problems);
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(problems.join("; "))
    }
}

/// Validates `value` at `path` (e.g. `offset`, `items[2]`), pushing problems; returns the
/// value after coercion.
fn check(schema: &JsonSchema, value: Value, path: &str, problems: &mut Vec<String>) -> Value {
    let value = match coerce(schema.schema_type, value) {
        Ok(v) => v,
        Err(v) => {
            problems.push(format!(
                "{} must be {}, got {}",
                name(path),
                type_phrase(schema.schema_type),
                preview(&v)
            ));
            return v;
        }
    };
    if let Some(allowed) = &schema.enum_values
        && !allowed.contains(&value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        problems.push(format!(
            "{} must be one of {}, got {}",
            name(path),
            list.join(", "),
            preview(&value)
        ));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.minimum
            && n < min
        {
            problems.push(format!("{} must be >= {min}, got {n}", name(path)));
        }
        if let Some(max) = schema.maximum
            && n > max
        {
            problems.push(format!("{} must be <= {max}, got {n}", name(path)));
        }
    }
    match value {
        Value::Object(map) => Value::Object(check_object(schema, map, path, problems)),
        Value::Array(items) => match &schema.items {
            Some(item_schema) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| check(item_schema, item, &format!("{path}[{i}]"), problems))
                    .collect(),
            ),
            None => Value::Array(items),
        },
        other => other,
    }
}

fn check_object(
    schema: &JsonSchema,
    map: Map<String, Value>,
    path: &str,
    problems: &mut Vec<String>,
) -> Map<String, Value> {
    let empty = Default::default();
    let properties = schema.properties.as_ref().unwrap_or(&empty);
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    let mut out = Map::with_capacity(map.len());
    for (key, value) in map {
        match properties.get(&key) {
            // An optional argument sent as null means "not given".
            Some(_) if value.is_null() => {}
            Some(prop) => {
                let v = check(prop, value, &join(&key), problems);
                out.insert(key, v);
            }
            None if schema.additional_properties == Some(false) => {
                let valid: Vec<&str> = properties.keys().map(String::as_str).collect();
                problems.push(format!(
                    "unknown argument `{}`; valid arguments: {}",
                    join(&key),
                    if valid.is_empty() {
                        "none".to_owned()
                    } else {
                        valid.join(", ")
                    }
                ));
            }
            None => {
                out.insert(key, value);
            }
        }
    }
    for required in schema.required.iter().flatten() {
        if !out.contains_key(required) {
            let hint = properties
                .get(required)
                .map(|p| {
                    let mut h = type_phrase(p.schema_type).to_owned();
                    if let Some(d) = &p.description {
                        h.push_str(": ");
                        h.push_str(d);
                    }
                    h
                })
                .unwrap_or_default();
            problems.push(format!(
                "missing required argument `{}` ({hint})",
                join(required)
            ));
        }
    }
    out
}

/// Converts `value` to `ty` where a weak model plausibly meant it; `Err` gives the value back
/// when it does not fit.
fn coerce(ty: SchemaType, value: Value) -> Result<Value, Value> {
    match (ty, value) {
        (SchemaType::String, v @ Value::String(_))
        | (SchemaType::Boolean, v @ Value::Bool(_))
        | (SchemaType::Object, v @ Value::Object(_))
        | (SchemaType::Array, v @ Value::Array(_))
        | (SchemaType::Null, v @ Value::Null) => Ok(v),
        (SchemaType::Number, v @ Value::Number(_)) => Ok(v),
        (SchemaType::Integer, Value::Number(n)) => {
            if n.is_i64() || n.is_u64() {
                Ok(Value::Number(n))
            } else {
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::from(f as i64)),
                    _ => Err(Value::Number(n)),
                }
            }
        }
        (SchemaType::Integer, Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(i) => Ok(Value::from(i)),
            Err(_) => Err(Value::String(s)),
        },
        (SchemaType::Number, Value::String(s)) => {
            match s.trim().parse::<f64>().ok().filter(|f| f.is_finite()) {
                Some(f) => Ok(Value::from(f)),
                None => Err(Value::String(s)),
            }
        }
        (SchemaType::Boolean, Value::String(s)) => match s.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(Value::String(s)),
        },
        (_, v) => Err(v),
    }
}

fn name(path: &str) -> String {
    if path.is_empty() {
        "the arguments".to_owned()
    } else {
        format!("`{path}`")
    }
}

fn type_phrase(ty: SchemaType) -> &'static str {
    match ty {
        SchemaType::Object => "an object",
        SchemaType::String => "a string",
        SchemaType::Integer => "an integer",
        SchemaType::Number => "a number",
        SchemaType::Boolean => "true or false",
        SchemaType::Array => "an array",
        SchemaType::Null => "null",
    }
}

/// A short rendering of a value for messages.
fn preview(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_owned(),
        Value::Bool(b) => return b.to_string(),
        Value::Number(n) => return n.to_string(),
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let text = value.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{kind} {cut}...")
    } else {
        format!("{kind} {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> JsonSchema {
        let mut s = JsonSchema::object()
            .property("path", JsonSchema::string("File path"), true)
            .property(
                "limit",
                JsonSchema::integer("Max lines").range(Some(1.0), Some(100.0)),
                false,
            )
            .property(
                "mode",
                JsonSchema::string("Mode").one_of([json!("fast"), json!("slow")]),
                false,
            )
            .property("flag", JsonSchema::boolean("A flag"), false)
            .property(
                "tags",
                JsonSchema::array(JsonSchema::string("tag"), "Tags"),
                false,
            );
        s.additional_properties = Some(false);
        s
    }

    #[test]
    fn accepts_valid_arguments_unchanged() {
        let args = json!({"path": "a", "limit": 5, "mode": "fast", "flag": true, "tags": ["x"]});
        assert_eq!(validate(&schema(), args.clone()), Ok(args));
    }

    #[test]
    fn coerces_numbers_and_booleans_sent_as_strings() {
        let got = validate(
            &schema(),
            json!({"path": "a", "limit": "12", "flag": "true"}),
        );
        assert_eq!(got, Ok(json!({"path": "a", "limit": 12, "flag": true})));
        let got = validate(&schema(), json!({"path": "a", "limit": 3.0}));
        assert_eq!(got, Ok(json!({"path": "a", "limit": 3})));
    }

    #[test]
    fn null_optional_arguments_are_dropped_and_null_args_are_empty() {
        let got = validate(&schema(), json!({"path": "a", "limit": null}));
        assert_eq!(got, Ok(json!({"path": "a"})));
        let err = validate(&schema(), Value::Null).unwrap_err();
        assert!(
            err.contains("missing required argument `path` (a string: File path)"),
            "{err}"
        );
    }

    #[test]
    fn arguments_as_json_string_are_parsed() {
        let got = validate(&schema(), json!("{\"path\": \"a\"}"));
        assert_eq!(got, Ok(json!({"path": "a"})));
        let err = validate(&schema(), json!("\"path=a\"")).unwrap_err();
        assert!(err.contains("must be a JSON object"), "{err}");
        let err = validate(&schema(), json!("{\"path\": \"a")).unwrap_err();
        assert!(
            err.contains(
                "the arguments are not valid JSON (EOF while parsing a string at line 1 column 11)"
            ),
            "{err}"
        );
    }

    #[test]
    fn reports_every_problem_clearly() {
        let err = validate(
            &schema(),
            json!({"limit": "many", "mode": "medium", "extra": 1, "tags": ["ok", 3]}),
        )
        .unwrap_err();
        assert!(err.contains("missing required argument `path`"), "{err}");
        assert!(
            err.contains("`limit` must be an integer, got string \"many\""),
            "{err}"
        );
        assert!(
            err.contains("`mode` must be one of \"fast\", \"slow\""),
            "{err}"
        );
        assert!(
            err.contains(
                "unknown argument `extra`; valid arguments: flag, limit, mode, path, tags"
            ),
            "{err}"
        );
        assert!(err.contains("`tags[1]` must be a string, got 3"), "{err}");
    }

    #[test]
    fn enforces_bounds() {
        let err = validate(&schema(), json!({"path": "a", "limit": 0})).unwrap_err();
        assert!(err.contains("`limit` must be >= 1"), "{err}");
        let err = validate(&schema(), json!({"path": "a", "limit": 101})).unwrap_err();
        assert!(err.contains("`limit` must be <= 100"), "{err}");
        let err = validate(&schema(), json!({"path": "a", "limit": 2.5})).unwrap_err();
        assert!(err.contains("`limit` must be an integer, got 2.5"), "{err}");
    }

    #[test]
    fn wrong_top_level_type_is_reported() {
        let err = validate(&schema(), json!([1])).unwrap_err();
        assert!(err.contains("the arguments must be an object"), "{err}");
    }
}

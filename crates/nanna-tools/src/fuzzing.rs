//! Entry points of the fuzz targets in `fuzz/`, replayed over the committed corpus by the
//! ordinary test `tests/fuzz_corpus.rs`. Each function panics when an invariant breaks.

use std::sync::OnceLock;

use serde_json::Value;

use crate::registry::ToolRegistry;

/// `calculate`'s evaluator on any text: a finite number or an error message, never a
/// panic or a stack overflow, whatever the nesting.
pub fn calculate(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match crate::builtins::calc::evaluate(&text) {
        Ok(value) => assert!(value.is_finite(), "{value} from {text:?}"),
        Err(message) => assert!(!message.is_empty()),
    }
}

/// Argument validation of every built-in tool on any value (the input as JSON, else as the
/// string a provider keeps for argument text that is not JSON): an error message, or
/// arguments that are an object and validate again unchanged.
pub fn validate(data: &[u8]) {
    static REGISTRY: OnceLock<ToolRegistry> = OnceLock::new();
    let registry = REGISTRY.get_or_init(ToolRegistry::with_builtins);
    let value = serde_json::from_slice::<Value>(data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()));
    for name in registry.names() {
        match registry.validate(name, value.clone()) {
            Ok(args) => {
                assert!(args.is_object(), "{name}: {args}");
                assert_eq!(
                    registry.validate(name, args.clone()).as_ref(),
                    Ok(&args),
                    "{name}: validation is not idempotent"
                );
            }
            Err(error) => assert!(!error.to_string().is_empty()),
        }
    }
}

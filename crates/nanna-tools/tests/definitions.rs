//! The tool definitions are sent with every request: keep them small and well-formed.

use nanna_tools::ToolRegistry;

/// Bytes of JSON for all built-in definitions (~900 tokens at ~4 bytes per token), with
/// headroom under the 4,400-byte ceiling that keeps system prompt + tools <= 1,700 tokens.
const BUDGET_BYTES: usize = 3600;

#[test]
fn serialized_definitions_stay_within_budget() {
    let registry = ToolRegistry::with_builtins();
    let json = serde_json::to_string(&registry.definitions()).unwrap();
    println!(
        "tool definitions: {} tools, {} bytes of JSON (~{} tokens)",
        registry.names().len(),
        json.len(),
        json.len() / 4
    );
    for def in registry.definitions() {
        println!(
            "  {:<12} {} bytes",
            def.name(),
            serde_json::to_string(&def).unwrap().len()
        );
    }
    assert!(
        json.len() <= BUDGET_BYTES,
        "definitions are {} bytes, over the {BUDGET_BYTES}-byte budget",
        json.len()
    );
}

#[test]
fn builtins_are_registered_with_object_schemas() {
    let registry = ToolRegistry::with_builtins();
    assert_eq!(
        registry.names(),
        vec![
            "read_file",
            "write_file",
            "edit_file",
            "list_dir",
            "glob",
            "grep",
            "shell",
            "echo",
            "calculate"
        ]
    );
    for def in registry.definitions() {
        let params = serde_json::to_value(&def.function.parameters).unwrap();
        assert_eq!(params["type"], "object", "{}", def.name());
        assert_eq!(params["additionalProperties"], false, "{}", def.name());
        for required in params["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            assert!(
                params["properties"].get(name).is_some(),
                "{}: {name}",
                def.name()
            );
        }
    }
}

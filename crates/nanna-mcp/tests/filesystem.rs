//! Against `@modelcontextprotocol/server-filesystem` (npm), a server no one here wrote: its
//! tools through the registry, its refusals as tool errors. (`crates/nanna/tests/mcp.rs`
//! drives it with a scripted model through `nanna exec`.)

mod common;

use nanna_mcp::{McpEvent, McpServers};
use nanna_testkit::mcp::{RealMcp, toml_str};
use nanna_tools::{Effect, ToolContext, ToolRegistry};
use serde_json::json;

#[tokio::test]
async fn filesystem_tools_list_read_write_and_refuse_outside_paths() {
    let Some(real) = RealMcp::find() else { return };
    eprintln!("real MCP servers: {}", real.versions);
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::write(allowed.join("notes.txt"), "hello from notes\n").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "not for you\n").unwrap();
    let config = common::config(
        dir.path(),
        &format!(
            "[mcp_servers.fs]\ncommand = {}\nargs = [{}]\ndisabled_tools = [\"move_file\"]\n",
            toml_str(real.filesystem.display().to_string()),
            toml_str(allowed.display().to_string())
        ),
    );
    let (sink, events) = common::recorder();
    let servers = McpServers::start(&config, dir.path(), sink).await;
    let mut registry = ToolRegistry::with_builtins();
    let builtins = registry.names().len();
    let added = servers.register(&mut registry);
    let ready = events
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match e {
            McpEvent::ServerReady {
                implementation,
                tools,
                ..
            } => Some((implementation.clone(), *tools)),
            _ => None,
        })
        .expect("ready");
    assert!(ready.0.starts_with("secure-filesystem-server"), "{ready:?}");
    assert_eq!(ready.1, added);
    assert_eq!(registry.names().len(), builtins + added);
    // disabled_tools keeps a tool out; the built-in read_file keeps its name.
    assert!(registry.get("fs__move_file").is_none());
    assert!(registry.get("fs__read_text_file").is_some());
    assert!(registry.get("read_file").is_some());
    // readOnlyHint decides approval.
    assert_eq!(
        registry.get("fs__read_text_file").unwrap().effect(),
        Effect::ReadOnly
    );
    assert_eq!(
        registry.get("fs__write_file").unwrap().effect(),
        Effect::Write
    );

    let ctx = ToolContext::new(dir.path()).unwrap();
    let out = registry
        .execute("fs__list_directory", json!({"path": allowed}), &ctx)
        .await
        .unwrap();
    assert!(out.content.contains("[FILE] notes.txt"), "{}", out.content);
    let out = registry
        .execute(
            "fs__read_text_file",
            json!({"path": allowed.join("notes.txt")}),
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(out.content, "hello from notes\n");
    registry
        .execute(
            "fs__write_file",
            json!({"path": allowed.join("new.txt"), "content": "written via MCP"}),
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(allowed.join("new.txt")).unwrap(),
        "written via MCP"
    );
    // Outside the allowed directory: a tool error with the server's words, not a crash.
    for outside in [
        dir.path().join("secret.txt"),
        allowed.join("../secret.txt"),
        "/etc/passwd".into(),
    ] {
        let err = registry
            .execute("fs__read_text_file", json!({"path": outside}), &ctx)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("Access denied"), "{err}");
    }
    // The server is still there after its refusals.
    let out = registry
        .execute("fs__list_allowed_directories", json!({}), &ctx)
        .await
        .unwrap();
    assert!(out.content.contains("allowed"), "{}", out.content);
    servers.shutdown().await;
}

//! Servers that misbehave, written with the official Python SDK (`tests/servers/faulty.py`):
//! each gives a clear message and the session goes on with the others. And no server, or
//! server's child, outlives the session.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Events, config, recorder};
use nanna_mcp::{McpEvent, McpServers};
use nanna_testkit::mcp::{RealMcp, toml_str, wait_gone};
use nanna_tools::{ToolContext, ToolError, ToolRegistry};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/faulty.py")
}

/// A `[mcp_servers.NAME]` table running `faulty.py MODE TAG` (the tag, unused by the script,
/// tells this test's processes from those of tests running beside it).
fn table(real: &RealMcp, name: &str, mode: &str, tag: &Path, extra: &str) -> String {
    format!(
        "[mcp_servers.{name}]\ncommand = {}\nargs = [{}, \"{mode}\", {}]\n{extra}\n",
        toml_str(real.python.display().to_string()),
        toml_str(script().display().to_string()),
        toml_str(tag.display().to_string()),
    )
}

fn failure(events: &Events, name: &str) -> Option<(String, String)> {
    events.lock().unwrap().iter().find_map(|e| match e {
        McpEvent::ServerFailed {
            server,
            message,
            stderr,
        } if server == name => Some((message.clone(), stderr.clone())),
        _ => None,
    })
}

#[tokio::test]
async fn a_crash_mid_call_a_silent_server_and_malformed_schemas_leave_the_session_working() {
    let Some(real) = RealMcp::find() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tables = [
        table(&real, "crashy", "crash", dir.path(), ""),
        table(
            &real,
            "silent",
            "silent",
            dir.path(),
            "startup_timeout_sec = 3",
        ),
        table(&real, "odd", "malformed", dir.path(), ""),
        table(&real, "raw", "raw", dir.path(), ""),
        "[mcp_servers.missing]\ncommand = \"/nonexistent/mcp-server\"\n".to_owned(),
    ]
    .concat();
    let config = config(dir.path(), &tables);
    let (sink, events) = recorder();
    let started = Instant::now();
    let servers = McpServers::start(&config, dir.path(), sink).await;
    // The silent server costs its own timeout, not more; the others start meanwhile.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let mut running = servers.running();
    running.sort_unstable();
    assert_eq!(running, ["crashy", "odd"]);

    // Never answers the handshake: stopped at its timeout, with what it wrote to stderr.
    let (message, stderr) = failure(&events, "silent").expect("silent reported");
    assert!(
        message.contains("did not finish the MCP handshake and list its tools within 3 s"),
        "{message}"
    );
    assert!(
        message.contains("raise startup_timeout_sec in [mcp_servers.silent]"),
        "{message}"
    );
    assert!(stderr.contains("up, but never answering"), "{stderr}");
    // A tool list rmcp cannot read (an inputSchema that is a string): said so at once.
    let (message, _) = failure(&events, "raw").expect("raw reported");
    assert!(
        message.contains("listing its tools failed")
            && message.contains("a tool whose inputSchema is not an object"),
        "{message}"
    );
    // A program that does not exist.
    let (message, _) = failure(&events, "missing").expect("missing reported");
    assert!(
        message.contains("cannot start `/nonexistent/mcp-server`: no such program"),
        "{message}"
    );

    // Malformed schemas: those tools are skipped with the reason, the good one is offered.
    let skipped: Vec<(String, String)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            McpEvent::ToolSkipped { tool, reason, .. } => Some((tool.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .any(|(t, r)| t == "bad_type" && r.contains("unknown type `strnig`"))
    );
    assert!(
        skipped
            .iter()
            .any(|(t, r)| t == "bad_union" && r.contains("`anyOf` must be a list"))
    );
    let mut registry = ToolRegistry::new();
    servers.register(&mut registry);
    let mut names = registry.names();
    names.sort_unstable();
    assert_eq!(names, ["crashy__crash", "crashy__ok", "odd__ok"]);

    let ctx = ToolContext::new(dir.path()).unwrap();
    let out = registry
        .execute("crashy__ok", json!({"x": "before"}), &ctx)
        .await
        .unwrap();
    assert_eq!(out.content, "ok: before");
    // A crash mid-call: a tool error naming the server and carrying its last stderr lines.
    let err = registry
        .execute("crashy__crash", json!({}), &ctx)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("the MCP server `crashy` stopped"), "{err}");
    assert!(
        err.contains("simulated failure in the middle of a call"),
        "{err}"
    );
    // Its tools now fail at once with the same explanation; the exit is reported once.
    let err = registry
        .execute("crashy__ok", json!({"x": "after"}), &ctx)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("the MCP server `crashy` stopped"), "{err}");
    let exits = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, McpEvent::ServerExited { .. }))
        .count();
    assert_eq!(exits, 1);
    // The other server is unaffected.
    let out = registry
        .execute("odd__ok", json!({"x": "still here"}), &ctx)
        .await
        .unwrap();
    assert_eq!(out.content, "ok: still here");
    // Arguments are checked against the translated schema before the server sees them.
    let err = registry
        .execute("odd__ok", json!({}), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments { .. }), "{err}");

    servers.shutdown().await;
    assert_eq!(
        wait_gone(&dir.path().display().to_string(), Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}

#[tokio::test]
async fn cancelling_a_call_tells_the_server() {
    let Some(real) = RealMcp::find() else { return };
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("cancelled");
    let config = config(
        dir.path(),
        &table(
            &real,
            "slow",
            "slow",
            dir.path(),
            &format!(
                "env = {{ MARKER = {} }}",
                toml_str(marker.display().to_string())
            ),
        ),
    );
    let (sink, events) = recorder();
    let servers = McpServers::start(&config, dir.path(), sink).await;
    assert_eq!(servers.running(), ["slow"], "{:?}", events.lock().unwrap());
    let mut registry = ToolRegistry::new();
    servers.register(&mut registry);
    let cancel = CancellationToken::new();
    let ctx = ToolContext::new(dir.path())
        .unwrap()
        .with_cancel(cancel.clone());
    let trigger = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            cancel.cancel();
        })
    };
    let err = registry
        .execute("slow__slow", json!({}), &ctx)
        .await
        .unwrap_err();
    trigger.await.unwrap();
    assert_eq!(err, ToolError::Cancelled);
    // The server got notifications/cancelled and stopped the handler.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !marker.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(marker.exists(), "the server never saw the cancellation");

    // Abandoning a call (the agent drops it, as on Ctrl-C) tells the server too.
    std::fs::remove_file(&marker).unwrap();
    let ctx = ToolContext::new(dir.path()).unwrap();
    let call = registry.execute("slow__slow", json!({}), &ctx);
    let _ = tokio::time::timeout(Duration::from_millis(500), call).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !marker.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(marker.exists(), "an abandoned call was not cancelled");
    servers.shutdown().await;
}

#[tokio::test]
async fn a_servers_own_children_stop_with_the_session() {
    let Some(real) = RealMcp::find() else { return };
    for graceful in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild.pid");
        let config = config(
            dir.path(),
            &table(
                &real,
                "spawner",
                "spawner",
                dir.path(),
                &format!(
                    "env = {{ MARKER = {} }}",
                    toml_str(marker.display().to_string())
                ),
            ),
        );
        let (sink, events) = recorder();
        let servers = McpServers::start(&config, dir.path(), sink).await;
        assert_eq!(
            servers.running(),
            ["spawner"],
            "{:?}",
            events.lock().unwrap()
        );
        let pid: u32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        if graceful {
            servers.shutdown().await;
        } else {
            // Dropped without shutdown (a panic, an early return): still no orphan.
            drop(servers);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !alive(pid),
            "grandchild {pid} outlived the session (graceful: {graceful})"
        );
    }
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

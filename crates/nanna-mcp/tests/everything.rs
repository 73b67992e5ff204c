//! Against `@modelcontextprotocol/server-everything` (npm), the MCP reference server, over
//! stdio and over streamable HTTP: structured output, images, resource links, a long-running
//! tool with progress, cancellation.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Events, config, recorder};
use nanna_mcp::{McpEvent, McpServers};
use nanna_testkit::mcp::{RealMcp, toml_str};
use nanna_tools::{Effect, ToolContext, ToolError, ToolRegistry};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Runs the checks every transport must pass against server-everything named `e`.
async fn exercise(servers: &McpServers, events: &Events, workspace: &Path) {
    let mut registry = ToolRegistry::new();
    let added = servers.register(&mut registry);
    assert!(added >= 10, "{added} tools: {:?}", events.lock().unwrap());
    let ctx = ToolContext::new(workspace).unwrap();

    // Annotations: readOnlyHint true → no approval; the toggles may change things.
    assert_eq!(registry.get("e__echo").unwrap().effect(), Effect::ReadOnly);
    assert_eq!(
        registry
            .get("e__toggle-simulated-logging")
            .unwrap()
            .effect(),
        Effect::Write
    );

    let out = registry
        .execute("e__echo", json!({"message": "hi there"}), &ctx)
        .await
        .unwrap();
    assert_eq!(out.content, "Echo: hi there");

    // Structured output: the same JSON the text block carries, sent once.
    let out = registry
        .execute(
            "e__get-structured-content",
            json!({"location": "Chicago"}),
            &ctx,
        )
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&out.content).unwrap();
    assert_eq!(value["temperature"], 36);
    // The schema's enum is enforced before the call.
    let err = registry
        .execute(
            "e__get-structured-content",
            json!({"location": "Paris"}),
            &ctx,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("must be one of"), "{err}");

    // An image: named in the text, pixels attached.
    let out = registry
        .execute("e__get-tiny-image", json!({}), &ctx)
        .await
        .unwrap();
    assert_eq!(out.images.len(), 1);
    assert!(out.images[0].starts_with("iVBORw0KGgo"), "a PNG");
    assert!(
        out.content.contains("[image 1: image/png,"),
        "{}",
        out.content
    );

    // Resource links.
    let out = registry
        .execute("e__get-resource-links", json!({"count": 2}), &ctx)
        .await
        .unwrap();
    assert_eq!(
        out.content.matches("[resource link: ").count(),
        2,
        "{}",
        out.content
    );
    assert!(out.content.contains("demo://resource/"), "{}", out.content);

    // A long-running tool reports progress under the name the model called.
    events.lock().unwrap().clear();
    let out = registry
        .execute(
            "e__trigger-long-running-operation",
            json!({"duration": 0.6, "steps": 3}),
            &ctx,
        )
        .await
        .unwrap();
    assert!(out.content.contains("completed"), "{}", out.content);
    let progress: Vec<(f64, Option<f64>)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            McpEvent::Progress {
                tool,
                progress,
                total,
                ..
            } if tool == "e__trigger-long-running-operation" => Some((*progress, *total)),
            _ => None,
        })
        .collect();
    assert_eq!(
        progress,
        [(1.0, Some(3.0)), (2.0, Some(3.0)), (3.0, Some(3.0))]
    );

    // Cancellation: the call returns at once, and the server is still fine afterwards.
    let cancel = CancellationToken::new();
    let ctx2 = ctx.clone().with_cancel(cancel.clone());
    let canceller = {
        let events = events.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            // Cancel after the first progress notification.
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                let seen = events.lock().unwrap().iter().any(|e| {
                    matches!(e, McpEvent::Progress { progress, total: Some(t), .. } if *progress >= 1.0 && *t == 30.0)
                });
                if seen {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let err = registry
        .execute(
            "e__trigger-long-running-operation",
            json!({"duration": 30, "steps": 30}),
            &ctx2,
        )
        .await
        .unwrap_err();
    canceller.await.unwrap();
    assert_eq!(err, ToolError::Cancelled);
    // Well before the operation's own 30 s: the cancellation ended the call.
    assert!(started.elapsed() < Duration::from_secs(20));
    let out = registry
        .execute("e__get-sum", json!({"a": 2, "b": 40}), &ctx)
        .await
        .unwrap();
    assert!(out.content.contains("42"), "{}", out.content);
}

#[tokio::test]
async fn server_everything_over_stdio() {
    let Some(real) = RealMcp::find() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &format!(
            "[mcp_servers.e]\ncommand = {}\n",
            toml_str(real.everything.display().to_string())
        ),
    );
    let (sink, events) = recorder();
    let servers = McpServers::start(&config, dir.path(), sink).await;
    assert_eq!(servers.running(), ["e"], "{:?}", events.lock().unwrap());
    exercise(&servers, &events, dir.path()).await;
    servers.shutdown().await;
}

/// server-everything's streamable-HTTP transport on a free port, killed on drop.
struct HttpEverything {
    child: Child,
    port: u16,
}

impl HttpEverything {
    fn start(real: &RealMcp) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&real.everything)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server-everything starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "server-everything did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for HttpEverything {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn server_everything_over_streamable_http() {
    let Some(real) = RealMcp::find() else { return };
    let server = HttpEverything::start(&real);
    let dir = tempfile::tempdir().unwrap();
    // A bearer token and headers travel with every request (the server ignores them).
    // SAFETY: only this test reads the variable.
    unsafe { std::env::set_var("NANNA_TEST_EVERYTHING_TOKEN", "secret-token") };
    let config = config(
        dir.path(),
        &format!(
            "[mcp_servers.e]\nurl = \"http://127.0.0.1:{}/mcp\"\nbearer_token_env_var = \
             \"NANNA_TEST_EVERYTHING_TOKEN\"\nhttp_headers = {{ X-Test = \"1\" }}\n",
            server.port
        ),
    );
    let (sink, events) = recorder();
    let servers = McpServers::start(&config, dir.path(), sink).await;
    assert_eq!(servers.running(), ["e"], "{:?}", events.lock().unwrap());
    exercise(&servers, &events, dir.path()).await;
    servers.shutdown().await;
}

#[tokio::test]
async fn unreachable_http_server_and_missing_token_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = config(
        dir.path(),
        &format!(
            "[mcp_servers.down]\nurl = \"http://127.0.0.1:{port}/mcp\"\nstartup_timeout_sec = 5\n\
             [mcp_servers.tokenless]\nurl = \"http://127.0.0.1:{port}/mcp\"\n\
             bearer_token_env_var = \"NANNA_TEST_UNSET_TOKEN_VAR\"\n"
        ),
    );
    let (sink, events) = recorder();
    let servers = McpServers::start(&config, dir.path(), sink).await;
    assert!(servers.running().is_empty());
    let failures: Vec<(String, String)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            McpEvent::ServerFailed {
                server, message, ..
            } => Some((server.clone(), message.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    let message = |name: &str| {
        failures
            .iter()
            .find(|(s, _)| s == name)
            .map(|(_, m)| m.clone())
            .unwrap()
    };
    eprintln!("{}", message("down"));
    assert!(message("down").contains("handshake"), "{}", message("down"));
    assert!(
        message("tokenless")
            .contains("NANNA_TEST_UNSET_TOKEN_VAR named by [mcp_servers.tokenless] is not set"),
        "{}",
        message("tokenless")
    );
}

//! Model pulls through the model server, against the scripted Ollama server (issue 11 item
//! 7): the server's own error text reaches the user whether it comes as a progress line or
//! as the body of an HTTP error written without a trailing newline, as Ollama's
//! `PullHandler` does (`c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"error": ...})`,
//! and gin's JSON renderer writes no newline).

use nanna_deploy::DeployEvent;
use nanna_deploy::engine::{Engine, EngineKind};
use nanna_deploy::event::Recorder;
use nanna_deploy::host::{HostRoot, ProbeEnv};
use nanna_deploy::stack::{self, StackContext, StackError};
use nanna_testkit::{ModelSpec, Script, ScriptedServer, ServerConfig};

/// An engine value for the context; the pull never talks to it.
fn engine() -> Engine {
    Engine {
        kind: EngineKind::Docker,
        socket: "tcp://127.0.0.1:9".into(),
        version: "test".into(),
        api_version: "1.41".into(),
        client: bollard::Docker::connect_with_http(
            "tcp://127.0.0.1:9",
            1,
            bollard::API_DEFAULT_VERSION,
        )
        .unwrap(),
    }
}

#[tokio::test]
async fn an_http_error_without_a_trailing_newline_keeps_its_text() {
    let server = ScriptedServer::start(Script::new()).await.unwrap();
    // The raw answer: 400 and a body that does not end in a newline.
    let answer = reqwest_free_post(server.addr(), "/api/pull", r#"{"model":""}"#).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.ends_with("\"model is required\"}"), "{answer:?}");

    let engine = engine();
    let env = ProbeEnv::isolated(HostRoot::system());
    let ctx = StackContext::quiet(&engine, &env);
    let error = stack::pull_model(&ctx, server.addr(), "")
        .await
        .unwrap_err();
    assert!(matches!(error, StackError::Pull { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains("HTTP 400"), "{text}");
    assert!(text.contains("model is required"), "{text}");
}

#[tokio::test]
async fn an_error_line_in_the_stream_keeps_its_text_and_progress_is_reported() {
    let mut config = ServerConfig::default();
    config
        .pullable_models
        .push(ModelSpec::new("qwen2.5-coder:7b"));
    let server = ScriptedServer::start_with(config, Script::new())
        .await
        .unwrap();
    let engine = engine();
    let env = ProbeEnv::isolated(HostRoot::system());
    let events = Recorder::new();
    let ctx = StackContext {
        events: &events,
        ..StackContext::quiet(&engine, &env)
    };
    stack::pull_model(&ctx, server.addr(), "qwen2.5-coder:7b")
        .await
        .unwrap();
    let events = events.events();
    let layers: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            DeployEvent::Progress {
                item: Some(item),
                current: Some(c),
                total: Some(t),
                ..
            } => Some((item.clone(), *c, *t)),
            _ => None,
        })
        .collect();
    assert!(layers.iter().any(|(_, c, t)| c == t), "{events:?}");
    assert!(
        matches!(events.last(), Some(DeployEvent::Done { .. })),
        "{events:?}"
    );

    let error = stack::pull_model(&ctx, server.addr(), "no-such-model:1b")
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("pull model manifest: file does not exist"),
        "{error}"
    );
}

/// POST over plain TCP, returning the raw answer.
async fn reqwest_free_post(addr: std::net::SocketAddr, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

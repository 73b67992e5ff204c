//! The OpenAI-compatible provider against the scripted server (`nanna-testkit`).

use std::time::Duration;

use futures::StreamExt;
use nanna_model::{
    ChatMessage, ChatRequest, FinishReason, JsonSchema, Limits, ModelError, ModelProvider,
    OpenAiProvider, StreamEvent, ToolCall, ToolChoice, ToolDefinition, collect,
};
use nanna_testkit::{Fault, ModelSpec, Script, ScriptedServer, ServerConfig, Turn};
use serde_json::json;

const MODEL: &str = "llama3.1:8b";

fn provider(server: &ScriptedServer) -> OpenAiProvider {
    OpenAiProvider::new(&server.url()).expect("valid URL")
}

fn request() -> ChatRequest {
    ChatRequest::new(MODEL, vec![ChatMessage::user("hello")])
}

fn tool(name: &str) -> ToolDefinition {
    ToolDefinition::function(
        name,
        "A tool",
        JsonSchema::object().property("path", JsonSchema::string("File path"), true),
    )
}

async fn events(
    provider: &OpenAiProvider,
    request: &ChatRequest,
) -> Vec<nanna_model::Result<StreamEvent>> {
    match provider.chat_stream(request).await {
        Ok(stream) => stream.collect().await,
        Err(error) => vec![Err(error)],
    }
}

#[tokio::test]
async fn base_url_is_normalised_with_or_without_v1() {
    for url in [
        "http://127.0.0.1:1",
        "http://127.0.0.1:1/",
        "http://127.0.0.1:1/v1",
        "http://127.0.0.1:1/v1/",
    ] {
        assert_eq!(
            OpenAiProvider::new(url).expect("valid").base_url(),
            "http://127.0.0.1:1/v1",
            "{url}"
        );
    }
    assert_eq!(
        OpenAiProvider::new("https://host/openai")
            .expect("valid")
            .base_url(),
        "https://host/openai/v1"
    );
    assert!(matches!(
        OpenAiProvider::new("localhost:8080"),
        Err(ModelError::Unreachable { .. })
    ));
}

#[tokio::test]
async fn streams_text_with_usage_and_requests_it() {
    let server = ScriptedServer::start(
        Script::new().turn(
            Turn::text("Hello there, friend.")
                .with_prompt_tokens(30)
                .with_output_tokens(6),
        ),
    )
    .await
    .expect("server");
    let all: Vec<StreamEvent> = events(&provider(&server), &request())
        .await
        .into_iter()
        .map(|e| e.expect("no error"))
        .collect();
    let text: String = all
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Hello there, friend.");
    match all.last() {
        Some(StreamEvent::Done {
            finish_reason,
            usage,
        }) => {
            assert_eq!(*finish_reason, FinishReason::Stop);
            let usage = usage.expect("usage from the include_usage chunk");
            assert_eq!((usage.prompt_tokens, usage.completion_tokens), (30, 6));
        }
        other => panic!("last event is not Done: {other:?}"),
    }
    let chat = &server.chat_requests()[0];
    assert_eq!(chat.path, "/v1/chat/completions");
    assert_eq!(chat.body["stream"], json!(true));
    assert_eq!(chat.body["stream_options"]["include_usage"], json!(true));
}

#[tokio::test]
async fn tool_call_argument_fragments_are_assembled_by_index() {
    let server = ScriptedServer::start(
        Script::new().turn(
            Turn::text("Reading both.")
                .with_tool_call("read_file", json!({"path": "α/ünïcode.txt", "limit": 10}))
                .with_tool_call("list_dir", json!({"path": "."}))
                .with_call_id(None),
        ),
    )
    .await
    .expect("server");
    let req = request().with_tools(vec![tool("read_file"), tool("list_dir")]);
    let reply = collect(
        MODEL,
        provider(&server).chat_stream(&req).await.expect("stream"),
    )
    .await
    .expect("reply");
    assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
    let calls = &reply.message.tool_calls;
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].name, "read_file");
    assert_eq!(
        calls[0].arguments,
        json!({"path": "α/ünïcode.txt", "limit": 10})
    );
    assert_eq!(calls[1].name, "list_dir");
    assert_eq!(calls[1].arguments, json!({"path": "."}));
    assert!(!calls[0].id.is_empty());
    assert!(calls[1].id.starts_with("call_"), "missing id generated");
    assert_ne!(calls[0].id, calls[1].id);

    // The same reply, not streamed.
    let server = ScriptedServer::start(
        Script::new()
            .turn(Turn::tool_call("read_file", json!({"path": "a"})).with_call_id(Some("call_x"))),
    )
    .await
    .expect("server");
    let reply = provider(&server).chat(&req).await.expect("reply");
    assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        reply.message.tool_calls,
        vec![ToolCall {
            id: "call_x".into(),
            name: "read_file".into(),
            arguments: json!({"path": "a"})
        }]
    );
}

#[tokio::test]
async fn request_carries_tools_tool_choice_history_and_options() {
    // llama.cpp enforces tool_choice itself, so the request carries it (Ollama's /v1 ignores
    // it: tests/fidelity.rs).
    let call = || Turn::tool_call("read_file", json!({"path": "b"}));
    let server = ScriptedServer::start_with(
        ServerConfig::llama_cpp(ModelSpec::new(MODEL)),
        Script::new()
            .turn(Turn::text("ok"))
            .turn(Turn::text("ok"))
            .turn(call())
            .turn(call())
            .on_exhausted(nanna_testkit::Exhausted::Text("ok".into())),
    )
    .await
    .expect("server");
    let provider = provider(&server);
    let history = vec![
        ChatMessage::user("read a"),
        ChatMessage::assistant_with_tool_calls(
            "",
            vec![ToolCall {
                id: "c1".into(),
                name: "read_file".into(),
                arguments: json!({"path": "a"}),
            }],
        ),
        ChatMessage::tool_result("c1", "read_file", "text of a"),
    ];
    let choices = [
        (ToolChoice::Auto, json!("auto")),
        (ToolChoice::None, json!("none")),
        (ToolChoice::Required, json!("required")),
        (
            ToolChoice::Specific("read_file".into()),
            json!({"type": "function", "function": {"name": "read_file"}}),
        ),
    ];
    for (choice, _) in &choices {
        let req = ChatRequest::new(MODEL, history.clone())
            .with_tools(vec![tool("read_file")])
            .with_tool_choice(choice.clone())
            .with_max_tokens(99)
            .with_temperature(0.5);
        provider.chat(&req).await.expect("reply");
    }
    let chats = server.chat_requests();
    for (chat, (_, wire)) in chats.iter().zip(&choices) {
        assert_eq!(&chat.body["tool_choice"], wire);
        assert_eq!(chat.body["max_tokens"], json!(99));
        assert_eq!(chat.body["temperature"], json!(0.5));
        assert_eq!(chat.body["stream"], json!(false));
        assert!(chat.body.get("stream_options").is_none());
        assert_eq!(chat.tools().len(), 1);
        let messages = chat.messages();
        let arguments = messages[1]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .expect("a string");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(arguments).expect("JSON"),
            json!({"path": "a"})
        );
        assert_eq!(messages[2]["role"], json!("tool"));
        assert_eq!(messages[2]["tool_call_id"], json!("c1"));
    }
    // No tools offered: no tool_choice either.
    provider.chat(&request()).await.expect("reply");
    let last = server.chat_requests().pop().expect("request");
    assert!(last.body.get("tool_choice").is_none() && last.body.get("tools").is_none());
}

#[tokio::test]
async fn finish_reason_length() {
    let server = ScriptedServer::start(
        Script::new().turn(Turn::text("cut").with_fault(Fault::Length).repeat(2)),
    )
    .await
    .expect("server");
    let reply = collect(
        MODEL,
        provider(&server)
            .chat_stream(&request())
            .await
            .expect("stream"),
    )
    .await
    .expect("reply");
    assert_eq!(reply.finish_reason, FinishReason::Length);
    let reply = provider(&server).chat(&request()).await.expect("reply");
    assert_eq!(reply.finish_reason, FinishReason::Length);
}

#[tokio::test]
async fn error_event_mid_stream_is_a_server_error() {
    // llama.cpp's shape: `data: {"error": {...}}`, then the stream ends.
    let server = ScriptedServer::start_with(
        ServerConfig::llama_cpp(ModelSpec::new(MODEL)),
        Script::new().turn(
            Turn::text("partial answer")
                .with_fault(Fault::ErrorLineMidStream("out of memory".into())),
        ),
    )
    .await
    .expect("server");
    let all = events(&provider(&server), &request()).await;
    match all.last() {
        Some(Err(ModelError::Server { message })) => assert!(message.contains("out of memory")),
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_event_is_reported() {
    let server = ScriptedServer::start(
        Script::new().turn(Turn::text("a b c").with_fault(Fault::MalformedLine)),
    )
    .await
    .expect("server");
    let all = events(&provider(&server), &request()).await;
    assert!(
        matches!(all.last(), Some(Err(ModelError::Malformed { .. }))),
        "{all:?}"
    );
}

#[tokio::test]
async fn close_mid_stream_is_interrupted() {
    let server = ScriptedServer::start(
        Script::new().turn(Turn::text("one two three four").with_fault(Fault::CloseAfterChunks(2))),
    )
    .await
    .expect("server");
    let all = events(&provider(&server), &request()).await;
    assert!(
        !all.iter()
            .any(|e| matches!(e, Ok(StreamEvent::Done { .. }))),
        "{all:?}"
    );
    assert!(
        matches!(all.last(), Some(Err(ModelError::Interrupted { .. }))),
        "{all:?}"
    );
}

#[tokio::test]
async fn http_errors_unknown_model_and_missing_tools() {
    let server = ScriptedServer::start(Script::new().turn(Turn::text("x").with_fault(
        Fault::HttpError {
            status: 500,
            message: "kv cache full".into(),
        },
    )))
    .await
    .expect("server");
    let error = provider(&server).chat(&request()).await.expect_err("error");
    assert_eq!(
        error,
        ModelError::Http {
            status: 500,
            message: "kv cache full".into()
        }
    );

    let config = ServerConfig::with_models(vec![
        ModelSpec::new("plain:1b").with_capabilities(["completion"]),
    ]);
    let server = ScriptedServer::start_with(config, Script::always_text("x"))
        .await
        .expect("server");
    let missing = ChatRequest::new("ghost:7b", vec![ChatMessage::user("hi")]);
    let error = provider(&server)
        .chat_stream(&missing)
        .await
        .err()
        .expect("error");
    assert_eq!(
        error,
        ModelError::ModelNotFound {
            model: "ghost:7b".into(),
            pullable: false
        }
    );
    assert!(
        !error.to_string().contains("nanna pull"),
        "an OpenAI-compatible server cannot pull: {error}"
    );
    let with_tools =
        ChatRequest::new("plain:1b", vec![ChatMessage::user("hi")]).with_tools(vec![tool("t")]);
    let error = provider(&server)
        .chat(&with_tools)
        .await
        .expect_err("error");
    assert_eq!(
        error,
        ModelError::ToolsUnsupported {
            model: "plain:1b".into()
        }
    );
}

#[tokio::test]
async fn idle_timeout() {
    let server = ScriptedServer::start(
        Script::new().turn(Turn::text("late").with_fault(Fault::Delay(Duration::from_secs(5)))),
    )
    .await
    .expect("server");
    let provider = provider(&server).with_limits(Limits {
        idle_timeout: Duration::from_millis(200),
        ..Limits::default()
    });
    let error = provider.chat(&request()).await.expect_err("timeout");
    assert!(matches!(error, ModelError::Timeout { .. }), "{error}");
}

#[tokio::test]
async fn models_health_version_and_pull() {
    let server = ScriptedServer::start(Script::always_text("ok"))
        .await
        .expect("server");
    let provider = provider(&server);
    let models = provider.list_models().await.expect("models");
    assert_eq!(
        models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        vec![MODEL]
    );
    provider.health().await.expect("healthy");
    let info = provider.model_info(MODEL).await.expect("info");
    assert_eq!(info.name, MODEL);
    assert!(matches!(
        provider.model_info("ghost").await,
        Err(ModelError::ModelNotFound { .. })
    ));
    // Behind the OpenAI API is an Ollama: its /api/version answers.
    assert_eq!(provider.version().await.expect("version"), "0.13.0");
    let error = provider.pull(MODEL).await.err().expect("unsupported");
    assert!(
        error.to_string().contains("server's own tooling"),
        "{error}"
    );
}

/// Accepts one connection, returns its request head, answers an empty model list.
async fn capture_one_request(listener: tokio::net::TcpListener) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut socket, _) = listener.accept().await.expect("accept");
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let body = r#"{"object":"list","data":[]}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await.expect("write");
    String::from_utf8_lossy(&head).to_lowercase()
}

#[tokio::test]
async fn bearer_key_is_sent_only_when_set() {
    for key in [Some("sk-test-123"), None] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let capture = tokio::spawn(capture_one_request(listener));
        let provider = OpenAiProvider::new(&url)
            .expect("valid")
            .with_api_key(key.map(str::to_owned));
        provider.health().await.expect("healthy");
        let head = capture.await.expect("captured");
        assert!(head.starts_with("get /v1/models "), "{head}");
        match key {
            Some(key) => assert!(
                head.contains(&format!("authorization: bearer {key}")),
                "{head}"
            ),
            None => assert!(!head.contains("authorization:"), "{head}"),
        }
    }
}

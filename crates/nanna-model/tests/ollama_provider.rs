//! The Ollama provider against the scripted server (`nanna-testkit`).

use std::time::Duration;

use futures::StreamExt;
use nanna_model::{
    ChatMessage, ChatRequest, FinishReason, JsonSchema, Limits, ModelError, ModelProvider,
    OllamaProvider, StreamEvent, ToolChoice, ToolDefinition, collect,
};
use nanna_testkit::{Fault, ModelSpec, Script, ScriptedServer, ServerConfig, Turn};
use serde_json::json;

const MODEL: &str = "llama3.1:8b";

fn provider(server: &ScriptedServer) -> OllamaProvider {
    OllamaProvider::new(&server.url()).expect("valid URL")
}

fn request() -> ChatRequest {
    ChatRequest::new(MODEL, vec![ChatMessage::user("hello")])
}

fn read_file_tool() -> ToolDefinition {
    ToolDefinition::function(
        "read_file",
        "Read a file",
        JsonSchema::object().property("path", JsonSchema::string("File path"), true),
    )
}

async fn events(
    provider: &OllamaProvider,
    request: &ChatRequest,
) -> Vec<nanna_model::Result<StreamEvent>> {
    let stream = provider.chat_stream(request).await.expect("stream starts");
    stream.collect().await
}

#[tokio::test]
async fn streams_text_and_reports_usage() {
    let server = ScriptedServer::start(
        Script::new().turn(
            Turn::text("Hello there, friend.")
                .with_prompt_tokens(21)
                .with_output_tokens(5),
        ),
    )
    .await
    .expect("server");
    let all = events(&provider(&server), &request()).await;
    let all: Vec<StreamEvent> = all.into_iter().map(|e| e.expect("no error")).collect();
    let text: String = all
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Hello there, friend.");
    assert!(
        all.iter()
            .filter(|e| matches!(e, StreamEvent::TextDelta { .. }))
            .count()
            > 1
    );
    match all.last() {
        Some(StreamEvent::Done {
            finish_reason,
            usage,
        }) => {
            assert_eq!(*finish_reason, FinishReason::Stop);
            let usage = usage.expect("usage reported");
            assert_eq!((usage.prompt_tokens, usage.completion_tokens), (21, 5));
        }
        other => panic!("last event is not Done: {other:?}"),
    }
    let chat = server.chat_requests();
    assert_eq!(chat.len(), 1);
    assert!(chat[0].stream());
}

#[tokio::test]
async fn non_streamed_chat_sends_stream_false() {
    let server = ScriptedServer::start(Script::new().turn(Turn::text("All done.")))
        .await
        .expect("server");
    let reply = provider(&server).chat(&request()).await.expect("reply");
    assert_eq!(reply.message.content, "All done.");
    assert_eq!(reply.finish_reason, FinishReason::Stop);
    assert_eq!(server.chat_requests()[0].body["stream"], json!(false));
}

#[tokio::test]
async fn num_ctx_is_always_sent_and_capped_at_the_model_maximum() {
    let config = ServerConfig::with_models(vec![
        ModelSpec::new("small:1b").with_context_length(8192),
        ModelSpec::new(MODEL),
    ]);
    let server = ScriptedServer::start_with(config, Script::always_text("ok"))
        .await
        .expect("server");
    let provider = provider(&server);
    // Default window (110k) under the model maximum (131072).
    provider.chat(&request()).await.expect("reply");
    // Requested window over the maximum of an 8k model: capped.
    let small =
        ChatRequest::new("small:1b", vec![ChatMessage::user("hi")]).with_context_window(32_768);
    provider.chat(&small).await.expect("reply");
    // Requested window under the maximum: kept.
    provider
        .chat(&request().with_context_window(4096))
        .await
        .expect("reply");
    provider.chat(&request()).await.expect("reply");
    let chats = server.chat_requests();
    let num_ctx: Vec<Option<u64>> = chats.iter().map(|r| r.num_ctx()).collect();
    assert_eq!(
        num_ctx,
        vec![Some(110_000), Some(8192), Some(4096), Some(110_000)]
    );
    let shows = server
        .requests()
        .iter()
        .filter(|r| r.path == "/api/show")
        .count();
    assert_eq!(shows, 2, "one /api/show per model");
}

#[tokio::test]
async fn configured_default_window_and_options_reach_the_server() {
    let server = ScriptedServer::start(Script::always_text("ok"))
        .await
        .expect("server");
    let provider = provider(&server)
        .with_default_context_window(16_384)
        .with_keep_alive(Some("-1".into()));
    let req = request()
        .with_temperature(0.3)
        .with_seed(7)
        .with_max_tokens(64);
    provider.chat(&req).await.expect("reply");
    provider
        .chat(&request().with_keep_alive("10m"))
        .await
        .expect("reply");
    let chats = server.chat_requests();
    let body = &chats[0].body;
    assert_eq!(body["options"]["num_ctx"], json!(16_384));
    assert_eq!(body["options"]["seed"], json!(7));
    assert_eq!(body["options"]["num_predict"], json!(64));
    let temperature = body["options"]["temperature"]
        .as_f64()
        .expect("temperature");
    assert!((temperature - 0.3).abs() < 1e-6);
    assert_eq!(
        body["keep_alive"],
        json!(-1),
        "a bare number goes as a number"
    );
    assert_eq!(
        chats[1].body["keep_alive"],
        json!("10m"),
        "the request's own wins"
    );
}

#[tokio::test]
async fn tool_calls_from_every_chunk_get_ids_and_finish_as_tool_calls() {
    let server = ScriptedServer::start(
        Script::new().turn(
            Turn::text("Let me look.")
                .with_tool_call("read_file", json!({"path": "a.txt"}))
                .with_call_id(None)
                .with_tool_call("read_file", json!({"path": "b.txt"}))
                .with_call_id(None),
        ),
    )
    .await
    .expect("server");
    let req = request().with_tools(vec![read_file_tool()]);
    let stream = provider(&server).chat_stream(&req).await.expect("stream");
    let reply = collect(MODEL, stream).await.expect("reply");
    assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
    assert_eq!(reply.message.content, "Let me look.");
    let calls = &reply.message.tool_calls;
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].arguments, json!({"path": "a.txt"}));
    assert_eq!(calls[1].arguments, json!({"path": "b.txt"}));
    assert!(
        calls
            .iter()
            .all(|c| c.name == "read_file" && c.id.starts_with("call_"))
    );
    assert_ne!(calls[0].id, calls[1].id, "generated ids are unique");
    assert_eq!(server.chat_requests()[0].tools().len(), 1);
}

#[tokio::test]
async fn server_call_ids_are_kept() {
    let server = ScriptedServer::start(
        Script::new()
            .turn(Turn::tool_call("read_file", json!({"path": "x"})).with_call_id(Some("abc"))),
    )
    .await
    .expect("server");
    let req = request().with_tools(vec![read_file_tool()]);
    let reply = provider(&server).chat(&req).await.expect("reply");
    assert_eq!(reply.message.tool_calls[0].id, "abc");
    assert_eq!(reply.finish_reason, FinishReason::ToolCalls);
}

#[tokio::test]
async fn tool_results_go_back_with_tool_name_and_history_in_ollama_shape() {
    let server = ScriptedServer::start(Script::always_text("ok"))
        .await
        .expect("server");
    let call = nanna_model::ToolCall {
        id: "call_9".into(),
        name: "read_file".into(),
        // Arguments as a JSON string (as an OpenAI server returns them) are sent as an object.
        arguments: json!("{\"path\":\"a.txt\"}"),
    };
    let req = ChatRequest::new(
        MODEL,
        vec![
            ChatMessage::system("be brief"),
            ChatMessage::user("read a.txt"),
            ChatMessage::assistant_with_tool_calls("", vec![call]),
            ChatMessage::tool_result("call_9", "read_file", "contents"),
        ],
    )
    .with_tools(vec![read_file_tool()]);
    provider(&server).chat(&req).await.expect("reply");
    let messages = server.chat_requests()[0].messages().to_vec();
    assert_eq!(
        messages[2]["tool_calls"][0]["function"]["arguments"],
        json!({"path": "a.txt"})
    );
    assert_eq!(messages[3]["role"], json!("tool"));
    assert_eq!(messages[3]["tool_name"], json!("read_file"));
    assert_eq!(messages[3]["content"], json!("contents"));
}

#[tokio::test]
async fn tool_choice_none_sends_no_tools_and_specific_sends_one() {
    let server = ScriptedServer::start(
        Script::new()
            .turn(Turn::text("ok"))
            .turn(Turn::tool_call("list_dir", json!({}))),
    )
    .await
    .expect("server");
    let other = ToolDefinition::function("list_dir", "List", JsonSchema::object());
    let provider = provider(&server);
    let req = request().with_tools(vec![read_file_tool(), other]);
    provider
        .chat(&req.clone().with_tool_choice(ToolChoice::None))
        .await
        .expect("reply");
    provider
        .chat(&req.with_tool_choice(ToolChoice::Specific("list_dir".into())))
        .await
        .expect("reply");
    let chats = server.chat_requests();
    assert!(chats[0].tools().is_empty());
    assert_eq!(chats[1].tools().len(), 1);
    assert_eq!(chats[1].tools()[0]["function"]["name"], json!("list_dir"));
}

#[tokio::test]
async fn done_reason_length_is_reported() {
    let server = ScriptedServer::start(
        Script::new().turn(Turn::text("cut off here").with_fault(Fault::Length)),
    )
    .await
    .expect("server");
    let stream = provider(&server)
        .chat_stream(&request())
        .await
        .expect("stream");
    let reply = collect(MODEL, stream).await.expect("reply");
    assert_eq!(reply.finish_reason, FinishReason::Length);
}

#[tokio::test]
async fn error_line_after_http_200_is_a_server_error() {
    let server = ScriptedServer::start(Script::new().turn(
        Turn::text("partial answer").with_fault(Fault::ErrorLineMidStream("model crashed".into())),
    ))
    .await
    .expect("server");
    let all = events(&provider(&server), &request()).await;
    assert!(
        matches!(all.first(), Some(Ok(StreamEvent::TextDelta { .. }))),
        "{all:?}"
    );
    match all.last() {
        Some(Err(ModelError::Server { message })) => assert!(message.contains("model crashed")),
        other => panic!("expected a server error, got {other:?}"),
    }
    let reply = provider(&server).chat(&request()).await;
    assert!(
        reply.is_err(),
        "the non-streamed path reports it too: {reply:?}"
    );
}

#[tokio::test]
async fn malformed_line_is_reported_with_its_content() {
    let server = ScriptedServer::start(
        Script::new().turn(Turn::text("a b c").with_fault(Fault::MalformedLine)),
    )
    .await
    .expect("server");
    let all = events(&provider(&server), &request()).await;
    match all.last() {
        Some(Err(ModelError::Malformed { detail })) => {
            assert!(detail.contains("not valid JSON"), "{detail}")
        }
        other => panic!("expected a malformed error, got {other:?}"),
    }
    assert!(
        all[..all.len() - 1].iter().all(Result::is_ok),
        "events before it are delivered"
    );
}

#[tokio::test]
async fn connection_closed_mid_stream_is_interrupted() {
    let server = ScriptedServer::start(
        Script::new().turn(
            Turn::text("one two three four five")
                .with_fault(Fault::CloseAfterChunks(2))
                .repeat(2),
        ),
    )
    .await
    .expect("server");
    // The cut may come before the response head reaches us (then `chat_stream` fails) or
    // after some lines; either way the reply is interrupted, never silently short.
    let all: Vec<_> = match provider(&server).chat_stream(&request()).await {
        Ok(stream) => stream.collect().await,
        Err(error) => vec![Err(error)],
    };
    assert!(all.iter().filter(|e| e.is_ok()).count() <= 2, "{all:?}");
    assert!(
        !all.iter()
            .any(|e| matches!(e, Ok(StreamEvent::Done { .. }))),
        "{all:?}"
    );
    assert!(
        matches!(all.last(), Some(Err(ModelError::Interrupted { .. }))),
        "{all:?}"
    );
    let reply = provider(&server).chat(&request()).await;
    assert!(
        matches!(reply, Err(ModelError::Interrupted { .. })),
        "{reply:?}"
    );
}

#[tokio::test]
async fn http_errors_carry_the_server_message() {
    let server = ScriptedServer::start(Script::new().turn(Turn::text("x").with_fault(
        Fault::HttpError {
            status: 503,
            message: "server overloaded, retry later".into(),
        },
    )))
    .await
    .expect("server");
    let error = provider(&server)
        .chat_stream(&request())
        .await
        .err()
        .expect("error");
    assert_eq!(
        error,
        ModelError::Http {
            status: 503,
            message: "server overloaded, retry later".into()
        }
    );
}

#[tokio::test]
async fn unknown_model_is_model_not_found() {
    let server = ScriptedServer::start(Script::always_text("x"))
        .await
        .expect("server");
    let req = ChatRequest::new("nonexistent:7b", vec![ChatMessage::user("hi")]);
    let error = provider(&server)
        .chat(&req)
        .await
        .expect_err("no such model");
    assert_eq!(
        error,
        ModelError::ModelNotFound {
            model: "nonexistent:7b".into(),
            pullable: true
        }
    );
    assert!(
        error.to_string().contains("nanna pull nonexistent:7b"),
        "{error}"
    );
    let error = provider(&server)
        .model_info("nonexistent:7b")
        .await
        .expect_err("no such model");
    assert!(matches!(error, ModelError::ModelNotFound { .. }));
}

#[tokio::test]
async fn tools_sent_to_a_model_without_tools_is_tools_unsupported() {
    let config = ServerConfig::with_models(vec![
        ModelSpec::new("gemma:2b").with_capabilities(["completion"]),
    ]);
    let server = ScriptedServer::start_with(config, Script::always_text("x"))
        .await
        .expect("server");
    let req = ChatRequest::new("gemma:2b", vec![ChatMessage::user("hi")])
        .with_tools(vec![read_file_tool()]);
    let error = provider(&server)
        .chat_stream(&req)
        .await
        .err()
        .expect("error");
    assert_eq!(
        error,
        ModelError::ToolsUnsupported {
            model: "gemma:2b".into()
        }
    );
}

#[tokio::test]
async fn silence_before_the_reply_is_a_timeout() {
    let server = ScriptedServer::start(
        Script::new().turn(Turn::text("late").with_fault(Fault::Delay(Duration::from_secs(5)))),
    )
    .await
    .expect("server");
    let provider = provider(&server).with_limits(Limits {
        idle_timeout: Duration::from_millis(200),
        ..Limits::default()
    });
    // Load the model details first so the timeout hits the chat itself.
    provider.model_info(MODEL).await.expect("info");
    let error = provider.chat_stream(&request()).await.err().expect("error");
    assert!(
        matches!(error, ModelError::Timeout { after, .. } if after == Duration::from_millis(200)),
        "{error}"
    );
}

#[tokio::test]
async fn silence_between_chunks_is_a_timeout() {
    let server =
        ScriptedServer::start(Script::new().turn(
            Turn::text("one two three").with_fault(Fault::ChunkDelay(Duration::from_secs(5))),
        ))
        .await
        .expect("server");
    let provider = provider(&server).with_limits(Limits {
        idle_timeout: Duration::from_millis(200),
        ..Limits::default()
    });
    let all = events(&provider, &request()).await;
    assert!(
        matches!(all.last(), Some(Err(ModelError::Timeout { .. }))),
        "{all:?}"
    );
}

#[tokio::test]
async fn refused_connection_is_unreachable_naming_the_url() {
    // Bind then drop a listener to get a port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let provider = OllamaProvider::new(&url).expect("valid URL");
    let error = provider
        .chat(&request())
        .await
        .expect_err("nothing listens");
    match &error {
        ModelError::Unreachable {
            url: reported,
            detail,
        } => {
            assert_eq!(reported, &url);
            assert!(!detail.is_empty());
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(error.to_string().contains(&url));
}

#[tokio::test]
async fn model_listing_details_version_and_running_models() {
    let server = ScriptedServer::start(Script::always_text("ok"))
        .await
        .expect("server");
    let provider = provider(&server);
    let models = provider.list_models().await.expect("models");
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].name, MODEL);
    assert_eq!(models[0].family.as_deref(), Some("llama"));
    assert_eq!(models[0].parameter_size.as_deref(), Some("8.0B"));
    assert_eq!(models[0].quantization.as_deref(), Some("Q4_K_M"));
    assert!(models[0].size_bytes.is_some());

    let info = provider.model_info(MODEL).await.expect("info");
    assert_eq!(info.context_length, Some(131_072));
    let caps = info.capabilities.expect("capabilities");
    assert!(caps.tools && caps.completion && !caps.vision);
    assert_eq!(info.quantization.as_deref(), Some("Q4_K_M"));

    assert_eq!(provider.version().await.expect("version"), "0.13.0");
    provider.health().await.expect("healthy");

    assert!(provider.running_models().await.expect("ps").is_empty());
    provider.chat(&request()).await.expect("reply");
    let running = provider.running_models().await.expect("ps");
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].name, MODEL);
    assert!(running[0].expires_at.is_some());
}

#[tokio::test]
async fn pull_streams_progress_until_success() {
    let config = ServerConfig {
        pullable_models: vec![ModelSpec::new("qwen3:4b")],
        ..ServerConfig::default()
    };
    let server = ScriptedServer::start_with(config, Script::always_text("ok"))
        .await
        .expect("server");
    let provider = provider(&server);
    let progress: Vec<_> = provider
        .pull("qwen3:4b")
        .await
        .expect("pull starts")
        .collect()
        .await;
    let progress: Vec<_> = progress.into_iter().map(|p| p.expect("progress")).collect();
    assert!(progress.len() >= 2);
    assert_eq!(progress.last().map(|p| p.status.as_str()), Some("success"));
    assert!(progress.iter().any(|p| p.total.is_some()));
    assert_eq!(
        provider.model_info("qwen3:4b").await.expect("pulled").name,
        "qwen3:4b"
    );

    let failed: Vec<_> = match provider.pull("nothing:here").await {
        Ok(stream) => stream.collect().await,
        Err(error) => vec![Err(error)],
    };
    assert!(matches!(failed.last(), Some(Err(_))), "{failed:?}");
}

#[tokio::test]
async fn thinking_is_streamed_separately() {
    let server = ScriptedServer::start_with(
        ServerConfig::with_models(vec![ModelSpec::new(MODEL).with_capabilities([
            "completion",
            "tools",
            "thinking",
        ])]),
        Script::new().turn(Turn::text("42").with_thinking("let me think")),
    )
    .await
    .expect("server");
    let all = events(&provider(&server), &request()).await;
    let thinking: String = all
        .iter()
        .filter_map(|e| match e {
            Ok(StreamEvent::ThinkingDelta { text }) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(thinking, "let me think");
}

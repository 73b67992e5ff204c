//! The OpenAI-compatible provider against a real llama.cpp server.
//!
//! Needs `NANNA_TEST_LLAMA_URL` (e.g. `http://127.0.0.1:8089`, started by
//! `.ci/llama-server.sh start`); skipped without it unless `NANNA_TEST_REQUIRE_LLAMA=1`.
//! Tests that need other flags start their own server (`nanna_testkit::llama::LlamaServer`,
//! which passes no `--alias`). The assertions are about the protocol and behaviour, never
//! about the model's words.

use futures::StreamExt;
use nanna_model::{
    ChatMessage, ChatRequest, FinishReason, ModelError, ModelProvider, OpenAiProvider, ServerKind,
    StreamEvent, Think,
};
use nanna_testkit::llama::LlamaServer;

const MAX_TOKENS: u32 = 16;

fn server() -> Option<OpenAiProvider> {
    match std::env::var("NANNA_TEST_LLAMA_URL") {
        Ok(url) if !url.trim().is_empty() => {
            Some(OpenAiProvider::new(url.trim()).expect("NANNA_TEST_LLAMA_URL is a valid URL"))
        }
        _ => {
            assert!(
                std::env::var("NANNA_TEST_REQUIRE_LLAMA").as_deref() != Ok("1"),
                "NANNA_TEST_REQUIRE_LLAMA=1 but NANNA_TEST_LLAMA_URL is not set (run .ci/llama-server.sh)"
            );
            eprintln!("skipping: set NANNA_TEST_LLAMA_URL (run .ci/llama-server.sh)");
            None
        }
    }
}

async fn model(provider: &OpenAiProvider) -> String {
    let models = provider.list_models().await.expect("list models");
    models
        .first()
        .expect("the server serves a model")
        .name
        .clone()
}

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(
        model,
        vec![
            ChatMessage::system("You are a helpful assistant."),
            ChatMessage::user("Write a long story about a lighthouse keeper."),
        ],
    )
    .with_max_tokens(MAX_TOKENS)
    .with_temperature(0.0)
    .with_seed(42)
}

/// The finish reason must agree with the token count: a reply that used the whole budget
/// was cut (`Length`), a shorter one ended by itself (`Stop`).
fn assert_finish_matches_usage(finish: FinishReason, completion_tokens: u32) {
    assert!(
        completion_tokens <= MAX_TOKENS,
        "{completion_tokens} tokens > max_tokens {MAX_TOKENS}"
    );
    let expected = if completion_tokens >= MAX_TOKENS {
        FinishReason::Length
    } else {
        FinishReason::Stop
    };
    assert_eq!(
        finish, expected,
        "finish reason vs {completion_tokens} completion tokens"
    );
}

#[tokio::test]
async fn lists_models_and_reports_their_context_length() {
    let Some(provider) = server() else { return };
    provider.health().await.expect("healthy");
    let models = provider.list_models().await.expect("models");
    assert!(!models.is_empty());
    let info = provider.model_info(&models[0].name).await.expect("info");
    assert_eq!(info.name, models[0].name);
    // The window the server serves (`-c 4096` in .ci/llama-server.sh), read from /props, not
    // the model's training context (8192 for SmolLM2-135M).
    assert_eq!(info.context_length, Some(4096), "{info:?}");
    assert_eq!(
        provider.server_kind().await.expect("kind"),
        ServerKind::LlamaCpp
    );
    match provider.version().await {
        Ok(version) => assert!(!version.trim().is_empty()),
        Err(error) => assert!(matches!(error, ModelError::Unsupported { .. }), "{error}"),
    }
}

#[tokio::test]
async fn chat_reports_usage_and_finish_reason() {
    let Some(provider) = server() else { return };
    let model = model(&provider).await;
    let reply = provider.chat(&request(&model)).await.expect("reply");
    assert!(!reply.message.content.is_empty(), "some text came back");
    assert!(reply.message.tool_calls.is_empty());
    let usage = reply.usage.expect("llama.cpp reports usage");
    assert!(usage.prompt_tokens > 0);
    assert_finish_matches_usage(reply.finish_reason, usage.completion_tokens);
}

#[tokio::test]
async fn streamed_chat_ends_with_one_done_carrying_usage() {
    let Some(provider) = server() else { return };
    let model = model(&provider).await;
    let events: Vec<StreamEvent> = provider
        .chat_stream(&request(&model))
        .await
        .expect("stream starts")
        .map(|e| e.expect("no stream error"))
        .collect()
        .await;
    let deltas = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::TextDelta { .. }))
        .count();
    assert!(deltas > 1, "text arrives in several deltas: {events:?}");
    let dones: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Done { .. }))
        .collect();
    assert_eq!(dones.len(), 1);
    let Some(StreamEvent::Done {
        finish_reason,
        usage,
    }) = events.last()
    else {
        panic!("the last event is Done: {events:?}");
    };
    let usage = usage.expect("include_usage gives usage");
    assert!(usage.prompt_tokens > 0);
    assert!(usage.completion_tokens > 0);
    assert_finish_matches_usage(*finish_reason, usage.completion_tokens);
    // Streamed and whole replies agree on the token count of a deterministic request.
    let whole = provider.chat(&request(&model)).await.expect("reply");
    assert_eq!(
        whole.usage.map(|u| u.completion_tokens),
        Some(usage.completion_tokens)
    );
}

#[tokio::test]
async fn a_short_reply_stops_by_itself() {
    let Some(provider) = server() else { return };
    let model = model(&provider).await;
    let request = ChatRequest::new(model, vec![ChatMessage::user("Say hi.")])
        .with_max_tokens(200)
        .with_temperature(0.0)
        .with_seed(1);
    let reply = provider.chat(&request).await.expect("reply");
    let usage = reply.usage.expect("usage");
    let expected = if usage.completion_tokens >= 200 {
        FinishReason::Length
    } else {
        FinishReason::Stop
    };
    assert_eq!(reply.finish_reason, expected);
}

/// The server's tokenizer (`/apply-template` + `/tokenize`) counts exactly the prompt the
/// chat completion then reports, tools included; a repeated request is served from the
/// prompt cache and says so (`cached_tokens`), while `prompt_tokens` stays the whole prompt.
#[tokio::test]
async fn prompt_count_matches_reported_usage_and_cache_is_reported() {
    let Some(provider) = server() else { return };
    let model = model(&provider).await;
    let mut request = request(&model);
    request
        .messages
        .push(ChatMessage::assistant("Once upon a time."));
    request
        .messages
        .push(ChatMessage::user("Go on, and name the keeper."));
    request.tools = vec![nanna_model::ToolDefinition::function(
        "read_file",
        "Read a file of the workspace",
        serde_json::from_value(
            serde_json::json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        )
        .expect("a schema"),
    )];
    let counted = provider
        .count_prompt_tokens(&request)
        .await
        .expect("llama.cpp counts")
        .expect("llama.cpp has a tokenizer endpoint");
    let first = provider.chat(&request).await.expect("reply");
    let second = provider.chat(&request).await.expect("reply");
    let (first, second) = (first.usage.expect("usage"), second.usage.expect("usage"));
    assert_eq!(first.prompt_tokens, counted, "{first:?}");
    assert_eq!(second.prompt_tokens, counted, "{second:?}");
    let cached = second
        .cached_prompt_tokens
        .expect("llama.cpp reports cached tokens");
    assert!(
        cached > 0 && cached < counted,
        "the repeated prompt comes from the cache (all but the last token): {second:?}"
    );
    assert_eq!(second.evaluated_prompt_tokens(), Some(counted - cached));
}

/// Issue 11, item 10: llama.cpp started without `--alias` lists its one model under the
/// file path but serves any name; asking for another name uses that model and says so, and
/// requests then name the model as the server lists it.
#[tokio::test]
async fn a_server_without_alias_serves_the_name_asked_for() {
    let Some(server) = LlamaServer::start(&["-c", "1024"]) else {
        return;
    };
    let provider = OpenAiProvider::new(&server.url()).expect("valid URL");
    let listed = model(&provider).await;
    assert!(listed.ends_with(".gguf"), "listed under its path: {listed}");
    let info = provider.model_info("smollm2").await.expect("the one model");
    assert_eq!(info.name, listed);
    assert_eq!(info.context_length, Some(1024));
    assert!(
        info.notes
            .iter()
            .any(|n| n.contains("smollm2") && n.contains(&listed)),
        "{:?}",
        info.notes
    );
    let reply = provider
        .chat(&ChatRequest::new("smollm2", vec![ChatMessage::user("Say hi.")]).with_max_tokens(4))
        .await
        .expect("served under the asked-for name");
    assert!(reply.usage.is_some_and(|u| u.completion_tokens > 0));
}

/// Issue 11, item 3: `think = false` reaches llama.cpp as
/// `chat_template_kwargs.enable_thinking: false` and levels as `reasoning_effort`; the
/// server accepts both and no reasoning comes back.
#[tokio::test]
async fn thinking_can_be_turned_off_and_levels_are_accepted() {
    let Some(provider) = server() else { return };
    let model = model(&provider).await;
    for think in [Think::Off, Think::High] {
        let request = ChatRequest::new(&model, vec![ChatMessage::user("Say hi.")])
            .with_max_tokens(8)
            .with_think(think);
        let events: Vec<StreamEvent> = provider
            .chat_stream(&request)
            .await
            .expect("accepted")
            .map(|e| e.expect("no stream error"))
            .collect()
            .await;
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, StreamEvent::ThinkingDelta { .. })),
            "{think}: {events:?}"
        );
        assert!(matches!(events.last(), Some(StreamEvent::Done { .. })));
    }
}

/// Issue 11, item 5, against the real server: a streamed request over the window is
/// answered with llama.cpp's own message. llama-server waits for the first result before it
/// starts the stream, so this error arrives as HTTP 400 (`exceed_context_size_error`), not
/// after HTTP 200; generation that runs past the window ends with `finish_reason: "length"`
/// rather than an error.
#[tokio::test]
async fn a_request_over_the_window_reports_the_servers_message() {
    let Some(server) = LlamaServer::start(&["-c", "256", "-np", "1"]) else {
        return;
    };
    let provider = OpenAiProvider::new(&server.url()).expect("valid URL");
    let model = model(&provider).await;
    let long = "lighthouse keeper ".repeat(400);
    let error = match provider
        .chat_stream(&ChatRequest::new(&model, vec![ChatMessage::user(long)]))
        .await
    {
        Ok(stream) => {
            let events: Vec<_> = stream.collect().await;
            events.into_iter().find_map(Result::err).expect("an error")
        }
        Err(error) => error,
    };
    match &error {
        ModelError::Http {
            status: 400,
            message,
        } => assert!(
            message.contains("exceeds the available context size (256 tokens)"),
            "{message}"
        ),
        other => panic!("expected the server's 400, got {other:?}"),
    }
    let request = ChatRequest::new(&model, vec![ChatMessage::user("Tell a long story.")])
        .with_max_tokens(400)
        .with_temperature(0.0)
        .with_seed(3);
    let reply = nanna_model::collect(
        &model,
        provider.chat_stream(&request).await.expect("starts"),
    )
    .await
    .expect("no error past the window");
    let usage = reply.usage.expect("usage");
    if usage.prompt_tokens + usage.completion_tokens >= 256 {
        assert_eq!(reply.finish_reason, FinishReason::Length, "{usage:?}");
    }
}

/// A call the model cut short stays in the history as the model wrote it, and llama.cpp
/// takes it back as it is (`ServerKind::LlamaCpp` replays argument text that is not JSON;
/// Ollama's `/v1` and vLLM would refuse it and get `{}`).
#[tokio::test]
async fn a_tool_call_cut_short_is_accepted_back_verbatim() {
    let Some(provider) = server() else { return };
    let model = model(&provider).await;
    assert_eq!(
        provider.server_kind().await.expect("kind"),
        ServerKind::LlamaCpp
    );
    let call = nanna_model::ToolCall {
        id: "call_1".into(),
        name: "calculate".into(),
        arguments: serde_json::Value::String(r#"{"expression": "1+"#.into()),
    };
    let tool = nanna_model::ToolDefinition::function(
        "calculate",
        "Evaluate arithmetic.",
        nanna_model::JsonSchema::object().property(
            "expression",
            nanna_model::JsonSchema::string("The expression"),
            true,
        ),
    );
    let request = ChatRequest::new(
        &model,
        vec![
            ChatMessage::user("Compute 1+1."),
            ChatMessage::assistant_with_tool_calls("", vec![call]),
            ChatMessage::tool_result(
                "call_1",
                "calculate",
                "error: the arguments are not valid JSON",
            ),
        ],
    )
    .with_tools(vec![tool])
    .with_max_tokens(MAX_TOKENS)
    .with_temperature(0.0);
    let reply = provider
        .chat(&request)
        .await
        .expect("llama.cpp takes the call back");
    assert!(reply.usage.is_some_and(|u| u.prompt_tokens > 0));
}

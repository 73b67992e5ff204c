//! Issue 11: what the real Ollama, llama.cpp and vLLM do, one test per numbered item, each
//! against the scripted server imitating the server in question.

use std::time::Duration;

use futures::StreamExt;
use nanna_model::{
    ChatMessage, ChatRequest, JsonSchema, ModelError, ModelProvider, OllamaProvider,
    OpenAiProvider, ServerKind, StreamEvent, Think, ToolCall, ToolChoice, ToolDefinition, collect,
};
use nanna_testkit::{Fault, ModelSpec, Script, ScriptedServer, ServerConfig, Turn};
use serde_json::{Value, json};

fn thinker(name: &str) -> ModelSpec {
    ModelSpec::new(name)
        .with_family("qwen3")
        .with_capabilities(["completion", "tools", "thinking"])
        .with_context_length(40_960)
}

fn tool(name: &str) -> ToolDefinition {
    ToolDefinition::function(
        name,
        "A tool",
        JsonSchema::object().property("path", JsonSchema::string("File path"), true),
    )
}

fn user(text: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::user(text)]
}

async fn stream_events(
    provider: &dyn ModelProvider,
    request: &ChatRequest,
) -> Vec<nanna_model::Result<StreamEvent>> {
    match provider.chat_stream(request).await {
        Ok(stream) => stream.collect().await,
        Err(error) => vec![Err(error)],
    }
}

/// Item 1: behind Ollama's `/v1` the window cannot be set (openai/openai.go builds options
/// without `num_ctx`); the provider recognises Ollama (`GET /api/version`), reads the
/// model's maximum from `/api/show` and the window it runs with from `/api/ps`, else
/// assumes Ollama's smallest default, and says the native provider is the one that sets it.
#[tokio::test]
async fn item1_ollama_v1_reports_the_window_ollama_chose() {
    let server = ScriptedServer::start_with(
        ServerConfig::with_models(vec![thinker("qwen3:8b")]),
        Script::always_text("ok"),
    )
    .await
    .expect("server");
    let provider = OpenAiProvider::new(&format!("{}/v1", server.url())).expect("url");
    assert_eq!(
        provider.server_kind().await.expect("kind"),
        ServerKind::Ollama
    );
    let info = provider.model_info("qwen3:8b").await.expect("info");
    assert_eq!(
        info.context_length,
        Some(4096),
        "not loaded: Ollama's floor"
    );
    let caps = info.capabilities.expect("capabilities from /api/show");
    assert!(caps.tools && caps.thinking);
    assert!(
        info.notes
            .iter()
            .any(|n| n.contains("provider = \"ollama\"") && n.contains("4096")),
        "{:?}",
        info.notes
    );
    // Once a request has loaded the model, /api/ps has the real window.
    provider
        .chat(&ChatRequest::new("qwen3:8b", user("hi")))
        .await
        .expect("reply");
    let info = provider.model_info("qwen3:8b").await.expect("info");
    assert_eq!(info.context_length, Some(4096));
    assert!(info.notes[0].contains("/api/ps"), "{:?}", info.notes);
    // A model loaded with a bigger window (by the native API) reports that one.
    OllamaProvider::new(&server.url())
        .expect("url")
        .chat(&ChatRequest::new("qwen3:8b", user("hi")).with_context_window(16_384))
        .await
        .expect("reply");
    let info = provider.model_info("qwen3:8b").await.expect("info");
    assert_eq!(info.context_length, Some(16_384));
}

/// Item 2: Ollama lists `llama3.1:latest`; `llama3.1`, `library/llama3.1` or another case
/// name the same model (types/model/name.go `ParseName`, `DisplayShortest`).
#[tokio::test]
async fn item2_untagged_names_match_ollamas_listing() {
    let server = ScriptedServer::start_with(
        ServerConfig::with_models(vec![ModelSpec::new("llama3.1")]),
        Script::always_text("ok"),
    )
    .await
    .expect("server");
    let provider = OpenAiProvider::new(&server.url()).expect("url");
    for name in ["llama3.1", "llama3.1:latest", "library/Llama3.1"] {
        let info = provider.model_info(name).await.expect(name);
        assert_eq!(info.name, "llama3.1:latest", "{name}");
    }
    assert!(matches!(
        provider.model_info("llama3.2").await,
        Err(ModelError::ModelNotFound { .. })
    ));
    provider
        .chat(&ChatRequest::new("llama3.1", user("hi")))
        .await
        .expect("served");
    assert_eq!(server.chat_requests()[0].model(), Some("llama3.1:latest"));
}

/// Item 3, native Ollama: `think` goes out as the boolean or level Ollama accepts; the
/// reply's thinking is kept on the message and sent back in history as `thinking`
/// (docs/capabilities/tool-calling.mdx); `think` is left out for a model that cannot
/// think, which Ollama would refuse with 400.
#[tokio::test]
async fn item3_ollama_think_setting_and_thinking_in_history() {
    let server = ScriptedServer::start_with(
        ServerConfig::with_models(vec![thinker("qwen3:8b"), ModelSpec::default()]),
        Script::new()
            .turn(
                Turn::tool_call("read_file", json!({"path": "a"})).with_thinking("I should read a"),
            )
            .turn(Turn::text("done").with_thinking("ignored"))
            .on_exhausted(nanna_testkit::Exhausted::Text("ok".into())),
    )
    .await
    .expect("server");
    let provider = OllamaProvider::new(&server.url()).expect("url");
    let request = ChatRequest::new("qwen3:8b", user("read a"))
        .with_tools(vec![tool("read_file")])
        .with_think(Think::High);
    let reply = provider.chat(&request).await.expect("reply");
    assert_eq!(reply.message.thinking, "I should read a");
    let mut history = request.messages.clone();
    history.push(reply.message.clone());
    history.push(ChatMessage::tool_result(
        &reply.message.tool_calls[0].id,
        "read_file",
        "A",
    ));
    let off = ChatRequest::new("qwen3:8b", history)
        .with_tools(vec![tool("read_file")])
        .with_think(Think::Off);
    let reply = provider.chat(&off).await.expect("reply");
    assert_eq!(reply.message.thinking, "", "think: false turns it off");
    provider
        .chat(&ChatRequest::new("llama3.1:8b", user("hi")).with_think(Think::On))
        .await
        .expect("not refused");
    let chats = server.chat_requests();
    assert_eq!(chats[0].body["think"], json!("high"));
    assert_eq!(chats[1].body["think"], json!(false));
    assert_eq!(chats[1].messages()[1]["thinking"], json!("I should read a"));
    assert!(chats[2].body.get("think").is_none(), "{}", chats[2].body);
}

/// Item 3, OpenAI-compatible servers: each gets thinking switched the way it reads it and
/// the reasoning back in the field it reads (Ollama `reasoning_effort` and `reasoning`;
/// llama.cpp `chat_template_kwargs.enable_thinking` and `reasoning_content`; vLLM
/// `chat_template_kwargs` and `reasoning`).
#[tokio::test]
async fn item3_openai_servers_get_think_and_reasoning_their_way() {
    let history = vec![
        ChatMessage::user("a?"),
        ChatMessage::assistant("b").with_thinking("because"),
        ChatMessage::user("c?"),
    ];
    let cases = [
        (
            ServerConfig::with_models(vec![thinker("qwen3:8b")]),
            "qwen3:8b",
            json!({"reasoning_effort": "none"}),
            json!({"reasoning_effort": "high"}),
            "reasoning",
        ),
        (
            ServerConfig::llama_cpp(thinker("qwen3:8b")),
            "qwen3:8b",
            json!({"chat_template_kwargs": {"enable_thinking": false}}),
            json!({"reasoning_effort": "high", "chat_template_kwargs": {"enable_thinking": true}}),
            "reasoning_content",
        ),
        (
            ServerConfig::vllm(thinker("qwen3:8b")),
            "qwen3:8b",
            json!({"chat_template_kwargs": {"enable_thinking": false}}),
            json!({"reasoning_effort": "high", "chat_template_kwargs": {"enable_thinking": true}}),
            "reasoning",
        ),
    ];
    for (config, model, off, max, field) in cases {
        let flavor = config.flavor;
        let server = ScriptedServer::start_with(
            config,
            Script::new()
                .turn(Turn::text("x").with_thinking("hmm"))
                .on_exhausted(nanna_testkit::Exhausted::Text("ok".into())),
        )
        .await
        .expect("server");
        let provider = OpenAiProvider::new(&server.url()).expect("url");
        let on = provider
            .chat(&ChatRequest::new(model, user("hi")))
            .await
            .expect("reply");
        assert_eq!(on.message.thinking, "hmm", "{flavor:?}");
        let reply = provider
            .chat(&ChatRequest::new(model, history.clone()).with_think(Think::Off))
            .await
            .expect("reply");
        assert_eq!(reply.message.thinking, "", "{flavor:?}: off");
        provider
            .chat(&ChatRequest::new(model, user("hi")).with_think(Think::Max))
            .await
            .expect("reply");
        let chats = server.chat_requests();
        let sent = |i: usize, key: &str| chats[i].body.get(key).cloned();
        for (key, value) in off.as_object().expect("object") {
            assert_eq!(sent(1, key).as_ref(), Some(value), "{flavor:?} off: {key}");
        }
        for (key, value) in max.as_object().expect("object") {
            let expected = if flavor == nanna_testkit::Flavor::Ollama && key == "reasoning_effort" {
                json!("max")
            } else {
                value.clone()
            };
            assert_eq!(sent(2, key), Some(expected), "{flavor:?} max: {key}");
        }
        assert_eq!(
            chats[1].messages()[1][field],
            json!("because"),
            "{flavor:?}"
        );
        server.shutdown().await;
    }
}

/// Item 4: arguments go back in the order the model wrote them (Ollama keeps it,
/// api/types.go `ToolCallFunctionArguments`). Ollama and llama.cpp send compact JSON and get
/// it back byte for byte; vLLM's `json.dumps` spacing comes back compact with the same order,
/// which is what vLLM reads (it `json.loads` the arguments before templating,
/// chat_utils.py `_postprocess_messages`).
#[tokio::test]
async fn item4_arguments_go_back_in_the_models_order() {
    let arguments =
        json!({"path": "src/main.rs", "limit": 40, "offset": 1, "a": [1, {"z": 0, "b": 1}]});
    let compact = r#"{"path":"src/main.rs","limit":40,"offset":1,"a":[1,{"z":0,"b":1}]}"#;
    let turn = || Turn::tool_call("read_file", arguments.clone());
    for (config, openai) in [
        (ServerConfig::default(), false),
        (ServerConfig::default(), true),
        (ServerConfig::llama_cpp(ModelSpec::default()), true),
        (ServerConfig::vllm(ModelSpec::default()), true),
    ] {
        let flavor = config.flavor;
        let server = ScriptedServer::start_with(
            config,
            Script::new()
                .turn(turn())
                .on_exhausted(nanna_testkit::Exhausted::Text("ok".into())),
        )
        .await
        .expect("server");
        let provider: Box<dyn ModelProvider> = if openai {
            Box::new(OpenAiProvider::new(&server.url()).expect("url"))
        } else {
            Box::new(OllamaProvider::new(&server.url()).expect("url"))
        };
        let request =
            ChatRequest::new("llama3.1:8b", user("read")).with_tools(vec![tool("read_file")]);
        let reply = collect(
            "llama3.1:8b",
            provider.chat_stream(&request).await.expect("stream"),
        )
        .await
        .expect("reply");
        let call = &reply.message.tool_calls[0];
        assert_eq!(
            serde_json::to_string(&call.arguments).expect("json"),
            compact
        );
        let mut history = request.messages.clone();
        history.push(reply.message.clone());
        history.push(ChatMessage::tool_result(
            &call.id,
            "read_file",
            "fn main() {}",
        ));
        provider
            .chat(&ChatRequest::new("llama3.1:8b", history).with_tools(vec![tool("read_file")]))
            .await
            .expect("reply");
        let chats = server.chat_requests();
        let echoed = &chats[1].messages()[1]["tool_calls"][0]["function"]["arguments"];
        let text = match echoed {
            Value::String(text) => text.clone(),
            object => serde_json::to_string(object).expect("json"),
        };
        assert_eq!(text, compact, "{flavor:?} openai={openai}");
        server.shutdown().await;
    }
}

/// Item 5: an error after HTTP 200 is the server's message. llama.cpp ends the stream with
/// `data: {"error": ...}`, vLLM sends it before `[DONE]`; Ollama's `/v1` loses the text (an
/// empty chunk, then the end), which is said instead of "interrupted".
#[tokio::test]
async fn item5_mid_stream_errors_are_the_servers_message() {
    let turn = || {
        Turn::text("partial answer").with_fault(Fault::ErrorLineMidStream(
            "CUDA error: out of memory".into(),
        ))
    };
    for config in [
        ServerConfig::llama_cpp(ModelSpec::default()),
        ServerConfig::vllm(ModelSpec::default()),
        ServerConfig::default(),
    ] {
        let flavor = config.flavor;
        let server = ScriptedServer::start_with(config, Script::new().turn(turn()))
            .await
            .expect("server");
        let provider = OpenAiProvider::new(&server.url()).expect("url");
        let all = stream_events(&provider, &ChatRequest::new("llama3.1:8b", user("hi"))).await;
        assert!(
            matches!(all.first(), Some(Ok(StreamEvent::TextDelta { .. }))),
            "{all:?}"
        );
        match all.last() {
            Some(Err(ModelError::Server { message })) => {
                if flavor == nanna_testkit::Flavor::Ollama {
                    assert!(
                        message.contains("Ollama") && message.contains("provider = \"ollama\""),
                        "{message}"
                    );
                } else {
                    assert_eq!(message, "CUDA error: out of memory");
                }
            }
            other => panic!("{flavor:?}: expected the server's error, got {other:?}"),
        }
        server.shutdown().await;
    }
}

/// Item 6: Ollama's `/v1` ignores `tool_choice`, so the provider enforces it as the native
/// one does: `none` sends no tools, a specific tool is the only one sent, and a reply that
/// breaks `required` (or calls another tool) is an error rather than silently accepted.
#[tokio::test]
async fn item6_tool_choice_is_enforced_for_ollama() {
    let server = ScriptedServer::start(
        Script::new()
            .turn(Turn::text("no tools"))
            .turn(Turn::tool_call("list_dir", json!({})))
            .turn(Turn::text("no call"))
            .turn(Turn::tool_call("grep", json!({}))),
    )
    .await
    .expect("server");
    let provider = OpenAiProvider::new(&server.url()).expect("url");
    let request = ChatRequest::new("llama3.1:8b", user("go"))
        .with_tools(vec![tool("read_file"), tool("list_dir")]);
    provider
        .chat(&request.clone().with_tool_choice(ToolChoice::None))
        .await
        .expect("none");
    let reply = provider
        .chat(
            &request
                .clone()
                .with_tool_choice(ToolChoice::Specific("list_dir".into())),
        )
        .await
        .expect("specific");
    assert_eq!(reply.message.tool_calls[0].name, "list_dir");
    let required = provider
        .chat(&request.clone().with_tool_choice(ToolChoice::Required))
        .await
        .expect_err("no call");
    assert!(
        matches!(required, ModelError::ToolChoiceIgnored { .. }),
        "{required}"
    );
    let other = stream_events(
        &provider,
        &request.with_tool_choice(ToolChoice::Specific("read_file".into())),
    )
    .await;
    assert!(
        matches!(other.last(), Some(Err(ModelError::ToolChoiceIgnored { detail, .. })) if detail.contains("grep")),
        "{other:?}"
    );
    let chats = server.chat_requests();
    assert!(chats[0].tools().is_empty());
    assert!(chats[0].body.get("tool_choice").is_none());
    assert_eq!(chats[1].tools().len(), 1);
    assert_eq!(chats[1].tools()[0]["function"]["name"], "list_dir");
    assert_eq!(chats[2].tools().len(), 2);
}

/// Item 8: Ollama's native `images` are Go `[]byte`: bare base64. A `data:` URL is sent as
/// its base64 part (the server would refuse it: "illegal base64 data at input byte 4").
#[tokio::test]
async fn item8_images_reach_ollama_as_bare_base64() {
    let server = ScriptedServer::start(Script::always_text("a cat"))
        .await
        .expect("server");
    let provider = OllamaProvider::new(&server.url()).expect("url");
    let message = ChatMessage::user("what is this?").with_images(vec![
        "data:image/png;base64,iVBORw0KGgo=".into(),
        "R0lGODlh".into(),
    ]);
    provider
        .chat(&ChatRequest::new("llama3.1:8b", vec![message]))
        .await
        .expect("accepted");
    assert_eq!(
        server.chat_requests()[0].messages()[0]["images"],
        json!(["iVBORw0KGgo=", "R0lGODlh"])
    );
}

/// Item 9: a failed `/api/show` is asked again once the retry interval has passed, so the
/// window is capped at the model's maximum as soon as the server can tell.
#[tokio::test]
async fn item9_a_failed_show_is_retried_later() {
    let config = ServerConfig {
        show_failures: 1,
        ..ServerConfig::with_models(vec![ModelSpec::new("small:1b").with_context_length(8192)])
    };
    let server = ScriptedServer::start_with(config, Script::always_text("ok"))
        .await
        .expect("server");
    let request = ChatRequest::new("small:1b", user("hi"));
    let patient = OllamaProvider::new(&server.url())
        .expect("url")
        .with_details_retry(Duration::from_secs(3600));
    patient.chat(&request).await.expect("reply");
    patient.chat(&request).await.expect("reply");
    let quick = OllamaProvider::new(&server.url())
        .expect("url")
        .with_details_retry(Duration::ZERO);
    quick.chat(&request).await.expect("reply");
    let num_ctx: Vec<_> = server.chat_requests().iter().map(|r| r.num_ctx()).collect();
    // The first provider's show failed and is not retried within the hour; the second one
    // asks and caps at the model's 8192.
    assert_eq!(num_ctx, vec![Some(110_000), Some(110_000), Some(8192)]);
    let server = ScriptedServer::start_with(
        ServerConfig {
            show_failures: 1,
            ..ServerConfig::with_models(vec![ModelSpec::new("small:1b").with_context_length(8192)])
        },
        Script::always_text("ok"),
    )
    .await
    .expect("server");
    let retrying = OllamaProvider::new(&server.url())
        .expect("url")
        .with_details_retry(Duration::ZERO);
    retrying.chat(&request).await.expect("reply");
    retrying.chat(&request).await.expect("reply");
    let num_ctx: Vec<_> = server.chat_requests().iter().map(|r| r.num_ctx()).collect();
    assert_eq!(
        num_ctx,
        vec![Some(110_000), Some(8192)],
        "retried on the next request"
    );
}

/// Item 10: a single-model server (llama.cpp without `--alias` lists the file path) serves
/// whatever name is asked for; the provider uses that model, says so, and names it as
/// listed in requests.
#[tokio::test]
async fn item10_the_only_model_of_a_single_model_server_is_used() {
    let server = ScriptedServer::start_with(
        ServerConfig::llama_cpp(ModelSpec::new("/models/SmolLM2-135M-Instruct.Q4_1.gguf")),
        Script::always_text("hi"),
    )
    .await
    .expect("server");
    let provider = OpenAiProvider::new(&server.url()).expect("url");
    let info = provider
        .model_info("smollm2")
        .await
        .expect("the only model");
    assert_eq!(info.name, "/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(info.context_length, Some(4096), "llama.cpp's /props n_ctx");
    assert!(info.notes[0].contains("`smollm2`"), "{:?}", info.notes);
    provider
        .chat(&ChatRequest::new("smollm2", user("hi")))
        .await
        .expect("reply");
    assert_eq!(
        server.chat_requests()[0].model(),
        Some("/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    );
    // vLLM serves only its names: several models and a wrong name is still not found.
    let server = ScriptedServer::start_with(
        ServerConfig {
            models: vec![ModelSpec::new("a"), ModelSpec::new("b")],
            ..ServerConfig::vllm(ModelSpec::new("a"))
        },
        Script::always_text("hi"),
    )
    .await
    .expect("server");
    let provider = OpenAiProvider::new(&server.url()).expect("url");
    assert!(matches!(
        provider.model_info("c").await,
        Err(ModelError::ModelNotFound { .. })
    ));
    assert_eq!(provider.model_info("b").await.expect("b").name, "b");
}

/// Item 3 (native): a reply with thinking and a tool call keeps both on the message that
/// goes into the history, whatever chunks they came in.
#[tokio::test]
async fn thinking_and_calls_from_any_chunk_layout_end_up_on_the_message() {
    for layout in [
        nanna_testkit::Layout::Separate,
        nanna_testkit::Layout::Interleaved,
        nanna_testkit::Layout::InFinalChunk,
    ] {
        let server = ScriptedServer::start_with(
            ServerConfig::with_models(vec![thinker("qwen3:8b")]),
            Script::new().turn(
                Turn::chunks(["Reading ", "now."])
                    .with_thinking("need the file")
                    .with_tool_call("read_file", json!({"path": "a"}))
                    .with_layout(layout),
            ),
        )
        .await
        .expect("server");
        let provider = OllamaProvider::new(&server.url()).expect("url");
        let request =
            ChatRequest::new("qwen3:8b", user("read a")).with_tools(vec![tool("read_file")]);
        let reply = collect(
            "qwen3:8b",
            provider.chat_stream(&request).await.expect("stream"),
        )
        .await
        .expect("reply");
        assert_eq!(reply.message.content, "Reading now.", "{layout:?}");
        assert_eq!(reply.message.thinking, "need the file", "{layout:?}");
        assert_eq!(
            reply.message.tool_calls,
            vec![ToolCall {
                id: reply.message.tool_calls[0].id.clone(),
                name: "read_file".into(),
                arguments: json!({"path": "a"}),
            }],
            "{layout:?}"
        );
        server.shutdown().await;
    }
}

//! The behaviours of the real servers the scripted server reproduces, each tied to the
//! upstream file it comes from: Ollama's version-dependent tool calls, chunk layouts,
//! thinking, load/unload, request validation, `/api/ps`, faults; llama.cpp's and vLLM's own
//! `/v1` shapes and errors.

mod common;

use common::{client, ndjson, sse_data};
use nanna_testkit::{Fault, Flavor, Layout, ModelSpec, Script, ScriptedServer, ServerConfig, Turn};
use serde_json::{Value, json};

fn hi() -> Value {
    json!([{"role": "user", "content": "hi"}])
}

fn thinker() -> ModelSpec {
    ModelSpec::new("qwen3:8b")
        .with_family("qwen3")
        .with_capabilities(["completion", "tools", "thinking"])
        .with_context_length(40_960)
}

async fn post(url: String, body: Value) -> reqwest::Response {
    client().post(url).json(&body).send().await.unwrap()
}

async fn chat_lines(server: &ScriptedServer, body: Value) -> Vec<Value> {
    let r = post(format!("{}/api/chat", server.url()), body).await;
    assert_eq!(r.status(), 200);
    ndjson(&r.text().await.unwrap())
}

fn json_events(body: &str) -> Vec<Value> {
    sse_data(body)
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

/// api/types.go `ToolCallFunction.Index` lost `omitempty` in 0.12.6 (c4c5a4a01, "send index
/// for tool calls"); tool-call ids came in 0.12.10 (809b9c68f, server/routes.go
/// `toolCallId`).
#[tokio::test]
async fn tool_call_index_and_id_follow_the_ollama_version() {
    for (version, index, id) in [
        ("0.12.0", false, false),
        ("0.12.6", true, false),
        ("0.12.10", true, true),
    ] {
        let config = ServerConfig {
            version: version.into(),
            ..ServerConfig::default()
        };
        let server = ScriptedServer::start_with(
            config,
            Script::new().turn(Turn::tool_call("read_file", json!({"path": "a"}))),
        )
        .await
        .unwrap();
        let lines = chat_lines(&server, json!({"model": "llama3.1:8b", "messages": hi()})).await;
        let call = &lines[0]["message"]["tool_calls"][0];
        assert_eq!(
            call["function"].get("index").is_some(),
            index,
            "{version}: {call}"
        );
        assert_eq!(call.get("id").is_some(), id, "{version}: {call}");
        server.shutdown().await;
    }
}

/// server/routes.go `ChatHandler`: with a built-in parser (gpt-oss's harmony) the tool calls
/// and the last text come in the chunk the runner marks done.
#[tokio::test]
async fn tool_calls_and_leftover_text_can_arrive_in_the_final_chunk() {
    let server = ScriptedServer::start(
        Script::new().turn(
            Turn::chunks(["Reading ", "it."])
                .with_tool_call("read_file", json!({"path": "a"}))
                .with_layout(Layout::InFinalChunk),
        ),
    )
    .await
    .unwrap();
    let lines = chat_lines(&server, json!({"model": "llama3.1:8b", "messages": hi()})).await;
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(lines[0]["message"]["content"], "Reading ");
    let last = &lines[1];
    assert_eq!(last["done"], true);
    assert_eq!(last["message"]["content"], "it.");
    assert_eq!(
        last["message"]["tool_calls"][0]["function"]["name"],
        "read_file"
    );
    server.shutdown().await;
}

/// Thinking alone, with content and with tool calls in one chunk; `think: false` turns it
/// off; a model without the capability never thinks (server/routes.go `ChatHandler`).
#[tokio::test]
async fn thinking_comes_alone_or_with_content_and_tool_calls() {
    let config = ServerConfig::with_models(vec![thinker(), ModelSpec::default()]);
    let turn = || {
        Turn::chunks(["a", "b"])
            .with_thinking("x y z")
            .with_tool_call("read_file", json!({"path": "a"}))
            .with_layout(Layout::Interleaved)
    };
    let server =
        ScriptedServer::start_with(config, Script::new().turn(turn()).turn(turn()).turn(turn()))
            .await
            .unwrap();
    let lines = chat_lines(&server, json!({"model": "qwen3:8b", "messages": hi()})).await;
    assert_eq!(
        lines[0]["message"],
        json!({"role": "assistant", "content": "a", "thinking": "x"})
    );
    assert_eq!(
        lines[2]["message"]["thinking"], " z",
        "thinking alone: {lines:#?}"
    );
    assert_eq!(lines[2]["message"]["content"], "");
    assert!(
        lines[2]["message"]["tool_calls"].is_array(),
        "with the tool calls"
    );
    let off = chat_lines(
        &server,
        json!({"model": "qwen3:8b", "messages": hi(), "think": false}),
    )
    .await;
    assert!(
        off.iter().all(|l| l["message"].get("thinking").is_none()),
        "{off:#?}"
    );
    let plain = chat_lines(&server, json!({"model": "llama3.1:8b", "messages": hi()})).await;
    assert!(plain.iter().all(|l| l["message"].get("thinking").is_none()));
    server.shutdown().await;
}

/// Empty `messages` loads the model (`done_reason: "load"`); with `keep_alive: 0` it unloads
/// it (`"unload"`). Neither draws a turn. `/api/ps` shows the window the model was loaded
/// with: the request's `num_ctx`, else the default, never above the model's
/// (api/types.go `ProcessModelResponse`, llm/server.go).
#[tokio::test]
async fn load_unload_and_ps_report_the_loaded_window() {
    let server =
        ScriptedServer::start_with(ServerConfig::with_models(vec![thinker()]), Script::new())
            .await
            .unwrap();
    let url = format!("{}/api/chat", server.url());
    let ps = || async {
        client()
            .get(format!("{}/api/ps", server.url()))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let load: Value = post(url.clone(), json!({"model": "qwen3:8b", "messages": []}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(load["done"], true);
    assert_eq!(load["done_reason"], "load");
    assert_eq!(
        ps().await["models"][0]["context_length"],
        4096,
        "Ollama's default"
    );
    post(
        url.clone(),
        json!({"model": "qwen3:8b", "messages": [], "options": {"num_ctx": 1_000_000}}),
    )
    .await;
    assert_eq!(
        ps().await["models"][0]["context_length"],
        40_960,
        "capped at the model's"
    );
    post(
        url.clone(),
        json!({"model": "qwen3:8b", "messages": [], "options": {"num_ctx": 16384}}),
    )
    .await;
    assert_eq!(ps().await["models"][0]["context_length"], 16384);
    let unload: Value = post(
        url,
        json!({"model": "qwen3:8b", "messages": [], "keep_alive": 0}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(unload["done_reason"], "unload");
    assert_eq!(ps().await["models"], json!([]));
    assert_eq!(server.turns_served(), 0);
    server.shutdown().await;
}

/// Bad requests get the real status and message: the JSON decoder's (400) for `think`
/// (api/types.go `ThinkValue`), `keep_alive` (`Duration`, Go's time.ParseDuration), images
/// (Go's base64) and non-object arguments (the ordered map's parser); the scheduler's (500)
/// for a wrongly typed option (`Options.FromMap`).
#[tokio::test]
async fn bad_requests_get_the_real_servers_errors() {
    let server = ScriptedServer::start_with(
        ServerConfig {
            version: "0.13.0".into(),
            ..ServerConfig::with_models(vec![thinker()])
        },
        Script::always_text("ok"),
    )
    .await
    .unwrap();
    let url = format!("{}/api/chat", server.url());
    let cases = [
        (
            json!({"think": "max"}),
            400,
            r#"invalid think value: "max" (must be "high", "medium", "low", true, or false)"#,
        ),
        (
            json!({"think": 1}),
            400,
            r#"think must be a boolean or string ("high", "medium", "low", true, or false)"#,
        ),
        (
            json!({"keep_alive": "-1"}),
            400,
            r#"time: missing unit in duration "-1""#,
        ),
        (
            json!({"keep_alive": "forever"}),
            400,
            r#"time: invalid duration "forever""#,
        ),
        (json!({"keep_alive": true}), 400, "Unsupported type: 'bool'"),
        (
            json!({"messages": [{"role": "user", "content": "see", "images": ["data:image/png;base64,iVBORw0KGgo="]}]}),
            400,
            "illegal base64 data at input byte 4",
        ),
        (
            json!({"messages": [{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{\"a\":1}"}}]}]}),
            400,
            "Value looks like object, but can't find closing '}' symbol",
        ),
        (
            json!({"options": {"num_ctx": "8192"}}),
            500,
            r#"option "num_ctx" must be of type integer"#,
        ),
        (
            json!({"options": {"temperature": "hot"}}),
            500,
            r#"option "temperature" must be of type float32"#,
        ),
    ];
    for (extra, status, message) in cases {
        let mut body = json!({"model": "qwen3:8b", "messages": hi(), "stream": false});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = post(url.clone(), body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": message}),
            "{body}"
        );
    }
    assert_eq!(server.turns_served(), 0, "refused requests draw no turn");
    // "max" is a level since 0.21.3 (c2ebb4d57); good values pass.
    let server = ScriptedServer::start_with(
        ServerConfig {
            version: "0.21.3".into(),
            ..ServerConfig::with_models(vec![thinker()])
        },
        Script::always_text("ok"),
    )
    .await
    .unwrap();
    for ok in [
        json!({"think": "max"}),
        json!({"keep_alive": "1h30m"}),
        json!({"keep_alive": -1}),
        json!({"options": {"num_ctx": 8192.0}}),
    ] {
        let mut body = json!({"model": "qwen3:8b", "messages": hi(), "stream": false});
        for (k, v) in ok.as_object().unwrap() {
            body[k] = v.clone();
        }
        assert_eq!(
            post(format!("{}/api/chat", server.url()), body.clone())
                .await
                .status(),
            200,
            "{body}"
        );
    }
    server.shutdown().await;
}

/// server/sched.go `ErrMaxQueue` (503) and a runner that dies out of memory (500; the
/// wording changed with 0.30's move to llama-server, llm/llama_server.go).
#[tokio::test]
async fn busy_and_out_of_memory_faults() {
    for (version, runner) in [("0.13.0", "llama runner"), ("0.30.0", "llama-server")] {
        let server = ScriptedServer::start_with(
            ServerConfig {
                version: version.into(),
                ..ServerConfig::default()
            },
            Script::new()
                .turn(Turn::text("x").with_fault(Fault::Busy))
                .turn(Turn::text("x").with_fault(Fault::OutOfMemory)),
        )
        .await
        .unwrap();
        let url = format!("{}/api/chat", server.url());
        let r = post(
            url.clone(),
            json!({"model": "llama3.1:8b", "messages": hi()}),
        )
        .await;
        assert_eq!(r.status(), 503);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "server busy, please try again.  maximum pending requests exceeded"
        );
        let r = post(url, json!({"model": "llama3.1:8b", "messages": hi()})).await;
        assert_eq!(r.status(), 500);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            format!("{runner} process has terminated: cudaMalloc failed: out of memory")
        );
        server.shutdown().await;
    }
}

/// openai/openai.go `ToStreamChunks` splits a chunk with thinking and content into a
/// `reasoning` chunk and a content chunk; `thinkFromReasoningEffort` maps
/// `reasoning_effort: "none"` to `think: false` and refuses unknown efforts.
#[tokio::test]
async fn ollama_v1_reasoning_and_reasoning_effort() {
    let turn = || {
        Turn::chunks(["a"])
            .with_thinking("x")
            .with_layout(Layout::Interleaved)
    };
    let server = ScriptedServer::start_with(
        ServerConfig::with_models(vec![thinker()]),
        Script::new().turn(turn()).turn(turn()),
    )
    .await
    .unwrap();
    let url = format!("{}/v1/chat/completions", server.url());
    let body = post(
        url.clone(),
        json!({"model": "qwen3:8b", "messages": hi(), "stream": true}),
    )
    .await
    .text()
    .await
    .unwrap();
    let events = json_events(&body);
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "reasoning": "x"})
    );
    assert_eq!(events[1]["choices"][0]["delta"], json!({"content": "a"}));
    let body = post(
        url.clone(),
        json!({"model": "qwen3:8b", "messages": hi(), "stream": true, "reasoning_effort": "none"}),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(!body.contains("reasoning"), "{body}");
    let r = post(
        url,
        json!({"model": "qwen3:8b", "messages": hi(), "reasoning_effort": "lots"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid reasoning value: \"lots\"")
    );
    server.shutdown().await;
}

fn smollm() -> ModelSpec {
    ModelSpec::new("/models/SmolLM2-135M-Instruct.Q4_1.gguf").with_context_length(8192)
}

/// llama.cpp (tools/server/): the model listed under its file path without `--alias`, any
/// model name served, `/props` with the serving `n_ctx`, a role chunk with `content: null`,
/// `reasoning_content` deltas (off with `chat_template_kwargs.enable_thinking: false`),
/// tool calls as a head and argument fragments, usage with `timings`.
#[tokio::test]
async fn llama_cpp_shapes() {
    let turn = || {
        Turn::chunks(["ok"])
            .with_thinking("hmm")
            .with_tool_call("read_file", json!({"path": "a/ü.txt", "limit": 3}))
    };
    let server = ScriptedServer::start_with(
        ServerConfig::llama_cpp(smollm()),
        Script::new().turn(turn()).turn(turn()),
    )
    .await
    .unwrap();
    let base = server.url();
    let models: Value = client()
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        models["data"][0]["id"],
        "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    );
    assert_eq!(models["data"][0]["owned_by"], "llamacpp");
    assert_eq!(models["data"][0]["meta"]["n_ctx_train"], 8192);
    let props: Value = client()
        .get(format!("{base}/props"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(props["default_generation_settings"]["n_ctx"], 4096);
    assert!(props["build_info"].as_str().unwrap().starts_with('b'));
    let missing = client()
        .get(format!("{base}/api/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}})
    );

    let body = post(
        format!("{base}/v1/chat/completions"),
        json!({"model": "smollm2", "messages": hi(), "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"));
    let events = json_events(&body);
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": null})
    );
    assert_eq!(
        events[0]["model"],
        "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    );
    assert_eq!(
        events[1]["choices"][0]["delta"],
        json!({"reasoning_content": "hmm"})
    );
    let head = &events[3]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(
        head["function"],
        json!({"name": "read_file", "arguments": ""})
    );
    let arguments: String = events[4..]
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(arguments, r#"{"path":"a/ü.txt","limit":3}"#);
    let usage = events.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["timings"]["predicted_ms"].is_number());

    let body = post(
        format!("{base}/v1/chat/completions"),
        json!({"model": "x", "messages": hi(), "stream": true, "chat_template_kwargs": {"enable_thinking": false}}),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(!body.contains("reasoning_content"), "{body}");
    server.shutdown().await;
}

/// llama.cpp's errors: a prompt over the window is a 400 `exceed_context_size_error` before
/// any streaming (what a running server answers); an error after HTTP 200 is
/// `data: {"error": {"code", "message", "type"}}` and the end of the stream, without
/// `[DONE]` (tools/server/server-context.cpp).
#[tokio::test]
async fn llama_cpp_errors() {
    let server = ScriptedServer::start_with(
        ServerConfig {
            serving_context: Some(64),
            ..ServerConfig::llama_cpp(smollm())
        },
        Script::new().turn(
            Turn::chunks(["partial", " more"]).with_fault(Fault::ErrorLineMidStream("boom".into())),
        ),
    )
    .await
    .unwrap();
    let url = format!("{}/v1/chat/completions", server.url());
    let long = json!([{"role": "user", "content": "word ".repeat(200)}]);
    let r = post(
        url.clone(),
        json!({"model": "m", "messages": long, "stream": true}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "exceed_context_size_error");
    assert_eq!(v["error"]["n_ctx"], 64);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeds the available context size (64 tokens)")
    );

    let body = post(url, json!({"model": "m", "messages": hi(), "stream": true}))
        .await
        .text()
        .await
        .unwrap();
    assert!(!body.contains("[DONE]"), "{body}");
    let events = json_events(&body);
    assert_eq!(
        events.last().unwrap(),
        &json!({"error": {"code": 500, "message": "boom", "type": "server_error"}})
    );
    server.shutdown().await;
}

/// vLLM (vllm/entrypoints/openai/): `max_model_len` in `/v1/models`, `/version`, `reasoning`
/// deltas, tool-call arguments in `json.dumps` spacing, the nested error shape, a
/// mid-stream error followed by `[DONE]`.
#[tokio::test]
async fn vllm_shapes_and_errors() {
    let model = ModelSpec::new("Qwen/Qwen3-8B").with_context_length(32768);
    let server = ScriptedServer::start_with(
        ServerConfig::vllm(model),
        Script::new()
            .turn(
                Turn::chunks(["ok"])
                    .with_thinking("hmm")
                    .with_tool_call("read_file", json!({"path": "a", "limit": 3})),
            )
            .turn(Turn::chunks(["a", "b"]).with_fault(Fault::ErrorLineMidStream("boom".into()))),
    )
    .await
    .unwrap();
    let base = server.url();
    let models: Value = client()
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["max_model_len"], 32768);
    assert_eq!(models["data"][0]["owned_by"], "vllm");
    let version: Value = client()
        .get(format!("{base}/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["version"], "0.11.0");

    let url = format!("{base}/v1/chat/completions");
    let r = post(url.clone(), json!({"model": "qwen3", "messages": hi()})).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": {"message": "The model `qwen3` does not exist.", "type": "NotFoundError", "param": "model", "code": 404}})
    );
    let body = post(
        url.clone(),
        json!({"model": "Qwen/Qwen3-8B", "messages": hi(), "stream": true}),
    )
    .await
    .text()
    .await
    .unwrap();
    let events = json_events(&body);
    assert_eq!(
        events[1]["choices"][0]["delta"],
        json!({"reasoning": "hmm"})
    );
    let arguments: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(arguments, r#"{"path": "a", "limit": 3}"#);
    let body = post(
        url,
        json!({"model": "Qwen/Qwen3-8B", "messages": hi(), "stream": true}),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let events = json_events(&body);
    assert_eq!(events.last().unwrap()["error"]["message"], "boom");
    assert_eq!(events.last().unwrap()["error"]["code"], 500);
    server.shutdown().await;
}

#[test]
fn flavors_parse_from_their_names() {
    assert_eq!(Flavor::parse("llama.cpp"), Some(Flavor::LlamaCpp));
    assert_eq!(Flavor::parse("vLLM"), Some(Flavor::Vllm));
    assert_eq!(Flavor::parse("ollama"), Some(Flavor::Ollama));
    assert_eq!(Flavor::parse("lmstudio"), None);
}

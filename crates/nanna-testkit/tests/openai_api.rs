//! Ollama's OpenAI-compatible layer (`/v1`, the default flavor): chunk shapes as
//! middleware/openai.go and openai/openai.go write them. llama.cpp's and vLLM's `/v1` are in
//! tests/flavors.rs.

mod common;

use common::{client, keys, sorted, sse_data};
use nanna_testkit::{Fault, ModelSpec, Script, ScriptedServer, ServerConfig, Turn};
use serde_json::{Value, json};

fn hi() -> Value {
    json!([{"role": "user", "content": "hi"}])
}

fn chunks_of(body: &str) -> Vec<Value> {
    let events = sse_data(body);
    assert_eq!(events.last().unwrap(), "[DONE]", "{events:?}");
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

#[tokio::test]
async fn models_lists_served_models() {
    let server = ScriptedServer::start(Script::new()).await.unwrap();
    let v: Value = client()
        .get(format!("{}/v1/models", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "llama3.1:8b");
    assert_eq!(
        keys(&v["data"][0]),
        sorted(&["id", "object", "created", "owned_by"])
    );
    server.shutdown().await;
}

/// openai/openai.go `ToStreamChunks`, `ToToolCalls`, `FinishChunk`; middleware/openai.go
/// `ChatWriter`: the role in the first chunk only, whole tool calls in one delta with
/// `content: ""`, `finish_reason: null` until a finish chunk with `delta: {}`, a usage
/// chunk with `choices: []`, then `[DONE]`.
#[tokio::test]
async fn ollama_v1_sends_whole_tool_calls_in_one_delta() {
    let server = ScriptedServer::start(
        Script::new().turn(
            Turn::chunks(["I will ", "read it."])
                .with_tool_call("read_file", json!({"path": "notes.txt", "limit": 100}))
                .with_tool_call("grep", json!({"pattern": "x"}))
                .with_call_id(Some("call_b")),
        ),
    )
    .await
    .unwrap();
    let r = client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&json!({
            "model": "llama3.1:8b",
            "messages": [{"role": "user", "content": "go"}],
            "stream": true,
            "stream_options": {"include_usage": true},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let chunks = chunks_of(&r.text().await.unwrap());
    for c in &chunks {
        assert_eq!(
            keys(c)[..6],
            sorted(&[
                "id",
                "object",
                "created",
                "model",
                "system_fingerprint",
                "choices"
            ])[..]
        );
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["system_fingerprint"], "fp_ollama");
        assert_eq!(c["id"], chunks[0]["id"]);
    }
    assert_eq!(chunks.len(), 5, "{chunks:#?}");
    assert_eq!(
        chunks[0]["choices"][0],
        json!({"index": 0, "delta": {"role": "assistant", "content": "I will "}, "finish_reason": null})
    );
    assert_eq!(
        chunks[1]["choices"][0]["delta"],
        json!({"content": "read it."})
    );
    let calls = &chunks[2]["choices"][0]["delta"];
    assert_eq!(calls["content"], "");
    assert_eq!(calls["tool_calls"][0]["index"], 0);
    assert_eq!(calls["tool_calls"][0]["type"], "function");
    assert_eq!(calls["tool_calls"][0]["function"]["name"], "read_file");
    // The whole argument string at once, in the model's key order.
    assert_eq!(
        calls["tool_calls"][0]["function"]["arguments"],
        "{\"path\":\"notes.txt\",\"limit\":100}"
    );
    assert!(
        calls["tool_calls"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("call_")
    );
    assert_eq!(calls["tool_calls"][1]["id"], "call_b");
    assert_eq!(calls["tool_calls"][1]["index"], 1);
    let finish = &chunks[3];
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    let usage = &chunks[4];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        keys(&usage["usage"]),
        sorted(&["prompt_tokens", "completion_tokens", "total_tokens"])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn sse_without_usage_and_length_finish() {
    let server =
        ScriptedServer::start(Script::new().turn(Turn::text("cut off").with_fault(Fault::Length)))
            .await
            .unwrap();
    let body = client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&json!({"model": "llama3.1:8b", "messages": hi(), "stream": true}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_data(&body);
    assert_eq!(events.len(), 4, "{events:?}");
    let finish: Value = serde_json::from_str(&events[2]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert!(finish.get("usage").is_none());
    assert_eq!(events[3], "[DONE]");
    server.shutdown().await;
}

#[tokio::test]
async fn non_streamed_completion() {
    let server = ScriptedServer::start(
        Script::new()
            .turn(
                Turn::text("Hello there")
                    .with_prompt_tokens(50)
                    .with_output_tokens(3),
            )
            .turn(Turn::tool_call("bash", json!({"cmd": "ls"})).with_call_id(Some("call_1"))),
    )
    .await
    .unwrap();
    let url = format!("{}/v1/chat/completions", server.url());
    let r = client()
        .post(&url)
        .json(&json!({"model": "llama3.1:8b", "messages": hi()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        keys(&v),
        sorted(&[
            "id",
            "object",
            "created",
            "model",
            "system_fingerprint",
            "choices",
            "usage"
        ])
    );
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello there"})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 50, "completion_tokens": 3, "total_tokens": 53})
    );

    let v: Value = client()
        .post(&url)
        .json(&json!({"model": "llama3.1:8b", "messages": hi()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // openai/openai.go `Message`: content is a string (empty beside tool calls).
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "index": 0, "type": "function", "function": {"name": "bash", "arguments": "{\"cmd\":\"ls\"}"}}
        ]})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 2);
    assert!(!reqs[0].stream());
    server.shutdown().await;
}

#[tokio::test]
async fn openai_errors_have_openai_shape() {
    let config = ServerConfig::with_models(vec![
        ModelSpec::new("tiny:1b").with_capabilities(["completion"]),
    ]);
    let server = ScriptedServer::start_with(
        config,
        Script::new().turn(Turn::text("x").with_fault(Fault::HttpError {
            status: 503,
            message: "overloaded".into(),
        })),
    )
    .await
    .unwrap();
    let url = format!("{}/v1/chat/completions", server.url());
    let c = client();
    let r = c
        .post(&url)
        .json(&json!({"model": "other", "messages": hi()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error": {"message": "model 'other' not found", "type": "not_found_error", "param": null, "code": null}})
    );
    let r = c
        .post(&url)
        .json(&json!({"model": "tiny:1b", "messages": hi(), "tools": [{}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "registry.ollama.ai/library/tiny:1b does not support tools"
    );
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let r = c
        .post(&url)
        .json(&json!({"model": "tiny:1b", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "[] is too short - 'messages'");
    let r = c
        .post(&url)
        .json(&json!({"model": "tiny:1b", "messages": hi()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "overloaded");
    assert_eq!(v["error"]["type"], "api_error");
    server.shutdown().await;
}

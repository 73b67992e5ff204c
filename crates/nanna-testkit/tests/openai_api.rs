//! The OpenAI-compatible API: SSE chunk shapes, tool-call deltas, usage, non-streamed replies.

mod common;

use common::{client, keys, sorted, sse_data};
use nanna_testkit::{Fault, ModelSpec, Script, ScriptedServer, ServerConfig, Turn};
use serde_json::{Value, json};

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

#[tokio::test]
async fn sse_text_tool_deltas_usage_and_done() {
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
    let events = sse_data(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
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
        assert_eq!(c["id"], chunks[0]["id"]);
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "I will "})
    );
    assert_eq!(chunks[0]["choices"][0]["finish_reason"], Value::Null);
    assert_eq!(
        keys(&chunks[0]["choices"][0]),
        sorted(&["index", "delta", "finish_reason"])
    );
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "read it.");

    // reassemble tool calls from deltas, checking the shapes on the way
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut fragments_per_call = vec![0usize; 2];
    for c in &chunks[2..] {
        let Some(deltas) = c["choices"][0]["delta"].get("tool_calls") else {
            continue;
        };
        for d in deltas.as_array().unwrap() {
            let i = d["index"].as_u64().unwrap() as usize;
            if let Some(id) = d.get("id") {
                assert_eq!(d["type"], "function");
                assert_eq!(d["function"]["arguments"], "");
                calls.push((
                    id.as_str().unwrap().into(),
                    d["function"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            } else {
                assert_eq!(keys(d), sorted(&["index", "function"]));
                assert_eq!(keys(&d["function"]), vec!["arguments"]);
                calls[i]
                    .2
                    .push_str(d["function"]["arguments"].as_str().unwrap());
                fragments_per_call[i] += 1;
            }
        }
    }
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].1, "read_file");
    assert!(calls[0].0.starts_with("call_"));
    assert_eq!(calls[1].0, "call_b");
    let args: Value = serde_json::from_str(&calls[0].2).unwrap();
    assert_eq!(args, json!({"path": "notes.txt", "limit": 100}));
    assert!(
        fragments_per_call.iter().all(|&n| n >= 2),
        "arguments must arrive in fragments: {fragments_per_call:?}"
    );

    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        keys(&usage["usage"]),
        sorted(&["prompt_tokens", "completion_tokens", "total_tokens"])
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
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
        .json(&json!({"model": "llama3.1:8b", "messages": [], "stream": true}))
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
        .json(&json!({"model": "llama3.1:8b", "messages": []}))
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
        .json(&json!({"model": "llama3.1:8b", "messages": []}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "bash", "arguments": "{\"cmd\":\"ls\"}"}}
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
        .json(&json!({"model": "other", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "model \"other\" not found, try pulling it first"
    );
    assert_eq!(
        keys(&v["error"]),
        sorted(&["message", "type", "param", "code"])
    );
    let r = c
        .post(&url)
        .json(&json!({"model": "tiny:1b", "messages": [], "tools": [{}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "registry.ollama.ai/library/tiny:1b does not support tools"
    );
    let r = c
        .post(&url)
        .json(&json!({"model": "tiny:1b", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "overloaded");
    assert_eq!(v["error"]["type"], "api_error");
    server.shutdown().await;
}

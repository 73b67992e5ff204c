//! Ollama's native API: shapes of every endpoint and of the chat stream.

mod common;

use common::{client, keys, ndjson, sorted};
use nanna_testkit::{ModelSpec, Script, ScriptedServer, ServerConfig, Turn};
use serde_json::{Value, json};

#[tokio::test]
async fn root_and_head_say_ollama_is_running() {
    let server = ScriptedServer::start(Script::new()).await.unwrap();
    let c = client();
    let r = c.get(server.url()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "Ollama is running");
    let r = c.head(format!("{}/", server.url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "");
    let r = c
        .get(format!("{}/api/nope", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let methods: Vec<String> = server.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, vec!["GET", "HEAD", "GET"]);
    server.shutdown().await;
}

#[tokio::test]
async fn version_tags_show_ps() {
    let config = ServerConfig {
        models: vec![
            ModelSpec::default(),
            ModelSpec::new("qwen3:4b")
                .with_family("qwen3")
                .with_context_length(40_960)
                .with_capabilities(["completion", "tools", "thinking"]),
        ],
        version: "0.12.3".into(),
        ..ServerConfig::default()
    };
    let server = ScriptedServer::start_with(config, Script::always_text("ok"))
        .await
        .unwrap();
    let c = client();
    let url = server.url();

    let v: Value = c
        .get(format!("{url}/api/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"version": "0.12.3"}));

    let tags: Value = c
        .get(format!("{url}/api/tags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let models = tags["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(
        keys(&models[0]),
        sorted(&["name", "model", "modified_at", "size", "digest", "details"])
    );
    assert_eq!(models[1]["name"], "qwen3:4b");
    assert_eq!(models[0]["digest"].as_str().unwrap().len(), 64);
    assert_eq!(
        keys(&models[0]["details"]),
        sorted(&[
            "parent_model",
            "format",
            "family",
            "families",
            "parameter_size",
            "quantization_level"
        ])
    );

    let show = c
        .post(format!("{url}/api/show"))
        .json(&json!({"model": "qwen3:4b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(show.status(), 200);
    let show: Value = show.json().await.unwrap();
    assert_eq!(show["model_info"]["qwen3.context_length"], 40_960);
    assert_eq!(show["model_info"]["general.architecture"], "qwen3");
    assert_eq!(
        show["capabilities"],
        json!(["completion", "tools", "thinking"])
    );
    assert_eq!(show["details"]["family"], "qwen3");
    for key in [
        "license",
        "modelfile",
        "parameters",
        "template",
        "details",
        "model_info",
        "capabilities",
        "modified_at",
    ] {
        assert!(show.get(key).is_some(), "show lacks {key}");
    }
    // legacy `name` field and `:latest`-less names
    let show = c
        .post(format!("{url}/api/show"))
        .json(&json!({"name": "llama3.1:8b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(show.status(), 200);
    let missing = c
        .post(format!("{url}/api/show"))
        .json(&json!({"model": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body, json!({"error": "model 'nope' not found"}));

    let ps: Value = c
        .get(format!("{url}/api/ps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ps, json!({"models": []}));
    c.post(format!("{url}/api/chat"))
        .json(&json!({"model": "qwen3:4b", "messages": [], "stream": false}))
        .send()
        .await
        .unwrap();
    let ps: Value = c
        .get(format!("{url}/api/ps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let loaded = ps["models"].as_array().unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0]["name"], "qwen3:4b");
    assert_eq!(
        keys(&loaded[0]),
        sorted(&[
            "name",
            "model",
            "size",
            "digest",
            "details",
            "expires_at",
            "size_vram",
            "context_length"
        ])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn streamed_chat_has_ollamas_chunk_shapes() {
    let server = ScriptedServer::start(
        Script::new().turn(
            Turn::text("Hello brave world")
                .with_tool_call("read_file", json!({"path": "notes.txt"}))
                .with_tool_call("list_dir", json!({"path": "."}))
                .with_call_id(Some("call_fixed")),
        ),
    )
    .await
    .unwrap();
    let r = client()
        .post(format!("{}/api/chat", server.url()))
        .json(&json!({
            "model": "llama3.1:8b",
            "messages": [{"role": "user", "content": "read notes.txt please"}],
            "tools": [{"type": "function", "function": {"name": "read_file"}}],
            "options": {"num_ctx": 32768},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson(&r.text().await.unwrap());
    assert_eq!(lines.len(), 5, "{lines:#?}");
    for (i, word) in ["Hello", " brave", " world"].iter().enumerate() {
        assert_eq!(
            keys(&lines[i]),
            sorted(&["model", "created_at", "message", "done"])
        );
        assert_eq!(
            lines[i]["message"],
            json!({"role": "assistant", "content": word})
        );
        assert_eq!(lines[i]["done"], false);
        assert_eq!(lines[i]["model"], "llama3.1:8b");
        let ts = lines[i]["created_at"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 30, "{ts}");
    }
    let calls = &lines[3]["message"]["tool_calls"];
    assert_eq!(lines[3]["done"], false);
    assert_eq!(lines[3]["message"]["content"], "");
    // `index` even for the first call (Ollama >= 0.12.6, api/types.go `ToolCallFunction`).
    assert_eq!(
        calls[0]["function"],
        json!({"index": 0, "name": "read_file", "arguments": {"path": "notes.txt"}})
    );
    // server/routes.go `toolCallId`: "call_" and eight lowercase letters or digits.
    let id = calls[0]["id"].as_str().unwrap();
    assert!(
        id.len() == 13
            && id.starts_with("call_")
            && id[5..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{id}"
    );
    assert_eq!(calls[1]["id"], "call_fixed");
    assert_eq!(calls[1]["function"]["index"], 1);
    let last = &lines[4];
    assert_eq!(
        keys(last),
        sorted(&[
            "model",
            "created_at",
            "message",
            "done",
            "done_reason",
            "total_duration",
            "load_duration",
            "prompt_eval_count",
            "prompt_eval_duration",
            "eval_count",
            "eval_duration",
        ])
    );
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert!(last["prompt_eval_count"].as_u64().unwrap() > 10);
    assert!(last["eval_count"].as_u64().unwrap() > 0);
    assert!(last["total_duration"].as_u64().unwrap() > last["eval_duration"].as_u64().unwrap());

    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].num_ctx(), Some(32768));
    assert!(reqs[0].stream());
    assert_eq!(reqs[0].messages().len(), 1);
    assert_eq!(reqs[0].tools().len(), 1);
    assert_eq!(reqs[0].model(), Some("llama3.1:8b"));
    server.shutdown().await;
}

#[tokio::test]
async fn omitted_call_ids_are_not_sent() {
    let server = ScriptedServer::start(
        Script::new()
            .turn(Turn::tool_call("bash", json!({"cmd": "ls"})).with_call_id(None))
            .turn(Turn::tool_call("bash", json!({"cmd": "ls"})).with_call_id(None)),
    )
    .await
    .unwrap();
    let url = format!("{}/api/chat", server.url());
    let hi = json!([{"role": "user", "content": "hi"}]);
    let body = client()
        .post(&url)
        .json(&json!({"model": "llama3.1:8b", "messages": hi}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = ndjson(&body);
    assert_eq!(
        lines[0]["message"]["tool_calls"],
        json!([{"function": {"index": 0, "name": "bash", "arguments": {"cmd": "ls"}}}])
    );
    let whole: Value = client()
        .post(&url)
        .json(&json!({"model": "llama3.1:8b", "messages": hi, "stream": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        whole["message"]["tool_calls"],
        json!([{"function": {"index": 0, "name": "bash", "arguments": {"cmd": "ls"}}}])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn non_streamed_chat_is_one_object() {
    let server = ScriptedServer::start(
        Script::new().turn(
            Turn::text("All done.")
                .with_prompt_tokens(1234)
                .with_output_tokens(7),
        ),
    )
    .await
    .unwrap();
    let r = client()
        .post(format!("{}/api/chat", server.url()))
        .json(&json!({"model": "llama3.1", "messages": [{"role": "user", "content": "hi"}], "stream": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "llama3.1 means llama3.1:latest, which is not served"
    );
    let body: Value = r.json().await.unwrap();
    // server/routes.go `ChatHandler`: getModel fails with os.ErrNotExist.
    assert_eq!(body, json!({"error": "model 'llama3.1' not found"}));

    let r = client()
        .post(format!("{}/api/chat", server.url()))
        .json(&json!({"model": "llama3.1:8b", "messages": [{"role": "user", "content": "hi"}], "stream": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["message"],
        json!({"role": "assistant", "content": "All done."})
    );
    assert_eq!(body["done"], true);
    assert_eq!(body["done_reason"], "stop");
    assert_eq!(body["prompt_eval_count"], 1234);
    assert_eq!(body["eval_count"], 7);
    assert_eq!(
        keys(&body),
        sorted(&[
            "model",
            "created_at",
            "message",
            "done",
            "done_reason",
            "total_duration",
            "load_duration",
            "prompt_eval_count",
            "prompt_eval_duration",
            "eval_count",
            "eval_duration",
        ])
    );
    // the 404 did not consume the turn; the script is now exhausted -> 500
    let r = client()
        .post(format!("{}/api/chat", server.url()))
        .json(&json!({"model": "llama3.1:8b", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("exhausted"));
    server.shutdown().await;
}

#[tokio::test]
async fn tools_to_a_model_without_tools_are_refused() {
    let config = ServerConfig::with_models(vec![
        ModelSpec::new("gemma2:2b")
            .with_family("gemma2")
            .with_capabilities(["completion"]),
    ]);
    let server = ScriptedServer::start_with(config, Script::always_text("x"))
        .await
        .unwrap();
    let r = client()
        .post(format!("{}/api/chat", server.url()))
        .json(&json!({"model": "gemma2:2b", "messages": [], "tools": [{"type": "function"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "registry.ollama.ai/library/gemma2:2b does not support tools"})
    );
    assert_eq!(server.turns_served(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn pull_streams_progress_and_installs_the_model() {
    let config = ServerConfig {
        pullable_models: vec![ModelSpec::new("qwen2.5-coder:7b").with_family("qwen2")],
        ..ServerConfig::default()
    };
    let server = ScriptedServer::start_with(config, Script::always_text("x"))
        .await
        .unwrap();
    let c = client();
    let url = server.url();
    let before = c
        .post(format!("{url}/api/show"))
        .json(&json!({"model": "qwen2.5-coder:7b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(before.status(), 404);
    let r = c
        .post(format!("{url}/api/pull"))
        .json(&json!({"model": "qwen2.5-coder:7b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lines = ndjson(&r.text().await.unwrap());
    assert_eq!(
        lines.first().unwrap(),
        &json!({"status": "pulling manifest"})
    );
    assert_eq!(lines.last().unwrap(), &json!({"status": "success"}));
    let progress: Vec<&Value> = lines.iter().filter(|l| l.get("digest").is_some()).collect();
    assert!(progress.len() >= 2);
    for p in &progress {
        assert_eq!(keys(p), sorted(&["status", "digest", "total", "completed"]));
        assert!(p["digest"].as_str().unwrap().starts_with("sha256:"));
    }
    assert_eq!(
        progress.last().unwrap()["completed"],
        progress.last().unwrap()["total"]
    );
    let after = c
        .post(format!("{url}/api/show"))
        .json(&json!({"model": "qwen2.5-coder:7b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);

    let r = c
        .post(format!("{url}/api/pull"))
        .json(&json!({"model": "nope:1b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lines = ndjson(&r.text().await.unwrap());
    assert_eq!(
        lines.last().unwrap(),
        &json!({"error": "pull model manifest: file does not exist"})
    );
    let r = c
        .post(format!("{url}/api/pull"))
        .json(&json!({"model": "llama3.1:8b", "stream": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "success"})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn repeat_serves_a_turn_many_times_and_exhausted_text_keeps_answering() {
    let server = ScriptedServer::start(
        Script::new()
            .turn(Turn::tool_call("noop", json!({})).repeat(100))
            .turn(Turn::text("finished"))
            .on_exhausted(nanna_testkit::Exhausted::Text("(script exhausted)".into())),
    )
    .await
    .unwrap();
    let c = client();
    let url = format!("{}/api/chat", server.url());
    let ask = || {
        c.post(&url)
            .json(&json!({"model": "llama3.1:8b", "messages": [{"role": "user", "content": "hi"}], "stream": false}))
            .send()
    };
    for _ in 0..100 {
        let v: Value = ask().await.unwrap().json().await.unwrap();
        assert_eq!(v["message"]["tool_calls"][0]["function"]["name"], "noop");
    }
    let v: Value = ask().await.unwrap().json().await.unwrap();
    assert_eq!(v["message"]["content"], "finished");
    for _ in 0..2 {
        let v: Value = ask().await.unwrap().json().await.unwrap();
        assert_eq!(v["message"]["content"], "(script exhausted)");
    }
    assert_eq!(server.turns_served(), 103);
    assert_eq!(server.chat_requests().len(), 103);
    let times: Vec<_> = server.requests().iter().map(|r| r.received_at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    server.shutdown().await;
}

#[tokio::test]
async fn thinking_streams_before_content() {
    // Only a model with the thinking capability thinks (server/routes.go `ChatHandler`
    // turns `think` on by default for those, and parses thinking only when it is on).
    let server = ScriptedServer::start_with(
        ServerConfig::with_models(vec![ModelSpec::new("qwen3:8b").with_capabilities([
            "completion",
            "tools",
            "thinking",
        ])]),
        Script::new().turn(Turn::text("42").with_thinking("Let me think")),
    )
    .await
    .unwrap();
    let body = client()
        .post(format!("{}/api/chat", server.url()))
        .json(&json!({"model": "qwen3:8b", "messages": [{"role": "user", "content": "6*7?"}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = ndjson(&body);
    assert_eq!(
        lines[0]["message"],
        json!({"role": "assistant", "content": "", "thinking": "Let"})
    );
    assert_eq!(
        lines[3]["message"],
        json!({"role": "assistant", "content": "42"})
    );
    assert_eq!(lines.len(), 5);
    server.shutdown().await;
}

#[tokio::test]
async fn think_needs_the_thinking_capability() {
    let config = ServerConfig::with_models(vec![
        ModelSpec::default(),
        ModelSpec::new("qwen3:8b").with_capabilities(["completion", "tools", "thinking"]),
    ]);
    let server = ScriptedServer::start_with(config, Script::always_text("x"))
        .await
        .unwrap();
    let ask = |model: &str| {
        client()
            .post(format!("{}/api/chat", server.url()))
            .json(&json!({"model": model, "messages": [], "think": true, "stream": false}))
            .send()
    };
    let r = ask("llama3.1:8b").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "\"llama3.1:8b\" does not support thinking"})
    );
    assert_eq!(ask("qwen3:8b").await.unwrap().status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_are_recorded_and_refused() {
    let server = ScriptedServer::start(Script::always_text("x"))
        .await
        .unwrap();
    let c = client();
    let r = c
        .post(format!("{}/api/chat", server.url()))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = c
        .post(format!("{}/api/chat", server.url()))
        .json(&json!({"messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "model is required"})
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, Value::String("not json".into()));
    assert_eq!(reqs[1].path, "/api/chat");
    assert_eq!(server.turns_served(), 0);
    server.clear_requests();
    assert!(server.requests().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn waiting_for_chat_requests() {
    let server = ScriptedServer::start(Script::always_text("x"))
        .await
        .unwrap();
    let url = format!("{}/api/chat", server.url());
    assert!(
        !server
            .wait_for_chat_requests(1, std::time::Duration::from_millis(50))
            .await
    );
    let sender = tokio::spawn(async move {
        for _ in 0..3 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            client()
                .post(&url)
                .json(&json!({"model": "llama3.1:8b", "messages": [], "stream": false}))
                .send()
                .await
                .unwrap();
        }
    });
    assert!(
        server
            .wait_for_chat_requests(3, std::time::Duration::from_secs(10))
            .await
    );
    assert_eq!(server.chat_requests().len(), 3);
    sender.await.unwrap();
    server.shutdown().await;
}

//! The `nanna-scripted-llm` binary: script file, model file, record file, OLLAMA_HOST, SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::client;
use serde_json::{Value, json};

/// The running binary; killed if a failing test drops it before `terminate` (an orphan
/// would keep the test's output pipe open).
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the binary and returns it with the URL it printed.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Server, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nanna-scripted-llm"));
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env_remove("OLLAMA_HOST");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (Server(Some(child)), url)
}

fn terminate(mut server: Server) {
    let mut child = server.0.take().expect("running");
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "SIGTERM must stop the server cleanly, got {exit:?}"
    );
}

#[tokio::test]
async fn script_models_and_record_files() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.yaml");
    std::fs::write(
        &script,
        r#"
turns:
  - tool_calls:
      - name: read_file
        arguments: { path: notes.txt }
        omit_id: true
  - text: "The notes say hello."
"#,
    )
    .unwrap();
    let models = dir.path().join("models.json");
    std::fs::write(
        &models,
        r#"[{"name": "qwen3:8b", "family": "qwen3", "context_length": 40960, "capabilities": ["completion", "tools", "thinking"]}]"#,
    )
    .unwrap();
    let record = dir.path().join("requests.jsonl");
    let (child, url) = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--script",
            script.to_str().unwrap(),
            "--models-file",
            models.to_str().unwrap(),
            "--record",
            record.to_str().unwrap(),
        ],
        &[],
    );
    let c = client();
    let show: Value = c
        .post(format!("{url}/api/show"))
        .json(&json!({"model": "qwen3:8b"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(show["model_info"]["qwen3.context_length"], 40960);
    let chat = |stream: bool| {
        c.post(format!("{url}/api/chat"))
            .json(&json!({"model": "qwen3:8b", "messages": [{"role": "user", "content": "hi"}], "stream": stream, "options": {"num_ctx": 16384}}))
            .send()
    };
    let first: Value = chat(false).await.unwrap().json().await.unwrap();
    // `index` is sent for the first call too since Ollama 0.12.6 (the default version is
    // newer); the script asked for no id.
    assert_eq!(
        first["message"]["tool_calls"],
        json!([{"function": {"index": 0, "name": "read_file", "arguments": {"path": "notes.txt"}}}])
    );
    let second: Value = chat(false).await.unwrap().json().await.unwrap();
    assert_eq!(second["message"]["content"], "The notes say hello.");
    assert_eq!(chat(false).await.unwrap().status(), 500);
    terminate(child);

    let lines: Vec<Value> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["path"], "/api/show");
    assert_eq!(lines[1]["method"], "POST");
    assert_eq!(lines[1]["body"]["options"]["num_ctx"], 16384);
    assert!(lines[1]["received_unix_ms"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn without_script_answers_every_chat_and_honours_ollama_host() {
    // Find a free port, release it, and ask the binary to use it through OLLAMA_HOST.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("http://127.0.0.1:{port}");
    let (child, url) = spawn(
        &["--text", "stand-in reply", "--model", "tiny:1b"],
        &[("OLLAMA_HOST", &host)],
    );
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
    let c = client();
    assert_eq!(
        c.get(&url).send().await.unwrap().text().await.unwrap(),
        "Ollama is running"
    );
    for _ in 0..3 {
        let v: Value = c
            .post(format!("{url}/v1/chat/completions"))
            .json(&json!({"model": "tiny:1b", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "stand-in reply");
    }
    terminate(child);
}

#[test]
fn bad_script_fails_with_a_helpful_message() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.json");
    std::fs::write(&script, r#"{"turns": [{"txet": "typo"}]}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nanna-scripted-llm"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--script",
            script.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("txet") && err.contains("README"), "{err}");
}

#[test]
fn sigterm_right_after_startup_is_a_clean_stop() {
    for _ in 0..3 {
        let (child, _url) = spawn(&["--listen", "127.0.0.1:0"], &[]);
        terminate(child);
    }
}

#[tokio::test]
async fn flavor_picks_the_server_imitated() {
    let (child, url) = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--flavor",
            "llama.cpp",
            "--model",
            "/models/tiny.gguf",
        ],
        &[],
    );
    let c = client();
    let props = c.get(format!("{url}/props")).send().await;
    let ollama = c.get(format!("{url}/api/version")).send().await;
    terminate(child);
    let props: Value = props.unwrap().json().await.unwrap();
    assert_eq!(props["model_path"], "/models/tiny.gguf");
    assert_eq!(ollama.unwrap().status(), 404, "llama.cpp has no Ollama API");

    let out = Command::new(env!("CARGO_BIN_EXE_nanna-scripted-llm"))
        .args(["--listen", "127.0.0.1:0", "--flavor", "lmstudio"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ollama, llama.cpp or vllm"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

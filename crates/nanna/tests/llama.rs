//! End to end against a real llama.cpp server (OpenAI-compatible API). Set
//! `NANNA_TEST_LLAMA_URL` (e.g. http://127.0.0.1:8089); without it the test is skipped,
//! unless `NANNA_TEST_REQUIRE_LLAMA=1`.

use std::process::{Command, Stdio};

#[test]
fn chat_prompt_streams_an_answer_from_llama_cpp() {
    let Some(url) = std::env::var("NANNA_TEST_LLAMA_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        if std::env::var("NANNA_TEST_REQUIRE_LLAMA").as_deref() == Ok("1") {
            panic!("NANNA_TEST_REQUIRE_LLAMA=1 but NANNA_TEST_LLAMA_URL is not set");
        }
        eprintln!("skipping: set NANNA_TEST_LLAMA_URL (see .ci/run)");
        return;
    };
    let url = if url.trim_end_matches('/').ends_with("/v1") {
        url
    } else {
        format!("{}/v1", url.trim_end_matches('/'))
    };
    let home = tempfile::TempDir::new().expect("tempdir");
    let work = tempfile::TempDir::new().expect("tempdir");
    let nanna = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nanna"));
        cmd.current_dir(work.path())
            .env_clear()
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    };
    // The model as the server names it (llama.cpp: the file path), from `nanna models`.
    let model = match std::env::var("NANNA_TEST_LLAMA_MODEL") {
        Ok(m) if !m.is_empty() => m,
        _ => {
            let out = nanna()
                .args(["models", "--json", "--provider", "openai", "--url", &url])
                .output()
                .expect("nanna models runs");
            assert!(
                out.status.success(),
                "nanna models: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let list: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("models --json is JSON");
            list[0]["name"]
                .as_str()
                .expect("the server lists a model")
                .to_owned()
        }
    };
    let out = nanna()
        .args([
            "chat",
            "--provider",
            "openai",
            "--url",
            &url,
            "--model",
            &model,
            "--no-tools",
            "--max-tokens",
            "24",
            "--temperature",
            "0",
            "--prompt",
            "Reply with one short greeting.",
        ])
        .output()
        .expect("nanna runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    assert!(
        !stdout.trim().is_empty(),
        "an answer streamed; stderr: {stderr}"
    );
}

/// Issue 11, item 10, end to end: llama.cpp started without `--alias` lists its model under
/// the file path; `--model smollm2` runs against it, with a warning that names the model
/// used; `--think false` is accepted.
#[test]
fn a_server_without_alias_answers_to_a_short_name() {
    let Some(server) = nanna_testkit::llama::LlamaServer::start(&["-c", "2048"]) else {
        return;
    };
    let home = tempfile::TempDir::new().expect("tempdir");
    let work = tempfile::TempDir::new().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_nanna"))
        .current_dir(work.path())
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .args([
            "chat",
            "--provider",
            "openai",
            "--url",
            &server.url(),
            "--model",
            "smollm2",
            "--think",
            "false",
            "--no-tools",
            "--max-tokens",
            "8",
            "--prompt",
            "Say hi.",
        ])
        .output()
        .expect("nanna runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {stderr}",
        out.status
    );
    assert!(
        stderr.contains("warning:") && stderr.contains("smollm2") && stderr.contains(".gguf"),
        "{stderr}"
    );
}

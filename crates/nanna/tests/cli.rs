//! The `nanna` binary against the scripted model server: exec/chat runs, the information
//! commands, errors and exit codes, sessions and resume after a crash.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use nanna_testkit::{Fault, ModelSpec, Script, ServerConfig, Turn};
use serde_json::{Value, json};

fn read_notes_script() -> Script {
    Script::new()
        .turn(Turn::tool_call("read_file", json!({"path": "notes.txt"})))
        .turn(Turn::text("The notes say: buy milk."))
}

#[test]
fn exec_json_prints_one_event_per_line_in_order() {
    let env = Env::new(read_notes_script());
    env.write("notes.txt", "buy milk\n");
    let out = run(
        env.nanna()
            .args(["exec", "--json", "read notes.txt and say what it says"]),
        None,
    );
    assert_exit(&out, 0);
    let events = json_lines(&out);
    let kinds = types(&events);
    assert_eq!(kinds.first().map(String::as_str), Some("session_started"));
    assert_eq!(kinds.last().map(String::as_str), Some("done"));
    assert_subsequence(
        &kinds,
        &[
            "session_started",
            "waiting_for_model",
            "turn_end",
            "tool_call",
            "tool_result",
            "waiting_for_model",
            "text_delta",
            "turn_end",
            "done",
        ],
    );
    let call = events
        .iter()
        .find(|e| e["type"] == "tool_call")
        .expect("tool_call");
    assert_eq!(call["name"], "read_file");
    assert_eq!(call["arguments"]["path"], "notes.txt");
    let result = events
        .iter()
        .find(|e| e["type"] == "tool_result")
        .expect("tool_result");
    assert_eq!(result["ok"], true);
    assert!(result["output"].as_str().unwrap_or("").contains("buy milk"));
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "text_delta")
        .map(|e| e["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(text, "The notes say: buy milk.");
    let turn_end = events
        .iter()
        .find(|e| e["type"] == "turn_end")
        .expect("turn_end");
    assert!(
        turn_end.get("usage").is_some(),
        "turn_end carries usage: {turn_end}"
    );

    // The model saw the file's content in the second request.
    let requests = env.chat_requests();
    assert_eq!(requests.len(), 2);
    let second = message_texts(&requests[1]);
    assert!(second.iter().any(|m| m.contains("buy milk")), "{second:?}");
}

#[test]
fn chat_prompt_streams_the_answer_and_exits() {
    let env = Env::new(Script::new().turn(Turn::chunks(["Hello", ", wor", "ld!"])));
    let out = run(
        env.nanna().args(["chat", "--prompt", "Hello, world!"]),
        None,
    );
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).trim(), "Hello, world!");
    let requests = env.chat_requests();
    assert_eq!(requests.len(), 1);
    let texts = message_texts(&requests[0]);
    assert_eq!(texts.last().map(String::as_str), Some("Hello, world!"));
    assert!(!requests[0].tools().is_empty(), "tools are on by default");
}

#[test]
fn chat_reads_the_task_from_piped_stdin() {
    let env = Env::new(Script::new().turn(Turn::text("Piped answer.")));
    let out = run(
        env.nanna().args(["chat", "--no-tools"]),
        Some("what is in stdin?\n"),
    );
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).trim(), "Piped answer.");
    let requests = env.chat_requests();
    let texts = message_texts(&requests[0]);
    assert!(
        texts
            .last()
            .is_some_and(|t| t.contains("what is in stdin?")),
        "{texts:?}"
    );
    assert!(requests[0].tools().is_empty(), "--no-tools sends no tools");
}

#[test]
fn exec_is_read_only_by_default_and_full_auto_writes() {
    let script = || {
        Script::new()
            .turn(Turn::tool_call(
                "write_file",
                json!({"path": "out.txt", "content": "written\n"}),
            ))
            .turn(Turn::text("Done."))
    };
    let env = Env::new(script());
    let out = run(env.nanna().args(["exec", "--json", "write out.txt"]), None);
    assert_exit(&out, 0);
    assert!(!env.path("out.txt").exists(), "read-only must not write");
    let events = json_lines(&out);
    let result = events
        .iter()
        .find(|e| e["type"] == "tool_result")
        .expect("tool_result");
    assert_eq!(result["ok"], false, "{result}");

    let env = Env::new(script());
    let out = run(
        env.nanna()
            .args(["exec", "--full-auto", "--json", "write out.txt"]),
        None,
    );
    assert_exit(&out, 0);
    assert_eq!(
        std::fs::read_to_string(env.path("out.txt")).expect("written"),
        "written\n"
    );
}

#[test]
fn exec_asks_but_cannot_without_a_terminal() {
    let env = Env::new(
        Script::new()
            .turn(Turn::tool_call(
                "write_file",
                json!({"path": "out.txt", "content": "x"}),
            ))
            .turn(Turn::text("Ok.")),
    );
    let out = run(
        env.nanna()
            .args(["exec", "--sandbox", "workspace-write", "write it"]),
        None,
    );
    assert_exit(&out, 0);
    assert!(!env.path("out.txt").exists());
    assert!(
        stderr(&out).contains("--full-auto"),
        "suggests --full-auto: {}",
        stderr(&out)
    );
}

#[test]
fn exec_model_error_exits_non_zero_with_an_error_event() {
    let env = Env::new(
        Script::new().turn(Turn::text("x").with_fault(Fault::HttpError {
            status: 500,
            message: "model crashed".into(),
        })),
    );
    let out = run(env.nanna().args(["exec", "--json", "hi"]), None);
    assert_exit(&out, 1);
    let events = json_lines(&out);
    let errors: Vec<&Value> = events.iter().filter(|e| e["type"] == "error").collect();
    assert_eq!(errors.len(), 1, "exactly one error event: {events:?}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("model crashed")
    );
}

#[test]
fn exec_stops_at_max_turns_with_its_own_exit_code() {
    let env = Env::new(
        Script::new().turn(Turn::tool_call("read_file", json!({"path": "a.txt"})).forever()),
    );
    env.write("a.txt", "a");
    let out = run(env.nanna().args(["exec", "--max-turns", "2", "loop"]), None);
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("--max-turns"), "{}", stderr(&out));
    assert_eq!(env.chat_requests().len(), 2);
}

#[test]
fn models_lists_context_and_tool_support() {
    let config = ServerConfig::with_models(vec![
        ModelSpec::new("llama3.1:8b"),
        ModelSpec::new("plain:1b")
            .with_capabilities(["completion"])
            .with_context_length(4096),
    ]);
    let env = Env::with_config(config, Script::new());
    let out = run(env.nanna().args(["models", "--json"]), None);
    assert_exit(&out, 0);
    let list: Vec<Value> = serde_json::from_str(stdout(&out).trim()).expect("JSON array");
    assert_eq!(list.len(), 2);
    let plain = list
        .iter()
        .find(|m| m["name"] == "plain:1b")
        .expect("plain listed");
    assert_eq!(plain["context_length"], 4096);
    assert_eq!(plain["tools"], false);
    let llama = list
        .iter()
        .find(|m| m["name"] == "llama3.1:8b")
        .expect("llama listed");
    assert_eq!(llama["tools"], true);
    // One /api/show per model.
    let shows = env
        .server()
        .requests()
        .iter()
        .filter(|r| r.path == "/api/show")
        .count();
    assert_eq!(shows, 2);

    let out = run(env.nanna().arg("models"), None);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("NAME") && text.contains("CONTEXT") && text.contains("TOOLS"));
    let line = text
        .lines()
        .find(|l| l.starts_with("plain:1b"))
        .expect("row");
    assert!(line.contains("4096") && line.contains("no"), "{line}");
}

#[test]
fn health_passes_against_a_healthy_server() {
    let env = Env::new(Script::new());
    let out = run(env.nanna().arg("health"), None);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.lines().count() >= 3, "{text}");
    assert!(text.lines().all(|l| l.starts_with('✓')), "{text}");
    assert!(text.contains("0.13.0"), "version shown: {text}");

    let out = run(env.nanna().args(["health", "--json"]), None);
    assert_exit(&out, 0);
    let report: Value = serde_json::from_str(stdout(&out).trim()).expect("JSON");
    assert_eq!(report["healthy"], true);
    assert_eq!(report["version"], "0.13.0");
    assert_eq!(report["tools"], true);
}

#[test]
fn health_fails_with_a_fix_when_the_server_is_down() {
    let env = Env::server_down();
    let out = run(env.nanna().arg("health"), None);
    assert_ne!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("panicked"));
    let text = stdout(&out);
    assert!(text.starts_with('✗'), "{text}");
    assert!(text.contains("fix:") && text.contains(env.url()), "{text}");

    let out = run(env.nanna().args(["health", "--json"]), None);
    assert_ne!(out.status.code(), Some(0));
    let report: Value = serde_json::from_str(stdout(&out).trim()).expect("JSON");
    assert_eq!(report["healthy"], false);
}

#[test]
fn health_fails_when_the_model_is_missing() {
    let env = Env::new(Script::new());
    let out = run(
        env.bare()
            .args(["--url", env.url(), "--model", "absent:7b", "health"]),
        None,
    );
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("nanna pull absent:7b"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn health_on_an_openai_server_does_not_suggest_nanna_pull() {
    let env = Env::new(Script::new());
    let url = format!("{}/v1", env.url());
    let out = run(
        env.bare().args([
            "--provider",
            "openai",
            "--url",
            &url,
            "--model",
            "absent:7b",
            "health",
        ]),
        None,
    );
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("`absent:7b` is not on the server"), "{text}");
    assert!(
        !text.contains("nanna pull"),
        "pull only exists on Ollama: {text}"
    );
    assert!(text.contains("server's own tooling"), "{text}");
}

#[test]
fn tools_lists_names_descriptions_and_schemas() {
    let env = Env::server_down();
    let out = run(env.bare().args(["tools", "--json"]), None);
    assert_exit(&out, 0);
    let tools: Vec<Value> = serde_json::from_str(stdout(&out).trim()).expect("JSON array");
    let names: Vec<&str> = tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap_or(""))
        .collect();
    for wanted in ["read_file", "write_file", "edit_file"] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    for t in &tools {
        assert_eq!(t["function"]["parameters"]["type"], "object", "{t}");
        assert!(
            !t["function"]["description"]
                .as_str()
                .unwrap_or("")
                .is_empty()
        );
    }
    let out = run(env.bare().arg("tools"), None);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("read_file"));
}

#[test]
fn sessions_list_show_and_remove() {
    let env = Env::new(Script::new().turn(Turn::text("First answer.")));
    let out = run(env.nanna().args(["exec", "first task"]), None);
    assert_exit(&out, 0);

    let out = run(env.bare().args(["sessions", "list", "--json"]), None);
    assert_exit(&out, 0);
    let list: Vec<Value> = serde_json::from_str(stdout(&out).trim()).expect("JSON");
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(list[0]["model"], MODEL);

    let out = run(env.bare().args(["sessions"]), None);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains(&id));

    let out = run(env.bare().args(["sessions", "show", &id, "--json"]), None);
    assert_exit(&out, 0);
    let shown: Value = serde_json::from_str(stdout(&out).trim()).expect("JSON");
    let contents: Vec<&str> = shown["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].as_str().unwrap_or(""))
        .collect();
    assert!(contents.contains(&"first task"), "{contents:?}");
    assert!(contents.contains(&"First answer."), "{contents:?}");

    let out = run(env.bare().args(["sessions", "show", "last"]), None);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("First answer."));

    let out = run(env.bare().args(["sessions", "rm", &id]), None);
    assert_exit(&out, 0);
    let out = run(env.bare().args(["sessions", "list", "--json"]), None);
    assert_eq!(stdout(&out).trim(), "[]");

    let out = run(env.bare().args(["sessions", "show", &id]), None);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("nanna sessions"), "{}", stderr(&out));
}

#[test]
fn bad_flags_and_settings_fail_clearly() {
    let env = Env::server_down();
    let out = run(env.bare().args(["chat", "--provider", "nope"]), None);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));

    let out = run(env.bare().args(["exec", "--frobnicate", "x"]), None);
    assert_exit(&out, 2);

    let out = run(env.nanna().args(["exec", "--max-turns", "0", "x"]), None);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("--max-turns"), "{}", stderr(&out));

    let out = run(
        env.nanna()
            .args(["exec", "-C", "/definitely/not/here", "x"]),
        None,
    );
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("/definitely/not/here"),
        "{}",
        stderr(&out)
    );

    let bad = env.home.path().join("bad.toml");
    std::fs::write(&bad, "this is = = not toml").expect("write");
    let out = run(
        env.bare()
            .args(["--config", bad.to_str().expect("utf-8"), "health"]),
        None,
    );
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("bad.toml"), "{}", stderr(&out));

    let out = run(env.bare().args(["--url", "not a url", "models"]), None);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("not a url"), "{}", stderr(&out));

    // Exec with the server down: a model error, not a panic, and no empty session left.
    let out = run(env.nanna().args(["exec", "hi"]), None);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains(env.url()), "{err}");
    let reported = err.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(reported, 1, "reported once: {err}");
    let out = run(env.bare().args(["sessions", "list", "--json"]), None);
    assert_eq!(stdout(&out).trim(), "[]");
}

#[test]
fn completions_and_help() {
    let env = Env::server_down();
    let out = run(env.bare().args(["completions", "bash"]), None);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("_nanna"));
    let out = run(env.bare().arg("--help"), None);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("Examples:"));
    let out = run(env.bare().arg("--version"), None);
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("nanna "));
    // Into a closed pipe (`nanna completions bash | head -1` once head has exited): an
    // error, not a panic (clap_complete's own writer panicked).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = env
        .bare()
        .args(["completions", "bash"])
        .stdout(writer)
        .output()
        .unwrap();
    assert_exit(&out, 1);
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(stderr(&out).contains("Broken pipe"), "{}", stderr(&out));
}

#[test]
fn resume_after_kill_continues_with_the_history() {
    let env = Env::new(
        Script::new()
            .turn(Turn::text("First answer."))
            .turn(Turn::text("never sent").with_fault(Fault::Delay(Duration::from_secs(60))))
            .turn(Turn::text("Third answer.")),
    );
    let out = run(env.nanna().args(["exec", "first task"]), None);
    assert_exit(&out, 0);

    let mut child = env
        .nanna()
        .args(["exec", "--resume", "last", "second task"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(
        env.wait_for_chat_requests(2, Duration::from_secs(20)),
        "second request never arrived"
    );
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    let file = only_session_file(&env.sessions_dir());
    let stored = std::fs::read_to_string(&file).expect("session file");
    assert!(
        stored.contains("second task"),
        "user message persisted: {stored}"
    );
    for line in stored.lines() {
        serde_json::from_str::<Value>(line).expect("every line is JSON");
    }

    let out = run(
        env.nanna()
            .args(["exec", "--json", "--resume", "last", "third task"]),
        None,
    );
    assert_exit(&out, 0);
    let events = json_lines(&out);
    assert_eq!(events[0]["type"], "session_started");
    assert_eq!(events[0]["resumed"], true);
    let requests = env.chat_requests();
    assert_eq!(requests.len(), 3);
    let texts = message_texts(&requests[2]);
    for wanted in ["first task", "First answer.", "second task", "third task"] {
        assert!(
            texts.iter().any(|t| t.contains(wanted)),
            "{wanted} missing: {texts:?}"
        );
    }
    // Still one session, now with the third answer.
    let file = only_session_file(&env.sessions_dir());
    let stored = std::fs::read_to_string(&file).expect("session file");
    assert!(stored.contains("Third answer."));
}

/// Sends `GET /health` and returns the status code and the JSON body.
fn get_health(addr: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status: u16 = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    let body = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    (status, body)
}

/// Starts `nanna serve` on a free port and returns the child and its address.
fn start_serve(cmd: &mut Command) -> (std::process::Child, String) {
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().expect("a line").expect("readable");
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

fn sigterm(child: &std::process::Child) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

#[test]
fn serve_reports_health_and_stops_on_sigterm() {
    let env = Env::new(Script::new());
    let (mut child, addr) = start_serve(&mut env.nanna());
    let (status, body) = get_health(&addr);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["model_server"], "reachable");
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["version"], "0.13.0");
    // `serve --check`, the containers' health check, agrees with /health.
    let check = |addr: &str| {
        run(
            env.bare().args(["serve", "--check", "--listen", addr]),
            None,
        )
    };
    assert_exit(&check(&addr), 0);
    sigterm(&child);
    let status = child.wait().expect("exits");
    assert_eq!(status.code(), Some(0), "graceful exit on SIGTERM");

    let down = Env::server_down();
    let (mut child, addr) = start_serve(&mut down.nanna());
    let (status, body) = get_health(&addr);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["model_server"], "unreachable");
    let out = run(
        down.bare().args(["serve", "--check", "--listen", &addr]),
        None,
    );
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("HTTP 503"), "{}", stderr(&out));
    sigterm(&child);
    assert_eq!(child.wait().expect("exits").code(), Some(0));
    // Nothing listening: a failure too.
    let out = run(
        down.bare().args(["serve", "--check", "--listen", &addr]),
        None,
    );
    assert_exit(&out, 1);
}

#[test]
fn chat_prompt_works_with_the_openai_provider() {
    let env = Env::new(Script::new().turn(Turn::chunks(["Open", "AI ", "compatible."])));
    let url = format!("{}/v1", env.url());
    let out = run(
        env.bare().args([
            "chat",
            "--provider",
            "openai",
            "--url",
            &url,
            "--model",
            MODEL,
            "--no-tools",
            "--prompt",
            "hi",
        ]),
        None,
    );
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).trim(), "OpenAI compatible.");
    let requests = env.chat_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/chat/completions");
}

#[test]
fn pull_downloads_a_model_and_reports_failures() {
    let config = ServerConfig {
        pullable_models: vec![ModelSpec::new("tiny:1b")],
        ..ServerConfig::default()
    };
    let env = Env::with_config(config, Script::new());
    let out = run(env.nanna().args(["pull", "tiny:1b", "--json"]), None);
    assert_exit(&out, 0);
    let lines = json_lines(&out);
    assert!(!lines.is_empty());
    assert_eq!(lines.last().expect("a line")["status"], "success");

    let out = run(env.nanna().args(["pull", "tiny:1b"]), None);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("pulled tiny:1b"), "{}", stderr(&out));

    let out = run(env.nanna().args(["models", "--json"]), None);
    assert!(stdout(&out).contains("tiny:1b"));

    let out = run(env.nanna().args(["pull", "nowhere:9b"]), None);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("nowhere:9b"), "{}", stderr(&out));

    // A provider that cannot pull says so, without a hint about the model's name.
    let out = run(
        env.nanna()
            .args(["--provider", "openai", "pull", "tiny:1b"]),
        None,
    );
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("server's own tooling"), "{err}");
    assert!(!err.contains("check the model name"), "{err}");
}

#[test]
fn sigint_cancels_exec_with_exit_code_130() {
    let env = Env::new(
        Script::new().turn(Turn::text("late").with_fault(Fault::Delay(Duration::from_secs(60)))),
    );
    let child = env
        .nanna()
        .args(["exec", "--json", "wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(env.wait_for_chat_requests(1, Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(100));
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let out = child.wait_with_output().expect("exits");
    assert_exit(&out, 130);
    let events = json_lines(&out);
    assert_eq!(
        events.last().map(|e| e["type"].clone()),
        Some(json!("done"))
    );
}

/// Issue 11, item 3, end to end: `--think` reaches the server as Ollama's `think`; in
/// `--json` the reasoning is one `thinking` event per block (no delta lines); on the
/// terminal it goes to stderr behind a `│` gutter, apart from the answer on stdout; a bad
/// value is refused with the accepted ones.
#[test]
fn think_flag_and_thinking_output() {
    let thinker = ModelSpec::new(MODEL).with_capabilities(["completion", "tools", "thinking"]);
    let env = Env::with_config(
        ServerConfig::with_models(vec![thinker]),
        Script::new()
            .turn(Turn::text("Forty-two.").with_thinking("six times seven"))
            .turn(Turn::text("Forty-two.").with_thinking("six times seven")),
    );
    let out = run(
        env.nanna()
            .args(["exec", "--json", "--think", "low", "6*7?"]),
        None,
    );
    assert_exit(&out, 0);
    let events = json_lines(&out);
    let kinds = types(&events);
    assert!(!kinds.iter().any(|k| k == "thinking_delta"), "{kinds:?}");
    let thinking: Vec<&Value> = events.iter().filter(|e| e["type"] == "thinking").collect();
    assert_eq!(thinking.len(), 1, "{kinds:?}");
    assert_eq!(thinking[0]["text"], "six times seven");
    assert_subsequence(&kinds, &["thinking", "text_delta", "done"]);
    assert_eq!(env.chat_requests()[0].body["think"], json!("low"));

    let out = run(env.nanna().args(["chat", "--prompt", "6*7?"]), None);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).trim(), "Forty-two.");
    assert!(
        stderr(&out).contains("thinking\n│ six times seven\n"),
        "{}",
        stderr(&out)
    );
    assert!(env.chat_requests()[1].body.get("think").is_none());

    let out = run(env.nanna().args(["exec", "--think", "very", "x"]), None);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("think") && err.contains("low, medium, high"),
        "{err}"
    );
}

//! Issue 10: the `nanna` binary survives hostile and broken model output. Each test plays
//! one of the reported attacks on the scripted server and checks the exit code, the
//! message, and that the session file is still valid JSON Lines.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use nanna_testkit::{Flavor, Script, ServerConfig, Turn};
use serde_json::{Value, json};

/// Every line of every session file parses as JSON; returns the records.
fn session_records(dir: &Path) -> Vec<Value> {
    let mut records = Vec::new();
    for entry in std::fs::read_dir(dir).expect("sessions dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("session file");
        for (n, line) in text.lines().enumerate() {
            let record: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("{}:{}: not JSON ({e}): {line:.200}", path.display(), n + 1)
            });
            records.push(record);
        }
    }
    records
}

/// The tool results of a `--json` run, in order: (ok, output).
fn results(events: &[Value]) -> Vec<(bool, String)> {
    events
        .iter()
        .filter(|e| e["type"] == "tool_result")
        .map(|e| {
            (
                e["ok"].as_bool().unwrap_or(false),
                e["output"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn error_event(events: &[Value]) -> String {
    events
        .iter()
        .find(|e| e["type"] == "error")
        .and_then(|e| e["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn calculate_with_hostile_nesting_answers_errors_and_the_run_goes_on() {
    // These aborted the process ("thread 'main' has overflowed its stack").
    let parens = format!("{}1{}", "(".repeat(20_000), ")".repeat(20_000));
    let minus = format!("{}1", "-".repeat(5_000));
    let power = vec!["2"; 4_000].join("^");
    let env = Env::new(
        Script::new()
            .turn(
                Turn::tool_call("calculate", json!({"expression": parens}))
                    .with_tool_call("calculate", json!({"expression": minus}))
                    .with_tool_call("calculate", json!({"expression": power}))
                    .with_tool_call("calculate", json!({"expression": "6*7"})),
            )
            .turn(Turn::text("42")),
    );
    let out = run(
        env.nanna()
            .env("NANNA_EXTRA_TOOLS", "calculate")
            .args(["exec", "--json", "compute"]),
        None,
    );
    assert_exit(&out, 0);
    let results = results(&json_lines(&out));
    assert_eq!(results.len(), 4, "{results:?}");
    assert!(
        !results[0].0 && results[0].1.contains("characters long"),
        "{:?}",
        results[0]
    );
    for result in &results[1..3] {
        assert!(
            !result.0 && result.1.contains("nests deeper than 200 levels"),
            "{result:?}"
        );
    }
    assert_eq!(results[3], (true, "42".to_owned()));
    assert_eq!(
        env.chat_requests().len(),
        2,
        "the model got the errors and answered"
    );
    session_records(&env.sessions_dir());
}

#[test]
fn ollama_arguments_that_are_not_json_become_an_error_result() {
    let env = Env::new(
        Script::new()
            .turn(
                Turn::empty()
                    .with_raw_tool_call("calculate", "{not json")
                    .with_tool_call("calculate", json!({"expression": "6*7"})),
            )
            .turn(Turn::text("The second call gave 42.")),
    );
    let out = run(
        env.nanna()
            .env("NANNA_EXTRA_TOOLS", "calculate")
            .args(["exec", "--json", "compute"]),
        None,
    );
    assert_exit(&out, 0);
    let results = results(&json_lines(&out));
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(!results[0].0, "{results:?}");
    assert!(
        results[0]
            .1
            .contains("not valid JSON (key must be a string at line 1 column 2)")
            && results[0].1.contains("{not json"),
        "the model learns what was wrong: {}",
        results[0].1
    );
    assert_eq!(results[1], (true, "42".to_owned()));

    // The session keeps the model's text verbatim; Ollama (objects only) is sent {}.
    let records = session_records(&env.sessions_dir());
    let stored = records
        .iter()
        .find_map(|r| r["message"]["tool_calls"].as_array())
        .expect("assistant message with calls");
    assert_eq!(stored[0]["arguments"], "{not json");
    let second = &env.chat_requests()[1];
    let echoed = second
        .messages()
        .iter()
        .find_map(|m| m["tool_calls"].as_array())
        .expect("calls echoed");
    assert_eq!(echoed[0]["function"]["arguments"], json!({}));
    assert_eq!(
        echoed[1]["function"]["arguments"],
        json!({"expression": "6*7"})
    );
}

#[test]
fn openai_arguments_cut_short_become_an_error_result_on_every_server() {
    // vLLM and llama.cpp stream partial arguments and stop at the token limit. Echoed back
    // verbatim where the server takes it (llama.cpp); as {} where the server refuses a
    // request holding it (Ollama's /v1, vLLM: each answers 400 to the verbatim text).
    let cut = r#"{"expression": "1+"#;
    for (flavor, echoed_as) in [
        (Flavor::LlamaCpp, cut),
        (Flavor::Vllm, "{}"),
        (Flavor::Ollama, "{}"),
    ] {
        let config = ServerConfig {
            flavor,
            ..ServerConfig::default()
        };
        let env = Env::with_config(
            config,
            Script::new()
                .turn(
                    Turn::empty()
                        .with_raw_tool_call("calculate", cut)
                        .with_tool_call("calculate", json!({"expression": "6*7"}))
                        .with_done_reason("length"),
                )
                .turn(Turn::text("Retrying is not needed: 42.")),
        );
        let url = format!("{}/v1", env.url());
        let out = run(
            env.bare().env("NANNA_EXTRA_TOOLS", "calculate").args([
                "exec",
                "--json",
                "--provider",
                "openai",
                "--url",
                &url,
                "--model",
                MODEL,
                "compute",
            ]),
            None,
        );
        assert_exit(&out, 0);
        let results = results(&json_lines(&out));
        assert_eq!(results.len(), 2, "{flavor:?}: {results:?}");
        assert!(
            !results[0].0 && results[0].1.contains("not valid JSON"),
            "{flavor:?}: {:?}",
            results[0]
        );
        assert_eq!(results[1], (true, "42".to_owned()), "{flavor:?}");
        let echoed = env.chat_requests()[1]
            .messages()
            .iter()
            .find_map(|m| m["tool_calls"].as_array().cloned())
            .expect("calls echoed");
        assert_eq!(echoed[0]["function"]["arguments"], echoed_as, "{flavor:?}");
        // The session keeps what the model wrote, whatever went on the wire.
        let records = session_records(&env.sessions_dir());
        let stored = records
            .iter()
            .find_map(|r| r["message"]["tool_calls"].as_array().cloned())
            .expect("assistant message with calls");
        if flavor != Flavor::Ollama {
            assert_eq!(stored[0]["arguments"], cut, "{flavor:?}");
        }
    }
}

#[test]
fn tool_call_markup_that_does_not_parse_is_answered_and_the_good_one_runs() {
    let text = "Computing.\n<tool_call>{\"name\": \"calculate\", \"arguments\": {\"expression\": </tool_call>\n<tool_call>{\"name\": \"calculate\", \"arguments\": {\"expression\": \"6*7\"}}</tool_call>";
    let env = Env::new(
        Script::new()
            .turn(Turn::chunks([text]))
            .turn(Turn::text("42.")),
    );
    let out = run(
        env.nanna()
            .env("NANNA_EXTRA_TOOLS", "calculate")
            .args(["exec", "--json", "compute"]),
        None,
    );
    assert_exit(&out, 0);
    let results = results(&json_lines(&out));
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        !results[0].0
            && results[0].1.contains("could not read this tool call")
            && results[0].1.contains("not valid JSON"),
        "{:?}",
        results[0]
    );
    assert_eq!(results[1], (true, "42".to_owned()));
}

const FENCED_EXAMPLE: &str = "To create it you would run:\n```json\n{\"name\": \"shell\", \"arguments\": {\"command\": \"touch PWNED\"}}\n```\nThat is only an example.";

#[test]
fn a_fenced_example_is_not_run_for_a_model_with_native_tools() {
    let env = Env::new(Script::new().turn(Turn::chunks([FENCED_EXAMPLE])));
    let out = run(
        env.nanna()
            .args(["exec", "--full-auto", "how do I make a file?"]),
        None,
    );
    assert_exit(&out, 0);
    assert!(!env.path("PWNED").exists(), "the example ran");
    assert_eq!(env.chat_requests().len(), 1);
    assert!(stdout(&out).contains("touch PWNED"), "the answer is shown");
}

#[test]
fn a_fenced_call_runs_when_opted_in_or_without_native_tools() {
    for flags in [&["--json-tool-calls"][..], &["--native-tools", "off"][..]] {
        let env = Env::new(
            Script::new()
                .turn(Turn::chunks([FENCED_EXAMPLE]))
                .turn(Turn::text("Done.")),
        );
        let mut cmd = env.nanna();
        cmd.args(flags)
            .args(["exec", "--full-auto", "make the file"]);
        let out = run(&mut cmd, None);
        assert_exit(&out, 0);
        assert!(
            env.path("PWNED").exists(),
            "{flags:?}: the call did not run"
        );
    }
}

#[test]
fn a_line_over_the_limit_is_a_clear_error_and_memory_stays_bounded() {
    let env = Env::new(Script::new().turn(Turn::chunks(["x".repeat(300_000)])));
    let out = run(
        env.nanna()
            .env("NANNA_MAX_LINE_BYTES", "65536")
            .args(["exec", "--json", "hi"]),
        None,
    );
    assert_exit(&out, 1);
    let message = error_event(&json_lines(&out));
    assert!(
        message.contains("line 1 of the stream")
            && message.contains("limit of 64 KiB")
            && message.contains("max_line_bytes (NANNA_MAX_LINE_BYTES)"),
        "{message}"
    );
    session_records(&env.sessions_dir());
}

#[test]
fn a_reply_over_the_limit_is_cut_with_a_clear_error() {
    // 300 lines of 1 MB took 1.24 GB of memory and left a 314 MB session line; scaled down.
    let chunks: Vec<String> = (0..40).map(|_| "y".repeat(50_000)).collect();
    let env = Env::new(Script::new().turn(Turn::chunks(chunks)));
    let out = run(
        env.nanna()
            .env("NANNA_MAX_REPLY_BYTES", "1048576")
            .args(["exec", "--json", "hi"]),
        None,
    );
    assert_exit(&out, 1);
    let message = error_event(&json_lines(&out));
    assert!(
        message.contains("limit of 1 MiB") && message.contains("max_reply_bytes"),
        "{message}"
    );
    let records = session_records(&env.sessions_dir());
    let stored: usize = records
        .iter()
        .map(|r| r["message"]["content"].as_str().map_or(0, str::len))
        .sum();
    assert!(stored < 1_048_576, "{stored} bytes stored");
}

#[test]
fn a_server_sending_one_byte_at_a_time_hits_the_turn_deadline() {
    for provider in ["ollama", "openai"] {
        let env = Env::new(
            Script::new().turn(
                Turn::text("a reply that trickles in forever")
                    .with_byte_delay(Duration::from_millis(100)),
            ),
        );
        let url = match provider {
            "openai" => format!("{}/v1", env.url()),
            _ => env.url().to_owned(),
        };
        let started = Instant::now();
        let out = run(
            env.bare().args([
                "--provider",
                provider,
                "--url",
                &url,
                "--model",
                MODEL,
                "--idle-timeout",
                "5",
                "--turn-timeout",
                "1",
                "exec",
                "hi",
            ]),
            None,
        );
        let took = started.elapsed();
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(
            err.contains("did not answer within 1 s")
                && err.contains("turn_timeout_secs (NANNA_TURN_TIMEOUT, --turn-timeout)"),
            "{provider}: {err}"
        );
        assert!(
            took < Duration::from_secs(5),
            "{provider}: the idle timeout ended it"
        );
        session_records(&env.sessions_dir());
    }
}

#[test]
fn two_processes_resuming_one_session_do_not_interleave() {
    let env = Env::new(
        Script::new()
            .turn(Turn::text("first"))
            .turn(
                Turn::text("one two three four five six")
                    .with_chunk_delay(Duration::from_millis(400)),
            )
            .turn(Turn::text("read-only answer")),
    );
    assert_exit(&run(env.nanna().args(["exec", "start"]), None), 0);
    let session = only_session_file(&env.sessions_dir());
    let id = session
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("id")
        .to_owned();

    let mut writer = env
        .nanna()
        .args(["exec", "--resume", "last", "from A"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("A starts");
    assert!(
        env.wait_for_chat_requests(2, Duration::from_secs(10)),
        "A never asked the model"
    );

    let second = run(
        env.nanna().args(["exec", "--resume", "last", "from B"]),
        None,
    );
    assert_exit(&second, 1);
    let err = stderr(&second);
    assert!(
        err.contains(&format!(
            "session `{id}` is in use by another nanna process (pid {})",
            writer.id()
        )) && err.contains("--session-read-only"),
        "{err}"
    );

    let reader = run(
        env.nanna()
            .args(["exec", "--resume", "last", "--session-read-only", "from C"]),
        None,
    );
    assert_exit(&reader, 0);
    assert!(
        stderr(&reader).contains("open read-only"),
        "{}",
        stderr(&reader)
    );

    let status = writer.wait().expect("A finishes");
    assert!(status.success());
    let users: Vec<String> = session_records(&env.sessions_dir())
        .iter()
        .filter(|r| r["message"]["role"] == "user")
        .map(|r| r["message"]["content"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(users, ["start", "from A"], "only the lock holder wrote");
}

#[test]
fn credentials_in_the_server_url_are_never_printed() {
    let down = Env::server_down();
    let port = down.url().rsplit(':').next().expect("port").to_owned();
    let secret_url = format!("http://alice:s3cret@127.0.0.1:{port}");
    for args in [
        &["exec", "hi"][..],
        &["exec", "--json", "hi"][..],
        &["health"][..],
        &["health", "--json"][..],
        &["models"][..],
    ] {
        let out = run(down.bare().env("OLLAMA_URL", &secret_url).args(args), None);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            !all.contains("s3cret") && !all.contains("alice"),
            "{args:?}: {all}"
        );
        assert!(all.contains("http://***@127.0.0.1"), "{args:?}: {all}");
    }
    let out = run(
        down.bare()
            .env("OLLAMA_URL", "ftp://alice:s3cret@host")
            .args(["health"]),
        None,
    );
    assert_exit(&out, 1);
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
}

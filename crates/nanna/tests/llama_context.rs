//! Small context windows on a real llama.cpp server (SmolLM2-135M, `-c 1024/1536/2048`):
//! ten `nanna exec --resume last` turns each, every one a new process, as a user would run
//! them. Every prompt the server reports stays within the window minus the reply's share,
//! every compaction shrinks the prompt, summaries never nest, every turn exits 0.
//!
//! Needs `NANNA_TEST_LLAMA_BIN` and `NANNA_TEST_LLAMA_GGUF` (`.ci/llama-server.sh`); skipped
//! without them unless `NANNA_TEST_REQUIRE_LLAMA=1`.

use std::path::Path;
use std::process::{Command, Stdio};

use nanna_testkit::llama::LlamaServer;
use serde_json::Value;

/// Replies are capped short: SmolLM2 on two shared cores writes ~50 tokens a second.
const MAX_TOKENS: u32 = 40;
const TURNS: usize = 10;
const SUMMARY_HEADER: &str = "[Summary of the earlier conversation";

const TOPICS: [&str; 10] = [
    "rivers",
    "bees",
    "volcanoes",
    "libraries",
    "trains",
    "owls",
    "glaciers",
    "bridges",
    "tides",
    "bread",
];

/// A turn's request: notes of about 110 words (so that a few turns fill a small window)
/// and a question about them.
fn request(turn: usize) -> String {
    let topic = TOPICS[turn % TOPICS.len()];
    let mut notes = String::new();
    for i in 0..6 {
        notes.push_str(&format!(
            "Note {i} on {topic}: people who study {topic} write that {topic} change slowly, \
             matter to towns nearby, and are worth a visit. "
        ));
    }
    format!("Here are my notes.\n{notes}\nWrite one sentence about {topic}.")
}

struct Turn {
    rc: Option<i32>,
    events: Vec<Value>,
    stderr: String,
}

fn exec(url: &str, home: &Path, work: &Path, turn: usize) -> Turn {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nanna"));
    cmd.current_dir(work)
        .env_clear()
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .args([
            "exec",
            "--json",
            "--provider",
            "openai",
            "--url",
            url,
            "--model",
            "smol",
            "--max-tokens",
            &MAX_TOKENS.to_string(),
            "--temperature",
            "0",
        ]);
    if turn > 0 {
        cmd.args(["--resume", "last"]);
    }
    cmd.arg(request(turn));
    let out = cmd.output().expect("nanna runs");
    Turn {
        rc: out.status.code(),
        events: String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the turns against a server with `window` tokens; returns (compactions, the
/// largest prompt the server reported).
fn session(window: u32) -> Option<(usize, u64)> {
    let server = LlamaServer::start(&["-c", &window.to_string(), "--alias", "smol"])?;
    let url = format!("{}/v1", server.url());
    let home = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let limit = u64::from(window - MAX_TOKENS);
    let mut compactions = 0;
    let mut largest = 0;
    for turn in 0..TURNS {
        let t = exec(&url, home.path(), work.path(), turn);
        let context = format!(
            "-c {window}, turn {turn}: rc {:?}\nstderr: {}\nevents: {:#?}",
            t.rc, t.stderr, t.events
        );
        assert_eq!(t.rc, Some(0), "{context}");
        let mut answered = false;
        for e in &t.events {
            match e["type"].as_str() {
                Some("turn_end") => {
                    let reported = e["usage"]["prompt_tokens"].as_u64().expect(&context);
                    assert!(reported <= limit, "{reported} > {limit}: {context}");
                    largest = largest.max(reported);
                    answered = true;
                }
                Some("context_compacted") => {
                    compactions += 1;
                    let before = e["tokens_before"].as_u64().expect(&context);
                    let after = e["tokens_after"].as_u64().expect(&context);
                    assert!(after < before, "{context}");
                    assert_eq!(e["after_counted"], true, "llama.cpp counts: {context}");
                }
                Some("warning") => {
                    let message = e["message"].as_str().unwrap_or_default();
                    assert!(
                        !message.contains("could not") && !message.contains("context window ("),
                        "{context}"
                    );
                }
                _ => {}
            }
        }
        assert!(answered, "{context}");
    }
    // No nested summaries: the history holds at most one, with one header.
    let sessions = home.path().join("data/nanna/sessions");
    let file = std::fs::read_dir(&sessions)
        .expect("sessions")
        .filter_map(Result::ok)
        .next()
        .expect("a session file")
        .path();
    let mut history: Vec<Value> = Vec::new();
    for line in std::fs::read_to_string(&file).expect("session").lines() {
        let record: Value = serde_json::from_str(line).expect("a JSON record");
        match record["type"].as_str() {
            Some("message") => history.push(record["message"].clone()),
            Some("compaction") => {
                history = record["messages"].as_array().expect("messages").clone();
                let recaps: Vec<&str> = history
                    .iter()
                    .filter_map(|m| m["content"].as_str())
                    .filter(|c| c.contains(SUMMARY_HEADER))
                    .collect();
                assert!(recaps.len() <= 1, "{recaps:#?}");
                assert!(
                    recaps
                        .iter()
                        .all(|c| c.matches(SUMMARY_HEADER).count() == 1),
                    "{recaps:#?}"
                );
            }
            _ => {}
        }
    }
    Some((compactions, largest))
}

#[test]
fn ten_resumed_turns_fit_small_windows_and_every_compaction_shrinks() {
    for window in [1024, 1536, 2048] {
        let Some((compactions, largest)) = session(window) else {
            return;
        };
        eprintln!("-c {window}: {compactions} compactions, largest prompt {largest} tokens");
        assert!(
            compactions >= 1,
            "-c {window}: ten turns of notes fill the window at least once"
        );
        assert!(
            compactions <= TURNS / 2,
            "-c {window}: compactions stay rare ({compactions})"
        );
    }
}

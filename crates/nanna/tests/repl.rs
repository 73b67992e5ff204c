//! The interactive REPL driven through a pseudo-terminal: approvals (y/n), Ctrl-C to cancel
//! a slow turn, a second Ctrl-C to leave.

mod common;

use std::time::Duration;

use common::*;
use nanna_testkit::{Fault, Script, Turn};
use rexpect::process::wait::WaitStatus;
use rexpect::session::{PtySession, spawn_command};
use serde_json::json;

/// The prompt `› ` as rexpect sees it: it reads the terminal byte by byte, one char per byte.
fn prompt() -> String {
    "› ".bytes().map(char::from).collect()
}

fn spawn_chat(env: &Env) -> PtySession {
    let mut cmd = env.nanna();
    cmd.env("TERM", "xterm");
    cmd.arg("chat");
    spawn_command(cmd, Some(30_000)).expect("nanna chat starts in a pty")
}

fn write_script() -> Script {
    Script::new()
        .turn(Turn::tool_call(
            "write_file",
            json!({"path": "out.txt", "content": "from the model\n"}),
        ))
        .turn(Turn::text("All done."))
}

/// Waits for the process to end and returns its exit code.
fn exit_code(p: &mut PtySession) -> i32 {
    for _ in 0..100 {
        match p.process.status() {
            Some(WaitStatus::Exited(_, code)) => return code,
            Some(WaitStatus::Signaled(_, sig, _)) => panic!("killed by {sig:?}"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    panic!("nanna did not exit");
}

#[test]
fn approving_a_write_writes_the_file() {
    let env = Env::new(write_script());
    let mut p = spawn_chat(&env);
    p.exp_string(&prompt()).expect("prompt");
    p.send_line("create out.txt").expect("send");
    p.exp_string("[y]es / [n]o / [a]lways:")
        .expect("approval prompt");
    p.send_line("y").expect("answer");
    p.exp_string("All done.").expect("final answer");
    p.exp_string(&prompt()).expect("back at the prompt");
    assert_eq!(
        std::fs::read_to_string(env.path("out.txt")).expect("file written"),
        "from the model\n"
    );
    p.send_line("/exit").expect("exit");
    p.exp_eof().expect("exits");
    assert_eq!(exit_code(&mut p), 0);
}

#[test]
fn declining_a_write_leaves_the_file_and_tells_the_model() {
    let env = Env::new(write_script());
    let mut p = spawn_chat(&env);
    p.exp_string(&prompt()).expect("prompt");
    p.send_line("create out.txt").expect("send");
    p.exp_string("[y]es / [n]o / [a]lways:")
        .expect("approval prompt");
    p.send_line("n").expect("answer");
    p.exp_string("All done.").expect("final answer");
    p.exp_string(&prompt()).expect("back at the prompt");
    assert!(
        !env.path("out.txt").exists(),
        "declined write must not happen"
    );
    let requests = env.chat_requests();
    assert_eq!(requests.len(), 2);
    let tool_msg = requests[1]
        .messages()
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("the model receives a tool result")
        .clone();
    let text = tool_msg["content"].as_str().unwrap_or("").to_lowercase();
    assert!(
        text.contains("declin") || text.contains("denied"),
        "{tool_msg}"
    );
    p.send_line("/exit").expect("exit");
    p.exp_eof().expect("exits");
}

#[test]
fn ctrl_c_cancels_a_slow_turn_and_a_second_ctrl_c_exits() {
    let env = Env::new(
        Script::new()
            .turn(Turn::text("too late").with_fault(Fault::Delay(Duration::from_secs(60))))
            .turn(Turn::text("Second answer.")),
    );
    let mut p = spawn_chat(&env);
    p.exp_string(&prompt()).expect("prompt");
    p.send_line("take your time").expect("send");
    assert!(env.wait_for_chat_requests(1, Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(100));
    p.send_control('c').expect("ctrl-c");
    p.exp_string("cancelled").expect("turn cancelled");
    p.exp_string(&prompt()).expect("back at the prompt");

    // The session goes on.
    p.send_line("again").expect("send");
    p.exp_string("Second answer.").expect("next turn works");
    p.exp_string(&prompt()).expect("prompt");

    // Ctrl-C while idle leaves.
    p.send_control('c').expect("ctrl-c");
    p.exp_eof().expect("exits");
    assert_eq!(exit_code(&mut p), 0);
}

#[test]
fn slash_commands_help_and_clear() {
    let env = Env::new(
        Script::new()
            .turn(Turn::text("One."))
            .turn(Turn::text("Two.")),
    );
    let mut p = spawn_chat(&env);
    p.exp_string(&prompt()).expect("prompt");
    p.send_line("/help").expect("send");
    p.exp_string("/model NAME").expect("help text");
    p.send_line("first").expect("send");
    p.exp_string("One.").expect("answer");
    p.exp_string(&prompt()).expect("prompt");
    p.send_line("/clear").expect("send");
    p.exp_string("new session").expect("cleared");
    p.send_line("second").expect("send");
    p.exp_string("Two.").expect("answer");
    p.exp_string(&prompt()).expect("prompt");
    // After /clear the model no longer sees the first exchange.
    let requests = env.chat_requests();
    let texts = message_texts(&requests[1]);
    assert!(!texts.iter().any(|t| t == "first"), "{texts:?}");
    p.send_control('d').expect("ctrl-d");
    p.exp_eof().expect("exits");
}

#[test]
fn ctrl_c_at_the_approval_prompt_cancels_and_the_prompt_keeps_working() {
    let env = Env::new(
        Script::new()
            .turn(Turn::tool_call(
                "write_file",
                json!({"path": "out.txt", "content": "x"}),
            ))
            .turn(Turn::text("Second answer.")),
    );
    let mut p = spawn_chat(&env);
    p.exp_string(&prompt()).expect("prompt");
    p.send_line("create out.txt").expect("send");
    p.exp_string("[y]es / [n]o / [a]lways:")
        .expect("approval prompt");
    p.send_control('c').expect("ctrl-c");
    p.exp_string("cancelled").expect("turn cancelled");
    p.exp_string(&prompt()).expect("back at the prompt");
    // The next line reaches the line editor, not a leftover approval reader.
    p.send_line("go on").expect("send");
    p.exp_string("Second answer.").expect("next turn works");
    p.exp_string(&prompt()).expect("prompt");
    assert!(!env.path("out.txt").exists());
    let last = env.chat_requests().pop().expect("requests");
    let texts = message_texts(&last);
    assert_eq!(texts.last().map(String::as_str), Some("go on"), "{texts:?}");
    p.send_line("/exit").expect("exit");
    p.exp_eof().expect("exits");
}

/// `/compact keep X` summarizes the conversation before the latest request, asking the
/// model to keep X, and says so; the session goes on with the summary.
#[test]
fn compact_summarizes_on_request() {
    let env = Env::new(
        Script::new()
            .turn(Turn::text(format!(
                "First answer. {}",
                "details ".repeat(60)
            )))
            .turn(Turn::text("Second answer."))
            .turn(Turn::text("SUMMARY: the user asked two questions."))
            .turn(Turn::text("Third answer.")),
    );
    let mut p = spawn_chat(&env);
    p.exp_string(&prompt()).expect("prompt");
    p.send_line(&format!("first question {}", "words ".repeat(60)))
        .expect("send");
    p.exp_string("First answer.").expect("answer");
    p.exp_string(&prompt()).expect("prompt");
    p.send_line("second question").expect("send");
    p.exp_string("Second answer.").expect("answer");
    p.exp_string(&prompt()).expect("prompt");
    p.send_line("/compact keep the test names").expect("send");
    p.exp_string("context compacted (older turns summarized")
        .expect("compaction reported");
    p.exp_string(&prompt()).expect("prompt");
    p.send_line("third question").expect("send");
    p.exp_string("Third answer.").expect("answer");
    p.exp_string(&prompt()).expect("prompt");
    let requests = env.chat_requests();
    assert_eq!(requests.len(), 4);
    let summary_prompt = requests[2]
        .messages()
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    assert!(
        summary_prompt.contains("keep in particular: keep the test names"),
        "{summary_prompt}"
    );
    let after = serde_json::to_string(requests[3].messages()).unwrap();
    assert!(after.contains("SUMMARY: the user asked two questions."));
    assert!(!after.contains("First answer."), "{after}");
    assert!(after.contains("second question"));
    p.send_line("/exit").expect("exit");
    p.exp_eof().expect("exits");
}

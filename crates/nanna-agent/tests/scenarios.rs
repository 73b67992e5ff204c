//! Scenario tests: the agent against the scripted Ollama server, through the real Ollama
//! provider and the built-in tools.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nanna_agent::{
    AgentEvent, ApprovalDecision, CancellationToken, FixedApprover, RunOutcome, SessionMeta,
    SessionStore,
};
use nanna_model::MessageRole;
use nanna_testkit::{Fault, Script, Turn};
use serde_json::json;

const AUTO: FixedApprover = FixedApprover(ApprovalDecision::Yes);

#[tokio::test]
async fn multi_step_task_reads_edits_runs_and_answers() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("greet.sh"), "echo hello wrld\n").unwrap();
    std::fs::write(
        ws.path().join("AGENTS.md"),
        "Always run greet.sh after edits.\n",
    )
    .unwrap();
    let server = server(
        model(),
        Script::new()
            .turn(Turn::tool_call("read_file", json!({"path": "greet.sh"})))
            .turn(Turn::tool_call(
                "edit_file",
                json!({"path": "greet.sh", "old_text": "wrld", "new_text": "world"}),
            ))
            .turn(Turn::tool_call("shell", json!({"command": "sh greet.sh"})))
            .turn(Turn::chunks(["Fixed the ", "typo; it prints hello world."])),
    )
    .await;
    let mut agent = agent(&server, config(ws.path())).await;
    let (outcome, events) = run(&mut agent, "fix the typo in greet.sh", &AUTO).await;

    assert_eq!(
        outcome,
        RunOutcome::Completed {
            turns: 4,
            final_text: "Fixed the typo; it prints hello world.".into()
        }
    );
    assert_eq!(
        std::fs::read_to_string(ws.path().join("greet.sh")).unwrap(),
        "echo hello world\n"
    );
    let results = tool_results(&events);
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(results.iter().all(|(_, ok, _)| *ok), "{results:?}");
    assert!(results[0].2.contains("echo hello wrld"));
    assert!(results[2].2.contains("hello world"), "{}", results[2].2);
    assert!(matches!(
        events.first(),
        Some(AgentEvent::SessionStarted { resumed: false, .. })
    ));
    assert!(matches!(
        events.last(),
        Some(AgentEvent::Done { turns: 4, .. })
    ));
    let deltas: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, AgentEvent::TextDelta { .. }))
        .collect();
    assert_eq!(deltas.len(), 2);
    // Each model request is preceded by WaitingForModel.
    let waits = events
        .iter()
        .filter(|e| matches!(e, AgentEvent::WaitingForModel))
        .count();
    assert_eq!(waits, 4);

    let requests = server.chat_requests();
    assert_eq!(requests.len(), 4);
    assert_append_only(&requests, &[]);
    for r in &requests {
        assert_eq!(r.num_ctx(), Some(110_000));
        assert_eq!(r.tools().len(), 9);
    }
    let first = requests[0].messages();
    let system = first[0]["content"].as_str().unwrap();
    assert!(system.contains("Always run greet.sh after edits."));
    assert!(system.contains(&ws.path().canonicalize().unwrap().display().to_string()));
    // Tool results go back with the call id and tool name.
    let second = requests[1].messages();
    let result = second.last().unwrap();
    assert_eq!(result["role"], "tool");
    assert_eq!(result["tool_name"], "read_file");
    assert_eq!(agent.history().len(), 1 + 1 + 3 * 2 + 1);
    server.shutdown().await;
}

#[tokio::test]
async fn context_window_is_capped_at_the_models() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model().with_context_length(8192),
        Script::new().turn(Turn::text("hi")),
    )
    .await;
    let mut agent = agent(&server, config(ws.path())).await;
    assert_eq!(agent.context_window(), 8192);
    run(&mut agent, "hello", &AUTO).await;
    assert_eq!(server.chat_requests()[0].num_ctx(), Some(8192));
}

#[tokio::test]
async fn invalid_arguments_unknown_tools_and_path_escapes_go_back_to_the_model() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model(),
        Script::new()
            .turn(Turn::tool_call("read_file", json!({"file": 3})))
            .turn(Turn::tool_call("frobnicate", json!({"x": 1})))
            .turn(Turn::tool_call(
                "read_file",
                json!({"path": "../../../etc/passwd"}),
            ))
            .turn(Turn::text("I could not do it.")),
    )
    .await;
    let mut agent = agent(&server, config(ws.path())).await;
    let (outcome, events) = run(&mut agent, "go", &AUTO).await;
    assert!(matches!(outcome, RunOutcome::Completed { turns: 4, .. }));
    let results = tool_results(&events);
    assert!(results.iter().all(|(_, ok, _)| !ok));
    assert!(
        results[0].2.contains("invalid arguments"),
        "{}",
        results[0].2
    );
    assert!(
        results[1].2.contains("unknown tool `frobnicate`"),
        "{}",
        results[1].2
    );
    assert!(
        results[2].2.contains("outside the workspace"),
        "{}",
        results[2].2
    );
    let requests = server.chat_requests();
    assert!(last_content(requests[1].messages()).contains("invalid arguments"));
    assert!(last_content(requests[2].messages()).contains("unknown tool"));
    assert!(last_content(requests[3].messages()).contains("outside the workspace"));
}

#[tokio::test]
async fn shell_timeout_is_reported_to_the_model() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model(),
        Script::new()
            .turn(Turn::tool_call(
                "shell",
                json!({"command": "echo started step 1; sleep 20", "timeout_secs": 1}),
            ))
            .turn(Turn::text("It hung.")),
    )
    .await;
    let mut agent = agent(&server, config(ws.path())).await;
    let started = Instant::now();
    let (_, events) = run(&mut agent, "run it", &AUTO).await;
    assert!(started.elapsed() < Duration::from_secs(15));
    let results = tool_results(&events);
    assert!(!results[0].1);
    assert!(results[0].2.contains("timed out"), "{}", results[0].2);
    // The next request's tool message carries the output printed before the kill.
    let requests = server.chat_requests();
    assert_eq!(requests.len(), 2);
    let tool_message = requests[1].messages().last().cloned().unwrap_or_default();
    assert_eq!(tool_message["role"], "tool");
    let content = tool_message["content"].as_str().unwrap_or_default();
    assert!(content.contains("timed out after 1s"), "{content}");
    assert!(content.contains("raise timeout_secs"), "{content}");
    assert!(
        content.ends_with("\nstarted step 1\n[killed after 1s (timeout)]"),
        "{content}"
    );
}

#[tokio::test]
async fn cancellation_during_a_tool_answers_the_call_and_keeps_history_valid() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model(),
        Script::new()
            .turn(
                Turn::tool_call("shell", json!({"command": "sleep 30"}))
                    .with_tool_call("read_file", json!({"path": "x"})),
            )
            .turn(Turn::text("ok, stopped")),
    )
    .await;
    let mut agent = agent(&server, config(ws.path())).await;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let (outcome, events) = run_with_cancel(&mut agent, "run the long thing", &AUTO, cancel).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome, RunOutcome::Cancelled { turns: 1 });
    let results = tool_results(&events);
    assert_eq!(results.len(), 2, "every call gets a result");
    assert!(
        results
            .iter()
            .all(|(_, ok, out)| !ok && out.contains("cancelled by the user"))
    );
    assert!(matches!(events.last(), Some(AgentEvent::Done { .. })));

    // The next run's request is valid: each call answered, in order.
    let (outcome, _) = run(&mut agent, "never mind", &AUTO).await;
    assert!(matches!(outcome, RunOutcome::Completed { .. }));
    let requests = server.chat_requests();
    let msgs = requests[1].messages();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "tool", "user"]
    );
    assert_append_only(&requests, &[]);
}

#[tokio::test]
async fn cancellation_while_streaming_stops_promptly() {
    let ws = tempfile::tempdir().unwrap();
    let chunks: Vec<String> = (0..50).map(|i| format!("word{i} ")).collect();
    let server = server(
        model(),
        Script::new().turn(Turn::chunks(chunks).with_chunk_delay(Duration::from_millis(100))),
    )
    .await;
    let mut agent = agent(&server, config(ws.path())).await;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(450)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let (outcome, events) = run_with_cancel(&mut agent, "talk", &AUTO, cancel).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome, RunOutcome::Cancelled { turns: 1 });
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::TextDelta { .. }))
    );
    let last = agent.history().last().unwrap();
    assert_eq!(last.role, MessageRole::Assistant);
    assert!(last.content.contains("word0"));
    assert!(last.content.ends_with("[interrupted by the user]"));
}

#[tokio::test]
async fn approvals_decline_and_always() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model(),
        Script::new()
            .turn(Turn::tool_call(
                "write_file",
                json!({"path": "a.txt", "content": "A"}),
            ))
            .turn(Turn::text("Understood.")),
    )
    .await;
    let mut cfg = config(ws.path());
    cfg.approval = nanna_agent::ApprovalPolicy::Ask;
    let mut agent = agent(&server, cfg.clone()).await;
    let no = RecordingApprover::answering(ApprovalDecision::No);
    let (_, events) = run(&mut agent, "write a.txt", &no).await;
    assert!(!ws.path().join("a.txt").exists());
    let asked = no.asked();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].tool, "write_file");
    assert_eq!(asked[0].effect, nanna_agent::Effect::Write);
    assert!(
        asked[0].description.contains("a.txt"),
        "{}",
        asked[0].description
    );
    let results = tool_results(&events);
    assert!(results[0].2.contains("the user declined"));
    assert!(last_content(server.chat_requests()[1].messages()).contains("the user declined"));

    // "Always" is asked once per tool for the rest of the session; reads are never asked.
    let server = common::server(
        model(),
        Script::new()
            .turn(Turn::tool_call(
                "write_file",
                json!({"path": "b.txt", "content": "B"}),
            ))
            .turn(
                Turn::tool_call("write_file", json!({"path": "c.txt", "content": "C"}))
                    .with_tool_call("read_file", json!({"path": "b.txt"})),
            )
            .turn(Turn::text("done")),
    )
    .await;
    let mut agent = common::agent(&server, cfg).await;
    let always = RecordingApprover::answering(ApprovalDecision::Always);
    let (_, events) = run(&mut agent, "write both", &always).await;
    assert_eq!(always.asked().len(), 1);
    assert!(ws.path().join("b.txt").exists() && ws.path().join("c.txt").exists());
    assert!(tool_results(&events).iter().all(|(_, ok, _)| *ok));
}

#[tokio::test]
async fn read_only_sandbox_refuses_writes_and_runs_commands_that_cannot_write() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model(),
        Script::new()
            .turn(
                Turn::tool_call("write_file", json!({"path": "a.txt", "content": "A"}))
                    .with_tool_call("shell", json!({"command": "touch b.txt"}))
                    .with_tool_call("list_dir", json!({"path": "."})),
            )
            .turn(Turn::text("I can't write here.")),
    )
    .await;
    let mut cfg = config(ws.path());
    cfg.sandbox = nanna_sandbox::Policy::new(nanna_sandbox::SandboxMode::ReadOnly);
    cfg.approval = nanna_agent::ApprovalPolicy::Ask;
    let mut agent = agent(&server, cfg).await;
    let enforced = agent.sandbox().check().is_ok();
    let approver = RecordingApprover::answering(ApprovalDecision::Yes);
    let (_, events) = run(&mut agent, "write", &approver).await;
    // A read-only command without network cannot change anything: nobody is asked.
    assert!(approver.asked().is_empty());
    assert!(!ws.path().join("a.txt").exists());
    assert!(!ws.path().join("b.txt").exists());
    let results = tool_results(&events);
    assert!(results[0].2.contains("read-only") && !results[0].1);
    if enforced {
        // It ran, in the read-only sandbox, and the kernel refused the write.
        assert!(
            results[1].2.contains("Read-only file system"),
            "{}",
            results[1].2
        );
        assert!(results[1].2.contains("[exit code 1]"), "{}", results[1].2);
    } else {
        assert!(results[1].2.contains("refused") && !results[1].1);
    }
    assert!(results[2].1, "reads still run: {}", results[2].2);
    // Only what may run is offered: no write tools in a read-only session.
    let offered: Vec<String> = server.chat_requests()[0]
        .tools()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !offered
            .iter()
            .any(|n| n == "write_file" || n == "edit_file"),
        "{offered:?}"
    );
    assert_eq!(
        offered.iter().any(|n| n == "shell"),
        enforced,
        "{offered:?}"
    );
    let system = server.chat_requests()[0].messages()[0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        system.contains("Sandbox: commands cannot write files; no network."),
        enforced,
        "{system}"
    );
}

#[tokio::test]
async fn text_tool_calls_work_for_models_without_native_tools() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("notes.txt"), "remember the milk\n").unwrap();
    let server = server(
        model().with_capabilities(["completion"]),
        Script::new()
            .turn(Turn::text(
                "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"notes.txt\"}}\n</tool_call>",
            ))
            .turn(Turn::text(
                "```json\n{\"name\": \"shell\", \"parameters\": {\"command\": \"echo hi\"}}\n```",
            ))
            .turn(Turn::text("{\"name\": \"list_dir\", \"arguments\": {\"path\": \".\"}}"))
            .turn(Turn::text("The notes say: remember the milk.")),
    )
    .await;
    let mut agent = agent(&server, config(ws.path())).await;
    assert!(!agent.native_tools());
    let (outcome, events) = run(&mut agent, "what do the notes say?", &AUTO).await;
    assert!(
        matches!(outcome, RunOutcome::Completed { turns: 4, .. }),
        "{outcome:?}"
    );
    let results = tool_results(&events);
    let names: Vec<&str> = results.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, ["read_file", "shell", "list_dir"]);
    assert!(results.iter().all(|r| r.1), "{results:?}");
    let requests = server.chat_requests();
    assert!(requests.iter().all(|r| r.tools().is_empty()));
    let system = requests[0].messages()[0]["content"].as_str().unwrap();
    assert!(system.contains("<tool_call>") && system.contains("- read_file("));
    let msgs = requests[1].messages();
    let last = msgs.last().unwrap();
    assert_eq!(last["role"], "user");
    let content = last["content"].as_str().unwrap();
    assert!(content.starts_with("<tool_result name=\"read_file\">"));
    assert!(content.contains("remember the milk"));
    assert_append_only(&requests, &[]);
}

#[tokio::test]
async fn text_tool_calls_from_a_native_model_are_executed_as_native_calls() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("n.txt"), "xyz\n").unwrap();
    let server = server(
        model(),
        Script::new()
            .turn(Turn::text(
                "Reading.\n<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\": \"n.txt\"}}</tool_call>",
            ))
            .turn(Turn::text("It says xyz.")),
    )
    .await;
    let mut agent = agent(&server, config(ws.path())).await;
    let (_, events) = run(&mut agent, "read n.txt", &AUTO).await;
    assert!(tool_results(&events)[0].1);
    let msgs = server.chat_requests()[1].messages().to_vec();
    let assistant = &msgs[msgs.len() - 2];
    assert_eq!(assistant["content"], "Reading.");
    assert_eq!(assistant["tool_calls"][0]["function"]["name"], "read_file");
    assert_eq!(msgs.last().unwrap()["role"], "tool");
}

#[tokio::test]
async fn max_turns_stops_cleanly_with_a_warning() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model(),
        Script::new().turn(Turn::tool_call("list_dir", json!({"path": "."})).forever()),
    )
    .await;
    let mut cfg = config(ws.path());
    cfg.max_turns = Some(3);
    let mut agent = agent(&server, cfg).await;
    let (outcome, events) = run(&mut agent, "loop", &AUTO).await;
    assert_eq!(outcome, RunOutcome::MaxTurns { turns: 3 });
    assert!(warnings(&events).iter().any(|w| w.contains("max_turns")));
    assert_eq!(server.chat_requests().len(), 3);
    assert_eq!(agent.history().last().unwrap().role, MessageRole::Tool);
}

#[tokio::test]
async fn truncated_reply_warns() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model(),
        Script::new().turn(Turn::text("half an ans").with_fault(Fault::Length)),
    )
    .await;
    let mut agent = agent(&server, config(ws.path())).await;
    let (_, events) = run(&mut agent, "q", &AUTO).await;
    assert!(
        warnings(&events)
            .iter()
            .any(|w| w.contains("reply was cut"))
    );
}

/// Both servers say `length` for the output limit and for a full window; the server's counts
/// tell them apart, so the warning names the one that applied and its fix.
#[tokio::test]
async fn a_cut_reply_names_the_limit_that_cut_it() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model(),
        Script::new()
            .turn(
                Turn::text("half an ans")
                    .with_fault(Fault::Length)
                    .with_prompt_tokens(100)
                    .with_output_tokens(16),
            )
            .turn(
                Turn::text("half an ans")
                    .with_fault(Fault::Length)
                    .with_prompt_tokens(4000)
                    .with_output_tokens(96),
            ),
    )
    .await;
    let mut cfg = config(ws.path());
    cfg.options.max_tokens = Some(16);
    cfg.options.context_window = Some(4096);
    let mut first = agent(&server, cfg.clone()).await;
    let (_, events) = run(&mut first, "q", &AUTO).await;
    let cut = warnings(&events);
    assert!(
        cut.iter()
            .any(|w| w.contains("output limit (max_tokens = 16)")),
        "{cut:?}"
    );
    cfg.options.max_tokens = Some(512);
    let mut second = agent(&server, cfg).await;
    let (_, events) = run(&mut second, "q", &AUTO).await;
    let cut = warnings(&events);
    assert!(
        cut.iter()
            .any(|w| w.contains("context window (4096 tokens) is full")),
        "{cut:?}"
    );
}

#[tokio::test]
async fn server_error_mid_stream_is_an_error_not_a_panic() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model(),
        Script::new()
            .turn(
                Turn::text("partial").with_fault(Fault::ErrorLineMidStream("out of memory".into())),
            )
            .turn(Turn::text("recovered")),
    )
    .await;
    let mut agent = agent(&server, config(ws.path())).await;
    let mut events = Vec::new();
    let err = agent
        .run("q", &AUTO, CancellationToken::new(), &mut |e| {
            events.push(e)
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("out of memory"), "{err}");
    assert!(matches!(events.last(), Some(AgentEvent::Error { .. })));
    // The agent is still usable.
    let (outcome, _) = run(&mut agent, "again", &AUTO).await;
    assert!(matches!(outcome, RunOutcome::Completed { .. }));
}

#[tokio::test]
async fn resume_after_a_crash_repairs_and_continues() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("f.txt"), "data\n").unwrap();
    let store = SessionStore::new(ws.path().join("sessions"));
    let server1 = server(
        model(),
        Script::new()
            .turn(Turn::tool_call("read_file", json!({"path": "f.txt"})))
            .turn(Turn::text("It says data.")),
    )
    .await;
    let session = store
        .create(SessionMeta {
            model: MODEL.into(),
            workspace: ws.path().into(),
        })
        .unwrap();
    let id = session.id().to_owned();
    let path = session.path().unwrap().to_owned();
    let mut agent = agent_with_session(&server1, config(ws.path()), session).await;
    run(&mut agent, "what is in f.txt?", &AUTO).await;
    let history_before = agent.history().to_vec();
    drop(agent);

    // Simulate a crash mid-turn: an assistant message with a tool call and no result, then
    // half of a record.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    use std::io::Write as _;
    writeln!(
        file,
        "{}",
        json!({"type": "message", "message": {"role": "assistant", "content": "",
            "tool_calls": [{"id": "c9", "name": "shell", "arguments": {"command": "ls"}}]}})
    )
    .unwrap();
    write!(file, "{{\"type\":\"message\",\"message\":{{\"role\":\"to").unwrap();
    drop(file);

    let session = store.open("last").unwrap();
    assert_eq!(session.id(), id);
    assert_eq!(session.warnings().len(), 2, "{:?}", session.warnings());
    let server2 = server(model(), Script::new().turn(Turn::text("Continuing."))).await;
    let mut agent = agent_with_session(&server2, config(ws.path()), session).await;
    let (outcome, events) = run(&mut agent, "go on", &AUTO).await;
    assert!(matches!(outcome, RunOutcome::Completed { .. }));
    assert!(matches!(
        events[0],
        AgentEvent::SessionStarted { resumed: true, .. }
    ));
    assert_eq!(warnings(&events).len(), 2);
    let msgs = server2.chat_requests()[0].messages().to_vec();
    // Same context as before the crash, plus the repaired call and the new input.
    assert_eq!(msgs.len(), history_before.len() + 3);
    for (sent, had) in msgs.iter().zip(&history_before) {
        assert_eq!(sent["content"].as_str().unwrap(), had.content);
    }
    assert_eq!(msgs[msgs.len() - 2]["role"], "tool");
    assert!(
        msgs[msgs.len() - 2]["content"]
            .as_str()
            .unwrap()
            .contains("interrupted: nanna exited")
    );
    drop(agent);
    let again = store.open(&id).unwrap();
    assert!(again.warnings().is_empty(), "{:?}", again.warnings());
    assert_eq!(again.messages().len(), history_before.len() - 1 + 4);
}

#[tokio::test]
async fn tools_disabled_sends_no_tools() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(model(), Script::new().turn(Turn::text("plain"))).await;
    let mut cfg = config(ws.path());
    cfg.tools_enabled = false;
    let mut agent = agent(&server, cfg).await;
    run(&mut agent, "hi", &AUTO).await;
    let r = &server.chat_requests()[0];
    assert!(r.tools().is_empty());
    assert!(
        r.messages()[0]["content"]
            .as_str()
            .unwrap()
            .contains("Tools are off")
    );
}

#[tokio::test]
async fn run_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let ws = tempfile::tempdir().unwrap();
    let server = server(model(), Script::new().turn(Turn::text("x"))).await;
    let mut agent = agent(&server, config(ws.path())).await;
    let mut sink = |_e: AgentEvent| {};
    let fut = agent.run("x", &AUTO, CancellationToken::new(), &mut sink);
    assert_send(&fut);
    fut.await.unwrap();
}

//! The compaction ladder against the scripted server: each step, a summary that does not
//! shrink, a message larger than the window, `/compact`, and resuming with the server's
//! counts.
//!
//! The scripted server reports every prompt's size (`prompt_eval_count`) as the bytes of its
//! messages and tools JSON divided by 4 (`nanna-testkit`, `wire::estimate_prompt_tokens`), a
//! tokenizer unlike the agent's heuristic. Each test checks, with that same count, that no
//! request the agent sent exceeded the window minus the reply's share.

mod common;

use common::*;
use nanna_agent::{
    AgentError, AgentEvent, ApprovalDecision, CancellationToken, CompactionStep, FixedApprover,
    RunOutcome, SessionMeta, SessionStore,
};
use nanna_testkit::{Fault, RecordedRequest, Script, Turn};
use serde_json::{Value, json};

const AUTO: FixedApprover = FixedApprover(ApprovalDecision::Yes);
const WINDOW: u32 = 4096;
const REPLY: u32 = 256;
const SUMMARY_HEADER: &str = "[Summary of the earlier conversation";

/// The scripted server's own count of a request (its `prompt_eval_count`).
fn server_count(request: &RecordedRequest) -> u64 {
    let len = |v: Option<&Value>| v.map_or(0, |v| serde_json::to_string(v).unwrap().len() as u64);
    (len(request.body.get("messages")) + len(request.body.get("tools"))).div_ceil(4)
}

/// Every request fits the window minus the reply's share, by the server's count, and asks
/// for that window.
fn assert_all_fit(requests: &[RecordedRequest]) {
    for (i, r) in requests.iter().enumerate() {
        let count = server_count(r);
        assert!(
            count <= u64::from(WINDOW - REPLY),
            "request {i} is {count} tokens, over {}",
            WINDOW - REPLY
        );
        assert_eq!(r.num_ctx(), Some(u64::from(WINDOW)));
    }
}

/// A summary request: the conversation's own prefix plus the instructions (so the server's
/// prompt cache serves the prefix), or a transcript when the prefix is too large.
fn is_summary_request(r: &RecordedRequest) -> bool {
    last_content(r.messages()).starts_with("[Context compaction]") || is_transcript_request(r)
}

fn is_transcript_request(r: &RecordedRequest) -> bool {
    r.tools().is_empty()
        && r.messages()[0]["content"]
            .as_str()
            .is_some_and(|s| s.starts_with("You condense conversations"))
}

fn compactions(events: &[AgentEvent]) -> Vec<(CompactionStep, u32, u32, usize)> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::ContextCompacted {
                step,
                tokens_before,
                tokens_after,
                messages_compacted,
                ..
            } => Some((*step, *tokens_before, *tokens_after, *messages_compacted)),
            _ => None,
        })
        .collect()
}

fn small_config(ws: &std::path::Path) -> nanna_agent::AgentConfig {
    let mut c = config(ws);
    c.options.max_tokens = Some(REPLY);
    c
}

/// `n` lines of distinct text, about 45 bytes each.
fn text(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{tag} line {i}: lorem ipsum dolor sit amet\n"))
        .collect()
}

fn all_text(r: &RecordedRequest) -> String {
    serde_json::to_string(r.messages()).unwrap()
}

#[tokio::test]
async fn old_tool_outputs_are_elided_first_and_the_latest_stay() {
    let ws = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c", "d"] {
        std::fs::write(ws.path().join(format!("{name}.txt")), text(name, 70)).unwrap();
    }
    let mut script = Script::new();
    for name in ["a", "b", "c", "d"] {
        script = script.turn(Turn::tool_call(
            "read_file",
            json!({"path": format!("{name}.txt")}),
        ));
    }
    let server = server(
        model().with_context_length(WINDOW),
        script.turn(Turn::text("Four files of lorem ipsum.")),
    )
    .await;
    let mut agent = agent(&server, small_config(ws.path())).await;
    let (outcome, events) = run(&mut agent, "read a, b, c and d", &AUTO).await;
    assert!(
        matches!(outcome, RunOutcome::Completed { turns: 5, .. }),
        "{outcome:?}"
    );
    let compacted = compactions(&events);
    assert_eq!(compacted.len(), 1, "{events:#?}");
    let (step, before, after, n) = compacted[0];
    assert_eq!(step, CompactionStep::ElideToolOutputs);
    assert!(after < before && n >= 1, "{compacted:?}");

    let requests = server.chat_requests();
    assert_eq!(requests.len(), 5, "no summary request");
    assert!(!requests.iter().any(is_summary_request));
    assert_all_fit(&requests);
    let last = all_text(&requests[4]);
    assert!(last.contains("[output elided to save context:"), "{last}");
    assert!(last.contains(r#"read_file {\"path\":\"a.txt\"}"#), "{last}");
    assert!(!last.contains("a line 5:"), "the oldest output is gone");
    assert!(last.contains("d line 69:"), "the latest output stays");
    // Request 3 is the first after the compaction (the results of c stayed, d came later):
    // the server counts about what the agent announced.
    let counted = server_count(&requests[3]) as f64;
    assert!(
        (counted - f64::from(after)).abs() / counted < 0.05,
        "{counted} vs {after}"
    );
    assert!(all_text(&requests[3]).contains("c line 69:"));
    assert_append_only(&requests, &[3]);
}

/// A conversation without tool outputs: the older turns are summarized, and a second
/// summary replaces the first one rather than wrapping it. Every reply is `R<request index>`,
/// so the summaries are known by the requests that asked for them.
#[tokio::test]
async fn older_turns_are_summarized_flat_and_every_prompt_fits() {
    let ws = tempfile::tempdir().unwrap();
    let mut script = Script::new();
    for k in 0..40 {
        script = script.turn(Turn::text(format!("R{k}")));
    }
    let server = server(model().with_context_length(WINDOW), script).await;
    let mut agent = agent(&server, small_config(ws.path())).await;
    let mut all = Vec::new();
    for i in 0..12 {
        let (outcome, events) = run(
            &mut agent,
            &format!("note {i}:\n{}", text(&format!("n{i}"), 40)),
            &AUTO,
        )
        .await;
        assert!(
            matches!(outcome, RunOutcome::Completed { .. }),
            "{outcome:?}"
        );
        all.extend(events);
    }
    let compacted = compactions(&all);
    let requests = server.chat_requests();
    let summaries: Vec<usize> = (0..requests.len())
        .filter(|&k| is_summary_request(&requests[k]))
        .collect();
    assert!(summaries.len() >= 2, "{compacted:?}");
    assert_eq!(compacted.len(), summaries.len(), "{compacted:?}");
    for (step, before, after, n) in &compacted {
        assert_eq!(*step, CompactionStep::Summarize);
        assert!(after < before && *n >= 2, "{compacted:?}");
    }
    // Compactions are rare: several turns between two of them.
    assert!(summaries[1] - summaries[0] >= 3, "{summaries:?}");
    assert_all_fit(&requests);

    // The summary's output limit is derived from the room it has, within the reply limit.
    for &k in &summaries {
        let limit = requests[k].options().unwrap()["num_predict"]
            .as_u64()
            .unwrap();
        assert!((16..=u64::from(REPLY)).contains(&limit), "{limit}");
    }
    // A summary request is the prompt the server last saw, cut before the kept turns, plus
    // the instructions: a prefix of the previous request (the server's cache serves it).
    for &k in &summaries {
        let (previous, summary) = (requests[k - 1].messages(), requests[k].messages());
        let prefix = &summary[..summary.len() - 1];
        assert!(prefix.len() < previous.len() && previous[..prefix.len()] == *prefix);
        assert_eq!(requests[k].tools(), requests[k - 1].tools());
    }
    // The second summary request reads the first summary, which it then replaces.
    let first_summary = format!("R{}", summaries[0]);
    assert!(all_text(&requests[summaries[1]]).contains(&first_summary));
    // The history holds one summary, the latest.
    let last_summary = format!("R{}", summaries.last().unwrap());
    let recap = &agent.history()[1];
    assert!(recap.content.starts_with(SUMMARY_HEADER), "{recap:?}");
    assert_eq!(recap.content.matches(SUMMARY_HEADER).count(), 1);
    assert!(
        recap.content.contains(&format!("\n{last_summary}")),
        "{recap:?}"
    );
    let history = serde_json::to_string(agent.history()).unwrap();
    assert_eq!(history.matches(SUMMARY_HEADER).count(), 1, "{history}");
    assert!(all_text(requests.last().unwrap()).contains("note 11:"));
}

/// A summary longer than what it would replace is rejected: the oldest turns are dropped
/// instead, with a notice, and the long text never reaches the conversation.
#[tokio::test]
async fn a_summary_that_does_not_shrink_is_rejected_and_the_oldest_turns_dropped() {
    let ws = tempfile::tempdir().unwrap();
    let mut script = Script::new();
    for kind in PLAN_REJECT.chars() {
        script = script.turn(match kind {
            'S' => Turn::text(format!("VERBOSE-SUMMARY {}", "blah ".repeat(2000))),
            _ => Turn::text("Noted."),
        });
    }
    let server = server(model().with_context_length(WINDOW), script).await;
    let mut agent = agent(&server, small_config(ws.path())).await;
    let mut all = Vec::new();
    for i in 0..TURNS_REJECT {
        let (_, events) = run(
            &mut agent,
            &format!("note {i}:\n{}", text(&format!("n{i}"), 40)),
            &AUTO,
        )
        .await;
        all.extend(events);
    }
    let requests = server.chat_requests();
    let kinds: String = requests
        .iter()
        .map(|r| if is_summary_request(r) { 'S' } else { 'r' })
        .collect();
    assert_eq!(kinds, PLAN_REJECT);
    assert_all_fit(&requests);
    let compacted = compactions(&all);
    assert!(!compacted.is_empty());
    for (step, before, after, _) in &compacted {
        assert_eq!(*step, CompactionStep::DropOldest, "{compacted:?}");
        assert!(after < before);
    }
    let warned = warnings(&all);
    assert!(
        warned.iter().any(|w| w.contains("is not shorter than")),
        "{warned:?}"
    );
    for r in requests.iter().filter(|r| !is_summary_request(r)) {
        assert!(!all_text(r).contains("VERBOSE-SUMMARY"));
    }
    let after_drop = all_text(requests.last().unwrap());
    assert!(after_drop.contains("[Earlier messages were removed to fit the context window"));
    assert!(!after_drop.contains("note 0:"), "the oldest turn is gone");
}

const TURNS_REJECT: usize = 7;
const PLAN_REJECT: &str = "rrrrrSrr";

#[tokio::test]
async fn a_message_larger_than_the_window_is_refused_before_anything_is_sent() {
    let ws = tempfile::tempdir().unwrap();
    let store = SessionStore::new(ws.path().join("sessions"));
    let session = store
        .create(SessionMeta {
            model: MODEL.into(),
            workspace: ws.path().into(),
        })
        .unwrap();
    let server = server(
        model().with_context_length(WINDOW),
        Script::new().turn(Turn::text("Fine.")),
    )
    .await;
    let mut agent = agent_with_session(&server, small_config(ws.path()), session).await;
    let huge = text("huge", 1000); // ~45 KB, ~11k tokens
    let mut events = Vec::new();
    let err = agent
        .run(&huge, &AUTO, CancellationToken::new(), &mut |e| {
            events.push(e)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::ContextOverflow { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("your message") && text.contains("4096") && text.contains("--context-window"),
        "{text}"
    );
    assert!(matches!(events.last(), Some(AgentEvent::Error { .. })));
    assert!(server.chat_requests().is_empty(), "nothing was sent");
    assert_eq!(
        agent.history().len(),
        1,
        "the message did not enter the history"
    );
    // The session goes on.
    let (outcome, _) = run(&mut agent, "a short one", &AUTO).await;
    assert!(matches!(outcome, RunOutcome::Completed { .. }));
    drop(agent);
    let reopened = store.open("last").unwrap();
    assert_eq!(reopened.messages().len(), 2);
}

#[tokio::test]
async fn compact_on_request_summarizes_before_the_latest_request_with_the_instruction() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model(),
        Script::new()
            .turn(Turn::text(format!("First answer.\n{}", text("a", 20))))
            .turn(Turn::text("Second answer."))
            .turn(Turn::text("REQUESTED-SUMMARY")),
    )
    .await;
    let mut agent = agent(&server, config(ws.path())).await;
    run(
        &mut agent,
        &format!("first question\n{}", text("q", 20)),
        &AUTO,
    )
    .await;
    run(&mut agent, "second question", &AUTO).await;
    let mut events = Vec::new();
    let changed = agent
        .compact(
            Some("keep the file names"),
            CancellationToken::new(),
            &mut |e| events.push(e),
        )
        .await
        .unwrap();
    assert!(changed, "{events:#?}");
    let requests = server.chat_requests();
    let summary_request = requests.last().unwrap();
    assert!(
        is_summary_request(summary_request),
        "{:#?}",
        summary_request.messages()
    );
    let instructions = last_content(summary_request.messages());
    assert!(instructions.contains("keep in particular: keep the file names"));
    let prompt = all_text(summary_request);
    assert!(prompt.contains("first question") && prompt.contains("First answer."));
    assert!(!prompt.contains("second question"));
    let history: Vec<&str> = agent.history().iter().map(|m| m.content.as_str()).collect();
    assert_eq!(history.len(), 4, "{history:#?}");
    assert!(history[1].starts_with(SUMMARY_HEADER));
    assert!(history[1].contains("REQUESTED-SUMMARY"));
    assert_eq!(&history[2..], ["second question", "Second answer."]);
    assert!(events.iter().any(|e| matches!(
        e,
        AgentEvent::ContextCompacted {
            step: CompactionStep::Summarize,
            requested: true,
            ..
        }
    )));
    // Nothing left to summarize: a warning, no request.
    let mut events = Vec::new();
    let changed = agent
        .compact(None, CancellationToken::new(), &mut |e| events.push(e))
        .await
        .unwrap();
    assert!(!changed);
    assert_eq!(server.chat_requests().len(), requests.len());
    assert!(
        warnings(&events)[0].contains("nothing was compacted"),
        "{events:?}"
    );
}

/// A resumed session starts from the server's last count (kept in the session), not from
/// the heuristic: the estimate is the one the previous process ended with.
#[tokio::test]
async fn a_resumed_session_starts_from_the_servers_count() {
    let ws = tempfile::tempdir().unwrap();
    let store = SessionStore::new(ws.path().join("sessions"));
    let session = store
        .create(SessionMeta {
            model: MODEL.into(),
            workspace: ws.path().into(),
        })
        .unwrap();
    let server = server(
        model(),
        Script::new()
            .turn(Turn::text("One."))
            .turn(Turn::text(text("long answer", 30)))
            .turn(Turn::text("Three.")),
    )
    .await;
    let mut agent = agent_with_session(&server, config(ws.path()), session).await;
    let fresh = agent.prompt_tokens_estimate();
    run(&mut agent, "one", &AUTO).await;
    run(&mut agent, &text("question", 30), &AUTO).await;
    let requests = server.chat_requests();
    // The estimate of the request just answered was the server's count of it plus the
    // estimated cost of the user message appended since the previous count.
    let ended = agent.prompt_tokens_estimate();
    drop(agent);
    let resumed = agent_with_session(&server, config(ws.path()), store.open("last").unwrap()).await;
    assert_eq!(resumed.prompt_tokens_estimate(), ended);
    assert_ne!(
        fresh,
        server_count(&requests[0]) as u32,
        "the heuristic differs"
    );
    // The first request of the resumed process is estimated within a few tokens of the
    // server's count (only the new user message is estimated).
    let mut resumed = resumed;
    let (_, events) = run(&mut resumed, "three", &AUTO).await;
    let estimate = events
        .iter()
        .find_map(|e| match e {
            AgentEvent::TurnEnd {
                prompt_tokens_estimate,
                ..
            } => Some(f64::from(*prompt_tokens_estimate)),
            _ => None,
        })
        .unwrap();
    let counted = server_count(server.chat_requests().last().unwrap()) as f64;
    assert!(
        (estimate - counted).abs() <= 8.0,
        "estimate {estimate} vs server {counted}"
    );
}

/// A server error while summarizing, with a prompt that still fits: a warning, and the run
/// goes on with the full conversation (turns are not lost to a passing error).
#[tokio::test]
async fn a_failed_summary_warns_and_the_run_goes_on_while_the_prompt_fits() {
    let ws = tempfile::tempdir().unwrap();
    let mut script = Script::new();
    for kind in PLAN_FAIL.chars() {
        script = script.turn(match kind {
            'S' => Turn::text("unused").with_fault(Fault::HttpError {
                status: 500,
                message: "summary failed".into(),
            }),
            _ => Turn::text("Noted."),
        });
    }
    let server = server(model().with_context_length(WINDOW), script).await;
    let mut agent = agent(&server, small_config(ws.path())).await;
    let mut all = Vec::new();
    for i in 0..6 {
        let (outcome, events) = run(
            &mut agent,
            &format!("note {i}:\n{}", text(&format!("n{i}"), 40)),
            &AUTO,
        )
        .await;
        assert!(matches!(outcome, RunOutcome::Completed { .. }));
        all.extend(events);
    }
    let warned = warnings(&all);
    assert!(
        warned
            .iter()
            .any(|w| w.contains("could not compact the context")),
        "{warned:?}"
    );
    assert!(compactions(&all).is_empty());
    assert!(
        agent
            .history()
            .iter()
            .any(|m| m.content.contains("note 0:")),
        "nothing was dropped"
    );
    assert_all_fit(&server.chat_requests());
}

const PLAN_FAIL: &str = "rrrrrSr";

/// A tool output larger than the window: it cannot be kept, and the conversation with it is
/// too large for a summary request in the conversation's own prompt, so the model summarizes
/// a transcript cut to fit; the run goes on from the summary.
#[tokio::test]
async fn a_tool_output_larger_than_the_window_is_summarized_from_a_transcript() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("big.txt"), text("big", 450)).unwrap();
    let server = server(
        model().with_context_length(WINDOW),
        Script::new()
            .turn(Turn::tool_call("read_file", json!({"path": "big.txt"})))
            .turn(Turn::text(
                "BIG-SUMMARY: big.txt is 450 lines of lorem ipsum.",
            ))
            .turn(Turn::text("It is lorem ipsum.")),
    )
    .await;
    let mut agent = agent(&server, small_config(ws.path())).await;
    let (outcome, events) = run(&mut agent, "what is in big.txt?", &AUTO).await;
    assert!(
        matches!(outcome, RunOutcome::Completed { .. }),
        "{outcome:?}"
    );
    let compacted = compactions(&events);
    assert_eq!(compacted.len(), 1, "{events:#?}");
    assert_eq!(compacted[0].0, CompactionStep::Summarize);
    let requests = server.chat_requests();
    assert_eq!(requests.len(), 3);
    assert!(is_transcript_request(&requests[1]));
    let transcript = last_content(requests[1].messages());
    assert!(
        transcript.contains("big line 0:"),
        "the transcript shows the output, capped"
    );
    let limit = requests[1].options().unwrap()["num_predict"]
        .as_u64()
        .unwrap();
    assert!(server_count(&requests[1]) + limit <= u64::from(WINDOW));
    assert_all_fit(&[requests[0].clone(), requests[2].clone()]);
    let last = all_text(&requests[2]);
    assert!(last.contains("BIG-SUMMARY") && last.contains("what is in big.txt?"));
    assert!(!last.contains("big line 300:"));
}

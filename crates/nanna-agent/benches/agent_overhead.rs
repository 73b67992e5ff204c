//! Harness overhead of the agent loop, prompt sizes and parser cost.
//!
//! Run with `cargo bench -p nanna-agent --bench agent_overhead`. Prints figures; asserts
//! nothing.
//!
//! - "in-process": a zero-latency in-memory provider, so the time is the agent's own work per
//!   tool turn (stream handling, tool dispatch with schema validation, history, token
//!   ledger, session append), without HTTP or JSON encoding of the request.
//! - "scripted server": the real Ollama provider against the scripted server on loopback, so
//!   the time also includes request encoding, HTTP and the server's own work.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream;
use nanna_agent::{
    Agent, AgentConfig, ApprovalDecision, ApprovalPolicy, CancellationToken, FixedApprover,
    Session, SessionMeta, SessionStore, TextCallForms, estimate_text, parse_text_tool_calls,
    system_prompt,
};
use nanna_model::{
    ChatRequest, ChatResponse, ChatStream, FinishReason, ModelError, ModelInfo, ModelProvider,
    ModelSummary, OllamaProvider, PullStream, StreamEvent, ToolCall,
};
use nanna_testkit::{Script, ScriptedServer, Turn};
use nanna_tools::ToolRegistry;
use serde_json::json;

/// Answers `tool_turns` requests with one `read_file` call, then with text.
struct InstantProvider {
    tool_turns: usize,
    served: AtomicUsize,
}

#[async_trait]
impl ModelProvider for InstantProvider {
    fn name(&self) -> &str {
        "instant"
    }
    fn base_url(&self) -> &str {
        "memory:"
    }
    async fn chat(&self, _request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        Err(ModelError::Unsupported {
            operation: "chat".into(),
            provider: "instant".into(),
        })
    }
    async fn chat_stream(&self, _request: &ChatRequest) -> Result<ChatStream, ModelError> {
        let n = self.served.fetch_add(1, Ordering::Relaxed);
        let events = if n < self.tool_turns {
            vec![
                Ok(StreamEvent::ToolCall {
                    call: ToolCall {
                        id: format!("c{n}"),
                        name: "read_file".into(),
                        arguments: json!({"path": "notes.txt"}),
                    },
                }),
                Ok(StreamEvent::Done {
                    finish_reason: FinishReason::ToolCalls,
                    usage: None,
                }),
            ]
        } else {
            vec![
                Ok(StreamEvent::TextDelta {
                    text: "done".into(),
                }),
                Ok(StreamEvent::Done {
                    finish_reason: FinishReason::Stop,
                    usage: None,
                }),
            ]
        };
        Ok(Box::pin(stream::iter(events)))
    }
    async fn list_models(&self) -> Result<Vec<ModelSummary>, ModelError> {
        Ok(Vec::new())
    }
    async fn model_info(&self, model: &str) -> Result<ModelInfo, ModelError> {
        Ok(ModelInfo {
            name: model.into(),
            context_length: Some(1_000_000),
            ..ModelInfo::default()
        })
    }
    async fn health(&self) -> Result<(), ModelError> {
        Ok(())
    }
    async fn version(&self) -> Result<String, ModelError> {
        Ok("0".into())
    }
    async fn pull(&self, _model: &str) -> Result<PullStream, ModelError> {
        Err(ModelError::Unsupported {
            operation: "pull".into(),
            provider: "instant".into(),
        })
    }
}

fn config(ws: &std::path::Path) -> AgentConfig {
    let mut c = AgentConfig::new("bench", ws);
    c.approval = ApprovalPolicy::Auto;
    c.max_turns = None;
    c.options.context_window = Some(1_000_000);
    c
}

async fn run_in_process(ws: &std::path::Path, turns: usize, session: Session) -> Duration {
    let provider = Arc::new(InstantProvider {
        tool_turns: turns,
        served: AtomicUsize::new(0),
    });
    let mut agent = Agent::new(provider, ToolRegistry::with_builtins(), config(ws), session)
        .await
        .expect("agent");
    let approver = FixedApprover(ApprovalDecision::Yes);
    let mut sink = |_e| {};
    let started = Instant::now();
    agent
        .run("go", &approver, CancellationToken::new(), &mut sink)
        .await
        .expect("run");
    started.elapsed()
}

fn per_turn(total: Duration, turns: usize) -> String {
    format!("{:.1} µs", total.as_secs_f64() * 1e6 / turns as f64)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ws = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ws.path().join("notes.txt"),
        "remember the milk\n".repeat(40),
    )
    .expect("write");
    let meta = || SessionMeta {
        model: "bench".into(),
        workspace: ws.path().into(),
    };

    println!("== agent loop overhead per tool turn (read_file of a 720-byte file) ==");
    for &turns in &[10usize, 100, 400] {
        let mut best_mem = Duration::MAX;
        let mut best_file = Duration::MAX;
        for _ in 0..5 {
            best_mem =
                best_mem.min(run_in_process(ws.path(), turns, Session::in_memory(meta())).await);
            let store = SessionStore::new(ws.path().join("sessions"));
            let session = store.create(meta()).expect("session");
            best_file = best_file.min(run_in_process(ws.path(), turns, session).await);
        }
        println!(
            "in-process, {turns:>3} tool turns: {} per turn (in-memory session), {} per turn (JSONL session, flushed per message)",
            per_turn(best_mem, turns + 1),
            per_turn(best_file, turns + 1)
        );
    }

    let turns = 50usize;
    let server = ScriptedServer::start(
        Script::new()
            .turn(Turn::tool_call("read_file", json!({"path": "notes.txt"})).repeat(turns as u32))
            .turn(Turn::text("done")),
    )
    .await
    .expect("server");
    let provider = Arc::new(OllamaProvider::new(&server.url()).expect("url"));
    let mut cfg = config(ws.path());
    cfg.model = "llama3.1:8b".into();
    cfg.options.context_window = Some(110_000);
    let mut agent = Agent::new(
        provider,
        ToolRegistry::with_builtins(),
        cfg,
        Session::in_memory(meta()),
    )
    .await
    .expect("agent");
    let mut sink = |_e| {};
    let started = Instant::now();
    agent
        .run(
            "go",
            &FixedApprover(ApprovalDecision::Yes),
            CancellationToken::new(),
            &mut sink,
        )
        .await
        .expect("run");
    println!(
        "scripted server over loopback HTTP, {turns} tool turns: {} per turn (agent + provider + server)",
        per_turn(started.elapsed(), turns + 1)
    );
    let first = &server.chat_requests()[0];
    let first_bytes = serde_json::to_string(&first.body).map_or(0, |s| s.len());
    let tools_bytes = serde_json::to_string(first.tools()).map_or(0, |s| s.len());
    server.shutdown().await;

    println!("\n== prompt size ==");
    let prompt = system_prompt(std::path::Path::new("/home/user/project"), None, true);
    println!(
        "base system prompt: {} bytes, ~{} tokens (estimator bytes/3.5), ~{} tokens (bytes/4)",
        prompt.len(),
        estimate_text(&prompt),
        prompt.len() / 4
    );
    let defs = ToolRegistry::with_builtins().definitions();
    let text_tools = nanna_agent::text_tool_instructions(&defs);
    println!(
        "text-mode tool section (models without native tools): {} bytes, ~{} tokens",
        text_tools.len(),
        estimate_text(&text_tools)
    );
    println!(
        "first request body (system + user + 9 tool schemas): {first_bytes} bytes, of which tools {tools_bytes} bytes; ~{} tokens (bytes/3.5), ~{} (bytes/4)",
        (first_bytes as f64 / 3.5).ceil(),
        first_bytes / 4
    );

    println!("\n== text tool-call parser ==");
    let answer = "Here is the fix:\n```rust\nfn main() { let v = vec![1, 2]; println!(\"{:?}\", v); }\n```\n".repeat(200);
    let known = |n: &str| n == "read_file";
    let iters = 200;
    let started = Instant::now();
    let mut found = 0;
    for _ in 0..iters {
        found +=
            parse_text_tool_calls(std::hint::black_box(&answer), &known, TextCallForms::Any).len();
    }
    println!(
        "{} KB answer with code, no calls: {:.1} µs per parse (found {found})",
        answer.len() / 1024,
        started.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
    );
}

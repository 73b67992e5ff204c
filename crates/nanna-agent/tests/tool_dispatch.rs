//! Tool dispatch details: concurrency of read-only calls, order of the others, the fallback
//! to text tools when the server rejects native tools, cancellation while asking approval.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use nanna_agent::{
    Agent, AgentEvent, ApprovalDecision, ApprovalPolicy, ApprovalRequest, Approver,
    CancellationToken, FixedApprover, RunOutcome, Session, SessionMeta,
};
use nanna_model::Think;
use nanna_model::{
    Capabilities, ChatRequest, ChatResponse, ChatStream, JsonSchema, ModelError, ModelInfo,
    ModelProvider, ModelSummary, OllamaProvider, PullStream, ToolDefinition,
};
use nanna_testkit::{ModelSpec, Script, Turn};
use nanna_tools::{Effect, Tool, ToolContext, ToolError, ToolOutput, ToolRegistry};
use serde_json::{Value, json};
use tokio::sync::Barrier;

/// A tool that waits at a barrier (read-only) or logs its call order (write).
struct TestTool {
    def: ToolDefinition,
    effect: Effect,
    barrier: Option<Arc<Barrier>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl TestTool {
    fn new(
        name: &str,
        effect: Effect,
        barrier: Option<Arc<Barrier>>,
        log: Arc<Mutex<Vec<String>>>,
    ) -> Self {
        Self {
            def: ToolDefinition::function(
                name,
                "test tool",
                JsonSchema::object().property("tag", JsonSchema::string("tag"), false),
            ),
            effect,
            barrier,
            log,
        }
    }
}

#[async_trait]
impl Tool for TestTool {
    fn definition(&self) -> &ToolDefinition {
        &self.def
    }
    fn effect(&self) -> Effect {
        self.effect
    }
    fn describe(&self, args: &Value) -> String {
        format!(
            "{} {}",
            self.def.function.name,
            args["tag"].as_str().unwrap_or("")
        )
    }
    async fn execute(&self, args: Value, _ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
        if let Some(barrier) = &self.barrier {
            barrier.wait().await;
        }
        let tag = args["tag"].as_str().unwrap_or("").to_owned();
        self.log.lock().unwrap().push(tag.clone());
        Ok(ToolOutput::new(format!("ran {tag}"), tag))
    }
}

async fn agent_with_tools(
    provider: Arc<dyn ModelProvider>,
    tools: ToolRegistry,
    ws: &std::path::Path,
) -> Agent {
    let cfg = config(ws);
    let session = Session::in_memory(SessionMeta {
        model: cfg.model.clone(),
        workspace: ws.into(),
    });
    Agent::new(provider, tools, cfg, session).await.unwrap()
}

#[tokio::test]
async fn read_only_calls_run_concurrently_and_writes_in_order() {
    let ws = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(2));
    let mut tools = ToolRegistry::new();
    tools.register(Box::new(TestTool::new(
        "wait",
        Effect::ReadOnly,
        Some(barrier),
        log.clone(),
    )));
    tools.register(Box::new(TestTool::new(
        "write",
        Effect::Write,
        None,
        log.clone(),
    )));
    let server = server(
        model(),
        Script::new()
            .turn(
                // Two reads that can only finish together, then writes that must keep order.
                Turn::tool_call("wait", json!({"tag": "r1"}))
                    .with_tool_call("wait", json!({"tag": "r2"}))
                    .with_tool_call("write", json!({"tag": "w1"}))
                    .with_tool_call("write", json!({"tag": "w2"})),
            )
            .turn(Turn::text("ok")),
    )
    .await;
    let provider = Arc::new(OllamaProvider::new(&server.url()).unwrap());
    let mut agent = agent_with_tools(provider, tools, ws.path()).await;
    let approver = FixedApprover(ApprovalDecision::Yes);
    let (outcome, events) =
        tokio::time::timeout(Duration::from_secs(20), run(&mut agent, "go", &approver))
            .await
            .expect("the two read-only calls ran concurrently (else the barrier never opens)");
    assert!(matches!(outcome, RunOutcome::Completed { .. }));
    let logged = log.lock().unwrap().clone();
    assert_eq!(&logged[2..], ["w1", "w2"]);
    // Results come back in call order whatever order the reads finished in.
    let outputs: Vec<String> = tool_results(&events).into_iter().map(|r| r.2).collect();
    assert_eq!(outputs, ["ran r1", "ran r2", "ran w1", "ran w2"]);
    let msgs = server.chat_requests()[1].messages().to_vec();
    let ids: Vec<&str> = msgs[3..]
        .iter()
        .map(|m| m["tool_call_id"].as_str().unwrap_or(""))
        .collect();
    let call_ids: Vec<&str> = msgs[2]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, call_ids);
}

/// An Ollama provider that claims every model has native tools.
struct ClaimsTools(OllamaProvider);

#[async_trait]
impl ModelProvider for ClaimsTools {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn base_url(&self) -> &str {
        self.0.base_url()
    }
    async fn chat(&self, r: &ChatRequest) -> Result<ChatResponse, ModelError> {
        self.0.chat(r).await
    }
    async fn chat_stream(&self, r: &ChatRequest) -> Result<ChatStream, ModelError> {
        self.0.chat_stream(r).await
    }
    async fn list_models(&self) -> Result<Vec<ModelSummary>, ModelError> {
        self.0.list_models().await
    }
    async fn model_info(&self, model: &str) -> Result<ModelInfo, ModelError> {
        let mut info = self.0.model_info(model).await?;
        info.capabilities = Some(Capabilities {
            tools: true,
            completion: true,
            ..Capabilities::default()
        });
        Ok(info)
    }
    async fn health(&self) -> Result<(), ModelError> {
        self.0.health().await
    }
    async fn version(&self) -> Result<String, ModelError> {
        self.0.version().await
    }
    async fn pull(&self, model: &str) -> Result<PullStream, ModelError> {
        self.0.pull(model).await
    }
}

#[tokio::test]
async fn server_rejecting_native_tools_switches_to_text_tools() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("a.txt"), "alpha\n").unwrap();
    let server = server(
        model().with_capabilities(["completion"]),
        Script::new()
            .turn(Turn::text("<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.txt\"}}</tool_call>"))
            .turn(Turn::text("It says alpha.")),
    )
    .await;
    let provider = Arc::new(ClaimsTools(OllamaProvider::new(&server.url()).unwrap()));
    let mut agent = agent_with_tools(provider, ToolRegistry::with_builtins(), ws.path()).await;
    assert!(agent.native_tools());
    let (outcome, events) = run(
        &mut agent,
        "read a.txt",
        &FixedApprover(ApprovalDecision::Yes),
    )
    .await;
    assert!(
        matches!(outcome, RunOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert!(!agent.native_tools());
    assert!(
        warnings(&events)
            .iter()
            .any(|w| w.contains("rejected native tool calling"))
    );
    assert!(tool_results(&events)[0].2.contains("alpha"));
    let requests = server.chat_requests();
    let served: Vec<_> = requests.iter().filter(|r| r.tools().is_empty()).collect();
    assert_eq!(
        served.len(),
        2,
        "after the rejection no request carries tools"
    );
    let system = served[0].messages()[0]["content"].as_str().unwrap();
    assert!(system.contains("- read_file("));
}

/// Never answers: the run must still end when cancelled.
struct StuckApprover;

#[async_trait]
impl Approver for StuckApprover {
    async fn approve(&self, _req: &ApprovalRequest) -> ApprovalDecision {
        std::future::pending().await
    }
}

#[tokio::test]
async fn cancelling_while_waiting_for_approval() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model(),
        Script::new().turn(Turn::tool_call(
            "write_file",
            json!({"path": "x", "content": "y"}),
        )),
    )
    .await;
    let mut cfg = config(ws.path());
    cfg.approval = ApprovalPolicy::Ask;
    let mut agent = common::agent(&server, cfg).await;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let mut events = Vec::new();
    let mut on_event = |e: AgentEvent| {
        if matches!(e, AgentEvent::ToolCall { .. }) {
            trigger.cancel();
        }
        events.push(e);
    };
    let run = agent.run("write", &StuckApprover, cancel, &mut on_event);
    let outcome = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("cancellation ends the approval wait")
        .unwrap();
    assert_eq!(outcome, RunOutcome::Cancelled { turns: 1 });
    assert!(!ws.path().join("x").exists());
    let last = agent.history().last().unwrap();
    assert!(last.content.contains("cancelled by the user"));
}

/// Issue 11, item 3: the model's thinking streams as deltas, is reported once per block (a
/// collapsible event), stays on the assistant message in the history and the session, and
/// goes back to the server with the tool results, so each request extends the previous
/// one (Ollama's tool-calling docs: send thinking, content and tool calls back together).
#[tokio::test]
async fn thinking_is_kept_in_history_and_sent_back_with_tool_results() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("notes.txt"), "hello").unwrap();
    let thinker = ModelSpec::new(MODEL).with_capabilities(["completion", "tools", "thinking"]);
    let server = server(
        thinker,
        Script::new()
            .turn(
                Turn::tool_call(
                    "read_file",
                    json!({"path": "notes.txt", "limit": 5, "offset": 1}),
                )
                .with_thinking("I need the notes"),
            )
            .turn(Turn::text("They say hello.").with_thinking("Now answer")),
    )
    .await;
    let store = nanna_agent::SessionStore::new(ws.path().join("sessions"));
    let mut cfg = config(ws.path());
    cfg.options.think = Some(Think::High);
    let session = store
        .create(SessionMeta {
            model: MODEL.into(),
            workspace: ws.path().to_path_buf(),
        })
        .unwrap();
    let id = session.id().to_owned();
    let mut agent = agent_with_session(&server, cfg, session).await;
    let (_, events) = run(
        &mut agent,
        "read notes.txt",
        &FixedApprover(ApprovalDecision::Yes),
    )
    .await;
    let blocks: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Thinking { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(blocks, vec!["I need the notes", "Now answer"]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::ThinkingDelta { .. }))
    );
    let assistant: Vec<_> = agent
        .history()
        .iter()
        .filter(|m| m.role == nanna_model::MessageRole::Assistant)
        .collect();
    assert_eq!(assistant[0].thinking, "I need the notes");
    assert_eq!(assistant[1].thinking, "Now answer");
    assert_eq!(assistant[1].content, "They say hello.");

    let chats = server.chat_requests();
    assert_eq!(chats[0].body["think"], json!("high"));
    let echoed = &chats[1].messages()[2];
    assert_eq!(echoed["thinking"], json!("I need the notes"));
    // Arguments go back in the order the model wrote them, not sorted.
    assert_eq!(
        serde_json::to_string(&echoed["tool_calls"][0]["function"]["arguments"]).unwrap(),
        r#"{"path":"notes.txt","limit":5,"offset":1}"#
    );
    assert_append_only(&chats, &[]);

    // The session keeps the thinking for a resumed conversation.
    drop(agent);
    let resumed = store.open(&id).unwrap();
    let kept: Vec<_> = resumed
        .messages()
        .iter()
        .map(|m| m.thinking.as_str())
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(kept, vec!["I need the notes", "Now answer"]);
}

/// A `think` setting for a model without the thinking capability is not sent (Ollama would
/// refuse the request) and the user is told.
#[tokio::test]
async fn think_on_a_model_that_cannot_think_is_a_warning() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(model(), Script::new().turn(Turn::text("hi"))).await;
    let mut cfg = config(ws.path());
    cfg.options.think = Some(Think::On);
    let mut agent = common::agent(&server, cfg).await;
    let (_, events) = run(&mut agent, "q", &FixedApprover(ApprovalDecision::Yes)).await;
    assert!(
        warnings(&events)
            .iter()
            .any(|w| w.contains("does not think")),
        "{events:?}"
    );
    assert!(server.chat_requests()[0].body.get("think").is_none());
}

#[tokio::test]
async fn a_call_that_cannot_run_is_refused_before_anyone_is_asked_to_approve_it() {
    let ws = tempfile::tempdir().unwrap();
    let server = server(
        model(),
        Script::new()
            .turn(
                Turn::empty()
                    .with_raw_tool_call("write_file", r#"{"path": "a.txt", "content": "unfini"#)
                    .with_tool_call("write_file", json!({"path": "b.txt", "content": "ok"})),
            )
            .turn(Turn::text("Wrote b.txt.")),
    )
    .await;
    let mut cfg = config(ws.path());
    cfg.approval = ApprovalPolicy::Ask;
    let mut agent = agent(&server, cfg).await;
    let approver = RecordingApprover::answering(ApprovalDecision::Yes);
    let (outcome, events) = run(&mut agent, "write the files", &approver).await;
    assert!(matches!(outcome, RunOutcome::Completed { .. }));
    let results = tool_results(&events);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        !results[0].1 && results[0].2.contains("not valid JSON"),
        "{results:?}"
    );
    assert!(results[1].1, "{results:?}");
    let asked: Vec<String> = approver
        .asked()
        .iter()
        .map(|r| r.arguments.to_string())
        .collect();
    assert_eq!(
        asked.len(),
        1,
        "only the valid call is put to the user: {asked:?}"
    );
    assert!(!ws.path().join("a.txt").exists());
    assert_eq!(
        std::fs::read_to_string(ws.path().join("b.txt")).unwrap(),
        "ok"
    );
}

//! Shared helpers of the scenario tests: a scripted Ollama server, an agent on it, event
//! collection, a recording approver.

#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nanna_agent::{
    Agent, AgentConfig, AgentEvent, ApprovalDecision, ApprovalPolicy, ApprovalRequest, Approver,
    CancellationToken, RunOutcome, Session, SessionMeta,
};
use nanna_model::OllamaProvider;
use nanna_testkit::{ModelSpec, Script, ScriptedServer, ServerConfig};
use nanna_tools::ToolRegistry;
use serde_json::Value;

pub const MODEL: &str = "llama3.1:8b";

/// Starts a scripted server hosting `spec`.
pub async fn server(spec: ModelSpec, script: Script) -> ScriptedServer {
    ScriptedServer::start_with(ServerConfig::with_models(vec![spec]), script)
        .await
        .expect("scripted server starts")
}

/// A default tools-capable model with a 128k context.
pub fn model() -> ModelSpec {
    ModelSpec::new(MODEL)
}

pub fn config(workspace: &Path) -> AgentConfig {
    let mut c = AgentConfig::new(MODEL, workspace);
    c.approval = ApprovalPolicy::Auto;
    c
}

pub async fn agent(server: &ScriptedServer, config: AgentConfig) -> Agent {
    let session = Session::in_memory(SessionMeta {
        model: config.model.clone(),
        workspace: config.workspace.clone(),
    });
    agent_with_session(server, config, session).await
}

pub async fn agent_with_session(
    server: &ScriptedServer,
    config: AgentConfig,
    session: Session,
) -> Agent {
    let provider = OllamaProvider::new(&server.url()).expect("valid url");
    Agent::new(
        Arc::new(provider),
        ToolRegistry::with_builtins(),
        config,
        session,
    )
    .await
    .expect("agent starts")
}

/// Approves or declines everything, recording what it was asked.
#[derive(Default)]
pub struct RecordingApprover {
    pub answer: Option<ApprovalDecision>,
    pub asked: Mutex<Vec<ApprovalRequest>>,
}

impl RecordingApprover {
    pub fn answering(answer: ApprovalDecision) -> Self {
        Self {
            answer: Some(answer),
            asked: Mutex::new(Vec::new()),
        }
    }

    pub fn asked(&self) -> Vec<ApprovalRequest> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait]
impl Approver for RecordingApprover {
    async fn approve(&self, req: &ApprovalRequest) -> ApprovalDecision {
        self.asked.lock().unwrap().push(req.clone());
        self.answer.unwrap_or(ApprovalDecision::Yes)
    }
}

/// Runs `input` and returns the outcome and every event.
pub async fn run(
    agent: &mut Agent,
    input: &str,
    approver: &dyn Approver,
) -> (RunOutcome, Vec<AgentEvent>) {
    run_with_cancel(agent, input, approver, CancellationToken::new()).await
}

pub async fn run_with_cancel(
    agent: &mut Agent,
    input: &str,
    approver: &dyn Approver,
    cancel: CancellationToken,
) -> (RunOutcome, Vec<AgentEvent>) {
    let mut events = Vec::new();
    let outcome = agent
        .run(input, approver, cancel, &mut |e| events.push(e))
        .await
        .expect("run succeeds");
    (outcome, events)
}

/// The tool results among `events`: (name, ok, output).
pub fn tool_results(events: &[AgentEvent]) -> Vec<(String, bool, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::ToolResult {
                name, ok, output, ..
            } => Some((name.clone(), *ok, output.clone())),
            _ => None,
        })
        .collect()
}

pub fn warnings(events: &[AgentEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Warning { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// The `content` of the last message of a recorded chat request.
pub fn last_content(messages: &[Value]) -> String {
    messages
        .last()
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Asserts every chat request's messages are a prefix of the next one's (append-only
/// history), except across the listed request indexes (a compaction before that request,
/// or a separate summary request).
pub fn assert_append_only(requests: &[nanna_testkit::RecordedRequest], except: &[usize]) {
    for i in 1..requests.len() {
        if except.contains(&i) || except.contains(&(i - 1)) {
            continue;
        }
        let prev = requests[i - 1].messages();
        let next = requests[i].messages();
        assert!(
            next.len() > prev.len() && &next[..prev.len()] == prev,
            "request {i} does not extend request {}: {prev:#?}\n---\n{next:#?}",
            i - 1
        );
    }
}

//! [`Agent`]: the model ↔ tools loop.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt as _;
use nanna_model::{
    ChatMessage, ChatRequest, FinishReason, ModelError, ModelInfo, ModelProvider, StreamEvent,
    ToolCall, Usage,
};
use nanna_tools::{Effect, ToolContext, ToolError, ToolRegistry};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::approval::{ApprovalDecision, ApprovalRequest, Approver};
use crate::compaction;
use crate::config::{AgentConfig, SandboxPolicy};
use crate::error::AgentError;
use crate::event::{AgentEvent, RunOutcome};
use crate::prompt::{self, AGENTS_MD_MAX_BYTES};
use crate::session::Session;
use crate::textcalls::{parse_text_tool_calls, strip_calls};
use crate::tokens::TokenLedger;

/// Share of the window the verbatim recent turns may keep after a compaction.
const KEEP_SHARE: f64 = 0.35;
/// Most tokens a compaction summary may take.
const SUMMARY_MAX_TOKENS: u32 = 1024;

/// Events are reported through this callback.
type OnEvent<'a> = dyn FnMut(AgentEvent) + Send + 'a;

/// Runs user tasks against a model with tools, keeping the conversation in a [`Session`].
pub struct Agent {
    provider: Arc<dyn ModelProvider>,
    tools: ToolRegistry,
    config: AgentConfig,
    session: Session,
    /// The request sent each turn; its `messages` are the history (system prompt first).
    request: ChatRequest,
    ledger: TokenLedger,
    model_info: ModelInfo,
    context_window: u32,
    native_tools: bool,
    workspace: PathBuf,
    agents_md: Option<String>,
    always_approved: HashSet<String>,
    pending_warnings: Vec<String>,
    started: bool,
    session_write_failed: bool,
    call_seq: u64,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("session", &self.session.id())
            .field("model", &self.config.model)
            .field("context_window", &self.context_window)
            .field("native_tools", &self.native_tools)
            .field("messages", &self.request.messages.len())
            .finish_non_exhaustive()
    }
}

/// One model reply, collected from the stream.
#[derive(Default)]
struct Reply {
    text: String,
    calls: Vec<ToolCall>,
    finish_reason: Option<FinishReason>,
    usage: Option<Usage>,
    cancelled: bool,
}

/// What one tool call produced, as the model and the terminal will see it.
struct CallResult {
    ok: bool,
    content: String,
    summary: String,
}

impl CallResult {
    fn error(message: impl std::fmt::Display) -> Self {
        let content = format!("error: {message}");
        let summary = first_line(&content, 120);
        Self {
            ok: false,
            content,
            summary,
        }
    }
}

impl Agent {
    /// Prepares an agent: checks the workspace, reads the model's details once (context
    /// length, capabilities), reads the workspace's `AGENTS.md`, and loads the session's
    /// history. Fails if the server is unreachable or does not have the model.
    pub async fn new(
        provider: Arc<dyn ModelProvider>,
        tools: ToolRegistry,
        config: AgentConfig,
        mut session: Session,
    ) -> Result<Self, AgentError> {
        let workspace =
            std::fs::canonicalize(&config.workspace).map_err(|e| AgentError::Workspace {
                path: config.workspace.clone(),
                detail: e.to_string(),
            })?;
        if !workspace.is_dir() {
            return Err(AgentError::Workspace {
                path: config.workspace.clone(),
                detail: "not a directory".into(),
            });
        }
        let mut warnings = session.take_warnings();
        let model_info = match provider.model_info(&config.model).await {
            Ok(info) => info,
            Err(e @ (ModelError::Unreachable { .. } | ModelError::ModelNotFound { .. })) => {
                return Err(e.into());
            }
            Err(e) => {
                warnings.push(format!(
                    "could not read the model's details ({e}); assuming native tool calling and \
                     a {}-token context window",
                    config.context_window
                ));
                ModelInfo {
                    name: config.model.clone(),
                    ..ModelInfo::default()
                }
            }
        };
        let context_window = match model_info.context_length {
            Some(max) if max > 0 => config.context_window.min(max),
            _ => config.context_window,
        };
        let native_tools = model_info.capabilities.is_none_or(|c| c.tools);
        let agents_md = read_agents_md(&workspace, &mut warnings);

        let mut request = ChatRequest::new(config.model.clone(), Vec::new());
        request.options.context_window = Some(context_window);
        request.options.temperature = config.temperature;
        request.options.keep_alive = config.keep_alive.clone();
        request.options.max_tokens = config.max_tokens;

        let mut agent = Self {
            provider,
            tools,
            config,
            session,
            request,
            ledger: TokenLedger::new(0),
            model_info,
            context_window,
            native_tools,
            workspace,
            agents_md,
            always_approved: HashSet::new(),
            pending_warnings: warnings,
            started: false,
            session_write_failed: false,
            call_seq: 0,
        };
        agent.configure_tools();
        let mut messages = Vec::with_capacity(agent.session.messages().len() + 1);
        messages.push(agent.system_message());
        messages.extend(agent.session.take_messages());
        agent.request.messages = messages;
        agent.ledger.rebuild(&agent.request.messages);
        Ok(agent)
    }

    /// The conversation as sent to the model, system prompt first.
    pub fn history(&self) -> &[ChatMessage] {
        &self.request.messages
    }

    /// The session's id.
    pub fn session_id(&self) -> &str {
        self.session.id()
    }

    /// The context window sent as `num_ctx`: the configured one capped at the model's.
    pub fn context_window(&self) -> u32 {
        self.context_window
    }

    /// The model's details as the server reported them.
    pub fn model_info(&self) -> &ModelInfo {
        &self.model_info
    }

    /// Whether tools are offered natively (`false`: described in the prompt, parsed from text).
    pub fn native_tools(&self) -> bool {
        self.native_tools
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The agent's estimate of the next request's prompt tokens.
    pub fn prompt_tokens_estimate(&self) -> u32 {
        self.ledger.total()
    }

    /// Runs one user task to completion: model ↔ tools turns until the model answers
    /// without tool calls, `max_turns` is reached (a [`AgentEvent::Warning`] says so), or
    /// `cancel` fires (the stream and running tools are stopped, unfinished calls are
    /// answered "cancelled by the user"). Ends with [`AgentEvent::Done`]; a failure is
    /// emitted as [`AgentEvent::Error`] and returned.
    pub async fn run(
        &mut self,
        user_input: &str,
        approver: &dyn Approver,
        cancel: CancellationToken,
        on_event: &mut OnEvent<'_>,
    ) -> Result<RunOutcome, AgentError> {
        if !self.started {
            self.started = true;
            on_event(AgentEvent::SessionStarted {
                session_id: self.session.id().to_owned(),
                model: self.config.model.clone(),
                workspace: self.workspace.clone(),
                resumed: self.session.is_resumed(),
            });
        }
        for message in std::mem::take(&mut self.pending_warnings) {
            on_event(AgentEvent::Warning { message });
        }
        self.push(ChatMessage::user(user_input), on_event);
        let mut final_text = String::new();
        match self
            .turns(approver, &cancel, on_event, &mut final_text)
            .await
        {
            Ok(outcome) => {
                on_event(AgentEvent::Done {
                    turns: outcome.turns(),
                    final_text,
                });
                Ok(outcome)
            }
            Err(e) => {
                on_event(AgentEvent::Error {
                    message: e.to_string(),
                });
                Err(e)
            }
        }
    }

    async fn turns(
        &mut self,
        approver: &dyn Approver,
        cancel: &CancellationToken,
        on_event: &mut OnEvent<'_>,
        final_text: &mut String,
    ) -> Result<RunOutcome, AgentError> {
        let mut turns = 0;
        let mut warned_overflow = false;
        loop {
            if cancel.is_cancelled() {
                return Ok(RunOutcome::Cancelled { turns });
            }
            if self.config.max_turns.is_some_and(|max| turns >= max) {
                on_event(AgentEvent::Warning {
                    message: format!(
                        "stopped after {turns} model turns (the max_turns limit); the task may be \
                         unfinished: ask the agent to continue or raise --max-turns"
                    ),
                });
                return Ok(RunOutcome::MaxTurns { turns });
            }
            if self.maybe_compact(cancel, on_event).await {
                return Ok(RunOutcome::Cancelled { turns });
            }
            let estimate = self.ledger.total();
            if estimate > self.context_window && !warned_overflow {
                warned_overflow = true;
                on_event(AgentEvent::Warning {
                    message: format!(
                        "the prompt (~{estimate} tokens) is larger than the context window \
                         ({} tokens); the server will truncate it. Start a new session or use a \
                         model with a larger context",
                        self.context_window
                    ),
                });
            }
            on_event(AgentEvent::WaitingForModel);
            turns += 1;
            let reply = self.stream_reply(cancel, on_event).await?;
            if reply.cancelled {
                if !reply.text.is_empty() {
                    let text = format!("{}\n[interrupted by the user]", reply.text);
                    self.push(ChatMessage::assistant(text), on_event);
                }
                return Ok(RunOutcome::Cancelled { turns });
            }
            let finish_reason = reply.finish_reason.unwrap_or_else(|| {
                on_event(AgentEvent::Warning {
                    message: "the model server ended the reply without saying why; it may be \
                              incomplete"
                        .into(),
                });
                FinishReason::Stop
            });
            if let Some(usage) = &reply.usage {
                self.ledger.observe(estimate, usage.prompt_tokens);
            }

            let (content, calls, as_text) = self.extract_calls(reply.text, reply.calls);
            let message = if calls.is_empty() || as_text {
                ChatMessage::assistant(content.clone())
            } else {
                ChatMessage::assistant_with_tool_calls(content.clone(), calls.clone())
            };
            self.push(message, on_event);
            if !content.trim().is_empty() {
                *final_text = content;
            }
            if finish_reason == FinishReason::Length {
                on_event(AgentEvent::Warning {
                    message: format!(
                        "the model's reply was cut: it reached the output limit (max_tokens) or \
                         the context window ({} tokens)",
                        self.context_window
                    ),
                });
            }
            on_event(AgentEvent::TurnEnd {
                turn: turns,
                finish_reason,
                usage: reply.usage,
                prompt_tokens_estimate: estimate,
            });
            if calls.is_empty() {
                return Ok(RunOutcome::Completed {
                    turns,
                    final_text: final_text.clone(),
                });
            }
            if self
                .execute_calls(calls, as_text, approver, cancel, on_event)
                .await
            {
                return Ok(RunOutcome::Cancelled { turns });
            }
        }
    }

    /// Streams one reply. A server that rejects tools switches the agent to text tools once.
    async fn stream_reply(
        &mut self,
        cancel: &CancellationToken,
        on_event: &mut OnEvent<'_>,
    ) -> Result<Reply, AgentError> {
        let mut reply = Reply::default();
        let mut stream = loop {
            let started = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    reply.cancelled = true;
                    return Ok(reply);
                }
                started = self.provider.chat_stream(&self.request) => started,
            };
            match started {
                Ok(stream) => break stream,
                Err(ModelError::ToolsUnsupported { .. })
                    if self.native_tools && self.config.tools_enabled =>
                {
                    on_event(AgentEvent::Warning {
                        message: format!(
                            "model `{}` rejected native tool calling; describing the tools in \
                             the prompt instead",
                            self.config.model
                        ),
                    });
                    self.native_tools = false;
                    self.configure_tools();
                    let system = self.system_message();
                    if let Some(first) = self.request.messages.first_mut() {
                        *first = system;
                    }
                    self.ledger.rebuild(&self.request.messages);
                }
                Err(e) => return Err(e.into()),
            }
        };
        loop {
            let item = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    reply.cancelled = true;
                    break;
                }
                item = stream.next() => item,
            };
            match item {
                None => break,
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(StreamEvent::TextDelta { text })) => {
                    reply.text.push_str(&text);
                    on_event(AgentEvent::TextDelta { text });
                }
                Some(Ok(StreamEvent::ThinkingDelta { text })) => {
                    on_event(AgentEvent::ThinkingDelta { text });
                }
                Some(Ok(StreamEvent::ToolCall { call })) => reply.calls.push(call),
                Some(Ok(StreamEvent::Done {
                    finish_reason,
                    usage,
                })) => {
                    reply.finish_reason = Some(finish_reason);
                    reply.usage = usage;
                    break;
                }
            }
        }
        Ok(reply)
    }

    /// Normalizes native calls (ids, string arguments) or finds calls written as text.
    /// Returns the assistant text to keep, the calls, and whether they were written as text
    /// by a model without native tools (results then go back as user messages).
    fn extract_calls(
        &mut self,
        text: String,
        native: Vec<ToolCall>,
    ) -> (String, Vec<ToolCall>, bool) {
        if !native.is_empty() {
            let calls = native
                .into_iter()
                .map(|mut call| {
                    if call.id.is_empty() {
                        call.id = self.next_call_id();
                    }
                    if let Value::String(s) = &call.arguments
                        && let Ok(parsed @ Value::Object(_)) = serde_json::from_str::<Value>(s)
                    {
                        call.arguments = parsed;
                    }
                    call
                })
                .collect();
            return (text, calls, false);
        }
        if !self.config.tools_enabled || text.is_empty() {
            return (text, Vec::new(), false);
        }
        let tools = &self.tools;
        let found = parse_text_tool_calls(&text, &|name| tools.get(name).is_some());
        if found.is_empty() {
            return (text, Vec::new(), false);
        }
        let mut calls = Vec::with_capacity(found.len());
        for c in &found {
            calls.push(ToolCall {
                id: self.next_call_id(),
                name: c.name.clone(),
                arguments: c.arguments.clone(),
            });
        }
        if self.native_tools {
            (strip_calls(&text, &found), calls, false)
        } else {
            (text, calls, true)
        }
    }

    fn next_call_id(&mut self) -> String {
        self.call_seq += 1;
        format!("call_{}", self.call_seq)
    }

    /// Runs the calls: consecutive read-only calls concurrently, the others one by one with
    /// approval. Returns `true` when cancelled (every call still got a result).
    async fn execute_calls(
        &mut self,
        calls: Vec<ToolCall>,
        as_text: bool,
        approver: &dyn Approver,
        cancel: &CancellationToken,
        on_event: &mut OnEvent<'_>,
    ) -> bool {
        let ctx = ToolContext {
            workspace: self.workspace.clone(),
            cancel: cancel.child_token(),
            limits: self.config.tool_limits,
        };
        let mut i = 0;
        while i < calls.len() {
            if cancel.is_cancelled() {
                for call in &calls[i..] {
                    self.record_result(
                        call,
                        CallResult::error(ToolError::Cancelled),
                        as_text,
                        on_event,
                    );
                }
                return true;
            }
            let effect = self.tools.get(&calls[i].name).map(|t| t.effect());
            if matches!(effect, None | Some(Effect::ReadOnly)) {
                let end = calls[i..]
                    .iter()
                    .position(|c| {
                        !matches!(
                            self.tools.get(&c.name).map(|t| t.effect()),
                            None | Some(Effect::ReadOnly)
                        )
                    })
                    .map_or(calls.len(), |n| i + n);
                let group = &calls[i..end];
                for call in group {
                    on_event(self.call_event(call));
                }
                let results = futures::future::join_all(
                    group.iter().map(|call| self.run_tool(call, &ctx, cancel)),
                )
                .await;
                for (call, result) in group.iter().zip(results) {
                    self.record_result(call, result, as_text, on_event);
                }
                i = end;
            } else {
                let call = &calls[i];
                on_event(self.call_event(call));
                let result = match self.gate(call, approver, cancel).await {
                    Some(refusal) => refusal,
                    None => self.run_tool(call, &ctx, cancel).await,
                };
                self.record_result(call, result, as_text, on_event);
                i += 1;
            }
        }
        cancel.is_cancelled()
    }

    fn call_event(&self, call: &ToolCall) -> AgentEvent {
        let description = match self.tools.get(&call.name) {
            Some(tool) => tool.describe(&call.arguments),
            None => format!("{} (unknown tool)", call.name),
        };
        AgentEvent::ToolCall {
            id: call.id.clone(),
            name: call.name.clone(),
            description,
            arguments: call.arguments.clone(),
        }
    }

    /// Applies the sandbox and approval policies to a write or exec call. `Some` is the
    /// result to send instead of running it.
    async fn gate(
        &mut self,
        call: &ToolCall,
        approver: &dyn Approver,
        cancel: &CancellationToken,
    ) -> Option<CallResult> {
        let tool = self.tools.get(&call.name)?;
        let effect = tool.effect();
        if effect == Effect::ReadOnly {
            return None;
        }
        if !self.config.tools_enabled {
            return Some(CallResult::error("tools are turned off in this session"));
        }
        if self.config.sandbox == SandboxPolicy::ReadOnly {
            return Some(CallResult::error(format!(
                "refused: this session is read-only (sandbox read-only), so `{}` may not change \
                 files or run commands. Tell the user what you would change instead",
                call.name
            )));
        }
        if self.config.approval == crate::config::ApprovalPolicy::Auto
            || self.always_approved.contains(&call.name)
        {
            return None;
        }
        let request = ApprovalRequest {
            tool: call.name.clone(),
            effect,
            description: tool.describe(&call.arguments),
            arguments: call.arguments.clone(),
        };
        let decision = tokio::select! {
            biased;
            () = cancel.cancelled() => return Some(CallResult::error(ToolError::Cancelled)),
            decision = approver.approve(&request) => decision,
        };
        match decision {
            ApprovalDecision::Yes => None,
            ApprovalDecision::Always => {
                self.always_approved.insert(call.name.clone());
                None
            }
            ApprovalDecision::No => Some(CallResult::error(
                "the user declined this call. Do not retry it; ask the user how to proceed or \
                 take another approach",
            )),
        }
    }

    async fn run_tool(
        &self,
        call: &ToolCall,
        ctx: &ToolContext,
        cancel: &CancellationToken,
    ) -> CallResult {
        if !self.config.tools_enabled {
            return CallResult::error("tools are turned off in this session");
        }
        let run = self.tools.execute(&call.name, call.arguments.clone(), ctx);
        let result = tokio::select! {
            biased;
            () = cancel.cancelled() => Err(ToolError::Cancelled),
            result = run => result,
        };
        match result {
            Ok(output) => CallResult {
                ok: true,
                content: output.content,
                summary: output.summary,
            },
            Err(e) => CallResult::error(e),
        }
    }

    fn record_result(
        &mut self,
        call: &ToolCall,
        result: CallResult,
        as_text: bool,
        on_event: &mut OnEvent<'_>,
    ) {
        let message = if as_text {
            ChatMessage::user(format!(
                "{} name=\"{}\">\n{}\n</tool_result>",
                compaction::TEXT_RESULT_PREFIX,
                call.name,
                result.content
            ))
        } else {
            ChatMessage::tool_result(&call.id, &call.name, result.content.as_str())
        };
        self.push(message, on_event);
        on_event(AgentEvent::ToolResult {
            id: call.id.clone(),
            name: call.name.clone(),
            ok: result.ok,
            summary: result.summary,
            output: result.content,
        });
    }

    /// Warns once when the session file can no longer be written; the run goes on.
    fn note_session_error(
        &mut self,
        saved: Result<(), crate::error::SessionError>,
        on_event: &mut OnEvent<'_>,
    ) {
        if let Err(e) = saved
            && !self.session_write_failed
        {
            self.session_write_failed = true;
            on_event(AgentEvent::Warning {
                message: format!("the session is no longer being saved: {e}"),
            });
        }
    }

    /// Appends to the history, the token ledger and the session file.
    fn push(&mut self, message: ChatMessage, on_event: &mut OnEvent<'_>) {
        let saved = self.session.append_message(&message);
        self.note_session_error(saved, on_event);
        self.ledger.push(&message);
        self.request.messages.push(message);
    }

    /// Compacts older turns into a model-written summary when the prompt passes the
    /// threshold. Returns `true` if cancelled meanwhile.
    async fn maybe_compact(
        &mut self,
        cancel: &CancellationToken,
        on_event: &mut OnEvent<'_>,
    ) -> bool {
        let before = self.ledger.total();
        let threshold =
            (f64::from(self.context_window) * f64::from(self.config.compaction_threshold)) as u32;
        if before <= threshold {
            return false;
        }
        let keep_budget = (f64::from(self.context_window) * KEEP_SHARE) as u32;
        let Some(cut) = compaction::choose_cut(&self.request.messages, &self.ledger, keep_budget)
        else {
            on_event(AgentEvent::Warning {
                message: format!(
                    "the prompt (~{before} tokens) fills over {:.0}% of the context window ({} \
                     tokens) and there are no older turns to summarize",
                    self.config.compaction_threshold * 100.0,
                    self.context_window
                ),
            });
            return false;
        };
        let older = &self.request.messages[1..cut];
        let budget_chars = (f64::from(self.context_window) * 0.6 * 3.5) as usize;
        let mut request = ChatRequest::new(
            self.config.model.clone(),
            vec![
                ChatMessage::system(compaction::SUMMARY_SYSTEM),
                ChatMessage::user(compaction::summary_prompt(older, budget_chars)),
            ],
        );
        request.options = self.request.options.clone();
        request.options.max_tokens = Some(
            self.config
                .max_tokens
                .map_or(SUMMARY_MAX_TOKENS, |m| m.min(SUMMARY_MAX_TOKENS)),
        );
        on_event(AgentEvent::WaitingForModel);
        let summary = match self.collect_text(&request, cancel).await {
            Ok(Some(text)) if !text.trim().is_empty() => text,
            Ok(Some(_)) => {
                on_event(AgentEvent::Warning {
                    message: "could not compact the context: the model wrote an empty summary; \
                              continuing with the full conversation"
                        .into(),
                });
                return false;
            }
            Ok(None) => return true,
            Err(e) => {
                on_event(AgentEvent::Warning {
                    message: format!(
                        "could not compact the context ({e}); continuing with the full conversation"
                    ),
                });
                return false;
            }
        };
        let current = compaction::latest_request(&self.request.messages)
            .filter(|&(i, _)| i < cut)
            .map(|(_, text)| text);
        let content = compaction::summary_message(&summary, current);
        let kept = self.request.messages.split_off(cut);
        self.request.messages.truncate(1);
        self.request
            .messages
            .push(ChatMessage::user(content.as_str()));
        self.request.messages.extend(kept);
        self.ledger.rebuild(&self.request.messages);
        let after = self.ledger.total();
        let saved = self
            .session
            .append_compaction(&content, cut - 1, before, after);
        self.note_session_error(saved, on_event);
        on_event(AgentEvent::ContextCompacted {
            tokens_before: before,
            tokens_after: after,
            messages_summarized: cut - 1,
        });
        false
    }

    /// Streams a request without tools and returns its text; `None` if cancelled.
    async fn collect_text(
        &self,
        request: &ChatRequest,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, ModelError> {
        let mut stream = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(None),
            s = self.provider.chat_stream(request) => s?,
        };
        let mut text = String::new();
        loop {
            let item = tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(None),
                item = stream.next() => item,
            };
            match item {
                None | Some(Ok(StreamEvent::Done { .. })) => return Ok(Some(text)),
                Some(Ok(StreamEvent::TextDelta { text: t })) => text.push_str(&t),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
            }
        }
    }

    /// Sets the request's tools and the ledger's fixed cost for the current tool mode.
    fn configure_tools(&mut self) {
        if self.config.tools_enabled && self.native_tools {
            self.request.tools = self.tools.definitions();
            let schema_bytes = serde_json::to_string(&self.request.tools).map_or(0, |s| s.len());
            self.ledger
                .set_fixed(u32::try_from(schema_bytes.div_ceil(3)).unwrap_or(u32::MAX));
        } else {
            self.request.tools.clear();
            self.ledger.set_fixed(0);
        }
    }

    fn system_message(&self) -> ChatMessage {
        let mut text = prompt::system_prompt(
            &self.workspace,
            self.agents_md.as_deref(),
            self.config.tools_enabled,
        );
        if self.config.tools_enabled && !self.native_tools {
            text.push_str(&prompt::text_tool_instructions(&self.tools.definitions()));
        }
        ChatMessage::system(text)
    }
}

/// Reads `AGENTS.md` from the workspace, at most a little past the prompt's bound.
fn read_agents_md(workspace: &std::path::Path, warnings: &mut Vec<String>) -> Option<String> {
    use std::io::Read as _;
    let path = workspace.join("AGENTS.md");
    let file = std::fs::File::open(&path).ok()?;
    let mut bytes = Vec::new();
    let limit = (AGENTS_MD_MAX_BYTES * 4) as u64;
    if let Err(e) = file.take(limit).read_to_end(&mut bytes) {
        warnings.push(format!("could not read {}: {e}", path.display()));
        return None;
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.len() <= max {
        return line.to_owned();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

//! [`Agent`]: the model ↔ tools loop.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt as _;
use nanna_model::ToolDefinition;
use nanna_model::{
    CallIds, ChatMessage, ChatRequest, DEFAULT_CONTEXT_WINDOW, FinishReason, ModelError, ModelInfo,
    ModelProvider, StreamEvent, ToolCall, Usage,
};
use nanna_sandbox::Sandbox;
use nanna_tools::{Effect, ToolContext, ToolError, ToolRegistry};
use tokio_util::sync::CancellationToken;

mod context;

use crate::approval::{self, Approver};
use crate::compaction;
use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::event::{AgentEvent, RunOutcome};
use crate::prompt::{self, AGENTS_MD_MAX_BYTES};
use crate::session::Session;
use crate::textcalls::{TextCallForms, parse_text_tool_calls, strip_calls};
use crate::tokens::TokenLedger;

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
    /// Where every command of the session runs (and its temporary directory).
    sandbox: Arc<Sandbox>,
    agents_md: Option<String>,
    always_approved: HashSet<String>,
    pending_warnings: Vec<String>,
    started: bool,
    session_write_failed: bool,
    /// Ids of calls found in text, and of native calls that came without one.
    call_ids: CallIds,
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
    /// All reasoning of the reply, kept with the assistant message.
    thinking: String,
    calls: Vec<ToolCall>,
    finish_reason: Option<FinishReason>,
    usage: Option<Usage>,
    cancelled: bool,
}

/// The calls of one reply, and the text to keep.
struct Extracted {
    /// The assistant text to keep in the history.
    content: String,
    calls: Vec<ToolCall>,
    /// The calls were written as text by a model without native tools: they stay in the
    /// content and their results go back as user messages.
    as_text: bool,
    /// Calls written in `<tool_call>` markup that could not be read, by id: what was wrong.
    unreadable: HashMap<String, String>,
}

impl Extracted {
    fn plain(content: String, calls: Vec<ToolCall>) -> Self {
        Self {
            content,
            calls,
            as_text: false,
            unreadable: HashMap::new(),
        }
    }
}

/// What one tool call produced, as the model and the terminal will see it.
struct CallResult {
    ok: bool,
    content: String,
    summary: String,
    /// Base64 images the tool returned (MCP image content); `content` names them in words.
    images: Vec<String>,
}

impl CallResult {
    fn error(message: impl std::fmt::Display) -> Self {
        let content = format!("error: {message}");
        let summary = first_line(&content, 120);
        Self {
            ok: false,
            content,
            summary,
            images: Vec::new(),
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
        if let (false, Some(path)) = (session.is_saved(), session.path()) {
            warnings.push(format!(
                "session {} is open read-only: nothing of this conversation will be saved to {}",
                session.id(),
                path.display()
            ));
        }
        // Probing the sandbox runs bubblewrap once per process; do it while the server answers.
        let policy = config.sandbox.clone();
        let ws = workspace.clone();
        let tools_enabled = config.tools_enabled;
        let sandbox = tokio::task::spawn_blocking(move || {
            if tools_enabled {
                Sandbox::new(policy, &ws)
            } else {
                // Nothing will run: skip the probe.
                let none = nanna_sandbox::Support::unsupported("tools are turned off");
                Sandbox::with_support(policy, &ws, Arc::new(none))
            }
        });
        let (model_info, sandbox) = tokio::join!(provider.model_info(&config.model), sandbox);
        let sandbox = Arc::new(sandbox.map_err(|e| AgentError::Workspace {
            path: config.workspace.clone(),
            detail: format!("setting up the sandbox failed: {e}"),
        })??);
        if config.tools_enabled
            && let Err(e) = sandbox.check()
        {
            warnings.push(format!("shell is not available in this session: {e}"));
        }
        if config.tools_enabled
            && let Some(warning) = sandbox.home_warning()
        {
            warnings.push(warning);
        }
        let requested = config
            .options
            .context_window
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_CONTEXT_WINDOW);
        let model_info = match model_info {
            Ok(info) => info,
            Err(e @ (ModelError::Unreachable { .. } | ModelError::ModelNotFound { .. })) => {
                return Err(e.into());
            }
            Err(e) => {
                warnings.push(format!(
                    "could not read the model's details ({e}); assuming native tool calling and \
                     a {requested}-token context window"
                ));
                ModelInfo {
                    name: config.model.clone(),
                    ..ModelInfo::default()
                }
            }
        };
        let context_window = match model_info.context_length {
            Some(max) if max > 0 => requested.min(max),
            _ => requested,
        };
        let native_tools = config
            .native_tools
            .unwrap_or_else(|| model_info.capabilities.is_none_or(|c| c.tools));
        warnings.extend(model_info.notes.iter().cloned());
        if let Some(think) = config.options.think
            && think.enabled()
            && model_info.capabilities.is_some_and(|c| !c.thinking)
        {
            warnings.push(format!(
                "model `{}` does not think (no thinking capability); think = {think} is ignored",
                config.model
            ));
        }
        let agents_md = read_agents_md(&workspace, &mut warnings);

        let mut request = ChatRequest::new(config.model.clone(), Vec::new());
        request.options = config.options.clone();
        request.options.context_window = Some(context_window);

        let mut agent = Self {
            provider,
            tools,
            config,
            session,
            request,
            ledger: TokenLedger::new(),
            model_info,
            context_window,
            native_tools,
            workspace,
            sandbox,
            agents_md,
            always_approved: HashSet::new(),
            pending_warnings: warnings,
            started: false,
            session_write_failed: false,
            call_ids: CallIds::new(),
        };
        agent.configure_tools();
        let mut messages = Vec::with_capacity(agent.session.messages().len() + 1);
        messages.push(agent.system_message());
        messages.extend(agent.session.take_messages());
        agent.request.messages = messages;
        agent.ledger.rebuild(&agent.request.messages);
        agent.restore_calibration();
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

    /// The sandbox every command of the session runs in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The tools offered to the model: those the session's policy lets run.
    pub fn offered_tools(&self) -> Vec<ToolDefinition> {
        let enforced = self.sandbox.check().is_ok();
        self.tools
            .names()
            .into_iter()
            .filter_map(|name| self.tools.get(name))
            .filter(|t| approval::offers(t.effect(), &self.config, enforced))
            .map(|t| t.definition().clone())
            .collect()
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
        let input = ChatMessage::user(user_input);
        if let Err(e) = self.check_fits_alone(&input).await {
            on_event(AgentEvent::Error {
                message: e.to_string(),
            });
            return Err(e);
        }
        self.push(input, on_event);
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
            if self.fit(cancel, on_event).await? {
                return Ok(RunOutcome::Cancelled { turns });
            }
            let estimate = self.ledger.total();
            let sent = self.request.messages.len();
            on_event(AgentEvent::WaitingForModel);
            turns += 1;
            let reply = self.stream_reply(cancel, on_event).await?;
            if reply.cancelled {
                if !reply.text.is_empty() {
                    let text = format!("{}\n[interrupted by the user]", reply.text);
                    self.push(
                        ChatMessage::assistant(text).with_thinking(reply.thinking),
                        on_event,
                    );
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
            if let Some(usage) = reply.usage.filter(|u| u.prompt_tokens > 0) {
                self.observe_usage(sent, usage.prompt_tokens, on_event);
            }

            let Extracted {
                content,
                calls,
                as_text,
                unreadable,
            } = self.extract_calls(reply.text, reply.calls);
            let message = if calls.is_empty() || as_text {
                ChatMessage::assistant(content.clone())
            } else {
                ChatMessage::assistant_with_tool_calls(content.clone(), calls.clone())
            }
            .with_thinking(reply.thinking);
            self.push(message, on_event);
            if !content.trim().is_empty() {
                *final_text = content;
            }
            if finish_reason == FinishReason::Length {
                on_event(AgentEvent::Warning {
                    message: self.cut_reply_message(reply.usage.as_ref()),
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
                .execute_calls(calls, as_text, &unreadable, approver, cancel, on_event)
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
                    self.ledger.reset_base(&self.request.messages);
                }
                Err(e) => return Err(e.into()),
            }
        };
        // The reasoning block being streamed, reported whole once something else comes.
        let mut block = String::new();
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
                    close_block(&mut block, on_event);
                    reply.text.push_str(&text);
                    on_event(AgentEvent::TextDelta { text });
                }
                Some(Ok(StreamEvent::ThinkingDelta { text })) => {
                    block.push_str(&text);
                    reply.thinking.push_str(&text);
                    on_event(AgentEvent::ThinkingDelta { text });
                }
                Some(Ok(StreamEvent::ToolCall { call })) => {
                    close_block(&mut block, on_event);
                    reply.calls.push(call);
                }
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
        close_block(&mut block, on_event);
        Ok(reply)
    }

    /// Gives native calls their missing ids, or finds calls written as text. Native calls
    /// are kept as the model sent them (arguments that are not valid JSON included: their
    /// call is answered with an error when it runs). Text calls are recognised in the forms
    /// the model's tool support allows (see [`TextCallForms`]).
    fn extract_calls(&mut self, text: String, native: Vec<ToolCall>) -> Extracted {
        if !native.is_empty() {
            let calls = native
                .into_iter()
                .map(|mut call| {
                    if call.id.is_empty() {
                        call.id = self.call_ids.next_id();
                    }
                    call
                })
                .collect();
            return Extracted::plain(text, calls);
        }
        if !self.config.tools_enabled || text.is_empty() {
            return Extracted::plain(text, Vec::new());
        }
        let forms = if self.native_tools && !self.config.json_tool_calls {
            TextCallForms::Markup
        } else {
            TextCallForms::Any
        };
        let tools = &self.tools;
        let found = parse_text_tool_calls(&text, &|name| tools.get(name).is_some(), forms);
        if found.is_empty() {
            return Extracted::plain(text, Vec::new());
        }
        let mut calls = Vec::with_capacity(found.len());
        let mut unreadable = HashMap::new();
        for c in &found {
            let id = self.call_ids.next_id();
            if let Some(problem) = &c.problem {
                unreadable.insert(id.clone(), problem.clone());
            }
            let name = if c.name.is_empty() {
                "unknown".to_owned()
            } else {
                c.name.clone()
            };
            calls.push(ToolCall {
                id,
                name,
                arguments: c.arguments.clone(),
            });
        }
        let (content, as_text) = if self.native_tools {
            (strip_calls(&text, &found), false)
        } else {
            (text, true)
        };
        Extracted {
            content,
            calls,
            as_text,
            unreadable,
        }
    }

    /// Runs the calls: consecutive read-only calls concurrently, the others one by one with
    /// approval. Returns `true` when cancelled (every call still got a result).
    async fn execute_calls(
        &mut self,
        calls: Vec<ToolCall>,
        as_text: bool,
        unreadable: &HashMap<String, String>,
        approver: &dyn Approver,
        cancel: &CancellationToken,
        on_event: &mut OnEvent<'_>,
    ) -> bool {
        let ctx = ToolContext::with_sandbox(self.sandbox.clone())
            .with_cancel(cancel.child_token())
            .with_limits(self.config.tool_limits);
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
                let results = futures::future::join_all(group.iter().map(|call| async {
                    match self.precheck(call, unreadable) {
                        Some(refusal) => refusal,
                        None => self.run_tool(call, &ctx, cancel).await,
                    }
                }))
                .await;
                for (call, result) in group.iter().zip(results) {
                    self.record_result(call, result, as_text, on_event);
                }
                i = end;
            } else {
                let call = &calls[i];
                on_event(self.call_event(call));
                let result = match self.precheck(call, unreadable) {
                    Some(refusal) => refusal,
                    None => match self.gate(call, approver, cancel).await {
                        Some(refusal) => refusal,
                        None => self.run_tool(call, &ctx, cancel).await,
                    },
                };
                self.record_result(call, result, as_text, on_event);
                i += 1;
            }
        }
        cancel.is_cancelled()
    }

    /// The error for a call that cannot run whatever the policy says: written in markup
    /// that could not be read, or with arguments that do not fit the tool (not valid JSON
    /// included). Checked before asking for approval, so nobody approves a broken call.
    fn precheck(
        &self,
        call: &ToolCall,
        unreadable: &HashMap<String, String>,
    ) -> Option<CallResult> {
        if let Some(problem) = unreadable.get(&call.id) {
            return Some(CallResult::error(format!(
                "could not read this tool call: {problem}. Write it again as \
                 <tool_call>{{\"name\": \"<tool>\", \"arguments\": {{...}}}}</tool_call> with \
                 complete, valid JSON"
            )));
        }
        if !self.config.tools_enabled {
            return None;
        }
        self.tools
            .validate(&call.name, call.arguments.clone())
            .err()
            .map(CallResult::error)
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
        approval::gate(
            call,
            tool,
            &self.config,
            &self.sandbox,
            &mut self.always_approved,
            approver,
            cancel,
        )
        .await
        .err()
        .map(CallResult::error)
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
                images: output.images,
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
            let message = ChatMessage::tool_result(&call.id, &call.name, result.content.as_str());
            // Only a model that takes images gets the pixels; the text already names them.
            let vision = self.model_info.capabilities.is_some_and(|c| c.vision);
            if vision && !result.images.is_empty() {
                message.with_images(result.images)
            } else {
                message
            }
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

    /// Sets the request's tools and the ledger's fixed cost for the current tool mode.
    fn configure_tools(&mut self) {
        if self.config.tools_enabled && self.native_tools {
            self.request.tools = self.offered_tools();
            let schema_bytes = serde_json::to_string(&self.request.tools).map_or(0, |s| s.len());
            self.ledger
                .set_tools_raw(u32::try_from(schema_bytes.div_ceil(3)).unwrap_or(u32::MAX));
        } else {
            self.request.tools.clear();
            self.ledger.set_tools_raw(0);
        }
    }

    fn system_message(&self) -> ChatMessage {
        let mut text = prompt::system_prompt(
            &self.workspace,
            self.agents_md.as_deref(),
            self.config.tools_enabled,
        );
        if self.config.tools_enabled
            && self.sandbox.check().is_ok()
            && let Some(note) =
                prompt::sandbox_note(self.config.sandbox.mode, self.config.sandbox.network)
        {
            text.push_str(&note);
        }
        if self.config.tools_enabled && !self.native_tools {
            text.push_str(&prompt::text_tool_instructions(&self.offered_tools()));
        }
        ChatMessage::system(text)
    }
}

/// Reports a finished reasoning block as one [`AgentEvent::Thinking`].
fn close_block(block: &mut String, on_event: &mut OnEvent<'_>) {
    if !block.is_empty() {
        on_event(AgentEvent::Thinking {
            text: std::mem::take(block),
        });
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

//! [`OllamaProvider`]: Ollama's native API (`/api/chat`, `/api/show`, `/api/pull`...).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::provider::{ChatStream, ModelError, ModelProvider, PullStream, Result};
use crate::reply::{self, Collector, FrameParser};
use crate::stream::FrameTooLarge;
use crate::stream::NdjsonDecoder;
use crate::transport::{
    HttpFailure, Limits, MAX_LINE_SETTING, Transport, decode_json, excerpt, parse_base_url,
};
use crate::types::{
    CallIds, Capabilities, ChatMessage, ChatRequest, ChatResponse, DEFAULT_CONTEXT_WINDOW,
    FinishReason, MessageRole, ModelInfo, ModelSummary, PullProgress, RunningModel, StreamEvent,
    Timings, ToolCall, ToolDefinition, Usage,
};
use crate::wire::{self, bare_base64};

/// How long a failed `/api/show` is trusted before it is asked again.
pub const DEFAULT_DETAILS_RETRY: Duration = Duration::from_secs(30);

/// A client of Ollama's native HTTP API.
///
/// Every chat request carries `options.num_ctx` (Ollama otherwise silently truncates the
/// conversation to its own default window): the request's context window, else this
/// provider's default, capped at the model's maximum from `/api/show`. Model details are
/// fetched once per model and cached; a failed fetch is retried once
/// [`DEFAULT_DETAILS_RETRY`] has passed (a server busy loading a model answers again later).
#[derive(Debug)]
pub struct OllamaProvider {
    transport: Transport,
    default_context_window: u32,
    keep_alive: Option<String>,
    models: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Details>>>>,
    details_retry: Duration,
    /// Source of ids for tool calls the server sent without one.
    next_call_id: CallIds,
}

impl OllamaProvider {
    /// A provider for the Ollama server at `base_url` (e.g. `http://localhost:11434`).
    ///
    /// Fails with [`ModelError::Unreachable`] when `base_url` is not an http(s) URL. No
    /// connection is made and no HTTP client is built until the first request.
    pub fn new(base_url: &str) -> Result<Self> {
        Ok(Self::from_url(&parse_base_url(base_url)?))
    }

    /// A provider for an already validated URL.
    pub(crate) fn from_url(base_url: &Url) -> Self {
        Self {
            transport: Transport::from_url(base_url),
            default_context_window: DEFAULT_CONTEXT_WINDOW,
            keep_alive: None,
            models: Mutex::new(HashMap::new()),
            details_retry: DEFAULT_DETAILS_RETRY,
            next_call_id: CallIds::new(),
        }
    }

    /// Sets the context window used when a request does not set one (0 is ignored).
    pub fn with_default_context_window(mut self, tokens: u32) -> Self {
        if tokens > 0 {
            self.default_context_window = tokens;
        }
        self
    }

    /// Sets how long Ollama keeps the model loaded after a request (`5m`, `1h`, `-1` for
    /// ever, `0` to unload at once), unless the request sets its own.
    pub fn with_keep_alive(mut self, keep_alive: Option<String>) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Sets every timeout and size limit at once (see [`Limits`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.transport.limits = limits;
        self
    }

    /// Sets how long a failed `/api/show` is remembered before it is tried again (default
    /// [`DEFAULT_DETAILS_RETRY`]; zero retries on every request).
    pub fn with_details_retry(mut self, after: Duration) -> Self {
        self.details_retry = after;
        self
    }

    /// Sends a bearer token (for an Ollama behind an authenticating proxy).
    pub fn with_api_key(mut self, key: Option<String>) -> Self {
        self.transport.api_key = key.filter(|k| !k.is_empty());
        self
    }

    /// The `num_ctx` a request for `request.model` will carry.
    pub async fn context_window_for(&self, request: &ChatRequest) -> Result<u32> {
        let info = self.cached_info(&request.model).await?;
        Ok(self.num_ctx(request, info.as_ref()))
    }

    fn num_ctx(&self, request: &ChatRequest, info: Option<&ModelInfo>) -> u32 {
        let wanted = request
            .options
            .context_window
            .filter(|&n| n > 0)
            .unwrap_or(self.default_context_window);
        let cap = info.and_then(|info| info.context_length).filter(|&n| n > 0);
        cap.map_or(wanted, |cap| wanted.min(cap))
    }

    /// Model details from the cache, fetched on first use. `None` when the server could not
    /// tell (e.g. an old server without `/api/show`, or one too busy to answer); that answer
    /// is trusted for `details_retry` only, then asked again. A missing model is an error.
    async fn cached_info(&self, model: &str) -> Result<Option<ModelInfo>> {
        let slot = {
            let mut models = self
                .models
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            models.entry(model.to_owned()).or_default().clone()
        };
        // One fetch at a time per model: concurrent requests wait for its answer.
        let mut details = slot.lock().await;
        if let Some(info) = &details.info {
            return Ok(Some(info.clone()));
        }
        if details
            .failed_at
            .is_some_and(|at| at.elapsed() < self.details_retry)
        {
            return Ok(None);
        }
        match self.show(model).await {
            Ok(info) => {
                details.info = Some(info.clone());
                details.failed_at = None;
                Ok(Some(info))
            }
            Err(error @ (ModelError::Http { .. } | ModelError::Malformed { .. })) => {
                tracing::warn!(
                    model,
                    %error,
                    "could not read the model's details; its context length is unknown for now"
                );
                details.failed_at = Some(Instant::now());
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// `POST /api/show`.
    async fn show(&self, model: &str) -> Result<ModelInfo> {
        let operation = format!("reading details of model `{model}`");
        let request = self
            .transport
            .post_json("/api/show", &serde_json::json!({ "model": model }))?;
        let response = self
            .transport
            .send(request, &operation)
            .await?
            .map_err(|failure| classify(failure, model))?;
        let bytes = self
            .transport
            .body(response, &operation)
            .read_to_end()
            .await?;
        let show: WireShow = decode_json(&bytes, &operation)?;
        Ok(show.into_info(model))
    }

    fn chat_body<'a>(
        &self,
        request: &'a ChatRequest,
        info: Option<&ModelInfo>,
        stream: bool,
    ) -> WireChatRequest<'a> {
        let keep_alive = request
            .options
            .keep_alive
            .as_deref()
            .or(self.keep_alive.as_deref())
            .map(keep_alive_value);
        // Ollama refuses `think` (true or a level) for a model without the thinking
        // capability with 400 `"m" does not support thinking` (server/routes.go
        // ChatHandler); `false` is always accepted.
        let can_think = info
            .and_then(|info| info.capabilities)
            .is_none_or(|caps| caps.thinking);
        let think = request
            .options
            .think
            .filter(|think| can_think || !think.enabled())
            .map(crate::types::Think::to_ollama);
        WireChatRequest {
            model: &request.model,
            messages: request.messages.iter().map(wire_message).collect(),
            tools: wire::offered_tools(request),
            stream,
            options: WireOptions {
                num_ctx: self.num_ctx(request, info),
                temperature: request.options.temperature,
                seed: request.options.seed,
                num_predict: request.options.max_tokens,
            },
            keep_alive,
            think,
        }
    }

    async fn start_chat(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<crate::transport::Body> {
        let info = self.cached_info(&request.model).await?;
        let body = self.chat_body(request, info.as_ref(), stream);
        let operation = format!("chat with model `{}`", request.model);
        let http = self.transport.post_json("/api/chat", &body)?;
        self.transport
            .open(http, &operation, |failure| {
                classify(failure, &request.model)
            })
            .await
    }

    fn parser(&self, request: &ChatRequest) -> ChatParser {
        ChatParser {
            decoder: NdjsonDecoder::with_max_line(self.transport.limits.max_line_bytes),
            state: ChatState {
                call_ids: self.next_call_id.clone(),
                calls: Vec::new(),
                done: false,
                lines: 0,
                tool_choice: wire::ChoiceCheck::new(request),
            },
        }
    }
}

/// What the provider knows of one model's details.
#[derive(Debug, Default)]
struct Details {
    info: Option<ModelInfo>,
    /// When `/api/show` last failed, while no answer is known.
    failed_at: Option<Instant>,
}

/// Maps an HTTP error of a request about `model` to the most helpful error.
fn classify(failure: HttpFailure, model: &str) -> ModelError {
    let lower = failure.message.to_lowercase();
    // Go's router answers unknown paths with a bare "404 page not found": the server is
    // not Ollama (or is behind a proxy that rewrites paths), the model is not the problem.
    if failure.status == 404 && lower.trim() == "404 page not found" {
        ModelError::Http {
            status: 404,
            message: format!(
                "{} (is this an Ollama server? For an OpenAI-compatible server set \
                 provider = \"openai\")",
                failure.message
            ),
        }
    } else {
        failure.about_model(model, true)
    }
}

/// Ollama takes a number of seconds or a Go duration string; a bare number as a string
/// (`"-1"`) is rejected by its duration parser, so send those as numbers.
fn keep_alive_value(text: &str) -> Value {
    let text = text.trim();
    if let Ok(n) = text.parse::<i64>() {
        Value::from(n)
    } else if let Ok(x) = text.parse::<f64>() {
        Value::from(x)
    } else {
        Value::from(text)
    }
}

#[async_trait]
impl ModelProvider for OllamaProvider {
    fn name(&self) -> &str {
        "ollama"
    }

    fn base_url(&self) -> &str {
        self.transport.shown()
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse> {
        let body = self.start_chat(request, false).await?;
        let events = reply::parse_all(body, self.parser(request)).await?;
        let mut collector = Collector::default();
        for event in events {
            collector.push(event);
        }
        collector.finish(&request.model)
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream> {
        let body = self.start_chat(request, true).await?;
        Ok(reply::event_stream(body, self.parser(request)))
    }

    async fn list_models(&self) -> Result<Vec<ModelSummary>> {
        let request = self.transport.request(reqwest::Method::GET, "/api/tags")?;
        let tags: WireTags = self.transport.json(request, "listing models").await?;
        Ok(tags
            .models
            .into_iter()
            .map(WireTagModel::into_summary)
            .collect())
    }

    async fn model_info(&self, model: &str) -> Result<ModelInfo> {
        match self.cached_info(model).await? {
            Some(info) => Ok(info),
            // Within the retry interval of a failure: report the failure itself.
            None => self.show(model).await,
        }
    }

    async fn health(&self) -> Result<()> {
        self.version().await.map(|_| ())
    }

    async fn version(&self) -> Result<String> {
        let request = self
            .transport
            .request(reqwest::Method::GET, "/api/version")?;
        let version: WireVersion = self
            .transport
            .json(request, "reading the server version")
            .await?;
        Ok(version.version)
    }

    async fn pull(&self, model: &str) -> Result<PullStream> {
        let operation = format!("downloading model `{model}`");
        let request = self.transport.post_json(
            "/api/pull",
            &serde_json::json!({ "model": model, "stream": true }),
        )?;
        let response = self
            .transport
            .send(request, &operation)
            .await?
            .map_err(|failure| classify(failure, model))?;
        let body = self.transport.unbounded_body(response, &operation);
        // A finished pull changes what /api/show knows: forget the cached details.
        self.models
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(model);
        Ok(reply::item_stream(
            body,
            PullParser::new(self.transport.limits.max_line_bytes),
        ))
    }

    async fn running_models(&self) -> Result<Vec<RunningModel>> {
        let request = self.transport.request(reqwest::Method::GET, "/api/ps")?;
        let ps: WirePs = self
            .transport
            .json(request, "listing running models")
            .await?;
        Ok(ps
            .models
            .into_iter()
            .map(WirePsModel::into_running)
            .collect())
    }
}

/// Parses `/api/chat` NDJSON (streamed, or the single object of a non-streamed reply).
struct ChatParser {
    decoder: NdjsonDecoder,
    state: ChatState,
}

/// What a chat reply has shown so far.
struct ChatState {
    call_ids: CallIds,
    /// Names of the tools called so far.
    calls: Vec<String>,
    done: bool,
    lines: u64,
    tool_choice: wire::ChoiceCheck,
}

impl ChatState {
    fn line(&mut self, line: &[u8], out: &mut VecDeque<StreamEvent>) -> Result<()> {
        self.lines += 1;
        let line_number = self.lines;
        let chunk: WireChunk =
            serde_json::from_slice(line).map_err(|error| ModelError::Malformed {
                detail: format!(
                    "line {line_number} of the chat stream is not valid JSON ({error}): {}",
                    excerpt(&String::from_utf8_lossy(line))
                ),
            })?;
        if let Some(error) = chunk.error {
            let message = match error {
                Value::String(text) => text,
                Value::Object(ref map) => map
                    .get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| error.to_string(), str::to_owned),
                other => other.to_string(),
            };
            return Err(ModelError::Server { message });
        }
        if let Some(message) = chunk.message {
            if let Some(thinking) = message.thinking.filter(|t| !t.is_empty()) {
                out.push_back(StreamEvent::ThinkingDelta { text: thinking });
            }
            if !message.content.is_empty() {
                out.push_back(StreamEvent::TextDelta {
                    text: message.content,
                });
            }
            // Tool calls may come in any chunk, the final `done: true` one included
            // (gpt-oss and the other built-in parsers, server/routes.go ChatHandler).
            for call in message.tool_calls {
                let call = self.tool_call(call);
                self.calls.push(call.name.clone());
                out.push_back(StreamEvent::ToolCall { call });
            }
        }
        if chunk.done {
            self.done = true;
            self.tool_choice.check(&self.calls)?;
            let finish_reason = if !self.calls.is_empty() {
                FinishReason::ToolCalls
            } else if chunk.done_reason.as_deref() == Some("length") {
                FinishReason::Length
            } else {
                FinishReason::Stop
            };
            let usage =
                (chunk.prompt_eval_count.is_some() || chunk.eval_count.is_some()).then(|| Usage {
                    prompt_tokens: chunk.prompt_eval_count.unwrap_or(0),
                    completion_tokens: chunk.eval_count.unwrap_or(0),
                    // `prompt_eval_count` is the whole prompt since Ollama 0.3.13 (runner:
                    // `numPromptInputs = len(inputs)`; llama-server engine, `llm/
                    // llama_server.go`: `cache_n + prompt_n`); before, only the evaluated
                    // part. Ollama does not say how much of it its cache held.
                    cached_prompt_tokens: None,
                    timings: Some(Timings {
                        total: chunk.total_duration.map(Duration::from_nanos),
                        load: chunk.load_duration.map(Duration::from_nanos),
                        prompt_eval: chunk.prompt_eval_duration.map(Duration::from_nanos),
                        eval: chunk.eval_duration.map(Duration::from_nanos),
                    })
                    .filter(|t| *t != Timings::default()),
                });
            out.push_back(StreamEvent::Done {
                finish_reason,
                usage,
            });
        }
        Ok(())
    }

    /// A call as the agent sees it. Arguments sent as a JSON string are decoded; a string
    /// that is not valid JSON stays a string, exactly as the model wrote it: the agent
    /// answers that call with an error and the other calls still run.
    fn tool_call(&self, call: WireToolCall) -> ToolCall {
        let name = call.function.name;
        let arguments = match call.function.arguments {
            Value::Null => Value::Object(Map::new()),
            Value::String(text) if text.trim().is_empty() => Value::Object(Map::new()),
            Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            other => other,
        };
        let id = match call.id {
            Some(id) if !id.is_empty() => id,
            _ => self.call_ids.next_id(),
        };
        ToolCall {
            id,
            name,
            arguments,
        }
    }
}

impl FrameParser for ChatParser {
    type Item = StreamEvent;

    fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<StreamEvent>) -> Result<()> {
        self.decoder.push(bytes);
        while !self.state.done {
            let Some(line) = self.decoder.next_line().map_err(line_too_long)? else {
                break;
            };
            self.state.line(line, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<()> {
        if !self.state.done
            && let Some(line) = self.decoder.finish().map_err(line_too_long)?
        {
            self.state.line(line, out)?;
        }
        if self.state.done {
            Ok(())
        } else {
            Err(ModelError::Interrupted {
                detail: "the chat stream ended without its final `done` message".into(),
            })
        }
    }

    fn is_done(&self) -> bool {
        self.state.done
    }
}

/// The error for an NDJSON line over the limit.
fn line_too_long(error: FrameTooLarge) -> ModelError {
    ModelError::TooLarge {
        what: format!("line {} of the stream", error.frame),
        limit: error.limit as u64,
        setting: MAX_LINE_SETTING.into(),
    }
}

/// Parses `/api/pull` progress lines.
struct PullParser {
    decoder: NdjsonDecoder,
    done: bool,
}

impl PullParser {
    fn new(max_line: usize) -> Self {
        Self {
            decoder: NdjsonDecoder::with_max_line(max_line),
            done: false,
        }
    }

    fn line(&mut self, line: &[u8], out: &mut VecDeque<PullProgress>) -> Result<()> {
        let progress: WirePull =
            serde_json::from_slice(line).map_err(|error| ModelError::Malformed {
                detail: format!(
                    "a line of the download progress is not valid JSON ({error}): {}",
                    excerpt(&String::from_utf8_lossy(line))
                ),
            })?;
        if let Some(message) = progress.error {
            return Err(ModelError::Server { message });
        }
        if progress.status == "success" {
            self.done = true;
        }
        out.push_back(PullProgress {
            status: progress.status,
            digest: progress.digest,
            total: progress.total,
            completed: progress.completed,
        });
        Ok(())
    }
}

impl FrameParser for PullParser {
    type Item = PullProgress;

    fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<PullProgress>) -> Result<()> {
        self.decoder.push(bytes);
        while !self.done {
            let Some(line) = self.decoder.next_line().map_err(line_too_long)? else {
                break;
            };
            let line = line.to_vec();
            self.line(&line, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut VecDeque<PullProgress>) -> Result<()> {
        if !self.done
            && let Some(line) = self.decoder.finish().map_err(line_too_long)?
        {
            let line = line.to_vec();
            self.line(&line, out)?;
        }
        if self.done {
            Ok(())
        } else {
            Err(ModelError::Interrupted {
                detail: "the download progress ended before `success`".into(),
            })
        }
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

// ---- Wire format ----

#[derive(Serialize)]
struct WireChatRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<&'a ToolDefinition>,
    stream: bool,
    options: WireOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<Value>,
}

#[derive(Serialize)]
struct WireOptions {
    num_ctx: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: MessageRole,
    content: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    thinking: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireOutCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct WireOutCall<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    id: &'a str,
    function: WireOutFunction<'a>,
}

#[derive(Serialize)]
struct WireOutFunction<'a> {
    name: &'a str,
    arguments: Value,
}

fn wire_message(message: &ChatMessage) -> WireMessage<'_> {
    WireMessage {
        role: message.role,
        content: &message.content,
        // Sent back as Ollama's tool-calling docs say (docs/capabilities/tool-calling.mdx,
        // "Tool calling with streaming").
        thinking: &message.thinking,
        // api.ImageData is []byte: Go's JSON decoder wants bare base64 and answers 400
        // "illegal base64 data at input byte 4" for a `data:` URL.
        images: message
            .images
            .iter()
            .map(|image| bare_base64(image))
            .collect(),
        tool_calls: message
            .tool_calls
            .iter()
            .map(|call| WireOutCall {
                id: &call.id,
                function: WireOutFunction {
                    name: &call.name,
                    arguments: object_arguments(&call.arguments),
                },
            })
            .collect(),
        tool_name: message.tool_name.as_deref(),
        tool_call_id: message.tool_call_id.as_deref(),
    }
}

/// Ollama takes arguments only as an object: `api.ToolCallFunctionArguments.UnmarshalJSON`
/// (ollama `api/types.go`) decodes them into an ordered map, so anything else is an HTTP 400
/// for the whole request. History from an OpenAI-style server may hold a JSON string; a
/// string that is not valid JSON (a call the model wrote badly, kept verbatim in the
/// session and answered with an error) goes as `{}`, the only form Ollama accepts.
fn object_arguments(arguments: &Value) -> Value {
    match arguments {
        Value::Object(_) => arguments.clone(),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(value @ Value::Object(_)) => value,
            _ => Value::Object(Map::new()),
        },
        _ => Value::Object(Map::new()),
    }
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    message: Option<WireReplyMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    prompt_eval_count: Option<u32>,
    #[serde(default)]
    eval_count: Option<u32>,
    #[serde(default)]
    total_duration: Option<u64>,
    #[serde(default)]
    load_duration: Option<u64>,
    #[serde(default)]
    prompt_eval_duration: Option<u64>,
    #[serde(default)]
    eval_duration: Option<u64>,
}

#[derive(Deserialize)]
struct WireReplyMessage {
    #[serde(default)]
    content: String,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize)]
struct WirePull {
    #[serde(default)]
    status: String,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    completed: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct WireVersion {
    version: String,
}

#[derive(Deserialize, Default)]
struct WireDetails {
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    parameter_size: Option<String>,
    #[serde(default)]
    quantization_level: Option<String>,
}

#[derive(Deserialize)]
struct WireTags {
    #[serde(default)]
    models: Vec<WireTagModel>,
}

#[derive(Deserialize)]
struct WireTagModel {
    #[serde(default)]
    name: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    modified_at: Option<String>,
    #[serde(default)]
    details: Option<WireDetails>,
}

impl WireTagModel {
    fn into_summary(self) -> ModelSummary {
        let details = self.details.unwrap_or_default();
        let name = if self.name.is_empty() {
            self.model.unwrap_or_default()
        } else {
            self.name
        };
        ModelSummary {
            name,
            size_bytes: self.size,
            parameter_size: details.parameter_size,
            quantization: details.quantization_level,
            family: details.family,
            modified_at: self.modified_at,
        }
    }
}

/// `/api/show` (api/types.go `ShowResponse`); also read by the OpenAI provider when the
/// server behind it is Ollama.
#[derive(Deserialize, Default)]
pub(crate) struct WireShow {
    #[serde(default)]
    details: Option<WireDetails>,
    #[serde(default)]
    model_info: Option<Map<String, Value>>,
    #[serde(default)]
    capabilities: Option<Vec<String>>,
    /// The Modelfile's parameters as text (`num_ctx                        8192`).
    #[serde(default)]
    parameters: Option<String>,
}

impl WireShow {
    /// The `num_ctx` the Modelfile sets: the window a request that sets none gets.
    pub(crate) fn modelfile_num_ctx(&self) -> Option<u64> {
        self.parameters.as_deref()?.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("num_ctx"))
                .then(|| words.next()?.parse().ok())
                .flatten()
        })
    }

    pub(crate) fn into_info(self, model: &str) -> ModelInfo {
        let details = self.details.unwrap_or_default();
        let context_length = self.model_info.as_ref().and_then(|info| {
            let arch = info.get("general.architecture")?.as_str()?;
            let n = info.get(&format!("{arch}.context_length"))?.as_u64()?;
            Some(u32::try_from(n).unwrap_or(u32::MAX))
        });
        let capabilities = self.capabilities.map(|list| {
            let has = |name: &str| list.iter().any(|c| c == name);
            Capabilities {
                completion: has("completion"),
                tools: has("tools"),
                vision: has("vision"),
                thinking: has("thinking"),
                embedding: has("embedding"),
            }
        });
        ModelInfo {
            name: model.to_owned(),
            context_length,
            capabilities,
            family: details.family,
            parameter_size: details.parameter_size,
            quantization: details.quantization_level,
            notes: Vec::new(),
        }
    }
}

/// `/api/ps` (api/types.go `ProcessResponse`).
#[derive(Deserialize)]
pub(crate) struct WirePs {
    #[serde(default)]
    pub(crate) models: Vec<WirePsModel>,
}

#[derive(Deserialize)]
pub(crate) struct WirePsModel {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    size_vram: Option<u64>,
    #[serde(default)]
    pub(crate) context_length: Option<u32>,
    #[serde(default)]
    expires_at: Option<String>,
}

impl WirePsModel {
    fn into_running(self) -> RunningModel {
        RunningModel {
            name: self.name,
            size_bytes: self.size,
            vram_bytes: self.size_vram,
            context_length: self.context_length,
            expires_at: self.expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ollama stream with text, thinking, tool calls in two different chunks (one with
    /// arguments as a JSON string, one without an id), multi-byte text and the final chunk.
    const SAMPLE: &str = concat!(
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"Hmm…\"},\"done\":false}\n",
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"Grüße 世界 \"},\"done\":false}\r\n",
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"read_file\",\"arguments\":{\"path\":\"ä.txt\"}}}]},\"done\":false}\n",
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"x1\",\"function\":{\"name\":\"grep\",\"arguments\":\"{\\\"pattern\\\":\\\"fn \\\"}\"}}]},\"done\":false}\n",
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":10,\"eval_count\":4,\"eval_duration\":1000}\n",
    );

    fn parser() -> ChatParser {
        ChatParser {
            decoder: NdjsonDecoder::new(),
            state: ChatState {
                call_ids: CallIds::new(),
                calls: Vec::new(),
                done: false,
                lines: 0,
                tool_choice: wire::ChoiceCheck::new(&ChatRequest::new("m", Vec::new())),
            },
        }
    }

    fn parse(input: &[u8], cut: usize) -> Result<Vec<StreamEvent>> {
        let mut parser = parser();
        let mut out = VecDeque::new();
        parser.feed(&input[..cut], &mut out)?;
        parser.feed(&input[cut..], &mut out)?;
        parser.finish(&mut out)?;
        Ok(out.into())
    }

    #[test]
    fn sample_stream_gives_the_expected_events() {
        let events = parse(SAMPLE.as_bytes(), 0).expect("valid stream");
        assert_eq!(
            events,
            vec![
                StreamEvent::ThinkingDelta {
                    text: "Hmm…".into()
                },
                StreamEvent::TextDelta {
                    text: "Grüße 世界 ".into()
                },
                StreamEvent::ToolCall {
                    call: ToolCall {
                        id: "call_1".into(),
                        name: "read_file".into(),
                        arguments: serde_json::json!({"path": "ä.txt"}),
                    }
                },
                StreamEvent::ToolCall {
                    call: ToolCall {
                        id: "x1".into(),
                        name: "grep".into(),
                        arguments: serde_json::json!({"pattern": "fn "}),
                    }
                },
                StreamEvent::Done {
                    finish_reason: FinishReason::ToolCalls,
                    usage: Some(Usage {
                        prompt_tokens: 10,
                        completion_tokens: 4,
                        cached_prompt_tokens: None,
                        timings: Some(Timings {
                            eval: Some(Duration::from_nanos(1000)),
                            ..Timings::default()
                        }),
                    }),
                },
            ]
        );
    }

    #[test]
    fn every_split_point_gives_identical_events() {
        let input = SAMPLE.as_bytes();
        let whole = parse(input, 0).expect("valid stream");
        for cut in 0..=input.len() {
            assert_eq!(
                parse(input, cut).expect("valid stream"),
                whole,
                "split at byte {cut}"
            );
        }
    }

    #[test]
    fn stream_without_done_is_interrupted() {
        let cut = SAMPLE.rfind("{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true").expect("final line");
        let error = parse(&SAMPLE.as_bytes()[..cut], 0).expect_err("incomplete");
        assert!(matches!(error, ModelError::Interrupted { .. }), "{error}");
    }

    #[test]
    fn invalid_string_arguments_are_kept_verbatim_beside_the_valid_call() {
        let line = b"{\"message\":{\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"edit\",\"arguments\":\"{oops\"}},{\"function\":{\"name\":\"ls\",\"arguments\":{}}}]},\"done\":false}\n{\"done\":true}\n";
        let events = parse(line, 0).expect("a bad call is not a bad stream");
        let args: Vec<&Value> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCall { call } => Some(&call.arguments),
                _ => None,
            })
            .collect();
        assert_eq!(
            args,
            [&Value::String("{oops".into()), &serde_json::json!({})]
        );
        // Echoed to Ollama, which takes only objects, as an empty object.
        assert_eq!(object_arguments(args[0]), serde_json::json!({}));
        assert_eq!(
            object_arguments(&Value::String("{\"a\":1}".into())),
            serde_json::json!({"a": 1})
        );
    }

    #[test]
    fn a_line_over_the_limit_names_the_setting() {
        let mut parser = ChatParser {
            decoder: NdjsonDecoder::with_max_line(64),
            ..parser()
        };
        let mut out = VecDeque::new();
        let error = parser
            .feed("x".repeat(100).as_bytes(), &mut out)
            .expect_err("over the limit before any newline");
        assert!(
            matches!(&error, ModelError::TooLarge { limit: 64, setting, .. } if setting.contains("max_line_bytes")),
            "{error}"
        );
    }

    #[test]
    fn length_and_error_lines() {
        let cut = b"{\"message\":{\"content\":\"abc\"},\"done\":false}\n{\"done\":true,\"done_reason\":\"length\"}\n";
        let events = parse(cut, 0).expect("valid");
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Done {
                finish_reason: FinishReason::Length,
                usage: None
            })
        );
        let error = parse(
            b"{\"message\":{\"content\":\"a\"},\"done\":false}\n{\"error\":\"boom\"}\n",
            0,
        )
        .expect_err("server error");
        assert_eq!(
            error,
            ModelError::Server {
                message: "boom".into()
            }
        );
    }

    #[test]
    fn show_reads_context_length_capabilities_and_details() {
        let show: WireShow = serde_json::from_value(serde_json::json!({
            "details": {"family": "qwen3", "parameter_size": "4.0B", "quantization_level": "Q4_K_M"},
            "model_info": {"general.architecture": "qwen3", "qwen3.context_length": 40960, "llama.context_length": 1},
            "capabilities": ["completion", "tools", "thinking"]
        }))
        .expect("valid");
        let info = show.into_info("qwen3:4b");
        assert_eq!(info.context_length, Some(40960));
        let caps = info.capabilities.expect("capabilities");
        assert!(caps.completion && caps.tools && caps.thinking && !caps.vision && !caps.embedding);
        assert_eq!(info.family.as_deref(), Some("qwen3"));
        let old: WireShow =
            serde_json::from_value(serde_json::json!({"details": {}})).expect("valid");
        let info = old.into_info("x");
        assert_eq!((info.context_length, info.capabilities), (None, None));
    }

    #[test]
    fn modelfile_num_ctx_is_read_from_the_parameters_text() {
        let show: WireShow = serde_json::from_value(serde_json::json!({
            "parameters": "stop                           \"<|im_end|>\"\nnum_ctx                        8192",
        }))
        .expect("valid");
        assert_eq!(show.modelfile_num_ctx(), Some(8192));
        assert_eq!(WireShow::default().modelfile_num_ctx(), None);
    }

    #[test]
    fn http_failures_are_classified() {
        let failure = |status, message: &str| HttpFailure {
            status,
            message: message.into(),
        };
        assert_eq!(
            classify(
                failure(404, "model \"x\" not found, try pulling it first"),
                "x"
            ),
            ModelError::ModelNotFound {
                model: "x".into(),
                pullable: true
            }
        );
        assert_eq!(
            classify(
                failure(400, "registry.ollama.ai/library/x does not support tools"),
                "x"
            ),
            ModelError::ToolsUnsupported { model: "x".into() }
        );
        let wrong_server = classify(failure(404, "404 page not found"), "x");
        assert!(
            matches!(&wrong_server, ModelError::Http { status: 404, message } if message.contains("openai")),
            "{wrong_server}"
        );
        assert_eq!(
            classify(failure(500, "boom"), "x"),
            ModelError::Http {
                status: 500,
                message: "boom".into()
            }
        );
    }

    #[test]
    fn keep_alive_numbers_are_sent_as_numbers() {
        assert_eq!(keep_alive_value("-1"), Value::from(-1));
        assert_eq!(keep_alive_value("1.5"), Value::from(1.5));
        assert_eq!(keep_alive_value("5m"), Value::from("5m"));
    }
}

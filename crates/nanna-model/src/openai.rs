//! [`OpenAiProvider`]: servers speaking OpenAI's chat completions API (llama.cpp's
//! `llama-server`, vLLM, LM Studio, hosted endpoints, and Ollama's `/v1`).
//!
//! The API is shared but the servers are not: the provider recognises Ollama, llama.cpp and
//! vLLM (once, lazily, by the endpoints only they answer) where their differences matter:
//! where the context window comes from, how thinking is switched and sent back, and whether
//! `tool_choice` is enforced by the server or must be enforced here.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;
use url::Url;

use crate::ollama::{WirePs, WireShow};
use crate::provider::{ChatStream, ModelError, ModelProvider, PullStream, Result};
use crate::reply::{self, FrameParser};
use crate::stream::{FrameTooLarge, SseDecoder};
use crate::transport::{
    Body, Limits, MAX_LINE_SETTING, Transport, decode_json, excerpt, parse_base_url,
};
use crate::types::{
    CallIds, ChatMessage, ChatRequest, ChatResponse, FinishReason, MessageRole, ModelInfo,
    ModelSummary, StreamEvent, Think, Timings, ToolCall, ToolChoice, ToolDefinition, Usage,
};
use crate::wire::{self, ChoiceCheck, ollama_model_name};

/// The window Ollama gives a model when nothing sets `num_ctx`, on the smallest GPU tier
/// (server/routes.go `Serve`: 4096 below 23 GiB of VRAM, 32768 below 47 GiB, else 262144,
/// unless `OLLAMA_CONTEXT_LENGTH` is set). Through `/v1` nothing can set it, so until the
/// model is loaded and `/api/ps` tells, this is the window to plan for.
pub const OLLAMA_FLOOR_CONTEXT: u32 = 4096;

/// Which server answers behind the OpenAI-compatible API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// Ollama's `/v1` (answers `GET /api/version`).
    Ollama,
    /// llama.cpp's `llama-server` (answers `GET /props`).
    LlamaCpp,
    /// vLLM (answers `GET /version`).
    Vllm,
    /// Anything else (hosted APIs, LM Studio...).
    Other,
}

impl ServerKind {
    /// The message field a server reads a previous turn's reasoning from: `reasoning` on
    /// Ollama (openai/openai.go `Message.Reasoning`) and vLLM (`CustomChatCompletionMessageParam`
    /// "reasoning content for interleaved thinking"), `reasoning_content` on llama.cpp
    /// (common/chat.cpp `common_chat_msgs_parse_oaicompat`). Other servers get none: hosted
    /// APIs reject unknown message fields, and they send no reasoning text to return anyway.
    fn reasoning_field(self) -> Option<&'static str> {
        match self {
            Self::Ollama | Self::Vllm => Some("reasoning"),
            Self::LlamaCpp => Some("reasoning_content"),
            Self::Other => None,
        }
    }

    /// Whether the server takes back a tool call whose argument string is not valid JSON (a
    /// call the model cut short or wrote badly, kept verbatim in the history). llama.cpp
    /// keeps the string as it is (common/chat.cpp `common_chat_msgs_parse_oaicompat`), and
    /// OpenAI's API documents arguments as the text the model generated. Ollama's `/v1`
    /// answers 400 "invalid tool call arguments" (openai/openai.go `FromChatRequest`); vLLM
    /// decodes every argument string with `json.loads` (entrypoints/chat_utils.py
    /// `_postprocess_messages`) and answers 400: those two get `{}` instead.
    fn replays_any_arguments(self) -> bool {
        matches!(self, Self::LlamaCpp | Self::Other)
    }

    /// Whether the server enforces `tool_choice` itself (Ollama's `/v1` request type has no
    /// such field and ignores it: openai/openai.go `ChatCompletionRequest`).
    fn honours_tool_choice(self) -> bool {
        self != Self::Ollama
    }
}

/// A client of an OpenAI-compatible `/v1/chat/completions` server.
#[derive(Debug)]
pub struct OpenAiProvider {
    transport: Transport,
    next_call_id: CallIds,
    /// The server answered 404 to `/apply-template`: it has no tokenizer endpoint.
    no_tokenizer: AtomicBool,
    kind: OnceCell<ServerKind>,
    /// Model names as asked for → the id the server lists them under.
    names: Mutex<HashMap<String, String>>,
}

impl OpenAiProvider {
    /// A provider for the server at `base_url`, with or without a trailing `/v1`
    /// (`http://localhost:8080` and `http://localhost:8080/v1` are the same server).
    ///
    /// Fails with [`ModelError::Unreachable`] when `base_url` is not an http(s) URL. No
    /// connection is made and no HTTP client is built until the first request.
    pub fn new(base_url: &str) -> Result<Self> {
        Ok(Self::from_url(&parse_base_url(base_url)?))
    }

    /// A provider for an already validated URL.
    pub(crate) fn from_url(base_url: &Url) -> Self {
        let path = base_url.path().trim_end_matches('/');
        let mut base = base_url.clone();
        if !path.ends_with("/v1") {
            base.set_path(&format!("{path}/v1"));
        }
        Self {
            transport: Transport::from_url(&base),
            next_call_id: CallIds::new(),
            no_tokenizer: AtomicBool::new(false),
            kind: OnceCell::new(),
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `key` as a bearer token (hosted endpoints; nanna reads it from `NANNA_API_KEY`,
    /// else `OPENAI_API_KEY`).
    pub fn with_api_key(mut self, key: Option<String>) -> Self {
        self.transport.api_key = key.filter(|k| !k.is_empty());
        self
    }

    /// Sets every timeout and size limit at once (see [`Limits`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.transport.limits = limits;
        self
    }

    /// The server's root: the base URL without its `/v1`.
    fn root(&self) -> &str {
        self.transport
            .base()
            .strip_suffix("/v1")
            .unwrap_or(self.transport.base())
    }

    /// Which server this is, asked once: `GET /api/version` (Ollama), `GET /props`
    /// (llama.cpp), `GET /version` (vLLM). An unreachable server is an error, and is asked
    /// again next time.
    pub async fn server_kind(&self) -> Result<ServerKind> {
        self.kind
            .get_or_try_init(|| async {
                if self
                    .root_json("/api/version")
                    .await?
                    .is_some_and(|v| v.get("version").is_some_and(Value::is_string))
                {
                    return Ok(ServerKind::Ollama);
                }
                if self.root_json("/props").await?.is_some_and(|v| {
                    v.get("default_generation_settings").is_some() || v.get("build_info").is_some()
                }) {
                    return Ok(ServerKind::LlamaCpp);
                }
                if self
                    .root_json("/version")
                    .await?
                    .is_some_and(|v| v.get("version").is_some_and(Value::is_string))
                {
                    return Ok(ServerKind::Vllm);
                }
                Ok(ServerKind::Other)
            })
            .await
            .copied()
    }

    /// The kind when it matters for `request`: already known, or asked for when the request
    /// switches thinking, returns reasoning, or restricts tools. Plain requests never wait for
    /// the probe.
    async fn kind_for(&self, request: &ChatRequest) -> Result<ServerKind> {
        if let Some(kind) = self.kind.get() {
            return Ok(*kind);
        }
        let needed = request.options.think.is_some()
            || request.messages.iter().any(|m| !m.thinking.is_empty())
            || (!request.tools.is_empty() && request.tool_choice != ToolChoice::Auto);
        if needed {
            self.server_kind().await
        } else {
            Ok(ServerKind::Other)
        }
    }

    /// `GET root + path` as JSON; `None` when the server answers with an HTTP error or
    /// something else than JSON.
    async fn root_json(&self, path: &str) -> Result<Option<Value>> {
        let url = format!("{}{path}", self.root());
        let request = self.transport.request_to(reqwest::Method::GET, &url)?;
        match self
            .transport
            .json::<Value>(request, "identifying the server")
            .await
        {
            Ok(value) => Ok(Some(value)),
            Err(ModelError::Http { .. } | ModelError::Malformed { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The id the server lists `model` under, when an earlier lookup found one.
    fn served_name(&self, model: &str) -> String {
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(model)
            .cloned()
            .unwrap_or_else(|| model.to_owned())
    }

    fn body<'a>(
        &self,
        request: &'a ChatRequest,
        kind: ServerKind,
        model: String,
        stream: bool,
    ) -> WireRequest<'a> {
        let tools: Vec<&ToolDefinition> = if kind.honours_tool_choice() {
            request.tools.iter().collect()
        } else {
            wire::offered_tools(request)
        };
        let offer_tools = !tools.is_empty();
        let (reasoning_effort, chat_template_kwargs) = match request.options.think {
            Some(think) => think_fields(kind, think),
            None => (None, None),
        };
        WireRequest {
            model,
            messages: request
                .messages
                .iter()
                .map(|message| wire_message(message, kind))
                .collect(),
            tool_choice: (offer_tools && kind.honours_tool_choice())
                .then(|| tool_choice(&request.tool_choice)),
            tools,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
            max_tokens: request.options.max_tokens,
            temperature: request.options.temperature,
            seed: request.options.seed,
            reasoning_effort,
            chat_template_kwargs,
        }
    }

    async fn start_chat(&self, request: &ChatRequest, stream: bool) -> Result<Body> {
        let kind = self.kind_for(request).await?;
        let model = self.served_name(&request.model);
        let operation = format!("chat with model `{model}`");
        let http = self.transport.post_json(
            "/chat/completions",
            &self.body(request, kind, model.clone(), stream),
        )?;
        self.transport
            .open(http, &operation, |failure| {
                failure.about_model(&request.model, false)
            })
            .await
    }

    async fn models(&self) -> Result<WireModels> {
        let request = self.transport.request(reqwest::Method::GET, "/models")?;
        self.transport.json(request, "listing models").await
    }

    /// POSTs `body` to `path` at the server's root (llama.cpp's own endpoints) and decodes
    /// the JSON reply.
    async fn post_root<B: Serialize + ?Sized, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        operation: &str,
    ) -> Result<T> {
        let bytes = serde_json::to_vec(body).map_err(|error| ModelError::Malformed {
            detail: format!("could not encode the request: {error}"),
        })?;
        let url = format!("{}{path}", self.root());
        let request = self
            .transport
            .request_to(reqwest::Method::POST, &url)?
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        self.transport.json(request, operation).await
    }

    fn parser(&self, request: &ChatRequest) -> SseChatParser {
        SseChatParser {
            decoder: SseDecoder::with_max_event(self.transport.limits.max_line_bytes),
            state: StreamState {
                call_ids: self.next_call_id.clone(),
                calls: BTreeMap::new(),
                finish: None,
                usage: None,
                done: false,
                blank_tail: false,
                tool_choice: ChoiceCheck::new(request),
            },
        }
    }

    /// Finds `model` among the listed ones: by id or alias (llama.cpp lists `--alias`
    /// names), by Ollama's normalised name on Ollama (`llama3.1` is `llama3.1:latest`), or
    /// the only model of a single-model server (llama.cpp started without `--alias` lists
    /// the file path but serves any name), with a note saying so.
    fn resolve<'m>(
        &self,
        model: &str,
        kind: ServerKind,
        listed: &'m [WireModel],
    ) -> Option<(&'m WireModel, Option<String>)> {
        if let Some(found) = listed
            .iter()
            .find(|m| m.id == model || m.aliases.iter().any(|a| a == model))
        {
            return Some((found, None));
        }
        if kind == ServerKind::Ollama {
            let wanted = ollama_model_name(model);
            if let Some(found) = listed.iter().find(|m| ollama_model_name(&m.id) == wanted) {
                return Some((found, None));
            }
        }
        match listed {
            [only] if kind != ServerKind::Ollama => Some((
                only,
                Some(format!(
                    "the server lists no model `{model}` but serves exactly one, `{}`: using it",
                    only.id
                )),
            )),
            _ => None,
        }
    }

    /// Context window and capabilities of a model behind Ollama's `/v1`: `/v1` cannot set
    /// `num_ctx` (openai/openai.go `FromChatRequest` builds options without it), so the window
    /// is the one Ollama chose: what `/api/ps` reports for the loaded model, else the
    /// Modelfile's `num_ctx`, else Ollama's smallest default; never above the model's own.
    async fn ollama_details(&self, info: &mut ModelInfo) -> Result<()> {
        let show_url = format!("{}/api/show", self.root());
        let request = self
            .transport
            .request_to(reqwest::Method::POST, &show_url)?
            .json(&json!({ "model": info.name }));
        let show: WireShow = match self
            .transport
            .json(request, "reading the model's details")
            .await
        {
            Ok(show) => show,
            Err(ModelError::Http { .. } | ModelError::Malformed { .. }) => WireShow::default(),
            Err(error) => return Err(error),
        };
        let modelfile_ctx = show.modelfile_num_ctx();
        let shown = show.into_info(&info.name);
        let maximum = shown.context_length.map(u64::from);
        info.capabilities = shown.capabilities;
        info.family = shown.family;
        info.parameter_size = shown.parameter_size;
        info.quantization = shown.quantization;
        let ps_url = format!("{}/api/ps", self.root());
        let request = self.transport.request_to(reqwest::Method::GET, &ps_url)?;
        let loaded = match self
            .transport
            .json::<WirePs>(request, "listing running models")
            .await
        {
            Ok(ps) => {
                let wanted = ollama_model_name(&info.name);
                ps.models
                    .into_iter()
                    .find(|m| ollama_model_name(&m.name) == wanted)
                    .and_then(|m| m.context_length)
                    .filter(|&n| n > 0)
                    .map(u64::from)
            }
            Err(ModelError::Http { .. } | ModelError::Malformed { .. }) => None,
            Err(error) => return Err(error),
        };
        let (serving, source) = match (loaded, modelfile_ctx) {
            (Some(n), _) => (n, "as loaded now (/api/ps)".to_owned()),
            (None, Some(n)) => (n, "from the model's Modelfile (num_ctx)".to_owned()),
            (None, None) => (
                u64::from(OLLAMA_FLOOR_CONTEXT),
                "Ollama's smallest default; it may use more (OLLAMA_CONTEXT_LENGTH, or 32k/256k \
                 with large GPUs)"
                    .to_owned(),
            ),
        };
        let serving = maximum.map_or(serving, |max| serving.min(max));
        info.context_length = Some(u32::try_from(serving).unwrap_or(u32::MAX));
        info.notes.push(format!(
            "Ollama's OpenAI-compatible API cannot set the context window: `{}` gets {serving} \
             tokens ({source}) and older history beyond that is dropped silently. Use \
             provider = \"ollama\" (its native API sets num_ctx), or set OLLAMA_CONTEXT_LENGTH on \
             the server",
            info.name
        ));
        Ok(())
    }
}

/// How each server is asked to think or not:
/// - Ollama's `/v1` maps `reasoning_effort` to `think` ("none" is false; levels pass through;
///   openai/openai.go `thinkFromReasoningEffort`). `true` is its default and sends nothing.
/// - llama.cpp reads `chat_template_kwargs.enable_thinking` (tools/server/server-common.cpp
///   `oaicompat_chat_params_parse`) and passes `reasoning_effort` to the template.
/// - vLLM passes `chat_template_kwargs` to the template (Qwen3's `enable_thinking`) and takes
///   `reasoning_effort` low/medium/high (GPT-OSS).
/// - Other servers (hosted) get `reasoning_effort` for levels only: unknown fields are refused.
///
/// `max` is an Ollama level; the others get `high`.
fn think_fields(kind: ServerKind, think: Think) -> (Option<&'static str>, Option<Value>) {
    let level = think.level().map(|l| if l == "max" { "high" } else { l });
    match kind {
        ServerKind::Ollama => match think {
            Think::Off => (Some("none"), None),
            Think::On => (None, None),
            other => (other.level(), None),
        },
        ServerKind::LlamaCpp | ServerKind::Vllm => {
            (level, Some(json!({ "enable_thinking": think.enabled() })))
        }
        ServerKind::Other => (level, None),
    }
}

fn tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Specific(name) => json!({"type": "function", "function": {"name": name}}),
    }
}

fn finish_reason(text: &str) -> FinishReason {
    match text {
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// Token counts from `usage`, else from llama.cpp's `timings` alone. llama.cpp
/// (`tools/server/server-task.cpp`, `usage_json_oaicompat`) reports `prompt_tokens` as the
/// whole prompt and `prompt_tokens_details.cached_tokens` as the part its cache held; its
/// `timings` say the same as `cache_n` (cached) + `prompt_n` (evaluated).
fn usage(wire: Option<WireUsage>, timings: Option<WireTimings>) -> Option<Usage> {
    let wire = match wire {
        Some(wire) => wire,
        None => {
            let t = timings?;
            WireUsage {
                prompt_tokens: t.cache_n?.saturating_add(t.prompt_n?),
                completion_tokens: t.predicted_n.unwrap_or(0),
                prompt_tokens_details: None,
            }
        }
    };
    Some(Usage {
        prompt_tokens: wire.prompt_tokens,
        completion_tokens: wire.completion_tokens,
        cached_prompt_tokens: wire
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .or_else(|| timings.and_then(|t| t.cache_n)),
        timings: timings.map(|t| Timings {
            total: None,
            load: None,
            prompt_eval: t
                .prompt_ms
                .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)),
            eval: t
                .predicted_ms
                .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)),
        }),
    })
}

/// Parses a tool call's argument string; empty means no arguments. Objects keep the
/// model's key order (serde_json `preserve_order`), so they go back as generated. Text that
/// is not valid JSON (cut short by the token limit, or written badly) stays a string,
/// exactly as the model wrote it: the agent answers that call with an error, the other calls
/// still run, and the history keeps the model's bytes.
fn parse_arguments(text: String) -> Value {
    if text.trim().is_empty() {
        return Value::Object(Map::new());
    }
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// The error for an SSE event over the limit.
fn event_too_large(error: FrameTooLarge) -> ModelError {
    ModelError::TooLarge {
        what: format!("event {} of the stream", error.frame),
        limit: error.limit as u64,
        setting: MAX_LINE_SETTING.into(),
    }
}

/// The message of an error value: a string, or an object with a `message`.
fn error_text(error: Value) -> String {
    match error {
        Value::String(text) => text,
        Value::Object(ref map) => map
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned),
        other => other.to_string(),
    }
}

#[async_trait]
impl ModelProvider for OpenAiProvider {
    fn name(&self) -> &str {
        "openai"
    }

    fn base_url(&self) -> &str {
        self.transport.shown()
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse> {
        let operation = format!("chat with model `{}`", request.model);
        let bytes = self.start_chat(request, false).await?.read_to_end().await?;
        let reply: WireResponse = decode_json(&bytes, &operation)?;
        if let Some(error) = reply.error {
            return Err(ModelError::Server {
                message: error_text(error),
            });
        }
        let Some(choice) = reply.choices.into_iter().next() else {
            return Err(ModelError::Malformed {
                detail: format!("{operation}: the reply has no choices"),
            });
        };
        let message = choice.message.unwrap_or_default();
        let mut calls = Vec::with_capacity(message.tool_calls.len());
        for call in message.tool_calls {
            let function = call.function.unwrap_or_default();
            let name = function.name.unwrap_or_default();
            let arguments = match function.arguments {
                Some(Value::String(text)) => parse_arguments(text),
                Some(Value::Null) | None => Value::Object(Map::new()),
                Some(other) => other,
            };
            let id = call
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| self.next_call_id.next_id());
            calls.push(ToolCall {
                id,
                name,
                arguments,
            });
        }
        let names: Vec<String> = calls.iter().map(|c| c.name.clone()).collect();
        ChoiceCheck::new(request).check(&names)?;
        let finish = match choice.finish_reason.as_deref().map(finish_reason) {
            _ if !calls.is_empty() => FinishReason::ToolCalls,
            Some(reason) => reason,
            None => FinishReason::Stop,
        };
        let thinking = message
            .reasoning_content
            .or(message.reasoning)
            .unwrap_or_default();
        Ok(ChatResponse {
            model: reply
                .model
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| request.model.clone()),
            message: ChatMessage::assistant_with_tool_calls(
                message.content.unwrap_or_default(),
                calls,
            )
            .with_thinking(thinking),
            finish_reason: finish,
            usage: usage(reply.usage, reply.timings),
        })
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream> {
        let body = self.start_chat(request, true).await?;
        Ok(reply::event_stream(body, self.parser(request)))
    }

    async fn list_models(&self) -> Result<Vec<ModelSummary>> {
        Ok(self
            .models()
            .await?
            .data
            .into_iter()
            .map(|model| ModelSummary {
                size_bytes: model.meta.as_ref().and_then(|m| m.size),
                name: model.id,
                ..ModelSummary::default()
            })
            .collect())
    }

    async fn model_info(&self, model: &str) -> Result<ModelInfo> {
        let models = self.models().await?;
        let kind = self.server_kind().await?;
        let Some((found, note)) = self.resolve(model, kind, &models.data) else {
            return Err(ModelError::ModelNotFound {
                model: model.to_owned(),
                pullable: false,
            });
        };
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(model.to_owned(), found.id.clone());
        let mut info = ModelInfo {
            name: found.id.clone(),
            notes: note.into_iter().collect(),
            ..ModelInfo::default()
        };
        if kind == ServerKind::Ollama {
            self.ollama_details(&mut info).await?;
            return Ok(info);
        }
        // The window the server actually serves, not the one the model was trained with:
        // vLLM lists `max_model_len`; llama.cpp serves `-c` tokens (per slot), reported by
        // `/props` and, in newer builds, `meta.n_ctx` of `/v1/models`.
        let serving = match found.max_model_len {
            Some(n) => Some(n),
            None => match self.llama_cpp_context().await {
                Some(n) => Some(n),
                None => found.meta.as_ref().and_then(|m| m.n_ctx),
            },
        };
        let trained = found.meta.as_ref().and_then(|m| m.n_ctx_train);
        info.context_length = serving
            .or(trained)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        Ok(info)
    }

    async fn health(&self) -> Result<()> {
        self.models().await.map(|_| ())
    }

    async fn version(&self) -> Result<String> {
        // Ollama answers GET /api/version, vLLM GET /version; llama.cpp reports its build
        // in GET /props.
        let (path, field) = match self.server_kind().await? {
            ServerKind::Ollama => ("/api/version", "version"),
            ServerKind::LlamaCpp => ("/props", "build_info"),
            ServerKind::Vllm => ("/version", "version"),
            ServerKind::Other => {
                return Err(ModelError::Unsupported {
                    operation: "reading the server version".into(),
                    provider: self.name().into(),
                });
            }
        };
        match self.root_json(path).await? {
            Some(value) => match value.get(field).and_then(Value::as_str) {
                Some(version) => Ok(version.to_owned()),
                None => Err(ModelError::Malformed {
                    detail: format!("GET {path} has no `{field}`"),
                }),
            },
            None => Err(ModelError::Unsupported {
                operation: "reading the server version".into(),
                provider: self.name().into(),
            }),
        }
    }

    /// llama.cpp only (`tools/server/server-context.cpp`): `POST /apply-template` renders the
    /// messages and tools with the model's chat template, parsed exactly as for a chat
    /// completion; `POST /tokenize` counts the result. The completion path tokenizes the
    /// prompt with special tokens added and parsed (`add_special` true, `parse_special`
    /// true), while `/tokenize` defaults `add_special` to false: it is asked for explicitly.
    /// Other servers answer 404; they are then not asked again.
    async fn count_prompt_tokens(&self, request: &ChatRequest) -> Result<Option<u32>> {
        if self.no_tokenizer.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let template: WireTemplate = match self
            .post_root(
                "/apply-template",
                &self.body(
                    request,
                    self.kind_for(request).await?,
                    self.served_name(&request.model),
                    false,
                ),
                "rendering the prompt",
            )
            .await
        {
            Ok(template) => template,
            Err(ModelError::Http {
                status: 404 | 405 | 501,
                ..
            }) => {
                self.no_tokenizer.store(true, Ordering::Relaxed);
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let tokens: WireTokens = self
            .post_root(
                "/tokenize",
                &json!({"content": template.prompt, "add_special": true, "parse_special": true}),
                "counting the prompt's tokens",
            )
            .await?;
        Ok(Some(u32::try_from(tokens.tokens.len()).unwrap_or(u32::MAX)))
    }

    async fn pull(&self, _model: &str) -> Result<PullStream> {
        Err(ModelError::Unsupported {
            operation: "downloading models (download the model with the server's own tooling, \
                        e.g. `llama-server -hf`, and restart the server)"
                .into(),
            provider: self.name().into(),
        })
    }
}

/// Parses a streamed `/chat/completions` reply (SSE).
struct SseChatParser {
    decoder: SseDecoder,
    state: StreamState,
}

/// What a streamed reply has shown so far.
struct StreamState {
    call_ids: CallIds,
    /// Tool calls being assembled, by their `index`.
    calls: BTreeMap<u64, PartialCall>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    done: bool,
    /// Whether the last event was Ollama's trace of a mid-stream error: a chunk with an
    /// empty `model` and an empty delta (see [`ollama_error_trace`]).
    blank_tail: bool,
    tool_choice: ChoiceCheck,
}

#[derive(Default)]
struct PartialCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

impl StreamState {
    fn event(&mut self, data: &str, out: &mut VecDeque<StreamEvent>) -> Result<()> {
        let data = data.trim();
        if data == "[DONE]" {
            return self.complete(out);
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: WireChunk =
            serde_json::from_str(data).map_err(|error| ModelError::Malformed {
                detail: format!(
                    "an event of the chat stream is not valid JSON ({error}): {}",
                    excerpt(data)
                ),
            })?;
        // llama.cpp ends the stream with `data: {"error": {"code", "message", "type"}}`
        // (tools/server/server-context.cpp, streamed results); vLLM sends
        // `data: {"error": {"message", "type", "param", "code"}}` and then `[DONE]`
        // (serving_chat.py `create_streaming_error_response`).
        if let Some(error) = chunk.error {
            return Err(ModelError::Server {
                message: error_text(error),
            });
        }
        self.blank_tail = ollama_error_trace(&chunk);
        for choice in chunk.choices {
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                let reasoning = [delta.reasoning_content, delta.reasoning]
                    .into_iter()
                    .flatten()
                    .find(|t| !t.is_empty());
                if let Some(text) = reasoning {
                    out.push_back(StreamEvent::ThinkingDelta { text });
                }
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    out.push_back(StreamEvent::TextDelta { text });
                }
                for fragment in delta.tool_calls {
                    let index = fragment.index.unwrap_or(self.calls.len() as u64);
                    let call = self.calls.entry(index).or_default();
                    if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
                        call.id = Some(id);
                    }
                    if let Some(function) = fragment.function {
                        if let Some(name) = function.name {
                            call.name.push_str(&name);
                        }
                        match function.arguments {
                            Some(Value::String(text)) => call.arguments.push_str(&text),
                            Some(Value::Null) | None => {}
                            Some(other) => call.arguments.push_str(&other.to_string()),
                        }
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(finish_reason(&reason));
            }
        }
        if let Some(reported) = usage(chunk.usage, chunk.timings) {
            self.usage = Some(reported);
        }
        Ok(())
    }

    /// Emits the assembled tool calls and the end of the reply.
    fn complete(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<()> {
        self.done = true;
        let has_calls = !self.calls.is_empty();
        let names: Vec<String> = self.calls.values().map(|c| c.name.clone()).collect();
        self.tool_choice.check(&names)?;
        for (_, call) in std::mem::take(&mut self.calls) {
            let arguments = parse_arguments(call.arguments);
            let id = call.id.unwrap_or_else(|| self.call_ids.next_id());
            out.push_back(StreamEvent::ToolCall {
                call: ToolCall {
                    id,
                    name: call.name,
                    arguments,
                },
            });
        }
        let finish_reason = match self.finish {
            _ if has_calls => FinishReason::ToolCalls,
            Some(reason) => reason,
            None => FinishReason::Stop,
        };
        out.push_back(StreamEvent::Done {
            finish_reason,
            usage: self.usage.take(),
        });
        Ok(())
    }
}

impl FrameParser for SseChatParser {
    type Item = StreamEvent;

    fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<StreamEvent>) -> Result<()> {
        self.decoder.push(bytes);
        while !self.state.done {
            let Some(event) = self.decoder.next_event().map_err(event_too_large)? else {
                break;
            };
            if event.event.as_deref() == Some("error") {
                return Err(ModelError::Server {
                    message: excerpt(&event.data),
                });
            }
            self.state.event(&event.data, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<()> {
        if !self.state.done
            && let Some(event) = self.decoder.finish().map_err(event_too_large)?
        {
            self.state.event(&event.data, out)?;
        }
        if self.state.done {
            return Ok(());
        }
        if self.state.finish.is_some() {
            // Some servers close without `[DONE]` once they have sent the finish reason.
            return self.state.complete(out);
        }
        if self.state.blank_tail {
            return Err(ModelError::Server {
                message: "the server stopped the reply with an error it did not pass on \
                          (Ollama's OpenAI-compatible API replaces a mid-stream error with an \
                          empty chunk); the server's log has the reason, and provider = \
                          \"ollama\" reports it"
                    .into(),
            });
        }
        Err(ModelError::Interrupted {
            detail: "the chat stream ended before its finish reason and `[DONE]`".into(),
        })
    }

    fn is_done(&self) -> bool {
        self.state.done
    }
}

/// Whether `chunk` is what Ollama's `/v1` makes of a mid-stream error: the chat handler
/// writes `{"error": ...}` after HTTP 200 (server/routes.go `streamResponse`), the `/v1`
/// middleware decodes that line as an empty chat response and sends it on as a chunk with
/// an empty `model` and an empty delta, without a finish reason, then the stream ends
/// (middleware/openai.go `ChatWriter.writeResponse`). The error text is lost on the way.
fn ollama_error_trace(chunk: &WireChunk) -> bool {
    chunk.model.as_deref() == Some("")
        && chunk.usage.is_none()
        && chunk.choices.iter().all(|choice| {
            choice.finish_reason.is_none()
                && choice.delta.as_ref().is_none_or(|delta| {
                    delta.content.as_deref().is_none_or(str::is_empty)
                        && delta.tool_calls.is_empty()
                        && delta.reasoning.as_deref().is_none_or(str::is_empty)
                        && delta.reasoning_content.as_deref().is_none_or(str::is_empty)
                })
        })
}

// ---- Wire format ----

#[derive(Serialize)]
struct WireRequest<'a> {
    model: String,
    messages: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<&'a ToolDefinition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chat_template_kwargs: Option<Value>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

fn role_name(role: MessageRole) -> &'static str {
    match role {
        MessageRole::System => "system",
        MessageRole::User => "user",
        MessageRole::Assistant => "assistant",
        MessageRole::Tool => "tool",
    }
}

/// A message in OpenAI's shape: arguments as a JSON string (in the order the model wrote
/// them), images as content parts, reasoning in the field `kind` reads.
fn wire_message(message: &ChatMessage, kind: ServerKind) -> Value {
    let mut out = Map::new();
    out.insert("role".into(), json!(role_name(message.role)));
    if message.images.is_empty() {
        out.insert("content".into(), json!(message.content));
    } else {
        let mut parts = vec![json!({"type": "text", "text": message.content})];
        for image in &message.images {
            let url = wire::data_url(image);
            parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
        }
        out.insert("content".into(), Value::Array(parts));
    }
    if !message.thinking.is_empty()
        && let Some(field) = kind.reasoning_field()
    {
        out.insert(field.into(), json!(message.thinking));
    }
    if !message.tool_calls.is_empty() {
        let calls: Vec<Value> = message
            .tool_calls
            .iter()
            .map(|call| {
                let arguments = match &call.arguments {
                    Value::String(text)
                        if !kind.replays_any_arguments()
                            && serde_json::from_str::<Value>(text).is_err() =>
                    {
                        "{}".to_owned()
                    }
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": arguments}
                })
            })
            .collect();
        out.insert("tool_calls".into(), Value::Array(calls));
    }
    if let Some(id) = &message.tool_call_id {
        out.insert("tool_call_id".into(), json!(id));
    }
    if message.role == MessageRole::Tool
        && let Some(name) = &message.tool_name
    {
        out.insert("name".into(), json!(name));
    }
    Value::Object(out)
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    timings: Option<WireTimings>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

#[derive(Deserialize, Default)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Deserialize, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
    #[serde(default)]
    prompt_tokens_details: Option<WirePromptDetails>,
}

/// `POST /apply-template` (llama.cpp): the rendered prompt.
#[derive(Deserialize)]
struct WireTemplate {
    prompt: String,
}

/// `POST /tokenize` (llama.cpp): the token ids.
#[derive(Deserialize)]
struct WireTokens {
    tokens: Vec<Value>,
}

#[derive(Deserialize, Clone, Copy)]
struct WirePromptDetails {
    #[serde(default)]
    cached_tokens: Option<u32>,
}

#[derive(Deserialize, Clone, Copy)]
struct WireTimings {
    #[serde(default)]
    prompt_ms: Option<f64>,
    #[serde(default)]
    predicted_ms: Option<f64>,
    #[serde(default)]
    cache_n: Option<u32>,
    #[serde(default)]
    prompt_n: Option<u32>,
    #[serde(default)]
    predicted_n: Option<u32>,
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireStreamChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    timings: Option<WireTimings>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireStreamChoice {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    /// llama.cpp's name for reasoning text.
    #[serde(default)]
    reasoning_content: Option<String>,
    /// Ollama's and vLLM's name for it (vLLM may send both).
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

impl OpenAiProvider {
    /// llama.cpp's serving context (`-c`, per slot) from `GET /props`; `None` on servers
    /// without that endpoint or when it cannot be read.
    async fn llama_cpp_context(&self) -> Option<u64> {
        let url = format!("{}/props", self.root());
        let request = self.transport.request_to(reqwest::Method::GET, &url).ok()?;
        let props = self
            .transport
            .json::<Value>(request, "reading the server's context size")
            .await
            .ok()?;
        serving_context(&props)
    }
}

/// The `n_ctx` of llama.cpp's `/props` answer (`default_generation_settings.n_ctx`).
fn serving_context(props: &Value) -> Option<u64> {
    props
        .pointer("/default_generation_settings/n_ctx")
        .and_then(Value::as_u64)
        .filter(|&n| n > 0)
}

#[derive(Deserialize)]
struct WireModels {
    #[serde(default)]
    data: Vec<WireModel>,
}

#[derive(Deserialize)]
struct WireModel {
    id: String,
    /// llama.cpp: the `--alias` names the model also answers to.
    #[serde(default)]
    aliases: Vec<String>,
    /// vLLM: the context length the server was started with.
    #[serde(default)]
    max_model_len: Option<u64>,
    #[serde(default)]
    meta: Option<WireModelMeta>,
}

#[derive(Deserialize)]
struct WireModelMeta {
    /// llama.cpp: the serving window (newer builds).
    #[serde(default)]
    n_ctx: Option<u64>,
    #[serde(default)]
    n_ctx_train: Option<u64>,
    #[serde(default)]
    size: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_context_comes_from_llama_cpp_props() {
        let props = serde_json::json!({
            "default_generation_settings": {"n_ctx": 4096},
            "build_info": "b1",
        });
        assert_eq!(serving_context(&props), Some(4096));
        assert_eq!(
            serving_context(&serde_json::json!({"build_info": "b1"})),
            None
        );
        let zero = serde_json::json!({"default_generation_settings": {"n_ctx": 0}});
        assert_eq!(serving_context(&zero), None);
    }

    #[test]
    fn vllm_models_carry_max_model_len() {
        let models: WireModels =
            serde_json::from_str(r#"{"data":[{"id":"m","object":"model","max_model_len":32768}]}"#)
                .expect("parses");
        assert_eq!(models.data[0].max_model_len, Some(32768));
    }

    /// A llama.cpp-style stream: two tool calls whose arguments arrive as fragments split
    /// inside multi-byte characters' JSON, interleaved by index, then finish, usage, DONE.
    const SAMPLE: &str = concat!(
        ": ping\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Über \"},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"thinking…\"},\"finish_reason\":null}]}\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"read_file\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"path\\\": \\\"ü\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"name\":\"list_dir\",\"arguments\":\"{}\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\".txt\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    fn parser() -> SseChatParser {
        SseChatParser {
            decoder: SseDecoder::new(),
            state: StreamState {
                call_ids: CallIds::new(),
                calls: BTreeMap::new(),
                finish: None,
                usage: None,
                done: false,
                blank_tail: false,
                tool_choice: ChoiceCheck::new(&ChatRequest::new("m", Vec::new())),
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
                StreamEvent::TextDelta {
                    text: "Über ".into()
                },
                StreamEvent::ThinkingDelta {
                    text: "thinking…".into()
                },
                StreamEvent::ToolCall {
                    call: ToolCall {
                        id: "call_a".into(),
                        name: "read_file".into(),
                        arguments: json!({"path": "ü.txt"}),
                    }
                },
                StreamEvent::ToolCall {
                    call: ToolCall {
                        id: "call_1".into(),
                        name: "list_dir".into(),
                        arguments: json!({})
                    }
                },
                StreamEvent::Done {
                    finish_reason: FinishReason::ToolCalls,
                    usage: Some(Usage {
                        prompt_tokens: 12,
                        completion_tokens: 7,
                        cached_prompt_tokens: None,
                        timings: None
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
    fn arguments_cut_short_are_kept_verbatim_beside_the_valid_call() {
        // Arguments cut by the token limit (vLLM and llama.cpp stream partial arguments and
        // stop with `finish_reason: "length"`).
        let input = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"write_file\",\"arguments\":\"{\\\"path\\\": \"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"d\",\"function\":{\"name\":\"list_dir\",\"arguments\":\"{}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let events = parse(input.as_bytes(), 0).expect("a bad call is not a bad stream");
        let calls: Vec<&ToolCall> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCall { call } => Some(call),
                _ => None,
            })
            .collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].arguments, Value::String("{\"path\": ".into()));
        assert_eq!(calls[1].arguments, json!({}));
    }

    #[test]
    fn an_event_over_the_limit_names_the_setting() {
        let mut parser = SseChatParser {
            decoder: SseDecoder::with_max_event(64),
            ..parser()
        };
        let mut out = VecDeque::new();
        let error = parser
            .feed(
                format!("data: {}\n\n", "x".repeat(100)).as_bytes(),
                &mut out,
            )
            .expect_err("over the limit");
        assert!(
            matches!(&error, ModelError::TooLarge { limit: 64, setting, .. } if setting.contains("max_line_bytes")),
            "{error}"
        );
        assert!(
            error.to_string().contains("event 1 of the stream"),
            "{error}"
        );
    }

    #[test]
    fn finish_reasons_map() {
        for (wire, reason) in [
            ("stop", FinishReason::Stop),
            ("length", FinishReason::Length),
            ("content_filter", FinishReason::ContentFilter),
            ("tool_calls", FinishReason::ToolCalls),
        ] {
            let input = format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"x\"}},\"finish_reason\":\"{wire}\"}}]}}\n\ndata: [DONE]\n\n"
            );
            let events = parse(input.as_bytes(), 0).expect("valid");
            assert_eq!(
                events.last(),
                Some(&StreamEvent::Done {
                    finish_reason: reason,
                    usage: None
                })
            );
        }
    }

    #[test]
    fn end_without_finish_is_interrupted_and_error_events_are_server_errors() {
        let partial = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";
        assert!(matches!(
            parse(partial.as_bytes(), 0),
            Err(ModelError::Interrupted { .. })
        ));
        let error = "data: {\"error\":{\"code\":500,\"message\":\"context full\"}}\n\n";
        assert_eq!(
            parse(error.as_bytes(), 0),
            Err(ModelError::Server {
                message: "context full".into()
            })
        );
    }

    /// The last event of a real llama.cpp stream (b1-7e4c0a9, second identical request):
    /// the whole prompt in `prompt_tokens`, the cached part in `cached_tokens` and `cache_n`.
    #[test]
    fn llama_cpp_usage_reports_cached_prompt_tokens() {
        let input = concat!(
            "data: {\"choices\":[{\"finish_reason\":\"length\",\"index\":0,\"delta\":{}}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"completion_tokens\":8,\"prompt_tokens\":32,\"total_tokens\":40,",
            "\"prompt_tokens_details\":{\"cached_tokens\":31}},\"timings\":{\"cache_n\":31,\"prompt_n\":1,",
            "\"prompt_ms\":12.453,\"predicted_n\":8,\"predicted_ms\":74.378}}\n\n",
            "data: [DONE]\n\n",
        );
        let events = parse(input.as_bytes(), 0).expect("valid");
        let Some(StreamEvent::Done {
            usage: Some(reported),
            ..
        }) = events.last()
        else {
            panic!("{events:?}");
        };
        assert_eq!(reported.prompt_tokens, 32);
        assert_eq!(reported.cached_prompt_tokens, Some(31));
        assert_eq!(reported.evaluated_prompt_tokens(), Some(1));
        // Only `timings` (no usage object): the same counts.
        let only_timings = usage(
            None,
            Some(WireTimings {
                prompt_ms: None,
                predicted_ms: None,
                cache_n: Some(31),
                prompt_n: Some(1),
                predicted_n: Some(8),
            }),
        );
        assert_eq!(
            only_timings.map(|u| (u.prompt_tokens, u.cached_prompt_tokens, u.completion_tokens)),
            Some((32, Some(31), 8))
        );
    }

    #[test]
    fn messages_take_openai_shape() {
        let message = ChatMessage::user("look").with_images(vec!["iVBORw0KGgo".into()]);
        let wire = wire_message(&message, ServerKind::Other);
        assert_eq!(
            wire["content"][1]["image_url"]["url"],
            json!("data:image/png;base64,iVBORw0KGgo")
        );
        let call = ChatMessage::assistant_with_tool_calls(
            "",
            vec![ToolCall {
                id: "c".into(),
                name: "t".into(),
                arguments: json!({"a": 1}),
            }],
        );
        let wire = wire_message(&call, ServerKind::Other);
        assert_eq!(
            wire["tool_calls"][0]["function"]["arguments"],
            json!("{\"a\":1}")
        );
        assert_eq!(wire["tool_calls"][0]["type"], json!("function"));
    }

    #[test]
    fn arguments_that_are_not_json_go_back_verbatim_where_the_server_takes_them() {
        let cut = r#"{"expression": "1+"#;
        let call = ChatMessage::assistant_with_tool_calls(
            "",
            vec![ToolCall {
                id: "c".into(),
                name: "calculate".into(),
                arguments: Value::String(cut.into()),
            }],
        );
        for (kind, sent) in [
            (ServerKind::LlamaCpp, cut),
            (ServerKind::Other, cut),
            (ServerKind::Ollama, "{}"),
            (ServerKind::Vllm, "{}"),
        ] {
            let wire = wire_message(&call, kind);
            assert_eq!(
                wire["tool_calls"][0]["function"]["arguments"],
                json!(sent),
                "{kind:?}"
            );
        }
    }
}

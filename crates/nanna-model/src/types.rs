//! Provider-neutral protocol types.
//!
//! These are Nanna's own shapes. Each provider translates them to and from its wire format
//! (Ollama's native API, OpenAI's chat completions); sessions store them as JSON Lines.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    /// Instructions that frame the conversation.
    System,
    /// The person using the assistant.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call, fed back to the model.
    Tool,
}

/// A tool invocation requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Identifier linking the call to its result. Generated when the server omits it.
    pub id: String,
    /// Name of the tool to run.
    pub name: String,
    /// Arguments as a JSON value (normally an object).
    pub arguments: Value,
}

/// Ids for tool calls that arrive without one (`call_1`, `call_2`...): Ollama omitted them
/// before 0.13.0, some OpenAI-compatible servers still do, and calls written as text have
/// none. Clones share the count, so a provider and the replies it parses never repeat an id.
#[derive(Debug, Clone)]
pub struct CallIds(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl CallIds {
    /// A generator whose first id is `call_1`.
    pub fn new() -> Self {
        Self(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1)))
    }

    /// The next id.
    pub fn next_id(&self) -> String {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("call_{n}")
    }
}

impl Default for CallIds {
    fn default() -> Self {
        Self::new()
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Author of the message.
    pub role: MessageRole,
    /// Text content; may be empty for an assistant message that only calls tools.
    #[serde(default)]
    pub content: String,
    /// An assistant message's reasoning, kept so it goes back to the server with the tool
    /// results (Ollama's tool-calling docs: "return those fields together with any tool
    /// results in the follow-up request"); empty when the model did not think aloud.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thinking: String,
    /// Tool calls requested by an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool result: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For a tool result: the name of the tool that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// Base64-encoded images attached to the message (vision models).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

impl ChatMessage {
    fn plain(role: MessageRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            thinking: String::new(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            tool_name: None,
            images: Vec::new(),
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::plain(MessageRole::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::plain(MessageRole::User, content)
    }

    /// An assistant message with text only.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::plain(MessageRole::Assistant, content)
    }

    /// An assistant message that requests tool calls (with optional accompanying text).
    pub fn assistant_with_tool_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls: calls,
            ..Self::plain(MessageRole::Assistant, content)
        }
    }

    /// The result of tool call `call_id` made to `tool_name`.
    pub fn tool_result(
        call_id: impl Into<String>,
        tool_name: impl Into<String>,
        content: impl Into<String>,
    ) -> Self {
        Self {
            tool_call_id: Some(call_id.into()),
            tool_name: Some(tool_name.into()),
            ..Self::plain(MessageRole::Tool, content)
        }
    }

    /// Attaches base64-encoded images.
    pub fn with_images(mut self, images: Vec<String>) -> Self {
        self.images = images;
        self
    }

    /// Attaches the model's reasoning to an assistant message.
    pub fn with_thinking(mut self, thinking: impl Into<String>) -> Self {
        self.thinking = thinking.into();
        self
    }
}

/// JSON Schema primitive types used in tool parameter schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaType {
    /// A JSON object.
    Object,
    /// A string.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A JSON array.
    Array,
    /// `null`.
    Null,
}

/// A typed subset of JSON Schema, enough to describe tool parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchema {
    /// The value's type.
    #[serde(rename = "type")]
    pub schema_type: SchemaType,
    /// What the value means, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Object properties, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, JsonSchema>>,
    /// Names of required object properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Vec<String>>,
    /// Schema of array items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<JsonSchema>>,
    /// Allowed values.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<Value>>,
    /// Inclusive lower bound for numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// Inclusive upper bound for numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// Whether an object may carry properties not listed.
    #[serde(
        default,
        rename = "additionalProperties",
        skip_serializing_if = "Option::is_none"
    )]
    pub additional_properties: Option<bool>,
}

impl JsonSchema {
    /// A schema of the given type with nothing else set.
    pub fn of(schema_type: SchemaType) -> Self {
        Self {
            schema_type,
            description: None,
            properties: None,
            required: None,
            items: None,
            enum_values: None,
            minimum: None,
            maximum: None,
            additional_properties: None,
        }
    }

    /// An object schema with no properties yet.
    pub fn object() -> Self {
        Self::of(SchemaType::Object)
    }

    /// A string schema with a description.
    pub fn string(description: impl Into<String>) -> Self {
        Self::of(SchemaType::String).describe(description)
    }

    /// An integer schema with a description.
    pub fn integer(description: impl Into<String>) -> Self {
        Self::of(SchemaType::Integer).describe(description)
    }

    /// A number schema with a description.
    pub fn number(description: impl Into<String>) -> Self {
        Self::of(SchemaType::Number).describe(description)
    }

    /// A boolean schema with a description.
    pub fn boolean(description: impl Into<String>) -> Self {
        Self::of(SchemaType::Boolean).describe(description)
    }

    /// An array schema whose items follow `items`.
    pub fn array(items: JsonSchema, description: impl Into<String>) -> Self {
        Self {
            items: Some(Box::new(items)),
            ..Self::of(SchemaType::Array).describe(description)
        }
    }

    /// Sets the description.
    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Restricts the value to one of `values`.
    pub fn one_of(mut self, values: impl IntoIterator<Item = Value>) -> Self {
        self.enum_values = Some(values.into_iter().collect());
        self
    }

    /// Sets inclusive numeric bounds.
    pub fn range(mut self, minimum: Option<f64>, maximum: Option<f64>) -> Self {
        self.minimum = minimum;
        self.maximum = maximum;
        self
    }

    /// Adds an object property; `required` also lists it in `required`.
    pub fn property(mut self, name: impl Into<String>, schema: JsonSchema, required: bool) -> Self {
        let name = name.into();
        if required {
            self.required
                .get_or_insert_with(Vec::new)
                .push(name.clone());
        }
        self.properties
            .get_or_insert_with(BTreeMap::new)
            .insert(name, schema);
        self
    }
}

/// The kind of a tool definition; only functions exist today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolKind {
    /// A function the model may call with JSON arguments.
    #[default]
    Function,
}

/// A function the model can call: name, description and parameter schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    /// Name the model uses to call it.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// Schema of its arguments (an object schema).
    pub parameters: JsonSchema,
}

/// A tool offered to the model, in the shape both Ollama and OpenAI accept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// Always `function`.
    #[serde(rename = "type", default)]
    pub kind: ToolKind,
    /// The function's definition.
    pub function: FunctionDefinition,
}

impl ToolDefinition {
    /// A function tool.
    pub fn function(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: JsonSchema,
    ) -> Self {
        Self {
            kind: ToolKind::Function,
            function: FunctionDefinition {
                name: name.into(),
                description: description.into(),
                parameters,
            },
        }
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.function.name
    }
}

/// Whether and which tools the model should call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This tool must be called.
    Specific(String),
}

/// Why the model stopped generating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A natural end of the answer.
    Stop,
    /// The model requested tool calls.
    ToolCalls,
    /// The output or the context window ran out: the reply was cut.
    Length,
    /// The server withheld content.
    ContentFilter,
}

/// Whether and how hard a thinking model reasons before it answers (Ollama's `think`).
///
/// Ollama accepts `true`, `false` or a level (`api/types.go` `ThinkValue`: "low", "medium",
/// "high", and "max" since 0.21.3); GPT-OSS takes levels only. Each provider translates it to
/// what its server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Think {
    /// No reasoning (`think: false`).
    Off,
    /// Reasoning at the model's default level (`think: true`).
    On,
    /// Brief reasoning.
    Low,
    /// Moderate reasoning.
    Medium,
    /// Long reasoning.
    High,
    /// The longest reasoning the model offers (Ollama >= 0.21.3; others get `High`).
    Max,
}

impl Think {
    /// Every accepted spelling, for messages.
    pub const ACCEPTED: &'static str = "true, false, low, medium, high or max";

    /// Parses `true`/`false` (also `on`/`off`, `yes`/`no`, `1`/`0`) or a level.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Some(Self::On),
            "false" | "off" | "no" | "0" | "none" => Some(Self::Off),
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            "max" => Some(Self::Max),
            _ => None,
        }
    }

    /// The level as a word, `None` for the plain on/off settings.
    pub fn level(self) -> Option<&'static str> {
        match self {
            Self::Off | Self::On => None,
            Self::Low => Some("low"),
            Self::Medium => Some("medium"),
            Self::High => Some("high"),
            Self::Max => Some("max"),
        }
    }

    /// Whether the model is asked to reason at all.
    pub fn enabled(self) -> bool {
        self != Self::Off
    }

    /// Ollama's wire value: a boolean or the level string.
    pub fn to_ollama(self) -> Value {
        match self {
            Self::Off => Value::Bool(false),
            Self::On => Value::Bool(true),
            level => Value::from(level.level().unwrap_or("medium")),
        }
    }
}

impl std::fmt::Display for Think {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Off => "false",
            Self::On => "true",
            level => level.level().unwrap_or("true"),
        })
    }
}

impl Serialize for Think {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_ollama().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Think {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(true) => Ok(Self::On),
            Value::Bool(false) => Ok(Self::Off),
            Value::String(text) => Self::parse(&text).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid think value {text:?}: expected {}",
                    Self::ACCEPTED
                ))
            }),
            other => Err(serde::de::Error::custom(format!(
                "invalid think value {other}: expected {}",
                Self::ACCEPTED
            ))),
        }
    }
}

/// Context window asked for when neither the request nor the configuration sets one: most
/// of a 128k-token model, leaving room for the server's own overhead.
pub const DEFAULT_CONTEXT_WINDOW: u32 = 110_000;

/// Sampling and runtime options of a request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatOptions {
    /// Context window in tokens (Ollama's `num_ctx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    /// Sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// How long the server keeps the model loaded after the request (e.g. `5m`, `-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<String>,
    /// Maximum tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Seed for reproducible sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Whether a thinking model reasons first; `None` leaves the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Think>,
}

/// A chat request, built with [`ChatRequest::new`] and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Model name as the server knows it.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    /// Tool-calling policy.
    #[serde(default)]
    pub tool_choice: ToolChoice,
    /// Sampling and runtime options.
    #[serde(default)]
    pub options: ChatOptions,
}

impl ChatRequest {
    /// A request for `model` with `messages` and default options.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self {
            model: model.into(),
            messages,
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            options: ChatOptions::default(),
        }
    }

    /// Offers these tools to the model.
    pub fn with_tools(mut self, tools: Vec<ToolDefinition>) -> Self {
        self.tools = tools;
        self
    }

    /// Sets the tool-calling policy.
    pub fn with_tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = choice;
        self
    }

    /// Sets the context window in tokens.
    pub fn with_context_window(mut self, tokens: u32) -> Self {
        self.options.context_window = Some(tokens);
        self
    }

    /// Sets the sampling temperature.
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.options.temperature = Some(temperature);
        self
    }

    /// Sets how long the server keeps the model loaded.
    pub fn with_keep_alive(mut self, keep_alive: impl Into<String>) -> Self {
        self.options.keep_alive = Some(keep_alive.into());
        self
    }

    /// Caps the number of generated tokens.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.options.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the sampling seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.options.seed = Some(seed);
        self
    }

    /// Sets whether (and how hard) a thinking model reasons.
    pub fn with_think(mut self, think: Think) -> Self {
        self.options.think = Some(think);
        self
    }
}

/// Server-reported timings of a request.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Whole request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Duration>,
    /// Loading the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Duration>,
    /// Evaluating the prompt (prefill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval: Option<Duration>,
    /// Generating the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<Duration>,
}

/// Token counts of a request.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the whole prompt, cached ones included: Ollama's `prompt_eval_count` (since
    /// 0.3.13; before it counted only the evaluated tokens), the OpenAI API's
    /// `usage.prompt_tokens` (llama.cpp: `n_prompt_tokens`, the whole prompt).
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Prompt tokens the server reused from its prompt cache instead of evaluating them:
    /// llama.cpp's `usage.prompt_tokens_details.cached_tokens` (or `timings.cache_n`).
    /// `None` when the server does not say (Ollama).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_prompt_tokens: Option<u32>,
    /// Timings, where the server gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
}

impl Usage {
    /// Prompt tokens the server had to evaluate (the prompt minus what its cache held), when
    /// it says how many were cached.
    pub fn evaluated_prompt_tokens(&self) -> Option<u32> {
        self.cached_prompt_tokens
            .map(|cached| self.prompt_tokens.saturating_sub(cached))
    }
}

/// A complete (non-streamed) reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// Model that answered.
    pub model: String,
    /// The assistant message, with any tool calls.
    pub message: ChatMessage,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Token usage, where the server reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One event of a streamed reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// More answer text.
    TextDelta {
        /// The new text.
        text: String,
    },
    /// More reasoning text from a thinking model.
    ThinkingDelta {
        /// The new text.
        text: String,
    },
    /// A complete tool call.
    ToolCall {
        /// The call.
        call: ToolCall,
    },
    /// The end of the reply.
    Done {
        /// Why generation stopped.
        finish_reason: FinishReason,
        /// Token usage, where the server reports it.
        usage: Option<Usage>,
    },
}

/// What a model can do, as reported by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// Text completion.
    pub completion: bool,
    /// Native tool calling.
    pub tools: bool,
    /// Image input.
    pub vision: bool,
    /// Separate reasoning output.
    pub thinking: bool,
    /// Embeddings.
    pub embedding: bool,
}

/// Details of one model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model name.
    pub name: String,
    /// Maximum context length in tokens, where known.
    pub context_length: Option<u32>,
    /// What the model can do. `None` when the server does not say.
    pub capabilities: Option<Capabilities>,
    /// Model family (e.g. `llama`).
    pub family: Option<String>,
    /// Parameter count as the server writes it (e.g. `8.0B`).
    pub parameter_size: Option<String>,
    /// Quantization (e.g. `Q4_K_M`).
    pub quantization: Option<String>,
    /// What the user should know about this model on this server, e.g. that the server
    /// chooses the context window itself, or that another model name was matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A model listed by the server.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Model name.
    pub name: String,
    /// Size on disk in bytes, where known.
    pub size_bytes: Option<u64>,
    /// Parameter count as the server writes it.
    pub parameter_size: Option<String>,
    /// Quantization.
    pub quantization: Option<String>,
    /// Model family.
    pub family: Option<String>,
    /// Last modification time as the server writes it.
    pub modified_at: Option<String>,
}

/// A model currently loaded by the server (Ollama's `/api/ps`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunningModel {
    /// Model name.
    pub name: String,
    /// Memory used in bytes.
    pub size_bytes: Option<u64>,
    /// Of which in GPU memory.
    pub vram_bytes: Option<u64>,
    /// Context length it was loaded with.
    pub context_length: Option<u32>,
    /// When it will be unloaded, as the server writes it.
    pub expires_at: Option<String>,
}

/// A progress report of a model download.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PullProgress {
    /// What the server is doing (`pulling manifest`, `downloading`, `success`...).
    pub status: String,
    /// Layer being downloaded.
    pub digest: Option<String>,
    /// Bytes in the layer.
    pub total: Option<u64>,
    /// Bytes downloaded so far.
    pub completed: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_definition_serializes_in_wire_shape() {
        let def = ToolDefinition::function(
            "read_file",
            "Read a file",
            JsonSchema::object().property("path", JsonSchema::string("File path"), true),
        );
        let value = serde_json::to_value(&def).expect("serializable");
        assert_eq!(
            value,
            json!({
                "type": "function",
                "function": {
                    "name": "read_file",
                    "description": "Read a file",
                    "parameters": {
                        "type": "object",
                        "properties": {"path": {"type": "string", "description": "File path"}},
                        "required": ["path"]
                    }
                }
            })
        );
    }

    #[test]
    fn message_round_trips_through_json() {
        let msg = ChatMessage::assistant_with_tool_calls(
            "",
            vec![ToolCall {
                id: "call_1".into(),
                name: "echo".into(),
                arguments: json!({"text": "hi"}),
            }],
        );
        let line = serde_json::to_string(&msg).expect("serializable");
        let back: ChatMessage = serde_json::from_str(&line).expect("parses");
        assert_eq!(back, msg);
        assert!(!line.contains("tool_call_id"), "empty fields are omitted");
    }

    #[test]
    fn request_builder_sets_options() {
        let req = ChatRequest::new("m", vec![ChatMessage::user("hi")])
            .with_context_window(8192)
            .with_temperature(0.2)
            .with_keep_alive("5m")
            .with_max_tokens(100);
        assert_eq!(req.options.context_window, Some(8192));
        assert_eq!(req.options.temperature, Some(0.2));
        assert_eq!(req.options.keep_alive.as_deref(), Some("5m"));
        assert_eq!(req.options.max_tokens, Some(100));
    }
}

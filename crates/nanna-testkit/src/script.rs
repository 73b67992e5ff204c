//! Scripts: the replies the server plays back, one turn per chat request.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::TestkitError;

/// The replies a [`crate::ScriptedServer`] plays back, in order, one turn per chat request.
///
/// Both APIs (Ollama's `/api/chat` and OpenAI's `/v1/chat/completions`) draw from the same
/// sequence. When every turn has been served, [`Script::on_exhausted`] decides the answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    #[serde(default)]
    turns: Vec<Turn>,
    #[serde(default)]
    on_exhausted: Exhausted,
}

impl Default for Script {
    fn default() -> Self {
        Self::new()
    }
}

impl Script {
    /// An empty script; every chat request gets the [`Exhausted`] answer (an HTTP 500 by default).
    pub fn new() -> Self {
        Self {
            turns: Vec::new(),
            on_exhausted: Exhausted::default(),
        }
    }

    /// A script with no turns that answers every chat request with `text`
    /// (a stand-in model server).
    pub fn always_text(text: impl Into<String>) -> Self {
        Self::new().on_exhausted(Exhausted::Text(text.into()))
    }

    /// Appends a turn.
    pub fn turn(mut self, turn: Turn) -> Self {
        self.turns.push(turn);
        self
    }

    /// Sets what the server answers once every turn has been served.
    pub fn on_exhausted(mut self, exhausted: Exhausted) -> Self {
        self.on_exhausted = exhausted;
        self
    }

    /// The turns, in order.
    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    /// What the server answers once every turn has been served.
    pub fn exhausted(&self) -> &Exhausted {
        &self.on_exhausted
    }

    /// Parses a script from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, TestkitError> {
        serde_json::from_str(text).map_err(|e| TestkitError::parse("<json>", e))
    }

    /// Parses a script from YAML text (JSON is accepted too, being valid YAML).
    pub fn from_yaml_str(text: &str) -> Result<Self, TestkitError> {
        from_yaml("<yaml>", text)
    }

    /// Reads a script file: `.json` files are parsed as JSON, anything else as YAML.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TestkitError> {
        read_structured(path.as_ref())
    }
}

/// Reads a JSON (`.json`) or YAML (anything else) file into `T`.
pub(crate) fn read_structured<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<T, TestkitError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TestkitError::ReadFile {
        path: shown.clone(),
        source,
    })?;
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| TestkitError::parse(&shown, e))
    } else {
        from_yaml(&shown, &text)
    }
}

/// Parses YAML through `serde_json::Value`, so that YAML and JSON files share one set of
/// rules (externally tagged enums as single-key maps, etc.).
fn from_yaml<T: serde::de::DeserializeOwned>(origin: &str, text: &str) -> Result<T, TestkitError> {
    let yaml: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| TestkitError::parse(origin, e))?;
    let json = serde_json::to_value(yaml).map_err(|e| TestkitError::parse(origin, e))?;
    serde_json::from_value(json).map_err(|e| TestkitError::parse(origin, e))
}

/// What the server answers to a chat request once the script has run out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Exhausted {
    /// An HTTP error with an Ollama-style `{"error": message}` body (the default: a 500,
    /// so that tests notice a script that is too short).
    Error {
        /// HTTP status code.
        status: u16,
        /// Error message.
        message: String,
    },
    /// A plain text reply, served again for every further request.
    Text(String),
}

impl Default for Exhausted {
    fn default() -> Self {
        Exhausted::Error {
            status: 500,
            message: "scripted LLM: script exhausted (no turn left for this request)".to_owned(),
        }
    }
}

/// How many times a turn is served before the script moves to the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// Served this many times (`1` is the default; `0` is treated as `1`).
    Times(u32),
    /// Served for every further request; later turns are never reached.
    Forever,
}

impl Default for Repeat {
    fn default() -> Self {
        Repeat::Times(1)
    }
}

impl Repeat {
    fn is_once(&self) -> bool {
        matches!(self, Repeat::Times(0 | 1))
    }
}

impl Serialize for Repeat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Repeat::Times(n) => s.serialize_u32(*n),
            Repeat::Forever => s.serialize_str("forever"),
        }
    }
}

impl<'de> Deserialize<'de> for Repeat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Times(u32),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Times(n) => Ok(Repeat::Times(n)),
            Raw::Word(w) if w == "forever" => Ok(Repeat::Forever),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "repeat must be a number or \"forever\", not {w:?}"
            ))),
        }
    }
}

/// A fault injected into one turn's response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answer with this HTTP status and an error body instead of the turn
    /// (Ollama: `{"error": message}`; OpenAI: `{"error": {"message": ..}}`).
    HttpError {
        /// HTTP status code (4xx or 5xx).
        status: u16,
        /// Error message.
        message: String,
    },
    /// Close the connection abruptly after this many lines/events of the body
    /// (no final chunk, no terminating chunk of the chunked encoding).
    CloseAfterChunks(usize),
    /// Send one line that is not valid JSON right after the first content chunk.
    MalformedLine,
    /// After HTTP 200, send an error line (`{"error": ..}`) after the first content chunk
    /// and end the stream there.
    ErrorLineMidStream(String),
    /// End the reply as cut by the context length (`done_reason: "length"`,
    /// OpenAI `finish_reason: "length"`).
    Length,
    /// Wait this long before sending anything (headers included).
    #[serde(rename = "delay_ms")]
    Delay(#[serde(with = "duration_ms")] Duration),
    /// Wait this long between two chunks of a streamed body.
    #[serde(rename = "chunk_delay_ms")]
    ChunkDelay(#[serde(with = "duration_ms")] Duration),
    /// The server is at its queue limit: Ollama answers 503 "server busy, please try
    /// again.  maximum pending requests exceeded" (server/sched.go `ErrMaxQueue`);
    /// llama.cpp 503 `unavailable_error`; vLLM 503.
    Busy,
    /// Loading the model ran out of memory: Ollama answers 500 with the runner's error
    /// ("llama runner process has terminated: cudaMalloc failed: out of memory" before 0.30,
    /// "llama-server process has terminated: ..." since, llm/llama_server.go).
    OutOfMemory,
    /// Send the streamed body one byte at a time, waiting this long after each byte: a
    /// connection that never falls silent long enough for an idle timeout, yet never ends
    /// (a hostile server or a broken proxy).
    #[serde(rename = "byte_delay_ms")]
    ByteDelay(#[serde(with = "duration_ms")] Duration),
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// A tool call the model "makes" in a turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedToolCall {
    /// Name of the tool.
    pub name: String,
    /// Arguments (an object; Ollama sends it as an object, OpenAI as a JSON string).
    #[serde(default = "empty_object")]
    pub arguments: Value,
    /// The call id; generated (`call_<request>_<index>`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Send no id at all, as Ollama did before 0.12.10.
    #[serde(default, skip_serializing_if = "is_false")]
    pub omit_id: bool,
    /// The argument text exactly as the model wrote it, valid JSON or not, sent instead of
    /// `arguments`: verbatim as the argument string of the llama.cpp and vLLM flavors
    /// (streamed in fragments; cut short when generation hit the token limit), and as a JSON
    /// string value by the Ollama flavor (the real Ollama parses calls itself and sends
    /// objects only: this plays a server or proxy that does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_arguments: Option<String>,
}

/// How a turn's thinking, text and tool calls are spread over Ollama's chunks. Real servers
/// send each of these (server/routes.go `ChatHandler`: the built-in parsers emit `thinking`,
/// `content` and `tool_calls` in whatever chunk they complete).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Thinking chunks, then text chunks, then one chunk with the tool calls, then the final
    /// `done: true` chunk with empty content.
    #[default]
    Separate,
    /// Thinking and text in the same chunks (`{"content": "a", "thinking": "b"}`), the tool
    /// calls with the last of them.
    Interleaved,
    /// The tool calls and the last piece of text arrive in the final `done: true` chunk
    /// (gpt-oss: the harmony parser flushes when the runner reports done).
    InFinalChunk,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One reply of the script: streamed text chunks and/or tool calls, optional faults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TurnFile", into = "TurnFile")]
pub struct Turn {
    pub(crate) chunks: Vec<String>,
    pub(crate) thinking: Vec<String>,
    pub(crate) tool_calls: Vec<ScriptedToolCall>,
    pub(crate) layout: Layout,
    pub(crate) faults: Vec<Fault>,
    pub(crate) repeat: Repeat,
    pub(crate) done_reason: Option<String>,
    pub(crate) prompt_eval_count: Option<u64>,
    pub(crate) eval_count: Option<u64>,
}

impl Turn {
    /// A turn with nothing in it yet (add tool calls, text or faults).
    pub fn empty() -> Self {
        Self {
            chunks: Vec::new(),
            thinking: Vec::new(),
            tool_calls: Vec::new(),
            layout: Layout::default(),
            faults: Vec::new(),
            repeat: Repeat::default(),
            done_reason: None,
            prompt_eval_count: None,
            eval_count: None,
        }
    }

    /// A text reply, streamed one word per chunk (whitespace kept with the following word).
    pub fn text(text: impl AsRef<str>) -> Self {
        Self {
            chunks: split_words(text.as_ref()),
            ..Self::empty()
        }
    }

    /// A text reply streamed in exactly these chunks.
    pub fn chunks<S: Into<String>>(chunks: impl IntoIterator<Item = S>) -> Self {
        Self {
            chunks: chunks.into_iter().map(Into::into).collect(),
            ..Self::empty()
        }
    }

    /// A reply that only calls one tool.
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Self {
        Self::empty().with_tool_call(name, arguments)
    }

    /// Adds a tool call (after any earlier ones).
    pub fn with_tool_call(mut self, name: impl Into<String>, arguments: Value) -> Self {
        self.tool_calls.push(ScriptedToolCall {
            name: name.into(),
            arguments,
            id: None,
            omit_id: false,
            raw_arguments: None,
        });
        self
    }

    /// Adds a tool call whose argument text is `text` verbatim, valid JSON or not (see
    /// [`ScriptedToolCall::raw_arguments`]).
    pub fn with_raw_tool_call(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.tool_calls.push(ScriptedToolCall {
            name: name.into(),
            arguments: empty_object(),
            id: None,
            omit_id: false,
            raw_arguments: Some(text.into()),
        });
        self
    }

    /// Sets the id of the most recently added tool call: `Some(id)` fixes it, `None` makes the
    /// server send no id (as Ollama may). Without tool calls this does nothing.
    pub fn with_call_id(mut self, id: Option<&str>) -> Self {
        if let Some(call) = self.tool_calls.last_mut() {
            call.id = id.map(str::to_owned);
            call.omit_id = id.is_none();
        }
        self
    }

    /// Adds reasoning text, streamed one word per chunk before the content (Ollama
    /// `message.thinking`, its `/v1` and vLLM `delta.reasoning`, llama.cpp
    /// `delta.reasoning_content`). Servers send it only when the model thinks: a model with
    /// the `thinking` capability (Ollama), and only while the request does not turn
    /// thinking off.
    pub fn with_thinking(mut self, thinking: impl AsRef<str>) -> Self {
        self.thinking = split_words(thinking.as_ref());
        self
    }

    /// Sets how thinking, text and tool calls are spread over the chunks.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Adds a fault.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Waits `delay` before sending anything (same as `with_fault(Fault::Delay(delay))`).
    pub fn with_delay(self, delay: Duration) -> Self {
        self.with_fault(Fault::Delay(delay))
    }

    /// Waits `delay` between streamed chunks (same as `with_fault(Fault::ChunkDelay(delay))`).
    pub fn with_chunk_delay(self, delay: Duration) -> Self {
        self.with_fault(Fault::ChunkDelay(delay))
    }

    /// Streams the body one byte at a time, `delay` after each (same as
    /// `with_fault(Fault::ByteDelay(delay))`).
    pub fn with_byte_delay(self, delay: Duration) -> Self {
        self.with_fault(Fault::ByteDelay(delay))
    }

    /// Serves this turn `n` times in a row.
    pub fn repeat(mut self, n: u32) -> Self {
        self.repeat = Repeat::Times(n);
        self
    }

    /// Serves this turn for every further request.
    pub fn forever(mut self) -> Self {
        self.repeat = Repeat::Forever;
        self
    }

    /// Sets `done_reason` (Ollama) / `finish_reason` (OpenAI), e.g. `"length"`.
    pub fn with_done_reason(mut self, reason: impl Into<String>) -> Self {
        self.done_reason = Some(reason.into());
        self
    }

    /// Overrides the reported prompt token count (`prompt_eval_count` / `prompt_tokens`).
    pub fn with_prompt_tokens(mut self, n: u64) -> Self {
        self.prompt_eval_count = Some(n);
        self
    }

    /// Overrides the reported output token count (`eval_count` / `completion_tokens`).
    pub fn with_output_tokens(mut self, n: u64) -> Self {
        self.eval_count = Some(n);
        self
    }

    /// The text chunks.
    pub fn text_chunks(&self) -> &[String] {
        &self.chunks
    }

    /// The tool calls.
    pub fn tool_calls(&self) -> &[ScriptedToolCall] {
        &self.tool_calls
    }

    /// The faults.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }
}

/// Splits text into chunks of one word each, whitespace attached to the following word.
fn split_words(text: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut seen_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if seen_word {
                chunks.push(text[start..i].to_owned());
                start = i;
                seen_word = false;
            }
        } else {
            seen_word = true;
        }
    }
    if start < text.len() {
        chunks.push(text[start..].to_owned());
    }
    chunks
}

/// The file form of a [`Turn`]: `text` (split into words) or `chunks`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TurnFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chunks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thinking: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thinking_chunks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ScriptedToolCall>,
    #[serde(default, skip_serializing_if = "is_default_layout")]
    layout: Layout,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    faults: Vec<Fault>,
    #[serde(default, skip_serializing_if = "Repeat::is_once")]
    repeat: Repeat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    done_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prompt_eval_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eval_count: Option<u64>,
}

fn is_default_layout(layout: &Layout) -> bool {
    *layout == Layout::Separate
}

impl TryFrom<TurnFile> for Turn {
    type Error = String;

    fn try_from(f: TurnFile) -> Result<Self, String> {
        let chunks = match (f.text, f.chunks) {
            (Some(_), Some(_)) => {
                return Err("a turn has either `text` or `chunks`, not both".to_owned());
            }
            (Some(t), None) => split_words(&t),
            (None, Some(c)) => c,
            (None, None) => Vec::new(),
        };
        let thinking = match (f.thinking, f.thinking_chunks) {
            (Some(_), Some(_)) => {
                return Err(
                    "a turn has either `thinking` or `thinking_chunks`, not both".to_owned(),
                );
            }
            (Some(t), None) => split_words(&t),
            (None, Some(c)) => c,
            (None, None) => Vec::new(),
        };
        Ok(Turn {
            chunks,
            thinking,
            tool_calls: f.tool_calls,
            layout: f.layout,
            faults: f.faults,
            repeat: f.repeat,
            done_reason: f.done_reason,
            prompt_eval_count: f.prompt_eval_count,
            eval_count: f.eval_count,
        })
    }
}

impl From<Turn> for TurnFile {
    fn from(t: Turn) -> Self {
        TurnFile {
            text: None,
            chunks: (!t.chunks.is_empty()).then_some(t.chunks),
            thinking: None,
            thinking_chunks: (!t.thinking.is_empty()).then_some(t.thinking),
            tool_calls: t.tool_calls,
            layout: t.layout,
            faults: t.faults,
            repeat: t.repeat,
            done_reason: t.done_reason,
            prompt_eval_count: t.prompt_eval_count,
            eval_count: t.eval_count,
        }
    }
}

/// Plays a script back: hands out the turn for each chat request.
pub(crate) struct Player {
    script: Script,
    exhausted_turn: Option<Turn>,
    cursor: Mutex<Cursor>,
}

#[derive(Default)]
struct Cursor {
    turn: usize,
    served_of_turn: u32,
    served_total: u64,
}

/// What the player hands out for one request.
pub(crate) enum Next<'a> {
    /// A turn to play.
    Turn(&'a Turn),
    /// The script ran out: answer with this HTTP error.
    Error { status: u16, message: &'a str },
}

impl Player {
    pub(crate) fn new(script: Script) -> Self {
        let exhausted_turn = match &script.on_exhausted {
            Exhausted::Text(t) => Some(Turn::text(t)),
            Exhausted::Error { .. } => None,
        };
        Self {
            script,
            exhausted_turn,
            cursor: Mutex::new(Cursor::default()),
        }
    }

    /// Takes the next turn, advancing the cursor.
    pub(crate) fn next(&self) -> Next<'_> {
        let mut cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        cursor.served_total += 1;
        if let Some(turn) = self.script.turns.get(cursor.turn) {
            match turn.repeat {
                Repeat::Forever => {}
                Repeat::Times(n) => {
                    cursor.served_of_turn += 1;
                    if cursor.served_of_turn >= n.max(1) {
                        cursor.turn += 1;
                        cursor.served_of_turn = 0;
                    }
                }
            }
            return Next::Turn(turn);
        }
        match (&self.exhausted_turn, &self.script.on_exhausted) {
            (Some(turn), _) => Next::Turn(turn),
            (None, Exhausted::Error { status, message }) => Next::Error {
                status: *status,
                message,
            },
            (None, Exhausted::Text(_)) => Next::Error {
                status: 500,
                message: "scripted LLM: internal error (exhausted text turn missing)",
            },
        }
    }

    /// How many chat requests drew from the script so far.
    pub(crate) fn served(&self) -> u64 {
        self.cursor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .served_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_keep_their_whitespace() {
        assert_eq!(
            split_words("Hello  brave\nworld "),
            vec!["Hello", "  brave", "\nworld", " "]
        );
        assert_eq!(split_words(""), Vec::<String>::new());
        assert_eq!(split_words("one"), vec!["one"]);
    }

    #[test]
    fn json_and_yaml_agree_and_round_trip() {
        let yaml = r#"
on_exhausted: { text: "(script exhausted)" }
turns:
  - text: "Hello world"
  - tool_calls:
      - name: read_file
        arguments: { path: notes.txt }
        omit_id: true
    repeat: forever
  - chunks: ["a", "b"]
    faults:
      - malformed_line
      - close_after_chunks: 2
      - delay_ms: 5
      - http_error: { status: 503, message: busy }
"#;
        let script = Script::from_yaml_str(yaml).unwrap();
        let expected = Script::new()
            .on_exhausted(Exhausted::Text("(script exhausted)".into()))
            .turn(Turn::text("Hello world"))
            .turn(
                Turn::tool_call("read_file", json!({"path": "notes.txt"}))
                    .with_call_id(None)
                    .forever(),
            )
            .turn(
                Turn::chunks(["a", "b"])
                    .with_fault(Fault::MalformedLine)
                    .with_fault(Fault::CloseAfterChunks(2))
                    .with_delay(Duration::from_millis(5))
                    .with_fault(Fault::HttpError {
                        status: 503,
                        message: "busy".into(),
                    }),
            );
        assert_eq!(script, expected);
        let json = serde_json::to_string(&script).unwrap();
        assert_eq!(Script::from_json_str(&json).unwrap(), expected);
    }

    #[test]
    fn raw_arguments_and_byte_delay_parse() {
        let yaml = r#"
turns:
  - tool_calls:
      - name: write_file
        raw_arguments: '{"path": "a.txt", "content": "unfini'
    faults:
      - byte_delay_ms: 1000
"#;
        let expected = Script::new().turn(
            Turn::empty()
                .with_raw_tool_call("write_file", r#"{"path": "a.txt", "content": "unfini"#)
                .with_byte_delay(Duration::from_secs(1)),
        );
        assert_eq!(Script::from_yaml_str(yaml).unwrap(), expected);
    }

    #[test]
    fn bad_scripts_are_rejected_with_a_reason() {
        let err = Script::from_yaml_str("turns: [{text: a, chunks: [b]}]").unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
        let err = Script::from_yaml_str("turns: [{repeat: often}]").unwrap_err();
        assert!(err.to_string().contains("forever"), "{err}");
        let err = Script::from_yaml_str("turns: [{txet: a}]").unwrap_err();
        assert!(err.to_string().contains("txet"), "{err}");
    }

    #[test]
    fn player_repeats_and_exhausts() {
        let player = Player::new(
            Script::new()
                .turn(Turn::text("a").repeat(2))
                .turn(Turn::text("b")),
        );
        let mut seen = Vec::new();
        for _ in 0..4 {
            match player.next() {
                Next::Turn(t) => seen.push(t.chunks.join("")),
                Next::Error { status, .. } => seen.push(status.to_string()),
            }
        }
        assert_eq!(seen, vec!["a", "a", "b", "500"]);
        assert_eq!(player.served(), 4);
    }
}

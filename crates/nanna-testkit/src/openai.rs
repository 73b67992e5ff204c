//! Ollama's OpenAI-compatible layer: `/v1/chat/completions` and `/v1/models`, as
//! middleware/openai.go and openai/openai.go build them on top of the native chat handler.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::golang;
use crate::ollama::{self, NativeChunk, Piece};
use crate::server::AppState;
use crate::wire::{self, Plan, SSE, json_response, sse_event};

/// Ollama's OpenAI-style error (openai/openai.go `NewError`): `type` from the status,
/// `param` and `code` null.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    let kind = match status {
        StatusCode::BAD_REQUEST => "invalid_request_error",
        StatusCode::NOT_FOUND => "not_found_error",
        _ => "api_error",
    };
    json_response(
        status,
        &json!({ "error": { "message": message, "type": kind, "param": null, "code": null } }),
    )
}

/// `GET /v1/models` (openai/openai.go `ToListCompletion`): ids as `/api/tags` names them,
/// `owned_by` the namespace.
pub(crate) async fn models(State(st): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    st.record(&method, &uri, &[]);
    let created = wire::unix_now();
    let data: Vec<Value> = st
        .models()
        .iter()
        .map(|m| json!({ "id": m.full_name(), "object": "model", "created": created, "owned_by": "library" }))
        .collect();
    json_response(StatusCode::OK, &json!({ "object": "list", "data": data }))
}

/// `reasoning_effort` (or `reasoning.effort`) as the native `think` (openai/openai.go
/// `thinkFromReasoningEffort`).
fn think_from_effort(req: &Value) -> Result<Option<bool>, String> {
    let effort = req
        .pointer("/reasoning/effort")
        .or_else(|| req.get("reasoning_effort"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match effort {
        "" => Ok(None),
        "none" => Ok(Some(false)),
        "minimal" | "low" | "medium" | "high" | "max" | "xhigh" | "ultra" => Ok(Some(true)),
        other => Err(format!(
            "invalid reasoning value: {} (must be \"minimal\", \"low\", \"medium\", \"high\", \
             \"xhigh\", \"ultra\", \"max\", or \"none\")",
            golang::quote(other)
        )),
    }
}

/// What `ChatMiddleware` refuses before the chat handler sees the request: an empty
/// `messages` ("[] is too short - 'messages'"), tool-call arguments that are not a JSON
/// object ("invalid tool call arguments"), images that are not base64 `data:` URLs of
/// jpeg, png or webp ("invalid image input"; http URLs are not fetched).
fn validate(req: &Value) -> Result<(), String> {
    let Some(messages) = req.get("messages").and_then(Value::as_array) else {
        return Err(format!(
            "json: cannot unmarshal {} into Go struct field ChatCompletionRequest.messages of \
             type []openai.Message",
            golang::json_kind(req.get("messages").unwrap_or(&Value::Null))
        ));
    };
    if messages.is_empty() {
        return Err("[] is too short - 'messages'".to_owned());
    }
    for message in messages {
        for call in message
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let arguments = call
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !serde_json::from_str::<Value>(arguments).is_ok_and(|v| v.is_object()) {
                return Err("invalid tool call arguments".to_owned());
            }
        }
        for part in message
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if part.get("type").and_then(Value::as_str) != Some("image_url") {
                continue;
            }
            let url = part
                .pointer("/image_url/url")
                .or_else(|| part.get("image_url"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if url.starts_with("http://") || url.starts_with("https://") {
                return Err("image URLs are not currently supported, please use base64 \
                            encoded data instead"
                    .to_owned());
            }
            let data = [
                "data:;base64,",
                "data:image/jpeg;base64,",
                "data:image/jpg;base64,",
                "data:image/png;base64,",
                "data:image/webp;base64,",
            ]
            .iter()
            .find_map(|prefix| url.strip_prefix(prefix));
            if data.is_none_or(|d| golang::base64_error(d).is_some()) {
                return Err("invalid image input".to_owned());
            }
        }
    }
    think_from_effort(req).map(|_| ())
}

/// `POST /v1/chat/completions`: SSE when `stream` is true, otherwise one object.
pub(crate) async fn chat(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let req = st.record(&method, &uri, &body);
    if let Some(message) = ollama::syntax_error(&body) {
        return error(StatusCode::BAD_REQUEST, &message);
    }
    if !req.is_object() {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "json: cannot unmarshal {} into Go value of type openai.ChatCompletionRequest",
                golang::json_kind(&req)
            ),
        );
    }
    if let Err(message) = validate(&req) {
        return error(StatusCode::BAD_REQUEST, &message);
    }
    let think = think_from_effort(&req).unwrap_or(None);
    let accepted = match ollama::accept(&st, &req, think) {
        Ok(Ok(accepted)) => accepted,
        // Messages are never empty here; a load/unload answer cannot happen.
        Ok(Err(_)) => return error(StatusCode::BAD_REQUEST, "[] is too short - 'messages'"),
        Err((status, message)) => return error(status, &message),
    };
    let mut plan = Plan::new(accepted.turn, &req);
    plan.thinking = accepted.thinking;
    plan.wait_first_byte().await;
    if let Some((status, message)) = ollama::fault_refusal(&st.config, &plan) {
        return error(status, &message);
    }
    let seq = st.next_seq();
    let calls: Vec<Value> = plan
        .turn
        .tool_calls
        .iter()
        .enumerate()
        .map(|(i, c)| ollama::tool_call_json(&st.config, c, i, seq))
        .collect();
    let pieces = ollama::native_pieces(&plan, calls);
    let ids = Ids {
        // middleware/openai.go: fmt.Sprintf("chatcmpl-%d", rand.Intn(999)).
        id: format!("chatcmpl-{}", seq % 999),
        created: wire::unix_now(),
        model: req
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    };
    match wire::openai_stream(&req) {
        Some(include_usage) => streamed(&plan, &pieces, &ids, include_usage),
        None => whole(&plan, &pieces, &ids),
    }
}

struct Ids {
    id: String,
    created: u64,
    model: String,
}

/// Native tool calls in OpenAI's shape (openai/openai.go `ToToolCalls`): `id` (empty when
/// Ollama had none), `index`, `type`, the arguments as a JSON string in the model's order.
fn openai_calls(calls: &[Value]) -> Vec<Value> {
    calls
        .iter()
        .map(|call| {
            json!({
                "id": call.get("id").and_then(Value::as_str).unwrap_or(""),
                "index": call.pointer("/function/index").and_then(Value::as_u64).unwrap_or(0),
                "type": "function",
                "function": {
                    "name": call.pointer("/function/name").cloned().unwrap_or(Value::Null),
                    "arguments": call
                        .pointer("/function/arguments")
                        .map(Value::to_string)
                        .unwrap_or_else(|| "{}".to_owned()),
                },
            })
        })
        .collect()
}

fn usage(plan: &Plan<'_>) -> Value {
    json!({
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.prompt_tokens + plan.output_tokens,
    })
}

fn chunk(ids: &Ids, model: &str, delta: Value, finish: Value) -> Value {
    json!({
        "id": ids.id,
        "object": "chat.completion.chunk",
        "created": ids.created,
        "model": model,
        "system_fingerprint": "fp_ollama",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
    })
}

/// A delta (openai/openai.go `Delta`, every field `omitempty`; `content` is an interface,
/// so an empty string is kept and only a missing one is left out).
fn delta(role: bool, content: Option<&str>, reasoning: &str, calls: &[Value]) -> Value {
    let mut delta = Map::new();
    if role {
        delta.insert("role".into(), json!("assistant"));
    }
    if let Some(content) = content {
        delta.insert("content".into(), json!(content));
    }
    if !reasoning.is_empty() {
        delta.insert("reasoning".into(), json!(reasoning));
    }
    if !calls.is_empty() {
        delta.insert("tool_calls".into(), Value::Array(openai_calls(calls)));
    }
    Value::Object(delta)
}

const MALFORMED_EVENT: &[u8] = b"data: {\"id\":\"chatcmpl-broken\",\"object\":\n\n";

/// The native chunks through `ChatWriter.writeResponse`: the first chunk carries the role;
/// a chunk with thinking and text (or tool calls) becomes two (`ToStreamChunks`); whole tool
/// calls go out in one delta with `content: ""`; the empty final chunk is skipped and a
/// finish chunk (`delta: {}`) follows, then the usage chunk when asked, then `[DONE]`. An
/// error after HTTP 200 comes out as a chunk with an empty `model` and an empty delta, and
/// the stream ends there.
fn streamed(plan: &Plan<'_>, pieces: &[Piece], ids: &Ids, include_usage: bool) -> Response {
    let mut out = plan.body();
    let mut first_sent = false;
    let mut tool_call_sent = false;
    for (i, piece) in pieces.iter().enumerate() {
        let chunk_of = |c: &NativeChunk| -> Vec<Value> {
            let mixed =
                !c.thinking.is_empty() && (!c.content.is_empty() || !c.tool_calls.is_empty());
            if mixed {
                vec![
                    chunk(
                        ids,
                        &ids.model,
                        delta(!first_sent, None, &c.thinking, &[]),
                        Value::Null,
                    ),
                    chunk(
                        ids,
                        &ids.model,
                        delta(false, Some(&c.content), "", &c.tool_calls),
                        Value::Null,
                    ),
                ]
            } else {
                vec![chunk(
                    ids,
                    &ids.model,
                    delta(!first_sent, Some(&c.content), &c.thinking, &c.tool_calls),
                    Value::Null,
                )]
            }
        };
        match piece {
            Piece::Error(_) => {
                let blank = NativeChunk::default();
                let mut event = chunk_of(&blank).remove(0);
                event["model"] = json!("");
                out.push(sse_event(&event));
                out.end();
            }
            Piece::Chunk(c) => {
                let empty_trailer = c.done
                    && first_sent
                    && c.content.is_empty()
                    && c.thinking.is_empty()
                    && c.tool_calls.is_empty();
                if !empty_trailer {
                    for event in chunk_of(c) {
                        if event.pointer("/choices/0/delta/tool_calls").is_some() {
                            tool_call_sent = true;
                        }
                        out.push(sse_event(&event));
                    }
                    first_sent = true;
                }
                if c.done {
                    let mut reason = plan.done_reason;
                    if reason == "stop" && tool_call_sent {
                        reason = "tool_calls";
                    }
                    let finish = chunk(ids, &ids.model, json!({}), json!(reason));
                    if plan.close_after.is_some() {
                        out.push_final(sse_event(&finish));
                        continue;
                    }
                    out.push(sse_event(&finish));
                    if include_usage {
                        let mut usage_chunk = finish.clone();
                        usage_chunk["choices"] = json!([]);
                        usage_chunk["usage"] = usage(plan);
                        out.push(sse_event(&usage_chunk));
                    }
                    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
                }
            }
        }
        if i == 0 && plan.malformed {
            out.push(Bytes::from_static(MALFORMED_EVENT));
        }
    }
    out.into_response(SSE)
}

/// `ToChatCompletion`: one message with `content` (a string, empty when there is only a tool
/// call), `reasoning` and `tool_calls` when present.
fn whole(plan: &Plan<'_>, pieces: &[Piece], ids: &Ids) -> Response {
    let folded = match ollama::folded(pieces) {
        Ok(folded) => folded,
        Err(message) => return error(StatusCode::INTERNAL_SERVER_ERROR, &message),
    };
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert("content".into(), json!(folded.content));
    if !folded.thinking.is_empty() {
        message.insert("reasoning".into(), json!(folded.thinking));
    }
    if !folded.tool_calls.is_empty() {
        message.insert(
            "tool_calls".into(),
            Value::Array(openai_calls(&folded.tool_calls)),
        );
    }
    let reason = if plan.done_reason == "stop" && !folded.tool_calls.is_empty() {
        "tool_calls"
    } else {
        plan.done_reason
    };
    let obj = json!({
        "id": ids.id,
        "object": "chat.completion",
        "created": ids.created,
        "model": ids.model,
        "system_fingerprint": "fp_ollama",
        "choices": [{ "index": 0, "message": message, "finish_reason": reason }],
        "usage": usage(plan),
    });
    ollama::whole_body(
        plan,
        Bytes::from(serde_json::to_vec(&obj).unwrap_or_default()),
    )
}

//! vLLM's OpenAI-compatible server (vllm/entrypoints/openai/): `/v1/chat/completions`,
//! `/v1/models` (with `max_model_len`), `/version`, `/health`.
//!
//! Shapes from vLLM's `serving_chat.py` (streamed chunks dumped with `exclude_unset`,
//! `create_streaming_error_response` then `[DONE]`), `protocol.py` (`ErrorResponse` with a
//! nested `error`, `DeltaMessage.reasoning`) and the tool parsers (arguments written by
//! `json.dumps`, so with `", "` and `": "` separators).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::llamacpp::thinking_off;
use crate::ollama::call_id;
use crate::server::AppState;
use crate::wire::{self, Plan, SSE, json_response, sse_event};

/// How many fragments a tool call's argument string is split into when streamed.
const ARGUMENT_FRAGMENTS: usize = 3;

/// `ErrorResponse(error=ErrorInfo(message, type, param, code))`.
fn error_body(status: StatusCode, message: &str, param: Option<&str>) -> Value {
    let kind = match status.as_u16() {
        400 => "BadRequestError",
        404 => "NotFoundError",
        503 => "ServiceUnavailableError",
        _ => "InternalServerError",
    };
    json!({ "error": { "message": message, "type": kind, "param": param, "code": status.as_u16() } })
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, &error_body(status, message, None))
}

/// vLLM decodes the argument string of every replayed tool call with `json.loads`
/// (`entrypoints/chat_utils.py` `_postprocess_messages`, for the chat templates); a
/// `JSONDecodeError` is a `ValueError`, which `serving_chat.py` answers with
/// `create_error_response(f"{e} {e.__cause__}")`, a 400. The message imitates Python's
/// (`Expecting value: line 1 column 5 (char 4)`) with serde's position.
fn unparsable_arguments(req: &Value) -> Option<String> {
    let messages = req.get("messages").and_then(Value::as_array)?;
    messages
        .iter()
        .filter_map(|m| m.get("tool_calls").and_then(Value::as_array))
        .flatten()
        .filter_map(|call| call.pointer("/function/arguments").and_then(Value::as_str))
        .filter(|text| !text.is_empty())
        .find_map(|text| serde_json::from_str::<Value>(text).err())
        .map(|e| {
            let column = e.column().max(1);
            format!(
                "Expecting value: line {} column {column} (char {}) None",
                e.line(),
                column - 1
            )
        })
}

/// `GET /health`: 200 with an empty body.
pub(crate) async fn health(State(st): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    st.record(&method, &uri, &[]);
    StatusCode::OK.into_response()
}

/// `GET /version`.
pub(crate) async fn version(State(st): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    st.record(&method, &uri, &[]);
    json_response(StatusCode::OK, &json!({ "version": st.config.version }))
}

/// Unknown paths: FastAPI's `{"detail": "Not Found"}`.
pub(crate) async fn not_found(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    st.record(&method, &uri, &body);
    json_response(StatusCode::NOT_FOUND, &json!({ "detail": "Not Found" }))
}

/// `GET /v1/models`: each served name with `max_model_len`, the window it serves.
pub(crate) async fn models(State(st): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    st.record(&method, &uri, &[]);
    let created = wire::unix_now();
    let data: Vec<Value> = st
        .models()
        .iter()
        .map(|m| {
            json!({
                "id": m.name,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": m.name,
                "parent": null,
                "max_model_len": st.config.serving_context(m),
                "permission": [],
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "object": "list", "data": data }))
}

/// `POST /v1/chat/completions`. The model must be one of the served names (404 "The model
/// `x` does not exist."); a prompt over `max_model_len` is a 400.
pub(crate) async fn chat(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let req = st.record(&method, &uri, &body);
    if !req.is_object() {
        return error(
            StatusCode::BAD_REQUEST,
            "Input should be a valid dictionary",
        );
    }
    let name = req.get("model").and_then(Value::as_str).unwrap_or_default();
    let Some(model) = st.models().into_iter().find(|m| m.name == name) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &error_body(
                StatusCode::NOT_FOUND,
                &format!("The model `{name}` does not exist."),
                Some("model"),
            ),
        );
    };
    if let Some(message) = unparsable_arguments(&req) {
        return error(StatusCode::BAD_REQUEST, &message);
    }
    let max = st.config.serving_context(&model);
    let prompt_tokens = wire::estimate_prompt_tokens(&req);
    if prompt_tokens > u64::from(max) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "This model's maximum context length is {max} tokens. However, your request has \
                 {prompt_tokens} input tokens. Please reduce the length of the input messages."
            ),
        );
    }
    let plan = match st.plan(&req, !thinking_off(&req)).await {
        Ok(plan) => plan,
        Err((status, message)) => return error(status, &message),
    };
    if plan.busy || plan.out_of_memory {
        return error(StatusCode::SERVICE_UNAVAILABLE, "The server is overloaded");
    }
    let seq = st.next_seq();
    let ids = Ids {
        id: format!("chatcmpl-{}", wire::hex_id(seq, 32)),
        created: wire::unix_now(),
        model: model.name.clone(),
        seq,
    };
    match wire::openai_stream(&req) {
        Some(include_usage) => streamed(&plan, &ids, include_usage),
        None => whole(&plan, &ids),
    }
}

struct Ids {
    id: String,
    created: u64,
    model: String,
    seq: u64,
}

fn chunk(ids: &Ids, delta: Value, finish: Value) -> Value {
    let mut choice = Map::new();
    choice.insert("index".into(), json!(0));
    choice.insert("delta".into(), delta);
    choice.insert("logprobs".into(), Value::Null);
    choice.insert("finish_reason".into(), finish.clone());
    if !finish.is_null() {
        choice.insert("stop_reason".into(), Value::Null);
    }
    json!({
        "id": ids.id,
        "object": "chat.completion.chunk",
        "created": ids.created,
        "model": ids.model,
        "choices": [Value::Object(choice)],
    })
}

fn finish_reason<'a>(plan: &Plan<'a>) -> &'a str {
    if plan.done_reason == "stop" && !plan.turn.tool_calls.is_empty() {
        "tool_calls"
    } else {
        plan.done_reason
    }
}

fn usage(plan: &Plan<'_>) -> Value {
    json!({
        "prompt_tokens": plan.prompt_tokens,
        "total_tokens": plan.prompt_tokens + plan.output_tokens,
        "completion_tokens": plan.output_tokens,
    })
}

fn stream_error(message: &str) -> Bytes {
    sse_event(&error_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        message,
        None,
    ))
}

/// A role chunk (`content: ""`), `reasoning` deltas, `content` deltas, each tool call as a
/// head (`id` `chatcmpl-tool-...`, `type`, `index`, `name`) and argument fragments in
/// Python's JSON spacing, the finish chunk, the usage chunk, `[DONE]`. A mid-stream error is
/// an `{"error": ...}` event followed by `[DONE]`.
fn streamed(plan: &Plan<'_>, ids: &Ids, include_usage: bool) -> Response {
    let turn = plan.turn;
    let mut events = vec![chunk(
        ids,
        json!({ "role": "assistant", "content": "" }),
        Value::Null,
    )];
    for piece in plan.thinking() {
        events.push(chunk(ids, json!({ "reasoning": piece }), Value::Null));
    }
    for piece in &turn.chunks {
        events.push(chunk(ids, json!({ "content": piece }), Value::Null));
    }
    for (i, call) in turn.tool_calls.iter().enumerate() {
        let mut head = Map::new();
        if let Some(id) = call_id(call, i, ids.seq) {
            head.insert(
                "id".into(),
                json!(format!("chatcmpl-tool-{}", id.trim_start_matches("call_"))),
            );
        }
        head.insert("type".into(), json!("function"));
        head.insert("index".into(), json!(i));
        head.insert("function".into(), json!({ "name": call.name }));
        events.push(chunk(
            ids,
            json!({ "tool_calls": [Value::Object(head)] }),
            Value::Null,
        ));
        let arguments = call
            .raw_arguments
            .clone()
            .unwrap_or_else(|| wire::python_json(&call.arguments));
        for fragment in wire::fragments(&arguments, ARGUMENT_FRAGMENTS) {
            events.push(chunk(
                ids,
                json!({ "tool_calls": [{ "index": i, "function": { "arguments": fragment } }] }),
                Value::Null,
            ));
        }
    }
    let mut out = plan.body();
    for (i, event) in events.iter().enumerate() {
        out.push(sse_event(event));
        if (i == 1 || events.len() == 1)
            && let Some(message) = plan.error_line
        {
            out.push(stream_error(message));
            out.push(Bytes::from_static(b"data: [DONE]\n\n"));
            out.end();
        }
    }
    let finish = chunk(ids, json!({ "content": "" }), json!(finish_reason(plan)));
    if plan.close_after.is_some() {
        out.push_final(sse_event(&finish));
    } else {
        out.push(sse_event(&finish));
        if include_usage {
            out.push(sse_event(&json!({
                "id": ids.id,
                "object": "chat.completion.chunk",
                "created": ids.created,
                "model": ids.model,
                "choices": [],
                "usage": usage(plan),
            })));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    }
    out.into_response(SSE)
}

fn whole(plan: &Plan<'_>, ids: &Ids) -> Response {
    let turn = plan.turn;
    if let Some(message) = plan.error_line {
        return error(StatusCode::INTERNAL_SERVER_ERROR, message);
    }
    let content = turn.chunks.concat();
    let thinking = plan.thinking().concat();
    let calls: Vec<Value> = turn
        .tool_calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "id": call_id(c, i, ids.seq).map(|id| format!("chatcmpl-tool-{}", id.trim_start_matches("call_"))),
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": c.raw_arguments.clone().unwrap_or_else(|| wire::python_json(&c.arguments)),
                },
            })
        })
        .collect();
    let obj = json!({
        "id": ids.id,
        "object": "chat.completion",
        "created": ids.created,
        "model": ids.model,
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": if content.is_empty() && !calls.is_empty() { Value::Null } else { json!(content) },
                "reasoning": if thinking.is_empty() { Value::Null } else { json!(thinking) },
                "tool_calls": calls,
            },
            "logprobs": null,
            "finish_reason": finish_reason(plan),
            "stop_reason": null,
        }],
        "usage": usage(plan),
    });
    crate::ollama::whole_body(
        plan,
        Bytes::from(serde_json::to_vec(&obj).unwrap_or_default()),
    )
}

//! The OpenAI-compatible API: `/v1/chat/completions` (SSE or one object) and `/v1/models`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::ollama::{call_id, whole_body};
use crate::server::AppState;
use crate::wire::{self, Plan, SSE, json_response, sse_event};

/// How many fragments a tool call's argument string is split into when streamed.
const ARGUMENT_FRAGMENTS: usize = 3;

/// An OpenAI-style error: `{"error": {"message", "type", "param", "code"}}`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, &error_body(status, message))
}

fn error_body(status: StatusCode, message: &str) -> Value {
    let kind = match status {
        StatusCode::BAD_REQUEST => "invalid_request_error",
        StatusCode::NOT_FOUND => "not_found_error",
        _ => "api_error",
    };
    json!({ "error": { "message": message, "type": kind, "param": null, "code": null } })
}

/// `GET /v1/models`.
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

/// `POST /v1/chat/completions`: SSE when `stream` is true, otherwise one object.
pub(crate) async fn chat(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (req, model, turn) = match st.start_chat(&method, &uri, &body, error) {
        Ok(start) => start,
        Err(refusal) => return *refusal,
    };
    let plan = Plan::new(turn, &req);
    plan.wait_first_byte().await;
    if let Some((status, message)) = plan.http_error {
        return error(status, message);
    }
    let seq = st.next_seq();
    let ids = Ids {
        id: format!("chatcmpl-{seq}"),
        created: wire::unix_now(),
        model: model.full_name(),
        seq,
    };
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if stream {
        let include_usage = req
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        streamed(&plan, &ids, include_usage)
    } else {
        whole(&plan, &ids)
    }
}

struct Ids {
    id: String,
    created: u64,
    model: String,
    seq: u64,
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
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.prompt_tokens + plan.output_tokens,
    })
}

const MALFORMED_EVENT: &[u8] = b"data: {\"id\":\"chatcmpl-broken\",\"object\":\n\n";

fn streamed(plan: &Plan<'_>, ids: &Ids, include_usage: bool) -> Response {
    let turn = plan.turn;
    let mut out = plan.body();
    let chunk = |delta: Value, finish: Value| {
        sse_event(&json!({
            "id": ids.id,
            "object": "chat.completion.chunk",
            "created": ids.created,
            "model": ids.model,
            "system_fingerprint": "fp_ollama",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        }))
    };
    let mut content_sent = 0usize;
    let mut after_first = |out: &mut wire::Steps| {
        content_sent += 1;
        if content_sent == 1 {
            if plan.malformed {
                out.push(Bytes::from_static(MALFORMED_EVENT));
            }
            if let Some(message) = plan.error_line {
                out.push(sse_event(&error_body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    message,
                )));
                out.end();
            }
        }
    };
    for piece in &turn.thinking {
        out.push(chunk(
            json!({ "role": "assistant", "content": "", "reasoning": piece }),
            Value::Null,
        ));
        after_first(&mut out);
    }
    for piece in &turn.chunks {
        out.push(chunk(
            json!({ "role": "assistant", "content": piece }),
            Value::Null,
        ));
        after_first(&mut out);
    }
    if turn.thinking.is_empty() && turn.chunks.is_empty() {
        after_first(&mut out);
    }
    for (i, call) in turn.tool_calls.iter().enumerate() {
        let mut head = Map::new();
        head.insert("index".into(), json!(i));
        if let Some(id) = call_id(call, i, ids.seq) {
            head.insert("id".into(), json!(id));
        }
        head.insert("type".into(), json!("function"));
        head.insert(
            "function".into(),
            json!({ "name": call.name, "arguments": "" }),
        );
        out.push(chunk(
            json!({ "role": "assistant", "content": null, "tool_calls": [Value::Object(head)] }),
            Value::Null,
        ));
        let arguments = call.arguments.to_string();
        for fragment in wire::fragments(&arguments, ARGUMENT_FRAGMENTS) {
            out.push(chunk(
                json!({ "tool_calls": [{ "index": i, "function": { "arguments": fragment } }] }),
                Value::Null,
            ));
        }
    }
    let finish = chunk(json!({}), json!(finish_reason(plan)));
    if plan.close_after.is_some() {
        out.push_final(finish);
    } else {
        out.push(finish);
        if include_usage {
            out.push(sse_event(&json!({
                "id": ids.id,
                "object": "chat.completion.chunk",
                "created": ids.created,
                "model": ids.model,
                "system_fingerprint": "fp_ollama",
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
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    let content = turn.chunks.concat();
    if content.is_empty() && !turn.tool_calls.is_empty() {
        message.insert("content".into(), Value::Null);
    } else {
        message.insert("content".into(), json!(content));
    }
    if !turn.thinking.is_empty() {
        message.insert("reasoning".into(), json!(turn.thinking.concat()));
    }
    if !turn.tool_calls.is_empty() {
        let calls: Vec<Value> = turn
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut call = Map::new();
                if let Some(id) = call_id(c, i, ids.seq) {
                    call.insert("id".into(), json!(id));
                }
                call.insert("type".into(), json!("function"));
                call.insert(
                    "function".into(),
                    json!({ "name": c.name, "arguments": c.arguments.to_string() }),
                );
                Value::Object(call)
            })
            .collect();
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    let obj = json!({
        "id": ids.id,
        "object": "chat.completion",
        "created": ids.created,
        "model": ids.model,
        "system_fingerprint": "fp_ollama",
        "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason(plan) }],
        "usage": usage(plan),
    });
    whole_body(
        plan,
        Bytes::from(serde_json::to_vec(&obj).unwrap_or_default()),
    )
}

//! llama.cpp's `llama-server` (tools/server/): `/v1/chat/completions`, `/v1/models`,
//! `/props`, `/health`, and its JSON errors.
//!
//! Shapes were read from tools/server/server-common.cpp (`format_error_response`,
//! `format_oai_sse`), tools/server/server-context.cpp (streamed results, the mid-stream
//! error) and checked against a running `llama-server` (build b1-7e4c0a9).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::models::ModelSpec;
use crate::ollama::call_id;
use crate::server::AppState;
use crate::wire::{self, Plan, SSE, json_response, sse_event};

/// How many fragments a tool call's argument string is split into when streamed (llama.cpp
/// sends argument diffs as the model generates them).
const ARGUMENT_FRAGMENTS: usize = 3;

/// `format_error_response`: `{"error": {"code", "message", "type"}}`, the type from the
/// status.
pub(crate) fn error_body(status: StatusCode, message: &str) -> Value {
    let kind = match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        501 => "not_supported_error",
        503 => "unavailable_error",
        _ => "server_error",
    };
    json!({ "error": { "code": status.as_u16(), "message": message, "type": kind } })
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, &error_body(status, message))
}

/// The one model the server serves.
fn served(st: &AppState) -> Option<Arc<ModelSpec>> {
    st.models().into_iter().next()
}

/// `GET /health`.
pub(crate) async fn health(State(st): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    st.record(&method, &uri, &[]);
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

/// Unknown paths: `{"error": {"message": "File Not Found", "type": "not_found_error",
/// "code": 404}}` (what a running server answers).
pub(crate) async fn not_found(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    st.record(&method, &uri, &body);
    json_response(
        StatusCode::NOT_FOUND,
        &json!({ "error": { "message": "File Not Found", "type": "not_found_error", "code": 404 } }),
    )
}

/// `GET /props`: the serving window in `default_generation_settings.n_ctx`, the model's
/// alias (its path without `--alias`) and the build.
pub(crate) async fn props(State(st): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    st.record(&method, &uri, &[]);
    let Some(model) = served(&st) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "Loading model");
    };
    json_response(
        StatusCode::OK,
        &json!({
            "default_generation_settings": {
                "params": { "n_predict": -1, "temperature": 0.8, "stream": false },
                "n_ctx": st.config.serving_context(&model),
            },
            "total_slots": 1,
            "model_alias": model.name,
            "model_path": model.name,
            "modalities": { "vision": false, "audio": false },
            "chat_template": "{{ messages }}",
            "bos_token": "<|im_start|>",
            "eos_token": "<|im_end|>",
            "build_info": st.config.version,
            "is_sleeping": false,
        }),
    )
}

/// `GET /v1/models`: Ollama-style `models` and OpenAI-style `data`, the model under its
/// alias or path, with `meta` (`n_ctx` served, `n_ctx_train`).
pub(crate) async fn models(State(st): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    st.record(&method, &uri, &[]);
    let created = wire::unix_now();
    let listed: Vec<(Value, Value)> = served(&st)
        .iter()
        .map(|m| {
            (
                json!({
                    "name": m.name, "model": m.name, "modified_at": "", "size": "", "digest": "",
                    "type": "model", "description": "", "tags": [""], "capabilities": ["completion"],
                    "parameters": "",
                    "details": { "parent_model": "", "format": "gguf", "family": "", "families": [""],
                                 "parameter_size": "", "quantization_level": "" },
                }),
                json!({
                    "id": m.name,
                    "aliases": [m.name],
                    "tags": [],
                    "object": "model",
                    "created": created,
                    "owned_by": "llamacpp",
                    "meta": {
                        "vocab_type": 2,
                        "n_vocab": 49152,
                        "n_ctx": st.config.serving_context(m),
                        "n_ctx_train": m.context_length,
                        "n_embd": 576,
                        "n_params": 134_515_008,
                        "size": m.size_bytes,
                        "ftype": m.quantization,
                    },
                }),
            )
        })
        .collect();
    let (ollama, data): (Vec<Value>, Vec<Value>) = listed.into_iter().unzip();
    json_response(
        StatusCode::OK,
        &json!({ "models": ollama, "object": "list", "data": data }),
    )
}

/// Whether the request turns thinking off: `chat_template_kwargs.enable_thinking: false`
/// or `reasoning_effort: "none"` (server-common.cpp `oaicompat_chat_params_parse`).
pub(crate) fn thinking_off(req: &Value) -> bool {
    req.pointer("/chat_template_kwargs/enable_thinking") == Some(&Value::Bool(false))
        || req.get("reasoning_effort").and_then(Value::as_str) == Some("none")
}

/// `POST /v1/chat/completions`. Any model name is served (a single-model server ignores it).
/// A prompt over the window is refused before streaming starts with 400
/// `exceed_context_size_error`.
pub(crate) async fn chat(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let req = st.record(&method, &uri, &body);
    if !req.is_object() {
        return error(StatusCode::BAD_REQUEST, "Invalid JSON body");
    }
    if !req.get("messages").is_some_and(Value::is_array) {
        return error(
            StatusCode::BAD_REQUEST,
            "Expected 'messages' to be an array",
        );
    }
    let Some(model) = served(&st) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "Loading model");
    };
    let n_ctx = st.config.serving_context(&model);
    let prompt_tokens = wire::estimate_prompt_tokens(&req);
    if prompt_tokens > u64::from(n_ctx) {
        let mut body = error_body(
            StatusCode::BAD_REQUEST,
            &format!(
                "request ({prompt_tokens} tokens) exceeds the available context size ({n_ctx} \
                 tokens), try increasing it"
            ),
        );
        body["error"]["type"] = json!("exceed_context_size_error");
        body["error"]["n_prompt_tokens"] = json!(prompt_tokens);
        body["error"]["n_ctx"] = json!(n_ctx);
        return json_response(StatusCode::BAD_REQUEST, &body);
    }
    let plan = match st.plan(&req, !thinking_off(&req)).await {
        Ok(plan) => plan,
        Err((status, message)) => return error(status, &message),
    };
    if plan.busy {
        return error(StatusCode::SERVICE_UNAVAILABLE, "Loading model");
    }
    if plan.out_of_memory {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to allocate compute buffers: out of memory",
        );
    }
    let seq = st.next_seq();
    let ids = Ids {
        id: format!("chatcmpl-{}", wire::hex_id(seq, 32)),
        created: wire::unix_now(),
        model: model.name.clone(),
        fingerprint: st.config.version.clone(),
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
    fingerprint: String,
    seq: u64,
}

fn chunk(ids: &Ids, delta: Value, finish: Value) -> Value {
    json!({
        "choices": [{ "finish_reason": finish, "index": 0, "delta": delta }],
        "created": ids.created,
        "id": ids.id,
        "model": ids.model,
        "system_fingerprint": ids.fingerprint,
        "object": "chat.completion.chunk",
    })
}

fn usage(plan: &Plan<'_>) -> Value {
    json!({
        "completion_tokens": plan.output_tokens,
        "prompt_tokens": plan.prompt_tokens,
        "total_tokens": plan.prompt_tokens + plan.output_tokens,
        "prompt_tokens_details": { "cached_tokens": 0 },
    })
}

fn timings(plan: &Plan<'_>) -> Value {
    let t = wire::Timings::for_counts(plan.prompt_tokens, plan.output_tokens);
    json!({
        "cache_n": 0,
        "prompt_n": plan.prompt_tokens,
        "prompt_ms": t.prompt_eval as f64 / 1e6,
        "predicted_n": plan.output_tokens,
        "predicted_ms": t.eval as f64 / 1e6,
    })
}

fn finish_reason<'a>(plan: &Plan<'a>) -> &'a str {
    if plan.done_reason == "stop" && !plan.turn.tool_calls.is_empty() {
        "tool_calls"
    } else {
        plan.done_reason
    }
}

const MALFORMED_EVENT: &[u8] = b"data: {\"choices\":[{\"finish_reason\":null,\"index\":\n\n";

/// A role chunk (`content: null`), `reasoning_content` deltas, `content` deltas, each tool
/// call as a head (`index`, `id`, `type`, `name`, empty `arguments`) and argument fragments,
/// the finish chunk, the usage chunk (with `timings`) and `[DONE]`. A mid-stream error is
/// `data: {"error": {...}}` and the end of the stream, no `[DONE]`.
fn streamed(plan: &Plan<'_>, ids: &Ids, include_usage: bool) -> Response {
    let turn = plan.turn;
    let mut events = vec![chunk(
        ids,
        json!({ "role": "assistant", "content": null }),
        Value::Null,
    )];
    for piece in plan.thinking() {
        events.push(chunk(
            ids,
            json!({ "reasoning_content": piece }),
            Value::Null,
        ));
    }
    for piece in &turn.chunks {
        events.push(chunk(ids, json!({ "content": piece }), Value::Null));
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
        events.push(chunk(
            ids,
            json!({ "tool_calls": [Value::Object(head)] }),
            Value::Null,
        ));
        let arguments = call
            .raw_arguments
            .clone()
            .unwrap_or_else(|| call.arguments.to_string());
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
        if i == 1 {
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
    }
    if events.len() == 1 && plan.error_line.is_some() {
        let message = plan.error_line.unwrap_or_default();
        out.push(sse_event(&error_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            message,
        )));
        out.end();
    }
    let finish = chunk(ids, json!({}), json!(finish_reason(plan)));
    if plan.close_after.is_some() {
        out.push_final(sse_event(&finish));
    } else {
        out.push(sse_event(&finish));
        if include_usage {
            out.push(sse_event(&json!({
                "choices": [],
                "created": ids.created,
                "id": ids.id,
                "model": ids.model,
                "system_fingerprint": ids.fingerprint,
                "object": "chat.completion.chunk",
                "usage": usage(plan),
                "timings": timings(plan),
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
    let thinking = plan.thinking().concat();
    if !thinking.is_empty() {
        message.insert("reasoning_content".into(), json!(thinking));
    }
    if !turn.tool_calls.is_empty() {
        let calls: Vec<Value> = turn
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut call = Map::new();
                call.insert("type".into(), json!("function"));
                call.insert(
                    "function".into(),
                    json!({
                        "name": c.name,
                        "arguments": c.raw_arguments.clone().unwrap_or_else(|| c.arguments.to_string()),
                    }),
                );
                if let Some(id) = call_id(c, i, ids.seq) {
                    call.insert("id".into(), json!(id));
                }
                Value::Object(call)
            })
            .collect();
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    let obj = json!({
        "choices": [{ "finish_reason": finish_reason(plan), "index": 0, "message": message }],
        "created": ids.created,
        "model": ids.model,
        "system_fingerprint": ids.fingerprint,
        "object": "chat.completion",
        "usage": usage(plan),
        "id": ids.id,
        "timings": timings(plan),
    });
    crate::ollama::whole_body(
        plan,
        Bytes::from(serde_json::to_vec(&obj).unwrap_or_default()),
    )
}

//! Every fault, on both APIs.

mod common;

use std::time::{Duration, Instant};

use common::{client, sse_data};
use futures::StreamExt;
use nanna_testkit::{Fault, Script, ScriptedServer, Turn};
use serde_json::{Value, json};

const MODEL: &str = "llama3.1:8b";

async fn ollama(server: &ScriptedServer, stream: bool) -> reqwest::Response {
    client()
        .post(format!("{}/api/chat", server.url()))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream}))
        .send()
        .await
        .unwrap()
}

async fn openai(server: &ScriptedServer, stream: bool) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream}))
        .send()
        .await
        .unwrap()
}

/// Reads a body until it ends or breaks; returns the bytes read and whether it broke.
async fn read_until_break(r: reqwest::Response) -> (String, bool) {
    let mut stream = r.bytes_stream();
    let mut got = Vec::new();
    while let Some(piece) = stream.next().await {
        match piece {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => return (String::from_utf8(got).unwrap(), true),
        }
    }
    (String::from_utf8(got).unwrap(), false)
}

#[tokio::test]
async fn http_error_consumes_the_turn_so_a_retry_gets_the_next() {
    let server = ScriptedServer::start(
        Script::new()
            .turn(Turn::text("x").with_fault(Fault::HttpError {
                status: 500,
                message: "model runner crashed".into(),
            }))
            .turn(Turn::text("recovered"))
            .turn(Turn::text("x").with_fault(Fault::HttpError {
                status: 429,
                message: "slow down".into(),
            })),
    )
    .await
    .unwrap();
    let r = ollama(&server, true).await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "model runner crashed"})
    );
    let r = ollama(&server, false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"]["content"],
        "recovered"
    );
    let r = ollama(&server, false).await;
    assert_eq!(r.status(), 429);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "slow down"})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn close_after_chunks_cuts_the_connection_without_the_final_chunk() {
    let turn = || Turn::chunks(["a", "b", "c", "d"]).with_fault(Fault::CloseAfterChunks(2));
    let server = ScriptedServer::start(
        Script::new()
            .turn(turn())
            .turn(turn())
            .turn(turn())
            .turn(turn())
            .turn(Turn::chunks(["a"]).with_fault(Fault::CloseAfterChunks(10))),
    )
    .await
    .unwrap();
    // Ollama, streamed
    let (body, broke) = read_until_break(ollama(&server, true).await).await;
    assert!(broke, "the body must end in an error, got {body:?}");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["done"] == false));
    // Ollama, whole
    let (body, broke) = read_until_break(ollama(&server, false).await).await;
    assert!(broke);
    assert!(serde_json::from_str::<Value>(&body).is_err());
    // OpenAI, streamed
    let (body, broke) = read_until_break(openai(&server, true).await).await;
    assert!(broke);
    assert_eq!(body.matches("data: ").count(), 2);
    assert!(!body.contains("[DONE]"));
    // OpenAI, whole
    let (_, broke) = read_until_break(openai(&server, false).await).await;
    assert!(broke);
    // More chunks allowed than sent: still no final chunk
    let (body, broke) = read_until_break(ollama(&server, true).await).await;
    assert!(broke);
    assert_eq!(body.lines().count(), 1);
    assert!(!body.contains("\"done\":true"));
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_line_is_sent_after_the_first_chunk() {
    let turn = || Turn::chunks(["a", "b"]).with_fault(Fault::MalformedLine);
    let server = ScriptedServer::start(
        Script::new()
            .turn(turn())
            .turn(turn())
            .turn(turn())
            .turn(turn()),
    )
    .await
    .unwrap();
    let r = ollama(&server, true).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 4, "{body}");
    let parsed: Vec<bool> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).is_ok())
        .collect();
    assert_eq!(parsed, vec![true, false, true, true]);

    let body = openai(&server, true).await.text().await.unwrap();
    let events = sse_data(&body);
    assert!(serde_json::from_str::<Value>(&events[1]).is_err());
    assert_eq!(events.last().unwrap(), "[DONE]");

    let r = ollama(&server, false).await;
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err());
    let r = openai(&server, false).await;
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn error_line_mid_stream_after_http_200() {
    let turn = || {
        Turn::chunks(["partial", " answer"])
            .with_fault(Fault::ErrorLineMidStream("out of memory".into()))
    };
    let server = ScriptedServer::start(Script::new().turn(turn()).turn(turn()).turn(turn()))
        .await
        .unwrap();
    let r = ollama(&server, true).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["message"]["content"], "partial");
    assert_eq!(lines[1], json!({"error": "out of memory"}));

    // Ollama's /v1 loses the message: the error line becomes a chunk with an empty model and
    // an empty delta, and the stream ends without a finish reason (middleware/openai.go
    // `ChatWriter.writeResponse`). llama.cpp's and vLLM's shapes are in tests/flavors.rs.
    let r = openai(&server, true).await;
    assert_eq!(r.status(), 200);
    let events = sse_data(&r.text().await.unwrap());
    assert_eq!(events.len(), 2);
    let blank: Value = serde_json::from_str(&events[1]).unwrap();
    assert_eq!(blank["model"], "");
    assert_eq!(blank["choices"][0]["delta"], json!({"content": ""}));
    assert_eq!(blank["choices"][0]["finish_reason"], Value::Null);

    let r = ollama(&server, false).await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "out of memory"})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn length_sets_done_reason_and_finish_reason() {
    let server = ScriptedServer::start(
        Script::new()
            .turn(Turn::text("cut").with_fault(Fault::Length))
            .turn(Turn::text("cut").with_done_reason("length"))
            .turn(Turn::text("cut").with_fault(Fault::Length)),
    )
    .await
    .unwrap();
    let body = ollama(&server, true).await.text().await.unwrap();
    let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    assert_eq!(last["done_reason"], "length");
    let v: Value = ollama(&server, false).await.json().await.unwrap();
    assert_eq!(v["done_reason"], "length");
    let v: Value = openai(&server, false).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    server.shutdown().await;
}

#[tokio::test]
async fn delays_before_first_byte_and_between_chunks() {
    let server = ScriptedServer::start(
        Script::new()
            .turn(Turn::text("slow start").with_delay(Duration::from_millis(150)))
            .turn(Turn::chunks(["a", "b", "c"]).with_chunk_delay(Duration::from_millis(60))),
    )
    .await
    .unwrap();
    let t0 = Instant::now();
    let r = ollama(&server, true).await;
    // Headers only arrive after the delay.
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
    r.text().await.unwrap();

    let t0 = Instant::now();
    let r = ollama(&server, true).await;
    let mut stream = r.bytes_stream();
    let mut arrivals = Vec::new();
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        for _ in piece.iter().filter(|&&b| b == b'\n') {
            arrivals.push(Instant::now());
        }
    }
    assert_eq!(arrivals.len(), 4);
    // 3 gaps of >= 60 ms between the 4 lines (lower bounds only: sleeps never end early)
    assert!(
        arrivals[3] - t0 >= Duration::from_millis(180),
        "{:?}",
        arrivals[3] - t0
    );
    assert!(
        arrivals[1] - t0 >= Duration::from_millis(60),
        "{:?}",
        arrivals[1] - t0
    );
    server.shutdown().await;
}

#[tokio::test]
async fn exhausted_script_is_an_error_by_default() {
    let server = ScriptedServer::start(Script::new().turn(Turn::text("only")))
        .await
        .unwrap();
    assert_eq!(openai(&server, false).await.status(), 200);
    let r = openai(&server, false).await;
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exhausted")
    );
    server.shutdown().await;
}

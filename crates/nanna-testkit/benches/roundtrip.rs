//! Round-trip cost of one scripted turn through a real HTTP client (reqwest, keep-alive).
//!
//! Prints median and p99 per request for each API and mode. Run with
//! `cargo bench -p nanna-testkit --bench roundtrip`.

use std::time::{Duration, Instant};

use nanna_testkit::{Script, ScriptedServer, Turn};
use serde_json::json;

const WARMUP: usize = 200;
const RUNS: usize = 3000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn measure(name: &str, client: &reqwest::Client, url: &str, body: &serde_json::Value) {
    for _ in 0..WARMUP {
        let r = client.post(url).json(body).send().await.expect("request");
        r.bytes().await.expect("body");
    }
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let r = client.post(url).json(body).send().await.expect("request");
        assert!(r.status().is_success());
        r.bytes().await.expect("body");
        times.push(t0.elapsed());
    }
    times.sort_unstable();
    println!(
        "{name:<40} median {:>7.1} µs   p99 {:>7.1} µs   ({RUNS} requests)",
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let turn = Turn::text("I will read the file now and then report back.")
            .with_tool_call("read_file", json!({"path": "notes.txt"}))
            .forever();
        let server = ScriptedServer::start(Script::new().turn(turn)).await.expect("server");
        let client = reqwest::Client::new();
        let history: Vec<serde_json::Value> = (0..20)
            .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": "some earlier message text ".repeat(8)}))
            .collect();
        let ollama = format!("{}/api/chat", server.url());
        let openai = format!("{}/v1/chat/completions", server.url());
        let body = |stream: bool| json!({"model": "llama3.1:8b", "messages": history, "stream": stream, "options": {"num_ctx": 32768}});
        measure("ollama /api/chat stream (12 lines)", &client, &ollama, &body(true)).await;
        measure("ollama /api/chat non-stream", &client, &ollama, &body(false)).await;
        measure("openai /v1/chat/completions SSE", &client, &openai, &body(true)).await;
        measure("openai /v1/chat/completions non-stream", &client, &openai, &body(false)).await;
        let get = Instant::now();
        for _ in 0..RUNS {
            client.get(format!("{}/api/version", server.url())).send().await.expect("get").bytes().await.expect("body");
        }
        println!(
            "{:<40} mean   {:>7.1} µs",
            "GET /api/version (floor: HTTP round trip)",
            get.elapsed().as_secs_f64() * 1e6 / RUNS as f64
        );
        println!("requests recorded: {}", server.requests().len());
        server.shutdown().await;
    });
}

//! Throughput of stream decoding: NDJSON (Ollama) and SSE (OpenAI-compatible).
//!
//! Run with `cargo bench -p nanna-model --bench decode`. A realistic multi-MB reply (tens of
//! thousands of token-sized deltas in each server's exact chunk shape) is decoded:
//! 1. framing only, fed in 4 KiB network reads and in 7-byte slivers (worst case);
//! 2. framing plus JSON parsing of every frame;
//! 3. end to end through the providers' `chat_stream` from a local HTTP server;
//! 4. framing over line lengths from 100 B to 64 MB, fed in 16 KiB reads: throughput must
//!    not fall with line length (a decoder that restarts its newline search from the line's
//!    start is quadratic: 475 ms for one 32 MB line before the fix).

use std::time::{Duration, Instant};

use futures::StreamExt;
use nanna_model::stream::{NdjsonDecoder, SseDecoder};
use nanna_model::{
    ChatMessage, ChatRequest, ModelProvider, OllamaProvider, OpenAiProvider, StreamEvent,
};

const DELTAS: usize = 40_000;
const WORDS: [&str; 8] = [
    " the",
    " function",
    " returns",
    " a",
    " `Result<T, E>`",
    " über",
    " 世界",
    " value.\n",
];

fn ollama_stream() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..DELTAS {
        let line = serde_json::json!({
            "model": "llama3.1:8b",
            "created_at": "2025-09-01T12:00:00.123456789Z",
            "message": {"role": "assistant", "content": WORDS[i % WORDS.len()]},
            "done": false
        });
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(
        br#"{"model":"llama3.1:8b","created_at":"2025-09-01T12:00:09Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":9000000000,"load_duration":1000000,"prompt_eval_count":1200,"prompt_eval_duration":800000000,"eval_count":40000,"eval_duration":8000000000}"#,
    );
    out.push(b'\n');
    out
}

fn openai_stream() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..DELTAS {
        let event = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_756_728_000,
            "model": "llama3.1:8b", "system_fingerprint": "b6000-abc",
            "choices": [{"index": 0, "delta": {"content": WORDS[i % WORDS.len()]}, "finish_reason": null}]
        });
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(event.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }
    out.extend_from_slice(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    );
    out.extend_from_slice(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":40000}}\n\n");
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

fn report(label: &str, bytes: usize, frames: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{label:<58} {:>8.1} MB/s {:>12.0} events/s  ({frames} events, {:.2} MB, {elapsed:.2?})",
        bytes as f64 / secs / 1e6,
        frames as f64 / secs,
        bytes as f64 / 1e6,
    );
}

/// Best of `runs` timings of `f`, which returns the number of frames it decoded.
fn best(runs: usize, mut f: impl FnMut() -> usize) -> (usize, Duration) {
    let mut best = Duration::MAX;
    let mut frames = 0;
    for _ in 0..runs {
        let start = Instant::now();
        frames = std::hint::black_box(f());
        best = best.min(start.elapsed());
    }
    (frames, best)
}

fn ndjson_frames(data: &[u8], chunk: usize, parse: bool) -> usize {
    ndjson_frames_limited(data, chunk, parse, nanna_model::stream::DEFAULT_MAX_FRAME)
}

fn ndjson_frames_limited(data: &[u8], chunk: usize, parse: bool, limit: usize) -> usize {
    let mut decoder = NdjsonDecoder::with_max_line(limit);
    let mut frames = 0;
    for piece in data.chunks(chunk) {
        decoder.push(piece);
        while let Ok(Some(line)) = decoder.next_line() {
            if parse {
                let value: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
                std::hint::black_box(value);
            }
            frames += 1;
        }
    }
    frames + usize::from(matches!(decoder.finish(), Ok(Some(_))))
}

fn sse_frames(data: &[u8], chunk: usize, parse: bool) -> usize {
    sse_frames_limited(data, chunk, parse, nanna_model::stream::DEFAULT_MAX_FRAME)
}

fn sse_frames_limited(data: &[u8], chunk: usize, parse: bool, limit: usize) -> usize {
    let mut decoder = SseDecoder::with_max_event(limit);
    let mut frames = 0;
    for piece in data.chunks(chunk) {
        decoder.push(piece);
        while let Ok(Some(event)) = decoder.next_event() {
            if parse && event.data != "[DONE]" {
                let value: serde_json::Value =
                    serde_json::from_str(&event.data).unwrap_or_default();
                std::hint::black_box(value);
            }
            frames += 1;
        }
    }
    frames + usize::from(matches!(decoder.finish(), Ok(Some(_))))
}

/// Line lengths of the sweep, in bytes, up to 64 MB.
const LINE_LENGTHS: [usize; 8] = [
    100, 1_000, 10_000, 100_000, 1_000_000, 4_000_000, 16_000_000, 64_000_000,
];

/// About 64 MB of lines of `len` bytes each (at least one line), every line ended by
/// `end` and starting with `prefix`.
fn lines_of(len: usize, prefix: &[u8], end: &[u8]) -> Vec<u8> {
    let total = 64_000_000usize;
    let count = (total / len).max(1);
    let mut out = Vec::with_capacity(count * (len + prefix.len() + end.len()));
    for _ in 0..count {
        out.extend_from_slice(prefix);
        out.resize(out.len() + len, b'x');
        out.extend_from_slice(end);
    }
    out
}

/// Framing throughput per line length, 16 KiB reads, limit above the longest line.
fn line_length_sweep() {
    const READ: usize = 16 * 1024;
    const LIMIT: usize = 128 * 1024 * 1024;
    println!("\nline length sweep, 16 KiB reads (MB/s, best of 3)");
    println!("{:>12} {:>12} {:>12}", "line bytes", "NDJSON", "SSE");
    for len in LINE_LENGTHS {
        let ndjson = lines_of(len, b"", b"\n");
        let (frames, elapsed) = best(3, || ndjson_frames_limited(&ndjson, READ, false, LIMIT));
        assert_eq!(frames, (64_000_000 / len).max(1));
        let ndjson_rate = ndjson.len() as f64 / elapsed.as_secs_f64() / 1e6;
        drop(ndjson);
        let sse = lines_of(len, b"data: ", b"\n\n");
        let (frames, elapsed) = best(3, || sse_frames_limited(&sse, READ, false, LIMIT));
        assert_eq!(frames, (64_000_000 / len).max(1));
        let sse_rate = sse.len() as f64 / elapsed.as_secs_f64() / 1e6;
        println!("{len:>12} {ndjson_rate:>12.0} {sse_rate:>12.0}");
    }
}

/// Serves `body` once per connection as a chunked HTTP response.
async fn serve(body: Vec<u8>, content_type: &'static str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
    let addr = listener.local_addr().ok()?;
    let body = std::sync::Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                    if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        let text = String::from_utf8_lossy(&head[..end]).to_lowercase();
                        let length: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        let mut have = head.len() - end - 4;
                        while have < length {
                            let Ok(n) = socket.read(&mut buf).await else {
                                return;
                            };
                            if n == 0 {
                                return;
                            }
                            have += n;
                        }
                        break;
                    }
                }
                let (reply, payload): (String, &[u8]) = if head.starts_with(b"POST /api/show") {
                    let info = br#"{"model_info":{"general.architecture":"llama","llama.context_length":131072},"capabilities":["completion","tools"]}"#;
                    (
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            info.len()
                        ),
                        info,
                    )
                } else {
                    (
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        ),
                        &body[..],
                    )
                };
                if socket.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
                // Write in 4 KiB pieces, as a server flushing tokens would in bulk.
                for piece in payload.chunks(4096) {
                    if socket.write_all(piece).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Some(format!("http://{addr}"))
}

async fn drain(provider: &dyn ModelProvider) -> usize {
    let request = ChatRequest::new("llama3.1:8b", vec![ChatMessage::user("hi")]);
    let Ok(mut stream) = provider.chat_stream(&request).await else {
        return 0;
    };
    let mut events = 0;
    while let Some(event) = stream.next().await {
        match event {
            Ok(StreamEvent::TextDelta { .. } | StreamEvent::Done { .. }) => events += 1,
            Ok(_) => {}
            Err(error) => {
                eprintln!("stream error: {error}");
                return 0;
            }
        }
    }
    events
}

fn main() {
    if std::env::args().any(|a| a == "--sweep-only") {
        line_length_sweep();
        return;
    }
    let ndjson = ollama_stream();
    let sse = openai_stream();
    let runs = 5;

    for (chunk, label) in [(4096, "4 KiB reads"), (7, "7-byte reads")] {
        let (frames, elapsed) = best(runs, || ndjson_frames(&ndjson, chunk, false));
        report(
            &format!("NDJSON framing, {label}"),
            ndjson.len(),
            frames,
            elapsed,
        );
        let (frames, elapsed) = best(runs, || sse_frames(&sse, chunk, false));
        report(&format!("SSE framing, {label}"), sse.len(), frames, elapsed);
    }
    let (frames, elapsed) = best(runs, || ndjson_frames(&ndjson, 4096, true));
    report(
        "NDJSON framing + JSON parse, 4 KiB reads",
        ndjson.len(),
        frames,
        elapsed,
    );
    let (frames, elapsed) = best(runs, || sse_frames(&sse, 4096, true));
    report(
        "SSE framing + JSON parse, 4 KiB reads",
        sse.len(),
        frames,
        elapsed,
    );

    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        eprintln!("no runtime");
        return;
    };
    runtime.block_on(async {
        let (Some(ollama_url), Some(openai_url)) = (
            serve(ndjson.clone(), "application/x-ndjson").await,
            serve(sse.clone(), "text/event-stream").await,
        ) else {
            eprintln!("cannot start the local servers");
            return;
        };
        let (Ok(ollama), Ok(openai)) = (
            OllamaProvider::new(&ollama_url),
            OpenAiProvider::new(&openai_url),
        ) else {
            return;
        };
        for (label, provider, bytes) in [
            (
                "OllamaProvider::chat_stream end to end (local HTTP)",
                &ollama as &dyn ModelProvider,
                ndjson.len(),
            ),
            (
                "OpenAiProvider::chat_stream end to end (local HTTP)",
                &openai as &dyn ModelProvider,
                sse.len(),
            ),
        ] {
            let mut best_time = Duration::MAX;
            let mut events = 0;
            for _ in 0..runs {
                let start = Instant::now();
                events = drain(provider).await;
                best_time = best_time.min(start.elapsed());
            }
            report(label, bytes, events, best_time);
        }
    });
    line_length_sweep();
}

//! Prompt evaluation and estimate accuracy over a 20-turn session with compactions, on a
//! real llama.cpp server with a small window (SmolLM2-135M, `-c 2048`).
//!
//! Run with `cargo bench -p nanna-agent --bench context` after `source llama.env` (needs
//! `NANNA_TEST_LLAMA_BIN` and `NANNA_TEST_LLAMA_GGUF`). Prints figures; asserts nothing.
//!
//! Each turn is a new agent on the reopened session, as `nanna exec --resume last` runs.
//! - *evaluated*: prompt tokens the server had to evaluate, its reported prompt tokens minus
//!   the cached ones (`usage.prompt_tokens_details.cached_tokens`); *all evaluated* adds the
//!   summary requests, from llama.cpp's `/metrics` (`llamacpp:prompt_tokens_total`).
//! - *ideal*: the tokens appended since the previous request (the server's own count of the
//!   uncompacted conversation, `/apply-template` + `/tokenize`): what a perfect cache and an
//!   unbounded window would evaluate.
//! - *heuristic* is the estimate before calibration (bytes / 3.5 for everything, tool schemas
//!   included); *estimate* is the ledger's (the server's last count plus the calibrated cost
//!   of what was appended).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;

use nanna_agent::{
    Agent, AgentConfig, AgentEvent, ApprovalPolicy, CancellationToken, FixedApprover, SessionMeta,
    SessionStore, estimate_message,
};
use nanna_model::{ChatMessage, ChatRequest, ModelProvider, OpenAiProvider};
use nanna_testkit::llama::LlamaServer;
use nanna_tools::ToolRegistry;

const WINDOW: u32 = 2048;
const TURNS: usize = 20;
const MAX_TOKENS: u32 = 40;

const TOPICS: [&str; 10] = [
    "rivers",
    "bees",
    "volcanoes",
    "libraries",
    "trains",
    "owls",
    "glaciers",
    "bridges",
    "tides",
    "bread",
];

fn request(turn: usize) -> String {
    let topic = TOPICS[turn % TOPICS.len()];
    let mut notes = String::new();
    for i in 0..6 {
        notes.push_str(&format!(
            "Note {i} on {topic}: people who study {topic} write that {topic} change slowly, \
             matter to towns nearby, and are worth a visit. "
        ));
    }
    format!("Here are my notes.\n{notes}\nWrite one sentence about {topic}.")
}

/// `llamacpp:prompt_tokens_total` from `/metrics`: every prompt token evaluated so far.
fn evaluated_total(port_url: &str) -> u64 {
    let addr = port_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect to /metrics");
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("response");
    body.lines()
        .find_map(|l| l.strip_prefix("llamacpp:prompt_tokens_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

struct Row {
    reported: u32,
    evaluated: u32,
    all_evaluated: u64,
    ideal: u32,
    heuristic: u32,
    estimate: u32,
    compacted: Option<(u32, u32)>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(server) =
        LlamaServer::start(&["-c", &WINDOW.to_string(), "--alias", "smol", "--metrics"])
    else {
        return;
    };
    let base_url = server.url();
    let provider: Arc<dyn ModelProvider> =
        Arc::new(OpenAiProvider::new(&base_url).expect("valid url"));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SessionStore::new(dir.path().join("sessions"));
    let mut config = AgentConfig::new("smol", dir.path());
    config.options.max_tokens = Some(MAX_TOKENS);
    config.options.temperature = Some(0.0);
    config.sandbox = nanna_sandbox::Policy::new(nanna_sandbox::SandboxMode::ReadOnly);
    config.approval = ApprovalPolicy::Auto;
    // The tools a read-only session offers (what the agent sends), measured once.
    let mut tools_raw = None;
    let approver = FixedApprover(nanna_agent::ApprovalDecision::Yes);
    // Everything ever appended, never compacted: the ideal's conversation.
    let mut full: Vec<ChatMessage> = Vec::new();
    let mut ideal_before = 0;
    let mut rows = Vec::new();
    for turn in 0..TURNS {
        let session = if turn == 0 {
            store
                .create(SessionMeta {
                    model: config.model.clone(),
                    workspace: config.workspace.clone(),
                })
                .expect("session")
        } else {
            store.open("last").expect("session")
        };
        let mut agent = Agent::new(
            provider.clone(),
            ToolRegistry::with_builtins(),
            config.clone(),
            session,
        )
        .await
        .expect("agent");
        let offered = agent.offered_tools();
        let tools_raw = *tools_raw.get_or_insert_with(|| {
            let bytes = serde_json::to_string(&offered).map_or(0, |s| s.len());
            u32::try_from(bytes.div_ceil(3)).unwrap_or(u32::MAX)
        });
        let input = request(turn);
        let user = ChatMessage::user(input.as_str());
        let heuristic = agent
            .history()
            .iter()
            .chain(std::iter::once(&user))
            .map(estimate_message)
            .sum::<u32>()
            + tools_raw;
        if full.is_empty() {
            full.push(agent.history()[0].clone());
        }
        full.push(user);
        let mut ideal_request = ChatRequest::new("smol", full.clone());
        ideal_request.tools = offered;
        let ideal_now = provider
            .count_prompt_tokens(&ideal_request)
            .await
            .expect("count")
            .expect("llama.cpp counts");
        let metrics_before = evaluated_total(&base_url);
        let mut events = Vec::new();
        agent
            .run(&input, &approver, CancellationToken::new(), &mut |e| {
                events.push(e)
            })
            .await
            .expect("turn");
        let metrics_after = evaluated_total(&base_url);
        let mut row = Row {
            reported: 0,
            evaluated: 0,
            all_evaluated: metrics_after - metrics_before,
            ideal: ideal_now - ideal_before,
            heuristic,
            estimate: 0,
            compacted: None,
        };
        for e in &events {
            match e {
                AgentEvent::TurnEnd {
                    usage: Some(usage),
                    prompt_tokens_estimate,
                    ..
                } => {
                    row.reported = usage.prompt_tokens;
                    row.evaluated = usage
                        .evaluated_prompt_tokens()
                        .unwrap_or(usage.prompt_tokens);
                    row.estimate = *prompt_tokens_estimate;
                }
                AgentEvent::ContextCompacted {
                    tokens_before,
                    tokens_after,
                    ..
                } => row.compacted = Some((*tokens_before, *tokens_after)),
                _ => {}
            }
        }
        if let Some(reply) = agent.history().last() {
            full.push(reply.clone());
        }
        ideal_before = ideal_now;
        rows.push(row);
    }

    println!(
        "turn | prompt | evaluated | all evaluated | ideal | heuristic (err) | estimate (err) | compaction"
    );
    let pct = |est: u32, real: u32| 100.0 * (f64::from(est) - f64::from(real)) / f64::from(real);
    for (i, r) in rows.iter().enumerate() {
        println!(
            "{:>4} | {:>6} | {:>9} | {:>13} | {:>5} | {:>5} ({:+6.1}%) | {:>5} ({:+6.1}%) | {}",
            i + 1,
            r.reported,
            r.evaluated,
            r.all_evaluated,
            r.ideal,
            r.heuristic,
            pct(r.heuristic, r.reported),
            r.estimate,
            pct(r.estimate, r.reported),
            r.compacted
                .map_or(String::new(), |(b, a)| format!("{b} -> {a}")),
        );
    }
    let sum = |f: &dyn Fn(&Row) -> u64| rows.iter().map(f).sum::<u64>();
    let evaluated = sum(&|r| u64::from(r.evaluated));
    let all = sum(&|r| r.all_evaluated);
    let ideal = sum(&|r| u64::from(r.ideal));
    let mean_abs = |f: &dyn Fn(&Row) -> u32| {
        rows.iter()
            .map(|r| pct(f(r), r.reported).abs())
            .sum::<f64>()
            / rows.len() as f64
    };
    println!(
        "compactions: {}; evaluated / ideal: {:.2} (main requests), {:.2} (summary requests \
         included); total {evaluated} / {all} / {ideal} tokens",
        rows.iter().filter(|r| r.compacted.is_some()).count(),
        evaluated as f64 / ideal as f64,
        all as f64 / ideal as f64,
    );
    println!(
        "mean |error| of the prompt estimate: heuristic {:.1}%, calibrated {:.1}%",
        mean_abs(&|r| r.heuristic),
        mean_abs(&|r| r.estimate)
    );
}

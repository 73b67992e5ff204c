//! Per-call overhead of the built-in tools through the registry (validation, path
//! confinement, the work itself, output formatting). Run with
//! `cargo bench -p nanna-tools --bench tool_calls`; prints median and p90 per call.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use nanna_tools::{ToolContext, ToolRegistry};
use serde_json::{Value, json};

/// A synthetic project: `files` Rust files of 200 lines in 10 directories, plus an ignored
/// `target/` with as many files again.
fn populate(root: &Path, files: usize) {
    fs::write(root.join(".gitignore"), "target/\n").unwrap();
    for i in 0..files {
        let body: String = (0..200)
            .map(|l| format!("    let value_{l} = compute({i}, {l}); // line {l}\n"))
            .collect();
        let text = format!("fn f{i}() {{\n{body}}}\n");
        for top in ["src", "target"] {
            let dir = root.join(format!("{top}/m{}", i % 10));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(format!("f{i}.rs")), &text).unwrap();
        }
    }
}

fn measure(
    rt: &tokio::runtime::Runtime,
    registry: &ToolRegistry,
    ctx: &ToolContext,
    name: &str,
    args: Value,
    iterations: usize,
) {
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let result = rt.block_on(registry.execute(name, args.clone(), ctx));
        times.push(start.elapsed());
        if let Err(e) = result {
            panic!("{name} failed: {e}");
        }
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p) as usize];
    println!(
        "{:<44} median {:>9.1} µs   p90 {:>9.1} µs   ({iterations} calls)",
        format!("{name} {args}")
            .chars()
            .take(44)
            .collect::<String>(),
        micros(pct(0.5)),
        micros(pct(0.9)),
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path(), 300);
    let ctx = ToolContext::new(dir.path()).unwrap();
    let registry = ToolRegistry::with_builtins();
    println!("workspace: 300 files x 200 lines in src/ (+300 ignored in target/)");

    let start = Instant::now();
    let defs = serde_json::to_string(&registry.definitions()).unwrap();
    println!(
        "definitions(): {} bytes of JSON, serialized in {:.1} µs",
        defs.len(),
        micros(start.elapsed())
    );
    let start = Instant::now();
    let n = 10_000;
    for _ in 0..n {
        registry
            .validate(
                "read_file",
                json!({"path": "src/m0/f0.rs", "offset": "10", "limit": 40}),
            )
            .unwrap();
    }
    println!(
        "validate(read_file args): {:.2} µs per call",
        micros(start.elapsed()) / n as f64
    );

    measure(
        &rt,
        &registry,
        &ctx,
        "calculate",
        json!({"expression": "(2+3)*4^2/8-sqrt(9)"}),
        2000,
    );
    measure(
        &rt,
        &registry,
        &ctx,
        "read_file",
        json!({"path": "src/m0/f0.rs"}),
        500,
    );
    measure(
        &rt,
        &registry,
        &ctx,
        "read_file",
        json!({"path": "src/m0/f0.rs", "offset": 50, "limit": 20}),
        500,
    );
    measure(
        &rt,
        &registry,
        &ctx,
        "write_file",
        json!({"path": "out/new.rs", "content": "fn main() {}\n".repeat(50)}),
        300,
    );
    fs::write(
        dir.path().join("edit.rs"),
        "let a = 1;\nlet b = 2;\n".repeat(100) + "let unique = 0;\n",
    )
    .unwrap();
    let mut flip = false;
    let mut times = Vec::new();
    for _ in 0..300 {
        let (old, new) = if flip {
            ("let unique = 1;", "let unique = 0;")
        } else {
            ("let unique = 0;", "let unique = 1;")
        };
        flip = !flip;
        let start = Instant::now();
        rt.block_on(registry.execute(
            "edit_file",
            json!({"path": "edit.rs", "old_text": old, "new_text": new}),
            &ctx,
        ))
        .unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "{:<44} median {:>9.1} µs   p90 {:>9.1} µs   (300 calls)",
        "edit_file (201-line file, 1-line change)",
        micros(times[150]),
        micros(times[270])
    );
    measure(
        &rt,
        &registry,
        &ctx,
        "list_dir",
        json!({"path": "src"}),
        500,
    );
    measure(
        &rt,
        &registry,
        &ctx,
        "glob",
        json!({"pattern": "**/*.rs"}),
        100,
    );
    measure(
        &rt,
        &registry,
        &ctx,
        "grep",
        json!({"pattern": "value_199 = compute\\(29"}),
        50,
    );
    measure(
        &rt,
        &registry,
        &ctx,
        "grep",
        json!({"pattern": "compute", "glob": "f1.rs"}),
        50,
    );
    measure(
        &rt,
        &registry,
        &ctx,
        "shell",
        json!({"command": "true"}),
        200,
    );
    measure(
        &rt,
        &registry,
        &ctx,
        "shell",
        json!({"command": "seq 1 200000"}),
        20,
    );
}

//! MCP benchmark: runs the `nanna` binary against an in-process, zero-delay scripted model
//! server and prints
//!
//! - session start with 0, 1 and 3 stdio MCP servers configured: process start → first chat
//!   request (the servers start in parallel before it), for two kinds of server: `nanna
//!   mcp-server` (a Rust binary: the client's own cost) and `@modelcontextprotocol/
//!   server-filesystem` (Node, as users run it; needs `.ci/mcp-servers.sh install`);
//! - the per-call overhead of an MCP tool against a built-in one: a 50-turn tool loop reading
//!   the same file with `read_file` and with the MCP server's read tool.
//!
//! Run with `cargo bench -p nanna --bench mcp`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use nanna_testkit::mcp::{RealMcp, toml_str};
use nanna_testkit::{Script, Turn};
use serde_json::json;

mod common;

use common::{Bench, median, ms};

const TURNS: u32 = 50;
const RUNS: usize = 7;

impl Bench {
    fn config(&self, text: &str) {
        let dir = self.home.path().join("config/nanna");
        std::fs::create_dir_all(&dir).expect("config dir");
        std::fs::write(dir.join("config.toml"), text).expect("config");
    }

    /// `nanna` against `url`, with `PATH` (the MCP servers are found through it).
    fn nanna_with_path(&self, url: &str) -> Command {
        let mut cmd = self.nanna(Some(url));
        cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        cmd
    }

    /// Process start → first chat request, median of [`RUNS`].
    fn first_request(&self, config: &str) -> f64 {
        self.config(config);
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let server = self.server(Script::always_text("Hi."));
            let start = Instant::now();
            let out = self
                .nanna_with_path(&server.url())
                .args(["exec", "say hi"])
                .output()
                .expect("nanna runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let chat = server
                .requests()
                .into_iter()
                .find(|r| r.is_chat())
                .expect("a chat request");
            times.push(ms(chat.received_at - start));
            self.shutdown(server);
        }
        median(times)
    }

    /// Wall time per turn of a [`TURNS`]-turn loop calling `tool` with `args`, median of 3.
    fn per_turn(&self, config: &str, tool: &str, args: serde_json::Value) -> f64 {
        self.config(config);
        let mut times = Vec::new();
        for _ in 0..3 {
            let server = self.server(
                Script::new()
                    .turn(Turn::tool_call(tool, args.clone()).repeat(TURNS - 1))
                    .turn(Turn::text("Done.")),
            );
            let out = self
                .nanna_with_path(&server.url())
                .args([
                    "exec",
                    "--full-auto",
                    "--json",
                    "--max-turns",
                    "1000",
                    "loop",
                ])
                .output()
                .expect("nanna runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let chats = server.chat_requests();
            assert_eq!(chats.len(), TURNS as usize);
            assert!(
                !String::from_utf8_lossy(&out.stdout).contains("\"ok\":false"),
                "a call failed: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            // Steady state: request-to-request, so server start-up is not counted.
            let span = chats[chats.len() - 1].received_at - chats[0].received_at;
            times.push(ms(span) / f64::from(TURNS - 1));
            self.shutdown(server);
        }
        median(times)
    }
}

fn nanna_server_table(name: &str, work: &Path) -> String {
    format!(
        "[mcp_servers.{name}]\ncommand = {}\nargs = [\"mcp-server\", \"-C\", {}]\n",
        toml_str(env!("CARGO_BIN_EXE_nanna")),
        toml_str(work.display().to_string())
    )
}

fn fs_table(real: &RealMcp, name: &str, work: &Path) -> String {
    format!(
        "[mcp_servers.{name}]\ncommand = {}\nargs = [{}]\n",
        toml_str(real.filesystem.display().to_string()),
        toml_str(work.display().to_string())
    )
}

fn main() {
    let bench = Bench::new();
    let work = bench.work.path().to_owned();
    let real = RealMcp::find();
    if let Some(real) = &real {
        println!("real servers: {}", real.versions);
    }

    println!("== session start: process start → first chat request (median of {RUNS}) ==");
    let none = bench.first_request("");
    println!("0 servers: {none:.1} ms");
    for n in [1, 3] {
        let tables: String = (0..n)
            .map(|i| nanna_server_table(&format!("n{i}"), &work))
            .collect();
        let t = bench.first_request(&tables);
        println!(
            "{n} × `nanna mcp-server` (Rust, stdio): {t:.1} ms (+{:.1} ms)",
            t - none
        );
    }
    if let Some(real) = &real {
        for n in [1, 3] {
            let tables: String = (0..n)
                .map(|i| fs_table(real, &format!("fs{i}"), &work))
                .collect();
            let t = bench.first_request(&tables);
            println!(
                "{n} × server-filesystem (Node, stdio): {t:.1} ms (+{:.1} ms)",
                t - none
            );
        }
    } else {
        println!("server-filesystem: skipped (run .ci/mcp-servers.sh install)");
    }

    println!(
        "\n== per call: {TURNS}-turn tool loop, steady-state request-to-request (median of 3) =="
    );
    let builtin = bench.per_turn("", "read_file", json!({"path": "notes.txt"}));
    println!("built-in read_file: {builtin:.2} ms/turn");
    let own = bench.per_turn(
        &nanna_server_table("n", &work),
        "n__read_file",
        json!({"path": "notes.txt"}),
    );
    println!(
        "MCP n__read_file (`nanna mcp-server`, stdio): {own:.2} ms/turn (+{:.2} ms per call)",
        own - builtin
    );
    if let Some(real) = &real {
        let fs = bench.per_turn(
            &fs_table(real, "fs", &work),
            "fs__read_text_file",
            json!({"path": work.join("notes.txt")}),
        );
        println!(
            "MCP fs__read_text_file (server-filesystem, stdio): {fs:.2} ms/turn (+{:.2} ms per \
             call)",
            fs - builtin
        );
    }
}

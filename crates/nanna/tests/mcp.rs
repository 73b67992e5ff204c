//! MCP through the `nanna` binary, against servers no one here wrote: a scripted model drives
//! `@modelcontextprotocol/server-filesystem` and `server-everything`; the official Python
//! client drives `nanna mcp-server`; `nanna mcp add/list/get/remove` edit the config file.

mod common;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use nanna_testkit::mcp::{RealMcp, toml_str, wait_gone};
use nanna_testkit::{ModelSpec, Script, ServerConfig, Turn};
use serde_json::{Value, json};

/// Writes the user's config file (`$XDG_CONFIG_HOME/nanna/config.toml`) of `env`.
fn write_config(env: &Env, text: &str) {
    let dir = env.home.path().join("config/nanna");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

fn fs_table(real: &RealMcp, allowed: &Path) -> String {
    format!(
        "[mcp_servers.fs]\ncommand = {}\nargs = [{}]\n",
        toml_str(real.filesystem.display().to_string()),
        toml_str(allowed.display().to_string())
    )
}

fn tool_results(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["type"] == "tool_result")
        .collect()
}

#[test]
fn a_scripted_model_lists_reads_and_writes_through_server_filesystem() {
    let Some(real) = RealMcp::find() else { return };
    let script = |work: &Path| {
        Script::new()
            .turn(Turn::tool_call("fs__list_directory", json!({"path": work})))
            .turn(Turn::tool_call(
                "fs__read_text_file",
                json!({"path": work.join("notes.txt")}),
            ))
            .turn(Turn::tool_call(
                "fs__write_file",
                json!({"path": work.join("summary.txt"), "content": "milk, eggs\n"}),
            ))
            .turn(Turn::tool_call(
                "fs__read_text_file",
                json!({"path": "/etc/passwd"}),
            ))
            .turn(Turn::text("Done: summary.txt written."))
    };
    // The script names the workspace, so it is made before the scripted server starts.
    let work_dir = tempfile::tempdir().unwrap();
    let work = work_dir.path().to_owned();
    let env = Env::new(script(&work));
    write_config(&env, &fs_table(&real, &work));
    std::fs::write(work.join("notes.txt"), "buy milk and eggs\n").unwrap();
    let out = run(
        env.nanna()
            .args(["exec", "--json", "--full-auto", "-C"])
            .arg(&work)
            .arg("summarize notes.txt into summary.txt"),
        None,
    );
    assert_exit(&out, 0);
    let events = json_lines(&out);
    let kinds = types(&events);
    assert_subsequence(
        &kinds,
        &[
            "mcp_servers_starting",
            "mcp_server_ready",
            "session_started",
            "tool_result",
            "done",
        ],
    );
    let results = tool_results(&events);
    assert_eq!(results.len(), 4, "{results:?}");
    assert_eq!(results[0]["ok"], true);
    assert!(
        results[0]["output"]
            .as_str()
            .unwrap()
            .contains("[FILE] notes.txt")
    );
    assert_eq!(results[1]["output"], "buy milk and eggs\n");
    assert_eq!(results[2]["ok"], true);
    // Outside its allowed directory: a tool error the model sees, and the run goes on.
    assert_eq!(results[3]["ok"], false);
    assert!(
        results[3]["output"]
            .as_str()
            .unwrap()
            .contains("Access denied"),
        "{}",
        results[3]
    );
    assert_eq!(
        std::fs::read_to_string(work.join("summary.txt")).unwrap(),
        "milk, eggs\n"
    );

    // The model was offered the server's tools, named within both providers' limits, with
    // their schemas; and got the refusal as a tool message.
    let requests = env.chat_requests();
    let tools = requests[0].body["tools"].as_array().unwrap();
    let names: Vec<&str> = tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"read_file") && names.contains(&"fs__read_text_file"),
        "{names:?}"
    );
    for name in &names {
        assert!(nanna_mcp::is_valid_tool_name(name), "{name}");
    }
    let read = tools
        .iter()
        .find(|t| t["function"]["name"] == "fs__read_text_file")
        .unwrap();
    assert_eq!(read["function"]["parameters"]["required"], json!(["path"]));
    let last = message_texts(&requests[4]);
    assert!(last.iter().any(|m| m.contains("Access denied")), "{last:?}");

    // The server stopped with the session.
    assert_eq!(
        wait_gone(&work.display().to_string(), Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}

#[test]
fn a_read_only_run_refuses_mcp_tools_that_may_change_things() {
    let Some(real) = RealMcp::find() else { return };
    let work_dir = tempfile::tempdir().unwrap();
    let work = work_dir.path().to_owned();
    let env = Env::new(
        Script::new()
            .turn(Turn::tool_call(
                "fs__write_file",
                json!({"path": work.join("x.txt"), "content": "no"}),
            ))
            .turn(Turn::tool_call("fs__list_allowed_directories", json!({})))
            .turn(Turn::text("I could not write.")),
    );
    write_config(&env, &fs_table(&real, &work));
    // `exec` is read-only unless told otherwise: write_file (no readOnlyHint) is refused,
    // list_allowed_directories (readOnlyHint) runs.
    let out = run(
        env.nanna()
            .args(["exec", "--json", "-C"])
            .arg(&work)
            .arg("write x.txt"),
        None,
    );
    assert_exit(&out, 0);
    let events = json_lines(&out);
    let results = tool_results(&events);
    assert_eq!(results[0]["ok"], false);
    assert!(
        results[0]["output"].as_str().unwrap().contains("read-only"),
        "{}",
        results[0]
    );
    assert_eq!(results[1]["ok"], true);
    assert!(!work.join("x.txt").exists());
}

#[test]
fn images_progress_and_structured_output_from_server_everything() {
    let Some(real) = RealMcp::find() else { return };
    for vision in [true, false] {
        let mut model = ModelSpec::new(MODEL);
        if vision {
            model = model.with_capabilities(["completion", "tools", "vision"]);
        }
        let env = Env::with_config(
            ServerConfig {
                models: vec![model],
                ..ServerConfig::default()
            },
            Script::new()
                .turn(Turn::tool_call("e__get-tiny-image", json!({})))
                .turn(Turn::tool_call(
                    "e__trigger-long-running-operation",
                    json!({"duration": 0.4, "steps": 2}),
                ))
                .turn(Turn::tool_call(
                    "e__get-structured-content",
                    json!({"location": "New York"}),
                ))
                .turn(Turn::text("A logo, a finished operation and the weather.")),
        );
        write_config(
            &env,
            &format!(
                "[mcp_servers.e]\ncommand = {}\nenabled_tools = [\"get-tiny-image\", \
                 \"trigger-long-running-operation\", \"get-structured-content\"]\n",
                toml_str(real.everything.display().to_string())
            ),
        );
        let out = run(env.nanna().args(["exec", "--json", "show me"]), None);
        assert_exit(&out, 0);
        let events = json_lines(&out);
        let ready = events
            .iter()
            .find(|e| e["type"] == "mcp_server_ready")
            .expect("ready event");
        assert_eq!(
            ready["tools"], 3,
            "enabled_tools keeps the set small: {ready}"
        );
        let progress: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "mcp_progress")
            .collect();
        assert_eq!(progress.len(), 2, "{progress:?}");
        assert_eq!(progress[1]["tool"], "e__trigger-long-running-operation");
        assert_eq!(progress[1]["progress"], 2.0);
        assert_eq!(progress[1]["total"], 2.0);

        let requests = env.chat_requests();
        // The tool message answering get-tiny-image (the second request's last message).
        let messages = requests[1].messages();
        let tool_message = messages.last().unwrap();
        assert_eq!(tool_message["role"], "tool");
        assert!(
            tool_message["content"]
                .as_str()
                .unwrap()
                .contains("[image 1: image/png,"),
            "{tool_message}"
        );
        let images = tool_message["images"].as_array();
        if vision {
            assert!(
                images.unwrap()[0]
                    .as_str()
                    .unwrap()
                    .starts_with("iVBORw0KGgo"),
                "a vision model gets the PNG"
            );
        } else {
            assert!(
                images.is_none(),
                "a text model gets words only: {tool_message}"
            );
        }
        let weather = requests[3].messages();
        let weather = weather.last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_owned();
        let weather: Value = serde_json::from_str(&weather).unwrap();
        assert_eq!(weather["conditions"], "Cloudy");
    }
}

#[test]
fn failures_are_reported_and_required_servers_stop_a_one_shot_run() {
    let env = Env::new(Script::new().turn(Turn::text("Fine without it.")));
    write_config(
        &env,
        "[mcp_servers.gone]\ncommand = \"/nonexistent/server\"\n",
    );
    let out = run(env.nanna().args(["exec", "hello"]), None);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains(
            "warning: mcp server gone: cannot start `/nonexistent/server`: no such program"
        ),
        "{err}"
    );
    assert!(stdout(&out).contains("Fine without it."));

    write_config(
        &env,
        "[mcp_servers.gone]\ncommand = \"/nonexistent/server\"\nrequired = true\n",
    );
    let out = run(env.nanna().args(["exec", "hello"]), None);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("required MCP server(s) gone did not start"),
        "{}",
        stderr(&out)
    );

    // A mistake in the table stops every command that reads it, naming the file.
    write_config(&env, "[mcp_servers.gone]\ncomand = \"x\"\n");
    let out = run(env.nanna().args(["exec", "hello"]), None);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("[mcp_servers.gone]") && err.contains("unknown field `comand`"),
        "{err}"
    );
}

#[test]
fn tools_shows_mcp_tools_with_their_token_cost_and_the_budget_warns() {
    let Some(real) = RealMcp::find() else { return };
    let env = Env::new(Script::new().turn(Turn::text("ok")));
    write_config(
        &env,
        &format!(
            "tool_token_budget = 1500\n{}",
            fs_table(&real, env.work.path())
        ),
    );
    let out = run(env.bare().args(["tools", "--json"]), None);
    assert_exit(&out, 0);
    let tools: Vec<Value> = serde_json::from_str(stdout(&out).trim()).unwrap();
    let fs: Vec<&Value> = tools.iter().filter(|t| t["source"] == "mcp:fs").collect();
    assert!(fs.len() >= 10, "{tools:?}");
    assert!(tools.iter().all(|t| t["tokens"].as_u64().unwrap() > 10));
    let total: u64 = tools.iter().map(|t| t["tokens"].as_u64().unwrap()).sum();
    assert!(total > 1500);
    let out = run(env.bare().arg("tools"), None);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains(&format!(
            "~{total} tokens in every request (tool_token_budget 1500)"
        )),
        "{}",
        stdout(&out)
    );
    // A session counts what it offers: a read-only `exec` leaves out the tools that may
    // change things, so its figure is below the full list's.
    let out = run(env.nanna().args(["exec", "hi"]), None);
    assert_exit(&out, 0);
    let err = stderr(&out);
    let offered: u64 = err
        .split("take ~")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no budget warning in {err}"));
    assert!(
        offered > 1500 && offered < total,
        "{offered} of {total}: {err}"
    );
    assert!(err.contains("over the tool_token_budget of 1500"), "{err}");
    // --no-mcp lists the built-ins without starting anything.
    let out = run(env.bare().args(["tools", "--json", "--no-mcp"]), None);
    let tools: Vec<Value> = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(tools.iter().all(|t| t["source"] == "builtin"));
}

#[test]
fn mcp_add_list_get_remove_keep_the_users_file() {
    let env = Env::new(Script::new());
    let original = "# my settings\nmodel = \"qwen2.5-coder:7b\" # fits my GPU\n";
    write_config(&env, original);
    let out = run(
        env.bare().args([
            "mcp",
            "add",
            "fs",
            "--env",
            "DEBUG=1",
            "--",
            "npx",
            "-y",
            "@modelcontextprotocol/server-filesystem",
            "/srv",
        ]),
        None,
    );
    assert_exit(&out, 0);
    let out = run(
        env.bare().args([
            "mcp",
            "add",
            "docs",
            "--url",
            "http://127.0.0.1:3000/mcp",
            "--bearer-token-env-var",
            "DOCS_TOKEN",
        ]),
        None,
    );
    assert_exit(&out, 0);
    let file = env.home.path().join("config/nanna/config.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(original), "{text}");

    let out = run(env.bare().args(["mcp", "list", "--json"]), None);
    assert_exit(&out, 0);
    let list: Vec<Value> = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(list.len(), 2);
    let fs = list.iter().find(|s| s["name"] == "fs").unwrap();
    assert_eq!(fs["command"], "npx");
    assert_eq!(
        fs["args"],
        json!(["-y", "@modelcontextprotocol/server-filesystem", "/srv"])
    );
    assert_eq!(fs["env"]["DEBUG"], "*****", "list masks env values");
    let out = run(env.bare().args(["mcp", "get", "docs", "--json"]), None);
    assert_exit(&out, 0);
    let docs: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(docs["url"], "http://127.0.0.1:3000/mcp");
    assert_eq!(docs["bearer_token_env_var"], "DOCS_TOKEN");
    let out = run(env.bare().args(["mcp", "list"]), None);
    assert!(stdout(&out).contains("docs  http"), "{}", stdout(&out));

    // Mistakes: clear, non-zero, file untouched.
    let before = std::fs::read_to_string(&file).unwrap();
    for args in [
        vec!["mcp", "add", "bad name", "--", "x"],
        vec!["mcp", "add", "web", "--url", "ftp://x"],
        vec!["mcp", "add", "empty"],
        vec!["mcp", "add", "e", "--env", "NOEQUALS", "--", "x"],
        vec!["mcp", "remove", "nope"],
        vec!["mcp", "get", "nope"],
    ] {
        let out = run(env.bare().args(&args), None);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(
            !stderr(&out).is_empty() && !stderr(&out).contains("panicked"),
            "{args:?}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

    for name in ["fs", "docs"] {
        let out = run(env.bare().args(["mcp", "remove", name]), None);
        assert_exit(&out, 0);
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);
}

/// Runs the Python SDK's client (`tests/mcp/client.py`) with `steps`; one JSON value per step.
fn python_client(real: &RealMcp, transport: &[&str], steps: &Value) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py");
    let mut child = Command::new(&real.python)
        .arg(script)
        .args(transport)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(steps.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn nanna_mcp_server_over_stdio_serves_confined_tools_to_the_python_client() {
    let Some(real) = RealMcp::find() else { return };
    let env = Env::new(Script::new());
    let work = env.work.path();
    std::fs::write(work.join("hello.txt"), "hello\n").unwrap();
    let outside = env.home.path().join("secret.txt");
    std::fs::write(&outside, "secret\n").unwrap();
    std::os::unix::fs::symlink(&outside, work.join("link.txt")).unwrap();
    let nanna = env!("CARGO_BIN_EXE_nanna");
    let w = work.display().to_string();

    // Whether this machine enforces the OS sandbox decides whether `shell` is served at all.
    let enforced = nanna_sandbox::Support::probe()
        .check(nanna_sandbox::SandboxMode::WorkspaceWrite)
        .is_ok();
    assert!(
        enforced || std::env::var("NANNA_TEST_REQUIRE_SANDBOX").as_deref() != Ok("1"),
        "NANNA_TEST_REQUIRE_SANDBOX=1 but the sandbox is not enforced"
    );
    let outside_target = env.home.path().join("from-shell.txt");

    // Read-only (the default): the reading tools, and `shell` under a read-only sandbox.
    let results = python_client(
        &real,
        &["stdio", nanna, "mcp-server", "-C", &w],
        &json!([
            {"list": true},
            {"call": "read_file", "args": {"path": "hello.txt"}},
            {"call": "read_file", "args": {"path": "../secret.txt"}},
            {"call": "read_file", "args": {"path": outside}},
            {"call": "read_file", "args": {"path": "link.txt"}},
            {"call": "write_file", "args": {"path": "new.txt", "content": "x"}},
            {"call": "grep", "args": {"pattern": "hello"}},
            {"call": "shell", "args": {"command": "touch made-by-shell.txt"}}
        ]),
    );
    let tools = results[0]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let mut expected = vec!["read_file", "list_dir", "glob", "grep"];
    if enforced {
        expected.push("shell");
    }
    assert_eq!(names, expected);
    for t in tools.iter().filter(|t| t["name"] != "shell") {
        assert_eq!(t["read_only"], true, "{t}");
    }
    assert_eq!(results[1]["is_error"], false);
    assert!(results[1]["text"].as_str().unwrap().contains("hello"));
    for escape in &results[2..5] {
        assert_eq!(escape["is_error"], true, "{escape}");
        let text = escape["text"].as_str().unwrap();
        assert!(text.contains("outside the workspace"), "{escape}");
        assert!(!text.contains("secret\n"), "{escape}");
    }
    let refused = results[5]["protocol_error"].as_str().unwrap();
    assert!(
        refused.contains("read-only") && refused.contains("--sandbox workspace-write"),
        "{refused}"
    );
    assert!(!work.join("new.txt").exists());
    assert!(results[6]["text"].as_str().unwrap().contains("hello.txt"));
    // `shell` through MCP runs in the same OS sandbox as in a session: no write, even in
    // the workspace.
    if enforced {
        assert!(
            results[7]["text"].as_str().unwrap().contains("exit"),
            "{}",
            results[7]
        );
    } else {
        assert!(results[7].get("protocol_error").is_some(), "{}", results[7]);
    }
    assert!(!work.join("made-by-shell.txt").exists());

    // workspace-write: writes, edits and commands, still confined.
    let results = python_client(
        &real,
        &[
            "stdio",
            nanna,
            "mcp-server",
            "-C",
            &w,
            "--sandbox",
            "workspace-write",
        ],
        &json!([
            {"list": true},
            {"call": "write_file", "args": {"path": "new.txt", "content": "one\n"}},
            {"call": "edit_file", "args": {"path": "new.txt", "old_text": "one", "new_text": "two"}},
            {"call": "shell", "args": {"command": "pwd; cat new.txt"}},
            {"call": "write_file", "args": {"path": "../escape.txt", "content": "x"}},
            {"call": "write_file", "args": {"path": "link.txt", "content": "overwritten"}},
            {"call": "shell", "args": {"command": format!("echo pwned > {}", outside_target.display())}}
        ]),
    );
    let tools = results[0]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), if enforced { 7 } else { 6 });
    assert_eq!(results[1]["is_error"], false, "{}", results[1]);
    assert_eq!(results[2]["is_error"], false, "{}", results[2]);
    assert_eq!(
        std::fs::read_to_string(work.join("new.txt")).unwrap(),
        "two\n"
    );
    if enforced {
        let shell = tools.iter().find(|t| t["name"] == "shell").unwrap();
        assert_eq!(shell["read_only"], false);
        assert_eq!(shell["destructive"], true);
        let shell_out = results[3]["text"].as_str().unwrap();
        assert!(
            shell_out.contains(&std::fs::canonicalize(work).unwrap().display().to_string()),
            "{shell_out}"
        );
        assert!(shell_out.contains("two"), "{shell_out}");
    }
    assert_eq!(results[4]["is_error"], true);
    assert!(
        !env.home.path().join("escape.txt").exists()
            && !work.parent().unwrap().join("escape.txt").exists()
    );
    assert_eq!(results[5]["is_error"], true, "{}", results[5]);
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret\n");
    // A command writing outside the workspace is stopped by the OS sandbox.
    assert!(
        !outside_target.exists(),
        "shell wrote outside the workspace: {}",
        results[6]
    );
}

/// `nanna mcp-server --http` on a free loopback port; killed on drop.
struct HttpServer {
    child: std::process::Child,
    url: String,
}

impl HttpServer {
    fn start(work: &Path, token: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nanna"))
            .args([
                "mcp-server",
                "--sandbox",
                "workspace-write",
                "--http",
                "127.0.0.1:0",
                "-C",
            ])
            .arg(work)
            .env("NANNA_MCP_SERVER_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The first stderr line names the URL.
        let mut err = child.stderr.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8];
        while err.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        assert!(
            !line.contains(token),
            "the token from the environment is not echoed"
        );
        Self { child, url }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw HTTP POST; returns the status code.
fn post_status(url: &str, headers: &[(&str, &str)]) -> u16 {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let mut request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn nanna_mcp_server_over_http_needs_the_token_and_loopback() {
    let Some(real) = RealMcp::find() else { return };
    let env = Env::new(Script::new());
    std::fs::write(env.work.path().join("hello.txt"), "hello over http\n").unwrap();
    let token = "test-token-0123456789";
    let server = HttpServer::start(env.work.path(), token);
    let results = python_client(
        &real,
        &["http", &server.url, token],
        &json!([
            {"list": true},
            {"call": "read_file", "args": {"path": "hello.txt"}},
            {"call": "read_file", "args": {"path": "/etc/hostname"}}
        ]),
    );
    assert_eq!(results[0]["tools"].as_array().unwrap().len(), 7);
    assert!(
        results[1]["text"]
            .as_str()
            .unwrap()
            .contains("hello over http")
    );
    assert_eq!(results[2]["is_error"], true);

    // Attacks: no token, a wrong one, a browser page on another origin, a rebinding Host.
    let bearer = format!("Bearer {token}");
    assert_eq!(post_status(&server.url, &[]), 401);
    assert_eq!(
        post_status(&server.url, &[("Authorization", "Bearer wrong")]),
        401
    );
    assert_eq!(
        post_status(
            &server.url,
            &[
                ("Authorization", &bearer),
                ("Origin", "http://evil.example")
            ]
        ),
        403
    );
    let rebinding = server.url.replace("127.0.0.1", "evil.example");
    let status = {
        let rest = server.url.strip_prefix("http://").unwrap();
        let (host, _) = rest.split_once('/').unwrap();
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        let body = "{}";
        let request = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: {bearer}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            rebinding
                .strip_prefix("http://")
                .unwrap()
                .split('/')
                .next()
                .unwrap(),
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.split_whitespace().nth(1).unwrap_or("").to_owned()
    };
    assert_eq!(status, "403", "Host outside loopback names is refused");

    // Only loopback addresses.
    let out = run(env.bare().args(["mcp-server", "--http", "0.0.0.0:0"]), None);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("serves only a loopback address"),
        "{}",
        stderr(&out)
    );
    let out = run(env.bare().args(["mcp-server", "--http", "localhost"]), None);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("is not an address"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_repl_keeps_its_servers_across_clear_and_stops_them_on_exit() {
    use rexpect::session::spawn_command;
    let Some(real) = RealMcp::find() else { return };
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("unique-marker-dir");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::write(allowed.join("notes.txt"), "from the notes\n").unwrap();
    let read = Turn::tool_call(
        "fs__read_text_file",
        json!({"path": allowed.join("notes.txt")}),
    );
    let env = Env::new(
        Script::new()
            .turn(read.clone())
            .turn(Turn::text("First answer."))
            .turn(read)
            .turn(Turn::text("Second answer.")),
    );
    write_config(&env, &fs_table(&real, &allowed));
    let mut cmd = env.nanna();
    cmd.env("TERM", "xterm").arg("chat");
    let mut p = spawn_command(cmd, Some(30_000)).expect("nanna chat starts in a pty");
    p.exp_string("mcp: fs ready")
        .expect("the server starts before the prompt");
    let prompt: String = "› ".bytes().map(char::from).collect();
    p.exp_string(&prompt).expect("prompt");
    p.send_line("read the notes").expect("send");
    p.exp_string("First answer.").expect("first answer");
    p.exp_string(&prompt).expect("prompt");
    p.send_line("/clear").expect("clear");
    p.exp_string("new session").expect("new session");
    p.send_line("read them again").expect("send");
    p.exp_string("Second answer.").expect("second answer");
    p.exp_string(&prompt).expect("prompt");
    p.send_line("/exit").expect("exit");
    p.exp_eof().expect("exits");
    // Both sessions offered the server's tool under the same name and got its answer.
    let requests = env.chat_requests();
    assert_eq!(requests.len(), 4);
    for i in [1, 3] {
        let texts = message_texts(&requests[i]);
        assert!(texts.iter().any(|t| t == "from the notes\n"), "{texts:?}");
    }
    assert_eq!(
        wait_gone(&allowed.display().to_string(), Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}

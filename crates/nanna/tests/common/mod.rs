//! Shared set-up for the CLI tests: a scripted model server on a background runtime, an
//! isolated home (config, data, sessions) and workspace, and a `nanna` command aimed at both.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nanna_testkit::{RecordedRequest, Script, ScriptedServer, ServerConfig};
use serde_json::Value;
use tempfile::TempDir;

/// The default model of the scripted server.
pub const MODEL: &str = "llama3.1:8b";

/// A scripted server plus an isolated environment for `nanna`.
pub struct Env {
    runtime: tokio::runtime::Runtime,
    server: Option<ScriptedServer>,
    url: String,
    /// HOME, XDG_DATA_HOME and XDG_CONFIG_HOME live here.
    pub home: TempDir,
    /// The workspace (`-C`).
    pub work: TempDir,
}

impl Env {
    /// Starts a scripted server with the default models.
    pub fn new(script: Script) -> Self {
        Self::with_config(ServerConfig::default(), script)
    }

    /// Starts a scripted server with `config`.
    pub fn with_config(config: ServerConfig, script: Script) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime
            .block_on(ScriptedServer::start_with(config, script))
            .expect("scripted server starts");
        let url = server.url();
        Self {
            runtime,
            server: Some(server),
            url,
            home: TempDir::new().expect("tempdir"),
            work: TempDir::new().expect("tempdir"),
        }
    }

    /// An environment whose model server is down: the URL points at a closed port.
    pub fn server_down() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Self {
            runtime,
            server: None,
            url,
            home: TempDir::new().expect("tempdir"),
            work: TempDir::new().expect("tempdir"),
        }
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The running server.
    pub fn server(&self) -> &ScriptedServer {
        self.server.as_ref().expect("server is running")
    }

    /// Chat requests received so far.
    pub fn chat_requests(&self) -> Vec<RecordedRequest> {
        self.server().chat_requests()
    }

    /// Waits until at least `n` chat requests have arrived.
    pub fn wait_for_chat_requests(&self, n: usize, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.chat_requests().len() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The sessions directory.
    pub fn sessions_dir(&self) -> PathBuf {
        self.home.path().join("data/nanna/sessions")
    }

    /// Environment variables that isolate `nanna` from the user's own settings.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let home = self.home.path();
        vec![
            ("HOME", home.display().to_string()),
            ("XDG_DATA_HOME", home.join("data").display().to_string()),
            ("XDG_CONFIG_HOME", home.join("config").display().to_string()),
            ("NO_COLOR", "1".into()),
        ]
    }

    /// `nanna` with an isolated environment, the server's URL and the default model.
    pub fn nanna(&self) -> Command {
        let mut cmd = self.bare();
        cmd.args(["--url", &self.url, "--model", MODEL]);
        cmd
    }

    /// `nanna` with an isolated environment and no flags.
    pub fn bare(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nanna"));
        cmd.current_dir(self.work.path());
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in self.vars() {
            cmd.env(k, v);
        }
        cmd
    }

    /// Writes a file in the workspace.
    pub fn write(&self, rel: &str, content: &str) {
        std::fs::write(self.work.path().join(rel), content).expect("write workspace file");
    }

    /// Path of a workspace file.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    /// Runs async code on the server's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

/// Runs `cmd` with `stdin` (or nothing) and returns its output.
pub fn run(cmd: &mut Command, stdin: Option<&str>) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("nanna starts");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("nanna finishes")
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses every stdout line as JSON; fails the test on a line that is not.
pub fn json_lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// The `type` of each event.
pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Asserts `wanted` appears in `seq` in this order (not necessarily adjacent).
pub fn assert_subsequence(seq: &[String], wanted: &[&str]) {
    let mut it = seq.iter();
    for w in wanted {
        assert!(
            it.any(|s| s == w),
            "expected {wanted:?} in order within {seq:?} (missing or out of order: {w})"
        );
    }
}

/// Asserts the process exited with `code` and did not panic.
pub fn assert_exit(out: &Output, code: i32) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "nanna panicked: {err}");
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status; stdout: {}\nstderr: {err}",
        stdout(out)
    );
}

/// Text contents of every message of a recorded chat request.
pub fn message_texts(req: &RecordedRequest) -> Vec<String> {
    req.messages()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The single session file in `dir`.
pub fn only_session_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("sessions dir exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(files.len(), 1, "one session file expected: {files:?}");
    files.into_iter().next().expect("one file")
}

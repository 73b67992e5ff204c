//! What the `nanna` benchmarks share: an isolated home and workspace, a runtime for the
//! scripted model server, and `nanna` started against it.

#![allow(dead_code)] // each benchmark uses its own part

use std::process::{Command, Stdio};
use std::time::Duration;

use nanna_testkit::{Script, ScriptedServer};

pub struct Bench {
    pub runtime: tokio::runtime::Runtime,
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Bench {
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let work = tempfile::TempDir::new().expect("tempdir");
        std::fs::write(work.path().join("notes.txt"), "buy milk\n").expect("write");
        Self {
            runtime,
            home: tempfile::TempDir::new().expect("tempdir"),
            work,
        }
    }

    pub fn server(&self, script: Script) -> ScriptedServer {
        self.runtime
            .block_on(ScriptedServer::start(script))
            .expect("server")
    }

    pub fn shutdown(&self, server: ScriptedServer) {
        self.runtime.block_on(server.shutdown());
    }

    /// `nanna` in the workspace with only the bench's home (no `PATH`), output captured; with
    /// `url`, the server and model set.
    pub fn nanna(&self, url: Option<&str>) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nanna"));
        let home = self.home.path();
        cmd.current_dir(self.work.path())
            .env_clear()
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = url {
            cmd.args(["--url", url, "--model", "llama3.1:8b"]);
        }
        cmd
    }
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

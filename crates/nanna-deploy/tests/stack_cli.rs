//! The stack commands through the `nanna-deploy` binary: help, aliases, exit codes and
//! messages that need no engine, and `--dry-run --json` / `shell` / `status` on a real
//! engine when NANNA_TEST_DOCKER_SOCKET is set.

use std::process::{Command, Output};

fn deploy(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nanna-deploy"));
    command.args(args);
    // No engine unless the test gives one.
    for var in [
        "DOCKER_HOST",
        "CONTAINER_HOST",
        "XDG_RUNTIME_DIR",
        "NANNA_HOST_ROOT",
        "GPU_SUPPORT",
        "OLLAMA_MODEL",
    ] {
        command.env_remove(var);
    }
    // Remembered stacks go to a directory of this test's own.
    command.env(
        "XDG_STATE_HOME",
        std::env::temp_dir().join(format!("nanna-deploy-cli-{}", std::process::id())),
    );
    for (k, v) in envs {
        command.env(k, v);
    }
    command.output().expect("run nanna-deploy")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_commands_with_examples() {
    let (stdout, _) = text(&deploy(&["--help"], &[]));
    for command in [
        "up", "down", "restart", "status", "logs", "update", "shell", "images", "detect",
    ] {
        assert!(
            stdout.contains(command),
            "{command} missing from:\n{stdout}"
        );
    }
    let (stdout, _) = text(&deploy(&["up", "--help"], &[]));
    for flag in [
        "--gpu",
        "--type",
        "--engine",
        "--name",
        "--model",
        "--ollama-image",
        "--harness-image",
        "--image-archive",
        "--no-assistant",
        "--dry-run",
        "--json",
        "--listen",
        "--timeout",
        "Examples:",
        "GPU_SUPPORT",
        "OLLAMA_MODEL",
    ] {
        assert!(
            stdout.contains(flag),
            "{flag} missing from up --help:\n{stdout}"
        );
    }
    // Aliases.
    assert!(deploy(&["start", "--help"], &[]).status.success());
    assert!(deploy(&["stop", "--help"], &[]).status.success());
    let (stdout, _) = text(&deploy(&["images", "build", "--help"], &[]));
    assert!(stdout.contains("--binary") && stdout.contains("--tag") && stdout.contains("--port"));
}

#[test]
fn an_unreachable_engine_fails_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix://{}/none.sock", dir.path().display());
    let output = deploy(
        &[
            "up", "--engine", "docker", "--gpu", "none", "--name", "clitest",
        ],
        &[("DOCKER_HOST", &socket)],
    );
    assert_eq!(output.status.code(), Some(1));
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("error: no Docker engine answered"),
        "{stderr}"
    );
    assert!(stderr.contains("none.sock"), "{stderr}");
    let output = deploy(
        &["status", "--engine", "docker"],
        &[("DOCKER_HOST", &socket)],
    );
    assert_eq!(output.status.code(), Some(1));
}

fn json_error(output: &Output) -> serde_json::Value {
    let value: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", text(output)));
    assert!(value["error"]["code"].is_string(), "{value}");
    assert!(value["error"]["message"].is_string(), "{value}");
    value
}

/// Issue 17 items 7 and 8: every subcommand checks names the same way, `ADDR:PORT` needs a
/// port, the workspace is checked before any engine is asked, and with `--json` every
/// failure is a JSON object on stdout.
#[test]
fn inputs_are_checked_alike_and_errors_are_json() {
    let output = deploy(&["up", "--listen", "127.0.0.1:0", "--dry-run"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("port 0"), "{:?}", text(&output));
    let output = deploy(
        &["up", "--listen", "127.0.0.1:0", "--dry-run", "--json"],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let error = json_error(&output);
    assert_eq!(error["error"]["code"], "usage");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("port 0"),
        "{error}"
    );
    for command in ["up", "down", "status", "logs", "restart", "update", "shell"] {
        let output = deploy(&[command, "--name", "Bad Name"], &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command}: {:?}",
            text(&output)
        );
        assert!(
            text(&output).1.contains("is not valid"),
            "{command}: {:?}",
            text(&output)
        );
    }
    for workspace in ["/", "/etc", "/usr"] {
        let output = deploy(&["up", "--workspace", workspace, "--json"], &[]);
        assert_eq!(output.status.code(), Some(1), "{workspace}");
        assert_eq!(json_error(&output)["error"]["code"], "invalid_workspace");
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix://{}/none.sock", dir.path().display());
    let output = deploy(
        &["status", "--engine", "docker", "--json"],
        &[("DOCKER_HOST", &socket)],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = json_error(&output);
    assert_eq!(error["error"]["code"], "engine_not_found");
    assert!(
        error["error"]["fix"]
            .as_str()
            .is_some_and(|f| !f.is_empty()),
        "{error}"
    );
}

#[test]
fn bad_flags_are_rejected() {
    let output = deploy(&["up", "--type", "swarm"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let output = deploy(&["up", "--gpu", "tpu"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let output = deploy(&["up", "--listen", "not-an-address"], &[]);
    assert_eq!(output.status.code(), Some(2));
}

/// With a Docker engine: a dry run prints the plan (text and JSON) and creates nothing;
/// `status` of a missing stack fails clearly; `--type pod` is refused on Docker.
#[test]
fn dry_run_and_errors_on_docker() {
    let Some(socket) = std::env::var("NANNA_TEST_DOCKER_SOCKET")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        if std::env::var("NANNA_TEST_REQUIRE_ENGINES").is_ok_and(|v| v == "1") {
            panic!("NANNA_TEST_DOCKER_SOCKET is unset but NANNA_TEST_REQUIRE_ENGINES=1");
        }
        println!("skipping: set NANNA_TEST_DOCKER_SOCKET (see .ci/engines.sh)");
        return;
    };
    let host = format!("unix://{socket}");
    let env = [("DOCKER_HOST", host.as_str())];
    let name = format!("clidry{}", std::process::id() % 100_000);
    let workspace = tempfile::tempdir().unwrap();
    let ws = workspace.path().display().to_string();
    let args = [
        "up",
        "--engine",
        "docker",
        "--name",
        &name,
        "--gpu",
        "none",
        "--dry-run",
        "--workspace",
        &ws,
        "--listen",
        "127.0.0.1:39434",
        "--model",
        "qwen2.5-coder:7b",
    ];
    let output = deploy(&args, &env);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    for expected in [
        "create network nanna-",
        "create volume nanna-",
        "create and start container",
        "image    docker.io/ollama/ollama:latest",
        "127.0.0.1:39434->11434",
        "OLLAMA_CONTEXT_LENGTH=110000",
        "NANNA_MODEL=qwen2.5-coder:7b",
        &format!("{ws} -> /workspace"),
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let output = deploy(&json_args, &env);
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON plan");
    assert_eq!(value["changed"], false);
    assert_eq!(
        value["spec"]["services"][0]["env"]["OLLAMA_HOST"],
        "0.0.0.0:11434"
    );
    assert_eq!(value["plan"]["steps"][0]["step"], "create-network");

    // Nothing was created.
    let output = deploy(&["status", "--engine", "docker", "--name", &name], &env);
    assert_eq!(output.status.code(), Some(1));
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains(&format!("no stack named \"{name}\"")),
        "{stderr}"
    );

    // A model server on every address: a warning that says how to restrict access.
    let public = [
        "up",
        "--engine",
        "docker",
        "--name",
        &name,
        "--gpu",
        "none",
        "--dry-run",
        "--json",
        "--workspace",
        &ws,
        "--listen",
        "0.0.0.0:39434",
    ];
    let output = deploy(&public, &env);
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON plan");
    assert_eq!(value["warnings"][0]["code"], "listen_public", "{value}");
    let fix = value["warnings"][0]["fix"].as_str().unwrap();
    assert!(
        fix.contains("DOCKER-USER") && fix.contains("ssh -L"),
        "{fix}"
    );
    let human: Vec<&str> = public.iter().copied().filter(|a| *a != "--json").collect();
    let output = deploy(&human, &env);
    assert!(
        text(&output).1.contains("Ollama has no authentication"),
        "{:?}",
        text(&output)
    );

    let output = deploy(
        &[
            "up",
            "--engine",
            "docker",
            "--name",
            &name,
            "--gpu",
            "none",
            "--type",
            "pod",
            "--workspace",
            &ws,
        ],
        &env,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("--type pod needs Podman"));
}

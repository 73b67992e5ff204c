//! Settings and diagnostics through the real binary: `-c key=value` reaches the request
//! (through `Config::chat_options`, like every setting), errors name the setting, the value
//! and where it came from, and `RUST_LOG` shows the libraries' diagnostics on stderr, never
//! on stdout.

mod common;

use common::{Env, assert_exit, json_lines, run, stderr, stdout};
use nanna_testkit::{Script, ServerConfig, Turn};

#[test]
fn c_overrides_reach_the_request_and_flags_win() {
    let env = Env::new(
        Script::new()
            .turn(Turn::text("hello"))
            .turn(Turn::text("again")),
    );
    std::fs::create_dir_all(env.home.path().join("config/nanna")).expect("mkdir");
    std::fs::write(
        env.home.path().join("config/nanna/config.toml"),
        "temperature = 0.9\nkeep_alive = \"5m\"\n",
    )
    .expect("write");
    let out = run(
        env.nanna().args([
            "-c",
            "temperature=0.3",
            "-c",
            "context_window=8192",
            "exec",
            "-c",
            "keep_alive=-1",
            "--json",
            "hi",
        ]),
        None,
    );
    assert_exit(&out, 0);
    json_lines(&out);
    let requests = env.chat_requests();
    let options = requests[0].options().expect("options");
    assert_eq!(options["temperature"], 0.3);
    assert_eq!(requests[0].num_ctx(), Some(8192));
    assert_eq!(requests[0].body["keep_alive"], -1);

    // The flag wins over -c, which wins over the file.
    let out = run(
        env.nanna().args([
            "-c",
            "temperature=0.3",
            "--temperature",
            "0.5",
            "exec",
            "--json",
            "hi",
        ]),
        None,
    );
    assert_exit(&out, 0);
    let requests = env.chat_requests();
    let options = requests[1].options().expect("options");
    assert_eq!(options["temperature"], 0.5);
    assert_eq!(requests[1].body["keep_alive"], "5m");
}

#[test]
fn setting_errors_name_the_setting_the_value_and_its_origin() {
    let env = Env::server_down();
    let out = run(env.bare().args(["-c", "temprature=0.2", "models"]), None);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("temprature")
            && err.contains("-c temprature=0.2")
            && err.contains("temperature"),
        "{err}"
    );

    let out = run(env.bare().args(["-c", "max_tokens=0", "models"]), None);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("max_tokens `0`") && err.contains("at least 1"),
        "{err}"
    );

    let file = env.home.path().join("bad-value.toml");
    std::fs::write(&file, "model = \"m\"\ntemperature = 5\n").expect("write");
    let out = run(
        env.bare()
            .args(["--config", file.to_str().expect("utf-8"), "models"]),
        None,
    );
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("temperature `5`")
            && err.contains(&format!("{}, line 2, column 15", file.display()))
            && err.contains("0 to 2"),
        "{err}"
    );

    let out = run(
        env.bare()
            .env("NANNA_IDLE_TIMEOUT", "soon")
            .args(["models"]),
        None,
    );
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("idle_timeout_secs `soon`")
            && err.contains("environment variable NANNA_IDLE_TIMEOUT")
            && err.contains("whole number of seconds"),
        "{err}"
    );
}

/// `RUST_LOG=warn` shows `nanna_model`'s warning about model details it could not read (the
/// server failed `/api/show` once) on stderr; stdout stays one JSON event per line. Without
/// `RUST_LOG` it does not show: the retry succeeded, nothing is wrong for the user.
#[test]
fn rust_log_shows_library_warnings_on_stderr_only() {
    let config = ServerConfig {
        show_failures: 1,
        ..ServerConfig::default()
    };
    let env = Env::with_config(config, Script::new().turn(Turn::text("hello")));
    let out = run(
        env.nanna()
            .env("RUST_LOG", "warn")
            .args(["exec", "--json", "hi"]),
        None,
    );
    assert_exit(&out, 0);
    let events = json_lines(&out);
    assert!(!events.is_empty());
    assert!(!stdout(&out).contains("could not read"), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.lines().any(|line| line.contains("WARN")
            && line.contains("nanna_model")
            && line.contains("could not read the model's details")),
        "{err}"
    );

    let config = ServerConfig {
        show_failures: 1,
        ..ServerConfig::default()
    };
    let env = Env::with_config(config, Script::new().turn(Turn::text("hello")));
    let out = run(env.nanna().args(["exec", "--json", "hi"]), None);
    assert_exit(&out, 0);
    json_lines(&out);
    assert!(!stderr(&out).contains("WARN"), "{}", stderr(&out));
}

//! `[mcp_servers.NAME]` tables: Codex's keys, merged key by key across the layers, checked
//! when a command uses MCP.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nanna_config::mcp::{DEFAULT_STARTUP_TIMEOUT, DEFAULT_TOOL_TIMEOUT};
use nanna_config::{
    ConfigLoader, DEFAULT_TOOL_TOKEN_BUDGET, McpConfig, McpConfigError, McpTransport, Origin,
    Overrides,
};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Loads the MCP part from `files` (system first), as `nanna mcp` does.
fn load(files: &[PathBuf]) -> Result<McpConfig, McpConfigError> {
    load_with(files, &Overrides::new())
}

fn load_with(files: &[PathBuf], overrides: &Overrides) -> Result<McpConfig, McpConfigError> {
    let loader = match files {
        [system, user] => ConfigLoader::new()
            .system_file(Some(system.clone()))
            .user_file(user.clone()),
        [user] => ConfigLoader::new().user_file(user.clone()),
        _ => ConfigLoader::new(),
    };
    loader.load_mcp(overrides)
}

#[test]
fn codex_style_tables_parse() {
    let dir = tempfile::tempdir().unwrap();
    let user = write(
        dir.path(),
        "config.toml",
        r#"
model = "qwen2.5-coder:7b"
tool_token_budget = 2500

[mcp_servers.fs]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv"]
env = { DEBUG = "1" }
startup_timeout_sec = 12.5
tool_timeout_sec = 5
enabled_tools = ["read_text_file", "list_directory"]

[mcp_servers.docs]
url = "http://127.0.0.1:3000/mcp"
bearer_token_env_var = "DOCS_TOKEN"
enabled = false
"#,
    );
    let config = load(std::slice::from_ref(&user)).unwrap();
    assert_eq!(config.tool_token_budget, 2500);
    let fs = &config.servers["fs"];
    assert_eq!(fs.startup_timeout, Duration::from_millis(12_500));
    assert_eq!(fs.tool_timeout, Duration::from_secs(5));
    assert!(fs.offers("read_text_file") && !fs.offers("write_file"));
    assert_eq!(
        fs.target(),
        "npx -y @modelcontextprotocol/server-filesystem /srv"
    );
    assert_eq!(fs.source, Origin::File(user));
    let McpTransport::Stdio { env, cwd, .. } = &fs.transport else {
        panic!("stdio")
    };
    assert_eq!(env["DEBUG"], "1");
    assert!(cwd.is_none());
    let docs = &config.servers["docs"];
    assert!(!docs.enabled);
    assert_eq!(docs.startup_timeout, DEFAULT_STARTUP_TIMEOUT);
    assert_eq!(docs.tool_timeout, DEFAULT_TOOL_TIMEOUT);
    assert_eq!(
        config
            .enabled()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["fs"]
    );
}

#[test]
fn later_layers_merge_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let system = write(
        dir.path(),
        "system.toml",
        "[mcp_servers.fs]\ncommand = \"fs-server\"\ndisabled_tools = [\"write_file\"]\n",
    );
    let user = write(
        dir.path(),
        "user.toml",
        "[mcp_servers.fs]\nenabled = false\n",
    );
    let config = load(&[system.clone(), user.clone()]).unwrap();
    let fs = &config.servers["fs"];
    assert!(!fs.enabled);
    assert_eq!(fs.target(), "fs-server");
    assert_eq!(fs.disabled_tools, ["write_file"]);
    assert_eq!(fs.source, Origin::File(user.clone()));
    assert_eq!(config.tool_token_budget, DEFAULT_TOOL_TOKEN_BUDGET);

    // `-c` reaches into a table: the server comes back on for this run only.
    let again = Overrides::new().with_setting("mcp_servers.fs.enabled=true");
    let config = load_with(&[system, user], &again).unwrap();
    assert!(config.servers["fs"].enabled);
    assert_eq!(
        config.servers["fs"].source,
        Origin::Flag("-c mcp_servers.fs.enabled=true".into())
    );
}

#[test]
fn the_nixos_modules_settings_define_system_wide_servers() {
    // `services.nanna-coder.settings.mcp_servers.docs = { url = ...; enabled_tools = [..];
    // tool_timeout_sec = 20; };` as `pkgs.formats.toml` writes /etc/nanna/config.toml
    // (keys sorted, one table per server, integers for whole numbers).
    let dir = tempfile::tempdir().unwrap();
    let system = write(
        dir.path(),
        "etc-nanna-config.toml",
        "context_window = 32768\nmodel = \"qwen2.5-coder:7b\"\nprovider = \"ollama\"\n\
         url = \"http://127.0.0.1:11434\"\n\n[mcp_servers.docs]\nenabled_tools = [\"search\"]\n\
         tool_timeout_sec = 20\nurl = \"http://127.0.0.1:3000/mcp\"\n",
    );
    let user = dir.path().join("absent-user.toml");
    let config = load(&[system.clone(), user]).unwrap();
    let docs = &config.servers["docs"];
    assert_eq!(docs.source, Origin::File(system));
    assert_eq!(docs.tool_timeout, Duration::from_secs(20));
    assert!(docs.offers("search") && !docs.offers("delete"));
}

#[test]
fn missing_optional_files_are_skipped_and_required_ones_reported() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent.toml");
    assert_eq!(
        ConfigLoader::new()
            .system_file(Some(absent.clone()))
            .load_mcp(&Overrides::new())
            .unwrap(),
        McpConfig::default()
    );
    let err = ConfigLoader::new()
        .load_mcp(&Overrides::new().with_file(Some(absent)))
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot read configuration file"),
        "{err}"
    );
}

/// `nanna mcp` reads only its part: a wrong model setting does not stop it (the user may be
/// about to fix the file with it).
#[test]
fn wrong_model_settings_do_not_stop_mcp() {
    let dir = tempfile::tempdir().unwrap();
    let user = write(
        dir.path(),
        "c.toml",
        "temperature = 5\nurl = \"localhost\"\n[mcp_servers.a]\ncommand = \"x\"\n",
    );
    let config = load(std::slice::from_ref(&user)).unwrap();
    assert_eq!(config.servers["a"].target(), "x");
    assert!(
        ConfigLoader::new()
            .user_file(user)
            .load(&Overrides::new())
            .is_err()
    );
}

#[test]
fn mistakes_are_reported_with_the_server_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[mcp_servers.a]\nargs = [\"x\"]\n", "missing `command`"),
        (
            "[mcp_servers.a]\ncommand = \"x\"\nurl = \"http://h\"\n",
            "not both",
        ),
        (
            "[mcp_servers.a]\ncommand = \"x\"\nbearer_token_env_var = \"T\"\n",
            "`bearer_token_env_var` is not supported for a stdio server",
        ),
        (
            "[mcp_servers.a]\nurl = \"http://h/mcp\"\nargs = []\n",
            "`args` is not supported for a streamable HTTP server",
        ),
        (
            "[mcp_servers.a]\nurl = \"ftp://h\"\n",
            "http:// or https://",
        ),
        (
            "[mcp_servers.a]\ncommand = \"x\"\nstartup_timeout_sec = 0\n",
            "positive number of seconds",
        ),
        (
            "[mcp_servers.a]\ncommand = \"x\"\ncomand = \"y\"\n",
            "accepted keys: command",
        ),
        (
            "[mcp_servers.\"a.b\"]\ncommand = \"x\"\n",
            "only letters, digits",
        ),
        ("[mcp_servers.a]\ncommand = 3\n", "invalid type"),
        ("tool_token_budget = \"lots\"\n", "whole number"),
        ("mcp_servers = 3\n", "expected a table"),
        ("[mcp_servers.a\n", ":1:"),
    ];
    for (text, expected) in cases {
        let path = write(dir.path(), "c.toml", text);
        let err = load(std::slice::from_ref(&path)).unwrap_err().to_string();
        assert!(err.contains(expected), "{text}: {err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        // A session reads the same tables and reports the same mistakes.
        let session = ConfigLoader::new()
            .user_file(path.clone())
            .load(&Overrides::new())
            .map_err(McpConfigError::from)
            .and_then(|config| config.mcp());
        let err = session.unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}

//! Layered configuration: defaults < system file < user file < environment < flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nanna_config::{ConfigError, ConfigLoader, Origin, Overrides, ProviderKind, ollama_host_url};

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn none() -> Overrides {
    Overrides::new()
}

#[test]
fn defaults_without_files_or_environment() {
    let config = ConfigLoader::new().load(&none()).expect("valid");
    assert_eq!(config.provider, ProviderKind::Ollama);
    assert_eq!(config.url.as_str(), "http://localhost:11434/");
    assert_eq!(config.model, "llama3.1:8b");
    assert_eq!(config.context_window, 110_000);
    assert_eq!(config.temperature, None);
    assert_eq!(config.connect_timeout, Duration::from_secs(5));
    assert_eq!(config.idle_timeout, Duration::from_secs(300));
    assert_eq!(config.origin("url"), Some(&Origin::Default));
    assert_eq!(config.origin("temperature"), None);
    assert_eq!(config.provider().name(), "ollama");
    assert_eq!(config.provider().base_url(), "http://localhost:11434");
}

#[test]
fn every_layer_overrides_the_one_below() {
    let files = Files::new();
    let system = files.write(
        "etc/config.toml",
        "model = \"sys\"\ncontext_window = 1000\ntemperature = 0.1\nmax_tokens = 10\n",
    );
    let user = files.write(
        "user/config.toml",
        "model = \"user\"\ncontext_window = 2000\ntemperature = 0.2\n",
    );
    let loader = ConfigLoader::new()
        .system_file(Some(system.clone()))
        .user_file(user.clone())
        .env("NANNA_MODEL", "env")
        .env("NANNA_CONTEXT_WINDOW", "3000");
    let flags = none().with_flag("--model", "model", Some("flag"));
    let config = loader.load(&flags).expect("valid");
    assert_eq!(config.model, "flag");
    assert_eq!(
        config.origin("model"),
        Some(&Origin::Flag("--model".into()))
    );
    assert_eq!(config.context_window, 3000);
    assert_eq!(
        config.origin("context_window"),
        Some(&Origin::Env("NANNA_CONTEXT_WINDOW".into()))
    );
    assert_eq!(config.temperature, Some(0.2));
    assert_eq!(config.origin("temperature"), Some(&Origin::File(user)));
    assert_eq!(config.max_tokens, Some(10));
    assert_eq!(config.origin("max_tokens"), Some(&Origin::File(system)));
    let without_flag = loader.load(&none()).expect("valid");
    assert_eq!(without_flag.model, "env");
}

#[test]
fn user_file_location_follows_nanna_config_then_xdg_then_home() {
    let files = Files::new();
    files.write("xdg/nanna/config.toml", "model = \"from-xdg\"\n");
    files.write("home/.config/nanna/config.toml", "model = \"from-home\"\n");
    let explicit = files.write("explicit.toml", "model = \"from-explicit\"\n");
    let home = files.path().join("home");
    let xdg = files.path().join("xdg");
    let base = ConfigLoader::new().env("HOME", home.to_string_lossy());
    assert_eq!(base.load(&none()).expect("valid").model, "from-home");
    let with_xdg = base.clone().env("XDG_CONFIG_HOME", xdg.to_string_lossy());
    assert_eq!(with_xdg.load(&none()).expect("valid").model, "from-xdg");
    let with_explicit = with_xdg
        .clone()
        .env("NANNA_CONFIG", explicit.to_string_lossy());
    assert_eq!(
        with_explicit.load(&none()).expect("valid").model,
        "from-explicit"
    );
    let flag = none().with_file(Some(files.path().join("home/.config/nanna/config.toml")));
    assert_eq!(with_explicit.load(&flag).expect("valid").model, "from-home");
}

#[test]
fn an_explicit_config_file_must_exist() {
    let files = Files::new();
    let missing = files.path().join("nope.toml");
    let error = ConfigLoader::new()
        .env("NANNA_CONFIG", missing.to_string_lossy())
        .load(&none())
        .expect_err("missing file");
    assert!(
        matches!(&error, ConfigError::Read { path, .. } if path == &missing),
        "{error}"
    );
    // The usual locations may be absent.
    let config = ConfigLoader::new()
        .env("HOME", files.path().to_string_lossy())
        .system_file(Some(missing))
        .load(&none());
    assert!(config.is_ok());
}

#[test]
fn ollama_host_forms() {
    let cases = [
        ("0.0.0.0", "http://127.0.0.1:11434/"),
        ("0.0.0.0:9999", "http://127.0.0.1:9999/"),
        (":8080", "http://127.0.0.1:8080/"),
        ("gpu-box", "http://gpu-box:11434/"),
        ("gpu-box:1234", "http://gpu-box:1234/"),
        ("[::1]:5000", "http://[::1]:5000/"),
        ("[::]:5000", "http://127.0.0.1:5000/"),
        ("::1", "http://[::1]:11434/"),
        ("http://example.com", "http://example.com/"),
        ("https://example.com/ollama", "https://example.com/ollama"),
        ("http://10.0.0.2:11434", "http://10.0.0.2:11434/"),
    ];
    for (input, expected) in cases {
        assert_eq!(
            ollama_host_url(input).expect(input).as_str(),
            expected,
            "{input}"
        );
    }
    for bad in ["host:notaport", "ftp://x", "[::1"] {
        assert!(ollama_host_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn url_precedence_among_the_environment_variables() {
    let files = Files::new();
    let file = files.write("c.toml", "url = \"http://from-file:1\"\n");
    let loader = ConfigLoader::new().user_file(file);
    let url = |l: &ConfigLoader| l.load(&none()).expect("valid").url.to_string();
    assert_eq!(url(&loader), "http://from-file:1/");
    let l = loader.clone().env("OLLAMA_HOST", "0.0.0.0:2");
    assert_eq!(url(&l), "http://127.0.0.1:2/", "environment beats file");
    let l = l.env("OLLAMA_URL", "http://from-ollama-url:3");
    assert_eq!(url(&l), "http://from-ollama-url:3/");
    let l = l.env("NANNA_URL", "http://from-nanna-url:4");
    assert_eq!(url(&l), "http://from-nanna-url:4/");
    assert_eq!(
        l.load(&none().with_flag("--url", "url", Some("http://flag:5")))
            .expect("valid")
            .url
            .as_str(),
        "http://flag:5/"
    );
    // Ollama's variables do not apply to another provider.
    let openai = loader
        .env("NANNA_PROVIDER", "openai")
        .env("OLLAMA_HOST", "x:9")
        .env("OLLAMA_MODEL", "m");
    let config = openai.load(&none()).expect("valid");
    assert_eq!(config.url.as_str(), "http://from-file:1/");
    assert_eq!(config.model, "llama3.1:8b");
    let config = ConfigLoader::new()
        .env("NANNA_PROVIDER", "openai")
        .load(&none())
        .expect("valid");
    assert_eq!(config.url.as_str(), "http://localhost:8080/v1");
    assert_eq!(config.provider().name(), "openai");
    assert_eq!(config.provider().base_url(), "http://localhost:8080/v1");
}

#[test]
fn ollama_model_ranks_below_nanna_model() {
    let l = ConfigLoader::new().env("OLLAMA_MODEL", "qwen3:8b");
    assert_eq!(l.load(&none()).expect("valid").model, "qwen3:8b");
    let l = l.env("NANNA_MODEL", "mistral");
    assert_eq!(l.load(&none()).expect("valid").model, "mistral");
}

fn invalid(result: Result<nanna_config::Config, ConfigError>) -> (String, Origin, String) {
    match result {
        Err(ConfigError::Invalid {
            setting,
            origin,
            value,
            ..
        }) => (setting, origin, value),
        other => panic!("expected an invalid setting, got {other:?}"),
    }
}

#[test]
fn invalid_values_name_the_setting_and_where_it_came_from() {
    let files = Files::new();
    let file = files.write("c.toml", "context_window = 0\n");
    let (setting, origin, _) = invalid(ConfigLoader::new().user_file(file.clone()).load(&none()));
    assert_eq!(
        (setting.as_str(), origin),
        ("context_window", Origin::File(file))
    );

    let (setting, origin, value) = invalid(
        ConfigLoader::new()
            .env("NANNA_TEMPERATURE", "2.5")
            .load(&none()),
    );
    assert_eq!((setting.as_str(), value.as_str()), ("temperature", "2.5"));
    assert_eq!(origin, Origin::Env("NANNA_TEMPERATURE".into()));

    let (setting, origin, _) = invalid(
        ConfigLoader::new()
            .env("NANNA_TEMPERATURE", "warm")
            .load(&none()),
    );
    assert_eq!(
        (setting.as_str(), origin),
        ("temperature", Origin::Env("NANNA_TEMPERATURE".into()))
    );

    let flags = none().with_flag("--provider", "provider", Some("gpt"));
    let (setting, origin, _) = invalid(ConfigLoader::new().load(&flags));
    assert_eq!(
        (setting.as_str(), origin),
        ("provider", Origin::Flag("--provider".into()))
    );

    let (setting, origin, _) = invalid(
        ConfigLoader::new()
            .env("NANNA_URL", "localhost:11434")
            .load(&none()),
    );
    assert_eq!(
        (setting.as_str(), origin),
        ("url", Origin::Env("NANNA_URL".into()))
    );

    let (setting, origin, _) = invalid(
        ConfigLoader::new()
            .env("OLLAMA_HOST", "box:port")
            .load(&none()),
    );
    assert_eq!(
        (setting.as_str(), origin),
        ("url", Origin::Env("OLLAMA_HOST".into()))
    );

    let (setting, _, _) = invalid(
        ConfigLoader::new()
            .env("NANNA_CONTEXT_WINDOW", "lots")
            .load(&none()),
    );
    assert_eq!(setting, "context_window");

    let (setting, _, _) = invalid(
        ConfigLoader::new()
            .env("NANNA_KEEP_ALIVE", "forever")
            .load(&none()),
    );
    assert_eq!(setting, "keep_alive");

    let flags = none().with_flag("--temperature", "temperature", Some(-0.1f32));
    let (setting, origin, _) = invalid(ConfigLoader::new().load(&flags));
    assert_eq!(
        (setting.as_str(), origin),
        ("temperature", Origin::Flag("--temperature".into()))
    );

    let message = ConfigLoader::new()
        .env("NANNA_TEMPERATURE", "9")
        .load(&none())
        .expect_err("invalid")
        .to_string();
    assert!(
        message.contains("temperature")
            && message.contains("NANNA_TEMPERATURE")
            && message.contains("0 to 2"),
        "{message}"
    );
}

#[test]
fn toml_errors_give_line_and_column() {
    let files = Files::new();
    let unknown = files.write("unknown.toml", "model = \"m\"\n\ncontext_windw = 5\n");
    match ConfigLoader::new().user_file(unknown.clone()).load(&none()) {
        Err(ConfigError::Syntax {
            path,
            line,
            column,
            message,
        }) => {
            assert_eq!(path, unknown);
            assert_eq!((line, column), (3, 1));
            assert!(message.contains("context_windw"), "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let broken = files.write("broken.toml", "model = \"m\"\ntemperature = = 1\n");
    match ConfigLoader::new()
        .system_file(Some(broken.clone()))
        .load(&none())
    {
        Err(error @ ConfigError::Syntax { line: 2, .. }) => {
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("{}:2:", broken.display())),
                "{error}"
            );
        }
        other => panic!("expected a syntax error on line 2, got {other:?}"),
    }
    // A wrong value names the setting, the value as written, the file and its place.
    let wrong_type = files.write("type.toml", "model = \"m\"\ncontext_window = \"big\"\n");
    let error = ConfigLoader::new()
        .user_file(wrong_type.clone())
        .load(&none())
        .expect_err("wrong type");
    match &error {
        ConfigError::Invalid {
            setting,
            value,
            origin,
            position,
            reason,
        } => {
            assert_eq!(
                (setting.as_str(), value.as_str()),
                ("context_window", "\"big\"")
            );
            assert_eq!(origin, &Origin::File(wrong_type.clone()));
            assert_eq!(*position, Some((2, 18)));
            assert!(reason.contains("whole number of tokens"), "{reason}");
        }
        other => panic!("expected an invalid value, got {other:?}"),
    }
    assert!(
        error.to_string().contains(&format!(
            "(from file {}, line 2, column 18)",
            wrong_type.display()
        )),
        "{error}"
    );
}

#[test]
fn keep_alive_forms_and_file_numbers() {
    for good in ["5m", "1h30m", "-1", "0", "300", "1.5h", "-1s", "250ms"] {
        let config = ConfigLoader::new()
            .env("NANNA_KEEP_ALIVE", good)
            .load(&none());
        assert_eq!(config.expect(good).keep_alive.as_deref(), Some(good));
    }
    let files = Files::new();
    let file = files.write("k.toml", "keep_alive = -1\ntemperature = 1\n");
    let config = ConfigLoader::new()
        .user_file(file)
        .load(&none())
        .expect("valid");
    assert_eq!(config.keep_alive.as_deref(), Some("-1"));
    assert_eq!(config.temperature, Some(1.0));
    assert_eq!(config.chat_options().keep_alive.as_deref(), Some("-1"));
    assert_eq!(config.chat_options().context_window, Some(110_000));
}

#[test]
fn api_key_from_environment_and_redacted_in_debug() {
    let l = ConfigLoader::new().env("OPENAI_API_KEY", "sk-openai");
    assert_eq!(
        l.load(&none()).expect("valid").api_key.as_deref(),
        Some("sk-openai")
    );
    let l = l.env("NANNA_API_KEY", "sk-nanna");
    let config = l.load(&none()).expect("valid");
    assert_eq!(config.api_key.as_deref(), Some("sk-nanna"));
    assert_eq!(
        config.origin("api_key"),
        Some(&Origin::Env("NANNA_API_KEY".into()))
    );
    assert!(!format!("{config:?}").contains("sk-nanna"));
}

#[test]
fn empty_environment_values_count_as_unset() {
    let config = ConfigLoader::new()
        .env("NANNA_MODEL", "")
        .env("NANNA_TEMPERATURE", " ")
        .load(&none())
        .expect("valid");
    assert_eq!(config.model, "llama3.1:8b");
    assert_eq!(config.temperature, None);
}

#[test]
fn timeouts_from_file_env_and_flag() {
    let files = Files::new();
    let file = files.write(
        "t.toml",
        "connect_timeout_secs = 2\nidle_timeout_secs = 60\n",
    );
    let l = ConfigLoader::new().user_file(file);
    let config = l.load(&none()).expect("valid");
    assert_eq!(
        (config.connect_timeout, config.idle_timeout),
        (Duration::from_secs(2), Duration::from_secs(60))
    );
    let config = l
        .clone()
        .env("NANNA_IDLE_TIMEOUT", "90")
        .load(&none())
        .expect("valid");
    assert_eq!(config.idle_timeout, Duration::from_secs(90));
    let flags = none().with_flag("--idle-timeout", "idle_timeout_secs", Some(0u64));
    let (setting, origin, _) = invalid(l.load(&flags));
    assert_eq!(
        (setting.as_str(), origin),
        ("idle_timeout_secs", Origin::Flag("--idle-timeout".into()))
    );
}

/// `think` (issue 11, item 3): a boolean or a level in the file, `NANNA_THINK`, `--think`;
/// each layer overrides the one below; a bad value names the setting, where it came from
/// and what is accepted; unset leaves the server's default.
#[test]
fn think_from_file_environment_and_flag() {
    use nanna_model::Think;
    let files = Files::new();
    let off = files.write("off.toml", "think = false\n");
    let high = files.write("high.toml", "think = \"high\"\n");
    let loader = |file: &Path| ConfigLoader::new().user_file(file.to_owned());
    assert_eq!(
        ConfigLoader::new().load(&none()).expect("valid").think,
        None
    );
    let config = loader(&off).load(&none()).expect("valid");
    assert_eq!(config.think, Some(Think::Off));
    assert_eq!(config.chat_options().think, Some(Think::Off));
    assert_eq!(
        loader(&high).load(&none()).expect("valid").think,
        Some(Think::High)
    );
    let config = loader(&high)
        .env("NANNA_THINK", "low")
        .load(&none())
        .expect("valid");
    assert_eq!(config.think, Some(Think::Low));
    assert_eq!(
        config.origin("think"),
        Some(&Origin::Env("NANNA_THINK".into()))
    );
    let flag = none().with_flag("--think", "think", Some("max"));
    let config = loader(&high)
        .env("NANNA_THINK", "low")
        .load(&flag)
        .expect("valid");
    assert_eq!(config.think, Some(Think::Max));
    let bad = ConfigLoader::new().env("NANNA_THINK", "lots").load(&none());
    let message = bad.clone().expect_err("invalid").to_string();
    let (setting, origin, value) = invalid(bad);
    assert_eq!((setting.as_str(), value.as_str()), ("think", "lots"));
    assert_eq!(origin, Origin::Env("NANNA_THINK".into()));
    assert!(message.contains("low, medium, high"), "{message}");
    let wrong = files.write("wrong.toml", "think = 3\n");
    let (setting, origin, value) = invalid(loader(&wrong).load(&none()));
    assert_eq!((setting.as_str(), value.as_str()), ("think", "3"));
    assert_eq!(origin, Origin::File(wrong));
}

#[test]
fn sandbox_settings_and_extra_tools_layer_like_the_others() {
    let config = ConfigLoader::new().load(&none()).expect("valid");
    assert!(!config.sandbox_network, "the network is denied by default");
    assert!(config.sandbox_env_include.is_empty() && config.extra_tools.is_empty());

    let files = Files::new();
    let user = files.write(
        "user.toml",
        "sandbox_network = true\nsandbox_env_include = [\"GITHUB_TOKEN\"]\n\
         sandbox_env_exclude = [\"AWS_*\"]\nextra_tools = [\"calculate\"]\n",
    );
    let loader = ConfigLoader::new().user_file(user.clone());
    let config = loader.load(&none()).expect("valid");
    assert!(config.sandbox_network);
    assert_eq!(config.sandbox_env_include, ["GITHUB_TOKEN"]);
    assert_eq!(config.sandbox_env_exclude, ["AWS_*"]);
    assert_eq!(config.extra_tools, ["calculate"]);
    assert_eq!(config.origin("extra_tools"), Some(&Origin::File(user)));

    let loader = loader
        .env("NANNA_SANDBOX_NETWORK", "off")
        .env("NANNA_EXTRA_TOOLS", "echo, calculate");
    let config = loader.load(&none()).expect("valid");
    assert!(!config.sandbox_network);
    assert_eq!(config.extra_tools, ["echo", "calculate"]);
    let flags = none().with_flag("--network", "sandbox_network", Some(true));
    let config = loader.load(&flags).expect("valid");
    assert!(config.sandbox_network);
    assert_eq!(
        config.origin("sandbox_network"),
        Some(&Origin::Flag("--network".into()))
    );

    let err = ConfigLoader::new()
        .env("NANNA_SANDBOX_NETWORK", "sometimes")
        .load(&none())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("NANNA_SANDBOX_NETWORK") && err.contains("true or false"),
        "{err}"
    );
}

#[test]
fn mcp_tables_are_accepted_and_the_files_listed_in_layer_order() {
    // The shape `pkgs.formats.toml` writes for the NixOS module's
    // `settings.mcp_servers.docs = { url = ...; enabled_tools = [ ... ]; }` (keys sorted, the
    // server as a `[mcp_servers.docs]` table); nanna-mcp parses those tables from the same
    // files.
    let files = Files::new();
    let system = files.write(
        "system.toml",
        "model = \"qwen2.5-coder:7b\"\ntool_token_budget = 3000\n\n[mcp_servers.docs]\n\
         enabled_tools = [\"search\"]\nurl = \"http://127.0.0.1:3000/mcp\"\n",
    );
    let user = files.write("user.toml", "[mcp_servers.docs]\nenabled = false\n");
    let loader = ConfigLoader::new()
        .system_file(Some(system.clone()))
        .user_file(user.clone());
    let config = loader
        .load(&none())
        .expect("MCP tables do not trip the main loader");
    assert_eq!(config.model, "qwen2.5-coder:7b");
    assert_eq!(
        loader.files(&none()),
        vec![(system, false), (user.clone(), false)]
    );
    assert_eq!(loader.user_file_for(&none()), Some(user));
    let flag = none().with_file(Some(files.path().join("flag.toml")));
    assert_eq!(
        loader.files(&flag).last(),
        Some(&(files.path().join("flag.toml"), true))
    );
}

/// `-c key=value` (Codex's and git's convention): the value is TOML, or the text itself when
/// it is not; it wins over files and variables, and flags win over it; later `-c` win.
#[test]
fn c_overrides_sit_between_the_environment_and_the_flags() {
    let files = Files::new();
    let user = files.write("user.toml", "model = \"from-file\"\ntemperature = 0.5\n");
    let loader = ConfigLoader::new()
        .user_file(user)
        .env("NANNA_MODEL", "from-env");
    let overrides = none()
        .with_setting("model=qwen2.5-coder:7b")
        .with_setting("temperature = 0.25")
        .with_setting("extra_tools=[\"calculate\"]")
        .with_setting("keep_alive=-1")
        .with_setting("think=high")
        .with_setting("sandbox_network=true")
        .with_setting("url=\"http://box:11434\"");
    let config = loader.load(&overrides).expect("valid");
    assert_eq!(config.model, "qwen2.5-coder:7b");
    assert_eq!(
        config.origin("model"),
        Some(&Origin::Flag("-c model=qwen2.5-coder:7b".into()))
    );
    assert_eq!(config.temperature, Some(0.25));
    assert_eq!(config.extra_tools, ["calculate"]);
    assert_eq!(config.keep_alive.as_deref(), Some("-1"));
    assert_eq!(config.think, Some(nanna_model::Think::High));
    assert!(config.sandbox_network);
    assert_eq!(config.url.as_str(), "http://box:11434/");

    // The flag wins; a later -c wins over an earlier one.
    let config = loader
        .load(
            &overrides
                .clone()
                .with_setting("temperature=0.75")
                .with_flag("--model", "model", Some("from-flag")),
        )
        .expect("valid");
    assert_eq!(config.model, "from-flag");
    assert_eq!(config.temperature, Some(0.75));
}

#[test]
fn c_overrides_are_checked_like_any_value() {
    let loader = ConfigLoader::new();
    let (setting, origin, value) = invalid(loader.load(&none().with_setting("temperature=5")));
    assert_eq!((setting.as_str(), value.as_str()), ("temperature", "5"));
    assert_eq!(origin, Origin::Flag("-c temperature=5".into()));

    let message = loader
        .load(&none().with_setting("temprature=0.2"))
        .expect_err("unknown setting")
        .to_string();
    assert!(
        message.contains("temprature")
            && message.contains("the settings are")
            && message.contains("temperature"),
        "{message}"
    );

    let message = loader
        .load(&none().with_setting("temperature"))
        .expect_err("no value")
        .to_string();
    assert!(message.contains("KEY=VALUE"), "{message}");

    let message = loader
        .load(&none().with_setting("api_key=sk-secret"))
        .expect_err("secret on the command line")
        .to_string();
    assert!(message.contains("NANNA_API_KEY"), "{message}");
    assert!(!message.contains("sk-secret"), "{message}");

    let message = loader
        .load(&none().with_setting("context_window=\"big\""))
        .expect_err("wrong type")
        .to_string();
    assert!(
        message.contains("context_window")
            && message.contains("-c context_window=")
            && message.contains("whole number"),
        "{message}"
    );
}

/// Every top-level setting has a variable, `NANNA_` + its key (`_SECS` dropped); other
/// `NANNA_*` variables (the sandbox's `NANNA_BWRAP`, the tests' `NANNA_TEST_*`) are not
/// settings and are left alone.
#[test]
fn every_setting_has_its_variable() {
    let config = ConfigLoader::new()
        .env("NANNA_TOOL_TOKEN_BUDGET", "2500")
        .env("NANNA_SANDBOX_ENV_INCLUDE", "GITHUB_TOKEN, AWS_*")
        .env("NANNA_CONNECT_TIMEOUT", "7")
        .env("NANNA_NATIVE_TOOLS", "false")
        .env("NANNA_JSON_TOOL_CALLS", "yes")
        .env("NANNA_BWRAP", "/nonexistent/bwrap")
        .env("NANNA_TEST_LLAMA_URL", "not a setting")
        .load(&none())
        .expect("valid");
    assert_eq!(config.tool_token_budget, 2500);
    assert_eq!(config.sandbox_env_include, ["GITHUB_TOKEN", "AWS_*"]);
    assert_eq!(config.connect_timeout, Duration::from_secs(7));
    assert_eq!(config.native_tools, Some(false));
    assert!(config.json_tool_calls);
    assert_eq!(
        config.origin("connect_timeout_secs"),
        Some(&Origin::Env("NANNA_CONNECT_TIMEOUT".into()))
    );
    assert_eq!(
        nanna_config::env_var("idle_timeout_secs"),
        "NANNA_IDLE_TIMEOUT"
    );
    assert_eq!(
        nanna_config::env_var("max_line_bytes"),
        "NANNA_MAX_LINE_BYTES"
    );
}

#[test]
fn the_api_key_stays_out_of_files() {
    let files = Files::new();
    let file = files.write("c.toml", "model = \"m\"\napi_key = \"sk-in-a-file\"\n");
    match ConfigLoader::new().user_file(file.clone()).load(&none()) {
        Err(
            error @ ConfigError::Syntax {
                line: 2, column: 1, ..
            },
        ) => {
            let message = error.to_string();
            assert!(message.contains("NANNA_API_KEY"), "{message}");
            assert!(!message.contains("sk-in-a-file"), "{message}");
        }
        other => panic!("expected an error on line 2, got {other:?}"),
    }
}

/// The file the NixOS module writes (`pkgs.formats.toml` of `services.nanna-coder.settings`:
/// keys sorted, the module's defaults plus the user's freeform settings and servers) loads,
/// and the user's file and variables override it.
#[test]
fn the_nixos_modules_file_loads() {
    let files = Files::new();
    let system = files.write(
        "etc/nanna/config.toml",
        "context_window = 32768\nkeep_alive = \"30m\"\nmodel = \"qwen2.5-coder:7b\"\n\
         provider = \"ollama\"\ntemperature = 0.2\nurl = \"http://127.0.0.1:11434\"\n\n\
         [mcp_servers.docs]\nenabled_tools = [\"search\"]\ntool_timeout_sec = 20\n\
         url = \"http://127.0.0.1:3000/mcp\"\n",
    );
    let user = files.write("user.toml", "model = \"llama3.1:8b\"\n");
    let config = ConfigLoader::new()
        .system_file(Some(system.clone()))
        .user_file(user.clone())
        .env("NANNA_CONTEXT_WINDOW", "16384")
        .load(&none())
        .expect("valid");
    assert_eq!(config.url.as_str(), "http://127.0.0.1:11434/");
    assert_eq!(config.origin("url"), Some(&Origin::File(system.clone())));
    assert_eq!(config.model, "llama3.1:8b");
    assert_eq!(config.origin("model"), Some(&Origin::File(user)));
    assert_eq!(config.context_window, 16384);
    assert_eq!(config.keep_alive.as_deref(), Some("30m"));
    let options = config.chat_options();
    assert_eq!(options.context_window, Some(16384));
    assert_eq!(options.temperature, Some(0.2));
    assert_eq!(options.keep_alive.as_deref(), Some("30m"));
    let mcp = config.mcp().expect("valid servers");
    assert_eq!(mcp.servers["docs"].source, Origin::File(system));
}

/// The provider built from the settings carries them: its URL, and (through the same
/// `Endpoint`) the limits.
#[test]
fn the_endpoint_carries_the_settings() {
    let config = ConfigLoader::new()
        .env("NANNA_PROVIDER", "llama.cpp")
        .env("NANNA_URL", "http://user:secret@gpu-box:8080")
        .env("NANNA_API_KEY", "sk-nanna")
        .env("NANNA_IDLE_TIMEOUT", "42")
        .load(&none())
        .expect("valid");
    assert_eq!(config.provider, ProviderKind::OpenAi);
    let endpoint = config.endpoint();
    assert_eq!(endpoint.limits.idle_timeout, Duration::from_secs(42));
    assert_eq!(endpoint.api_key.as_deref(), Some("sk-nanna"));
    assert_eq!(config.provider().name(), "openai");
    assert!(
        !config.shown_url().contains("secret"),
        "{}",
        config.shown_url()
    );
    let debug = format!("{config:?} {endpoint:?}");
    assert!(
        !debug.contains("secret") && !debug.contains("sk-nanna"),
        "{debug}"
    );
}

//! [`ConfigLoader`]: the layers, merged by figment, and errors that say where a value came
//! from.
//!
//! Later layers win: defaults < system file < user file < Ollama's own variables (Ollama
//! provider only) < `OPENAI_API_KEY` < `NANNA_*` variables < `-c key=value` < flags. Each
//! layer is a figment provider whose metadata points back to its [`Origin`], so figment's
//! `find_metadata` answers "where did this value come from" and an extraction error carries
//! the layer of the value that failed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use nanna_model::{ProviderKind, redact_urls};

use crate::config::Config;
use crate::error::{ConfigError, Origin, line_and_column};
use crate::mcp::{self, McpConfig, McpConfigError};
use crate::overrides::Overrides;
use crate::value::ServerUrl;

/// Where the system-wide configuration file lives (the NixOS module writes it from
/// `services.nanna-coder.settings`).
pub const SYSTEM_CONFIG_PATH: &str = "/etc/nanna/config.toml";

/// Settings read only from the environment: a secret has no place in a file or on a command
/// line.
const ENV_ONLY: &[&str] = &["api_key"];

/// The environment variable of `key`: `NANNA_` + the key in capitals, `_SECS` dropped
/// (`idle_timeout_secs` → `NANNA_IDLE_TIMEOUT`).
pub fn env_var(key: &str) -> String {
    format!(
        "NANNA_{}",
        key.strip_suffix("_secs")
            .unwrap_or(key)
            .to_ascii_uppercase()
    )
}

/// Loads a [`Config`] from an environment and file locations. [`ConfigLoader::from_process`]
/// reads the process's; tests build one with [`ConfigLoader::new`] instead of changing the
/// process environment.
#[derive(Debug, Clone, Default)]
pub struct ConfigLoader {
    env: HashMap<String, String>,
    system_file: Option<PathBuf>,
    user_file: Option<PathBuf>,
}

/// One layer: values and where they came from.
#[derive(Debug, Clone)]
struct Layer {
    origin: Origin,
    values: Dict,
}

impl Layer {
    fn new(origin: Origin, values: Dict) -> Self {
        Self { origin, values }
    }

    /// One value at `key` (a top-level setting).
    fn single(origin: Origin, key: &str, value: Value) -> Self {
        Self::new(origin, Dict::from([(key.to_owned(), value)]))
    }
}

/// A layer as figment sees it: its rank among the layers is its metadata's source, so that
/// metadata found on a value leads back to the layer.
struct Ranked<'a>(usize, &'a Layer);

impl Provider for Ranked<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::from(
            self.1.origin.to_string(),
            Source::Custom(self.0.to_string()),
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.1.values.clone())]))
    }
}

/// The layers in order, merged.
struct Merged {
    layers: Vec<Layer>,
    figment: Figment,
}

impl Merged {
    fn new(layers: Vec<Layer>) -> Self {
        let figment = layers
            .iter()
            .enumerate()
            .fold(Figment::new(), |figment, (rank, layer)| {
                figment.merge(Ranked(rank, layer))
            });
        Self { layers, figment }
    }

    /// The layer a value's metadata points to.
    fn rank(metadata: &Metadata) -> Option<usize> {
        metadata.source.as_ref()?.custom()?.parse().ok()
    }

    /// Where the value at `path` came from, with its layer's rank; `None` when unset.
    fn origin(&self, path: &str) -> Option<(usize, &Origin)> {
        let rank = Self::rank(self.figment.find_metadata(path)?)?;
        Some((rank, &self.layers.get(rank)?.origin))
    }

    /// A failed extraction (of the value at `within`, "" for all) as the setting, its
    /// value, its origin and what is accepted.
    fn error(&self, within: &str, error: figment::Error) -> ConfigError {
        let setting = match error.path.is_empty() {
            true => within.to_owned(),
            false => error.path.join("."),
        };
        // A rule's own error is raised outside figment's deserializer and may carry no
        // metadata: then the value's own tells.
        let origin = error
            .metadata
            .as_ref()
            .and_then(Self::rank)
            .and_then(|rank| self.layers.get(rank))
            .map(|layer| &layer.origin)
            .or_else(|| self.origin(&setting).map(|(_, origin)| origin))
            .map_or(Origin::Default, Origin::clone);
        let value = self
            .figment
            .find_value(&setting)
            .map(|value| shown(&value))
            .unwrap_or_default();
        ConfigError::Invalid {
            setting,
            value: redact_urls(&value),
            origin,
            position: None,
            reason: redact_urls(&reason(&error.kind)),
        }
    }

    fn extract<'de, T: serde::Deserialize<'de>>(&self, path: &str) -> Result<T, ConfigError> {
        self.figment
            .extract_inner_lossy(path)
            .map_err(|e| self.error(path, e))
    }

    /// Where each MCP server's table got its last key: the highest layer that has it.
    fn mcp_sources(&self, servers: &BTreeMap<String, toml::Table>) -> BTreeMap<String, Origin> {
        let mut sources = BTreeMap::new();
        for layer in &self.layers {
            if let Some(Value::Dict(_, tables)) = layer.values.get("mcp_servers") {
                for name in tables.keys().filter(|name| servers.contains_key(*name)) {
                    sources.insert(name.clone(), layer.origin.clone());
                }
            }
        }
        sources
    }
}

/// A value as the user wrote it: text as is, anything else as JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::String(_, text) => text.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// What is accepted, from a deserialization error: the rules' own messages, or the expected
/// type in words.
fn reason(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::Message(message) => message.clone(),
        Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
            let words = match expected.as_str() {
                "a boolean" => "true or false",
                "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" => {
                    "a whole number"
                }
                "f32" | "f64" => "a number",
                "a sequence" => {
                    "a list such as [\"a\", \"b\"] (comma-separated in an environment variable)"
                }
                "a string" => "text",
                "a map" => "a table",
                other => other,
            };
            format!("expected {words}")
        }
        other => other.to_string(),
    }
}

impl ConfigLoader {
    /// A loader with an empty environment and no files.
    pub fn new() -> Self {
        Self::default()
    }

    /// A loader reading the process environment, the system file and the user file.
    pub fn from_process() -> Self {
        let env = std::env::vars_os()
            .filter_map(|(name, value)| {
                let name = name.into_string().ok()?;
                let relevant = name.starts_with("NANNA_")
                    || name.starts_with("OLLAMA_")
                    || matches!(name.as_str(), "OPENAI_API_KEY" | "XDG_CONFIG_HOME" | "HOME");
                relevant.then(|| (name, value.to_string_lossy().into_owned()))
            })
            .collect();
        Self {
            env,
            system_file: Some(PathBuf::from(SYSTEM_CONFIG_PATH)),
            user_file: None,
        }
    }

    /// Sets an environment variable of this loader's environment.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Sets the system file (`None`: no system file).
    pub fn system_file(mut self, path: Option<PathBuf>) -> Self {
        self.system_file = path;
        self
    }

    /// Sets the user file, instead of deriving it from `NANNA_CONFIG`, `XDG_CONFIG_HOME`
    /// and `HOME`.
    pub fn user_file(mut self, path: PathBuf) -> Self {
        self.user_file = Some(path);
        self
    }

    /// A variable's value; empty counts as unset.
    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The user file and whether it was named explicitly (then it must exist).
    fn user_file_path(&self, overrides: &Overrides) -> Option<(PathBuf, bool)> {
        if let Some(path) = overrides.file() {
            return Some((path.to_owned(), true));
        }
        if let Some(path) = &self.user_file {
            return Some((path.clone(), false));
        }
        if let Some(path) = self.var("NANNA_CONFIG") {
            return Some((PathBuf::from(path), true));
        }
        if let Some(dir) = self.var("XDG_CONFIG_HOME") {
            return Some((Path::new(dir).join("nanna/config.toml"), false));
        }
        self.var("HOME")
            .map(|home| (Path::new(home).join(".config/nanna/config.toml"), false))
    }

    /// The configuration files in layer order (system, then user), each with whether it
    /// must exist (a file named by `--config` or `NANNA_CONFIG`).
    pub fn files(&self, overrides: &Overrides) -> Vec<(PathBuf, bool)> {
        let mut files = Vec::with_capacity(2);
        if let Some(path) = &self.system_file {
            files.push((path.clone(), false));
        }
        files.extend(self.user_file_path(overrides));
        files
    }

    /// The user's configuration file, the one `nanna mcp add` writes.
    pub fn user_file_for(&self, overrides: &Overrides) -> Option<PathBuf> {
        self.user_file_path(overrides).map(|(path, _)| path)
    }

    /// Merges every layer and checks every setting.
    pub fn load(&self, overrides: &Overrides) -> Result<Config, ConfigError> {
        let layers = self.layers(overrides, true)?;
        // The provider decides the URL's default and whether Ollama's variables count.
        let provider: ProviderKind = layers
            .merged(ProviderKind::Ollama, Vec::new())
            .extract("provider")?;
        let ollama = match provider {
            ProviderKind::Ollama => self.ollama_layers()?,
            ProviderKind::OpenAi => Vec::new(),
        };
        let merged = layers.merged(provider, ollama);
        let mut config: Config = merged
            .figment
            .extract_lossy()
            .map_err(|e| merged.error("", e))?;
        config.origins = setting_keys()
            .into_iter()
            .filter(|key| key != "mcp_servers")
            .filter(|key| !matches!(merged.figment.find_value(key), Ok(Value::Empty(..))))
            .filter_map(|key| {
                let origin = merged.origin(&key)?.1.clone();
                Some((key, origin))
            })
            .collect();
        config.mcp_sources = merged.mcp_sources(&config.mcp_servers);
        Ok(config)
    }

    /// The MCP servers and the tool budget only: `nanna mcp` works whatever the model
    /// settings are, and can fix a file whose other settings are wrong.
    pub fn load_mcp(&self, overrides: &Overrides) -> Result<McpConfig, McpConfigError> {
        let merged = self
            .layers(overrides, false)?
            .merged(ProviderKind::Ollama, Vec::new());
        let servers: BTreeMap<String, toml::Table> = merged.extract("mcp_servers")?;
        let budget: u32 = merged.extract("tool_token_budget")?;
        mcp::validate(&servers, &merged.mcp_sources(&servers), budget)
    }

    /// Every layer but the defaults and Ollama's variables; `typed`: check each file's
    /// settings against [`Config`] (line and column for a wrong value).
    fn layers(&self, overrides: &Overrides, typed: bool) -> Result<Layers, ConfigError> {
        let keys = setting_keys();
        let mut files = Vec::new();
        for (path, required) in self.files(overrides) {
            if let Some(layer) = read_file(&path, required, typed)? {
                files.push(layer);
            }
        }
        let mut env = Vec::new();
        if let Some(key) = self.var("OPENAI_API_KEY") {
            let origin = Origin::Env("OPENAI_API_KEY".into());
            env.push(Layer::single(origin, "api_key", Value::from(key)));
        }
        let defaults = defaults(ProviderKind::Ollama);
        for key in &keys {
            let name = env_var(key);
            let Some(text) = self.var(&name) else {
                continue;
            };
            let value = match defaults.get(key) {
                Some(Value::Dict(..)) | None => continue,
                // Lists: comma-separated.
                Some(Value::Array(..)) => Value::from(
                    text.split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                ),
                Some(_) => Value::from(text),
            };
            env.push(Layer::single(Origin::Env(name), key, value));
        }
        let mut settings = Vec::new();
        for text in overrides.settings() {
            settings.push(setting_layer(text, &keys)?);
        }
        let flags = overrides
            .flags()
            .map(|(flag, key, value)| Layer::single(Origin::Flag(flag.to_owned()), key, value))
            .collect();
        Ok(Layers {
            files,
            env,
            settings,
            flags,
        })
    }

    /// `OLLAMA_HOST`, `OLLAMA_URL` (above it) and `OLLAMA_MODEL`: Ollama's own variables,
    /// below nanna's.
    fn ollama_layers(&self) -> Result<Vec<Layer>, ConfigError> {
        let mut layers = Vec::new();
        if let Some(host) = self.var("OLLAMA_HOST") {
            let origin = Origin::Env("OLLAMA_HOST".into());
            let url = ollama_host_url(host).map_err(|reason| ConfigError::Invalid {
                setting: "url".into(),
                value: redact_urls(host),
                origin: origin.clone(),
                position: None,
                reason: redact_urls(&reason),
            })?;
            layers.push(Layer::single(origin, "url", Value::from(url.to_string())));
        }
        for (name, key) in [("OLLAMA_URL", "url"), ("OLLAMA_MODEL", "model")] {
            if let Some(value) = self.var(name) {
                layers.push(Layer::single(
                    Origin::Env(name.into()),
                    key,
                    Value::from(value),
                ));
            }
        }
        Ok(layers)
    }
}

/// The layers above the defaults, by kind.
struct Layers {
    files: Vec<Layer>,
    env: Vec<Layer>,
    settings: Vec<Layer>,
    flags: Vec<Layer>,
}

impl Layers {
    /// Everything merged over `provider`'s defaults, with `ollama` (Ollama's variables)
    /// between the files and nanna's variables.
    fn merged(&self, provider: ProviderKind, ollama: Vec<Layer>) -> Merged {
        let mut layers = vec![Layer::new(Origin::Default, defaults(provider))];
        layers.extend(self.files.iter().cloned());
        layers.extend(ollama);
        layers.extend(self.env.iter().cloned());
        layers.extend(self.settings.iter().cloned());
        layers.extend(self.flags.iter().cloned());
        Merged::new(layers)
    }
}

/// `provider`'s defaults as figment values.
fn defaults(provider: ProviderKind) -> Dict {
    Value::serialize(Config::defaults(provider))
        .ok()
        .and_then(Value::into_dict)
        .unwrap_or_default()
}

/// Every top-level setting's key.
fn setting_keys() -> Vec<String> {
    defaults(ProviderKind::Ollama).into_keys().collect()
}

/// A `-c key=value` override, as Codex reads its `-c` (codex-rs/common/src/
/// config_override.rs `parse_overrides`): split at the first `=`, the key a dotted path
/// (`mcp_servers.fs.enabled`), the value TOML (`0.2`, `true`, `["a"]`, `"text"`) or, when
/// it is not valid TOML, the text itself (`-c model=qwen2.5-coder:7b`).
fn setting_layer(text: &str, keys: &[String]) -> Result<Layer, ConfigError> {
    let origin = Origin::Flag(format!("-c {text}"));
    let invalid = |setting: &str, value: &str, reason: String| ConfigError::Invalid {
        setting: setting.to_owned(),
        value: redact_urls(value),
        origin: origin.clone(),
        position: None,
        reason,
    };
    let Some((key, value)) = text
        .split_once('=')
        .filter(|(key, _)| !key.trim().is_empty())
    else {
        return Err(invalid(
            "-c",
            text,
            "expected KEY=VALUE, e.g. -c temperature=0.2 or -c mcp_servers.fs.enabled=false".into(),
        ));
    };
    let (key, value) = (key.trim(), value.trim());
    let table = toml::from_str::<toml::Table>(&format!("{key} = {value}"))
        .or_else(|_| {
            let literal = toml::Value::String(value.to_owned());
            toml::from_str::<toml::Table>(&format!("{key} = {literal}"))
        })
        .map_err(|_| {
            invalid(
                key,
                value,
                "the key must be a setting's name or a dotted path (mcp_servers.NAME.KEY)".into(),
            )
        })?;
    let top = table.keys().next().cloned().unwrap_or_default();
    if ENV_ONLY.contains(&top.as_str()) {
        return Err(ConfigError::Invalid {
            setting: top.clone(),
            value: "<redacted>".into(),
            origin: Origin::Flag(format!("-c {key}=<redacted>")),
            position: None,
            reason: env_only(&top),
        });
    }
    if !keys.contains(&top) {
        return Err(invalid(
            &top,
            value,
            format!("no such setting; the settings are {}", keys.join(", ")),
        ));
    }
    let values = Value::serialize(table)
        .ok()
        .and_then(Value::into_dict)
        .unwrap_or_default();
    Ok(Layer::new(origin, values))
}

/// Why `key` is refused outside the environment.
fn env_only(key: &str) -> String {
    format!(
        "{key} is read only from the environment ({}, or OPENAI_API_KEY), so that it is \
         neither in a file nor on a command line",
        env_var(key)
    )
}

/// One configuration file as a layer; `None` when it is absent and not `required`.
/// `typed`: its settings are checked against [`Config`] too, so that a wrong value is
/// reported with its line and column.
fn read_file(path: &Path, required: bool, typed: bool) -> Result<Option<Layer>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(error) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                detail: error.to_string(),
            });
        }
    };
    let syntax = |span: Option<std::ops::Range<usize>>, message: String| {
        let (line, column) = span.map_or((1, 1), |span| line_and_column(&text, span.start));
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message,
        }
    };
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| syntax(e.span(), e.message().trim().to_owned()))?;
    if typed {
        if let Err(error) = toml::from_str::<Config>(&text) {
            let message = error.message().trim().to_owned();
            let value = error.span().and_then(|span| value_at(&text, span.start));
            return Err(match (value, error.span()) {
                (Some((setting, value)), Some(span)) => ConfigError::Invalid {
                    setting,
                    value: redact_urls(&value),
                    origin: Origin::File(path.to_owned()),
                    position: Some(line_and_column(&text, span.start)),
                    reason: redact_urls(&message),
                },
                _ => syntax(error.span(), message),
            });
        }
        if let Some(key) = ENV_ONLY.iter().find(|key| table.contains_key(**key)) {
            return Err(syntax(key_span(&text, key), env_only(key)));
        }
    }
    let values = Value::serialize(table)
        .ok()
        .and_then(Value::into_dict)
        .unwrap_or_default();
    Ok(Some(Layer::new(Origin::File(path.to_owned()), values)))
}

/// The top-level setting whose value spans `offset` in `text`, and that value as written.
fn value_at(text: &str, offset: usize) -> Option<(String, String)> {
    let root = toml::de::DeTable::parse(text).ok()?;
    root.get_ref().iter().find_map(|(key, value)| {
        let span = value.span();
        span.contains(&offset).then(|| {
            let written = text.get(span).unwrap_or_default().trim().to_owned();
            (key.get_ref().to_string(), written)
        })
    })
}

/// Where the top-level `key` is written in `text`.
fn key_span(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let root = toml::de::DeTable::parse(text).ok()?;
    root.get_ref()
        .keys()
        .find(|k| k.get_ref() == key)
        .map(|k| k.span())
}

/// Interprets `OLLAMA_HOST` the way Ollama's own client does (envconfig/config.go `Host`):
/// `host`, `host:port`, `:port` or a URL; a missing port is 11434 (80/443 with an explicit
/// scheme); an unspecified address (`0.0.0.0`, `::`), which a server binds to, means this
/// machine.
pub fn ollama_host_url(value: &str) -> Result<ServerUrl, String> {
    let value = value.trim();
    let (scheme, rest, default_port) = match value.split_once("://") {
        Some(("http", rest)) => ("http", rest, 80),
        Some(("https", rest)) => ("https", rest, 443),
        Some((other, _)) => {
            return Err(format!("the scheme must be http or https, not `{other}`"));
        }
        None => ("http", value, 11434),
    };
    let (host_port, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, ""),
    };
    let (host, port) = split_host_port(host_port)?;
    let port = port.unwrap_or(default_port);
    let host = match host.trim_start_matches('[').trim_end_matches(']') {
        "" | "0.0.0.0" | "::" => "127.0.0.1".to_owned(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.to_owned(),
    };
    ServerUrl::parse(&format!("{scheme}://{host}:{port}{path}"))
}

/// Splits `host:port`, `[v6]:port`, `:port`, `host` or `[v6]`.
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("`{p}` is not a port number (1 to 65535)"))
    };
    if let Some(rest) = text.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err("unclosed `[` in an IPv6 address".into());
        };
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(parse_port(port)?))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected `{after}` after the IPv6 address")),
        };
    }
    match text.matches(':').count() {
        0 => Ok((text, None)),
        1 => {
            let (host, port) = text.split_once(':').unwrap_or((text, ""));
            Ok((host, Some(parse_port(port)?)))
        }
        // A bare IPv6 address without a port.
        _ => Ok((text, None)),
    }
}

//! Container engines: where their API sockets may be, which one answers, and whether it is
//! Podman or Docker.
//!
//! [`candidates`] lists the places to look without connecting; [`probe`] tries them all
//! concurrently (each with a short timeout) and reports every attempt; [`connect`] returns a
//! ready [`Engine`] or an [`EngineError`] that lists what was tried and how to start one.

use std::fmt;
use std::os::unix::fs::FileTypeExt;
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use serde::Serialize;
use tracing::debug;

use crate::host::ProbeEnv;

pub(crate) mod http_client;

use self::http_client::{Endpoint, HttpError};

/// The kind of container engine behind an API socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Podman's Docker-compatible API service.
    Podman,
    /// Docker Engine (dockerd).
    Docker,
}

impl EngineKind {
    /// Lower-case name (`podman`, `docker`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Podman => "podman",
            Self::Docker => "docker",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Podman => "Podman",
            Self::Docker => "Docker",
        })
    }
}

/// Which engine the user wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EngineChoice {
    /// The first engine that answers (environment variables first, then Podman, then Docker).
    #[default]
    Auto,
    /// Podman only.
    Podman,
    /// Docker only.
    Docker,
}

impl EngineChoice {
    /// Lower-case name (`auto`, `podman`, `docker`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Podman => "podman",
            Self::Docker => "docker",
        }
    }

    /// The choice that accepts only `kind`.
    pub fn only(kind: EngineKind) -> Self {
        match kind {
            EngineKind::Podman => Self::Podman,
            EngineKind::Docker => Self::Docker,
        }
    }

    fn accepts(self, kind: EngineKind) -> bool {
        matches!(
            (self, kind),
            (Self::Auto, _)
                | (Self::Podman, EngineKind::Podman)
                | (Self::Docker, EngineKind::Docker)
        )
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Auto => "container engine",
            Self::Podman => "Podman engine",
            Self::Docker => "Docker engine",
        }
    }
}

/// Why a socket is a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CandidateSource {
    /// `$DOCKER_HOST`.
    DockerHostEnv,
    /// `$CONTAINER_HOST`.
    ContainerHostEnv,
    /// `$XDG_RUNTIME_DIR/podman/podman.sock`.
    RootlessPodman,
    /// `/run/podman/podman.sock`.
    SystemPodman,
    /// `/var/run/docker.sock`.
    SystemDocker,
    /// `$XDG_RUNTIME_DIR/docker.sock`.
    RootlessDocker,
}

impl fmt::Display for CandidateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DockerHostEnv => "$DOCKER_HOST",
            Self::ContainerHostEnv => "$CONTAINER_HOST",
            Self::RootlessPodman => "rootless Podman",
            Self::SystemPodman => "system Podman",
            Self::SystemDocker => "system Docker",
            Self::RootlessDocker => "rootless Docker",
        })
    }
}

/// A place where an engine API may answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SocketCandidate {
    /// `unix:///path` or `tcp://host:port` (well-known paths are below the host root).
    pub address: String,
    /// Why it is a candidate.
    pub source: CandidateSource,
}

/// What happened when a candidate was tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum ProbeOutcome {
    /// An engine answered.
    Connected {
        /// Its kind.
        kind: EngineKind,
        /// Its version.
        version: String,
        /// The API version negotiated.
        api_version: String,
    },
    /// An engine answered but it is not the kind asked for.
    WrongKind {
        /// The kind that answered.
        kind: EngineKind,
    },
    /// No file at that path.
    Missing,
    /// The path exists but is not a socket.
    NotASocket,
    /// Connecting, or the `/_ping` or `/version` request, failed.
    Failed {
        /// The error, with its causes.
        error: String,
    },
    /// No answer within the timeout.
    TimedOut {
        /// The timeout in milliseconds.
        timeout_ms: u64,
    },
    /// The address scheme is not supported (e.g. `ssh://`).
    Unsupported {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connected {
                kind,
                version,
                api_version,
            } => write!(f, "{kind} {version} (API {api_version})"),
            Self::WrongKind { kind } => write!(f, "answered, but it is {kind}"),
            Self::Missing => f.write_str("no socket there"),
            Self::NotASocket => f.write_str("exists but is not a socket"),
            Self::Failed { error } => write!(f, "failed: {error}"),
            Self::TimedOut { timeout_ms } => write!(f, "no answer within {timeout_ms} ms"),
            Self::Unsupported { reason } => write!(f, "not supported: {reason}"),
        }
    }
}

/// One candidate and what happened when it was tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeAttempt {
    /// The candidate.
    #[serde(flatten)]
    pub candidate: SocketCandidate,
    /// The outcome.
    pub outcome: ProbeOutcome,
}

/// Engine command-line tools found on the tool path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InstalledEngines {
    /// Path of `podman`, when installed.
    pub podman: Option<String>,
    /// Path of `docker`, when installed.
    pub docker: Option<String>,
}

/// Looks up `podman` and `docker` on the tool path.
pub fn installed(env: &ProbeEnv) -> InstalledEngines {
    let find = |name: &str| env.find_tool(name).map(|p| p.display().to_string());
    InstalledEngines {
        podman: find("podman"),
        docker: find("docker"),
    }
}

/// A connected engine: its kind, where it answered, its versions and a ready API client.
#[derive(Clone)]
pub struct Engine {
    /// Podman or Docker.
    pub kind: EngineKind,
    /// The address it answered on (`unix:///run/podman/podman.sock`).
    pub socket: String,
    /// Engine version (Podman's own version for Podman).
    pub version: String,
    /// Negotiated API version.
    pub api_version: String,
    /// API client, already version-negotiated.
    pub client: Docker,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("kind", &self.kind)
            .field("socket", &self.socket)
            .field("version", &self.version)
            .field("api_version", &self.api_version)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The serialisable summary of this engine.
    pub fn info(&self) -> EngineInfo {
        EngineInfo {
            kind: self.kind,
            socket: self.socket.clone(),
            version: self.version.clone(),
            api_version: self.api_version.clone(),
        }
    }
}

/// What is known about a connected engine (the JSON `engine` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineInfo {
    /// `podman` or `docker`.
    pub kind: EngineKind,
    /// Address it answered on.
    pub socket: String,
    /// Engine version.
    pub version: String,
    /// Negotiated API version.
    pub api_version: String,
}

/// The result of trying every candidate.
#[derive(Debug, Clone)]
pub struct EngineProbe {
    /// The chosen engine: the first candidate, in [`candidates`] order, that answered with an
    /// acceptable kind.
    pub engine: Option<Engine>,
    /// Every acceptable engine that answered, in [`candidates`] order (the chosen one first).
    pub engines: Vec<Engine>,
    /// Every candidate and its outcome, in order.
    pub attempts: Vec<ProbeAttempt>,
}

/// No acceptable engine answered.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Every candidate was tried and none fit.
    #[error("{}", not_found_message(*.choice, .attempts, .installed))]
    NotFound {
        /// What was asked for.
        choice: EngineChoice,
        /// What was tried.
        attempts: Vec<ProbeAttempt>,
        /// Engine tools on the tool path (shapes the advice).
        installed: InstalledEngines,
    },
}

fn not_found_message(
    choice: EngineChoice,
    attempts: &[ProbeAttempt],
    installed: &InstalledEngines,
) -> String {
    format!(
        "{}\nTo fix: {}",
        not_found_problem(choice, attempts),
        start_hint(choice, installed)
    )
}

fn not_found_problem(choice: EngineChoice, attempts: &[ProbeAttempt]) -> String {
    let mut text = format!("no {} answered.", choice.noun());
    if attempts.is_empty() {
        text.push_str(
            " There was nowhere to look ($XDG_RUNTIME_DIR unset and no well-known socket).",
        );
    } else {
        text.push_str(" Tried:");
        for attempt in attempts {
            text.push_str(&format!(
                "\n  - {} ({}): {}",
                attempt.candidate.address, attempt.candidate.source, attempt.outcome
            ));
        }
    }
    text
}

impl EngineError {
    /// What was tried and what happened, without the advice.
    pub fn problem(&self) -> String {
        match self {
            Self::NotFound {
                choice, attempts, ..
            } => not_found_problem(*choice, attempts),
        }
    }

    /// How to install or start an engine, given what is installed.
    pub fn fix(&self) -> String {
        match self {
            Self::NotFound {
                choice, installed, ..
            } => start_hint(*choice, installed),
        }
    }
}

/// Advice on installing or starting an engine, given what is installed.
pub fn start_hint(choice: EngineChoice, installed: &InstalledEngines) -> String {
    let podman = "start Podman's API socket: `systemctl --user enable --now podman.socket` \
                  (rootless) or `sudo systemctl enable --now podman.socket`, or run \
                  `podman system service --time=0 unix://$XDG_RUNTIME_DIR/podman/podman.sock &`";
    let docker = "start Docker: `sudo systemctl enable --now docker` (and add yourself to the \
                  `docker` group, or set DOCKER_HOST to a socket you can reach)";
    let want_podman = choice != EngineChoice::Docker;
    let want_docker = choice != EngineChoice::Podman;
    let mut hints = Vec::new();
    if want_podman && installed.podman.is_some() {
        hints.push(podman.to_string());
    }
    if want_docker && installed.docker.is_some() {
        hints.push(docker.to_string());
    }
    if hints.is_empty() {
        let install = match choice {
            EngineChoice::Docker => {
                "install Docker (`sudo apt install docker.io`; NixOS: \
                                     `virtualisation.docker.enable = true`), then start it"
            }
            _ => {
                "install Podman (`sudo apt install podman`; NixOS: \
                  `virtualisation.podman.enable = true`), then `systemctl --user enable --now podman.socket`"
            }
        };
        hints.push(install.to_string());
    }
    hints.push("or point DOCKER_HOST / CONTAINER_HOST at a running engine's socket".to_string());
    hints.join("; ")
}

/// Where to look for an engine, in priority order, without connecting. Well-known paths are
/// taken below the host root; `$DOCKER_HOST` and `$CONTAINER_HOST` are used as given.
pub fn candidates(choice: EngineChoice, env: &ProbeEnv) -> Vec<SocketCandidate> {
    let well_known = |path: String| -> String {
        let real = env
            .host_root
            .resolve(&path)
            .unwrap_or_else(|_| env.host_root.join(&path));
        format!("unix://{}", real.display())
    };
    let from_env = |value: &str| -> String {
        if value.starts_with('/') {
            format!("unix://{value}")
        } else {
            value.to_string()
        }
    };
    let xdg = env
        .xdg_runtime_dir
        .as_ref()
        .map(|d| d.display().to_string());
    let docker_host = env.docker_host.as_deref().map(|v| SocketCandidate {
        address: from_env(v),
        source: CandidateSource::DockerHostEnv,
    });
    let container_host = env.container_host.as_deref().map(|v| SocketCandidate {
        address: from_env(v),
        source: CandidateSource::ContainerHostEnv,
    });
    let rootless_podman = xdg.as_ref().map(|d| SocketCandidate {
        address: well_known(format!("{d}/podman/podman.sock")),
        source: CandidateSource::RootlessPodman,
    });
    let system_podman = Some(SocketCandidate {
        address: well_known("/run/podman/podman.sock".into()),
        source: CandidateSource::SystemPodman,
    });
    let system_docker = Some(SocketCandidate {
        address: well_known("/var/run/docker.sock".into()),
        source: CandidateSource::SystemDocker,
    });
    let rootless_docker = xdg.as_ref().map(|d| SocketCandidate {
        address: well_known(format!("{d}/docker.sock")),
        source: CandidateSource::RootlessDocker,
    });
    let ordered = match choice {
        EngineChoice::Auto => vec![
            docker_host,
            container_host,
            rootless_podman,
            system_podman,
            system_docker,
            rootless_docker,
        ],
        // Podman may also sit behind DOCKER_HOST or docker.sock (podman-docker).
        EngineChoice::Podman => vec![
            container_host,
            rootless_podman,
            system_podman,
            docker_host,
            system_docker,
            rootless_docker,
        ],
        EngineChoice::Docker => vec![docker_host, system_docker, rootless_docker],
    };
    let mut list: Vec<SocketCandidate> = Vec::new();
    for candidate in ordered.into_iter().flatten() {
        if !list.iter().any(|seen| seen.address == candidate.address) {
            list.push(candidate);
        }
    }
    list
}

/// Tries every candidate concurrently, each within `env.engine_timeout`, and picks the first
/// (in priority order) that answers with a kind `choice` accepts.
pub async fn probe(choice: EngineChoice, env: &ProbeEnv) -> EngineProbe {
    let list = candidates(choice, env);
    let results = futures::future::join_all(
        list.iter()
            .map(|candidate| try_address(&candidate.address, env.engine_timeout)),
    )
    .await;
    let mut engines: Vec<Engine> = Vec::new();
    let mut attempts = Vec::with_capacity(list.len());
    for (candidate, result) in list.into_iter().zip(results) {
        let outcome = match result {
            Ok(found) if !choice.accepts(found.kind) => {
                ProbeOutcome::WrongKind { kind: found.kind }
            }
            Ok(found) => {
                let outcome = ProbeOutcome::Connected {
                    kind: found.kind,
                    version: found.version.clone(),
                    api_version: found.api_version.clone(),
                };
                engines.push(found);
                outcome
            }
            Err(outcome) => outcome,
        };
        debug!(address = %candidate.address, %outcome, "engine candidate");
        attempts.push(ProbeAttempt { candidate, outcome });
    }
    EngineProbe {
        engine: engines.first().cloned(),
        engines,
        attempts,
    }
}

/// Connects to the engine `choice` selects, or explains what was tried and how to fix it.
pub async fn connect(choice: EngineChoice, env: &ProbeEnv) -> Result<Engine, EngineError> {
    let result = probe(choice, env).await;
    result.engine.ok_or_else(|| EngineError::NotFound {
        choice,
        attempts: result.attempts,
        installed: installed(env),
    })
}

/// Connects to one address (`unix:///path`, a bare `/path`, or `tcp://host:port`), identifies
/// the engine and its API version (one `GET /_ping`; `GET /version` only when the ping's
/// headers do not tell) and negotiates the API version, within `timeout`.
pub async fn connect_to(address: &str, timeout: Duration) -> Result<Engine, ProbeOutcome> {
    let address = if address.starts_with('/') {
        format!("unix://{address}")
    } else {
        address.to_string()
    };
    try_address(&address, timeout).await
}

async fn try_address(address: &str, timeout: Duration) -> Result<Engine, ProbeOutcome> {
    let timeout_secs = timeout.as_secs().max(1);
    let make_client = |version: &ClientVersion| {
        if let Some(path) = address.strip_prefix("unix://") {
            Docker::connect_with_unix(path, timeout_secs, version)
        } else {
            Docker::connect_with_http(address, timeout_secs, version)
        }
    };
    let endpoint = if let Some(path) = address.strip_prefix("unix://") {
        match std::fs::metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProbeOutcome::Missing);
            }
            Err(error) => {
                return Err(ProbeOutcome::Failed {
                    error: format!("cannot stat {path}: {error}"),
                });
            }
            Ok(meta) if !meta.file_type().is_socket() => return Err(ProbeOutcome::NotASocket),
            Ok(_) => Endpoint::Unix(path.into()),
        }
    } else if let Some(endpoint) = Endpoint::parse(address) {
        endpoint
    } else {
        return Err(ProbeOutcome::Unsupported {
            reason: format!(
                "{address}: only unix:// and tcp:// addresses are probed (forward an ssh:// \
                 engine's socket locally)"
            ),
        });
    };
    let failed = |error: bollard::errors::Error| ProbeOutcome::Failed {
        error: error_chain(&error),
    };
    let identify = async {
        // `GET /_ping` answers in a few ms and its headers name the engine; `GET /version`
        // (~0.5 s on Podman, which gathers runtime details for it) only when they do not.
        if let Some(found) = ping(&endpoint, timeout).await? {
            return Ok(found);
        }
        debug!(%address, "/_ping headers do not identify the engine; asking /version");
        let probe_client = make_client(API_DEFAULT_VERSION).map_err(failed)?;
        let version = probe_client.version().await.map_err(failed)?;
        let (kind, engine_version) = classify(&version);
        Ok(Identity {
            kind,
            version: engine_version,
            api_version: version.api_version,
        })
    };
    let identity = match tokio::time::timeout(timeout, identify).await {
        Err(_) => {
            return Err(ProbeOutcome::TimedOut {
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            });
        }
        Ok(result) => result?,
    };
    // Building the client makes no request, so negotiation costs no extra round trip.
    let negotiated = negotiate(identity.api_version.as_deref());
    let client = make_client(&negotiated).map_err(failed)?;
    Ok(Engine {
        kind: identity.kind,
        socket: address.to_string(),
        version: identity.version,
        api_version: negotiated.to_string(),
        client,
    })
}

/// An engine's kind, version and (unnegotiated) API version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    kind: EngineKind,
    version: String,
    api_version: Option<String>,
}

/// Sends `GET /_ping` and identifies the engine from the response headers; `Ok(None)` when
/// they do not say enough (or the answer is not a success).
async fn ping(endpoint: &Endpoint, timeout: Duration) -> Result<Option<Identity>, ProbeOutcome> {
    let answer = http_client::request(endpoint, ::http::Method::GET, "/_ping", None, timeout)
        .await
        .map_err(|error| match error {
            HttpError::Timeout { .. } => ProbeOutcome::TimedOut {
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            },
            HttpError::Connect { source, .. } => ProbeOutcome::Failed {
                error: error_chain(&source),
            },
            other => ProbeOutcome::Failed {
                error: format!("GET /_ping: {other}"),
            },
        })?;
    if !answer.status.is_success() {
        debug!(status = %answer.status, "GET /_ping did not succeed");
        return Ok(None);
    }
    Ok(identify_by_headers(&answer.headers))
}

/// Identifies an engine from `GET /_ping` response headers: Podman sends
/// `Libpod-Api-Version` and `Server: Libpod/<version> (<os>)`, Docker
/// `Server: Docker/<version> (<os>)`; both send `Api-Version`. `None` when the API version or
/// the engine is not evident.
fn identify_by_headers(headers: &http::HeaderMap) -> Option<Identity> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let api_version = text("api-version").filter(|v| parse_api_version(v).is_some())?;
    // `Server: Name/version (os)`.
    let server = text("server").and_then(|server| {
        let product = server.split_whitespace().next()?;
        let (name, version) = product.split_once('/')?;
        (!version.is_empty()).then_some((name, version))
    });
    let libpod = text("libpod-api-version");
    let (kind, version) = match (server, libpod) {
        (Some((name, version)), _) if name.eq_ignore_ascii_case("libpod") => {
            (EngineKind::Podman, version)
        }
        (_, Some(version)) => (EngineKind::Podman, version),
        (Some((name, version)), None) if name.eq_ignore_ascii_case("docker") => {
            (EngineKind::Docker, version)
        }
        _ => return None,
    };
    Some(Identity {
        kind,
        version: version.to_string(),
        api_version: Some(api_version.to_string()),
    })
}

/// `major.minor` as a client version.
fn parse_api_version(text: &str) -> Option<ClientVersion> {
    let (major, minor) = text.trim().split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// The API version to speak: the server's when it is older than this client's, as
/// `Docker::negotiate_version` decides.
fn negotiate(server_api: Option<&str>) -> ClientVersion {
    match server_api.and_then(parse_api_version) {
        Some(server) if server < *API_DEFAULT_VERSION => server,
        _ => *API_DEFAULT_VERSION,
    }
}

/// Tells Podman from Docker by the `Components` of `GET /version`: Podman lists a
/// "Podman Engine" component and fills the Docker fields with its own version.
fn classify(version: &bollard::models::SystemVersion) -> (EngineKind, String) {
    let podman = version
        .components
        .iter()
        .flatten()
        .find(|component| component.name.to_ascii_lowercase().contains("podman"));
    match podman {
        Some(component) => (EngineKind::Podman, component.version.clone()),
        None => (
            EngineKind::Docker,
            version
                .version
                .clone()
                .unwrap_or_else(|| "unknown".to_string()),
        ),
    }
}

/// An error and its causes in one line (`nanna_model::error_chain`), with advice for a
/// permission problem.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = nanna_model::error_chain(error);
    if text.contains("Permission denied") {
        text.push_str(
            " (add yourself to the socket's group, e.g. `docker`, or use rootless Podman)",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostRoot;

    fn env_with(docker_host: Option<&str>, xdg: Option<&str>) -> ProbeEnv {
        let mut env = ProbeEnv::isolated(HostRoot::system());
        env.docker_host = docker_host.map(str::to_string);
        env.xdg_runtime_dir = xdg.map(Into::into);
        env
    }

    #[test]
    fn candidate_order_and_dedup() {
        let env = env_with(Some("unix:///var/run/docker.sock"), Some("/run/user/1000"));
        let auto: Vec<_> = candidates(EngineChoice::Auto, &env)
            .into_iter()
            .map(|c| (c.address, c.source))
            .collect();
        assert_eq!(
            auto,
            vec![
                (
                    "unix:///var/run/docker.sock".into(),
                    CandidateSource::DockerHostEnv
                ),
                (
                    "unix:///run/user/1000/podman/podman.sock".into(),
                    CandidateSource::RootlessPodman
                ),
                (
                    "unix:///run/podman/podman.sock".into(),
                    CandidateSource::SystemPodman
                ),
                (
                    "unix:///run/user/1000/docker.sock".into(),
                    CandidateSource::RootlessDocker
                ),
            ]
        );
        let docker: Vec<_> = candidates(EngineChoice::Docker, &env)
            .into_iter()
            .map(|c| c.source)
            .collect();
        assert_eq!(
            docker,
            vec![
                CandidateSource::DockerHostEnv,
                CandidateSource::RootlessDocker
            ]
        );
    }

    #[test]
    fn well_known_sockets_live_below_the_host_root() {
        let dir = tempfile::tempdir().unwrap();
        let env = ProbeEnv::isolated(HostRoot::new(dir.path()));
        let list = candidates(EngineChoice::Docker, &env);
        assert_eq!(list.len(), 1);
        assert_eq!(
            list[0].address,
            format!("unix://{}/var/run/docker.sock", dir.path().display())
        );
    }

    #[test]
    fn negotiation_never_goes_above_the_client() {
        assert_eq!(negotiate(Some("1.41")).to_string(), "1.41");
        assert_eq!(
            negotiate(Some("9.99")).to_string(),
            API_DEFAULT_VERSION.to_string()
        );
        assert_eq!(
            negotiate(Some("garbage")).to_string(),
            API_DEFAULT_VERSION.to_string()
        );
        assert_eq!(negotiate(None).to_string(), API_DEFAULT_VERSION.to_string());
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn ping_headers_identify_podman() {
        // As Podman 4.3.1 answers `GET /_ping`.
        let found = identify_by_headers(&headers(&[
            ("Api-Version", "1.41"),
            ("Libpod-Api-Version", "4.3.1"),
            ("Libpod-Buildah-Version", "1.28.2"),
            ("Server", "Libpod/4.3.1 (linux)"),
        ]));
        let podman = Identity {
            kind: EngineKind::Podman,
            version: "4.3.1".into(),
            api_version: Some("1.41".into()),
        };
        assert_eq!(found.as_ref(), Some(&podman));
        // Either Podman header alone is enough.
        assert_eq!(
            identify_by_headers(&headers(&[
                ("api-version", "1.41"),
                ("libpod-api-version", "4.3.1")
            ])),
            Some(podman.clone())
        );
        assert_eq!(
            identify_by_headers(&headers(&[
                ("Api-Version", "1.41"),
                ("Server", "Libpod/4.3.1")
            ])),
            Some(podman)
        );
    }

    #[test]
    fn ping_headers_identify_docker() {
        // As Docker 20.10 answers `GET /_ping`.
        let found = identify_by_headers(&headers(&[
            ("Api-Version", "1.41"),
            ("Docker-Experimental", "false"),
            ("Ostype", "linux"),
            ("Server", "Docker/20.10.24+dfsg1 (linux)"),
        ]));
        assert_eq!(
            found,
            Some(Identity {
                kind: EngineKind::Docker,
                version: "20.10.24+dfsg1".into(),
                api_version: Some("1.41".into()),
            })
        );
    }

    #[test]
    fn incomplete_ping_headers_leave_it_to_version() {
        // No headers, no API version, an unparsable API version, an unknown or bare server.
        for pairs in [
            &[][..],
            &[("Server", "Docker/20.10.24 (linux)")][..],
            &[("Libpod-Api-Version", "4.3.1")][..],
            &[("Api-Version", "garbage"), ("Server", "Docker/20.10.24")][..],
            &[("Api-Version", "1.41")][..],
            &[("Api-Version", "1.41"), ("Server", "nginx/1.22.1")][..],
            &[("Api-Version", "1.41"), ("Server", "Docker")][..],
            &[("Api-Version", "1.41"), ("Server", "Docker/ (linux)")][..],
        ] {
            assert_eq!(identify_by_headers(&headers(pairs)), None, "{pairs:?}");
        }
    }

    /// A fake engine on a unix socket: answers `/_ping` with `ping_headers` and `/version`
    /// with a Podman-like body, closing each connection; returns the request lines it saw.
    async fn fake_engine(
        ping_headers: &'static str,
    ) -> (
        tempfile::TempDir,
        String,
        std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).to_string();
                let line = text.lines().next().unwrap_or_default().to_string();
                let (headers, body) = if line.contains("/_ping") {
                    (ping_headers, "OK".to_string())
                } else {
                    let body = r#"{"Version":"4.9.9","ApiVersion":"1.40","Components":[{"Name":"Podman Engine","Version":"4.9.9"}]}"#;
                    ("Content-Type: application/json\r\n", body.to_string())
                };
                log.lock().unwrap().push(line);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        let address = format!("unix://{}", path.display());
        (dir, address, seen)
    }

    #[tokio::test]
    async fn identifying_headers_need_only_the_ping() {
        let (_dir, address, seen) =
            fake_engine("Api-Version: 1.39\r\nServer: Docker/18.09.1 (linux)\r\n").await;
        let engine = connect_to(&address, Duration::from_secs(2)).await.unwrap();
        assert_eq!(engine.kind, EngineKind::Docker);
        assert_eq!(engine.version, "18.09.1");
        assert_eq!(engine.api_version, "1.39");
        assert_eq!(engine.client.client_version().to_string(), "1.39");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].starts_with("GET /_ping "), "{seen:?}");
    }

    #[tokio::test]
    async fn without_identifying_headers_version_decides() {
        let (_dir, address, seen) = fake_engine("").await;
        let engine = connect_to(&address, Duration::from_secs(2)).await.unwrap();
        assert_eq!(engine.kind, EngineKind::Podman);
        assert_eq!(engine.version, "4.9.9");
        assert_eq!(engine.api_version, "1.40");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].starts_with("GET /_ping "), "{seen:?}");
        assert!(seen[1].contains("/version "), "{seen:?}");
    }

    #[test]
    fn hint_depends_on_what_is_installed() {
        let none = InstalledEngines::default();
        assert!(start_hint(EngineChoice::Auto, &none).contains("install Podman"));
        assert!(start_hint(EngineChoice::Docker, &none).contains("install Docker"));
        let podman = InstalledEngines {
            podman: Some("/usr/bin/podman".into()),
            docker: None,
        };
        assert!(start_hint(EngineChoice::Auto, &podman).contains("podman.socket"));
    }
}

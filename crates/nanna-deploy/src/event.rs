//! [`DeployEvent`]: what the library reports while it works. The library never prints; the
//! binary renders these for people (lines and `indicatif` progress bars on stderr) or as
//! JSON lines (`--json`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stack::spec::Service;

/// What a long transfer is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "subject", rename_all = "kebab-case")]
pub enum Transfer {
    /// An engine pulling an image from a registry (per layer).
    ImagePull(String),
    /// An archive streamed into the engine (`--image-archive`, `images load`, `images build`).
    ImageLoad(String),
    /// The model server downloading a model (per layer).
    ModelPull(String),
}

/// One event of a deploy command, in the order things happen.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeployEvent {
    /// Progress of a transfer; `item` is a layer (digest or id) or the archive, `current` and
    /// `total` are bytes when known.
    Progress {
        /// What is transferred.
        transfer: Transfer,
        /// The layer or file, when the transfer has several.
        item: Option<String>,
        /// What the server says it is doing (`downloading`, `Pull complete`...).
        status: String,
        /// Bytes done.
        current: Option<u64>,
        /// Bytes in all.
        total: Option<u64>,
    },
    /// A transfer finished.
    Done {
        /// What was transferred.
        transfer: Transfer,
        /// What it produced (image references loaded), if anything.
        result: Vec<String>,
    },
    /// A change to the engine's objects (`create network nanna-x`).
    Step {
        /// `create`, `remove`, `start`, `restart`, `stop`, `adopt`.
        action: &'static str,
        /// `container`, `pod`, `network`, `volume`.
        object: &'static str,
        /// Its name.
        name: String,
        /// Why, when there is more to say (`settings changed`, the image).
        detail: Option<String>,
    },
    /// A service is slow to answer its health probe (sent once, after 2 s).
    Waiting {
        /// The service.
        service: Service,
        /// Where it is probed.
        url: String,
    },
    /// A service answered its health probe.
    Healthy {
        /// The service.
        service: Service,
        /// Milliseconds since the wait started.
        after_ms: u64,
    },
    /// Another run holds the stack; this one waits.
    LockWait {
        /// The stack.
        stack: String,
        /// Who holds it.
        holder: String,
    },
    /// Something a person should know (not an error): `listen_public`, `image_not_updated`.
    Warning {
        /// Stable identifier.
        code: &'static str,
        /// What it is about.
        message: String,
        /// What to do about it.
        fix: Option<String>,
    },
    /// A failure is being rolled back.
    RollingBack {
        /// The failure, in short.
        reason: String,
    },
}

/// Where a library call sends its events.
pub trait Reporter: Send + Sync {
    /// Receives one event.
    fn report(&self, event: DeployEvent);
}

impl<F: Fn(DeployEvent) + Send + Sync> Reporter for F {
    fn report(&self, event: DeployEvent) {
        self(event)
    }
}

/// Drops every event (library callers that do not care).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _: DeployEvent) {}
}

/// Keeps every event, for tests and callers that inspect them afterwards.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Vec<DeployEvent>>);

impl Recorder {
    /// A recorder with no events yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far.
    pub fn events(&self) -> Vec<DeployEvent> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Reporter for Recorder {
    fn report(&self, event: DeployEvent) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event);
    }
}

/// Thins out progress events of one transfer so a fast download does not flood a JSON
/// consumer: at most one per item every [`ProgressThrottle::EVERY`], plus every change of
/// status and the last one.
#[derive(Debug)]
pub(crate) struct ProgressThrottle {
    last: std::collections::HashMap<Option<String>, (Instant, String)>,
}

impl ProgressThrottle {
    /// Minimum time between two progress events of one item with the same status.
    pub(crate) const EVERY: Duration = Duration::from_millis(100);

    pub(crate) fn new() -> Self {
        Self {
            last: std::collections::HashMap::new(),
        }
    }

    /// Whether to send a progress event for `item` now.
    pub(crate) fn pass(
        &mut self,
        item: &Option<String>,
        status: &str,
        current: Option<u64>,
        total: Option<u64>,
    ) -> bool {
        let now = Instant::now();
        let finished = matches!((current, total), (Some(c), Some(t)) if c >= t);
        match self.last.get(item) {
            Some((at, seen)) if seen == status && !finished && now - *at < Self::EVERY => false,
            _ => {
                self.last.insert(item.clone(), (now, status.to_string()));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_their_kind() {
        let event = DeployEvent::Progress {
            transfer: Transfer::ModelPull("llama3.1:8b".into()),
            item: Some("sha256:abc".into()),
            status: "pulling abc".into(),
            current: Some(5),
            total: Some(10),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "progress");
        assert_eq!(json["transfer"]["kind"], "model-pull");
        assert_eq!(json["transfer"]["subject"], "llama3.1:8b");
        assert_eq!(json["current"], 5);
    }

    #[test]
    fn the_throttle_keeps_status_changes_and_the_end() {
        let mut throttle = ProgressThrottle::new();
        let item = Some("layer".to_string());
        assert!(throttle.pass(&item, "downloading", Some(1), Some(10)));
        assert!(!throttle.pass(&item, "downloading", Some(2), Some(10)));
        assert!(throttle.pass(&item, "downloading", Some(10), Some(10)));
        assert!(throttle.pass(&item, "verifying", None, None));
        assert!(throttle.pass(&Some("other".into()), "downloading", Some(1), Some(10)));
    }
}

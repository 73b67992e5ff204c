//! Connecting to the engine for stack commands.

use std::time::Duration;

use super::StackError;
use crate::engine::{self, Engine, EngineChoice};
use crate::host::ProbeEnv;

/// How long one engine request may take before bollard gives up waiting for its answer
/// (restarts wait up to 10 s for a container to stop; loading a large image takes a while).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Connects to the engine `choice` selects through [`engine::connect`] (one `GET /_ping` per
/// candidate; its error lists what was tried and how to start an engine), with a request
/// timeout long enough for image loads and restarts.
pub async fn connect(choice: EngineChoice, env: &ProbeEnv) -> Result<Engine, StackError> {
    let mut engine = engine::connect(choice, env).await?;
    engine.client.set_timeout(REQUEST_TIMEOUT);
    Ok(engine)
}

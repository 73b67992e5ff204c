//! Where each stack runs. The engine knows its objects (the `dev.nanna.stack` label), but
//! not every engine is the one `--engine auto` would pick: a small file per stack,
//! `<state dir>/stacks/<stack>.json`, remembers the engines it was deployed on, so `down`,
//! `status`, `logs`, `update` and a later `up` find it without `--engine`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::StackError;
use super::state;
use crate::engine::{self, Engine, EngineChoice, EngineKind};
use crate::host::ProbeEnv;

/// An engine a stack was deployed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineRecord {
    /// Its kind.
    pub kind: EngineKind,
    /// Its address (`unix:///run/podman/podman.sock`).
    pub address: String,
}

impl EngineRecord {
    fn of(engine: &Engine) -> Self {
        Self {
            kind: engine.kind,
            address: engine.socket.clone(),
        }
    }
}

/// What is remembered about a stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRecord {
    /// The engines it was deployed on, most recent last.
    pub engines: Vec<EngineRecord>,
}

fn path(env: &ProbeEnv, stack: &str) -> Option<PathBuf> {
    env.state_dir
        .as_ref()
        .map(|dir| dir.join("stacks").join(format!("{stack}.json")))
}

/// The record of `stack` (empty when none is kept or it cannot be read).
pub fn read(env: &ProbeEnv, stack: &str) -> StackRecord {
    path(env, stack)
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn write(env: &ProbeEnv, stack: &str, record: &StackRecord) -> Result<(), StackError> {
    let Some(path) = path(env, stack) else {
        return Ok(());
    };
    let io = |what: String| move |source| StackError::Io { what, source };
    if record.engines.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(io(format!("remove {}", path.display()))(error))
            }
            _ => Ok(()),
        };
    }
    let dir = path.parent().unwrap_or(&path);
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let text = serde_json::to_vec_pretty(record).unwrap_or_default();
    // Write then rename: a reader never sees half a file.
    let partial = path.with_extension(format!("json.{}", std::process::id()));
    std::fs::write(&partial, text).map_err(io(format!("write {}", partial.display())))?;
    std::fs::rename(&partial, &path).map_err(io(format!("write {}", path.display())))
}

/// Remembers that `stack` runs on `engine`.
pub(crate) fn remember(env: &ProbeEnv, stack: &str, engine: &Engine) -> Result<(), StackError> {
    let mut record = read(env, stack);
    let entry = EngineRecord::of(engine);
    if record.engines.last() == Some(&entry) {
        return Ok(());
    }
    record.engines.retain(|e| e != &entry);
    record.engines.push(entry);
    write(env, stack, &record)
}

/// Forgets that `stack` runs on `engine` (after `down`, or a rollback that left nothing).
pub(crate) fn forget(env: &ProbeEnv, stack: &str, engine: &Engine) -> Result<(), StackError> {
    let mut record = read(env, stack);
    let entry = EngineRecord::of(engine);
    if !record.engines.contains(&entry) {
        return Ok(());
    }
    record.engines.retain(|e| e != &entry);
    write(env, stack, &record)
}

/// The engine that holds `stack`, for commands that manage an existing stack (and for
/// `up`, which should keep a stack where it is):
///
/// 1. `--engine podman|docker`: that engine.
/// 2. The engines the stack was deployed on (its record): the one that answers and has
///    the stack; several that have it are ambiguous; a remembered engine that does not
///    answer is an error that names it.
/// 3. Otherwise every engine that answers is asked for the stack's objects: exactly one
///    has them, or several (ambiguous), or none: then the first engine that answers.
pub async fn locate(
    choice: EngineChoice,
    env: &ProbeEnv,
    stack: &str,
) -> Result<Engine, StackError> {
    if choice != EngineChoice::Auto {
        return super::connect(choice, env).await;
    }
    let record = read(env, stack);
    if !record.engines.is_empty() {
        let mut holding = Vec::new();
        let mut down = None;
        for entry in record.engines.iter().rev() {
            match engine::connect_to(&entry.address, env.engine_timeout).await {
                Ok(found) if found.kind == entry.kind => {
                    let found = with_request_timeout(found);
                    if record.engines.len() == 1 || has_stack(&found, stack).await? {
                        holding.push(found);
                    }
                }
                Ok(_) => {}
                Err(outcome) => {
                    down.get_or_insert((entry.clone(), outcome.to_string()));
                }
            }
        }
        match holding.len() {
            1 => return Ok(holding.remove(0)),
            0 => {
                if let Some((entry, reason)) = down {
                    return Err(StackError::RememberedEngineDown {
                        stack: stack.to_string(),
                        engine: entry.kind.as_str().to_string(),
                        address: entry.address,
                        reason,
                    });
                }
            }
            _ => return Err(ambiguous(stack, &holding)),
        }
    }
    let probe = engine::probe(EngineChoice::Auto, env).await;
    if probe.engines.len() > 1 {
        let mut holding = Vec::new();
        for found in &probe.engines {
            if has_stack(found, stack).await? {
                holding.push(found.clone());
            }
        }
        match holding.len() {
            0 => {}
            1 => return Ok(with_request_timeout(holding.remove(0))),
            _ => return Err(ambiguous(stack, &holding)),
        }
    }
    match probe.engine {
        Some(found) => Ok(with_request_timeout(found)),
        None => Err(engine::EngineError::NotFound {
            choice,
            attempts: probe.attempts,
            installed: engine::installed(env),
        }
        .into()),
    }
}

fn with_request_timeout(mut engine: Engine) -> Engine {
    engine.client.set_timeout(super::REQUEST_TIMEOUT);
    engine
}

fn ambiguous(stack: &str, engines: &[Engine]) -> StackError {
    StackError::AmbiguousEngine {
        stack: stack.to_string(),
        engines: engines
            .iter()
            .map(|e| format!("{} at {}", e.kind.as_str(), e.socket))
            .collect(),
    }
}

async fn has_stack(engine: &Engine, stack: &str) -> Result<bool, StackError> {
    Ok(!state::actual(engine, stack).await?.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostRoot;

    #[test]
    fn records_remember_and_forget_engines() {
        let dir = tempfile::tempdir().unwrap();
        let mut env = ProbeEnv::isolated(HostRoot::system());
        env.state_dir = Some(dir.path().to_path_buf());
        let podman = EngineRecord {
            kind: EngineKind::Podman,
            address: "unix:///p.sock".into(),
        };
        let docker = EngineRecord {
            kind: EngineKind::Docker,
            address: "unix:///d.sock".into(),
        };
        let mut record = StackRecord::default();
        record.engines.push(podman.clone());
        record.engines.push(docker.clone());
        write(&env, "s", &record).unwrap();
        assert_eq!(read(&env, "s"), record);
        record.engines.clear();
        write(&env, "s", &record).unwrap();
        assert!(!dir.path().join("stacks/s.json").exists());
        // Without a state directory nothing is kept.
        let none = ProbeEnv::isolated(HostRoot::system());
        write(
            &none,
            "s",
            &StackRecord {
                engines: vec![podman],
            },
        )
        .unwrap();
        assert_eq!(read(&none, "s"), StackRecord::default());
    }
}

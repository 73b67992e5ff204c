//! Waiting for a service to become healthy while watching its container, so that a failure
//! is reported when it happens rather than when the timeout runs out: a container that
//! exits or that its restart policy keeps restarting fails the wait at once with its exit
//! code and last log lines; an engine that stops answering fails it at once too.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::probe::{self, Health};
use super::spec::Service;
use super::state;
use super::{StackContext, StackError};
use crate::event::DeployEvent;

/// How long a single health probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// After this long without an answer, [`DeployEvent::Waiting`] is sent.
const SLOW: Duration = Duration::from_secs(2);
/// Log lines quoted when a service fails.
pub(crate) const LOG_LINES: usize = 20;

/// What to wait for.
#[derive(Debug, Clone)]
pub(crate) struct Target<'a> {
    /// The service.
    pub service: Service,
    /// Its container.
    pub container: &'a str,
    /// Where it answers HTTP from the host.
    pub probe_addr: SocketAddr,
    /// Whether this run created the container: then any restart is a crash. Otherwise
    /// only restarts after the wait started count.
    pub fresh: bool,
}

/// Waits until `target` answers its health probe, within `deadline`; `timeout` is the wait
/// the user gave (for the message). Cancellation ends the wait with
/// [`StackError::Interrupted`].
pub(crate) async fn healthy(
    ctx: &StackContext<'_>,
    target: &Target<'_>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), StackError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(25);
    let mut announced = false;
    let mut baseline = None;
    loop {
        let probed = tokio::select! {
            health = probe::probe(target.service, target.probe_addr, PROBE_TIMEOUT) => health,
            () = ctx.cancel.cancelled() => return Err(StackError::Interrupted),
        };
        let last = match probed {
            Health::Healthy => {
                ctx.events.report(DeployEvent::Healthy {
                    service: target.service,
                    after_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
                return Ok(());
            }
            Health::Unhealthy { detail } => detail,
        };
        watch(ctx, target, &mut baseline).await?;
        if Instant::now() >= deadline {
            return Err(StackError::Unhealthy {
                service: target.service.as_str().to_string(),
                timeout,
                last,
                logs: state::tail_logs(ctx.engine, target.container, LOG_LINES).await,
            });
        }
        if !announced && start.elapsed() >= SLOW {
            ctx.events.report(DeployEvent::Waiting {
                service: target.service,
                url: format!(
                    "http://{}{}",
                    target.probe_addr,
                    probe::health_path(target.service)
                ),
            });
            announced = true;
        }
        let pause = delay.min(deadline.saturating_duration_since(Instant::now()));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = ctx.cancel.cancelled() => return Err(StackError::Interrupted),
        }
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// The exit code of a container in a restart loop. Both engines reset it to 0 while the
/// container runs again (Docker keeps it while `Restarting`, Podman while stopped), so look
/// a few times for a moment between two runs.
async fn last_exit_code(
    ctx: &StackContext<'_>,
    container: &str,
    seen: &state::Liveness,
) -> Option<i64> {
    let between =
        |s: &state::Liveness| (s.restarting || !s.running) && s.exit_code.is_some_and(|c| c != 0);
    if between(seen) {
        return seen.exit_code;
    }
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        match state::liveness(ctx.engine, container).await {
            Ok(Some(now)) if between(&now) => {
                return now.exit_code;
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    seen.exit_code
}

/// Fails when the container exited, is being restarted, or is gone, or when the engine
/// does not answer.
async fn watch(
    ctx: &StackContext<'_>,
    target: &Target<'_>,
    baseline: &mut Option<i64>,
) -> Result<(), StackError> {
    let service = target.service.as_str().to_string();
    let Some(state) = state::liveness(ctx.engine, target.container).await? else {
        return Err(StackError::Exited {
            service,
            exit_code: None,
            detail: format!("container {} was removed while starting", target.container),
            logs: "  (the container is gone)".to_string(),
        });
    };
    let base = *baseline.get_or_insert(if target.fresh { 0 } else { state.restart_count });
    let restarted = state.restart_count > base;
    if state.restarting || restarted {
        return Err(StackError::Exited {
            service,
            exit_code: last_exit_code(ctx, target.container, &state).await,
            detail: format!(
                "exited and is being restarted by its restart policy (restarted {} time{})",
                state.restart_count,
                if state.restart_count == 1 { "" } else { "s" }
            ),
            logs: state::tail_logs(ctx.engine, target.container, LOG_LINES).await,
        });
    }
    if !state.running {
        return Err(StackError::Exited {
            service,
            exit_code: state.exit_code,
            detail: match state.error {
                Some(error) => format!("exited ({error})"),
                None => "exited".to_string(),
            },
            logs: state::tail_logs(ctx.engine, target.container, LOG_LINES).await,
        });
    }
    Ok(())
}

//! One module per subcommand, plus what they share: the engine, GPU and stack flags, the
//! probe environment, and the session (the signal that cancels a run).

pub mod detect;
mod detect_text;
pub mod down;
pub mod export;
pub mod images;
pub mod logs;
pub mod restart;
pub mod shell;
pub mod status;
pub mod up;
pub mod update;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nanna_deploy::engine::{Engine, EngineChoice};
use nanna_deploy::host::{HostRoot, ProbeEnv};
use nanna_deploy::stack::{self, StackContext, StackError, validate};
use nanna_deploy::{GpuChoice, Reporter};
use tokio_util::sync::CancellationToken;

use crate::render::Output;

/// `--engine`.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArg {
    /// Container engine (auto: where the stack runs, else the first that answers).
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub engine: EngineChoice,
}

/// `--gpu` (and `GPU_SUPPORT`).
#[derive(Debug, Clone, clap::Args)]
pub struct GpuArg {
    /// GPU for the model server: auto picks the best usable one; forcing one the host lacks
    /// is an error.
    #[arg(
        long,
        value_enum,
        env = "GPU_SUPPORT",
        default_value = "auto",
        ignore_case = true
    )]
    pub gpu: GpuChoice,
}

/// `--name`: which stack.
#[derive(Debug, Clone, clap::Args)]
pub struct StackName {
    /// Stack name (prefixes every object: nanna-<name>-ollama...).
    #[arg(
        long = "name",
        default_value = "nanna",
        env = "NANNA_STACK",
        value_name = "STACK",
        value_parser = validate::stack_name
    )]
    pub name: String,
}

/// How long to wait for health and for another run's lock.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// How long services may take to become healthy, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
    /// How long to wait for another nanna-deploy changing the same stack, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub lock_timeout: u64,
}

impl WaitArgs {
    /// `up`/`update` options for `settings` with these timeouts.
    pub fn up_options(
        &self,
        settings: stack::StackSettings,
        image_archives: &[PathBuf],
        dry_run: bool,
        pull_timeout: u64,
    ) -> stack::UpOptions {
        let mut options = stack::UpOptions::new(settings);
        options.image_archives = image_archives.to_vec();
        options.dry_run = dry_run;
        options.timeout = secs(self.timeout);
        options.pull_timeout = secs(pull_timeout);
        options.lock_wait = secs(self.lock_timeout);
        options
    }
}

/// Which engine and stack, and how long to wait.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Engine.
    #[command(flatten)]
    pub engine: EngineArg,
    /// Stack.
    #[command(flatten)]
    pub stack: StackName,
    /// Waits.
    #[command(flatten)]
    pub waits: WaitArgs,
}

impl TargetArgs {
    /// The stack's name.
    pub fn name(&self) -> &str {
        &self.stack.name
    }
}

/// The probe environment of this process, with a host root override.
pub fn probe_env(host_root: Option<&PathBuf>) -> ProbeEnv {
    let mut env = ProbeEnv::from_process();
    // A loaded machine's Podman can take a second to answer /version.
    env.engine_timeout = Duration::from_secs(5);
    if let Some(root) = host_root {
        env.host_root = HostRoot::new(root);
    }
    env
}

/// A run of one command: the cancellation token that SIGINT and SIGTERM fire, and which of
/// them arrived.
pub struct Session {
    /// Fired by the first SIGINT or SIGTERM.
    pub cancel: CancellationToken,
    signal: Arc<AtomicI32>,
}

impl Session {
    /// Installs the signal handlers: the first signal cancels the run (which rolls back what
    /// it created), a second one exits at once.
    pub fn start(output: &Output) -> Self {
        let cancel = CancellationToken::new();
        let signal = Arc::new(AtomicI32::new(0));
        let (token, caught) = (cancel.clone(), signal.clone());
        let json = output.is_json();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut interrupt), Ok(mut terminate)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            let first = tokio::select! {
                _ = interrupt.recv() => libc::SIGINT,
                _ = terminate.recv() => libc::SIGTERM,
            };
            caught.store(first, Ordering::SeqCst);
            token.cancel();
            if !json {
                eprintln!(
                    "\ninterrupted: stopping (what this run created is removed; signal again to exit at once)"
                );
            }
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            eprintln!(
                "interrupted again: exiting without finishing; `nanna-deploy status` shows what is left"
            );
            std::process::exit(128 + first);
        });
        Self { cancel, signal }
    }

    /// The exit code for a failed run: 128 + the signal for an interrupted one, else 1.
    pub fn failure_code(&self, error: &StackError) -> ExitCode {
        let signal = self.signal.load(Ordering::SeqCst);
        if error.is_interrupted() || signal != 0 {
            let signal = if signal == 0 { libc::SIGINT } else { signal };
            ExitCode::from(u8::try_from(128 + signal).unwrap_or(130))
        } else {
            ExitCode::FAILURE
        }
    }

    /// The context for a stack operation on `engine`.
    pub fn context<'a>(
        &self,
        engine: &'a Engine,
        env: &'a ProbeEnv,
        events: &'a dyn Reporter,
    ) -> StackContext<'a> {
        StackContext {
            engine,
            env,
            events,
            cancel: self.cancel.clone(),
        }
    }

    /// Runs `work` unless a signal arrives first (for commands with nothing to roll back).
    pub async fn interruptible<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, StackError>>,
    ) -> Result<T, StackError> {
        tokio::select! {
            result = work => result,
            () = self.cancel.cancelled() => Err(StackError::Interrupted),
        }
    }
}

/// The engine holding `stack` (see [`stack::locate`]), unless a signal arrives first.
pub async fn locate(
    session: &Session,
    choice: EngineChoice,
    env: &ProbeEnv,
    name: &str,
) -> Result<Engine, StackError> {
    session
        .interruptible(stack::locate(choice, env, name))
        .await
}

/// Seconds as a duration.
pub fn secs(value: u64) -> Duration {
    Duration::from_secs(value)
}

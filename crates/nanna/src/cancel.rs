//! Ctrl-C while the agent works: the first press cancels the running turn, a second press
//! during the same run exits the process.

use std::io::Write;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::EXIT_CANCELLED;
use crate::render::Style;

/// Watches SIGINT for the duration of one run; stops watching when dropped.
#[derive(Debug)]
pub struct CtrlC {
    handle: JoinHandle<()>,
}

impl CtrlC {
    /// Starts watching; the first Ctrl-C cancels `token`, the second exits with 130.
    /// Must be called inside the runtime.
    pub fn watch(token: CancellationToken) -> Self {
        let handle = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            token.cancel();
            {
                let style = Style::stderr();
                let clear = if style.enabled() { "\r\x1b[K" } else { "\n" };
                let mut err = std::io::stderr().lock();
                let _ = writeln!(
                    err,
                    "{clear}{}",
                    style.dim("cancelling… (Ctrl-C again to quit)")
                );
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = writeln!(std::io::stderr());
                std::process::exit(i32::from(EXIT_CANCELLED));
            }
        });
        Self { handle }
    }
}

impl Drop for CtrlC {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

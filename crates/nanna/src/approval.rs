//! Approvers for the terminal: ask the person (y/n/always), or refuse with advice when
//! nobody can be asked.

use std::io::{BufRead, IsTerminal, Write};

use async_trait::async_trait;
use nanna_agent::{ApprovalDecision, ApprovalRequest, Approver};
use nanna_tools::Effect;
use tokio_util::sync::CancellationToken;

use crate::render::Style;

/// Asks on the terminal before each write or command: `y`, `n` or `a` (always). Stops
/// waiting for an answer when the run is cancelled, so no reader is left behind on stdin.
#[derive(Debug, Clone)]
pub struct TerminalApprover {
    cancel: CancellationToken,
}

impl TerminalApprover {
    /// An approver for the run that `cancel` cancels.
    pub fn new(cancel: CancellationToken) -> Self {
        Self { cancel }
    }
}

/// Waits until stdin has input; `false` when `cancel` fired first.
#[cfg(unix)]
fn wait_for_input(cancel: &CancellationToken) -> bool {
    while !cancel.is_cancelled() {
        let mut fd = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, and its count.
        let ready = unsafe { libc::poll(&mut fd, 1, 100) };
        if ready != 0 {
            // Input, end of file, or an error that the read will report.
            return true;
        }
    }
    false
}

#[cfg(not(unix))]
fn wait_for_input(cancel: &CancellationToken) -> bool {
    !cancel.is_cancelled()
}

/// Parses an answer; `None` when it is not one.
pub fn parse_answer(line: &str) -> Option<ApprovalDecision> {
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Some(ApprovalDecision::Yes),
        "n" | "no" | "" => Some(ApprovalDecision::No),
        "a" | "always" => Some(ApprovalDecision::Always),
        _ => None,
    }
}

fn ask_blocking(req: &ApprovalRequest, cancel: &CancellationToken) -> ApprovalDecision {
    let style = Style::stderr();
    let verb = match req.effect {
        Effect::Exec => "run",
        Effect::Write => "apply",
        Effect::ReadOnly => "allow",
    };
    let stdin = std::io::stdin();
    for _ in 0..3 {
        {
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "{} {verb} {}? {} ",
                style.yellow("?"),
                style.bold(&req.description),
                style.dim("[y]es / [n]o / [a]lways:")
            );
            let _ = err.flush();
        }
        if !wait_for_input(cancel) {
            eprintln!();
            return ApprovalDecision::No;
        }
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return ApprovalDecision::No,
            Ok(_) => {}
        }
        if let Some(decision) = parse_answer(&line) {
            return decision;
        }
        eprintln!("answer y, n or a");
    }
    ApprovalDecision::No
}

#[async_trait]
impl Approver for TerminalApprover {
    async fn approve(&self, req: &ApprovalRequest) -> ApprovalDecision {
        let req = req.clone();
        let cancel = self.cancel.clone();
        tokio::task::spawn_blocking(move || ask_blocking(&req, &cancel))
            .await
            .unwrap_or(ApprovalDecision::No)
    }
}

/// Refuses every request, telling the person how to allow them (stdin is not a terminal).
#[derive(Debug, Clone, Copy)]
pub struct NonInteractiveApprover;

#[async_trait]
impl Approver for NonInteractiveApprover {
    async fn approve(&self, req: &ApprovalRequest) -> ApprovalDecision {
        let style = Style::stderr();
        eprintln!(
            "{} declined `{}`: approval needed but stdin is not a terminal; re-run with \
             --full-auto (or --approval auto) to allow writes and commands",
            style.yellow("!"),
            req.description
        );
        ApprovalDecision::No
    }
}

/// The approver for a run of this process: the terminal when stdin is one, else refusal.
pub fn for_this_process(cancel: CancellationToken) -> Box<dyn Approver> {
    if std::io::stdin().is_terminal() {
        Box::new(TerminalApprover::new(cancel))
    } else {
        Box::new(NonInteractiveApprover)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        assert_eq!(parse_answer("y\n"), Some(ApprovalDecision::Yes));
        assert_eq!(parse_answer(" Always "), Some(ApprovalDecision::Always));
        assert_eq!(parse_answer("\n"), Some(ApprovalDecision::No));
        assert_eq!(parse_answer("maybe"), None);
    }
}

//! Rendering what the library reports: for people, lines on stderr and `indicatif`
//! progress bars (one per layer, with rate and ETA) when stderr is a terminal; with
//! `--json`, every event as a JSON line on stderr and the result or the error as one JSON
//! line on stdout.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use nanna_deploy::Reporter;
use nanna_deploy::event::{DeployEvent, Transfer};
use nanna_deploy::stack::{Service, StackError, fmt_duration};
use serde::Serialize;
use serde_json::json;

/// Where a command's output goes.
pub struct Output {
    json: bool,
    human: Option<Human>,
}

impl Output {
    /// Output for people, or JSON.
    pub fn new(json: bool) -> Self {
        Self {
            json,
            human: (!json).then(Human::new),
        }
    }

    /// Whether `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints a result: one JSON line on stdout.
    pub fn result<T: Serialize>(&self, value: &T) -> ExitCode {
        match serde_json::to_string(value) {
            Ok(text) => {
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{text}");
                let _ = stdout.flush();
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot serialise the result: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// A line for people on stderr (between progress bars).
    pub fn note(&self, text: fmt::Arguments<'_>) {
        match &self.human {
            Some(human) => human.line(&text.to_string()),
            None => eprintln!("{text}"),
        }
    }

    /// Reports a failure: `error: ...` on stderr for people; with `--json`,
    /// `{"error": {"code", "message", "fix", ...}}` on stdout. Returns `code`.
    pub fn error(&self, error: &StackError, code: ExitCode) -> ExitCode {
        if let Some(human) = &self.human {
            human.clear();
        }
        if self.json {
            let mut object = json!({
                "code": error.code(),
                "message": error.problem(),
                "fix": error.fix(),
            });
            if let Some((removed, left)) = error.rollback() {
                object["removed"] = json!(removed);
                object["left"] = json!(left);
            }
            self.result(&json!({ "error": object }));
        } else {
            eprintln!("error: {error}");
        }
        code
    }
}

impl Reporter for Output {
    fn report(&self, event: DeployEvent) {
        match &self.human {
            Some(human) => human.event(event),
            None => {
                if let Ok(text) = serde_json::to_string(&event) {
                    eprintln!("{text}");
                }
            }
        }
    }
}

/// Progress for people.
struct Human {
    multi: MultiProgress,
    tty: bool,
    state: Mutex<HumanState>,
}

#[derive(Default)]
struct HumanState {
    bars: HashMap<(Transfer, Option<String>), ProgressBar>,
    statuses: HashMap<(Transfer, Option<String>), String>,
    waiting: HashSet<Service>,
}

fn subject(transfer: &Transfer) -> (&'static str, &str) {
    match transfer {
        Transfer::ImagePull(image) => ("pulling", image),
        Transfer::ImageLoad(archive) => ("loading", archive),
        Transfer::ModelPull(model) => ("pulling model", model),
    }
}

fn short(item: &str) -> &str {
    let bare = item.strip_prefix("sha256:").unwrap_or(item);
    bare.get(..12).unwrap_or(bare)
}

impl Human {
    fn new() -> Self {
        let tty = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Self {
            multi,
            tty,
            state: Mutex::new(HumanState::default()),
        }
    }

    fn line(&self, text: &str) {
        if self.tty {
            let _ = self.multi.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    fn clear(&self) {
        let _ = self.multi.clear();
    }

    fn bar(&self, total: Option<u64>) -> ProgressBar {
        let bar = match total {
            Some(total) if total > 0 => {
                let bar = ProgressBar::new(total);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg:32!} [{bar:25}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar
            }
            _ => {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            }
        };
        self.multi.add(bar)
    }

    fn event(&self, event: DeployEvent) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            DeployEvent::Progress {
                transfer,
                item,
                status,
                current,
                total,
            } => {
                let (verb, what) = subject(&transfer);
                // A layer of a pull is named by its short digest; an archive load has one item.
                let layer = match &item {
                    Some(item) if !matches!(transfer, Transfer::ImageLoad(_)) => {
                        Some(format!("{} {status}", short(item)))
                    }
                    _ => None,
                };
                let key = (transfer.clone(), item.clone());
                if !self.tty {
                    // Plain lines: one per change of status of each item.
                    if state.statuses.get(&key) != Some(&status) {
                        match &layer {
                            Some(layer) => eprintln!("{verb} {what}: {layer}"),
                            None => eprintln!("{verb} {what}"),
                        }
                        state.statuses.insert(key, status);
                    }
                    return;
                }
                let has_total = total.is_some_and(|t| t > 0);
                let needs_new = state
                    .bars
                    .get(&key)
                    .is_none_or(|bar| bar.length().is_some() != has_total);
                if needs_new {
                    if let Some(old) = state.bars.remove(&key) {
                        old.finish_and_clear();
                    }
                    let bar = self.bar(total);
                    state.bars.insert(key.clone(), bar);
                }
                if let Some(bar) = state.bars.get(&key) {
                    bar.set_message(layer.unwrap_or_else(|| format!("{verb} {what}")));
                    if let (Some(current), Some(total)) = (current, total)
                        && total > 0
                    {
                        bar.set_length(total);
                        bar.set_position(current.min(total));
                        if current >= total {
                            bar.finish();
                        }
                    }
                }
            }
            DeployEvent::Done { transfer, result } => {
                let keys: Vec<_> = state
                    .bars
                    .keys()
                    .filter(|(t, _)| *t == transfer)
                    .cloned()
                    .collect();
                for key in keys {
                    if let Some(bar) = state.bars.remove(&key) {
                        bar.finish_and_clear();
                    }
                }
                state.statuses.retain(|(t, _), _| *t != transfer);
                drop(state);
                match &transfer {
                    Transfer::ImageLoad(archive) => {
                        self.line(&format!("loaded {archive}: {}", result.join(", ")))
                    }
                    Transfer::ImagePull(image) => self.line(&format!("pulled {image}")),
                    Transfer::ModelPull(model) => self.line(&format!("pulled model {model}")),
                }
            }
            DeployEvent::Step {
                action,
                object,
                name,
                detail,
            } => {
                drop(state);
                let verb = match action {
                    "create" => "creating",
                    "remove" => "removing",
                    "start" => "starting",
                    "restart" => "restarting",
                    "stop" => "stopping",
                    other => other,
                };
                match detail {
                    Some(detail) => self.line(&format!("{verb} {object} {name} ({detail})")),
                    None => self.line(&format!("{verb} {object} {name}")),
                }
            }
            DeployEvent::Waiting { service, url } => {
                state.waiting.insert(service);
                drop(state);
                self.line(&format!("waiting for {} at {url} ...", service.as_str()));
            }
            DeployEvent::Healthy { service, after_ms } if state.waiting.remove(&service) => {
                drop(state);
                self.line(&format!(
                    "{} is healthy after {}",
                    service.as_str(),
                    fmt_duration(Duration::from_millis(after_ms))
                ));
            }
            DeployEvent::LockWait { stack, holder } => {
                drop(state);
                self.line(&format!(
                    "stack {stack} is being changed by {holder}; waiting for it to finish ..."
                ));
            }
            DeployEvent::Warning { message, fix, .. } => {
                drop(state);
                self.line(&format!("warning: {message}"));
                if let Some(fix) = fix {
                    self.line(&format!("  {fix}"));
                }
            }
            DeployEvent::RollingBack { reason } => {
                for (_, bar) in state.bars.drain() {
                    bar.finish_and_clear();
                }
                drop(state);
                self.line(&format!("{reason}: removing what this run created ..."));
            }
            _ => {}
        }
    }
}

//! `nanna pull MODEL`: downloads a model, one `indicatif` progress bar per layer (bytes,
//! rate, ETA) on a terminal, one line per change of status otherwise, or the server's
//! progress as JSON lines on stdout.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use nanna_model::{ModelProvider, PullProgress};

use crate::error::{CliError, Result};
use crate::render::Style;

/// What a progress line is about: the layer (short digest) and the server's status.
pub fn layer_label(progress: &PullProgress) -> String {
    match &progress.digest {
        Some(digest) => {
            let bare = digest.strip_prefix("sha256:").unwrap_or(digest);
            format!("{} {}", bare.get(..12).unwrap_or(bare), progress.status)
        }
        None => progress.status.clone(),
    }
}

/// One bar per layer, and one spinner for statuses without a layer.
struct Bars {
    multi: MultiProgress,
    layers: HashMap<String, ProgressBar>,
    status: Option<ProgressBar>,
}

impl Bars {
    fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            layers: HashMap::new(),
            status: None,
        }
    }

    fn show(&mut self, progress: &PullProgress) {
        let label = layer_label(progress);
        match (&progress.digest, progress.total) {
            (Some(digest), Some(total)) if total > 0 => {
                let bar = self.layers.entry(digest.clone()).or_insert_with(|| {
                    let bar = ProgressBar::new(total).with_style(
                        ProgressStyle::with_template(
                            "{msg:28!} [{bar:25}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} eta {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    self.multi.add(bar)
                });
                bar.set_length(total);
                bar.set_position(progress.completed.unwrap_or(0).min(total));
                bar.set_message(label);
            }
            _ => {
                let spinner = self.status.get_or_insert_with(|| {
                    let spinner = ProgressBar::new_spinner().with_style(
                        ProgressStyle::with_template("{spinner} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    spinner.enable_steady_tick(Duration::from_millis(120));
                    self.multi.add(spinner)
                });
                spinner.set_message(label);
            }
        }
    }

    fn finish(self) {
        for bar in self.layers.values() {
            bar.finish();
        }
        if let Some(spinner) = self.status {
            spinner.finish_and_clear();
        }
    }
}

/// Downloads `model`, drawing progress on stderr (or JSON lines on stdout).
pub async fn run(provider: &dyn ModelProvider, model: &str, json: bool) -> Result<()> {
    let failed = |e: nanna_model::ModelError| match e {
        // Not a question of the name: the server cannot download at all.
        nanna_model::ModelError::Unsupported { .. } => {
            CliError::Other(format!("cannot pull `{model}`: {e}"))
        }
        e => CliError::Other(format!(
            "pulling `{model}` failed: {e}; check the model name and tag (e.g. `qwen2.5-coder:7b`)"
        )),
    };
    let mut stream = provider.pull(model).await.map_err(failed)?;
    let style = Style::stderr();
    let mut bars = (!json && std::io::stderr().is_terminal()).then(Bars::new);
    let mut last_status = String::new();
    while let Some(item) = stream.next().await {
        let p = match item {
            Ok(p) => p,
            Err(e) => {
                if let Some(bars) = bars.take() {
                    bars.finish();
                }
                return Err(failed(e));
            }
        };
        if json {
            let text = serde_json::to_string(&p).map_err(|e| CliError::Other(e.to_string()))?;
            println!("{text}");
            continue;
        }
        match &mut bars {
            Some(bars) => bars.show(&p),
            None => {
                let label = layer_label(&p);
                if label != last_status {
                    let mut err = std::io::stderr().lock();
                    let _ = writeln!(err, "{label}");
                    last_status = label;
                }
            }
        }
    }
    if let Some(bars) = bars {
        bars.finish();
    }
    if !json {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{} pulled {model}", style.green("✓"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::layer_label;
    use nanna_model::PullProgress;

    #[test]
    fn labels_name_the_layer_and_the_status() {
        let layer = PullProgress {
            status: "pulling 8eeb52dfb3bb".into(),
            digest: Some(
                "sha256:8eeb52dfb3bb9aefdf9d1ef24b3bdbcfbe82238798c4b918278320b6fcef18fe".into(),
            ),
            total: Some(100),
            completed: Some(50),
        };
        assert_eq!(layer_label(&layer), "8eeb52dfb3bb pulling 8eeb52dfb3bb");
        let status = PullProgress {
            status: "verifying sha256 digest".into(),
            digest: None,
            total: None,
            completed: None,
        };
        assert_eq!(layer_label(&status), "verifying sha256 digest");
    }
}

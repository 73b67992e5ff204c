//! `nanna pull MODEL`: downloads a model with a progress bar on the terminal.

use std::io::{IsTerminal, Write};

use futures::StreamExt;
use nanna_model::ModelProvider;

use crate::error::{CliError, Result};
use crate::render::{Style, human_bytes};

/// Renders one progress line: `status  [#####-----]  45%  1.2 GB / 2.6 GB`.
pub fn progress_line(status: &str, completed: Option<u64>, total: Option<u64>) -> String {
    match (completed, total) {
        (Some(done), Some(total)) if total > 0 => {
            let frac = (done as f64 / total as f64).clamp(0.0, 1.0);
            let width = 30;
            let filled = (frac * width as f64).round() as usize;
            format!(
                "{status}  [{}{}] {:>3.0}%  {} / {}",
                "#".repeat(filled),
                "-".repeat(width - filled),
                frac * 100.0,
                human_bytes(done),
                human_bytes(total)
            )
        }
        _ => status.to_owned(),
    }
}

/// Downloads `model`, drawing progress on stderr (or JSON lines on stdout).
pub async fn run(provider: &dyn ModelProvider, model: &str, json: bool) -> Result<()> {
    let failed = |e: nanna_model::ModelError| {
        CliError::Other(format!(
            "pulling `{model}` failed: {e}; check the model name and tag (e.g. `qwen2.5-coder:7b`)"
        ))
    };
    let mut stream = provider.pull(model).await.map_err(failed)?;
    let tty = std::io::stderr().is_terminal();
    let style = Style::stderr();
    let mut last_status = String::new();
    while let Some(item) = stream.next().await {
        let p = item.map_err(failed)?;
        if json {
            let text = serde_json::to_string(&p).map_err(|e| CliError::Other(e.to_string()))?;
            println!("{text}");
            continue;
        }
        let status = match &p.digest {
            Some(d) => format!("{} {}", p.status, d.get(..19).unwrap_or(d)),
            None => p.status.clone(),
        };
        let line = progress_line(&status, p.completed, p.total);
        let mut err = std::io::stderr().lock();
        if tty {
            let _ = write!(err, "\r{line}\x1b[K");
        } else if status != last_status {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        last_status = status;
    }
    if !json {
        let mut err = std::io::stderr().lock();
        if tty {
            let _ = writeln!(err);
        }
        let _ = writeln!(err, "{} pulled {model}", style.green("✓"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::progress_line;

    #[test]
    fn progress_bar_fills_in_proportion() {
        let line = progress_line("downloading", Some(50), Some(100));
        assert!(
            line.contains(&format!("[{}{}]", "#".repeat(15), "-".repeat(15))),
            "{line}"
        );
        assert!(line.contains(" 50%"), "{line}");
        assert_eq!(progress_line("verifying", None, None), "verifying");
    }
}

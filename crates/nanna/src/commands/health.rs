//! `nanna health`: checks the model server and the configured model, then which sandbox
//! protections this machine enforces, one line per check.

use std::io::Write;

use nanna_model::{ModelError, ModelProvider, missing_model_fix};
use nanna_sandbox::{Protection, Support};
use serde::Serialize;

use crate::error::{CliError, Result};
use crate::render::Style;

/// The outcome of one check.
#[derive(Debug, Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

impl Check {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The whole report.
#[derive(Debug, Serialize)]
struct Report {
    healthy: bool,
    provider: String,
    url: String,
    model: String,
    version: Option<String>,
    context_length: Option<u32>,
    tools: Option<bool>,
    checks: Vec<Check>,
    /// Which protections commands the model runs get on this machine.
    sandbox: Vec<Check>,
}

/// The sandbox's protections as checks. One that is not active fails, with its fix: a
/// missing bubblewrap (shown as passing, "✓ ... not installed", before), and a confined mode
/// that cannot be enforced (`shell` is then refused in read-only and workspace-write
/// sessions).
fn sandbox_checks(protections: &[Protection]) -> Vec<Check> {
    protections
        .iter()
        .map(|p| {
            let detail = format!("sandbox {}: {}", p.name, p.detail);
            match (&p.fix, p.active) {
                (Some(fix), false) => Check::fail(format!("sandbox {}", p.name), detail, fix),
                _ => Check::pass(format!("sandbox {}", p.name), detail),
            }
        })
        .collect()
}

/// Whether `listed` names the same model as `wanted` (Ollama adds `:latest`).
pub fn same_model(listed: &str, wanted: &str) -> bool {
    listed == wanted
        || listed.strip_suffix(":latest") == Some(wanted)
        || wanted.strip_suffix(":latest") == Some(listed)
}

async fn collect(provider: &dyn ModelProvider, model: &str, tools_wanted: bool) -> Report {
    let url = provider.base_url().to_owned();
    let mut report = Report {
        healthy: false,
        provider: provider.name().to_owned(),
        url: url.clone(),
        model: model.to_owned(),
        version: None,
        context_length: None,
        tools: None,
        checks: Vec::new(),
        sandbox: Vec::new(),
    };
    if let Err(e) = provider.health().await {
        report.checks.push(Check::fail(
            "server",
            format!(
                "{} server at {url} does not answer: {}",
                provider.name(),
                match &e {
                    ModelError::Unreachable { detail, .. } => detail.clone(),
                    other => other.to_string(),
                }
            ),
            if provider.name() == "ollama" {
                "start the server (`ollama serve` or `nanna-deploy up`), or point --url \
                 (or NANNA_URL / OLLAMA_URL) at a running one"
            } else {
                "start the server (e.g. `llama-server`), or point --url (or NANNA_URL) at a \
                 running one"
            },
        ));
        return report;
    }
    let version = provider.version().await.ok();
    report.version = version.clone();
    report.checks.push(Check::pass(
        "server",
        match &version {
            Some(v) => format!("{} server at {url} answers (version {v})", provider.name()),
            None => format!("{} server at {url} answers", provider.name()),
        },
    ));
    match provider.list_models().await {
        Ok(models) if models.iter().any(|m| same_model(&m.name, model)) => {
            report.checks.push(Check::pass(
                "model",
                format!("model `{model}` is available"),
            ));
        }
        // Listed under another name the server still serves it by (Ollama's `x` for
        // `x:latest`, the only model of a llama.cpp started without --alias).
        Ok(_)
            if provider
                .model_info(model)
                .await
                .is_ok_and(|info| info.name != model) =>
        {
            report.checks.push(Check::pass(
                "model",
                format!("model `{model}` is available"),
            ));
        }
        Ok(models) => {
            let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
            let known = if names.is_empty() {
                "the server has no models".to_string()
            } else {
                format!("the server has: {}", names.join(", "))
            };
            report.checks.push(Check::fail(
                "model",
                format!("model `{model}` is not on the server ({known})"),
                missing_model_fix(model, provider.name() == "ollama"),
            ));
            return report;
        }
        Err(e) => {
            report.checks.push(Check::fail(
                "model",
                format!("cannot list models: {e}"),
                "check the server logs",
            ));
            return report;
        }
    }
    match provider.model_info(model).await {
        Ok(info) => {
            report.context_length = info.context_length;
            report.tools = info.capabilities.map(|c| c.tools);
            match info.capabilities.map(|c| c.tools) {
                Some(true) => report
                    .checks
                    .push(Check::pass("tools", "model supports tool calling")),
                Some(false) if tools_wanted => report.checks.push(Check::fail(
                    "tools",
                    "model does not support tool calling",
                    "pick a model with tool support (see `nanna models`) or run with --no-tools",
                )),
                Some(false) => report.checks.push(Check::pass(
                    "tools",
                    "model has no tool calling (not needed)",
                )),
                None => report
                    .checks
                    .push(Check::pass("tools", "server does not report tool support")),
            }
            report.checks.push(Check::pass(
                "context",
                match info.context_length {
                    Some(n) => format!("context length {n} tokens"),
                    None => "context length not reported by the server".into(),
                },
            ));
            // What the provider found out about this model on this server (a window it
            // cannot set, another name used): worth knowing, not a failure.
            for note in info.notes {
                report.checks.push(Check::pass("note", note));
            }
        }
        Err(ModelError::Unsupported { .. }) => {}
        Err(e) => report.checks.push(Check::fail(
            "model info",
            format!("cannot read the model's details: {e}"),
            "check the server logs",
        )),
    }
    report.healthy = report.checks.iter().all(|c| c.ok);
    report
}

/// Runs the checks and prints them; an error when any fails.
pub async fn run(provider: &dyn ModelProvider, model: &str, json: bool) -> Result<()> {
    let probe = tokio::task::spawn_blocking(Support::probe);
    let mut report = collect(provider, model, true).await;
    let support = probe
        .await
        .map_err(|e| CliError::Other(format!("probing the sandbox failed: {e}")))?;
    report.sandbox = sandbox_checks(&support.protections());
    report.healthy = report.checks.iter().chain(&report.sandbox).all(|c| c.ok);
    let mut out = std::io::stdout().lock();
    let write_err = |e| CliError::io("writing the health report", e);
    if json {
        let text = serde_json::to_string(&report).map_err(|e| CliError::Other(e.to_string()))?;
        writeln!(out, "{text}").map_err(write_err)?;
    } else {
        let style = Style::stdout();
        for check in report.checks.iter().chain(&report.sandbox) {
            if check.name == "note" {
                writeln!(out, "{} {}", style.yellow("!"), check.detail).map_err(write_err)?;
            } else if check.ok {
                writeln!(out, "{} {}", style.green("✓"), check.detail).map_err(write_err)?;
            } else {
                writeln!(out, "{} {}", style.red("✗"), check.detail).map_err(write_err)?;
                if let Some(fix) = &check.fix {
                    writeln!(out, "  {} {fix}", style.yellow("fix:")).map_err(write_err)?;
                }
            }
        }
    }
    if report.healthy {
        Ok(())
    } else {
        let all = || report.checks.iter().chain(&report.sandbox);
        Err(CliError::Unhealthy {
            failed: all().filter(|c| !c.ok).count(),
            total: all().count(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::same_model;

    #[test]
    fn latest_tag_is_implied() {
        assert!(same_model("llama3.1:latest", "llama3.1"));
        assert!(same_model("llama3.1", "llama3.1:latest"));
        assert!(same_model("a:8b", "a:8b"));
        assert!(!same_model("a:8b", "a:7b"));
    }
}

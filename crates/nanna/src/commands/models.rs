//! `nanna models`: the server's models with size, parameters, quantization, context length
//! and tool support.

use std::io::Write;

use futures::future::join_all;
use nanna_model::{ModelInfo, ModelProvider, ModelSummary};
use serde::Serialize;

use crate::error::{CliError, Result};
use crate::render::{Style, human_bytes, table};

/// One model as printed.
#[derive(Debug, Serialize)]
struct ModelRow {
    name: String,
    size_bytes: Option<u64>,
    parameters: Option<String>,
    quantization: Option<String>,
    family: Option<String>,
    context_length: Option<u32>,
    tools: Option<bool>,
}

fn row(summary: ModelSummary, info: Option<ModelInfo>) -> ModelRow {
    let info = info.unwrap_or_default();
    ModelRow {
        name: summary.name,
        size_bytes: summary.size_bytes,
        parameters: summary.parameter_size.or(info.parameter_size),
        quantization: summary.quantization.or(info.quantization),
        family: summary.family.or(info.family),
        context_length: info.context_length,
        tools: info.capabilities.map(|c| c.tools),
    }
}

/// Lists models; details come from one concurrent `model_info` call per model.
pub async fn run(provider: &dyn ModelProvider, json: bool) -> Result<()> {
    let models = provider.list_models().await?;
    let infos = join_all(models.iter().map(|m| provider.model_info(&m.name))).await;
    let rows: Vec<ModelRow> = models
        .into_iter()
        .zip(infos)
        .map(|(m, info)| row(m, info.ok()))
        .collect();
    let mut out = std::io::stdout().lock();
    let write_err = |e| CliError::io("writing the model list", e);
    if json {
        let text = serde_json::to_string(&rows).map_err(|e| CliError::Other(e.to_string()))?;
        writeln!(out, "{text}").map_err(write_err)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(
            out,
            "no models on {}; download one with `nanna pull MODEL`",
            provider.base_url()
        )
        .map_err(write_err)?;
        return Ok(());
    }
    let dash = || "-".to_string();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.size_bytes.map(human_bytes).unwrap_or_else(dash),
                r.parameters.clone().unwrap_or_else(dash),
                r.quantization.clone().unwrap_or_else(dash),
                r.context_length.map(|c| c.to_string()).unwrap_or_else(dash),
                match r.tools {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "?".into(),
                },
            ]
        })
        .collect();
    let text = table(
        &["NAME", "SIZE", "PARAMS", "QUANT", "CONTEXT", "TOOLS"],
        &cells,
        Style::stdout(),
    );
    out.write_all(text.as_bytes()).map_err(write_err)?;
    Ok(())
}

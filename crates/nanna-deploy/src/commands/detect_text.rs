//! Human-readable rendering of a [`Detection`]: a short GPU table, the engine, the
//! recommendation and the warnings.

use std::fmt::Write as _;

use nanna_deploy::Accelerator;
use nanna_deploy::detect::Detection;
use nanna_deploy::gpu::FormFactor;

/// Formats a byte count as GiB with one decimal (`12.0 GiB`).
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

/// Renders the detection for a terminal.
pub fn render_text(detection: &Detection) -> String {
    let mut out = String::new();
    let inventory = &detection.inventory;
    if inventory.gpus.is_empty() {
        out.push_str("GPUs:    none found\n");
    } else {
        out.push_str("GPUs:\n");
        let header = [
            "CARD",
            "VENDOR",
            "NAME/DEVICE",
            "PCI",
            "DRIVER",
            "RENDER NODE",
            "MEMORY",
            "TYPE",
        ];
        let rows: Vec<[String; 8]> = inventory
            .gpus
            .iter()
            .map(|gpu| {
                [
                    gpu.card.clone().unwrap_or_else(|| "-".into()),
                    gpu.vendor.as_str().to_string(),
                    gpu.name
                        .clone()
                        .or_else(|| gpu.device_id.clone())
                        .unwrap_or_else(|| "-".into()),
                    gpu.pci_address.clone().unwrap_or_else(|| "-".into()),
                    gpu.driver.clone().unwrap_or_else(|| "-".into()),
                    gpu.render_node.clone().unwrap_or_else(|| "-".into()),
                    gpu.memory_bytes.map_or_else(|| "-".into(), gib),
                    match gpu.form_factor {
                        FormFactor::Integrated => "integrated",
                        FormFactor::Discrete => "discrete",
                        FormFactor::Unknown => "?",
                    }
                    .to_string()
                        + &gpu
                            .gfx_target
                            .as_deref()
                            .map_or(String::new(), |g| format!(" {g}")),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut line = |cells: &[String]| {
            let mut text = String::from(" ");
            for (cell, width) in cells.iter().zip(widths) {
                let _ = write!(text, " {cell:<width$}");
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&header.map(str::to_string));
        for row in &rows {
            line(row);
        }
    }
    for card in &inventory.ignored_cards {
        let _ = writeln!(out, "  ignored {}: {}", card.card, card.reason);
    }
    if let Some(nvidia) = &inventory.nvidia {
        let _ = writeln!(
            out,
            "NVIDIA:  driver {}, nvidia-smi {}, CDI spec {}",
            nvidia.driver_version.as_deref().unwrap_or("not loaded"),
            nvidia.nvidia_smi.as_deref().unwrap_or("not found"),
            if nvidia.cdi_specs.is_empty() {
                "none".to_string()
            } else {
                nvidia.cdi_specs.join(", ")
            }
        );
    }
    if let Some(amd) = &inventory.amd {
        let _ = writeln!(
            out,
            "AMD:     /dev/kfd {}, gfx {}",
            if amd.kfd_present {
                "present"
            } else {
                "missing"
            },
            if amd.gfx_targets.is_empty() {
                "unknown".to_string()
            } else {
                amd.gfx_targets.join(", ")
            }
        );
    }
    let host = &detection.host;
    let _ = writeln!(
        out,
        "Host:    {}{} CPUs, {} RAM ({} available)",
        host.cpu_brand
            .as_deref()
            .map_or(String::new(), |b| format!("{b}, ")),
        host.logical_cpus,
        gib(host.memory_total_bytes),
        gib(host.memory_available_bytes)
    );
    match (&detection.engine, detection.engine_probe.probed) {
        (Some(engine), _) => {
            let _ = writeln!(
                out,
                "Engine:  {} {} (API {}) at {}",
                engine.kind.as_str(),
                engine.version,
                engine.api_version,
                engine.socket
            );
        }
        (None, false) => out.push_str("Engine:  not probed (--no-engine)\n"),
        (None, true) => {
            let _ = writeln!(
                out,
                "Engine:  none answered ({} sockets tried)",
                detection.engine_probe.attempts.len()
            );
            for attempt in &detection.engine_probe.attempts {
                let _ = writeln!(
                    out,
                    "         {} ({}): {}",
                    attempt.candidate.address, attempt.candidate.source, attempt.outcome
                );
            }
        }
    }

    let rec = &detection.recommendation;
    let _ = writeln!(
        out,
        "Use:     {} with {}",
        match rec.gpu {
            Accelerator::None => "CPU only",
            other => other.as_str(),
        },
        rec.image
    );
    let mut details = Vec::new();
    if !rec.cdi_devices.is_empty() {
        details.push(format!(
            "CDI devices (Podman): {}",
            rec.cdi_devices.join(", ")
        ));
    }
    if !rec.device_requests.is_empty() {
        details.push("Docker device request: driver nvidia, all GPUs, capability gpu".to_string());
    }
    if !rec.devices.is_empty() {
        let devices: Vec<_> = rec
            .devices
            .iter()
            .map(|d| d.path_on_host.as_str())
            .collect();
        details.push(format!("devices: {} (rwm)", devices.join(", ")));
    }
    if !rec.group_add.is_empty() {
        details.push(format!("groups: {}", rec.group_add.join(", ")));
    }
    if !rec.env.is_empty() {
        let env: Vec<_> = rec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        details.push(format!("env: {}", env.join(" ")));
    }
    details.push(format!(
        "models up to ~{} of {}{}",
        gib(rec.model_memory_bytes),
        rec.model_memory_source.to_uppercase(),
        rec.suggested_model
            .as_deref()
            .map_or(String::new(), |m| format!(", e.g. {m}"))
    ));
    details.push(format!("why: {}", rec.reason));
    details.extend(rec.notes.iter().cloned());
    for detail in details {
        let _ = writeln!(out, "         {detail}");
    }
    if !detection.warnings.is_empty() {
        out.push_str("Warnings:\n");
        for warning in &detection.warnings {
            let _ = writeln!(out, "  ! {}", warning.message);
            if let Some(fix) = &warning.fix {
                let _ = writeln!(out, "    fix: {fix}");
            }
        }
    }
    out
}

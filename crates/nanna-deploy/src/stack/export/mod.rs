//! `export`: the stack `up` would run, rendered for another consumer: Kubernetes manifests
//! (for shared GPU nodes, `kubectl apply -f`, also `podman kube play` on one machine) or a
//! Compose file (`docker-compose`, `podman-compose`). The same [`StackSpec`] that `up`
//! turns into engine requests is the only input: there is no second description of the
//! stack. Per-vendor GPU plumbing comes from the recipe table ([`crate::recipe`]); the
//! container confinement from one mapping ([`security`]).

mod compose;
mod kubernetes;
mod security;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::apply::host_facts;
use super::spec::{self, StackSettings, StackSpec};
use super::{StackError, validate};
use crate::accelerator::{Accelerator, GpuChoice};
use crate::detect::{self, DetectError};
use crate::engine::EngineKind;
use crate::host::ProbeEnv;
use crate::recommend;

/// What to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// Kubernetes manifests (one multi-document YAML file).
    Kubernetes,
    /// A Compose file.
    Compose,
}

impl ExportFormat {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kubernetes => "kubernetes",
            Self::Compose => "compose",
        }
    }

    /// The file `-o DIR` writes.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Kubernetes => "kubernetes.yaml",
            Self::Compose => "compose.yaml",
        }
    }
}

/// What an export needs besides the host.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The stack's settings (`up`'s flags).
    pub settings: StackSettings,
    /// `--gpu`.
    pub gpu: GpuChoice,
    /// The format.
    pub format: ExportFormat,
    /// The engine a Compose file is for: NVIDIA GPUs are a device reservation for Docker,
    /// a CDI device for Podman (whose API ignores reservations). Kubernetes ignores it.
    pub engine: EngineKind,
    /// Where the export will be written (absolute), for files it refers to (a Compose
    /// file's seccomp profile); `None` for stdout.
    pub output_dir: Option<PathBuf>,
}

/// A rendered export.
#[derive(Debug, Clone, Serialize)]
pub struct Export {
    /// The format.
    pub format: ExportFormat,
    /// The stack it describes.
    pub spec: StackSpec,
    /// The file's text.
    pub text: String,
    /// Files the text refers to, written beside it (name, content): a seccomp profile.
    pub files: Vec<(String, String)>,
    /// Facts about the rendering (e.g. a GPU recipe for another machine).
    pub notes: Vec<String>,
}

/// A stack that cannot be exported as asked.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Kubernetes names objects after the stack, and refuses this name.
    #[error(
        "stack name {name:?} cannot name Kubernetes objects: {reason}. Use lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. --name nanna)"
    )]
    KubernetesName {
        /// The stack name.
        name: String,
        /// Why (DNS-1123 label rules).
        reason: String,
    },
    /// Extra host devices have no Kubernetes equivalent.
    #[error(
        "--device maps host devices, which Kubernetes gives to pods only through device plugins; leave --device out of a Kubernetes export (GPUs come from --gpu)"
    )]
    DevicesOnKubernetes,
    /// A user that is not numeric.
    #[error(
        "the container user {user:?} is not numeric, and Kubernetes takes only numeric ids (runAsUser)"
    )]
    User {
        /// The user.
        user: String,
    },
    /// The output directory holds files this export did not write.
    #[error(
        "output directory {dir} already holds other files ({others}): nothing was written. Choose an empty or new directory with -o, or remove those files"
    )]
    OutputNotEmpty {
        /// The directory.
        dir: String,
        /// What is there.
        others: String,
    },
    /// Writing the output failed (nothing was left behind).
    #[error("cannot {what} {path}: {source}; nothing was written")]
    Output {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The YAML writer failed (a bug: every value is plain data).
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}

impl ExportError {
    /// A stable identifier for programs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::KubernetesName { .. } => "invalid_name",
            Self::DevicesOnKubernetes => "devices_on_kubernetes",
            Self::User { .. } => "invalid_user",
            Self::OutputNotEmpty { .. } => "output_not_empty",
            Self::Output { .. } => "io",
            Self::Yaml(_) => "yaml",
        }
    }
}

/// Checks that `name` is a DNS-1123 label (RFC 1123: lowercase alphanumerics and '-',
/// starting and ending alphanumeric, at most 63 characters), which Kubernetes requires of
/// namespaces and object names (apimachinery `validation.IsDNS1123Label`).
pub fn dns1123_label(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!("it has {} characters (1 to 63)", name.len()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!("{bad:?} is not allowed"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("it starts or ends with '-'".to_string());
    }
    Ok(())
}

/// The spec `up` would apply with these settings, computed without an engine: GPU
/// detection as `up` does it, except that a forced `--gpu` this host cannot use gives the
/// recipe alone (the stack is for another machine), with a note.
pub fn export_spec(
    env: &ProbeEnv,
    settings: &StackSettings,
    gpu: GpuChoice,
    engine: EngineKind,
) -> Result<(StackSpec, Vec<String>), StackError> {
    validate::stack_name(&settings.name).map_err(StackError::Spec)?;
    let mut notes = Vec::new();
    let rec = match detect::detect_offline(env, gpu) {
        Ok(detection) => detection.recommendation,
        Err(DetectError::Gpu(unavailable)) => {
            let accelerator = match gpu {
                GpuChoice::Only(accelerator) => accelerator,
                GpuChoice::Auto => Accelerator::None,
            };
            notes.push(format!(
                "this host cannot use --gpu {} ({}): the export has that GPU's recipe, without host-specific settings",
                accelerator.as_str(),
                unavailable.reason
            ));
            recommend::for_target(accelerator, Some(engine))
        }
        Err(error) => return Err(error.into()),
    };
    let spec = spec::desired(settings, engine, &rec, &host_facts(env, settings))?;
    Ok((spec, notes))
}

/// Renders the stack for `options.format`.
pub fn export(env: &ProbeEnv, options: &ExportOptions) -> Result<Export, StackError> {
    if options.format == ExportFormat::Kubernetes {
        dns1123_label(&options.settings.name).map_err(|reason| ExportError::KubernetesName {
            name: options.settings.name.clone(),
            reason,
        })?;
        if !options.settings.extra_devices.is_empty() {
            return Err(ExportError::DevicesOnKubernetes.into());
        }
    }
    let engine = match options.format {
        ExportFormat::Kubernetes => EngineKind::Docker,
        ExportFormat::Compose => options.engine,
    };
    let (spec, notes) = export_spec(env, &options.settings, options.gpu, engine)?;
    let (text, files) = match options.format {
        ExportFormat::Kubernetes => (kubernetes::render(&spec, &options.settings)?, Vec::new()),
        ExportFormat::Compose => {
            compose::render(&spec, &options.settings, options.output_dir.as_deref())?
        }
    };
    let mut notes = notes;
    if options.output_dir.is_none() {
        for (name, _) in &files {
            notes.push(format!(
                "the Compose file refers to {name} (images/assistant-seccomp.json): use -o DIR to have it written beside, or save it in the directory you run docker-compose in"
            ));
        }
    }
    Ok(Export {
        format: options.format,
        spec,
        text,
        files,
        notes,
    })
}

/// One document as YAML (without the leading `---`).
fn yaml(value: &serde_json::Value) -> Result<String, ExportError> {
    serde_norway::to_string(value).map_err(|e| ExportError::Yaml(e.to_string()))
}

/// Writes `export` as `dir/<format's file>`: the directory is created when missing and must
/// hold nothing else (a previous export of the same format is replaced); the file appears
/// whole or not at all (written beside, synced, then renamed). On failure nothing this call
/// created is left.
pub fn write(dir: &Path, export: &Export) -> Result<PathBuf, StackError> {
    let file_name = export.format.file_name();
    let mut names: Vec<&str> = vec![file_name];
    names.extend(export.files.iter().map(|(name, _)| name.as_str()));
    let io = |what: &'static str, path: &Path| {
        let path = path.display().to_string();
        move |source| ExportError::Output { what, path, source }
    };
    let created = match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            let mut others: Vec<String> = std::fs::read_dir(dir)
                .map_err(io("read", dir))?
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| !names.contains(&name.as_str()))
                .collect();
            if !others.is_empty() {
                others.sort();
                return Err(ExportError::OutputNotEmpty {
                    dir: dir.display().to_string(),
                    others: others.join(", "),
                }
                .into());
            }
            false
        }
        Ok(_) => {
            return Err(ExportError::Output {
                what: "write into",
                path: dir.display().to_string(),
                source: std::io::Error::other("it is not a directory"),
            }
            .into());
        }
        Err(_) => {
            std::fs::create_dir_all(dir).map_err(io("create", dir))?;
            true
        }
    };
    let target = dir.join(file_name);
    let mut contents: Vec<(&str, &str)> = vec![(file_name, export.text.as_str())];
    contents.extend(export.files.iter().map(|(n, c)| (n.as_str(), c.as_str())));
    // Every file is written and synced beside its name first; only then are they renamed.
    let partial = |name: &str| dir.join(format!(".{name}.{}.partial", std::process::id()));
    let result = (|| -> Result<(), ExportError> {
        for (name, content) in &contents {
            let path = partial(name);
            let mut file = std::fs::File::create(&path).map_err(io("write", &path))?;
            file.write_all(content.as_bytes())
                .map_err(io("write", &path))?;
            file.sync_all().map_err(io("write", &path))?;
        }
        for (name, _) in &contents {
            std::fs::rename(partial(name), dir.join(name)).map_err(io("write", &dir.join(name)))?;
        }
        Ok(())
    })();
    if let Err(error) = result {
        for (name, _) in &contents {
            let _ = std::fs::remove_file(partial(name));
        }
        if created {
            let _ = std::fs::remove_dir_all(dir);
        }
        return Err(error.into());
    }
    Ok(target)
}

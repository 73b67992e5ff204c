//! [`Overrides`]: what the command line says, above every file and variable.

use std::path::{Path, PathBuf};

use figment::value::Value;

/// The command line's part of the configuration: `--config FILE`, `-c key=value` overrides
/// and flags. Flags win over `-c`, `-c` over everything else.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    file: Option<PathBuf>,
    settings: Vec<String>,
    flags: Vec<(String, String, Value)>,
}

impl Overrides {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// `--config FILE`: the user file to read instead of the usual one (it must exist).
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Sets the user file (`--config`).
    pub fn with_file(mut self, path: Option<PathBuf>) -> Self {
        self.file = path;
        self
    }

    /// Adds a `-c key=value` override (later ones win); checked when loading.
    pub fn with_setting(mut self, text: impl Into<String>) -> Self {
        self.settings.push(text.into());
        self
    }

    /// Adds the value of flag `flag` (e.g. `--model`) for setting `key`, when given.
    pub fn with_flag<T: serde::Serialize>(
        mut self,
        flag: &str,
        key: &str,
        value: Option<T>,
    ) -> Self {
        if let Some(value) = value.and_then(|v| Value::serialize(v).ok()) {
            self.flags.push((flag.to_owned(), key.to_owned(), value));
        }
        self
    }

    pub(crate) fn settings(&self) -> impl Iterator<Item = &str> {
        self.settings.iter().map(String::as_str)
    }

    pub(crate) fn flags(&self) -> impl Iterator<Item = (&str, &str, Value)> {
        self.flags
            .iter()
            .map(|(flag, key, value)| (flag.as_str(), key.as_str(), value.clone()))
    }
}

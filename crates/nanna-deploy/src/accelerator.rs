//! The accelerator vocabulary: which kind of GPU (or the CPU) the model server runs on, and
//! the `--gpu` choice that picks one. Detection, recommendations, stack labels and the
//! command line all use these two types. Everything said about an accelerator (names,
//! PCI ids, what the container needs) is its row of `images/gpu-recipes.json`
//! ([`crate::recipe`]); adding a vendor is that row, a variant here and its detection
//! module.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::recipe::{self, GpuRecipe};

/// What the model server computes on: a GPU vendor's stack, or the CPU.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Accelerator {
    /// NVIDIA GPUs (CUDA).
    Nvidia,
    /// AMD GPUs (ROCm).
    Amd,
    /// Intel GPUs (Vulkan).
    Intel,
    /// No GPU: the CPU.
    #[default]
    None,
}

impl Accelerator {
    /// Every accelerator (the recipe table's order is `--gpu auto`'s preference).
    pub const ALL: [Self; 4] = [Self::Nvidia, Self::Amd, Self::Intel, Self::None];

    /// Lower-case name, as in JSON, labels and `--gpu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nvidia => "nvidia",
            Self::Amd => "amd",
            Self::Intel => "intel",
            Self::None => "none",
        }
    }

    /// This accelerator's row of the recipe table.
    pub fn recipe(self) -> &'static GpuRecipe {
        recipe::of(self)
    }

    /// Name for people (`NVIDIA`, `AMD`, `Intel`, `CPU`).
    pub fn display_name(self) -> &'static str {
        &self.recipe().display_name
    }

    /// Other names `--gpu` and `GPU_SUPPORT` accept (the compute stack's name).
    pub fn aliases(self) -> &'static [String] {
        &self.recipe().aliases
    }

    /// `NVIDIA (CUDA)`, or `no GPU: the CPU`.
    pub fn summary(self) -> String {
        let recipe = self.recipe();
        match &recipe.compute {
            Some(compute) => format!("{} ({compute})", recipe.display_name),
            None => format!("no GPU: the {}", recipe.display_name),
        }
    }

    /// Whether this is a GPU (not the CPU).
    pub fn is_gpu(self) -> bool {
        self != Self::None
    }

    /// The GPU vendor with this PCI vendor id (`0x10de`, any case, with or without `0x`).
    pub fn from_pci_vendor(id: &str) -> Option<Self> {
        let id = parse_hex_id(id)?;
        Self::ALL.into_iter().find(|accelerator| {
            accelerator
                .recipe()
                .pci_vendor_ids
                .iter()
                .any(|known| parse_hex_id(known) == Some(id))
        })
    }
}

/// The `--gpu` words, for messages: `auto, nvidia (cuda), ... or none (cpu)`.
pub fn choices() -> String {
    let mut words = vec!["auto".to_string()];
    words.extend(Accelerator::ALL.iter().map(|a| {
        let aliases = a.aliases().join(", ");
        if aliases.is_empty() {
            a.as_str().to_string()
        } else {
            format!("{} ({aliases})", a.as_str())
        }
    }));
    let last = words.pop().unwrap_or_default();
    format!("{} or {last}", words.join(", "))
}

/// Parses `0x10de`, `0X10DE` or `10de` as a hexadecimal id.
pub(crate) fn parse_hex_id(text: &str) -> Option<u32> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

impl fmt::Display for Accelerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that names no accelerator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a GPU choice: use {}", choices())]
pub struct UnknownAccelerator {
    /// What was given.
    pub given: String,
}

impl FromStr for Accelerator {
    type Err = UnknownAccelerator;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let word = text.trim();
        Self::ALL
            .into_iter()
            .find(|a| {
                a.as_str().eq_ignore_ascii_case(word)
                    || a.aliases()
                        .iter()
                        .any(|alias| alias.eq_ignore_ascii_case(word))
            })
            .ok_or_else(|| UnknownAccelerator {
                given: text.to_string(),
            })
    }
}

/// The `--gpu` flag (and `GPU_SUPPORT`): let detection pick, or insist on one accelerator
/// (forcing one the host cannot use is an error, never a silent CPU run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GpuChoice {
    /// The best usable GPU: discrete before integrated, NVIDIA, then AMD, then Intel.
    #[default]
    Auto,
    /// Exactly this accelerator.
    Only(Accelerator),
}

impl GpuChoice {
    /// Lower-case name (`auto`, `nvidia`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Only(accelerator) => accelerator.as_str(),
        }
    }
}

impl fmt::Display for GpuChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GpuChoice {
    type Err = UnknownAccelerator;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().eq_ignore_ascii_case("auto") {
            Ok(Self::Auto)
        } else {
            text.parse().map(Self::Only)
        }
    }
}

impl From<Accelerator> for GpuChoice {
    fn from(accelerator: Accelerator) -> Self {
        Self::Only(accelerator)
    }
}

impl Serialize for GpuChoice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for GpuChoice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl clap::ValueEnum for GpuChoice {
    fn value_variants<'a>() -> &'a [Self] {
        static VARIANTS: LazyLock<Vec<GpuChoice>> = LazyLock::new(|| {
            std::iter::once(GpuChoice::Auto)
                .chain(Accelerator::ALL.map(GpuChoice::Only))
                .collect()
        });
        &VARIANTS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let value = clap::builder::PossibleValue::new(self.as_str());
        Some(match self {
            Self::Auto => value.help("the best usable GPU: discrete first, NVIDIA, AMD, Intel"),
            Self::Only(accelerator) => value
                .aliases(accelerator.aliases().iter().map(String::as_str))
                .help(accelerator.summary()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_parse_both_ways() {
        for accelerator in Accelerator::ALL {
            assert_eq!(accelerator.as_str().parse(), Ok(accelerator));
            assert_eq!(accelerator.to_string(), accelerator.as_str());
            for alias in accelerator.aliases() {
                assert_eq!(alias.to_uppercase().parse(), Ok(accelerator));
            }
            let choice = GpuChoice::Only(accelerator);
            assert_eq!(choice.to_string().parse(), Ok(choice));
        }
        assert_eq!("AUTO".parse(), Ok(GpuChoice::Auto));
        assert!("tpu".parse::<GpuChoice>().is_err());
        // "auto" is a choice, not an accelerator.
        assert!("auto".parse::<Accelerator>().is_err());
    }

    #[test]
    fn pci_vendor_ids() {
        assert_eq!(
            Accelerator::from_pci_vendor("0x10de"),
            Some(Accelerator::Nvidia)
        );
        assert_eq!(
            Accelerator::from_pci_vendor("0x10DE\n"),
            Some(Accelerator::Nvidia)
        );
        assert_eq!(
            Accelerator::from_pci_vendor("0x1002"),
            Some(Accelerator::Amd)
        );
        assert_eq!(
            Accelerator::from_pci_vendor("8086"),
            Some(Accelerator::Intel)
        );
        assert_eq!(Accelerator::from_pci_vendor("0x1af4"), None);
        assert_eq!(Accelerator::from_pci_vendor("banana"), None);
        assert_eq!(parse_hex_id(""), None);
        assert_eq!(parse_hex_id("0x"), None);
    }

    #[test]
    fn choices_round_trip_through_json() {
        let json = serde_json::to_string(&GpuChoice::Only(Accelerator::Amd)).unwrap();
        assert_eq!(json, "\"amd\"");
        assert_eq!(
            serde_json::from_str::<GpuChoice>("\"rocm\"").unwrap(),
            GpuChoice::Only(Accelerator::Amd)
        );
    }
}

//! The accelerator vocabulary: which kind of GPU (or the CPU) the model server runs on, and
//! the `--gpu` choice that picks one. Detection, recommendations, stack labels and the
//! command line all use these two types, so adding a vendor means one more variant here
//! plus its detection module (and, later, its row of the recipe table shared with Nix).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What the model server computes on: a GPU vendor's stack, or the CPU.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Accelerator {
    /// NVIDIA GPUs (CUDA); PCI vendor 0x10de.
    Nvidia,
    /// AMD GPUs (ROCm); PCI vendor 0x1002.
    Amd,
    /// Intel GPUs (Vulkan); PCI vendor 0x8086.
    Intel,
    /// No GPU: the CPU.
    #[default]
    None,
}

impl Accelerator {
    /// Every accelerator, GPUs in the order `--gpu auto` prefers them, the CPU last.
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

    /// Name for people (`NVIDIA`, `AMD`, `Intel`, `CPU`).
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Nvidia => "NVIDIA",
            Self::Amd => "AMD",
            Self::Intel => "Intel",
            Self::None => "CPU",
        }
    }

    /// Other names `--gpu` and `GPU_SUPPORT` accept (the compute stack's name).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Self::Nvidia => &["cuda"],
            Self::Amd => &["rocm"],
            Self::Intel => &["vulkan"],
            Self::None => &["cpu"],
        }
    }

    /// Whether this is a GPU (not the CPU).
    pub fn is_gpu(self) -> bool {
        self != Self::None
    }

    /// The GPU vendor with this PCI vendor id (`0x10de`, any case, with or without `0x`).
    pub fn from_pci_vendor(id: &str) -> Option<Self> {
        match parse_hex_id(id)? {
            0x10de => Some(Self::Nvidia),
            0x1002 => Some(Self::Amd),
            0x8086 => Some(Self::Intel),
            _ => None,
        }
    }
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
#[error(
    "{given:?} is not a GPU choice: use auto, nvidia (cuda), amd (rocm), intel (vulkan) or none (cpu)"
)]
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
        &[
            Self::Auto,
            Self::Only(Accelerator::Nvidia),
            Self::Only(Accelerator::Amd),
            Self::Only(Accelerator::Intel),
            Self::Only(Accelerator::None),
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let value = clap::builder::PossibleValue::new(self.as_str());
        Some(match self {
            Self::Auto => value.help("the best usable GPU: discrete first, NVIDIA, AMD, Intel"),
            Self::Only(accelerator) => {
                value
                    .aliases(accelerator.aliases().iter().copied())
                    .help(match accelerator {
                        Accelerator::Nvidia => "NVIDIA (CUDA)",
                        Accelerator::Amd => "AMD (ROCm)",
                        Accelerator::Intel => "Intel (Vulkan)",
                        Accelerator::None => "no GPU: the CPU",
                    })
            }
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

//! GPU inventory: every DRM card under `/sys/class/drm`, plus what the NVIDIA and AMD stacks
//! expose (driver, device nodes, `nvidia-smi`, CDI specs, `/dev/kfd`, gfx targets).
//!
//! One module per vendor knows that vendor's stack; this module asks them through the
//! dispatch functions at the end ([`usability`], [`extra_env`], [`card_usable`] and the
//! card facts of [`scan`]). A new vendor is its module plus one arm in each (the compiler
//! lists them), beside its row of `images/gpu-recipes.json` and its [`Accelerator`] variant.

pub mod amd;
pub mod intel;
pub mod nvidia;

use serde::Serialize;
use tracing::debug;

use crate::accelerator::{Accelerator, parse_hex_id};
use crate::host::ProbeEnv;

pub use amd::AmdStatus;
pub use nvidia::NvidiaStatus;

const DRM_CLASS: &str = "/sys/class/drm";

/// Whether a GPU shares the CPU's memory (integrated) or has its own (discrete).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FormFactor {
    /// On the CPU die, sharing system memory (Intel iGPU, AMD APU).
    Integrated,
    /// A separate card or chip with its own memory.
    Discrete,
    /// Not determinable from what the host exposes.
    Unknown,
}

/// One GPU found on the host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gpu {
    /// DRM card name (`card1`), or `null` for a GPU only `nvidia-smi` reported.
    pub card: Option<String>,
    /// Vendor.
    pub vendor: Accelerator,
    /// PCI device id as sysfs writes it (`0x2684`), when known.
    pub device_id: Option<String>,
    /// Marketing name (from `nvidia-smi`), when known.
    pub name: Option<String>,
    /// PCI address (`0000:01:00.0`), the basename of the card's `device` link.
    pub pci_address: Option<String>,
    /// Kernel driver bound to the device (`nvidia`, `amdgpu`, `i915`, `xe`, `nouveau`).
    pub driver: Option<String>,
    /// Render node (`/dev/dri/renderD128`), when the card has one.
    pub render_node: Option<String>,
    /// Dedicated memory in bytes, when sysfs or a vendor tool reports it.
    pub memory_bytes: Option<u64>,
    /// Integrated or discrete.
    pub form_factor: FormFactor,
    /// Whether firmware used this card for the boot console.
    pub boot_vga: bool,
    /// NVIDIA GPU UUID (`GPU-…`), when `nvidia-smi` reported it.
    pub uuid: Option<String>,
    /// AMD gfx target (`gfx1100`), when the KFD topology reports it.
    pub gfx_target: Option<String>,
}

/// A DRM card that is not a usable GPU (unknown vendor, unparseable vendor file, no PCI
/// device such as `simple-framebuffer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredCard {
    /// DRM card name.
    pub card: String,
    /// PCI address or device name, when known.
    pub pci_address: Option<String>,
    /// Content of the vendor file (trimmed), `null` when there is none.
    pub vendor_raw: Option<String>,
    /// Why it was ignored.
    pub reason: String,
    /// Whether this deserves a warning (an unknown or garbled vendor, not a plain framebuffer).
    #[serde(skip)]
    pub warn: bool,
}

/// Everything the GPU probe found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuInventory {
    /// Usable-vendor GPUs, in card order.
    pub gpus: Vec<Gpu>,
    /// DRM cards that were skipped, with the reason.
    pub ignored_cards: Vec<IgnoredCard>,
    /// NVIDIA stack status, present when an NVIDIA GPU or driver was seen.
    pub nvidia: Option<NvidiaStatus>,
    /// AMD stack status, present when an AMD GPU was seen.
    pub amd: Option<AmdStatus>,
}

impl GpuInventory {
    /// The GPUs of one vendor.
    pub fn of_vendor(&self, vendor: Accelerator) -> impl Iterator<Item = &Gpu> {
        self.gpus.iter().filter(move |gpu| gpu.vendor == vendor)
    }

    /// Whether any GPU of `vendor` was found.
    pub fn has_vendor(&self, vendor: Accelerator) -> bool {
        self.of_vendor(vendor).next().is_some()
    }
}

/// Scans the host's DRM cards and vendor stacks. Never fails: what cannot be read is
/// reported as unknown.
pub fn scan(env: &ProbeEnv) -> GpuInventory {
    let host = &env.host_root;
    let mut cards: Vec<(u32, String)> = host
        .list_dir(DRM_CLASS)
        .into_iter()
        .filter_map(|name| {
            let number = name.strip_prefix("card")?.parse::<u32>().ok()?;
            Some((number, name))
        })
        .collect();
    cards.sort();

    let mut gpus = Vec::new();
    let mut ignored_cards = Vec::new();
    for (_, card) in cards {
        match read_card(env, &card) {
            Ok(gpu) => gpus.push(gpu),
            Err(ignored) => {
                debug!(card = %ignored.card, reason = %ignored.reason, "ignoring DRM card");
                ignored_cards.push(ignored);
            }
        }
    }

    let has_nvidia = gpus.iter().any(|gpu| gpu.vendor == Accelerator::Nvidia);
    let nvidia = nvidia::probe(env, &mut gpus, has_nvidia);
    let amd = if gpus.iter().any(|gpu| gpu.vendor == Accelerator::Amd) {
        Some(amd::probe(env, &mut gpus))
    } else {
        None
    };
    GpuInventory {
        gpus,
        ignored_cards,
        nvidia,
        amd,
    }
}

fn read_card(env: &ProbeEnv, card: &str) -> Result<Gpu, IgnoredCard> {
    let host = &env.host_root;
    let device = format!("{DRM_CLASS}/{card}/device");
    let pci_address = host.link_target_name(&device);
    let vendor_raw = host.read_trimmed(format!("{device}/vendor"));
    let Some(vendor_text) = vendor_raw.clone() else {
        return Err(IgnoredCard {
            card: card.to_string(),
            pci_address,
            vendor_raw: None,
            reason: "no PCI vendor file (not a PCI GPU, e.g. a firmware framebuffer)".into(),
            warn: false,
        });
    };
    let Some(vendor) = Accelerator::from_pci_vendor(&vendor_text) else {
        let reason = match parse_hex_id(&vendor_text) {
            Some(id) => format!("unsupported GPU vendor 0x{id:04x}"),
            None => format!("unparseable vendor id {vendor_text:?}"),
        };
        return Err(IgnoredCard {
            card: card.to_string(),
            pci_address,
            vendor_raw,
            reason,
            warn: true,
        });
    };
    let device_id = host
        .read_trimmed(format!("{device}/device"))
        .and_then(|text| parse_hex_id(&text).map(|id| format!("0x{id:04x}")));
    let driver = host.link_target_name(format!("{device}/driver"));
    let render_node = host
        .list_dir(format!("{device}/drm"))
        .into_iter()
        .find(|name| name.starts_with("renderD"))
        .map(|name| format!("/dev/dri/{name}"));
    let boot_vga = host.read_trimmed(format!("{device}/boot_vga")).as_deref() == Some("1");
    let CardFacts {
        memory_bytes,
        form_factor,
    } = card_facts(vendor, env, &device, pci_address.as_deref());
    Ok(Gpu {
        card: Some(card.to_string()),
        vendor,
        device_id,
        name: None,
        pci_address,
        driver,
        render_node,
        memory_bytes,
        form_factor,
        boot_vga,
        uuid: None,
        gfx_target: None,
    })
}

/// What a vendor module reads from a DRM card's sysfs device directory.
pub(crate) struct CardFacts {
    /// Dedicated memory, when sysfs says.
    pub memory_bytes: Option<u64>,
    /// Integrated or discrete, when it can tell.
    pub form_factor: FormFactor,
}

fn card_facts(
    vendor: Accelerator,
    env: &ProbeEnv,
    device: &str,
    pci_address: Option<&str>,
) -> CardFacts {
    match vendor {
        Accelerator::Nvidia => nvidia::card_facts(),
        Accelerator::Amd => amd::card_facts(env, device),
        Accelerator::Intel => intel::card_facts(pci_address),
        Accelerator::None => CardFacts {
            memory_bytes: None,
            form_factor: FormFactor::Unknown,
        },
    }
}

/// Whether the GPUs of `vendor` that were found can be used, or why not (a sentence naming
/// the fix): the vendor's driver and device nodes.
pub fn usability(inventory: &GpuInventory, vendor: Accelerator) -> Result<(), String> {
    match vendor {
        Accelerator::Nvidia => nvidia::usability(inventory),
        Accelerator::Amd => amd::usability(inventory),
        Accelerator::Intel => intel::usability(inventory),
        Accelerator::None => Ok(()),
    }
}

/// Whether `--gpu auto` may pick this card (usable vendor aside).
pub(crate) fn card_usable(gpu: &Gpu) -> bool {
    match gpu.vendor {
        Accelerator::Intel => intel::card_usable(gpu),
        Accelerator::Nvidia | Accelerator::Amd | Accelerator::None => true,
    }
}

/// Environment the model server needs for these particular GPUs of `vendor`, beyond the
/// recipe's, as (name, value, why).
pub(crate) fn extra_env(vendor: Accelerator, chosen: &[&Gpu]) -> Vec<(String, String, String)> {
    match vendor {
        Accelerator::Amd => amd::extra_env(chosen),
        Accelerator::Nvidia | Accelerator::Intel | Accelerator::None => Vec::new(),
    }
}

/// Normalises a PCI address to `dddd:bb:dd.f` lower case (`nvidia-smi` writes an 8-digit
/// upper-case domain, sysfs a 4-digit lower-case one).
pub(crate) fn normalize_pci_address(address: &str) -> Option<String> {
    let address = address.trim();
    let (domain, rest) = match address.matches(':').count() {
        2 => address.split_once(':')?,
        1 => ("0", address),
        _ => return None,
    };
    let (bus, rest) = rest.split_once(':')?;
    let (device, function) = rest.split_once('.')?;
    let domain = u32::from_str_radix(domain, 16).ok()?;
    let bus = u32::from_str_radix(bus, 16).ok()?;
    let device = u32::from_str_radix(device, 16).ok()?;
    let function = u32::from_str_radix(function, 16).ok()?;
    Some(format!("{domain:04x}:{bus:02x}:{device:02x}.{function:x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_normalise() {
        assert_eq!(
            normalize_pci_address("00000000:01:00.0").as_deref(),
            Some("0000:01:00.0")
        );
        assert_eq!(
            normalize_pci_address("0000:0A:00.1").as_deref(),
            Some("0000:0a:00.1")
        );
        assert_eq!(
            normalize_pci_address("01:00.0").as_deref(),
            Some("0000:01:00.0")
        );
        assert_eq!(normalize_pci_address("simple-framebuffer.0"), None);
    }
}

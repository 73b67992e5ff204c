//! Intel GPUs: integrated or discrete from the PCI address, and the render node Vulkan needs.

use super::{CardFacts, FormFactor, Gpu, GpuInventory};
use crate::accelerator::Accelerator;

/// Intel's integrated GPUs sit at PCI device 00:02.0 (the slot Intel reserves for the iGPU);
/// discrete Arc cards elsewhere. sysfs reports no VRAM for i915/xe.
pub(crate) fn card_facts(pci_address: Option<&str>) -> CardFacts {
    CardFacts {
        memory_bytes: None,
        form_factor: match pci_address {
            Some(address) if address.ends_with("00:02.0") => FormFactor::Integrated,
            Some(_) => FormFactor::Discrete,
            None => FormFactor::Unknown,
        },
    }
}

/// Vulkan needs a render node (`/dev/dri/renderD*`), which the i915 and xe drivers create.
pub(crate) fn usability(inventory: &GpuInventory) -> Result<(), String> {
    if inventory
        .of_vendor(Accelerator::Intel)
        .any(|gpu| gpu.render_node.is_some())
    {
        Ok(())
    } else {
        Err(
            "an Intel GPU is present but has no render node (/dev/dri/renderD*): \
             load the i915 or xe driver"
                .to_string(),
        )
    }
}

/// A card without a render node cannot run Vulkan compute.
pub(crate) fn card_usable(gpu: &Gpu) -> bool {
    gpu.render_node.is_some()
}

//! The device tree each personality boots with, generated from its configuration
//! (never a copy of the board's): its memory, its vCPUs, PSCI and `/chosen`.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use vm_fdt::{FdtWriter, FdtWriterResult};

/// What the generated tree describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestTree<'a> {
    /// The personality's name (also the `model`).
    pub name: &'a str,
    /// RAM base (IPA) and size.
    pub ram: (u64, u64),
    /// Number of vCPUs; vCPU `i` has MPIDR `i`.
    pub vcpus: u32,
    /// Kernel command line.
    pub bootargs: &'a str,
    /// Initial RAM disk (IPA range), if any.
    pub initrd: Option<(u64, u64)>,
}

/// Builds the flattened device tree blob.
///
/// # Errors
/// Only if vm-fdt refuses a property, which the fixed names here never cause.
pub fn generate(tree: &GuestTree<'_>) -> FdtWriterResult<Vec<u8>> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "linux,dummy-virt")?;
    fdt.property_string("model", &alloc::format!("janus,{}", tree.name))?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;

    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", tree.bootargs)?;
    if let Some((start, end)) = tree.initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    fdt.end_node(chosen)?;

    let (base, size) = tree.ram;
    let memory = fdt.begin_node(&alloc::format!("memory@{base:x}"))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[base, size])?;
    fdt.end_node(memory)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for index in 0..tree.vcpus {
        let cpu = fdt.begin_node(&alloc::format!("cpu@{index}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,armv8")?;
        fdt.property_u32("reg", index)?;
        fdt.property_string("enable-method", "psci")?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;

    // Guests reach Janus' PSCI with HVC; SMC is trapped and answered the same way.
    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        vec![String::from("arm,psci-1.0"), String::from("arm,psci-0.2")],
    )?;
    fdt.property_string("method", "hvc")?;
    fdt.end_node(psci)?;

    fdt.end_node(root)?;
    fdt.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> GuestTree<'static> {
        GuestTree {
            name: "work",
            ram: (0x8000_0000, 0x400_0000),
            vcpus: 2,
            bootargs: "probe.after=off",
            initrd: Some((0x8100_0000, 0x8110_0000)),
        }
    }

    #[test]
    fn generated_tree_parses_with_memory_cpus_and_chosen() {
        let blob = generate(&tree()).expect("generate");
        let fdt = fdt::Fdt::new(&blob).expect("parse");
        let region = fdt.memory().regions().next().expect("memory region");
        assert_eq!(region.starting_address as u64, 0x8000_0000);
        assert_eq!(region.size, Some(0x400_0000));
        assert_eq!(fdt.cpus().count(), 2);
        let ids: Vec<usize> = fdt.cpus().map(|cpu| cpu.ids().first()).collect();
        assert_eq!(ids, vec![0, 1]);
        assert_eq!(fdt.chosen().bootargs(), Some("probe.after=off"));
        let psci = fdt.find_node("/psci").expect("psci");
        assert_eq!(
            psci.property("method").and_then(|p| p.as_str()),
            Some("hvc")
        );
        let chosen = fdt.find_node("/chosen").expect("chosen");
        let start = chosen
            .property("linux,initrd-start")
            .and_then(|p| p.as_usize());
        assert_eq!(start, Some(0x8100_0000));
        assert_eq!(fdt.root().model(), "janus,work");
    }

    #[test]
    fn tree_without_initrd_has_no_initrd_properties() {
        let blob = generate(&GuestTree {
            initrd: None,
            ..tree()
        })
        .expect("generate");
        let fdt = fdt::Fdt::new(&blob).expect("parse");
        let chosen = fdt.find_node("/chosen").expect("chosen");
        assert!(chosen.property("linux,initrd-start").is_none());
    }
}

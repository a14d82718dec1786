//! The device tree each personality boots with, generated from its configuration
//! (never a copy of the board's): its memory, its vCPUs, PSCI and `/chosen`.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use vm_fdt::{FdtWriter, FdtWriterResult};

use super::entropy::GuestSeeds;

/// What the generated tree describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// Whether to describe the virtual GICv3, timer and UART (Linux
    /// personalities); bare-metal probes only use hypercalls.
    pub devices: bool,
    /// This start's `/chosen/rng-seed` and `/chosen/kaslr-seed`, when the board
    /// gave Janus boot entropy (`vm/entropy.rs`).
    pub seeds: Option<GuestSeeds>,
    /// Whether to describe the virtio-mmio block device (the personality has a
    /// volume on the disk); only with `devices`.
    pub block: bool,
    /// Whether to describe the virtio-mmio 9P device (the shared folder); only
    /// with `devices`.
    pub shared: bool,
}

/// Where each personality sees its virtual devices (the virt board's addresses,
/// so a Linux kernel built for it needs nothing new).
pub mod layout {
    /// Virtual GICv3 distributor.
    pub const GICD_BASE: u64 = 0x0800_0000;
    /// Size of the distributor window.
    pub const GICD_SIZE: u64 = 0x1_0000;
    /// First virtual redistributor (RD_base then SGI_base, 64 KiB each, per vCPU).
    pub const GICR_BASE: u64 = 0x080A_0000;
    /// Bytes of redistributor per vCPU.
    pub const GICR_STRIDE: u64 = 0x2_0000;
    /// Virtual SBSA UART.
    pub const UART_BASE: u64 = 0x0900_0000;
    /// Size of the UART window.
    pub const UART_SIZE: u64 = 0x1000;
    /// The UART's SPI number (INTID 32 + 1), as on the virt board.
    pub const UART_SPI: u32 = 1;
    /// Secure physical timer PPI number (INTID 16 + 13 = 29): described, as on
    /// the virt board, but never raised (there is no secure state).
    pub const TIMER_SECURE_PPI: u32 = 13;
    /// EL1 physical timer PPI number (INTID 16 + 14 = 30).
    pub const TIMER_PHYS_PPI: u32 = 14;
    /// Virtual timer PPI number (INTID 16 + 11 = 27).
    pub const TIMER_VIRT_PPI: u32 = 11;
    /// EL2 physical timer PPI number (INTID 16 + 10 = 26): described, never
    /// raised (guests run at EL1).
    pub const TIMER_HYP_PPI: u32 = 10;
    /// The UART's fixed line speed, which Linux' sbsa-uart driver requires.
    pub const UART_BAUD: u32 = 115_200;
    /// The virtio-mmio block device (the personality's volume): the virt
    /// board's first virtio-mmio slot.
    pub const BLOCK_BASE: u64 = 0x0a00_0000;
    /// Size of a virtio-mmio window.
    pub const BLOCK_SIZE: u64 = 0x200;
    /// The block device's SPI number (INTID 32 + 16), as the virt board's first slot.
    pub const BLOCK_SPI: u32 = 16;
    /// The virtio-mmio 9P device (the shared folder): the virt board's second slot.
    pub const SHARED_BASE: u64 = 0x0a00_0200;
    /// Size of its window.
    pub const SHARED_SIZE: u64 = 0x200;
    /// Its SPI number (INTID 32 + 17), as the virt board's second slot.
    pub const SHARED_SPI: u32 = 17;
}

/// Interrupt specifier cells (GIC binding): type 0 = SPI, 1 = PPI.
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
/// Level-high trigger (IRQ_TYPE_LEVEL_HIGH).
const IRQ_LEVEL_HIGH: u32 = 4;
/// The GIC's phandle.
const GIC_PHANDLE: u32 = 1;

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
    if tree.devices {
        fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;
    }

    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", tree.bootargs)?;
    if tree.devices {
        let uart = alloc::format!("/uart@{:x}:115200n8", layout::UART_BASE);
        fdt.property_string("stdout-path", &uart)?;
    }
    if let Some((start, end)) = tree.initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    if let Some(seeds) = &tree.seeds {
        fdt.property("rng-seed", &seeds.rng_seed)?;
        fdt.property_u64("kaslr-seed", seeds.kaslr_seed)?;
    }
    fdt.end_node(chosen)?;

    let (base, size) = tree.ram;
    let memory = fdt.begin_node(&alloc::format!("memory@{base:x}"))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[base, size])?;
    fdt.end_node(memory)?;

    if tree.devices {
        devices(&mut fdt, tree)?;
    }

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

/// The virtual GICv3, architected timer and SBSA UART, and `/chosen/stdout-path`.
fn devices(fdt: &mut FdtWriter, tree: &GuestTree<'_>) -> FdtWriterResult<()> {
    use layout::*;

    let gic = fdt.begin_node(&alloc::format!("intc@{GICD_BASE:x}"))?;
    fdt.property_string("compatible", "arm,gic-v3")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("#redistributor-regions", 1)?;
    let redistributors = GICR_STRIDE * u64::from(tree.vcpus);
    fdt.property_array_u64("reg", &[GICD_BASE, GICD_SIZE, GICR_BASE, redistributors])?;
    fdt.property_phandle(GIC_PHANDLE)?;
    fdt.end_node(gic)?;

    // The four architected timer PPIs (secure, non-secure physical, virtual,
    // hypervisor), level high, to every vCPU (CPU mask in bits [15:8]).
    let cpu_mask = ((1u32 << tree.vcpus.min(8)) - 1) << 8;
    let flags = cpu_mask | IRQ_LEVEL_HIGH;
    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    fdt.property_array_u32(
        "interrupts",
        &[
            GIC_PPI,
            TIMER_SECURE_PPI,
            flags,
            GIC_PPI,
            TIMER_PHYS_PPI,
            flags,
            GIC_PPI,
            TIMER_VIRT_PPI,
            flags,
            GIC_PPI,
            TIMER_HYP_PPI,
            flags,
        ],
    )?;
    fdt.end_node(timer)?;

    let uart_name = alloc::format!("uart@{UART_BASE:x}");
    let uart = fdt.begin_node(&uart_name)?;
    fdt.property_string("compatible", "arm,sbsa-uart")?;
    fdt.property_array_u64("reg", &[UART_BASE, UART_SIZE])?;
    fdt.property_array_u32("interrupts", &[GIC_SPI, UART_SPI, IRQ_LEVEL_HIGH])?;
    fdt.property_u32("current-speed", UART_BAUD)?;
    fdt.end_node(uart)?;

    let slots = [
        (tree.block, BLOCK_BASE, BLOCK_SIZE, BLOCK_SPI),
        (tree.shared, SHARED_BASE, SHARED_SIZE, SHARED_SPI),
    ];
    for (_, base, size, spi) in slots.into_iter().filter(|slot| slot.0) {
        let node = fdt.begin_node(&alloc::format!("virtio_mmio@{base:x}"))?;
        fdt.property_string("compatible", "virtio,mmio")?;
        fdt.property_array_u64("reg", &[base, size])?;
        fdt.property_array_u32("interrupts", &[GIC_SPI, spi, IRQ_LEVEL_HIGH])?;
        fdt.property_null("dma-coherent")?;
        fdt.end_node(node)?;
    }

    let aliases = fdt.begin_node("aliases")?;
    fdt.property_string("serial0", &alloc::format!("/{uart_name}"))?;
    fdt.end_node(aliases)?;
    Ok(())
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
            devices: true,
            seeds: None,
            block: false,
            shared: false,
        }
    }

    #[test]
    fn seeds_go_into_chosen_and_only_when_given() {
        let blob = generate(&tree()).expect("generate");
        let fdt = fdt::Fdt::new(&blob).expect("parse");
        let chosen = fdt.find_node("/chosen").expect("chosen");
        assert!(chosen.property("rng-seed").is_none());
        assert!(chosen.property("kaslr-seed").is_none());
        let seeds = GuestSeeds {
            rng_seed: [0xa5; crate::vm::entropy::RNG_SEED_BYTES],
            kaslr_seed: 0x0123_4567_89ab_cdef,
        };
        let blob = generate(&GuestTree {
            seeds: Some(seeds),
            ..tree()
        })
        .expect("generate");
        let fdt = fdt::Fdt::new(&blob).expect("parse");
        let chosen = fdt.find_node("/chosen").expect("chosen");
        let rng = chosen.property("rng-seed").expect("rng-seed").value;
        assert_eq!(rng, &seeds.rng_seed[..]);
        let kaslr = chosen.property("kaslr-seed").expect("kaslr-seed").value;
        assert_eq!(kaslr, &0x0123_4567_89ab_cdef_u64.to_be_bytes()[..]);
    }

    #[test]
    fn memory_above_4_gib_keeps_all_64_bits_of_its_address() {
        let blob = generate(&GuestTree {
            ram: (0x2_3000_0000, 0x1000_0000),
            initrd: Some((0x2_3200_0000, 0x2_3210_0000)),
            ..tree()
        })
        .expect("generate");
        let fdt = fdt::Fdt::new(&blob).expect("parse");
        let region = fdt.memory().regions().next().expect("memory region");
        assert_eq!(region.starting_address as u64, 0x2_3000_0000);
        assert_eq!(region.size, Some(0x1000_0000));
        let chosen = fdt.find_node("/chosen").expect("chosen");
        let start = chosen
            .property("linux,initrd-start")
            .and_then(|p| p.as_usize());
        assert_eq!(start, Some(0x2_3200_0000));
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
            devices: false,
            ..tree()
        })
        .expect("generate");
        let fdt = fdt::Fdt::new(&blob).expect("parse");
        let chosen = fdt.find_node("/chosen").expect("chosen");
        assert!(chosen.property("linux,initrd-start").is_none());
        assert!(fdt.find_compatible(&["arm,gic-v3"]).is_none());
    }

    #[test]
    fn linux_tree_describes_gic_timer_and_uart() {
        let blob = generate(&tree()).expect("generate");
        let fdt = fdt::Fdt::new(&blob).expect("parse");
        let gic = fdt.find_compatible(&["arm,gic-v3"]).expect("gic");
        let regs: Vec<(usize, Option<usize>)> = gic
            .reg()
            .expect("gic reg")
            .map(|r| (r.starting_address as usize, r.size))
            .collect();
        assert_eq!(
            regs,
            vec![(0x0800_0000, Some(0x1_0000)), (0x080A_0000, Some(0x4_0000))]
        );
        assert!(gic.property("interrupt-controller").is_some());
        let timer = fdt.find_compatible(&["arm,armv8-timer"]).expect("timer");
        let cells = timer
            .property("interrupts")
            .expect("timer interrupts")
            .value;
        // Second specifier: the EL1 physical timer, PPI 14; third: the virtual
        // timer, PPI 11; both level high, CPUs 0-1.
        assert_eq!(&cells[12..24], &[0, 0, 0, 1, 0, 0, 0, 14, 0, 0, 3, 4]);
        assert_eq!(&cells[24..36], &[0, 0, 0, 1, 0, 0, 0, 11, 0, 0, 3, 4]);
        let uart = fdt.find_compatible(&["arm,sbsa-uart"]).expect("uart");
        let base = uart
            .reg()
            .and_then(|mut r| r.next())
            .map(|r| r.starting_address as u64);
        assert_eq!(base, Some(0x0900_0000));
        assert_eq!(
            uart.property("current-speed").and_then(|p| p.as_usize()),
            Some(115_200)
        );
        let chosen = fdt.find_node("/chosen").expect("chosen");
        let stdout = chosen.property("stdout-path").and_then(|p| p.as_str());
        assert_eq!(stdout, Some("/uart@9000000:115200n8"));
    }

    #[test]
    fn a_personality_with_a_volume_gets_a_virtio_mmio_node_on_spi_16() {
        let blob = generate(&tree()).expect("generate");
        let fdt = fdt::Fdt::new(&blob).expect("parse");
        assert!(fdt.find_compatible(&["virtio,mmio"]).is_none());
        let blob = generate(&GuestTree {
            block: true,
            ..tree()
        })
        .expect("generate");
        let fdt = fdt::Fdt::new(&blob).expect("parse");
        let block = fdt.find_compatible(&["virtio,mmio"]).expect("virtio node");
        let reg = block.reg().and_then(|mut r| r.next()).expect("reg");
        assert_eq!(reg.starting_address as u64, 0x0a00_0000);
        assert_eq!(reg.size, Some(0x200));
        let cells = block.property("interrupts").expect("interrupts").value;
        assert_eq!(cells, &[0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 4]);
        assert!(block.property("dma-coherent").is_some());
    }

    #[test]
    fn the_shared_folder_gets_the_second_virtio_mmio_slot_on_spi_17() {
        let blob = generate(&GuestTree {
            block: true,
            shared: true,
            ..tree()
        })
        .expect("generate");
        let fdt = fdt::Fdt::new(&blob).expect("parse");
        let nodes: alloc::vec::Vec<_> = fdt
            .all_nodes()
            .filter(|node| node.name.starts_with("virtio_mmio@"))
            .collect();
        assert_eq!(nodes.len(), 2);
        let shared = nodes
            .iter()
            .find(|node| node.name == "virtio_mmio@a000200")
            .expect("shared node");
        let reg = shared.reg().and_then(|mut r| r.next()).expect("reg");
        assert_eq!(reg.starting_address as u64, 0x0a00_0200);
        assert_eq!(reg.size, Some(0x200));
        let cells = shared.property("interrupts").expect("interrupts").value;
        assert_eq!(cells, &[0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 4]);
    }
}

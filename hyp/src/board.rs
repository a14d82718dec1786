//! The board as its boot device tree describes it: CPUs, RAM, console UART,
//! GIC, the firmware's PSCI conduit, the virtio-mmio slots and the boot bundle
//! (the initrd).
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use fdt::Fdt;

/// Most RAM regions Janus keeps track of.
pub const MAX_RAM_REGIONS: usize = 8;

/// How the firmware takes PSCI calls (`/psci/method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciMethod {
    /// `smc #0`.
    Smc,
    /// `hvc #0`.
    Hvc,
}

/// A hardware key on a PL061 GPIO line (the virt board's power button).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HardwareKey {
    /// PL061 base address.
    pub base: u64,
    /// The PL061's SPI number.
    pub spi: u32,
    /// The key's GPIO line.
    pub line: u8,
}

/// One `virtio,mmio` transport window (QEMU virt has 32, most of them empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioMmio {
    /// Base address of its registers.
    pub base: u64,
    /// Bytes of its register window.
    pub size: u64,
    /// Its SPI number (INTID 32 + spi).
    pub spi: u32,
}

/// The parts of the board Janus uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Board {
    /// `model` of the root node.
    pub model: String,
    /// MPIDR affinity of each CPU, in `/cpus` order (the index is Janus' CPU index).
    pub cpus: Vec<u64>,
    /// RAM regions (base, size).
    pub ram: Vec<(u64, u64)>,
    /// PL011 base address.
    pub uart: u64,
    /// GICv3 distributor and first redistributor.
    pub gicd: u64,
    /// First GICv3 redistributor frame.
    pub gicr: u64,
    /// Firmware PSCI conduit.
    pub psci: PsciMethod,
    /// The boot bundle the loader placed as the initrd: (start, end).
    pub initrd: Option<(u64, u64)>,
    /// The hardware key that switches personalities, if the board has one.
    pub key: Option<HardwareKey>,
    /// The boot entropy the loader put in `/chosen`: `rng-seed`, then
    /// `kaslr-seed` (empty when there is none).
    pub boot_seed: Vec<u8>,
    /// Every `virtio,mmio` node with a `reg` and an SPI, by ascending base.
    pub virtio_mmio: Vec<VirtioMmio>,
    /// The PL031 real-time clock's base address, if the board has one (QEMU
    /// virt does): the audit log's wall-clock time. Janus keeps it to itself.
    pub rtc: Option<u64>,
}

/// The base of the first `arm,pl031` node with a `reg` and a nonzero size.
fn rtc(fdt: &Fdt<'_>) -> Option<u64> {
    fdt.all_nodes()
        .filter(|node| {
            node.compatible()
                .is_some_and(|compatible| compatible.all().any(|name| name == "arm,pl031"))
        })
        .filter_map(|node| node.reg()?.next())
        .find(|region| region.size.is_some_and(|size| size > 0))
        .map(|region| region.starting_address as u64)
}

/// The big-endian 32-bit cells of a property.
fn cells(value: &[u8]) -> impl Iterator<Item = u32> + '_ {
    value
        .chunks_exact(4)
        .filter_map(|cell| <[u8; 4]>::try_from(cell).ok().map(u32::from_be_bytes))
}

/// The first `gpio-keys` key wired to a PL061: its controller, SPI and line.
fn hardware_key(fdt: &Fdt<'_>) -> Option<HardwareKey> {
    let gpio = fdt.find_compatible(&["arm,pl061"])?;
    let base = gpio.reg()?.next()?.starting_address as u64;
    // interrupts = <type number flags>; type 0 is an SPI.
    let mut interrupt = cells(gpio.property("interrupts")?.value);
    let (kind, spi) = (interrupt.next()?, interrupt.next()?);
    if kind != 0 {
        return None;
    }
    let phandle = gpio.property("phandle")?.as_usize()? as u32;
    let keys = fdt.find_compatible(&["gpio-keys"])?;
    let line = keys.children().find_map(|key| {
        let mut specifier = cells(key.property("gpios")?.value);
        (specifier.next()? == phandle).then(|| specifier.next())?
    })?;
    Some(HardwareKey {
        base,
        spi,
        line: u8::try_from(line).ok()?,
    })
}

/// The `virtio,mmio` nodes with a register window and an SPI, by ascending base
/// (QEMU writes them in descending order; the lowest slot comes first here).
fn virtio_mmio(fdt: &Fdt<'_>) -> Vec<VirtioMmio> {
    let mut slots: Vec<VirtioMmio> = Vec::new();
    let nodes = fdt.all_nodes().filter(|node| {
        node.compatible()
            .is_some_and(|compatible| compatible.all().any(|name| name == "virtio,mmio"))
    });
    for node in nodes {
        let Some(region) = node.reg().and_then(|mut reg| reg.next()) else {
            continue;
        };
        let size = region.size.unwrap_or(0) as u64;
        // interrupts = <type number flags>; type 0 is an SPI.
        let mut interrupt = node
            .property("interrupts")
            .map(|property| cells(property.value))
            .into_iter()
            .flatten();
        let (Some(0), Some(spi)) = (interrupt.next(), interrupt.next()) else {
            continue;
        };
        if size == 0 {
            continue;
        }
        let base = region.starting_address as u64;
        // An insertion keeps the list ordered without a sort (32 slots at most
        // on QEMU virt; a sort costs kilobytes of image).
        let at = slots.partition_point(|slot| slot.base < base);
        slots.insert(at, VirtioMmio { base, size, spi });
    }
    slots
}

/// What is missing from the boot device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardError {
    /// No `/cpus/cpu` node.
    NoCpus,
    /// No `/memory` region.
    NoMemory,
    /// No `arm,pl011` node with a `reg`.
    NoUart,
    /// No `arm,gic-v3` node with distributor and redistributor `reg` entries.
    NoGicV3,
    /// No `/psci` node with `method = "smc"` or `"hvc"`.
    NoPsci,
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            BoardError::NoCpus => "no CPUs in /cpus",
            BoardError::NoMemory => "no memory node",
            BoardError::NoUart => "no arm,pl011 UART",
            BoardError::NoGicV3 => "no arm,gic-v3 interrupt controller",
            BoardError::NoPsci => "no /psci node with a known method",
        };
        f.write_str(text)
    }
}

impl Board {
    /// Reads the board from its (trusted) boot device tree.
    ///
    /// # Errors
    /// A `BoardError` naming the first thing Janus needs and cannot find.
    pub fn from_fdt(fdt: &Fdt<'_>) -> Result<Board, BoardError> {
        let cpus: Vec<u64> = fdt.cpus().map(|cpu| cpu.ids().first() as u64).collect();
        if cpus.is_empty() {
            return Err(BoardError::NoCpus);
        }
        let ram: Vec<(u64, u64)> = fdt
            .memory()
            .regions()
            .filter_map(|region| {
                let size = region.size? as u64;
                (size > 0).then_some((region.starting_address as u64, size))
            })
            .take(MAX_RAM_REGIONS)
            .collect();
        if ram.is_empty() {
            return Err(BoardError::NoMemory);
        }
        let uart = fdt
            .find_compatible(&["arm,pl011"])
            .and_then(|node| node.reg()?.next())
            .map(|region| region.starting_address as u64)
            .ok_or(BoardError::NoUart)?;
        let mut gic_regs = fdt
            .find_compatible(&["arm,gic-v3"])
            .and_then(|node| node.reg())
            .ok_or(BoardError::NoGicV3)?;
        let gicd = gic_regs.next().ok_or(BoardError::NoGicV3)?.starting_address as u64;
        let gicr = gic_regs.next().ok_or(BoardError::NoGicV3)?.starting_address as u64;
        let psci = match fdt
            .find_node("/psci")
            .and_then(|node| node.property("method"))
            .and_then(|method| method.as_str())
        {
            Some("smc") => PsciMethod::Smc,
            Some("hvc") => PsciMethod::Hvc,
            _ => return Err(BoardError::NoPsci),
        };
        let initrd = fdt.find_node("/chosen").and_then(|chosen| {
            let start = chosen.property("linux,initrd-start")?.as_usize()? as u64;
            let end = chosen.property("linux,initrd-end")?.as_usize()? as u64;
            (end > start).then_some((start, end))
        });
        let key = hardware_key(fdt);
        let mut boot_seed = Vec::new();
        if let Some(chosen) = fdt.find_node("/chosen") {
            for name in ["rng-seed", "kaslr-seed"] {
                if let Some(property) = chosen.property(name) {
                    boot_seed.extend_from_slice(property.value);
                }
            }
        }
        Ok(Board {
            rtc: rtc(fdt),
            virtio_mmio: virtio_mmio(fdt),
            boot_seed,
            key,
            model: String::from(fdt.root().model()),
            cpus,
            ram,
            uart,
            gicd,
            gicr,
            psci,
            initrd,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU 7.2's own device tree for `-M virt,virtualization=on,gic-version=3
    /// -cpu cortex-a72 -smp 4 -m 2G` (`dumpdtb=`, compacted with dtc).
    const QEMU_VIRT: &[u8] = include_bytes!("board/qemu-virt-gicv3-smp4-2g.dtb");

    #[test]
    fn qemu_virt_board_is_read_from_its_device_tree() {
        let fdt = Fdt::new(QEMU_VIRT).expect("QEMU's device tree parses");
        let board = Board::from_fdt(&fdt).expect("board");
        assert_eq!(board.cpus, [0, 1, 2, 3]);
        assert_eq!(board.ram, [(0x4000_0000, 2 << 30)]);
        assert_eq!(board.uart, 0x0900_0000);
        assert_eq!((board.gicd, board.gicr), (0x0800_0000, 0x080a_0000));
        assert_eq!(board.psci, PsciMethod::Smc);
        assert_eq!(
            board.key,
            Some(HardwareKey {
                base: 0x0903_0000,
                spi: 7,
                line: 3
            })
        );
        // QEMU's 32-byte rng-seed and 8-byte kaslr-seed.
        assert_eq!(board.boot_seed.len(), 40);
        assert_eq!(board.rtc, Some(0x0901_0000));
    }

    #[test]
    fn a_board_without_a_pl031_has_no_rtc() {
        let fdt = Fdt::new(QEMU_VIRT).expect("QEMU's device tree parses");
        // The same tree with the compatible string renamed.
        let mut bytes = QEMU_VIRT.to_vec();
        let at = bytes
            .windows(9)
            .position(|window| window == b"arm,pl031")
            .expect("QEMU virt has a PL031");
        bytes[at + 4] = b'X';
        let renamed = Fdt::new(&bytes).expect("still parses");
        assert_eq!(Board::from_fdt(&renamed).expect("board").rtc, None);
        assert!(Board::from_fdt(&fdt).expect("board").rtc.is_some());
    }

    #[test]
    fn virtio_mmio_slots_are_listed_by_ascending_base() {
        let fdt = Fdt::new(QEMU_VIRT).expect("QEMU's device tree parses");
        let board = Board::from_fdt(&fdt).expect("board");
        // QEMU virt: 32 slots of 0x200 bytes from 0x0a00_0000, SPI 16 + n.
        assert_eq!(board.virtio_mmio.len(), 32);
        for (n, slot) in board.virtio_mmio.iter().enumerate() {
            let n = n as u64;
            assert_eq!(
                *slot,
                VirtioMmio {
                    base: 0x0a00_0000 + n * 0x200,
                    size: 0x200,
                    spi: 16 + n as u32,
                }
            );
        }
    }
}

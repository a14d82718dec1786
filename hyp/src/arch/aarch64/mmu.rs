//! Janus' own EL2 stage-1 translation: one identity-mapped level-1 table of
//! 1 GiB blocks, extended once the board's RAM is known.
//!
//! The entry code builds the boot map and turns the MMU on before any Rust runs
//! with caches off (unaligned accesses, which the compiler may emit, fault on
//! the Device memory that everything is with the MMU off). It maps the first
//! GiB (the virt board's devices) as Device-nGnRE and never executable, and
//! 1-4 GiB (RAM on the virt board) as write-back cacheable. After reading the
//! device tree, the boot CPU adds the rest of the board's RAM ([`map_ram`],
//! planned by `mm/hyp_map.rs`) before any other CPU starts.

use core::arch::asm;
use core::cell::UnsafeCell;

use aarch64_cpu::registers::{SCTLR_EL2, TCR_EL2};
use spin::Mutex;

use crate::mm::addr::BLOCK_1G;
use crate::mm::frame::FrameSource;
use crate::mm::hyp_map::{
    self, device_block, existing, ram_block, table_descriptor, Existing, MapLimits, Mapping,
    RamMap, TABLE_ENTRIES,
};
use crate::mm::stage2::IPA_BITS;

use super::heap::GlobalFrames;

pub use crate::mm::hyp_map::MAIR_EL2_VALUE;

/// Bits of virtual address TCR_EL2.T0SZ gives: with a level-1 root of 1 GiB
/// blocks, 512 GiB.
const VA_BITS: u32 = 39;
/// Bits of output address TCR_EL2.PS allows (`Bits_40` below).
const OUTPUT_BITS: u32 = 40;
/// The end of the boot map: [`BOOT_BLOCKS`] covers every GiB below it.
const BOOT_END: u64 = BOOT_BLOCKS.len() as u64 * BLOCK_1G;
/// The RAM part of the boot map, `[start, end)`: every block but the first.
const BOOT_RAM: (u64, u64) = (BLOCK_1G, BOOT_END);

/// The boot identity map, shared by every CPU: a level-1 table in .bss that
/// the boot CPU's entry code fills (after zeroing .bss, before any CPU turns
/// its MMU on) with [`BOOT_BLOCKS`]. Not a constant in the image: that would
/// cost a page of the image and page-align everything after it.
#[repr(C, align(4096))]
pub struct BootTable(UnsafeCell<[u64; TABLE_ENTRIES]>);

// SAFETY: the boot CPU's entry code writes the first entries before any other
// CPU runs; afterwards only `map_ram` writes it, under `TABLE_LOCK`, turning
// invalid entries valid, on the boot CPU before the other CPUs start. Nothing
// else in Rust accesses its contents.
unsafe impl Sync for BootTable {}

/// The table TTBR0_EL2 points at.
pub static BOOT_TABLE: BootTable = BootTable(UnsafeCell::new([0; TABLE_ENTRIES]));

/// Held while `map_ram` writes Janus' tables (by the boot CPU, once).
static TABLE_LOCK: Mutex<()> = Mutex::new(());

/// The first entries of [`BOOT_TABLE`] (the rest stay invalid until
/// [`map_ram`]): the first GiB (the virt board's devices) as Device-nGnRE and
/// never executable, 1-4 GiB as write-back cacheable RAM, executable since
/// Janus' image is there. `entry.S` writes exactly these four.
pub const BOOT_BLOCKS: [u64; 4] = [
    device_block(0),
    ram_block(BLOCK_1G, true),
    ram_block(2 * BLOCK_1G, true),
    ram_block(3 * BLOCK_1G, true),
];

/// Whether `[address, address + len)` lies in the boot map's RAM: what Janus
/// can read before [`map_ram`] (the loader's device tree).
pub fn in_boot_ram(address: u64, len: u64) -> bool {
    address >= BOOT_RAM.0
        && address
            .checked_add(len)
            .is_some_and(|end| end <= BOOT_RAM.1)
}

/// Whether `[address, address + len)` lies in the first GiB, which every map
/// of Janus' has as Device memory (the virt board's devices).
pub fn in_device_map(address: u64, len: u64) -> bool {
    address.checked_add(len).is_some_and(|end| end <= BLOCK_1G)
}

/// Why Janus' map could not take a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmuError {
    /// The block's level-1 entry is past the table or already a block.
    EntryInUse(Mapping),
    /// No page-table frame for a level-2 table.
    NoFrame,
}

impl core::fmt::Display for MmuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MmuError::EntryInUse(block) => {
                write!(f, "the entry for RAM at {:#x} is in use", block.range().0)
            }
            MmuError::NoFrame => f.write_str("no page-table frame for a level-2 table"),
        }
    }
}

/// Adds the board's `ram` (from the device tree) to Janus' map, as far as it
/// reaches on a CPU with `pa_range_bits` of physical address, and returns what
/// it maps and what it leaves unused. Call once, on the boot CPU, before any
/// other CPU starts (they turn their MMU on with the same table later).
///
/// # Errors
/// An `MmuError` when a block's entry is taken or a level-2 table cannot be
/// had; blocks written before stay (valid, and RAM).
pub fn map_ram(ram: &[(u64, u64)], pa_range_bits: u32) -> Result<RamMap, MmuError> {
    let limits = MapLimits {
        boot_end: BOOT_END,
        boot_ram: BOOT_RAM,
        reach: hyp_map::reach_bytes(VA_BITS, OUTPUT_BITS, pa_range_bits, IPA_BITS),
    };
    let map = hyp_map::plan(ram, &limits);
    let _guard = TABLE_LOCK.lock();
    let level1 = BOOT_TABLE.0.get().cast::<u64>();
    let result = map.added.iter().try_for_each(|&block| {
        let index = block.level1_index();
        if index >= TABLE_ENTRIES {
            return Err(MmuError::EntryInUse(block));
        }
        // SAFETY: `index` is inside the table; the lock makes this the only
        // writer, and the MMU only reads it.
        let entry = unsafe { level1.add(index) };
        match block {
            Mapping::Block1G(_) => {
                // SAFETY: as above.
                if existing(unsafe { entry.read_volatile() }) != Existing::Invalid {
                    return Err(MmuError::EntryInUse(block));
                }
                // SAFETY: an invalid entry turned valid needs no
                // break-before-make; nothing runs from or reads this RAM yet.
                unsafe { entry.write_volatile(block.descriptor()) };
                Ok(())
            }
            Mapping::Block2M(_) => {
                // SAFETY: `entry` points into the table (above), under the lock.
                let table = unsafe { level2_table(entry, block) }?;
                // SAFETY: a level-2 table has 512 entries and `level2_index` is
                // below 512; the lock makes this the only writer.
                let entry = unsafe { table.add(block.level2_index()) };
                // SAFETY: as above.
                if existing(unsafe { entry.read_volatile() }) != Existing::Invalid {
                    return Err(MmuError::EntryInUse(block));
                }
                // SAFETY: invalid to valid, as for a 1 GiB block.
                unsafe { entry.write_volatile(block.descriptor()) };
                Ok(())
            }
        }
    });
    // SAFETY: barriers change no data. DSB ISHST completes the descriptor
    // writes for every CPU's table walker, the ISB makes this CPU use them.
    unsafe { asm!("dsb ishst", "isb", options(nostack)) };
    result.map(|()| map)
}

/// The level-2 table under level-1 `entry`, for `block`: a zeroed frame is
/// made the table first if the entry is invalid.
///
/// # Safety
/// `entry` must point into [`BOOT_TABLE`], with `TABLE_LOCK` held.
unsafe fn level2_table(entry: *mut u64, block: Mapping) -> Result<*mut u64, MmuError> {
    // SAFETY: the caller's contract.
    let table = match existing(unsafe { entry.read_volatile() }) {
        Existing::Table(pa) => pa,
        Existing::Block => return Err(MmuError::EntryInUse(block)),
        Existing::Invalid => {
            let pa = GlobalFrames.alloc_zeroed().ok_or(MmuError::NoFrame)?;
            // SAFETY: the frame is zeroed (every entry invalid), so the walker
            // finds nothing in it before its blocks are written.
            unsafe { entry.write_volatile(table_descriptor(pa.0)) };
            pa
        }
    };
    // Frames are identity mapped in Janus' map (they lie in its .bss).
    Ok(GlobalFrames.pa_to_ptr(table).as_ptr().cast::<u64>())
}

/// TCR_EL2: 39-bit VA (T0SZ 25, walks start at level 1), 4 KiB granule,
/// write-back inner shareable walks, 40-bit output addresses.
pub const TCR_EL2_VALUE: u64 = TCR_EL2::T0SZ.val((u64::BITS - VA_BITS) as u64).value
    | TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable.value
    | TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable.value
    | TCR_EL2::SH0::Inner.value
    | TCR_EL2::TG0::KiB_4.value
    | TCR_EL2::PS::Bits_40.value
    | TCR_EL2_RES1;
/// TCR_EL2 bits 31 and 23 are RES1 when HCR_EL2.E2H is 0.
const TCR_EL2_RES1: u64 = (1 << 31) | (1 << 23);

/// SCTLR_EL2 bits that are RES1 when HCR_EL2.E2H is 0 (bits 4, 5, 11, 16, 18, 22, 23, 28, 29).
const SCTLR_EL2_RES1: u64 = 0x30c5_0830;
/// SCTLR_EL2: MMU, data and instruction caches, stack alignment check on.
pub const SCTLR_EL2_VALUE: u64 = SCTLR_EL2_RES1
    | SCTLR_EL2::M::Enable.value
    | SCTLR_EL2::C::Cacheable.value
    | SCTLR_EL2::I::Cacheable.value
    | SCTLR_EL2::SA::Enable.value;

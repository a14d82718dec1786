//! Janus' own EL2 stage-1 translation: one identity-mapped level-1 table of 1 GiB blocks.
//!
//! The entry code builds the table and turns the MMU on before any Rust runs
//! with caches off (unaligned accesses, which the compiler may emit, fault on
//! the Device memory that everything is with the MMU off). It maps the first
//! GiB (the virt board's devices) as Device-nGnRE and never executable, and
//! 1-4 GiB (RAM on the virt board) as write-back cacheable.

use core::cell::UnsafeCell;

use aarch64_cpu::registers::{SCTLR_EL2, TCR_EL2};

/// Bytes covered by one level-1 entry with a 4 KiB granule.
const GIB: u64 = 1 << 30;
/// Number of descriptors in a 4 KiB table.
const ENTRIES: usize = 512;

/// MAIR_EL2 attribute index 0: Device-nGnRE.
const ATTR_DEVICE: u64 = 0;
/// MAIR_EL2 attribute index 1: Normal, inner/outer write-back read/write-allocate.
const ATTR_NORMAL: u64 = 1;
/// MAIR_EL2: Attr0 = 0x04 (Device-nGnRE), Attr1 = 0xff (Normal WB RWA).
pub const MAIR_EL2_VALUE: u64 = 0x04 | (0xff << 8);

/// Stage-1 block descriptor bits (Arm ARM D8.3, VMSAv8-64 descriptor formats).
const DESC_VALID_BLOCK: u64 = 0b01;
const DESC_ATTR_INDEX_SHIFT: u64 = 2;
/// AP[2:1] = 0b00: read/write at EL2. AP[1] is RES1 in the EL2 regime, so set it.
const DESC_AP_RES1: u64 = 1 << 6;
const DESC_SH_INNER: u64 = 0b11 << 8;
const DESC_AF: u64 = 1 << 10;
/// XN for the EL2 regime (bit 54).
const DESC_XN: u64 = 1 << 54;

const fn block(pa: u64, attr: u64, extra: u64) -> u64 {
    pa | DESC_VALID_BLOCK | (attr << DESC_ATTR_INDEX_SHIFT) | DESC_AP_RES1 | DESC_AF | extra
}

/// The boot identity map, shared by every CPU: a level-1 table in .bss that
/// the boot CPU's entry code fills (after zeroing .bss, before any CPU turns
/// its MMU on) with [`BOOT_BLOCKS`]. Not a constant in the image: that would
/// cost a page of the image and page-align everything after it.
#[repr(C, align(4096))]
pub struct BootTable(UnsafeCell<[u64; ENTRIES]>);

// SAFETY: only the boot CPU's entry code writes the table, before any other CPU
// runs; afterwards only the MMU reads it. Rust never accesses its contents.
unsafe impl Sync for BootTable {}

/// The table TTBR0_EL2 points at.
pub static BOOT_TABLE: BootTable = BootTable(UnsafeCell::new([0; ENTRIES]));

/// The first entries of [`BOOT_TABLE`] (the rest stay invalid): the first GiB
/// (the virt board's devices) as Device-nGnRE and never executable, 1-4 GiB as
/// write-back cacheable RAM. `entry.S` writes exactly these four.
pub const BOOT_BLOCKS: [u64; 4] = [
    block(0, ATTR_DEVICE, DESC_XN),
    block(GIB, ATTR_NORMAL, DESC_SH_INNER),
    block(2 * GIB, ATTR_NORMAL, DESC_SH_INNER),
    block(3 * GIB, ATTR_NORMAL, DESC_SH_INNER),
];

/// TCR_EL2: 39-bit VA (T0SZ 25, walks start at level 1), 4 KiB granule,
/// write-back inner shareable walks, 40-bit output addresses.
pub const TCR_EL2_VALUE: u64 = TCR_EL2::T0SZ.val(25).value
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

//! Entry from reset: the arm64 Image header, stacks, the boot stage-1 map and the jump to Rust.

use core::arch::global_asm;
use core::cell::UnsafeCell;

use super::mmu::{BOOT_BLOCKS, BOOT_TABLE, MAIR_EL2_VALUE, SCTLR_EL2_VALUE, TCR_EL2_VALUE};

/// Largest number of physical CPUs Janus drives; CPUs past this stay with the firmware.
pub const MAX_CPUS: usize = 8;
/// Bytes of stack per physical CPU.
pub const STACK_SIZE: usize = 16 * 1024;
/// Where the linker script places Janus (see `linker.ld`).
pub const HYP_BASE: u64 = 0x4020_0000;

/// Image header flags: bit 0 little endian (0), bits 1-2 page size 4 KiB (1),
/// bit 3 "may be placed anywhere in RAM" (1).
const IMAGE_FLAGS: u64 = 0b1010;
/// `CurrentEL` reads EL in bits [3:2]: EL2 is 0b1000.
const CURRENT_EL_EL2: u64 = 2 << 2;

/// One stack per physical CPU. Rust never reads or writes it as an object: the
/// entry code turns the address of slot `i` into CPU `i`'s stack pointer.
#[repr(C, align(16))]
struct Stacks(UnsafeCell<[[u8; STACK_SIZE]; MAX_CPUS]>);

// SAFETY: each slot is used only by the CPU whose index it has, as its stack.
unsafe impl Sync for Stacks {}

static STACKS: Stacks = Stacks(UnsafeCell::new([[0; STACK_SIZE]; MAX_CPUS]));

global_asm!(
    include_str!("entry.S"),
    IMAGE_FLAGS = const IMAGE_FLAGS,
    CURRENT_EL_EL2 = const CURRENT_EL_EL2,
    HYP_BASE = const HYP_BASE,
    STACK_SIZE = const STACK_SIZE,
    STACKS = sym STACKS,
    MAIR = const MAIR_EL2_VALUE,
    TCR = const TCR_EL2_VALUE,
    SCTLR = const SCTLR_EL2_VALUE,
    BOOT_TABLE = sym BOOT_TABLE,
    BLOCK0 = const BOOT_BLOCKS[0],
    BLOCK1 = const BOOT_BLOCKS[1],
    BLOCK2 = const BOOT_BLOCKS[2],
    BLOCK3 = const BOOT_BLOCKS[3],
    RUST_ENTRY = sym super::boot::rust_entry,
);

unsafe extern "C" {
    /// Where secondary CPUs start (from `entry.S`); x0 carries their CPU index.
    pub fn secondary_entry();
    static __hyp_start: u8;
    static __hyp_end: u8;
    static __image_end: u8;
}

/// The physical range Janus keeps for itself: image, data, stacks, heap and frame pool.
pub fn reserved_range() -> (u64, u64) {
    (
        core::ptr::addr_of!(__hyp_start) as u64,
        core::ptr::addr_of!(__hyp_end) as u64,
    )
}

/// Bytes of the loaded image file (text, rodata, data).
pub fn image_bytes() -> u64 {
    core::ptr::addr_of!(__image_end) as u64 - core::ptr::addr_of!(__hyp_start) as u64
}

/// Lowest address of the per-CPU stacks.
pub fn stacks_base() -> u64 {
    STACKS.0.get() as u64
}

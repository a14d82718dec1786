//! Everything that touches the CPU directly: entry, vectors, system registers,
//! the physical GIC, firmware calls, guest memory and the guest run loop.
//! The only place in Janus with `asm!`, `global_asm!` and raw pointers.

pub mod boot;
pub mod channel;
pub mod context;
pub mod entry;
pub mod exception;
pub mod firmware;
pub mod gic;
pub mod heap;
pub mod hyp_timer;
pub mod ich;
pub mod key;
pub mod memory;
pub mod mmu;
pub mod percpu;
pub mod rtc;
pub mod run;
pub mod storage;
pub mod timer;
pub mod uart;
pub mod vectors;
pub mod vgic_sync;

/// Bytes at the start of a flattened device tree that hold its magic and its
/// `totalsize` (Devicetree Specification 5.2, "Header").
const FDT_TOTALSIZE_END: u64 = 8;
/// Offset of `totalsize` (big-endian 32 bits) in the header.
const FDT_TOTALSIZE_OFFSET: u64 = 4;

/// The boot device tree at `address`, or `None` when it does not lie wholly in
/// the boot map's RAM (the only RAM Janus can read before it knows the board)
/// or does not parse.
///
/// # Safety
/// `address` must hold a device tree the loader placed there, which stays
/// untouched for as long as Janus runs.
pub unsafe fn boot_fdt(address: u64) -> Option<fdt::Fdt<'static>> {
    if !address.is_multiple_of(FDT_TOTALSIZE_END) || !mmu::in_boot_ram(address, FDT_TOTALSIZE_END) {
        return None;
    }
    let size_field = (address + FDT_TOTALSIZE_OFFSET) as *const u32;
    // SAFETY: the header is in the boot map's RAM (checked above) and aligned;
    // the loader put it there.
    let total = u32::from_be(unsafe { size_field.read_volatile() });
    if !mmu::in_boot_ram(address, u64::from(total)) {
        return None;
    }
    // SAFETY: forwarded from the caller, and all `totalsize` bytes are mapped
    // (checked above); the fdt crate reads the header's size and stays within it.
    unsafe { fdt::Fdt::from_ptr(address as *const u8) }.ok()
}

/// The bytes at `[start, end)`: the boot bundle the loader placed in RAM.
///
/// # Safety
/// The range must be RAM mapped by Janus' stage-1 table that nothing writes
/// while Janus runs (it is kept out of every personality's RAM).
pub unsafe fn boot_blob(start: u64, end: u64) -> &'static [u8] {
    // SAFETY: forwarded from the caller.
    unsafe { core::slice::from_raw_parts(start as *const u8, (end - start) as usize) }
}

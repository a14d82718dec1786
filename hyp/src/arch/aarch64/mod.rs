//! Everything that touches the CPU directly: entry, vectors, system registers,
//! the physical GIC, firmware calls, guest memory and the guest run loop.
//! The only place in Janus with `asm!`, `global_asm!` and raw pointers.

pub mod boot;
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
pub mod run;
pub mod timer;
pub mod uart;
pub mod vectors;
pub mod vgic_sync;

/// The boot device tree at `address`.
///
/// # Safety
/// `address` must hold a device tree the loader placed there, which stays
/// untouched for as long as Janus runs.
pub unsafe fn boot_fdt(address: u64) -> Result<fdt::Fdt<'static>, fdt::FdtError> {
    // SAFETY: forwarded from the caller; the fdt crate reads the header's size
    // and stays within it.
    unsafe { fdt::Fdt::from_ptr(address as *const u8) }
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

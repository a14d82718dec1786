//! Exceptions taken from EL2 itself: always a Janus bug, so they are reported and Janus stops.

/// Called by the vectors for an exception taken at EL2 (`kind` is the vector slot).
pub extern "C" fn hyp_exception(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    panic!("EL2 exception (vector {kind}): ESR_EL2 {esr:#x} ELR_EL2 {elr:#x} FAR_EL2 {far:#x}");
}

/// Stops this CPU for good, with interrupts masked.
pub fn halt() -> ! {
    loop {
        // SAFETY: masking interrupts and waiting for an event touch no memory.
        unsafe { core::arch::asm!("msr daifset, #0xf", "wfe", options(nomem, nostack)) };
    }
}

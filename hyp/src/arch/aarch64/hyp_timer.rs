//! Janus' own timer: the EL2 physical timer (CNTHP_*_EL2, PPI 10, INTID 26),
//! which wakes the console when a Janus line, held guest bytes or a summary
//! of suppressed reports has waited long enough.
//!
//! Each CPU has its own; `wake_at` arms the one of the CPU that asks, and the
//! CPU it fires on does whatever is due for everyone (`run.rs`), so several
//! CPUs arming for the same deadline cost at most a spurious tick each.

use core::arch::asm;

use aarch64_cpu::registers::{Readable, Writeable, CNTHP_CTL_EL2};

/// The EL2 physical timer's interrupt (PPI 10 in the Arm generic timer's
/// binding, as QEMU virt's device tree lists it).
pub const HYP_TIMER_INTID: u32 = 26;

/// Asks for the timer interrupt on this CPU at counter value `deadline`, or
/// earlier if it is already armed for earlier.
pub fn wake_at(deadline: u64) {
    let control = CNTHP_CTL_EL2.extract();
    if control.is_set(CNTHP_CTL_EL2::ENABLE) && !control.is_set(CNTHP_CTL_EL2::IMASK) {
        let armed: u64;
        // SAFETY: reading the EL2 timer's compare value has no side effects.
        unsafe { asm!("mrs {v}, cnthp_cval_el2", v = out(reg) armed, options(nomem, nostack)) };
        if armed <= deadline {
            return;
        }
    }
    // SAFETY: the EL2 physical timer is Janus' alone (no guest can reach EL2
    // registers); setting its compare value only decides when it interrupts.
    unsafe { asm!("msr cnthp_cval_el2, {v}", v = in(reg) deadline, options(nomem, nostack)) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}

/// Turns this CPU's timer off after it fired, so that its level interrupt
/// falls; whoever handles what is due arms it again if more waits.
pub fn disarm() {
    CNTHP_CTL_EL2.set(0);
}

//! EL2 exception vectors, guest entry and guest exit (see `vectors.S`).

use core::arch::global_asm;
use core::mem::offset_of;

use crate::vm::vcpu::GuestRegs;

/// Why the CPU left the guest (the `x1` argument of `handle_exit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ExitKind {
    /// A synchronous exception from the guest (HVC, SMC, abort, trapped instruction).
    Sync = 0,
    /// A physical IRQ (routed to EL2 by HCR_EL2.IMO).
    Irq = 1,
    /// A physical FIQ.
    Fiq = 2,
    /// A physical SError.
    SError = 3,
    /// Any exception from AArch32 (guests cannot run AArch32; treated as unknown).
    AArch32 = 4,
}

const _: () = assert!(offset_of!(GuestRegs, x) == 0);
const _: () = assert!(offset_of!(GuestRegs, pstate) == offset_of!(GuestRegs, pc) + 8);

global_asm!(
    include_str!("vectors.S"),
    HYP_EXCEPTION = sym super::exception::hyp_exception,
    HANDLE_EXIT = sym super::run::handle_exit,
    REGS_PC = const offset_of!(GuestRegs, pc),
    EXIT_SYNC = const ExitKind::Sync as u64,
    EXIT_IRQ = const ExitKind::Irq as u64,
    EXIT_FIQ = const ExitKind::Fiq as u64,
    EXIT_SERROR = const ExitKind::SError as u64,
    EXIT_AARCH32 = const ExitKind::AArch32 as u64,
);

unsafe extern "C" {
    /// The vector table (`VBAR_EL2`).
    #[link_name = "janus_vectors"]
    pub static VECTORS: u8;
    /// Loads `regs` and erets into the guest with SP_EL2 reset to `stack_top`.
    #[link_name = "janus_enter_guest"]
    fn enter_guest_asm(regs: *const GuestRegs, stack_top: u64) -> !;
}

/// Enters the guest whose registers are at `regs`.
///
/// # Safety
/// `regs` must be this CPU's `PerCpu::regs` (the address in TPIDR_EL2), the
/// stage-2 and EL1 state of the vCPU must be loaded, and `stack_top` must be the
/// top of this CPU's stack: every Rust frame on it is abandoned.
pub unsafe fn enter_guest(regs: *const GuestRegs, stack_top: u64) -> ! {
    // SAFETY: forwarded from the caller.
    unsafe { enter_guest_asm(regs, stack_top) }
}

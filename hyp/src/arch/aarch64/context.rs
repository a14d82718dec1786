//! A vCPU's EL1 state beyond its general registers: EL1 system registers,
//! SP_EL0/SP_EL1, the EL1 virtual and physical timers and FP/SIMD.
//!
//! Janus runs at EL2 with soft-float code and never touches any of this while a
//! vCPU runs, so it stays in the CPU across exits (as in KVM's VHE mode) and is
//! saved and restored only when a physical CPU changes vCPU or a vCPU is reset.

use core::arch::asm;

/// SCTLR_EL1 RES1 bits (29, 28, 23, 22, 20, 11) with the MMU and caches off:
/// the state a CPU leaves reset in.
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

macro_rules! el1_context {
    ($($field:ident => $register:literal),* $(,)?) => {
        /// The EL1 system registers of a vCPU.
        #[repr(C)]
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct El1Context {
            $(
                #[doc = concat!("`", $register, "`")]
                pub $field: u64,
            )*
            /// FP/SIMD registers q0-q31.
            pub q: [u128; 32],
            /// FPCR.
            pub fpcr: u64,
            /// FPSR.
            pub fpsr: u64,
        }

        impl El1Context {
            /// Reads this CPU's EL1 state.
            pub fn save(&mut self) {
                $(
                    // SAFETY: reading an EL1 register from EL2 has no side effects.
                    unsafe {
                        asm!(concat!("mrs {value}, ", $register),
                             value = out(reg) self.$field, options(nomem, nostack));
                    }
                )*
                // SAFETY: stores 32 q registers and FPCR/FPSR into `self.q`, `fpcr`
                // and `fpsr`, which are large enough and exclusively borrowed.
                unsafe { save_fp(self.q.as_mut_ptr(), &mut self.fpcr, &mut self.fpsr) };
            }

            /// Loads this state into the CPU's EL1 registers.
            pub fn restore(&self) {
                $(
                    // SAFETY: EL1 registers only affect EL1/EL0 (the guest),
                    // which is not running while Janus is.
                    unsafe {
                        asm!(concat!("msr ", $register, ", {value}"),
                             value = in(reg) self.$field, options(nomem, nostack));
                    }
                )*
                // SAFETY: reads 32 q registers and FPCR/FPSR from `self`.
                unsafe { restore_fp(self.q.as_ptr(), self.fpcr, self.fpsr) };
                // SAFETY: a barrier touches no memory.
                unsafe { asm!("isb", options(nomem, nostack)) };
            }
        }
    };
}

el1_context! {
    sctlr_el1 => "sctlr_el1",
    actlr_el1 => "actlr_el1",
    cpacr_el1 => "cpacr_el1",
    ttbr0_el1 => "ttbr0_el1",
    ttbr1_el1 => "ttbr1_el1",
    tcr_el1 => "tcr_el1",
    mair_el1 => "mair_el1",
    amair_el1 => "amair_el1",
    vbar_el1 => "vbar_el1",
    contextidr_el1 => "contextidr_el1",
    tpidr_el0 => "tpidr_el0",
    tpidrro_el0 => "tpidrro_el0",
    tpidr_el1 => "tpidr_el1",
    sp_el0 => "sp_el0",
    sp_el1 => "sp_el1",
    elr_el1 => "elr_el1",
    spsr_el1 => "spsr_el1",
    esr_el1 => "esr_el1",
    far_el1 => "far_el1",
    afsr0_el1 => "afsr0_el1",
    afsr1_el1 => "afsr1_el1",
    par_el1 => "par_el1",
    mdscr_el1 => "mdscr_el1",
    csselr_el1 => "csselr_el1",
    cntkctl_el1 => "cntkctl_el1",
    // Each timer's compare value before its control register, so that enabling a
    // restored timer never compares against the previous vCPU's value.
    cntv_cval_el0 => "cntv_cval_el0",
    cntv_ctl_el0 => "cntv_ctl_el0",
    cntp_cval_el0 => "cntp_cval_el0",
    cntp_ctl_el0 => "cntp_ctl_el0",
}

impl El1Context {
    /// The EL1 state of a CPU coming out of reset: MMU, caches and both timers off
    /// (CNTx_CTL_EL0.ENABLE = 0), so a restarted personality inherits no running timer.
    pub fn reset_state() -> El1Context {
        El1Context {
            sctlr_el1: SCTLR_EL1_RESET,
            ..El1Context::default()
        }
    }
}

/// Stores q0-q31, FPCR and FPSR.
///
/// # Safety
/// `q` must point to 32 writable, 16-byte aligned u128s.
unsafe fn save_fp(q: *mut u128, fpcr: &mut u64, fpsr: &mut u64) {
    // SAFETY: the caller provides room for 32 q registers; Janus is soft-float,
    // so the registers hold the guest's values.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "stp q0, q1, [{q}, #0]",
            "stp q2, q3, [{q}, #32]",
            "stp q4, q5, [{q}, #64]",
            "stp q6, q7, [{q}, #96]",
            "stp q8, q9, [{q}, #128]",
            "stp q10, q11, [{q}, #160]",
            "stp q12, q13, [{q}, #192]",
            "stp q14, q15, [{q}, #224]",
            "stp q16, q17, [{q}, #256]",
            "stp q18, q19, [{q}, #288]",
            "stp q20, q21, [{q}, #320]",
            "stp q22, q23, [{q}, #352]",
            "stp q24, q25, [{q}, #384]",
            "stp q26, q27, [{q}, #416]",
            "stp q28, q29, [{q}, #448]",
            "stp q30, q31, [{q}, #480]",
            "mrs {fpcr}, fpcr",
            "mrs {fpsr}, fpsr",
            q = in(reg) q,
            fpcr = out(reg) *fpcr,
            fpsr = out(reg) *fpsr,
            options(nostack),
        );
    }
}

/// Loads q0-q31, FPCR and FPSR.
///
/// # Safety
/// `q` must point to 32 readable, 16-byte aligned u128s.
unsafe fn restore_fp(q: *const u128, fpcr: u64, fpsr: u64) {
    // SAFETY: the caller provides 32 q registers to read; Janus' own code never
    // uses FP/SIMD registers, so overwriting them is invisible to it.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "ldp q0, q1, [{q}, #0]",
            "ldp q2, q3, [{q}, #32]",
            "ldp q4, q5, [{q}, #64]",
            "ldp q6, q7, [{q}, #96]",
            "ldp q8, q9, [{q}, #128]",
            "ldp q10, q11, [{q}, #160]",
            "ldp q12, q13, [{q}, #192]",
            "ldp q14, q15, [{q}, #224]",
            "ldp q16, q17, [{q}, #256]",
            "ldp q18, q19, [{q}, #288]",
            "ldp q20, q21, [{q}, #320]",
            "ldp q22, q23, [{q}, #352]",
            "ldp q24, q25, [{q}, #384]",
            "ldp q26, q27, [{q}, #416]",
            "ldp q28, q29, [{q}, #448]",
            "ldp q30, q31, [{q}, #480]",
            "msr fpcr, {fpcr}",
            "msr fpsr, {fpsr}",
            q = in(reg) q,
            fpcr = in(reg) fpcr,
            fpsr = in(reg) fpsr,
            options(nostack),
        );
    }
}

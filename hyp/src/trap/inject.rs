//! Computes the register changes that inject a synchronous exception into a guest's EL1.
//!
//! This models the architecture's exception entry, `AArch64.TakeException()` (Arm ARM,
//! DDI 0487 M.a.a, J1.1.2.35, and D1.4.2 "Exception entry"), for a target of EL1: save
//! PSTATE and the return address, report a syndrome, mask interrupts and branch to the
//! right entry of the guest's vector table. The arch layer writes the returned values to
//! ELR_EL1, SPSR_EL1, ESR_EL1, FAR_EL1, ELR_EL2 and SPSR_EL2 before returning to the guest.
//!
//! Not handled yet: PSTATE.PAN (set on entry when SCTLR_EL1.SPAN is 0), PSTATE.SSBS
//! (loaded from SCTLR_EL1.DSSBS), PSTATE.TCO (FEAT_MTE) and PSTATE.ALLINT (FEAT_NMI), which
//! all depend on guest registers this module is not given. PSTATE.UAO is cleared, as the
//! architecture requires.

use super::esr::{
    Field, EC_DATA_ABORT_LOWER, EC_DATA_ABORT_SAME, EC_INSTRUCTION_ABORT_LOWER,
    EC_INSTRUCTION_ABORT_SAME, EC_UNKNOWN, ESR_EC, ESR_IL, FSC_SYNC_EXTERNAL, ISS_FSC, ISS_WNR,
};

/// SPSR.M[3:0], bits [3:0]: the Exception level and stack pointer the guest was using
/// (C5.2.21 SPSR_EL2, "When exception taken from AArch64 state").
const PSTATE_M: Field = Field::new(0, 4);
/// SPSR.M[4], bit [4]: 1 when the exception was taken from AArch32 state (C5.2.21 SPSR_EL2).
const PSTATE_M_AARCH32: Field = Field::bit(4);
/// SPSR.{D,A,I,F}, bits [9:6]: the debug, SError, IRQ and FIQ masks (C5.2.20 SPSR_EL1).
const PSTATE_DAIF: Field = Field::new(6, 4);
/// SPSR.{N,Z,C,V}, bits [31:28]: the condition flags, which exception entry leaves alone
/// (C5.2.20 SPSR_EL1; J1.1.2.35 does not write them).
const PSTATE_NZCV: Field = Field::new(28, 4);
/// SPSR.DIT, bit [24] in both the AArch64 and the AArch32 layout: Data Independent Timing,
/// which exception entry leaves alone (C5.2.20 SPSR_EL1; J1.1.2.35 does not write it).
const PSTATE_DIT: Field = Field::bit(24);

/// M[3:2], the Exception level part of SPSR.M[3:0] (C5.2.21 SPSR_EL2).
const MODE_EL: Field = Field::new(2, 2);
/// M[0], the stack pointer part of SPSR.M[3:0]: 1 selects SP_ELx (C5.2.21 SPSR_EL2).
const MODE_SP_ELX: Field = Field::bit(0);
/// Exception level 0 in M[3:2].
const MODE_EL_EL0: u64 = 0b00;
/// Exception level 1 in M[3:2].
const MODE_EL_EL1: u64 = 0b01;
/// SPSR.M[3:0] = 0b0101, EL1h: EL1 using SP_EL1, the mode every exception to EL1 enters.
const MODE_EL1H: u64 = 0b0101;
/// All four of D, A, I and F set: every exception entry masks them (J1.1.2.35).
const DAIF_ALL_MASKED: u64 = 0b1111;

/// Vector table offset for an exception from the current EL while using SP_EL0
/// (D1.4.1.6 "Exception vectors"); the synchronous entry is the first of each group.
const VECTOR_CURRENT_EL_SP0: u64 = 0x000;
/// Vector table offset for an exception from the current EL while using SP_ELx (D1.4.1.6).
const VECTOR_CURRENT_EL_SPX: u64 = 0x200;
/// Vector table offset for an exception from a lower EL using AArch64 (D1.4.1.6).
const VECTOR_LOWER_EL_AARCH64: u64 = 0x400;
/// Vector table offset for an exception from a lower EL using AArch32 (D1.4.1.6).
const VECTOR_LOWER_EL_AARCH32: u64 = 0x600;
/// Size of the vector table: 16 entries of 0x80 bytes. VBAR_EL1 bits [10:0] are RES0 and
/// the target is `VBAR_EL1[63:11]:offset[10:0]` (D24.2.214 VBAR_EL1, J1.1.2.35).
const VECTOR_TABLE_SIZE_BYTES: u64 = 0x800;

/// The guest state captured when it trapped to EL2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestState {
    /// ELR_EL2: the address of the instruction that trapped.
    pub pc: u64,
    /// SPSR_EL2: the guest's PSTATE at the trap.
    pub pstate: u64,
    /// The guest's VBAR_EL1.
    pub vbar_el1: u64,
}

/// The register values that deliver an exception to the guest's EL1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injection {
    /// New ELR_EL1: where the guest's handler returns to, the faulting instruction.
    pub elr_el1: u64,
    /// New SPSR_EL1: the guest's PSTATE at the trap.
    pub spsr_el1: u64,
    /// New ESR_EL1: the syndrome the guest's handler reads.
    pub esr_el1: u64,
    /// New FAR_EL1, or `None` to leave it alone (it is UNKNOWN for the exception class).
    pub far_el1: Option<u64>,
    /// New ELR_EL2: the guest resumes at its vector entry.
    pub new_pc: u64,
    /// New SPSR_EL2: the guest resumes in EL1h with D, A, I and F masked.
    pub new_pstate: u64,
}

/// Where the guest was when it trapped, which picks the vector entry and the EC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// EL1 using SP_EL0 (EL1t).
    El1SpEl0,
    /// EL1 using SP_EL1 (EL1h).
    El1SpEl1,
    /// EL0 in AArch64 state.
    El0Aarch64,
    /// AArch32 state; with HCR_EL2.RW set, as Janus runs guests, this can only be EL0.
    Aarch32,
}

impl Origin {
    /// Reads the origin from a saved PSTATE.
    ///
    /// A trap from a guest records EL0 or EL1 in SPSR_EL2.M, never EL2 or EL3. Should such
    /// a value arrive anyway it is treated as EL1h, so the guest kernel sees the fault.
    const fn from_pstate(pstate: u64) -> Self {
        if PSTATE_M_AARCH32.is_set(pstate) {
            return Origin::Aarch32;
        }
        let mode = PSTATE_M.get(pstate);
        match MODE_EL.get(mode) {
            MODE_EL_EL0 => Origin::El0Aarch64,
            MODE_EL_EL1 if !MODE_SP_ELX.is_set(mode) => Origin::El1SpEl0,
            _ => Origin::El1SpEl1,
        }
    }

    /// The offset of the synchronous entry in the vector table (D1.4.1.6).
    const fn vector_offset(self) -> u64 {
        match self {
            Origin::El1SpEl0 => VECTOR_CURRENT_EL_SP0,
            Origin::El1SpEl1 => VECTOR_CURRENT_EL_SPX,
            Origin::El0Aarch64 => VECTOR_LOWER_EL_AARCH64,
            Origin::Aarch32 => VECTOR_LOWER_EL_AARCH32,
        }
    }

    /// Whether the exception is taken without a change of Exception level, which picks the
    /// "same EL" exception classes.
    const fn is_same_el(self) -> bool {
        matches!(self, Origin::El1SpEl0 | Origin::El1SpEl1)
    }
}

/// The base of the vector table: VBAR_EL1 with its RES0 bits [10:0] cleared.
const fn vector_base(vbar_el1: u64) -> u64 {
    vbar_el1 & !(VECTOR_TABLE_SIZE_BYTES - 1)
}

/// Whether `addr` lies in the guest's vector table, `[VBAR_EL1, VBAR_EL1 + 0x800)`.
///
/// A guest that faults while fetching its own vector would fault again on every
/// injection; the dispatcher checks this and stops that guest instead of looping.
pub const fn is_vector_address(vbar_el1: u64, addr: u64) -> bool {
    addr.wrapping_sub(vector_base(vbar_el1)) < VECTOR_TABLE_SIZE_BYTES
}

/// Injects a synchronous External abort on a data access (as KVM's and Bao's
/// inject-abort do): EC 0x25 from EL1 or 0x24 from EL0, DFSC 0b010000, WnR as given,
/// FnV 0 so FAR_EL1 is valid, ISV 0 and IL 1 (D24.2.45 ESR_EL1, Data Abort ISS).
pub fn data_abort(state: &GuestState, far: u64, write: bool) -> Injection {
    let iss = ISS_FSC.place(u64::from(FSC_SYNC_EXTERNAL)) | ISS_WNR.place(u64::from(write));
    inject(
        state,
        EC_DATA_ABORT_SAME,
        EC_DATA_ABORT_LOWER,
        iss,
        Some(far),
    )
}

/// Injects a synchronous External abort on an instruction fetch: EC 0x21 from EL1 or
/// 0x20 from EL0, IFSC 0b010000, FnV 0 and IL 1 (D24.2.45 ESR_EL1, Instruction Abort ISS).
pub fn instruction_abort(state: &GuestState, far: u64) -> Injection {
    let iss = ISS_FSC.place(u64::from(FSC_SYNC_EXTERNAL));
    inject(
        state,
        EC_INSTRUCTION_ABORT_SAME,
        EC_INSTRUCTION_ABORT_LOWER,
        iss,
        Some(far),
    )
}

/// Injects an Undefined Instruction exception: EC 0x00 with IL 1 and an empty ISS
/// (D24.2.45 ESR_EL1, "ISS encoding for exceptions with an unknown reason"). FAR_EL1 is
/// UNKNOWN for this class, so it is left alone.
pub fn undefined(state: &GuestState) -> Injection {
    inject(state, EC_UNKNOWN, EC_UNKNOWN, 0, None)
}

/// Builds the injection of a synchronous exception with the given classes and syndrome.
///
/// IL is always 1: Janus runs AArch64 guests, and AArch32 EL0 code in T32 may be the one
/// case where the faulting instruction was 16 bits long; the guest's handler does not
/// depend on IL for an abort or an undefined instruction.
fn inject(
    state: &GuestState,
    ec_same_el: u8,
    ec_lower_el: u8,
    iss: u64,
    far: Option<u64>,
) -> Injection {
    let origin = Origin::from_pstate(state.pstate);
    let ec = if origin.is_same_el() {
        ec_same_el
    } else {
        ec_lower_el
    };
    let esr_el1 = ESR_EC.place(u64::from(ec)) | ESR_IL.place(1) | iss;
    let kept = state.pstate & (PSTATE_NZCV.place(u64::MAX) | PSTATE_DIT.place(u64::MAX));
    let new_pstate = kept | PSTATE_DAIF.place(DAIF_ALL_MASKED) | PSTATE_M.place(MODE_EL1H);
    Injection {
        elr_el1: state.pc,
        spsr_el1: state.pstate,
        esr_el1,
        far_el1: far,
        // OR, not add: the base has bits [10:0] clear and the offset fits in them.
        new_pc: vector_base(state.vbar_el1) | origin.vector_offset(),
        new_pstate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typical guest vector table base.
    const VBAR: u64 = 0xffff_8000_1001_0800;
    /// PSTATE of a Linux kernel at EL1h with interrupts enabled: M = 0b0101.
    const PSTATE_EL1H: u64 = 0x0000_0005;
    /// PSTATE of EL1t with D, A, I, F masked: 0x3c0 | 0b0100.
    const PSTATE_EL1T: u64 = 0x0000_03c4;
    /// PSTATE of AArch64 user space: M = 0b0000.
    const PSTATE_EL0: u64 = 0x0000_0000;
    /// PSTATE of AArch32 user mode: M[4] = 1, M[3:0] = 0b0000 (usr).
    const PSTATE_AARCH32_USR: u64 = 0x0000_0010;
    /// PSTATE after injection: EL1h with D, A, I, F masked.
    const PSTATE_EL1H_MASKED: u64 = 0x0000_03c5;

    fn state(pstate: u64) -> GuestState {
        GuestState {
            pc: 0xffff_8000_1234_5678,
            pstate,
            vbar_el1: VBAR,
        }
    }

    #[test]
    fn data_abort_from_el1h_uses_current_el_spx_vector() {
        let injection = data_abort(&state(PSTATE_EL1H), 0x0900_1000, false);
        assert_eq!(injection.new_pc, VBAR + 0x200);
        // EC 0x25 << 26 = 0x9400_0000 | IL 0x0200_0000 | DFSC 0x10 = 0x9600_0010.
        assert_eq!(injection.esr_el1, 0x9600_0010);
        assert_eq!(injection.far_el1, Some(0x0900_1000));
    }

    #[test]
    fn data_abort_write_sets_wnr() {
        let injection = data_abort(&state(PSTATE_EL1H), 0, true);
        // 0x9600_0010 | WnR (bit 6) = 0x9600_0050.
        assert_eq!(injection.esr_el1, 0x9600_0050);
    }

    #[test]
    fn data_abort_from_el1t_uses_current_el_sp0_vector() {
        let injection = data_abort(&state(PSTATE_EL1T), 0, false);
        assert_eq!(injection.new_pc, VBAR);
        assert_eq!(injection.esr_el1 >> 26, u64::from(EC_DATA_ABORT_SAME));
    }

    #[test]
    fn data_abort_from_el0_uses_lower_el_vector_and_class() {
        let injection = data_abort(&state(PSTATE_EL0), 0x40_0000, false);
        assert_eq!(injection.new_pc, VBAR + 0x400);
        // EC 0x24 << 26 = 0x9000_0000 | IL | DFSC 0x10 = 0x9200_0010.
        assert_eq!(injection.esr_el1, 0x9200_0010);
    }

    #[test]
    fn data_abort_from_aarch32_uses_aarch32_vector_and_lower_class() {
        let injection = data_abort(&state(PSTATE_AARCH32_USR), 0x8000, true);
        assert_eq!(injection.new_pc, VBAR + 0x600);
        assert_eq!(injection.esr_el1, 0x9200_0050);
    }

    #[test]
    fn instruction_abort_from_el1_uses_same_el_class() {
        let injection = instruction_abort(&state(PSTATE_EL1H), 0xffff_8000_1234_5678);
        // EC 0x21 << 26 = 0x8400_0000 | IL | IFSC 0x10 = 0x8600_0010.
        assert_eq!(injection.esr_el1, 0x8600_0010);
        assert_eq!(injection.new_pc, VBAR + 0x200);
        assert_eq!(injection.far_el1, Some(0xffff_8000_1234_5678));
    }

    #[test]
    fn instruction_abort_from_el0_uses_lower_el_class() {
        let injection = instruction_abort(&state(PSTATE_EL0), 0x40_0000);
        // EC 0x20 << 26 = 0x8000_0000 | IL | IFSC 0x10 = 0x8200_0010.
        assert_eq!(injection.esr_el1, 0x8200_0010);
        assert_eq!(injection.new_pc, VBAR + 0x400);
    }

    #[test]
    fn undefined_reports_unknown_class_and_leaves_far() {
        let injection = undefined(&state(PSTATE_EL1H));
        // EC 0 | IL = 0x0200_0000.
        assert_eq!(injection.esr_el1, 0x0200_0000);
        assert_eq!(injection.far_el1, None);
        assert_eq!(injection.new_pc, VBAR + 0x200);
    }

    #[test]
    fn undefined_from_el0_enters_lower_el_vector() {
        let injection = undefined(&state(PSTATE_EL0));
        assert_eq!(injection.esr_el1, 0x0200_0000);
        assert_eq!(injection.new_pc, VBAR + 0x400);
    }

    #[test]
    fn injection_saves_pc_and_pstate() {
        let guest = state(PSTATE_EL1T);
        let injection = undefined(&guest);
        assert_eq!(injection.elr_el1, guest.pc);
        assert_eq!(injection.spsr_el1, guest.pstate);
    }

    #[test]
    fn new_pstate_is_el1h_with_all_masked() {
        for pstate in [PSTATE_EL1H, PSTATE_EL1T, PSTATE_EL0, PSTATE_AARCH32_USR] {
            assert_eq!(undefined(&state(pstate)).new_pstate, PSTATE_EL1H_MASKED);
        }
    }

    #[test]
    fn new_pstate_keeps_flags_and_dit_but_clears_the_rest() {
        // Z and C set (0x6000_0000), DIT (bit 24), PAN (bit 22), SS (bit 21), IL (bit 20),
        // BTYPE (bits 11:10) and EL1h.
        let pstate = 0x6000_0000 | (1 << 24) | (1 << 22) | (1 << 21) | (1 << 20) | 0xc00 | 0x5;
        let injection = data_abort(&state(pstate), 0, false);
        assert_eq!(
            injection.new_pstate,
            0x6000_0000 | (1 << 24) | PSTATE_EL1H_MASKED
        );
        assert_eq!(injection.spsr_el1, pstate);
    }

    #[test]
    fn impossible_el2_origin_is_treated_as_el1h() {
        // M = 0b1001 (EL2h) cannot come from a guest; the injection still lands in EL1.
        let injection = data_abort(&state(0x9), 0, false);
        assert_eq!(injection.new_pc, VBAR + 0x200);
        assert_eq!(injection.esr_el1 >> 26, u64::from(EC_DATA_ABORT_SAME));
    }

    #[test]
    fn vbar_low_bits_are_ignored() {
        let mut guest = state(PSTATE_EL0);
        guest.vbar_el1 = VBAR | 0x7ff;
        assert_eq!(undefined(&guest).new_pc, VBAR + 0x400);
    }

    #[test]
    fn injected_pc_is_a_vector_address() {
        for pstate in [PSTATE_EL1H, PSTATE_EL1T, PSTATE_EL0, PSTATE_AARCH32_USR] {
            assert!(is_vector_address(VBAR, undefined(&state(pstate)).new_pc));
        }
    }

    #[test]
    fn vector_address_covers_exactly_the_table() {
        assert!(is_vector_address(VBAR, VBAR));
        assert!(is_vector_address(VBAR, VBAR + 0x7ff));
        assert!(!is_vector_address(VBAR, VBAR + 0x800));
        assert!(!is_vector_address(VBAR, VBAR - 1));
    }

    #[test]
    fn vector_address_does_not_overflow_at_top_of_address_space() {
        let top = 0xffff_ffff_ffff_f800;
        assert!(is_vector_address(top, u64::MAX));
        assert!(!is_vector_address(top, 0));
        assert!(is_vector_address(0, 0));
        assert!(!is_vector_address(0, u64::MAX));
        // Wrapping arithmetic keeps an extreme VBAR from panicking.
        let guest = GuestState {
            pc: u64::MAX,
            pstate: u64::MAX,
            vbar_el1: u64::MAX,
        };
        assert_eq!(undefined(&guest).new_pc, top + 0x600);
    }
}

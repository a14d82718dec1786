//! Decodes a captured `ESR_EL2`, `FAR_EL2` and `HPFAR_EL2` into a typed guest exit.
//!
//! Section numbers refer to the Arm Architecture Reference Manual for A-profile,
//! DDI 0487 M.a.a ("Arm ARM"). Nothing here reads a register: the exception vector
//! captures the values and this module only looks at numbers, so every path runs in
//! host tests and no value a guest can produce makes it panic.

/// A bit field of a 64-bit system register: `width` bits starting at bit `shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    /// Position of the field's least significant bit.
    shift: u32,
    /// Number of bits in the field.
    width: u32,
}

impl Field {
    /// A field of `width` bits at `shift`; a field that is empty, 64 bits wide or reaches
    /// past bit 63 fails to compile, because every use is a `const`.
    pub(crate) const fn new(shift: u32, width: u32) -> Self {
        assert!(width >= 1 && width < 64 && shift + width <= 64);
        Self { shift, width }
    }

    /// A one-bit field at `bit`.
    pub(crate) const fn bit(bit: u32) -> Self {
        Self::new(bit, 1)
    }

    /// The field's bits, right-aligned.
    const fn mask(self) -> u64 {
        (1u64 << self.width) - 1
    }

    /// The field's value in `register`, right-aligned.
    pub(crate) const fn get(self, register: u64) -> u64 {
        (register >> self.shift) & self.mask()
    }

    /// The field's value in `register` as a byte. Only used on fields of 8 bits or
    /// fewer, and the value is masked to a byte first, so the cast loses nothing.
    pub(crate) const fn get_u8(self, register: u64) -> u8 {
        (self.get(register) & 0xff) as u8
    }

    /// Whether any bit of the field is set in `register`.
    pub(crate) const fn is_set(self, register: u64) -> bool {
        self.get(register) != 0
    }

    /// `value` moved into the field's position; bits beyond the field's width are dropped.
    pub(crate) const fn place(self, value: u64) -> u64 {
        (value & self.mask()) << self.shift
    }
}

/// ESR_EL2.EC, bits [31:26]: the exception class (D24.2.46 ESR_EL2).
pub(crate) const ESR_EC: Field = Field::new(26, 6);
/// ESR_EL2.IL, bit [25]: 1 when the trapped instruction is 32 bits long (D24.2.46 ESR_EL2).
pub(crate) const ESR_IL: Field = Field::bit(25);
/// ESR_EL2.ISS, bits [24:0]: the syndrome, laid out per exception class (D24.2.46 ESR_EL2).
pub(crate) const ESR_ISS: Field = Field::new(0, 25);

/// EC 0b000000: unknown reason, which is also how an UNDEFINED instruction is reported
/// (D24.2.46 ESR_EL2, "ISS encoding for exceptions with an unknown reason").
pub const EC_UNKNOWN: u8 = 0x00;
/// EC 0b000001: trapped WFI, WFE, WFIT or WFET (D24.2.46 ESR_EL2, "ISS encoding for an
/// exception from a WF* instruction").
pub const EC_WFX: u8 = 0x01;
/// EC 0b000111: access to SVE, Advanced SIMD or floating point trapped by CPACR_EL1.FPEN,
/// CPTR_EL2.FPEN or CPTR_EL2.TFP (D24.2.46 ESR_EL2, "ISS encoding for an exception from an
/// access to a register or instruction resulting from the FPEN and TFP traps").
pub const EC_FP_ACCESS: u8 = 0x07;
/// EC 0b010110: HVC executed in AArch64 state (D24.2.46 ESR_EL2, "ISS encoding for an
/// exception from HVC or SVC instruction execution").
pub const EC_HVC64: u8 = 0x16;
/// EC 0b010111: SMC executed in AArch64 state and trapped by HCR_EL2.TSC (D24.2.46 ESR_EL2,
/// "ISS encoding for an exception from SMC instruction execution in AArch64 state").
pub const EC_SMC64: u8 = 0x17;
/// EC 0b011000: trapped MSR, MRS or System instruction in AArch64 state (D24.2.46 ESR_EL2,
/// "ISS encoding for an exception from MSR, MRS, or System instruction execution in AArch64
/// state").
pub const EC_SYS64: u8 = 0x18;
/// EC 0b100000: Instruction Abort from a lower Exception level (D24.2.46 ESR_EL2, "ISS
/// encoding for an exception from an Instruction Abort").
pub const EC_INSTRUCTION_ABORT_LOWER: u8 = 0x20;
/// EC 0b100001: Instruction Abort taken without a change in Exception level (D24.2.46
/// ESR_EL2, "ISS encoding for an exception from an Instruction Abort").
pub const EC_INSTRUCTION_ABORT_SAME: u8 = 0x21;
/// EC 0b100100: Data Abort from a lower Exception level (D24.2.46 ESR_EL2, "ISS encoding for
/// an exception from a Data Abort").
pub const EC_DATA_ABORT_LOWER: u8 = 0x24;
/// EC 0b100101: Data Abort taken without a change in Exception level (D24.2.46 ESR_EL2,
/// "ISS encoding for an exception from a Data Abort").
pub const EC_DATA_ABORT_SAME: u8 = 0x25;

/// Data Abort ISS.ISV, bit [24]: ISS[23:14] hold a valid instruction syndrome
/// (D24.2.46 ESR_EL2, "ISS encoding for an exception from a Data Abort").
const ISS_ISV: Field = Field::bit(24);
/// Data Abort ISS.SAS, bits [23:22]: access size, 0b00 byte to 0b11 doubleword; valid when
/// ISV is 1 (D24.2.46 ESR_EL2, "ISS encoding for an exception from a Data Abort").
const ISS_SAS: Field = Field::new(22, 2);
/// Data Abort ISS.SSE, bit [21]: a byte, halfword or word load must be sign-extended; valid
/// when ISV is 1 (D24.2.46 ESR_EL2, "ISS encoding for an exception from a Data Abort").
const ISS_SSE: Field = Field::bit(21);
/// Data Abort ISS.SRT, bits [20:16]: the transfer register Xt/Wt, 31 meaning XZR/WZR; valid
/// when ISV is 1 (D24.2.46 ESR_EL2, "ISS encoding for an exception from a Data Abort").
const ISS_SRT: Field = Field::new(16, 5);
/// Data Abort ISS.SF, bit [15]: the transfer register is 64 bits wide; valid when ISV is 1
/// (D24.2.46 ESR_EL2, "ISS encoding for an exception from a Data Abort").
const ISS_SF: Field = Field::bit(15);
/// Data Abort ISS.AR, bit [14]: the instruction has acquire/release semantics; valid when
/// ISV is 1 (D24.2.46 ESR_EL2, "ISS encoding for an exception from a Data Abort").
const ISS_AR: Field = Field::bit(14);
/// Abort ISS.FnV, bit [10]: FAR is not valid; only meaningful with fault status 0b010000
/// (D24.2.46 ESR_EL2, "ISS encoding for an exception from a Data Abort" and "... from an
/// Instruction Abort").
pub(crate) const ISS_FNV: Field = Field::bit(10);
/// Data Abort ISS.CM, bit [8]: the abort came from a cache maintenance or address
/// translation instruction (D24.2.46 ESR_EL2, "ISS encoding for an exception from a Data
/// Abort").
const ISS_CM: Field = Field::bit(8);
/// Abort ISS.S1PTW, bit [7]: a stage-2 fault on the guest's own stage-1 table walk
/// (D24.2.46 ESR_EL2, "ISS encoding for an exception from a Data Abort").
const ISS_S1PTW: Field = Field::bit(7);
/// Data Abort ISS.WnR, bit [6]: the faulting access was a write (D24.2.46 ESR_EL2, "ISS
/// encoding for an exception from a Data Abort").
pub(crate) const ISS_WNR: Field = Field::bit(6);
/// Abort ISS.DFSC/IFSC, bits [5:0]: the fault status code (D24.2.46 ESR_EL2, "ISS encoding
/// for an exception from a Data Abort", DFSC table).
pub(crate) const ISS_FSC: Field = Field::new(0, 6);

/// Fault status code 0b010000: synchronous External abort, not on a translation table walk
/// (D24.2.46 ESR_EL2, DFSC table).
pub(crate) const FSC_SYNC_EXTERNAL: u8 = 0b01_0000;
/// Fault status code 0b100001: Alignment fault (D24.2.46 ESR_EL2, DFSC table).
const FSC_ALIGNMENT: u8 = 0b10_0001;
/// Fault status codes 0b0000xx: Address size fault at level xx (D24.2.46 ESR_EL2, DFSC table).
const FSC_GROUP_ADDRESS_SIZE: u8 = 0b00_00;
/// Fault status codes 0b0001xx: Translation fault at level xx (D24.2.46 ESR_EL2, DFSC table).
const FSC_GROUP_TRANSLATION: u8 = 0b00_01;
/// Fault status codes 0b0010xx: Access flag fault at level xx; level 0 only with FEAT_LPA2
/// (D24.2.46 ESR_EL2, DFSC table).
const FSC_GROUP_ACCESS_FLAG: u8 = 0b00_10;
/// Fault status codes 0b0011xx: Permission fault at level xx; level 0 only with FEAT_LPA2
/// (D24.2.46 ESR_EL2, DFSC table).
const FSC_GROUP_PERMISSION: u8 = 0b00_11;
/// The lookup level, bits [1:0] of the four grouped fault status codes above.
const FSC_LEVEL: Field = Field::new(0, 2);
/// The fault kind, bits [5:2] of the four grouped fault status codes above.
const FSC_GROUP: Field = Field::new(2, 4);

/// WF* ISS.TI, bit [0]: 0 for WFI or WFIT, 1 for WFE or WFET; bit [1] marks the timeout
/// variants (D24.2.46 ESR_EL2, "ISS encoding for an exception from a WF* instruction").
const ISS_WFX_TI_WFE: Field = Field::bit(0);

/// HVC/SMC ISS.imm16, bits [15:0]: the instruction's immediate (D24.2.46 ESR_EL2, "ISS
/// encoding for an exception from HVC or SVC instruction execution" and "... from SMC
/// instruction execution in AArch64 state").
const ISS_IMM16: Field = Field::new(0, 16);

/// MSR/MRS ISS.Op0, bits [21:20] (D24.2.46 ESR_EL2, "ISS encoding for an exception from
/// MSR, MRS, or System instruction execution in AArch64 state").
const ISS_SYS_OP0: Field = Field::new(20, 2);
/// MSR/MRS ISS.Op2, bits [19:17] (D24.2.46 ESR_EL2, same encoding as Op0).
const ISS_SYS_OP2: Field = Field::new(17, 3);
/// MSR/MRS ISS.Op1, bits [16:14] (D24.2.46 ESR_EL2, same encoding as Op0).
const ISS_SYS_OP1: Field = Field::new(14, 3);
/// MSR/MRS ISS.CRn, bits [13:10] (D24.2.46 ESR_EL2, same encoding as Op0).
const ISS_SYS_CRN: Field = Field::new(10, 4);
/// MSR/MRS ISS.Rt, bits [9:5]: the general-purpose register, 31 meaning XZR (D24.2.46
/// ESR_EL2, same encoding as Op0).
const ISS_SYS_RT: Field = Field::new(5, 5);
/// MSR/MRS ISS.CRm, bits [4:1] (D24.2.46 ESR_EL2, same encoding as Op0).
const ISS_SYS_CRM: Field = Field::new(1, 4);
/// MSR/MRS ISS.Direction, bit [0]: 1 for a read (MRS), 0 for a write (MSR) (D24.2.46
/// ESR_EL2, same encoding as Op0).
const ISS_SYS_DIRECTION_READ: Field = Field::bit(0);

/// HPFAR_EL2.FIPA, bits [43:4]: bits [51:12] of the faulting IPA (D24.2.76 HPFAR_EL2).
/// FEAT_D128 widens it to bits [47:4]; Janus configures at most 52-bit IPAs.
const HPFAR_FIPA: Field = Field::new(4, 40);
/// PAR_EL1.F, bit [0]: the address translation instruction failed (D24.2.142 PAR_EL1).
const PAR_F: Field = Field::bit(0);
/// PAR_EL1.PA, bits [51:12] when F is 0: the output address of the translation
/// (D24.2.142 PAR_EL1, 64-bit format).
const PAR_PA: Field = Field::new(12, 40);
/// Bits of an address below the 4 KiB page that HPFAR_EL2 and PAR_EL1 count in.
const PAGE_OFFSET: Field = Field::new(0, 12);
/// Left shift that turns a page number into an address.
const PAGE_SHIFT: u32 = 12;

/// Why the guest left, decoded from one exception taken to EL2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A single-register load or store to an IPA with no stage-2 mapping (or one the mapping
    /// forbids), with a valid syndrome, so it can be emulated. ELR_EL2 points at the
    /// instruction: the dispatcher advances it after emulating.
    Mmio(MmioAccess),
    /// A Data Abort from the guest that cannot be emulated: no valid syndrome (load pair,
    /// writeback, exclusive, SIMD), a fault on the guest's own table walk, or a fault that
    /// is not a stage-2 translation, access flag or permission fault.
    DataAbort(AbortInfo),
    /// An Instruction Abort from the guest: it fetched from an IPA it may not execute.
    InstructionAbort(AbortInfo),
    /// HVC from AArch64. ELR_EL2 already points after the HVC (its preferred return
    /// address is the next instruction), so it must not be advanced.
    Hvc {
        /// The HVC instruction's immediate.
        imm: u16,
    },
    /// SMC from AArch64, trapped by HCR_EL2.TSC. Unlike HVC, ELR_EL2 points at the SMC
    /// itself (a trapped instruction did not execute), so the dispatcher adds 4.
    Smc {
        /// The SMC instruction's immediate.
        imm: u16,
    },
    /// A trapped MSR, MRS or System instruction. ELR_EL2 points at it.
    SysReg(SysRegAccess),
    /// A trapped WFI or WFE (the timeout forms WFIT/WFET are reported as WFI/WFE, which is
    /// allowed because they may wake early). ELR_EL2 points at it.
    Wfx {
        /// True for WFE/WFET, false for WFI/WFIT.
        wfe: bool,
    },
    /// A floating-point or SIMD access trapped by CPTR_EL2.
    FpAccess,
    /// Anything else: unknown or UNDEFINED, AArch32 classes, BRK, SVE, debug, an abort at
    /// EL2 itself and classes the architecture has not defined.
    Unhandled {
        /// ESR_EL2.EC.
        ec: u8,
        /// ESR_EL2.ISS, bits [24:0].
        iss: u32,
    },
}

/// An emulable guest load or store, taken from a Data Abort's instruction syndrome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioAccess {
    /// The faulting intermediate physical address, byte-exact.
    pub ipa: u64,
    /// The access size.
    pub width: Width,
    /// True for a store, false for a load.
    pub write: bool,
    /// The transfer register, 0..=30 for X0..X30 and 31 for XZR (reads 0, writes dropped).
    pub reg: u8,
    /// A load narrower than the register must be sign-extended to it.
    pub sign_extend: bool,
    /// The register is 64 bits wide (Xt); otherwise 32 (Wt), and a load clears bits [63:32].
    pub sixty_four: bool,
    /// The instruction has acquire/release semantics (LDAR, STLR and friends).
    pub acquire_release: bool,
}

/// The size of a guest memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// 8 bits.
    Byte,
    /// 16 bits.
    Half,
    /// 32 bits.
    Word,
    /// 64 bits.
    Double,
}

impl Width {
    /// The access size in bytes: 1, 2, 4 or 8.
    pub const fn bytes(self) -> usize {
        match self {
            Width::Byte => 1,
            Width::Half => 2,
            Width::Word => 4,
            Width::Double => 8,
        }
    }

    /// The width a Data Abort's two-bit SAS field names.
    const fn from_sas(sas: u64) -> Self {
        match sas & 0b11 {
            0b00 => Width::Byte,
            0b01 => Width::Half,
            0b10 => Width::Word,
            _ => Width::Double,
        }
    }
}

/// What is known about an abort that Janus will not emulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortInfo {
    /// The faulting IPA, for stage-2 translation, access flag, permission and address size
    /// faults; `None` for other faults, where HPFAR_EL2 is UNKNOWN.
    pub ipa: Option<u64>,
    /// The faulting virtual address (FAR_EL2), `None` when ESR_EL2.FnV says it is not valid.
    pub far: Option<u64>,
    /// The decoded DFSC or IFSC.
    pub status: FaultStatus,
    /// The access was a write; always false for an Instruction Abort.
    pub write: bool,
    /// The fault hit the stage-2 translation of the guest's own stage-1 table walk.
    pub s1ptw: bool,
    /// The abort came from a cache maintenance or address translation instruction, which
    /// the dispatcher may skip instead of faulting the guest.
    pub cache_maintenance: bool,
}

/// A decoded fault status code (DFSC for Data Aborts, IFSC for Instruction Aborts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultStatus {
    /// Address size fault: the address is beyond the configured range.
    AddressSize {
        /// Lookup level, 0..=3.
        level: u8,
    },
    /// Translation fault: no valid descriptor.
    Translation {
        /// Lookup level, 0..=3.
        level: u8,
    },
    /// Access flag fault.
    AccessFlag {
        /// Lookup level, 0..=3.
        level: u8,
    },
    /// Permission fault: the mapping forbids the access.
    Permission {
        /// Lookup level, 0..=3.
        level: u8,
    },
    /// Synchronous External abort, not on a translation table walk.
    SyncExternal,
    /// Alignment fault.
    Alignment,
    /// Any other code (external abort on a walk, TLB conflict, LPA2 level -1, ...), kept raw.
    Other(u8),
}

impl FaultStatus {
    /// Decodes a six-bit fault status code; bits above bit 5 are ignored.
    pub const fn from_code(code: u8) -> Self {
        let code = ISS_FSC.get_u8(code as u64);
        let level = FSC_LEVEL.get_u8(code as u64);
        match code {
            FSC_SYNC_EXTERNAL => FaultStatus::SyncExternal,
            FSC_ALIGNMENT => FaultStatus::Alignment,
            _ => match FSC_GROUP.get_u8(code as u64) {
                FSC_GROUP_ADDRESS_SIZE => FaultStatus::AddressSize { level },
                FSC_GROUP_TRANSLATION => FaultStatus::Translation { level },
                FSC_GROUP_ACCESS_FLAG => FaultStatus::AccessFlag { level },
                FSC_GROUP_PERMISSION => FaultStatus::Permission { level },
                _ => FaultStatus::Other(code),
            },
        }
    }

    /// Whether a stage-2 fault of this kind on an unmapped or restricted IPA is one a
    /// hypervisor can emulate: translation, access flag and permission faults.
    pub const fn is_emulable(self) -> bool {
        matches!(
            self,
            FaultStatus::Translation { .. }
                | FaultStatus::AccessFlag { .. }
                | FaultStatus::Permission { .. }
        )
    }

    /// Whether this is a stage-2 MMU fault that names an IPA.
    const fn names_ipa(self) -> bool {
        self.is_emulable() || matches!(self, FaultStatus::AddressSize { .. })
    }
}

/// A trapped MSR, MRS or System instruction, with the encoding as the Arm ARM lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysRegAccess {
    /// op0, 0..=3.
    pub op0: u8,
    /// op1, 0..=7.
    pub op1: u8,
    /// CRn, 0..=15.
    pub crn: u8,
    /// CRm, 0..=15.
    pub crm: u8,
    /// op2, 0..=7.
    pub op2: u8,
    /// The general-purpose register, 0..=30, or 31 for XZR.
    pub rt: u8,
    /// True for MRS (the guest reads), false for MSR (the guest writes).
    pub read: bool,
}

/// ESR_EL2.EC of a syndrome.
pub const fn exception_class(esr: u64) -> u8 {
    ESR_EC.get_u8(esr)
}

/// Whether the trapped instruction was 32 bits long (ESR_EL2.IL), that is how far to
/// advance ELR_EL2 past it: 4 bytes if true, 2 (a T32 16-bit instruction) if false.
pub const fn il_is_32bit(esr: u64) -> bool {
    ESR_IL.is_set(esr)
}

/// Whether the faulting IPA of this exception must come from translating FAR_EL2 rather
/// than from HPFAR_EL2.
///
/// For a stage-2 Permission fault that is not on a stage-1 table walk the architecture
/// leaves HPFAR_EL2 UNKNOWN (D24.2.76 HPFAR_EL2, "HPFAR_EL2 is written for"). The arch
/// layer then runs `AT S1E1R` on FAR_EL2 while the guest's EL1 translation registers are
/// still live and hands the result through [`hpfar_from_par`] to [`decode`].
pub const fn ipa_needs_far_translation(esr: u64) -> bool {
    let ec = exception_class(esr);
    let is_abort = ec == EC_DATA_ABORT_LOWER || ec == EC_INSTRUCTION_ABORT_LOWER;
    is_abort
        && !ISS_S1PTW.is_set(esr)
        && matches!(
            FaultStatus::from_code(ISS_FSC.get_u8(esr)),
            FaultStatus::Permission { .. }
        )
}

/// The faulting IPA's page of a stage-2 Translation fault from the guest (a Data or
/// Instruction Abort from a lower EL, on its own table walk or not), or `None` for any
/// other exception. A Translation fault taken to EL2 from EL1 or EL0 is always a stage-2
/// one (stage-1 faults go to EL1), and HPFAR_EL2 is written for it.
pub const fn stage2_translation_fault(esr: u64, hpfar: u64) -> Option<u64> {
    let ec = exception_class(esr);
    let is_abort = ec == EC_DATA_ABORT_LOWER || ec == EC_INSTRUCTION_ABORT_LOWER;
    if is_abort
        && matches!(
            FaultStatus::from_code(ISS_FSC.get_u8(esr)),
            FaultStatus::Translation { .. }
        )
    {
        Some(HPFAR_FIPA.get(hpfar) << PAGE_SHIFT)
    } else {
        None
    }
}

/// An HPFAR_EL2-formatted value from PAR_EL1 after `AT S1E1R`, or `None` if the
/// translation failed (PAR_EL1.F set), in which case the guest changed its tables under
/// us and the dispatcher returns to it to retry the access.
pub const fn hpfar_from_par(par_el1: u64) -> Option<u64> {
    if PAR_F.is_set(par_el1) {
        None
    } else {
        Some(HPFAR_FIPA.place(PAR_PA.get(par_el1)))
    }
}

/// The faulting IPA: the page from HPFAR_EL2.FIPA and the byte offset from FAR_EL2
/// (D24.2.76 HPFAR_EL2 holds only IPA[51:12]).
const fn fault_ipa(far: u64, hpfar: u64) -> u64 {
    (HPFAR_FIPA.get(hpfar) << PAGE_SHIFT) | PAGE_OFFSET.get(far)
}

/// Decodes one exception taken to EL2 from the captured `ESR_EL2`, `FAR_EL2` and
/// `HPFAR_EL2`. Any input gives an [`Exit`]; nothing panics.
///
/// `hpfar` must hold the faulting page for every stage-2 fault. Where the architecture
/// leaves HPFAR_EL2 UNKNOWN (see [`ipa_needs_far_translation`]), pass the value from
/// [`hpfar_from_par`] instead; `far` and `hpfar` are ignored for non-abort classes.
pub fn decode(esr: u64, far: u64, hpfar: u64) -> Exit {
    let iss = ESR_ISS.get(esr);
    match exception_class(esr) {
        EC_WFX => Exit::Wfx {
            wfe: ISS_WFX_TI_WFE.is_set(iss),
        },
        EC_FP_ACCESS => Exit::FpAccess,
        EC_HVC64 => Exit::Hvc {
            imm: immediate(iss),
        },
        EC_SMC64 => Exit::Smc {
            imm: immediate(iss),
        },
        EC_SYS64 => Exit::SysReg(SysRegAccess {
            op0: ISS_SYS_OP0.get_u8(iss),
            op1: ISS_SYS_OP1.get_u8(iss),
            crn: ISS_SYS_CRN.get_u8(iss),
            crm: ISS_SYS_CRM.get_u8(iss),
            op2: ISS_SYS_OP2.get_u8(iss),
            rt: ISS_SYS_RT.get_u8(iss),
            read: ISS_SYS_DIRECTION_READ.is_set(iss),
        }),
        EC_DATA_ABORT_LOWER => decode_data_abort(iss, far, hpfar),
        EC_INSTRUCTION_ABORT_LOWER => {
            let mut info = abort_info(iss, far, hpfar);
            // WnR and CM are RES0 in an Instruction Abort's ISS (D24.2.46 ESR_EL2).
            info.write = false;
            info.cache_maintenance = false;
            Exit::InstructionAbort(info)
        }
        ec => Exit::Unhandled {
            ec,
            iss: u32_from_iss(iss),
        },
    }
}

/// A Data Abort from the guest: emulable when the syndrome is valid and the fault is a
/// stage-2 translation, access flag or permission fault on the access itself.
fn decode_data_abort(iss: u64, far: u64, hpfar: u64) -> Exit {
    let info = abort_info(iss, far, hpfar);
    // ISV is 0 for a fault on the stage-1 walk (D24.2.46 ESR_EL2, ISV), so the S1PTW test
    // only matters for malformed input; it keeps a walk fault from becoming MMIO.
    let emulable = ISS_ISV.is_set(iss) && !info.s1ptw && info.status.is_emulable();
    if !emulable {
        return Exit::DataAbort(info);
    }
    Exit::Mmio(MmioAccess {
        ipa: fault_ipa(far, hpfar),
        width: Width::from_sas(ISS_SAS.get(iss)),
        write: info.write,
        reg: ISS_SRT.get_u8(iss),
        sign_extend: ISS_SSE.is_set(iss),
        sixty_four: ISS_SF.is_set(iss),
        acquire_release: ISS_AR.is_set(iss),
    })
}

/// The parts of an abort's ISS shared by Data and Instruction Aborts.
fn abort_info(iss: u64, far: u64, hpfar: u64) -> AbortInfo {
    let status = FaultStatus::from_code(ISS_FSC.get_u8(iss));
    // FnV is defined only for a synchronous External abort (D24.2.46 ESR_EL2, FnV).
    let far_valid = !(matches!(status, FaultStatus::SyncExternal) && ISS_FNV.is_set(iss));
    AbortInfo {
        ipa: if status.names_ipa() {
            Some(fault_ipa(far, hpfar))
        } else {
            None
        },
        far: if far_valid { Some(far) } else { None },
        status,
        write: ISS_WNR.is_set(iss),
        s1ptw: ISS_S1PTW.is_set(iss),
        cache_maintenance: ISS_CM.is_set(iss),
    }
}

/// The 16-bit immediate of an HVC or SMC; the field is 16 bits wide, so nothing is lost.
fn immediate(iss: u64) -> u16 {
    u16::try_from(ISS_IMM16.get(iss)).unwrap_or(u16::MAX)
}

/// The ISS as a `u32`; it is 25 bits wide, so nothing is lost.
fn u32_from_iss(iss: u64) -> u32 {
    u32::try_from(ESR_ISS.get(iss)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;

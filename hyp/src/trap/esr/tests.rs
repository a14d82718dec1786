//! Host tests of `trap/esr.rs`.

use super::*;

/// Builds a syndrome from its architectural fields, so each test shows its layout.
fn syndrome(ec: u8, il: bool, iss: u64) -> u64 {
    ESR_EC.place(u64::from(ec)) | ESR_IL.place(u64::from(il)) | ESR_ISS.place(iss)
}

/// HPFAR_EL2 for an IPA: IPA[51:12] in bits [43:4] (D24.2.76).
fn hpfar_for(ipa: u64) -> u64 {
    (ipa >> 12) << 4
}

/// IPA of the QEMU virt PL011, a typical MMIO target.
const UART_IPA: u64 = 0x0900_0000;

#[test]
fn hvc_zero_from_aarch64_decodes_to_hvc() {
    // EC 0x16 << 26 = 0x5800_0000, IL (bit 25) = 0x0200_0000, imm16 = 0.
    let esr = 0x5a00_0000;
    assert_eq!(esr, syndrome(EC_HVC64, true, 0));
    assert_eq!(decode(esr, 0, 0), Exit::Hvc { imm: 0 });
}

#[test]
fn hvc_immediate_is_kept() {
    // HVC #0x4711: EC 0x16, IL 1, imm16 in ISS[15:0].
    let esr = 0x5a00_4711;
    assert_eq!(decode(esr, 0, 0), Exit::Hvc { imm: 0x4711 });
}

#[test]
fn smc_zero_from_aarch64_decodes_to_smc() {
    // EC 0x17 << 26 = 0x5c00_0000, IL = 0x0200_0000, imm16 = 0.
    let esr = 0x5e00_0000;
    assert_eq!(esr, syndrome(EC_SMC64, true, 0));
    assert_eq!(decode(esr, 0, 0), Exit::Smc { imm: 0 });
}

#[test]
fn wfi_decodes_to_wfx_without_wfe() {
    // EC 0x01 << 26 = 0x0400_0000, IL = 0x0200_0000, TI = 0b00 (WFI).
    let esr = 0x0600_0000;
    assert_eq!(esr, syndrome(EC_WFX, true, 0));
    assert_eq!(decode(esr, 0, 0), Exit::Wfx { wfe: false });
}

#[test]
fn wfe_decodes_to_wfx_with_wfe() {
    // As WFI with TI = 0b01 (WFE).
    let esr = 0x0600_0001;
    assert_eq!(decode(esr, 0, 0), Exit::Wfx { wfe: true });
}

#[test]
fn wfit_and_wfet_decode_as_wfi_and_wfe() {
    // TI = 0b10 is WFIT, 0b11 is WFET.
    assert_eq!(decode(0x0600_0002, 0, 0), Exit::Wfx { wfe: false });
    assert_eq!(decode(0x0600_0003, 0, 0), Exit::Wfx { wfe: true });
}

#[test]
fn word_load_at_stage2_translation_fault_is_mmio_read() {
    // `ldr w1, [x0]` to an unmapped IPA, translation fault at level 1:
    // EC 0x24 << 26 = 0x9000_0000, IL = 0x0200_0000, ISV (bit 24) = 0x0100_0000,
    // SAS 0b10 << 22 = 0x0080_0000, SSE 0, SRT 1 << 16 = 0x0001_0000, SF 0, AR 0,
    // WnR 0, DFSC 0b000101 = 0x05; total 0x9381_0005.
    let esr = 0x9381_0005;
    assert_eq!(
        esr,
        syndrome(
            EC_DATA_ABORT_LOWER,
            true,
            (1 << 24) | (0b10 << 22) | (1 << 16) | 0x05
        )
    );
    let far = 0xffff_0000_1234_5018;
    let exit = decode(esr, far, hpfar_for(UART_IPA));
    assert_eq!(
        exit,
        Exit::Mmio(MmioAccess {
            ipa: UART_IPA + 0x018,
            width: Width::Word,
            write: false,
            reg: 1,
            sign_extend: false,
            sixty_four: false,
            acquire_release: false,
        })
    );
}

#[test]
fn doubleword_store_is_mmio_write_of_x_register() {
    // `str x3, [x2]`, translation fault at level 3:
    // 0x9000_0000 (EC 0x24) | 0x0200_0000 (IL) | 0x0100_0000 (ISV)
    // | 0x00c0_0000 (SAS 0b11) | 0x0003_0000 (SRT 3) | 0x8000 (SF) | 0x40 (WnR)
    // | 0x07 (DFSC level 3) = 0x93c3_8047.
    let esr = 0x93c3_8047;
    assert_eq!(
        esr,
        syndrome(
            EC_DATA_ABORT_LOWER,
            true,
            (1 << 24) | (0b11 << 22) | (3 << 16) | (1 << 15) | (1 << 6) | 0x07
        )
    );
    let exit = decode(esr, 0x4000_0ff8, hpfar_for(0x1_0000_0000));
    assert_eq!(
        exit,
        Exit::Mmio(MmioAccess {
            ipa: 0x1_0000_0ff8,
            width: Width::Double,
            write: true,
            reg: 3,
            sign_extend: false,
            sixty_four: true,
            acquire_release: false,
        })
    );
}

#[test]
fn signed_byte_load_reports_sign_extension() {
    // `ldrsb x5, [x0]`, translation fault at level 2:
    // 0x9300_0000 (EC, IL, ISV) | SAS 0b00 | 0x0020_0000 (SSE) | 0x0005_0000 (SRT 5)
    // | 0x8000 (SF) | 0x06 (DFSC) = 0x9325_8006.
    let esr = 0x9325_8006;
    let Exit::Mmio(access) = decode(esr, 0x3, hpfar_for(UART_IPA)) else {
        panic!("expected an MMIO exit");
    };
    assert_eq!(access.width, Width::Byte);
    assert!(access.sign_extend);
    assert!(access.sixty_four);
    assert_eq!(access.reg, 5);
    assert_eq!(access.ipa, UART_IPA + 3);
}

#[test]
fn store_of_wzr_names_register_31() {
    // `strh wzr, [x0]`: 0x9300_0000 | SAS 0b01 (0x0040_0000) | SRT 31 (0x001f_0000)
    // | WnR (0x40) | DFSC 0x07 = 0x935f_0047.
    let Exit::Mmio(access) = decode(0x935f_0047, 0, hpfar_for(UART_IPA)) else {
        panic!("expected an MMIO exit");
    };
    assert_eq!(access.reg, 31);
    assert_eq!(access.width, Width::Half);
    assert!(access.write);
}

#[test]
fn store_release_reports_acquire_release() {
    // `stlr w0, [x1]`: 0x9300_0000 | SAS 0b10 (0x0080_0000) | SRT 0 | AR (0x4000)
    // | WnR (0x40) | DFSC 0x07 = 0x9380_4047.
    let Exit::Mmio(access) = decode(0x9380_4047, 0, hpfar_for(UART_IPA)) else {
        panic!("expected an MMIO exit");
    };
    assert!(access.acquire_release);
    assert!(access.write);
}

#[test]
fn access_flag_and_permission_faults_are_emulable() {
    // ISV, SAS word, SRT 0, read; DFSC 0x0b access flag level 3, 0x0f permission level 3.
    assert!(matches!(
        decode(0x9380_000b, 0, hpfar_for(UART_IPA)),
        Exit::Mmio(_)
    ));
    assert!(matches!(
        decode(0x9380_000f, 0, hpfar_for(UART_IPA)),
        Exit::Mmio(_)
    ));
}

#[test]
fn load_pair_without_syndrome_is_data_abort() {
    // `ldp x0, x1, [x2]`: no instruction syndrome, so ISV = 0:
    // 0x9200_0000 (EC, IL) | DFSC 0x06 = 0x9200_0006.
    let exit = decode(0x9200_0006, 0x1008, hpfar_for(UART_IPA));
    assert_eq!(
        exit,
        Exit::DataAbort(AbortInfo {
            ipa: Some(UART_IPA + 8),
            far: Some(0x1008),
            status: FaultStatus::Translation { level: 2 },
            write: false,
            s1ptw: false,
            cache_maintenance: false,
        })
    );
}

#[test]
fn fault_on_stage1_walk_is_data_abort() {
    // Stage-2 translation fault on the guest's own table walk: ISV 0, S1PTW (0x80),
    // DFSC 0x05: 0x9200_0085. Even with ISV forced on it must not become MMIO.
    for esr in [0x9200_0085, 0x9300_0085] {
        let Exit::DataAbort(info) = decode(esr, 0, hpfar_for(0x8000_0000)) else {
            panic!("expected a data abort");
        };
        assert!(info.s1ptw);
        assert_eq!(info.status, FaultStatus::Translation { level: 1 });
    }
}

#[test]
fn external_abort_with_fnv_has_no_far_and_no_ipa() {
    // Synchronous External abort, FnV (0x400), DFSC 0x10: 0x9200_0410.
    let Exit::DataAbort(info) = decode(0x9200_0410, 0xdead, 0xbeef) else {
        panic!("expected a data abort");
    };
    assert_eq!(info.status, FaultStatus::SyncExternal);
    assert_eq!(info.far, None);
    assert_eq!(info.ipa, None);
}

#[test]
fn external_abort_with_syndrome_is_not_emulated() {
    // ISV forced on with DFSC 0x10: external aborts are never MMIO.
    assert!(matches!(
        decode(0x9380_0010, 0, 0),
        Exit::DataAbort(AbortInfo {
            status: FaultStatus::SyncExternal,
            far: Some(0),
            ..
        })
    ));
}

#[test]
fn cache_maintenance_abort_is_flagged() {
    // `dc civac, x0` on an unmapped IPA: ISV 0, CM (0x100), WnR (0x40), DFSC 0x07:
    // 0x9200_0147.
    let Exit::DataAbort(info) = decode(0x9200_0147, 0, hpfar_for(UART_IPA)) else {
        panic!("expected a data abort");
    };
    assert!(info.cache_maintenance);
    assert!(info.write);
}

#[test]
fn address_size_fault_is_data_abort_with_ipa() {
    // ISV set but DFSC 0x00, address size fault level 0: not emulable.
    let Exit::DataAbort(info) = decode(0x9380_0000, 0x10, hpfar_for(UART_IPA)) else {
        panic!("expected a data abort");
    };
    assert_eq!(info.status, FaultStatus::AddressSize { level: 0 });
    assert_eq!(info.ipa, Some(UART_IPA + 0x10));
}

#[test]
fn instruction_abort_from_guest_keeps_ipa_and_far() {
    // Instruction fetch from an unmapped IPA, translation fault level 3:
    // EC 0x20 << 26 = 0x8000_0000 | IL 0x0200_0000 | IFSC 0x07 = 0x8200_0007.
    let esr = 0x8200_0007;
    assert_eq!(esr, syndrome(EC_INSTRUCTION_ABORT_LOWER, true, 0x07));
    assert_eq!(
        decode(esr, 0x4008_0004, hpfar_for(0x4008_0000)),
        Exit::InstructionAbort(AbortInfo {
            ipa: Some(0x4008_0004),
            far: Some(0x4008_0004),
            status: FaultStatus::Translation { level: 3 },
            write: false,
            s1ptw: false,
            cache_maintenance: false,
        })
    );
}

#[test]
fn mrs_of_actlr_el1_decodes_to_sysreg_read() {
    // `mrs x2, actlr_el1` (op0 3, op1 0, CRn 1, CRm 0, op2 1) trapped by HCR_EL2.TACR:
    // Op0 3 << 20 = 0x30_0000, Op2 1 << 17 = 0x2_0000, Op1 0, CRn 1 << 10 = 0x400,
    // Rt 2 << 5 = 0x40, CRm 0, Direction 1 (read): ISS 0x32_0441;
    // EC 0x18 << 26 = 0x6000_0000 | IL 0x0200_0000 -> 0x6232_0441.
    let esr = 0x6232_0441;
    assert_eq!(esr, syndrome(EC_SYS64, true, 0x32_0441));
    assert_eq!(
        decode(esr, 0, 0),
        Exit::SysReg(SysRegAccess {
            op0: 3,
            op1: 0,
            crn: 1,
            crm: 0,
            op2: 1,
            rt: 2,
            read: true,
        })
    );
}

#[test]
fn msr_to_oslar_el1_decodes_to_sysreg_write() {
    // `msr oslar_el1, x0` (op0 2, op1 0, CRn 1, CRm 0, op2 4) trapped by MDCR_EL2.TDOSA:
    // Op0 2 << 20 = 0x20_0000, Op2 4 << 17 = 0x8_0000, CRn 1 << 10 = 0x400, Rt 0,
    // Direction 0 (write): ISS 0x28_0400 -> ESR 0x6228_0400.
    assert_eq!(
        decode(0x6228_0400, 0, 0),
        Exit::SysReg(SysRegAccess {
            op0: 2,
            op1: 0,
            crn: 1,
            crm: 0,
            op2: 4,
            rt: 0,
            read: false,
        })
    );
}

#[test]
fn msr_to_icc_sgi1r_el1_keeps_every_encoding_field() {
    // `msr icc_sgi1r_el1, x30` (op0 3, op1 0, CRn 12, CRm 11, op2 5):
    // 0x30_0000 | 5 << 17 = 0xa_0000 | 12 << 10 = 0x3000 | 30 << 5 = 0x3c0
    // | 11 << 1 = 0x16 | 0 -> ISS 0x3a_33d6, ESR 0x623a_33d6.
    assert_eq!(
        decode(0x623a_33d6, 0, 0),
        Exit::SysReg(SysRegAccess {
            op0: 3,
            op1: 0,
            crn: 12,
            crm: 11,
            op2: 5,
            rt: 30,
            read: false,
        })
    );
}

#[test]
fn fp_access_trap_decodes_to_fp_access() {
    // EC 0x07 << 26 = 0x1c00_0000 | IL -> 0x1e00_0000.
    assert_eq!(decode(0x1e00_0000, 0, 0), Exit::FpAccess);
}

#[test]
fn brk_is_unhandled_with_its_class_and_syndrome() {
    // `brk #0x3e8`: EC 0x3c << 26 = 0xf000_0000 | IL | comment 0x3e8 -> 0xf200_03e8.
    assert_eq!(
        decode(0xf200_03e8, 0, 0),
        Exit::Unhandled {
            ec: 0x3c,
            iss: 0x3e8
        }
    );
}

#[test]
fn unknown_class_is_unhandled() {
    // An UNDEFINED instruction reaching EL2: EC 0, IL 1 -> 0x0200_0000.
    assert_eq!(
        decode(0x0200_0000, 0, 0),
        Exit::Unhandled {
            ec: EC_UNKNOWN,
            iss: 0
        }
    );
}

#[test]
fn aarch32_hvc_is_unhandled() {
    // HVC from AArch32 is EC 0x12: 0x4a00_0000.
    assert!(matches!(
        decode(0x4a00_0000, 0, 0),
        Exit::Unhandled { ec: 0x12, .. }
    ));
}

#[test]
fn data_abort_taken_at_el2_is_unhandled() {
    // EC 0x25 is Janus' own fault, never a guest MMIO access: 0x9780_0007.
    assert!(matches!(
        decode(0x9780_0007, 0, 0),
        Exit::Unhandled {
            ec: EC_DATA_ABORT_SAME,
            ..
        }
    ));
}

#[test]
fn exception_class_and_il_read_their_bits() {
    assert_eq!(exception_class(0x93c3_8047), EC_DATA_ABORT_LOWER);
    assert!(il_is_32bit(0x93c3_8047));
    assert!(!il_is_32bit(0x9000_0000));
    assert_eq!(exception_class(u64::MAX), 0x3f);
}

#[test]
fn ipa_combines_hpfar_page_with_far_offset() {
    // Highest 52-bit IPA page; bits of HPFAR outside FIPA are ignored.
    let ipa = 0x000f_ffff_ffff_f000;
    let hpfar = hpfar_for(ipa) | (1 << 63) | 0xf;
    let Exit::Mmio(access) = decode(0x9380_0007, 0xffff_ffff_ffff_fabc, hpfar) else {
        panic!("expected an MMIO exit");
    };
    assert_eq!(access.ipa, ipa | 0xabc);
}

#[test]
fn permission_fault_needs_far_translation() {
    // Stage-2 permission fault, level 3, not on a walk.
    assert!(ipa_needs_far_translation(0x9380_004f));
    // A walk fault and a translation fault have HPFAR_EL2 written.
    assert!(!ipa_needs_far_translation(0x9200_008f));
    assert!(!ipa_needs_far_translation(0x9380_0047));
    // Not an abort.
    assert!(!ipa_needs_far_translation(0x5a00_000f));
}

#[test]
fn stage2_translation_faults_name_their_page() {
    let hpfar = hpfar_for(0xb040_3000);
    // Data Abort, translation fault level 2, ISV clear; the same on a stage-1 walk
    // (S1PTW, bit 7); an Instruction Abort, translation fault level 3.
    assert_eq!(
        stage2_translation_fault(0x9200_0006, hpfar),
        Some(0xb040_3000)
    );
    assert_eq!(
        stage2_translation_fault(0x9200_0086, hpfar),
        Some(0xb040_3000)
    );
    assert_eq!(
        stage2_translation_fault(0x8200_0007, hpfar),
        Some(0xb040_3000)
    );
    // A permission fault, an access flag fault, an abort at EL2 itself, an HVC.
    assert_eq!(stage2_translation_fault(0x9380_004f, hpfar), None);
    assert_eq!(stage2_translation_fault(0x9200_000a, hpfar), None);
    assert_eq!(stage2_translation_fault(0x9600_0006, hpfar), None);
    assert_eq!(stage2_translation_fault(0x5a00_0000, hpfar), None);
}

#[test]
fn par_converts_to_hpfar_format() {
    // PAR_EL1 with F = 0, PA 0x0900_0000, attributes in bits [63:56].
    let par = 0xff00_0000_0900_0000 | 0x80;
    assert_eq!(hpfar_from_par(par), Some(hpfar_for(UART_IPA)));
    // F = 1: the translation failed.
    assert_eq!(hpfar_from_par(0x9), None);
}

#[test]
fn fault_status_codes_decode_by_group_and_level() {
    assert_eq!(
        FaultStatus::from_code(0x04),
        FaultStatus::Translation { level: 0 }
    );
    assert_eq!(
        FaultStatus::from_code(0x0a),
        FaultStatus::AccessFlag { level: 2 }
    );
    assert_eq!(
        FaultStatus::from_code(0x0d),
        FaultStatus::Permission { level: 1 }
    );
    assert_eq!(FaultStatus::from_code(0x21), FaultStatus::Alignment);
    assert_eq!(FaultStatus::from_code(0x10), FaultStatus::SyncExternal);
    assert_eq!(FaultStatus::from_code(0x15), FaultStatus::Other(0x15));
    assert_eq!(FaultStatus::from_code(0x30), FaultStatus::Other(0x30));
    // Bits above the six-bit code are ignored.
    assert_eq!(
        FaultStatus::from_code(0xc5),
        FaultStatus::Translation { level: 1 }
    );
}

#[test]
fn width_bytes_match_sas() {
    let sizes: [usize; 4] = [0, 1, 2, 3].map(|sas| Width::from_sas(sas).bytes());
    assert_eq!(sizes, [1, 2, 4, 8]);
}

/// A xorshift64 step: enough spread for a no-panic sweep without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Checks the invariants every decode result must keep.
fn check_invariants(esr: u64, far: u64, hpfar: u64) {
    match decode(esr, far, hpfar) {
        Exit::Mmio(access) => {
            assert!(access.reg <= 31);
            assert_eq!(exception_class(esr), EC_DATA_ABORT_LOWER);
            assert_eq!(access.ipa & 0xfff, far & 0xfff);
            assert!(access.ipa < 1 << 52);
        }
        Exit::SysReg(access) => {
            assert!(access.op0 <= 3 && access.op1 <= 7 && access.op2 <= 7);
            assert!(access.crn <= 15 && access.crm <= 15 && access.rt <= 31);
        }
        Exit::Unhandled { ec, iss } => {
            assert_eq!(ec, exception_class(esr));
            assert!(iss < 1 << 25);
        }
        _ => {}
    }
}

#[test]
fn decode_never_panics_on_arbitrary_syndromes() {
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..4096 {
        let esr = next(&mut state);
        let far = next(&mut state);
        let hpfar = next(&mut state);
        check_invariants(esr, far, hpfar);
        // The same bits with the top half clear, as real ESR_EL2 values are.
        check_invariants(esr & 0xffff_ffff, far, hpfar);
    }
    let edges = [0, 1, u64::MAX, 1 << 63, 0xffff_ffff, 0x01ff_ffff];
    for ec in 0..=0x3f_u64 {
        for iss in [0, 0x01ff_ffff, 0x0100_0000, 0x0080_0000, 0x0000_0010] {
            for far in edges {
                check_invariants((ec << 26) | (1 << 25) | iss, far, far);
            }
        }
    }
    for esr in edges {
        for hpfar in edges {
            check_invariants(esr, u64::MAX, hpfar);
        }
    }
}

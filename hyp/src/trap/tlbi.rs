//! Trapped TLB maintenance (HCR_EL2.TTLB) of a personality running on one vCPU.
//!
//! A guest's broadcast TLB invalidation (`TLBI VAE1IS` and friends) reaches every
//! CPU of the inner shareable domain, those running the other personality
//! included. While a personality has a single vCPU on, nothing of its
//! translations can be cached on another physical CPU (its vCPUs are pinned,
//! and a vCPU flushes its VMID's entries from its CPU when it starts), so the
//! local form of the same operation is enough, and the other personality is not
//! disturbed. Under QEMU this matters a great deal: each broadcast TLBI stops
//! every emulated CPU until all of them have flushed, and Linux issues tens of
//! thousands of them at boot (ftrace patches each call site through a fixmap
//! whose every unmap is a `TLBI VAALE1IS`).
//!
//! Janus sets HCR_EL2.TTLB only on a vCPU that starts alone and clears it when
//! that vCPU turns another one on (PSCI CPU_ON), so a personality with several
//! vCPUs on keeps the hardware's broadcast.
//!
//! Encodings from the Arm ARM (DDI 0487, C5.5 "A64 system instructions for TLB
//! maintenance"): op0 1, op1 0, CRn 8; CRm 3 is the Inner Shareable form, 7 the
//! local one, and op2 picks the operation. CRn 9 holds the same operations'
//! nXS forms (FEAT_XS), which HCR_EL2.TTLB traps too: Janus performs the
//! ordinary form, which completes at least as much.

use super::esr::SysRegAccess;

/// One EL1 TLB maintenance operation, to be performed on this CPU only, for the
/// current VMID. The value is the operand register as the guest wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlbOperation {
    /// TLBI VMALLE1: every entry of the VMID's EL1&0 regime. Also what Janus does
    /// for an operation it has no local form for (range and Outer Shareable
    /// operations, FEAT_TLBIRANGE and FEAT_TLBIOS): more than asked is never wrong.
    All,
    /// TLBI VAE1: one address, one ASID, all levels.
    Address(u64),
    /// TLBI ASIDE1: one ASID.
    Asid(u64),
    /// TLBI VAAE1: one address, every ASID.
    AddressAllAsids(u64),
    /// TLBI VALE1: one address, one ASID, last level only.
    AddressLastLevel(u64),
    /// TLBI VAALE1: one address, every ASID, last level only.
    AddressAllAsidsLastLevel(u64),
}

/// CRn of the TLB maintenance instructions.
const CRN_TLB: u8 = 8;
/// CRn of their nXS forms (FEAT_XS).
const CRN_TLB_NXS: u8 = 9;
/// CRm of the Inner Shareable forms.
const CRM_INNER_SHAREABLE: u8 = 3;
/// CRm of the local (non-shareable) forms.
const CRM_LOCAL: u8 = 7;

/// op2 values shared by the Inner Shareable and local forms.
const OP2_VMALLE1: u8 = 0;
const OP2_VAE1: u8 = 1;
const OP2_ASIDE1: u8 = 2;
const OP2_VAAE1: u8 = 3;
const OP2_VALE1: u8 = 5;
const OP2_VAALE1: u8 = 7;

/// The local operation that stands for a trapped EL1 TLB maintenance
/// instruction, or `None` when `access` is not one (another system instruction
/// or register). `value` is the guest's operand register (Xt).
pub fn classify(access: &SysRegAccess, value: u64) -> Option<TlbOperation> {
    if (access.op0, access.op1) != (1, 0)
        || !matches!(access.crn, CRN_TLB | CRN_TLB_NXS)
        || access.read
    {
        return None;
    }
    if !matches!(access.crm, CRM_INNER_SHAREABLE | CRM_LOCAL) {
        return Some(TlbOperation::All);
    }
    Some(match access.op2 {
        OP2_VMALLE1 => TlbOperation::All,
        OP2_VAE1 => TlbOperation::Address(value),
        OP2_ASIDE1 => TlbOperation::Asid(value),
        OP2_VAAE1 => TlbOperation::AddressAllAsids(value),
        OP2_VALE1 => TlbOperation::AddressLastLevel(value),
        OP2_VAALE1 => TlbOperation::AddressAllAsidsLastLevel(value),
        _ => TlbOperation::All,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trap::esr::{decode, Exit};

    /// The SysRegAccess of a captured ESR_EL2.
    fn access(esr: u64) -> SysRegAccess {
        match decode(esr, 0, 0) {
            Exit::SysReg(access) => access,
            other => panic!("not a system instruction trap: {other:?}"),
        }
    }

    #[test]
    fn vaale1is_from_linux_fixmap_unmap_is_a_local_vaale1() {
        // `tlbi vaale1is, x0` trapped by HCR_EL2.TTLB: EC 0x18, op0 1, op2 7,
        // op1 0, CRn 8, Rt 0, CRm 3, write.
        let esr = 0x6200_0000 | 1 << 20 | 7 << 17 | 8 << 10 | 3 << 1;
        assert_eq!(
            classify(&access(esr), 0x1234),
            Some(TlbOperation::AddressAllAsidsLastLevel(0x1234))
        );
    }

    #[test]
    fn every_inner_shareable_and_local_form_has_its_operation() {
        let cases = [
            (0, TlbOperation::All),
            (1, TlbOperation::Address(9)),
            (2, TlbOperation::Asid(9)),
            (3, TlbOperation::AddressAllAsids(9)),
            (5, TlbOperation::AddressLastLevel(9)),
            (7, TlbOperation::AddressAllAsidsLastLevel(9)),
        ];
        for crm in [CRM_INNER_SHAREABLE, CRM_LOCAL] {
            for (op2, operation) in cases {
                let access = SysRegAccess {
                    op0: 1,
                    op1: 0,
                    crn: 8,
                    crm,
                    op2,
                    rt: 3,
                    read: false,
                };
                assert_eq!(classify(&access, 9), Some(operation), "CRm {crm} op2 {op2}");
            }
        }
    }

    #[test]
    fn nxs_forms_are_the_same_operations() {
        let access = SysRegAccess {
            op0: 1,
            op1: 0,
            crn: 9,
            crm: 3,
            op2: 7,
            rt: 2,
            read: false,
        };
        assert_eq!(
            classify(&access, 4),
            Some(TlbOperation::AddressAllAsidsLastLevel(4))
        );
    }

    #[test]
    fn range_and_outer_shareable_forms_flush_the_whole_vmid() {
        for crm in [1, 2, 5, 6] {
            let access = SysRegAccess {
                op0: 1,
                op1: 0,
                crn: 8,
                crm,
                op2: 1,
                rt: 0,
                read: false,
            };
            assert_eq!(classify(&access, 5), Some(TlbOperation::All));
        }
    }

    #[test]
    fn other_system_instructions_and_registers_are_not_tlb_maintenance() {
        // DC CIVAC (op0 1, op1 3, CRn 7), ICC_SGI1R_EL1 (op0 3), an EL2 TLBI (op1 4).
        for (op0, op1, crn, crm, op2) in [(1, 3, 7, 14, 1), (3, 0, 12, 11, 5), (1, 4, 8, 3, 0)] {
            let access = SysRegAccess {
                op0,
                op1,
                crn,
                crm,
                op2,
                rt: 0,
                read: false,
            };
            assert_eq!(classify(&access, 0), None);
        }
    }
}

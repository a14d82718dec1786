//! Interrupt sources on the hypervisor's side: device lines, one-shot edges, and the
//! guest's SGIs trapped from ICC_SGI1R_EL1.

use super::state::{vcpu_bit, Bank, IrqState, PRIVATE_COUNT, SGI_COUNT};
use super::{Vgic, VgicError};
use crate::trap::esr::Field;

/// ICC_SGI1R_EL1.TargetList, bits [15:0]: bit `n` targets Aff0 = RS × 16 + `n`.
const SGI1R_TARGET_LIST: Field = Field::new(0, 16);
/// ICC_SGI1R_EL1.Aff1, bits [23:16].
const SGI1R_AFF1: Field = Field::new(16, 8);
/// ICC_SGI1R_EL1.INTID, bits [27:24]: the SGI.
const SGI1R_INTID: Field = Field::new(24, 4);
/// ICC_SGI1R_EL1.Aff2, bits [39:32].
const SGI1R_AFF2: Field = Field::new(32, 8);
/// ICC_SGI1R_EL1.IRM, bit [40]: 1 targets every PE but the sender.
const SGI1R_IRM: Field = Field::bit(40);
/// ICC_SGI1R_EL1.RS, bits [47:44]: which group of 16 Aff0 values TargetList covers.
const SGI1R_RS: Field = Field::new(44, 4);
/// ICC_SGI1R_EL1.Aff3, bits [55:48].
const SGI1R_AFF3: Field = Field::new(48, 8);
/// Aff0 values per TargetList.
const TARGETS_PER_RANGE: u32 = 16;

impl Vgic {
    /// Drives the input line of a level-sensitive interrupt: a device's output to an SPI
    /// (`vcpu` ignored), or a PPI of `vcpu`. On an interrupt configured edge-triggered, a
    /// rising level latches it once.
    ///
    /// # Errors
    /// `NoSuchVcpu` for a PPI without a valid vCPU, `NoSuchIntid` for an SGI or an INTID
    /// this VM does not implement.
    pub fn set_level(
        &mut self,
        intid: u32,
        vcpu: Option<usize>,
        level: bool,
    ) -> Result<(), VgicError> {
        if intid < SGI_COUNT {
            return Err(VgicError::NoSuchIntid);
        }
        let bank = self.lookup(intid, vcpu)?;
        self.update(bank, intid, |irq| irq.set_line(level))
    }

    /// Makes an interrupt pending once, whatever its trigger: an SGI or a one-shot SPI (`vcpu` ignored for SPIs). Pends coalesce until the guest
    /// acknowledges.
    ///
    /// # Errors
    /// `NoSuchVcpu` for an SGI or PPI without a valid vCPU, `NoSuchIntid` for an INTID
    /// this VM does not implement.
    pub fn raise_edge(&mut self, intid: u32, vcpu: Option<usize>) -> Result<(), VgicError> {
        let bank = self.lookup(intid, vcpu)?;
        self.update(bank, intid, |irq| irq.set_pending())
    }

    /// Emulates the guest's write of `value` to ICC_SGI1R_EL1 on `sender`, and returns the
    /// vCPUs (bit `i` for vCPU `i`) the SGI was made pending on.
    ///
    /// vCPU `i` has MPIDR_EL1 Aff0 = `i`, Aff1 = Aff2 = Aff3 = 0. With IRM = 1 every vCPU
    /// but the sender is targeted; otherwise the vCPUs in TargetList, offset by RS × 16,
    /// when Aff3.Aff2.Aff1 is 0.0.0. ICC_SGI1R_EL1 generates Group 1 SGIs, so a target that
    /// configured that SGI as Group 0 does not receive it (IHI 0069, "ICC_SGI1R_EL1",
    /// single security state). A bad sender or affinity targets nobody.
    pub fn write_sgi1r(&mut self, sender: usize, value: u64) -> u64 {
        if sender >= self.vcpus() {
            return 0;
        }
        // A four-bit field always converts.
        let Ok(intid) = u32::try_from(SGI1R_INTID.get(value)) else {
            return 0;
        };
        let mut targets = 0;
        for vcpu in 0..self.vcpus() {
            if !sgi_targets(value, sender, vcpu) {
                continue;
            }
            let bank = Bank::Private(vcpu);
            let group1 = self.irqs.get(bank, intid).is_some_and(|irq| irq.group1);
            if group1 && self.update(bank, intid, |irq| irq.set_pending()).is_ok() {
                targets |= vcpu_bit(vcpu);
            }
        }
        targets
    }

    /// The bank of `intid` for `vcpu`, checking that both exist.
    pub(super) fn lookup(&self, intid: u32, vcpu: Option<usize>) -> Result<Bank, VgicError> {
        let bank = self
            .irqs
            .bank_of(intid, vcpu)
            .ok_or(if intid < PRIVATE_COUNT {
                VgicError::NoSuchVcpu
            } else {
                VgicError::NoSuchIntid
            })?;
        match self.irqs.get(bank, intid) {
            Some(_) => Ok(bank),
            None => Err(VgicError::NoSuchIntid),
        }
    }

    /// Applies `change` to one interrupt and notes the vCPUs it concerns.
    pub(super) fn update(
        &mut self,
        bank: Bank,
        intid: u32,
        change: impl FnOnce(&mut IrqState),
    ) -> Result<(), VgicError> {
        let irq = self
            .irqs
            .get_mut(bank, intid)
            .ok_or(VgicError::NoSuchIntid)?;
        let before = *irq;
        change(irq);
        let irq = *irq;
        // Nothing changed (a device re-asserting the level it had): no list
        // register can be out of date because of it.
        if irq != before {
            let concerned = self.irqs.concerned(bank, &irq);
            self.kick(concerned);
        }
        Ok(())
    }
}

/// Whether the ICC_SGI1R_EL1 value `value` written on `sender` targets `vcpu`.
fn sgi_targets(value: u64, sender: usize, vcpu: usize) -> bool {
    if SGI1R_IRM.is_set(value) {
        return vcpu != sender;
    }
    let upper = SGI1R_AFF1.get(value) | SGI1R_AFF2.get(value) | SGI1R_AFF3.get(value);
    if upper != 0 {
        return false;
    }
    let Ok(aff0) = u32::try_from(vcpu) else {
        return false;
    };
    let range = u32::try_from(SGI1R_RS.get(value)).unwrap_or(u32::MAX);
    aff0 / TARGETS_PER_RANGE == range
        && SGI1R_TARGET_LIST.get(value) & (1 << (aff0 % TARGETS_PER_RANGE)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_list_selects_aff0_within_the_range() {
        assert!(sgi_targets(0b10, 0, 1));
        assert!(!sgi_targets(0b10, 0, 0));
        // RS = 1 covers Aff0 16..=31.
        assert!(!sgi_targets((1 << 44) | 0b10, 0, 1));
        assert!(sgi_targets((1 << 44) | 0b10, 0, 17));
    }

    #[test]
    fn nonzero_upper_affinity_targets_nobody() {
        assert!(!sgi_targets((1 << 16) | 0b11, 0, 0));
        assert!(!sgi_targets((1 << 32) | 0b11, 0, 1));
        assert!(!sgi_targets((1 << 48) | 0b11, 0, 1));
    }

    #[test]
    fn irm_targets_all_but_the_sender() {
        let irm = 1 << 40;
        assert!(!sgi_targets(irm, 1, 1));
        assert!(sgi_targets(irm, 1, 0));
    }
}

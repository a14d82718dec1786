//! Virtual PPIs tied to physical ones: the timer PPIs, whose physical interrupt stays
//! active while the guest has the virtual one, and is deactivated by the guest's own
//! deactivation through a HW = 1 list register (IHI 0069, "Virtual interrupt handling
//! and prioritization": HW bit, pINTID).

use super::delivery::pintid_bit;
use super::state::{Bank, FIRST_PPI, PRIVATE_COUNT};
use super::{Vgic, VgicError};

impl Vgic {
    /// Ties PPI `intid` of every vCPU to physical PPI `pintid` of that vCPU's physical
    /// CPU: from now on it is listed with HW = 1 and that pINTID (see `delivery.rs`).
    /// The tie survives `reset`.
    ///
    /// # Errors
    /// `NotTiedToPhysical` when `intid` or `pintid` is not a PPI.
    pub fn tie_to_physical(&mut self, intid: u32, pintid: u32) -> Result<(), VgicError> {
        let is_ppi = |id: u32| (FIRST_PPI..PRIVATE_COUNT).contains(&id);
        if !is_ppi(intid) || !is_ppi(pintid) {
            return Err(VgicError::NotTiedToPhysical);
        }
        for vcpu in 0..self.vcpus() {
            if let Some(irq) = self.irqs.get_mut(Bank::Private(vcpu), intid) {
                irq.physical = Some(pintid);
            }
        }
        Ok(())
    }

    /// Janus acknowledged the physical interrupt tied to PPI `intid` of `vcpu` and left
    /// it active: the line is high, and the model holds the physical interrupt until a
    /// list register takes it over or the line falls.
    ///
    /// # Errors
    /// `NoSuchVcpu`, `NoSuchIntid`, or `NotTiedToPhysical` for an interrupt with no tie
    /// (then the caller deactivates the physical interrupt itself).
    pub fn take_physical(&mut self, intid: u32, vcpu: usize) -> Result<(), VgicError> {
        let bank = self.lookup(intid, Some(vcpu))?;
        let tied = self
            .irqs
            .get(bank, intid)
            .is_some_and(|irq| irq.physical.is_some());
        if !tied {
            return Err(VgicError::NotTiedToPhysical);
        }
        self.update(bank, intid, |irq| {
            irq.holds_physical = true;
            irq.set_line(true);
        })
    }

    /// The physical PPIs (bit `n` for INTID `n`) to deactivate on `vcpu`'s physical CPU,
    /// which the model held and has let go since the last call (a timer whose output
    /// fell before the guest took its interrupt). Only `flush` adds to them.
    pub fn take_deactivations(&mut self, vcpu: usize) -> u32 {
        self.deactivations.get_mut(vcpu).map_or(0, core::mem::take)
    }
}

/// Whether `mask` (from [`Vgic::take_deactivations`]) names physical INTID `pintid`.
pub fn names_pintid(mask: u32, pintid: u32) -> bool {
    mask & pintid_bit(pintid) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ppis_can_be_tied() {
        let Ok(mut vgic) = Vgic::new(1, 32) else {
            panic!("one vCPU and 32 SPIs are supported");
        };
        assert_eq!(vgic.tie_to_physical(27, 27), Ok(()));
        assert_eq!(
            vgic.tie_to_physical(3, 27),
            Err(VgicError::NotTiedToPhysical)
        );
        assert_eq!(
            vgic.tie_to_physical(33, 27),
            Err(VgicError::NotTiedToPhysical)
        );
        assert_eq!(
            vgic.tie_to_physical(30, 40),
            Err(VgicError::NotTiedToPhysical)
        );
    }

    #[test]
    fn an_untied_interrupt_cannot_be_taken_from_hardware() {
        let Ok(mut vgic) = Vgic::new(1, 32) else {
            panic!("one vCPU and 32 SPIs are supported");
        };
        assert_eq!(vgic.take_physical(30, 0), Err(VgicError::NotTiedToPhysical));
        assert_eq!(vgic.take_physical(30, 1), Err(VgicError::NoSuchVcpu));
        assert_eq!(vgic.take_deactivations(5), 0);
    }

    #[test]
    fn deactivation_masks_name_ppis() {
        assert!(names_pintid(1 << 30, 30));
        assert!(!names_pintid(1 << 30, 27));
        assert!(!names_pintid(u32::MAX, 40));
    }
}

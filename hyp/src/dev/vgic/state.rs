//! The model's state of each interrupt, and the table that holds a VM's interrupts.
//!
//! An interrupt is in one of two places: in the model (pending, active or idle here), or
//! "listed", held in one vCPU's list register. While listed, the list register owns the
//! pending and active state that the guest sees and changes; the model keeps what it last
//! read back (`Listed::state`) and what the hypervisor or the guest's register writes want
//! changed before the next guest entry (the `latch`, `active` and `drop_*` requests).

use alloc::vec::Vec;

use super::lr::LrState;

/// INTIDs 0..=15 are SGIs.
pub(super) const SGI_COUNT: u32 = 16;
/// The first PPI.
pub(super) const FIRST_PPI: u32 = SGI_COUNT;
/// INTIDs 0..=31 (SGIs and PPIs) are banked per redistributor.
pub(super) const PRIVATE_COUNT: u32 = 32;
/// The first SPI.
pub(super) const FIRST_SPI: u32 = PRIVATE_COUNT;
/// INTIDs 1020..=1023 are special (IHI 0069, "INTIDs"), so the last SPI is 1019.
pub(super) const LAST_SPI: u32 = 1019;
/// The priority the distributor resets to; IHI 0069 leaves it UNKNOWN and 0 is what Linux
/// would overwrite first.
const RESET_PRIORITY: u8 = 0;

/// How an interrupt's input is sampled (GICD_ICFGR / GICR_ICFGR Int_config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    /// Pending while the line is high (or while a software pend stands).
    Level,
    /// A rising edge latches pending until the guest takes it.
    Edge,
}

/// Where a listed interrupt is and what must change in its list register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Listed {
    /// The vCPU whose list register holds it.
    pub(super) vcpu: usize,
    /// The list register's state when last written by `flush` or read by `sync`.
    pub(super) state: LrState,
    /// The pending state in the list register came from a latch (an edge, an SGI or a
    /// GICD_ISPENDR write), not from a level line, so a falling line must not retract it.
    pub(super) latched: bool,
    /// A GICD_ICPENDR write asked to clear the pending state in the list register.
    pub(super) drop_pending: bool,
    /// A GICD_ICACTIVER write asked to clear the active state in the list register.
    pub(super) drop_active: bool,
}

/// Everything the distributor and redistributors know about one interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IrqState {
    /// GICD_ISENABLER / GICD_ICENABLER.
    pub(super) enabled: bool,
    /// GICD_IGROUPR: Group 1 (true) or Group 0.
    pub(super) group1: bool,
    /// GICD_ICFGR.
    pub(super) trigger: Trigger,
    /// GICD_IPRIORITYR, all eight bits kept as written.
    pub(super) priority: u8,
    /// Pending state not yet handed to a list register: an edge, an SGI, or a
    /// GICD_ISPENDR write.
    pub(super) latch: bool,
    /// The input line's level, for level-sensitive interrupts.
    pub(super) line: bool,
    /// Active state not held by a list register (set through GICD_ISACTIVER).
    pub(super) active: bool,
    /// GICD_IROUTER as written (SPIs only), for reads.
    pub(super) route: u64,
    /// The vCPU `route` selects, `None` when it names no vCPU of this VM (SPIs only).
    pub(super) target: Option<usize>,
    /// Set while a list register holds the interrupt.
    pub(super) listed: Option<Listed>,
    /// The physical interrupt this one is tied to (a timer PPI, tied to the same PPI of
    /// the vCPU's physical CPU), listed with HW = 1 and this pINTID. Kept across `reset`.
    pub(super) physical: Option<u32>,
    /// Janus acknowledged the physical interrupt and left it active (so that it does not
    /// fire again while the guest has its virtual one): the model owes it a HW list
    /// register, whose deactivation by the guest ends it, or a deactivation of its own
    /// once the line is low.
    pub(super) holds_physical: bool,
}

impl IrqState {
    /// The power-on state: disabled, idle, Group 1, priority 0, routed to vCPU 0.
    ///
    /// Group 1 rather than the architecture's UNKNOWN so that a guest that never writes
    /// GICD_IGROUPR still gets IRQs, not FIQs; Linux writes all ones anyway.
    pub(super) const fn power_on(trigger: Trigger) -> Self {
        Self {
            enabled: false,
            group1: true,
            trigger,
            priority: RESET_PRIORITY,
            latch: false,
            line: false,
            active: false,
            route: 0,
            target: Some(0),
            listed: None,
            physical: None,
            holds_physical: false,
        }
    }

    /// Pending in the model (not counting a list register): a latch, or a level line high.
    pub(super) const fn pending(&self) -> bool {
        self.latch || (matches!(self.trigger, Trigger::Level) && self.line)
    }

    /// The pending bit GICD_ISPENDR reads: the model's, or the list register's unless a
    /// clear is on its way to it or it came from a level line that has fallen since (the
    /// next `flush` takes it back: a GIC's level interrupt stops being pending when its
    /// line falls, IHI 0069 "Level-sensitive interrupts").
    pub(super) fn reads_pending(&self) -> bool {
        let line_high = self.trigger == Trigger::Edge || self.line;
        self.pending()
            || self.listed.is_some_and(|listed| {
                listed.state.is_pending() && !listed.drop_pending && (listed.latched || line_high)
            })
    }

    /// Whether the pending state may stand beside the active one in a list register:
    /// not with HW = 1, whose pending state is the physical interrupt's (KVM's vGIC
    /// never lists a HW interrupt pending and active either).
    pub(super) const fn pending_may_join_active(&self) -> bool {
        self.physical.is_none()
    }

    /// The active bit GICD_ISACTIVER reads, in the same way.
    pub(super) fn reads_active(&self) -> bool {
        self.active
            || self
                .listed
                .is_some_and(|listed| listed.state.is_active() && !listed.drop_active)
    }

    /// Drives the input line: a rising edge latches an edge-triggered interrupt, and a
    /// level-sensitive one is pending for as long as the line stays high.
    pub(super) fn set_line(&mut self, level: bool) {
        if self.trigger == Trigger::Edge && level && !self.line {
            self.latch = true;
        }
        self.line = level;
    }

    /// GICD_ISPENDR: pending until the guest takes it, whatever the trigger.
    pub(super) fn set_pending(&mut self) {
        self.latch = true;
        if let Some(listed) = self.listed.as_mut() {
            listed.drop_pending = false;
        }
    }

    /// GICD_ICPENDR: forget a latched pend; a level line that is still high keeps the
    /// interrupt pending (IHI 0069, "GICD_ICPENDR<n>": a level-sensitive
    /// interrupt stays pending while its line is asserted).
    pub(super) fn clear_pending(&mut self) {
        self.latch = false;
        if let Some(listed) = self.listed.as_mut() {
            listed.drop_pending = true;
        }
    }

    /// GICD_ISACTIVER.
    pub(super) fn set_active(&mut self) {
        self.active = true;
        if let Some(listed) = self.listed.as_mut() {
            listed.drop_active = false;
        }
    }

    /// GICD_ICACTIVER.
    pub(super) fn clear_active(&mut self) {
        self.active = false;
        if let Some(listed) = self.listed.as_mut() {
            listed.drop_active = true;
        }
    }
}

/// Which bank an INTID is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bank {
    /// The SGIs and PPIs of one vCPU's redistributor.
    Private(usize),
    /// The SPIs, shared by the VM.
    Shared,
}

/// All the interrupts of one VM.
#[derive(Debug, Clone)]
pub(super) struct IrqTable {
    /// INTIDs 0..=31 of each vCPU.
    private: Vec<[IrqState; PRIVATE_COUNT as usize]>,
    /// INTIDs 32 onwards.
    shared: Vec<IrqState>,
}

impl IrqTable {
    /// A table in its power-on state for `vcpus` vCPUs and `spis` SPIs.
    pub(super) fn new(vcpus: usize, spis: usize) -> Self {
        let mut private = Vec::with_capacity(vcpus);
        private.resize(vcpus, Self::private_bank());
        let mut shared = Vec::with_capacity(spis);
        // SPIs reset to level-sensitive, which is what device lines are.
        shared.resize(spis, IrqState::power_on(Trigger::Level));
        Self { private, shared }
    }

    /// One redistributor's SGIs (always edge-triggered) and PPIs (level until configured).
    fn private_bank() -> [IrqState; PRIVATE_COUNT as usize] {
        core::array::from_fn(|index| {
            let is_sgi = u32::try_from(index).is_ok_and(|intid| intid < SGI_COUNT);
            IrqState::power_on(if is_sgi {
                Trigger::Edge
            } else {
                Trigger::Level
            })
        })
    }

    /// Back to the power-on state, keeping the sizes and which PPIs are tied to
    /// physical ones.
    pub(super) fn reset(&mut self) {
        for bank in &mut self.private {
            for (irq, fresh) in bank.iter_mut().zip(Self::private_bank()) {
                *irq = IrqState {
                    physical: irq.physical,
                    ..fresh
                };
            }
        }
        self.shared.fill(IrqState::power_on(Trigger::Level));
    }

    /// The number of vCPUs.
    pub(super) fn vcpus(&self) -> usize {
        self.private.len()
    }

    /// The number of SPIs.
    pub(super) fn spis(&self) -> usize {
        self.shared.len()
    }

    /// The bank an INTID of a given vCPU lives in, if both exist.
    pub(super) fn bank_of(&self, intid: u32, vcpu: Option<usize>) -> Option<Bank> {
        if intid < PRIVATE_COUNT {
            vcpu.filter(|&vcpu| vcpu < self.vcpus()).map(Bank::Private)
        } else {
            Some(Bank::Shared)
        }
    }

    /// The interrupt `intid` of `bank`; `None` for an INTID that bank does not hold.
    pub(super) fn get(&self, bank: Bank, intid: u32) -> Option<&IrqState> {
        match bank {
            Bank::Private(vcpu) if intid < PRIVATE_COUNT => {
                self.private.get(vcpu)?.get(usize::try_from(intid).ok()?)
            }
            Bank::Shared => self
                .shared
                .get(usize::try_from(intid.checked_sub(FIRST_SPI)?).ok()?),
            Bank::Private(_) => None,
        }
    }

    /// The interrupt `intid` of `bank`, to change.
    pub(super) fn get_mut(&mut self, bank: Bank, intid: u32) -> Option<&mut IrqState> {
        match bank {
            Bank::Private(vcpu) if intid < PRIVATE_COUNT => self
                .private
                .get_mut(vcpu)?
                .get_mut(usize::try_from(intid).ok()?),
            Bank::Shared => self
                .shared
                .get_mut(usize::try_from(intid.checked_sub(FIRST_SPI)?).ok()?),
            Bank::Private(_) => None,
        }
    }

    /// Every interrupt `vcpu` can receive, with its INTID and bank: its own SGIs and PPIs,
    /// then every SPI (the caller filters SPIs by `target` or `listed`).
    pub(super) fn for_vcpu(
        &self,
        vcpu: usize,
    ) -> impl Iterator<Item = (Bank, u32, &IrqState)> + '_ {
        let private = self
            .private
            .get(vcpu)
            .into_iter()
            .flat_map(|bank| bank.iter())
            .zip(0..)
            .map(move |(irq, intid)| (Bank::Private(vcpu), intid, irq));
        let shared = self
            .shared
            .iter()
            .zip(FIRST_SPI..)
            .map(|(irq, intid)| (Bank::Shared, intid, irq));
        private.chain(shared)
    }

    /// `vcpu`'s SGIs and PPIs with their INTIDs, to change (none for a missing vCPU).
    pub(super) fn private_mut(
        &mut self,
        vcpu: usize,
    ) -> impl Iterator<Item = (u32, &mut IrqState)> + '_ {
        self.private
            .get_mut(vcpu)
            .into_iter()
            .flat_map(|bank| bank.iter_mut())
            .zip(0..)
            .map(|(irq, intid)| (intid, irq))
    }

    /// The vCPUs whose list registers a change to this interrupt may concern: its own vCPU
    /// or SPI target, and wherever it is listed. A bit mask over vCPU indices.
    pub(super) fn concerned(&self, bank: Bank, irq: &IrqState) -> u64 {
        let owner = match bank {
            Bank::Private(vcpu) => Some(vcpu),
            Bank::Shared => irq.target,
        };
        owner.map_or(0, vcpu_bit) | irq.listed.map_or(0, |listed| vcpu_bit(listed.vcpu))
    }
}

/// The bit for `vcpu` in a vCPU mask; 0 for an index a `u64` mask cannot hold.
pub(super) fn vcpu_bit(vcpu: usize) -> u64 {
    u32::try_from(vcpu)
        .ok()
        .and_then(|shift| 1u64.checked_shl(shift))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgis_reset_edge_and_ppis_and_spis_reset_level() {
        let table = IrqTable::new(2, 32);
        let sgi = table.get(Bank::Private(1), 15).map(|irq| irq.trigger);
        let ppi = table.get(Bank::Private(1), 16).map(|irq| irq.trigger);
        let spi = table.get(Bank::Shared, 63).map(|irq| irq.trigger);
        assert_eq!(sgi, Some(Trigger::Edge));
        assert_eq!(ppi, Some(Trigger::Level));
        assert_eq!(spi, Some(Trigger::Level));
    }

    #[test]
    fn lookups_outside_a_bank_find_nothing() {
        let table = IrqTable::new(2, 32);
        assert!(table.get(Bank::Private(2), 0).is_none());
        assert!(table.get(Bank::Private(0), 32).is_none());
        assert!(table.get(Bank::Shared, 31).is_none());
        assert!(table.get(Bank::Shared, 64).is_none());
        assert!(table.get(Bank::Shared, u32::MAX).is_none());
    }

    #[test]
    fn rising_edge_latches_but_level_follows_the_line() {
        let mut edge = IrqState::power_on(Trigger::Edge);
        edge.set_line(true);
        edge.set_line(false);
        assert!(edge.pending());

        let mut level = IrqState::power_on(Trigger::Level);
        level.set_line(true);
        assert!(level.pending());
        level.set_line(false);
        assert!(!level.pending());
    }

    #[test]
    fn clearing_pending_leaves_a_high_level_line_pending() {
        let mut level = IrqState::power_on(Trigger::Level);
        level.set_line(true);
        level.set_pending();
        level.clear_pending();
        assert!(level.pending());
    }

    #[test]
    fn private_interrupts_concern_their_vcpu() {
        let table = IrqTable::new(2, 32);
        let irq = IrqState::power_on(Trigger::Edge);
        assert_eq!(table.concerned(Bank::Private(1), &irq), 0b10);
    }

    #[test]
    fn vcpu_bit_of_a_huge_index_is_empty() {
        assert_eq!(vcpu_bit(64), 0);
        assert_eq!(vcpu_bit(usize::MAX), 0);
        assert_eq!(vcpu_bit(3), 0b1000);
    }
}

//! Moving interrupts between the model and a vCPU's list registers.
//!
//! `flush` runs before a guest entry: it first brings the interrupts already listed up to
//! date (merging new pends and register writes, retracting what may no longer be
//! delivered), then fills free list registers with the highest-priority deliverable
//! interrupts, lowest INTID first among equals. `sync` runs after an exit: it reads back
//! what the guest did, and a list register the guest deactivated becomes free again.
//! Level-sensitive interrupts are listed with the EOI bit so that deactivating one exits
//! to Janus, which lists it again at once if its line is still high.
//!
//! An interrupt tied to a physical one (the timer PPIs, `IrqState::physical`) is listed
//! with HW = 1 instead: Janus leaves the physical interrupt active when it forwards it,
//! the guest's deactivation deactivates it in hardware with no exit, and a timer still
//! asserted then fires again. Its line is the timer's output, sampled by the caller
//! before each `sync` and before each read of the guest's pending state; one listed but
//! not yet taken whose line has fallen is taken back, and the physical interrupts Janus
//! must deactivate itself come out of [`Vgic::take_deactivations`].

use super::lr::{ListRegister, LrState};
use super::state::{Bank, IrqState, Listed, Trigger, FIRST_SPI, PRIVATE_COUNT};
use super::{Vgic, VgicError};

impl Vgic {
    /// Fills `vcpu`'s first `lr_count` list registers (those in `lrs`) before a guest
    /// entry, and returns whether deliverable interrupts were left out for want of room:
    /// then the caller sets ICH_HCR_EL2.UIE, whose underflow maintenance interrupt brings
    /// the vCPU back out to flush again once the guest has drained the list registers.
    ///
    /// `lrs` must hold what `sync` left there on this exit; the caller writes all of
    /// them back to ICH_LR<n>_EL2. A list register whose interrupt the model does not
    /// know as listed there (after `reset`, say) is freed.
    pub fn flush(&mut self, vcpu: usize, lrs: &mut [u64], lr_count: usize) -> bool {
        if vcpu >= self.vcpus() {
            return false;
        }
        let count = lr_count.min(lrs.len());
        let Some(lrs) = lrs.get_mut(..count) else {
            return false;
        };
        for slot in lrs.iter_mut() {
            *slot = self.refresh(vcpu, *slot);
        }
        self.release_physical(vcpu);
        for slot in lrs.iter_mut() {
            if ListRegister::is_in_use(*slot) {
                continue;
            }
            match self.best_candidate(vcpu) {
                Some((bank, intid)) => *slot = self.list(vcpu, bank, intid),
                None => return false,
            }
        }
        self.best_candidate(vcpu).is_some()
    }

    /// Reads back `vcpu`'s list registers after an exit: listed interrupts take the state
    /// the guest left them in, and those the guest deactivated (State Invalid) leave the
    /// list registers, which are zeroed so that no stale EOI maintenance stays raised.
    /// A level-sensitive interrupt whose line is still high is then pending again.
    pub fn sync(&mut self, vcpu: usize, lrs: &mut [u64]) {
        if vcpu >= self.vcpus() {
            return;
        }
        for (bank, intid) in self.intids_of(vcpu) {
            let Some(irq) = self.irqs.get_mut(bank, intid) else {
                continue;
            };
            let Some(mut listed) = irq.listed.filter(|listed| listed.vcpu == vcpu) else {
                continue;
            };
            let physical = irq.physical;
            let found = lrs
                .iter()
                .map(|&value| ListRegister::decode(value))
                .find(|lr| {
                    lr.intid == intid && lr.physical == physical && lr.state != LrState::Invalid
                });
            irq.listed = found.map(|lr| {
                listed.state = lr.state;
                // Acknowledged: the pend the latch gave has been consumed.
                listed.latched &= lr.state.is_pending();
                listed
            });
            if irq.listed.is_none() && irq.pending() {
                let irq = *irq;
                let concerned = self.irqs.concerned(bank, &irq);
                self.kick(concerned);
            }
        }
        for slot in lrs.iter_mut() {
            if !ListRegister::is_in_use(*slot) {
                *slot = ListRegister::FREE;
            }
        }
    }

    /// Whether `vcpu` has an interrupt to take: one the model would list, or one its list
    /// registers held pending at the last `sync`. For deciding whether a vCPU in WFI
    /// should wake; the guest's priority mask is not considered.
    pub fn has_deliverable(&self, vcpu: usize) -> bool {
        let listed_pending = self.irqs.for_vcpu(vcpu).any(|(_, _, irq)| {
            irq.listed
                .is_some_and(|listed| listed.vcpu == vcpu && listed.state.is_pending())
        });
        listed_pending || self.best_candidate(vcpu).is_some()
    }

    /// Whether interrupt `intid` (of `vcpu` for an SGI or PPI) is pending or active
    /// anywhere, in the model or in a list register as of the last `sync`.
    ///
    /// # Errors
    /// `NoSuchVcpu` or `NoSuchIntid`.
    pub fn in_service(&self, intid: u32, vcpu: Option<usize>) -> Result<bool, VgicError> {
        let bank = self.lookup(intid, vcpu)?;
        let irq = self.irqs.get(bank, intid).ok_or(VgicError::NoSuchIntid)?;
        Ok(irq.pending() || irq.active || irq.listed.is_some())
    }

    /// Every INTID `vcpu` may hold in a list register, without borrowing the table.
    fn intids_of(&self, vcpu: usize) -> impl Iterator<Item = (Bank, u32)> {
        let spis = self.spis();
        (0..PRIVATE_COUNT)
            .map(move |intid| (Bank::Private(vcpu), intid))
            .chain((FIRST_SPI..FIRST_SPI.saturating_add(spis)).map(|intid| (Bank::Shared, intid)))
    }

    /// Whether the distributor would forward this interrupt to `vcpu` now, were it
    /// pending: enabled, its group enabled, and (an SPI) routed there.
    fn forwards(&self, vcpu: usize, bank: Bank, irq: &IrqState) -> bool {
        let routed = match bank {
            Bank::Private(owner) => owner == vcpu,
            Bank::Shared => irq.target == Some(vcpu),
        };
        irq.enabled && self.group_enabled(irq.group1) && routed
    }

    /// The deliverable interrupt for `vcpu` that is not listed anywhere, with the highest
    /// priority (lowest value), lowest INTID first among equals.
    fn best_candidate(&self, vcpu: usize) -> Option<(Bank, u32)> {
        self.irqs
            .for_vcpu(vcpu)
            .filter(|(bank, _, irq)| {
                irq.listed.is_none() && irq.pending() && self.forwards(vcpu, *bank, irq)
            })
            .min_by_key(|(_, intid, irq)| (irq.priority, *intid))
            .map(|(bank, intid, _)| (bank, intid))
    }

    /// Moves interrupt `intid`'s pending (and any active) state into a list register of
    /// `vcpu`, returning the register's value. An interrupt tied to a physical one hands
    /// the physical interrupt's active state to the list register; if it is also active
    /// in the model it is listed active only, and its pending state waits.
    fn list(&mut self, vcpu: usize, bank: Bank, intid: u32) -> u64 {
        let Some(irq) = self.irqs.get_mut(bank, intid) else {
            return ListRegister::FREE;
        };
        let pending = !irq.active || irq.pending_may_join_active();
        let state = LrState::from_flags(pending, irq.active);
        irq.listed = Some(Listed {
            vcpu,
            state,
            latched: pending && irq.latch,
            drop_pending: false,
            drop_active: false,
        });
        if pending {
            irq.latch = false;
        }
        irq.active = false;
        irq.holds_physical = false;
        encode(intid, irq, state)
    }

    /// Deactivates (through [`Vgic::take_deactivations`]) the physical interrupts Janus
    /// holds active for `vcpu`'s tied PPIs whose line has fallen and which no list
    /// register holds: nothing else would ever end them, and the timer could not fire
    /// again. One whose line is still high stays active until it can be listed (the guest
    /// disabled it, say), so that it does not fire at Janus over and over meanwhile.
    fn release_physical(&mut self, vcpu: usize) {
        let mut released = 0;
        for (_, irq) in self.irqs.private_mut(vcpu) {
            if irq.holds_physical && !irq.line && irq.listed.is_none() {
                irq.holds_physical = false;
                released |= irq.physical.map_or(0, pintid_bit);
            }
        }
        if let Some(owed) = self.deactivations.get_mut(vcpu) {
            *owed |= released;
        }
    }

    /// Brings one list register of `vcpu` up to date with the model, returning its new
    /// value (`FREE` when the interrupt leaves it).
    fn refresh(&mut self, vcpu: usize, value: u64) -> u64 {
        let lr = ListRegister::decode(value);
        if lr.state == LrState::Invalid {
            return ListRegister::FREE;
        }
        let Some(bank) = self.irqs.bank_of(lr.intid, Some(vcpu)) else {
            return ListRegister::FREE;
        };
        let Some(snapshot) = self.irqs.get(bank, lr.intid).copied() else {
            return ListRegister::FREE;
        };
        let forwards = self.forwards(vcpu, bank, &snapshot);
        let Some(irq) = self.irqs.get_mut(bank, lr.intid) else {
            return ListRegister::FREE;
        };
        let Some(mut listed) = irq
            .listed
            .filter(|listed| listed.vcpu == vcpu && lr.physical == irq.physical)
        else {
            // Not listed here as far as the model knows (or not with this HW tie): stale,
            // free it.
            return ListRegister::FREE;
        };
        let mut state = lr.state;
        if listed.drop_pending {
            state = state.with_pending(false);
            listed.latched = false;
        }
        if listed.drop_active {
            state = state.with_active(false);
        }
        if irq.active {
            state = state.with_active(true);
            irq.active = false;
        }
        if irq.latch && (!state.is_active() || irq.pending_may_join_active()) {
            // A new edge or pend while listed: merged, as the GIC would (edges coalesce).
            state = state.with_pending(true);
            listed.latched = true;
            irq.latch = false;
        }
        listed.drop_pending = false;
        listed.drop_active = false;
        // The guest has not taken it yet, and it may no longer be delivered here (disabled,
        // group disabled, re-routed) or its level line has fallen: take it back, as a GIC
        // stops signalling an interrupt that stops being pending or forwarded.
        let source_remains = listed.latched || (irq.trigger == Trigger::Level && irq.line);
        if state == LrState::Pending && !(forwards && source_remains) {
            irq.latch |= listed.latched;
            state = LrState::Invalid;
        }
        if state == LrState::Invalid {
            // Taken back (or its active state cleared by GICD_ICACTIVER) before the
            // guest deactivated it: a HW list register held the physical interrupt's
            // active state, which is the model's again, to deactivate
            // (`release_physical`) or list once more.
            irq.holds_physical |= irq.physical.is_some();
            irq.listed = None;
            let irq = *irq;
            let concerned = self.irqs.concerned(bank, &irq);
            self.kick(concerned);
            return ListRegister::FREE;
        }
        listed.state = state;
        irq.listed = Some(listed);
        encode(lr.intid, irq, state)
    }
}

/// The list register value for `irq` in `state`.
///
/// EOI maintenance is asked for only while a level-sensitive interrupt's line
/// is high: only then must its deactivation be seen, to deliver it again. A
/// level-configured interrupt pended once (a GICD_ISPENDR write) needs no exit
/// on EOI. An interrupt tied to a physical one is listed with HW = 1 and never
/// asks for EOI maintenance: its deactivation needs no exit, the physical
/// interrupt fires again if its line is still high.
fn encode(intid: u32, irq: &IrqState, state: LrState) -> u64 {
    ListRegister {
        intid,
        priority: irq.priority,
        group1: irq.group1,
        eoi_maintenance: irq.physical.is_none() && irq.trigger == Trigger::Level && irq.line,
        physical: irq.physical,
        state,
    }
    .encode()
}

/// The bit for physical INTID `pintid` in a mask of deactivations; 0 beyond the PPIs
/// (only PPIs are tied, see `Vgic::tie_to_physical`).
pub(super) fn pintid_bit(pintid: u32) -> u32 {
    1u32.checked_shl(pintid).unwrap_or(0)
}

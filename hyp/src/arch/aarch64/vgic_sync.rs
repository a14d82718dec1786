//! Keeping a vCPU's list registers, its timers' outputs and the vGIC model in step on
//! the vCPU's own physical CPU (the protocol of `dev/vgic/mod.rs`).

use super::{boot, gic, ich, timer};
use crate::dev::vgic::{names_pintid, VirtualGic};
use crate::trap::esr;
use crate::vm::Personality;

/// Whether an exit's handling needs the vGIC model and the list registers in
/// step afterwards: a trapped GIC system register. An MMIO access to the
/// emulated distributor or redistributors is brought in step by the dispatcher,
/// under the devices lock it takes for the access; WFI brings them in step
/// before it is handled; other exits only reach the vGIC through a device
/// changing a line, which `settle_vgic` sees.
pub fn involves_vgic_state(exit: &esr::Exit) -> bool {
    matches!(exit, esr::Exit::SysReg(_))
}

/// Drives vCPU `vcpu`'s timer PPIs with its timers' outputs now, so that what the
/// guest reads of their pending state next (GICR_ISPENDR0, ICPENDR0) follows the
/// timers as a GIC's level inputs would: a timer disabled, masked or moved into the
/// future no longer shows pending.
pub fn sample_timers(vm: &Personality, vcpu: usize) {
    if let Some(devices) = &vm.devices {
        timer::sample(devices.lock().vgic.as_mut(), vcpu);
    }
}

/// What a list-register sync under the devices lock leaves for after the lock
/// is released: the list registers to write back, the physical timer PPIs to
/// deactivate, and the vCPUs to kick.
#[derive(Debug, Default)]
pub struct Pending {
    /// The list registers as read, then as the model wants them (`store`).
    before: [u64; ich::MAX_LRS],
    lrs: [u64; ich::MAX_LRS],
    count: usize,
    store: bool,
    /// Whether more is pending than the list registers hold (underflow interrupt).
    more: bool,
    deactivations: u32,
    kicks: u64,
}

/// Under the devices lock: brings the vGIC model up to date for vCPU `vcpu`
/// with this CPU's list registers and its timers' outputs (what the guest
/// acknowledged and deactivated comes back, what became pending goes in, timer
/// interrupts whose output fell before the guest took them are taken back).
/// The rest is done by [`finish`].
pub fn sync_locked(vgic: &mut dyn VirtualGic, vcpu: usize) -> Pending {
    let mut pending = Pending {
        count: ich::lr_count().min(ich::MAX_LRS),
        store: true,
        ..Pending::default()
    };
    let count = pending.count;
    let (Some(lrs), Some(before)) = (
        pending.lrs.get_mut(..count),
        pending.before.get_mut(..count),
    ) else {
        return Pending::default();
    };
    ich::current_lrs(lrs);
    before.copy_from_slice(lrs);
    timer::sample(vgic, vcpu);
    vgic.sync(vcpu, lrs);
    pending.more = vgic.flush(vcpu, lrs, count);
    pending.deactivations = vgic.take_deactivations(vcpu);
    pending.kicks = vgic.take_kicks() & !(1 << vcpu);
    pending
}

/// Under the devices lock, after an exit that did not involve the interrupt
/// controller: syncs the list registers only when the vGIC model changed
/// something for this vCPU (a device raised or lowered a line, say), and
/// collects the kicks other vCPUs are owed. Most exits (console output, a
/// trapped register) touch no list register this way.
pub fn settle_locked(vgic: &mut dyn VirtualGic, vcpu: usize) -> Pending {
    if vgic.stale() & (1 << vcpu) != 0 {
        return sync_locked(vgic, vcpu);
    }
    Pending {
        kicks: vgic.take_kicks(),
        ..Pending::default()
    }
}

/// After the devices lock is released: writes back the list registers, ends
/// the physical timer PPIs the guest deactivated, and kicks other vCPUs.
pub fn finish(vm: &Personality, pending: &Pending) {
    if pending.store {
        let count = pending.count;
        if let (Some(before), Some(lrs)) = (pending.before.get(..count), pending.lrs.get(..count)) {
            ich::store_lrs(before, lrs);
        }
        ich::set_control(pending.more);
        // After the list registers no longer hold them.
        for intid in gic::TIMER_INTIDS {
            if names_pintid(pending.deactivations, intid) {
                gic::deactivate(intid);
            }
        }
    }
    kick_vcpus(vm, pending.kicks);
}

/// Brings this CPU's list registers and the vGIC model up to date for vCPU
/// `vcpu` of `vm` ([`sync_locked`], then [`finish`]).
pub fn update_vgic(vm: &Personality, vcpu: usize) {
    let Some(devices) = &vm.devices else {
        return;
    };
    let pending = sync_locked(devices.lock().vgic.as_mut(), vcpu);
    finish(vm, &pending);
}

/// After an exit that did not involve the interrupt controller
/// ([`settle_locked`], then [`finish`]).
pub fn settle_vgic(vm: &Personality, vcpu: usize) {
    let Some(devices) = &vm.devices else {
        return;
    };
    let pending = settle_locked(devices.lock().vgic.as_mut(), vcpu);
    finish(vm, &pending);
}

/// Sends the kick SGI to the physical CPUs of the vCPUs in `mask`.
pub fn kick_vcpus(vm: &Personality, mask: u64) {
    for (index, slot) in vm.vcpus.iter().enumerate() {
        if mask & (1 << index) != 0 {
            if let Some(mpidr) = boot::cpu_mpidr(slot.pcpu) {
                gic::kick(mpidr);
            }
        }
    }
}

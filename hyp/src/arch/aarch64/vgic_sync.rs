//! Keeping a vCPU's list registers, its timers' outputs and the vGIC model in step on
//! the vCPU's own physical CPU (the protocol of `dev/vgic/mod.rs`).

use super::{boot, gic, ich, timer};
use crate::dev::vgic::names_pintid;
use crate::trap::esr;
use crate::vm::Personality;

/// Whether an exit's handling needs the vGIC model and the list registers in
/// step afterwards: an access to the emulated distributor or redistributors
/// (whose answers come from the model, so a guest polling one must see what
/// its list registers did) or a trapped GIC system register. WFI brings them
/// in step before it is handled; other exits only reach the vGIC through a
/// device changing a line, which `settle_vgic` sees.
pub fn involves_vgic_state(vm: &Personality, exit: &esr::Exit) -> bool {
    match exit {
        esr::Exit::Mmio(access) => vm
            .devices
            .as_ref()
            .is_some_and(|devices| devices.lock().is_interrupt_controller(access.ipa)),
        esr::Exit::SysReg(_) => true,
        _ => false,
    }
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

/// Brings this CPU's list registers and the vGIC model up to date for vCPU
/// `vcpu` of `vm` (the timers' outputs and what the guest acknowledged and
/// deactivated come back, what became pending goes in, timer interrupts whose
/// output fell before the guest took them are taken back and their physical
/// PPIs deactivated), and interrupts the other vCPUs whose list registers are
/// now out of date.
pub fn update_vgic(vm: &Personality, vcpu: usize) {
    let Some(devices) = &vm.devices else {
        return;
    };
    let mut lrs = [0u64; ich::MAX_LRS];
    let count = ich::lr_count();
    let Some(lrs) = lrs.get_mut(..count) else {
        return;
    };
    ich::current_lrs(lrs);
    let mut now = [0u64; ich::MAX_LRS];
    let Some(now) = now.get_mut(..count) else {
        return;
    };
    now.copy_from_slice(lrs);
    let mut guard = devices.lock();
    timer::sample(guard.vgic.as_mut(), vcpu);
    guard.vgic.sync(vcpu, lrs);
    let more = guard.vgic.flush(vcpu, lrs, count);
    let deactivations = guard.vgic.take_deactivations(vcpu);
    let kicks = guard.vgic.take_kicks();
    drop(guard);
    ich::store_lrs(now, lrs);
    ich::set_control(more);
    // After the list registers no longer hold them.
    for intid in gic::TIMER_INTIDS {
        if names_pintid(deactivations, intid) {
            gic::deactivate(intid);
        }
    }
    kick_vcpus(vm, kicks & !(1 << vcpu));
}

/// After an exit that did not involve the interrupt controller: brings the
/// list registers up to date only when the vGIC model changed something for
/// this vCPU (a device raised or lowered a line, say), and sends the kicks
/// other vCPUs are owed. Most exits (console output, a trapped register)
/// touch no list register this way.
pub fn settle_vgic(vm: &Personality, vcpu: usize) {
    let Some(devices) = &vm.devices else {
        return;
    };
    let mut guard = devices.lock();
    let stale = guard.vgic.stale();
    if stale & (1 << vcpu) != 0 {
        drop(guard);
        update_vgic(vm, vcpu);
        return;
    }
    let kicks = guard.vgic.take_kicks();
    drop(guard);
    kick_vcpus(vm, kicks);
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

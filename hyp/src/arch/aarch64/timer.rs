//! The guest's EL1 timers as Janus sees them: the virtual timer (CNTV_*) and the
//! physical one (CNTP_*, which EL1 reaches directly: CNTHCTL_EL2.EL1PCEN), both the
//! vCPU's own on its pinned physical CPU. Janus never writes them while the vCPU runs;
//! it reads their output to drive the timer PPIs' lines in the vGIC, and turns them
//! off when the vCPU stops.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{Readable, Writeable, CNTP_CTL_EL0, CNTV_CTL_EL0};

use super::gic;
use crate::dev::vgic::VirtualGic;

/// Whether a timer asserts its interrupt, from its CNTx_CTL_EL0 value: enabled, its
/// condition met, and not masked (Arm ARM D12.8, "The Generic Timer": "the timer
/// output signal is asserted ... ENABLE is 1, ISTATUS is 1 and IMASK is 0").
fn asserted(enabled: bool, status: bool, masked: bool) -> bool {
    enabled && status && !masked
}

/// The virtual timer's output on this CPU.
pub fn virtual_output() -> bool {
    let ctl = CNTV_CTL_EL0.extract();
    asserted(
        ctl.is_set(CNTV_CTL_EL0::ENABLE),
        ctl.is_set(CNTV_CTL_EL0::ISTATUS),
        ctl.is_set(CNTV_CTL_EL0::IMASK),
    )
}

/// The physical timer's output on this CPU.
pub fn physical_output() -> bool {
    let ctl = CNTP_CTL_EL0.extract();
    asserted(
        ctl.is_set(CNTP_CTL_EL0::ENABLE),
        ctl.is_set(CNTP_CTL_EL0::ISTATUS),
        ctl.is_set(CNTP_CTL_EL0::IMASK),
    )
}

/// Drives `vcpu`'s timer PPIs in `vgic` with the outputs of this CPU's timers. Call
/// only on the vCPU's own physical CPU, while its EL1 state is loaded.
pub fn sample(vgic: &mut dyn VirtualGic, vcpu: usize) {
    let _ = vgic.set_level(gic::VIRTUAL_TIMER_INTID, Some(vcpu), virtual_output());
    let _ = vgic.set_level(gic::PHYSICAL_TIMER_INTID, Some(vcpu), physical_output());
}

/// Turns both timers off (ENABLE = 0), so that a CPU whose vCPU has stopped takes no
/// more timer interrupts; the vCPU's next start loads a reset EL1 state anyway.
pub fn stop() {
    CNTV_CTL_EL0.set(0);
    CNTP_CTL_EL0.set(0);
    barrier::isb(barrier::SY);
}

/// Stops both timers and deactivates their physical PPIs on this CPU: the vCPU that
/// had them is gone (stopped, or its personality resetting), so no list register will
/// ever deactivate them and the next vCPU's timers could not fire otherwise.
pub fn release() {
    stop();
    for intid in gic::TIMER_INTIDS {
        gic::deactivate(intid);
    }
}

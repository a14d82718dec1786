//! Janus' use of the physical GICv3: one SGI that makes another CPU look at its vCPU
//! again, and the timer PPIs it forwards to the vCPU of the CPU they fire on.
//!
//! The CPU interface runs in EOImode 1 (ICC_CTLR_EL1.EOImode): ending an interrupt only
//! drops its priority, and Janus deactivates it (ICC_DIR_EL1) unless it was forwarded
//! to the guest through a HW list register, whose deactivation by the guest then
//! deactivates it (IHI 0069, "Interrupt lifecycle", priority drop and deactivation).

use core::arch::asm;
use core::ptr::NonNull;

use arm_gic::gicv3::registers::{Gicd, GicrSgi};
use arm_gic::gicv3::{GicCpuInterface, GicV3, SgiTarget, SgiTargetGroup};
use arm_gic::{IntId, InterruptGroup, UniqueMmioPointer};
use spin::Mutex;

/// The SGI Janus sends to make a CPU leave its guest or wake from idle.
const KICK: IntId = IntId::sgi(0);
/// The GICv3 virtual CPU interface maintenance interrupt (PPI 9, INTID 25).
pub const MAINTENANCE_INTID: u32 = 25;
/// The EL1 virtual timer (PPI 11, INTID 27): a personality's timer, which
/// Janus forwards to it as a virtual interrupt.
pub const VIRTUAL_TIMER_INTID: u32 = 27;
/// The EL1 physical timer (PPI 14, INTID 30): also the personality's (Janus never uses
/// it, and each CPU runs one vCPU), forwarded the same way.
pub const PHYSICAL_TIMER_INTID: u32 = 30;
/// The timer PPIs Janus forwards, each to the same INTID of the vCPU on its CPU.
pub const TIMER_INTIDS: [u32; 2] = [VIRTUAL_TIMER_INTID, PHYSICAL_TIMER_INTID];
/// ICC_CTLR_EL1.EOImode, bit [1]: ICC_EOIR1_EL1 writes only drop priority.
const ICC_CTLR_EOI_MODE: u64 = 1 << 1;
/// The INTID of an SPI.
pub const fn spi_intid(spi: u32) -> u32 {
    32 + spi
}
/// INTID of PPI 0.
const FIRST_PPI: u32 = 16;
/// Lowest priority mask value: every interrupt is signalled.
const PRIORITY_MASK_ALL: u8 = 0xff;

struct Gic(GicV3<'static>);

// SAFETY: the driver only holds MMIO pointers to the GIC; every use goes through
// the `GIC` mutex, so moving it between CPUs does not create aliasing access.
unsafe impl Send for Gic {}

/// The distributor and redistributors; set up by the boot CPU, then each CPU
/// wakes its own redistributor under this lock.
static GIC: Mutex<Option<Gic>> = Mutex::new(None);

/// Sets up the distributor and the boot CPU's redistributor and CPU interface.
///
/// # Safety
/// `gicd` and `gicr` must be the GICv3 distributor and first redistributor frame,
/// mapped as Device memory and used by nothing else; `cpus` redistributors follow.
pub unsafe fn init(gicd: usize, gicr: usize, cpus: usize) {
    // SAFETY: the caller vouches for both addresses and their exclusivity.
    let driver = unsafe {
        let gicd = UniqueMmioPointer::new(NonNull::new_unchecked(gicd as *mut Gicd));
        GicV3::new(gicd, NonNull::new_unchecked(gicr as *mut GicrSgi), cpus)
    };
    let Ok(mut driver) = driver else {
        panic!("GICv3 redistributors not found at {gicr:#x}");
    };
    GicCpuInterface::enable_system_register_el2(true);
    driver.setup(0);
    split_priority_drop();
    *GIC.lock() = Some(Gic(driver));
    init_cpu(0);
}

/// Wakes CPU `cpu`'s redistributor and enables the kick SGI on it. Runs on that CPU.
pub fn init_cpu(cpu: usize) {
    GicCpuInterface::enable_system_register_el2(true);
    let mut gic = GIC.lock();
    if let Some(Gic(driver)) = gic.as_mut() {
        if cpu != 0 {
            // `init_cpu` writes ICC_CTLR_EL1 back to EOImode 0.
            driver.init_cpu(cpu);
            split_priority_drop();
        }
        for intid in [
            KICK,
            IntId::ppi(MAINTENANCE_INTID - FIRST_PPI),
            IntId::ppi(VIRTUAL_TIMER_INTID - FIRST_PPI),
            IntId::ppi(PHYSICAL_TIMER_INTID - FIRST_PPI),
            IntId::ppi(super::hyp_timer::HYP_TIMER_INTID - FIRST_PPI),
        ] {
            let _ = driver.enable_interrupt(intid, Some(cpu), true);
        }
    }
    drop(gic);
    GicCpuInterface::set_priority_mask(PRIORITY_MASK_ALL);
    GicCpuInterface::enable_group1(true);
}

/// Sends the kick SGI to the CPU with affinity `mpidr`.
pub fn kick(mpidr: u64) {
    let target = SgiTarget::List {
        affinity3: ((mpidr >> 32) & 0xff) as u8,
        affinity2: ((mpidr >> 16) & 0xff) as u8,
        affinity1: ((mpidr >> 8) & 0xff) as u8,
        target_list: 1 << (mpidr & 0xf),
    };
    let _ = GicCpuInterface::send_sgi(KICK, target, SgiTargetGroup::CurrentGroup1);
}

/// Routes SPI `spi` (a level-sensitive device line) to the CPU with affinity `mpidr` and enables it.
pub fn route_spi(spi: u32, mpidr: u64) {
    let mut gic = GIC.lock();
    if let Some(Gic(driver)) = gic.as_mut() {
        let intid = IntId::spi(spi);
        let distributor = driver.distributor();
        let _ = distributor.set_routing(intid, Some(mpidr));
        let _ = distributor.set_trigger(intid, arm_gic::Trigger::Level);
        let _ = driver.enable_interrupt(intid, None, true);
    }
}

/// What became of an interrupt once its handler ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Handled: deactivate it.
    Done,
    /// Forwarded to the guest, which deactivates it through a HW list register: leave
    /// it active.
    Forwarded,
}

/// Acknowledges every pending interrupt on this CPU, calls `handle` with its
/// INTID, drops its priority, and deactivates it unless `handle` forwarded it.
pub fn handle_pending(mut handle: impl FnMut(u32) -> Completion) {
    while let Some(intid) = GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1) {
        let completion = handle(u32::from(intid));
        GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1);
        if completion == Completion::Done {
            deactivate(u32::from(intid));
        }
    }
}

/// Deactivates interrupt `intid` on this CPU (a PPI or SGI: this CPU's own). For an
/// interrupt that is not active, nothing happens (IHI 0069, "ICC_DIR_EL1"); one that
/// is must have had its priority dropped already, as `handle_pending` does at once.
pub fn deactivate(intid: u32) {
    // SAFETY: ICC_DIR_EL1 (S3_0_C12_C11_1) only changes the active state of one
    // interrupt of this CPU interface; EOImode is 1 on every CPU (`init_cpu`), so
    // the write is defined.
    unsafe {
        asm!("msr S3_0_C12_C11_1, {intid}", intid = in(reg) u64::from(intid), options(nomem, nostack))
    };
}

/// Sets ICC_CTLR_EL1.EOImode on this CPU, keeping its other fields.
fn split_priority_drop() {
    // SAFETY: ICC_CTLR_EL1 (S3_0_C12_C12_4) only configures this CPU's interface;
    // Janus takes interrupts with EL2's PSTATE.I masked and polls, so no interrupt
    // is in flight while the mode changes.
    unsafe {
        asm!(
            "mrs {value}, S3_0_C12_C12_4",
            "orr {value}, {value}, {mode}",
            "msr S3_0_C12_C12_4, {value}",
            "isb",
            value = out(reg) _,
            mode = in(reg) ICC_CTLR_EOI_MODE,
            options(nomem, nostack),
        )
    };
}

//! The timer checks (`probe.after=timer`): the EL1 physical and virtual timers fire
//! at their deadline and not before, their interrupts arrive through the vGIC, the
//! pending state in GICR_ISPENDR0 follows each timer's output (disabling, masking or
//! reprogramming the timer clears it, and then no interrupt is taken), and
//! CNTV_CTL_EL0 reads back what the probe wrote.
//!
//! The probe's GIC is Janus' vGIC at the virt board's addresses; this vCPU (0) has the
//! first redistributor.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::say;

/// The vGIC distributor and vCPU 0's redistributor (RD_base; SGI_base 64 KiB on).
const GICD_BASE: u64 = 0x0800_0000;
const GICR_BASE: u64 = 0x080A_0000;
const SGI_BASE: u64 = GICR_BASE + 0x1_0000;
/// GICD_CTLR: ARE_NS (bit 4) and EnableGrp1A (bit 1).
const GICD_CTLR_ENABLE: u32 = (1 << 4) | (1 << 1);
/// GICR_WAKER, offset in RD_base: 0 wakes the redistributor.
const GICR_WAKER: u64 = 0x0014;
/// SGI_base registers.
const GICR_ISENABLER0: u64 = 0x0100;
const GICR_ISPENDR0: u64 = 0x0200;
const GICR_IPRIORITYR: u64 = 0x0400;
/// Linux's default interrupt priority.
const PRIORITY: u8 = 0xa0;

/// The EL1 virtual and physical timer INTIDs.
const VIRTUAL_PPI: u32 = 27;
const PHYSICAL_PPI: u32 = 30;
/// ICC_IAR1_EL1 when nothing is pending.
const SPURIOUS: u64 = 1023;

/// CNTx_CTL_EL0 bits.
const ENABLE: u64 = 1 << 0;
const IMASK: u64 = 1 << 1;
const ISTATUS: u64 = 1 << 2;

/// How far ahead the checks program their deadlines, and how long they wait beyond.
const DEADLINE_MS: u64 = 30;
const WAIT_MS: u64 = 60;
/// A deadline no check reaches.
const FAR_FUTURE_S: u64 = 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Timer {
    Virtual,
    Physical,
}

impl Timer {
    fn name(self) -> &'static str {
        match self {
            Timer::Virtual => "virtual",
            Timer::Physical => "physical",
        }
    }

    fn intid(self) -> u32 {
        match self {
            Timer::Virtual => VIRTUAL_PPI,
            Timer::Physical => PHYSICAL_PPI,
        }
    }

    fn slot(self) -> usize {
        match self {
            Timer::Virtual => 0,
            Timer::Physical => 1,
        }
    }

    /// The timer's counter (CNTVCT_EL0 or CNTPCT_EL0).
    fn count(self) -> u64 {
        let value: u64;
        // SAFETY: reading a counter has no side effects.
        unsafe {
            match self {
                Timer::Virtual => {
                    asm!("isb", "mrs {v}, cntvct_el0", v = out(reg) value, options(nomem, nostack))
                }
                Timer::Physical => {
                    asm!("isb", "mrs {v}, cntpct_el0", v = out(reg) value, options(nomem, nostack))
                }
            }
        }
        value
    }

    fn ctl(self) -> u64 {
        let value: u64;
        // SAFETY: reading the timer control has no side effects.
        unsafe {
            match self {
                Timer::Virtual => {
                    asm!("mrs {v}, cntv_ctl_el0", v = out(reg) value, options(nomem, nostack))
                }
                Timer::Physical => {
                    asm!("mrs {v}, cntp_ctl_el0", v = out(reg) value, options(nomem, nostack))
                }
            }
        }
        value
    }

    fn set_ctl(self, value: u64) {
        // SAFETY: the probe's own timer.
        unsafe {
            match self {
                Timer::Virtual => {
                    asm!("msr cntv_ctl_el0, {v}", "isb", v = in(reg) value, options(nomem, nostack))
                }
                Timer::Physical => {
                    asm!("msr cntp_ctl_el0, {v}", "isb", v = in(reg) value, options(nomem, nostack))
                }
            }
        }
    }

    fn set_cval(self, value: u64) {
        // SAFETY: the probe's own timer.
        unsafe {
            match self {
                Timer::Virtual => {
                    asm!("msr cntv_cval_el0, {v}", "isb", v = in(reg) value, options(nomem, nostack))
                }
                Timer::Physical => {
                    asm!("msr cntp_cval_el0, {v}", "isb", v = in(reg) value, options(nomem, nostack))
                }
            }
        }
    }

    /// Arms the timer to fire `ms` milliseconds from now; returns the deadline.
    fn arm(self, ms: u64) -> u64 {
        let deadline = self.count() + ticks(ms);
        self.set_cval(deadline);
        self.set_ctl(ENABLE);
        deadline
    }
}

/// What the interrupt handler saw, per timer.
struct Seen {
    /// Interrupts taken.
    count: AtomicU64,
    /// The counter when the handler ran.
    at: AtomicU64,
    /// CNTx_CTL_EL0 as the handler found it.
    ctl: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to fill SEEN
const NOTHING: Seen = Seen {
    count: AtomicU64::new(0),
    at: AtomicU64::new(0),
    ctl: AtomicU64::new(0),
};
static SEEN: [Seen; 2] = [NOTHING; 2];
/// Interrupts other than the timers'.
static OTHER: AtomicU64 = AtomicU64::new(0);

fn frequency() -> u64 {
    crate::probe::counter().1
}

fn ticks(ms: u64) -> u64 {
    frequency() / 1000 * ms
}

fn wait_ms(ms: u64) {
    let end = Timer::Physical.count() + ticks(ms);
    while Timer::Physical.count() < end {
        core::hint::spin_loop();
    }
}

fn mmio_write32(address: u64, value: u32) {
    // SAFETY: a register of the probe's own vGIC (Device memory: the MMU is off).
    unsafe { core::ptr::write_volatile(address as *mut u32, value) };
}

fn mmio_write8(address: u64, value: u8) {
    // SAFETY: as for `mmio_write32`; IPRIORITYR takes byte accesses.
    unsafe { core::ptr::write_volatile(address as *mut u8, value) };
}

fn mmio_read32(address: u64) -> u32 {
    // SAFETY: as for `mmio_write32`.
    unsafe { core::ptr::read_volatile(address as *const u32) }
}

/// GICR_ISPENDR0 of vCPU 0, masked to the two timers.
fn timers_pending() -> u32 {
    mmio_read32(SGI_BASE + GICR_ISPENDR0) & ((1 << VIRTUAL_PPI) | (1 << PHYSICAL_PPI))
}

fn mask_interrupts() {
    // SAFETY: only PSTATE.I changes.
    unsafe { asm!("msr daifset, #2", "isb", options(nomem, nostack)) };
}

fn unmask_interrupts() {
    // SAFETY: only PSTATE.I changes; the vector table has an IRQ entry.
    unsafe { asm!("msr daifclr, #2", "isb", options(nomem, nostack)) };
}

/// The distributor, vCPU 0's redistributor and its CPU interface, as Linux sets
/// them up, with both timer PPIs enabled.
fn gic_init() {
    mmio_write32(GICD_BASE, GICD_CTLR_ENABLE);
    mmio_write32(GICR_BASE + GICR_WAKER, 0);
    for ppi in [VIRTUAL_PPI, PHYSICAL_PPI] {
        mmio_write8(SGI_BASE + GICR_IPRIORITYR + u64::from(ppi), PRIORITY);
    }
    mmio_write32(
        SGI_BASE + GICR_ISENABLER0,
        (1 << VIRTUAL_PPI) | (1 << PHYSICAL_PPI),
    );
    // ICC_SRE_EL1.SRE, ICC_PMR_EL1 (all priorities), ICC_IGRPEN1_EL1.Enable.
    // SAFETY: the probe's own (virtual) CPU interface.
    unsafe {
        asm!(
            "msr icc_sre_el1, {one}",
            "isb",
            "msr icc_pmr_el1, {all}",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            one = in(reg) 1u64,
            all = in(reg) 0xffu64,
            options(nomem, nostack),
        )
    };
}

/// The IRQ vector's handler (entry.S saves and restores the registers): records
/// which timer fired, when, and what its control register read; turns that timer
/// off (its output falls, as a Linux handler's does) and ends the interrupt.
pub extern "C" fn irq() {
    let intid: u64;
    // SAFETY: acknowledging an interrupt of the probe's own CPU interface.
    unsafe { asm!("mrs {v}, icc_iar1_el1", v = out(reg) intid, options(nomem, nostack)) };
    if intid == SPURIOUS {
        return;
    }
    let timer = match intid {
        i if i == u64::from(VIRTUAL_PPI) => Some(Timer::Virtual),
        i if i == u64::from(PHYSICAL_PPI) => Some(Timer::Physical),
        _ => None,
    };
    match timer {
        Some(timer) => {
            let seen = &SEEN[timer.slot()];
            seen.at.store(timer.count(), Ordering::Release);
            seen.ctl.store(timer.ctl(), Ordering::Release);
            timer.set_ctl(0);
            seen.count.fetch_add(1, Ordering::AcqRel);
        }
        None => {
            OTHER.fetch_add(1, Ordering::AcqRel);
        }
    }
    // SAFETY: ends (EOImode 0: drops priority and deactivates) the interrupt just
    // acknowledged.
    unsafe { asm!("msr icc_eoir1_el1, {v}", "isb", v = in(reg) intid, options(nomem, nostack)) };
}

fn taken(timer: Timer) -> u64 {
    SEEN[timer.slot()].count.load(Ordering::Acquire)
}

/// Arms `timer` with interrupts unmasked and waits for its interrupt.
fn fires_at_deadline(timer: Timer) {
    let before = taken(timer);
    unmask_interrupts();
    let deadline = timer.arm(DEADLINE_MS);
    let give_up = Timer::Physical.count() + ticks(WAIT_MS * 20);
    while taken(timer) == before && Timer::Physical.count() < give_up {
        core::hint::spin_loop();
    }
    mask_interrupts();
    let seen = &SEEN[timer.slot()];
    if taken(timer) == before {
        say!("timer: {} timer never fired", timer.name());
        timer.set_ctl(0);
        return;
    }
    let at = seen.at.load(Ordering::Acquire);
    let ctl = seen.ctl.load(Ordering::Acquire);
    let late_us = at.wrapping_sub(deadline) as i64 * 1_000_000 / frequency() as i64;
    let when = if at >= deadline {
        "at its deadline, not before"
    } else {
        "EARLY"
    };
    say!(
        "timer: {} timer fired {when} ({late_us} us after it), through INTID {}, CTL {ctl:#x} in the handler",
        timer.name(),
        timer.intid()
    );
}

/// What a check does to a timer that has fired while the probe's interrupts are masked.
#[derive(Clone, Copy)]
enum Change {
    /// Nothing: the control that shows the interrupt is then taken.
    Nothing,
    /// CNTx_CTL_EL0.ENABLE = 0.
    Disable,
    /// The compare value moved far into the future.
    Reprogram,
    /// CNTx_CTL_EL0.IMASK = 1.
    Mask,
}

impl Change {
    fn name(self) -> &'static str {
        match self {
            Change::Nothing => "left asserted",
            Change::Disable => "disabled",
            Change::Reprogram => "reprogrammed into the future",
            Change::Mask => "masked",
        }
    }

    fn apply(self, timer: Timer) {
        match self {
            Change::Nothing => {}
            Change::Disable => timer.set_ctl(0),
            Change::Reprogram => timer.set_cval(timer.count() + frequency() * FAR_FUTURE_S),
            Change::Mask => timer.set_ctl(ENABLE | IMASK),
        }
    }
}

/// Lets both timers fire with interrupts masked, checks GICR_ISPENDR0, applies
/// `change`, checks it again, and counts the interrupts taken once unmasked.
fn pending_follows_output(change: Change) {
    let before = [Timer::Virtual, Timer::Physical].map(taken);
    Timer::Virtual.arm(DEADLINE_MS);
    Timer::Physical.arm(DEADLINE_MS);
    wait_ms(WAIT_MS);
    let fired = timers_pending();
    change.apply(Timer::Virtual);
    change.apply(Timer::Physical);
    let after = timers_pending();
    unmask_interrupts();
    wait_ms(WAIT_MS);
    mask_interrupts();
    let interrupts: u64 = [Timer::Virtual, Timer::Physical]
        .iter()
        .zip(before)
        .map(|(&timer, count)| taken(timer) - count)
        .sum();
    Timer::Virtual.set_ctl(0);
    Timer::Physical.set_ctl(0);
    say!(
        "timer: both fired masked, ISPENDR0 {fired:#x}; {}: ISPENDR0 {after:#x}, {interrupts} interrupts taken when unmasked",
        change.name()
    );
}

/// CNTV_CTL_EL0 after the virtual timer's interrupt was delivered: the handler
/// found it as the probe wrote it (ENABLE, no IMASK), and it reads back what the
/// probe writes now.
fn control_reads_back() {
    let handler = SEEN[Timer::Virtual.slot()].ctl.load(Ordering::Acquire) & (ENABLE | IMASK);
    let mut exact = handler == ENABLE;
    for written in [ENABLE, ENABLE | IMASK, 0] {
        Timer::Virtual.set_cval(Timer::Virtual.count() + frequency() * FAR_FUTURE_S);
        Timer::Virtual.set_ctl(written);
        let read = Timer::Virtual.ctl() & !ISTATUS;
        exact &= read == written;
    }
    say!(
        "timer: CNTV_CTL_EL0 reads back {} what the probe wrote (handler saw {handler:#x})",
        if exact { "exactly" } else { "NOT" }
    );
}

/// Runs every check on vCPU 0 and prints one line each.
pub fn run() {
    mask_interrupts();
    gic_init();
    fires_at_deadline(Timer::Physical);
    fires_at_deadline(Timer::Virtual);
    control_reads_back();
    for change in [
        Change::Nothing,
        Change::Disable,
        Change::Reprogram,
        Change::Mask,
    ] {
        pending_follows_output(change);
    }
    say!(
        "timer: checks done, {} other interrupts",
        OTHER.load(Ordering::Acquire)
    );
}

//! A virtual CPU: the guest registers saved on every exit, and its power state.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// The registers the exit path saves and the entry path restores, laid out for
/// `arch/aarch64/vectors.S`: x0-x30, then the guest PC (ELR_EL2) and PSTATE (SPSR_EL2).
///
/// Everything else a vCPU owns (the EL1 system registers, SP_EL0/SP_EL1, FP/SIMD)
/// stays in the CPU while the vCPU runs, because Janus runs at EL2 with
/// soft-float code and never touches them; it is saved into an `El1Context`
/// only when the physical CPU changes hands (see `arch::aarch64::context`).
#[repr(C)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestRegs {
    /// x0 to x30.
    pub x: [u64; 31],
    /// Where the guest resumes (ELR_EL2).
    pub pc: u64,
    /// The guest's saved PSTATE (SPSR_EL2).
    pub pstate: u64,
}

/// Register number 31 in a load/store or system-register syndrome is XZR.
pub const XZR: u8 = 31;

impl GuestRegs {
    /// Reads general register `n`; register 31 reads as zero (XZR).
    pub fn get(&self, n: u8) -> u64 {
        self.x.get(usize::from(n)).copied().unwrap_or(0)
    }

    /// Writes general register `n`; writes to register 31 (XZR) are dropped.
    pub fn set(&mut self, n: u8, value: u64) {
        if let Some(slot) = self.x.get_mut(usize::from(n)) {
            *slot = value;
        }
    }

    /// The first eight argument registers of an SMCCC call (x0-x7).
    pub fn smccc_args(&self) -> &[u64; 8] {
        const NO_ARGS: [u64; 8] = [0; 8];
        // x has 31 entries, so the first 8 always exist.
        self.x.first_chunk::<8>().unwrap_or(&NO_ARGS)
    }

    /// Sets the SMCCC results: x0 to x3.
    pub fn set_smccc_result(&mut self, results: [u64; 4]) {
        self.x[..4].copy_from_slice(&results);
    }

    /// Resets the registers for a vCPU that starts at `entry` with `x0 = arg`,
    /// at EL1 using SP_EL1, with all exceptions masked (PSCI 1.1 §6.4.3 for CPU_ON,
    /// and the arm64 boot protocol for the boot vCPU).
    pub fn reset(&mut self, entry: u64, arg: u64) {
        *self = GuestRegs::default();
        self.pc = entry;
        self.x[0] = arg;
        self.pstate = PSTATE_EL1H_MASKED;
    }
}

/// PSTATE for a freshly started vCPU: EL1h (M = 0b0101) with D, A, I and F masked.
pub const PSTATE_EL1H_MASKED: u64 = 0b1111 << 6 | 0b0101;

/// Power state of a vCPU as PSCI AFFINITY_INFO reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PowerState {
    /// Not running; CPU_ON may start it.
    Off = 0,
    /// CPU_ON accepted; the physical CPU has not entered it yet.
    OnPending = 1,
    /// Running (or about to run) on its physical CPU.
    On = 2,
    /// A CPU_ON call is filling in the entry point.
    Claimed = 3,
}

impl PowerState {
    fn from_u8(value: u8) -> PowerState {
        match value {
            1 => PowerState::OnPending,
            2 => PowerState::On,
            3 => PowerState::Claimed,
            _ => PowerState::Off,
        }
    }
}

/// Why CPU_ON could not start a vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuOnError {
    /// The vCPU is already on.
    AlreadyOn,
    /// Another CPU_ON for it is in flight.
    OnPending,
}

/// Why a vCPU left the guest, for the exit statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum ExitCause {
    /// HVC: PSCI and hypercalls.
    Hvc = 0,
    /// Trapped SMC.
    Smc = 1,
    /// Data abort on an emulated device (MMIO).
    Mmio = 2,
    /// Trapped system register access.
    SysReg = 3,
    /// Trapped WFI.
    Wfi = 4,
    /// Trapped WFE.
    Wfe = 5,
    /// Physical interrupt.
    Irq = 6,
    /// An access Janus refused (fault injected).
    Fault = 7,
    /// Trapped TLB maintenance of a lone vCPU, done locally (`trap/tlbi.rs`).
    Tlbi = 8,
    /// First touch of a RAM chunk since the start, cleared then (`vm/ram.rs`).
    Ram = 9,
}

/// Names of the exit causes, in `ExitCause` order.
pub const EXIT_CAUSE_NAMES: [&str; EXIT_CAUSES] = [
    "hvc", "smc", "mmio", "sysreg", "wfi", "wfe", "irq", "fault", "tlbi", "ram",
];
/// Number of exit causes.
pub const EXIT_CAUSES: usize = 10;

/// Exits of one vCPU by cause since it last started. Only the vCPU's physical
/// CPU writes them (so a relaxed load and store is a complete increment); anyone
/// may read them.
#[derive(Debug, Default)]
pub struct ExitCounters([AtomicU64; EXIT_CAUSES]);

impl ExitCounters {
    /// Counts one exit. Call only on the vCPU's own physical CPU.
    #[inline]
    pub fn count(&self, cause: ExitCause) {
        if let Some(counter) = self.0.get(cause as usize) {
            counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// The counts, in `ExitCause` order.
    pub fn snapshot(&self) -> [u64; EXIT_CAUSES] {
        let mut counts = [0; EXIT_CAUSES];
        for (count, counter) in counts.iter_mut().zip(&self.0) {
            *count = counter.load(Ordering::Relaxed);
        }
        counts
    }

    /// Starts counting again from zero. Call only on the vCPU's own physical CPU.
    pub fn clear(&self) {
        for counter in &self.0 {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// One vCPU of a personality, pinned to one physical CPU.
#[derive(Debug)]
pub struct VcpuSlot {
    /// Its exits by cause since it last started.
    pub exits: ExitCounters,
    /// The physical CPU that runs this vCPU.
    pub pcpu: usize,
    state: AtomicU8,
    entry: AtomicU64,
    context: AtomicU64,
    /// Set by the physical CPU while it is inside this vCPU, cleared when it leaves.
    running: AtomicBool,
}

impl VcpuSlot {
    /// A powered-off vCPU pinned to `pcpu`.
    pub fn new(pcpu: usize) -> VcpuSlot {
        VcpuSlot {
            exits: ExitCounters::default(),
            pcpu,
            state: AtomicU8::new(PowerState::Off as u8),
            entry: AtomicU64::new(0),
            context: AtomicU64::new(0),
            running: AtomicBool::new(false),
        }
    }

    /// The current power state.
    pub fn state(&self) -> PowerState {
        PowerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Asks for the vCPU to start at `entry` with `x0 = context` (PSCI CPU_ON).
    ///
    /// # Errors
    /// `AlreadyOn` or `OnPending` when it is not off.
    pub fn request_on(&self, entry: u64, context: u64) -> Result<(), CpuOnError> {
        match self.state.compare_exchange(
            PowerState::Off as u8,
            PowerState::Claimed as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                self.entry.store(entry, Ordering::Relaxed);
                self.context.store(context, Ordering::Relaxed);
                self.state
                    .store(PowerState::OnPending as u8, Ordering::Release);
                Ok(())
            }
            Err(current) => match PowerState::from_u8(current) {
                PowerState::On => Err(CpuOnError::AlreadyOn),
                _ => Err(CpuOnError::OnPending),
            },
        }
    }

    /// Takes a pending start request: returns `(entry, context)` and marks the vCPU on.
    pub fn take_pending(&self) -> Option<(u64, u64)> {
        self.state
            .compare_exchange(
                PowerState::OnPending as u8,
                PowerState::On as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()
            .map(|_| {
                (
                    self.entry.load(Ordering::Relaxed),
                    self.context.load(Ordering::Relaxed),
                )
            })
    }

    /// Powers the vCPU off (CPU_OFF, or its personality stopping).
    pub fn power_off(&self) {
        self.state.store(PowerState::Off as u8, Ordering::Release);
    }

    /// Records whether the physical CPU is inside this vCPU.
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
    }

    /// Whether the physical CPU is inside this vCPU.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_counters_count_per_cause_and_clear() {
        let counters = ExitCounters::default();
        counters.count(ExitCause::Hvc);
        counters.count(ExitCause::Hvc);
        counters.count(ExitCause::Irq);
        counters.count(ExitCause::Ram);
        assert_eq!(counters.snapshot(), [2, 0, 0, 0, 0, 0, 1, 0, 0, 1]);
        counters.clear();
        assert_eq!(counters.snapshot(), [0; EXIT_CAUSES]);
    }

    #[test]
    fn register_31_reads_zero_and_ignores_writes() {
        let mut regs = GuestRegs::default();
        regs.set(31, 7);
        assert_eq!(regs.get(31), 0);
        regs.set(30, 9);
        assert_eq!(regs.get(30), 9);
    }

    #[test]
    fn reset_starts_at_el1h_masked_with_x0() {
        let mut regs = GuestRegs::default();
        regs.x[5] = 3;
        regs.reset(0x4000_0000, 0x1234);
        assert_eq!(regs.pc, 0x4000_0000);
        assert_eq!(regs.x[0], 0x1234);
        assert_eq!(regs.x[5], 0);
        assert_eq!(regs.pstate, 0x3c5);
    }

    #[test]
    fn cpu_on_is_accepted_once_until_powered_off() {
        let slot = VcpuSlot::new(1);
        assert_eq!(slot.state(), PowerState::Off);
        assert_eq!(slot.request_on(0x100, 7), Ok(()));
        assert_eq!(slot.state(), PowerState::OnPending);
        assert_eq!(slot.request_on(0x200, 8), Err(CpuOnError::OnPending));
        assert_eq!(slot.take_pending(), Some((0x100, 7)));
        assert_eq!(slot.request_on(0x200, 8), Err(CpuOnError::AlreadyOn));
        assert_eq!(slot.take_pending(), None);
        slot.power_off();
        assert_eq!(slot.request_on(0x300, 9), Ok(()));
    }
}

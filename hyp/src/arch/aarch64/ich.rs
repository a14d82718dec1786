//! The GICv3 virtual CPU interface control registers (ICH_*_EL2): list
//! registers and the controls the vGIC model drives on this physical CPU.
//!
//! Accesses go through this CPU's [`LrCache`], so that an exit reads only the
//! list registers the guest may have changed and an entry writes only those
//! that differ (see `dev/vgic/lr_cache.rs` for why that matters).

use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

use spin::Mutex;

use super::entry::MAX_CPUS;
use super::percpu;
use crate::dev::vgic::lr::ListRegister;
use crate::dev::vgic::lr_cache::LrCache;

use aarch64_cpu::registers::{
    Readable, Writeable, ICH_AP0R0_EL2, ICH_AP1R0_EL2, ICH_HCR_EL2, ICH_LR0_EL2, ICH_LR10_EL2,
    ICH_LR11_EL2, ICH_LR12_EL2, ICH_LR13_EL2, ICH_LR14_EL2, ICH_LR15_EL2, ICH_LR1_EL2, ICH_LR2_EL2,
    ICH_LR3_EL2, ICH_LR4_EL2, ICH_LR5_EL2, ICH_LR6_EL2, ICH_LR7_EL2, ICH_LR8_EL2, ICH_LR9_EL2,
    ICH_VMCR_EL2, ICH_VTR_EL2,
};

/// Most list registers the architecture defines.
pub const MAX_LRS: usize = crate::dev::vgic::lr_cache::MAX_LRS;

/// Each physical CPU's ICH_VTR_EL2.ListRegs + 1, read on its first use (0
/// until then): CPUs of one board may differ (big.LITTLE), and touching a
/// list register a CPU lacks is UNDEFINED.
#[allow(clippy::declare_interior_mutable_const)]
const UNKNOWN_COUNT: AtomicUsize = AtomicUsize::new(0);
static LR_COUNTS: [AtomicUsize; MAX_CPUS] = [UNKNOWN_COUNT; MAX_CPUS];

/// Each physical CPU's list-register cache; CPU `i` only ever locks entry `i`
/// (the lock only satisfies the type system: there is no contention).
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_CACHE: Mutex<LrCache> = Mutex::new(LrCache::new());
static CACHES: [Mutex<LrCache>; MAX_CPUS] = [EMPTY_CACHE; MAX_CPUS];

/// This CPU's index into the per-CPU arrays above. `percpu::init` refuses
/// indices from MAX_CPUS on and TPIDR_EL2 points into its slots, so the index
/// is always in range on a CPU that runs a vCPU; a broken invariant panics.
fn this_cpu() -> usize {
    let index = percpu::index();
    assert!(index < MAX_CPUS, "CPU index {index} beyond MAX_CPUS");
    index
}

/// Runs `f` on this CPU's list-register cache.
fn with_cache<T>(f: impl FnOnce(&mut LrCache) -> T) -> T {
    f(&mut CACHES[this_cpu()].lock())
}

/// Number of list registers this CPU implements (ICH_VTR_EL2.ListRegs + 1).
pub fn lr_count() -> usize {
    let slot = &LR_COUNTS[this_cpu()];
    let cached = slot.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let count = (ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as usize + 1).min(MAX_LRS);
    slot.store(count, Ordering::Relaxed);
    count
}

/// ICH_ELRSR_EL2 (S3_4_C12_C11_5): bit `n` set when list register `n` holds
/// nothing. aarch64-cpu does not name it. It is derived from the list
/// registers, so reading it after writing them is an indirect read that only
/// a context synchronization event orders (Arm ARM D19.2, "Synchronization
/// requirements for AArch64 System registers"): hence the ISB.
fn read_elrsr() -> u64 {
    let value: u64;
    // SAFETY: an ISB and a read of ICH_ELRSR_EL2 have no side effects.
    unsafe { asm!("isb", "mrs {v}, S3_4_C12_C11_5", v = out(reg) value, options(nomem, nostack)) };
    value
}

/// Fills `lrs` (the first `lrs.len()` list registers) with what they hold now,
/// reading only those the guest may have changed since they were written.
pub fn current_lrs(lrs: &mut [u64]) {
    let elrsr = read_elrsr();
    with_cache(|cache| cache.current(elrsr, read_lr, lrs));
}

/// Makes the list registers hold `new`, writing only those that differ from
/// `now` (what `current_lrs` returned on this exit).
pub fn store_lrs(now: &[u64], new: &[u64]) {
    with_cache(|cache| cache.store(now, new, write_lr));
}

/// Whether a list register holds an interrupt pending for the guest.
pub fn any_pending() -> bool {
    let mut lrs = [0u64; MAX_LRS];
    let Some(lrs) = lrs.get_mut(..lr_count()) else {
        return false;
    };
    current_lrs(lrs);
    lrs.iter()
        .any(|&value| ListRegister::decode(value).state.is_pending())
}

/// Reads list register `n` (0 for an index the CPU lacks).
pub fn read_lr(n: usize) -> u64 {
    match n {
        0 => ICH_LR0_EL2.get(),
        1 => ICH_LR1_EL2.get(),
        2 => ICH_LR2_EL2.get(),
        3 => ICH_LR3_EL2.get(),
        4 => ICH_LR4_EL2.get(),
        5 => ICH_LR5_EL2.get(),
        6 => ICH_LR6_EL2.get(),
        7 => ICH_LR7_EL2.get(),
        8 => ICH_LR8_EL2.get(),
        9 => ICH_LR9_EL2.get(),
        10 => ICH_LR10_EL2.get(),
        11 => ICH_LR11_EL2.get(),
        12 => ICH_LR12_EL2.get(),
        13 => ICH_LR13_EL2.get(),
        14 => ICH_LR14_EL2.get(),
        15 => ICH_LR15_EL2.get(),
        _ => 0,
    }
}

/// Writes list register `n` (ignored for an index the CPU lacks).
pub fn write_lr(n: usize, value: u64) {
    match n {
        0 => ICH_LR0_EL2.set(value),
        1 => ICH_LR1_EL2.set(value),
        2 => ICH_LR2_EL2.set(value),
        3 => ICH_LR3_EL2.set(value),
        4 => ICH_LR4_EL2.set(value),
        5 => ICH_LR5_EL2.set(value),
        6 => ICH_LR6_EL2.set(value),
        7 => ICH_LR7_EL2.set(value),
        8 => ICH_LR8_EL2.set(value),
        9 => ICH_LR9_EL2.set(value),
        10 => ICH_LR10_EL2.set(value),
        11 => ICH_LR11_EL2.set(value),
        12 => ICH_LR12_EL2.set(value),
        13 => ICH_LR13_EL2.set(value),
        14 => ICH_LR14_EL2.set(value),
        15 => ICH_LR15_EL2.set(value),
        _ => {}
    }
}

/// Enables the virtual CPU interface; `underflow` asks for a maintenance
/// interrupt when at most one list register holds an interrupt, so more
/// pending interrupts than list registers are fed in as room appears.
pub fn set_control(underflow: bool) {
    let mut value = ICH_HCR_EL2::En::SET;
    if underflow {
        value += ICH_HCR_EL2::UIE::SET;
    }
    with_cache(|cache| cache.set_control(value.value, |value| ICH_HCR_EL2.set(value)));
}

/// Turns the virtual CPU interface off (no vCPU on this CPU).
pub fn disable() {
    ICH_HCR_EL2.set(0);
    with_cache(|cache| cache.set_control(0, |_| {}));
}

/// Puts the virtual CPU interface in its reset state for a vCPU that (re)starts:
/// no list register in use, no active priorities, interfaces disabled (the
/// guest enables them through ICC_IGRPEN1_EL1, ICC_PMR_EL1 and friends).
pub fn reset() {
    for n in 0..lr_count() {
        write_lr(n, 0);
    }
    ICH_AP0R0_EL2.set(0);
    ICH_AP1R0_EL2.set(0);
    ICH_VMCR_EL2.set(0);
    let value = ICH_HCR_EL2::En::SET.value;
    ICH_HCR_EL2.set(value);
    with_cache(|cache| {
        *cache = LrCache::new();
        cache.set_control(value, |_| {});
    });
}

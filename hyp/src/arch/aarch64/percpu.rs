//! Per-physical-CPU state, reached through TPIDR_EL2.

use core::cell::UnsafeCell;

use aarch64_cpu::registers::{Readable, Writeable, MPIDR_EL1, TPIDR_EL2};

use super::entry::{MAX_CPUS, STACK_SIZE};
use crate::vm::vcpu::GuestRegs;
use crate::vm::Personality;

/// What one physical CPU knows about itself. `regs` must stay the first field:
/// the exit path in `vectors.S` saves the guest registers at TPIDR_EL2.
#[repr(C)]
pub struct PerCpu {
    /// The registers of the vCPU this CPU runs.
    pub regs: GuestRegs,
    /// Index of this CPU in the boot device tree's `/cpus`.
    pub index: usize,
    /// Top of this CPU's stack (see `entry.S`).
    pub stack_top: u64,
    /// The personality whose vCPU this CPU is running, if any.
    pub vm: Option<&'static Personality>,
    /// Which of its vCPUs.
    pub vcpu: usize,
}

const _: () = assert!(core::mem::offset_of!(PerCpu, regs) == 0);

struct Slot(UnsafeCell<PerCpu>);

// SAFETY: slot `i` is only ever touched by physical CPU `i` (see `current`).
unsafe impl Sync for Slot {}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot(UnsafeCell::new(PerCpu {
    regs: GuestRegs {
        x: [0; 31],
        pc: 0,
        pstate: 0,
    },
    index: 0,
    stack_top: 0,
    vm: None,
    vcpu: 0,
}));

/// One slot per physical CPU.
static SLOTS: [Slot; MAX_CPUS] = [EMPTY; MAX_CPUS];

/// Points TPIDR_EL2 at CPU `index`'s slot and fills in what never changes.
pub fn init(index: usize, stack_base: u64) {
    let Some(slot) = SLOTS.get(index) else {
        panic!("CPU index {index} beyond MAX_CPUS");
    };
    let pointer = slot.0.get();
    // SAFETY: this runs once on CPU `index` before anything else uses the slot,
    // so no other reference to it exists.
    let percpu = unsafe { &mut *pointer };
    percpu.index = index;
    percpu.stack_top = stack_base + ((index + 1) * STACK_SIZE) as u64;
    TPIDR_EL2.set(pointer as u64);
}

/// This CPU's state.
///
/// # Safety
/// Call only where no other reference to this CPU's slot is alive: at the top of
/// `handle_exit` (the previous one was abandoned when the guest was entered) and
/// at the start of the idle loop.
pub unsafe fn current() -> &'static mut PerCpu {
    let pointer = TPIDR_EL2.get() as *mut PerCpu;
    // SAFETY: `init` stored the address of this CPU's slot, which lives forever;
    // the caller guarantees exclusivity.
    unsafe { &mut *pointer }
}

/// This CPU's index, from where TPIDR_EL2 points (no reference to the slot is
/// made, so this may be called while `current`'s reference is alive).
pub fn index() -> usize {
    let pointer = TPIDR_EL2.get() as usize;
    let first = SLOTS.as_ptr() as usize;
    pointer.saturating_sub(first) / core::mem::size_of::<Slot>()
}

/// This CPU's affinity (MPIDR_EL1 without the U and MT bits).
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

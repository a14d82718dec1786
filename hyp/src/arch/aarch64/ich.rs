//! The GICv3 virtual CPU interface control registers (ICH_*_EL2): list
//! registers and the controls the vGIC model drives on this physical CPU.

use aarch64_cpu::registers::{
    Readable, Writeable, ICH_AP0R0_EL2, ICH_AP1R0_EL2, ICH_HCR_EL2, ICH_LR0_EL2, ICH_LR10_EL2,
    ICH_LR11_EL2, ICH_LR12_EL2, ICH_LR13_EL2, ICH_LR14_EL2, ICH_LR15_EL2, ICH_LR1_EL2, ICH_LR2_EL2,
    ICH_LR3_EL2, ICH_LR4_EL2, ICH_LR5_EL2, ICH_LR6_EL2, ICH_LR7_EL2, ICH_LR8_EL2, ICH_LR9_EL2,
    ICH_VMCR_EL2, ICH_VTR_EL2,
};

/// Most list registers the architecture defines.
pub const MAX_LRS: usize = 16;

/// Number of list registers this CPU implements (ICH_VTR_EL2.ListRegs + 1).
pub fn lr_count() -> usize {
    let count = ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as usize + 1;
    count.min(MAX_LRS)
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

/// Reads the first `lrs.len()` list registers.
pub fn read_lrs(lrs: &mut [u64]) {
    for (n, lr) in lrs.iter_mut().enumerate() {
        *lr = read_lr(n);
    }
}

/// Writes the first `lrs.len()` list registers.
pub fn write_lrs(lrs: &[u64]) {
    for (n, &lr) in lrs.iter().enumerate() {
        write_lr(n, lr);
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
    ICH_HCR_EL2.write(value);
}

/// Turns the virtual CPU interface off (no vCPU on this CPU).
pub fn disable() {
    ICH_HCR_EL2.set(0);
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
    set_control(false);
}

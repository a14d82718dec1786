//! What one physical CPU's list registers hold, as Janus last wrote them, so that
//! an exit reads back only the list registers the guest may have changed and an
//! entry writes only those that differ.
//!
//! Every list register access is a system register access; under emulation each
//! one is expensive (QEMU ends the translation block and takes its global lock
//! for the GIC's registers), and on hardware the CPU interface registers are not
//! free either. The guest can change a list register in only two ways: it
//! acknowledges a pending interrupt (Pending -> Active) or deactivates one
//! (-> Invalid). ICH_ELRSR_EL2 names the list registers that hold nothing
//! (State Invalid, and no EOI maintenance waiting), so one read of it says which
//! listed interrupts the guest has finished with; only the others are read.
//! KVM and Xen keep the same kind of shadow for the same reason.
#![forbid(unsafe_code)]

use super::lr::ListRegister;

/// Most list registers the architecture defines (ICH_VTR_EL2.ListRegs is 4 bits).
pub const MAX_LRS: usize = 16;

/// Janus' copy of one CPU's list registers and ICH_HCR_EL2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LrCache {
    /// The value last written to each `ICH_LR<n>_EL2`.
    written: [u64; MAX_LRS],
    /// The value last written to ICH_HCR_EL2.
    control: u64,
}

impl Default for LrCache {
    fn default() -> Self {
        Self::new()
    }
}

impl LrCache {
    /// The cache of a CPU whose list registers and ICH_HCR_EL2 are all zero (their
    /// state after `reset`).
    pub const fn new() -> Self {
        Self {
            written: [ListRegister::FREE; MAX_LRS],
            control: 0,
        }
    }

    /// Fills `lrs` with what the list registers hold now. `elrsr` is ICH_ELRSR_EL2
    /// (bit `n` set: list register `n` holds nothing); `read(n)` reads `ICH_LR<n>_EL2`
    /// and is called only for list registers that were written in use and that
    /// ICH_ELRSR_EL2 does not show empty.
    pub fn current(&self, elrsr: u64, mut read: impl FnMut(usize) -> u64, lrs: &mut [u64]) {
        for (n, (slot, &written)) in lrs.iter_mut().zip(&self.written).enumerate() {
            let empty = elrsr & (1 << n) != 0;
            *slot = if !ListRegister::is_in_use(written) || empty {
                // A free list register stays free: the guest cannot fill one.
                ListRegister::FREE
            } else {
                read(n)
            };
        }
    }

    /// Records `new` as the list registers' contents, calling `write(n, value)` for
    /// each that differs from `now`, what [`LrCache::current`] returned on this exit.
    pub fn store(&mut self, now: &[u64], new: &[u64], mut write: impl FnMut(usize, u64)) {
        for (n, ((&before, &after), written)) in
            now.iter().zip(new).zip(self.written.iter_mut()).enumerate()
        {
            if before != after {
                write(n, after);
            }
            *written = after;
        }
    }

    /// Records `value` as ICH_HCR_EL2, calling `write` only when it changes.
    pub fn set_control(&mut self, value: u64, write: impl FnOnce(u64)) {
        if value != self.control {
            write(value);
            self.control = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::vgic::lr::LrState;

    fn lr(intid: u32, state: LrState) -> u64 {
        ListRegister {
            intid,
            priority: 0xa0,
            group1: true,
            eoi_maintenance: false,
            physical: None,
            state,
        }
        .encode()
    }

    #[test]
    fn free_and_empty_registers_are_not_read() {
        let mut cache = LrCache::new();
        let listed = [lr(27, LrState::Pending), lr(33, LrState::Pending), 0, 0];
        cache.store(&[0; 4], &listed, |_, _| {});
        let mut reads = Vec::new();
        let mut now = [0; 4];
        // List register 1 is empty now (the guest took and finished interrupt 33).
        cache.current(
            0b1110,
            |n| {
                reads.push(n);
                lr(27, LrState::Active)
            },
            &mut now,
        );
        assert_eq!(reads, vec![0]);
        assert_eq!(now, [lr(27, LrState::Active), 0, 0, 0]);
    }

    #[test]
    fn only_changed_registers_are_written() {
        let mut cache = LrCache::new();
        let mut writes = Vec::new();
        let now = [lr(27, LrState::Active), 0, 0, 0];
        let new = [lr(27, LrState::Active), lr(40, LrState::Pending), 0, 0];
        cache.store(&now, &new, |n, value| writes.push((n, value)));
        assert_eq!(writes, vec![(1, lr(40, LrState::Pending))]);
    }

    #[test]
    fn an_emptied_register_that_stays_free_is_not_written() {
        let mut cache = LrCache::new();
        cache.store(&[0; 2], &[lr(27, LrState::Pending), 0], |_, _| {});
        let mut now = [0; 2];
        cache.current(0b11, |_| panic!("nothing to read"), &mut now);
        let mut writes = 0;
        cache.store(&now, &[0, 0], |_, _| writes += 1);
        assert_eq!(writes, 0);
        // And the next exit does not read it either.
        cache.current(0, |_| panic!("nothing to read"), &mut now);
    }

    #[test]
    fn control_is_written_only_when_it_changes() {
        let mut cache = LrCache::new();
        let mut writes = Vec::new();
        cache.set_control(1, |value| writes.push(value));
        cache.set_control(1, |value| writes.push(value));
        cache.set_control(3, |value| writes.push(value));
        assert_eq!(writes, vec![1, 3]);
    }
}

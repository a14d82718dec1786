//! Arm PL031 real-time clock (QEMU virt's `arm,pl031`): whole seconds since the
//! Unix epoch, read by Janus for the audit log's wall-clock time.
//!
//! Janus only reads the counter and masks the match interrupt; it never sets the
//! clock. The guests do not get the device (their device trees have no PL031).

use core::ptr::NonNull;

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! [u32,
    /// Control register.
    RTCCR [
        /// The counter runs (writing 1 starts it; it cannot be stopped again).
        START OFFSET(0) NUMBITS(1) []
    ],
    /// Interrupt mask, raw and masked status, and clear registers.
    RTCINT [
        /// The match interrupt.
        MATCH OFFSET(0) NUMBITS(1) []
    ]
];

register_structs! {
    /// PL031 registers (PrimeCell RTC (PL031) TRM, table 3-1).
    pub Pl031Registers {
        (0x000 => dr: ReadOnly<u32>),
        (0x004 => mr: ReadWrite<u32>),
        (0x008 => lr: ReadWrite<u32>),
        (0x00c => cr: ReadWrite<u32, RTCCR::Register>),
        (0x010 => imsc: ReadWrite<u32, RTCINT::Register>),
        (0x014 => ris: ReadOnly<u32, RTCINT::Register>),
        (0x018 => mis: ReadOnly<u32, RTCINT::Register>),
        (0x01c => icr: WriteOnly<u32, RTCINT::Register>),
        (0x020 => @END),
    }
}

/// A PL031 read by polling.
pub struct Pl031 {
    registers: NonNull<Pl031Registers>,
}

// SAFETY: the driver holds the only pointer to its registers (see `new`), so
// moving it to another CPU moves the exclusive access with it.
unsafe impl Send for Pl031 {}

impl Pl031 {
    /// Takes over the PL031 at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a PL031's registers, mapped as Device memory
    /// in the current translation regime, and no other code may access them while
    /// this driver exists.
    pub unsafe fn new(base: usize) -> Pl031 {
        Pl031 {
            // SAFETY: the caller guarantees `base` is a valid, non-null MMIO address.
            registers: unsafe { NonNull::new_unchecked(base as *mut Pl031Registers) },
        }
    }

    fn regs(&self) -> &Pl031Registers {
        // SAFETY: `new`'s contract: the registers are mapped and exclusively ours;
        // tock-registers cells perform volatile accesses only.
        unsafe { self.registers.as_ref() }
    }

    /// Masks and clears the match interrupt and starts the counter if the
    /// firmware left it stopped (QEMU starts it at reset).
    pub fn init(&mut self) {
        let regs = self.regs();
        regs.imsc.set(0);
        regs.icr.write(RTCINT::MATCH::SET);
        if !regs.cr.is_set(RTCCR::START) {
            regs.cr.write(RTCCR::START::SET);
        }
    }

    /// Seconds since the Unix epoch (QEMU loads the host's time at reset).
    pub fn seconds(&self) -> u32 {
        self.regs().dr.get()
    }
}

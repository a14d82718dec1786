//! Arm PL011 UART (the virt board's console), polled, as Janus' own console.

use core::ptr::NonNull;

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! [u32,
    /// Interrupt mask set/clear, raw and masked status, and clear registers share a layout.
    INT [
        /// Receive timeout.
        RT OFFSET(6) NUMBITS(1) [],
        /// Receive.
        RX OFFSET(4) NUMBITS(1) []
    ],
    /// Flag register.
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// Control register.
    CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ]
];

register_structs! {
    /// PL011 registers (PL011 TRM, table 3-1).
    pub Pl011Registers {
        (0x000 => dr: ReadWrite<u32>),
        (0x004 => _reserved0),
        (0x018 => fr: ReadOnly<u32, FR::Register>),
        (0x01c => _reserved1),
        (0x030 => cr: ReadWrite<u32, CR::Register>),
        (0x034 => _reserved2),
        (0x038 => imsc: ReadWrite<u32, INT::Register>),
        (0x03c => _reserved3),
        (0x044 => icr: ReadWrite<u32, INT::Register>),
        (0x048 => @END),
    }
}

/// A PL011 driven by polling.
pub struct Pl011 {
    registers: NonNull<Pl011Registers>,
}

// SAFETY: the driver holds the only pointer to its registers (see `new`), so
// moving it to another CPU moves the exclusive access with it.
unsafe impl Send for Pl011 {}

impl Pl011 {
    /// Takes over the PL011 at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a PL011's registers, mapped as Device memory
    /// in the current translation regime, and no other code may access them while
    /// this driver exists.
    pub unsafe fn new(base: usize) -> Pl011 {
        Pl011 {
            // SAFETY: the caller guarantees `base` is a valid, non-null MMIO address.
            registers: unsafe { NonNull::new_unchecked(base as *mut Pl011Registers) },
        }
    }

    fn regs(&self) -> &Pl011Registers {
        // SAFETY: `new`'s contract: the registers are mapped and exclusively ours;
        // tock-registers cells perform volatile accesses only.
        unsafe { self.registers.as_ref() }
    }

    /// Enables the transmitter and receiver and masks every UART interrupt
    /// (the firmware or QEMU has set the baud rate already).
    pub fn init(&mut self) {
        let regs = self.regs();
        regs.imsc.set(0);
        // Clear every pending interrupt (bits [10:0] of UARTICR).
        regs.icr.set(0x7ff);
        regs.cr.write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Raises the UART's interrupt when input arrives (receive and receive-timeout).
    pub fn enable_receive_interrupt(&mut self) {
        self.regs().imsc.write(INT::RX::SET + INT::RT::SET);
    }

    /// Acknowledges the receive interrupts (after draining the FIFO).
    pub fn clear_receive_interrupt(&mut self) {
        self.regs().icr.write(INT::RX::SET + INT::RT::SET);
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(&mut self, byte: u8) {
        let regs = self.regs();
        while regs.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        regs.dr.set(u32::from(byte));
    }

    /// Takes one received byte, if any.
    pub fn read_byte(&mut self) -> Option<u8> {
        let regs = self.regs();
        if regs.fr.is_set(FR::RXFE) {
            None
        } else {
            Some((regs.dr.get() & 0xff) as u8)
        }
    }
}

impl embedded_io::ErrorType for Pl011 {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for Pl011 {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &byte in buf {
            self.write_byte(byte);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        while self.regs().fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
        Ok(())
    }
}

impl core::fmt::Write for Pl011 {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        for &byte in text.as_bytes() {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
        Ok(())
    }
}

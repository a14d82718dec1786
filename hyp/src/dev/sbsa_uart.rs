//! A virtual SBSA generic UART (a PL011 subset) that Linux drives as `ttyAMA0`.
//!
//! The register map and bits follow the ARM PrimeCell UART (PL011) Technical
//! Reference Manual (DDI 0183, section 3 "Programmers Model") and the SBSA
//! generic UART (Arm Base System Architecture, appendix "Generic UART"), which
//! keeps DR, RSR/ECR, FR, IMSC, RIS, MIS and ICR and drops the rest.
//!
//! Linux binds this device with `arm,sbsa-uart` (drivers/tty/serial/amba-pl011.c,
//! `sbsa_uart_probe`): 32-bit accesses, a 32-byte FIFO, and no writes to CR,
//! LCR_H, IBRD or FBRD. A plain PL011 driver (`arm,pl011` through the AMBA bus)
//! also works: it uses 16-bit accesses, reads the PeriphID/CellID registers and
//! programs CR, LCR_H, IBRD, FBRD, IFLS and DMACR, which are kept and read back
//! but change nothing, since there is no line to time.
//!
//! Transmission is instant: a byte written to DR goes to an output queue that
//! the hypervisor drains with [`SbsaUart::take_output`], so the TX FIFO always
//! reads as empty. Received bytes come from [`SbsaUart::push_input`] into a
//! 32-entry RX FIFO.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use tock_registers::{register_bitfields, LocalRegisterCopy};

use super::{DevError, MmioDevice, Width};

/// Bytes the output queue holds before the oldest are dropped.
pub const TX_QUEUE_BYTES: usize = 4096;

/// Depth of the RX FIFO: 32 entries as in PL011 r1p5 (TRM, "Receive FIFO");
/// Linux assumes the same depth for the SBSA UART (`uap->fifosize = 32`).
pub const RX_FIFO_BYTES: usize = 32;

/// UARTPeriphID0..3 (TRM, "Peripheral Identification Registers"): part
/// number 0x011, designer 0x41 (ARM), revision 3 (r1p5, whose FIFOs are 32
/// deep; Linux's `get_fifosize_arm` reads this revision to choose 32 over 16),
/// configuration 0.
const PERIPH_ID: [u32; 4] = [0x11, 0x10, 0x34, 0x00];

/// UARTPCellID0..3 (TRM, "PrimeCell Identification Registers"): the
/// PrimeCell preamble that an AMBA bus probe checks, 0xB105F00D read a byte at
/// a time.
const CELL_ID: [u32; 4] = [0x0d, 0xf0, 0x05, 0xb1];

register_bitfields![u32,
    /// UARTDR, data register.
    DR [
        /// The received or transmitted character.
        DATA OFFSET(0) NUMBITS(8) []
    ],
    /// UARTFR, flag register.
    FR [
        /// Clear to send.
        CTS OFFSET(0) NUMBITS(1) [],
        /// Data set ready.
        DSR OFFSET(1) NUMBITS(1) [],
        /// Data carrier detect.
        DCD OFFSET(2) NUMBITS(1) [],
        /// The UART is transmitting.
        BUSY OFFSET(3) NUMBITS(1) [],
        /// The receive FIFO is empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// The transmit FIFO is full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// The receive FIFO is full.
        RXFF OFFSET(6) NUMBITS(1) [],
        /// The transmit FIFO is empty.
        TXFE OFFSET(7) NUMBITS(1) [],
        /// Ring indicator.
        RI OFFSET(8) NUMBITS(1) []
    ],
    /// UARTCR, control register; only its reset value matters here.
    CR [
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) []
    ],
    /// UARTIFLS, FIFO level select; only its reset value matters here.
    IFLS [
        /// Transmit interrupt FIFO level.
        TXIFLSEL OFFSET(0) NUMBITS(3) [
            /// The FIFO is half full.
            Half = 0b010
        ],
        /// Receive interrupt FIFO level.
        RXIFLSEL OFFSET(3) NUMBITS(3) [
            /// The FIFO is half full.
            Half = 0b010
        ]
    ],
    /// The common layout of UARTIMSC, UARTRIS, UARTMIS and UARTICR.
    INT [
        /// nUARTRI modem interrupt.
        RIM OFFSET(0) NUMBITS(1) [],
        /// nUARTCTS modem interrupt.
        CTSM OFFSET(1) NUMBITS(1) [],
        /// nUARTDCD modem interrupt.
        DCDM OFFSET(2) NUMBITS(1) [],
        /// nUARTDSR modem interrupt.
        DSRM OFFSET(3) NUMBITS(1) [],
        /// Receive interrupt.
        RX OFFSET(4) NUMBITS(1) [],
        /// Transmit interrupt.
        TX OFFSET(5) NUMBITS(1) [],
        /// Receive timeout interrupt.
        RT OFFSET(6) NUMBITS(1) [],
        /// Framing error interrupt.
        FE OFFSET(7) NUMBITS(1) [],
        /// Parity error interrupt.
        PE OFFSET(8) NUMBITS(1) [],
        /// Break error interrupt.
        BE OFFSET(9) NUMBITS(1) [],
        /// Overrun error interrupt.
        OE OFFSET(10) NUMBITS(1) []
    ]
];

/// Every interrupt bit: what IMSC stores and ICR can clear.
const INT_ALL: u32 = INT::RIM::SET.value
    | INT::CTSM::SET.value
    | INT::DCDM::SET.value
    | INT::DSRM::SET.value
    | INT::RX::SET.value
    | INT::TX::SET.value
    | INT::RT::SET.value
    | INT::FE::SET.value
    | INT::PE::SET.value
    | INT::BE::SET.value
    | INT::OE::SET.value;

/// Implemented bits of the registers that are only stored, from their TRM descriptions.
const ILPR_BITS: u32 = 0xff;
const IBRD_BITS: u32 = 0xffff;
const FBRD_BITS: u32 = 0x3f;
const LCR_H_BITS: u32 = 0xff;
const CR_BITS: u32 = 0xffff;
const IFLS_BITS: u32 = 0x3f;
const DMACR_BITS: u32 = 0x7;

/// The registers of the PL011 map, by offset from the start of the window (TRM table 3-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UartReg {
    /// UARTDR: data.
    Dr = 0x000,
    /// UARTRSR (read) / UARTECR (write): receive status, error clear.
    RsrEcr = 0x004,
    /// UARTFR: flags.
    Fr = 0x018,
    /// UARTILPR: IrDA low-power counter (not in the SBSA subset).
    Ilpr = 0x020,
    /// UARTIBRD: integer baud rate divisor (not in the SBSA subset).
    Ibrd = 0x024,
    /// UARTFBRD: fractional baud rate divisor (not in the SBSA subset).
    Fbrd = 0x028,
    /// UARTLCR_H: line control (not in the SBSA subset).
    LcrH = 0x02c,
    /// UARTCR: control (not in the SBSA subset).
    Cr = 0x030,
    /// UARTIFLS: interrupt FIFO level select (not in the SBSA subset).
    Ifls = 0x034,
    /// UARTIMSC: interrupt mask set/clear.
    Imsc = 0x038,
    /// UARTRIS: raw interrupt status.
    Ris = 0x03c,
    /// UARTMIS: masked interrupt status.
    Mis = 0x040,
    /// UARTICR: interrupt clear.
    Icr = 0x044,
    /// UARTDMACR: DMA control (not in the SBSA subset).
    Dmacr = 0x048,
    /// UARTPeriphID0.
    PeriphId0 = 0xfe0,
    /// UARTPeriphID1.
    PeriphId1 = 0xfe4,
    /// UARTPeriphID2.
    PeriphId2 = 0xfe8,
    /// UARTPeriphID3.
    PeriphId3 = 0xfec,
    /// UARTPCellID0.
    CellId0 = 0xff0,
    /// UARTPCellID1.
    CellId1 = 0xff4,
    /// UARTPCellID2.
    CellId2 = 0xff8,
    /// UARTPCellID3.
    CellId3 = 0xffc,
}

impl UartReg {
    /// Every register, for the offset lookup.
    const ALL: [UartReg; 22] = [
        UartReg::Dr,
        UartReg::RsrEcr,
        UartReg::Fr,
        UartReg::Ilpr,
        UartReg::Ibrd,
        UartReg::Fbrd,
        UartReg::LcrH,
        UartReg::Cr,
        UartReg::Ifls,
        UartReg::Imsc,
        UartReg::Ris,
        UartReg::Mis,
        UartReg::Icr,
        UartReg::Dmacr,
        UartReg::PeriphId0,
        UartReg::PeriphId1,
        UartReg::PeriphId2,
        UartReg::PeriphId3,
        UartReg::CellId0,
        UartReg::CellId1,
        UartReg::CellId2,
        UartReg::CellId3,
    ];

    /// Checks the access width against what drivers use.
    ///
    /// The SBSA UART is accessed with 32-bit loads and stores (`vendor_sbsa`
    /// sets `access_32b`), a plain PL011 driver uses `readw`/`writew` on every
    /// register, and the `pl011` earlycon and its poll routine use
    /// `writeb`/`readb` on DR only. 64-bit accesses and byte accesses to other
    /// registers are refused.
    fn check_width(self, width: Width) -> Result<(), DevError> {
        match (self, width) {
            (_, Width::Word | Width::Half) | (UartReg::Dr, Width::Byte) => Ok(()),
            _ => Err(DevError::BadWidth),
        }
    }
}

impl TryFrom<u64> for UartReg {
    type Error = DevError;

    fn try_from(offset: u64) -> Result<Self, DevError> {
        UartReg::ALL
            .iter()
            .copied()
            .find(|register| *register as u64 == offset)
            .ok_or(DevError::UnknownRegister)
    }
}

/// The bits of `value` that an access of `width` carries.
fn truncate(value: u64, width: Width) -> u32 {
    let bytes = value.to_le_bytes();
    let mut word = [0u8; 4];
    let count = width.bytes().min(word.len());
    word[..count].copy_from_slice(&bytes[..count]);
    u32::from_le_bytes(word)
}

/// A virtual SBSA generic UART.
#[derive(Debug)]
pub struct SbsaUart {
    /// Bytes the guest wrote to DR, oldest first, waiting for `take_output`.
    output: VecDeque<u8>,
    /// Bytes dropped because the guest wrote faster than the queue was drained.
    output_dropped: u64,
    /// The receive FIFO, oldest first, at most `RX_FIFO_BYTES`.
    input: VecDeque<u8>,
    /// UARTRIS: latched raw interrupt status.
    raw_interrupts: LocalRegisterCopy<u32, INT::Register>,
    /// UARTIMSC: which interrupts reach the interrupt line.
    interrupt_mask: LocalRegisterCopy<u32, INT::Register>,
    /// UARTILPR, stored only.
    ilpr: u32,
    /// UARTIBRD, stored only.
    ibrd: u32,
    /// UARTFBRD, stored only.
    fbrd: u32,
    /// UARTLCR_H, stored only: the FIFOs stay enabled whatever FEN says, as
    /// the SBSA UART has no LCR_H to turn them on.
    lcr_h: u32,
    /// UARTCR, stored only: UARTEN, TXE and RXE do not gate the data, as the
    /// SBSA UART has no CR and is always enabled.
    cr: u32,
    /// UARTIFLS, stored only: interrupts are raised as if every level were one byte.
    ifls: u32,
    /// UARTDMACR, stored only: there is no DMA.
    dmacr: u32,
}

impl Default for SbsaUart {
    fn default() -> Self {
        Self::new()
    }
}

impl SbsaUart {
    /// A UART in its reset state.
    pub fn new() -> Self {
        let mut uart = SbsaUart {
            output: VecDeque::with_capacity(TX_QUEUE_BYTES),
            output_dropped: 0,
            input: VecDeque::with_capacity(RX_FIFO_BYTES),
            raw_interrupts: LocalRegisterCopy::new(0),
            interrupt_mask: LocalRegisterCopy::new(0),
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: 0,
            ifls: 0,
            dmacr: 0,
        };
        uart.reset();
        uart
    }

    /// Returns the UART to its reset state (TRM table 3-1 reset values),
    /// discarding queued output and input and clearing the drop counter.
    pub fn reset(&mut self) {
        self.output.clear();
        self.output_dropped = 0;
        self.input.clear();
        // The empty TX FIFO is at or below its trigger level, so the transmit
        // interrupt starts raised (see `write_data`).
        self.raw_interrupts.set(INT::TX::SET.value);
        self.interrupt_mask.set(0);
        self.ilpr = 0;
        self.ibrd = 0;
        self.fbrd = 0;
        self.lcr_h = 0;
        self.cr = (CR::TXE::SET + CR::RXE::SET).value;
        self.ifls = (IFLS::TXIFLSEL::Half + IFLS::RXIFLSEL::Half).value;
        self.dmacr = 0;
    }

    /// Moves everything the guest has written to DR out of the device, oldest first.
    pub fn take_output(&mut self) -> Vec<u8> {
        // By its two slices rather than `drain(..)`, whose iterator and drop guard
        // cost a kilobyte of image.
        let (older, newer) = self.output.as_slices();
        let mut bytes = Vec::with_capacity(older.len() + newer.len());
        bytes.extend_from_slice(older);
        bytes.extend_from_slice(newer);
        self.output.clear();
        bytes
    }

    /// Moves up to `buffer.len()` written bytes into `buffer`, oldest first,
    /// and returns how many; for callers that do not allocate.
    pub fn drain_output(&mut self, buffer: &mut [u8]) -> usize {
        let count = buffer.len().min(self.output.len());
        for (slot, byte) in buffer.iter_mut().zip(self.output.drain(..count)) {
            *slot = byte;
        }
        count
    }

    /// How many written bytes wait for `take_output`.
    pub fn pending_output(&self) -> usize {
        self.output.len()
    }

    /// How many written bytes were dropped because the output queue was full.
    pub fn output_dropped(&self) -> u64 {
        self.output_dropped
    }

    /// Puts received bytes into the RX FIFO and returns how many fit; the
    /// caller keeps the rest and offers them again after the guest reads.
    pub fn push_input(&mut self, bytes: &[u8]) -> usize {
        let room = RX_FIFO_BYTES.saturating_sub(self.input.len());
        let count = bytes.len().min(room);
        self.input.extend(bytes.iter().take(count));
        if !self.input.is_empty() {
            // TRM, "Interrupts": UARTRXINTR is raised when the FIFO reaches
            // its trigger level and UARTRTINTR when data sits in a non-empty
            // FIFO for 32 bit periods. With no line to time, both are raised
            // as soon as a byte is there, so one typed key reaches the guest
            // at once whatever IFLS says; Linux enables both (RXIM | RTIM)
            // and handles them alike.
            self.raw_interrupts.modify(INT::RX::SET + INT::RT::SET);
        }
        count
    }

    /// The level of the UART's interrupt line (UARTINTR): any raised and unmasked interrupt.
    pub fn irq_level(&self) -> bool {
        self.masked_interrupts() != 0
    }

    /// UARTMIS.
    fn masked_interrupts(&self) -> u32 {
        self.raw_interrupts.get() & self.interrupt_mask.get()
    }

    /// UARTFR as it reads now.
    fn flags(&self) -> u32 {
        let mut flags = LocalRegisterCopy::<u32, FR::Register>::new(0);
        // Transmission is instant: the TX FIFO is always empty and never
        // busy, so a driver polling TXFF or BUSY never spins.
        flags.modify(FR::TXFE::SET + FR::TXFF::CLEAR + FR::BUSY::CLEAR);
        if self.input.is_empty() {
            flags.modify(FR::RXFE::SET);
        }
        if self.input.len() >= RX_FIFO_BYTES {
            flags.modify(FR::RXFF::SET);
        }
        flags.get()
    }

    /// A read of DR: pops the oldest received byte.
    fn read_data(&mut self) -> u32 {
        let byte = self.input.pop_front().unwrap_or(0);
        if self.input.is_empty() {
            // TRM, UARTRXINTR and UARTRTINTR: the receive and receive-timeout
            // interrupts clear when the FIFO is read below the trigger level
            // or empty.
            // Linux's `pl011_int` relies on this: it never clears RXIS or RTIS
            // through ICR, it reads DR until RXFE instead.
            self.raw_interrupts.modify(INT::RX::CLEAR + INT::RT::CLEAR);
        }
        // No framing, parity, break or overrun errors can happen, so bits
        // [11:8] are always zero.
        DR::DATA.val(u32::from(byte)).value
    }

    /// A write to DR: queues the byte for the console.
    ///
    /// The transmit interrupt (TRM, UARTTXINTR) is raised while the TX FIFO is at
    /// or below its trigger level and cleared by filling the FIFO above it or
    /// through ICR. Here the FIFO empties the moment a byte is written, so
    /// it is always below the level: TXRIS is set at reset, stays set while
    /// the guest writes, and when ICR clears it the next write raises it
    /// again, as the real FIFO would on draining back through the level.
    ///
    /// This keeps Linux moving in both of its TX paths:
    /// - `pl011_start_tx_pio` calls `pl011_tx_chars(uap, false)`, which writes
    ///   while FR.TXFF is clear. TXFF never sets, so it writes everything,
    ///   calls `pl011_stop_tx` and never unmasks TXIM.
    /// - if TXIM is unmasked (older drivers, or another OS), `pl011_int` sees
    ///   TXIS, does not clear it through ICR, and `pl011_tx_chars(uap, true)`
    ///   writes half a FIFO (16 bytes) per pass without checking TXFF, which
    ///   the queue always accepts; once the buffer is empty `pl011_stop_tx`
    ///   masks TXIM and the line drops. A driver that waits for TXIS before
    ///   its first write finds it already raised.
    fn write_data(&mut self, value: u32) {
        let [byte, ..] = value.to_le_bytes();
        if self.output.len() >= TX_QUEUE_BYTES {
            // The guest outran the console: never block it (TXFF stays
            // clear, see above) and keep the newest output, like the console
            // multiplexer does for a background personality.
            self.output.pop_front();
            self.output_dropped = self.output_dropped.saturating_add(1);
        }
        self.output.push_back(byte);
        self.raw_interrupts.modify(INT::TX::SET);
    }
}

impl MmioDevice for SbsaUart {
    fn read(&mut self, offset: u64, width: Width) -> Result<u64, DevError> {
        let register = UartReg::try_from(offset)?;
        register.check_width(width)?;
        let value = match register {
            UartReg::Dr => self.read_data(),
            // No receive errors are ever recorded (see `read_data`).
            UartReg::RsrEcr => 0,
            UartReg::Fr => self.flags(),
            UartReg::Ilpr => self.ilpr,
            UartReg::Ibrd => self.ibrd,
            UartReg::Fbrd => self.fbrd,
            UartReg::LcrH => self.lcr_h,
            UartReg::Cr => self.cr,
            UartReg::Ifls => self.ifls,
            UartReg::Imsc => self.interrupt_mask.get(),
            UartReg::Ris => self.raw_interrupts.get(),
            UartReg::Mis => self.masked_interrupts(),
            // ICR is write-only; Linux reads it only as a delay (ST variants'
            // `check_apply_cts_event_workaround`), so it reads as zero.
            UartReg::Icr => 0,
            UartReg::Dmacr => self.dmacr,
            UartReg::PeriphId0 => PERIPH_ID[0],
            UartReg::PeriphId1 => PERIPH_ID[1],
            UartReg::PeriphId2 => PERIPH_ID[2],
            UartReg::PeriphId3 => PERIPH_ID[3],
            UartReg::CellId0 => CELL_ID[0],
            UartReg::CellId1 => CELL_ID[1],
            UartReg::CellId2 => CELL_ID[2],
            UartReg::CellId3 => CELL_ID[3],
        };
        Ok(u64::from(truncate(u64::from(value), width)))
    }

    fn write(&mut self, offset: u64, width: Width, value: u64) -> Result<(), DevError> {
        let register = UartReg::try_from(offset)?;
        register.check_width(width)?;
        let value = truncate(value, width);
        match register {
            UartReg::Dr => self.write_data(value),
            // A write to ECR clears the error flags, which are always clear.
            UartReg::RsrEcr => {}
            UartReg::Ilpr => self.ilpr = value & ILPR_BITS,
            UartReg::Ibrd => self.ibrd = value & IBRD_BITS,
            UartReg::Fbrd => self.fbrd = value & FBRD_BITS,
            UartReg::LcrH => self.lcr_h = value & LCR_H_BITS,
            UartReg::Cr => self.cr = value & CR_BITS,
            UartReg::Ifls => self.ifls = value & IFLS_BITS,
            UartReg::Imsc => self.interrupt_mask.set(value & INT_ALL),
            // Write 1 to clear (TRM, UARTICR); Linux writes 0xffff, and bits
            // above OE are reserved.
            UartReg::Icr => {
                let cleared = self.raw_interrupts.get() & !(value & INT_ALL);
                self.raw_interrupts.set(cleared);
            }
            UartReg::Dmacr => self.dmacr = value & DMACR_BITS,
            // Read-only registers ignore writes: ST's variant of the Linux
            // driver writes MIS as a delay loop in `pl011_write_lcr_h`.
            UartReg::Fr
            | UartReg::Ris
            | UartReg::Mis
            | UartReg::PeriphId0
            | UartReg::PeriphId1
            | UartReg::PeriphId2
            | UartReg::PeriphId3
            | UartReg::CellId0
            | UartReg::CellId1
            | UartReg::CellId2
            | UartReg::CellId3 => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

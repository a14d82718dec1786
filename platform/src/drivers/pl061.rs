//! Arm PL061 GPIO controller: the board's hardware key (the virt board's
//! power button is line 3), read as an embedded-hal input pin and through
//! its edge interrupt.

use core::ptr::NonNull;

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    /// PL061 registers (PL061 TRM, table 3-1).
    pub Pl061Registers {
        /// GPIODATA: address bits [9:2] mask which lines a read returns, so
        /// line n alone reads at offset (1 << n) << 2.
        (0x000 => data: [ReadWrite<u32>; 256]),
        (0x400 => dir: ReadWrite<u32>),
        (0x404 => is: ReadWrite<u32>),
        (0x408 => ibe: ReadWrite<u32>),
        (0x40c => iev: ReadWrite<u32>),
        (0x410 => ie: ReadWrite<u32>),
        (0x414 => ris: ReadOnly<u32>),
        (0x418 => mis: ReadOnly<u32>),
        (0x41c => ic: WriteOnly<u32>),
        (0x420 => afsel: ReadWrite<u32>),
        (0x424 => @END),
    }
}

/// A PL061 with one line used as an input key.
pub struct Pl061 {
    registers: NonNull<Pl061Registers>,
    line: u8,
}

// SAFETY: the driver holds the only pointer to its registers (see `new`).
unsafe impl Send for Pl061 {}

/// Lines a PL061 has.
const LINES: u8 = 8;

impl Pl061 {
    /// Takes over the PL061 at `base`, with `line` as the key.
    ///
    /// # Safety
    /// `base` must be the address of a PL061's registers, mapped as Device
    /// memory, and no other code may access them while this driver exists.
    pub unsafe fn new(base: usize, line: u8) -> Pl061 {
        Pl061 {
            // SAFETY: the caller guarantees `base` is a valid, non-null MMIO address.
            registers: unsafe { NonNull::new_unchecked(base as *mut Pl061Registers) },
            line: line % LINES,
        }
    }

    fn regs(&self) -> &Pl061Registers {
        // SAFETY: `new`'s contract: the registers are mapped and exclusively ours;
        // tock-registers cells perform volatile accesses only.
        unsafe { self.registers.as_ref() }
    }

    fn mask(&self) -> u32 {
        1 << self.line
    }

    /// Makes the key line an input that interrupts on its rising edge (a press).
    pub fn enable_press_interrupt(&mut self) {
        let mask = self.mask();
        let regs = self.regs();
        regs.dir.set(regs.dir.get() & !mask);
        regs.afsel.set(regs.afsel.get() & !mask);
        // Edge-sensitive (IS = 0), one edge only (IBE = 0), rising (IEV = 1).
        regs.is.set(regs.is.get() & !mask);
        regs.ibe.set(regs.ibe.get() & !mask);
        regs.iev.set(regs.iev.get() | mask);
        regs.ic.set(mask);
        regs.ie.set(regs.ie.get() | mask);
    }

    /// Whether a press has been latched since the last call; clears it.
    pub fn take_press(&mut self) -> bool {
        let mask = self.mask();
        let regs = self.regs();
        let pressed = regs.mis.get() & mask != 0;
        regs.ic.set(mask);
        pressed
    }

    /// The key line's level, through GPIODATA's address mask.
    fn level(&self) -> bool {
        let index = usize::from(1u8 << self.line);
        self.regs()
            .data
            .get(index)
            .is_some_and(|data| data.get() & self.mask() != 0)
    }
}

impl embedded_hal::digital::ErrorType for Pl061 {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::InputPin for Pl061 {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(self.level())
    }

    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.level())
    }
}

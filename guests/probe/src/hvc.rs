//! Calls to Janus (HVC) and, for the attacks, SMC to the firmware.

use core::arch::asm;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

/// Janus' console write hypercall.
pub const CONSOLE_WRITE: u64 = 0xC600_0001;
/// Janus' null hypercall.
pub const NULL: u64 = 0xC600_0002;
/// Janus' version hypercall.
pub const VERSION: u64 = 0xC600_0000;
/// PSCI function IDs (DEN0022).
pub const PSCI_CPU_ON: u64 = 0xC400_0003;
pub const PSCI_AFFINITY_INFO: u64 = 0xC400_0004;
pub const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
pub const PSCI_SYSTEM_RESET: u64 = 0x8400_0009;

/// An HVC with up to four arguments; returns x0.
pub fn hvc(function: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let result: u64;
    // SAFETY: HVC transfers to Janus, which only writes x0-x3.
    unsafe {
        asm!("hvc #0", inout("x0") function => result, inout("x1") a1 => _,
             inout("x2") a2 => _, inout("x3") a3 => _, options(nostack));
    }
    result as i64
}

/// An SMC with up to four arguments; returns x0.
pub fn smc(function: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let result: u64;
    // SAFETY: Janus traps SMC and answers it like an HVC.
    unsafe {
        asm!("smc #0", inout("x0") function => result, inout("x1") a1 => _,
             inout("x2") a2 => _, inout("x3") a3 => _, options(nostack));
    }
    result as i64
}

/// The virt board's PL011 data register, for [`use_uart`].
const PL011_DR: u64 = 0x0900_0000;

/// Whether the probe prints straight to the PL011 (`probe.console=uart`).
static UART: AtomicBool = AtomicBool::new(false);

/// Prints through the board's PL011 from now on instead of Janus' hypercall:
/// for a native run on QEMU alone (no Janus to print for it). Under Janus the
/// physical UART is not the probe's, so a test never asks for it there.
pub fn use_uart() {
    UART.store(true, Ordering::Relaxed);
}

/// Writes `bytes` through the console hypercall (or the PL011, see [`use_uart`]).
pub fn console_write(bytes: &[u8]) -> i64 {
    if UART.load(Ordering::Relaxed) {
        for &byte in bytes {
            // SAFETY: a store to the PL011's data register, which only `use_uart`
            // (a native run, where the UART is this guest's) makes us touch; QEMU's
            // PL011 takes bytes without set-up.
            unsafe {
                core::ptr::write_volatile(PL011_DR as *mut u32, u32::from(byte));
            }
        }
        return bytes.len() as i64;
    }
    hvc(CONSOLE_WRITE, bytes.as_ptr() as u64, bytes.len() as u64, 0)
}

/// A line buffer that goes out through the console hypercall.
pub struct Console {
    buffer: [u8; 160],
    len: usize,
}

impl Console {
    pub const fn new() -> Console {
        Console {
            buffer: [0; 160],
            len: 0,
        }
    }

    pub fn flush(&mut self) {
        if self.len > 0 {
            console_write(&self.buffer[..self.len]);
            self.len = 0;
        }
    }
}

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for &byte in text.as_bytes() {
            if self.len == self.buffer.len() {
                self.flush();
            }
            self.buffer[self.len] = byte;
            self.len += 1;
            if byte == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Prints a line prefixed with the personality's name.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut console = $crate::hvc::Console::new();
        let _ = write!(console, "{}: ", $crate::probe::name());
        let _ = writeln!(console, $($arg)*);
        console.flush();
    }};
}

//! The physical console UART: Janus' output, and the keys typed for the personalities.

use aarch64_cpu::registers::{Readable, CNTFRQ_EL0, CNTPCT_EL0};
use platform::drivers::pl011::Pl011;
use spin::Mutex;

use super::hyp_timer;

/// The board's PL011. Set once at boot; then every CPU writes through it (console
/// lines) and the CPU that takes its interrupt reads it, under this lock. Lock
/// order: `console`'s sink lock, then this one.
static UART: Mutex<Option<Pl011>> = Mutex::new(None);

/// Takes over the PL011 at `base` and makes it the console.
///
/// # Safety
/// `base` must be the board's PL011, mapped as Device memory, used by nothing else.
pub unsafe fn install(base: u64) {
    // SAFETY: forwarded from the caller.
    let mut uart = unsafe { Pl011::new(base as usize) };
    uart.init();
    *UART.lock() = Some(uart);
    crate::console::install(crate::console::Hardware {
        write: write_bytes,
        now: || CNTPCT_EL0.get(),
        frequency: CNTFRQ_EL0.get(),
        wake_at: hyp_timer::wake_at,
    });
}

/// Turns on the receive interrupt, once someone listens for keys.
pub fn enable_input() {
    if let Some(uart) = UART.lock().as_mut() {
        uart.enable_receive_interrupt();
    }
}

/// Reads what has been typed into `buffer`; returns how many bytes.
pub fn read_input(buffer: &mut [u8]) -> usize {
    let mut guard = UART.lock();
    let Some(uart) = guard.as_mut() else {
        return 0;
    };
    // Acknowledge first, then drain: a byte that arrives after the last read
    // raises the interrupt again. Clearing after draining could swallow it and
    // leave it in the FIFO for ever.
    uart.clear_receive_interrupt();
    let mut count = 0;
    for slot in buffer.iter_mut() {
        match uart.read_byte() {
            Some(byte) => {
                *slot = byte;
                count += 1;
            }
            None => break,
        }
    }
    count
}

/// Writes bytes to the console UART as they are (the console multiplexer
/// puts in the carriage returns its lines need).
pub fn write_bytes(bytes: &[u8]) {
    if let Some(uart) = UART.lock().as_mut() {
        for &byte in bytes {
            uart.write_byte(byte);
        }
    }
}

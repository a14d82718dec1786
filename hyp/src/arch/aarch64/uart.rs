//! The physical console UART: Janus' output, and the keys typed for the personalities.

use alloc::boxed::Box;
use core::fmt;

use platform::drivers::pl011::Pl011;
use spin::Mutex;

/// The board's PL011. Set once at boot; then every CPU writes through it (console
/// lines) and the CPU that takes its interrupt reads it, under this lock. Lock
/// order: `console`'s sink lock, then this one.
static UART: Mutex<Option<Pl011>> = Mutex::new(None);

/// The console sink: writes go to the PL011.
struct UartSink;

impl fmt::Write for UartSink {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        match UART.lock().as_mut() {
            Some(uart) => uart.write_str(text),
            None => Ok(()),
        }
    }
}

/// Takes over the PL011 at `base` and makes it the console.
///
/// # Safety
/// `base` must be the board's PL011, mapped as Device memory, used by nothing else.
pub unsafe fn install(base: u64) {
    // SAFETY: forwarded from the caller.
    let mut uart = unsafe { Pl011::new(base as usize) };
    uart.init();
    *UART.lock() = Some(uart);
    crate::console::install(Box::new(UartSink));
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

/// Writes raw bytes (a personality's output) to the console UART.
pub fn write_bytes(bytes: &[u8]) {
    if let Some(uart) = UART.lock().as_mut() {
        for &byte in bytes {
            uart.write_byte(byte);
        }
    }
}

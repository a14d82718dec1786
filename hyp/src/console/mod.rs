//! Janus' console: its own `[janus]` lines and the personalities' output, one
//! whole line at a time so that lines from different CPUs never interleave.
#![forbid(unsafe_code)]

use alloc::boxed::Box;
use core::fmt::{self, Write};

use spin::Mutex;

/// Prefix of every line Janus itself prints (a contract the tests rely on).
pub const PREFIX: &str = "[janus] ";

/// Where console text goes; the boot code installs the board's UART.
/// Written once at boot by the boot CPU, then used by every CPU under this lock.
static SINK: Mutex<Option<Box<dyn Write + Send>>> = Mutex::new(None);

/// Installs the console device.
pub fn install(sink: Box<dyn Write + Send>) {
    *SINK.lock() = Some(sink);
}

/// Prints `[janus] <message>` on its own line.
pub fn report(message: fmt::Arguments) {
    let mut sink = SINK.lock();
    if let Some(sink) = sink.as_mut() {
        // A console that fails to write has nowhere to report it: drop the line.
        let _ = writeln!(sink, "{PREFIX}{message}");
    }
}

/// Prints one line of a personality's output as it is.
pub fn guest_line(line: &[u8]) {
    let mut sink = SINK.lock();
    if let Some(sink) = sink.as_mut() {
        for chunk in line.utf8_chunks() {
            let _ = sink.write_str(chunk.valid());
            if !chunk.invalid().is_empty() {
                let _ = sink.write_char(char::REPLACEMENT_CHARACTER);
            }
        }
        let _ = sink.write_char('\n');
    }
}

/// Prints a panic report without waiting for the console lock, which the
/// panicking code may hold.
pub fn emergency(message: fmt::Arguments) {
    if let Some(mut sink) = SINK.try_lock() {
        if let Some(sink) = sink.as_mut() {
            let _ = writeln!(sink, "{PREFIX}PANIC: {message}");
        }
    }
}

/// `janus_println!("...")` prints a `[janus]` line.
#[macro_export]
macro_rules! janus_println {
    ($($arg:tt)*) => {
        $crate::console::report(format_args!($($arg)*))
    };
}

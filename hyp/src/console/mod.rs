//! Janus' console: its own `[janus]` lines and the personalities' output, one
//! whole line at a time so that lines from different CPUs never interleave.
#![forbid(unsafe_code)]

pub mod hotkey;
pub mod mux;

use alloc::boxed::Box;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

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

/// Whether the last byte a personality's raw output put on the console was
/// not a newline: Janus then starts its own line on a fresh one.
static MID_LINE: AtomicBool = AtomicBool::new(false);

/// Prints `[janus] <message>` on its own line.
pub fn report(message: fmt::Arguments) {
    let mut sink = SINK.lock();
    if let Some(sink) = sink.as_mut() {
        if MID_LINE.swap(false, Ordering::Relaxed) {
            let _ = sink.write_char('\n');
        }
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

/// Where raw personality output goes (the console UART); set once at boot.
static RAW: spin::Once<fn(&[u8])> = spin::Once::new();

/// The hotkey parser and the multiplexer. Set up once at boot; then used under
/// this lock by whichever CPU handles a UART access or typed input.
static MUX: Mutex<Option<(hotkey::Hotkey, mux::Mux)>> = Mutex::new(None);

/// Bytes of background output kept per personality.
pub const BACKGROUND_BUFFER_BYTES: usize = 64 * 1024;

/// Sets the raw output path and the personalities the multiplexer switches
/// between (the first is in the foreground).
pub fn init_mux(raw: fn(&[u8]), names: &[&str]) {
    RAW.call_once(|| raw);
    *MUX.lock() = Some((
        hotkey::Hotkey::new(),
        mux::Mux::new(names, BACKGROUND_BUFFER_BYTES),
    ));
}

/// Puts bytes from the multiplexer on the console: a personality's output, or
/// one of the multiplexer's own `[janus]` lines, which starts on a fresh line.
/// Under the sink's lock, so that no `[janus]` line another CPU prints is cut
/// by a personality's bytes (a line is written in several pieces).
fn raw_out(bytes: &[u8]) {
    if let Some(raw) = RAW.get() {
        let _sink = SINK.lock();
        if bytes.starts_with(PREFIX.as_bytes()) && MID_LINE.load(Ordering::Relaxed) {
            raw(b"\r\n");
        }
        raw(bytes);
        if let Some(&last) = bytes.last() {
            MID_LINE.store(last != b'\n', Ordering::Relaxed);
        }
    }
}

/// A personality's UART output: shown now if it is in the foreground, kept otherwise.
pub fn uart_output(personality: usize, bytes: &[u8]) {
    if let Some((_, mux)) = MUX.lock().as_mut() {
        mux.guest_output(personality, bytes, &mut raw_out);
    }
}

/// Brings the next personality to the foreground (the hardware key).
pub fn next_foreground() {
    if let Some((_, mux)) = MUX.lock().as_mut() {
        mux.next(&mut raw_out);
    }
}

/// The foreground personality.
pub fn foreground() -> usize {
    MUX.lock().as_ref().map_or(0, |(_, mux)| mux.foreground())
}

/// What typed input asks of the rest of Janus.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Input {
    /// Bytes for the foreground personality (which is `foreground`).
    pub bytes: alloc::vec::Vec<u8>,
    /// The foreground personality after this input.
    pub foreground: usize,
    /// The user asked for statistics.
    pub stats: bool,
}

/// Runs typed bytes through the hotkey parser: switches and help happen here,
/// the rest comes back for the foreground personality.
pub fn input(typed: &[u8]) -> Input {
    let mut result = Input::default();
    let mut guard = MUX.lock();
    let Some((hotkey, mux)) = guard.as_mut() else {
        return result;
    };
    for &byte in typed {
        match hotkey.feed(byte) {
            hotkey::Feed::Pass(byte) => result.bytes.push(byte),
            hotkey::Feed::PassTwo(first, second) => result.bytes.extend([first, second]),
            hotkey::Feed::Hold => {}
            hotkey::Feed::Command(command) => {
                // Bytes typed before a switch belong to the old foreground: a
                // switch is rare enough that dropping them is acceptable.
                result.bytes.clear();
                match command {
                    hotkey::Command::Next => mux.next(&mut raw_out),
                    hotkey::Command::Select(index) => mux.switch_to(index, &mut raw_out),
                    hotkey::Command::Help => raw_out(hotkey::HELP.as_bytes()),
                    hotkey::Command::Stats => {
                        mux.stats(&mut raw_out);
                        result.stats = true;
                    }
                }
            }
        }
    }
    result.foreground = mux.foreground();
    result
}

//! Janus' console: its own `[janus]` lines and the personalities' output,
//! through one multiplexer under one fair lock, so that lines from different
//! CPUs never interleave and no personality can hold the console.
#![forbid(unsafe_code)]

pub mod guard;
pub mod hotkey;
pub mod list;
pub mod mux;
pub mod ratelimit;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use spin::mutex::TicketMutex;
use spin::{Mutex, Once};

use mux::{Mux, Urgency};
use ratelimit::{Cause, ReportLimiter, Summary, Verdict};

/// Prefix of every line Janus itself prints (a contract the tests rely on).
pub const PREFIX: &str = "[janus] ";

/// Bytes of background output kept per personality.
pub const BACKGROUND_BUFFER_BYTES: usize = 64 * 1024;

/// How long a Janus line waits for the foreground's line to end, and guest
/// bytes that may begin a forged Janus line wait for the next ones, in
/// milliseconds: short enough to read as immediate, long enough for a line
/// being printed to end.
pub const DEFER_MS: u64 = 100;

/// What the console needs from the board: where bytes go, and a clock.
#[derive(Clone, Copy, Debug)]
pub struct Hardware {
    /// Writes bytes to the physical console as they are.
    pub write: fn(&[u8]),
    /// The counter's value now.
    pub now: fn() -> u64,
    /// The counter's frequency in Hz.
    pub frequency: u64,
    /// Asks for [`tick`] to be called at (or soon after) this counter value.
    pub wake_at: fn(u64),
}

/// The console's state.
struct Console {
    hardware: Hardware,
    hotkey: hotkey::Hotkey,
    mux: Mux,
}

/// Written once at boot by the boot CPU, then used by every CPU under this
/// lock, which serves CPUs in the order they asked, so a personality whose
/// vCPUs print in a loop cannot keep the others' output (or Janus') waiting.
/// Lock order: this lock, then the UART driver's.
static CONSOLE: TicketMutex<Option<Console>> = TicketMutex::new(None);

/// The board's console hardware, set once at boot: the clock for rate limits
/// without taking the console lock, and the raw output path for a panic
/// report when the lock cannot be had.
static HARDWARE: Once<Hardware> = Once::new();

/// Installs the console device. Janus' lines can be printed from then on;
/// the personalities come with [`init_mux`].
pub fn install(hardware: Hardware) {
    HARDWARE.call_once(|| hardware);
    let defer_ticks = hardware.frequency.saturating_mul(DEFER_MS) / 1000;
    *CONSOLE.lock() = Some(Console {
        hardware,
        hotkey: hotkey::Hotkey::new(),
        mux: Mux::new(&[], BACKGROUND_BUFFER_BYTES, defer_ticks),
    });
}

/// Sets the personalities the multiplexer switches between (the first is in
/// the foreground), keeping what the console showed so far.
pub fn init_mux(names: &[&str]) {
    if let Some(console) = CONSOLE.lock().as_mut() {
        let defer_ticks = console.hardware.frequency.saturating_mul(DEFER_MS) / 1000;
        console.mux = Mux::new(names, BACKGROUND_BUFFER_BYTES, defer_ticks);
    }
}

/// What runs under the console lock: the multiplexer, the counter's value,
/// and where bytes go.
type ConsoleAction<'a> = dyn FnMut(&mut Mux, u64, &mut dyn FnMut(&[u8])) + 'a;

/// Runs `action` on the multiplexer with the counter's value and an output
/// function, then asks for a tick when something waits. Not generic, so that
/// the console's entry points share one copy of it.
#[inline(never)]
fn with_console(action: &mut ConsoleAction) {
    let mut guard = CONSOLE.lock();
    let Some(console) = guard.as_mut() else {
        return;
    };
    let hardware = console.hardware;
    let mut out = |bytes: &[u8]| (hardware.write)(bytes);
    action(&mut console.mux, (hardware.now)(), &mut out);
    if let Some(deadline) = console.mux.next_deadline() {
        (hardware.wake_at)(deadline);
    }
}

/// Prints `[janus] <message>` on its own line, between two lines of the
/// foreground's output.
pub fn report(message: fmt::Arguments) {
    report_with(Urgency::Deferred, message);
}

/// Prints `[janus]` lines the user asked for (the statistics): at once,
/// breaking into an unfinished line, which is shown again after the last.
pub fn answer(lines: &[String]) {
    with_console(&mut |mux, now, out| {
        for line in lines {
            mux.janus_line(line, Urgency::Now, now, out);
        }
        mux.settle(out);
    });
}

fn report_with(urgency: Urgency, message: fmt::Arguments) {
    let mut text = String::new();
    // Formatting into a String cannot fail but for a Display impl's error.
    let _ = text.write_fmt(message);
    with_console(&mut |mux, now, out| {
        for line in text.split('\n') {
            mux.janus_line(line.trim_end_matches('\r'), urgency, now, out);
        }
    });
}

/// Prints a panic report without waiting for the console lock, which the
/// panicking code may hold: through the lock if it is free, else straight to
/// the UART.
pub fn emergency(message: fmt::Arguments) {
    let mut text = String::from("\r\n");
    text.push_str(PREFIX);
    let _ = write!(text, "PANIC: {message}\r\n");
    if let Some(mut guard) = CONSOLE.try_lock() {
        if let Some(console) = guard.as_mut() {
            (console.hardware.write)(text.as_bytes());
            return;
        }
    }
    if let Some(hardware) = HARDWARE.get() {
        (hardware.write)(text.as_bytes());
    }
}

/// Prints a report that personality `name`'s guest caused, within the rate
/// limits in `reports` (`ratelimit.rs`); a report not shown costs only the
/// count, and the console lock is not taken for it.
pub fn guest_report(
    reports: &Mutex<Option<ReportLimiter>>,
    name: &str,
    cause: Cause,
    message: fmt::Arguments,
) {
    let Some(hardware) = HARDWARE.get() else {
        return;
    };
    let now = (hardware.now)();
    let verdict = reports
        .lock()
        .get_or_insert_with(|| ReportLimiter::new(hardware.frequency, now))
        .admit(cause, now);
    match verdict {
        Verdict::Show { suppressed } => {
            if suppressed != 0 {
                report(format_args!(
                    "{}",
                    Summary {
                        name,
                        cause,
                        count: suppressed
                    }
                ));
            }
            report(message);
        }
        Verdict::Suppress { wake_at } => {
            if let Some(deadline) = wake_at {
                (hardware.wake_at)(deadline);
            }
        }
    }
}

/// Prints the summaries of suppressed reports that have fallen due (the
/// console's timer fired), and asks for the timer again if more are waiting.
pub fn report_due(reports: &Mutex<Option<ReportLimiter>>, name: &str) {
    let Some(hardware) = HARDWARE.get() else {
        return;
    };
    let now = (hardware.now)();
    let (due, next): (Vec<(Cause, u64)>, Option<u64>) = {
        let mut slot = reports.lock();
        let Some(limiter) = slot.as_mut() else {
            return;
        };
        let due = limiter.due_summaries(now).collect();
        (due, limiter.next_due())
    };
    for (cause, count) in due {
        report(format_args!("{}", Summary { name, cause, count }));
    }
    if let Some(deadline) = next {
        (hardware.wake_at)(deadline);
    }
}

/// Prints every count of suppressed reports now (the personality stopped, or
/// the board powers off), so that shown and summarised reports add up.
pub fn report_all_suppressed(reports: &Mutex<Option<ReportLimiter>>, name: &str) {
    let due: Vec<(Cause, u64)> = match reports.lock().as_mut() {
        Some(limiter) => limiter.take_all_summaries().collect(),
        None => return,
    };
    for (cause, count) in due {
        report(format_args!("{}", Summary { name, cause, count }));
    }
}

/// Every report of each cause `reports` counted, in [`Cause::ALL`] order.
pub fn report_totals(reports: &Mutex<Option<ReportLimiter>>) -> [u64; ratelimit::CAUSES] {
    let slot = reports.lock();
    Cause::ALL.map(|cause| slot.as_ref().map_or(0, |limiter| limiter.total(cause)))
}

/// `janus_println!("...")` prints a `[janus]` line.
#[macro_export]
macro_rules! janus_println {
    ($($arg:tt)*) => {
        $crate::console::report(format_args!($($arg)*))
    };
}

/// Output of a personality (its UART or the console hypercall): shown now if
/// it is in the foreground, kept otherwise, never able to forge a Janus line.
pub fn guest_output(personality: usize, bytes: &[u8]) {
    with_console(&mut |mux, now, out| mux.guest_output(personality, bytes, now, out));
}

/// What is due on the console: held guest bytes and waiting Janus lines.
/// Called when the deadline [`Hardware::wake_at`] was asked for has come.
pub fn tick() {
    with_console(&mut |mux, now, out| {
        mux.tick(now, out);
    });
}

/// A personality started again from its image.
pub fn restarted(personality: usize) {
    with_console(&mut |mux, _, _| mux.restarted(personality));
}

/// The board powers off: shows everything still waiting, the background
/// personalities' buffered output included.
pub fn drain() {
    with_console(&mut |mux, now, out| mux.drain(now, out));
}

/// Brings the next personality to the foreground (the hardware key).
pub fn next_foreground() {
    with_console(&mut |mux, now, out| mux.next(now, out));
}

/// The foreground personality.
pub fn foreground() -> usize {
    CONSOLE
        .lock()
        .as_ref()
        .map_or(0, |console| console.mux.foreground())
}

/// The multiplexer's statistics lines (without the prefix).
pub fn stats() -> Vec<String> {
    CONSOLE
        .lock()
        .as_ref()
        .map_or_else(Vec::new, |console| console.mux.stats())
}

/// What typed input asks of the rest of Janus.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Input {
    /// Bytes for the foreground personality (which is `foreground`).
    pub bytes: Vec<u8>,
    /// The foreground personality after this input.
    pub foreground: usize,
    /// The user asked for statistics.
    pub stats: bool,
    /// The user asked for the last audit records (the caller prints them: the
    /// log lives with the channel, not the console).
    pub audit: bool,
}

/// Runs typed bytes through the hotkey parser: switches and help happen here,
/// the rest comes back for the foreground personality.
pub fn input(typed: &[u8]) -> Input {
    let mut result = Input::default();
    let mut guard = CONSOLE.lock();
    let Some(console) = guard.as_mut() else {
        return result;
    };
    let hardware = console.hardware;
    let clock = (hardware.now)();
    let mut out = |bytes: &[u8]| (hardware.write)(bytes);
    for &byte in typed {
        match console.hotkey.feed(byte) {
            hotkey::Feed::Pass(byte) => result.bytes.push(byte),
            hotkey::Feed::PassTwo(first, second) => result.bytes.extend([first, second]),
            hotkey::Feed::Hold => {}
            hotkey::Feed::Command(command) => {
                // Bytes typed before a switch belong to the old foreground: a
                // switch is rare enough that dropping them is acceptable.
                result.bytes.clear();
                match command {
                    hotkey::Command::Next => console.mux.next(clock, &mut out),
                    hotkey::Command::Select(index) => {
                        console.mux.switch_to(index, clock, &mut out);
                    }
                    hotkey::Command::Help => {
                        for line in hotkey::HELP_LINES {
                            console.mux.janus_line(line, Urgency::Now, clock, &mut out);
                        }
                        console.mux.settle(&mut out);
                    }
                    hotkey::Command::Stats => {
                        for line in console.mux.stats() {
                            console.mux.janus_line(&line, Urgency::Now, clock, &mut out);
                        }
                        result.stats = true;
                    }
                    hotkey::Command::Audit => result.audit = true,
                }
            }
        }
    }
    result.foreground = console.mux.foreground();
    result
}

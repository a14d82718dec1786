//! Wall-clock time for the audit log: the board's PL031 read once at boot,
//! carried forward by the generic timer's counter (the PL031 counts whole
//! seconds). Without an RTC the clock starts at the epoch and says so.

use aarch64_cpu::registers::{Readable, CNTFRQ_EL0, CNTPCT_EL0};
use spin::{Mutex, Once};

use platform::drivers::pl031::Pl031;

use crate::arch::aarch64::mmu;
use crate::channel::audit::clock::WallClock;
use crate::channel::fs::Timespec;
use crate::janus_println;

/// The PL031's window.
const PL031_BYTES: u64 = 0x1000;

static CLOCK: Once<Mutex<WallClock>> = Once::new();

/// Reads the RTC at `base` (from the boot DT) once. Call on the boot CPU.
pub fn init(base: Option<u64>) {
    CLOCK.call_once(|| {
        let counter = CNTPCT_EL0.get();
        let seconds = match base.filter(|&base| mmu::in_device_map(base, PL031_BYTES)) {
            Some(base) => {
                // SAFETY: the boot DT names a PL031 at `base`, inside the Device
                // memory of Janus' map (checked above); nothing else in Janus
                // touches it and no guest is given it.
                let mut rtc = unsafe { Pl031::new(base as usize) };
                rtc.init();
                let seconds = u64::from(rtc.seconds());
                janus_println!("wall clock: PL031 at {base:#x}, {seconds} s since 1970");
                seconds
            }
            None => {
                janus_println!("wall clock: no PL031; audit times count from 1970-01-01");
                0
            }
        };
        Mutex::new(WallClock::new(seconds, counter, CNTFRQ_EL0.get()))
    });
}

/// The time now (the epoch before `init`).
pub fn now() -> Timespec {
    CLOCK.get().map_or_else(Timespec::default, |clock| {
        clock.lock().now(CNTPCT_EL0.get())
    })
}

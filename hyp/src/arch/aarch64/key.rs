//! The board's hardware key (the virt board's power button on PL061 line 3):
//! each press brings the next personality to the foreground.

use platform::drivers::pl061::Pl061;
use spin::{Mutex, Once};

use crate::board::HardwareKey;

/// The key's GPIO controller. Set once at boot, then used under this lock by
/// the CPU that takes its interrupt.
static KEY: Mutex<Option<Pl061>> = Mutex::new(None);
/// The INTID of the key's interrupt, once installed.
static INTID: Once<u32> = Once::new();

/// Takes over the key's PL061 and arms its press interrupt.
///
/// # Safety
/// `key.base` must be the board's PL061, mapped as Device memory, used by nothing else.
pub unsafe fn install(key: HardwareKey) {
    // SAFETY: forwarded from the caller.
    let mut gpio = unsafe { Pl061::new(key.base as usize, key.line) };
    gpio.enable_press_interrupt();
    *KEY.lock() = Some(gpio);
    INTID.call_once(|| super::gic::spi_intid(key.spi));
}

/// Whether `intid` is the key's interrupt.
pub fn is_key_interrupt(intid: u32) -> bool {
    INTID.get() == Some(&intid)
}

/// Whether the key was pressed since the last call (clears the latch, so the
/// level-sensitive interrupt drops).
pub fn take_press() -> bool {
    KEY.lock().as_mut().is_some_and(Pl061::take_press)
}

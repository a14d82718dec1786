//! The driver side of the virtio-mmio transport and of queue 0: registers (spec
//! 4.2.2), device initialisation (3.1.1), descriptors and rings (2.7), one request
//! at a time with a bounded wait.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use super::memory::{
    at, fill_pattern, has_pattern, layout, ram, ram_owned, write_descriptor, write_header,
};
use super::{
    status, DESC_NEXT, DESC_WRITE, F_FLUSH, F_VERSION_1, MAX_POLLS, QUEUE_SIZE, REQUEST_TIMEOUT_MS,
    SCRATCH_SECTOR, SECTOR, STATUS_UNWRITTEN, S_IOERR, S_OK, S_UNSUPP, T_IN, T_OUT, WINDOW,
};
use crate::probe::{counter, faults};

/// The control registers the probe uses, by offset (spec 4.2.2).
#[derive(Clone, Copy)]
#[repr(u64)]
pub(super) enum Register {
    MagicValue = 0x000,
    Version = 0x004,
    DeviceId = 0x008,
    DeviceFeatures = 0x010,
    DeviceFeaturesSel = 0x014,
    DriverFeatures = 0x020,
    DriverFeaturesSel = 0x024,
    QueueSel = 0x030,
    QueueNumMax = 0x034,
    QueueNum = 0x038,
    QueueReady = 0x044,
    QueueNotify = 0x050,
    InterruptStatus = 0x060,
    InterruptAck = 0x064,
    Status = 0x070,
    QueueDescLow = 0x080,
    QueueDescHigh = 0x084,
    QueueDriverLow = 0x090,
    QueueDriverHigh = 0x094,
    QueueDeviceLow = 0x0a0,
    QueueDeviceHigh = 0x0a4,
    ConfigGeneration = 0x0fc,
}

/// Offset of the device configuration space; `capacity` (le64) is its first field.
const CONFIG: u64 = 0x100;

/// A 32-bit MMIO read that survives an injected abort: `Err(ESR)` then.
pub(super) fn mmio_read(addr: u64) -> Result<u32, u64> {
    let record = faults();
    let before = record.count.load(Ordering::Acquire);
    let value: u32;
    // SAFETY: a load from the device window (or, without a device, an access Janus
    // refuses with an abort, which the vector records and skips); it touches no
    // memory of this program.
    unsafe { asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) value, options(nostack)) };
    if record.count.load(Ordering::Acquire) == before {
        Ok(value)
    } else {
        Err(record.esr.load(Ordering::Acquire))
    }
}

/// A 32-bit MMIO write, as [`mmio_read`].
pub(super) fn mmio_write(addr: u64, value: u32) -> Result<(), u64> {
    let record = faults();
    let before = record.count.load(Ordering::Acquire);
    // SAFETY: as for `mmio_read`; the ring writes before it are complete (DSB).
    unsafe {
        asm!("dsb sy", "str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value, options(nostack))
    };
    if record.count.load(Ordering::Acquire) == before {
        Ok(())
    } else {
        Err(record.esr.load(Ordering::Acquire))
    }
}

/// Orders the probe's memory accesses against the device's.
pub(super) fn barrier() {
    // SAFETY: a barrier has no effect besides ordering.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Why the device could not be brought up.
#[derive(Clone, Copy)]
pub(super) enum InitError {
    /// An access to the window was refused with an abort (ESR).
    Fault(u64),
    /// The device refused FEATURES_OK.
    FeaturesRefused,
    /// The device has no VERSION_1 (not a modern device).
    NotModern,
    /// QueueNumMax is 0.
    NoQueue,
    /// QueueReady read back 0 after being set.
    QueueRefused,
    /// DRIVER_OK did not stick.
    DriverOkRefused,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::Fault(esr) => write!(formatter, "access refused, ESR {esr:#x}"),
            InitError::FeaturesRefused => write!(formatter, "FEATURES_OK refused"),
            InitError::NotModern => write!(formatter, "no VERSION_1"),
            InitError::NoQueue => write!(formatter, "QueueNumMax is 0"),
            InitError::QueueRefused => write!(formatter, "QueueReady did not stick"),
            InitError::DriverOkRefused => write!(formatter, "DRIVER_OK did not stick"),
        }
    }
}

/// Where the driver puts the three parts of queue 0.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Rings {
    pub(super) descriptors: u64,
    pub(super) avail: u64,
    pub(super) used: u64,
}

impl Rings {
    /// The probe's own rings in [`AREA`].
    pub(super) fn own() -> Rings {
        Rings {
            descriptors: at(layout::DESCRIPTORS),
            avail: at(layout::AVAIL),
            used: at(layout::USED),
        }
    }
}

/// How a request ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Outcome {
    /// A used element came back; `status` is the status byte when the device wrote
    /// one (None: still [`STATUS_UNWRITTEN`], or there was no status byte).
    Done { status: Option<u8>, len: u32 },
    /// The device set DEVICE_NEEDS_RESET.
    NeedsReset,
    /// Neither within [`REQUEST_TIMEOUT_MS`].
    Timeout,
    /// The device refused to set the queue up (QueueReady or DRIVER_OK did not stick).
    SetupRefused,
}

impl Outcome {
    /// The `result=` word of an attack line.
    pub(super) fn word(self) -> &'static str {
        match self {
            Outcome::Done {
                status: Some(S_OK), ..
            } => "ok",
            Outcome::Done {
                status: Some(S_IOERR),
                ..
            } => "ioerr",
            Outcome::Done {
                status: Some(S_UNSUPP),
                ..
            } => "unsupp",
            Outcome::Done {
                status: Some(_), ..
            } => "bad-status",
            Outcome::Done { status: None, .. } => "dropped",
            Outcome::NeedsReset => "needs-reset",
            Outcome::Timeout => "timeout",
            Outcome::SetupRefused => "setup-refused",
        }
    }

    /// Whether the device said no: an error status, completing the chain without a
    /// status, or stopping itself. Neither success nor silence is a refusal.
    pub(super) fn refused(self) -> bool {
        !matches!(
            self,
            Outcome::Done {
                status: Some(S_OK),
                ..
            } | Outcome::Timeout
        )
    }

    /// Whether the request succeeded.
    pub(super) fn ok(self) -> bool {
        matches!(
            self,
            Outcome::Done {
                status: Some(S_OK),
                ..
            }
        )
    }
}

/// One data buffer of a request.
#[derive(Clone, Copy)]
pub(super) struct Data {
    pub(super) addr: u64,
    pub(super) len: u32,
    /// The device writes it (IN, GET_ID) rather than reads it.
    pub(super) device_writes: bool,
}

/// The driver's state: the queue as set up, and its indices.
pub(super) struct Driver {
    pub(super) rings: Rings,
    /// QueueNum.
    pub(super) size: u16,
    /// QueueNumMax.
    pub(super) max_size: u32,
    /// The next free-running available index.
    pub(super) avail_idx: u16,
    /// The used index last consumed.
    pub(super) used_idx: u16,
    /// Features offered and accepted.
    pub(super) offered: u64,
    pub(super) accepted: u64,
    /// The volume's size in sectors (config space; meaningless for other devices).
    pub(super) capacity: u64,
    /// Device-specific features the driver accepts when offered (beyond
    /// VERSION_1 and, for the block device, FLUSH).
    pub(super) wanted: u64,
}

/// The window of the device being driven: the block device's unless a mode
/// points the driver at another one ([`set_window`]).
static BASE: AtomicU64 = AtomicU64::new(WINDOW);

/// Drives the virtio-mmio device at `window` from now on (vCPU 0 only).
pub(super) fn set_window(window: u64) {
    BASE.store(window, Ordering::Relaxed);
}

/// The window being driven.
pub(super) fn window() -> u64 {
    BASE.load(Ordering::Relaxed)
}

pub(super) fn register(register: Register) -> u64 {
    window() + register as u64
}

impl Driver {
    fn read(&self, which: Register) -> Result<u32, InitError> {
        mmio_read(register(which)).map_err(InitError::Fault)
    }

    fn write(&self, which: Register, value: u32) -> Result<(), InitError> {
        mmio_write(register(which), value).map_err(InitError::Fault)
    }

    /// The Status register (0 when it cannot be read).
    pub(super) fn status(&self) -> u32 {
        self.read(Register::Status).unwrap_or(0)
    }

    /// Whether the device has set DEVICE_NEEDS_RESET.
    pub(super) fn needs_reset(&self) -> bool {
        self.status() & status::DEVICE_NEEDS_RESET != 0
    }

    /// Resets the device and initialises it again (spec 3.1.1) with queue 0 at
    /// `rings`. Rings in the probe's own area are cleared first.
    pub(super) fn init(&mut self, rings: Rings) -> Result<(), InitError> {
        self.write(Register::Status, 0)?;
        // Spec 4.2.3.1: wait for the reset to finish (reads back 0).
        let mut polls = 0;
        while self.read(Register::Status)? != 0 {
            polls += 1;
            if polls > 1000 {
                return Err(InitError::DriverOkRefused);
            }
        }
        self.write(Register::Status, status::ACKNOWLEDGE)?;
        self.write(Register::Status, status::ACKNOWLEDGE | status::DRIVER)?;
        self.write(Register::DeviceFeaturesSel, 0)?;
        let low = self.read(Register::DeviceFeatures)?;
        self.write(Register::DeviceFeaturesSel, 1)?;
        let high = self.read(Register::DeviceFeatures)?;
        self.offered = u64::from(low) | (u64::from(high) << 32);
        if self.offered & F_VERSION_1 == 0 {
            return Err(InitError::NotModern);
        }
        self.accepted = self.offered & (F_VERSION_1 | F_FLUSH | self.wanted);
        self.write(Register::DriverFeaturesSel, 0)?;
        self.write(Register::DriverFeatures, self.accepted as u32)?;
        self.write(Register::DriverFeaturesSel, 1)?;
        self.write(Register::DriverFeatures, (self.accepted >> 32) as u32)?;
        let negotiating = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.write(Register::Status, negotiating)?;
        if self.read(Register::Status)? & status::FEATURES_OK == 0 {
            return Err(InitError::FeaturesRefused);
        }
        self.capacity = self.read_capacity()?;

        self.write(Register::QueueSel, 0)?;
        self.max_size = self.read(Register::QueueNumMax)?;
        if self.max_size == 0 {
            return Err(InitError::NoQueue);
        }
        // The largest power of two up to QUEUE_SIZE and QueueNumMax (split queue
        // sizes are powers of two).
        let mut size = QUEUE_SIZE;
        while u32::from(size) > self.max_size {
            size /= 2;
        }
        self.size = size;
        for (part, bytes) in [
            (rings.descriptors, 16 * usize::from(size)),
            (rings.avail, 6 + 2 * usize::from(size)),
            (rings.used, 6 + 8 * usize::from(size)),
        ] {
            if ram_owned(part, bytes) {
                ram::fill(part, bytes, 0);
            }
        }
        self.rings = rings;
        self.avail_idx = 0;
        self.used_idx = 0;
        self.write(Register::QueueNum, u32::from(size))?;
        for (low, high, addr) in [
            (
                Register::QueueDescLow,
                Register::QueueDescHigh,
                rings.descriptors,
            ),
            (
                Register::QueueDriverLow,
                Register::QueueDriverHigh,
                rings.avail,
            ),
            (
                Register::QueueDeviceLow,
                Register::QueueDeviceHigh,
                rings.used,
            ),
        ] {
            self.write(low, addr as u32)?;
            self.write(high, (addr >> 32) as u32)?;
        }
        self.write(Register::QueueReady, 1)?;
        if self.read(Register::QueueReady)? != 1 {
            return Err(InitError::QueueRefused);
        }
        self.write(Register::Status, negotiating | status::DRIVER_OK)?;
        if self.read(Register::Status)? & status::DRIVER_OK == 0 {
            return Err(InitError::DriverOkRefused);
        }
        Ok(())
    }

    /// `capacity` from configuration space, read until ConfigGeneration is stable
    /// (spec 4.2.2.2: a 64-bit field takes two 32-bit reads).
    fn read_capacity(&self) -> Result<u64, InitError> {
        loop {
            let before = self.read(Register::ConfigGeneration)?;
            let low = mmio_read(window() + CONFIG).map_err(InitError::Fault)?;
            let high = mmio_read(window() + CONFIG + 4).map_err(InitError::Fault)?;
            if self.read(Register::ConfigGeneration)? == before {
                return Ok(u64::from(low) | (u64::from(high) << 32));
            }
        }
    }

    /// Writes descriptor `index` of the probe's own table.
    /// Nothing is written when the table is not the probe's (a ring attack): the
    /// device then finds whatever lies there.
    pub(super) fn descriptor(&self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let entry = self.rings.descriptors + 16 * u64::from(index);
        if ram_owned(entry, 16) {
            write_descriptor(entry, addr, len, flags, next);
        }
    }

    /// Puts `entry` into the next available slot and moves the available index on
    /// by `advance` (1 for an honest driver), then notifies queue 0.
    pub(super) fn publish(&mut self, entry: u16, advance: u16) {
        if ram_owned(self.rings.avail, 6 + 2 * usize::from(self.size)) {
            let slot = u64::from(self.avail_idx % self.size);
            ram::put_u16(self.rings.avail + 4 + 2 * slot, entry);
            barrier();
            self.avail_idx = self.avail_idx.wrapping_add(advance);
            ram::put_u16(self.rings.avail + 2, self.avail_idx);
        }
        barrier();
        let _ = self.write(Register::QueueNotify, 0);
    }

    /// Waits for the next used element, DEVICE_NEEDS_RESET or the timeout. The
    /// status byte at `status_at` (if any) is read once the element is back.
    pub(super) fn wait(&mut self, status_at: Option<u64>) -> Outcome {
        let used_is_own = ram_owned(self.rings.used, 6 + 8 * usize::from(self.size));
        let (start, frequency) = counter();
        let limit = frequency / 1000 * REQUEST_TIMEOUT_MS;
        for _ in 0..MAX_POLLS {
            if used_is_own && ram::get_u16(self.rings.used + 2) != self.used_idx {
                barrier();
                let slot = u64::from(self.used_idx % self.size);
                let len = ram::get_u32(self.rings.used + 4 + 8 * slot + 4);
                self.used_idx = self.used_idx.wrapping_add(1);
                self.acknowledge_interrupt();
                let status = status_at
                    .map(ram::get_u8)
                    .filter(|&byte| byte != STATUS_UNWRITTEN);
                return Outcome::Done { status, len };
            }
            if self.needs_reset() {
                self.acknowledge_interrupt();
                return Outcome::NeedsReset;
            }
            if counter().0.wrapping_sub(start) > limit {
                break;
            }
        }
        Outcome::Timeout
    }

    /// Lowers the interrupt line (the probe polls; nobody takes the SPI).
    fn acknowledge_interrupt(&self) {
        if let Ok(pending) = self.read(Register::InterruptStatus) {
            let _ = self.write(Register::InterruptAck, pending);
        }
    }

    /// A well-formed request of `kind` at `sector`: header, optional data, status.
    /// Uses descriptors 0-2, [`layout::HEADER`] and [`layout::STATUS`].
    pub(super) fn request(&mut self, kind: u32, sector: u64, data: Option<Data>) -> Outcome {
        let header = at(layout::HEADER);
        let status_byte = at(layout::STATUS);
        write_header(header, kind, sector);
        ram::put_u8(status_byte, STATUS_UNWRITTEN);
        match data {
            Some(data) => {
                self.descriptor(0, header, 16, DESC_NEXT, 1);
                let flags = DESC_NEXT | if data.device_writes { DESC_WRITE } else { 0 };
                self.descriptor(1, data.addr, data.len, flags, 2);
                self.descriptor(2, status_byte, 1, DESC_WRITE, 0);
            }
            None => {
                self.descriptor(0, header, 16, DESC_NEXT, 1);
                self.descriptor(1, status_byte, 1, DESC_WRITE, 0);
            }
        }
        self.publish(0, 1);
        self.wait(Some(status_byte))
    }

    /// Writes one sector-sized pattern of `tag` to `sector`.
    pub(super) fn write_pattern(&mut self, sector: u64, tag: &str) -> Outcome {
        let data = at(layout::DATA);
        fill_pattern(data, SECTOR, tag);
        self.request(T_OUT, sector, Some(out(data, SECTOR as u32)))
    }

    /// Reads `sector` into [`layout::READBACK`]; returns the outcome and whether it
    /// holds the pattern of `tag`.
    pub(super) fn check_pattern(&mut self, sector: u64, tag: &str) -> (Outcome, bool) {
        let readback = at(layout::READBACK);
        ram::fill(readback, SECTOR, 0xee);
        let outcome = self.request(T_IN, sector, Some(input(readback, SECTOR as u32)));
        (outcome, outcome.ok() && has_pattern(readback, SECTOR, tag))
    }

    /// The good request after an attack: a write of a fresh pattern to the scratch
    /// sector and a read back of it.
    pub(super) fn good_after(&mut self, round: u32) -> bool {
        let mut tag = [b'.'; 16];
        tag[..11].copy_from_slice(b"good-after-");
        let digits = [
            b'0' + (round / 100 % 10) as u8,
            b'0' + (round / 10 % 10) as u8,
            b'0' + (round % 10) as u8,
        ];
        tag[11..14].copy_from_slice(&digits);
        let tag = core::str::from_utf8(&tag).unwrap_or("good-after");
        self.write_pattern(SCRATCH_SECTOR, tag).ok() && self.check_pattern(SCRATCH_SECTOR, tag).1
    }

    /// After an attack that broke the queue (or left it silent): reset and set the
    /// device up again with the probe's own rings.
    pub(super) fn recover(&mut self) -> bool {
        self.init(Rings::own()).is_ok() && !self.needs_reset()
    }
}

/// A data buffer the device reads (OUT).
pub(super) fn out(addr: u64, len: u32) -> Data {
    Data {
        addr,
        len,
        device_writes: false,
    }
}

/// A data buffer the device writes (IN).
pub(super) fn input(addr: u64, len: u32) -> Data {
    Data {
        addr,
        len,
        device_writes: true,
    }
}

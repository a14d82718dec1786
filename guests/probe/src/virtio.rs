//! `probe.after=virtio`: a hand-made driver for the virtio-mmio block device Janus
//! gives a personality (virtio 1.2: mmio registers 4.2.2, split virtqueue 2.7,
//! virtio-blk 5.2), one good round of requests, then the attacks of
//! [`attacks`], each followed by a good request that shows the device still works.
//!
//! Everything the device reads or writes lies in [`AREA`], in the probe's own RAM,
//! and is reached through volatile accesses only: the device changes it behind the
//! compiler's back. The probe runs with its MMU off, so all of it is Device memory
//! to the probe (no caches to clean; under QEMU, which models none, that matches
//! what Janus sees through its cacheable map).
//!
//! Lines printed (the test parses them):
//! - `virtio: no device (...)` when nothing answers at the window;
//! - `virtio device: ...` with the features and the capacity;
//! - `virtio good: write=ok read=ok match=yes id=NAME flush=ok ...`;
//! - one `virtio attack=NAME result=R refused=yes|no good-after=ok|fail` per attack;
//! - `virtio attacks done: N of M refused, device still works` (or `device broken`).

mod attacks;

use core::arch::asm;
use core::cell::UnsafeCell;
use core::sync::atomic::Ordering;

use crate::probe::{counter, faults};
use crate::say;

/// The virtio-mmio window of the personality's block device (the virt board's
/// first virtio-mmio slot), as the storage contract fixes it.
pub const WINDOW: u64 = 0x0a00_0000;

/// The control registers the probe uses, by offset (spec 4.2.2).
#[derive(Clone, Copy)]
#[repr(u64)]
enum Register {
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

/// MagicValue: "virt".
const MAGIC: u32 = 0x7472_6976;
/// The block device's ID (spec 5).
const BLOCK_DEVICE_ID: u32 = 2;

/// Device status bits (spec 2.1).
mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
}

/// VIRTIO_F_VERSION_1 (spec 6).
const F_VERSION_1: u64 = 1 << 32;
/// VIRTIO_BLK_F_FLUSH (spec 5.2.3).
const F_FLUSH: u64 = 1 << 9;

/// Descriptor flags (spec 2.7.5).
const DESC_NEXT: u16 = 1;
const DESC_WRITE: u16 = 2;
const DESC_INDIRECT: u16 = 4;

/// Request types (spec 5.2.6).
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;
const T_DISCARD: u32 = 11;
const T_WRITE_ZEROES: u32 = 13;
/// Request status values.
const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;
/// What the probe leaves in a status byte before a request: no status the device
/// may write (0, 1, 2), so a byte still holding it was not written.
const STATUS_UNWRITTEN: u8 = 0xff;

/// Bytes per sector.
pub const SECTOR: usize = 512;
/// The queue size the probe asks for (at most; a smaller QueueNumMax wins).
const QUEUE_SIZE: u16 = 16;

/// How long one request may take before the probe calls it a timeout.
const REQUEST_TIMEOUT_MS: u64 = 2000;
/// And at most this many polls (each reads the Status register: one trap).
const MAX_POLLS: u32 = 200_000;

/// The layout of [`AREA`]: the queue, the request pieces and the data buffers.
mod layout {
    /// Descriptor table: 16 entries of 16 bytes (16-byte aligned).
    pub const DESCRIPTORS: usize = 0x000;
    /// Available ring: flags, idx, 16 entries, used_event (2-byte aligned).
    pub const AVAIL: usize = 0x100;
    /// Used ring: flags, idx, 16 elements of 8 bytes, avail_event (4-byte aligned).
    pub const USED: usize = 0x200;
    /// An indirect descriptor table (for the INDIRECT attack).
    pub const INDIRECT: usize = 0x300;
    /// Request headers (16 bytes each).
    pub const HEADER: usize = 0x400;
    pub const HEADER_2: usize = 0x410;
    /// Status bytes.
    pub const STATUS: usize = 0x480;
    pub const STATUS_2: usize = 0x481;
    /// The GET_ID answer (20 bytes).
    pub const ID: usize = 0x500;
    /// Discard / write-zeroes segments.
    pub const SEGMENT: usize = 0x600;
    /// Data: up to 4 sectors.
    pub const DATA: usize = 0x1000;
    /// A second data buffer (for reading back).
    pub const READBACK: usize = 0x2000;
    /// Size of the whole area.
    pub const BYTES: usize = 0x3000;
}

/// The probe's device memory: queue, headers, status bytes and data.
#[repr(C, align(4096))]
struct Area(UnsafeCell<[u8; layout::BYTES]>);
// SAFETY: only vCPU 0 runs the virtio mode; the device's accesses are why every
// access to the area is volatile.
unsafe impl Sync for Area {}
static AREA: Area = Area(UnsafeCell::new([0; layout::BYTES]));

/// The guest-physical (= virtual, MMU off) address of `offset` in [`AREA`].
fn at(offset: usize) -> u64 {
    AREA.0.get() as u64 + offset as u64
}

/// Volatile accessors for [`AREA`] and for other RAM of the probe's own.
mod ram {
    /// Checks that `[addr, addr + len)` lies in the probe's own area.
    fn inside(addr: u64, len: usize) -> bool {
        let start = super::at(0);
        (addr >= start && addr + len as u64 <= start + super::layout::BYTES as u64)
            || super::own_extra(addr, len)
    }

    pub fn put_u8(addr: u64, value: u8) {
        assert!(inside(addr, 1));
        // SAFETY: `inside` checked the byte is the probe's own, used by nothing else.
        unsafe { core::ptr::write_volatile(addr as *mut u8, value) }
    }

    pub fn get_u8(addr: u64) -> u8 {
        assert!(inside(addr, 1));
        // SAFETY: as for `put_u8`.
        unsafe { core::ptr::read_volatile(addr as *const u8) }
    }

    pub fn put_u16(addr: u64, value: u16) {
        assert!(inside(addr, 2) && addr.is_multiple_of(2));
        // SAFETY: as for `put_u8`; aligned (the MMU is off: Device memory).
        unsafe { core::ptr::write_volatile(addr as *mut u16, value.to_le()) }
    }

    pub fn get_u16(addr: u64) -> u16 {
        assert!(inside(addr, 2) && addr.is_multiple_of(2));
        // SAFETY: as for `put_u16`.
        u16::from_le(unsafe { core::ptr::read_volatile(addr as *const u16) })
    }

    pub fn put_u32(addr: u64, value: u32) {
        assert!(inside(addr, 4) && addr.is_multiple_of(4));
        // SAFETY: as for `put_u16`.
        unsafe { core::ptr::write_volatile(addr as *mut u32, value.to_le()) }
    }

    pub fn get_u32(addr: u64) -> u32 {
        assert!(inside(addr, 4) && addr.is_multiple_of(4));
        // SAFETY: as for `put_u16`.
        u32::from_le(unsafe { core::ptr::read_volatile(addr as *const u32) })
    }

    pub fn put_u64(addr: u64, value: u64) {
        assert!(inside(addr, 8) && addr.is_multiple_of(8));
        // SAFETY: as for `put_u16`.
        unsafe { core::ptr::write_volatile(addr as *mut u64, value.to_le()) }
    }

    pub fn fill(addr: u64, len: usize, byte: u8) {
        for index in 0..len as u64 {
            put_u8(addr + index, byte);
        }
    }

    /// Whether `len` bytes at `addr` all hold `byte`.
    pub fn all(addr: u64, len: usize, byte: u8) -> bool {
        (0..len as u64).all(|index| get_u8(addr + index) == byte)
    }
}

/// A chunk of the probe's RAM outside [`AREA`] that a good request may use: one
/// the probe never touched before (see [`untouched_chunk`]).
static EXTRA: spin_range::Range = spin_range::Range::new();

/// A once-set address range (no allocator, no locks needed: vCPU 0 only).
mod spin_range {
    use core::sync::atomic::{AtomicU64, Ordering};

    pub struct Range {
        start: AtomicU64,
        len: AtomicU64,
    }

    impl Range {
        pub const fn new() -> Range {
            Range {
                start: AtomicU64::new(0),
                len: AtomicU64::new(0),
            }
        }
        pub fn set(&self, start: u64, len: u64) {
            self.start.store(start, Ordering::Relaxed);
            self.len.store(len, Ordering::Relaxed);
        }
        pub fn contains(&self, addr: u64, len: u64) -> bool {
            let start = self.start.load(Ordering::Relaxed);
            let size = self.len.load(Ordering::Relaxed);
            size > 0 && addr >= start && addr + len <= start + size
        }
    }
}

fn own_extra(addr: u64, len: usize) -> bool {
    EXTRA.contains(addr, len as u64)
}

/// A 16-byte block of the probe's patterns: `PROBE-WROTE-THIS` then a 16-byte tag.
/// The test looks for `PROBE-WROTE-THIS` on the disk outside the probe's volume and
/// in memory the probe aimed at; the probe never prints it.
pub const MARK: &[u8; 16] = b"PROBE-WROTE-THIS";

/// The 32 bytes a pattern repeats: [`MARK`], then `tag` cut or padded with '.' to 16.
fn pattern_unit(tag: &str) -> [u8; 32] {
    let mut unit = [b'.'; 32];
    unit[..16].copy_from_slice(MARK);
    for (slot, byte) in unit[16..].iter_mut().zip(tag.bytes()) {
        *slot = byte;
    }
    unit
}

/// Fills `len` bytes at `addr` with the pattern of `tag`.
fn fill_pattern(addr: u64, len: usize, tag: &str) {
    let unit = pattern_unit(tag);
    for index in 0..len {
        ram::put_u8(addr + index as u64, unit[index % 32]);
    }
}

/// Whether `len` bytes at `addr` hold the pattern of `tag`.
fn has_pattern(addr: u64, len: usize, tag: &str) -> bool {
    let unit = pattern_unit(tag);
    (0..len).all(|index| ram::get_u8(addr + index as u64) == unit[index % 32])
}

/// A 32-bit MMIO read that survives an injected abort: `Err(ESR)` then.
fn mmio_read(addr: u64) -> Result<u32, u64> {
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
fn mmio_write(addr: u64, value: u32) -> Result<(), u64> {
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
fn barrier() {
    // SAFETY: a barrier has no effect besides ordering.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Why the device could not be brought up.
#[derive(Clone, Copy)]
pub enum InitError {
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
pub struct Rings {
    pub descriptors: u64,
    pub avail: u64,
    pub used: u64,
}

impl Rings {
    /// The probe's own rings in [`AREA`].
    pub fn own() -> Rings {
        Rings {
            descriptors: at(layout::DESCRIPTORS),
            avail: at(layout::AVAIL),
            used: at(layout::USED),
        }
    }
}

/// How a request ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
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
    pub fn word(self) -> &'static str {
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
    pub fn refused(self) -> bool {
        !matches!(
            self,
            Outcome::Done {
                status: Some(S_OK),
                ..
            } | Outcome::Timeout
        )
    }

    /// Whether the request succeeded.
    pub fn ok(self) -> bool {
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
pub struct Data {
    pub addr: u64,
    pub len: u32,
    /// The device writes it (IN, GET_ID) rather than reads it.
    pub device_writes: bool,
}

/// The driver's state: the queue as set up, and its indices.
pub struct Driver {
    rings: Rings,
    /// QueueNum.
    size: u16,
    /// QueueNumMax.
    max_size: u32,
    /// The next free-running available index.
    avail_idx: u16,
    /// The used index last consumed.
    used_idx: u16,
    /// Features offered and accepted.
    offered: u64,
    accepted: u64,
    /// The volume's size in sectors (config space).
    capacity: u64,
    /// Re-initialisations done after a broken queue.
    reinits: u32,
}

fn register(register: Register) -> u64 {
    WINDOW + register as u64
}

impl Driver {
    fn read(&self, which: Register) -> Result<u32, InitError> {
        mmio_read(register(which)).map_err(InitError::Fault)
    }

    fn write(&self, which: Register, value: u32) -> Result<(), InitError> {
        mmio_write(register(which), value).map_err(InitError::Fault)
    }

    /// The Status register (0 when it cannot be read).
    pub fn status(&self) -> u32 {
        self.read(Register::Status).unwrap_or(0)
    }

    /// Whether the device has set DEVICE_NEEDS_RESET.
    pub fn needs_reset(&self) -> bool {
        self.status() & status::DEVICE_NEEDS_RESET != 0
    }

    /// Resets the device and initialises it again (spec 3.1.1) with queue 0 at
    /// `rings`. Rings in the probe's own area are cleared first.
    pub fn init(&mut self, rings: Rings) -> Result<(), InitError> {
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
        self.accepted = self.offered & (F_VERSION_1 | F_FLUSH);
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
            let low = mmio_read(WINDOW + CONFIG).map_err(InitError::Fault)?;
            let high = mmio_read(WINDOW + CONFIG + 4).map_err(InitError::Fault)?;
            if self.read(Register::ConfigGeneration)? == before {
                return Ok(u64::from(low) | (u64::from(high) << 32));
            }
        }
    }

    /// Writes descriptor `index` of the probe's own table.
    /// Nothing is written when the table is not the probe's (a ring attack): the
    /// device then finds whatever lies there.
    pub fn descriptor(&self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let entry = self.rings.descriptors + 16 * u64::from(index);
        if ram_owned(entry, 16) {
            write_descriptor(entry, addr, len, flags, next);
        }
    }

    /// Puts `entry` into the next available slot and moves the available index on
    /// by `advance` (1 for an honest driver), then notifies queue 0.
    pub fn publish(&mut self, entry: u16, advance: u16) {
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
    pub fn wait(&mut self, status_at: Option<u64>) -> Outcome {
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
    pub fn request(&mut self, kind: u32, sector: u64, data: Option<Data>) -> Outcome {
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
    pub fn write_pattern(&mut self, sector: u64, tag: &str) -> Outcome {
        let data = at(layout::DATA);
        fill_pattern(data, SECTOR, tag);
        self.request(T_OUT, sector, Some(out(data, SECTOR as u32)))
    }

    /// Reads `sector` into [`layout::READBACK`]; returns the outcome and whether it
    /// holds the pattern of `tag`.
    pub fn check_pattern(&mut self, sector: u64, tag: &str) -> (Outcome, bool) {
        let readback = at(layout::READBACK);
        ram::fill(readback, SECTOR, 0xee);
        let outcome = self.request(T_IN, sector, Some(input(readback, SECTOR as u32)));
        (outcome, outcome.ok() && has_pattern(readback, SECTOR, tag))
    }

    /// The good request after an attack: a write of a fresh pattern to the scratch
    /// sector and a read back of it.
    pub fn good_after(&mut self, round: u32) -> bool {
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
    pub fn recover(&mut self) -> bool {
        self.reinits += 1;
        self.init(Rings::own()).is_ok() && !self.needs_reset()
    }
}

/// The probe's volume: what it keeps where.
pub const GOOD_SECTOR: u64 = 0;
/// Rewritten by every good-after request.
pub const SCRATCH_SECTOR: u64 = 1;
/// Holds [`CANARY_TAG`]; the OUT attacks aim at it and must leave it as it is.
pub const CANARY_SECTOR: u64 = 2;
/// The tag of the good write to sector 0, which the test finds on the disk.
pub const GOOD_TAG: &str = "good-write-sec-0";
/// The tag of the canary sectors.
pub const CANARY_TAG: &str = "canary-sector";

/// A data buffer the device reads (OUT).
pub fn out(addr: u64, len: u32) -> Data {
    Data {
        addr,
        len,
        device_writes: false,
    }
}

/// A data buffer the device writes (IN).
pub fn input(addr: u64, len: u32) -> Data {
    Data {
        addr,
        len,
        device_writes: true,
    }
}

/// Writes a 16-byte descriptor at `entry` (the probe's own memory).
fn write_descriptor(entry: u64, addr: u64, len: u32, flags: u16, next: u16) {
    ram::put_u64(entry, addr);
    ram::put_u32(entry + 8, len);
    ram::put_u16(entry + 12, flags);
    ram::put_u16(entry + 14, next);
}

/// Writes a request header (le32 type, le32 reserved, le64 sector) at `addr`.
fn write_header(addr: u64, kind: u32, sector: u64) {
    ram::put_u32(addr, kind);
    ram::put_u32(addr + 4, 0);
    ram::put_u64(addr + 8, sector);
}

/// Whether `[addr, addr + len)` is memory the probe may write itself.
fn ram_owned(addr: u64, len: usize) -> bool {
    let start = at(0);
    addr >= start && addr + len as u64 <= start + layout::BYTES as u64
}

/// A 2 MiB chunk of the probe's RAM it has not touched in this mode: the device
/// must make it ready (Janus maps and clears chunks on first touch).
fn untouched_chunk(ram_base: u64, ram_size: u64) -> Option<u64> {
    const CHUNK: u64 = 2 << 20;
    (ram_size >= 8 * CHUNK).then(|| (ram_base + ram_size / 2) & !(CHUNK - 1))
}

/// The probe's `probe.after=virtio` mode.
pub fn run(ram_base: u64, ram_size: u64) {
    match mmio_read(register(Register::MagicValue)) {
        Err(esr) => {
            say!("virtio: no device (access to {WINDOW:#x} refused, ESR {esr:#x})");
            return;
        }
        Ok(magic) if magic != MAGIC => {
            say!("virtio: no device (magic {magic:#x} at {WINDOW:#x})");
            return;
        }
        Ok(_) => {}
    }
    let version = mmio_read(register(Register::Version)).unwrap_or(0);
    let device_id = mmio_read(register(Register::DeviceId)).unwrap_or(0);
    if version != 2 || device_id != BLOCK_DEVICE_ID {
        say!("virtio: no device (version {version}, device ID {device_id} at {WINDOW:#x})");
        return;
    }
    let mut driver = Driver {
        rings: Rings::own(),
        size: QUEUE_SIZE,
        max_size: 0,
        avail_idx: 0,
        used_idx: 0,
        offered: 0,
        accepted: 0,
        capacity: 0,
        reinits: 0,
    };
    if let Err(error) = driver.init(Rings::own()) {
        say!("virtio: device does not initialise: {error}");
        return;
    }
    say!(
        "virtio device: version {version}, features offered {:#x} accepted {:#x}, capacity={} sectors, queue {} of max {}",
        driver.offered,
        driver.accepted,
        driver.capacity,
        driver.size,
        driver.max_size
    );
    if !good_round(&mut driver, ram_base, ram_size) {
        say!("virtio attacks done: 0 of 0 refused, device broken before the attacks");
        return;
    }
    let (refused, tried, works) = attacks::run_all(&mut driver, ram_base, ram_size);
    let final_good = driver.good_after(999);
    say!(
        "virtio attacks done: {refused} of {tried} refused, {}",
        if works && final_good {
            "device still works"
        } else {
            "device broken"
        }
    );
}

/// The good requests before the attacks: write sector 0 and read it back, GET_ID,
/// FLUSH, a read into a chunk of RAM never touched, and the canaries.
fn good_round(driver: &mut Driver, ram_base: u64, ram_size: u64) -> bool {
    let write = driver.write_pattern(GOOD_SECTOR, GOOD_TAG);
    let (read, matches) = driver.check_pattern(GOOD_SECTOR, GOOD_TAG);
    let id_buffer = at(layout::ID);
    ram::fill(id_buffer, 20, 0);
    let get_id = driver.request(T_GET_ID, 0, Some(input(id_buffer, 20)));
    let mut id = [0u8; 20];
    for (index, byte) in id.iter_mut().enumerate() {
        *byte = ram::get_u8(id_buffer + index as u64);
    }
    let id_len = id.iter().position(|&byte| byte == 0).unwrap_or(id.len());
    let id = core::str::from_utf8(&id[..id_len]).unwrap_or("?");
    let flush = if driver.accepted & F_FLUSH != 0 {
        driver.request(T_FLUSH, 0, None).word()
    } else {
        "not-offered"
    };
    // A read into RAM the probe never touched: Janus must make it ready first.
    let untouched = match untouched_chunk(ram_base, ram_size) {
        Some(chunk) => {
            EXTRA.set(chunk, SECTOR as u64);
            let outcome = driver.request(T_IN, GOOD_SECTOR, Some(input(chunk, SECTOR as u32)));
            if outcome.ok() && has_pattern(chunk, SECTOR, GOOD_TAG) {
                "ok"
            } else {
                outcome.word()
            }
        }
        None => "skipped",
    };
    let canaries = [CANARY_SECTOR, driver.capacity.saturating_sub(1)]
        .iter()
        .all(|&sector| driver.write_pattern(sector, CANARY_TAG).ok());
    say!(
        "virtio good: write={} read={} match={} id={id} get-id={} flush={flush} untouched-chunk={untouched} canaries={}",
        write.word(),
        read.word(),
        if matches { "yes" } else { "no" },
        get_id.word(),
        if canaries { "ok" } else { "fail" }
    );
    write.ok() && matches && get_id.ok() && canaries
}

//! The probe's memory for the device: queue, request pieces and data buffers in one
//! static area, reached only through volatile accesses, and the data patterns.

use core::cell::UnsafeCell;

/// The layout of [`AREA`]: the queue, the request pieces and the data buffers.
pub(super) mod layout {
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
pub(super) fn at(offset: usize) -> u64 {
    AREA.0.get() as u64 + offset as u64
}

/// Volatile accessors for [`AREA`] and for other RAM of the probe's own.
pub(super) mod ram {
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
pub(super) static EXTRA: spin_range::Range = spin_range::Range::new();

/// A once-set address range (no allocator, no locks needed: vCPU 0 only).
pub(super) mod spin_range {
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

pub(super) fn own_extra(addr: u64, len: usize) -> bool {
    EXTRA.contains(addr, len as u64)
}

/// A 16-byte block of the probe's patterns: `PROBE-WROTE-THIS` then a 16-byte tag.
/// The test looks for `PROBE-WROTE-THIS` on the disk outside the probe's volume and
/// in memory the probe aimed at; the probe never prints it.
pub(super) const MARK: &[u8; 16] = b"PROBE-WROTE-THIS";

/// The 32 bytes a pattern repeats: [`MARK`], then `tag` cut or padded with '.' to 16.
pub(super) fn pattern_unit(tag: &str) -> [u8; 32] {
    let mut unit = [b'.'; 32];
    unit[..16].copy_from_slice(MARK);
    for (slot, byte) in unit[16..].iter_mut().zip(tag.bytes()) {
        *slot = byte;
    }
    unit
}

/// Fills `len` bytes at `addr` with the pattern of `tag`.
pub(super) fn fill_pattern(addr: u64, len: usize, tag: &str) {
    let unit = pattern_unit(tag);
    for index in 0..len {
        ram::put_u8(addr + index as u64, unit[index % 32]);
    }
}

/// Whether `len` bytes at `addr` hold the pattern of `tag`.
pub(super) fn has_pattern(addr: u64, len: usize, tag: &str) -> bool {
    let unit = pattern_unit(tag);
    (0..len).all(|index| ram::get_u8(addr + index as u64) == unit[index % 32])
}

/// Writes a 16-byte descriptor at `entry` (the probe's own memory).
pub(super) fn write_descriptor(entry: u64, addr: u64, len: u32, flags: u16, next: u16) {
    ram::put_u64(entry, addr);
    ram::put_u32(entry + 8, len);
    ram::put_u16(entry + 12, flags);
    ram::put_u16(entry + 14, next);
}

/// Writes a request header (le32 type, le32 reserved, le64 sector) at `addr`.
pub(super) fn write_header(addr: u64, kind: u32, sector: u64) {
    ram::put_u32(addr, kind);
    ram::put_u32(addr + 4, 0);
    ram::put_u64(addr + 8, sector);
}

/// Whether `[addr, addr + len)` is memory the probe may write itself.
pub(super) fn ram_owned(addr: u64, len: usize) -> bool {
    let start = at(0);
    addr >= start && addr + len as u64 <= start + layout::BYTES as u64
}

/// A 2 MiB chunk of the probe's RAM it has not touched in this mode: the device
/// must make it ready (Janus maps and clears chunks on first touch).
pub(super) fn untouched_chunk(ram_base: u64, ram_size: u64) -> Option<u64> {
    const CHUNK: u64 = 2 << 20;
    (ram_size >= 8 * CHUNK).then(|| (ram_base + ram_size / 2) & !(CHUNK - 1))
}

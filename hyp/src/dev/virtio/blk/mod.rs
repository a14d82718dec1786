//! The virtio-blk device model (virtio 1.2 section 5.2) over a [`BlockBackend`].
//!
//! One request queue; requests are handled synchronously, in order, at most `budget` per
//! call. Data moves zero copy: the backend gets the guest's own buffers as
//! [`Buffer::Guest`] runs (physically adjacent descriptors merged, every run a whole number
//! of sectors), the runs between two bounced sectors in one [`BlockBackend::read_runs`] or
//! [`BlockBackend::write_runs`] call; only a sector split across descriptors goes through
//! a 512-byte Janus bounce buffer. The model copies the 16-byte header, discard/write-zeroes segments, the serial
//! and the status byte, and no data bytes besides the bounced sectors.

mod request;

use alloc::boxed::Box;

use super::queue::{Popped, Queue, QueueError};
use super::{GuestMemory, VirtioDevice, VIRTIO_F_VERSION_1};

/// Bytes per sector: the unit of `capacity` and of every request (spec 5.2.4).
pub const SECTOR_BYTES: usize = 512;
/// The virtio device ID of a block device (spec 5).
pub const DEVICE_ID: u32 = 2;
/// The request queue's maximum size.
pub const QUEUE_MAX_SIZE: u16 = 256;
/// seg_max: data segments per request; a chain also holds the header and the status, and
/// may not be longer than the queue.
pub const SEG_MAX: u32 = QUEUE_MAX_SIZE as u32 - 2;
/// max_discard_sectors and max_write_zeroes_sectors per segment: 1 MiB, and one
/// segment per request, so that a request costs at most 256 physical writes of
/// zeros (the physical driver has no zeroing request) and a guest cannot hold a
/// CPU at EL2 for long with a few requests.
pub const MAX_ZEROING_SECTORS: u32 = 2048;
/// max_discard_seg and max_write_zeroes_seg.
pub const MAX_ZEROING_SEGMENTS: u32 = 1;
/// discard_sector_alignment: 4 KiB, the page size ext4 discards in.
pub const DISCARD_SECTOR_ALIGNMENT: u32 = 8;
/// Length of the GET_ID answer (VIRTIO_BLK_ID_BYTES, spec 5.2.6).
pub const ID_BYTES: usize = 20;
/// Bytes of the zero buffer the default `write_zeroes` writes from (on the 16 KiB stack).
pub const ZERO_CHUNK_BYTES: usize = 4096;

/// VIRTIO_BLK_F_SEG_MAX (spec 5.2.3): seg_max is valid.
pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
/// VIRTIO_BLK_F_BLK_SIZE: blk_size is valid.
pub const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;
/// VIRTIO_BLK_F_FLUSH: the FLUSH command.
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;
/// VIRTIO_BLK_F_DISCARD: the DISCARD command and its limits.
pub const VIRTIO_BLK_F_DISCARD: u64 = 1 << 13;
/// VIRTIO_BLK_F_WRITE_ZEROES: the WRITE_ZEROES command and its limits.
pub const VIRTIO_BLK_F_WRITE_ZEROES: u64 = 1 << 14;

/// What the device offers. Not RO, MQ, CONFIG_WCE (the cache is not switchable: writes
/// are reported done when the physical device completed them, and FLUSH reaches it),
/// INDIRECT_DESC or EVENT_IDX.
pub const FEATURES: u64 = VIRTIO_F_VERSION_1
    | VIRTIO_BLK_F_SEG_MAX
    | VIRTIO_BLK_F_BLK_SIZE
    | VIRTIO_BLK_F_FLUSH
    | VIRTIO_BLK_F_DISCARD
    | VIRTIO_BLK_F_WRITE_ZEROES;

/// Where the bytes of one transfer are.
#[derive(Debug)]
pub enum Buffer<'a> {
    /// `len` bytes of the personality's RAM at `addr`, already `check`ed: zero copy, the
    /// physical device reads or writes them directly. `len` is a multiple of 512.
    Guest {
        /// Guest-physical (== physical) address.
        addr: u64,
        /// Length in bytes.
        len: usize,
    },
    /// Janus' own bytes (a bounce for a sector split across descriptors, or zeros).
    Janus(&'a mut [u8]),
}

impl Buffer<'_> {
    /// The transfer's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Buffer::Guest { len, .. } => *len,
            Buffer::Janus(bytes) => bytes.len(),
        }
    }

    /// Whether the transfer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One physically contiguous run of the personality's RAM, already `check`ed, for
/// [`BlockBackend::read_runs`] and [`BlockBackend::write_runs`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestRun {
    /// Guest-physical (== physical) address.
    pub addr: u64,
    /// Length in bytes, a multiple of 512.
    pub len: usize,
}

/// Most runs the model passes in one `read_runs` / `write_runs` call: seg_max, so that
/// the physical request (header and status besides) fits a queue of `QUEUE_MAX_SIZE`.
pub const MAX_RUNS: usize = SEG_MAX as usize;

/// Calls `each(sector, Buffer::Guest)` for every run in turn, each at the sector after the
/// one before: what `read_runs` and `write_runs` do unless a backend can do better.
///
/// # Errors
/// `OutOfRange` when the sectors pass 2^64; the first error of `each`.
pub fn for_each_run(
    sector: u64,
    runs: &[GuestRun],
    mut each: impl FnMut(u64, Buffer<'_>) -> Result<(), IoError>,
) -> Result<(), IoError> {
    let mut at = sector;
    for run in runs {
        each(
            at,
            Buffer::Guest {
                addr: run.addr,
                len: run.len,
            },
        )?;
        let sectors = u64::try_from(run.len / SECTOR_BYTES).map_err(|_| IoError::OutOfRange)?;
        at = at.checked_add(sectors).ok_or(IoError::OutOfRange)?;
    }
    Ok(())
}

/// Why a backend call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoError {
    /// The sectors lie (partly) outside the volume.
    OutOfRange,
    /// The buffer is unusable: length not a multiple of 512, or not RAM the backend may use.
    BadBuffer,
    /// The physical device reported an error or did not answer.
    Device,
}

/// The volume behind one virtual block device (sector numbers are relative to the volume).
pub trait BlockBackend {
    /// The volume's size in 512-byte sectors.
    fn sectors(&self) -> u64;

    /// Reads `len/512` sectors starting at `sector` into `buffer`. The model has already
    /// checked `sector + count <= sectors()`; the backend checks again (defence in depth).
    ///
    /// # Errors
    /// Any [`IoError`]; the guest sees VIRTIO_BLK_S_IOERR.
    fn read(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError>;

    /// Writes; returns only when the physical device has completed the write.
    ///
    /// # Errors
    /// Any [`IoError`].
    fn write(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError>;

    /// Reads the sectors from `sector` into the guest runs `runs`, in order (the first
    /// run gets `sector`, the next the sectors after it, ...): one guest request's data
    /// between bounced sectors, at most [`MAX_RUNS`] runs. The default calls
    /// [`BlockBackend::read`] once per run; a backend that can scatter does it at once.
    ///
    /// # Errors
    /// Any [`IoError`]; the guest sees VIRTIO_BLK_S_IOERR.
    fn read_runs(&mut self, sector: u64, runs: &[GuestRun]) -> Result<(), IoError> {
        for_each_run(sector, runs, |at, buffer| self.read(at, buffer))
    }

    /// Writes the guest runs `runs`, in order, to the sectors from `sector`; returns only
    /// when the physical device has completed it. The default calls
    /// [`BlockBackend::write`] once per run.
    ///
    /// # Errors
    /// Any [`IoError`].
    fn write_runs(&mut self, sector: u64, runs: &[GuestRun]) -> Result<(), IoError> {
        for_each_run(sector, runs, |at, buffer| self.write(at, buffer))
    }

    /// Returns only after a physical FLUSH issued after every completed write has completed.
    ///
    /// # Errors
    /// Any [`IoError`].
    fn flush(&mut self) -> Result<(), IoError>;

    /// Makes `count` sectors from `sector` read as zeros. The default writes zeros from a
    /// [`ZERO_CHUNK_BYTES`] Janus buffer, one chunk per call to [`BlockBackend::write`].
    ///
    /// # Errors
    /// `OutOfRange` when the sectors pass the end; any error of `write`.
    fn write_zeroes(&mut self, sector: u64, count: u64) -> Result<(), IoError> {
        let end = sector.checked_add(count).ok_or(IoError::OutOfRange)?;
        if end > self.sectors() {
            return Err(IoError::OutOfRange);
        }
        let mut zeros = [0u8; ZERO_CHUNK_BYTES];
        let chunk_sectors = (ZERO_CHUNK_BYTES / SECTOR_BYTES) as u64;
        let mut next = sector;
        while next < end {
            let sectors = chunk_sectors.min(end - next);
            // sectors <= chunk_sectors, so the length fits the buffer.
            let bytes = usize::try_from(sectors).map_err(|_| IoError::OutOfRange)? * SECTOR_BYTES;
            let chunk = zeros.get_mut(..bytes).ok_or(IoError::OutOfRange)?;
            // Refill: a backend may use a Janus buffer as scratch.
            chunk.fill(0);
            self.write(next, Buffer::Janus(chunk))?;
            next += sectors;
        }
        Ok(())
    }

    /// Tells the volume that `count` sectors from `sector` are unused. The default makes
    /// them read as zeros, like [`BlockBackend::write_zeroes`].
    ///
    /// # Errors
    /// As `write_zeroes`.
    fn discard(&mut self, sector: u64, count: u64) -> Result<(), IoError> {
        self.write_zeroes(sector, count)
    }
}

/// Bytes of the configuration space (spec 5.2.4, up to `unused1`; the secure-erase and
/// zoned fields that follow belong to features not offered and read as zero).
const CONFIG_BYTES: usize = 60;

/// Field offsets in `struct virtio_blk_config` (spec 5.2.4).
mod config_offset {
    /// le64 capacity.
    pub const CAPACITY: usize = 0;
    /// le32 seg_max.
    pub const SEG_MAX: usize = 12;
    /// le32 blk_size.
    pub const BLK_SIZE: usize = 20;
    /// le32 max_discard_sectors.
    pub const MAX_DISCARD_SECTORS: usize = 36;
    /// le32 max_discard_seg.
    pub const MAX_DISCARD_SEG: usize = 40;
    /// le32 discard_sector_alignment.
    pub const DISCARD_SECTOR_ALIGNMENT: usize = 44;
    /// le32 max_write_zeroes_sectors.
    pub const MAX_WRITE_ZEROES_SECTORS: usize = 48;
    /// le32 max_write_zeroes_seg.
    pub const MAX_WRITE_ZEROES_SEG: usize = 52;
    /// u8 write_zeroes_may_unmap.
    pub const WRITE_ZEROES_MAY_UNMAP: usize = 56;
}

/// A virtio block device.
pub struct BlkDevice {
    /// The volume.
    backend: Box<dyn BlockBackend + Send>,
    /// The volume's size in sectors, read once at construction.
    capacity: u64,
    /// The configuration space, built once.
    config: [u8; CONFIG_BYTES],
    /// The GET_ID answer: the name, zero padded.
    serial: [u8; ID_BYTES],
    /// The features the driver accepted.
    driver_features: u64,
    /// Scratch for the guest runs of one request ([`MAX_RUNS`] of them), allocated once
    /// so that no request allocates or puts 4 KiB on Janus' stack.
    runs: Box<[GuestRun]>,
}

impl core::fmt::Debug for BlkDevice {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("BlkDevice")
            .field("capacity", &self.capacity)
            .field("driver_features", &self.driver_features)
            .finish_non_exhaustive()
    }
}

impl BlkDevice {
    /// A device over `backend` whose GET_ID answers `serial` (e.g. the personality's name;
    /// cut to 20 bytes, zero padded).
    pub fn new(backend: Box<dyn BlockBackend + Send>, serial: &[u8]) -> Self {
        let capacity = backend.sectors();
        let mut id = [0u8; ID_BYTES];
        let count = serial.len().min(ID_BYTES);
        id[..count].copy_from_slice(&serial[..count]);
        BlkDevice {
            backend,
            capacity,
            config: build_config(capacity),
            serial: id,
            driver_features: 0,
            runs: alloc::vec![GuestRun::default(); MAX_RUNS].into_boxed_slice(),
        }
    }

    /// The volume's size in sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The backend.
    pub fn backend_mut(&mut self) -> &mut (dyn BlockBackend + Send) {
        self.backend.as_mut()
    }

    /// Whether the driver accepted `feature`.
    fn negotiated(&self, feature: u64) -> bool {
        self.driver_features & feature != 0
    }
}

/// The configuration space for a volume of `capacity` sectors.
fn build_config(capacity: u64) -> [u8; CONFIG_BYTES] {
    let mut config = [0u8; CONFIG_BYTES];
    let mut put = |offset: usize, bytes: &[u8]| {
        if let Some(field) = config.get_mut(offset..offset + bytes.len()) {
            field.copy_from_slice(bytes);
        }
    };
    put(config_offset::CAPACITY, &capacity.to_le_bytes());
    put(config_offset::SEG_MAX, &SEG_MAX.to_le_bytes());
    put(
        config_offset::BLK_SIZE,
        &(SECTOR_BYTES as u32).to_le_bytes(),
    );
    put(
        config_offset::MAX_DISCARD_SECTORS,
        &MAX_ZEROING_SECTORS.to_le_bytes(),
    );
    put(
        config_offset::MAX_DISCARD_SEG,
        &MAX_ZEROING_SEGMENTS.to_le_bytes(),
    );
    put(
        config_offset::DISCARD_SECTOR_ALIGNMENT,
        &DISCARD_SECTOR_ALIGNMENT.to_le_bytes(),
    );
    put(
        config_offset::MAX_WRITE_ZEROES_SECTORS,
        &MAX_ZEROING_SECTORS.to_le_bytes(),
    );
    put(
        config_offset::MAX_WRITE_ZEROES_SEG,
        &MAX_ZEROING_SEGMENTS.to_le_bytes(),
    );
    // The unmap flag is accepted but zeros are written all the same.
    put(config_offset::WRITE_ZEROES_MAY_UNMAP, &[0]);
    config
}

impl VirtioDevice for BlkDevice {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn device_features(&self) -> u64 {
        FEATURES
    }

    fn ack_features(&mut self, features: u64) {
        self.driver_features = features & FEATURES;
    }

    fn read_config(&self, offset: usize, data: &mut [u8]) {
        super::read_config_bytes(&self.config, offset, data);
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_MAX_SIZE]
    }

    fn reset(&mut self) {
        self.driver_features = 0;
    }

    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut Queue,
        memory: &mut dyn GuestMemory,
        budget: usize,
    ) -> Result<bool, QueueError> {
        if index != 0 {
            return Ok(false);
        }
        for _ in 0..budget {
            let (head, used_len) = match queue.pop(memory)? {
                None => return Ok(false),
                Some(Popped::Chain { head, segments }) => (head, self.handle(memory, segments)),
                Some(Popped::Bad(bad)) => {
                    if let Some(addr) = bad.last_writable_byte {
                        // Best effort: the byte lies in a checked buffer.
                        let _ = memory.write(addr, &[request::STATUS_IOERR]);
                    }
                    (bad.head, 0)
                }
            };
            queue.push_used(memory, head, used_len)?;
        }
        queue.has_available(memory)
    }
}

#[cfg(test)]
mod tests;

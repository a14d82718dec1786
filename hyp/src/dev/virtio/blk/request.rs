//! One virtio-blk request: header, data and status byte (virtio 1.2 section 5.2.6).
//!
//! The header is the first 16 device-readable bytes of the chain, the status byte the last
//! device-writable byte, and the data whatever lies between (readable bytes after the
//! header for OUT, DISCARD and WRITE_ZEROES; writable bytes before the status for IN and
//! GET_ID). Any of them may span descriptors.

use super::{
    BlkDevice, BlockBackend, Buffer, GuestRun, IoError, MAX_ZEROING_SECTORS, MAX_ZEROING_SEGMENTS,
    SECTOR_BYTES, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_WRITE_ZEROES,
};
use crate::dev::virtio::queue::Segment;
use crate::dev::virtio::GuestMemory;

/// VIRTIO_BLK_S_OK.
pub const STATUS_OK: u8 = 0;
/// VIRTIO_BLK_S_IOERR.
pub const STATUS_IOERR: u8 = 1;
/// VIRTIO_BLK_S_UNSUPP.
pub const STATUS_UNSUPP: u8 = 2;

/// VIRTIO_BLK_T_IN: read.
const T_IN: u32 = 0;
/// VIRTIO_BLK_T_OUT: write.
const T_OUT: u32 = 1;
/// VIRTIO_BLK_T_FLUSH.
const T_FLUSH: u32 = 4;
/// VIRTIO_BLK_T_GET_ID.
const T_GET_ID: u32 = 8;
/// VIRTIO_BLK_T_DISCARD.
const T_DISCARD: u32 = 11;
/// VIRTIO_BLK_T_WRITE_ZEROES.
const T_WRITE_ZEROES: u32 = 13;

/// Bytes of the request header: le32 type, le32 reserved, le64 sector.
const HEADER_BYTES: u64 = 16;
/// Bytes of one discard / write-zeroes segment: le64 sector, le32 num_sectors, le32 flags.
const ZEROING_SEGMENT_BYTES: usize = 16;
/// VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, the only defined segment flag.
const FLAG_UNMAP: u32 = 1;
/// Sector size as a u64, for offsets.
const SECTOR: u64 = SECTOR_BYTES as u64;

/// A byte range of a chain's readable or writable buffers, seen as one stream.
#[derive(Clone, Copy)]
struct Region<'a> {
    /// The buffers, all readable or all writable.
    segments: &'a [Segment],
    /// Stream bytes before the region (the header).
    skip: u64,
    /// Length of the region.
    len: u64,
}

impl<'a> Region<'a> {
    /// The region's contiguous pieces in order.
    fn pieces(&self) -> Pieces<'a> {
        Pieces {
            segments: self.segments,
            index: 0,
            skip: self.skip,
            left: self.len,
            offset: 0,
        }
    }

    /// Copies region bytes `[offset, offset + buf.len())` out of guest memory.
    fn read(
        &self,
        memory: &mut dyn GuestMemory,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), IoError> {
        let end = offset + buf.len() as u64;
        for (start, addr, len) in self.pieces() {
            let Some((from, to)) = overlap(start, start + len, offset, end) else {
                continue;
            };
            let chunk = buf
                .get_mut(index(from - offset)?..index(to - offset)?)
                .ok_or(IoError::BadBuffer)?;
            memory
                .read(addr + (from - start), chunk)
                .map_err(|_| IoError::BadBuffer)?;
        }
        Ok(())
    }

    /// Copies `data` into region bytes `[offset, offset + data.len())`.
    fn write(&self, memory: &mut dyn GuestMemory, offset: u64, data: &[u8]) -> Result<(), IoError> {
        let end = offset + data.len() as u64;
        for (start, addr, len) in self.pieces() {
            let Some((from, to)) = overlap(start, start + len, offset, end) else {
                continue;
            };
            let chunk = data
                .get(index(from - offset)?..index(to - offset)?)
                .ok_or(IoError::BadBuffer)?;
            memory
                .write(addr + (from - start), chunk)
                .map_err(|_| IoError::BadBuffer)?;
        }
        Ok(())
    }
}

/// The common part of `[a, b)` and `[c, d)`, if any.
fn overlap(a: u64, b: u64, c: u64, d: u64) -> Option<(u64, u64)> {
    let from = a.max(c);
    let to = b.min(d);
    (from < to).then_some((from, to))
}

/// A buffer index from a stream offset.
fn index(offset: u64) -> Result<usize, IoError> {
    usize::try_from(offset).map_err(|_| IoError::BadBuffer)
}

/// Iterator over a region's pieces: (offset in the region, guest address, length).
struct Pieces<'a> {
    /// The buffers.
    segments: &'a [Segment],
    /// The next buffer.
    index: usize,
    /// Stream bytes still to skip.
    skip: u64,
    /// Region bytes still to yield.
    left: u64,
    /// Region offset of the next piece.
    offset: u64,
}

impl Iterator for Pieces<'_> {
    type Item = (u64, u64, u64);

    fn next(&mut self) -> Option<Self::Item> {
        while self.left > 0 {
            let segment = self.segments.get(self.index)?;
            self.index += 1;
            let len = u64::from(segment.len);
            if self.skip >= len {
                self.skip -= len;
                continue;
            }
            // The queue checked [addr, addr+len) in RAM, so addr + skip does not wrap.
            let addr = segment.addr + self.skip;
            let take = (len - self.skip).min(self.left);
            self.skip = 0;
            let offset = self.offset;
            self.offset += take;
            self.left -= take;
            return Some((offset, addr, take));
        }
        None
    }
}

/// The guest runs of one request gathered for a single backend call: consecutive in the
/// region, each physically contiguous (pieces adjacent in memory are merged).
struct Gather<'r> {
    /// Room for the runs.
    runs: &'r mut [GuestRun],
    /// Runs held.
    count: usize,
    /// Region offset of the first run held (a multiple of 512).
    offset: u64,
}

impl Gather<'_> {
    /// Adds the `len` bytes (whole sectors) at guest `addr` that are region bytes from
    /// `offset`, right after those held: merged into the last run when they follow it in
    /// memory. When there is no room, the runs held go to the backend first.
    fn push(
        &mut self,
        backend: &mut dyn BlockBackend,
        request: Transfer,
        offset: u64,
        addr: u64,
        len: u64,
    ) -> Result<(), IoError> {
        let len = index(len)?;
        let last = self
            .count
            .checked_sub(1)
            .and_then(|last| self.runs.get_mut(last));
        if let Some(last) = last {
            let follows = u64::try_from(last.len)
                .ok()
                .and_then(|last_len| last.addr.checked_add(last_len))
                == Some(addr);
            if let (true, Some(merged)) = (follows, last.len.checked_add(len)) {
                last.len = merged;
                return Ok(());
            }
        }
        if self.count >= self.runs.len() {
            self.flush(backend, request)?;
        }
        if self.count == 0 {
            self.offset = offset;
        }
        // `runs` is never empty (MAX_RUNS long), so after a flush there is room.
        let slot = self.runs.get_mut(self.count).ok_or(IoError::BadBuffer)?;
        *slot = GuestRun { addr, len };
        self.count += 1;
        Ok(())
    }

    /// Hands the runs held to the backend in one call (nothing when there are none).
    fn flush(&mut self, backend: &mut dyn BlockBackend, request: Transfer) -> Result<(), IoError> {
        let count = core::mem::take(&mut self.count);
        let runs = self.runs.get(..count).ok_or(IoError::BadBuffer)?;
        if runs.is_empty() {
            return Ok(());
        }
        // Inside the volume: `transfer` checked the whole region.
        let at = request.sector + self.offset / SECTOR;
        if request.write {
            backend.write_runs(at, runs)
        } else {
            backend.read_runs(at, runs)
        }
    }
}

/// Where an IN or OUT request's data goes.
#[derive(Clone, Copy)]
struct Transfer {
    /// The request's first sector (that of region offset 0).
    sector: u64,
    /// OUT (the guest's bytes reach the volume) rather than IN.
    write: bool,
}

impl BlkDevice {
    /// Handles one well-formed chain and returns the used length: the bytes written from
    /// the start of the writable buffers, status included when they reach it.
    pub(super) fn handle(&mut self, memory: &mut dyn GuestMemory, segments: &[Segment]) -> u32 {
        let split = segments
            .iter()
            .position(|segment| segment.writable)
            .unwrap_or(segments.len());
        let (readable, writable) = segments.split_at(split);
        let readable_len: u64 = readable.iter().map(|segment| u64::from(segment.len)).sum();
        let writable_len: u64 = writable.iter().map(|segment| u64::from(segment.len)).sum();
        let Some(status_addr) = writable
            .iter()
            .rev()
            .find(|segment| segment.len > 0)
            .map(|segment| segment.addr + u64::from(segment.len) - 1)
        else {
            // No status byte: nothing can be reported (spec 5.2.6.1 requires one).
            return 0;
        };
        let data_out = Region {
            segments: writable,
            skip: 0,
            len: writable_len - 1,
        };
        let (status, written) = if readable_len < HEADER_BYTES {
            (STATUS_IOERR, 0)
        } else {
            let data_in = Region {
                segments: readable,
                skip: HEADER_BYTES,
                len: readable_len - HEADER_BYTES,
            };
            self.execute(memory, readable, data_in, data_out)
        };
        if memory.write(status_addr, &[status]).is_err() {
            return 0;
        }
        let used = if written == data_out.len {
            written + 1
        } else {
            written
        };
        u32::try_from(used).unwrap_or(u32::MAX)
    }

    /// Reads the header and runs the request; returns the status and the data bytes written.
    fn execute(
        &mut self,
        memory: &mut dyn GuestMemory,
        readable: &[Segment],
        data_in: Region<'_>,
        data_out: Region<'_>,
    ) -> (u8, u64) {
        let header_region = Region {
            segments: readable,
            skip: 0,
            len: HEADER_BYTES,
        };
        let mut header = [0u8; HEADER_BYTES as usize];
        if header_region.read(memory, 0, &mut header).is_err() {
            return (STATUS_IOERR, 0);
        }
        let [t0, t1, t2, t3, _, _, _, _, s0, s1, s2, s3, s4, s5, s6, s7] = header;
        let request_type = u32::from_le_bytes([t0, t1, t2, t3]);
        let sector = u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
        match request_type {
            T_IN if data_in.len == 0 => match self.transfer(memory, data_out, sector, false) {
                Ok(()) => (STATUS_OK, data_out.len),
                Err(_) => (STATUS_IOERR, 0),
            },
            T_OUT if data_out.len == 0 => match self.transfer(memory, data_in, sector, true) {
                Ok(()) => (self.write_through(), 0),
                Err(_) => (STATUS_IOERR, 0),
            },
            T_IN | T_OUT => (STATUS_IOERR, 0),
            T_FLUSH => match self.backend.flush() {
                Ok(()) => (STATUS_OK, 0),
                Err(_) => (STATUS_IOERR, 0),
            },
            T_GET_ID => {
                let count = data_out.len.min(self.serial.len() as u64);
                let serial = self.serial;
                match serial.get(..index(count).unwrap_or(0)) {
                    Some(id) if data_out.write(memory, 0, id).is_ok() => (STATUS_OK, count),
                    _ => (STATUS_IOERR, 0),
                }
            }
            T_DISCARD if self.negotiated(VIRTIO_BLK_F_DISCARD) => {
                (self.zeroing(memory, data_in, true), 0)
            }
            T_WRITE_ZEROES if self.negotiated(VIRTIO_BLK_F_WRITE_ZEROES) => {
                (self.zeroing(memory, data_in, false), 0)
            }
            _ => (STATUS_UNSUPP, 0),
        }
    }

    /// Without VIRTIO_BLK_F_FLUSH the driver cannot ask for a flush, so a write is reported
    /// done only once flushed (spec 5.2.6.2: write-through then).
    fn write_through(&mut self) -> u8 {
        if self.negotiated(VIRTIO_BLK_F_FLUSH) || self.backend.flush().is_ok() {
            STATUS_OK
        } else {
            STATUS_IOERR
        }
    }

    /// Whether `count` sectors from `sector` lie inside the volume.
    fn in_range(&self, sector: u64, count: u64) -> bool {
        sector
            .checked_add(count)
            .is_some_and(|end| end <= self.capacity)
    }

    /// Moves the data of an IN (`write == false`) or OUT request between `region` and the
    /// volume at `sector`: the whole sectors as guest runs, those between two bounced
    /// sectors in one backend call; split sectors bounced.
    fn transfer(
        &mut self,
        memory: &mut dyn GuestMemory,
        region: Region<'_>,
        sector: u64,
        write: bool,
    ) -> Result<(), IoError> {
        if !region.len.is_multiple_of(SECTOR) || !self.in_range(sector, region.len / SECTOR) {
            return Err(IoError::OutOfRange);
        }
        let request = Transfer { sector, write };
        let backend: &mut dyn BlockBackend = self.backend.as_mut();
        let mut gather = Gather {
            runs: &mut self.runs,
            count: 0,
            offset: 0,
        };
        // Region offset of the next byte not yet moved; a multiple of 512.
        let mut done = 0;
        for (start, addr, len) in region.pieces() {
            let end = start + len;
            if end <= done {
                // Already moved as part of a bounced sector.
                continue;
            }
            let whole = (end - done) / SECTOR * SECTOR;
            if whole > 0 {
                gather.push(backend, request, done, addr + (done - start), whole)?;
                done += whole;
            }
            if done < end {
                // A sector starts here and continues in the next buffer(s).
                gather.flush(backend, request)?;
                bounce(backend, memory, region, request, done)?;
                done += SECTOR;
            }
        }
        gather.flush(backend, request)
    }

    /// DISCARD (`discard`) or WRITE_ZEROES: reads every segment once, checks them all,
    /// then runs them (spec 5.2.6.2).
    fn zeroing(&mut self, memory: &mut dyn GuestMemory, data: Region<'_>, discard: bool) -> u8 {
        let mut raw = [0u8; ZEROING_SEGMENT_BYTES * MAX_ZEROING_SEGMENTS as usize];
        let segment_bytes = ZEROING_SEGMENT_BYTES as u64;
        if data.len == 0
            || !data.len.is_multiple_of(segment_bytes)
            || data.len / segment_bytes > u64::from(MAX_ZEROING_SEGMENTS)
        {
            return STATUS_IOERR;
        }
        let Some(raw) = raw.get_mut(..index(data.len).unwrap_or(usize::MAX)) else {
            return STATUS_IOERR;
        };
        if data.read(memory, 0, raw).is_err() {
            return STATUS_IOERR;
        }
        let segments = raw
            .chunks_exact(ZEROING_SEGMENT_BYTES)
            .map(parse_zeroing_segment);
        for (sector, count, flags) in segments.clone() {
            if flags & !FLAG_UNMAP != 0 || (discard && flags & FLAG_UNMAP != 0) {
                // Unknown flags, or unmap on a discard: spec 5.2.6.2 asks for UNSUPP.
                return STATUS_UNSUPP;
            }
            if count > MAX_ZEROING_SECTORS || !self.in_range(sector, u64::from(count)) {
                return STATUS_IOERR;
            }
        }
        for (sector, count, _) in segments {
            let result = if discard {
                self.backend.discard(sector, u64::from(count))
            } else {
                self.backend.write_zeroes(sector, u64::from(count))
            };
            if result.is_err() {
                return STATUS_IOERR;
            }
        }
        self.write_through()
    }
}

/// Moves the sector at region offset `offset` through a Janus buffer.
fn bounce(
    backend: &mut dyn BlockBackend,
    memory: &mut dyn GuestMemory,
    region: Region<'_>,
    request: Transfer,
    offset: u64,
) -> Result<(), IoError> {
    let mut bounce = [0u8; SECTOR_BYTES];
    let at = request.sector + offset / SECTOR;
    if request.write {
        region.read(memory, offset, &mut bounce)?;
        backend.write(at, Buffer::Janus(&mut bounce))
    } else {
        backend.read(at, Buffer::Janus(&mut bounce))?;
        region.write(memory, offset, &bounce)
    }
}

/// Decodes one 16-byte discard / write-zeroes segment into (sector, num_sectors, flags).
fn parse_zeroing_segment(bytes: &[u8]) -> (u64, u32, u32) {
    let mut field = [0u8; ZEROING_SEGMENT_BYTES];
    let count = bytes.len().min(ZEROING_SEGMENT_BYTES);
    field[..count].copy_from_slice(&bytes[..count]);
    let [s0, s1, s2, s3, s4, s5, s6, s7, n0, n1, n2, n3, f0, f1, f2, f3] = field;
    (
        u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
        u32::from_le_bytes([n0, n1, n2, n3]),
        u32::from_le_bytes([f0, f1, f2, f3]),
    )
}

//! The audit log: append-only, checksummed records of Janus' decisions about the
//! shared folder, kept on the `janus` partition.
//!
//! # Layout
//!
//! The first MiB of the partition (sectors 0..2048) is reserved (issue 11: key
//! slots, scrub intent). The rest is a ring of 4 KiB segments of 8 sectors. The
//! first sector of a segment is its header ([`segment`]), written once when the
//! segment starts, together with its first record; records ([`record`]) follow,
//! each starting on a sector boundary and taking one or two sectors.
//!
//! Segment `S` (0, 1, 2, ... over the log's life) lives in slot `S mod N`. When
//! the ring is full the oldest segment is overwritten, and the new header counts
//! how many segments were overwritten so far and how many records they held
//! (records are numbered from 1, so the records lost are those numbered up to
//! the last one of the last overwritten segment): this is the counted rotation.
//!
//! # Why a record never shares a sector with an earlier one
//!
//! A sector that holds a record the caller may already have flushed (and so
//! acknowledged to a guest) is never written again until the ring comes around.
//! A write cut by a power loss can then only damage the record being written:
//! earlier records are intact whatever a torn sector holds. The cost is space:
//! 7 records per segment (about 12,500 records in the default 8 MiB partition).
//!
//! # Crash recovery ([`AuditLog::open`])
//!
//! Open reads every segment header, takes the valid one with the highest number
//! as the head, and reads its records until the first that is not intact, not
//! the next number, or not chained to the one before (each record carries the
//! CRC of its predecessor, the first one the header's). The head's sectors after
//! that are zeroed (and flushed), and a new segment is always written whole
//! (header, first record, zeros), so nothing left from before a crash can follow
//! a later record. A blank (zeroed) area is an empty log: no formatting needed.
//!
//! What survives: every record that was flushed, except those rotation has
//! overwritten since. Records written but not flushed may survive too (the
//! record of an operation is written before the commit that acknowledges it),
//! and after a crash some of them may be missing while later ones are present;
//! the numbers then have a hole, which only ever covers unacknowledged records.
//!
//! # Who writes it
//!
//! Only Janus: the channel calls [`AuditLog::append`] for its own decisions. No
//! guest request reaches the disk area, and the export is rendered text.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::disk::{BlockDisk, DiskError};
use super::fs::Who;

pub mod clock;
pub mod export;
pub mod record;
mod segment;

pub use export::{exported_to_manager, Export, Labels, EXPORT_MAX_BYTES, EXPORT_MAX_RECORDS};
use record::SECTOR_BYTES;
pub use record::{Op, QuotaKind, Record, RecordPath, JANUS, PATH_MAX_BYTES};
use segment::{Header, Scan, SECTORS_PER_SEGMENT, SEGMENT_BYTES};

/// First sector of the log: the first MiB is reserved for keys (issue 11).
pub const LOG_START_SECTOR: u64 = 2048;
/// Fewest segments a log may have.
pub const MIN_SEGMENTS: u64 = 2;
/// Most records [`AuditLog::recent`] returns.
pub const RECENT_MAX: usize = 32;

/// Why the log could not do what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditError {
    /// The partition has room for fewer than [`MIN_SEGMENTS`] segments after the
    /// reserved first MiB.
    TooSmall,
    /// The disk failed a request.
    Disk,
    /// The sequence numbers ran out (a hostile partition claims 2^63 of them).
    Exhausted,
    /// Only the manager gets the export.
    NotManager,
}

impl From<DiskError> for AuditError {
    fn from(_: DiskError) -> Self {
        AuditError::Disk
    }
}

impl fmt::Display for AuditError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            AuditError::TooSmall => "the janus partition has no room for an audit log",
            AuditError::Disk => "the janus partition failed a request",
            AuditError::Exhausted => "the audit log's sequence numbers ran out",
            AuditError::NotManager => "only the manager personality gets the audit export",
        })
    }
}

/// Where the next record goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    /// The current segment's header.
    header: Header,
    /// The next free sector inside it (1 to [`SECTORS_PER_SEGMENT`]).
    next_sector: u64,
    /// The CRC of its last record (or header): the next record's chain.
    chain: u32,
}

/// The audit log on one partition.
pub struct AuditLog<D: BlockDisk> {
    disk: D,
    /// Segments in the ring.
    segments: u64,
    /// The current segment, `None` while the log is empty.
    head: Option<Head>,
    /// The number the next record gets.
    next_seq: u64,
    /// Names and manager, for the export.
    labels: Labels,
}

impl<D: BlockDisk> AuditLog<D> {
    /// Opens the log on `disk` (the `janus` partition), recovering after a crash.
    ///
    /// # Errors
    ///
    /// [`AuditError::TooSmall`] for a partition under 1 MiB plus two segments,
    /// [`AuditError::Disk`] when a read or the cleaning writes fail.
    pub fn open(mut disk: D, labels: Labels) -> Result<Self, AuditError> {
        let segments = disk.sectors().saturating_sub(LOG_START_SECTOR) / SECTORS_PER_SEGMENT;
        if segments < MIN_SEGMENTS {
            return Err(AuditError::TooSmall);
        }
        let mut valid: Vec<Header> = Vec::new();
        let mut sector = [0u8; SECTOR_BYTES];
        for slot in 0..segments {
            disk.read(segment::first_sector(slot), &mut sector)?;
            if let Some(header) = Header::decode(&sector, slot, segments) {
                valid.push(header);
            }
        }
        let mut dirty = false;
        let mut buffer = alloc::vec![0u8; SEGMENT_BYTES];
        let mut head = None;
        if let Some(header) = valid.iter().copied().max_by_key(|header| header.seq) {
            let first = segment::first_sector(header.slot(segments));
            disk.read(first, &mut buffer)?;
            let scan = Scan::of(&buffer, &header);
            let end = scan.end_sector as usize * SECTOR_BYTES;
            if buffer
                .get(end..)
                .is_some_and(|rest| rest.iter().any(|&byte| byte != 0))
            {
                let zeros = alloc::vec![0u8; SEGMENT_BYTES.saturating_sub(end)];
                disk.write(first + scan.end_sector, &zeros)?;
                dirty = true;
            }
            head = Some((header, scan));
        }
        if dirty {
            disk.flush()?;
        }
        let (head, next_seq) = match head {
            Some((header, scan)) => (
                Some(Head {
                    header,
                    next_sector: scan.end_sector,
                    chain: scan.chain,
                }),
                scan.next_seq,
            ),
            None => (None, 1),
        };
        Ok(AuditLog {
            disk,
            segments,
            head,
            next_seq,
            labels,
        })
    }

    /// Appends `record` (its `seq` is ignored) and returns the number it got. The
    /// record's sectors are written but not flushed: the caller's store commit
    /// flushes (or [`AuditLog::flush`]).
    ///
    /// # Errors
    ///
    /// [`AuditError::Disk`] when a read or the write fails (the log is unchanged
    /// and the next append writes the same place), [`AuditError::Exhausted`].
    pub fn append(&mut self, record: &Record) -> Result<u64, AuditError> {
        let seq = self.next_seq;
        let next_seq = seq.checked_add(1).ok_or(AuditError::Exhausted)?;
        let sectors = record.sectors() as u64;
        let fits = self
            .head
            .is_some_and(|head| head.next_sector + sectors <= SECTORS_PER_SEGMENT);
        let mut encoded = [0u8; 2 * SECTOR_BYTES];
        if let (true, Some(head)) = (fits, self.head) {
            let (used, crc) = record.encode(seq, head.header.seq, head.chain, &mut encoded);
            let bytes = used.div_ceil(SECTOR_BYTES) * SECTOR_BYTES;
            let at = segment::first_sector(head.header.slot(self.segments)) + head.next_sector;
            self.disk
                .write(at, encoded.get(..bytes).unwrap_or_default())?;
            self.head = Some(Head {
                next_sector: head.next_sector + sectors,
                chain: crc,
                ..head
            });
        } else {
            // The whole segment is written, zeros after the record, so nothing
            // left in the slot from before can follow the new record.
            let header = self.next_header(seq)?;
            let mut write = alloc::vec![0u8; SEGMENT_BYTES];
            let mut crc = 0;
            if let Some((first, rest)) = write.split_first_chunk_mut::<SECTOR_BYTES>() {
                let chain = header.encode(first);
                let (used, record_crc) = record.encode(seq, header.seq, chain, &mut encoded);
                crc = record_crc;
                if let (Some(slot), Some(bytes)) = (rest.get_mut(..used), encoded.get(..used)) {
                    slot.copy_from_slice(bytes);
                }
            }
            self.disk
                .write(segment::first_sector(header.slot(self.segments)), &write)?;
            self.head = Some(Head {
                header,
                next_sector: 1 + sectors,
                chain: crc,
            });
        }
        self.next_seq = next_seq;
        Ok(seq)
    }

    /// The header of the segment after the head, whose first record is `seq`,
    /// with the rotation counts brought up to date.
    fn next_header(&mut self, seq: u64) -> Result<Header, AuditError> {
        let (number, mut overwritten, mut lost) = match self.head {
            Some(head) => (
                head.header
                    .seq
                    .checked_add(1)
                    .ok_or(AuditError::Exhausted)?,
                head.header.segments_overwritten,
                head.header.records_lost,
            ),
            None => (0, 0, 0),
        };
        if number >= segment::SEQ_LIMIT {
            return Err(AuditError::Exhausted);
        }
        if number >= self.segments {
            // The segment about to be overwritten: everything up to its last
            // record is gone after this write.
            let old_seq = number - self.segments;
            overwritten = old_seq + 1;
            let slot = number % self.segments;
            let mut buffer = alloc::vec![0u8; SEGMENT_BYTES];
            self.disk.read(segment::first_sector(slot), &mut buffer)?;
            let first = buffer.first_chunk::<SECTOR_BYTES>();
            if let Some(old) = first.and_then(|first| Header::decode(first, slot, self.segments)) {
                if old.seq == old_seq {
                    let scan = Scan::of(&buffer, &old);
                    lost = lost.max(scan.next_seq.saturating_sub(1));
                }
            }
            lost = lost.min(seq.saturating_sub(1));
        }
        Ok(Header {
            seq: number,
            segments: self.segments,
            first_record_seq: seq,
            segments_overwritten: overwritten,
            records_lost: lost,
        })
    }

    /// Makes every appended record durable.
    ///
    /// # Errors
    ///
    /// [`AuditError::Disk`].
    pub fn flush(&mut self) -> Result<(), AuditError> {
        Ok(self.disk.flush()?)
    }

    /// The number the next record will get (1 for an empty log).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Records lost to rotation so far.
    pub fn records_lost(&self) -> u64 {
        self.head.map_or(0, |head| head.header.records_lost)
    }

    /// Segments overwritten by rotation so far.
    pub fn segments_overwritten(&self) -> u64 {
        self.head.map_or(0, |head| head.header.segments_overwritten)
    }

    /// Segments in the ring.
    pub fn capacity_segments(&self) -> u64 {
        self.segments
    }

    /// The names and manager the export uses.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The disk, for tests and for the lead's wiring.
    pub fn disk_mut(&mut self) -> &mut D {
        &mut self.disk
    }

    /// Gives the disk back.
    pub fn into_disk(self) -> D {
        self.disk
    }

    /// The records of segment `number`, read from disk; empty if that segment is
    /// not (or no longer) in the ring intact.
    fn segment_records(&mut self, number: u64) -> Result<Vec<Record>, AuditError> {
        let slot = number % self.segments;
        let mut buffer = alloc::vec![0u8; SEGMENT_BYTES];
        self.disk.read(segment::first_sector(slot), &mut buffer)?;
        let header = buffer
            .first_chunk::<SECTOR_BYTES>()
            .and_then(|first| Header::decode(first, slot, self.segments));
        Ok(match header {
            Some(header) if header.seq == number => Scan::records(&buffer, &header),
            _ => Vec::new(),
        })
    }

    /// The numbers of the segments still in the ring, oldest first.
    fn live_segments(&self) -> core::ops::RangeInclusive<u64> {
        match self.head {
            Some(head) => {
                let newest = head.header.seq;
                newest.saturating_sub(self.segments - 1)..=newest
            }
            #[allow(clippy::reversed_empty_ranges)] // An empty range on purpose.
            None => 1..=0,
        }
    }

    /// Every record the log still holds, oldest first, unfiltered: for host
    /// tools that read a disk image (`janus-store audit`, the tests), never for a
    /// guest.
    ///
    /// # Errors
    ///
    /// [`AuditError::Disk`].
    pub fn all_records(&mut self) -> Result<Vec<Record>, AuditError> {
        let mut out = Vec::new();
        for number in self.live_segments() {
            out.append(&mut self.segment_records(number)?);
        }
        Ok(out)
    }

    /// The last `n` records (at most [`RECENT_MAX`]), oldest first, read back from
    /// disk: what the console's hotkey shows.
    ///
    /// # Errors
    ///
    /// [`AuditError::Disk`].
    pub fn recent(&mut self, n: usize) -> Result<Vec<Record>, AuditError> {
        let n = n.min(RECENT_MAX);
        let mut out: Vec<Record> = Vec::new();
        for number in self.live_segments().rev() {
            if out.len() >= n {
                break;
            }
            let mut records = self.segment_records(number)?;
            let keep = records.len().saturating_sub(n - out.len());
            records.drain(..keep);
            records.append(&mut out);
            out = records;
        }
        Ok(out)
    }

    /// Renders for `reader` the records numbered after `after_seq`, filtered by
    /// [`exported_to_manager`], one line each (the format is in [`export`]), in at
    /// most `max_bytes` (capped at [`EXPORT_MAX_BYTES`]) and looking at no more than
    /// [`EXPORT_MAX_RECORDS`] records; [`Export::next_after`] says where to resume.
    ///
    /// # Errors
    ///
    /// [`AuditError::NotManager`] unless `reader` is the manager,
    /// [`AuditError::Disk`].
    pub fn export(
        &mut self,
        reader: Who,
        after_seq: u64,
        max_bytes: usize,
    ) -> Result<Export, AuditError> {
        if self.labels.manager != Some(reader) {
            return Err(AuditError::NotManager);
        }
        let mut builder = export::Builder::new(max_bytes, after_seq, self.records_lost());
        // The first segment holding a record after `after_seq`: walk back from the
        // head until one starts at or before it (bounded by the ring's size).
        let live = self.live_segments();
        let mut start = *live.start();
        let mut header_sector = [0u8; SECTOR_BYTES];
        for number in live.clone().rev() {
            let slot = number % self.segments;
            self.disk
                .read(segment::first_sector(slot), &mut header_sector)?;
            if let Some(header) = Header::decode(&header_sector, slot, self.segments) {
                if header.seq == number && header.first_record_seq <= after_seq.saturating_add(1) {
                    start = number;
                    break;
                }
            }
        }
        'segments: for number in start..=*live.end() {
            for record in self.segment_records(number)? {
                if record.seq <= after_seq {
                    continue;
                }
                if !builder.offer(&record, &self.labels) {
                    break 'segments;
                }
            }
        }
        Ok(builder.finish())
    }
}

/// Formats `names` for [`Labels`] from `&str`s.
pub fn owned_names(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| String::from(*name)).collect()
}

#[cfg(test)]
mod tests;

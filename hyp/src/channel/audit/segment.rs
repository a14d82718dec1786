//! A 4 KiB segment of the log: its header sector and the records after it.
//!
//! # Header (the segment's first sector; the rest of that sector is zero)
//!
//! | offset | size | field                                                      |
//! |--------|------|------------------------------------------------------------|
//! | 0x00   | 8    | magic, `b"JANUSLOG"`                                       |
//! | 0x08   | 2    | version, 1                                                 |
//! | 0x0a   | 2    | sectors per segment, 8                                     |
//! | 0x0c   | 4    | reserved, zero                                             |
//! | 0x10   | 8    | segment number (its slot is this modulo the ring's size)   |
//! | 0x18   | 8    | segments in the ring (a resized partition starts afresh)   |
//! | 0x20   | 8    | number of its first record                                 |
//! | 0x28   | 8    | segments overwritten by rotation before it was written     |
//! | 0x30   | 8    | records lost to rotation before it was written             |
//! | 0x38   | 4    | CRC32C of bytes 0x00..0x38                                 |

use alloc::vec::Vec;

use super::record::{read_u16, read_u32, read_u64, Record, CRC32C, SECTOR_BYTES};
use super::LOG_START_SECTOR;

/// Sectors in a segment.
pub(super) const SECTORS_PER_SEGMENT: u64 = 8;
/// Bytes in a segment.
pub(super) const SEGMENT_BYTES: usize = SECTORS_PER_SEGMENT as usize * SECTOR_BYTES;
/// Segment and record numbers at or above this are refused (no arithmetic on
/// what a hostile partition claims can overflow).
pub(super) const SEQ_LIMIT: u64 = 1 << 62;

const MAGIC: [u8; 8] = *b"JANUSLOG";
const VERSION: u16 = 1;
const CRC_AT: usize = 0x38;

/// The first sector of slot `slot`.
pub(super) fn first_sector(slot: u64) -> u64 {
    LOG_START_SECTOR + slot * SECTORS_PER_SEGMENT
}

/// A segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    /// The segment's number.
    pub seq: u64,
    /// Segments in the ring.
    pub segments: u64,
    /// Number of its first record.
    pub first_record_seq: u64,
    /// Segments overwritten before it.
    pub segments_overwritten: u64,
    /// Records lost to rotation before it.
    pub records_lost: u64,
}

impl Header {
    /// Its slot in a ring of `segments`.
    pub fn slot(&self, segments: u64) -> u64 {
        self.seq % segments
    }

    /// Writes the header sector; returns its CRC (the first record's chain).
    pub fn encode(&self, out: &mut [u8; SECTOR_BYTES]) -> u32 {
        out.fill(0);
        let fields: [(usize, &[u8]); 8] = [
            (0x00, &MAGIC),
            (0x08, &VERSION.to_le_bytes()),
            (0x0a, &(SECTORS_PER_SEGMENT as u16).to_le_bytes()),
            (0x10, &self.seq.to_le_bytes()),
            (0x18, &self.segments.to_le_bytes()),
            (0x20, &self.first_record_seq.to_le_bytes()),
            (0x28, &self.segments_overwritten.to_le_bytes()),
            (0x30, &self.records_lost.to_le_bytes()),
        ];
        for (at, bytes) in fields {
            if let Some(slot) = out.get_mut(at..at + bytes.len()) {
                slot.copy_from_slice(bytes);
            }
        }
        let crc = CRC32C.checksum(out.get(..CRC_AT).unwrap_or_default());
        if let Some(slot) = out.get_mut(CRC_AT..CRC_AT + 4) {
            slot.copy_from_slice(&crc.to_le_bytes());
        }
        crc
    }

    /// The CRC its encoding has (the first record's chain).
    pub fn crc(&self) -> u32 {
        let mut sector = [0u8; SECTOR_BYTES];
        self.encode(&mut sector)
    }

    /// Reads the header sector of slot `slot` of a ring of `segments`, if it is
    /// intact and belongs there. Never panics.
    pub fn decode(bytes: &[u8], slot: u64, segments: u64) -> Option<Header> {
        if bytes.get(..8)? != MAGIC
            || read_u16(bytes, 0x08)? != VERSION
            || u64::from(read_u16(bytes, 0x0a)?) != SECTORS_PER_SEGMENT
            || read_u32(bytes, 0x0c)? != 0
            || read_u32(bytes, CRC_AT)? != CRC32C.checksum(bytes.get(..CRC_AT)?)
        {
            return None;
        }
        let header = Header {
            seq: read_u64(bytes, 0x10)?,
            segments: read_u64(bytes, 0x18)?,
            first_record_seq: read_u64(bytes, 0x20)?,
            segments_overwritten: read_u64(bytes, 0x28)?,
            records_lost: read_u64(bytes, 0x30)?,
        };
        let sane = header.segments == segments
            && header.seq < SEQ_LIMIT
            && header.seq % segments == slot
            && (1..SEQ_LIMIT).contains(&header.first_record_seq)
            && header.records_lost < header.first_record_seq
            && header.segments_overwritten <= header.seq;
        sane.then_some(header)
    }
}

/// What reading a segment's records found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Scan {
    /// The sector after its last intact record.
    pub end_sector: u64,
    /// The number the next record gets.
    pub next_seq: u64,
    /// The CRC the next record chains to.
    pub chain: u32,
}

impl Scan {
    /// Reads the records of `segment` (its [`SEGMENT_BYTES`], header first) up to
    /// the first that is not intact or not the next number.
    pub fn of(segment: &[u8], header: &Header) -> Scan {
        let mut scan = Scan {
            end_sector: 1,
            next_seq: header.first_record_seq,
            chain: header.crc(),
        };
        walk(segment, header, |_, at| scan = at);
        scan
    }

    /// The intact records of `segment`, in order.
    pub fn records(segment: &[u8], header: &Header) -> Vec<Record> {
        let mut records = Vec::new();
        walk(segment, header, |record, _| records.push(record));
        records
    }
}

/// Calls `each` with every intact record of `segment` and the scan after it.
fn walk(segment: &[u8], header: &Header, mut each: impl FnMut(Record, Scan)) {
    let mut sector = 1u64;
    let mut seq = header.first_record_seq;
    let mut chain = header.crc();
    while sector < SECTORS_PER_SEGMENT {
        let at = sector as usize * SECTOR_BYTES;
        let Some((record, len, crc)) = segment
            .get(at..)
            .and_then(|rest| Record::decode(rest, seq, header.seq, chain))
        else {
            return;
        };
        sector += len.div_ceil(SECTOR_BYTES) as u64;
        if sector > SECTORS_PER_SEGMENT {
            return;
        }
        seq += 1;
        chain = crc;
        each(
            record,
            Scan {
                end_sector: sector,
                next_seq: seq,
                chain,
            },
        );
    }
}

//! One audit record: what Janus decided, and its fixed little-endian encoding.
//!
//! # Encoding (version 1)
//!
//! A record starts on a sector boundary and takes one or two 512-byte sectors:
//!
//! | offset | size | field                                                      |
//! |--------|------|------------------------------------------------------------|
//! | 0x00   | 4    | magic, `b"JREC"`                                           |
//! | 0x04   | 2    | length of the record in bytes (0x50 + both paths)          |
//! | 0x06   | 1    | version, 1                                                 |
//! | 0x07   | 1    | operation ([`Op`])                                         |
//! | 0x08   | 8    | sequence number (1, 2, ... over the log's whole life)      |
//! | 0x10   | 8    | sequence number of the segment holding it                  |
//! | 0x18   | 8    | wall-clock seconds since the Unix epoch                    |
//! | 0x20   | 4    | wall-clock nanoseconds                                     |
//! | 0x24   | 1    | who acted (config index; 0xff = Janus itself)              |
//! | 0x25   | 1    | owner label of the object (config index; 0xff = none)      |
//! | 0x26   | 1    | flags: bit 0 monotonic time present, bit 1 path truncated, bit 2 second path truncated |
//! | 0x27   | 1    | detail (per operation, see [`Op`])                         |
//! | 0x28   | 8    | monotonic nanoseconds since boot (0 unless bit 0)          |
//! | 0x30   | 4    | result: 0 or the Linux errno                               |
//! | 0x34   | 4    | CRC32C (Castagnoli) of the whole record with this field zero |
//! | 0x38   | 8    | object number (ino)                                        |
//! | 0x40   | 8    | bytes (written, read, or the size concerned)               |
//! | 0x48   | 2    | path length (at most [`PATH_MAX_BYTES`])                   |
//! | 0x4a   | 2    | second path length (rename: the new path)                  |
//! | 0x4c   | 4    | chain: the CRC of the record before it in the segment, or of the segment header for the first |
//! | 0x50   | ...  | path, then second path, raw bytes                          |

use crc::{Crc, CRC_32_ISCSI};

use crate::channel::fs::{Errno, Ino, Timespec, Who};

/// The `who` of records Janus writes about itself (boot, mount, scrub).
pub const JANUS: Who = 0xff;
/// Longest path kept; longer ones keep their last bytes and are marked truncated.
pub const PATH_MAX_BYTES: usize = 255;
/// Bytes of a record before its paths.
pub const FIXED_BYTES: usize = 0x50;
/// Longest record.
pub const MAX_RECORD_BYTES: usize = FIXED_BYTES + 2 * PATH_MAX_BYTES;
/// A sector.
pub const SECTOR_BYTES: usize = 512;

/// The record magic.
const MAGIC: [u8; 4] = *b"JREC";
/// The encoding version.
const VERSION: u8 = 1;
/// "No owner" in the owner byte.
const NO_OWNER: u8 = 0xff;
/// Flag bits.
const FLAG_MONO: u8 = 1 << 0;
const FLAG_PATH_TRUNCATED: u8 = 1 << 1;
const FLAG_PATH2_TRUNCATED: u8 = 1 << 2;
/// Where the CRC sits.
const CRC_AT: usize = 0x34;

/// CRC32C, the checksum of every record and segment header.
pub(super) const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// What happened. `detail` is an [`crate::channel::policy::Access`] bit for
/// [`Op::Denied`], a [`QuotaKind`] for [`Op::QuotaRefused`], 0 otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Op {
    /// A file was created.
    Create,
    /// A directory was created.
    Mkdir,
    /// A file was written: one record per open-to-close, `bytes` written.
    Write,
    /// Another personality's file was read: one record per open-to-close.
    Read,
    /// Renamed: `path` to `path2`.
    Rename,
    /// A file or directory was removed.
    Delete,
    /// A file came to sit in the release folder.
    Release,
    /// A released file left the release folder (the release is withdrawn).
    Withdraw,
    /// The policy refused an access (`detail` = the right's bit).
    Denied,
    /// A quota or the file size limit refused an operation (`detail` = [`QuotaKind`]).
    QuotaRefused,
    /// The store was mounted.
    Mount,
    /// Janus started.
    #[default]
    Boot,
    /// A scrub (issue 11).
    Scrub,
}

impl Op {
    /// Every operation, in code order.
    pub const ALL: [Op; 13] = [
        Op::Create,
        Op::Mkdir,
        Op::Write,
        Op::Read,
        Op::Rename,
        Op::Delete,
        Op::Release,
        Op::Withdraw,
        Op::Denied,
        Op::QuotaRefused,
        Op::Mount,
        Op::Boot,
        Op::Scrub,
    ];

    /// The code stored on disk.
    pub const fn code(self) -> u8 {
        match self {
            Op::Create => 1,
            Op::Mkdir => 2,
            Op::Write => 3,
            Op::Read => 4,
            Op::Rename => 5,
            Op::Delete => 6,
            Op::Release => 7,
            Op::Withdraw => 8,
            Op::Denied => 9,
            Op::QuotaRefused => 10,
            Op::Mount => 11,
            Op::Boot => 12,
            Op::Scrub => 13,
        }
    }

    /// The operation a code names.
    pub fn from_code(code: u8) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.code() == code)
    }

    /// The word the export uses.
    pub const fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Mkdir => "mkdir",
            Op::Write => "write",
            Op::Read => "read",
            Op::Rename => "rename",
            Op::Delete => "delete",
            Op::Release => "release",
            Op::Withdraw => "withdraw",
            Op::Denied => "denied",
            Op::QuotaRefused => "quota",
            Op::Mount => "mount",
            Op::Boot => "boot",
            Op::Scrub => "scrub",
        }
    }
}

/// Which limit refused an operation (`detail` of [`Op::QuotaRefused`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaKind {
    /// The personality's bytes.
    Bytes = 1,
    /// The personality's files.
    Files = 2,
    /// The largest file.
    FileSize = 3,
}

/// A path kept in a record: at most [`PATH_MAX_BYTES`] bytes, no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RecordPath {
    bytes: [u8; PATH_MAX_BYTES],
    len: u8,
    truncated: bool,
}

impl RecordPath {
    /// No path.
    pub const EMPTY: RecordPath = RecordPath {
        bytes: [0; PATH_MAX_BYTES],
        len: 0,
        truncated: false,
    };

    /// `path`, or its last [`PATH_MAX_BYTES`] bytes (cut at a character boundary)
    /// marked truncated: the end of a path names the file.
    pub fn new(path: &str) -> RecordPath {
        let mut start = path.len().saturating_sub(PATH_MAX_BYTES);
        while !path.is_char_boundary(start) {
            start += 1;
        }
        let kept = path.as_bytes().get(start..).unwrap_or_default();
        let mut out = RecordPath::from_bytes(kept);
        out.truncated = start > 0;
        out
    }

    /// Raw bytes as read from disk (at most [`PATH_MAX_BYTES`] are kept).
    fn from_bytes(bytes: &[u8]) -> RecordPath {
        let mut out = RecordPath::EMPTY;
        let kept = bytes.get(..PATH_MAX_BYTES).unwrap_or(bytes);
        if let Some(slot) = out.bytes.get_mut(..kept.len()) {
            slot.copy_from_slice(kept);
        }
        // At most PATH_MAX_BYTES (255), so it fits in a u8.
        out.len = u8::try_from(kept.len()).unwrap_or(u8::MAX);
        out
    }

    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// True when the beginning of the path was cut off.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl Default for RecordPath {
    fn default() -> Self {
        RecordPath::EMPTY
    }
}

impl core::fmt::Debug for RecordPath {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            formatter,
            "{:?}{}",
            core::str::from_utf8(self.as_bytes()).unwrap_or("<bytes>"),
            if self.truncated { " (truncated)" } else { "" }
        )
    }
}

/// One audit record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Sequence number; [`super::AuditLog::append`] assigns it (what is passed in
    /// is ignored).
    pub seq: u64,
    /// Wall-clock time of the decision.
    pub time: Timespec,
    /// Nanoseconds since boot, if the caller has them.
    pub mono_ns: Option<u64>,
    /// Who acted ([`JANUS`] for Janus itself).
    pub who: Who,
    /// What happened.
    pub op: Op,
    /// Per operation (see [`Op`]).
    pub detail: u8,
    /// 0 or the errno the guest got.
    pub result: u32,
    /// The owner label of the object, if it has one.
    pub owner: Option<Who>,
    /// The object's number (0 if none).
    pub ino: Ino,
    /// Bytes written, read or concerned.
    pub bytes: u64,
    /// The object's path from the root of the share (`/a/b`).
    pub path: RecordPath,
    /// The second path (rename: the new one).
    pub path2: RecordPath,
}

impl Record {
    /// A record of `op` by `who`, everything else zero or empty.
    pub fn new(op: Op, who: Who) -> Record {
        Record {
            op,
            who,
            ..Record::default()
        }
    }

    /// The result as an errno, `None` for success.
    pub fn errno(&self) -> Option<Errno> {
        (self.result != 0).then_some(Errno(self.result))
    }

    /// Bytes the encoding takes.
    pub fn encoded_len(&self) -> usize {
        FIXED_BYTES + self.path.as_bytes().len() + self.path2.as_bytes().len()
    }

    /// Sectors the encoding takes (1 or 2).
    pub fn sectors(&self) -> usize {
        self.encoded_len().div_ceil(SECTOR_BYTES)
    }

    /// Encodes the record into `out` (zeroed to a whole number of sectors), as
    /// record `seq` of segment `segment`; returns the bytes used.
    pub(super) fn encode(
        &self,
        seq: u64,
        segment: u64,
        chain: u32,
        out: &mut [u8; 2 * SECTOR_BYTES],
    ) -> (usize, u32) {
        out.fill(0);
        let path = self.path.as_bytes();
        let path2 = self.path2.as_bytes();
        let len = self.encoded_len();
        let mut flags = 0;
        if self.mono_ns.is_some() {
            flags |= FLAG_MONO;
        }
        if self.path.truncated {
            flags |= FLAG_PATH_TRUNCATED;
        }
        if self.path2.truncated {
            flags |= FLAG_PATH2_TRUNCATED;
        }
        let mut put = |at: usize, bytes: &[u8]| {
            if let Some(slot) = out.get_mut(at..at + bytes.len()) {
                slot.copy_from_slice(bytes);
            }
        };
        put(0x00, &MAGIC);
        // At most MAX_RECORD_BYTES (590): fits in u16.
        put(0x04, &u16::try_from(len).unwrap_or(u16::MAX).to_le_bytes());
        put(0x06, &[VERSION, self.op.code()]);
        put(0x08, &seq.to_le_bytes());
        put(0x10, &segment.to_le_bytes());
        put(0x18, &self.time.sec.to_le_bytes());
        put(0x20, &self.time.nsec.to_le_bytes());
        put(
            0x24,
            &[self.who, self.owner.unwrap_or(NO_OWNER), flags, self.detail],
        );
        put(0x28, &self.mono_ns.unwrap_or(0).to_le_bytes());
        put(0x30, &self.result.to_le_bytes());
        put(0x38, &self.ino.to_le_bytes());
        put(0x40, &self.bytes.to_le_bytes());
        put(0x48, &(path.len() as u16).to_le_bytes());
        put(0x4a, &(path2.len() as u16).to_le_bytes());
        put(0x4c, &chain.to_le_bytes());
        put(FIXED_BYTES, path);
        put(FIXED_BYTES + path.len(), path2);
        let crc = CRC32C.checksum(out.get(..len).unwrap_or_default());
        if let Some(slot) = out.get_mut(CRC_AT..CRC_AT + 4) {
            slot.copy_from_slice(&crc.to_le_bytes());
        }
        (len, crc)
    }

    /// Decodes the record at the start of `bytes` if it is intact and is record
    /// `seq` of segment `segment` following a record (or header) whose CRC is
    /// `chain`; returns it, the bytes it takes and its CRC. Never panics.
    pub(super) fn decode(
        bytes: &[u8],
        seq: u64,
        segment: u64,
        chain: u32,
    ) -> Option<(Record, usize, u32)> {
        if bytes.get(..4)? != MAGIC {
            return None;
        }
        let len = usize::from(read_u16(bytes, 0x04)?);
        if !(FIXED_BYTES..=MAX_RECORD_BYTES).contains(&len) {
            return None;
        }
        let body = bytes.get(..len)?;
        let stored_crc = read_u32(body, CRC_AT)?;
        let mut digest = CRC32C.digest();
        digest.update(body.get(..CRC_AT)?);
        digest.update(&[0; 4]);
        digest.update(body.get(CRC_AT + 4..)?);
        if digest.finalize() != stored_crc {
            return None;
        }
        if *body.get(0x06)? != VERSION
            || read_u64(body, 0x08)? != seq
            || read_u64(body, 0x10)? != segment
            || read_u32(body, 0x4c)? != chain
        {
            return None;
        }
        let op = Op::from_code(*body.get(0x07)?)?;
        let path_len = usize::from(read_u16(body, 0x48)?);
        let path2_len = usize::from(read_u16(body, 0x4a)?);
        if path_len > PATH_MAX_BYTES
            || path2_len > PATH_MAX_BYTES
            || FIXED_BYTES + path_len + path2_len != len
        {
            return None;
        }
        let flags = *body.get(0x26)?;
        let owner = *body.get(0x25)?;
        let mut path = RecordPath::from_bytes(body.get(FIXED_BYTES..FIXED_BYTES + path_len)?);
        path.truncated = flags & FLAG_PATH_TRUNCATED != 0;
        let mut path2 = RecordPath::from_bytes(body.get(FIXED_BYTES + path_len..len)?);
        path2.truncated = flags & FLAG_PATH2_TRUNCATED != 0;
        let record = Record {
            seq,
            time: Timespec {
                sec: read_u64(body, 0x18)?,
                nsec: read_u32(body, 0x20)?,
            },
            mono_ns: (flags & FLAG_MONO != 0).then_some(read_u64(body, 0x28)?),
            who: *body.get(0x24)?,
            op,
            detail: *body.get(0x27)?,
            result: read_u32(body, 0x30)?,
            owner: (owner != NO_OWNER).then_some(owner),
            ino: read_u64(body, 0x38)?,
            bytes: read_u64(body, 0x40)?,
            path,
            path2,
        };
        Some((record, len, stored_crc))
    }
}

/// Little-endian u16 at `at`.
pub(super) fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// Little-endian u32 at `at`.
pub(super) fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Little-endian u64 at `at`.
pub(super) fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

//! The physical disk's GUID partition table (UEFI 2.10, section 5.3), read with
//! `gpt_disk_io` and checked in full: nothing on the disk is trusted.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use gpt_disk_io::{BlockIo, Disk};
use gpt_disk_types::crc::Crc;
use gpt_disk_types::{
    BlockSize, Crc32, GptHeader, GptPartitionEntryArrayLayout, GptPartitionEntrySize, Guid, Lba,
};

/// Bytes in a sector (Janus reads 512-byte-sector disks only).
pub const SECTOR_BYTES: usize = 512;
/// Most bytes of partition entries Janus reads: twice the usual 128 entries of 128
/// bytes. A bigger array is refused rather than allocated from a small heap.
pub const MAX_ENTRY_ARRAY_BYTES: u64 = 32 * 1024;
/// The smallest header (UEFI 2.10, table 5.5: `HeaderSize` at least 92).
const MIN_HEADER_BYTES: u32 = 92;
/// Where `HeaderCRC32` lies in the header: zero while computing the CRC.
const HEADER_CRC_BYTES: core::ops::Range<usize> = 16..20;
/// The header revision this reader knows (1.0: major 1).
const REVISION_MAJOR: u16 = 1;
/// CRC-32 as GPT uses it (the zlib / ISO-HDLC polynomial): one table in the
/// image, for the headers and the entry arrays.
pub static CRC32: Crc<u32> = Crc::<u32>::new(&Crc32::ALGORITHM);

/// The disk failed a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadError;

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the disk failed a read")
    }
}

/// What the table is read from: a disk of 512-byte sectors.
pub trait SectorReader {
    /// Sectors on the disk.
    fn sectors(&self) -> u64;
    /// Reads `buffer.len() / 512` sectors from `lba` (the length is a multiple of 512).
    ///
    /// # Errors
    /// `ReadError` when the disk fails the read.
    fn read(&mut self, lba: u64, buffer: &mut [u8]) -> Result<(), ReadError>;
}

/// A disk image in memory (tests, the fuzz target).
impl SectorReader for [u8] {
    fn sectors(&self) -> u64 {
        (self.len() / SECTOR_BYTES) as u64
    }

    fn read(&mut self, lba: u64, buffer: &mut [u8]) -> Result<(), ReadError> {
        let start = usize::try_from(lba)
            .ok()
            .and_then(|lba| lba.checked_mul(SECTOR_BYTES))
            .ok_or(ReadError)?;
        let end = start.checked_add(buffer.len()).ok_or(ReadError)?;
        buffer.copy_from_slice(self.get(start..end).ok_or(ReadError)?);
        Ok(())
    }
}

/// One used entry of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Its name (UCS-2 in the entry, up to the first NUL; surrogates read as U+FFFD).
    pub name: String,
    /// First sector.
    pub first_lba: u64,
    /// Last sector (inclusive).
    pub last_lba: u64,
    /// Its type GUID.
    pub type_guid: Guid,
    /// Its unique GUID.
    pub unique_guid: Guid,
}

impl Partition {
    /// Sectors in the partition.
    pub fn sectors(&self) -> u64 {
        self.last_lba - self.first_lba + 1
    }
}

/// Which header the table came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The primary header (LBA 1) was good.
    Primary,
    /// The primary header was bad for this reason; the backup (last LBA) was good.
    Backup(GptError),
}

/// A partition table that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionTable {
    /// The disk's GUID.
    pub disk_guid: Guid,
    /// Used entries, in entry-array order.
    pub partitions: Vec<Partition>,
    /// Which header it came from.
    pub source: Source,
}

impl PartitionTable {
    /// The partition named `name`, if there is one (names are unique: checked).
    pub fn find(&self, name: &str) -> Option<&Partition> {
        self.partitions
            .iter()
            .find(|partition| partition.name == name)
    }
}

/// Why one GPT header (with its entry array) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GptError {
    /// The disk is too small to hold a GPT (it has this many sectors).
    DiskTooSmall(u64),
    /// The disk failed to read this sector.
    Read(u64),
    /// No "EFI PART" signature: the header is not there.
    NoSignature,
    /// A header revision other than 1.x.
    Revision(u32),
    /// `HeaderSize` below 92 or above a sector.
    HeaderSize(u32),
    /// `HeaderCRC32` does not match the header.
    HeaderCrc,
    /// `MyLBA` is not the sector the header was read from.
    WrongLba {
        /// What the header says.
        found: u64,
        /// Where it was read from.
        expected: u64,
    },
    /// The usable range is empty or covers the MBR or a header.
    UsableRange {
        /// `FirstUsableLBA`.
        first: u64,
        /// `LastUsableLBA`.
        last: u64,
    },
    /// `SizeOfPartitionEntry` is not 128 times a power of two.
    EntrySize(u32),
    /// The entry array would be bigger than `MAX_ENTRY_ARRAY_BYTES`.
    EntryArrayTooBig {
        /// `NumberOfPartitionEntries`.
        entries: u32,
        /// `SizeOfPartitionEntry`.
        entry_size: u32,
    },
    /// The entry array lies past the disk or over a header or the usable range.
    EntryArrayRange {
        /// `PartitionEntryLBA`.
        start: u64,
        /// Its length in sectors.
        sectors: u64,
    },
    /// `PartitionEntryArrayCRC32` does not match the array.
    EntryArrayCrc,
    /// A used entry ends before it starts or lies outside the usable range.
    PartitionRange {
        /// Its index in the entry array.
        index: u32,
        /// `StartingLBA`.
        first: u64,
        /// `EndingLBA`.
        last: u64,
    },
    /// Two used entries share sectors.
    Overlap(u32, u32),
    /// Two used entries have the same name.
    DuplicateName(u32, u32),
}

impl fmt::Display for GptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GptError::DiskTooSmall(sectors) => {
                write!(f, "a disk of {sectors} sectors is too small for a GPT")
            }
            GptError::Read(lba) => write!(f, "reading sector {lba} failed"),
            GptError::NoSignature => f.write_str("no GPT signature"),
            GptError::Revision(revision) => write!(f, "unknown GPT revision {revision:#x}"),
            GptError::HeaderSize(size) => write!(f, "header size {size} out of range"),
            GptError::HeaderCrc => f.write_str("header CRC mismatch"),
            GptError::WrongLba { found, expected } => {
                write!(f, "header at sector {expected} says it is at {found}")
            }
            GptError::UsableRange { first, last } => {
                write!(f, "usable sectors {first}-{last} out of range")
            }
            GptError::EntrySize(size) => write!(f, "partition entry size {size} is invalid"),
            GptError::EntryArrayTooBig {
                entries,
                entry_size,
            } => write!(
                f,
                "{entries} partition entries of {entry_size} bytes exceed {} KiB",
                MAX_ENTRY_ARRAY_BYTES / 1024
            ),
            GptError::EntryArrayRange { start, sectors } => write!(
                f,
                "partition entry array ({sectors} sectors at {start}) out of range"
            ),
            GptError::EntryArrayCrc => f.write_str("partition entry array CRC mismatch"),
            GptError::PartitionRange { index, first, last } => write!(
                f,
                "partition {} (sectors {first}-{last}) lies outside the usable sectors",
                index + 1
            ),
            GptError::Overlap(a, b) => {
                write!(f, "partitions {} and {} overlap", a + 1, b + 1)
            }
            GptError::DuplicateName(a, b) => {
                write!(f, "partitions {} and {} have the same name", a + 1, b + 1)
            }
        }
    }
}

/// Neither header gave a good table: why each was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableError {
    /// Why the primary header (LBA 1) was refused.
    pub primary: GptError,
    /// Why the backup header (last LBA) was refused.
    pub backup: GptError,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.primary, self.backup) {
            (GptError::NoSignature, GptError::NoSignature) => f.write_str("no GPT partition table"),
            (GptError::DiskTooSmall(_), _) => write!(f, "{}", self.primary),
            (primary, backup) => write!(f, "primary GPT: {primary}; backup GPT: {backup}"),
        }
    }
}

/// `gpt_disk_io`'s view of a `SectorReader`: read-only, reads bounded by the disk.
struct ReaderIo<'r, R: SectorReader + ?Sized> {
    reader: &'r mut R,
    /// The sector the last failed read started at.
    failed_at: u64,
}

impl<R: SectorReader + ?Sized> BlockIo for ReaderIo<'_, R> {
    type Error = ReadError;

    fn block_size(&self) -> BlockSize {
        BlockSize::BS_512
    }

    fn num_blocks(&mut self) -> Result<u64, ReadError> {
        Ok(self.reader.sectors())
    }

    fn read_blocks(&mut self, start: Lba, buffer: &mut [u8]) -> Result<(), ReadError> {
        self.failed_at = start.0;
        let count = (buffer.len() / SECTOR_BYTES) as u64;
        let inside = start
            .0
            .checked_add(count)
            .is_some_and(|end| end <= self.reader.sectors());
        if !inside || !buffer.len().is_multiple_of(SECTOR_BYTES) {
            return Err(ReadError);
        }
        self.reader.read(start.0, buffer)
    }

    fn write_blocks(&mut self, _start: Lba, _data: &[u8]) -> Result<(), ReadError> {
        // The table is only ever read.
        Err(ReadError)
    }

    fn flush(&mut self) -> Result<(), ReadError> {
        Ok(())
    }
}

/// Reads and checks the partition table: the primary header and its entries,
/// or the backup's when the primary is bad. Never panics, whatever the disk holds.
///
/// # Errors
/// `TableError` with why each header was refused.
pub fn read_table<R: SectorReader + ?Sized>(reader: &mut R) -> Result<PartitionTable, TableError> {
    let sectors = reader.sectors();
    // LBA 0 (MBR), 1 (header), one sector of entries, one usable, the backup header.
    if sectors < 5 {
        let error = GptError::DiskTooSmall(sectors);
        return Err(TableError {
            primary: error,
            backup: error,
        });
    }
    let mut disk = match Disk::new(ReaderIo {
        reader,
        failed_at: 0,
    }) {
        Ok(disk) => disk,
        Err(_) => {
            let error = GptError::Read(0);
            return Err(TableError {
                primary: error,
                backup: error,
            });
        }
    };
    let primary = match read_at(&mut disk, 1, sectors) {
        Ok((disk_guid, partitions)) => {
            return Ok(PartitionTable {
                disk_guid,
                partitions,
                source: Source::Primary,
            })
        }
        Err(error) => error,
    };
    match read_at(&mut disk, sectors - 1, sectors) {
        Ok((disk_guid, partitions)) => Ok(PartitionTable {
            disk_guid,
            partitions,
            source: Source::Backup(primary),
        }),
        Err(backup) => Err(TableError { primary, backup }),
    }
}

/// The disk's GUID and used partitions from the header at `lba`, checked.
fn read_at<R: SectorReader + ?Sized>(
    disk: &mut Disk<ReaderIo<'_, R>>,
    lba: u64,
    sectors: u64,
) -> Result<(Guid, Vec<Partition>), GptError> {
    let mut raw = [0u8; SECTOR_BYTES];
    let header = disk
        .read_gpt_header(Lba(lba), &mut raw)
        .map_err(|_| GptError::Read(lba))?;
    let (layout, array_sectors) = check_header(&header, &raw, lba, sectors)?;
    let bytes = array_sectors * SECTOR_BYTES as u64;
    // At most MAX_ENTRY_ARRAY_BYTES (checked), so it fits a usize.
    let mut storage = vec![0u8; bytes as usize];
    let array = disk
        .read_gpt_partition_entry_array(layout, &mut storage)
        .map_err(|_| GptError::Read(layout.start_lba.0))?;
    // The CRC covers the entries, not the rest of their last sector.
    let exact = u64::from(layout.num_entries) * layout.entry_size.to_u64();
    let entries = array.storage().get(..exact as usize).unwrap_or(&[]);
    if CRC32.checksum(entries) != header.partition_entry_array_crc32.0.to_u32() {
        return Err(GptError::EntryArrayCrc);
    }
    let usable = (
        header.first_usable_lba.to_u64(),
        header.last_usable_lba.to_u64(),
    );
    let mut partitions = Vec::new();
    let mut indices = Vec::new();
    for index in 0..layout.num_entries {
        let Some(entry) = array.get_partition_entry(index) else {
            return Err(GptError::EntryArrayCrc);
        };
        if !entry.is_used() {
            continue;
        }
        let (first, last) = (entry.starting_lba.to_u64(), entry.ending_lba.to_u64());
        if first > last || first < usable.0 || last > usable.1 {
            return Err(GptError::PartitionRange { index, first, last });
        }
        partitions.push(Partition {
            name: entry.name.chars().collect(),
            first_lba: first,
            last_lba: last,
            type_guid: entry.partition_type_guid.0,
            unique_guid: entry.unique_partition_guid,
        });
        indices.push(index);
    }
    check_disjoint(&partitions, &indices)?;
    Ok((header.disk_guid, partitions))
}

/// The entry array's layout and length in sectors once `header`, read from `lba`
/// of a disk of `sectors` sectors (at least 5), passes every check of UEFI 2.10,
/// 5.3.2 that does not need the array itself.
fn check_header(
    header: &GptHeader,
    raw: &[u8; SECTOR_BYTES],
    lba: u64,
    sectors: u64,
) -> Result<(GptPartitionEntryArrayLayout, u64), GptError> {
    if !header.is_signature_valid() {
        return Err(GptError::NoSignature);
    }
    if header.revision.major() != REVISION_MAJOR {
        return Err(GptError::Revision(header.revision.0.to_u32()));
    }
    let header_size = header.header_size.to_u32();
    if !(MIN_HEADER_BYTES..=SECTOR_BYTES as u32).contains(&header_size) {
        return Err(GptError::HeaderSize(header_size));
    }
    // The CRC covers HeaderSize bytes, its own field read as zero.
    let mut digest = CRC32.digest();
    digest.update(&raw[..HEADER_CRC_BYTES.start]);
    digest.update(&[0; 4]);
    digest.update(&raw[HEADER_CRC_BYTES.end..header_size as usize]);
    if digest.finalize() != header.header_crc32.0.to_u32() {
        return Err(GptError::HeaderCrc);
    }
    let my_lba = header.my_lba.to_u64();
    if my_lba != lba {
        return Err(GptError::WrongLba {
            found: my_lba,
            expected: lba,
        });
    }
    // Usable sectors leave out the MBR, the primary header and the backup header
    // (the last sector): 2 <= first <= last <= sectors - 2.
    let (first, last) = (
        header.first_usable_lba.to_u64(),
        header.last_usable_lba.to_u64(),
    );
    if first < 2 || first > last || last > sectors - 2 {
        return Err(GptError::UsableRange { first, last });
    }
    let entry_size = header.size_of_partition_entry.to_u32();
    let entry_size_checked =
        GptPartitionEntrySize::new(entry_size).map_err(|_| GptError::EntrySize(entry_size))?;
    let entries = header.number_of_partition_entries.to_u32();
    let array_bytes = u64::from(entries) * u64::from(entry_size);
    if array_bytes > MAX_ENTRY_ARRAY_BYTES {
        return Err(GptError::EntryArrayTooBig {
            entries,
            entry_size,
        });
    }
    let array_sectors = array_bytes.div_ceil(SECTOR_BYTES as u64);
    let start = header.partition_entry_lba.to_u64();
    let range_error = GptError::EntryArrayRange {
        start,
        sectors: array_sectors,
    };
    if array_sectors > 0 {
        // Inside [2, sectors - 1) (no MBR, no header) and clear of the usable range.
        let end = start.checked_add(array_sectors).ok_or(range_error)?;
        let clear_of_usable = end <= first || start > last;
        if start < 2 || end > sectors - 1 || !clear_of_usable {
            return Err(range_error);
        }
    }
    let layout = GptPartitionEntryArrayLayout {
        start_lba: Lba(start),
        entry_size: entry_size_checked,
        num_entries: entries,
    };
    Ok((layout, array_sectors))
}

/// Checks that no two partitions share a sector or a (non-empty) name;
/// `indices` are their entry-array indices, for the message. Pairwise, without
/// sorting: at most 256 entries, and a sort costs kilobytes of image.
fn check_disjoint(partitions: &[Partition], indices: &[u32]) -> Result<(), GptError> {
    for (a, first) in partitions.iter().enumerate() {
        for (b, second) in partitions.iter().enumerate().skip(a + 1) {
            let (i, j) = (indices[a], indices[b]);
            if first.first_lba <= second.last_lba && second.first_lba <= first.last_lba {
                return Err(GptError::Overlap(i, j));
            }
            if !first.name.is_empty() && first.name == second.name {
                return Err(GptError::DuplicateName(i, j));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

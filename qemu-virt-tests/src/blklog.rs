//! The write log QEMU's `blklogwrites` driver keeps of a disk, and its replay: the
//! disk as a power cut at each flush could have left it.
//!
//! `blklogwrites` (QEMU `block/blklogwrites.c`) writes Linux' dm-log-writes format
//! (`drivers/md/dm-log-writes.c`, the comment at its top): log sector 0 holds the
//! super block (`le64 magic, le64 version, le64 nr_entries, le32 sectorsize`), and
//! from log sector 1 on each entry is one sector holding its header (`le64 sector,
//! le64 nr_sectors, le64 flags, le64 data_len`) followed by its data, `nr_sectors`
//! sectors of it for a write (none for a flush or a discard; a mark's text,
//! `data_len` bytes, for a mark). Sector numbers and counts are in units of the
//! super block's sector size. Entries come in the order the writes *completed*;
//! a flush entry comes after every write completed before the flush was issued,
//! which is what it makes durable ("the log is ordered by completion, and a flush
//! orders": so the writes between two flushes may have reached the medium in any
//! order, or not at all, when the power went).
//!
//! QEMU updates `nr_entries` at flushes and every `log-super-update-interval`
//! entries, so a killed QEMU leaves entries past the count: [`WriteLog::parse`]
//! reads those as well, up to the first sector that is no entry header, and counts
//! them in [`WriteLog::beyond_count`].

use std::fmt;
use std::fs;
use std::io;
use std::ops::Range;
use std::path::Path;

/// The super block's magic (`WRITE_LOG_MAGIC`).
pub const WRITE_LOG_MAGIC: u64 = 0x006a_7366_7773_6872;
/// The format version `blklogwrites` writes (`WRITE_LOG_VERSION`).
pub const WRITE_LOG_VERSION: u64 = 1;
/// Bytes of an entry header.
const ENTRY_HEADER_BYTES: usize = 32;
/// Bytes of the super block.
const SUPER_BYTES: usize = 28;

/// The entry flags (`LOG_*_FLAG`).
pub mod flags {
    /// A flush: everything logged before it is durable.
    pub const FLUSH: u64 = 1 << 0;
    /// A write with FUA: durable once it completed.
    pub const FUA: u64 = 1 << 1;
    /// A discard of the sectors (no data logged).
    pub const DISCARD: u64 = 1 << 2;
    /// A mark: a text label the writer put in the log, no disk change.
    pub const MARK: u64 = 1 << 3;
    /// Linux' metadata hint (`REQ_META`); QEMU never sets it.
    pub const METADATA: u64 = 1 << 4;
    /// Every flag the format defines.
    pub const ALL: u64 = FLUSH | FUA | DISCARD | MARK | METADATA;
}

/// One logged event.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// First sector written (log sector units).
    pub sector: u64,
    /// Sectors written or discarded.
    pub sectors: u64,
    /// [`flags`] bits.
    pub flags: u64,
    /// The data of a write (`sectors` sectors); a mark's text; empty otherwise.
    pub data: Vec<u8>,
}

impl fmt::Debug for Entry {
    /// The fields, with the data as its length (a write's data is kilobytes).
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Entry")
            .field("sector", &self.sector)
            .field("sectors", &self.sectors)
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("data_bytes", &self.data.len())
            .finish()
    }
}

impl Entry {
    /// Whether this is a flush.
    pub fn is_flush(&self) -> bool {
        self.flags & flags::FLUSH != 0
    }

    /// Whether this is a write with data (a flush may carry one too, as Linux'
    /// REQ_PREFLUSH writes do).
    pub fn is_write(&self) -> bool {
        self.sectors > 0 && self.flags & (flags::DISCARD | flags::MARK) == 0
    }

    /// Whether this is a discard.
    pub fn is_discard(&self) -> bool {
        self.flags & flags::DISCARD != 0
    }

    /// Whether the write is FUA (durable when complete).
    pub fn is_fua(&self) -> bool {
        self.flags & flags::FUA != 0
    }

    /// A mark's text.
    pub fn mark(&self) -> Option<String> {
        (self.flags & flags::MARK != 0).then(|| String::from_utf8_lossy(&self.data).into_owned())
    }
}

/// A whole write log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteLog {
    /// The log's sector size in bytes (`sectorsize`).
    pub sector_bytes: u32,
    /// The entries, in log order.
    pub entries: Vec<Entry>,
    /// How many of [`WriteLog::entries`] lie past the super block's `nr_entries`
    /// (QEMU had not updated it yet when it stopped).
    pub beyond_count: usize,
}

/// Why a log could not be read or replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogError {
    /// The file could not be read.
    Io(String),
    /// Shorter than a super block.
    NoSuperBlock,
    /// The super block's magic is not [`WRITE_LOG_MAGIC`].
    BadMagic(u64),
    /// A version other than [`WRITE_LOG_VERSION`].
    BadVersion(u64),
    /// A sector size that is not a power of two from 512 bytes on.
    BadSectorSize(u32),
    /// Entry `index` (one the super block counts) is cut off by the end of the log.
    Truncated {
        /// The entry's index.
        index: usize,
    },
    /// Entry `index` has flags the format does not define, or absurd sizes.
    BadEntry {
        /// The entry's index.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// Entry `index` writes outside the image being replayed.
    OutsideImage {
        /// The entry's index.
        index: usize,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io(reason) => write!(formatter, "cannot read the write log: {reason}"),
            LogError::NoSuperBlock => formatter.write_str("write log too short for a super block"),
            LogError::BadMagic(magic) => write!(formatter, "write log magic {magic:#x}"),
            LogError::BadVersion(version) => write!(formatter, "write log version {version}"),
            LogError::BadSectorSize(size) => write!(formatter, "write log sector size {size}"),
            LogError::Truncated { index } => write!(formatter, "write log entry {index} cut off"),
            LogError::BadEntry { index, reason } => {
                write!(formatter, "write log entry {index}: {reason}")
            }
            LogError::OutsideImage { index } => {
                write!(
                    formatter,
                    "write log entry {index} writes outside the image"
                )
            }
        }
    }
}

impl std::error::Error for LogError {}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

impl WriteLog {
    /// Reads the log file at `path`.
    ///
    /// # Errors
    /// [`LogError::Io`], or as [`WriteLog::parse`].
    pub fn read(path: &Path) -> Result<WriteLog, LogError> {
        let bytes =
            fs::read(path).map_err(|error| LogError::Io(format!("{}: {error}", path.display())))?;
        WriteLog::parse(&bytes)
    }

    /// Parses a whole log: the entries the super block counts, then any further
    /// ones up to the first sector that holds no plausible entry header (all
    /// zeros, unknown flags, or data past the end).
    ///
    /// # Errors
    /// A [`LogError`] for a bad super block, or a counted entry that is bad or cut off.
    pub fn parse(bytes: &[u8]) -> Result<WriteLog, LogError> {
        let header = bytes.get(..SUPER_BYTES).ok_or(LogError::NoSuperBlock)?;
        let magic = le_u64(header, 0);
        if magic != WRITE_LOG_MAGIC {
            return Err(LogError::BadMagic(magic));
        }
        let version = le_u64(header, 8);
        if version != WRITE_LOG_VERSION {
            return Err(LogError::BadVersion(version));
        }
        let counted = le_u64(header, 16);
        let sector_bytes = le_u32(header, 24);
        if sector_bytes < 512 || !sector_bytes.is_power_of_two() {
            return Err(LogError::BadSectorSize(sector_bytes));
        }
        let sector = sector_bytes as usize;
        let mut entries = Vec::new();
        let mut at = sector;
        loop {
            let index = entries.len();
            let is_counted = (index as u64) < counted;
            match read_entry(bytes, at, sector) {
                Ok((entry, next)) => {
                    if !is_counted && entry.flags == 0 && entry.sectors == 0 && entry.sector == 0 {
                        break; // an all-zero header: the log's unwritten end
                    }
                    entries.push(entry);
                    at = next;
                }
                Err(reason) if is_counted => {
                    return Err(match reason {
                        EntryError::Truncated => LogError::Truncated { index },
                        EntryError::Bad(reason) => LogError::BadEntry { index, reason },
                    });
                }
                Err(_) => break,
            }
        }
        let counted = usize::try_from(counted).unwrap_or(usize::MAX);
        Ok(WriteLog {
            sector_bytes,
            beyond_count: entries.len().saturating_sub(counted),
            entries,
        })
    }

    /// The log as `blklogwrites` would write it (every entry counted): for tests
    /// that build a log in memory.
    pub fn to_bytes(&self) -> Vec<u8> {
        let sector = self.sector_bytes as usize;
        let mut bytes = vec![0u8; sector];
        bytes[0..8].copy_from_slice(&WRITE_LOG_MAGIC.to_le_bytes());
        bytes[8..16].copy_from_slice(&WRITE_LOG_VERSION.to_le_bytes());
        bytes[16..24].copy_from_slice(&(self.entries.len() as u64).to_le_bytes());
        bytes[24..28].copy_from_slice(&self.sector_bytes.to_le_bytes());
        for entry in &self.entries {
            let mut header = vec![0u8; sector];
            header[0..8].copy_from_slice(&entry.sector.to_le_bytes());
            header[8..16].copy_from_slice(&entry.sectors.to_le_bytes());
            header[16..24].copy_from_slice(&entry.flags.to_le_bytes());
            let data_len = if entry.flags & flags::MARK != 0 {
                entry.data.len() as u64
            } else {
                0
            };
            header[24..32].copy_from_slice(&data_len.to_le_bytes());
            bytes.extend_from_slice(&header);
            let mut data = entry.data.clone();
            data.resize(entry.data.len().next_multiple_of(sector), 0);
            bytes.extend_from_slice(&data);
        }
        bytes
    }

    /// The indices of the flush entries, in order.
    pub fn flushes(&self) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&index| self.entries[index].is_flush())
            .collect()
    }

    /// The marks, with their entry indices.
    pub fn marks(&self) -> Vec<(usize, String)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| entry.mark().map(|mark| (index, mark)))
            .collect()
    }
}

/// Why one entry could not be read.
enum EntryError {
    Truncated,
    Bad(String),
}

/// The entry whose header sector starts at `at`, and where the next one starts.
fn read_entry(bytes: &[u8], at: usize, sector: usize) -> Result<(Entry, usize), EntryError> {
    let header = bytes
        .get(at..at + ENTRY_HEADER_BYTES)
        .ok_or(EntryError::Truncated)?;
    let start = le_u64(header, 0);
    let sectors = le_u64(header, 8);
    let entry_flags = le_u64(header, 16);
    let data_len = le_u64(header, 24);
    if entry_flags & !flags::ALL != 0 {
        return Err(EntryError::Bad(format!("unknown flags {entry_flags:#x}")));
    }
    let data_bytes = if entry_flags & flags::MARK != 0 {
        data_len
    } else if entry_flags & flags::DISCARD != 0 {
        0
    } else {
        sectors
            .checked_mul(sector as u64)
            .ok_or_else(|| EntryError::Bad(format!("{sectors} sectors")))?
    };
    let data_bytes = usize::try_from(data_bytes)
        .ok()
        .filter(|&length| length <= bytes.len())
        .ok_or(EntryError::Truncated)?;
    let data_start = at + sector;
    let data = bytes
        .get(data_start..data_start + data_bytes)
        .ok_or(EntryError::Truncated)?
        .to_vec();
    let next = data_start + data_bytes.next_multiple_of(sector);
    let entry = Entry {
        sector: start,
        sectors,
        flags: entry_flags,
        data,
    };
    Ok((entry, next))
}

/// What [`replay`] produces besides the plain flush images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Per flush point, how many more images with a random subset of the writes
    /// logged after it (up to the next flush) applied in a random order, as a
    /// power cut before the next flush may leave them. FUA writes among them
    /// are always applied (they were durable when they completed).
    pub subsets_per_flush: usize,
    /// Seed of the subset choice (the same seed, the same images).
    pub seed: u64,
    /// The bytes of the logged disk that the original image holds (a partition
    /// of it, say): writes outside are left out, a write across its edge is an
    /// error. `None`: all of it, from byte 0.
    pub window: Option<Range<u64>>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            subsets_per_flush: 0,
            seed: 0x4a61_6e75_735f_6c6f,
            window: None,
        }
    }
}

/// One image [`replay`] hands to its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayPoint {
    /// Which flush: 0 is the start (before the first flush: only the original
    /// image is durable), N the log's N-th flush.
    pub flush: usize,
    /// The index in [`WriteLog::entries`] of that flush (`None` for the start).
    pub entry: Option<usize>,
    /// The entries after the flush applied on top, in the order applied (empty
    /// for the flush image itself).
    pub applied_after: Vec<usize>,
}

/// A small deterministic generator (xorshift64*), enough to pick subsets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// Applies entry `index` of `log` to `image` (which holds `window` of the disk).
fn apply(
    image: &mut [u8],
    log: &WriteLog,
    index: usize,
    window: &Range<u64>,
) -> Result<(), LogError> {
    let entry = &log.entries[index];
    if !entry.is_write() && !entry.is_discard() {
        return Ok(());
    }
    let sector = u64::from(log.sector_bytes);
    let outside = LogError::OutsideImage { index };
    let start = entry.sector.checked_mul(sector).ok_or(outside.clone())?;
    let end = entry
        .sectors
        .checked_mul(sector)
        .and_then(|length| start.checked_add(length))
        .ok_or(outside.clone())?;
    if end <= window.start || start >= window.end {
        return Ok(());
    }
    if start < window.start || end > window.end {
        return Err(outside);
    }
    let from = usize::try_from(start - window.start).map_err(|_| outside.clone())?;
    let to = usize::try_from(end - window.start).map_err(|_| outside.clone())?;
    let target = image.get_mut(from..to).ok_or(outside)?;
    if entry.is_discard() {
        // A discarded range may read back as anything; zeros are what QEMU's
        // file driver gives (it punches a hole).
        target.fill(0);
    } else {
        target.copy_from_slice(&entry.data);
    }
    Ok(())
}

/// Rebuilds the disk as of each flush point of `log`, starting from `original`
/// (the image copied before the logged run), and calls `each` with every image:
/// for each point, the image with everything logged before it applied, then
/// [`ReplayOptions::subsets_per_flush`] images that add a random subset of the
/// writes logged after it (before the next flush). Returns how many images it
/// made.
///
/// # Errors
/// [`LogError::OutsideImage`] for a write that does not fit the image.
pub fn replay(
    original: &[u8],
    log: &WriteLog,
    options: &ReplayOptions,
    mut each: impl FnMut(&ReplayPoint, &[u8]),
) -> Result<usize, LogError> {
    let window = options.window.clone().unwrap_or(0..original.len() as u64);
    let mut rng = Rng(options.seed | 1);
    let mut durable = original.to_vec();
    let mut made = 0;
    let flushes = log.flushes();
    let starts = std::iter::once(None).chain(flushes.iter().copied().map(Some));
    let mut applied = 0; // entries applied to `durable` so far
    for (point, entry) in starts.enumerate() {
        let upto = entry.map_or(0, |index| index + 1);
        while applied < upto {
            apply(&mut durable, log, applied, &window)?;
            applied += 1;
        }
        let replay_point = ReplayPoint {
            flush: point,
            entry,
            applied_after: Vec::new(),
        };
        each(&replay_point, &durable);
        made += 1;
        let next_flush = flushes
            .iter()
            .copied()
            .find(|&index| index >= upto)
            .unwrap_or(log.entries.len());
        let pending: Vec<usize> = (upto..next_flush)
            .filter(|&index| log.entries[index].is_write() || log.entries[index].is_discard())
            .collect();
        if pending.is_empty() {
            continue;
        }
        for _ in 0..options.subsets_per_flush {
            let mut chosen: Vec<usize> = pending
                .iter()
                .copied()
                .filter(|&index| log.entries[index].is_fua() || rng.next() & 1 == 1)
                .collect();
            // Any order: the writes were all in flight together.
            for slot in (1..chosen.len()).rev() {
                chosen.swap(slot, rng.below(slot + 1));
            }
            let mut image = durable.clone();
            for &index in &chosen {
                apply(&mut image, log, index, &window)?;
            }
            let replay_point = ReplayPoint {
                flush: point,
                entry,
                applied_after: chosen,
            };
            each(&replay_point, &image);
            made += 1;
        }
    }
    Ok(made)
}

/// Reads the image file `original` and the log at `log` and replays as [`replay`].
///
/// # Errors
/// [`LogError::Io`] when a file cannot be read, or as [`WriteLog::parse`] and [`replay`].
pub fn replay_files(
    original: &Path,
    log: &Path,
    options: &ReplayOptions,
    each: impl FnMut(&ReplayPoint, &[u8]),
) -> Result<usize, LogError> {
    let log = WriteLog::read(log)?;
    let image = match &options.window {
        None => fs::read(original),
        Some(window) => read_range(original, window.clone()),
    }
    .map_err(|error| LogError::Io(format!("{}: {error}", original.display())))?;
    replay(&image, &log, options, each)
}

/// The bytes `range` of the file at `path`.
fn read_range(path: &Path, range: Range<u64>) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs::File::open(path)?;
    file.seek(SeekFrom::Start(range.start))?;
    let length = usize::try_from(range.end.saturating_sub(range.start))
        .map_err(|_| io::Error::other("range too large"))?;
    let mut bytes = vec![0u8; length];
    file.read_exact(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests;

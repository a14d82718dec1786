//! Persistent storage: the physical disk that the personalities share, its
//! partition table, and each personality's volume on it.
//!
//! The disk itself is driven in `arch` (`arch::aarch64::storage`), behind the
//! `PhysicalDisk` trait defined here; everything here is pure and host-tested.
#![forbid(unsafe_code)]

pub mod backend;
pub mod gpt;
pub mod partition;
pub mod volume;

use alloc::string::String;
use core::fmt::{self, Write};

use backend::GuestRun;
use gpt::{Partition, PartitionTable, ReadError, SectorReader, SECTOR_BYTES};

pub use volume::{VolumeBackend, VolumeError};

/// Why a physical disk request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhysicalError {
    /// Sectors past the end of the disk.
    OutOfRange,
    /// A length of zero or not a whole number of sectors.
    BadLength,
    /// A guest range that lies in no personality's RAM.
    NotGuestRam,
    /// The device failed the request.
    Device,
}

impl fmt::Display for PhysicalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhysicalError::OutOfRange => "sectors past the end of the disk",
            PhysicalError::BadLength => "not a whole number of sectors",
            PhysicalError::NotGuestRam => "range outside every personality's RAM",
            PhysicalError::Device => "the disk failed the request",
        })
    }
}

/// The physical disk, shared by every personality: each call is one request,
/// served whole and in arrival order (the implementation holds a FIFO lock
/// around the device). Sector numbers are the disk's own.
pub trait PhysicalDisk {
    /// Sectors (512 bytes) on the disk.
    fn sectors(&self) -> u64;
    /// Reads `buffer.len() / 512` sectors from `sector` into Janus' buffer.
    ///
    /// # Errors
    /// `BadLength`, `OutOfRange` or `Device`.
    fn read(&self, sector: u64, buffer: &mut [u8]) -> Result<(), PhysicalError>;
    /// Writes Janus' `data` from `sector`; returns when the device completed it.
    ///
    /// # Errors
    /// `BadLength`, `OutOfRange` or `Device`.
    fn write(&self, sector: u64, data: &[u8]) -> Result<(), PhysicalError>;
    /// Makes every write completed before the call durable.
    ///
    /// # Errors
    /// `Device`.
    fn flush(&self) -> Result<(), PhysicalError>;
    /// Reads sectors from `sector` straight into guest RAM at `addr` (zero copy).
    /// The caller passes only a range its `GuestMemory` checked; the
    /// implementation refuses one outside every personality's RAM.
    ///
    /// # Errors
    /// `BadLength`, `OutOfRange`, `NotGuestRam` or `Device`.
    fn read_guest(&self, sector: u64, addr: u64, len: usize) -> Result<(), PhysicalError>;
    /// Writes `len` bytes of guest RAM at `addr` to the sectors from `sector`.
    ///
    /// # Errors
    /// As `read_guest`.
    fn write_guest(&self, sector: u64, addr: u64, len: usize) -> Result<(), PhysicalError>;
    /// Reads sectors from `sector` straight into the guest runs `runs`, in order
    /// (the first run gets `sector`, the next the sectors after it): one request
    /// for all of them (scatter-gather, zero copy). The caller passes only runs
    /// its `GuestMemory` checked, at most `backend::MAX_RUNS`; the
    /// implementation refuses any outside every personality's RAM.
    ///
    /// # Errors
    /// `BadLength` (also for no runs or too many), `OutOfRange`, `NotGuestRam`
    /// or `Device`.
    fn read_guest_runs(&self, sector: u64, runs: &[GuestRun]) -> Result<(), PhysicalError>;
    /// Writes the guest runs `runs`, in order, to the sectors from `sector`, as
    /// one request; returns when the device completed it.
    ///
    /// # Errors
    /// As `read_guest_runs`.
    fn write_guest_runs(&self, sector: u64, runs: &[GuestRun]) -> Result<(), PhysicalError>;
}

/// The partition table is read through the same disk.
impl<D: PhysicalDisk + ?Sized> SectorReader for &D {
    fn sectors(&self) -> u64 {
        PhysicalDisk::sectors(*self)
    }

    fn read(&mut self, lba: u64, buffer: &mut [u8]) -> Result<(), ReadError> {
        PhysicalDisk::read(*self, lba, buffer).map_err(|_| ReadError)
    }
}

/// A run of sectors of the physical disk given to one personality.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Volume {
    /// Its first sector on the disk.
    pub first_lba: u64,
    /// Its length in sectors.
    pub sectors: u64,
}

impl Volume {
    /// The volume a partition covers.
    pub fn of(partition: &Partition) -> Volume {
        Volume {
            first_lba: partition.first_lba,
            sectors: partition.sectors(),
        }
    }

    /// The volume on the partition named `name` (a personality's name).
    pub fn named(table: &PartitionTable, name: &str) -> Option<Volume> {
        table.find(name).map(Volume::of)
    }
}

/// Bytes in a MiB.
const MIB: u64 = 1 << 20;

/// `n` sectors as a size for a boot line ("12 MiB", or KiB below a MiB).
fn size(sectors: u64) -> impl fmt::Display {
    let bytes = sectors.saturating_mul(SECTOR_BYTES as u64);
    fmt::from_fn(move |f| {
        if bytes >= MIB {
            write!(f, "{} MiB", bytes / MIB)
        } else {
            write!(f, "{} KiB", bytes / 1024)
        }
    })
}

/// The boot line for a disk of `sectors` at `base` and its table:
/// `disk: 64 MiB at 0xa003e00; partitions: personal (24 MiB), ...`
/// (and a note when the table came from the backup header).
pub fn describe(sectors: u64, base: u64, table: &PartitionTable) -> String {
    let mut line = String::new();
    let _ = write!(line, "disk: {} at {base:#x}; partitions:", size(sectors));
    if table.partitions.is_empty() {
        line.push_str(" none");
    }
    for (index, partition) in table.partitions.iter().enumerate() {
        let separator = if index == 0 { " " } else { ", " };
        let name = if partition.name.is_empty() {
            "(unnamed)"
        } else {
            partition.name.as_str()
        };
        let _ = write!(line, "{separator}{name} ({})", size(partition.sectors()));
    }
    if let gpt::Source::Backup(why) = table.source {
        let _ = write!(line, " (primary GPT header: {why}; read the backup)");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use gpt::Source;
    use gpt_disk_types::Guid;

    fn partition(name: &str, first_lba: u64, last_lba: u64) -> Partition {
        Partition {
            name: name.into(),
            first_lba,
            last_lba,
            type_guid: Guid::ZERO,
            unique_guid: Guid::ZERO,
        }
    }

    fn table() -> PartitionTable {
        PartitionTable {
            disk_guid: Guid::ZERO,
            partitions: vec![
                partition("personal", 2048, 2048 + 2 * 2048 - 1),
                partition("work", 8192, 8192 + 2048 - 1),
                partition("janus", 12288, 12288 + 100 - 1),
            ],
            source: Source::Primary,
        }
    }

    #[test]
    fn volumes_are_found_by_partition_name() {
        let table = table();
        assert_eq!(
            Volume::named(&table, "work"),
            Some(Volume {
                first_lba: 8192,
                sectors: 2048
            })
        );
        assert_eq!(Volume::named(&table, "play"), None);
        assert_eq!(Volume::named(&table, ""), None);
    }

    #[test]
    fn boot_line_lists_partitions_with_sizes() {
        let line = describe(64 * 2048, 0x0a00_3e00, &table());
        assert_eq!(
            line,
            "disk: 64 MiB at 0xa003e00; partitions: personal (2 MiB), work (1 MiB), janus (50 KiB)"
        );
    }

    #[test]
    fn boot_line_says_when_the_backup_was_used() {
        let mut table = table();
        table.partitions.clear();
        table.source = Source::Backup(gpt::GptError::HeaderCrc);
        let line = describe(2048, 0x0a00_0000, &table);
        assert_eq!(
            line,
            "disk: 1 MiB at 0xa000000; partitions: none (primary GPT header: header CRC mismatch; read the backup)"
        );
    }
}

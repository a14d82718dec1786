//! The disk a config describes: the `[disk]` table and the checks on the whole disk.
//!
//! The physical disk has a GPT with one partition per personality that has a volume
//! (named after it, in config order), then `shared` and `janus`. `janus-disk` makes it
//! from these values; Janus finds the partitions by name.

use super::ConfigError;
use crate::vm::bundle::PersonalityConfig;

/// Smallest volume, in MiB: a personality's volume holds an ext4 file system with a
/// journal (mke2fs gives a 16 MiB file system a 4 MiB journal), and so may `shared`.
pub const VOLUME_MIN_MIB: u32 = 16;
/// Largest volume or `shared` partition, in MiB (1 TiB).
pub const VOLUME_MAX_MIB: u32 = 1 << 20;
/// Smallest `janus` partition, in MiB (Janus' own records, formatted by Janus): its
/// first MiB is reserved (key slots, scrub intent) and the audit log needs the rest.
pub const JANUS_MIN_MIB: u32 = 2;
/// Largest `janus` partition, in MiB.
pub const JANUS_MAX_MIB: u32 = 1 << 10;
/// What the disk spends besides its partitions, in MiB: the protective MBR and
/// the primary GPT in the first MiB (partitions start 1 MiB aligned), the backup GPT
/// in the last.
pub const DISK_OVERHEAD_MIB: u64 = 2;
/// Largest whole disk, in MiB (2 TiB), GPT included.
pub const DISK_MAX_MIB: u64 = 2 << 20;
/// Partition names the disk uses for itself, so no personality may have them: Janus
/// gives personality `N` the partition named `N`.
pub const RESERVED_NAMES: [&str; 2] = ["shared", "janus"];

/// The disk's own partitions, after the personalities' volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskPartition {
    /// `shared`: what the personalities may exchange (formatted by a later issue).
    Shared,
    /// `janus`: Janus' own records (formatted by a later issue).
    Janus,
}

impl DiskPartition {
    /// The partition's GPT name.
    pub const fn name(self) -> &'static str {
        match self {
            DiskPartition::Shared => "shared",
            DiskPartition::Janus => "janus",
        }
    }

    /// The smallest and largest sizes allowed, in MiB.
    pub const fn size_range_mib(self) -> (u32, u32) {
        match self {
            DiskPartition::Shared => (VOLUME_MIN_MIB, VOLUME_MAX_MIB),
            DiskPartition::Janus => (JANUS_MIN_MIB, JANUS_MAX_MIB),
        }
    }
}

/// The `[disk]` table: the sizes of the disk's own partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskConfig {
    /// Size of the `shared` partition in MiB.
    pub shared_mib: u32,
    /// Size of the `janus` partition in MiB.
    pub janus_mib: u32,
}

impl DiskConfig {
    /// What a config without a `[disk]` table gets.
    pub const DEFAULT: DiskConfig = DiskConfig {
        shared_mib: 64,
        janus_mib: 8,
    };

    /// The size of `partition` in MiB.
    pub const fn size_mib(&self, partition: DiskPartition) -> u32 {
        match partition {
            DiskPartition::Shared => self.shared_mib,
            DiskPartition::Janus => self.janus_mib,
        }
    }
}

impl Default for DiskConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Checks the disk that `personalities` (already through [`validate`]) and `disk`
/// describe: the sizes of `shared` and `janus`, and the size of the whole disk.
///
/// # Errors
///
/// [`ConfigError::DiskPartitionSize`] for a `shared` or `janus` size outside its
/// [`DiskPartition::size_range_mib`], [`ConfigError::DiskTooLarge`] when the volumes,
/// both partitions and [`DISK_OVERHEAD_MIB`] add up to more than [`DISK_MAX_MIB`].
pub fn validate_disk(
    personalities: &[PersonalityConfig<'_>],
    disk: &DiskConfig,
) -> Result<(), ConfigError> {
    for partition in [DiskPartition::Shared, DiskPartition::Janus] {
        let mib = disk.size_mib(partition);
        let (min, max) = partition.size_range_mib();
        if !(min..=max).contains(&mib) {
            return Err(ConfigError::DiskPartitionSize { partition, mib });
        }
    }
    // At most a few personalities of at most 2^32 MiB each: no u64 overflow.
    let total_mib = personalities
        .iter()
        .filter_map(|personality| personality.volume_mib)
        .chain([disk.shared_mib, disk.janus_mib])
        .map(u64::from)
        .sum::<u64>()
        + DISK_OVERHEAD_MIB;
    if total_mib > DISK_MAX_MIB {
        return Err(ConfigError::DiskTooLarge { total_mib });
    }
    Ok(())
}

//! Where each partition of Janus' disk lies, computed from the config alone.
//!
//! The disk is GPT with 512-byte sectors. The first MiB holds the protective MBR
//! (LBA 0), the primary GPT header (LBA 1) and its 128-entry partition array (LBA 2 to
//! 33); the partitions follow from 1 MiB on, each a whole number of MiB, so every one
//! starts 1 MiB aligned: first each personality that has a volume, in config order,
//! then `shared`, then `janus`. The last MiB holds the backup array and header (the
//! header in the very last sector). The size is therefore the partitions plus
//! [`DISK_OVERHEAD_MIB`].

use gpt_disk_types::{guid, GptPartitionType, Guid};
use hyp::vm::bundle::PersonalityConfig;
use hyp::vm::config::{DiskConfig, DiskPartition, DISK_OVERHEAD_MIB};

/// Bytes in a sector: what Janus and virtio-blk count in.
pub const SECTOR_BYTES: u64 = 512;
/// Sectors in a MiB.
pub const SECTORS_PER_MIB: u64 = (1 << 20) / SECTOR_BYTES;
/// Entries in each partition array: the UEFI minimum (16 KiB, 32 sectors).
pub const PARTITION_ENTRIES: u32 = 128;
/// Bytes of one partition entry, as the header stores it.
pub const PARTITION_ENTRY_SIZE: u32 = 128;
/// Bytes of one partition entry.
pub const PARTITION_ENTRY_BYTES: u64 = PARTITION_ENTRY_SIZE as u64;
/// The LBA of the primary partition array.
pub const PRIMARY_ARRAY_LBA: u64 = 2;
/// Sectors one partition array takes.
pub const ARRAY_SECTORS: u64 = PARTITION_ENTRIES as u64 * PARTITION_ENTRY_BYTES / SECTOR_BYTES;
/// The first sector of the first partition (1 MiB).
pub const FIRST_PARTITION_LBA: u64 = SECTORS_PER_MIB;

const _: () = assert!(PRIMARY_ARRAY_LBA + ARRAY_SECTORS <= FIRST_PARTITION_LBA);

/// GPT type of a personality's volume: "Linux filesystem data" (it holds ext4).
pub const LINUX_FILESYSTEM_TYPE: GptPartitionType =
    GptPartitionType(guid!("0fc63daf-8483-4772-8e79-3d69d8477de4"));
/// GPT type of the `shared` partition, Janus' own (no standard type fits it).
pub const SHARED_TYPE: GptPartitionType =
    GptPartitionType(guid!("a2f31d2c-2022-41ac-9ce1-185ec8d74d54"));
/// GPT type of the `janus` partition, Janus' own.
pub const JANUS_TYPE: GptPartitionType =
    GptPartitionType(guid!("0627f8fa-e4f0-40c5-8d09-7af69a51248b"));
/// The disk's GUID. Fixed, like every partition's unique GUID ([`unique_guid`]), so
/// that the same config always makes the same table: Janus finds partitions by name.
pub const DISK_GUID: Guid = guid!("4a414e55-5344-8000-8000-000000000000");

/// What a partition is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A personality's volume: an ext4 file system, made by `janus-disk create`.
    Volume,
    /// The `shared` or `janus` partition, left zeroed.
    Disk(DiskPartition),
}

impl Role {
    /// The partition's GPT type.
    pub fn partition_type(self) -> GptPartitionType {
        match self {
            Role::Volume => LINUX_FILESYSTEM_TYPE,
            Role::Disk(DiskPartition::Shared) => SHARED_TYPE,
            Role::Disk(DiskPartition::Janus) => JANUS_TYPE,
        }
    }
}

/// One partition of the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPartition {
    /// Its GPT name: the personality's name, `shared` or `janus`.
    pub name: String,
    /// What it is for.
    pub role: Role,
    /// Its first sector.
    pub first_lba: u64,
    /// Its length in sectors.
    pub sectors: u64,
}

impl PlannedPartition {
    /// Its first byte on the disk.
    pub fn offset_bytes(&self) -> u64 {
        self.first_lba * SECTOR_BYTES
    }

    /// Its length in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.sectors * SECTOR_BYTES
    }
}

/// The whole disk as the config describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskPlan {
    /// The partitions, in table order.
    pub partitions: Vec<PlannedPartition>,
    /// The disk's length in sectors.
    pub total_sectors: u64,
}

impl DiskPlan {
    /// Lays out the disk of `personalities` and `disk`, which have passed
    /// `hyp::vm::config::validate` and `validate_disk` (so the sizes add up to no
    /// more than a few TiB and nothing overflows).
    pub fn new(personalities: &[PersonalityConfig<'_>], disk: &DiskConfig) -> Self {
        let volumes = personalities.iter().filter_map(|personality| {
            let mib = personality.volume_mib?;
            Some((personality.name.to_owned(), Role::Volume, mib))
        });
        let own = [DiskPartition::Shared, DiskPartition::Janus].map(|partition| {
            (
                partition.name().to_owned(),
                Role::Disk(partition),
                disk.size_mib(partition),
            )
        });
        let mut next_lba = FIRST_PARTITION_LBA;
        let partitions: Vec<_> = volumes
            .chain(own)
            .map(|(name, role, mib)| {
                let sectors = u64::from(mib) * SECTORS_PER_MIB;
                let partition = PlannedPartition {
                    name,
                    role,
                    first_lba: next_lba,
                    sectors,
                };
                next_lba += sectors;
                partition
            })
            .collect();
        // The first MiB is already counted in `next_lba`; the last one holds the backup.
        let total_sectors = next_lba + (DISK_OVERHEAD_MIB - 1) * SECTORS_PER_MIB;
        DiskPlan {
            partitions,
            total_sectors,
        }
    }

    /// The disk's length in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.total_sectors * SECTOR_BYTES
    }
}

/// The unique GUID of partition `index` (0-based): the disk GUID with `index + 1` in
/// its last bytes.
pub fn unique_guid(index: usize) -> Guid {
    let mut bytes = DISK_GUID.to_bytes();
    let serial = u32::try_from(index + 1).unwrap_or(u32::MAX).to_be_bytes();
    bytes[12..].copy_from_slice(&serial);
    Guid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyp::vm::bundle::GuestKind;

    fn personality(name: &'static str, volume_mib: Option<u32>) -> PersonalityConfig<'static> {
        PersonalityConfig {
            name,
            kind: GuestKind::Linux,
            ram_bytes: 64 << 20,
            ram_base: None,
            vcpus: 1,
            cpus: 1,
            volume_mib,
            kernel: b"k",
            initrd: &[],
            bootargs: "",
        }
    }

    #[test]
    fn partitions_follow_config_order_from_1_mib() {
        let plan = DiskPlan::new(
            &[
                personality("personal", Some(256)),
                personality("work", Some(128)),
            ],
            &DiskConfig::DEFAULT,
        );
        let rows: Vec<_> = plan
            .partitions
            .iter()
            .map(|partition| {
                (
                    partition.name.as_str(),
                    partition.offset_bytes() >> 20,
                    partition.size_bytes() >> 20,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("personal", 1, 256),
                ("work", 257, 128),
                ("shared", 385, 64),
                ("janus", 449, 8)
            ]
        );
        assert_eq!(plan.total_bytes() >> 20, 256 + 128 + 64 + 8 + 2);
        assert_eq!(plan.partitions[0].role, Role::Volume);
        assert_eq!(
            plan.partitions[3].role.partition_type(),
            JANUS_TYPE,
            "janus has Janus' own type"
        );
    }

    #[test]
    fn personality_without_volume_gets_no_partition() {
        let plan = DiskPlan::new(
            &[personality("personal", None), personality("work", Some(16))],
            &DiskConfig::DEFAULT,
        );
        let names: Vec<_> = plan.partitions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["work", "shared", "janus"]);
        assert_eq!(plan.partitions[0].first_lba, FIRST_PARTITION_LBA);
    }

    #[test]
    fn the_gpt_fits_before_the_first_partition_and_after_the_last() {
        assert_eq!(ARRAY_SECTORS, 32);
        let plan = DiskPlan::new(&[personality("personal", Some(16))], &DiskConfig::DEFAULT);
        let last = plan.partitions.last().unwrap();
        // Backup array and header: the last 33 sectors.
        assert!(last.first_lba + last.sectors + ARRAY_SECTORS < plan.total_sectors);
    }

    #[test]
    fn unique_guids_differ_and_keep_the_disk_prefix() {
        let first = unique_guid(0);
        let second = unique_guid(1);
        assert_ne!(first, second);
        assert_ne!(first, DISK_GUID);
        assert_eq!(first.to_string(), "4a414e55-5344-8000-8000-000000000001");
    }
}

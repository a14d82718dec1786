//! Writes the GPT of a [`DiskPlan`] and reads a disk's GPT back, with `gpt_disk_io`.
//!
//! Reading checks what UEFI (2.10, section 5.3.2) asks of a header before it is
//! trusted: the signature, the header CRC, the entry size and the partition array's
//! CRC. Only the primary table is read: `janus-disk` wrote both, and a disk whose
//! primary table is damaged is refused rather than guessed at.

use std::fs::File;

use gpt_disk_io::{BlockIoAdapter, Disk, DiskError};
use gpt_disk_types::{
    BlockSize, GptHeader, GptHeaderRevision, GptHeaderSignature, GptPartitionAttributes,
    GptPartitionEntry, GptPartitionEntryArray, GptPartitionEntrySize, GptPartitionName, Lba, LbaLe,
    U32Le,
};

use super::layout::{
    unique_guid, DiskPlan, ARRAY_SECTORS, DISK_GUID, PARTITION_ENTRIES, PARTITION_ENTRY_BYTES,
    PARTITION_ENTRY_SIZE, PRIMARY_ARRAY_LBA, SECTOR_BYTES,
};

/// One used entry of a disk's partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    /// The GPT name (UTF-16 on the disk).
    pub name: String,
    /// Its first sector.
    pub first_lba: u64,
    /// Its length in sectors.
    pub sectors: u64,
}

impl TableEntry {
    /// Its first byte on the disk.
    pub fn offset_bytes(&self) -> u64 {
        self.first_lba * SECTOR_BYTES
    }

    /// Its length in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.sectors * SECTOR_BYTES
    }
}

/// Why a partition table could not be written or read; the text is the reason.
pub type GptError = String;

/// Turns a `gpt_disk_io` error into its message.
fn message(error: DiskError<std::io::Error>) -> GptError {
    error.to_string()
}

/// The header at `my_lba` of a disk of `total_sectors` whose array is at
/// `array_lba`, with `array_crc` over its entries; its own CRC is filled in.
fn header(
    plan: &DiskPlan,
    my_lba: u64,
    alternate_lba: u64,
    array_lba: u64,
    array_crc: gpt_disk_types::Crc32,
) -> GptHeader {
    let mut header = GptHeader {
        signature: GptHeaderSignature::EFI_COMPATIBLE_PARTITION_TABLE_HEADER,
        revision: GptHeaderRevision::VERSION_1_0,
        my_lba: LbaLe::from_u64(my_lba),
        alternate_lba: LbaLe::from_u64(alternate_lba),
        first_usable_lba: LbaLe::from_u64(PRIMARY_ARRAY_LBA + ARRAY_SECTORS),
        last_usable_lba: LbaLe::from_u64(plan.total_sectors - 2 - ARRAY_SECTORS),
        disk_guid: DISK_GUID,
        partition_entry_lba: LbaLe::from_u64(array_lba),
        number_of_partition_entries: U32Le::from_u32(PARTITION_ENTRIES),
        partition_entry_array_crc32: array_crc,
        ..GptHeader::default()
    };
    header.update_header_crc32();
    header
}

/// Writes the protective MBR and both GPTs of `plan` into `file`, which is already
/// [`DiskPlan::total_bytes`] long.
///
/// # Errors
///
/// The reason, when a write fails.
pub fn write(file: &File, plan: &DiskPlan) -> Result<(), GptError> {
    let block_size = BlockSize::BS_512;
    let mut disk = Disk::new(BlockIoAdapter::new(file, block_size)).map_err(message)?;
    let mut block = vec![0u8; 512];
    disk.write_protective_mbr(&mut block).map_err(message)?;

    let last_lba = plan.total_sectors - 1;
    let backup_array_lba = last_lba - ARRAY_SECTORS;
    let layout = gpt_disk_types::GptPartitionEntryArrayLayout {
        start_lba: Lba(PRIMARY_ARRAY_LBA),
        entry_size: GptPartitionEntrySize::new(PARTITION_ENTRY_SIZE)
            .map_err(|error| error.to_string())?,
        num_entries: PARTITION_ENTRIES,
    };
    let array_bytes = layout
        .num_bytes_rounded_to_block_as_usize(block_size)
        .ok_or("partition array size overflows")?;
    let mut storage = vec![0u8; array_bytes];
    let mut array = GptPartitionEntryArray::new(layout, block_size, &mut storage)
        .map_err(|error| error.to_string())?;
    for (index, partition) in plan.partitions.iter().enumerate() {
        let name: GptPartitionName = partition
            .name
            .parse()
            .map_err(|error| format!("partition name {:?}: {error}", partition.name))?;
        let entry = u32::try_from(index)
            .ok()
            .and_then(|index| array.get_partition_entry_mut(index))
            .ok_or("more partitions than table entries")?;
        *entry = GptPartitionEntry {
            partition_type_guid: partition.role.partition_type(),
            unique_partition_guid: unique_guid(index),
            starting_lba: LbaLe::from_u64(partition.first_lba),
            ending_lba: LbaLe::from_u64(partition.first_lba + partition.sectors - 1),
            attributes: GptPartitionAttributes::default(),
            name,
        };
    }
    let array_crc = array.calculate_crc32();

    let primary = header(plan, 1, last_lba, PRIMARY_ARRAY_LBA, array_crc);
    let backup = header(plan, last_lba, 1, backup_array_lba, array_crc);
    disk.write_primary_gpt_header(&primary, &mut block)
        .map_err(message)?;
    disk.write_gpt_partition_entry_array(&array)
        .map_err(message)?;
    array.set_start_lba(Lba(backup_array_lba));
    disk.write_gpt_partition_entry_array(&array)
        .map_err(message)?;
    disk.write_secondary_gpt_header(&backup, &mut block)
        .map_err(message)?;
    disk.flush().map_err(message)
}

/// Reads the used entries of the primary partition table of `file`, in table order.
///
/// # Errors
///
/// The reason, when the disk has no valid GPT (too short, bad signature, revision,
/// header size or CRC, an entry size other than 128 bytes, a bad array CRC) or a read
/// fails.
pub fn read(file: &File) -> Result<Vec<TableEntry>, GptError> {
    let block_size = BlockSize::BS_512;
    let mut disk = Disk::new(BlockIoAdapter::new(file, block_size)).map_err(message)?;
    let mut block = vec![0u8; 512];
    let header = disk
        .read_primary_gpt_header(&mut block)
        .map_err(|error| format!("cannot read the GPT header: {error}"))?;
    if !header.is_signature_valid() {
        return Err("no GPT (LBA 1 has no \"EFI PART\" signature)".to_owned());
    }
    if header.header_crc32 != header.calculate_header_crc32() {
        return Err("the GPT header's CRC does not match: the table is damaged".to_owned());
    }
    if u64::from(header.size_of_partition_entry.to_u32()) != PARTITION_ENTRY_BYTES {
        return Err(format!(
            "GPT entries are {} bytes, not {PARTITION_ENTRY_BYTES}",
            header.size_of_partition_entry.to_u32()
        ));
    }
    if header.number_of_partition_entries.to_u32() > PARTITION_ENTRIES * 8 {
        return Err(format!(
            "the GPT claims {} entries",
            header.number_of_partition_entries.to_u32()
        ));
    }
    let layout = header
        .get_partition_entry_array_layout()
        .map_err(|error| error.to_string())?;
    let array_bytes = layout
        .num_bytes_rounded_to_block_as_usize(block_size)
        .ok_or("partition array size overflows")?;
    let mut storage = vec![0u8; array_bytes];
    let array = disk
        .read_gpt_partition_entry_array(layout, &mut storage)
        .map_err(|error| format!("cannot read the partition array: {error}"))?;
    if array.calculate_crc32() != header.partition_entry_array_crc32 {
        return Err("the partition array's CRC does not match: the table is damaged".to_owned());
    }
    let mut entries = Vec::new();
    for index in 0..layout.num_entries {
        let entry = array
            .get_partition_entry(index)
            .ok_or("partition entry out of range")?;
        if !entry.is_used() {
            continue;
        }
        let range = entry
            .lba_range()
            .ok_or_else(|| format!("partition {} ends before it starts", index + 1))?;
        entries.push(TableEntry {
            name: entry.name.to_string(),
            first_lba: range.start().to_u64(),
            sectors: range.num_blocks(),
        });
    }
    Ok(entries)
}

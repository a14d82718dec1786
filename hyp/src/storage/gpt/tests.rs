//! GPT images built in memory, then corrupted in every way the reader refuses.

use super::*;
use gpt_disk_io::BlockIoAdapter;
use gpt_disk_types::{
    guid, GptHeaderRevision, GptHeaderSignature, GptPartitionEntry, GptPartitionEntryArray,
    GptPartitionType, LbaLe, U32Le,
};

/// A 1 MiB disk.
const SECTORS: u64 = 2048;
const ENTRIES: u32 = 128;
const ENTRY_BYTES: usize = 128;
const ARRAY_SECTORS: u64 = (ENTRIES as u64 * ENTRY_BYTES as u64) / SECTOR_BYTES as u64;
const FIRST_USABLE: u64 = 2 + ARRAY_SECTORS;
const LAST_USABLE: u64 = SECTORS - 2 - ARRAY_SECTORS;
const BACKUP_ARRAY: u64 = SECTORS - 1 - ARRAY_SECTORS;
const LINUX_DATA: Guid = guid!("0fc63daf-8483-4772-8e79-3d69d8477de4");
const DISK_GUID: Guid = guid!("57a7a7a7-0000-4000-8000-000000000001");

/// The four partitions of a Janus disk.
const LAYOUT: &[(&str, u64, u64)] = &[
    ("personal", 34, 799),
    ("work", 800, 1599),
    ("shared", 1600, 1799),
    ("janus", 1800, 2013),
];

fn header(lba: u64, alternate: u64, array: u64, array_crc: Crc32) -> GptHeader {
    GptHeader {
        signature: GptHeaderSignature::EFI_COMPATIBLE_PARTITION_TABLE_HEADER,
        revision: GptHeaderRevision::VERSION_1_0,
        header_size: U32Le::from_u32(92),
        my_lba: LbaLe::from_u64(lba),
        alternate_lba: LbaLe::from_u64(alternate),
        first_usable_lba: LbaLe::from_u64(FIRST_USABLE),
        last_usable_lba: LbaLe::from_u64(LAST_USABLE),
        disk_guid: DISK_GUID,
        partition_entry_lba: LbaLe::from_u64(array),
        number_of_partition_entries: U32Le::from_u32(ENTRIES),
        size_of_partition_entry: U32Le::from_u32(ENTRY_BYTES as u32),
        partition_entry_array_crc32: array_crc,
        ..GptHeader::default()
    }
}

fn entry(index: usize, name: &str, first: u64, last: u64) -> GptPartitionEntry {
    GptPartitionEntry {
        partition_type_guid: GptPartitionType(LINUX_DATA),
        unique_partition_guid: Guid::from_bytes([index as u8 + 1; 16]),
        starting_lba: LbaLe::from_u64(first),
        ending_lba: LbaLe::from_u64(last),
        attributes: Default::default(),
        name: name.parse().expect("short ASCII name"),
    }
}

/// A GPT disk (protective MBR, both headers, both arrays) with `parts`.
fn image(parts: &[(&str, u64, u64)]) -> Vec<u8> {
    let mut bytes = vec![0u8; SECTORS as usize * SECTOR_BYTES];
    let mut storage = vec![0u8; ENTRIES as usize * ENTRY_BYTES];
    let layout = GptPartitionEntryArrayLayout {
        start_lba: Lba(2),
        entry_size: GptPartitionEntrySize::new(ENTRY_BYTES as u32).expect("128"),
        num_entries: ENTRIES,
    };
    let mut array =
        GptPartitionEntryArray::new(layout, BlockSize::BS_512, &mut storage).expect("array");
    for (index, &(name, first, last)) in parts.iter().enumerate() {
        *array.get_partition_entry_mut(index as u32).expect("entry") =
            entry(index, name, first, last);
    }
    let crc = array.calculate_crc32();
    let mut block = [0u8; SECTOR_BYTES];
    {
        let io = BlockIoAdapter::new(&mut bytes[..], BlockSize::BS_512);
        let mut disk = Disk::new(io).expect("disk");
        disk.write_protective_mbr(&mut block).expect("mbr");
        disk.write_gpt_partition_entry_array(&array)
            .expect("primary array");
        array.set_start_lba(Lba(BACKUP_ARRAY));
        disk.write_gpt_partition_entry_array(&array)
            .expect("backup array");
        let mut primary = header(1, SECTORS - 1, 2, crc);
        primary.update_header_crc32();
        disk.write_primary_gpt_header(&primary, &mut block)
            .expect("primary");
        let mut backup = header(SECTORS - 1, 1, BACKUP_ARRAY, crc);
        backup.update_header_crc32();
        disk.write_secondary_gpt_header(&backup, &mut block)
            .expect("backup");
    }
    bytes
}

fn sector(image: &mut [u8], lba: u64) -> &mut [u8] {
    let start = lba as usize * SECTOR_BYTES;
    &mut image[start..start + SECTOR_BYTES]
}

/// Recomputes the CRC of the header at `lba` over its `HeaderSize` bytes.
fn fix_header_crc(image: &mut [u8], lba: u64) {
    let raw = sector(image, lba);
    let size = u32::from_le_bytes(raw[12..16].try_into().expect("4 bytes")) as usize;
    raw[16..20].fill(0);
    let crc = CRC32.checksum(&raw[..size.min(SECTOR_BYTES)]);
    raw[16..20].copy_from_slice(&crc.to_le_bytes());
}

/// Rewrites the header at `lba` with `edit` applied, with a correct CRC.
fn edit_header(image: &mut [u8], lba: u64, edit: impl FnOnce(&mut GptHeader)) {
    let mut block = [0u8; SECTOR_BYTES];
    {
        let io = BlockIoAdapter::new(&mut image[..], BlockSize::BS_512);
        let mut disk = Disk::new(io).expect("disk");
        let mut header = disk.read_gpt_header(Lba(lba), &mut block).expect("read");
        edit(&mut header);
        disk.write_gpt_header(Lba(lba), &header, &mut block)
            .expect("write");
    }
    fix_header_crc(image, lba);
}

fn expect_backup(image: &mut [u8], why: GptError) {
    let table = read_table(image).expect("the backup is good");
    assert_eq!(table.source, Source::Backup(why));
    assert_eq!(table.partitions.len(), LAYOUT.len());
}

fn expect_both(image: &mut [u8], primary: GptError, backup: GptError) {
    assert_eq!(read_table(image), Err(TableError { primary, backup }));
}

#[test]
fn good_table_is_read_from_the_primary_header() {
    let mut disk = image(LAYOUT);
    let table = read_table(&mut disk[..]).expect("table");
    assert_eq!(table.source, Source::Primary);
    assert_eq!(table.disk_guid, DISK_GUID);
    let names: Vec<&str> = table.partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["personal", "work", "shared", "janus"]);
    let work = table.find("work").expect("work");
    assert_eq!(
        (work.first_lba, work.last_lba, work.sectors()),
        (800, 1599, 800)
    );
    assert_eq!(work.type_guid, LINUX_DATA);
    assert_eq!(work.unique_guid, Guid::from_bytes([2; 16]));
    assert!(table.find("play").is_none());
}

#[test]
fn table_without_partitions_is_empty() {
    let mut disk = image(&[]);
    let table = read_table(&mut disk[..]).expect("table");
    assert!(table.partitions.is_empty());
}

#[test]
fn zeroed_disk_has_no_table() {
    let mut disk = vec![0u8; SECTORS as usize * SECTOR_BYTES];
    let error = read_table(&mut disk[..]).expect_err("no table");
    assert_eq!(
        error,
        TableError {
            primary: GptError::NoSignature,
            backup: GptError::NoSignature
        }
    );
    assert_eq!(error.to_string(), "no GPT partition table");
}

#[test]
fn tiny_disks_are_refused() {
    for size in [0, 1, 511, 4 * SECTOR_BYTES] {
        let mut disk = vec![0u8; size];
        let error = read_table(&mut disk[..]).expect_err("too small");
        assert!(matches!(error.primary, GptError::DiskTooSmall(_)));
        assert!(error.to_string().contains("too small"));
    }
}

#[test]
fn bad_primary_signature_falls_back_to_the_backup() {
    let mut disk = image(LAYOUT);
    sector(&mut disk, 1)[0] ^= 0xff;
    expect_backup(&mut disk, GptError::NoSignature);
}

#[test]
fn bad_primary_header_crc_falls_back_to_the_backup() {
    let mut disk = image(LAYOUT);
    // A byte of the disk GUID.
    sector(&mut disk, 1)[60] ^= 1;
    expect_backup(&mut disk, GptError::HeaderCrc);
}

#[test]
fn bad_primary_entry_array_falls_back_to_the_backup() {
    let mut disk = image(LAYOUT);
    sector(&mut disk, 2)[56] ^= 1;
    expect_backup(&mut disk, GptError::EntryArrayCrc);
}

#[test]
fn both_headers_bad_is_an_error_naming_both() {
    let mut disk = image(LAYOUT);
    sector(&mut disk, 1)[60] ^= 1;
    sector(&mut disk, BACKUP_ARRAY)[56] ^= 1;
    expect_both(&mut disk, GptError::HeaderCrc, GptError::EntryArrayCrc);
    let text = read_table(&mut disk[..]).expect_err("bad").to_string();
    assert_eq!(
        text,
        "primary GPT: header CRC mismatch; backup GPT: partition entry array CRC mismatch"
    );
}

#[test]
fn header_at_the_wrong_lba_is_refused() {
    let mut disk = image(LAYOUT);
    edit_header(&mut disk, 1, |h| h.my_lba = LbaLe::from_u64(2));
    expect_backup(
        &mut disk,
        GptError::WrongLba {
            found: 2,
            expected: 1,
        },
    );
}

#[test]
fn unknown_revision_is_refused() {
    let mut disk = image(LAYOUT);
    edit_header(&mut disk, 1, |h| {
        h.revision = GptHeaderRevision(U32Le::from_u32(0x0002_0000))
    });
    expect_backup(&mut disk, GptError::Revision(0x0002_0000));
}

#[test]
fn header_sizes_out_of_range_are_refused() {
    for size in [0, 91, 513, u32::MAX] {
        let mut disk = image(LAYOUT);
        edit_header(&mut disk, 1, |h| h.header_size = U32Le::from_u32(size));
        expect_backup(&mut disk, GptError::HeaderSize(size));
    }
}

#[test]
fn longer_header_is_checked_over_its_whole_size() {
    let mut disk = image(LAYOUT);
    edit_header(&mut disk, 1, |h| h.header_size = U32Le::from_u32(96));
    assert_eq!(
        read_table(&mut disk[..]).expect("ok").source,
        Source::Primary
    );
    // Byte 94 is inside the 96 bytes the CRC covers.
    sector(&mut disk, 1)[94] = 1;
    expect_backup(&mut disk, GptError::HeaderCrc);
}

#[test]
fn invalid_entry_sizes_are_refused() {
    for size in [0, 100, 129, 192] {
        let mut disk = image(LAYOUT);
        edit_header(&mut disk, 1, |h| {
            h.size_of_partition_entry = U32Le::from_u32(size)
        });
        expect_backup(&mut disk, GptError::EntrySize(size));
    }
}

#[test]
fn absurd_entry_counts_are_refused_before_allocating() {
    for (entries, size) in [(u32::MAX, 128), (257, 128), (1, 1 << 31), (128, 512)] {
        let mut disk = image(LAYOUT);
        edit_header(&mut disk, 1, |h| {
            h.number_of_partition_entries = U32Le::from_u32(entries);
            h.size_of_partition_entry = U32Le::from_u32(size);
        });
        expect_backup(
            &mut disk,
            GptError::EntryArrayTooBig {
                entries,
                entry_size: size,
            },
        );
    }
}

#[test]
fn entry_arrays_out_of_range_are_refused() {
    // Past the end, over the backup header, over the primary header, over the
    // usable sectors, and wrapping around.
    for start in [
        SECTORS,
        SECTORS - ARRAY_SECTORS,
        1,
        FIRST_USABLE,
        u64::MAX - 1,
    ] {
        let mut disk = image(LAYOUT);
        edit_header(&mut disk, 1, |h| {
            h.partition_entry_lba = LbaLe::from_u64(start)
        });
        expect_backup(
            &mut disk,
            GptError::EntryArrayRange {
                start,
                sectors: ARRAY_SECTORS,
            },
        );
    }
}

#[test]
fn usable_ranges_out_of_the_disk_are_refused() {
    for (first, last) in [
        (0, LAST_USABLE),
        (1, LAST_USABLE),
        (FIRST_USABLE, SECTORS - 1),
        (FIRST_USABLE, SECTORS),
        (500, 400),
        (FIRST_USABLE, u64::MAX),
    ] {
        let mut disk = image(LAYOUT);
        edit_header(&mut disk, 1, |h| {
            h.first_usable_lba = LbaLe::from_u64(first);
            h.last_usable_lba = LbaLe::from_u64(last);
        });
        expect_backup(&mut disk, GptError::UsableRange { first, last });
    }
}

#[test]
fn partitions_outside_the_usable_range_are_refused() {
    for (first, last) in [(1800, SECTORS), (1800, u64::MAX), (2, 100), (900, 899)] {
        let mut parts = LAYOUT.to_vec();
        parts[3] = ("janus", first, last);
        let mut disk = image(&parts);
        let why = GptError::PartitionRange {
            index: 3,
            first,
            last,
        };
        expect_both(&mut disk, why, why);
    }
}

#[test]
fn overlapping_partitions_are_refused() {
    let mut parts = LAYOUT.to_vec();
    // `janus` starts inside `work`.
    parts[3] = ("janus", 1599, 2013);
    let mut disk = image(&parts);
    expect_both(&mut disk, GptError::Overlap(1, 3), GptError::Overlap(1, 3));
    let text = read_table(&mut disk[..]).expect_err("overlap").to_string();
    assert!(text.contains("partitions 2 and 4 overlap"), "{text}");
}

#[test]
fn duplicate_names_are_refused() {
    let mut parts = LAYOUT.to_vec();
    parts[2].0 = "work";
    let mut disk = image(&parts);
    let why = GptError::DuplicateName(1, 2);
    expect_both(&mut disk, why, why);
}

#[test]
fn unnamed_partitions_may_share_the_empty_name() {
    let mut parts = LAYOUT.to_vec();
    parts[2].0 = "";
    parts[3].0 = "";
    let mut disk = image(&parts);
    assert_eq!(read_table(&mut disk[..]).expect("ok").partitions.len(), 4);
}

/// A disk whose reads of one sector fail.
struct FailingDisk {
    image: Vec<u8>,
    bad: u64,
}

impl SectorReader for FailingDisk {
    fn sectors(&self) -> u64 {
        self.image[..].sectors()
    }

    fn read(&mut self, lba: u64, buffer: &mut [u8]) -> Result<(), ReadError> {
        let count = (buffer.len() / SECTOR_BYTES) as u64;
        if (lba..lba + count).contains(&self.bad) {
            return Err(ReadError);
        }
        self.image[..].read(lba, buffer)
    }
}

#[test]
fn read_failures_are_errors() {
    let mut disk = FailingDisk {
        image: image(LAYOUT),
        bad: 1,
    };
    let table = read_table(&mut disk).expect("backup");
    assert_eq!(table.source, Source::Backup(GptError::Read(1)));
    disk.bad = 2;
    let table = read_table(&mut disk).expect("backup");
    assert_eq!(table.source, Source::Backup(GptError::Read(2)));
    disk.bad = SECTORS - 1;
    assert_eq!(
        read_table(&mut disk).expect("primary").source,
        Source::Primary
    );
}

#[test]
fn backup_only_disk_is_read() {
    let mut disk = image(LAYOUT);
    sector(&mut disk, 1).fill(0);
    expect_backup(&mut disk, GptError::NoSignature);
}

#[test]
fn any_flipped_byte_in_the_headers_or_arrays_never_panics() {
    let good = image(LAYOUT);
    let sectors = [1, 2, 3, BACKUP_ARRAY, SECTORS - 1];
    for lba in sectors {
        for offset in 0..SECTOR_BYTES {
            for flip in [0x01, 0x80, 0xff] {
                let mut disk = good.clone();
                sector(&mut disk, lba)[offset] ^= flip;
                let _ = read_table(&mut disk[..]);
            }
        }
    }
}

//! The GPT reader on arbitrary disks: never a panic, and a table it accepts has
//! its partitions inside the disk and apart. The first byte picks whether the
//! CRCs are made right first, so that the checks behind them get reached.
#![no_main]

use gpt_disk_types::crc::Crc;
use gpt_disk_types::Crc32;
use hyp::storage::gpt::{read_table, SECTOR_BYTES};
use libfuzzer_sys::fuzz_target;

const CRC32: Crc<u32> = Crc::<u32>::new(&Crc32::ALGORITHM);

fn field(sector: &[u8], offset: usize) -> u64 {
    let mut bytes = [0u8; 8];
    let width = if offset == 12 || offset >= 80 { 4 } else { 8 };
    bytes[..width].copy_from_slice(&sector[offset..offset + width]);
    u64::from_le_bytes(bytes)
}

/// Makes the entry-array CRC and then the header CRC of the header at `lba` right.
fn fix_crcs(disk: &mut [u8], lba: usize) {
    let header = lba * SECTOR_BYTES;
    let sector = &disk[header..header + SECTOR_BYTES];
    let (array, entries, size) = (field(sector, 72), field(sector, 80), field(sector, 84));
    let start = array.checked_mul(SECTOR_BYTES as u64);
    let bytes = entries.checked_mul(size).filter(|&bytes| bytes <= 1 << 20);
    if let (Some(start), Some(bytes)) = (start, bytes) {
        if let Some(range) = disk.get(start as usize..(start + bytes) as usize) {
            let crc = CRC32.checksum(range);
            disk[header + 88..header + 92].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let size = (field(&disk[header..], 12) as usize).clamp(92, SECTOR_BYTES);
    disk[header + 16..header + 20].fill(0);
    let crc = CRC32.checksum(&disk[header..header + size]);
    disk[header + 16..header + 20].copy_from_slice(&crc.to_le_bytes());
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let mut disk = rest.to_vec();
    disk.resize(disk.len().div_ceil(SECTOR_BYTES) * SECTOR_BYTES, 0);
    let sectors = disk.len() / SECTOR_BYTES;
    if mode & 1 != 0 && sectors >= 2 {
        fix_crcs(&mut disk, 1);
        fix_crcs(&mut disk, sectors - 1);
    }
    if let Ok(table) = read_table(&mut disk[..]) {
        let mut ranges: Vec<(u64, u64)> = table
            .partitions
            .iter()
            .map(|p| (p.first_lba, p.last_lba))
            .collect();
        ranges.sort_unstable();
        for &(first, last) in &ranges {
            assert!(first >= 2 && first <= last && last + 2 <= sectors as u64);
        }
        for pair in ranges.windows(2) {
            assert!(pair[0].1 < pair[1].0);
        }
    }
});

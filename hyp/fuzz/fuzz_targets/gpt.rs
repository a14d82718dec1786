//! The GPT reader on arbitrary disks: never a panic, and a table it accepts has
//! its partitions inside the disk and apart. The first byte picks the mode: bit 1
//! set, the rest of the input is the disk; clear, it is (offset, byte) patches to
//! a good 16-sector GPT disk with two partitions. Bit 0 set makes the CRCs right
//! after, so that the checks behind them get reached.
#![no_main]

use hyp::storage::gpt::{read_table, CRC32, SECTOR_BYTES};
use libfuzzer_sys::fuzz_target;

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
    let end = start
        .zip(bytes)
        .and_then(|(start, bytes)| start.checked_add(bytes));
    if let (Some(start), Some(end)) = (start, end) {
        if let Some(range) = disk.get(start as usize..end as usize) {
            let crc = CRC32.checksum(range);
            disk[header + 88..header + 92].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let size = (field(&disk[header..], 12) as usize).clamp(92, SECTOR_BYTES);
    disk[header + 16..header + 20].fill(0);
    let crc = CRC32.checksum(&disk[header..header + size]);
    disk[header + 16..header + 20].copy_from_slice(&crc.to_le_bytes());
}

const TEMPLATE_SECTORS: usize = 16;

fn put(disk: &mut [u8], at: usize, bytes: &[u8]) {
    disk[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A good GPT disk: MBR, header at 1, 4 entries at 2, usable 3-13, backup
/// entries at 14, backup header at 15; partitions "personal" 3-7 and "work" 8-13.
fn template() -> Vec<u8> {
    let mut disk = vec![0u8; TEMPLATE_SECTORS * SECTOR_BYTES];
    for (index, (name, first, last)) in [("personal", 3u64, 7u64), ("work", 8, 13)]
        .iter()
        .enumerate()
    {
        let entry = 2 * SECTOR_BYTES + index * 128;
        put(&mut disk, entry, &[0xaf; 16]);
        put(&mut disk, entry + 16, &[index as u8 + 1; 16]);
        put(&mut disk, entry + 32, &first.to_le_bytes());
        put(&mut disk, entry + 40, &last.to_le_bytes());
        for (i, unit) in name.encode_utf16().enumerate() {
            put(&mut disk, entry + 56 + 2 * i, &unit.to_le_bytes());
        }
    }
    let entries = disk[2 * SECTOR_BYTES..3 * SECTOR_BYTES].to_vec();
    put(&mut disk, 14 * SECTOR_BYTES, &entries);
    for (lba, alternate, array) in [(1u64, 15u64, 2u64), (15, 1, 14)] {
        let header = lba as usize * SECTOR_BYTES;
        put(&mut disk, header, b"EFI PART");
        put(&mut disk, header + 8, &0x0001_0000u32.to_le_bytes());
        put(&mut disk, header + 12, &92u32.to_le_bytes());
        put(&mut disk, header + 24, &lba.to_le_bytes());
        put(&mut disk, header + 32, &alternate.to_le_bytes());
        put(&mut disk, header + 40, &3u64.to_le_bytes());
        put(&mut disk, header + 48, &13u64.to_le_bytes());
        put(&mut disk, header + 72, &array.to_le_bytes());
        put(&mut disk, header + 80, &4u32.to_le_bytes());
        put(&mut disk, header + 84, &128u32.to_le_bytes());
        fix_crcs(&mut disk, lba as usize);
    }
    disk
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let mut disk = if mode & 2 != 0 {
        let mut disk = rest.to_vec();
        disk.resize(disk.len().div_ceil(SECTOR_BYTES) * SECTOR_BYTES, 0);
        disk
    } else {
        let mut disk = template();
        for patch in rest.chunks_exact(3) {
            let at = usize::from(u16::from_le_bytes([patch[0], patch[1]])) % disk.len();
            disk[at] = patch[2];
        }
        disk
    };
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

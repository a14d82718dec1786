//! Hostile and damaged images: an error or a consistent store, never a panic.

use alloc::vec::Vec;

use super::{at, dump, fresh, pattern};
use crate::channel::store::disk::testing::MemDisk;
use crate::channel::store::disk::SECTOR_BYTES;
use crate::channel::store::format::{Superblock, BLOCK_BYTES};
use crate::channel::store::{Limits, Store, StoreError, ROOT};

/// A committed store with some files and directories.
fn populated() -> Store<MemDisk> {
    let mut store = fresh(512);
    let d = store.mkdir(ROOT, "dir", 0o755, 1, at(1)).unwrap();
    for i in 0..20u32 {
        let f = store
            .create(d, &alloc::format!("f{i}"), 0o644, (i % 2) as u8, at(2))
            .unwrap();
        store
            .write(f, 0, &pattern(i, 3000 + 500 * i as usize), at(2))
            .unwrap();
        store.commit().unwrap();
    }
    store
}

/// Mounts, and when that works, uses the store a little: nothing may panic.
fn mount_and_use(disk: MemDisk) -> Result<(), StoreError> {
    let mut store = Store::mount(disk, Limits::default())?;
    let _ = dump(&mut store);
    let f = store.create(ROOT, "new", 0o644, 0, at(9))?;
    store.write(f, 0, &pattern(1, 10_000), at(9))?;
    store.commit()?;
    let mut store = Store::mount(store.into_disk(), Limits::default())?;
    let _ = dump(&mut store);
    Ok(())
}

#[test]
fn every_flipped_superblock_byte_is_caught() {
    let disk = populated().into_disk();
    let seq_slot = {
        let a = Superblock::decode(&disk.bytes[..SECTOR_BYTES], 512).map(|s| s.seq);
        let b = Superblock::decode(&disk.bytes[BLOCK_BYTES..BLOCK_BYTES + SECTOR_BYTES], 512)
            .map(|s| s.seq);
        if a > b {
            0
        } else {
            BLOCK_BYTES
        }
    };
    for byte in 0..64 {
        let mut bad = disk.clone();
        bad.bytes[seq_slot + byte] ^= 0x41;
        // The older superblock may still be taken: its chain is intact only if
        // nothing reused its blocks; either way no panic and no inconsistency.
        let _ = mount_and_use(bad);
    }
}

#[test]
fn damaged_metadata_blocks_give_errors_not_panics() {
    let store = populated();
    let chain = store.chain.clone();
    let disk = store.into_disk();
    for &block in &chain {
        let start = block as usize * BLOCK_BYTES;
        let mut len = [0u8; 4];
        len.copy_from_slice(&disk.bytes[start + 20..start + 24]);
        let payload_end = 32 + u32::from_le_bytes(len) as usize;
        // Bytes past the payload are not part of the record stream: not checked.
        for offset in [0usize, 5, 20, 33, 100, payload_end - 1] {
            let mut bad = disk.clone();
            bad.bytes[block as usize * BLOCK_BYTES + offset] ^= 0xff;
            assert!(
                Store::mount(bad, Limits::default()).is_err(),
                "block {block} byte {offset}"
            );
        }
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut seed = 0x1234_5678_9abc_def0u64;
    let base = populated().into_disk();
    for round in 0..300 {
        let mut disk = base.clone();
        for _ in 0..(1 + round % 50) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % disk.bytes.len();
            disk.bytes[at] = (seed >> 32) as u8;
        }
        let _ = mount_and_use(disk);
    }
}

#[test]
fn overlapping_extents_are_refused() {
    let mut store = fresh(256);
    let a = store.create(ROOT, "a", 0o644, 0, at(1)).unwrap();
    let b = store.create(ROOT, "b", 0o644, 0, at(1)).unwrap();
    store.write(a, 0, &[1; 8192], at(1)).unwrap();
    let stolen = store.nodes[&a].extents.clone();
    let node = store.nodes.get_mut(&b).unwrap();
    node.extents = stolen;
    node.size = 8192;
    store.commit().unwrap();
    assert_eq!(
        Store::mount(store.into_disk(), Limits::default()).err(),
        Some(StoreError::Corrupt)
    );
}

#[test]
fn a_directory_cycle_is_refused() {
    let mut store = fresh(256);
    let d = store.mkdir(ROOT, "d", 0o755, 0, at(1)).unwrap();
    let e = store.mkdir(d, "e", 0o755, 0, at(1)).unwrap();
    store.commit().unwrap();
    let node = store.nodes.get_mut(&d).unwrap();
    node.parent = e;
    node.cookie = 1;
    store.nodes.get_mut(&e).unwrap().next_cookie = 2;
    store.dirty.insert(d);
    store.dirty.insert(e);
    store.commit().unwrap();
    assert_eq!(
        Store::mount(store.into_disk(), Limits::default()).err(),
        Some(StoreError::Corrupt)
    );
}

#[test]
fn duplicate_names_are_refused() {
    let mut store = fresh(256);
    store.create(ROOT, "x", 0o644, 0, at(1)).unwrap();
    let y = store.create(ROOT, "y", 0o644, 0, at(1)).unwrap();
    store.nodes.get_mut(&y).unwrap().name = "x".into();
    store.commit().unwrap();
    assert_eq!(
        Store::mount(store.into_disk(), Limits::default()).err(),
        Some(StoreError::Corrupt)
    );
}

#[test]
fn a_superblock_claiming_a_huge_chain_is_refused_quickly() {
    let store = populated();
    let mut disk = store.into_disk();
    for slot in [0, BLOCK_BYTES] {
        if let Some(mut superblock) =
            Superblock::decode(&disk.bytes[slot..slot + SECTOR_BYTES], 512)
        {
            superblock.chain_blocks = 500;
            disk.bytes[slot..slot + SECTOR_BYTES].copy_from_slice(&superblock.encode());
        }
    }
    assert_eq!(
        Store::mount(disk, Limits::default()).err(),
        Some(StoreError::Corrupt)
    );
}

#[test]
fn a_disk_smaller_than_the_store_is_refused() {
    let disk = populated().into_disk();
    let short: Vec<u8> = disk.bytes[..256 * BLOCK_BYTES].to_vec();
    assert!(Store::mount(MemDisk::from_bytes(short), Limits::default()).is_err());
    assert!(Store::mount(MemDisk::new(3), Limits::default()).is_err());
}

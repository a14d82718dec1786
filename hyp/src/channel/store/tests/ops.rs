//! Every operation, one by one, and across remounts.

use alloc::vec;
use alloc::vec::Vec;

use super::{at, dump, fresh, pattern, remount};
use crate::channel::fs::{Errno, Kind};
use crate::channel::store::disk::testing::MemDisk;
use crate::channel::store::{Limits, Store, StoreError, BLOCK_BYTES, ROOT};

#[test]
fn format_then_mount_gives_an_empty_root() {
    let store = fresh(256);
    let mut store = remount(store);
    let root = store.info(ROOT).unwrap();
    assert_eq!(root.attr.kind, Kind::Dir);
    assert_eq!(root.attr.nlink, 2);
    assert_eq!(dump(&mut store).len(), 1);
}

#[test]
fn blank_partition_is_reported_as_blank() {
    assert_eq!(
        Store::mount(MemDisk::new(2048), Limits::default()).err(),
        Some(StoreError::Blank)
    );
    assert_eq!(
        Store::format(MemDisk::new(64), Limits::default(), at(0)).err(),
        Some(StoreError::BadSize)
    );
}

#[test]
fn create_lookup_write_read_and_remount() {
    let mut store = fresh(256);
    let file = store.create(ROOT, "a.txt", 0o644, 1, at(1)).unwrap();
    assert_eq!(store.lookup(ROOT, "a.txt"), Ok(file));
    assert_eq!(
        store.create(ROOT, "a.txt", 0o644, 1, at(1)),
        Err(StoreError::Exists)
    );
    let data = pattern(1, 10_000);
    assert_eq!(store.write(file, 100, &data, at(2)), Ok(10_000));
    let info = store.info(file).unwrap();
    assert_eq!(info.attr.size, 10_100);
    assert_eq!(info.owner, 1);
    assert_eq!(info.attr.mtime, at(2));
    store.commit().unwrap();
    let mut store = remount(store);
    let mut buf = vec![0xff; 20_000];
    assert_eq!(store.read(file, 0, &mut buf), Ok(10_100));
    assert!(buf[..100].iter().all(|&b| b == 0));
    assert_eq!(&buf[100..10_100], &data[..]);
    assert_eq!(store.read(file, 10_100, &mut buf), Ok(0));
    // An unaligned read in the middle.
    let mut small = [0u8; 7];
    assert_eq!(store.read(file, 5003, &mut small), Ok(7));
    assert_eq!(&small, &data[4903..4910]);
}

#[test]
fn names_are_checked() {
    let mut store = fresh(256);
    for bad in ["", ".", "..", "a/b", "nul\0"] {
        assert_eq!(
            store.create(ROOT, bad, 0, 0, at(1)),
            Err(StoreError::InvalidName)
        );
    }
    let long = "x".repeat(256);
    assert_eq!(
        store.mkdir(ROOT, &long, 0, 0, at(1)),
        Err(StoreError::NameTooLong)
    );
    assert!(store.mkdir(ROOT, &long[..255], 0, 0, at(1)).is_ok());
    assert_eq!(StoreError::NameTooLong.to_errno(), Errno::ENAMETOOLONG);
    assert_eq!(StoreError::TooManyNodes.to_errno(), Errno::ENOSPC);
}

#[test]
fn readdir_cookies_survive_changes_to_the_directory() {
    let mut store = fresh(256);
    for i in 0..10 {
        store
            .create(ROOT, &alloc::format!("f{i}"), 0o600, 0, at(1))
            .unwrap();
    }
    let mut first = Vec::new();
    store
        .readdir(ROOT, 0, &mut |entry| {
            first.push((entry.cookie, alloc::string::String::from(entry.name)));
            first.len() < 4
        })
        .unwrap();
    assert_eq!(first.len(), 4);
    let resume = first[2].0;
    store.unlink(ROOT, "f1", at(2)).unwrap();
    store.unlink(ROOT, "f3", at(2)).unwrap();
    store.create(ROOT, "new", 0o600, 0, at(2)).unwrap();
    let mut rest = Vec::new();
    store
        .readdir(ROOT, resume, &mut |entry| {
            rest.push(alloc::string::String::from(entry.name));
            true
        })
        .unwrap();
    assert_eq!(rest, ["f4", "f5", "f6", "f7", "f8", "f9", "new"]);
    store.commit().unwrap();
    let store = remount(store);
    let mut again = Vec::new();
    store
        .readdir(ROOT, resume, &mut |entry| {
            again.push(alloc::string::String::from(entry.name));
            true
        })
        .unwrap();
    assert_eq!(again, rest);
}

#[test]
fn mkdir_rmdir_and_not_empty() {
    let mut store = fresh(256);
    let dir = store.mkdir(ROOT, "d", 0o755, 0, at(1)).unwrap();
    let file = store.create(dir, "f", 0o644, 0, at(1)).unwrap();
    assert_eq!(store.info(ROOT).unwrap().attr.nlink, 3);
    assert_eq!(store.rmdir(ROOT, "d", at(2)), Err(StoreError::NotEmpty));
    assert_eq!(store.unlink(ROOT, "d", at(2)), Err(StoreError::IsDir));
    assert_eq!(store.rmdir(dir, "f", at(2)), Err(StoreError::NotDir));
    assert_eq!(store.lookup(file, "x"), Err(StoreError::NotDir));
    assert_eq!(store.unlink(dir, "f", at(2)), Ok(file));
    assert_eq!(store.rmdir(ROOT, "d", at(2)), Ok(dir));
    assert_eq!(store.info(dir).err(), Some(StoreError::NotFound));
    assert_eq!(store.info(ROOT).unwrap().attr.nlink, 2);
    store.commit().unwrap();
    let mut store = remount(store);
    assert_eq!(dump(&mut store).len(), 1);
}

#[test]
fn rename_replaces_files_and_empty_dirs_and_refuses_cycles() {
    let mut store = fresh(256);
    let a = store.create(ROOT, "a", 0o644, 0, at(1)).unwrap();
    let b = store.create(ROOT, "b", 0o644, 0, at(1)).unwrap();
    store.write(a, 0, b"from a", at(1)).unwrap();
    assert_eq!(store.rename(ROOT, "a", ROOT, "b", at(2)), Ok(Some(b)));
    assert_eq!(store.lookup(ROOT, "b"), Ok(a));
    assert_eq!(store.lookup(ROOT, "a"), Err(StoreError::NotFound));
    assert_eq!(store.rename(ROOT, "b", ROOT, "b", at(2)), Ok(None));
    let d = store.mkdir(ROOT, "d", 0o755, 0, at(3)).unwrap();
    let e = store.mkdir(d, "e", 0o755, 0, at(3)).unwrap();
    assert_eq!(
        store.rename(ROOT, "d", e, "x", at(3)),
        Err(StoreError::InvalidMove)
    );
    assert_eq!(
        store.rename(ROOT, "d", d, "x", at(3)),
        Err(StoreError::InvalidMove)
    );
    assert_eq!(
        store.rename(ROOT, "b", d, "e", at(3)),
        Err(StoreError::IsDir)
    );
    let empty = store.mkdir(ROOT, "empty", 0o755, 0, at(3)).unwrap();
    assert_eq!(
        store.rename(d, "e", ROOT, "b", at(3)),
        Err(StoreError::NotDir)
    );
    assert_eq!(
        store.rename(ROOT, "empty", ROOT, "d", at(3)),
        Err(StoreError::NotEmpty)
    );
    assert_eq!(store.rename(d, "e", ROOT, "empty", at(4)), Ok(Some(empty)));
    assert_eq!(store.info(e).unwrap().parent, Some(ROOT));
    assert_eq!(store.info(d).unwrap().attr.nlink, 2);
    store.rename(ROOT, "b", d, "moved", at(5)).unwrap();
    store.commit().unwrap();
    let mut store = remount(store);
    let tree = dump(&mut store);
    assert_eq!(tree["/d/moved"].data, b"from a");
    assert_eq!(tree["/d/moved"].ino, a);
    assert_eq!(tree["/empty"].ino, e);
    assert_eq!(tree.len(), 4);
}

#[test]
fn unlinked_open_file_keeps_its_data_until_the_last_close() {
    let mut store = fresh(256);
    let file = store.create(ROOT, "f", 0o644, 2, at(1)).unwrap();
    store.write(file, 0, &pattern(3, 50_000), at(1)).unwrap();
    store.commit().unwrap();
    let used = store.usage(2);
    assert_eq!(used.objects, 1);
    assert_eq!(used.bytes, 13 * BLOCK_BYTES as u64);
    store.open(file).unwrap();
    store.unlink(ROOT, "f", at(2)).unwrap();
    store.commit().unwrap();
    assert_eq!(store.info(file).unwrap().attr.nlink, 0);
    // Someone else takes space meanwhile: the open file's blocks must not go.
    let other = store.create(ROOT, "g", 0o644, 0, at(3)).unwrap();
    store.write(other, 0, &pattern(9, 400_000), at(3)).unwrap();
    store.write(file, 50_000, b"more", at(3)).unwrap();
    store.commit().unwrap();
    let mut buf = vec![0; 50_004];
    assert_eq!(store.read(file, 0, &mut buf), Ok(50_004));
    assert_eq!(&buf[..50_000], &pattern(3, 50_000)[..]);
    assert_eq!(store.usage(2).objects, 1);
    store.close(file).unwrap();
    assert_eq!(store.info(file).err(), Some(StoreError::NotFound));
    assert_eq!(store.usage(2), Default::default());
    assert_eq!(store.close(other), Err(StoreError::Busy));
    let mut store = remount(store);
    let tree = dump(&mut store);
    assert_eq!(tree.len(), 2);
    assert_eq!(tree["/g"].data, pattern(9, 400_000));
}

#[test]
fn truncate_shrinks_extends_and_zeroes_the_tail() {
    let mut store = fresh(256);
    let file = store.create(ROOT, "f", 0o644, 0, at(1)).unwrap();
    store
        .write(file, 0, &[0xaa; 3 * BLOCK_BYTES], at(1))
        .unwrap();
    store.commit().unwrap();
    store.set_size(file, 5000, at(2)).unwrap();
    store.set_size(file, 20_000, at(3)).unwrap();
    let mut buf = vec![0xff; 20_000];
    assert_eq!(store.read(file, 0, &mut buf), Ok(20_000));
    assert!(buf[..5000].iter().all(|&b| b == 0xaa));
    assert!(buf[5000..].iter().all(|&b| b == 0));
    store.commit().unwrap();
    let mut store = remount(store);
    let mut again = vec![0xff; 20_000];
    assert_eq!(store.read(file, 0, &mut again), Ok(20_000));
    assert_eq!(again, buf);
    store.set_size(file, 0, at(4)).unwrap();
    assert_eq!(store.usage(0).bytes, 0);
    assert_eq!(store.set_size(ROOT, 0, at(4)), Err(StoreError::IsDir));
}

#[test]
fn attributes_and_labels_persist() {
    let mut store = fresh(256);
    let file = store.create(ROOT, "f", 0o100644, 1, at(1)).unwrap();
    assert_eq!(store.info(file).unwrap().attr.mode, 0o644);
    store.set_mode(file, 0o600, at(2)).unwrap();
    store
        .set_times(file, Some(at(10)), Some(at(11)), at(3))
        .unwrap();
    store.write(file, 0, b"abc", at(4)).unwrap();
    store.set_times(file, None, Some(at(11)), at(5)).unwrap();
    store.set_label(file, 1, true, at(6)).unwrap();
    let before = store.info(file).unwrap();
    assert!(before.released);
    assert_eq!(before.attr.mtime, at(11));
    assert_eq!(before.attr.ctime, at(6));
    store.commit().unwrap();
    let store = remount(store);
    assert_eq!(store.info(file).unwrap(), before);
    assert_eq!(store.usage(1).objects, 1);
}

#[test]
fn label_change_moves_usage() {
    let mut store = fresh(256);
    let file = store.create(ROOT, "f", 0o644, 1, at(1)).unwrap();
    store.write(file, 0, &[1; 10], at(1)).unwrap();
    store.set_label(file, 0, false, at(2)).unwrap();
    assert_eq!(store.usage(1), Default::default());
    assert_eq!(store.usage(0).objects, 2);
    assert_eq!(store.usage(0).bytes, BLOCK_BYTES as u64);
}

#[test]
fn object_limit_is_enforced_and_reported() {
    let limits = Limits {
        max_nodes: 5,
        ..Limits::default()
    };
    let mut store = Store::format(MemDisk::new(2048), limits, at(0)).unwrap();
    for i in 0..4 {
        store
            .create(ROOT, &alloc::format!("{i}"), 0, 0, at(1))
            .unwrap();
    }
    assert_eq!(
        store.create(ROOT, "x", 0, 0, at(1)),
        Err(StoreError::TooManyNodes)
    );
    assert_eq!(store.statfs().files_free, 0);
    store.commit().unwrap();
    // Mounting with a lower limit than the store holds is refused.
    let disk = store.into_disk();
    let lower = Limits {
        max_nodes: 3,
        ..limits
    };
    assert_eq!(
        Store::mount(disk, lower).err(),
        Some(StoreError::TooManyNodes)
    );
}

#[test]
fn full_partition_gives_no_space_and_frees_after_delete() {
    let mut store = fresh(256);
    let file = store.create(ROOT, "big", 0o644, 0, at(1)).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let mut offset = 0u64;
    loop {
        match store.write(file, offset, &chunk, at(1)) {
            Ok(n) if n == chunk.len() => offset += n as u64,
            Ok(n) => {
                offset += n as u64;
                break;
            }
            Err(error) => {
                assert_eq!(error, StoreError::NoSpace);
                break;
            }
        }
    }
    assert!(offset > 512 * 1024, "wrote {offset}");
    assert_eq!(store.statfs().blocks_free, 0);
    store.commit().unwrap();
    store.unlink(ROOT, "big", at(2)).unwrap();
    store.commit().unwrap();
    assert!(store.statfs().blocks_free > 128);
    let store = remount(store);
    assert!(store.statfs().blocks_free > 128);
}

#[test]
fn overwrites_never_touch_committed_blocks() {
    let mut store = fresh(256);
    let file = store.create(ROOT, "f", 0o644, 0, at(1)).unwrap();
    store.write(file, 0, &[1; 8192], at(1)).unwrap();
    store.commit().unwrap();
    let committed = store.disk().bytes.clone();
    store.write(file, 100, &[2; 5000], at(2)).unwrap();
    store.write(file, 100, &[3; 5000], at(2)).unwrap();
    // The committed image, mounted from what is on disk now, still reads 1s.
    let image = store.disk().clone();
    let mut old = Store::mount(image, Limits::default()).unwrap();
    let mut buf = [0u8; 8192];
    old.read(file, 0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 1));
    // And the blocks the commit referenced still hold what they held.
    let mut now = store.disk().bytes.clone();
    for (index, (a, b)) in committed
        .chunks(BLOCK_BYTES)
        .zip(now.chunks_mut(BLOCK_BYTES))
        .enumerate()
    {
        if a.contains(&1) {
            assert_eq!(a, b, "block {index} overwritten");
        }
    }
}

#[test]
fn sequential_124k_writes_cost_one_disk_write_each() {
    let mut store = fresh(32 * 1024);
    let file = store.create(ROOT, "big", 0o644, 0, at(1)).unwrap();
    let chunk = pattern(5, 124 * 1024);
    let calls = 64 * 1024 * 1024 / chunk.len();
    let writes_before = store.disk().writes;
    for i in 0..calls {
        store
            .write(file, (i * chunk.len()) as u64, &chunk, at(1))
            .unwrap();
    }
    assert_eq!(store.disk().writes - writes_before, calls as u64);
    store.commit().unwrap();
    let reads_before = store.disk().reads;
    let mut buf = vec![0u8; chunk.len()];
    for i in 0..calls {
        assert_eq!(
            store.read(file, (i * chunk.len()) as u64, &mut buf),
            Ok(chunk.len())
        );
    }
    assert_eq!(store.disk().reads - reads_before, calls as u64);
    assert_eq!(buf, chunk);
    // One extent: the commit record stays small.
    assert!(store.extent_count <= 2, "{} extents", store.extent_count);
}

#[test]
fn commit_with_nothing_changed_writes_nothing() {
    let mut store = fresh(256);
    let writes = store.disk().writes;
    store.commit().unwrap();
    assert_eq!(store.disk().writes, writes);
    store.create(ROOT, "a", 0, 0, at(1)).unwrap();
    store.commit().unwrap();
    // One log block and one superblock.
    assert_eq!(store.disk().writes, writes + 2);
}

#[test]
fn many_commits_cross_checkpoints_and_keep_everything() {
    let mut store = fresh(512);
    let mut files = Vec::new();
    for i in 0..300u32 {
        let name = alloc::format!("file-{i}");
        let file = store
            .create(ROOT, &name, 0o644, (i % 2) as u8, at(u64::from(i)))
            .unwrap();
        store
            .write(file, 0, &pattern(i, 100 + i as usize), at(u64::from(i)))
            .unwrap();
        if i % 3 == 0 {
            store.unlink(ROOT, &name, at(u64::from(i))).unwrap();
        } else {
            files.push((name, i));
        }
        store.commit().unwrap();
    }
    let chain = store.chain.len();
    assert!(chain < 100, "chain of {chain} blocks");
    let expected = dump(&mut store);
    let mut store = remount(store);
    assert_eq!(dump(&mut store), expected);
    for (name, i) in files {
        let ino = store.lookup(ROOT, &name).unwrap();
        let mut buf = vec![0; 1000];
        let n = store.read(ino, 0, &mut buf).unwrap();
        assert_eq!(&buf[..n], &pattern(i, 100 + i as usize)[..]);
    }
}

#[test]
fn failed_commit_stops_changes_until_remount() {
    let mut store = fresh(256);
    store.create(ROOT, "a", 0, 0, at(1)).unwrap();
    store.commit().unwrap();
    store.create(ROOT, "b", 0, 0, at(2)).unwrap();
    store.disk_mut().failing = true;
    assert_eq!(store.commit(), Err(StoreError::Io));
    store.disk_mut().failing = false;
    assert_eq!(store.create(ROOT, "c", 0, 0, at(3)), Err(StoreError::Io));
    assert_eq!(store.commit(), Err(StoreError::Io));
    let mut store = remount(store);
    let tree = dump(&mut store);
    assert!(tree.contains_key("/a") && !tree.contains_key("/b"));
}

#[test]
fn statfs_counts_blocks_and_objects() {
    let mut store = fresh(1024);
    let before = store.statfs();
    assert_eq!(before.block_size as usize, BLOCK_BYTES);
    assert_eq!(before.blocks, 1022);
    let file = store.create(ROOT, "f", 0, 0, at(1)).unwrap();
    store.write(file, 0, &[0; 40_000], at(1)).unwrap();
    let after = store.statfs();
    assert_eq!(before.blocks_free - after.blocks_free, 10);
    assert_eq!(before.files_free - after.files_free, 1);
}

#[test]
fn memory_per_object_and_extent_stays_small() {
    use crate::channel::store::extents::Extent;
    let node = core::mem::size_of::<crate::channel::store::Node>();
    let extent = core::mem::size_of::<Extent>();
    // The node, plus its entries in the node map and the two directory indexes
    // (B-tree nodes hold 11 keys: about 8/11 of a pointer each, and the keys).
    assert!(node <= 160, "a node is {node} bytes");
    std::println!("node {node} bytes, extent {extent} bytes");
    assert_eq!(extent, 12);
}

#[test]
fn a_full_disk_still_commits_creates() {
    let mut store = fresh(128);
    let big = store.create(ROOT, "big", 0o644, 0, at(1)).unwrap();
    let chunk = vec![1u8; 64 * 1024];
    let mut offset = 0;
    while let Ok(n) = store.write(big, offset, &chunk, at(1)) {
        offset += n as u64;
        if n < chunk.len() {
            break;
        }
    }
    store.commit().unwrap();
    let mut made = 0;
    for i in 0..200 {
        match store.create(ROOT, &alloc::format!("small-{i}"), 0o644, 0, at(2)) {
            Ok(_) => made += 1,
            Err(error) => {
                assert_eq!(error, StoreError::NoSpace);
                break;
            }
        }
        store.commit().unwrap();
    }
    assert!(made > 0);
    let mut store = remount(store);
    assert_eq!(dump(&mut store).len(), 2 + made);
}

#[test]
fn paths_are_built_from_the_tree() {
    let mut store = fresh(256);
    let d = store.mkdir(ROOT, "release", 0o755, 1, at(1)).unwrap();
    let f = store.create(d, "r.txt", 0o644, 1, at(1)).unwrap();
    assert_eq!(store.path(ROOT).unwrap(), "/");
    assert_eq!(store.path(f).unwrap(), "/release/r.txt");
    store.open(f).unwrap();
    store.unlink(d, "r.txt", at(2)).unwrap();
    assert_eq!(store.path(f), Err(StoreError::NotFound));
    assert_eq!(store.name(d).unwrap(), "release");
}

#[test]
fn numbers_are_never_reused_even_across_remounts() {
    let mut store = fresh(256);
    let first = store.create(ROOT, "a", 0o644, 0, at(1)).unwrap();
    store.unlink(ROOT, "a", at(2)).unwrap();
    store.commit().unwrap();
    let mut store = remount(store);
    let second = store.create(ROOT, "a", 0o644, 0, at(3)).unwrap();
    assert!(second > first);
    // Even a number handed out but never committed is not handed out again
    // once a later commit made the counter durable.
    let third = store.create(ROOT, "b", 0o644, 0, at(3)).unwrap();
    store.commit().unwrap();
    let mut store = remount(store);
    assert!(store.create(ROOT, "c", 0o644, 0, at(4)).unwrap() > third);
}

#[test]
fn writes_past_the_largest_file_are_refused() {
    let limits = Limits {
        max_file_bytes: 1 << 20,
        ..Limits::default()
    };
    let mut store = Store::format(MemDisk::new(2048), limits, at(0)).unwrap();
    let file = store.create(ROOT, "f", 0o644, 0, at(1)).unwrap();
    assert_eq!(
        store.write(file, (1 << 20) - 1, b"xy", at(1)),
        Err(StoreError::FileTooBig)
    );
    assert_eq!(
        store.write(file, u64::MAX, b"x", at(1)),
        Err(StoreError::FileTooBig)
    );
    assert_eq!(
        store.set_size(file, (1 << 20) + 1, at(1)),
        Err(StoreError::FileTooBig)
    );
    assert_eq!(store.write(file, (1 << 20) - 1, b"x", at(1)), Ok(1));
    assert_eq!(store.write(ROOT, 0, b"x", at(1)), Err(StoreError::IsDir));
    let mut buf = [0u8; 4];
    assert_eq!(store.read(ROOT, 0, &mut buf), Err(StoreError::IsDir));
    assert_eq!(store.read(999, 0, &mut buf), Err(StoreError::NotFound));
}

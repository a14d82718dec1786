//! Power cuts at every write and every flush of scripted workloads, with random
//! subsets of the unflushed writes lost, applied or torn: every image mounts and
//! holds exactly the last acknowledged commit or the one in flight.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use super::{at, dump, pattern, Seen};
use crate::channel::fs::Ino;
use crate::channel::store::disk::testing::{CrashDisk, Fate, MemDisk};
use crate::channel::store::disk::SECTOR_BYTES;
use crate::channel::store::{Limits, Store, BLOCK_BYTES, ROOT};

type Tree = BTreeMap<String, Seen>;

/// A store on a recording disk, and the tree at each acknowledged commit.
struct Harness {
    store: Store<CrashDisk>,
    /// (requests recorded when the commit returned, the tree then).
    commits: Vec<(usize, Tree)>,
    checkpoints: usize,
}

impl Harness {
    fn new(blocks: usize) -> Self {
        let disk = CrashDisk::new(alloc::vec![0; blocks * BLOCK_BYTES]);
        let mut store = Store::format(disk, Limits::default(), at(0)).unwrap();
        let tree = dump(&mut store);
        let end = store.disk().ops().len();
        Harness {
            store,
            commits: alloc::vec![(end, tree)],
            checkpoints: 0,
        }
    }

    fn commit(&mut self) {
        let (chain, seq) = (self.store.chain.len(), self.store.seq());
        self.store.commit().unwrap();
        if self.store.seq() != seq && self.store.chain.len() <= chain {
            self.checkpoints += 1;
        }
        let tree = dump(&mut self.store);
        self.commits.push((self.store.disk().ops().len(), tree));
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Cuts the power after every request since the format, in several ways, and
/// checks each image. Returns how many images were mounted.
fn check_every_cut(harness: &Harness) -> usize {
    let disk = harness.store.disk();
    let ops = disk.ops();
    let first = harness.commits[0].0;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut images = 0;
    for cut in first..=ops.len() {
        let acked = harness
            .commits
            .iter()
            .rposition(|(end, _)| *end <= cut)
            .unwrap();
        let allowed: Vec<&Tree> = harness.commits[acked..]
            .iter()
            .take(2)
            .map(|(_, tree)| tree)
            .collect();
        for variant in 0..5 {
            let mut fate = |index: usize| -> Fate {
                match variant {
                    0 => Fate::Lost,
                    1 => Fate::Applied,
                    _ => match rng.next() % 4 {
                        0 => Fate::Lost,
                        1 => Fate::Applied,
                        _ => {
                            let sectors = match &ops[index] {
                                crate::channel::store::disk::testing::Op::Write {
                                    data, ..
                                } => data.len() / SECTOR_BYTES,
                                _ => 1,
                            };
                            Fate::Torn((rng.next() as usize) % sectors.max(1))
                        }
                    },
                }
            };
            let image: MemDisk = disk.image_at(cut, &mut fate);
            let mut store = match Store::mount(image, Limits::default()) {
                Ok(store) => store,
                Err(error) => panic!("cut {cut} variant {variant}: mount failed: {error:?}"),
            };
            let tree = dump(&mut store);
            assert!(
                allowed.contains(&&tree),
                "cut {cut} variant {variant} (acked commit {acked}): tree {tree:#?} is none of {allowed:#?}"
            );
            images += 1;
        }
    }
    images
}

fn lookup(harness: &Harness, dir: Ino, name: &str) -> Ino {
    harness.store.lookup(dir, name).unwrap()
}

#[test]
fn create_write_rename_over_unlink_while_open_mkdir_rmdir_truncate() {
    let mut h = Harness::new(512);
    let s = &mut h.store;
    let a = s.create(ROOT, "a", 0o644, 0, at(1)).unwrap();
    s.write(a, 0, &pattern(1, 9000), at(1)).unwrap();
    h.commit();
    let s = &mut h.store;
    let b = s.create(ROOT, "b", 0o644, 1, at(2)).unwrap();
    s.write(b, 0, &pattern(2, 20_000), at(2)).unwrap();
    s.write(b, 3000, &pattern(3, 100), at(2)).unwrap();
    h.commit();
    // Overwrite part of a committed file, then rename it over another.
    let s = &mut h.store;
    s.write(a, 4000, &pattern(4, 6000), at(3)).unwrap();
    s.rename(ROOT, "a", ROOT, "b", at(3)).unwrap();
    h.commit();
    // Unlink while open; write to it; close.
    let s = &mut h.store;
    let b = lookup_in(s, "b");
    s.open(b).unwrap();
    s.unlink(ROOT, "b", at(4)).unwrap();
    h.commit();
    let s = &mut h.store;
    s.write(b, 0, &pattern(5, 30_000), at(5)).unwrap();
    let c = s.create(ROOT, "c", 0o600, 0, at(5)).unwrap();
    s.write(c, 0, &pattern(6, 12_345), at(5)).unwrap();
    h.commit();
    h.store.close(b).unwrap();
    h.commit();
    // Directories.
    let s = &mut h.store;
    let d = s.mkdir(ROOT, "d", 0o755, 1, at(6)).unwrap();
    let e = s.mkdir(d, "e", 0o755, 1, at(6)).unwrap();
    s.rename(ROOT, "c", e, "c2", at(6)).unwrap();
    h.commit();
    let s = &mut h.store;
    s.rename(e, "c2", ROOT, "c", at(7)).unwrap();
    s.rmdir(d, "e", at(7)).unwrap();
    s.set_label(d, 1, true, at(7)).unwrap();
    h.commit();
    // Truncate down mid-block, then extend, then write past the end.
    let c = lookup(&h, ROOT, "c");
    h.store.set_size(c, 5000, at(8)).unwrap();
    h.commit();
    let s = &mut h.store;
    s.set_size(c, 9000, at(9)).unwrap();
    s.write(c, 10_000, b"tail", at(9)).unwrap();
    s.set_mode(c, 0o640, at(9)).unwrap();
    h.commit();
    let s = &mut h.store;
    s.unlink(ROOT, "c", at(10)).unwrap();
    s.rmdir(ROOT, "d", at(10)).unwrap();
    h.commit();
    let images = check_every_cut(&h);
    assert!(images > 200, "{images} images");
}

fn lookup_in<D: crate::channel::store::disk::BlockDisk>(store: &Store<D>, name: &str) -> Ino {
    store.lookup(ROOT, name).unwrap()
}

#[test]
fn many_commits_crossing_checkpoints() {
    let mut h = Harness::new(256);
    let mut live = Vec::new();
    for i in 0..60u32 {
        let s = &mut h.store;
        let name = alloc::format!("n{}", i % 17);
        match s.lookup(ROOT, &name) {
            Ok(ino) if i % 2 == 0 => {
                s.unlink(ROOT, &name, at(u64::from(i))).unwrap();
                live.retain(|&x| x != ino);
            }
            Ok(ino) => {
                s.write(ino, u64::from(i) * 100, &pattern(i, 700), at(u64::from(i)))
                    .unwrap();
            }
            Err(_) => {
                let ino = s
                    .create(ROOT, &name, 0o644, (i % 2) as u8, at(u64::from(i)))
                    .unwrap();
                s.write(ino, 0, &pattern(i, 5000), at(u64::from(i)))
                    .unwrap();
                live.push(ino);
            }
        }
        h.commit();
    }
    assert!(h.checkpoints >= 2, "{} checkpoints", h.checkpoints);
    check_every_cut(&h);
}

#[test]
fn a_cut_during_format_never_panics_a_mount() {
    let disk = CrashDisk::new(alloc::vec![0; 128 * BLOCK_BYTES]);
    let store = Store::format(disk, Limits::default(), at(0)).unwrap();
    let disk = store.into_disk();
    for cut in 0..=disk.ops().len() {
        for applied in [false, true] {
            let image = disk.image_at(cut, &mut |_| {
                if applied {
                    Fate::Applied
                } else {
                    Fate::Lost
                }
            });
            let _ = Store::mount(image, Limits::default());
        }
    }
    // After the last flush the store is there.
    let image = disk.image_at(disk.ops().len(), &mut |_| Fate::Lost);
    assert!(Store::mount(image, Limits::default()).is_ok());
}

#[test]
fn reformatting_over_an_old_store_hides_it() {
    let mut store = Store::format(MemDisk::new(1024), Limits::default(), at(0)).unwrap();
    for i in 0..5 {
        store
            .create(ROOT, &alloc::format!("{i}"), 0, 0, at(1))
            .unwrap();
        store.commit().unwrap();
    }
    let disk = store.into_disk();
    let mut store = Store::format(disk, Limits::default(), at(2)).unwrap();
    assert_eq!(dump(&mut store).len(), 1);
    let mut store = Store::mount(store.into_disk(), Limits::default()).unwrap();
    assert_eq!(dump(&mut store).len(), 1);
}

/// Random operations (with big 124 KiB writes, overwrites, truncation, renames
/// over, unlinks of open files) on a small disk, so that checkpoints and block
/// reuse happen; every cut checked.
#[test]
fn random_workloads_survive_every_cut() {
    for seed in 1..=6u64 {
        let mut h = Harness::new(320);
        let mut rng = Rng(seed * 0x1234_5678_9abc_def1);
        let mut held: Vec<Ino> = Vec::new();
        for step in 0..40u64 {
            let s = &mut h.store;
            let name = alloc::format!("f{}", rng.next() % 4);
            let other = alloc::format!("f{}", rng.next() % 4);
            let now = at(step + 1);
            let Ok(ino) = s.lookup(ROOT, &name) else {
                let ino = s.create(ROOT, &name, 0o644, (step % 2) as u8, now).unwrap();
                s.write(ino, 0, &pattern(step as u32, 5000), now).unwrap();
                h.commit();
                continue;
            };
            match rng.next() % 8 {
                0..=2 => {
                    let len = [100usize, 4096, 9000, 124 * 1024][(rng.next() % 4) as usize];
                    let offset = rng.next() % 200_000;
                    s.write(ino, offset, &pattern(step as u32, len), now)
                        .unwrap();
                }
                3 => s.set_size(ino, rng.next() % 150_000, now).unwrap(),
                4 => {
                    s.rename(ROOT, &name, ROOT, &other, now).unwrap();
                }
                5 => {
                    if rng.next().is_multiple_of(2) {
                        s.open(ino).unwrap();
                        held.push(ino);
                    }
                    s.unlink(ROOT, &name, now).unwrap();
                }
                6 => {
                    if let Some(ino) = held.pop() {
                        s.write(ino, 0, &pattern(7, 20_000), now).unwrap();
                        s.close(ino).unwrap();
                    }
                }
                _ => s.set_label(ino, 1, true, now).unwrap(),
            }
            if !rng.next().is_multiple_of(3) {
                h.commit();
            }
        }
        h.commit();
        let images = check_every_cut(&h);
        std::println!(
            "seed {seed}: {} commits, {} checkpoints, {} requests, {images} images",
            h.commits.len(),
            h.checkpoints,
            h.store.disk().ops().len()
        );
        assert!(images >= 5 * h.commits.len());
    }
}

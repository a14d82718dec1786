//! Host tests of the store: operations, remounts, power cuts, a model, hostile images.

mod corrupt;
mod crash;
mod model;
mod ops;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use super::disk::testing::MemDisk;
use super::disk::BlockDisk;
use super::{Limits, Store, ROOT};
use crate::channel::fs::{Ino, Kind, Timespec, Who};

/// A time `n` seconds in.
pub fn at(n: u64) -> Timespec {
    Timespec {
        sec: 1_700_000_000 + n,
        nsec: (n % 1000) as u32,
    }
}

/// A formatted store on a RAM disk of `blocks` 4 KiB blocks.
pub fn fresh(blocks: usize) -> Store<MemDisk> {
    Store::format(MemDisk::new(blocks * 8), Limits::default(), at(0)).unwrap()
}

/// Everything a mount must bring back of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub ino: Ino,
    pub kind: Kind,
    pub mode: u32,
    pub size: u64,
    pub mtime: Timespec,
    pub ctime: Timespec,
    pub version: u32,
    pub owner: Who,
    pub released: bool,
    pub data: Vec<u8>,
}

/// The whole tree, path by path.
pub fn dump<D: BlockDisk>(store: &mut Store<D>) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    let mut queue = alloc::vec![(ROOT, String::new())];
    while let Some((dir, path)) = queue.pop() {
        let mut children = Vec::new();
        store
            .readdir(dir, 0, &mut |entry| {
                children.push((entry.ino, String::from(entry.name)));
                true
            })
            .unwrap();
        for (ino, name) in children {
            let child_path = alloc::format!("{path}/{name}");
            let info = store.info(ino).unwrap();
            let mut data = alloc::vec![0; info.attr.size as usize];
            if info.attr.kind == Kind::File {
                let n = store.read(ino, 0, &mut data).unwrap();
                assert_eq!(n, data.len());
            } else {
                data.clear();
                queue.push((ino, child_path.clone()));
            }
            out.insert(
                child_path,
                Seen {
                    ino,
                    kind: info.attr.kind,
                    mode: info.attr.mode,
                    size: info.attr.size,
                    mtime: info.attr.mtime,
                    ctime: info.attr.ctime,
                    version: info.attr.version,
                    owner: info.owner,
                    released: info.released,
                    data,
                },
            );
        }
    }
    let root = store.info(ROOT).unwrap();
    out.insert(
        String::from("/"),
        Seen {
            ino: ROOT,
            kind: Kind::Dir,
            mode: root.attr.mode,
            size: 0,
            mtime: root.attr.mtime,
            ctime: root.attr.ctime,
            version: root.attr.version,
            owner: root.owner,
            released: root.released,
            data: Vec::new(),
        },
    );
    out
}

/// A pattern of `len` bytes that differs with `seed`.
pub fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed)
                .rotate_left(7) as u8
        })
        .collect()
}

/// Remounts the store's disk.
pub fn remount(store: Store<MemDisk>) -> Store<MemDisk> {
    let limits = store.limits();
    Store::mount(store.into_disk(), limits).unwrap()
}

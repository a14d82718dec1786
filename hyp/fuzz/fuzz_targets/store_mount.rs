//! The store's mount on arbitrary images, then a few operations. The first byte
//! picks the mode: bit 1 set, the rest of the input is the image; clear, it is
//! (offset, byte) patches to a good store of 128 blocks with files, directories
//! and a log. Bit 0 set makes the checksums right after, so that the checks
//! behind them get reached. Never a panic; a store that mounted and then
//! committed must mount again and show what was committed.
#![no_main]

use hyp::channel::fs::Timespec;
use hyp::channel::store::disk::testing::MemDisk;
use hyp::channel::store::testing::reseal;
use hyp::channel::store::{Limits, Store, ROOT};
use libfuzzer_sys::fuzz_target;

const BLOCKS: usize = 128;
const BLOCK_BYTES: usize = 4096;

fn now() -> Timespec {
    Timespec {
        sec: 1_700_000_000,
        nsec: 0,
    }
}

/// A good store: two directories, a few files, a checkpoint and some log.
fn template() -> Vec<u8> {
    let mut store = Store::format(MemDisk::new(BLOCKS * 8), Limits::default(), now()).unwrap();
    let dir = store.mkdir(ROOT, "dir", 0o755, 1, now()).unwrap();
    for i in 0..6u8 {
        let file = store
            .create(dir, &format!("f{i}"), 0o644, i % 2, now())
            .unwrap();
        store
            .write(file, 0, &vec![i; 3000 * usize::from(i)], now())
            .unwrap();
        store.commit().unwrap();
    }
    store.rename(dir, "f1", ROOT, "moved", now()).unwrap();
    store.commit().unwrap();
    store.into_disk().bytes
}

/// Walks the tree, reading every file; bounded by the store's own limits.
fn walk(store: &mut Store<MemDisk>) -> Vec<(u64, u64, Vec<u8>)> {
    let mut seen = Vec::new();
    let mut queue = vec![ROOT];
    let mut buf = vec![0u8; 16 * 1024];
    while let Some(dir) = queue.pop() {
        let mut children = Vec::new();
        let _ = store.readdir(dir, 0, &mut |entry| {
            children.push(entry.ino);
            true
        });
        for ino in children {
            let Ok(info) = store.info(ino) else { continue };
            if info.attr.kind == hyp::channel::fs::Kind::Dir {
                queue.push(ino);
                seen.push((ino, 0, Vec::new()));
            } else {
                let n = store.read(ino, 0, &mut buf).unwrap_or(0);
                seen.push((ino, info.attr.size, buf[..n].to_vec()));
            }
        }
    }
    seen
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let mut image = if mode & 2 != 0 {
        let mut image = rest.to_vec();
        image.resize(BLOCKS * BLOCK_BYTES, 0);
        image
    } else {
        let mut image = template();
        for patch in rest.chunks_exact(4) {
            let at = (u32::from_le_bytes([patch[0], patch[1], patch[2], 0]) as usize) % image.len();
            image[at] = patch[3];
        }
        image
    };
    if mode & 1 != 0 {
        reseal(&mut image);
    }
    let limits = Limits {
        max_nodes: 64,
        max_extents: 256,
        max_file_bytes: 1 << 30,
    };
    let Ok(mut store) = Store::mount(MemDisk::from_bytes(image), limits) else {
        return;
    };
    walk(&mut store);
    let ops = rest.get(..8).unwrap_or(&[]);
    for (index, &op) in ops.iter().enumerate() {
        let name = format!("n{}", op % 4);
        match op % 6 {
            0 => {
                let _ = store.create(ROOT, &name, 0o644, 0, now());
            }
            1 => {
                let _ = store.mkdir(ROOT, &name, 0o755, 1, now());
            }
            2 => {
                if let Ok(ino) = store.lookup(ROOT, &name) {
                    let _ = store.write(ino, u64::from(op) * 100, &vec![op; 5000 + index], now());
                }
            }
            3 => {
                let _ = store.rename(ROOT, &name, ROOT, "other", now());
            }
            4 => {
                let _ = store.unlink(ROOT, &name, now());
            }
            _ => {
                if let Ok(ino) = store.lookup(ROOT, &name) {
                    let _ = store.set_size(ino, u64::from(op) * 37, now());
                }
            }
        }
    }
    if store.commit().is_ok() {
        let expected = walk(&mut store);
        let mut again = Store::mount(store.into_disk(), limits).expect("a committed store mounts");
        assert_eq!(walk(&mut again), expected);
    }
});

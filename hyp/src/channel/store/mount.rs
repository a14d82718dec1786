//! Mount: the newest valid superblock, its metadata chain replayed into RAM, and
//! every structure checked before it is trusted (the image may be hostile).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::commit::max_chain_blocks;
use super::disk::{BlockDisk, SECTOR_BYTES};
use super::extents::{Extent, ExtentMap};
use super::format::{
    get_le, get_time, name_hash, ChainHeader, Source, Superblock, BLOCK_BYTES, FIRST_FREE_BLOCK,
    MAX_BLOCKS, SECTORS_PER_BLOCK, TAG_DELETE, TAG_NODE,
};
use super::ranges::RangeSet;
use super::{check_name, Limits, Node, Store, StoreError, ROOT};
use crate::channel::fs::{Ino, Kind};

/// Reads the chain's payloads as one stream, block by block, checking each.
struct ChainReader<'a, D: BlockDisk> {
    disk: &'a mut D,
    block: Vec<u8>,
    pos: usize,
    len: usize,
    next: u32,
    remaining: u32,
    index: u32,
    seq: u64,
    total_blocks: u32,
    blocks: Vec<u32>,
}

impl<D: BlockDisk> ChainReader<'_, D> {
    /// Loads the next block; false when the chain is done.
    fn load(&mut self) -> Result<bool, StoreError> {
        if self.remaining == 0 {
            return Ok(false);
        }
        let at = self.next;
        if at < FIRST_FREE_BLOCK || at >= self.total_blocks {
            return Err(StoreError::Corrupt);
        }
        self.disk
            .read(u64::from(at) * SECTORS_PER_BLOCK, &mut self.block)?;
        let header = ChainHeader::open(&self.block).ok_or(StoreError::Corrupt)?;
        if header.index != self.index || header.seq > self.seq || header.seq == 0 {
            return Err(StoreError::Corrupt);
        }
        self.blocks.push(at);
        self.next = header.next;
        self.pos = 0;
        self.len = header.payload_len as usize;
        self.remaining -= 1;
        self.index += 1;
        Ok(true)
    }

    /// Whether every record has been read.
    fn at_end(&mut self) -> Result<bool, StoreError> {
        while self.pos == self.len {
            if !self.load()? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl<D: BlockDisk> Source for ChainReader<'_, D> {
    fn get(&mut self, out: &mut [u8]) -> Result<(), StoreError> {
        let mut filled = 0;
        while filled < out.len() {
            if self.pos == self.len && !self.load()? {
                return Err(StoreError::Corrupt);
            }
            let take = (self.len - self.pos).min(out.len() - filled);
            let from = super::format::CHAIN_HEADER_BYTES + self.pos;
            out[filled..filled + take].copy_from_slice(&self.block[from..from + take]);
            filled += take;
            self.pos += take;
        }
        Ok(())
    }
}

/// Reads one node record (after its tag); `budget` is how many extents it may have.
fn get_node<S: Source>(source: &mut S, budget: usize) -> Result<(Ino, Node), StoreError> {
    let ino = get_le(source, 8)?;
    let parent = get_le(source, 8)?;
    let cookie = get_le(source, 8)?;
    let next_cookie = get_le(source, 8)?;
    let size = get_le(source, 8)?;
    let mut small = [0u8; 4];
    source.get(&mut small)?;
    let [kind, owner, released, name_len] = small;
    let kind = match kind {
        0 => Kind::File,
        1 => Kind::Dir,
        _ => return Err(StoreError::Corrupt),
    };
    if released > 1 {
        return Err(StoreError::Corrupt);
    }
    let mode = get_le(source, 4)? as u32;
    let version = get_le(source, 4)? as u32;
    let atime = get_time(source)?;
    let mtime = get_time(source)?;
    let ctime = get_time(source)?;
    let count = get_le(source, 4)? as usize;
    if count > budget || (kind == Kind::Dir && count > 0) || mode > 0o7777 {
        return Err(StoreError::Corrupt);
    }
    let mut name = vec![0u8; usize::from(name_len)];
    source.get(&mut name)?;
    let name = String::from_utf8(name).map_err(|_| StoreError::Corrupt)?;
    if ino == ROOT {
        if !name.is_empty() || parent != 0 || kind != Kind::Dir {
            return Err(StoreError::Corrupt);
        }
    } else {
        check_name(&name).map_err(|_| StoreError::Corrupt)?;
    }
    // Grown as the extents are read: a record cannot make us allocate for
    // extents it does not hold.
    let mut list = Vec::new();
    for _ in 0..count {
        let logical = get_le(source, 4)? as u32;
        let physical = get_le(source, 4)? as u32;
        let len = get_le(source, 4)? as u32;
        list.push(Extent {
            logical,
            physical,
            len,
        });
    }
    let extents = ExtentMap::from_sorted(list).ok_or(StoreError::Corrupt)?;
    let mapped_end = extents.as_slice().last().map_or(0, Extent::logical_end);
    if mapped_end > size.div_ceil(BLOCK_BYTES as u64)
        || size > u64::from(u32::MAX) * BLOCK_BYTES as u64
    {
        return Err(StoreError::Corrupt);
    }
    let node = Node {
        kind,
        parent,
        cookie,
        name: Box::from(name.as_str()),
        mode,
        size,
        atime,
        mtime,
        ctime,
        version,
        owner,
        released: released == 1,
        next_cookie,
        entries: 0,
        subdirs: 0,
        opens: 0,
        orphan: false,
        extents,
    };
    Ok((ino, node))
}

impl<D: BlockDisk> Store<D> {
    /// Mounts the store on `disk`: the last commit, exactly. Writes nothing.
    ///
    /// # Errors
    ///
    /// `Blank` for a partition whose superblocks are all zero, `Corrupt` for one
    /// that is not a consistent store, `TooManyNodes` or `NoSpace` when it holds
    /// more than `limits` allow, `Io`.
    pub fn mount(mut disk: D, limits: Limits) -> Result<Self, StoreError> {
        let disk_blocks = (disk.sectors() / SECTORS_PER_BLOCK).min(MAX_BLOCKS);
        let mut sector = [0u8; SECTOR_BYTES];
        let mut best: Option<Superblock> = None;
        let mut blank = true;
        for slot in 0..2u64 {
            if disk.sectors() < (slot + 1) * SECTORS_PER_BLOCK {
                return Err(StoreError::BadSize);
            }
            disk.read(slot * SECTORS_PER_BLOCK, &mut sector)?;
            blank &= sector.iter().all(|&byte| byte == 0);
            if let Some(found) = Superblock::decode(&sector, disk_blocks) {
                if found.seq % 2 == slot && best.is_none_or(|best| found.seq > best.seq) {
                    best = Some(found);
                }
            }
        }
        if blank {
            return Err(StoreError::Blank);
        }
        let superblock = best.ok_or(StoreError::Corrupt)?;
        if u64::from(superblock.chain_blocks) > max_chain_blocks(&limits) {
            return Err(StoreError::Corrupt);
        }
        let mut reader = ChainReader {
            disk: &mut disk,
            block: vec![0; BLOCK_BYTES],
            pos: 0,
            len: 0,
            next: superblock.chain_head,
            remaining: superblock.chain_blocks,
            index: 0,
            seq: superblock.seq,
            total_blocks: superblock.total_blocks,
            blocks: Vec::new(),
        };
        let mut nodes: BTreeMap<Ino, Node> = BTreeMap::new();
        let mut extent_count = 0usize;
        while !reader.at_end()? {
            let mut tag = [0u8];
            reader.get(&mut tag)?;
            match tag[0] {
                TAG_NODE => {
                    let budget = limits.max_extents.saturating_sub(extent_count);
                    let (ino, node) = get_node(&mut reader, budget)?;
                    if ino == 0 || ino >= superblock.next_ino {
                        return Err(StoreError::Corrupt);
                    }
                    extent_count += node.extents.len();
                    if let Some(old) = nodes.insert(ino, node) {
                        extent_count -= old.extents.len();
                    } else if nodes.len() > limits.max_nodes {
                        return Err(StoreError::TooManyNodes);
                    }
                }
                TAG_DELETE => {
                    let ino = get_le(&mut reader, 8)?;
                    if let Some(old) = nodes.remove(&ino) {
                        extent_count -= old.extents.len();
                    }
                }
                _ => return Err(StoreError::Corrupt),
            }
        }
        if reader.next != superblock.reserved_next {
            return Err(StoreError::Corrupt);
        }
        let chain = core::mem::take(&mut reader.blocks);
        let mut store = Store {
            disk,
            limits,
            total_blocks: superblock.total_blocks,
            nodes,
            entries: BTreeMap::new(),
            names: BTreeSet::new(),
            next_ino: superblock.next_ino,
            extent_count,
            free: RangeSet::new(),
            fresh: RangeSet::new(),
            pending: RangeSet::new(),
            usage: BTreeMap::new(),
            dirty: BTreeSet::new(),
            deleted: BTreeSet::new(),
            seq: superblock.seq,
            chain,
            checkpoint_blocks: superblock.checkpoint_blocks,
            reserved_next: superblock.reserved_next,
            bounce: vec![0; BLOCK_BYTES],
            failed: false,
        };
        store.build_tree()?;
        store.build_free()?;
        Ok(store)
    }

    /// Builds the directory indexes, counts and usage, checking that the nodes
    /// form one tree under the root with unique names and cookies.
    fn build_tree(&mut self) -> Result<(), StoreError> {
        if self
            .nodes
            .get(&ROOT)
            .is_none_or(|root| root.kind != Kind::Dir)
        {
            return Err(StoreError::Corrupt);
        }
        let inos: Vec<Ino> = self.nodes.keys().copied().collect();
        for &ino in &inos {
            let node = self.node(ino)?;
            let (kind, owner, blocks) = (node.kind, node.owner, node.extents.blocks());
            let usage = self.usage_mut(owner);
            usage.objects += 1;
            usage.bytes += blocks * BLOCK_BYTES as u64;
            if ino == ROOT {
                continue;
            }
            let node = self.node(ino)?;
            let (parent, cookie, name) = (node.parent, node.cookie, node.name.clone());
            let dir = self.nodes.get(&parent).ok_or(StoreError::Corrupt)?;
            if dir.kind != Kind::Dir || cookie == 0 || cookie >= dir.next_cookie {
                return Err(StoreError::Corrupt);
            }
            if self.find(parent, &name)?.is_some()
                || self.entries.insert((parent, cookie), ino).is_some()
            {
                return Err(StoreError::Corrupt);
            }
            self.names.insert((parent, name_hash(&name), cookie));
            let dir = self.node_mut(parent)?;
            dir.entries += 1;
            if kind == Kind::Dir {
                dir.subdirs += 1;
            }
        }
        // Every node must hang off the root: walk down from it.
        let mut reached = 1usize;
        let mut queue = vec![ROOT];
        while let Some(dir) = queue.pop() {
            for (_, &child) in self.entries.range((dir, 0)..=(dir, u64::MAX)) {
                reached += 1;
                if reached > self.nodes.len() {
                    return Err(StoreError::Corrupt);
                }
                if self.nodes.get(&child).is_some_and(|c| c.kind == Kind::Dir) {
                    queue.push(child);
                }
            }
        }
        if reached != self.nodes.len() {
            return Err(StoreError::Corrupt);
        }
        Ok(())
    }

    /// Free space: every block no extent, chain block or the reserved block uses;
    /// fails when two of those overlap or one leaves the store.
    fn build_free(&mut self) -> Result<(), StoreError> {
        let mut used: Vec<(u64, u64)> =
            Vec::with_capacity(self.extent_count + self.chain.len() + 1);
        for node in self.nodes.values() {
            for extent in node.extents.as_slice() {
                used.push((u64::from(extent.physical), extent.physical_end()));
            }
        }
        for &block in self.chain.iter().chain([&self.reserved_next]) {
            used.push((u64::from(block), u64::from(block) + 1));
        }
        used.sort_unstable();
        let mut at = u64::from(FIRST_FREE_BLOCK);
        for (start, end) in used {
            if start < at || end > u64::from(self.total_blocks) {
                return Err(StoreError::Corrupt);
            }
            if start > at {
                self.free.insert(at as u32, (start - at) as u32);
            }
            at = end;
        }
        if at < u64::from(self.total_blocks) {
            self.free
                .insert(at as u32, (u64::from(self.total_blocks) - at) as u32);
        }
        Ok(())
    }
}

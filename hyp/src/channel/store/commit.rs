//! Commit: the changed nodes' records appended to the metadata chain (or a new
//! checkpoint of the whole tree), FLUSH, the other superblock, FLUSH; and
//! `format`, which is the first checkpoint.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;

use super::disk::{BlockDisk, SECTOR_BYTES};
use super::format::{
    put_le, put_time, ChainHeader, Sink, Superblock, BLOCK_BYTES, CHAIN_HEADER_BYTES,
    CHAIN_PAYLOAD_BYTES, DELETE_BYTES, EXTENT_BYTES, FIRST_FREE_BLOCK, MAX_BLOCKS, MIN_BLOCKS,
    NODE_FIXED_BYTES, SECTORS_PER_BLOCK, TAG_DELETE, TAG_NODE,
};
use super::ranges::RangeSet;
use super::tree::new_node;
use super::{Limits, Node, Store, StoreError, ROOT};
use crate::channel::fs::{Ino, Kind, Timespec};

/// Fewest and most log blocks between checkpoints (the log may also grow to the
/// checkpoint's own size).
const LOG_MIN_BLOCKS: u64 = 16;
const LOG_MAX_BLOCKS: u64 = 4096;

/// Bytes of a node's record.
fn node_record_bytes(node: &Node) -> u64 {
    (NODE_FIXED_BYTES + node.name.len() + EXTENT_BYTES * node.extents.len()) as u64
}

/// Chain blocks that `bytes` of records take.
fn blocks_for(bytes: u64) -> u64 {
    bytes.div_ceil(CHAIN_PAYLOAD_BYTES as u64).max(1)
}

/// The most chain blocks a store mounted with `limits` may have: a checkpoint of
/// the largest tree, and a log up to its bound.
pub(super) fn max_chain_blocks(limits: &Limits) -> u64 {
    let checkpoint = blocks_for(
        limits.max_nodes as u64 * (NODE_FIXED_BYTES + super::NAME_MAX) as u64
            + limits.max_extents as u64 * EXTENT_BYTES as u64,
    );
    2 * checkpoint + LOG_MAX_BLOCKS + 1
}

/// Writes records into chain blocks, taking each next block from the free set.
struct ChainWriter<'a, D: BlockDisk> {
    disk: &'a mut D,
    free: &'a mut RangeSet,
    block: Vec<u8>,
    len: usize,
    current: u32,
    index: u32,
    seq: u64,
    written: Vec<u32>,
}

impl<D: BlockDisk> ChainWriter<'_, D> {
    /// Writes the current block, pointing at `next`.
    fn seal(&mut self, next: u32) -> Result<(), StoreError> {
        let header = ChainHeader {
            index: self.index,
            seq: self.seq,
            next,
            payload_len: self.len as u32,
        };
        header.seal(&mut self.block);
        self.disk
            .write(u64::from(self.current) * SECTORS_PER_BLOCK, &self.block)?;
        self.written.push(self.current);
        self.current = next;
        self.index += 1;
        self.len = 0;
        self.block.fill(0);
        Ok(())
    }

    fn take_block(&mut self) -> Result<u32, StoreError> {
        self.free
            .take(1, self.current.saturating_add(1))
            .map(|(block, _)| block)
            .ok_or(StoreError::NoSpace)
    }

    /// Writes the last block, pointing at a newly reserved one, which it returns.
    fn finish(&mut self) -> Result<u32, StoreError> {
        let reserved = self.take_block()?;
        self.seal(reserved)?;
        Ok(reserved)
    }
}

impl<D: BlockDisk> Sink for ChainWriter<'_, D> {
    fn put(&mut self, mut bytes: &[u8]) -> Result<(), StoreError> {
        while !bytes.is_empty() {
            if self.len == CHAIN_PAYLOAD_BYTES {
                let next = self.take_block()?;
                self.seal(next)?;
            }
            let take = (CHAIN_PAYLOAD_BYTES - self.len).min(bytes.len());
            let at = CHAIN_HEADER_BYTES + self.len;
            self.block[at..at + take].copy_from_slice(&bytes[..take]);
            self.len += take;
            bytes = &bytes[take..];
        }
        Ok(())
    }
}

/// Writes the record of node `ino`.
fn put_node<S: Sink>(sink: &mut S, ino: Ino, node: &Node) -> Result<(), StoreError> {
    sink.put(&[TAG_NODE])?;
    put_le(sink, ino, 8)?;
    put_le(sink, node.parent, 8)?;
    put_le(sink, node.cookie, 8)?;
    put_le(sink, node.next_cookie, 8)?;
    put_le(sink, node.size, 8)?;
    let kind = match node.kind {
        Kind::File => 0,
        Kind::Dir => 1,
    };
    sink.put(&[
        kind,
        node.owner,
        u8::from(node.released),
        node.name.len() as u8,
    ])?;
    put_le(sink, u64::from(node.mode), 4)?;
    put_le(sink, u64::from(node.version), 4)?;
    put_time(sink, node.atime)?;
    put_time(sink, node.mtime)?;
    put_time(sink, node.ctime)?;
    put_le(sink, node.extents.len() as u64, 4)?;
    sink.put(node.name.as_bytes())?;
    for extent in node.extents.as_slice() {
        put_le(sink, u64::from(extent.logical), 4)?;
        put_le(sink, u64::from(extent.physical), 4)?;
        put_le(sink, u64::from(extent.len), 4)?;
    }
    Ok(())
}

impl<D: BlockDisk> Store<D> {
    /// Formats a blank (or unwanted) partition: an empty root directory, owned by
    /// personality 0 with mode 0o777, committed.
    ///
    /// # Errors
    ///
    /// `BadSize` for a partition under 256 KiB, `Io`.
    pub fn format(mut disk: D, limits: Limits, now: Timespec) -> Result<Self, StoreError> {
        let blocks = (disk.sectors() / SECTORS_PER_BLOCK).min(MAX_BLOCKS);
        if blocks < MIN_BLOCKS || limits.max_nodes == 0 {
            return Err(StoreError::BadSize);
        }
        // An older store's superblocks must not outrank the new one.
        let zeros = [0u8; SECTOR_BYTES];
        disk.write(0, &zeros)?;
        disk.write(SECTORS_PER_BLOCK, &zeros)?;
        disk.flush()?;
        let total_blocks = blocks as u32;
        let mut free = RangeSet::new();
        free.insert(FIRST_FREE_BLOCK, total_blocks - FIRST_FREE_BLOCK);
        let mut nodes = BTreeMap::new();
        nodes.insert(ROOT, new_node(Kind::Dir, 0o777, 0, now, "".into()));
        let mut store = Store {
            disk,
            limits,
            total_blocks,
            nodes,
            entries: BTreeMap::new(),
            names: BTreeSet::new(),
            next_ino: ROOT + 1,
            extent_count: 0,
            free,
            fresh: RangeSet::new(),
            pending: RangeSet::new(),
            usage: BTreeMap::new(),
            dirty: BTreeSet::new(),
            deleted: BTreeSet::new(),
            seq: 0,
            chain: Vec::new(),
            checkpoint_blocks: 0,
            reserved_next: 0,
            bounce: vec![0; BLOCK_BYTES],
            failed: false,
        };
        store.usage_mut(0).objects = 1;
        store.dirty.insert(ROOT);
        store.commit()?;
        Ok(store)
    }

    /// Makes everything done so far durable (see the module documentation for
    /// the order of writes and flushes). Does nothing when nothing changed.
    ///
    /// # Errors
    ///
    /// `NoSpace` when not even the metadata fits (nothing was committed; the
    /// store keeps working); `Io` when the disk failed, after which the store
    /// refuses changes until it is mounted again.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        self.check_writable()?;
        if !self.is_dirty() {
            return Ok(());
        }
        let live = |node: &&Node| !node.orphan;
        let delta_bytes: u64 = self
            .dirty
            .iter()
            .filter_map(|ino| self.nodes.get(ino))
            .filter(live)
            .map(node_record_bytes)
            .sum::<u64>()
            + (self.deleted.len() * DELETE_BYTES) as u64;
        let checkpoint_bytes: u64 = self
            .nodes
            .values()
            .filter(live)
            .map(node_record_bytes)
            .sum();
        let delta_blocks = blocks_for(delta_bytes);
        let checkpoint_blocks = blocks_for(checkpoint_bytes);
        let log_blocks =
            (self.chain.len() as u64).saturating_sub(u64::from(self.checkpoint_blocks));
        let log_limit = (u64::from(self.total_blocks) / 64)
            .clamp(LOG_MIN_BLOCKS, LOG_MAX_BLOCKS)
            .max(u64::from(self.checkpoint_blocks));
        let checkpoint = self.chain.is_empty()
            || log_blocks + delta_blocks > log_limit
            || self.free.blocks() < delta_blocks + checkpoint_blocks + 2;
        if checkpoint && self.free.blocks() < checkpoint_blocks + 2 {
            return Err(StoreError::NoSpace);
        }
        match self.write_records(checkpoint) {
            Ok(()) => Ok(()),
            Err(StoreError::NoSpace) => Err(StoreError::NoSpace),
            Err(error) => {
                self.failed = true;
                Err(error)
            }
        }
    }

    /// Writes the records and the superblock, then updates what is in RAM.
    fn write_records(&mut self, checkpoint: bool) -> Result<(), StoreError> {
        let seq = self.seq + 1;
        let start = if checkpoint {
            self.free
                .take(1, FIRST_FREE_BLOCK)
                .map(|(block, _)| block)
                .ok_or(StoreError::NoSpace)?
        } else {
            self.reserved_next
        };
        let mut writer = ChainWriter {
            disk: &mut self.disk,
            free: &mut self.free,
            block: vec![0; BLOCK_BYTES],
            len: 0,
            current: start,
            index: if checkpoint {
                0
            } else {
                self.chain.len() as u32
            },
            seq,
            written: Vec::new(),
        };
        let result = (|| {
            if checkpoint {
                for (&ino, node) in self.nodes.iter().filter(|(_, node)| !node.orphan) {
                    put_node(&mut writer, ino, node)?;
                }
            } else {
                for &ino in &self.deleted {
                    writer.put(&[TAG_DELETE])?;
                    put_le(&mut writer, ino, 8)?;
                }
                for ino in &self.dirty {
                    if let Some(node) = self.nodes.get(ino).filter(|node| !node.orphan) {
                        put_node(&mut writer, *ino, node)?;
                    }
                }
            }
            writer.finish()
        })();
        let written = core::mem::take(&mut writer.written);
        let reserved = match result {
            Ok(reserved) => reserved,
            Err(error) => {
                // Nothing points at these blocks yet: give them back.
                for &block in written.iter().skip(usize::from(!checkpoint)) {
                    self.free.insert(block, 1);
                }
                if checkpoint && written.is_empty() {
                    self.free.insert(start, 1);
                }
                return Err(error);
            }
        };
        self.disk.flush()?;
        let (head, chain_blocks, checkpoint_blocks) = if checkpoint {
            (start, written.len() as u32, written.len() as u32)
        } else {
            let head = self.chain.first().copied().unwrap_or(start);
            (
                head,
                (self.chain.len() + written.len()) as u32,
                self.checkpoint_blocks,
            )
        };
        let superblock = Superblock {
            total_blocks: self.total_blocks,
            seq,
            next_ino: self.next_ino,
            chain_head: head,
            chain_blocks,
            checkpoint_blocks,
            reserved_next: reserved,
        };
        self.disk
            .write((seq % 2) * SECTORS_PER_BLOCK, &superblock.encode())?;
        self.disk.flush()?;
        // Durable: what the old state used and this one does not is free now.
        self.seq = seq;
        if checkpoint {
            for block in core::mem::replace(&mut self.chain, written) {
                self.free.insert(block, 1);
            }
            if self.reserved_next != 0 {
                self.free.insert(self.reserved_next, 1);
            }
        } else {
            self.chain.extend_from_slice(&written);
        }
        self.checkpoint_blocks = checkpoint_blocks;
        self.reserved_next = reserved;
        self.free.append(&mut self.pending);
        self.fresh.clear();
        self.dirty.clear();
        self.deleted.clear();
        Ok(())
    }
}

//! Janus' own crash-safe store on the `shared` partition: files and directories
//! with labels, copy-on-write data, a metadata log with checkpoints, two
//! alternating superblocks.
//!
//! # On-disk format (version 1)
//!
//! All integers are little-endian; every checksum is CRC32C. The partition is cut
//! into 4096-byte blocks (at most 2^28, 1 TiB; at least 64).
//!
//! - **Superblocks**: sector 0 of block 0 (slot A) and of block 1 (slot B). Commit
//!   `seq` goes to slot `seq % 2`. Fields (56 bytes, the rest of the sector zero):
//!   `magic "JANUSSTO"`, `version u32 = 1`, `block_bytes u32 = 4096`,
//!   `total_blocks u32`, `chain_head u32`, `seq u64`, `next_ino u64`,
//!   `chain_blocks u32`, `checkpoint_blocks u32`, `reserved_next u32`, `crc u32`
//!   (over the 52 bytes before it). Mount takes the valid one with the higher
//!   `seq`; both all-zero is a blank partition.
//! - **Metadata chain**: `chain_blocks` blocks anywhere in the partition, linked
//!   from `chain_head`. Each starts with a 32-byte header: `magic "JMLB"`,
//!   `index u32` (its place in the chain), `seq u64` (the commit that wrote it),
//!   `next u32`, `payload_len u32`, `crc u32` (over the header's first 24 bytes
//!   and the payload), `zero u32`; then up to 4064 payload bytes. The payloads,
//!   concatenated, are a stream of records: first a checkpoint (the whole tree,
//!   its first `checkpoint_blocks` blocks), then the log of the commits since
//!   (each commit starts a new block). The last block's `next` is
//!   `reserved_next`: the block where the next commit's records go, so
//!   appending never rewrites a block the current commit references.
//! - **Records**: `1` node: `ino u64, parent u64, cookie u64, next_cookie u64,
//!   size u64, kind u8 (0 file, 1 dir), owner u8, released u8, name_len u8,
//!   mode u32, version u32, atime, mtime, ctime (sec u64, nsec u32 each),
//!   extent_count u32`, the name, then `extent_count` extents `(logical block
//!   u32, disk block u32, blocks u32)`: the node's whole state, replacing any
//!   earlier record of it. `2` delete: `ino u64`.
//! - **Data**: file blocks in extents, written only to blocks no commit
//!   references (copy-on-write; a block written since the last commit may be
//!   written again in place).
//!
//! # Commit
//!
//! Data blocks are written by `write` itself. `commit` writes the records of every
//! node changed since the last commit (or, when the log outgrows its bound, a new
//! checkpoint in free blocks), FLUSHes, writes the other superblock with `seq + 1`,
//! FLUSHes. Blocks that the commit stops referencing become free only after it.
//! A power cut anywhere leaves the previous or the new commit, never a mix.
//!
//! # Memory
//!
//! Metadata lives in RAM, bounded by [`Limits`]: about 250 bytes plus the name per
//! object (the 144-byte node in the node map, and its entries in the two
//! directory indexes, B-tree overhead included) and 12 bytes per file extent (up
//! to twice that while its vector has spare capacity); free space is a B-tree of
//! extents (about 16 bytes per free extent), never a bitmap. Data goes straight
//! between the caller's buffer and the disk; only partial blocks and sectors pass
//! through one 4 KiB bounce buffer.
//!
//! # Space
//!
//! Data never takes the last blocks: room for two checkpoints of the tree as it
//! is and some log, plus a few blocks so that a store full of data can still
//! create objects, is kept back, so a commit always finds space.
#![forbid(unsafe_code)]

mod commit;
pub mod disk;
pub(crate) mod extents;
mod format;
mod io;
mod mount;
mod ranges;
mod tree;

#[cfg(test)]
mod tests;

/// Helpers for fuzzing and for tools that edit images on purpose.
#[cfg(any(test, feature = "store-testing"))]
pub mod testing {
    use super::disk::SECTOR_BYTES;
    use super::format::{ChainHeader, BLOCK_BYTES, CHAIN_MAGIC, CRC32C};

    /// Makes every checksum in `image` right again after it was edited: each
    /// block that starts with the chain magic is resealed, and each superblock
    /// slot that starts with the superblock magic gets its CRC recomputed. A
    /// fuzzer uses it to get past the checksums to the checks behind them.
    pub fn reseal(image: &mut [u8]) {
        for block in image.chunks_exact_mut(BLOCK_BYTES) {
            if block.get(..4) == Some(&CHAIN_MAGIC.to_le_bytes()[..]) {
                let mut word = [0u8; 4];
                let field = |at: usize, word: &mut [u8; 4], block: &[u8]| {
                    word.copy_from_slice(&block[at..at + 4]);
                    u32::from_le_bytes(*word)
                };
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&block[8..16]);
                let header = ChainHeader {
                    index: field(4, &mut word, block),
                    seq: u64::from_le_bytes(seq),
                    next: field(16, &mut word, block),
                    payload_len: field(20, &mut word, block)
                        .min(super::format::CHAIN_PAYLOAD_BYTES as u32),
                };
                header.seal(block);
            }
        }
        for slot in [0, BLOCK_BYTES] {
            if let Some(sector) = image.get_mut(slot..slot + SECTOR_BYTES) {
                if sector[..8] == super::format::SUPER_MAGIC {
                    let crc = CRC32C.checksum(&sector[..52]);
                    sector[52..56].copy_from_slice(&crc.to_le_bytes());
                }
            }
        }
    }
}

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::channel::fs::{Attr, DirEntry, Errno, Ino, Kind, StatFs, Timespec, Who};
use disk::BlockDisk;
use extents::ExtentMap;
pub use format::BLOCK_BYTES;
use ranges::RangeSet;

/// The root directory's number on every store.
pub const ROOT: Ino = 1;
/// The longest name, in bytes.
pub const NAME_MAX: usize = 255;

/// Why a store call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// No such object or entry.
    NotFound,
    /// The name is taken.
    Exists,
    /// A directory was needed.
    NotDir,
    /// A file was needed.
    IsDir,
    /// The directory has entries.
    NotEmpty,
    /// Not one path component (empty, `.`, `..`, a `/` or NUL).
    InvalidName,
    /// Longer than [`NAME_MAX`] bytes.
    NameTooLong,
    /// A directory would be moved into itself.
    InvalidMove,
    /// The partition is full, or the extent limit is reached.
    NoSpace,
    /// The object limit is reached.
    TooManyNodes,
    /// Past the largest file size.
    FileTooBig,
    /// The object is still open (or closed more often than opened).
    Busy,
    /// The disk failed; after a failed commit the store refuses changes until it
    /// is mounted again.
    Io,
    /// The partition's contents are not a consistent store.
    Corrupt,
    /// The partition is blank (never formatted).
    Blank,
    /// The partition is too small or too big for a store.
    BadSize,
}

impl StoreError {
    /// The errno the 9P server answers with.
    pub fn to_errno(self) -> Errno {
        match self {
            StoreError::NotFound => Errno::ENOENT,
            StoreError::Exists => Errno::EEXIST,
            StoreError::NotDir => Errno::ENOTDIR,
            StoreError::IsDir => Errno::EISDIR,
            StoreError::NotEmpty => Errno::ENOTEMPTY,
            StoreError::InvalidName | StoreError::InvalidMove => Errno::EINVAL,
            StoreError::NameTooLong => Errno::ENAMETOOLONG,
            StoreError::NoSpace | StoreError::TooManyNodes => Errno::ENOSPC,
            StoreError::FileTooBig => Errno::EFBIG,
            StoreError::Busy => Errno::EBUSY,
            StoreError::Io | StoreError::Corrupt | StoreError::Blank | StoreError::BadSize => {
                Errno::EIO
            }
        }
    }
}

impl From<disk::DiskError> for StoreError {
    fn from(_: disk::DiskError) -> Self {
        StoreError::Io
    }
}

/// Bounds on what a store holds in RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Objects (files, directories, open unlinked files), the root included.
    pub max_nodes: usize,
    /// File extents over all files.
    pub max_extents: usize,
    /// Largest file, in bytes.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_nodes: 4096,
            max_extents: 65536,
            max_file_bytes: 1 << 40,
        }
    }
}

/// What one personality holds on the store (for quotas).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of blocks allocated to its files.
    pub bytes: u64,
    /// Its objects.
    pub objects: u64,
}

/// An object as the store keeps it: attributes plus label and place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Attributes as [`Fs`](crate::channel::fs::Fs) reports them.
    pub attr: Attr,
    /// The personality that created it.
    pub owner: Who,
    /// Released to the other personalities (set by the channel).
    pub released: bool,
    /// Its directory (`None` for the root and for an unlinked open file).
    pub parent: Option<Ino>,
}

/// One object in RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    kind: Kind,
    /// Its directory; 0 for the root and for an unlinked (open) file.
    parent: Ino,
    /// Its position in the parent (readdir cookie).
    cookie: u64,
    name: Box<str>,
    mode: u32,
    size: u64,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
    version: u32,
    owner: Who,
    released: bool,
    /// For a directory: the cookie the next entry gets.
    next_cookie: u64,
    /// For a directory: entries, and of them directories.
    entries: u32,
    subdirs: u32,
    /// Open references (RAM only).
    opens: u32,
    /// Unlinked while open: gone from the tree and from the disk's metadata.
    orphan: bool,
    extents: ExtentMap,
}

/// The store over one partition.
pub struct Store<D: BlockDisk> {
    disk: D,
    limits: Limits,
    total_blocks: u32,
    nodes: BTreeMap<Ino, Node>,
    /// `(directory, cookie) -> entry`: readdir order.
    entries: BTreeMap<(Ino, u64), Ino>,
    /// `(directory, name hash, cookie)`: lookup.
    names: BTreeSet<(Ino, u32, u64)>,
    next_ino: Ino,
    /// File extents over all files.
    extent_count: usize,
    /// Blocks nothing references: data and chain blocks come from here.
    free: RangeSet,
    /// Blocks allocated since the last commit (may be rewritten in place).
    fresh: RangeSet,
    /// Blocks the last commit references that changes since stopped using: free
    /// after the next commit.
    pending: RangeSet,
    usage: BTreeMap<Who, Usage>,
    /// Nodes changed, and deleted, since the last commit.
    dirty: BTreeSet<Ino>,
    deleted: BTreeSet<Ino>,
    seq: u64,
    /// The committed metadata chain, in order, and where the next commit writes.
    chain: Vec<u32>,
    checkpoint_blocks: u32,
    reserved_next: u32,
    /// One block of bounce buffer, for partial blocks.
    bounce: Vec<u8>,
    /// A commit failed part way: the disk is in an unknown state.
    failed: bool,
}

impl<D: BlockDisk> Store<D> {
    /// The disk, back from the store.
    pub fn into_disk(self) -> D {
        self.disk
    }

    /// The disk under the store.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The disk under the store, for the caller's own requests (the channel's
    /// tests unplug it).
    pub fn disk_mut(&mut self) -> &mut D {
        &mut self.disk
    }

    /// The limits it was mounted with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The last commit's number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether anything changed since the last commit.
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty() || !self.deleted.is_empty()
    }

    fn node(&self, ino: Ino) -> Result<&Node, StoreError> {
        self.nodes.get(&ino).ok_or(StoreError::NotFound)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, StoreError> {
        self.nodes.get_mut(&ino).ok_or(StoreError::NotFound)
    }

    /// An object's attributes and label.
    ///
    /// # Errors
    ///
    /// `NotFound` for a number the store does not hold.
    pub fn info(&self, ino: Ino) -> Result<NodeInfo, StoreError> {
        let node = self.node(ino)?;
        let nlink = match node.kind {
            Kind::File => u32::from(!node.orphan),
            Kind::Dir => node.subdirs.saturating_add(2),
        };
        let size = match node.kind {
            Kind::File => node.size,
            Kind::Dir => BLOCK_BYTES as u64,
        };
        Ok(NodeInfo {
            attr: Attr {
                ino,
                kind: node.kind,
                mode: node.mode,
                size,
                nlink,
                atime: node.atime,
                mtime: node.mtime,
                ctime: node.ctime,
                version: node.version,
            },
            owner: node.owner,
            released: node.released,
            parent: (node.parent != 0).then_some(node.parent),
        })
    }

    /// An object's name in its directory (empty for the root and unlinked files).
    ///
    /// # Errors
    ///
    /// `NotFound` for a number the store does not hold.
    pub fn name(&self, ino: Ino) -> Result<&str, StoreError> {
        Ok(&self.node(ino)?.name)
    }

    /// The path of `ino` from the root (`/` for the root itself), for audit
    /// records and release folders.
    ///
    /// # Errors
    ///
    /// `NotFound` for a number the store does not hold or an unlinked file.
    pub fn path(&self, ino: Ino) -> Result<alloc::string::String, StoreError> {
        let mut parts: Vec<&str> = Vec::new();
        let mut at = ino;
        while at != ROOT {
            let node = self.node(at)?;
            if node.parent == 0 || parts.len() > self.nodes.len() {
                return Err(StoreError::NotFound);
            }
            parts.push(&node.name);
            at = node.parent;
        }
        let mut path = alloc::string::String::new();
        for part in parts.iter().rev() {
            path.push('/');
            path.push_str(part);
        }
        if path.is_empty() {
            path.push('/');
        }
        Ok(path)
    }

    /// The entry `name` in directory `dir`.
    ///
    /// # Errors
    ///
    /// `NotFound`, `NotDir`, or the name's own error.
    pub fn lookup(&self, dir: Ino, name: &str) -> Result<Ino, StoreError> {
        check_name(name)?;
        self.find(dir, name)?.ok_or(StoreError::NotFound)
    }

    /// The entry `name` in `dir`, if there is one.
    fn find(&self, dir: Ino, name: &str) -> Result<Option<Ino>, StoreError> {
        let node = self.node(dir)?;
        if node.kind != Kind::Dir || node.orphan {
            return Err(StoreError::NotDir);
        }
        let hash = format::name_hash(name);
        for &(_, _, cookie) in self.names.range((dir, hash, 0)..=(dir, hash, u64::MAX)) {
            let Some(&child) = self.entries.get(&(dir, cookie)) else {
                continue;
            };
            if self.nodes.get(&child).is_some_and(|c| &*c.name == name) {
                return Ok(Some(child));
            }
        }
        Ok(None)
    }

    /// Calls `emit` with the entries of `dir` after `cookie` (0 = from the start),
    /// in cookie order, until it returns false or the entries run out. A cookie
    /// is the entry's insertion number in the directory: it stays valid while
    /// other entries come and go.
    ///
    /// # Errors
    ///
    /// `NotFound` or `NotDir`.
    pub fn readdir(
        &self,
        dir: Ino,
        cookie: u64,
        emit: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), StoreError> {
        let node = self.node(dir)?;
        if node.kind != Kind::Dir {
            return Err(StoreError::NotDir);
        }
        let Some(start) = cookie.checked_add(1) else {
            return Ok(());
        };
        for (&(_, cookie), &child) in self.entries.range((dir, start)..=(dir, u64::MAX)) {
            let Some(node) = self.nodes.get(&child) else {
                continue;
            };
            let entry = DirEntry {
                cookie,
                ino: child,
                kind: node.kind,
                name: &node.name,
            };
            if !emit(entry) {
                break;
            }
        }
        Ok(())
    }

    /// What personality `owner` holds.
    pub fn usage(&self, owner: Who) -> Usage {
        self.usage.get(&owner).copied().unwrap_or_default()
    }

    /// Space and object counts of the whole store. Free blocks leave out what is
    /// kept back for metadata.
    pub fn statfs(&self) -> StatFs {
        let usable = u64::from(self.total_blocks) - u64::from(format::FIRST_FREE_BLOCK);
        let max_nodes = self.limits.max_nodes as u64;
        StatFs {
            block_size: BLOCK_BYTES as u32,
            blocks: usable,
            blocks_free: self
                .free
                .blocks()
                .saturating_sub(self.metadata_reserve_blocks() + io::DATA_SLACK_BLOCKS),
            files: max_nodes,
            files_free: max_nodes.saturating_sub(self.nodes.len() as u64),
            name_max: NAME_MAX as u32,
        }
    }

    /// Blocks data may not take: room for two checkpoints of the tree as it is
    /// (names counted at their longest) and some log, so that a commit always
    /// finds space. Creating an object needs this much free too.
    fn metadata_reserve_blocks(&self) -> u64 {
        let bytes = self.nodes.len() as u64 * (format::NODE_FIXED_BYTES + NAME_MAX) as u64
            + self.extent_count as u64 * format::EXTENT_BYTES as u64;
        let blocks = 2 * bytes.div_ceil(format::CHAIN_PAYLOAD_BYTES as u64) + 16;
        // Never more than a quarter of a small partition.
        blocks.min(u64::from(self.total_blocks) / 4)
    }

    fn usage_mut(&mut self, owner: Who) -> &mut Usage {
        self.usage.entry(owner).or_default()
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if self.failed {
            Err(StoreError::Io)
        } else {
            Ok(())
        }
    }
}

/// Checks that `name` is one path component of 1 to 255 bytes.
///
/// # Errors
///
/// `InvalidName` or `NameTooLong`.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    if name.len() > NAME_MAX {
        return Err(StoreError::NameTooLong);
    }
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(StoreError::InvalidName);
    }
    Ok(())
}

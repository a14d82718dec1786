//! The store's on-disk structures: superblocks, metadata-chain block headers and
//! the records in the chain, with their CRC32C. See the module documentation of
//! `store` for the layout.

use crc::{Crc, CRC_32_ISCSI};

use super::disk::SECTOR_BYTES;
use super::StoreError;
use crate::channel::fs::Timespec;

/// CRC32C (Castagnoli), over every superblock, chain block and name hash.
pub static CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// Bytes in a block: the unit of allocation.
pub const BLOCK_BYTES: usize = 4096;
/// Sectors in a block.
pub const SECTORS_PER_BLOCK: u64 = (BLOCK_BYTES / SECTOR_BYTES) as u64;
/// The first block that is not a superblock (superblock A is block 0, B block 1).
pub const FIRST_FREE_BLOCK: u32 = 2;
/// Most blocks a store has (1 TiB), so that block numbers fit a `u32` with room.
pub const MAX_BLOCKS: u64 = 1 << 28;
/// Fewest blocks a store has (256 KiB).
pub const MIN_BLOCKS: u64 = 64;

/// `JANUSSTO`: the first bytes of a superblock.
pub const SUPER_MAGIC: [u8; 8] = *b"JANUSSTO";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// `JMLB`: the first bytes of a metadata-chain block.
pub const CHAIN_MAGIC: u32 = u32::from_le_bytes(*b"JMLB");
/// Bytes of a chain block's header.
pub const CHAIN_HEADER_BYTES: usize = 32;
/// Payload bytes a chain block holds.
pub const CHAIN_PAYLOAD_BYTES: usize = BLOCK_BYTES - CHAIN_HEADER_BYTES;
/// Bytes of a superblock (the rest of its sector is zero).
pub const SUPER_BYTES: usize = 56;

/// Record tag: a node's whole state.
pub const TAG_NODE: u8 = 1;
/// Record tag: a node is gone.
pub const TAG_DELETE: u8 = 2;
/// Bytes of a node record before its name and extents.
pub const NODE_FIXED_BYTES: usize = 93;
/// Bytes of one extent in a node record.
pub const EXTENT_BYTES: usize = 12;
/// Bytes of a delete record.
pub const DELETE_BYTES: usize = 9;

/// One of the two superblocks: the commit point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Blocks in the store.
    pub total_blocks: u32,
    /// Commit number: the valid superblock with the higher one is current.
    pub seq: u64,
    /// The next object number to hand out.
    pub next_ino: u64,
    /// First block of the metadata chain.
    pub chain_head: u32,
    /// Blocks in the chain (checkpoint, then log).
    pub chain_blocks: u32,
    /// Of which the checkpoint.
    pub checkpoint_blocks: u32,
    /// The block the chain's last block points to: where the next commit starts.
    pub reserved_next: u32,
}

fn put_u32(out: &mut [u8], at: usize, value: u32) {
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
}

fn put_u64(out: &mut [u8], at: usize, value: u64) {
    if let Some(slot) = out.get_mut(at..at + 8) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
}

fn get_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(slot) = bytes.get(at..at + 4) {
        word.copy_from_slice(slot);
    }
    u32::from_le_bytes(word)
}

fn get_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    if let Some(slot) = bytes.get(at..at + 8) {
        word.copy_from_slice(slot);
    }
    u64::from_le_bytes(word)
}

impl Superblock {
    /// The sector holding it.
    pub fn encode(&self) -> [u8; SECTOR_BYTES] {
        let mut out = [0u8; SECTOR_BYTES];
        out[..8].copy_from_slice(&SUPER_MAGIC);
        put_u32(&mut out, 8, VERSION);
        put_u32(&mut out, 12, BLOCK_BYTES as u32);
        put_u32(&mut out, 16, self.total_blocks);
        put_u32(&mut out, 20, self.chain_head);
        put_u64(&mut out, 24, self.seq);
        put_u64(&mut out, 32, self.next_ino);
        put_u32(&mut out, 40, self.chain_blocks);
        put_u32(&mut out, 44, self.checkpoint_blocks);
        put_u32(&mut out, 48, self.reserved_next);
        let crc = CRC32C.checksum(&out[..52]);
        put_u32(&mut out, 52, crc);
        out
    }

    /// The superblock in `sector`, if its magic, version, CRC and fields are
    /// right for a partition of `disk_blocks` blocks.
    pub fn decode(sector: &[u8], disk_blocks: u64) -> Option<Superblock> {
        let header = sector.get(..SUPER_BYTES)?;
        if header[..8] != SUPER_MAGIC
            || get_u32(header, 8) != VERSION
            || get_u32(header, 12) != BLOCK_BYTES as u32
            || CRC32C.checksum(&header[..52]) != get_u32(header, 52)
        {
            return None;
        }
        let block = Superblock {
            total_blocks: get_u32(header, 16),
            chain_head: get_u32(header, 20),
            seq: get_u64(header, 24),
            next_ino: get_u64(header, 32),
            chain_blocks: get_u32(header, 40),
            checkpoint_blocks: get_u32(header, 44),
            reserved_next: get_u32(header, 48),
        };
        let total = u64::from(block.total_blocks);
        let inside = |b: u32| b >= FIRST_FREE_BLOCK && u64::from(b) < total;
        let sane = (MIN_BLOCKS..=MAX_BLOCKS.min(disk_blocks)).contains(&total)
            && inside(block.chain_head)
            && inside(block.reserved_next)
            && block.chain_blocks >= 1
            && u64::from(block.chain_blocks) < total
            && (1..=block.chain_blocks).contains(&block.checkpoint_blocks)
            && block.seq >= 1
            && block.next_ino > super::ROOT;
        sane.then_some(block)
    }
}

/// The header of one metadata-chain block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHeader {
    /// Its place in the chain (0 = the checkpoint's first block).
    pub index: u32,
    /// The commit that wrote it.
    pub seq: u64,
    /// The chain's next block (for the last block: where the next commit writes).
    pub next: u32,
    /// Payload bytes used.
    pub payload_len: u32,
}

impl ChainHeader {
    /// Fills in the header of `block`, whose payload is already in place, with its CRC.
    pub fn seal(&self, block: &mut [u8]) {
        put_u32(block, 0, CHAIN_MAGIC);
        put_u32(block, 4, self.index);
        put_u64(block, 8, self.seq);
        put_u32(block, 16, self.next);
        put_u32(block, 20, self.payload_len);
        put_u32(block, 28, 0);
        let crc = Self::crc(block, self.payload_len as usize);
        put_u32(block, 24, crc);
    }

    fn crc(block: &[u8], payload_len: usize) -> u32 {
        let mut digest = CRC32C.digest();
        digest.update(block.get(..24).unwrap_or(&[]));
        let end = CHAIN_HEADER_BYTES + payload_len.min(CHAIN_PAYLOAD_BYTES);
        digest.update(block.get(CHAIN_HEADER_BYTES..end).unwrap_or(&[]));
        digest.finalize()
    }

    /// The header of `block`, if its magic, length and CRC are right.
    pub fn open(block: &[u8]) -> Option<ChainHeader> {
        let header = ChainHeader {
            index: get_u32(block, 4),
            seq: get_u64(block, 8),
            next: get_u32(block, 16),
            payload_len: get_u32(block, 20),
        };
        let ok = get_u32(block, 0) == CHAIN_MAGIC
            && header.payload_len as usize <= CHAIN_PAYLOAD_BYTES
            && Self::crc(block, header.payload_len as usize) == get_u32(block, 24);
        ok.then_some(header)
    }
}

/// Where encoded records go.
pub trait Sink {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]) -> Result<(), StoreError>;
}

/// Where records are decoded from.
pub trait Source {
    /// Fills `out`, or fails with `Corrupt` when the bytes run out.
    fn get(&mut self, out: &mut [u8]) -> Result<(), StoreError>;
}

/// Little-endian helpers over a [`Sink`].
pub fn put_le<S: Sink + ?Sized>(sink: &mut S, value: u64, bytes: usize) -> Result<(), StoreError> {
    sink.put(&value.to_le_bytes()[..bytes.min(8)])
}

/// Little-endian helpers over a [`Source`].
pub fn get_le<S: Source + ?Sized>(source: &mut S, bytes: usize) -> Result<u64, StoreError> {
    let mut word = [0u8; 8];
    source.get(&mut word[..bytes.min(8)])?;
    Ok(u64::from_le_bytes(word))
}

/// Writes a time (seconds, nanoseconds).
pub fn put_time<S: Sink + ?Sized>(sink: &mut S, time: Timespec) -> Result<(), StoreError> {
    put_le(sink, time.sec, 8)?;
    put_le(sink, u64::from(time.nsec), 4)
}

/// Reads a time, refusing nanoseconds of a second or more.
pub fn get_time<S: Source + ?Sized>(source: &mut S) -> Result<Timespec, StoreError> {
    let sec = get_le(source, 8)?;
    let nsec = get_le(source, 4)? as u32;
    if nsec >= 1_000_000_000 {
        return Err(StoreError::Corrupt);
    }
    Ok(Timespec { sec, nsec })
}

/// The hash a directory's name index uses.
pub fn name_hash(name: &str) -> u32 {
    CRC32C.checksum(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblock_round_trips_and_rejects_flipped_bits() {
        let block = Superblock {
            total_blocks: 1000,
            seq: 7,
            next_ino: 9,
            chain_head: 5,
            chain_blocks: 3,
            checkpoint_blocks: 1,
            reserved_next: 40,
        };
        let sector = block.encode();
        assert_eq!(Superblock::decode(&sector, 1000), Some(block));
        assert_eq!(Superblock::decode(&sector, 999), None);
        for bit in 0..SUPER_BYTES * 8 {
            let mut bad = sector;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(Superblock::decode(&bad, 1000), None, "bit {bit}");
        }
    }

    #[test]
    fn chain_header_detects_a_torn_payload() {
        let mut block = [0u8; BLOCK_BYTES];
        block[CHAIN_HEADER_BYTES..CHAIN_HEADER_BYTES + 5].copy_from_slice(b"hello");
        let header = ChainHeader {
            index: 2,
            seq: 3,
            next: 9,
            payload_len: 5,
        };
        header.seal(&mut block);
        assert_eq!(ChainHeader::open(&block), Some(header));
        block[CHAIN_HEADER_BYTES + 4] ^= 1;
        assert_eq!(ChainHeader::open(&block), None);
    }
}

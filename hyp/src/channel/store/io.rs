//! File data: reads and writes straight between the caller's buffer and the disk,
//! copy-on-write against the last commit, and truncation.

use super::disk::{BlockDisk, SECTOR_BYTES};
use super::extents::{ExtentMap, Piece};
use super::format::{BLOCK_BYTES, SECTORS_PER_BLOCK};
use super::tree::touch_changed;
use super::{Store, StoreError};
use crate::channel::fs::{Ino, Kind, Timespec};

/// One block of zeros, for truncation.
static ZEROS: [u8; BLOCK_BYTES] = [0; BLOCK_BYTES];
const BLOCK: u64 = BLOCK_BYTES as u64;
/// Blocks data leaves free beyond the metadata reserve, so that a store full of
/// data can still create (and commit) a few objects.
pub(super) const DATA_SLACK_BLOCKS: u64 = 8;

/// Where one run of a write goes.
struct Segment {
    /// First file block and blocks.
    logical: u64,
    len: u64,
    /// Disk block it is written to.
    target: u32,
    /// Disk block that holds the run's current contents (`None`: a hole).
    old: Option<u32>,
    /// Written where it is (a block written since the last commit).
    in_place: bool,
}

impl<D: BlockDisk> Store<D> {
    /// Reads from file `ino` at `offset` into `buf`; returns the bytes read (0 at
    /// or past the end).
    ///
    /// # Errors
    ///
    /// `NotFound`, `IsDir`, `Io`.
    pub fn read(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        let node = self.node(ino)?;
        if node.kind != Kind::File {
            return Err(StoreError::IsDir);
        }
        if offset >= node.size {
            return Ok(0);
        }
        let len = (node.size - offset).min(buf.len() as u64) as usize;
        let end = offset + len as u64;
        let mut at = offset;
        while at < end {
            let block = at / BLOCK;
            let within = at % BLOCK;
            let piece = self.node(ino)?.extents.piece(block);
            let (run, physical) = match piece {
                Piece::Mapped { physical, run } => (run, Some(physical)),
                Piece::Hole { run } => (run, None),
            };
            let piece_end = block.saturating_add(run).saturating_mul(BLOCK).min(end);
            let from = (at - offset) as usize;
            let to = (piece_end - offset) as usize;
            let out = buf.get_mut(from..to).ok_or(StoreError::Corrupt)?;
            match physical {
                None => out.fill(0),
                Some(physical) => {
                    let byte = u64::from(physical) * BLOCK + within;
                    self.read_bytes(byte, out)?;
                }
            }
            at = piece_end;
        }
        Ok(len)
    }

    /// Reads `out.len()` bytes at partition byte `byte`: whole sectors straight
    /// into `out`, partial ones through the bounce buffer.
    fn read_bytes(&mut self, byte: u64, out: &mut [u8]) -> Result<(), StoreError> {
        let sector_bytes = SECTOR_BYTES as u64;
        let mut byte = byte;
        let mut out = out;
        let head = (byte % sector_bytes) as usize;
        if head != 0 || out.len() < SECTOR_BYTES {
            let bounce = self
                .bounce
                .get_mut(..SECTOR_BYTES)
                .ok_or(StoreError::Corrupt)?;
            self.disk.read(byte / sector_bytes, bounce)?;
            let take = (SECTOR_BYTES - head).min(out.len());
            let (first, rest) = out.split_at_mut(take);
            first.copy_from_slice(&bounce[head..head + take]);
            out = rest;
            byte += take as u64;
        }
        let whole = out.len() / SECTOR_BYTES * SECTOR_BYTES;
        if whole > 0 {
            let (middle, rest) = out.split_at_mut(whole);
            self.disk.read(byte / sector_bytes, middle)?;
            out = rest;
            byte += whole as u64;
        }
        if !out.is_empty() {
            let bounce = self
                .bounce
                .get_mut(..SECTOR_BYTES)
                .ok_or(StoreError::Corrupt)?;
            self.disk.read(byte / sector_bytes, bounce)?;
            let len = out.len();
            out.copy_from_slice(&bounce[..len]);
        }
        Ok(())
    }

    /// Writes `data` to file `ino` at `offset`; returns the bytes written, short
    /// only when space ran out part way. Blocks the last commit references are
    /// never overwritten: their run is written to free blocks and remapped.
    ///
    /// # Errors
    ///
    /// `NotFound`, `IsDir`, `FileTooBig`, `NoSpace` (nothing written), `Io`.
    pub fn write(
        &mut self,
        ino: Ino,
        offset: u64,
        data: &[u8],
        now: Timespec,
    ) -> Result<usize, StoreError> {
        self.check_writable()?;
        let node = self.node(ino)?;
        if node.kind != Kind::File {
            return Err(StoreError::IsDir);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&end| end <= self.max_file_bytes())
            .ok_or(StoreError::FileTooBig)?;
        let written = self.write_range(ino, offset, data)?;
        let node = self.node_mut(ino)?;
        node.size = node.size.max(offset + written as u64);
        touch_changed(node, now);
        self.mark(ino);
        debug_assert!(written as u64 <= end - offset);
        Ok(written)
    }

    /// Largest file: the limit, and what `u32` block numbers can map.
    fn max_file_bytes(&self) -> u64 {
        self.limits.max_file_bytes.min(u64::from(u32::MAX) * BLOCK)
    }

    /// Writes the bytes, run by run; returns how many made it.
    fn write_range(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, StoreError> {
        let end = offset + data.len() as u64;
        let last = end.div_ceil(BLOCK);
        let mut block = offset / BLOCK;
        while block < last {
            let segment = match self.plan_segment(ino, block, last - block) {
                Ok(segment) => segment,
                Err(error) => return self.short(block, offset, error),
            };
            if let Err(error) = self.write_segment(&segment, offset, data) {
                if !segment.in_place {
                    self.free.insert(segment.target, segment.len as u32);
                }
                return self.short(block, offset, error);
            }
            if !segment.in_place {
                self.fresh.insert(segment.target, segment.len as u32);
                self.remap(ino, segment.logical, segment.target, segment.len as u32)?;
            }
            block += segment.len;
        }
        Ok(data.len())
    }

    /// The result of a write that stopped at file block `block`.
    fn short(&self, block: u64, offset: u64, error: StoreError) -> Result<usize, StoreError> {
        let done = (block * BLOCK).saturating_sub(offset);
        if done > 0 && error == StoreError::NoSpace {
            Ok(done as usize)
        } else {
            Err(error)
        }
    }

    /// Where the next run of at most `most` blocks from file block `block` goes.
    fn plan_segment(&mut self, ino: Ino, block: u64, most: u64) -> Result<Segment, StoreError> {
        let extents = &self.node(ino)?.extents;
        let (old, run) = match extents.piece(block) {
            Piece::Mapped { physical, run } => (Some(physical), run.min(most)),
            Piece::Hole { run } => (None, run.min(most)),
        };
        let goal = match (old, block.checked_sub(1).map(|b| extents.piece(b))) {
            (_, Some(Piece::Mapped { physical, .. })) => physical + 1,
            (Some(physical), _) => physical,
            _ => 0,
        };
        let run = run.min(u64::from(u32::MAX)) as u32;
        if let Some(old) = old {
            let fresh = self.fresh.run_at(old);
            if fresh > 0 {
                return Ok(Segment {
                    logical: block,
                    len: u64::from(fresh.min(run)),
                    target: old,
                    old: Some(old),
                    in_place: true,
                });
            }
        }
        let run = match old {
            Some(old) => self.fresh.gap_at(old, run),
            None => run,
        };
        if self.extent_count + ExtentMap::MAP_GROWTH > self.limits.max_extents {
            return Err(StoreError::NoSpace);
        }
        let available = self
            .free
            .blocks()
            .saturating_sub(self.metadata_reserve_blocks() + DATA_SLACK_BLOCKS);
        let want = u64::from(run).min(available) as u32;
        let (target, len) = self.free.take(want, goal).ok_or(StoreError::NoSpace)?;
        Ok(Segment {
            logical: block,
            len: u64::from(len),
            target,
            old,
            in_place: false,
        })
    }

    /// Writes the part of `data` (which starts at file byte `offset`) that falls
    /// in the segment: partial blocks through the bounce buffer, the rest in one
    /// request straight from `data`.
    fn write_segment(
        &mut self,
        segment: &Segment,
        offset: u64,
        data: &[u8],
    ) -> Result<(), StoreError> {
        let end = offset + data.len() as u64;
        let first = segment.logical;
        let last = segment.logical + segment.len;
        let mut block = first;
        while block < last {
            let start = block * BLOCK;
            let partial = offset > start || end < start + BLOCK;
            let target = u64::from(segment.target) + (block - first);
            if partial {
                let bounce = self
                    .bounce
                    .get_mut(..BLOCK_BYTES)
                    .ok_or(StoreError::Corrupt)?;
                match segment.old {
                    Some(old) => {
                        let old = u64::from(old) + (block - first);
                        self.disk.read(old * SECTORS_PER_BLOCK, bounce)?;
                    }
                    None => bounce.fill(0),
                }
                let from = offset.max(start);
                let to = end.min(start + BLOCK);
                let source = data
                    .get((from - offset) as usize..(to - offset) as usize)
                    .ok_or(StoreError::Corrupt)?;
                bounce[(from - start) as usize..(to - start) as usize].copy_from_slice(source);
                self.disk.write(target * SECTORS_PER_BLOCK, bounce)?;
                block += 1;
            } else {
                // Whole blocks up to the segment's end or the first partial one.
                let whole_end = last.min(end / BLOCK);
                let count = whole_end - block;
                let from = (start - offset) as usize;
                let source = data
                    .get(from..from + (count * BLOCK) as usize)
                    .ok_or(StoreError::Corrupt)?;
                self.disk.write(target * SECTORS_PER_BLOCK, source)?;
                block = whole_end;
            }
        }
        Ok(())
    }

    /// Maps file blocks of `ino` to new disk blocks, releasing the old ones and
    /// counting the change in the owner's usage.
    fn remap(&mut self, ino: Ino, logical: u64, target: u32, len: u32) -> Result<(), StoreError> {
        let node = self.node_mut(ino)?;
        let owner = node.owner;
        let mut map = core::mem::take(&mut node.extents);
        let before = map.len();
        let mut released = 0u64;
        let logical = u32::try_from(logical).map_err(|_| StoreError::FileTooBig)?;
        map.map(logical, target, len, &mut |start, count| {
            released += u64::from(count);
            self.release_blocks(start, count);
        });
        self.extent_count = self.extent_count + map.len() - before;
        let usage = self.usage_mut(owner);
        usage.bytes = (usage.bytes + u64::from(len) * BLOCK).saturating_sub(released * BLOCK);
        self.node_mut(ino)?.extents = map;
        Ok(())
    }

    /// Blocks a file stopped using: free at once if no commit knows them, else
    /// after the next commit.
    pub(super) fn release_blocks(&mut self, start: u32, len: u32) {
        let mut at = start;
        let end = u64::from(start) + u64::from(len);
        while u64::from(at) < end {
            let left = (end - u64::from(at)) as u32;
            let fresh = self.fresh.run_at(at).min(left);
            if fresh > 0 {
                self.fresh.remove(at, fresh);
                self.free.insert(at, fresh);
                at += fresh;
            } else {
                let stale = self.fresh.gap_at(at, left).max(1);
                self.pending.insert(at, stale);
                at += stale;
            }
        }
    }

    /// Truncates file `ino` to `size` bytes or extends it with zeros.
    ///
    /// # Errors
    ///
    /// `NotFound`, `IsDir`, `FileTooBig`, `NoSpace` (zeroing a shortened last
    /// block needs one), `Io`.
    pub fn set_size(&mut self, ino: Ino, size: u64, now: Timespec) -> Result<(), StoreError> {
        self.check_writable()?;
        let node = self.node(ino)?;
        if node.kind != Kind::File {
            return Err(StoreError::IsDir);
        }
        if size > self.max_file_bytes() {
            return Err(StoreError::FileTooBig);
        }
        let old_size = node.size;
        if size < old_size {
            let keep = size.div_ceil(BLOCK);
            let node = self.node_mut(ino)?;
            let owner = node.owner;
            let mut map = core::mem::take(&mut node.extents);
            let before = map.len();
            let mut released = 0u64;
            map.unmap(keep, u64::MAX, &mut |start, count| {
                released += u64::from(count);
                self.release_blocks(start, count);
            });
            self.extent_count = self.extent_count + map.len() - before;
            let usage = self.usage_mut(owner);
            usage.bytes = usage.bytes.saturating_sub(released * BLOCK);
            self.node_mut(ino)?.extents = map;
            // Bytes past the end of a kept last block must read as zeros later.
            let tail = size % BLOCK;
            if tail != 0 {
                let zero_to = old_size.min(keep * BLOCK);
                let zeros = ZEROS.get(..(zero_to - size) as usize).unwrap_or(&[]);
                if matches!(
                    self.node(ino)?.extents.piece(size / BLOCK),
                    Piece::Mapped { .. }
                ) {
                    self.write_range(ino, size, zeros)?;
                }
            }
        }
        let node = self.node_mut(ino)?;
        node.size = size;
        touch_changed(node, now);
        self.mark(ino);
        Ok(())
    }
}

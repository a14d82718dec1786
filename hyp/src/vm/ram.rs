//! A personality's RAM, cleared on first touch.
//!
//! The RAM is mapped at stage 2 as one region (IPA = PA) of 2 MiB chunks, a present
//! chunk with 4 KiB pages while the frame pool has a table for it. At
//! every start all chunks are made absent: still recorded as mapped, but with invalid
//! descriptors. The chunks that receive the kernel, the initrd and the device tree are
//! cleared outside what is loaded into them and made present before the personality
//! runs; every other chunk is cleared and made present by the first access that needs
//! it: a guest access faults at stage 2 and Janus clears the chunk and lets the
//! access run again, and Janus' own reads of guest memory (a console hypercall's
//! buffer) fill the chunks they cover first.
//!
//! So the previous occupant's data is never visible, as with clearing everything up
//! front, but a start costs only what the guest uses: a Linux personality touches a
//! fraction of its RAM before its shell is up. Under QEMU this also leaves the host
//! memory behind untouched chunks unallocated. Pure logic: the clearing itself is the
//! caller's (`arch/aarch64/boot.rs`), so the bookkeeping is tested on the host.

use alloc::vec::Vec;
use core::ops::Range;

use crate::mm::addr::{Ipa, Pa, PAGE_SIZE};
use crate::mm::frame::FrameSource;
use crate::mm::stage2::{MemKind, Perm, Presence, Stage2Error, Stage2Table};

/// The unit of clearing and of stage-2 presence: one 2 MiB block descriptor.
pub const CHUNK_BYTES: u64 = 2 * 1024 * 1024;

/// What `GuestRam::touch` did about an access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touch {
    /// The chunk holding the address was cleared and made present.
    Filled(Range<u64>),
    /// The chunk was present already (another vCPU filled it first).
    Present,
    /// The address is not in this personality's RAM.
    Outside,
}

/// A personality's stage-2 table and which of its RAM chunks are present.
pub struct GuestRam<F: FrameSource> {
    table: Stage2Table<F>,
    base: u64,
    size: u64,
    /// One bit per chunk, set while the chunk is present (cleared since the last start).
    present: Vec<u64>,
    /// Chunks mapped with pages (each holding a level-3 table) since the last start.
    paged: usize,
    /// How many chunks may be mapped with pages: this personality's share of the frame
    /// pool, so that one personality touching all its RAM cannot leave the other only
    /// blocks (and QEMU's whole-TLB flushes).
    paged_limit: usize,
}

impl<F: FrameSource> GuestRam<F> {
    /// Maps `[base, base + size)` into `table` (IPA = PA, Normal, read-write-execute) as one
    /// region in 2 MiB blocks, every chunk present. `base` and `size` must be multiples of
    /// `CHUNK_BYTES` (the configuration checks guarantee it).
    ///
    /// # Errors
    ///
    /// `MisalignedIpa` or `MisalignedSize` for a range that is not whole chunks, and the
    /// errors of `Stage2Table::map_in_pieces`.
    pub fn new(mut table: Stage2Table<F>, base: u64, size: u64) -> Result<Self, Stage2Error> {
        if !base.is_multiple_of(CHUNK_BYTES) {
            return Err(Stage2Error::MisalignedIpa);
        }
        if size == 0 || !size.is_multiple_of(CHUNK_BYTES) {
            return Err(Stage2Error::MisalignedSize);
        }
        let chunks = size / CHUNK_BYTES;
        table.map_in_pieces(
            Ipa(base),
            Pa(base),
            size,
            MemKind::Normal,
            Perm::ReadWriteExecute,
            CHUNK_BYTES,
        )?;
        let words = chunks.div_ceil(64) as usize;
        let mut ram = Self {
            table,
            base,
            size,
            present: alloc::vec![0; words],
            paged: 0,
            paged_limit: usize::MAX,
        };
        for chunk in 0..chunks as usize {
            ram.set_bit(chunk, true);
        }
        Ok(ram)
    }

    /// Lets at most `chunks` chunks be mapped with pages (one level-3 table each); the
    /// others get blocks. No limit until this is called.
    pub fn limit_paged_chunks(&mut self, chunks: usize) {
        self.paged_limit = chunks;
    }

    /// How many chunks are mapped with pages.
    pub fn paged_chunks(&self) -> usize {
        self.paged
    }

    /// The stage-2 table.
    pub fn table(&self) -> &Stage2Table<F> {
        &self.table
    }

    /// How many chunks the RAM has.
    pub fn chunks(&self) -> usize {
        (self.size / CHUNK_BYTES) as usize
    }

    /// How many chunks are present.
    pub fn present_chunks(&self) -> usize {
        self.present
            .iter()
            .map(|word| word.count_ones() as usize)
            .sum()
    }

    /// Makes every chunk absent, for a (re)start. The caller must make sure no vCPU of
    /// the personality runs and that its VMID's TLB entries are dropped before one does.
    ///
    /// # Errors
    ///
    /// Those of `Stage2Table::set_presence` (only a Janus bug gets one).
    pub fn forget(&mut self) -> Result<(), Stage2Error> {
        self.table
            .set_presence(Ipa(self.base), self.size, Presence::Absent)?;
        self.present.fill(0);
        self.paged = 0;
        Ok(())
    }

    /// Prepares the chunks that `loads` (IPA ranges about to be written) fall in: calls
    /// `clear(start, len)` for the parts of each such chunk the loads leave uncovered
    /// (widened to whole pages, so a load's ragged edge may be cleared too: load after
    /// this) and makes the chunk present. Chunks present already are left alone.
    ///
    /// # Errors
    ///
    /// Those of `Stage2Table::set_presence`.
    pub fn prepare(
        &mut self,
        loads: &[Range<u64>],
        mut clear: impl FnMut(u64, u64),
    ) -> Result<(), Stage2Error> {
        for chunk in 0..self.chunks() {
            let range = self.chunk_range(chunk);
            let loaded = loads
                .iter()
                .any(|load| load.start < range.end && range.start < load.end);
            if !loaded || self.bit(chunk) {
                continue;
            }
            for gap in uncovered(&range, loads, PAGE_SIZE) {
                clear(gap.start, gap.end - gap.start);
            }
            self.make_present(chunk)?;
        }
        Ok(())
    }

    /// Makes the chunk holding `ipa` present, calling `clear(start, len)` on it first if it
    /// was absent: the answer to a guest access that faulted at stage 2.
    ///
    /// # Errors
    ///
    /// Those of `Stage2Table::set_presence`.
    pub fn touch(&mut self, ipa: u64, clear: impl FnOnce(u64, u64)) -> Result<Touch, Stage2Error> {
        let Some(chunk) = self.chunk_of(ipa) else {
            return Ok(Touch::Outside);
        };
        if self.bit(chunk) {
            return Ok(Touch::Present);
        }
        let range = self.chunk_range(chunk);
        clear(range.start, CHUNK_BYTES);
        self.make_present(chunk)?;
        Ok(Touch::Filled(range))
    }

    /// Makes every chunk `[ipa, ipa + len)` touches present, clearing the absent ones
    /// first: before Janus reads guest memory on the guest's behalf. Returns how many
    /// chunks it filled; addresses outside the RAM are skipped (the caller checked them).
    ///
    /// # Errors
    ///
    /// Those of `Stage2Table::set_presence`.
    pub fn touch_range(
        &mut self,
        ipa: u64,
        len: u64,
        mut clear: impl FnMut(u64, u64),
    ) -> Result<usize, Stage2Error> {
        let mut filled = 0;
        let end = ipa.saturating_add(len);
        let mut at = ipa;
        while at < end {
            if let Touch::Filled(_) = self.touch(at, &mut clear)? {
                filled += 1;
            }
            at = (at - at % CHUNK_BYTES).saturating_add(CHUNK_BYTES);
        }
        Ok(filled)
    }

    /// Whether the chunk holding `ipa` is present (`None` outside the RAM).
    #[cfg(test)]
    pub fn is_present(&self, ipa: u64) -> Option<bool> {
        self.chunk_of(ipa).map(|chunk| self.bit(chunk))
    }

    fn chunk_of(&self, ipa: u64) -> Option<usize> {
        let offset = ipa.checked_sub(self.base)?;
        (offset < self.size).then_some((offset / CHUNK_BYTES) as usize)
    }

    fn chunk_range(&self, chunk: usize) -> Range<u64> {
        let start = self.base + chunk as u64 * CHUNK_BYTES;
        start..start + CHUNK_BYTES
    }

    /// Maps the chunk with 4 KiB pages, or with a 2 MiB block when no frame is left
    /// for its table or this personality's share of them is used up.
    ///
    /// Pages because QEMU's TCG gives a TLB entry the larger of its stage-1 and
    /// stage-2 page sizes, and invalidating a page that lies inside a "large page"
    /// flushes the whole TLB: with blocks at stage 2, each of the ~49,000 TLB
    /// invalidations of a Linux boot flushed everything, and the boot did 909,000
    /// TLB fills instead of 355,000 (305,000 without Janus). On hardware a page per
    /// 4 KiB costs more stage-2 walks than blocks, and a table (4 KiB) per 2 MiB
    /// touched; the frame pool bounds that.
    fn make_present(&mut self, chunk: usize) -> Result<(), Stage2Error> {
        let ipa = Ipa(self.chunk_range(chunk).start);
        let paged = if self.paged < self.paged_limit {
            self.table.set_presence(ipa, CHUNK_BYTES, Presence::Pages)
        } else {
            Err(Stage2Error::OutOfFrames)
        };
        match paged {
            Ok(()) => self.paged += 1,
            Err(Stage2Error::OutOfFrames) => {
                self.table
                    .set_presence(ipa, CHUNK_BYTES, Presence::Blocks)?
            }
            Err(error) => return Err(error),
        }
        self.set_bit(chunk, true);
        Ok(())
    }

    fn bit(&self, chunk: usize) -> bool {
        self.present
            .get(chunk / 64)
            .is_some_and(|word| word & (1 << (chunk % 64)) != 0)
    }

    fn set_bit(&mut self, chunk: usize, on: bool) {
        if let Some(word) = self.present.get_mut(chunk / 64) {
            if on {
                *word |= 1 << (chunk % 64);
            } else {
                *word &= !(1 << (chunk % 64));
            }
        }
    }
}

/// The parts of `range` that none of `loads` covers, in address order, each widened to
/// multiples of `align` (so it may overlap a load's first or last partial `align` unit)
/// and kept inside `range`.
pub fn uncovered(range: &Range<u64>, loads: &[Range<u64>], align: u64) -> Vec<Range<u64>> {
    let mut gaps: Vec<Range<u64>> = Vec::new();
    let mut at = range.start;
    while at < range.end {
        // The load that starts first among those still reaching past `at`.
        let next = loads
            .iter()
            .filter(|load| load.start < load.end && load.end > at)
            .min_by_key(|load| load.start);
        let (gap_end, resume) = match next {
            Some(load) => (load.start.min(range.end), load.end),
            None => (range.end, range.end),
        };
        if at < gap_end {
            let start = (at - at % align).max(range.start);
            let end = gap_end.next_multiple_of(align).min(range.end);
            match gaps.last_mut() {
                Some(last) if last.end >= start => last.end = end,
                _ => gaps.push(start..end),
            }
        }
        at = resume;
    }
    gaps
}

#[cfg(test)]
mod tests;

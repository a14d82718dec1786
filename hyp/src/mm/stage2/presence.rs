//! Guest RAM whose parts come and go from the tables while staying recorded as mapped:
//! `map_in_pieces` maps it with no block larger than a piece, and `set_presence` makes parts
//! of it absent (invalid descriptors) or present again, with blocks or 4 KiB pages.

use core::ops::Range;

use aarch64_paging::descriptor::Stage2Attributes;
use aarch64_paging::paging::Constraints;

use super::attributes::leaf_attributes;
use super::{
    check_ipa_range, granule_bytes, memory_region, Ipa, MemKind, Pa, Perm, Stage2Error,
    Stage2Table, BLOCK_1G, BLOCK_2M, IPA_SPACE_BYTES, LEAF_LEVEL, PAGE_SIZE, ROOT_LEVEL,
};
use crate::mm::frame::FrameSource;

/// How `Stage2Table::set_presence` leaves a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Invalid descriptors: an access faults.
    Absent,
    /// Mapped with the largest blocks that fit.
    Blocks,
    /// Mapped with 4 KiB pages.
    Pages,
}

impl<F: FrameSource> Stage2Table<F> {
    /// Maps like `map`, but piece by `piece`-aligned piece, so that no block is larger than
    /// `piece` (2 MiB: no 1 GiB blocks), and records one region. Guest RAM is mapped so, for
    /// `set_presence` to take any 2 MiB of it at a time. A failure leaves nothing mapped.
    ///
    /// # Errors
    ///
    /// Those of `map`, and `MisalignedSize` if `piece` is not a power of two of at least
    /// 4 KiB.
    pub fn map_in_pieces(
        &mut self,
        ipa: Ipa,
        pa: Pa,
        size: u64,
        kind: MemKind,
        perm: Perm,
        piece: u64,
    ) -> Result<(), Stage2Error> {
        if !piece.is_power_of_two() || piece < PAGE_SIZE {
            return Err(Stage2Error::MisalignedSize);
        }
        let (range, first) = self.check_map(ipa, pa, size, kind, perm)?;
        let mut start = range.start;
        while start < range.end {
            let end = (start - start % piece + piece).min(range.end);
            let span = start..end;
            let span_pa = pa.0 + (start - range.start);
            let tables = self.tables_needed(&span, span_pa, false);
            let mapped = self.write_range(
                &span,
                span_pa,
                leaf_attributes(kind, perm),
                Constraints::empty(),
                tables,
            );
            if let Err(error) = mapped {
                // Take back the pieces mapped so far. They end where a piece ends, so no
                // block is split and no table is needed (a bound would ask for frames).
                if start > range.start {
                    let done = range.start..start;
                    let undone = self.write_range(
                        &done,
                        pa.0,
                        Stage2Attributes::empty(),
                        Constraints::empty(),
                        0,
                    );
                    debug_assert!(undone.is_ok(), "taking back mapped pieces failed");
                    self.mapping.compact_subtables();
                }
                return Err(error);
            }
            start = end;
        }
        self.record(first, ipa, size, pa, kind, perm, piece);
        Ok(())
    }

    /// Makes `[ipa, ipa + size)` absent (invalid descriptors) or present again with its
    /// regions' recorded output address, kind and permissions, while keeping it recorded as
    /// mapped. Guest RAM that Janus clears on first touch is mapped this way (`vm/ram.rs`):
    /// absent from the tables until the guest's first access to it faults.
    ///
    /// `Presence::Blocks` maps as `map` does, with the largest blocks that fit;
    /// `Presence::Pages` with 4 KiB pages only, a table for each 2 MiB; a region from
    /// `map_in_pieces` gets no block larger than its piece either way. Making a range absent
    /// invalidates each valid block as a whole and frees the level-3 tables its 2 MiB spans
    /// hold, and no other table (though `unmap` may compact away tables left empty).
    ///
    /// The range must be mapped throughout and no valid descriptor may straddle its ends
    /// (map it with `map_in_pieces` to take it 2 MiB at a time), so no live block is ever
    /// split; to make it present it must be absent, so no valid descriptor is ever
    /// rewritten. No TLB maintenance is done, live table or not: a TLB never holds a
    /// translation that faulted, so making a range present needs none. The caller of
    /// `Presence::Absent` must make sure that no stale TLB or walk-cache entry is used
    /// afterwards, since the level-3 tables it frees may be reused at once, by another
    /// guest's tables too: Janus makes RAM absent only while no vCPU of the guest runs, and
    /// every vCPU start flushes its VMID's entries (`TLBI VMALLS12E1`) from its physical
    /// CPU, the only one it runs on. Entries a speculative walk may create meanwhile carry
    /// the guest's VMID and are flushed before it runs. The caller also issues the `DSB`
    /// that makes the update visible to walkers.
    ///
    /// # Errors
    ///
    /// `ZeroSize`, `MisalignedIpa`, `MisalignedSize`, `RangeOverflow`, `IpaOutOfRange`,
    /// `NotMapped`, `PartialRegion` if a valid block straddles an end of the range,
    /// `BreakBeforeMake` if a range to make present is not absent throughout, `OutOfFrames`
    /// (the regions before the one that failed are done), or `Paging`.
    pub fn set_presence(
        &mut self,
        ipa: Ipa,
        size: u64,
        presence: Presence,
    ) -> Result<(), Stage2Error> {
        let range = check_ipa_range(ipa, size)?;
        let covered = self.covering(&range)?;
        for edge in [range.start, range.end] {
            if let Some((level, true)) = self.descriptor_at(edge) {
                if !edge.is_multiple_of(granule_bytes(level)) {
                    return Err(Stage2Error::PartialRegion);
                }
            }
        }
        // A valid descriptor in a range to make present would be rewritten.
        let mut valid = false;
        self.mapping
            .walk_range(&memory_region(&range), &mut |_, descriptor, _| {
                valid |= descriptor.is_valid();
                Ok(())
            })
            .map_err(|_| Stage2Error::Paging)?;
        if valid && presence != Presence::Absent {
            return Err(Stage2Error::BreakBeforeMake);
        }
        // aarch64-paging would follow a live change with broadcast TLB invalidation, which
        // no change here needs (see above); under emulation each one stops every CPU.
        let live = self.is_active();
        if live {
            self.mapping.mark_inactive();
        }
        let result = match presence {
            Presence::Absent => self.make_absent(&range),
            Presence::Blocks | Presence::Pages => {
                self.make_present(covered, &range, presence == Presence::Pages)
            }
        };
        if live {
            self.mapping.mark_active();
        }
        result
    }

    /// Writes invalid descriptors over `range` a leaf at a time: a valid block whole (the
    /// range's ends cut none), the rest of a 2 MiB span where a level-3 table maps it (the
    /// table is freed when the span is whole); invalid blocks are left as they are. Never
    /// needs a new table.
    fn make_absent(&mut self, range: &Range<u64>) -> Result<(), Stage2Error> {
        let mut at = range.start;
        while at < range.end {
            let Some((level, valid)) = self.descriptor_at(at) else {
                return Err(Stage2Error::Paging);
            };
            let granule = granule_bytes(level.min(LEAF_LEVEL - 1));
            let end = (at - at % granule + granule).min(range.end);
            if valid || level == LEAF_LEVEL {
                let span = at..end;
                // The IPA as the PA keeps every whole block aligned, as `unmap` does.
                self.write_range(
                    &span,
                    span.start,
                    Stage2Attributes::empty(),
                    Constraints::empty(),
                    0,
                )?;
            }
            at = end;
        }
        Ok(())
    }

    /// Maps the absent `range` again, region by region, with blocks or 4 KiB pages; a region
    /// from `map_in_pieces` piece by piece, so that it keeps no block larger than its piece
    /// even where the tables above were compacted away meanwhile.
    fn make_present(
        &mut self,
        covered: Range<usize>,
        range: &Range<u64>,
        pages: bool,
    ) -> Result<(), Stage2Error> {
        for index in covered {
            let Some(&region) = self.regions.get(index) else {
                break;
            };
            let constraints = if pages {
                Constraints::NO_BLOCK_MAPPINGS
            } else {
                Constraints::empty()
            };
            let span = region.ipa.0.max(range.start)..region.end().0.min(range.end);
            let piece = if region.piece == 0 || pages {
                span.end - span.start
            } else {
                region.piece
            };
            let mut start = span.start;
            while start < span.end {
                let end = if piece == span.end - span.start {
                    span.end
                } else {
                    (start - start % piece + piece).min(span.end)
                };
                let part = start..end;
                let part_pa = region.pa.0 + (start - region.ipa.0);
                let tables = self.tables_needed(&part, part_pa, pages);
                self.write_range(
                    &part,
                    part_pa,
                    leaf_attributes(region.kind, region.perm),
                    constraints,
                    tables,
                )?;
                start = end;
            }
        }
        Ok(())
    }

    /// How many tables mapping the absent `span` at `pa` adds, given the tables there now:
    /// a level-2 table under each 1 GiB that has none and is not mapped whole by a block,
    /// and a level-3 table under each 2 MiB that has none and is not mapped whole by one.
    /// Exact, so that blocks, which mostly need none, are mapped with the pool empty.
    fn tables_needed(&self, span: &Range<u64>, pa: u64, pages: bool) -> usize {
        let mut tables = 0;
        for (granule, table_level) in [(BLOCK_1G, ROOT_LEVEL), (BLOCK_2M, LEAF_LEVEL - 1)] {
            let mut at = span.start - span.start % granule;
            while at < span.end {
                let part = at.max(span.start)..(at + granule).min(span.end);
                let part_pa = pa + (part.start - span.start);
                let block =
                    !pages && part.end - part.start == granule && part_pa.is_multiple_of(granule);
                let no_table = self
                    .descriptor_at(part.start)
                    .is_some_and(|(level, _)| level <= table_level);
                tables += usize::from(!block && no_table);
                at += granule;
            }
        }
        tables
    }

    /// The level of the descriptor, valid or not, that the walk for `ipa` ends at, and
    /// whether it is valid; `None` outside the IPA space.
    pub(super) fn descriptor_at(&self, ipa: u64) -> Option<(usize, bool)> {
        if ipa >= IPA_SPACE_BYTES {
            return None;
        }
        let page = ipa - ipa % PAGE_SIZE;
        let mut found = None;
        self.mapping
            .walk_range(
                &memory_region(&(page..page + PAGE_SIZE)),
                &mut |_, descriptor, level| {
                    found = Some((level, descriptor.is_valid()));
                    Ok(())
                },
            )
            .ok()?;
        found
    }
}

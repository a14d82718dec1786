//! Stage-2 translation tables for one guest, built on aarch64-paging's `Stage2` regime.
//!
//! Layout: 4 KiB granule, a 39-bit IPA space (`VTCR_EL2.T0SZ` = 25) and a walk that starts at
//! level 1 with a single 4 KiB root table of 512 entries, each covering 1 GiB. aarch64-paging
//! picks 1 GiB and 2 MiB blocks wherever the IPA, the PA and the size allow.
//!
//! Next to the tables, `Stage2Table` keeps a sorted list of the regions it mapped, so overlap
//! checks and queries never walk the tables; `translate` does walk them, so tests check what
//! the MMU would see.
//!
//! The boot code programs `VTTBR_EL2` itself (VMID plus `root_pa()`) and then calls
//! `mark_active()`, which turns on aarch64-paging's break-before-make checks. While active,
//! aarch64-paging issues `TLBI IPAS2E1IS` for changed entries, which only reaches the VMID
//! currently in `VTTBR_EL2` and only stage-2-only TLB entries: after a live `unmap` or
//! `protect` the caller must also run `TLBI VMALLE1IS` (and `DSB ISH`) with this guest's VMID
//! loaded, as the Arm ARM requires for combined stage-1 and stage-2 entries.

use alloc::{vec, vec::Vec};
use core::cell::RefCell;
use core::fmt;
use core::ops::Range;
use core::ptr::NonNull;

use aarch64_paging::descriptor::{PhysicalAddress, Stage2Attributes, UpdatableDescriptor};
use aarch64_paging::paging::{Constraints, MemoryRegion, PageTable, Stage2, Translation};
use aarch64_paging::{MapError, Mapping};

use super::addr::{Ipa, Pa, BLOCK_1G, BLOCK_2M, PAGE_SIZE};
use super::frame::FrameSource;

mod attributes;
mod presence;
mod vtcr;

use attributes::{leaf_attributes, PERMISSION_MASK};
pub use attributes::{MemKind, Perm};
pub use presence::Presence;
pub use vtcr::vtcr_el2;

/// Width of the IPA space in bits (a level-1 root with the 4 KiB granule).
pub const IPA_BITS: u32 = 39;

/// Size of the IPA space in bytes (512 GiB).
pub const IPA_SPACE_BYTES: u64 = 1 << IPA_BITS;

/// Output addresses must lie below this: without FEAT_LPA2 a 4 KiB-granule descriptor holds
/// output address bits [47:12] only.
pub const PA_LIMIT_BYTES: u64 = 1 << 48;

/// The level at which the walk starts (`VTCR_EL2.SL0` says the same).
const ROOT_LEVEL: usize = 1;

/// The level whose entries are pages.
const LEAF_LEVEL: usize = 3;

/// Address bits resolved per level with the 4 KiB granule (512 entries of 8 bytes).
const BITS_PER_LEVEL: u32 = 9;

/// One mapped range of guest IPAs: the bookkeeping record kept next to the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First IPA of the region.
    pub ipa: Ipa,
    /// Size in bytes, a non-zero multiple of `PAGE_SIZE`.
    pub size: u64,
    /// PA that `ipa` translates to; the region is physically contiguous.
    pub pa: Pa,
    /// Memory attributes.
    pub kind: MemKind,
    /// Guest permissions.
    pub perm: Perm,
    /// The largest block it may be mapped with (`map_in_pieces`); 0 for no limit.
    pub piece: u64,
}

impl Region {
    /// Returns the first IPA after the region.
    #[must_use]
    pub fn end(&self) -> Ipa {
        Ipa(self.ipa.0.saturating_add(self.size))
    }

    /// Returns whether `ipa` lies inside the region.
    #[must_use]
    pub fn contains(&self, ipa: Ipa) -> bool {
        self.ipa <= ipa && ipa < self.end()
    }

    /// Returns the part of the region covering `[start, end)`, which must lie inside it.
    fn slice(&self, start: u64, end: u64) -> Self {
        Self {
            ipa: Ipa(start),
            size: end - start,
            pa: Pa(self.pa.0 + (start - self.ipa.0)),
            ..*self
        }
    }
}

/// Why a stage-2 change was refused. A refused change leaves tables and records as they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage2Error {
    /// The frame source had no free frame for a translation table.
    OutOfFrames,
    /// The range is empty.
    ZeroSize,
    /// The IPA is not 4 KiB aligned, the smallest granule stage 2 can map.
    MisalignedIpa,
    /// The PA is not 4 KiB aligned.
    MisalignedPa,
    /// The size is not a multiple of 4 KiB.
    MisalignedSize,
    /// The end of the IPA or PA range does not fit in 64 bits.
    RangeOverflow,
    /// The IPA range reaches past the 39-bit (512 GiB) IPA space.
    IpaOutOfRange,
    /// The PA range reaches past the 48 bits a 4 KiB-granule descriptor can hold.
    PaOutOfRange,
    /// The IPA range overlaps a mapped region.
    Overlap,
    /// Part of the IPA range is not mapped.
    NotMapped,
    /// The range spans several regions but cuts one: unmap takes whole regions or part of one.
    PartialRegion,
    /// Device memory must be execute-never: only XN stops speculative instruction fetches from
    /// Device memory (Arm ARM DDI 0487, "Device memory", chapter B2).
    ExecutableDevice,
    /// The table is live and the change needs break-before-make (splitting a block).
    BreakBeforeMake,
    /// aarch64-paging refused a change that had already been validated (a Janus bug).
    Paging,
}

impl fmt::Display for Stage2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = match self {
            Self::OutOfFrames => "no free frame for a stage-2 table",
            Self::ZeroSize => "empty range",
            Self::MisalignedIpa => "IPA not 4 KiB aligned",
            Self::MisalignedPa => "PA not 4 KiB aligned",
            Self::MisalignedSize => "size not a multiple of 4 KiB",
            Self::RangeOverflow => "range end overflows 64 bits",
            Self::IpaOutOfRange => "IPA range beyond the 39-bit IPA space",
            Self::PaOutOfRange => "PA range beyond 48 bits",
            Self::Overlap => "range overlaps a mapped region",
            Self::NotMapped => "range not (entirely) mapped",
            Self::PartialRegion => "range cuts a mapped region",
            Self::ExecutableDevice => "Device memory must be execute-never",
            Self::BreakBeforeMake => "live change needs break-before-make",
            Self::Paging => "page-table update refused",
        };
        f.write_str(message)
    }
}

impl From<MapError> for Stage2Error {
    fn from(error: MapError) -> Self {
        match error {
            MapError::BreakBeforeMakeViolation(_) => Self::BreakBeforeMake,
            _ => Self::Paging,
        }
    }
}

/// The frame source plus a reserve of frames taken before each table update.
///
/// aarch64-paging's `allocate_table` cannot fail, so every update first reserves an upper bound
/// of the tables it may need (failing cleanly with `OutOfFrames`) and hands the unused ones back
/// afterwards.
struct Frames<F: FrameSource> {
    source: F,
    reserve: Vec<Pa>,
}

impl<F: FrameSource> Frames<F> {
    /// Returns every reserved frame to the source.
    fn release_reserve(&mut self) {
        while let Some(pa) = self.reserve.pop() {
            // SAFETY: The frame came from `alloc_zeroed` on this source and was never handed to
            // aarch64-paging (it was still in the reserve), so nothing uses it.
            unsafe { self.source.free(pa) };
        }
    }
}

impl<F: FrameSource> Drop for Frames<F> {
    fn drop(&mut self) {
        self.release_reserve();
    }
}

/// Adapts a `FrameSource` to aarch64-paging's `Translation`. `Mapping` only lends the
/// translation out by shared reference, hence the `RefCell` for reserving frames.
struct FrameTranslation<F: FrameSource> {
    frames: RefCell<Frames<F>>,
}

impl<F: FrameSource> Translation<Stage2Attributes> for FrameTranslation<F> {
    fn allocate_table(&mut self) -> (NonNull<PageTable<Stage2Attributes>>, PhysicalAddress) {
        let frames = self.frames.get_mut();
        let pa = frames
            .reserve
            .pop()
            .or_else(|| frames.source.alloc_zeroed());
        let Some(pa) = pa else {
            // Every update reserves an upper bound of the tables it allocates (see
            // `map_tables_bound` and `split_tables_bound`), so reaching this is a Janus bug.
            panic!("stage 2: frame reserve too small for a table update");
        };
        // The `FrameSource` contract makes this pointer a zeroed, 4 KiB-aligned, exclusively
        // owned frame, which is a valid empty `PageTable` (4 KiB, 4 KiB aligned).
        let table = frames.source.pa_to_ptr(pa).cast();
        (table, PhysicalAddress(pa.to_usize()))
    }

    unsafe fn deallocate_table(&mut self, table: NonNull<PageTable<Stage2Attributes>>) {
        let frames = self.frames.get_mut();
        let pa = frames.source.ptr_to_pa(table.cast());
        // SAFETY: aarch64-paging only frees a table that `allocate_table` handed out and that
        // no descriptor references any more, so the frame came from this source. A live
        // table's frame is freed after TLB maintenance; `set_presence` frees without it,
        // under the contract it states (no vCPU of the guest runs, and each flushes its
        // VMID, walk caches included, before it runs again), so nothing uses it.
        unsafe { frames.source.free(pa) };
    }

    fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<PageTable<Stage2Attributes>> {
        // Never mutably borrowed while aarch64-paging runs: only `reserve_frames` borrows
        // mutably, between updates.
        self.frames
            .borrow()
            .source
            .pa_to_ptr(Pa(pa.0 as u64))
            .cast()
    }
}

/// A valid leaf descriptor found by walking the tables.
struct Leaf {
    /// The PA the walked IPA translates to (byte offset included).
    pa: Pa,
    /// The level of the descriptor: 1 or 2 for a block, 3 for a page.
    level: usize,
    /// The descriptor's attribute bits.
    flags: Stage2Attributes,
}

/// A guest's stage-2 translation tables and the record of what they map.
///
/// Dropping the table frees every table frame back to the source. aarch64-paging panics when a
/// table still marked active is dropped: call `mark_inactive` once `VTTBR_EL2` no longer
/// points at it.
pub struct Stage2Table<F: FrameSource> {
    mapping: Mapping<FrameTranslation<F>, Stage2>,
    /// Mapped regions, sorted by IPA, never overlapping.
    regions: Vec<Region>,
}

impl<F: FrameSource> Stage2Table<F> {
    /// Creates an empty table, allocating its level-1 root from `frames`.
    ///
    /// # Errors
    ///
    /// `OutOfFrames` if `frames` has no frame for the root (`frames` is dropped).
    pub fn new(mut frames: F) -> Result<Self, Stage2Error> {
        let root = frames.alloc_zeroed().ok_or(Stage2Error::OutOfFrames)?;
        let translation = FrameTranslation {
            frames: RefCell::new(Frames {
                source: frames,
                reserve: vec![root],
            }),
        };
        // `Mapping::new` takes the root from the reserve.
        let mapping = Mapping::new(translation, ROOT_LEVEL, Stage2);
        Ok(Self {
            mapping,
            regions: Vec::new(),
        })
    }

    /// Maps `[ipa, ipa + size)` to `[pa, pa + size)` with the given kind and permissions, using
    /// blocks where IPA, PA and size are aligned for them.
    ///
    /// # Errors
    ///
    /// `ZeroSize`, `MisalignedIpa`, `MisalignedPa`, `MisalignedSize`, `RangeOverflow`,
    /// `IpaOutOfRange`, `PaOutOfRange`, `ExecutableDevice`, `Overlap` if any byte is already
    /// mapped, `OutOfFrames`, and `BreakBeforeMake` or `Paging` from aarch64-paging.
    pub fn map(
        &mut self,
        ipa: Ipa,
        pa: Pa,
        size: u64,
        kind: MemKind,
        perm: Perm,
    ) -> Result<(), Stage2Error> {
        let (range, first) = self.check_map(ipa, pa, size, kind, perm)?;
        let tables = map_tables_bound(&range, pa.0);
        self.write_range(
            &range,
            pa.0,
            leaf_attributes(kind, perm),
            Constraints::empty(),
            tables,
        )?;
        self.record(first, ipa, size, pa, kind, perm, 0);
        Ok(())
    }

    /// The checks of `map`: the range as `start..end`, and where its record goes.
    fn check_map(
        &self,
        ipa: Ipa,
        pa: Pa,
        size: u64,
        kind: MemKind,
        perm: Perm,
    ) -> Result<(Range<u64>, usize), Stage2Error> {
        let range = check_ipa_range(ipa, size)?;
        if !pa.is_aligned(PAGE_SIZE) {
            return Err(Stage2Error::MisalignedPa);
        }
        let pa_end = pa.0.checked_add(size).ok_or(Stage2Error::RangeOverflow)?;
        if pa_end > PA_LIMIT_BYTES {
            return Err(Stage2Error::PaOutOfRange);
        }
        if kind == MemKind::Device && perm.is_executable() {
            return Err(Stage2Error::ExecutableDevice);
        }
        let first = self.first_overlapping(range.start);
        if self
            .regions
            .get(first)
            .is_some_and(|region| region.ipa.0 < range.end)
        {
            return Err(Stage2Error::Overlap);
        }
        Ok((range, first))
    }

    /// Records a mapped region at index `at` of the sorted records.
    #[allow(clippy::too_many_arguments, reason = "a record's fields")]
    fn record(
        &mut self,
        at: usize,
        ipa: Ipa,
        size: u64,
        pa: Pa,
        kind: MemKind,
        perm: Perm,
        piece: u64,
    ) {
        self.regions.insert(
            at,
            Region {
                ipa,
                size,
                pa,
                kind,
                perm,
                piece,
            },
        );
    }

    /// Unmaps `[ipa, ipa + size)`, which must be either exactly a run of whole adjacent regions
    /// or a part of one region (whose record is then split). Tables left empty are freed.
    ///
    /// # Errors
    ///
    /// `ZeroSize`, `MisalignedIpa`, `MisalignedSize`, `RangeOverflow`, `IpaOutOfRange`,
    /// `NotMapped` if any page is unmapped, `PartialRegion`, `OutOfFrames` (splitting a block
    /// needs tables), `BreakBeforeMake` if that block is live, or `Paging`.
    pub fn unmap(&mut self, ipa: Ipa, size: u64) -> Result<(), Stage2Error> {
        let range = check_ipa_range(ipa, size)?;
        let covered = self.covering(&range)?;
        let records = &self.regions[covered.clone()];
        if records.len() > 1 && !whole_regions(records, &range) {
            return Err(Stage2Error::PartialRegion);
        }
        self.check_live_split(&range)?;

        // Flags without VALID write invalid descriptors. Passing the range start as the PA
        // keeps every whole chunk "aligned", so aarch64-paging clears whole blocks instead of
        // splitting them.
        self.write_range(
            &range,
            range.start,
            Stage2Attributes::empty(),
            Constraints::empty(),
            split_tables_bound(&range),
        )?;
        self.mapping.compact_subtables();

        let mut remaining = Vec::new();
        for region in &self.regions[covered.clone()] {
            if region.ipa.0 < range.start {
                remaining.push(region.slice(region.ipa.0, range.start));
            }
            if region.end().0 > range.end {
                remaining.push(region.slice(range.end, region.end().0));
            }
        }
        self.regions.splice(covered, remaining);
        Ok(())
    }

    /// Changes the permissions of `[ipa, ipa + size)`, which may span several regions but must
    /// be mapped throughout; records are split at the range's edges.
    ///
    /// # Errors
    ///
    /// `ZeroSize`, `MisalignedIpa`, `MisalignedSize`, `RangeOverflow`, `IpaOutOfRange`,
    /// `NotMapped` (an absent part too), `ExecutableDevice`, `OutOfFrames` (splitting a block
    /// needs tables), `BreakBeforeMake` if that block is live, or `Paging`.
    pub fn protect(&mut self, ipa: Ipa, size: u64, perm: Perm) -> Result<(), Stage2Error> {
        let range = check_ipa_range(ipa, size)?;
        let covered = self.covering(&range)?;
        if perm.is_executable()
            && self.regions[covered.clone()]
                .iter()
                .any(|region| region.kind == MemKind::Device)
        {
            return Err(Stage2Error::ExecutableDevice);
        }
        self.check_live_split(&range)?;
        // An absent part (`set_presence`) has no descriptor to change: refuse before any
        // change, rather than stop halfway.
        let mut absent = false;
        self.mapping
            .walk_range(&memory_region(&range), &mut |_, descriptor, _| {
                absent |= !descriptor.is_valid();
                Ok(())
            })
            .map_err(|_| Stage2Error::Paging)?;
        if absent {
            return Err(Stage2Error::NotMapped);
        }

        let set = perm.attributes();
        // `modify_flags` applies `clear` after `set`, so clear only the bits `set` leaves out.
        let clear = PERMISSION_MASK.difference(set);
        let update = move |_: &MemoryRegion,
                           descriptor: &mut UpdatableDescriptor<Stage2Attributes>|
              -> Result<(), ()> {
            if !descriptor.flags().contains(Stage2Attributes::VALID) {
                return Err(());
            }
            descriptor.modify_flags(set, clear)
        };
        self.with_reserve(split_tables_bound(&range), |mapping| {
            mapping.modify_range(&memory_region(&range), &update)
        })?;

        let mut pieces = Vec::new();
        for region in &self.regions[covered.clone()] {
            let inner_start = region.ipa.0.max(range.start);
            let inner_end = region.end().0.min(range.end);
            if region.ipa.0 < inner_start {
                pieces.push(region.slice(region.ipa.0, inner_start));
            }
            pieces.push(Region {
                perm,
                ..region.slice(inner_start, inner_end)
            });
            if inner_end < region.end().0 {
                pieces.push(region.slice(inner_end, region.end().0));
            }
        }
        self.regions.splice(covered, pieces);
        Ok(())
    }

    /// Translates `ipa` by walking the tables, as the MMU would: the PA (byte offset included),
    /// kind and permissions, or `None` if the IPA is unmapped or outside the IPA space.
    #[must_use]
    pub fn translate(&self, ipa: Ipa) -> Option<(Pa, MemKind, Perm)> {
        let leaf = self.leaf(ipa)?;
        // Without the access flag the MMU raises an Access flag fault instead.
        if !leaf.flags.contains(Stage2Attributes::ACCESS_FLAG) {
            return None;
        }
        let kind = MemKind::from_descriptor(leaf.flags)?;
        let perm = Perm::from_descriptor(leaf.flags)?;
        Some((leaf.pa, kind, perm))
    }

    /// Returns the level of the valid leaf descriptor that translates `ipa`: 1 or 2 for a
    /// block, 3 for a page; `None` if there is none.
    #[must_use]
    pub fn leaf_level(&self, ipa: Ipa) -> Option<usize> {
        self.leaf(ipa).map(|leaf| leaf.level)
    }

    /// Returns the mapped regions in IPA order.
    pub fn regions(&self) -> impl ExactSizeIterator<Item = &Region> + '_ {
        self.regions.iter()
    }

    /// Returns the region containing `ipa`, from the records (no table walk).
    #[must_use]
    pub fn region_containing(&self, ipa: Ipa) -> Option<&Region> {
        self.regions
            .get(self.first_overlapping(ipa.0))
            .filter(|region| region.contains(ipa))
    }

    /// Returns the PA of the level-1 root table, for `VTTBR_EL2.BADDR`.
    #[must_use]
    pub fn root_pa(&self) -> Pa {
        Pa(self.mapping.root_address().0 as u64)
    }

    /// Records that `VTTBR_EL2` now points at this table on some CPU, so later changes are
    /// checked for break-before-make and followed by TLB maintenance.
    pub fn mark_active(&self) {
        self.mapping.mark_active();
    }

    /// Records that one CPU no longer uses this table.
    ///
    /// # Panics
    ///
    /// If called more often than `mark_active` (a Janus bug).
    pub fn mark_inactive(&self) {
        self.mapping.mark_inactive();
    }

    /// Returns whether the table is marked active on any CPU.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.mapping.active()
    }

    /// Returns the index of the first region that ends after `ipa`.
    fn first_overlapping(&self, ipa: u64) -> usize {
        self.regions.partition_point(|region| region.end().0 <= ipa)
    }

    /// Returns the indices of the regions that together cover `range` without gaps.
    fn covering(&self, range: &Range<u64>) -> Result<Range<usize>, Stage2Error> {
        let first = self.first_overlapping(range.start);
        let mut index = first;
        let mut covered_to = range.start;
        while covered_to < range.end {
            match self.regions.get(index) {
                Some(region) if region.ipa.0 <= covered_to => covered_to = region.end().0,
                _ => return Err(Stage2Error::NotMapped),
            }
            index += 1;
        }
        Ok(first..index)
    }

    /// Writes leaf descriptors with `flags` over `span`, mapping it to `pa` on (without
    /// `VALID` they are invalid), with `tables` frames reserved for the tables aarch64-paging
    /// may add.
    fn write_range(
        &mut self,
        span: &Range<u64>,
        pa: u64,
        flags: Stage2Attributes,
        constraints: Constraints,
        tables: usize,
    ) -> Result<(), Stage2Error> {
        self.with_reserve(tables, |mapping| {
            mapping.map_range(
                &memory_region(span),
                PhysicalAddress(usize_from(pa)),
                flags,
                constraints,
            )
        })
    }

    /// Runs one aarch64-paging update with `tables` frames reserved for new tables, then
    /// returns the unused frames.
    fn with_reserve(
        &mut self,
        tables: usize,
        update: impl FnOnce(&mut Mapping<FrameTranslation<F>, Stage2>) -> Result<(), MapError>,
    ) -> Result<(), Stage2Error> {
        self.reserve_frames(tables)?;
        let result = update(&mut self.mapping);
        self.release_reserve();
        result.map_err(Stage2Error::from)
    }

    /// Fills the reserve up to `count` frames, or returns them all and fails.
    fn reserve_frames(&self, count: usize) -> Result<(), Stage2Error> {
        let mut frames = self
            .mapping
            .translation()
            .frames
            .try_borrow_mut()
            .map_err(|_| Stage2Error::Paging)?;
        while frames.reserve.len() < count {
            match frames.source.alloc_zeroed() {
                Some(pa) => frames.reserve.push(pa),
                None => {
                    frames.release_reserve();
                    return Err(Stage2Error::OutOfFrames);
                }
            }
        }
        Ok(())
    }

    /// Returns the unused reserved frames to the source.
    fn release_reserve(&self) {
        if let Ok(mut frames) = self.mapping.translation().frames.try_borrow_mut() {
            frames.release_reserve();
        }
    }

    /// Refuses to change part of a block while the table is live: replacing a block by a
    /// table is a change of block size, which needs break-before-make (Arm ARM DDI 0487,
    /// chapter D8, "Using break-before-make when updating translation table entries").
    /// aarch64-paging catches this only when the block's attributes change, not for a
    /// same-permission `protect`.
    fn check_live_split(&self, range: &Range<u64>) -> Result<(), Stage2Error> {
        if !self.is_active() {
            return Ok(());
        }
        let cuts = |edge: u64, probe: u64| {
            self.leaf(Ipa(probe))
                .is_some_and(|leaf| !edge.is_multiple_of(granule_bytes(leaf.level)))
        };
        if cuts(range.start, range.start) || cuts(range.end, range.end - 1) {
            return Err(Stage2Error::BreakBeforeMake);
        }
        Ok(())
    }

    /// Walks the tables for the leaf descriptor covering `ipa`.
    fn leaf(&self, ipa: Ipa) -> Option<Leaf> {
        if ipa.0 >= IPA_SPACE_BYTES {
            return None;
        }
        let page = ipa.align_down(PAGE_SIZE).0;
        let mut found = None;
        self.mapping
            .walk_range(
                &memory_region(&(page..page + PAGE_SIZE)),
                &mut |_, descriptor, level| {
                    if descriptor.is_valid() {
                        let offset = ipa.0 & (granule_bytes(level) - 1);
                        found = Some(Leaf {
                            pa: Pa(descriptor.output_address().0 as u64 + offset),
                            level,
                            flags: descriptor.flags(),
                        });
                    }
                    Ok(())
                },
            )
            .ok()?;
        found
    }
}

/// Whether `range` starts where the first of `records` starts and ends where the last ends
/// (the records covering it without gaps, from `covering`).
fn whole_regions(records: &[Region], range: &Range<u64>) -> bool {
    let starts_whole = records
        .first()
        .is_some_and(|first| first.ipa.0 == range.start);
    let ends_whole = records.last().is_some_and(|last| last.end().0 == range.end);
    starts_whole && ends_whole
}

/// Checks an IPA range for `map`, `unmap` and `protect` and returns it as `start..end`.
fn check_ipa_range(ipa: Ipa, size: u64) -> Result<Range<u64>, Stage2Error> {
    if size == 0 {
        return Err(Stage2Error::ZeroSize);
    }
    if !ipa.is_aligned(PAGE_SIZE) {
        return Err(Stage2Error::MisalignedIpa);
    }
    if !size.is_multiple_of(PAGE_SIZE) {
        return Err(Stage2Error::MisalignedSize);
    }
    let end = ipa.0.checked_add(size).ok_or(Stage2Error::RangeOverflow)?;
    if end > IPA_SPACE_BYTES {
        return Err(Stage2Error::IpaOutOfRange);
    }
    Ok(ipa.0..end)
}

/// Converts an address already checked to lie in the IPA or PA space (lossless on 64-bit).
fn usize_from(value: u64) -> usize {
    value as usize
}

/// Returns aarch64-paging's region for a page-aligned `range`.
fn memory_region(range: &Range<u64>) -> MemoryRegion {
    MemoryRegion::new(usize_from(range.start), usize_from(range.end))
}

/// Returns the bytes one descriptor maps at `level` (4 KiB at level 3, 2 MiB at 2, 1 GiB at 1).
fn granule_bytes(level: usize) -> u64 {
    let levels_below = LEAF_LEVEL.saturating_sub(level) as u32;
    PAGE_SIZE << (BITS_PER_LEVEL * levels_below)
}

/// Returns how many `granule`-sized chunks `range` touches.
fn chunks_touched(range: &Range<u64>, granule: u64) -> usize {
    let first = range.start / granule;
    let last = range.end.div_ceil(granule);
    usize_from(last - first)
}

/// Returns how many of the chunks `range` touches it covers only in part (0, 1 or 2).
fn partial_chunks(range: &Range<u64>, granule: u64) -> usize {
    let edges = usize::from(!range.start.is_multiple_of(granule))
        + usize::from(!range.end.is_multiple_of(granule));
    edges.min(chunks_touched(range, granule))
}

/// Upper bound on the tables `map_range` allocates to map `range` at `pa`: at each block size
/// (1 GiB under the level-1 root, 2 MiB under level 2) a chunk needs a next-level table unless
/// the range covers it whole and the PA is aligned for a block there. Existing tables only
/// lower the need.
fn map_tables_bound(range: &Range<u64>, pa: u64) -> usize {
    [BLOCK_1G, BLOCK_2M]
        .into_iter()
        .map(|granule| {
            if (range.start ^ pa).is_multiple_of(granule) {
                partial_chunks(range, granule)
            } else {
                chunks_touched(range, granule)
            }
        })
        .sum()
}

/// Upper bound on the tables an unmap or permission change of `range` allocates: only blocks
/// cut by the range's edges are split, one table per cut block at each block size.
fn split_tables_bound(range: &Range<u64>) -> usize {
    [BLOCK_1G, BLOCK_2M]
        .into_iter()
        .map(|granule| partial_chunks(range, granule))
        .sum()
}

#[cfg(test)]
mod tests;

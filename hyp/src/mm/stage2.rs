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

/// Memory type bits (`MemAttr[3:0]`, descriptor bits [5:2]).
const MEMATTR_MASK: Stage2Attributes =
    Stage2Attributes::MEMATTR_NORMAL_INNER_WB.union(Stage2Attributes::MEMATTR_NORMAL_OUTER_WB);

/// Shareability bits (`SH[1:0]`, descriptor bits [9:8]).
const SH_MASK: Stage2Attributes = Stage2Attributes::SH_INNER;

/// Access permission bits (`S2AP[1:0]`, descriptor bits [7:6]).
const S2AP_MASK: Stage2Attributes = Stage2Attributes::S2AP_ACCESS_RW;

/// Every bit a permission change may touch.
const PERMISSION_MASK: Stage2Attributes = S2AP_MASK.union(Stage2Attributes::XN);

/// What kind of memory a region is, which fixes its stage-2 memory attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemKind {
    /// RAM: Normal memory, inner and outer write-back cacheable, inner shareable.
    Normal,
    /// MMIO: Device-nGnRE (no gathering, no reordering, early write acknowledgement).
    Device,
}

impl MemKind {
    /// Returns the `MemAttr` and `SH` bits for this kind.
    fn attributes(self) -> Stage2Attributes {
        match self {
            Self::Normal => {
                Stage2Attributes::MEMATTR_NORMAL_INNER_WB
                    | Stage2Attributes::MEMATTR_NORMAL_OUTER_WB
                    | Stage2Attributes::SH_INNER
            }
            // Device memory is always treated as outer shareable, so SH stays 0.
            Self::Device => Stage2Attributes::MEMATTR_DEVICE_nGnRE,
        }
    }

    /// Recognises the attributes `attributes` wrote, or `None` for any other encoding.
    fn from_descriptor(flags: Stage2Attributes) -> Option<Self> {
        let memory_bits = flags & (MEMATTR_MASK | SH_MASK);
        [Self::Normal, Self::Device]
            .into_iter()
            .find(|kind| kind.attributes() == memory_bits)
    }
}

/// What a guest may do with a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Perm {
    /// Read, write and execute.
    ReadWriteExecute,
    /// Read and write; execute-never.
    ReadWrite,
    /// Read only; execute-never.
    ReadOnly,
    /// Read and execute, no write.
    ReadExecute,
}

impl Perm {
    /// Returns whether the guest may write.
    #[must_use]
    pub fn is_writable(self) -> bool {
        matches!(self, Self::ReadWriteExecute | Self::ReadWrite)
    }

    /// Returns whether the guest may execute.
    #[must_use]
    pub fn is_executable(self) -> bool {
        matches!(self, Self::ReadWriteExecute | Self::ReadExecute)
    }

    /// Returns the `S2AP` and `XN` bits for this permission.
    fn attributes(self) -> Stage2Attributes {
        let access = if self.is_writable() {
            Stage2Attributes::S2AP_ACCESS_RW
        } else {
            Stage2Attributes::S2AP_ACCESS_RO
        };
        if self.is_executable() {
            access
        } else {
            access | Stage2Attributes::XN
        }
    }

    /// Recognises the bits `attributes` wrote, or `None` for any other encoding.
    fn from_descriptor(flags: Stage2Attributes) -> Option<Self> {
        let permission_bits = flags & PERMISSION_MASK;
        [
            Self::ReadWriteExecute,
            Self::ReadWrite,
            Self::ReadOnly,
            Self::ReadExecute,
        ]
        .into_iter()
        .find(|perm| perm.attributes() == permission_bits)
    }
}

/// Returns the attributes of a valid leaf (block or page) for `kind` and `perm`. The access flag
/// is set up front: Janus does not track accesses, and a clear AF would fault on first use.
fn leaf_attributes(kind: MemKind, perm: Perm) -> Stage2Attributes {
    Stage2Attributes::VALID | Stage2Attributes::ACCESS_FLAG | kind.attributes() | perm.attributes()
}

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
        // no descriptor references any more (and, if live, after TLB maintenance), so the frame
        // came from this source and nothing uses it.
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
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "read by the tests that check block selection")
    )]
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

        let tables = map_tables_bound(&range, pa.0);
        self.with_reserve(tables, |mapping| {
            mapping.map_range(
                &memory_region(&range),
                PhysicalAddress(pa.to_usize()),
                leaf_attributes(kind, perm),
                Constraints::empty(),
            )
        })?;
        self.regions.insert(
            first,
            Region {
                ipa,
                size,
                pa,
                kind,
                perm,
            },
        );
        Ok(())
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
        if records.len() > 1 {
            let starts_whole = records
                .first()
                .is_some_and(|first| first.ipa.0 == range.start);
            let ends_whole = records.last().is_some_and(|last| last.end().0 == range.end);
            if !(starts_whole && ends_whole) {
                return Err(Stage2Error::PartialRegion);
            }
        }
        self.check_live_split(&range)?;

        // Flags without VALID write invalid descriptors. Passing the range start as the PA
        // keeps every whole chunk "aligned", so aarch64-paging clears whole blocks instead of
        // splitting them.
        self.with_reserve(split_tables_bound(&range), |mapping| {
            mapping.map_range(
                &memory_region(&range),
                PhysicalAddress(usize_from(range.start)),
                Stage2Attributes::empty(),
                Constraints::empty(),
            )
        })?;
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
    /// `NotMapped`, `ExecutableDevice`, `OutOfFrames` (splitting a block needs tables),
    /// `BreakBeforeMake` if that block is live, or `Paging`.
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

// VTCR_EL2, Virtualization Translation Control Register (Arm ARM DDI 0487, register
// descriptions in chapter D23, "VTCR_EL2"):
//   [5:0]   T0SZ   IPA size is 2^(64 - T0SZ) bytes
//   [7:6]   SL0    starting level (meaning depends on TG0)
//   [9:8]   IRGN0  inner cacheability of table walks
//   [11:10] ORGN0  outer cacheability of table walks
//   [13:12] SH0    shareability of table walks
//   [15:14] TG0    granule size
//   [18:16] PS     physical (output) address size
//   [19]    VS     VMID size (0: 8 bits, the value used here)
//   [31]    RES1
// Fields above bit 19 (HA, HD, NSW, NSA, ...) stay 0: no hardware access-flag or dirty
// management.

/// Bit position of `VTCR_EL2.T0SZ`.
const VTCR_T0SZ_SHIFT: u32 = 0;
/// `T0SZ` for the 39-bit IPA space.
const VTCR_T0SZ_39_BITS: u64 = (u64::BITS - IPA_BITS) as u64;
/// Bit position of `VTCR_EL2.SL0`.
const VTCR_SL0_SHIFT: u32 = 6;
/// `SL0` = 0b01: with the 4 KiB granule, start the walk at level 1.
const VTCR_SL0_4K_LEVEL1: u64 = 0b01;
/// Bit position of `VTCR_EL2.IRGN0`.
const VTCR_IRGN0_SHIFT: u32 = 8;
/// Bit position of `VTCR_EL2.ORGN0`.
const VTCR_ORGN0_SHIFT: u32 = 10;
/// `IRGN0`/`ORGN0` = 0b01: Normal memory, write-back, read-allocate, write-allocate.
const VTCR_RGN_WB_RA_WA: u64 = 0b01;
/// Bit position of `VTCR_EL2.SH0`.
const VTCR_SH0_SHIFT: u32 = 12;
/// `SH0` = 0b11: inner shareable.
const VTCR_SH0_INNER: u64 = 0b11;
/// Bit position of `VTCR_EL2.TG0`.
const VTCR_TG0_SHIFT: u32 = 14;
/// `TG0` = 0b00: 4 KiB granule.
const VTCR_TG0_4K: u64 = 0b00;
/// Bit position of `VTCR_EL2.PS`.
const VTCR_PS_SHIFT: u32 = 16;
/// Bit 31 is RES1.
const VTCR_RES1: u64 = 1 << 31;

/// `PS` encodings by physical address size in bits (the same table as
/// `ID_AA64MMFR0_EL1.PARange`).
const VTCR_PS_BY_PA_BITS: [(u32, u64); 7] = [
    (32, 0b000),
    (36, 0b001),
    (40, 0b010),
    (42, 0b011),
    (44, 0b100),
    (48, 0b101),
    (52, 0b110),
];

/// Computes `VTCR_EL2` for tables built by `Stage2Table`: 39-bit IPA space, 4 KiB granule,
/// walk from level 1, table walks write-back write-allocate and inner shareable, 8-bit VMID,
/// and `PS` from the CPU's physical address size in bits (`ID_AA64MMFR0_EL1.PARange` decoded:
/// 32, 36, 40, 42, 44, 48 or 52). Other widths round down to the next listed one (below 32
/// gives 32). With the 4 KiB granule and no FEAT_LPA2, `PS` = 52 bits acts as 48 bits, which is
/// also the most these descriptors hold.
#[must_use]
pub fn vtcr_el2(pa_range_bits: u32) -> u64 {
    let ps = VTCR_PS_BY_PA_BITS
        .iter()
        .rev()
        .find(|&&(bits, _)| bits <= pa_range_bits)
        .map_or(0, |&(_, encoding)| encoding);
    VTCR_RES1
        | (ps << VTCR_PS_SHIFT)
        | (VTCR_TG0_4K << VTCR_TG0_SHIFT)
        | (VTCR_SH0_INNER << VTCR_SH0_SHIFT)
        | (VTCR_RGN_WB_RA_WA << VTCR_ORGN0_SHIFT)
        | (VTCR_RGN_WB_RA_WA << VTCR_IRGN0_SHIFT)
        | (VTCR_SL0_4K_LEVEL1 << VTCR_SL0_SHIFT)
        | (VTCR_T0SZ_39_BITS << VTCR_T0SZ_SHIFT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::frame::{HeapFrames, PoolFrames};

    const RAM_IPA: Ipa = Ipa(0x4000_0000);
    const RAM_PA: Pa = Pa(0x8_0020_0000);
    const MIB: u64 = 1024 * 1024;

    fn table(frames: &mut HeapFrames) -> Stage2Table<&mut HeapFrames> {
        Stage2Table::new(frames).unwrap()
    }

    fn records<F: FrameSource>(table: &Stage2Table<F>) -> Vec<Region> {
        table.regions().copied().collect()
    }

    fn region(ipa: u64, size: u64, pa: u64, kind: MemKind, perm: Perm) -> Region {
        Region {
            ipa: Ipa(ipa),
            size,
            pa: Pa(pa),
            kind,
            perm,
        }
    }

    #[test]
    fn new_table_holds_only_the_root() {
        let mut frames = HeapFrames::new();
        let table = table(&mut frames);
        assert!(table.root_pa().is_aligned(PAGE_SIZE));
        assert_eq!(table.regions().len(), 0);
        assert_eq!(table.translate(Ipa(0)), None);
        drop(table);
        assert_eq!(frames.live(), 0);
    }

    #[test]
    fn aligned_ram_maps_with_2m_blocks_and_translates() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(
                RAM_IPA,
                RAM_PA,
                4 * MIB,
                MemKind::Normal,
                Perm::ReadWriteExecute,
            )
            .unwrap();
        for offset in [0, 0x1234, 2 * MIB + 0x10, 4 * MIB - 1] {
            let ipa = Ipa(RAM_IPA.0 + offset);
            assert_eq!(
                table.translate(ipa),
                Some((
                    Pa(RAM_PA.0 + offset),
                    MemKind::Normal,
                    Perm::ReadWriteExecute
                ))
            );
            assert_eq!(table.leaf(ipa).unwrap().level, 2, "a 2 MiB block");
        }
        assert_eq!(table.translate(Ipa(RAM_IPA.0 + 4 * MIB)), None);
        assert_eq!(table.translate(Ipa(RAM_IPA.0 - 1)), None);
        drop(table);
        assert_eq!(frames.live(), 0);
    }

    #[test]
    fn gib_aligned_ram_maps_with_a_1g_block_and_no_subtable() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(
                RAM_IPA,
                Pa(0x1_0000_0000),
                BLOCK_1G,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        let leaf = table.leaf(Ipa(RAM_IPA.0 + 0x12_3456)).unwrap();
        assert_eq!(leaf.level, 1);
        assert_eq!(leaf.pa, Pa(0x1_0012_3456));
        drop(table);
        assert_eq!(frames.live(), 0);
    }

    #[test]
    fn single_page_maps_at_level_3() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(
                Ipa(0x1000_3000),
                Pa(0x9000_7000),
                PAGE_SIZE,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        let leaf = table.leaf(Ipa(0x1000_3abc)).unwrap();
        assert_eq!(leaf.level, LEAF_LEVEL);
        assert_eq!(
            table.translate(Ipa(0x1000_3abc)),
            Some((Pa(0x9000_7abc), MemKind::Normal, Perm::ReadWrite))
        );
        assert_eq!(table.translate(Ipa(0x1000_2fff)), None);
        assert_eq!(table.translate(Ipa(0x1000_4000)), None);
    }

    #[test]
    fn pa_not_congruent_with_ipa_falls_back_to_pages() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(
                Ipa(0x20_0000),
                Pa(0x20_1000),
                4 * MIB,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        assert_eq!(table.leaf(Ipa(0x20_0000)).unwrap().level, LEAF_LEVEL);
        assert_eq!(
            table.translate(Ipa(0x5f_f008)).map(|(pa, ..)| pa),
            Some(Pa(0x60_0008))
        );
    }

    #[test]
    fn normal_memory_is_write_back_inner_shareable_with_access_flag() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(RAM_IPA, RAM_PA, BLOCK_2M, MemKind::Normal, Perm::ReadWrite)
            .unwrap();
        let flags = table.leaf(RAM_IPA).unwrap().flags;
        assert_eq!(
            flags & MEMATTR_MASK,
            Stage2Attributes::MEMATTR_NORMAL_INNER_WB | Stage2Attributes::MEMATTR_NORMAL_OUTER_WB
        );
        assert_eq!(flags & SH_MASK, Stage2Attributes::SH_INNER);
        assert_eq!(flags & S2AP_MASK, Stage2Attributes::S2AP_ACCESS_RW);
        assert!(flags.contains(Stage2Attributes::ACCESS_FLAG | Stage2Attributes::XN));
    }

    #[test]
    fn device_memory_is_ngnre_and_execute_never() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(
                Ipa(0x0900_0000),
                Pa(0x0900_0000),
                PAGE_SIZE,
                MemKind::Device,
                Perm::ReadWrite,
            )
            .unwrap();
        let flags = table.leaf(Ipa(0x0900_0000)).unwrap().flags;
        assert_eq!(flags & MEMATTR_MASK, Stage2Attributes::MEMATTR_DEVICE_nGnRE);
        assert!(flags.contains(Stage2Attributes::ACCESS_FLAG | Stage2Attributes::XN));
        assert_eq!(
            table.translate(Ipa(0x0900_0018)),
            Some((Pa(0x0900_0018), MemKind::Device, Perm::ReadWrite))
        );
    }

    #[test]
    fn executable_device_memory_is_refused() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        for perm in [Perm::ReadWriteExecute, Perm::ReadExecute] {
            assert_eq!(
                table.map(
                    Ipa(0x0900_0000),
                    Pa(0x0900_0000),
                    PAGE_SIZE,
                    MemKind::Device,
                    perm
                ),
                Err(Stage2Error::ExecutableDevice)
            );
        }
        table
            .map(
                Ipa(0x0900_0000),
                Pa(0x0900_0000),
                PAGE_SIZE,
                MemKind::Device,
                Perm::ReadOnly,
            )
            .unwrap();
        assert_eq!(
            table.protect(Ipa(0x0900_0000), PAGE_SIZE, Perm::ReadExecute),
            Err(Stage2Error::ExecutableDevice)
        );
    }

    #[test]
    fn every_permission_round_trips_through_the_descriptor() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        let perms = [
            Perm::ReadWriteExecute,
            Perm::ReadWrite,
            Perm::ReadOnly,
            Perm::ReadExecute,
        ];
        for (index, perm) in perms.into_iter().enumerate() {
            let ipa = Ipa(index as u64 * PAGE_SIZE);
            table
                .map(ipa, Pa(ipa.0 + 0x10_0000), PAGE_SIZE, MemKind::Normal, perm)
                .unwrap();
            assert_eq!(table.translate(ipa).map(|(_, _, perm)| perm), Some(perm));
        }
    }

    #[test]
    fn unmap_makes_translate_none_and_frees_tables() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(RAM_IPA, RAM_PA, 4 * MIB, MemKind::Normal, Perm::ReadWrite)
            .unwrap();
        table
            .map(
                Ipa(0x1000),
                Pa(0x5000),
                PAGE_SIZE,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        table.unmap(RAM_IPA, 4 * MIB).unwrap();
        table.unmap(Ipa(0x1000), PAGE_SIZE).unwrap();
        assert_eq!(table.translate(RAM_IPA), None);
        assert_eq!(table.translate(Ipa(RAM_IPA.0 + 3 * MIB)), None);
        assert_eq!(table.translate(Ipa(0x1000)), None);
        assert_eq!(table.regions().len(), 0);
        drop(table);
        assert_eq!(frames.live(), 0);
    }

    #[test]
    fn unmap_compacts_empty_tables_back_to_the_root() {
        let mut frames = HeapFrames::new();
        {
            let mut table = Stage2Table::new(&mut frames).unwrap();
            table
                .map(
                    Ipa(0x1000),
                    Pa(0x5000),
                    PAGE_SIZE,
                    MemKind::Normal,
                    Perm::ReadWrite,
                )
                .unwrap();
            table.unmap(Ipa(0x1000), PAGE_SIZE).unwrap();
            // Leak-free check while the table lives: only the root remains.
            let live = table.mapping.translation().frames.borrow().source.live();
            assert_eq!(live, 1);
        }
        assert_eq!(frames.live(), 0);
    }

    #[test]
    fn unmap_of_part_of_a_region_splits_its_record() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(RAM_IPA, RAM_PA, 4 * MIB, MemKind::Normal, Perm::ReadWrite)
            .unwrap();
        let hole = Ipa(RAM_IPA.0 + MIB);
        table.unmap(hole, PAGE_SIZE).unwrap();
        assert_eq!(table.translate(hole), None);
        assert_eq!(
            table.translate(Ipa(hole.0 + PAGE_SIZE)).map(|(pa, ..)| pa),
            Some(Pa(RAM_PA.0 + MIB + PAGE_SIZE))
        );
        assert_eq!(
            table.translate(Ipa(hole.0 - 1)).map(|(pa, ..)| pa),
            Some(Pa(RAM_PA.0 + MIB - 1))
        );
        let (normal, rw) = (MemKind::Normal, Perm::ReadWrite);
        assert_eq!(
            records(&table),
            vec![
                region(RAM_IPA.0, MIB, RAM_PA.0, normal, rw),
                region(
                    hole.0 + PAGE_SIZE,
                    3 * MIB - PAGE_SIZE,
                    RAM_PA.0 + MIB + PAGE_SIZE,
                    normal,
                    rw
                ),
            ]
        );
    }

    #[test]
    fn unmap_takes_a_run_of_whole_adjacent_regions() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(
                Ipa(0x10_0000),
                Pa(0x10_0000),
                0x2000,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        table
            .map(
                Ipa(0x10_2000),
                Pa(0x90_0000),
                0x1000,
                MemKind::Device,
                Perm::ReadWrite,
            )
            .unwrap();
        table.unmap(Ipa(0x10_0000), 0x3000).unwrap();
        assert_eq!(table.regions().len(), 0);
        assert_eq!(table.translate(Ipa(0x10_2000)), None);
    }

    #[test]
    fn unmap_cutting_a_region_among_several_is_refused() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(
                Ipa(0x10_0000),
                Pa(0x10_0000),
                0x2000,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        table
            .map(
                Ipa(0x10_2000),
                Pa(0x90_0000),
                0x2000,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        let before = records(&table);
        assert_eq!(
            table.unmap(Ipa(0x10_1000), 0x2000),
            Err(Stage2Error::PartialRegion)
        );
        assert_eq!(records(&table), before);
        assert!(table.translate(Ipa(0x10_1000)).is_some());
    }

    #[test]
    fn unmap_of_unmapped_range_is_refused() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        assert_eq!(table.unmap(RAM_IPA, PAGE_SIZE), Err(Stage2Error::NotMapped));
        table
            .map(
                Ipa(0x10_0000),
                Pa(0x10_0000),
                0x1000,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        table
            .map(
                Ipa(0x10_2000),
                Pa(0x10_2000),
                0x1000,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        // A gap in the middle, a page before and a page after.
        assert_eq!(
            table.unmap(Ipa(0x10_0000), 0x3000),
            Err(Stage2Error::NotMapped)
        );
        assert_eq!(
            table.unmap(Ipa(0x0f_f000), 0x2000),
            Err(Stage2Error::NotMapped)
        );
        assert_eq!(
            table.unmap(Ipa(0x10_2000), 0x2000),
            Err(Stage2Error::NotMapped)
        );
        assert_eq!(table.regions().len(), 2);
    }

    #[test]
    fn protect_to_read_only_changes_only_the_range() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(
                RAM_IPA,
                RAM_PA,
                BLOCK_2M,
                MemKind::Normal,
                Perm::ReadWriteExecute,
            )
            .unwrap();
        let page = Ipa(RAM_IPA.0 + 0x3000);
        table.protect(page, PAGE_SIZE, Perm::ReadOnly).unwrap();
        assert_eq!(
            table.translate(page),
            Some((Pa(RAM_PA.0 + 0x3000), MemKind::Normal, Perm::ReadOnly))
        );
        for neighbour in [page.0 - 1, page.0 + PAGE_SIZE] {
            assert_eq!(
                table.translate(Ipa(neighbour)),
                Some((
                    Pa(RAM_PA.0 + neighbour - RAM_IPA.0),
                    MemKind::Normal,
                    Perm::ReadWriteExecute
                ))
            );
        }
        let (normal, rwx) = (MemKind::Normal, Perm::ReadWriteExecute);
        assert_eq!(
            records(&table),
            vec![
                region(RAM_IPA.0, 0x3000, RAM_PA.0, normal, rwx),
                region(page.0, PAGE_SIZE, RAM_PA.0 + 0x3000, normal, Perm::ReadOnly),
                region(
                    page.0 + PAGE_SIZE,
                    BLOCK_2M - 0x4000,
                    RAM_PA.0 + 0x4000,
                    normal,
                    rwx
                ),
            ]
        );
    }

    #[test]
    fn protect_spans_adjacent_regions_and_keeps_blocks_whole() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(RAM_IPA, RAM_PA, BLOCK_2M, MemKind::Normal, Perm::ReadWrite)
            .unwrap();
        table
            .map(
                Ipa(RAM_IPA.0 + BLOCK_2M),
                Pa(0x20_0000),
                BLOCK_2M,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        table
            .protect(RAM_IPA, 2 * BLOCK_2M, Perm::ReadOnly)
            .unwrap();
        assert!(table.regions().all(|region| region.perm == Perm::ReadOnly));
        let leaf = table.leaf(Ipa(RAM_IPA.0 + BLOCK_2M)).unwrap();
        assert_eq!(leaf.level, 2);
        assert_eq!(
            table.translate(Ipa(RAM_IPA.0 + BLOCK_2M + 8)),
            Some((Pa(0x20_0008), MemKind::Normal, Perm::ReadOnly))
        );
    }

    #[test]
    fn protect_of_partly_unmapped_range_is_refused() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(RAM_IPA, RAM_PA, 0x2000, MemKind::Normal, Perm::ReadWrite)
            .unwrap();
        assert_eq!(
            table.protect(RAM_IPA, 0x3000, Perm::ReadOnly),
            Err(Stage2Error::NotMapped)
        );
        assert_eq!(
            table.translate(RAM_IPA).map(|(_, _, perm)| perm),
            Some(Perm::ReadWrite)
        );
    }

    #[test]
    fn misaligned_ipa_pa_and_size_are_refused() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        let (normal, rw) = (MemKind::Normal, Perm::ReadWrite);
        assert_eq!(
            table.map(Ipa(0x1800), Pa(0x2000), PAGE_SIZE, normal, rw),
            Err(Stage2Error::MisalignedIpa)
        );
        assert_eq!(
            table.map(Ipa(0x1000), Pa(0x2010), PAGE_SIZE, normal, rw),
            Err(Stage2Error::MisalignedPa)
        );
        assert_eq!(
            table.map(Ipa(0x1000), Pa(0x2000), 0x1800, normal, rw),
            Err(Stage2Error::MisalignedSize)
        );
        assert_eq!(
            table.map(Ipa(0x1000), Pa(0x2000), 0, normal, rw),
            Err(Stage2Error::ZeroSize)
        );
        assert_eq!(
            table.unmap(Ipa(0x1001), PAGE_SIZE),
            Err(Stage2Error::MisalignedIpa)
        );
        assert_eq!(
            table.protect(Ipa(0x1000), 0x10, rw),
            Err(Stage2Error::MisalignedSize)
        );
        assert_eq!(table.regions().len(), 0);
    }

    #[test]
    fn overlap_is_refused_exact_partial_enclosing_and_inside() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        let (normal, rw) = (MemKind::Normal, Perm::ReadWrite);
        table
            .map(Ipa(0x10_0000), Pa(0x10_0000), 0x4000, normal, rw)
            .unwrap();
        let attempts = [
            (0x10_0000, 0x4000),  // exact
            (0x0f_f000, 0x2000),  // partial, from below
            (0x10_3000, 0x2000),  // partial, from above
            (0x0f_0000, 0x20000), // enclosing
            (0x10_1000, 0x1000),  // inside
        ];
        for (ipa, size) in attempts {
            assert_eq!(
                table.map(Ipa(ipa), Pa(0x80_0000), size, normal, rw),
                Err(Stage2Error::Overlap),
                "{ipa:#x}+{size:#x}"
            );
        }
        // Touching at either edge is not an overlap.
        table
            .map(Ipa(0x0f_f000), Pa(0x80_0000), 0x1000, normal, rw)
            .unwrap();
        table
            .map(Ipa(0x10_4000), Pa(0x80_1000), 0x1000, normal, rw)
            .unwrap();
        assert_eq!(table.regions().len(), 3);
        let ipas: Vec<Ipa> = table.regions().map(|region| region.ipa).collect();
        assert_eq!(ipas, vec![Ipa(0x0f_f000), Ipa(0x10_0000), Ipa(0x10_4000)]);
    }

    #[test]
    fn ranges_beyond_the_ipa_or_pa_space_are_refused() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        let (normal, rw) = (MemKind::Normal, Perm::ReadWrite);
        let last_page = Ipa(IPA_SPACE_BYTES - PAGE_SIZE);
        assert_eq!(
            table.map(last_page, Pa(0x1000), 0x2000, normal, rw),
            Err(Stage2Error::IpaOutOfRange)
        );
        assert_eq!(
            table.map(Ipa(IPA_SPACE_BYTES), Pa(0x1000), PAGE_SIZE, normal, rw),
            Err(Stage2Error::IpaOutOfRange)
        );
        assert_eq!(
            table.map(Ipa(u64::MAX - 0xfff), Pa(0x1000), 0x2000, normal, rw),
            Err(Stage2Error::RangeOverflow)
        );
        assert_eq!(
            table.map(Ipa(0x1000), Pa(u64::MAX - 0xfff), 0x2000, normal, rw),
            Err(Stage2Error::RangeOverflow)
        );
        assert_eq!(
            table.map(
                Ipa(0x1000),
                Pa(PA_LIMIT_BYTES - PAGE_SIZE),
                0x2000,
                normal,
                rw
            ),
            Err(Stage2Error::PaOutOfRange)
        );
        assert_eq!(
            table.unmap(Ipa(IPA_SPACE_BYTES), PAGE_SIZE),
            Err(Stage2Error::IpaOutOfRange)
        );
        assert_eq!(table.translate(Ipa(IPA_SPACE_BYTES)), None);
        assert_eq!(table.translate(Ipa(u64::MAX)), None);
        // The very last page of the IPA space is fine.
        table
            .map(
                last_page,
                Pa(PA_LIMIT_BYTES - PAGE_SIZE),
                PAGE_SIZE,
                normal,
                rw,
            )
            .unwrap();
        assert_eq!(
            table.translate(Ipa(IPA_SPACE_BYTES - 1)).map(|(pa, ..)| pa),
            Some(Pa(PA_LIMIT_BYTES - 1))
        );
    }

    #[test]
    fn frames_are_freed_when_the_table_is_dropped() {
        let mut frames = HeapFrames::new();
        {
            let mut table = Stage2Table::new(&mut frames).unwrap();
            let (normal, rw) = (MemKind::Normal, Perm::ReadWrite);
            table
                .map(Ipa(0x1000), Pa(0x1000), PAGE_SIZE, normal, rw)
                .unwrap();
            table
                .map(
                    Ipa(0x80_0000_0000 - BLOCK_1G - 0x1000),
                    Pa(0x2000),
                    0x2000,
                    normal,
                    rw,
                )
                .unwrap();
            table.map(RAM_IPA, RAM_PA, 6 * MIB, normal, rw).unwrap();
            table
                .protect(Ipa(RAM_IPA.0 + MIB), PAGE_SIZE, Perm::ReadOnly)
                .unwrap();
        }
        assert_eq!(frames.live(), 0);
    }

    #[test]
    fn running_out_of_frames_refuses_cleanly() {
        assert_eq!(
            Stage2Table::new(HeapFrames::with_limit(0)).err(),
            Some(Stage2Error::OutOfFrames)
        );
        let mut frames = HeapFrames::with_limit(2);
        {
            let mut table = Stage2Table::new(&mut frames).unwrap();
            // A single page needs a level-2 and a level-3 table: one more than the limit allows.
            assert_eq!(
                table.map(
                    Ipa(0x1000),
                    Pa(0x1000),
                    PAGE_SIZE,
                    MemKind::Normal,
                    Perm::ReadWrite
                ),
                Err(Stage2Error::OutOfFrames)
            );
            assert_eq!(table.regions().len(), 0);
            assert_eq!(table.translate(Ipa(0x1000)), None);
            // A 1 GiB block needs no table at all.
            table
                .map(RAM_IPA, Pa(0), BLOCK_1G, MemKind::Normal, Perm::ReadWrite)
                .unwrap();
            assert_eq!(
                table.translate(Ipa(RAM_IPA.0 + 5)).map(|(pa, ..)| pa),
                Some(Pa(5))
            );
        }
        assert_eq!(frames.live(), 0);
    }

    #[test]
    fn reserve_bounds_cover_every_table_an_update_allocates() {
        let cases = [
            (0x0, 0x0, PAGE_SIZE),
            (0x1000, 0x1000, 3 * BLOCK_1G),
            (0x1000, 0x2000, 3 * MIB),
            (
                BLOCK_2M - PAGE_SIZE,
                PAGE_SIZE,
                2 * BLOCK_1G + 2 * PAGE_SIZE,
            ),
            (
                BLOCK_1G - BLOCK_2M,
                0x1234_5000 - BLOCK_2M,
                BLOCK_1G + 2 * BLOCK_2M + PAGE_SIZE,
            ),
            (0x3000, 0x3000, 2 * BLOCK_2M),
        ];
        for (ipa, pa, size) in cases {
            let range = ipa..ipa + size;
            let mut frames = HeapFrames::new();
            let mut table = Stage2Table::new(&mut frames).unwrap();
            let live = |table: &Stage2Table<&mut HeapFrames>| {
                table.mapping.translation().frames.borrow().source.live()
            };
            let before = live(&table);
            table
                .map(Ipa(ipa), Pa(pa), size, MemKind::Normal, Perm::ReadWrite)
                .unwrap();
            let allocated = live(&table) - before;
            assert!(
                allocated <= map_tables_bound(&range, pa),
                "map {ipa:#x}->{pa:#x}+{size:#x}"
            );

            // Cut the range near both ends, splitting whatever blocks sit there.
            let cut = (ipa + PAGE_SIZE)..(ipa + size - PAGE_SIZE).max(ipa + PAGE_SIZE);
            if cut.start < cut.end {
                let before = live(&table);
                let len = cut.end - cut.start;
                table.protect(Ipa(cut.start), len, Perm::ReadOnly).unwrap();
                assert!(live(&table) - before <= split_tables_bound(&cut));
                let before = live(&table);
                table.unmap(Ipa(cut.start), len).unwrap();
                assert!(live(&table) <= before + split_tables_bound(&cut));
            }
        }
    }

    #[test]
    fn live_table_refuses_to_split_a_block() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(RAM_IPA, RAM_PA, BLOCK_2M, MemKind::Normal, Perm::ReadWrite)
            .unwrap();
        table.mark_active();
        assert!(table.is_active());
        let before = records(&table);
        assert_eq!(
            table.protect(RAM_IPA, PAGE_SIZE, Perm::ReadOnly),
            Err(Stage2Error::BreakBeforeMake)
        );
        assert_eq!(
            table.unmap(RAM_IPA, PAGE_SIZE),
            Err(Stage2Error::BreakBeforeMake)
        );
        assert_eq!(records(&table), before);
        // Whole blocks may change permission live, and fresh ranges may be mapped.
        assert_eq!(
            table.protect(
                Ipa(RAM_IPA.0 + BLOCK_2M - PAGE_SIZE),
                PAGE_SIZE,
                Perm::ReadWrite
            ),
            Err(Stage2Error::BreakBeforeMake),
            "even an unchanged permission would split the live block"
        );
        assert_eq!(table.leaf(RAM_IPA).unwrap().level, 2);
        table.protect(RAM_IPA, BLOCK_2M, Perm::ReadOnly).unwrap();
        table
            .map(
                Ipa(0x1000),
                Pa(0x1000),
                PAGE_SIZE,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        assert_eq!(
            table.translate(RAM_IPA).map(|(_, _, perm)| perm),
            Some(Perm::ReadOnly)
        );
        table.mark_inactive();
        assert!(!table.is_active());
    }

    #[test]
    fn region_containing_answers_from_the_records() {
        let mut frames = HeapFrames::new();
        let mut table = table(&mut frames);
        table
            .map(RAM_IPA, RAM_PA, 0x3000, MemKind::Normal, Perm::ReadWrite)
            .unwrap();
        assert_eq!(
            table
                .region_containing(Ipa(RAM_IPA.0 + 0x2fff))
                .map(|r| r.pa),
            Some(RAM_PA)
        );
        assert_eq!(table.region_containing(Ipa(RAM_IPA.0 + 0x3000)), None);
        assert_eq!(table.region_containing(Ipa(RAM_IPA.0 - 1)), None);
    }

    #[test]
    fn pool_frames_back_a_table_on_the_host() {
        const PAGES: usize = 8;
        let layout = std::alloc::Layout::from_size_align(PAGES * 4096, 4096).unwrap();
        // SAFETY: The layout has a non-zero size.
        let buffer = unsafe { std::alloc::alloc(layout) };
        assert!(!buffer.is_null());
        let start = Pa(buffer.expose_provenance() as u64);
        {
            // SAFETY: The buffer is ours alone and, on the host, addressed by its own address.
            let pool = unsafe { PoolFrames::new(start, Pa(start.0 + (PAGES as u64) * PAGE_SIZE)) };
            let mut table = Stage2Table::new(pool).unwrap();
            table
                .map(
                    Ipa(0x1000),
                    Pa(0x4000_1000),
                    PAGE_SIZE,
                    MemKind::Normal,
                    Perm::ReadWrite,
                )
                .unwrap();
            assert_eq!(
                table.translate(Ipa(0x1008)).map(|(pa, ..)| pa),
                Some(Pa(0x4000_1008))
            );
            assert!(start <= table.root_pa());
        }
        // SAFETY: Allocated above with this layout; the pool and table are gone.
        unsafe { std::alloc::dealloc(buffer, layout) };
    }

    #[test]
    fn table_over_a_pool_can_live_in_a_static_mutex() {
        fn assert_send<T: Send>() {}
        assert_send::<Stage2Table<PoolFrames>>();
    }

    #[test]
    fn vtcr_el2_matches_hand_checked_values() {
        // RES1 0x8000_0000 | PS | SH0 inner 0x3000 | ORGN0 WBWA 0x400 | IRGN0 WBWA 0x100
        // | SL0 level 1 0x40 | T0SZ 25 0x19; PS 40 bits = 0b010 << 16 = 0x2_0000.
        assert_eq!(vtcr_el2(40), 0x8002_3559);
        // PS 48 bits = 0b101 << 16 = 0x5_0000.
        assert_eq!(vtcr_el2(48), 0x8005_3559);
        assert_eq!(vtcr_el2(32), 0x8000_3559);
        assert_eq!(vtcr_el2(44), 0x8004_3559);
        assert_eq!(vtcr_el2(52), 0x8006_3559);
        // Unlisted widths round down.
        assert_eq!(vtcr_el2(45), vtcr_el2(44));
        assert_eq!(vtcr_el2(20), vtcr_el2(32));
    }

    #[test]
    fn errors_display_a_message() {
        assert_eq!(
            alloc::format!("{}", Stage2Error::Overlap),
            "range overlaps a mapped region"
        );
    }
}

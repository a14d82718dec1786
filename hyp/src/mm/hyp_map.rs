//! Janus' own EL2 identity map of the board's RAM: its descriptors, the blocks
//! the boot CPU adds beyond the boot map, and the RAM that leaves usable.
//!
//! The boot map (`arch/aarch64/mmu.rs`, written by the entry code before any
//! Rust runs, when nothing about the board is known) has the first GiB as
//! Device memory and 1-4 GiB as RAM. Once the device tree is read, the boot CPU
//! adds the RAM the board has beyond that: a 1 GiB block for each GiB that is
//! RAM throughout, and 2 MiB blocks in a level-2 table where RAM covers a GiB
//! only in part. Nothing that is not RAM becomes Normal memory: the CPU may
//! read Normal memory speculatively, and a device there would see the reads.
//!
//! RAM that this map cannot give is left unused, and placement never sees it:
//! past what the level-1 table reaches, past the physical address size, past
//! stage 2's input range (guest RAM is identity mapped, IPA = PA), inside the
//! boot map's Device GiB, or the ragged ends of a region that are not whole
//! 2 MiB blocks.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use super::addr::{Pa, BLOCK_1G, BLOCK_2M};

/// MAIR_EL2 attribute index of Device-nGnRE memory.
pub const ATTR_DEVICE: u64 = 0;
/// MAIR_EL2 attribute index of Normal, inner/outer write-back read/write-allocate memory.
pub const ATTR_NORMAL: u64 = 1;
/// MAIR attribute encoding of Device-nGnRE.
const MAIR_DEVICE_NGNRE: u64 = 0x04;
/// MAIR attribute encoding of Normal memory, inner and outer write-back non-transient,
/// read- and write-allocate.
const MAIR_NORMAL_WB_RWA: u64 = 0xff;
/// Bits of one attribute in MAIR_EL2.
const MAIR_ATTR_BITS: u64 = 8;
/// MAIR_EL2: the two attributes above at their indices.
pub const MAIR_EL2_VALUE: u64 = (MAIR_DEVICE_NGNRE << (ATTR_DEVICE * MAIR_ATTR_BITS))
    | (MAIR_NORMAL_WB_RWA << (ATTR_NORMAL * MAIR_ATTR_BITS));

// Stage-1 descriptor bits (Arm ARM D8.3, VMSAv8-64 descriptor formats). A block
// descriptor has the same layout at level 1 (1 GiB) and level 2 (2 MiB).
/// Bits [1:0] of a valid block descriptor at level 1 or 2.
const DESC_VALID_BLOCK: u64 = 0b01;
/// Bits [1:0] of a valid table descriptor at level 0, 1 or 2.
const DESC_VALID_TABLE: u64 = 0b11;
/// Bits [1:0]: which kind of descriptor, if any.
const DESC_TYPE_MASK: u64 = 0b11;
/// Bit position of AttrIndx[2:0].
const DESC_ATTR_INDEX_SHIFT: u64 = 2;
/// AP[2:1] = 0b00: read/write at EL2. AP[1] is RES1 in the EL2 regime, so set it.
const DESC_AP_RES1: u64 = 1 << 6;
/// SH[1:0] = 0b11: inner shareable.
const DESC_SH_INNER: u64 = 0b11 << 8;
/// The access flag: set, so that the first access does not fault.
const DESC_AF: u64 = 1 << 10;
/// XN for the EL2 regime (bit 54).
const DESC_XN: u64 = 1 << 54;
/// Output address bits [47:12] of a descriptor (4 KiB granule, 48-bit output).
const DESC_ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;

/// Descriptors in one 4 KiB table.
pub const TABLE_ENTRIES: usize = 512;

const fn block(pa: u64, attr: u64, extra: u64) -> u64 {
    pa | DESC_VALID_BLOCK | (attr << DESC_ATTR_INDEX_SHIFT) | DESC_AP_RES1 | DESC_AF | extra
}

/// A block of Device-nGnRE memory at `pa`, never executable.
#[must_use]
pub const fn device_block(pa: u64) -> u64 {
    block(pa, ATTR_DEVICE, DESC_XN)
}

/// A block of RAM at `pa`: write-back, inner shareable; executable only when
/// Janus' own image may lie in it.
#[must_use]
pub const fn ram_block(pa: u64, executable: bool) -> u64 {
    let xn = if executable { 0 } else { DESC_XN };
    block(pa, ATTR_NORMAL, DESC_SH_INNER | xn)
}

/// A table descriptor pointing at the next-level table at `pa`.
#[must_use]
pub const fn table_descriptor(pa: u64) -> u64 {
    (pa & DESC_ADDRESS_MASK) | DESC_VALID_TABLE
}

/// What a descriptor already in a table is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Invalid: a valid descriptor may replace it without break-before-make.
    Invalid,
    /// A block.
    Block,
    /// A table at this physical address.
    Table(Pa),
}

/// Sorts a descriptor read from a level-1 or level-2 table.
#[must_use]
pub const fn existing(descriptor: u64) -> Existing {
    match descriptor & DESC_TYPE_MASK {
        DESC_VALID_BLOCK => Existing::Block,
        DESC_VALID_TABLE => Existing::Table(Pa(descriptor & DESC_ADDRESS_MASK)),
        _ => Existing::Invalid,
    }
}

/// The first address Janus cannot map for a personality: the least of what a
/// level-1 root reaches with `va_bits` of input, what TCR_EL2.PS lets it output
/// (`output_bits`), the CPU's physical address size (`pa_range_bits`, decoded
/// ID_AA64MMFR0_EL1.PARange) and the stage-2 input range (`ipa_bits`).
#[must_use]
pub fn reach_bytes(va_bits: u32, output_bits: u32, pa_range_bits: u32, ipa_bits: u32) -> u64 {
    let bits = va_bits
        .min(output_bits)
        .min(pa_range_bits)
        .min(ipa_bits)
        .min(u64::BITS - 1);
    1 << bits
}

/// What the boot map covers and how far Janus' map can go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapLimits {
    /// Everything below this is in the boot map already (its level-1 entries are valid).
    pub boot_end: u64,
    /// The part of the boot map that is RAM (Normal memory): `[start, end)`.
    pub boot_ram: (u64, u64),
    /// The first address Janus cannot map (see [`reach_bytes`]).
    pub reach: u64,
}

/// A block descriptor to add to Janus' map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// A 1 GiB level-1 block of RAM at this address.
    Block1G(Pa),
    /// A 2 MiB level-2 block of RAM at this address (in the level-2 table of its GiB).
    Block2M(Pa),
}

impl Mapping {
    /// The block's address and size in bytes.
    #[must_use]
    pub const fn range(self) -> (u64, u64) {
        match self {
            Mapping::Block1G(pa) => (pa.0, BLOCK_1G),
            Mapping::Block2M(pa) => (pa.0, BLOCK_2M),
        }
    }

    /// Index of the level-1 entry the block goes into (or under).
    #[must_use]
    pub const fn level1_index(self) -> usize {
        (self.range().0 / BLOCK_1G) as usize
    }

    /// Index of a 2 MiB block's entry in its level-2 table.
    #[must_use]
    pub const fn level2_index(self) -> usize {
        ((self.range().0 % BLOCK_1G) / BLOCK_2M) as usize
    }

    /// The block's descriptor: RAM, never executable (Janus runs only from its
    /// own image, in the boot map).
    #[must_use]
    pub const fn descriptor(self) -> u64 {
        ram_block(self.range().0, false)
    }
}

/// The board's RAM as Janus maps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RamMap {
    /// Blocks to add to the boot map, in address order.
    pub added: Vec<Mapping>,
    /// RAM Janus maps as Normal memory, `(base, size)` in address order: what
    /// placement may use.
    pub usable: Vec<(u64, u64)>,
    /// RAM it does not map, `(base, size)` in address order: left unused.
    pub unused: Vec<(u64, u64)>,
}

/// `[start, end)` ranges of `ram` (`(base, size)`, any order, possibly
/// overlapping), sorted and merged where they overlap or touch.
fn merged(ram: &[(u64, u64)]) -> Vec<(u64, u64)> {
    // In order by an insertion rather than a sort: a board has a handful of
    // RAM regions, and `sort_unstable` costs kilobytes of image.
    let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(ram.len());
    for &(base, size) in ram.iter().filter(|&&(_, size)| size > 0) {
        let range = (base, base.saturating_add(size));
        let at = ranges.partition_point(|&other| other <= range);
        ranges.insert(at, range);
    }
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// `[start, end)` clipped to `[low, high)`, if anything is left.
fn clip((start, end): (u64, u64), low: u64, high: u64) -> Option<(u64, u64)> {
    let (start, end) = (start.max(low), end.min(high));
    (start < end).then_some((start, end))
}

/// Appends `[start, end)` to `list` of `(base, size)`, joining it to the last
/// entry when they touch.
fn push_joined(list: &mut Vec<(u64, u64)>, (start, end): (u64, u64)) {
    match list.last_mut() {
        Some(last) if last.0 + last.1 == start => last.1 += end - start,
        _ => list.push((start, end - start)),
    }
}

/// The blocks that map `[start, end)` (both 2 MiB aligned): 1 GiB blocks
/// where a whole aligned GiB fits, 2 MiB blocks elsewhere.
fn blocks(start: u64, end: u64, out: &mut Vec<Mapping>) {
    let mut address = start;
    while address < end {
        let size = if address.is_multiple_of(BLOCK_1G) && end - address >= BLOCK_1G {
            out.push(Mapping::Block1G(Pa(address)));
            BLOCK_1G
        } else {
            out.push(Mapping::Block2M(Pa(address)));
            BLOCK_2M
        };
        address += size;
    }
}

/// Which blocks Janus adds for the board's `ram` (`(base, size)` from the
/// device tree's `/memory` nodes), and which RAM that leaves usable or unused.
#[must_use]
pub fn plan(ram: &[(u64, u64)], limits: &MapLimits) -> RamMap {
    let mut map = RamMap::default();
    let boot_ram_end = limits.boot_ram.1.min(limits.boot_end).min(limits.reach);
    for region in merged(ram) {
        // At most two usable parts per region: in the boot map's RAM, and above it.
        let mut parts: Vec<(u64, u64)> = Vec::with_capacity(2);
        if let Some(part) = clip(region, limits.boot_ram.0, boot_ram_end) {
            parts.push(part);
        }
        if let Some((start, end)) = clip(region, limits.boot_end, limits.reach) {
            let (start, end) = (start.next_multiple_of(BLOCK_2M), end / BLOCK_2M * BLOCK_2M);
            if start < end {
                blocks(start, end, &mut map.added);
                parts.push((start, end));
            }
        }
        let mut cursor = region.0;
        for &part in &parts {
            if cursor < part.0 {
                push_joined(&mut map.unused, (cursor, part.0));
            }
            push_joined(&mut map.usable, part);
            cursor = part.1;
        }
        if cursor < region.1 {
            push_joined(&mut map.unused, (cursor, region.1));
        }
    }
    map
}

#[cfg(test)]
mod tests;

//! Where each personality's RAM goes in physical memory.
//!
//! Guest IPA equals physical address for personalities (as in Bao), so an
//! address one personality probes means the same thing to the other and to the
//! isolation tests. Personalities with a fixed `ram_base` keep it; the others
//! are placed from the top of RAM downwards, 2 MiB aligned, around what Janus,
//! the boot device tree and the boot bundle occupy.

use alloc::vec::Vec;

/// Alignment of personality RAM: one stage-2 level-2 block.
pub const RAM_ALIGN: u64 = 2 * 1024 * 1024;

/// Why RAM could not be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementError {
    /// Personality `index` asked for a fixed base that is not free RAM.
    FixedBaseUnavailable {
        /// Index in the configuration.
        index: usize,
    },
    /// Not enough free RAM for personality `index`.
    OutOfMemory {
        /// Index in the configuration.
        index: usize,
    },
}

// The text `{:?}` gave when boot printed the error that way, without `Debug`'s
// struct builder.
impl core::fmt::Display for PlacementError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (name, index) = match *self {
            Self::FixedBaseUnavailable { index } => ("FixedBaseUnavailable", index),
            Self::OutOfMemory { index } => ("OutOfMemory", index),
        };
        write!(formatter, "{name} {{ index: {index} }}")
    }
}

/// One request: (size, optional fixed base).
pub type Request = (u64, Option<u64>);

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

fn inside(inner: (u64, u64), outer: (u64, u64)) -> bool {
    inner.0 >= outer.0 && inner.0.saturating_add(inner.1) <= outer.0.saturating_add(outer.1)
}

/// Places every request inside `ram` avoiding `reserved` and each other.
///
/// # Errors
/// The first request that cannot be placed.
pub fn place(
    requests: &[Request],
    ram: &[(u64, u64)],
    reserved: &[(u64, u64)],
) -> Result<Vec<(u64, u64)>, PlacementError> {
    let mut taken: Vec<(u64, u64)> = reserved.to_vec();
    let mut placed: Vec<Option<(u64, u64)>> = alloc::vec![None; requests.len()];
    for (index, &(size, base)) in requests.iter().enumerate() {
        if let Some(base) = base {
            let range = (base, size);
            let free = ram.iter().any(|&region| inside(range, region))
                && !taken.iter().any(|&used| overlaps(range, used));
            if !free {
                return Err(PlacementError::FixedBaseUnavailable { index });
            }
            taken.push(range);
            placed[index] = Some(range);
        }
    }
    for (index, &(size, base)) in requests.iter().enumerate() {
        if base.is_some() {
            continue;
        }
        let range =
            find_top_down(size, ram, &taken).ok_or(PlacementError::OutOfMemory { index })?;
        taken.push(range);
        placed[index] = Some(range);
    }
    Ok(placed.into_iter().flatten().collect())
}

fn find_top_down(size: u64, ram: &[(u64, u64)], taken: &[(u64, u64)]) -> Option<(u64, u64)> {
    // Highest base first, regions with equal bases in `ram`'s order. An
    // insertion rather than a sort: a board has a handful of RAM regions, and
    // `sort_by_key` costs kilobytes of image.
    let mut regions: Vec<(u64, u64)> = Vec::with_capacity(ram.len());
    for &region in ram {
        let at = regions.partition_point(|&(base, _)| base >= region.0);
        regions.insert(at, region);
    }
    for (region_base, region_size) in regions {
        let region_end = region_base.checked_add(region_size)?;
        let mut candidate_end = region_end & !(RAM_ALIGN - 1);
        while let Some(start) = candidate_end.checked_sub(size) {
            let start = start & !(RAM_ALIGN - 1);
            if start < region_base {
                break;
            }
            let range = (start, size);
            match taken.iter().find(|&&used| overlaps(range, used)) {
                None => return Some(range),
                // Slide below the lowest thing in the way.
                Some(&(used_base, _)) => candidate_end = used_base,
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_as_they_debug() {
        for error in [
            PlacementError::FixedBaseUnavailable { index: 0 },
            PlacementError::OutOfMemory { index: 12 },
        ] {
            assert_eq!(format!("{error}"), format!("{error:?}"));
        }
    }

    const MIB: u64 = 1024 * 1024;
    const RAM: (u64, u64) = (0x4000_0000, 2048 * MIB);

    #[test]
    fn places_from_the_top_without_overlap() {
        let placed = place(&[(64 * MIB, None), (64 * MIB, None)], &[RAM], &[]).unwrap();
        assert_eq!(
            placed,
            vec![(0xbc00_0000, 64 * MIB), (0xb800_0000, 64 * MIB)]
        );
    }

    #[test]
    fn slides_below_reserved_ranges() {
        let reserved = [(0xbf00_0000, MIB)];
        let placed = place(&[(64 * MIB, None)], &[RAM], &reserved).unwrap();
        assert_eq!(placed, vec![(0xbb00_0000, 64 * MIB)]);
    }

    #[test]
    fn fixed_base_is_kept_and_others_avoid_it() {
        let placed = place(
            &[(64 * MIB, None), (64 * MIB, Some(0xbc00_0000))],
            &[RAM],
            &[],
        )
        .unwrap();
        assert_eq!(placed[1], (0xbc00_0000, 64 * MIB));
        assert_eq!(placed[0], (0xb800_0000, 64 * MIB));
    }

    #[test]
    fn fixed_base_on_reserved_memory_is_refused() {
        let error = place(
            &[(64 * MIB, Some(0x4000_0000))],
            &[RAM],
            &[(0x4020_0000, MIB)],
        );
        assert_eq!(
            error,
            Err(PlacementError::FixedBaseUnavailable { index: 0 })
        );
    }

    #[test]
    fn too_much_ram_is_refused() {
        let error = place(&[(4096 * MIB, None)], &[RAM], &[]);
        assert_eq!(error, Err(PlacementError::OutOfMemory { index: 0 }));
    }
}

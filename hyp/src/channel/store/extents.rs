//! A file's block map: sorted, disjoint runs of file blocks mapped to disk blocks.

use alloc::vec::Vec;

/// File blocks `logical..logical + len` live in disk blocks `physical..`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// First file block.
    pub logical: u32,
    /// First disk block.
    pub physical: u32,
    /// Blocks (nonzero).
    pub len: u32,
}

impl Extent {
    /// One past the last file block.
    pub fn logical_end(&self) -> u64 {
        u64::from(self.logical) + u64::from(self.len)
    }

    /// One past the last disk block.
    pub fn physical_end(&self) -> u64 {
        u64::from(self.physical) + u64::from(self.len)
    }
}

/// What a file block run looks like from `block` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// `run` blocks from `block` are at disk blocks `physical..`.
    Mapped {
        /// Disk block of the first.
        physical: u32,
        /// How many blocks continue contiguously.
        run: u64,
    },
    /// `run` blocks from `block` are a hole (read as zeros); `u64::MAX - block`
    /// after the last extent.
    Hole {
        /// How many.
        run: u64,
    },
}

/// A file's extents, sorted by `logical`, disjoint, never two mergeable neighbours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtentMap {
    list: Vec<Extent>,
}

impl ExtentMap {
    /// The extents, in order.
    pub fn as_slice(&self) -> &[Extent] {
        &self.list
    }

    /// Extents in the map.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Blocks mapped.
    pub fn blocks(&self) -> u64 {
        self.list.iter().map(|extent| u64::from(extent.len)).sum()
    }

    /// A map from extents read off the disk, if they are sorted, nonempty and
    /// disjoint.
    pub fn from_sorted(list: Vec<Extent>) -> Option<Self> {
        let ordered = list.windows(2).all(|pair| match pair {
            [a, b] => a.logical_end() <= u64::from(b.logical),
            _ => true,
        });
        (ordered && list.iter().all(|e| e.len > 0)).then_some(ExtentMap { list })
    }

    /// What lies at file block `block`.
    pub fn piece(&self, block: u64) -> Piece {
        let index = self.list.partition_point(|e| e.logical_end() <= block);
        match self.list.get(index) {
            Some(e) if u64::from(e.logical) <= block => Piece::Mapped {
                physical: e.physical + (block - u64::from(e.logical)) as u32,
                run: e.logical_end() - block,
            },
            Some(e) => Piece::Hole {
                run: u64::from(e.logical) - block,
            },
            None => Piece::Hole {
                run: u64::MAX - block,
            },
        }
    }

    /// Unmaps file blocks `logical..logical + len`, handing each disk run that was
    /// behind them to `freed`.
    pub fn unmap(&mut self, logical: u64, len: u64, freed: &mut dyn FnMut(u32, u32)) {
        let end = logical.saturating_add(len);
        let first = self.list.partition_point(|e| e.logical_end() <= logical);
        let mut last = first;
        while self
            .list
            .get(last)
            .is_some_and(|e| u64::from(e.logical) < end)
        {
            last += 1;
        }
        if first == last {
            return;
        }
        let mut kept: [Option<Extent>; 2] = [None, None];
        for e in &self.list[first..last] {
            let cut_start = logical.max(u64::from(e.logical));
            let cut_end = end.min(e.logical_end());
            let offset = (cut_start - u64::from(e.logical)) as u32;
            freed(e.physical + offset, (cut_end - cut_start) as u32);
            if u64::from(e.logical) < cut_start {
                kept[0] = Some(Extent { len: offset, ..*e });
            }
            if cut_end < e.logical_end() {
                let skip = (cut_end - u64::from(e.logical)) as u32;
                kept[1] = Some(Extent {
                    logical: e.logical + skip,
                    physical: e.physical + skip,
                    len: e.len - skip,
                });
            }
        }
        self.list.splice(first..last, kept.into_iter().flatten());
    }

    /// Maps file blocks `logical..logical + len` to disk blocks `physical..`,
    /// unmapping what was there (see [`ExtentMap::unmap`]).
    pub fn map(&mut self, logical: u32, physical: u32, len: u32, freed: &mut dyn FnMut(u32, u32)) {
        if len == 0 {
            return;
        }
        self.unmap(u64::from(logical), u64::from(len), freed);
        let index = self
            .list
            .partition_point(|e| e.logical_end() <= u64::from(logical));
        let mut new = Extent {
            logical,
            physical,
            len,
        };
        let mut start = index;
        if let Some(before) = index.checked_sub(1).and_then(|i| self.list.get(i)) {
            if before.logical_end() == u64::from(logical)
                && before.physical_end() == u64::from(physical)
            {
                new = Extent {
                    logical: before.logical,
                    physical: before.physical,
                    len: before.len + len,
                };
                start = index - 1;
            }
        }
        let mut end = index;
        if let Some(after) = self.list.get(index) {
            if new.logical_end() == u64::from(after.logical)
                && new.physical_end() == u64::from(after.physical)
            {
                new.len += after.len;
                end = index + 1;
            }
        }
        self.list.splice(start..end, [new]);
    }

    /// Extents `map(logical, …, len)` could add at most (a split on each side
    /// plus the new one).
    pub const MAP_GROWTH: usize = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent(logical: u32, physical: u32, len: u32) -> Extent {
        Extent {
            logical,
            physical,
            len,
        }
    }

    #[test]
    fn contiguous_maps_merge() {
        let mut map = ExtentMap::default();
        let mut freed = Vec::new();
        map.map(0, 100, 31, &mut |s, l| freed.push((s, l)));
        map.map(31, 131, 31, &mut |s, l| freed.push((s, l)));
        assert_eq!(map.as_slice(), [extent(0, 100, 62)]);
        assert!(freed.is_empty());
    }

    #[test]
    fn remap_in_the_middle_splits_and_frees() {
        let mut map = ExtentMap::default();
        let mut freed = Vec::new();
        map.map(0, 100, 10, &mut |_, _| {});
        map.map(3, 500, 2, &mut |s, l| freed.push((s, l)));
        assert_eq!(
            map.as_slice(),
            [extent(0, 100, 3), extent(3, 500, 2), extent(5, 105, 5)]
        );
        assert_eq!(freed, [(103, 2)]);
        assert_eq!(
            map.piece(4),
            Piece::Mapped {
                physical: 501,
                run: 1
            }
        );
        assert_eq!(map.piece(10), Piece::Hole { run: u64::MAX - 10 });
        map.unmap(2, u64::MAX, &mut |s, l| freed.push((s, l)));
        assert_eq!(map.as_slice(), [extent(0, 100, 2)]);
        assert_eq!(freed, [(103, 2), (102, 1), (500, 2), (105, 5)]);
    }

    #[test]
    fn holes_report_their_length() {
        let mut map = ExtentMap::default();
        map.map(10, 7, 2, &mut |_, _| {});
        assert_eq!(map.piece(3), Piece::Hole { run: 7 });
        assert!(ExtentMap::from_sorted(vec![extent(0, 1, 2), extent(1, 9, 1)]).is_none());
        assert!(ExtentMap::from_sorted(vec![extent(0, 1, 0)]).is_none());
    }
}

//! Sets of block ranges (free space, blocks written since the last commit, blocks
//! freed by it): extents in a B-tree, never a bitmap over the partition.

use alloc::collections::BTreeMap;

/// Disjoint, non-adjacent ranges of block numbers, `start -> length`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: BTreeMap<u32, u32>,
    blocks: u64,
}

impl RangeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Blocks in the set.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Whether the set is empty.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.ranges.iter().map(|(&start, &len)| (start, len))
    }

    /// Empties the set.
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.blocks = 0;
    }

    /// Adds `start..start + len`, which must not overlap the set (the callers keep
    /// the sets they merge disjoint; an overlap is clipped rather than counted twice).
    pub fn insert(&mut self, start: u32, len: u32) {
        if len == 0 {
            return;
        }
        self.remove(start, len);
        let mut start = start;
        let mut len = len;
        self.blocks += u64::from(len);
        if let Some((&before, &before_len)) = self.ranges.range(..start).next_back() {
            if u64::from(before) + u64::from(before_len) == u64::from(start) {
                self.ranges.remove(&before);
                start = before;
                len += before_len;
            }
        }
        if let Some(after_len) = start
            .checked_add(len)
            .and_then(|after| self.ranges.remove(&after))
        {
            len += after_len;
        }
        self.ranges.insert(start, len);
    }

    /// Moves every range of `other` into the set.
    pub fn append(&mut self, other: &mut RangeSet) {
        for (start, len) in other.iter() {
            self.insert(start, len);
        }
        other.clear();
    }

    /// Removes `start..start + len` (whatever of it is in the set).
    pub fn remove(&mut self, start: u32, len: u32) {
        let end = u64::from(start) + u64::from(len);
        if let Some((&s, &l)) = self.ranges.range(..start).next_back() {
            if u64::from(s) + u64::from(l) > u64::from(start) {
                self.remove_from(s, start, end);
            }
        }
        while let Some((&s, _)) = self.ranges.range(start..).next() {
            if u64::from(s) >= end {
                break;
            }
            self.remove_from(s, start, end);
        }
    }

    /// Cuts `start..end` out of the range at `s`, which overlaps it.
    fn remove_from(&mut self, s: u32, start: u32, end: u64) {
        let Some(l) = self.ranges.remove(&s) else {
            return;
        };
        let range_end = u64::from(s) + u64::from(l);
        let cut_start = u64::from(s).max(u64::from(start));
        let cut_end = range_end.min(end);
        self.blocks -= cut_end - cut_start;
        if u64::from(s) < cut_start {
            self.ranges.insert(s, (cut_start - u64::from(s)) as u32);
        }
        if cut_end < range_end {
            self.ranges
                .insert(cut_end as u32, (range_end - cut_end) as u32);
        }
    }

    /// How many blocks from `block` on are in the set (0 when `block` is not).
    pub fn run_at(&self, block: u32) -> u32 {
        match self.ranges.range(..=block).next_back() {
            Some((&s, &l)) if u64::from(block) < u64::from(s) + u64::from(l) => {
                (u64::from(s) + u64::from(l) - u64::from(block)) as u32
            }
            _ => 0,
        }
    }

    /// How many blocks from `block` on are outside the set (up to `limit`).
    pub fn gap_at(&self, block: u32, limit: u32) -> u32 {
        if self.run_at(block) > 0 {
            return 0;
        }
        match self.ranges.range(block..).next() {
            Some((&s, _)) => (s - block).min(limit),
            None => limit,
        }
    }

    /// Takes up to `want` blocks in one range, preferring one that starts at `goal`,
    /// then the first range at or after it, then the first range of all.
    pub fn take(&mut self, want: u32, goal: u32) -> Option<(u32, u32)> {
        if want == 0 {
            return None;
        }
        let found = if self.run_at(goal) > 0 {
            Some((goal, self.run_at(goal)))
        } else {
            self.ranges
                .range(goal..)
                .next()
                .or_else(|| self.ranges.iter().next())
                .map(|(&s, &l)| (s, l))
        };
        let (start, len) = found?;
        let len = len.min(want);
        self.remove(start, len);
        Some((start, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn ranges(set: &RangeSet) -> Vec<(u32, u32)> {
        set.iter().collect()
    }

    #[test]
    fn insert_merges_neighbours_and_remove_splits() {
        let mut set = RangeSet::new();
        set.insert(10, 5);
        set.insert(20, 5);
        set.insert(15, 5);
        assert_eq!(ranges(&set), [(10, 15)]);
        assert_eq!(set.blocks(), 15);
        set.remove(12, 3);
        assert_eq!(ranges(&set), [(10, 2), (15, 10)]);
        set.remove(0, 100);
        assert!(set.is_empty());
        assert_eq!(set.blocks(), 0);
    }

    #[test]
    fn remove_spanning_several_ranges() {
        let mut set = RangeSet::new();
        for start in [0, 10, 20, 30] {
            set.insert(start, 5);
        }
        set.remove(3, 25);
        assert_eq!(ranges(&set), [(0, 3), (30, 5)]);
        assert_eq!(set.blocks(), 8);
    }

    #[test]
    fn overlapping_insert_is_not_counted_twice() {
        let mut set = RangeSet::new();
        set.insert(0, 10);
        set.insert(5, 10);
        assert_eq!(ranges(&set), [(0, 15)]);
        assert_eq!(set.blocks(), 15);
    }

    #[test]
    fn runs_gaps_and_take() {
        let mut set = RangeSet::new();
        set.insert(10, 5);
        set.insert(30, 10);
        assert_eq!(set.run_at(12), 3);
        assert_eq!(set.run_at(15), 0);
        assert_eq!(set.gap_at(15, 100), 15);
        assert_eq!(set.gap_at(45, 7), 7);
        assert_eq!(set.take(4, 32), Some((32, 4)));
        assert_eq!(set.take(100, 50), Some((10, 5)));
        assert_eq!(set.take(100, 0), Some((30, 2)));
        assert_eq!(set.take(1, 0), Some((36, 1)));
        assert_eq!(set.blocks(), 3);
    }

    proptest::proptest! {
        #[test]
        fn matches_a_bitmap(ops in proptest::collection::vec((0u32..64, 1u32..16, proptest::bool::ANY), 0..60)) {
            let mut set = RangeSet::new();
            let mut bits = [false; 80];
            for (start, len, add) in ops {
                if add { set.insert(start, len) } else { set.remove(start, len) }
                for bit in &mut bits[start as usize..(start + len) as usize] { *bit = add; }
            }
            let mut expected = Vec::new();
            let mut index = 0;
            while index < bits.len() {
                if bits[index] {
                    let start = index;
                    while index < bits.len() && bits[index] { index += 1; }
                    expected.push((start as u32, (index - start) as u32));
                } else { index += 1; }
            }
            proptest::prop_assert_eq!(ranges(&set), expected);
            proptest::prop_assert_eq!(set.blocks(), bits.iter().filter(|&&b| b).count() as u64);
        }
    }
}

//! Sources of zeroed 4 KiB page frames for translation tables.

use core::ptr::NonNull;

use buddy_system_allocator::FrameAllocator;

use super::addr::{Pa, PAGE_SIZE};

/// A source of 4 KiB page frames that Janus can both address (through a pointer) and hand to
/// the MMU (through a physical address).
///
/// # Safety
///
/// Implementations must uphold, for every frame that `alloc_zeroed` returns and until that
/// frame is passed to `free`:
/// - the `Pa` is 4 KiB aligned and names 4 KiB of zeroed memory that nothing else uses;
/// - `pa_to_ptr(pa)` points at that memory, 4 KiB aligned and valid for reads and writes;
/// - `ptr_to_pa(pa_to_ptr(pa)) == pa`;
/// - on hardware, the `Pa` is the real physical address of the memory behind the pointer,
///   because translation tables built in the frame are read by the MMU at that address.
///
/// Stage-2 tables write to the memory behind `pa_to_ptr` without further checks.
pub unsafe trait FrameSource {
    /// Allocates one zeroed 4 KiB frame, or `None` when the source is exhausted.
    fn alloc_zeroed(&mut self) -> Option<Pa>;

    /// Returns a frame to the source.
    ///
    /// # Safety
    ///
    /// `pa` must have come from `alloc_zeroed` on this source, must not have been freed since,
    /// and nothing (no pointer, no translation table the MMU may walk) may still use it. A
    /// TLB or walk-cache entry that may still point at it must be flushed before anything
    /// can use it (see `Stage2Table::set_presence`).
    unsafe fn free(&mut self, pa: Pa);

    /// Returns a pointer through which Janus can access the frame at `pa`.
    fn pa_to_ptr(&self, pa: Pa) -> NonNull<u8>;

    /// Returns the physical address of the frame that `ptr` (from `pa_to_ptr`) points at.
    fn ptr_to_pa(&self, ptr: NonNull<u8>) -> Pa;
}

// SAFETY: Every call is forwarded to `F`, which upholds the contract itself.
unsafe impl<F: FrameSource + ?Sized> FrameSource for &mut F {
    fn alloc_zeroed(&mut self) -> Option<Pa> {
        (**self).alloc_zeroed()
    }

    unsafe fn free(&mut self, pa: Pa) {
        // SAFETY: Our caller upholds `free`'s contract for the same source.
        unsafe { (**self).free(pa) }
    }

    fn pa_to_ptr(&self, pa: Pa) -> NonNull<u8> {
        (**self).pa_to_ptr(pa)
    }

    fn ptr_to_pa(&self, ptr: NonNull<u8>) -> Pa {
        (**self).ptr_to_pa(ptr)
    }
}

/// Page frames from a physical range that the hypervisor sees identity mapped (VA == PA),
/// handed out by a buddy allocator over frame numbers.
pub struct PoolFrames {
    /// Free frames, by frame number (PA / `PAGE_SIZE`).
    allocator: FrameAllocator,
    /// First byte of the pool (page aligned).
    start: Pa,
    /// First byte after the pool (page aligned).
    end: Pa,
    /// Frames currently handed out.
    allocated: usize,
}

impl PoolFrames {
    /// Builds a pool over `[start, end)`, shrunk inwards to whole pages. Frame 0 is left out,
    /// because its address cannot be a non-null pointer.
    ///
    /// # Safety
    ///
    /// The range must be memory that nothing else uses or will use (not the hypervisor image,
    /// heap, stacks, the DTB, nor any guest's RAM), identity mapped and writable at EL2, and
    /// owned exclusively by the returned pool for as long as it or any frame it hands out lives.
    #[must_use]
    pub unsafe fn new(start: Pa, end: Pa) -> Self {
        let first = match start.align_up(PAGE_SIZE) {
            Some(first) => first.max(Pa(PAGE_SIZE)),
            None => end,
        };
        let last = end.align_down(PAGE_SIZE);
        let mut allocator = FrameAllocator::new();
        if first < last {
            allocator.add_frame(frame_number(first), frame_number(last));
        }
        Self {
            allocator,
            start: first,
            end: last.max(first),
            allocated: 0,
        }
    }

    /// Returns the number of frames the pool manages.
    #[must_use]
    pub fn total_frames(&self) -> usize {
        frame_number(self.end) - frame_number(self.start)
    }

    /// Returns the number of frames currently handed out.
    #[must_use]
    pub fn allocated_frames(&self) -> usize {
        self.allocated
    }

    /// Returns whether `pa` is the address of a frame inside the pool.
    fn owns(&self, pa: Pa) -> bool {
        pa.is_aligned(PAGE_SIZE) && self.start <= pa && pa < self.end
    }
}

/// Returns the frame number of a page-aligned address.
fn frame_number(pa: Pa) -> usize {
    pa.to_usize() / (PAGE_SIZE as usize)
}

// SAFETY: `new`'s caller gave the pool exclusive use of an identity-mapped range; the buddy
// allocator hands each frame number out once until it is freed, `alloc_zeroed` zeroes the
// frame before returning it, and the pointer is the identity-mapped address of the frame.
unsafe impl FrameSource for PoolFrames {
    fn alloc_zeroed(&mut self) -> Option<Pa> {
        let number = self.allocator.alloc(1)?;
        let pa = Pa(number as u64 * PAGE_SIZE);
        // SAFETY: The frame is inside the pool (the allocator only holds the pool's frames),
        // which `new`'s caller promised is identity mapped, writable and owned by the pool; the
        // allocator just handed it out, so nothing else uses it.
        unsafe { self.pa_to_ptr(pa).write_bytes(0, PAGE_SIZE as usize) };
        self.allocated += 1;
        Some(pa)
    }

    unsafe fn free(&mut self, pa: Pa) {
        // A frame from elsewhere would corrupt the buddy lists; the caller's contract forbids
        // it, so this only guards against a Janus bug.
        debug_assert!(self.owns(pa), "freeing {pa} which is not in the pool");
        if self.owns(pa) {
            self.allocator.dealloc(frame_number(pa), 1);
            self.allocated = self.allocated.saturating_sub(1);
        }
    }

    fn pa_to_ptr(&self, pa: Pa) -> NonNull<u8> {
        // Identity map: the frame's virtual address is its physical address. Frame 0 is never
        // in the pool, so a null address only arises from a contract breach.
        NonNull::new(core::ptr::with_exposed_provenance_mut(pa.to_usize()))
            .unwrap_or(NonNull::dangling())
    }

    fn ptr_to_pa(&self, ptr: NonNull<u8>) -> Pa {
        Pa(ptr.as_ptr().expose_provenance() as u64)
    }
}

#[cfg(test)]
pub use heap::HeapFrames;

#[cfg(test)]
mod heap {
    //! A host fake of `FrameSource` on the std allocator.

    use super::{FrameSource, Pa, PAGE_SIZE};
    use alloc::collections::BTreeMap;
    use core::ptr::NonNull;
    use std::alloc::{alloc_zeroed, dealloc, Layout};

    /// Where fake physical addresses start: far from any heap address, so mixing up a pointer
    /// and a PA shows up in tests.
    const FAKE_PA_BASE: u64 = 0x8000_0000;

    /// Zeroed 4 KiB frames from the host heap, with fake physical addresses that are never
    /// reused, so tests can count live frames and catch use of a freed one.
    pub struct HeapFrames {
        frames: BTreeMap<Pa, NonNull<u8>>,
        next_pa: Pa,
        limit: usize,
    }

    impl Default for HeapFrames {
        fn default() -> Self {
            Self::new()
        }
    }

    impl HeapFrames {
        /// Creates a source with no limit on the number of live frames.
        pub fn new() -> Self {
            Self::with_limit(usize::MAX)
        }

        /// Creates a source that refuses to have more than `limit` frames live at once.
        pub fn with_limit(limit: usize) -> Self {
            Self {
                frames: BTreeMap::new(),
                next_pa: Pa(FAKE_PA_BASE),
                limit,
            }
        }

        /// Returns the number of frames allocated and not yet freed.
        pub fn live(&self) -> usize {
            self.frames.len()
        }

        fn layout() -> Layout {
            Layout::from_size_align(PAGE_SIZE as usize, PAGE_SIZE as usize).unwrap()
        }
    }

    // SAFETY: Each frame is a fresh zeroed, page-aligned heap allocation recorded under a
    // unique fake PA; the map translates both ways until `free` deallocates it.
    unsafe impl FrameSource for HeapFrames {
        fn alloc_zeroed(&mut self) -> Option<Pa> {
            if self.frames.len() >= self.limit {
                return None;
            }
            let pa = self.next_pa;
            self.next_pa = pa.checked_add(PAGE_SIZE)?;
            // SAFETY: The layout has a non-zero size.
            let ptr = NonNull::new(unsafe { alloc_zeroed(Self::layout()) })?;
            self.frames.insert(pa, ptr);
            Some(pa)
        }

        unsafe fn free(&mut self, pa: Pa) {
            let ptr = self
                .frames
                .remove(&pa)
                .unwrap_or_else(|| panic!("freeing {pa}, which is not live"));
            // SAFETY: `ptr` came from `alloc_zeroed` with this layout and was live until the
            // `remove` above.
            unsafe { dealloc(ptr.as_ptr(), Self::layout()) };
        }

        fn pa_to_ptr(&self, pa: Pa) -> NonNull<u8> {
            *self
                .frames
                .get(&pa)
                .unwrap_or_else(|| panic!("{pa} is not a live frame"))
        }

        fn ptr_to_pa(&self, ptr: NonNull<u8>) -> Pa {
            self.frames
                .iter()
                .find(|(_, &frame)| frame == ptr)
                .map(|(&pa, _)| pa)
                .unwrap_or_else(|| panic!("{ptr:?} is not a live frame"))
        }
    }

    impl Drop for HeapFrames {
        fn drop(&mut self) {
            for ptr in self.frames.values() {
                // SAFETY: Every pointer in the map is a live allocation with this layout.
                unsafe { dealloc(ptr.as_ptr(), Self::layout()) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use std::alloc::{alloc, dealloc, Layout};

    /// A page-aligned host buffer standing in for an identity-mapped RAM range.
    struct HostRange {
        ptr: *mut u8,
        layout: Layout,
    }

    impl HostRange {
        fn new(pages: usize) -> Self {
            let layout =
                Layout::from_size_align(pages * PAGE_SIZE as usize, PAGE_SIZE as usize).unwrap();
            // SAFETY: The layout has a non-zero size.
            let ptr = unsafe { alloc(layout) };
            assert!(!ptr.is_null());
            // Dirty the memory so that zeroing on allocation is observable.
            // SAFETY: `ptr` is a fresh allocation of `layout.size()` bytes.
            unsafe { ptr.write_bytes(0xa5, layout.size()) };
            Self { ptr, layout }
        }

        fn start(&self) -> Pa {
            Pa(self.ptr.expose_provenance() as u64)
        }

        fn end(&self) -> Pa {
            Pa(self.start().0 + self.layout.size() as u64)
        }
    }

    impl Drop for HostRange {
        fn drop(&mut self) {
            // SAFETY: Allocated in `new` with this layout.
            unsafe { dealloc(self.ptr, self.layout) };
        }
    }

    fn page_bytes(frames: &impl FrameSource, pa: Pa) -> &[u8] {
        // SAFETY: The frame is live and 4 KiB long; the tests only read it while it is.
        unsafe { core::slice::from_raw_parts(frames.pa_to_ptr(pa).as_ptr(), PAGE_SIZE as usize) }
    }

    #[test]
    fn pool_hands_out_each_frame_once_zeroed_until_exhausted() {
        let range = HostRange::new(4);
        // SAFETY: The host buffer is ours alone and, on the host, addressed by its own address.
        let mut pool = unsafe { PoolFrames::new(range.start(), range.end()) };
        assert_eq!(pool.total_frames(), 4);
        let frames: Vec<Pa> = (0..4).map(|_| pool.alloc_zeroed().unwrap()).collect();
        assert_eq!(pool.alloc_zeroed(), None);
        assert_eq!(pool.allocated_frames(), 4);
        for (index, &pa) in frames.iter().enumerate() {
            assert!(pa.is_aligned(PAGE_SIZE));
            assert!(range.start() <= pa && pa < range.end());
            assert!(frames[..index].iter().all(|&other| other != pa));
            assert!(page_bytes(&pool, pa).iter().all(|&byte| byte == 0));
            assert_eq!(pool.ptr_to_pa(pool.pa_to_ptr(pa)), pa);
        }
        for pa in frames {
            // SAFETY: Allocated above and no longer used.
            unsafe { pool.free(pa) };
        }
        assert_eq!(pool.allocated_frames(), 0);
        assert!(pool.alloc_zeroed().is_some());
    }

    #[test]
    fn pool_rezeroes_a_reused_frame() {
        let range = HostRange::new(1);
        // SAFETY: As above, the host buffer is ours alone.
        let mut pool = unsafe { PoolFrames::new(range.start(), range.end()) };
        let pa = pool.alloc_zeroed().unwrap();
        // SAFETY: The frame is live and owned by this test.
        unsafe { pool.pa_to_ptr(pa).write_bytes(0xff, PAGE_SIZE as usize) };
        // SAFETY: No longer used.
        unsafe { pool.free(pa) };
        let again = pool.alloc_zeroed().unwrap();
        assert_eq!(again, pa);
        assert!(page_bytes(&pool, again).iter().all(|&byte| byte == 0));
    }

    #[test]
    fn pool_shrinks_an_unaligned_range_to_whole_pages() {
        let range = HostRange::new(3);
        // SAFETY: A sub-range of our own host buffer.
        let pool = unsafe { PoolFrames::new(Pa(range.start().0 + 1), Pa(range.end().0 - 1)) };
        assert_eq!(pool.total_frames(), 1);
        // SAFETY: An empty range hands nothing out, so it owns no memory.
        let empty = unsafe { PoolFrames::new(Pa(0x5000), Pa(0x4000)) };
        assert_eq!(empty.total_frames(), 0);
    }

    #[test]
    fn pool_never_hands_out_frame_zero() {
        // SAFETY: The pool is only queried for its size; nothing is allocated or written.
        let pool = unsafe { PoolFrames::new(Pa(0), Pa(3 * PAGE_SIZE)) };
        assert_eq!(pool.total_frames(), 2);
    }

    #[test]
    fn heap_frames_count_live_frames_and_respect_the_limit() {
        let mut frames = HeapFrames::with_limit(2);
        let first = frames.alloc_zeroed().unwrap();
        let second = frames.alloc_zeroed().unwrap();
        assert_ne!(first, second);
        assert_eq!(frames.alloc_zeroed(), None);
        assert_eq!(frames.live(), 2);
        assert!(page_bytes(&frames, first).iter().all(|&byte| byte == 0));
        assert_eq!(frames.ptr_to_pa(frames.pa_to_ptr(second)), second);
        // SAFETY: Allocated above and no longer used.
        unsafe { frames.free(first) };
        assert_eq!(frames.live(), 1);
        let third = frames.alloc_zeroed().unwrap();
        assert_ne!(third, first, "fake PAs are never reused");
    }

    #[test]
    fn mutable_reference_forwards_to_the_source() {
        fn allocate_through(mut source: impl FrameSource) -> Pa {
            let pa = source.alloc_zeroed().unwrap();
            assert_eq!(source.ptr_to_pa(source.pa_to_ptr(pa)), pa);
            pa
        }
        /// # Safety
        ///
        /// As for `FrameSource::free`.
        unsafe fn free_through(mut source: impl FrameSource, pa: Pa) {
            // SAFETY: Our caller upholds `free`'s contract.
            unsafe { source.free(pa) };
        }
        let mut frames = HeapFrames::new();
        let pa = allocate_through(&mut frames);
        assert_eq!(frames.live(), 1);
        // SAFETY: Allocated above and no longer used.
        unsafe { free_through(&mut frames, pa) };
        assert_eq!(frames.live(), 0);
    }
}

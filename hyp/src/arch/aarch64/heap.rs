//! Janus' own memory: the heap behind `alloc` and the pool of page-table frames.
//! Both are arrays in `.bss`, inside the range Janus reserves for itself.

use core::cell::UnsafeCell;
use core::ptr::NonNull;

use buddy_system_allocator::LockedHeap;
use spin::Mutex;

use crate::mm::addr::Pa;
use crate::mm::frame::{FrameSource, PoolFrames};

/// Bytes of heap: personality records, generated device trees, console
/// buffers (256 KiB), and the shared folder: the store's objects in RAM (at
/// most 2,048 of about 300 bytes, 8,192 extents of 12 to 24 bytes), the two 9P
/// servers' buffers and the audit log's (1 MiB).
pub const HEAP_BYTES: usize = 1280 * 1024;
/// Bytes of page-table frames for stage-2 tables (96 frames).
pub const FRAME_POOL_BYTES: usize = 384 * 1024;

#[repr(C, align(4096))]
struct Arena<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: the arenas are handed out once each (to the heap and to the frame
// pool) by `init`, which runs once on the boot CPU; nothing else touches them.
unsafe impl<const N: usize> Sync for Arena<N> {}

static HEAP_ARENA: Arena<HEAP_BYTES> = Arena(UnsafeCell::new([0; HEAP_BYTES]));
static FRAME_ARENA: Arena<FRAME_POOL_BYTES> = Arena(UnsafeCell::new([0; FRAME_POOL_BYTES]));

/// The global allocator (order 32 covers every size the heap can hold).
#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// The page-table frame pool; filled by `init`, then used under its lock by the boot CPU
/// (and later by whoever changes a stage-2 table).
static FRAMES: Mutex<Option<PoolFrames>> = Mutex::new(None);

/// Gives the heap and the frame pool their memory. Call once, on the boot CPU,
/// with the MMU and caches on (spin locks need exclusives on Normal memory).
pub fn init() {
    let heap = HEAP_ARENA.0.get() as usize;
    // SAFETY: the arena is a static that nothing else uses, and `init` runs once.
    unsafe { HEAP.lock().init(heap, HEAP_BYTES) };
    let start = FRAME_ARENA.0.get() as u64;
    // SAFETY: the arena is identity mapped (PA == VA in Janus' stage-1 map), used
    // by nothing else, and owned by the pool from now on.
    let pool = unsafe { PoolFrames::new(Pa(start), Pa(start + FRAME_POOL_BYTES as u64)) };
    *FRAMES.lock() = Some(pool);
}

/// Frames allocated from the pool so far, and the pool's size.
pub fn frame_usage() -> (usize, usize) {
    FRAMES.lock().as_ref().map_or((0, 0), |pool| {
        (pool.allocated_frames(), pool.total_frames())
    })
}

/// A handle on the global frame pool, for stage-2 tables.
pub struct GlobalFrames;

// SAFETY: every call forwards to the one `PoolFrames` under its lock, which
// upholds the trait's contract (distinct, zeroed, identity-mapped frames).
unsafe impl FrameSource for GlobalFrames {
    fn alloc_zeroed(&mut self) -> Option<Pa> {
        FRAMES.lock().as_mut()?.alloc_zeroed()
    }

    unsafe fn free(&mut self, pa: Pa) {
        if let Some(pool) = FRAMES.lock().as_mut() {
            // SAFETY: the caller upholds `free`'s contract for this (the only) pool.
            unsafe { pool.free(pa) };
        }
    }

    fn pa_to_ptr(&self, pa: Pa) -> NonNull<u8> {
        // Identity mapping: the physical address is the pointer. Frame 0 is never
        // handed out, so the address is not null.
        NonNull::new(pa.0 as *mut u8).unwrap_or(NonNull::dangling())
    }

    fn ptr_to_pa(&self, ptr: NonNull<u8>) -> Pa {
        Pa(ptr.as_ptr() as u64)
    }
}

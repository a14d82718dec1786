//! The board's virtio-blk disk behind virtio-mmio, driven by Janus itself with
//! the `virtio-drivers` crate; requests complete by spinning on the used ring.
//!
//! What the crate's `VirtIOBlk` gives and does not (0.13.0):
//! - one data buffer per request (`read_blocks`/`write_blocks` take one slice),
//!   so each call here is one contiguous range; its `VirtQueue` could chain
//!   several buffers, but `VirtIOBlk` has no method that does;
//! - a queue of 16 descriptors, used with indirect descriptors when the device
//!   offers them (one request at a time here, so that is plenty);
//! - IN, OUT, FLUSH and GET_ID only: no DISCARD or WRITE_ZEROES request methods.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::fmt;
use core::ptr::NonNull;

use virtio_drivers::device::blk::{VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// Bytes in a sector of the disk (virtio 1.2, 5.2.6: always 512).
pub const SECTOR_BYTES: usize = SECTOR_SIZE;

/// Most bytes one request may carry: a descriptor's length is 32 bits (virtio
/// 1.2, 2.7.5), and virtio-drivers panics on a longer buffer.
pub const MAX_REQUEST_BYTES: usize = u32::MAX as usize & !(SECTOR_BYTES - 1);

/// Why a disk request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// The sectors asked for lie (partly) past the end of the disk.
    OutOfRange,
    /// The length is zero, not a whole number of sectors, or over `MAX_REQUEST_BYTES`.
    BadLength,
    /// The device refused or failed the request (or the queue did).
    Device(virtio_drivers::Error),
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::OutOfRange => f.write_str("sectors past the end of the disk"),
            DiskError::BadLength => {
                f.write_str("length is not a whole number of sectors (or over 4 GiB)")
            }
            DiskError::Device(error) => write!(f, "device: {error}"),
        }
    }
}

/// DMA for the driver: Janus' heap is identity mapped (PA == VA), cacheable, and
/// the virt board's virtio devices are cache coherent, so memory is shared with
/// the device as it is, without bouncing.
pub struct JanusHal;

/// The layout of `pages` DMA pages, or `None` when that many cannot exist.
fn dma_layout(pages: usize) -> Option<Layout> {
    Layout::from_size_align(pages.checked_mul(PAGE_SIZE)?, PAGE_SIZE).ok()
}

// SAFETY: `dma_alloc` returns fresh, zeroed, page-aligned memory from the global
// allocator (it aliases nothing until `dma_dealloc` gives it back), and its
// address is the physical one because Janus maps itself with PA == VA.
// `mmio_phys_to_virt` is the identity for the same reason.
unsafe impl Hal for JanusHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let allocated = dma_layout(pages)
            .filter(|layout| layout.size() > 0)
            // SAFETY: the layout has a non-zero size (checked just above).
            .and_then(|layout| NonNull::new(unsafe { alloc_zeroed(layout) }));
        match allocated {
            Some(pointer) => (pointer.as_ptr() as PhysAddr, pointer),
            // `Dma::new` turns a zero address into `Error::DmaError`.
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let Some(layout) = dma_layout(pages) else {
            return -1;
        };
        // SAFETY: the caller passes back what `dma_alloc` returned for `pages`,
        // which came from the global allocator with this same layout.
        unsafe { dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // Only the PCI transport calls this; identity map either way.
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        // Every buffer the driver hands over (heap, Janus' stacks, guest RAM) is
        // identity mapped: its address is the one the device uses.
        buffer.cast::<u8>().as_ptr() as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {
        // Nothing was copied, so nothing to copy back.
    }
}

/// The physical disk: a virtio-blk device behind one virtio-mmio window.
pub struct Disk {
    blk: VirtIOBlk<JanusHal, MmioTransport<'static>>,
}

// SAFETY: the driver owns its MMIO window (see `probe`) and its queue memory;
// nothing in it belongs to one CPU, so it may move to another (callers share it
// behind a lock).
unsafe impl Send for Disk {}

impl Disk {
    /// Takes over the virtio-mmio device at `base` when it is a block device:
    /// resets it, negotiates features and sets up its queue. `None` for an empty
    /// slot (device ID 0), another kind of device, or a device that fails to set up.
    ///
    /// # Safety
    /// `[base, base + size)` must be a virtio-mmio register window mapped as
    /// Device memory, which nothing else accesses while the `Disk` exists.
    pub unsafe fn probe(base: usize, size: usize) -> Option<Disk> {
        let header = NonNull::new(base as *mut VirtIOHeader)?;
        // SAFETY: forwarded from the caller: a mapped virtio-mmio window of `size`
        // bytes, ours alone for as long as Janus runs ('static).
        let transport = unsafe { MmioTransport::new(header, size) }.ok()?;
        if transport.device_type() != DeviceType::Block {
            return None;
        }
        let blk = VirtIOBlk::new(transport).ok()?;
        Some(Disk { blk })
    }

    /// Size of the disk in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.blk.capacity()
    }

    /// Whether the device only allows reads.
    pub fn read_only(&self) -> bool {
        self.blk.readonly()
    }

    /// The first sector as the crate takes it, once `len` bytes from `sector`
    /// are known to be whole sectors inside the disk.
    fn check(&self, sector: u64, len: usize) -> Result<usize, DiskError> {
        if len == 0 || !len.is_multiple_of(SECTOR_BYTES) || len > MAX_REQUEST_BYTES {
            return Err(DiskError::BadLength);
        }
        let count = (len / SECTOR_BYTES) as u64;
        let end = sector.checked_add(count).ok_or(DiskError::OutOfRange)?;
        if end > self.capacity() {
            return Err(DiskError::OutOfRange);
        }
        usize::try_from(sector).map_err(|_| DiskError::OutOfRange)
    }

    /// Reads `buffer.len() / 512` sectors from `sector` into Janus' buffer.
    ///
    /// # Errors
    /// `BadLength`, `OutOfRange`, or `Device`.
    pub fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), DiskError> {
        let first = self.check(sector, buffer.len())?;
        self.blk
            .read_blocks(first, buffer)
            .map_err(DiskError::Device)
    }

    /// Writes Janus' `data` to the sectors from `sector`; returns when the device
    /// has completed the write (not necessarily made it durable: see `flush`).
    ///
    /// # Errors
    /// `BadLength`, `OutOfRange`, or `Device`.
    pub fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError> {
        let first = self.check(sector, data.len())?;
        self.blk
            .write_blocks(first, data)
            .map_err(DiskError::Device)
    }

    /// Makes every completed write durable (a FLUSH request; a no-op when the
    /// device has no write cache to flush, i.e. does not offer VIRTIO_BLK_F_FLUSH).
    ///
    /// # Errors
    /// `Device`.
    pub fn flush(&mut self) -> Result<(), DiskError> {
        self.blk.flush().map_err(DiskError::Device)
    }

    /// Reads `len` bytes of sectors from `sector` straight into physical memory at
    /// `pa` (the device writes there itself: no copy through Janus).
    ///
    /// # Safety
    /// `[pa, pa + len)` must be RAM that Janus maps (identity) and that Janus uses
    /// for nothing else while the call runs (a personality's RAM, checked by its
    /// device model). What the guest does with it meanwhile is its own business.
    ///
    /// # Errors
    /// `BadLength`, `OutOfRange`, or `Device`.
    pub unsafe fn read_phys(&mut self, sector: u64, pa: u64, len: usize) -> Result<(), DiskError> {
        let first = self.check(sector, len)?;
        // JUSTIFICATION: `VirtIOBlk` takes only slices. Neither it nor `JanusHal`
        // reads or writes through this one: the queue takes its address and
        // length for a descriptor, and the device fills the memory.
        // SAFETY: forwarded from the caller: `len` (non-zero, checked) bytes of
        // mapped RAM at `pa` == VA that Janus does not otherwise use meanwhile.
        let buffer = unsafe { core::slice::from_raw_parts_mut(pa as *mut u8, len) };
        self.blk
            .read_blocks(first, buffer)
            .map_err(DiskError::Device)
    }

    /// Writes `len` bytes of physical memory at `pa` to the sectors from `sector`
    /// (the device reads them itself); returns when the device has completed it.
    ///
    /// # Safety
    /// As for `read_phys`.
    ///
    /// # Errors
    /// `BadLength`, `OutOfRange`, or `Device`.
    pub unsafe fn write_phys(&mut self, sector: u64, pa: u64, len: usize) -> Result<(), DiskError> {
        let first = self.check(sector, len)?;
        // JUSTIFICATION: as in `read_phys`; the device only reads this memory.
        // SAFETY: forwarded from the caller, as in `read_phys`.
        let data = unsafe { core::slice::from_raw_parts(pa as *const u8, len) };
        self.blk
            .write_blocks(first, data)
            .map_err(DiskError::Device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dma_pages_are_page_aligned_zeroed_and_given_back() {
        let (pa, va) = JanusHal::dma_alloc(2, BufferDirection::Both);
        assert_ne!(pa, 0);
        assert_eq!(pa, va.as_ptr() as u64);
        assert!(pa.is_multiple_of(PAGE_SIZE as u64));
        // SAFETY: two fresh pages from `dma_alloc`, read before they are given back.
        let bytes = unsafe { core::slice::from_raw_parts(va.as_ptr(), 2 * PAGE_SIZE) };
        assert!(bytes.iter().all(|&byte| byte == 0));
        // SAFETY: what `dma_alloc` returned, given back once.
        assert_eq!(unsafe { JanusHal::dma_dealloc(pa, va, 2) }, 0);
    }

    #[test]
    fn impossible_dma_sizes_fail_without_panicking() {
        let (pa, _) = JanusHal::dma_alloc(0, BufferDirection::Both);
        assert_eq!(pa, 0);
        let (pa, _) = JanusHal::dma_alloc(usize::MAX, BufferDirection::Both);
        assert_eq!(pa, 0);
    }

    #[test]
    fn shared_buffers_keep_their_own_address() {
        let mut buffer = [0u8; 512];
        let pointer = NonNull::from(&mut buffer[..]);
        // SAFETY: a live local buffer nobody else touches during the call.
        let pa = unsafe { JanusHal::share(pointer, BufferDirection::DeviceToDriver) };
        assert_eq!(pa, buffer.as_ptr() as u64);
    }
}

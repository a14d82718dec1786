//! The board's virtio-blk disk behind virtio-mmio, driven by Janus itself on
//! `virtio-drivers`' transport and queue; requests complete by spinning on the used ring.
//!
//! Janus builds the requests (virtio 1.2, 5.2.6) instead of using the crate's `VirtIOBlk`,
//! whose methods take one data buffer per request: here one request carries a list of
//! runs of memory (scatter-gather), so a guest request of 254 scattered pages takes 5
//! physical requests rather than 254.
//! - one request at a time, on a queue of 64 descriptors (16 when the device's queue is
//!   smaller): a chain may not be longer than the queue, even through an indirect table
//!   (2.7.5.3.1), so a request carries its header, up to 62 runs and its status, and more
//!   runs take more requests. Not 256 (seg_max of Janus' own device): the crate's
//!   `VirtQueue` keeps 32 bytes of state per descriptor inline and is built by value, so a
//!   256-descriptor queue puts 8 KiB and more on the 16 KiB boot stack (measured: the boot
//!   CPU's frame grew to 27 KiB and overflowed);
//! - indirect descriptors when the device offers them (the crate allocates the table per
//!   request), else a direct chain;
//! - IN, OUT and FLUSH only: no GET_ID, DISCARD or WRITE_ZEROES requests.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;

use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceStatus, DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// Bytes in a sector of the disk (virtio 1.2, 5.2.6: always 512).
pub const SECTOR_BYTES: usize = 512;

/// Most bytes one run may hold, and one physical request carry: a descriptor's
/// length is 32 bits (virtio 1.2, 2.7.5), and so is a chain's total (2.7.5.2).
pub const MAX_REQUEST_BYTES: usize = u32::MAX as usize & !(SECTOR_BYTES - 1);

/// Most runs one call may pass (a guest request's 254 segments and then some).
/// More than fit one request are split over several (in order, each waited for),
/// as are runs whose total passes `MAX_REQUEST_BYTES`.
pub const MAX_RUNS: usize = 256;

/// The request queue's index (virtio-blk without VIRTIO_BLK_F_MQ has one, 5.2.2).
const QUEUE: u16 = 0;
/// Descriptors in the queue when the device allows as many: header, 62 runs, status
/// (see the top of the file for why not 256).
const LARGE_QUEUE: usize = 64;
/// Descriptors in the queue when it does not (what `VirtIOBlk` uses).
const SMALL_QUEUE: usize = 16;

/// VIRTIO_BLK_F_RO (5.2.3): the device is read-only.
const VIRTIO_BLK_F_RO: u64 = 1 << 5;
/// VIRTIO_BLK_F_FLUSH: the FLUSH request exists (the device has a write cache).
const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;
/// VIRTIO_F_INDIRECT_DESC (6): descriptor tables outside the ring.
const VIRTIO_F_INDIRECT_DESC: u64 = 1 << 28;
/// VIRTIO_F_EVENT_IDX (6): notification suppression by index.
const VIRTIO_F_EVENT_IDX: u64 = 1 << 29;
/// VIRTIO_F_VERSION_1 (6): a modern device, which the driver must accept (6.1).
const VIRTIO_F_VERSION_1: u64 = 1 << 32;
/// Every feature Janus' driver understands; it accepts those the device offers.
const SUPPORTED_FEATURES: u64 = VIRTIO_BLK_F_RO
    | VIRTIO_BLK_F_FLUSH
    | VIRTIO_F_INDIRECT_DESC
    | VIRTIO_F_EVENT_IDX
    | VIRTIO_F_VERSION_1;

/// Byte offsets in the device's configuration space (5.2.4): le64 capacity.
const CONFIG_CAPACITY_LOW: usize = 0;
/// The high half of capacity (read as two u32s: the MMIO window takes 32-bit reads).
const CONFIG_CAPACITY_HIGH: usize = 4;

/// VIRTIO_BLK_T_IN (5.2.6): read.
const T_IN: u32 = 0;
/// VIRTIO_BLK_T_OUT: write.
const T_OUT: u32 = 1;
/// VIRTIO_BLK_T_FLUSH.
const T_FLUSH: u32 = 4;
/// VIRTIO_BLK_S_OK: the status byte of a request that succeeded.
const S_OK: u8 = 0;
/// VIRTIO_BLK_S_UNSUPP.
const S_UNSUPP: u8 = 2;
/// What the status byte holds until the device writes it (no status is 0xff).
const S_UNSET: u8 = 0xff;
/// Bytes of the request header: le32 type, le32 reserved, le64 sector.
const HEADER_BYTES: usize = 16;

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

/// The request queue, sized by what the device allows.
enum RequestQueue {
    /// `LARGE_QUEUE` descriptors (boxed: its shadow tables are 2 KiB).
    Large(Box<VirtQueue<JanusHal, LARGE_QUEUE>>),
    /// `SMALL_QUEUE` descriptors (boxed too, so the `Disk` stays small).
    Small(Box<VirtQueue<JanusHal, SMALL_QUEUE>>),
}

impl RequestQueue {
    /// Sets up queue `QUEUE` of the device, as large as it allows. Never inlined,
    /// so that the queue built on the stack lives in this short frame and not in
    /// the boot CPU's long-lived one.
    #[inline(never)]
    fn new(
        transport: &mut MmioTransport<'static>,
        indirect: bool,
        event_idx: bool,
    ) -> Result<RequestQueue, virtio_drivers::Error> {
        if transport.max_queue_size(QUEUE) >= LARGE_QUEUE as u32 {
            let queue = VirtQueue::new(transport, QUEUE, indirect, event_idx)?;
            Ok(RequestQueue::Large(Box::new(queue)))
        } else {
            let queue = VirtQueue::new(transport, QUEUE, indirect, event_idx)?;
            Ok(RequestQueue::Small(Box::new(queue)))
        }
    }

    /// Most descriptors one request may use: the queue's size (2.7.5.3.1), with or
    /// without an indirect table (the queue is empty when a request is added).
    fn descriptors(&self) -> usize {
        match self {
            RequestQueue::Large(_) => LARGE_QUEUE,
            RequestQueue::Small(_) => SMALL_QUEUE,
        }
    }

    /// Adds one request, notifies the device, spins until it is used and pops it.
    fn submit<'a>(
        &mut self,
        transport: &mut MmioTransport<'static>,
        inputs: &'a [&'a [u8]],
        outputs: &'a mut [&'a mut [u8]],
    ) -> Result<(), virtio_drivers::Error> {
        match self {
            RequestQueue::Large(queue) => queue.add_notify_wait_pop(inputs, outputs, transport),
            RequestQueue::Small(queue) => queue.add_notify_wait_pop(inputs, outputs, transport),
        }
        .map(|_| ())
    }
}

/// The request header for `request_type` at `sector` (5.2.6).
fn header(request_type: u32, sector: u64) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[..4].copy_from_slice(&request_type.to_le_bytes());
    // Bytes 4..8 are `reserved`, zero.
    header[8..].copy_from_slice(&sector.to_le_bytes());
    header
}

/// What the status byte the device wrote means (5.2.6).
fn status(byte: u8) -> Result<(), DiskError> {
    match byte {
        S_OK => Ok(()),
        S_UNSUPP => Err(DiskError::Device(virtio_drivers::Error::Unsupported)),
        // IOERR, or a byte the device never wrote or that no version defines.
        _ => Err(DiskError::Device(virtio_drivers::Error::IoError)),
    }
}

/// How many of the first runs (of lengths `lens`, each at most `MAX_REQUEST_BYTES`)
/// one request takes: at most `most` runs and `MAX_REQUEST_BYTES` bytes, at least one.
fn chunk_runs(lens: impl Iterator<Item = usize>, most: usize) -> usize {
    let mut total = 0usize;
    let mut count = 0;
    for len in lens.take(most) {
        match total.checked_add(len) {
            Some(sum) if sum <= MAX_REQUEST_BYTES => total = sum,
            _ => break,
        }
        count += 1;
    }
    count.max(1)
}

/// The physical disk: a virtio-blk device behind one virtio-mmio window.
pub struct Disk {
    transport: MmioTransport<'static>,
    queue: RequestQueue,
    /// Size in sectors, from the configuration space.
    capacity: u64,
    /// The features both sides accepted.
    features: u64,
}

// SAFETY: the driver owns its MMIO window (see `probe`) and its queue memory;
// nothing in it belongs to one CPU, so it may move to another (callers share it
// behind a lock).
unsafe impl Send for Disk {}

impl Disk {
    /// Takes over the virtio-mmio device at `base` when it is a block device:
    /// resets it, negotiates features and sets up its queue (virtio 1.2, 3.1.1).
    /// `None` for an empty slot (device ID 0), another kind of device, or a device
    /// that fails to set up (it is then left marked FAILED).
    ///
    /// # Safety
    /// `[base, base + size)` must be a virtio-mmio register window mapped as
    /// Device memory, which nothing else accesses while the `Disk` exists.
    pub unsafe fn probe(base: usize, size: usize) -> Option<Disk> {
        let header = NonNull::new(base as *mut VirtIOHeader)?;
        // SAFETY: forwarded from the caller: a mapped virtio-mmio window of `size`
        // bytes, ours alone for as long as Janus runs ('static).
        let mut transport = unsafe { MmioTransport::new(header, size) }.ok()?;
        if transport.device_type() != DeviceType::Block {
            return None;
        }
        let set_up = Disk::set_up(&mut transport);
        match set_up {
            Some((queue, capacity, features)) => {
                transport.finish_init();
                Some(Disk {
                    transport,
                    queue,
                    capacity,
                    features,
                })
            }
            None => {
                transport.set_status(DeviceStatus::FAILED);
                None
            }
        }
    }

    /// Steps 1 to 7 of 3.1.1: reset, acknowledge, negotiate, read the capacity and
    /// set up the queue; the queue, capacity and features.
    fn set_up(transport: &mut MmioTransport<'static>) -> Option<(RequestQueue, u64, u64)> {
        transport.set_status(DeviceStatus::empty());
        transport.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
        let features = transport.read_device_features() & SUPPORTED_FEATURES;
        transport.write_driver_features(features);
        let accepted = DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK;
        transport.set_status(accepted);
        // A modern device clears FEATURES_OK when it refuses the set (3.1.1 step 6);
        // a legacy one has no such bit to clear.
        if features & VIRTIO_F_VERSION_1 != 0
            && !transport.get_status().contains(DeviceStatus::FEATURES_OK)
        {
            return None;
        }
        // Legacy virtio-mmio needs the page size for its queue layout (4.2.4).
        transport.set_guest_page_size(PAGE_SIZE as u32);
        let capacity = transport
            .read_consistent(|| {
                let low: u32 = transport.read_config_space(CONFIG_CAPACITY_LOW)?;
                let high: u32 = transport.read_config_space(CONFIG_CAPACITY_HIGH)?;
                Ok(u64::from(high) << 32 | u64::from(low))
            })
            .ok()?;
        let queue = RequestQueue::new(
            transport,
            features & VIRTIO_F_INDIRECT_DESC != 0,
            features & VIRTIO_F_EVENT_IDX != 0,
        )
        .ok()?;
        Some((queue, capacity, features))
    }

    /// Size of the disk in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Whether the device only allows reads.
    pub fn read_only(&self) -> bool {
        self.features & VIRTIO_BLK_F_RO != 0
    }

    /// Checks runs of lengths `lens` from `sector`: one to `MAX_RUNS` of them, each
    /// a non-zero whole number of sectors up to `MAX_REQUEST_BYTES`, and all their
    /// sectors inside the disk.
    fn check(&self, sector: u64, lens: impl Iterator<Item = usize>) -> Result<(), DiskError> {
        let mut runs = 0;
        let mut sectors = 0u64;
        for len in lens {
            if len == 0 || !len.is_multiple_of(SECTOR_BYTES) || len > MAX_REQUEST_BYTES {
                return Err(DiskError::BadLength);
            }
            runs += 1;
            // At most MAX_RUNS runs of under 2^32 bytes: no overflow.
            sectors += (len / SECTOR_BYTES) as u64;
        }
        if runs == 0 || runs > MAX_RUNS {
            return Err(DiskError::BadLength);
        }
        let end = sector.checked_add(sectors).ok_or(DiskError::OutOfRange)?;
        if end > self.capacity {
            return Err(DiskError::OutOfRange);
        }
        Ok(())
    }

    /// An IN request (or several, see `MAX_RUNS`) filling `buffers` from `sector`;
    /// the buffers are checked.
    fn read_buffers(&mut self, sector: u64, buffers: &mut [&mut [u8]]) -> Result<(), DiskError> {
        let most = self.queue.descriptors() - 2;
        let mut rest = buffers;
        let mut at = sector;
        while !rest.is_empty() {
            let count = chunk_runs(rest.iter().map(|buffer| buffer.len()), most);
            let (chunk, tail) = core::mem::take(&mut rest).split_at_mut(count);
            rest = tail;
            let bytes: usize = chunk.iter().map(|buffer| buffer.len()).sum();
            let header = header(T_IN, at);
            let mut status_byte = [S_UNSET];
            let mut outputs: Vec<&mut [u8]> = Vec::with_capacity(count + 1);
            outputs.extend(chunk.iter_mut().map(|buffer| &mut **buffer));
            outputs.push(&mut status_byte);
            self.queue
                .submit(&mut self.transport, &[&header], &mut outputs)
                .map_err(DiskError::Device)?;
            status(status_byte[0])?;
            // Inside the disk (checked), so no overflow.
            at += (bytes / SECTOR_BYTES) as u64;
        }
        Ok(())
    }

    /// An OUT request (or several) writing `buffers` from `sector`; they are checked.
    fn write_buffers(&mut self, sector: u64, buffers: &[&[u8]]) -> Result<(), DiskError> {
        let most = self.queue.descriptors() - 2;
        let mut rest = buffers;
        let mut at = sector;
        while !rest.is_empty() {
            let count = chunk_runs(rest.iter().map(|buffer| buffer.len()), most);
            let (chunk, tail) = rest.split_at(count);
            rest = tail;
            let bytes: usize = chunk.iter().map(|buffer| buffer.len()).sum();
            let header = header(T_OUT, at);
            let mut status_byte = [S_UNSET];
            let mut inputs: Vec<&[u8]> = Vec::with_capacity(count + 1);
            inputs.push(&header);
            inputs.extend_from_slice(chunk);
            self.queue
                .submit(&mut self.transport, &inputs, &mut [&mut status_byte])
                .map_err(DiskError::Device)?;
            status(status_byte[0])?;
            at += (bytes / SECTOR_BYTES) as u64;
        }
        Ok(())
    }

    /// Reads `buffer.len() / 512` sectors from `sector` into Janus' buffer.
    ///
    /// # Errors
    /// `BadLength`, `OutOfRange`, or `Device`.
    pub fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), DiskError> {
        self.check(sector, [buffer.len()].into_iter())?;
        self.read_buffers(sector, &mut [buffer])
    }

    /// Writes Janus' `data` to the sectors from `sector`; returns when the device
    /// has completed the write (not necessarily made it durable: see `flush`).
    ///
    /// # Errors
    /// `BadLength`, `OutOfRange`, or `Device`.
    pub fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError> {
        self.check(sector, [data.len()].into_iter())?;
        self.write_buffers(sector, &[data])
    }

    /// Makes every completed write durable (a FLUSH request; a no-op when the
    /// device has no write cache to flush, i.e. does not offer VIRTIO_BLK_F_FLUSH).
    ///
    /// # Errors
    /// `Device`.
    pub fn flush(&mut self) -> Result<(), DiskError> {
        if self.features & VIRTIO_BLK_F_FLUSH == 0 {
            return Ok(());
        }
        let header = header(T_FLUSH, 0);
        let mut status_byte = [S_UNSET];
        self.queue
            .submit(&mut self.transport, &[&header], &mut [&mut status_byte])
            .map_err(DiskError::Device)?;
        status(status_byte[0])
    }

    /// Reads sectors from `sector` straight into physical memory: the runs
    /// `(pa, len)` in order, as one request (the device writes there itself: no
    /// copy through Janus). Runs are split over several requests only past the
    /// queue's size or `MAX_REQUEST_BYTES` in all.
    ///
    /// # Safety
    /// Every `[pa, pa + len)` must be RAM that Janus maps (identity) and that Janus
    /// uses for nothing else while the call runs (a personality's RAM, checked by
    /// its device model). What the guest does with it meanwhile is its own business.
    ///
    /// # Errors
    /// `BadLength` (no runs, more than `MAX_RUNS`, or a length that is zero, not
    /// whole sectors or over `MAX_REQUEST_BYTES`), `OutOfRange`, or `Device`.
    pub unsafe fn read_phys_runs(
        &mut self,
        sector: u64,
        runs: &[(u64, usize)],
    ) -> Result<(), DiskError> {
        self.check(sector, runs.iter().map(|&(_, len)| len))?;
        let mut buffers: Vec<&mut [u8]> = runs
            .iter()
            .map(|&(pa, len)| {
                // JUSTIFICATION: the queue takes slices. Neither it nor `JanusHal`
                // reads or writes through these: the queue takes their address
                // and length for descriptors, and the device fills the memory.
                // SAFETY: forwarded from the caller: `len` (non-zero, checked)
                // bytes of mapped RAM at `pa` == VA that Janus does not otherwise
                // use meanwhile.
                unsafe { core::slice::from_raw_parts_mut(pa as *mut u8, len) }
            })
            .collect();
        self.read_buffers(sector, &mut buffers)
    }

    /// Writes the physical memory of the runs `(pa, len)`, in order, to the sectors
    /// from `sector` (the device reads them itself), as one request; returns when
    /// the device has completed it.
    ///
    /// # Safety
    /// As for `read_phys_runs`.
    ///
    /// # Errors
    /// As `read_phys_runs`.
    pub unsafe fn write_phys_runs(
        &mut self,
        sector: u64,
        runs: &[(u64, usize)],
    ) -> Result<(), DiskError> {
        self.check(sector, runs.iter().map(|&(_, len)| len))?;
        let buffers: Vec<&[u8]> = runs
            .iter()
            .map(|&(pa, len)| {
                // JUSTIFICATION: as in `read_phys_runs`; the device only reads it.
                // SAFETY: forwarded from the caller, as in `read_phys_runs`.
                unsafe { core::slice::from_raw_parts(pa as *const u8, len) }
            })
            .collect();
        self.write_buffers(sector, &buffers)
    }

    /// Reads `len` bytes of sectors from `sector` straight into physical memory at
    /// `pa`: `read_phys_runs` with one run.
    ///
    /// # Safety
    /// As for `read_phys_runs`.
    ///
    /// # Errors
    /// As `read_phys_runs`.
    pub unsafe fn read_phys(&mut self, sector: u64, pa: u64, len: usize) -> Result<(), DiskError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.read_phys_runs(sector, &[(pa, len)]) }
    }

    /// Writes `len` bytes of physical memory at `pa` to the sectors from `sector`:
    /// `write_phys_runs` with one run.
    ///
    /// # Safety
    /// As for `read_phys_runs`.
    ///
    /// # Errors
    /// As `read_phys_runs`.
    pub unsafe fn write_phys(&mut self, sector: u64, pa: u64, len: usize) -> Result<(), DiskError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.write_phys_runs(sector, &[(pa, len)]) }
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
    fn headers_are_type_reserved_and_sector_little_endian() {
        assert_eq!(
            header(T_OUT, 0x0102_0304_0506_0708),
            [1, 0, 0, 0, 0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]
        );
        assert_eq!(header(T_FLUSH, 0)[..4], [4, 0, 0, 0]);
    }

    #[test]
    fn only_a_zero_status_byte_is_success() {
        assert_eq!(status(S_OK), Ok(()));
        for byte in [1, S_UNSUPP, 3, S_UNSET] {
            assert!(matches!(status(byte), Err(DiskError::Device(_))));
        }
    }

    #[test]
    fn runs_fill_one_request_up_to_the_queue_size() {
        assert_eq!(chunk_runs([4096; 254].into_iter(), 254), 254);
        assert_eq!(chunk_runs([4096; 254].into_iter(), LARGE_QUEUE - 2), 62);
        assert_eq!(chunk_runs([4096; 254].into_iter(), SMALL_QUEUE - 2), 14);
        assert_eq!(chunk_runs([512; 3].into_iter(), 14), 3);
    }

    #[test]
    fn runs_past_four_gib_in_all_start_another_request() {
        let big = MAX_REQUEST_BYTES / 2 + SECTOR_BYTES;
        assert_eq!(chunk_runs([big, big, big].into_iter(), 254), 1);
        assert_eq!(chunk_runs([MAX_REQUEST_BYTES, 512].into_iter(), 254), 1);
        // A lone run is taken whatever its length (checked before).
        assert_eq!(chunk_runs([usize::MAX].into_iter(), 254), 1);
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

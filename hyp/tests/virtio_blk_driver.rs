//! The virtio-blk model driven by a real driver: `virtio-drivers`' `VirtIOBlk` over a custom
//! `Transport` that forwards every register access to Janus' virtio-mmio transport, with
//! guest memory as one page-aligned byte array shared by the driver's DMA allocator and
//! the device's `GuestMemory`.
//!
//! This lives outside `hyp/src/dev` because the driver side needs `unsafe` (the `Hal`
//! trait), which `dev/` forbids.

use std::alloc::{alloc_zeroed, Layout};
use std::cell::RefCell;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use hyp::dev::virtio::blk::{BlkDevice, BlockBackend, Buffer, IoError, SECTOR_BYTES};
use hyp::dev::virtio::mmio::MmioTransport;
use hyp::dev::virtio::{GuestMemory, MemError};
use hyp::dev::{MmioDevice, Width};
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{BufferDirection, Error, Hal, PhysAddr, PAGE_SIZE};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Guest-physical address of the arena's first byte.
const RAM_BASE: u64 = 0x4000_0000;
/// Arena size: DMA pages in the first half, share bounces in the second.
const RAM_BYTES: usize = 1 << 20;
/// Volume size.
const SECTORS: u64 = 256;

/// The guest RAM of one test thread.
struct Arena {
    /// Start of the page-aligned allocation; only ever accessed through raw pointers.
    base: *mut u8,
    /// Next free DMA page offset.
    next_page: usize,
    /// Next free bounce offset.
    next_bounce: usize,
    /// Shares not yet unshared.
    shares: usize,
}

thread_local! {
    /// Each test thread has its own RAM, so tests run in parallel.
    static ARENA: RefCell<Option<Arena>> = const { RefCell::new(None) };
}

/// Gives this thread a fresh arena (leaked: a few MiB over a test run).
fn new_arena() {
    let layout = Layout::from_size_align(RAM_BYTES, PAGE_SIZE).unwrap();
    // SAFETY: the layout has a non-zero size.
    let base = unsafe { alloc_zeroed(layout) };
    assert!(!base.is_null());
    ARENA.with(|arena| {
        *arena.borrow_mut() = Some(Arena {
            base,
            next_page: 0,
            next_bounce: RAM_BYTES / 2,
            shares: 0,
        })
    });
}

fn with_arena<R>(f: impl FnOnce(&mut Arena) -> R) -> R {
    ARENA.with(|arena| {
        f(arena
            .borrow_mut()
            .as_mut()
            .expect("no arena on this thread"))
    })
}

/// The arena offset of `[addr, addr+len)`, if inside.
fn offset_of(addr: u64, len: u64) -> Result<usize, MemError> {
    let end = addr.checked_add(len).ok_or(MemError::Overflow)?;
    if addr < RAM_BASE || end > RAM_BASE + RAM_BYTES as u64 {
        return Err(MemError::OutsideRam);
    }
    Ok((addr - RAM_BASE) as usize)
}

/// Copies arena bytes out.
fn arena_read(addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
    let offset = offset_of(addr, buf.len() as u64)?;
    // SAFETY: the range is inside the arena allocation and `buf` is not part of it.
    with_arena(|arena| unsafe {
        std::ptr::copy_nonoverlapping(arena.base.add(offset), buf.as_mut_ptr(), buf.len())
    });
    Ok(())
}

/// Copies bytes into the arena.
fn arena_write(addr: u64, data: &[u8]) -> Result<(), MemError> {
    let offset = offset_of(addr, data.len() as u64)?;
    // SAFETY: the range is inside the arena allocation and `data` is not part of it.
    with_arena(|arena| unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), arena.base.add(offset), data.len())
    });
    Ok(())
}

/// The device's view of the arena.
struct ArenaMemory;

impl GuestMemory for ArenaMemory {
    fn check(&mut self, addr: u64, len: u64) -> Result<(), MemError> {
        offset_of(addr, len).map(|_| ())
    }

    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        arena_read(addr, buf)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        arena_write(addr, data)
    }
}

/// The driver's DMA and sharing over the arena.
struct ArenaHal;

// SAFETY: pages come from the thread's arena, are page aligned, zeroed and never handed out
// twice; shares are bounced through a separate part of the arena.
unsafe impl Hal for ArenaHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        with_arena(|arena| {
            let offset = arena.next_page;
            arena.next_page += pages * PAGE_SIZE;
            assert!(
                arena.next_page <= RAM_BYTES / 2,
                "DMA half of the arena is full"
            );
            // SAFETY: inside the allocation.
            let pointer = unsafe { arena.base.add(offset) };
            // SAFETY: in-bounds, so not null; the bytes are zero (never used before).
            (RAM_BASE + offset as u64, unsafe {
                NonNull::new_unchecked(pointer)
            })
        })
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        0
    }

    unsafe fn mmio_phys_to_virt(_paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        unreachable!("the test transport has no MMIO pointers")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        let len = buffer.len();
        let addr = with_arena(|arena| {
            let offset = arena.next_bounce;
            arena.next_bounce += len.next_multiple_of(16);
            assert!(
                arena.next_bounce <= RAM_BYTES,
                "bounce half of the arena is full"
            );
            arena.shares += 1;
            RAM_BASE + offset as u64
        });
        // SAFETY: the caller passes a valid buffer not accessed during the call.
        let bytes = unsafe { buffer.as_ref() };
        arena_write(addr, bytes).unwrap();
        addr
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        if direction != BufferDirection::DriverToDevice {
            let mut buffer = buffer;
            // SAFETY: the caller passes a valid buffer not accessed during the call.
            let bytes = unsafe { buffer.as_mut() };
            arena_read(paddr, bytes).unwrap();
        }
        with_arena(|arena| {
            arena.shares -= 1;
            if arena.shares == 0 {
                arena.next_bounce = RAM_BYTES / 2;
            }
        });
    }
}

/// A RAM volume; guest buffers reach the arena like a DMA engine would.
#[derive(Clone, Default)]
struct Volume {
    /// Bytes and the log of calls.
    state: Arc<Mutex<(Vec<u8>, Vec<&'static str>)>>,
}

impl Volume {
    fn new() -> Self {
        let volume = Volume::default();
        volume.state.lock().unwrap().0 = vec![0; SECTORS as usize * SECTOR_BYTES];
        volume
    }

    fn log(&self) -> Vec<&'static str> {
        self.state.lock().unwrap().1.clone()
    }

    fn range(&self, sector: u64, len: usize) -> Result<std::ops::Range<usize>, IoError> {
        let start = sector as usize * SECTOR_BYTES;
        assert!(
            start + len <= SECTORS as usize * SECTOR_BYTES,
            "model passed a bad range"
        );
        Ok(start..start + len)
    }
}

impl BlockBackend for Volume {
    fn sectors(&self) -> u64 {
        SECTORS
    }

    fn read(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError> {
        let range = self.range(sector, buffer.len())?;
        let mut state = self.state.lock().unwrap();
        state.1.push("read");
        match buffer {
            Buffer::Guest { addr, .. } => arena_write(addr, &state.0[range]).unwrap(),
            Buffer::Janus(bytes) => bytes.copy_from_slice(&state.0[range]),
        }
        Ok(())
    }

    fn write(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError> {
        let range = self.range(sector, buffer.len())?;
        let mut state = self.state.lock().unwrap();
        state.1.push("write");
        match buffer {
            Buffer::Guest { addr, .. } => arena_read(addr, &mut state.0[range]).unwrap(),
            Buffer::Janus(bytes) => state.0[range].copy_from_slice(bytes),
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.state.lock().unwrap().1.push("flush");
        Ok(())
    }
}

/// Register offsets (virtio 1.2 section 4.2.2).
mod reg {
    pub const DEVICE_ID: u64 = 0x008;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    pub const CONFIG: u64 = 0x100;
}

/// The device the test drives, shared so it outlives one driver instance.
type Device = Rc<RefCell<MmioTransport<BlkDevice>>>;

/// virtio-drivers' view of Janus' transport: every call becomes register accesses.
struct JanusTransport {
    /// The Janus transport.
    device: Device,
    /// Notifications after which the interrupt line was high.
    interrupts: Rc<RefCell<u32>>,
}

impl JanusTransport {
    fn read(&self, offset: u64) -> u32 {
        self.device.borrow_mut().read(offset, Width::Word).unwrap() as u32
    }

    fn write(&self, offset: u64, value: u32) {
        self.device
            .borrow_mut()
            .write(offset, Width::Word, u64::from(value))
            .unwrap();
    }
}

impl Transport for JanusTransport {
    fn device_type(&self) -> DeviceType {
        DeviceType::try_from(self.read(reg::DEVICE_ID)).unwrap()
    }

    fn read_device_features(&mut self) -> u64 {
        self.write(reg::DEVICE_FEATURES_SEL, 0);
        let low = self.read(reg::DEVICE_FEATURES);
        self.write(reg::DEVICE_FEATURES_SEL, 1);
        u64::from(low) | (u64::from(self.read(reg::DEVICE_FEATURES)) << 32)
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.write(reg::DRIVER_FEATURES_SEL, 0);
        self.write(reg::DRIVER_FEATURES, driver_features as u32);
        self.write(reg::DRIVER_FEATURES_SEL, 1);
        self.write(reg::DRIVER_FEATURES, (driver_features >> 32) as u32);
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.write(reg::QUEUE_SEL, u32::from(queue));
        self.read(reg::QUEUE_NUM_MAX)
    }

    fn notify(&mut self, queue: u16) {
        self.write(reg::QUEUE_NOTIFY, u32::from(queue));
        let mut device = self.device.borrow_mut();
        if device.take_notified().is_some() {
            // What Janus' owner does: process with a budget until nothing is left.
            while device.process(&mut ArenaMemory, 4).more_pending {}
            if device.irq_level() {
                *self.interrupts.borrow_mut() += 1;
            }
        }
    }

    fn get_status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_truncate(self.read(reg::STATUS))
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.write(reg::STATUS, status.bits());
    }

    fn set_guest_page_size(&mut self, _guest_page_size: u32) {}

    fn requires_legacy_layout(&self) -> bool {
        false
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.write(reg::QUEUE_SEL, u32::from(queue));
        self.write(reg::QUEUE_NUM, size);
        for (low, addr) in [
            (reg::QUEUE_DESC_LOW, descriptors),
            (reg::QUEUE_DRIVER_LOW, driver_area),
            (reg::QUEUE_DEVICE_LOW, device_area),
        ] {
            self.write(low, addr as u32);
            self.write(low + 4, (addr >> 32) as u32);
        }
        self.write(reg::QUEUE_READY, 1);
    }

    fn queue_unset(&mut self, queue: u16) {
        self.write(reg::QUEUE_SEL, u32::from(queue));
        self.write(reg::QUEUE_READY, 0);
        assert_eq!(self.read(reg::QUEUE_READY), 0);
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.write(reg::QUEUE_SEL, u32::from(queue));
        self.read(reg::QUEUE_READY) != 0
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        let status = self.read(reg::INTERRUPT_STATUS);
        self.write(reg::INTERRUPT_ACK, status);
        InterruptStatus::from_bits_truncate(status)
    }

    fn read_config_generation(&self) -> u32 {
        self.read(reg::CONFIG_GENERATION)
    }

    fn read_config_space<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T, Error> {
        let size = size_of::<T>();
        let mut bytes = vec![0u8; size];
        let base = reg::CONFIG + offset as u64;
        let mut device = self.device.borrow_mut();
        match size {
            1 | 2 | 4 => {
                let width = match size {
                    1 => Width::Byte,
                    2 => Width::Half,
                    _ => Width::Word,
                };
                let value = device.read(base, width).map_err(|_| Error::IoError)?;
                bytes.copy_from_slice(&value.to_le_bytes()[..size]);
            }
            _ => {
                for (i, byte) in bytes.iter_mut().enumerate() {
                    *byte = device
                        .read(base + i as u64, Width::Byte)
                        .map_err(|_| Error::IoError)? as u8;
                }
            }
        }
        T::read_from_bytes(&bytes).map_err(|_| Error::IoError)
    }

    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> Result<(), Error> {
        let mut device = self.device.borrow_mut();
        for (i, byte) in value.as_bytes().iter().enumerate() {
            device
                .write(
                    reg::CONFIG + (offset + i) as u64,
                    Width::Byte,
                    u64::from(*byte),
                )
                .map_err(|_| Error::IoError)?;
        }
        Ok(())
    }
}

/// A fresh arena, volume and device.
fn device() -> (Device, Volume) {
    new_arena();
    let volume = Volume::new();
    let blk = BlkDevice::new(Box::new(volume.clone()), b"work");
    (Rc::new(RefCell::new(MmioTransport::new(blk))), volume)
}

fn driver(device: &Device) -> (VirtIOBlk<ArenaHal, JanusTransport>, Rc<RefCell<u32>>) {
    let interrupts = Rc::new(RefCell::new(0));
    let transport = JanusTransport {
        device: device.clone(),
        interrupts: interrupts.clone(),
    };
    (VirtIOBlk::new(transport).unwrap(), interrupts)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13) ^ seed)
        .collect()
}

#[test]
fn capacity_is_the_backend_size() {
    let (device, _) = device();
    let (blk, _) = driver(&device);
    assert_eq!(blk.capacity(), SECTORS);
    assert!(!blk.readonly());
}

#[test]
fn single_sector_round_trip() {
    let (device, volume) = device();
    let (mut blk, interrupts) = driver(&device);
    let data = pattern(SECTOR_BYTES, 1);
    blk.write_blocks(7, &data).unwrap();
    let mut back = vec![0u8; SECTOR_BYTES];
    blk.read_blocks(7, &mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(&volume.state.lock().unwrap().0[7 * 512..8 * 512], &data[..]);
    assert_eq!(
        *interrupts.borrow(),
        2,
        "one interrupt per completed process round"
    );
    assert!(blk
        .ack_interrupt()
        .contains(InterruptStatus::QUEUE_INTERRUPT));
    assert!(!device.borrow().irq_level());
}

#[test]
fn multi_sector_round_trip() {
    let (device, _) = device();
    let (mut blk, _) = driver(&device);
    let data = pattern(16 * SECTOR_BYTES, 2);
    blk.write_blocks(100, &data).unwrap();
    let mut back = vec![0u8; 16 * SECTOR_BYTES];
    blk.read_blocks(100, &mut back).unwrap();
    assert_eq!(back, data);
    // Neighbours untouched.
    let mut neighbour = vec![0xffu8; SECTOR_BYTES];
    blk.read_blocks(116, &mut neighbour).unwrap();
    assert!(neighbour.iter().all(|&b| b == 0));
}

#[test]
fn flush_reaches_the_backend_after_the_writes() {
    let (device, volume) = device();
    let (mut blk, _) = driver(&device);
    blk.write_blocks(0, &pattern(SECTOR_BYTES, 3)).unwrap();
    blk.write_blocks(1, &pattern(SECTOR_BYTES * 2, 4)).unwrap();
    blk.flush().unwrap();
    assert_eq!(volume.log(), ["write", "write", "flush"]);
}

#[test]
fn get_id_returns_the_serial() {
    let (device, _) = device();
    let (mut blk, _) = driver(&device);
    let mut id = [0u8; 20];
    let len = blk.device_id(&mut id).unwrap();
    assert_eq!(&id[..len], b"work");
}

#[test]
fn out_of_range_requests_fail_at_the_driver() {
    let (device, volume) = device();
    let (mut blk, _) = driver(&device);
    let data = pattern(2 * SECTOR_BYTES, 5);
    assert_eq!(
        blk.write_blocks(SECTORS as usize - 1, &data),
        Err(Error::IoError)
    );
    assert_eq!(
        blk.write_blocks(SECTORS as usize, &data[..512]),
        Err(Error::IoError)
    );
    let mut back = vec![0u8; SECTOR_BYTES];
    assert_eq!(blk.read_blocks(usize::MAX, &mut back), Err(Error::IoError));
    assert!(volume.log().is_empty(), "nothing reached the backend");
    // The device is still fine.
    blk.write_blocks(SECTORS as usize - 1, &data[..512])
        .unwrap();
}

#[test]
fn device_survives_reset_and_renegotiation() {
    let (device, _) = device();
    let data = pattern(4 * SECTOR_BYTES, 6);
    {
        let (mut blk, _) = driver(&device);
        blk.write_blocks(20, &data).unwrap();
    }
    // A second driver instance resets the device (status 0) and negotiates again.
    for _ in 0..2 {
        let (mut blk, _) = driver(&device);
        let mut back = vec![0u8; 4 * SECTOR_BYTES];
        blk.read_blocks(20, &mut back).unwrap();
        assert_eq!(back, data);
        blk.write_blocks(24, &data[..512]).unwrap();
    }
    assert_eq!(
        device.borrow().fault_count(),
        0,
        "a well-behaved driver causes no faults"
    );
}

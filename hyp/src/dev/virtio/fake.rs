//! Test fakes: a byte-array guest RAM, a RAM disk backend and a driver-side split queue.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use std::sync::{Mutex, MutexGuard};

use super::blk::{for_each_run, BlockBackend, Buffer, GuestRun, IoError, SECTOR_BYTES};
use super::{GuestMemory, MemError};

/// Guest RAM: `bytes` at guest-physical `base`, with a record of device misbehaviour.
#[derive(Debug)]
pub struct Ram {
    /// Guest-physical address of `bytes[0]`.
    pub base: u64,
    /// The contents.
    pub bytes: Vec<u8>,
    /// Reads or writes the device attempted outside RAM (it must only touch checked ranges).
    pub stray_accesses: u32,
    /// Fences the device issued.
    pub fences: u32,
}

impl Ram {
    /// The index range of `[addr, addr+len)` in `bytes`, if wholly inside.
    pub fn range(&self, addr: u64, len: u64) -> Result<core::ops::Range<usize>, MemError> {
        let end = addr.checked_add(len).ok_or(MemError::Overflow)?;
        let ram_end = self.base + self.bytes.len() as u64;
        if addr < self.base || end > ram_end {
            return Err(MemError::OutsideRam);
        }
        let start = (addr - self.base) as usize;
        Ok(start..start + len as usize)
    }
}

/// A shared handle on a [`Ram`], so the RAM disk can reach guest buffers as a DMA engine.
#[derive(Clone, Debug)]
pub struct SharedRam(pub Arc<Mutex<Ram>>);

impl SharedRam {
    /// `size` zeroed bytes at `base`.
    pub fn new(base: u64, size: usize) -> Self {
        SharedRam(Arc::new(Mutex::new(Ram {
            base,
            bytes: vec![0; size],
            stray_accesses: 0,
            fences: 0,
        })))
    }

    /// Locks the RAM.
    pub fn lock(&self) -> MutexGuard<'_, Ram> {
        self.0.lock().unwrap()
    }

    /// Writes test bytes (the driver's side).
    pub fn put(&self, addr: u64, data: &[u8]) {
        let mut ram = self.lock();
        let range = ram.range(addr, data.len() as u64).unwrap();
        ram.bytes[range].copy_from_slice(data);
    }

    /// Reads test bytes (the driver's side).
    pub fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let ram = self.lock();
        let range = ram.range(addr, len as u64).unwrap();
        ram.bytes[range].to_vec()
    }

    /// Device accesses outside RAM so far.
    pub fn stray_accesses(&self) -> u32 {
        self.lock().stray_accesses
    }
}

impl GuestMemory for SharedRam {
    fn check(&mut self, addr: u64, len: u64) -> Result<(), MemError> {
        self.lock().range(addr, len).map(|_| ())
    }

    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let mut ram = self.lock();
        match ram.range(addr, buf.len() as u64) {
            Ok(range) => {
                buf.copy_from_slice(&ram.bytes[range]);
                Ok(())
            }
            Err(error) => {
                ram.stray_accesses += 1;
                Err(error)
            }
        }
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        let mut ram = self.lock();
        match ram.range(addr, data.len() as u64) {
            Ok(range) => {
                ram.bytes[range].copy_from_slice(data);
                Ok(())
            }
            Err(error) => {
                ram.stray_accesses += 1;
                Err(error)
            }
        }
    }

    fn fence(&mut self) {
        self.lock().fences += 1;
    }
}

/// One backend call, as the RAM disk saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskOp {
    /// `read(sector, buffer)` of `len` bytes; `guest` when the buffer was guest RAM.
    Read {
        sector: u64,
        len: usize,
        guest: bool,
    },
    /// `write(sector, buffer)`.
    Write {
        sector: u64,
        len: usize,
        guest: bool,
    },
    /// `read_runs(sector, runs)` with runs of `lens` bytes (when `DiskState::gathers`).
    ReadRuns { sector: u64, lens: Vec<usize> },
    /// `write_runs(sector, runs)` (when `DiskState::gathers`).
    WriteRuns { sector: u64, lens: Vec<usize> },
    /// `flush()`.
    Flush,
}

/// What the RAM disk holds and saw.
#[derive(Debug, Default)]
pub struct DiskState {
    /// The volume's bytes.
    pub data: Vec<u8>,
    /// Every call, in order.
    pub log: Vec<DiskOp>,
    /// Calls that were outside the volume or used a buffer outside RAM (must stay 0).
    pub violations: u32,
    /// Fail every call from now on.
    pub failing: bool,
    /// Take `read_runs` / `write_runs` as one call each (logged as one op) instead of the
    /// trait's default, one `read` / `write` per run.
    pub gathers: bool,
}

/// A RAM disk that checks every call against the volume and guest RAM.
#[derive(Clone, Debug)]
pub struct RamDisk {
    /// Guest RAM, for `Buffer::Guest`.
    pub ram: SharedRam,
    /// The volume.
    pub state: Arc<Mutex<DiskState>>,
}

impl RamDisk {
    /// A zeroed volume of `sectors` sectors.
    pub fn new(ram: SharedRam, sectors: u64) -> Self {
        RamDisk {
            ram,
            state: Arc::new(Mutex::new(DiskState {
                data: vec![0; sectors as usize * SECTOR_BYTES],
                ..DiskState::default()
            })),
        }
    }

    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.state.lock().unwrap()
    }

    /// The byte range of `len` bytes at `sector`, or a recorded violation.
    fn volume_range(&self, sector: u64, len: usize) -> Result<core::ops::Range<usize>, IoError> {
        let mut state = self.lock();
        let start = sector.checked_mul(SECTOR_BYTES as u64);
        let end = start.and_then(|start| start.checked_add(len as u64));
        match (start, end) {
            (Some(start), Some(end))
                if end <= state.data.len() as u64 && len.is_multiple_of(SECTOR_BYTES) =>
            {
                Ok(start as usize..end as usize)
            }
            _ => {
                state.violations += 1;
                Err(IoError::OutOfRange)
            }
        }
    }

    /// The RAM range of a guest buffer, or a recorded violation.
    fn ram_range(&self, addr: u64, len: usize) -> Result<core::ops::Range<usize>, IoError> {
        let range = self.ram.lock().range(addr, len as u64);
        range.map_err(|_| {
            self.lock().violations += 1;
            IoError::BadBuffer
        })
    }
}

impl BlockBackend for RamDisk {
    fn sectors(&self) -> u64 {
        (self.lock().data.len() / SECTOR_BYTES) as u64
    }

    fn read(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError> {
        let len = buffer.len();
        let guest = matches!(buffer, Buffer::Guest { .. });
        self.lock().log.push(DiskOp::Read { sector, len, guest });
        self.read_unlogged(sector, buffer)
    }

    fn write(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError> {
        let len = buffer.len();
        let guest = matches!(buffer, Buffer::Guest { .. });
        self.lock().log.push(DiskOp::Write { sector, len, guest });
        self.write_unlogged(sector, buffer)
    }

    fn read_runs(&mut self, sector: u64, runs: &[GuestRun]) -> Result<(), IoError> {
        if !self.lock().gathers {
            return for_each_run(sector, runs, |at, buffer| self.read(at, buffer));
        }
        let lens = runs.iter().map(|run| run.len).collect();
        self.lock().log.push(DiskOp::ReadRuns { sector, lens });
        for_each_run(sector, runs, |at, buffer| self.read_unlogged(at, buffer))
    }

    fn write_runs(&mut self, sector: u64, runs: &[GuestRun]) -> Result<(), IoError> {
        if !self.lock().gathers {
            return for_each_run(sector, runs, |at, buffer| self.write(at, buffer));
        }
        let lens = runs.iter().map(|run| run.len).collect();
        self.lock().log.push(DiskOp::WriteRuns { sector, lens });
        for_each_run(sector, runs, |at, buffer| self.write_unlogged(at, buffer))
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.lock().log.push(DiskOp::Flush);
        if self.lock().failing {
            return Err(IoError::Device);
        }
        Ok(())
    }
}

impl RamDisk {
    /// `read` without the log entry.
    fn read_unlogged(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError> {
        let len = buffer.len();
        if self.lock().failing {
            return Err(IoError::Device);
        }
        let volume = self.volume_range(sector, len)?;
        match buffer {
            Buffer::Guest { addr, len } => {
                let ram_range = self.ram_range(addr, len)?;
                let state = self.lock();
                self.ram.lock().bytes[ram_range].copy_from_slice(&state.data[volume]);
            }
            Buffer::Janus(bytes) => bytes.copy_from_slice(&self.lock().data[volume]),
        }
        Ok(())
    }

    /// `write` without the log entry.
    fn write_unlogged(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError> {
        let len = buffer.len();
        if self.lock().failing {
            return Err(IoError::Device);
        }
        let volume = self.volume_range(sector, len)?;
        match buffer {
            Buffer::Guest { addr, len } => {
                let ram_range = self.ram_range(addr, len)?;
                let ram = self.ram.lock();
                self.lock().data[volume].copy_from_slice(&ram.bytes[ram_range]);
            }
            Buffer::Janus(bytes) => self.lock().data[volume].copy_from_slice(bytes),
        }
        Ok(())
    }
}

/// VIRTQ_DESC_F_NEXT.
pub const NEXT: u16 = 1;
/// VIRTQ_DESC_F_WRITE.
pub const WRITE: u16 = 2;
/// VIRTQ_DESC_F_INDIRECT.
pub const INDIRECT: u16 = 4;

/// The driver's half of a split queue laid out in a [`SharedRam`].
#[derive(Clone, Debug)]
pub struct DriverQueue {
    /// The RAM the rings live in.
    pub ram: SharedRam,
    /// Queue size.
    pub size: u16,
    /// Descriptor table address.
    pub desc: u64,
    /// Available ring address.
    pub avail: u64,
    /// Used ring address.
    pub used: u64,
    /// The driver's free-running available index.
    pub avail_idx: u16,
}

impl DriverQueue {
    /// Rings of `size` entries at `base` (table, then avail, then used, 4 KiB apart).
    pub fn new(ram: SharedRam, base: u64, size: u16) -> Self {
        DriverQueue {
            ram,
            size,
            desc: base,
            avail: base + 0x1000 * (1 + u64::from(size) / 256),
            used: base + 0x2000 * (1 + u64::from(size) / 256),
            avail_idx: 0,
        }
    }

    /// Writes descriptor `index`.
    pub fn set_desc(&self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&addr.to_le_bytes());
        bytes[8..12].copy_from_slice(&len.to_le_bytes());
        bytes[12..14].copy_from_slice(&flags.to_le_bytes());
        bytes[14..].copy_from_slice(&next.to_le_bytes());
        self.ram.put(self.desc + 16 * u64::from(index), &bytes);
    }

    /// Writes a chain of `(addr, len, writable)` buffers at descriptors `first..` and
    /// offers it; returns the head.
    pub fn add_chain(&mut self, first: u16, buffers: &[(u64, u32, bool)]) -> u16 {
        for (i, &(addr, len, writable)) in buffers.iter().enumerate() {
            let index = first + i as u16;
            let mut flags = if writable { WRITE } else { 0 };
            if i + 1 < buffers.len() {
                flags |= NEXT;
            }
            self.set_desc(index, addr, len, flags, index + 1);
        }
        self.offer(first);
        first
    }

    /// Puts `head` in the available ring and publishes the new index.
    pub fn offer(&mut self, head: u16) {
        let slot = u64::from(self.avail_idx % self.size);
        self.ram.put(self.avail + 4 + 2 * slot, &head.to_le_bytes());
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.set_avail_idx(self.avail_idx);
    }

    /// Writes the available index as it is (for hostile tests).
    pub fn set_avail_idx(&self, idx: u16) {
        self.ram.put(self.avail + 2, &idx.to_le_bytes());
    }

    /// The used index the device published.
    pub fn used_idx(&self) -> u16 {
        let bytes = self.ram.get(self.used + 2, 2);
        u16::from_le_bytes([bytes[0], bytes[1]])
    }

    /// Used element `n` (free-running) as (id, len).
    pub fn used_elem(&self, n: u16) -> (u32, u32) {
        let slot = u64::from(n % self.size);
        let bytes = self.ram.get(self.used + 4 + 8 * slot, 8);
        (
            u32::from_le_bytes(bytes[..4].try_into().unwrap()),
            u32::from_le_bytes(bytes[4..].try_into().unwrap()),
        )
    }
}

/// Guest-physical base of the test RAM.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Size of the test RAM.
pub const RAM_BYTES: usize = 1 << 20;
/// Where the test rings start.
pub const RINGS: u64 = RAM_BASE;
/// Where test buffers start.
pub const BUFFERS: u64 = RAM_BASE + 0x10_0000 / 2;

/// MMIO register offsets the tests drive (spec 4.2.2).
#[allow(missing_docs)] // Named as the spec's table names them.
pub mod reg {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
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
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const SHM_LEN_LOW: u64 = 0x0b0;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    pub const CONFIG: u64 = 0x100;
}

use super::blk::BlkDevice;
use super::mmio::{MmioTransport, ProcessOutcome};
use super::status;
use crate::dev::{MmioDevice, Width};

/// A block device behind its transport, with guest RAM, disk and driver queue.
pub struct Harness {
    /// The device under test.
    pub transport: MmioTransport<BlkDevice>,
    /// Guest RAM.
    pub ram: SharedRam,
    /// The volume.
    pub disk: RamDisk,
    /// The driver's queue.
    pub queue: DriverQueue,
}

impl Harness {
    /// A device over a volume of `sectors`, not yet initialised.
    pub fn new(sectors: u64, queue_size: u16) -> Self {
        let ram = SharedRam::new(RAM_BASE, RAM_BYTES);
        let disk = RamDisk::new(ram.clone(), sectors);
        let device = BlkDevice::new(alloc::boxed::Box::new(disk.clone()), b"personal");
        Harness {
            transport: MmioTransport::new(device),
            queue: DriverQueue::new(ram.clone(), RINGS, queue_size),
            ram,
            disk,
        }
    }

    /// A device initialised as spec 3.1.1 says, with `features` accepted.
    pub fn ready(sectors: u64, queue_size: u16, features: u64) -> Self {
        let mut harness = Harness::new(sectors, queue_size);
        harness.init(features);
        harness
    }

    /// Reads a 32-bit register.
    pub fn read(&mut self, offset: u64) -> u32 {
        self.transport.read(offset, Width::Word).unwrap() as u32
    }

    /// Writes a 32-bit register.
    pub fn write(&mut self, offset: u64, value: u32) {
        self.transport
            .write(offset, Width::Word, u64::from(value))
            .unwrap();
    }

    /// Negotiates `features` and sets up queue 0 at the harness rings.
    pub fn init(&mut self, features: u64) {
        self.write(reg::STATUS, 0);
        self.write(reg::STATUS, status::ACKNOWLEDGE);
        self.write(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        self.write(reg::DRIVER_FEATURES_SEL, 0);
        self.write(reg::DRIVER_FEATURES, features as u32);
        self.write(reg::DRIVER_FEATURES_SEL, 1);
        self.write(reg::DRIVER_FEATURES, (features >> 32) as u32);
        let negotiating = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.write(reg::STATUS, negotiating);
        assert_eq!(self.read(reg::STATUS), negotiating);
        self.set_queue(self.queue.desc, self.queue.avail, self.queue.used);
        self.write(reg::STATUS, negotiating | status::DRIVER_OK);
        self.queue.avail_idx = 0;
        self.ram.put(self.queue.avail, &[0; 4]);
        self.ram.put(self.queue.used, &[0; 4]);
    }

    /// Programs queue 0 with the harness size and the given ring addresses, then enables it.
    pub fn set_queue(&mut self, desc: u64, avail: u64, used: u64) {
        self.write(reg::QUEUE_SEL, 0);
        self.write(reg::QUEUE_NUM, u32::from(self.queue.size));
        for (low, value) in [
            (reg::QUEUE_DESC_LOW, desc),
            (reg::QUEUE_DRIVER_LOW, avail),
            (reg::QUEUE_DEVICE_LOW, used),
        ] {
            self.write(low, value as u32);
            self.write(low + 4, (value >> 32) as u32);
        }
        self.write(reg::QUEUE_READY, 1);
    }

    /// Notifies queue 0 and processes with a large budget.
    pub fn kick(&mut self) -> ProcessOutcome {
        self.kick_with_budget(1024)
    }

    /// Notifies queue 0 and processes with `budget`.
    pub fn kick_with_budget(&mut self, budget: usize) -> ProcessOutcome {
        self.write(reg::QUEUE_NOTIFY, 0);
        let mut memory = self.ram.clone();
        self.transport.process(&mut memory, budget)
    }

    /// Whether the device asks for a reset.
    pub fn needs_reset(&self) -> bool {
        self.transport.status() & status::DEVICE_NEEDS_RESET != 0
    }
}

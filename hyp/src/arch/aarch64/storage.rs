//! The board's disk as the personalities' shared physical disk: the platform's
//! virtio-blk driver behind a ticket lock (requests from the CPUs of both
//! personalities are served whole, in FIFO order), its partition table, and the
//! backend of each personality's volume.

use alloc::vec::Vec;

use spin::mutex::TicketMutex;
use spin::Once;

use platform::drivers::virtio_disk::{Disk, DiskError};

use crate::arch::aarch64::{boot, mmu};
use crate::board::VirtioMmio;
use crate::janus_println;
use crate::storage::backend::GuestRun;
use crate::storage::gpt::{self, PartitionTable};
use crate::storage::{self, PhysicalDisk, PhysicalError, Volume, VolumeBackend};

/// The board's disk, shared by every personality.
pub struct BoardDisk {
    /// The driver; each request holds the lock from submission to completion.
    disk: TicketMutex<Disk>,
    /// Its capacity in sectors (fixed once probed).
    sectors: u64,
}

fn physical(error: DiskError) -> PhysicalError {
    match error {
        DiskError::OutOfRange => PhysicalError::OutOfRange,
        DiskError::BadLength => PhysicalError::BadLength,
        DiskError::Device(_) => PhysicalError::Device,
    }
}

/// Whether `[addr, addr + len)` lies wholly inside one personality's RAM.
fn in_guest_ram(addr: u64, len: usize) -> bool {
    boot::personalities()
        .iter()
        .any(|vm| vm.ram_contains(addr, len as u64))
}

/// The runs as the driver takes them, once each lies inside one personality's RAM.
fn physical_runs(runs: &[GuestRun]) -> Result<Vec<(u64, usize)>, PhysicalError> {
    runs.iter()
        .map(|run| {
            if in_guest_ram(run.addr, run.len) {
                Ok((run.addr, run.len))
            } else {
                Err(PhysicalError::NotGuestRam)
            }
        })
        .collect()
}

impl PhysicalDisk for BoardDisk {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read(&self, sector: u64, buffer: &mut [u8]) -> Result<(), PhysicalError> {
        self.disk.lock().read(sector, buffer).map_err(physical)
    }

    fn write(&self, sector: u64, data: &[u8]) -> Result<(), PhysicalError> {
        self.disk.lock().write(sector, data).map_err(physical)
    }

    fn flush(&self) -> Result<(), PhysicalError> {
        self.disk.lock().flush().map_err(physical)
    }

    fn read_guest(&self, sector: u64, addr: u64, len: usize) -> Result<(), PhysicalError> {
        if !in_guest_ram(addr, len) {
            return Err(PhysicalError::NotGuestRam);
        }
        // SAFETY: the range lies inside a personality's RAM (checked above), which
        // Janus maps identity as Normal memory and never uses for itself; while
        // the request runs Janus does not touch it either (a personality's RAM is
        // only loaded or cleared when none of its vCPUs runs, and this call runs
        // on one of them, for its device model, which checked the range).
        unsafe { self.disk.lock().read_phys(sector, addr, len) }.map_err(physical)
    }

    fn write_guest(&self, sector: u64, addr: u64, len: usize) -> Result<(), PhysicalError> {
        if !in_guest_ram(addr, len) {
            return Err(PhysicalError::NotGuestRam);
        }
        // SAFETY: as in `read_guest`; the device only reads the range.
        unsafe { self.disk.lock().write_phys(sector, addr, len) }.map_err(physical)
    }

    fn read_guest_runs(&self, sector: u64, runs: &[GuestRun]) -> Result<(), PhysicalError> {
        let runs = physical_runs(runs)?;
        // SAFETY: every run lies inside a personality's RAM (checked by
        // `physical_runs`); as in `read_guest`, Janus maps it identity as Normal
        // memory and does not touch it while the request runs. One lock for the
        // whole request, so it is served whole, in FIFO order.
        unsafe { self.disk.lock().read_phys_runs(sector, &runs) }.map_err(physical)
    }

    fn write_guest_runs(&self, sector: u64, runs: &[GuestRun]) -> Result<(), PhysicalError> {
        let runs = physical_runs(runs)?;
        // SAFETY: as in `read_guest_runs`; the device only reads the runs.
        unsafe { self.disk.lock().write_phys_runs(sector, &runs) }.map_err(physical)
    }
}

/// The disk and the partition table read from it at boot.
pub struct Storage {
    /// The disk.
    pub disk: BoardDisk,
    /// Its partition table (checked).
    pub table: PartitionTable,
}

/// Written once by the boot CPU (`init`), read-only afterwards; `None` when there
/// is no disk or no good partition table. The disk inside has its own lock.
static STORAGE: Once<Option<Storage>> = Once::new();

/// The first block device among the board's virtio-mmio slots.
fn find_disk(slots: &[VirtioMmio]) -> Option<(VirtioMmio, Disk)> {
    slots.iter().find_map(|slot| {
        // Only windows inside the Device memory every map of Janus' has.
        if !mmu::in_device_map(slot.base, slot.size) {
            return None;
        }
        // SAFETY: the device tree names this virtio-mmio window; it lies in the
        // first GiB, mapped as Device memory (checked above), and nothing else in
        // Janus uses the virtio-mmio slots. Probing another kind of device only
        // reads its ID registers.
        let disk = unsafe { Disk::probe(slot.base as usize, slot.size as usize) }?;
        Some((*slot, disk))
    })
}

/// Finds the board's disk and reads its partition table, saying what it found.
/// Call once, on the boot CPU, with the console up. Never fails: without a disk
/// or a good table the personalities start without volumes.
pub fn init(slots: &[VirtioMmio]) {
    STORAGE.call_once(|| {
        let Some((slot, disk)) = find_disk(slots) else {
            janus_println!("no disk: personalities start without volumes");
            return None;
        };
        let read_only = disk.read_only();
        let disk = BoardDisk {
            sectors: disk.capacity(),
            disk: TicketMutex::new(disk),
        };
        match gpt::read_table(&mut &disk) {
            Ok(table) => {
                let line = storage::describe(disk.sectors, slot.base, &table);
                let note = if read_only { " (read-only)" } else { "" };
                janus_println!("{line}{note}");
                Some(Storage { disk, table })
            }
            Err(why) => {
                janus_println!("disk: {why}; personalities start without volumes");
                None
            }
        }
    });
}

/// The disk and its table, when boot found both.
pub fn storage() -> Option<&'static Storage> {
    STORAGE.get()?.as_ref()
}

/// The volume for the personality (or partition) named `name`.
pub fn volume(name: &str) -> Option<Volume> {
    Volume::named(&storage()?.table, name)
}

/// The block backend of personality `name`'s volume, for the personality whose
/// RAM is `ram` (`(base, size)`); `None` when it has no volume.
pub fn backend(name: &str, ram: (u64, u64)) -> Option<VolumeBackend<'static, BoardDisk>> {
    let storage = storage()?;
    VolumeBackend::new(&storage.disk, Volume::named(&storage.table, name)?, ram)
}

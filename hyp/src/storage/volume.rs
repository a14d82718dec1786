//! One personality's volume served from the shared physical disk: the
//! `BlockBackend` behind its virtio-blk device.
#![forbid(unsafe_code)]

use core::fmt;

use super::backend::{BlockBackend, Buffer, GuestRun, IoError, MAX_RUNS, SECTOR_BYTES};
use super::{PhysicalDisk, PhysicalError, Volume};

/// Why a volume request was refused or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeError {
    /// Sectors past the end of the volume (relative to the volume).
    OutOfRange {
        /// First sector asked for.
        sector: u64,
        /// Sectors asked for.
        count: u64,
    },
    /// A length of zero or not a whole number of sectors.
    BadLength(usize),
    /// A list of guest runs that is empty or longer than `MAX_RUNS`.
    RunCount(usize),
    /// A guest buffer outside the personality's own RAM.
    OutsideRam {
        /// Its address.
        addr: u64,
        /// Its length.
        len: usize,
    },
    /// The physical disk refused or failed it.
    Disk(PhysicalError),
}

impl fmt::Display for VolumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VolumeError::OutOfRange { sector, count } => {
                write!(f, "{count} sectors at {sector} lie past the volume's end")
            }
            VolumeError::BadLength(len) => write!(f, "{len} bytes is not whole sectors"),
            VolumeError::RunCount(count) => {
                write!(f, "{count} guest runs (from 1 to {MAX_RUNS} in a request)")
            }
            VolumeError::OutsideRam { addr, len } => {
                write!(f, "{len} bytes at {addr:#x} lie outside its RAM")
            }
            VolumeError::Disk(error) => write!(f, "disk: {error}"),
        }
    }
}

/// A personality's volume on the shared disk. Sector numbers it is given are
/// relative to the volume; it never touches a sector outside it.
pub struct VolumeBackend<'d, D: PhysicalDisk + ?Sized> {
    disk: &'d D,
    volume: Volume,
    /// The personality's RAM, `(base, size)`: guest buffers must lie inside.
    ram: (u64, u64),
}

impl<'d, D: PhysicalDisk + ?Sized> VolumeBackend<'d, D> {
    /// The backend for `volume` of `disk`, for the personality whose RAM is
    /// `ram` (`(base, size)`). `None` when the volume does not lie on the disk.
    pub fn new(disk: &'d D, volume: Volume, ram: (u64, u64)) -> Option<Self> {
        let end = volume.first_lba.checked_add(volume.sectors)?;
        (end <= disk.sectors()).then_some(VolumeBackend { disk, volume, ram })
    }

    /// The volume it serves.
    pub fn volume(&self) -> Volume {
        self.volume
    }

    /// The disk sector of volume sector `sector`, once `len` bytes from there are
    /// whole sectors inside the volume.
    fn place(&self, sector: u64, len: usize) -> Result<u64, VolumeError> {
        if len == 0 || !len.is_multiple_of(SECTOR_BYTES) {
            return Err(VolumeError::BadLength(len));
        }
        let count = (len / SECTOR_BYTES) as u64;
        let inside = sector
            .checked_add(count)
            .is_some_and(|end| end <= self.volume.sectors);
        if !inside {
            return Err(VolumeError::OutOfRange { sector, count });
        }
        // Cannot overflow: first_lba + sectors fits (checked in `new`).
        Ok(self.volume.first_lba + sector)
    }

    /// Checks that a guest buffer lies inside the personality's RAM.
    fn in_ram(&self, addr: u64, len: usize) -> Result<(), VolumeError> {
        let (base, size) = self.ram;
        let inside = addr >= base
            && (len as u64)
                .checked_add(addr - base)
                .is_some_and(|end| end <= size);
        if inside {
            Ok(())
        } else {
            Err(VolumeError::OutsideRam { addr, len })
        }
    }

    /// The disk sector of volume sector `sector` for the guest runs `runs`, once
    /// there are 1 to `MAX_RUNS` of them, each whole sectors inside the
    /// personality's RAM, and all their sectors inside the volume.
    fn place_runs(&self, sector: u64, runs: &[GuestRun]) -> Result<u64, VolumeError> {
        if runs.is_empty() || runs.len() > MAX_RUNS {
            return Err(VolumeError::RunCount(runs.len()));
        }
        let mut total = 0usize;
        for run in runs {
            if run.len == 0 || !run.len.is_multiple_of(SECTOR_BYTES) {
                return Err(VolumeError::BadLength(run.len));
            }
            self.in_ram(run.addr, run.len)?;
            total = total
                .checked_add(run.len)
                .ok_or(VolumeError::BadLength(usize::MAX))?;
        }
        self.place(sector, total)
    }

    fn read_volume(&self, sector: u64, buffer: Buffer<'_>) -> Result<(), VolumeError> {
        match buffer {
            Buffer::Guest { addr, len } => {
                let at = self.place(sector, len)?;
                self.in_ram(addr, len)?;
                self.disk.read_guest(at, addr, len)
            }
            Buffer::Janus(bytes) => {
                let at = self.place(sector, bytes.len())?;
                self.disk.read(at, bytes)
            }
        }
        .map_err(VolumeError::Disk)
    }

    fn write_volume(&self, sector: u64, buffer: Buffer<'_>) -> Result<(), VolumeError> {
        match buffer {
            Buffer::Guest { addr, len } => {
                let at = self.place(sector, len)?;
                self.in_ram(addr, len)?;
                self.disk.write_guest(at, addr, len)
            }
            Buffer::Janus(bytes) => {
                let at = self.place(sector, bytes.len())?;
                self.disk.write(at, bytes)
            }
        }
        .map_err(VolumeError::Disk)
    }
}

impl<D: PhysicalDisk + ?Sized> BlockBackend for VolumeBackend<'_, D> {
    fn sectors(&self) -> u64 {
        self.volume.sectors
    }

    fn read(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError> {
        Ok(self.read_volume(sector, buffer)?)
    }

    fn write(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError> {
        Ok(self.write_volume(sector, buffer)?)
    }

    fn read_runs(&mut self, sector: u64, runs: &[GuestRun]) -> Result<(), IoError> {
        let at = self.place_runs(sector, runs)?;
        Ok(self
            .disk
            .read_guest_runs(at, runs)
            .map_err(VolumeError::Disk)?)
    }

    fn write_runs(&mut self, sector: u64, runs: &[GuestRun]) -> Result<(), IoError> {
        let at = self.place_runs(sector, runs)?;
        Ok(self
            .disk
            .write_guest_runs(at, runs)
            .map_err(VolumeError::Disk)?)
    }

    fn flush(&mut self) -> Result<(), IoError> {
        // Writes return only once the device completed them, so this FLUSH is
        // issued after every write this backend completed.
        Ok(self.disk.flush().map_err(VolumeError::Disk)?)
    }
}

#[cfg(test)]
mod tests;

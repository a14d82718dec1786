//! One of Janus' own partitions (`shared`, `janus`) as the block disk its
//! store or log is written on: sector numbers relative to the partition, every
//! request checked to lie inside it, Janus' buffers only.
#![forbid(unsafe_code)]

use crate::channel::store::disk::{BlockDisk, DiskError};

use super::gpt::SECTOR_BYTES;
use super::{PhysicalDisk, Volume};

/// A partition of the physical disk, for Janus' own use.
pub struct PartitionDisk<'d, D: PhysicalDisk + ?Sized> {
    disk: &'d D,
    volume: Volume,
}

impl<'d, D: PhysicalDisk + ?Sized> PartitionDisk<'d, D> {
    /// The partition `volume` of `disk`; `None` when it does not lie on the disk.
    pub fn new(disk: &'d D, volume: Volume) -> Option<Self> {
        let end = volume.first_lba.checked_add(volume.sectors)?;
        (end <= disk.sectors()).then_some(PartitionDisk { disk, volume })
    }

    /// The physical sector of partition sector `sector` for `len` bytes, when
    /// they are whole sectors inside the partition.
    fn place(&self, sector: u64, len: usize) -> Result<u64, DiskError> {
        if len == 0 || !len.is_multiple_of(SECTOR_BYTES) {
            return Err(DiskError);
        }
        let count = (len / SECTOR_BYTES) as u64;
        let end = sector.checked_add(count).ok_or(DiskError)?;
        if end > self.volume.sectors {
            return Err(DiskError);
        }
        Ok(self.volume.first_lba + sector)
    }
}

impl<D: PhysicalDisk + ?Sized> BlockDisk for PartitionDisk<'_, D> {
    fn sectors(&self) -> u64 {
        self.volume.sectors
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let at = self.place(sector, buf.len())?;
        self.disk.read(at, buf).map_err(|_| DiskError)
    }

    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError> {
        let at = self.place(sector, data.len())?;
        self.disk.write(at, data).map_err(|_| DiskError)
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        self.disk.flush().map_err(|_| DiskError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::backend::GuestRun;
    use crate::storage::PhysicalError;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    /// A disk in RAM that counts flushes.
    struct RamDisk {
        bytes: RefCell<Vec<u8>>,
        flushes: RefCell<u32>,
    }

    impl RamDisk {
        fn new(sectors: usize) -> RamDisk {
            RamDisk {
                bytes: RefCell::new(vec![0; sectors * SECTOR_BYTES]),
                flushes: RefCell::new(0),
            }
        }

        fn range(&self, sector: u64, len: usize) -> Result<core::ops::Range<usize>, PhysicalError> {
            let start =
                usize::try_from(sector).map_err(|_| PhysicalError::OutOfRange)? * SECTOR_BYTES;
            let end = start + len;
            if end > self.bytes.borrow().len() {
                return Err(PhysicalError::OutOfRange);
            }
            Ok(start..end)
        }
    }

    impl PhysicalDisk for RamDisk {
        fn sectors(&self) -> u64 {
            (self.bytes.borrow().len() / SECTOR_BYTES) as u64
        }
        fn read(&self, sector: u64, buffer: &mut [u8]) -> Result<(), PhysicalError> {
            let range = self.range(sector, buffer.len())?;
            buffer.copy_from_slice(&self.bytes.borrow()[range]);
            Ok(())
        }
        fn write(&self, sector: u64, data: &[u8]) -> Result<(), PhysicalError> {
            let range = self.range(sector, data.len())?;
            self.bytes.borrow_mut()[range].copy_from_slice(data);
            Ok(())
        }
        fn flush(&self) -> Result<(), PhysicalError> {
            *self.flushes.borrow_mut() += 1;
            Ok(())
        }
        fn read_guest(&self, _: u64, _: u64, _: usize) -> Result<(), PhysicalError> {
            Err(PhysicalError::NotGuestRam)
        }
        fn write_guest(&self, _: u64, _: u64, _: usize) -> Result<(), PhysicalError> {
            Err(PhysicalError::NotGuestRam)
        }
        fn read_guest_runs(&self, _: u64, _: &[GuestRun]) -> Result<(), PhysicalError> {
            Err(PhysicalError::NotGuestRam)
        }
        fn write_guest_runs(&self, _: u64, _: &[GuestRun]) -> Result<(), PhysicalError> {
            Err(PhysicalError::NotGuestRam)
        }
    }

    const PART: Volume = Volume {
        first_lba: 4,
        sectors: 8,
    };

    #[test]
    fn sectors_are_relative_to_the_partition_and_stay_inside_it() {
        let disk = RamDisk::new(16);
        let mut part = PartitionDisk::new(&disk, PART).expect("on the disk");
        assert_eq!(part.sectors(), 8);
        part.write(0, &[0xaa; SECTOR_BYTES]).expect("first sector");
        part.write(7, &[0xbb; SECTOR_BYTES]).expect("last sector");
        assert_eq!(disk.bytes.borrow()[4 * SECTOR_BYTES], 0xaa);
        assert_eq!(disk.bytes.borrow()[11 * SECTOR_BYTES], 0xbb);
        assert_eq!(disk.bytes.borrow()[12 * SECTOR_BYTES], 0);
        let mut back = [0; SECTOR_BYTES];
        part.read(7, &mut back).expect("read back");
        assert_eq!(back, [0xbb; SECTOR_BYTES]);
        part.flush().expect("flush");
        assert_eq!(*disk.flushes.borrow(), 1);
    }

    #[test]
    fn requests_past_the_end_or_not_whole_sectors_are_refused() {
        let disk = RamDisk::new(16);
        let mut part = PartitionDisk::new(&disk, PART).expect("on the disk");
        assert_eq!(part.write(8, &[1; SECTOR_BYTES]), Err(DiskError));
        assert_eq!(part.write(7, &[1; 2 * SECTOR_BYTES]), Err(DiskError));
        assert_eq!(part.write(u64::MAX, &[1; SECTOR_BYTES]), Err(DiskError));
        assert_eq!(part.read(0, &mut [0; 100]), Err(DiskError));
        assert_eq!(part.read(0, &mut []), Err(DiskError));
        assert!(disk.bytes.borrow().iter().all(|&byte| byte == 0));
        let beyond = Volume {
            first_lba: 10,
            sectors: 8,
        };
        assert!(PartitionDisk::new(&disk, beyond).is_none());
    }
}

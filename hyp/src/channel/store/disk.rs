//! The block device under the store and the audit log: one partition in 512-byte
//! sectors, with writes that become durable only at a flush. RAM disks for tests
//! are in `testing` (with the `store-testing` feature or in tests).

/// Bytes in a sector.
pub const SECTOR_BYTES: usize = 512;

/// The device failed a read, write or flush (or the request left the partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskError;

/// One partition of a disk with a volatile write cache.
pub trait BlockDisk {
    /// 512-byte sectors in the partition.
    fn sectors(&self) -> u64;
    /// Reads `buf.len()/512` sectors from `sector` (relative to the partition).
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// Writes; returns when the device completed the write (NOT yet durable).
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError>;
    /// Makes every completed write durable (a physical FLUSH of the whole disk).
    fn flush(&mut self) -> Result<(), DiskError>;
}

impl<T: BlockDisk + ?Sized> BlockDisk for &mut T {
    fn sectors(&self) -> u64 {
        (**self).sectors()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        (**self).read(sector, buf)
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError> {
        (**self).write(sector, data)
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        (**self).flush()
    }
}

/// The byte range of `len` bytes at `sector` on a disk of `disk_bytes`, if the
/// length is whole sectors and the range lies inside.
pub fn byte_range(sector: u64, len: usize, disk_bytes: usize) -> Option<core::ops::Range<usize>> {
    if !len.is_multiple_of(SECTOR_BYTES) {
        return None;
    }
    let start = usize::try_from(sector).ok()?.checked_mul(SECTOR_BYTES)?;
    let end = start.checked_add(len)?;
    (end <= disk_bytes).then_some(start..end)
}

/// RAM disks for host tests and fuzzing: [`testing::MemDisk`] and the power-cut
/// recorder [`testing::CrashDisk`].
#[cfg(any(test, feature = "store-testing"))]
pub mod testing {
    use super::{byte_range, BlockDisk, DiskError, SECTOR_BYTES};
    use alloc::vec;
    use alloc::vec::Vec;

    /// A disk in RAM whose writes are durable at once.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct MemDisk {
        /// The disk's bytes.
        pub bytes: Vec<u8>,
        /// Reads, writes and flushes served (for throughput tests).
        pub reads: u64,
        /// Writes served.
        pub writes: u64,
        /// Flushes served.
        pub flushes: u64,
        /// When set, every request fails (an unplugged disk).
        pub failing: bool,
    }

    impl MemDisk {
        /// A zeroed disk of `sectors` sectors.
        pub fn new(sectors: usize) -> Self {
            Self::from_bytes(vec![0; sectors * SECTOR_BYTES])
        }

        /// A disk holding `bytes` (padded with zeros to whole sectors).
        pub fn from_bytes(mut bytes: Vec<u8>) -> Self {
            bytes.resize(bytes.len().div_ceil(SECTOR_BYTES) * SECTOR_BYTES, 0);
            MemDisk {
                bytes,
                reads: 0,
                writes: 0,
                flushes: 0,
                failing: false,
            }
        }
    }

    impl BlockDisk for MemDisk {
        fn sectors(&self) -> u64 {
            (self.bytes.len() / SECTOR_BYTES) as u64
        }
        fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
            let range = byte_range(sector, buf.len(), self.bytes.len()).ok_or(DiskError)?;
            if self.failing {
                return Err(DiskError);
            }
            self.reads += 1;
            buf.copy_from_slice(&self.bytes[range]);
            Ok(())
        }
        fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError> {
            let range = byte_range(sector, data.len(), self.bytes.len()).ok_or(DiskError)?;
            if self.failing {
                return Err(DiskError);
            }
            self.writes += 1;
            self.bytes[range].copy_from_slice(data);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), DiskError> {
            if self.failing {
                return Err(DiskError);
            }
            self.flushes += 1;
            Ok(())
        }
    }

    /// One request a [`CrashDisk`] recorded.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Op {
        /// A completed write of whole sectors.
        Write {
            /// First sector.
            sector: u64,
            /// What was written.
            data: Vec<u8>,
        },
        /// A completed flush.
        Flush,
    }

    /// What became of one write that was not yet flushed when the power went.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Fate {
        /// Never reached the medium.
        Lost,
        /// Reached it whole.
        Applied,
        /// Its first `n` sectors reached the medium, the next one half (its first
        /// half new bytes, the rest old), the others not.
        Torn(usize),
    }

    /// A RAM disk that records every write and flush, so that a test can rebuild
    /// the medium as a power cut would have left it after any request.
    #[derive(Clone, Debug)]
    pub struct CrashDisk {
        base: Vec<u8>,
        current: Vec<u8>,
        ops: Vec<Op>,
    }

    impl CrashDisk {
        /// A recorder over a disk that holds `image` (durable).
        pub fn new(image: Vec<u8>) -> Self {
            let mut disk = MemDisk::from_bytes(image).bytes;
            disk.shrink_to_fit();
            CrashDisk {
                current: disk.clone(),
                base: disk,
                ops: Vec::new(),
            }
        }

        /// The requests recorded so far.
        pub fn ops(&self) -> &[Op] {
            &self.ops
        }

        /// The disk as the store sees it now (every write applied).
        pub fn current(&self) -> &[u8] {
            &self.current
        }

        /// The medium after a power cut that came when the first `cut` requests
        /// had completed: every write before the last of them that is a flush is
        /// there; each later one of them fared as `fate(index into ops)` says.
        pub fn image_at(&self, cut: usize, fate: &mut dyn FnMut(usize) -> Fate) -> MemDisk {
            let cut = cut.min(self.ops.len());
            let durable = self.ops[..cut]
                .iter()
                .rposition(|op| *op == Op::Flush)
                .map_or(0, |flush| flush + 1);
            let mut image = self.base.clone();
            for (index, op) in self.ops[..cut].iter().enumerate() {
                let Op::Write { sector, data } = op else {
                    continue;
                };
                let start = *sector as usize * SECTOR_BYTES;
                let target = &mut image[start..start + data.len()];
                let fate = if index < durable {
                    Fate::Applied
                } else {
                    fate(index)
                };
                match fate {
                    Fate::Lost => {}
                    Fate::Applied => target.copy_from_slice(data),
                    Fate::Torn(sectors) => {
                        let whole = (sectors * SECTOR_BYTES).min(data.len());
                        target[..whole].copy_from_slice(&data[..whole]);
                        let half = (whole + SECTOR_BYTES / 2).min(data.len());
                        target[whole..half].copy_from_slice(&data[whole..half]);
                    }
                }
            }
            MemDisk::from_bytes(image)
        }
    }

    impl BlockDisk for CrashDisk {
        fn sectors(&self) -> u64 {
            (self.current.len() / SECTOR_BYTES) as u64
        }
        fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
            let range = byte_range(sector, buf.len(), self.current.len()).ok_or(DiskError)?;
            buf.copy_from_slice(&self.current[range]);
            Ok(())
        }
        fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError> {
            let range = byte_range(sector, data.len(), self.current.len()).ok_or(DiskError)?;
            self.current[range].copy_from_slice(data);
            self.ops.push(Op::Write {
                sector,
                data: data.to_vec(),
            });
            Ok(())
        }
        fn flush(&mut self) -> Result<(), DiskError> {
            self.ops.push(Op::Flush);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{CrashDisk, Fate, MemDisk, Op};
    use super::{BlockDisk, SECTOR_BYTES};

    #[test]
    fn crash_disk_keeps_flushed_writes_and_fates_the_rest() {
        let mut disk = CrashDisk::new(alloc::vec![0; 8 * SECTOR_BYTES]);
        disk.write(0, &[1; SECTOR_BYTES]).unwrap();
        disk.flush().unwrap();
        disk.write(1, &[2; 2 * SECTOR_BYTES]).unwrap();
        disk.write(0, &[3; SECTOR_BYTES]).unwrap();
        assert_eq!(disk.ops().len(), 4);
        assert_eq!(disk.ops()[1], Op::Flush);
        let mut buf = [0u8; SECTOR_BYTES];
        disk.read(0, &mut buf).unwrap();
        assert_eq!(buf, [3; SECTOR_BYTES]);
        // Cut before the flush completed: nothing of the first write is promised.
        let image = disk.image_at(1, &mut |_| Fate::Lost);
        assert!(image.bytes.iter().all(|&b| b == 0));
        // After the flush, the first write stays whatever happens to the others.
        let image = disk.image_at(4, &mut |_| Fate::Lost);
        assert!(image.bytes[..SECTOR_BYTES].iter().all(|&b| b == 1));
        assert!(image.bytes[SECTOR_BYTES..].iter().all(|&b| b == 0));
        let image = disk.image_at(4, &mut |index| {
            if index == 2 {
                Fate::Torn(1)
            } else {
                Fate::Applied
            }
        });
        assert!(image.bytes[..SECTOR_BYTES].iter().all(|&b| b == 3));
        assert!(image.bytes[SECTOR_BYTES..2 * SECTOR_BYTES]
            .iter()
            .all(|&b| b == 2));
        let third = &image.bytes[2 * SECTOR_BYTES..3 * SECTOR_BYTES];
        assert!(third[..SECTOR_BYTES / 2].iter().all(|&b| b == 2));
        assert!(third[SECTOR_BYTES / 2..].iter().all(|&b| b == 0));
    }

    #[test]
    fn requests_outside_the_disk_or_of_partial_sectors_fail() {
        let mut disk = MemDisk::new(4);
        let mut buf = [0u8; SECTOR_BYTES];
        assert!(disk.read(4, &mut buf).is_err());
        assert!(disk.write(3, &[0; 2 * SECTOR_BYTES]).is_err());
        assert!(disk.write(0, &[0; 100]).is_err());
        assert!(disk.read(u64::MAX, &mut buf).is_err());
        assert!(disk.write(3, &[0; SECTOR_BYTES]).is_ok());
    }
}

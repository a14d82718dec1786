//! The block device the audit log (and the store) run on: one partition.
//!
//! Copied from the channel contract so the audit log compiles on its own branch;
//! part B defines the same trait in `store/disk.rs`, and the lead keeps one of them.

/// A partition of the physical disk, or a RAM disk in tests.
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

/// The device failed a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskError;

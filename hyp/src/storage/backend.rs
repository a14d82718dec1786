//! PLACEHOLDER for part B's block-backend interface, copied from the storage
//! contract ("B's interface", hyp/src/dev/virtio/blk/mod.rs) so that this branch
//! builds on its own.
//!
//! At the merge, replace everything above `From<VolumeError> for IoError` with
//! `pub use crate::dev::virtio::blk::{BlockBackend, Buffer, IoError, SECTOR_BYTES};`
//! and keep that one conversion: it is the only place this branch builds an
//! `IoError`, and it uses the variants B's branch `virtio-dev` has (checked
//! against its commit 55f0c96: `OutOfRange`, `BadBuffer`, `Device`).
#![forbid(unsafe_code)]

use super::volume::VolumeError;
use super::PhysicalError;

/// Bytes in a sector.
pub const SECTOR_BYTES: usize = 512;

/// Where the bytes of one transfer are.
#[derive(Debug)]
pub enum Buffer<'a> {
    /// `len` bytes of the personality's RAM at `addr`, already `check`ed: zero copy, the
    /// physical device reads or writes them directly. `len` is a multiple of 512.
    Guest {
        /// Guest-physical (== physical) address.
        addr: u64,
        /// Bytes.
        len: usize,
    },
    /// Janus' own bytes (a bounce for a sector split across descriptors, or zeros).
    Janus(&'a mut [u8]),
}

/// Why a backend call failed (the variants of B's `IoError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoError {
    /// The sectors lie (partly) outside the volume.
    OutOfRange,
    /// The buffer is unusable: length not a multiple of 512, or not RAM the backend may use.
    BadBuffer,
    /// The physical device reported an error or did not answer.
    Device,
}

/// Sectors of zeros `write_zeroes` writes per request.
const ZERO_CHUNK_SECTORS: u64 = 8;

/// The volume behind one virtual block device (sector numbers are relative to the volume).
pub trait BlockBackend {
    /// Sectors in the volume.
    fn sectors(&self) -> u64;
    /// Reads `len/512` sectors starting at `sector` into `buffer`. The model has already
    /// checked `sector + count <= sectors()`; the backend checks again (defence in depth).
    ///
    /// # Errors
    /// `IoError` when refused or failed.
    fn read(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError>;
    /// Writes; returns only when the physical device has completed the write.
    ///
    /// # Errors
    /// `IoError` when refused or failed.
    fn write(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError>;
    /// Returns only after a physical FLUSH issued after every completed write has completed.
    ///
    /// # Errors
    /// `IoError` when the disk fails it.
    fn flush(&mut self) -> Result<(), IoError>;
    /// Default: writes zeros from a Janus buffer.
    ///
    /// # Errors
    /// `IoError` when refused or failed.
    fn write_zeroes(&mut self, sector: u64, count: u64) -> Result<(), IoError> {
        let mut zeros = [0u8; ZERO_CHUNK_SECTORS as usize * SECTOR_BYTES];
        let mut done = 0;
        while done < count {
            let now = (count - done).min(ZERO_CHUNK_SECTORS);
            let bytes = &mut zeros[..now as usize * SECTOR_BYTES];
            let at = sector.checked_add(done).ok_or(IoError::OutOfRange)?;
            self.write(at, Buffer::Janus(bytes))?;
            done += now;
        }
        Ok(())
    }
    /// Default: `write_zeroes`.
    ///
    /// # Errors
    /// `IoError` when refused or failed.
    fn discard(&mut self, sector: u64, count: u64) -> Result<(), IoError> {
        self.write_zeroes(sector, count)
    }
}

/// The one place a volume's error becomes the device model's.
impl From<VolumeError> for IoError {
    fn from(error: VolumeError) -> IoError {
        match error {
            VolumeError::OutOfRange { .. } | VolumeError::Disk(PhysicalError::OutOfRange) => {
                IoError::OutOfRange
            }
            VolumeError::BadLength(_)
            | VolumeError::OutsideRam { .. }
            | VolumeError::Disk(PhysicalError::BadLength | PhysicalError::NotGuestRam) => {
                IoError::BadBuffer
            }
            VolumeError::Disk(PhysicalError::Device) => IoError::Device,
        }
    }
}

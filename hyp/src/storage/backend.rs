//! The device model's block-backend interface (`dev/virtio/blk`), as the
//! storage layer implements it, and the one conversion of its errors.
#![forbid(unsafe_code)]

pub use crate::dev::virtio::blk::{
    BlockBackend, Buffer, GuestRun, IoError, MAX_RUNS, SECTOR_BYTES,
};

use super::volume::VolumeError;
use super::PhysicalError;

/// The one place a volume's error becomes the device model's.
impl From<VolumeError> for IoError {
    fn from(error: VolumeError) -> IoError {
        match error {
            VolumeError::OutOfRange { .. } | VolumeError::Disk(PhysicalError::OutOfRange) => {
                IoError::OutOfRange
            }
            VolumeError::BadLength(_)
            | VolumeError::RunCount(_)
            | VolumeError::OutsideRam { .. }
            | VolumeError::Disk(PhysicalError::BadLength | PhysicalError::NotGuestRam) => {
                IoError::BadBuffer
            }
            VolumeError::Disk(PhysicalError::Device) => IoError::Device,
        }
    }
}

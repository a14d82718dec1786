//! The block device the store and the audit log run on: one partition
//! (defined with the store).

pub use super::store::disk::{BlockDisk, DiskError};

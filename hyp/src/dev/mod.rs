//! Virtual devices: one small trait, and the IPA windows they answer.
//!
//! A device sees offsets inside its own window and never ESR, FAR or the vCPU.
//! It returns `DevError` for an unknown offset or a bad width; the dispatcher
//! turns that into read-as-zero / write-ignored, counts it and reports it once.
#![forbid(unsafe_code)]

pub mod bus;
pub mod sbsa_uart;
pub mod vgic;
pub mod virtio;

pub use crate::trap::esr::Width;

/// Why a device refused an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevError {
    /// No register at this offset.
    UnknownRegister,
    /// The register exists but not with this access width.
    BadWidth,
}

/// An emulated MMIO device.
pub trait MmioDevice {
    /// Reads the register at `offset` (from the start of the device's window).
    ///
    /// # Errors
    /// `UnknownRegister` or `BadWidth`.
    fn read(&mut self, offset: u64, width: Width) -> Result<u64, DevError>;

    /// Writes the register at `offset`.
    ///
    /// # Errors
    /// `UnknownRegister` or `BadWidth`.
    fn write(&mut self, offset: u64, width: Width, value: u64) -> Result<(), DevError>;
}

//! Virtio devices: the guest-memory and device traits that the transport and the device models share.
//!
//! The layout follows the virtio 1.2 specification (OASIS, "Virtual I/O Device (VIRTIO)
//! Version 1.2"): [`mmio`] is the virtio-mmio transport (section 4.2), [`queue`] the
//! device side of a split virtqueue (section 2.7) and [`blk`] the block device model
//! (section 5.2). A device model never sees registers: the transport owns the status state
//! machine, the feature selection and the queue configuration, and calls the device through
//! [`VirtioDevice`] with a [`GuestMemory`] that the owner passes in.
//!
//! Everything here is pure: guest RAM is reached only through [`GuestMemory`], so the same
//! code runs on the host under `cargo test` and in Janus at EL2.

pub mod blk;
pub mod mmio;
pub mod p9;
pub mod queue;

#[cfg(test)]
mod fake;

use queue::{Queue, QueueError};

/// Why a guest-memory access was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemError {
    /// The range is not wholly inside the personality's own RAM, or could not be made ready.
    OutsideRam,
    /// `addr + len` does not fit in 64 bits.
    Overflow,
}

/// A personality's RAM as a device sees it. Every address is guest-physical (== physical).
pub trait GuestMemory {
    /// Ok when `[addr, addr+len)` lies wholly inside the personality's own RAM and is ready
    /// for a device to read or write it directly (Janus clears and maps not-yet-touched
    /// chunks here).
    ///
    /// # Errors
    /// `OutsideRam` or `Overflow`.
    fn check(&mut self, addr: u64, len: u64) -> Result<(), MemError>;

    /// Copies guest bytes out (checks the range itself).
    ///
    /// # Errors
    /// As [`GuestMemory::check`]; nothing is copied then.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError>;

    /// Copies bytes into guest memory (checks the range itself).
    ///
    /// # Errors
    /// As [`GuestMemory::check`]; nothing is copied then.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError>;

    /// Orders the guest-memory accesses before it against those after it, as seen by the
    /// guest's other CPUs (a `DMB ISH` on aarch64). The queue calls it where the virtio
    /// memory model (spec 2.7.13) needs a barrier: between reading the available index and
    /// the ring entries it covers, and between writing a used element and the used index.
    /// The default does nothing, which is right for the host and for one CPU.
    fn fence(&mut self) {}
}

/// A virtio device model as the transport drives it.
///
/// The transport calls these only in the states the specification allows: features are
/// acknowledged once, when the driver sets FEATURES_OK and the transport accepted them;
/// queues are processed only after DRIVER_OK; `reset` follows a write of 0 to the status.
pub trait VirtioDevice {
    /// The virtio device ID (spec 5: 2 for a block device).
    fn device_id(&self) -> u32;

    /// The feature bits the device offers (spec 2.2 and 6).
    fn device_features(&self) -> u64;

    /// Takes the features the driver accepted: a subset of [`VirtioDevice::device_features`]
    /// that includes [`VIRTIO_F_VERSION_1`].
    fn ack_features(&mut self, features: u64);

    /// Copies configuration-space bytes from `offset` into `data`; bytes past the end of the
    /// device's configuration read as zero.
    fn read_config(&self, offset: usize, data: &mut [u8]);

    /// A driver write to configuration space; returns false when the device has no writable
    /// field there (the write is then ignored).
    fn write_config(&mut self, offset: usize, data: &[u8]) -> bool {
        let _ = (offset, data);
        false
    }

    /// The maximum size of each of the device's queues; the slice's length is the number of
    /// queues (at most 16, the width of the transport's notification mask).
    fn queue_max_sizes(&self) -> &[u16];

    /// Returns the device to its power-on state (the transport resets the queues itself).
    fn reset(&mut self);

    /// Handles at most `budget` requests available on queue `index`, pushing each completed
    /// one to `queue`'s used ring, and returns whether requests remain available.
    ///
    /// # Errors
    /// A [`QueueError`] when the queue itself is broken (its rings, or the indices the
    /// driver wrote in them); the transport then sets DEVICE_NEEDS_RESET and stops using
    /// the device. A bad request is not an error: the device completes it with an error
    /// status and goes on.
    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut Queue,
        memory: &mut dyn GuestMemory,
        budget: usize,
    ) -> Result<bool, QueueError>;
}

/// Copies `config[offset..]` into `data`; bytes past the end read as zero (what
/// [`VirtioDevice::read_config`] asks of every device).
pub fn read_config_bytes(config: &[u8], offset: usize, data: &mut [u8]) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte = offset
            .checked_add(i)
            .and_then(|index| config.get(index))
            .copied()
            .unwrap_or(0);
    }
}

/// A boxed device is driven like the device inside (the transport of a device
/// made elsewhere, e.g. the 9P device with its channel handle).
impl<D: VirtioDevice + ?Sized> VirtioDevice for alloc::boxed::Box<D> {
    fn device_id(&self) -> u32 {
        (**self).device_id()
    }

    fn device_features(&self) -> u64 {
        (**self).device_features()
    }

    fn ack_features(&mut self, features: u64) {
        (**self).ack_features(features);
    }

    fn read_config(&self, offset: usize, data: &mut [u8]) {
        (**self).read_config(offset, data);
    }

    fn write_config(&mut self, offset: usize, data: &[u8]) -> bool {
        (**self).write_config(offset, data)
    }

    fn queue_max_sizes(&self) -> &[u16] {
        (**self).queue_max_sizes()
    }

    fn reset(&mut self) {
        (**self).reset();
    }

    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut Queue,
        memory: &mut dyn GuestMemory,
        budget: usize,
    ) -> Result<bool, QueueError> {
        (**self).process_queue(index, queue, memory, budget)
    }
}

/// Device status bits (spec 2.1).
pub mod status {
    /// The guest OS has found the device and recognised it as a virtio device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest OS knows how to drive the device.
    pub const DRIVER: u32 = 2;
    /// The driver is set up and ready to drive the device.
    pub const DRIVER_OK: u32 = 4;
    /// The driver has acknowledged the features it understands; negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error it cannot recover from; the driver must reset it.
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    /// The driver gave up on the device.
    pub const FAILED: u32 = 128;
}

/// VIRTIO_F_INDIRECT_DESC (spec 6): indirect descriptor tables; Janus does not offer it.
pub const VIRTIO_F_INDIRECT_DESC: u64 = 1 << 28;
/// VIRTIO_F_EVENT_IDX (spec 6): used_event / avail_event suppression; not offered.
pub const VIRTIO_F_EVENT_IDX: u64 = 1 << 29;
/// VIRTIO_F_VERSION_1 (spec 6): the device is modern (non-legacy); required.
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

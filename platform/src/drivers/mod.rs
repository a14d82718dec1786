//! Drivers for the physical devices Janus owns.
pub mod pl011;
pub mod pl031;
pub mod pl061;
pub mod virtio_disk;

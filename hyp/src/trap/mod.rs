//! Trap decoding and the pure parts of exception handling.
#![forbid(unsafe_code)]
pub mod dispatch;
pub mod esr;
pub mod inject;
pub mod smccc;
pub mod tlbi;
pub mod virtio;

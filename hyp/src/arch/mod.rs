//! CPU-specific code. Only aarch64 exists.
pub mod aarch64;

//! Board support for Janus: the physical devices it drives itself.
//!
//! Drivers own one MMIO base each and expose `embedded-io` traits; everything
//! that must be unsafe about touching hardware lives here and in `hyp/src/arch`.
#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod drivers;

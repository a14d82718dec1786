//! Board support for Janus: the physical devices it drives itself.
//!
//! Drivers own one MMIO base each and expose `embedded-io` traits; everything
//! that must be unsafe about touching hardware lives here and in `hyp/src/arch`.
#![cfg_attr(not(test), no_std)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod drivers;

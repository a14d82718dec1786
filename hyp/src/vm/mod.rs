//! Personalities: their packed configuration, the checks on it, and their run-time state.
//!
//! Lock order, outermost first: a personality's `console` buffer lock, then the
//! console driver lock (`crate::console`). No lock is held across guest entry.
#![forbid(unsafe_code)]
pub mod bundle;
pub mod config;
pub mod devicetree;
pub mod loader;
pub mod personality;
pub mod placement;
pub mod vcpu;

pub use personality::{Personality, VmState};

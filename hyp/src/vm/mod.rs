//! Personalities: their packed configuration, the checks on it, and their run-time state.
//!
//! Lock order, outermost first: a personality's `devices`, its `console` line
//! buffer, the console multiplexer (`crate::console`), the console sink, then
//! the console UART.
//! The console input path takes the multiplexer, releases it, then a
//! personality's `devices`. A personality's RAM state (`ram::GuestRam`, behind
//! a lock in the arch layer's image) is taken last, and only the frame pool is
//! taken under it. No lock is held across guest entry.
#![forbid(unsafe_code)]
pub mod bundle;
pub mod config;
pub mod devices;
pub mod devicetree;
pub mod entropy;
pub mod loader;
pub mod personality;
pub mod placement;
pub mod ram;
pub mod vcpu;

pub use personality::{Personality, VmState};

//! Janus: a type-1 hypervisor for 64-bit Arm that runs two isolated personalities.
//!
//! The library holds everything; what can be tested on the host is, and what
//! touches the CPU sits in `arch` (built only for aarch64). The `janus` binary
//! only provides the panic handler.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

#[cfg(target_arch = "aarch64")]
pub mod arch;
pub mod board;
pub mod channel;
pub mod console;
pub mod dev;
pub mod mm;
pub mod storage;
pub mod trap;
pub mod vm;

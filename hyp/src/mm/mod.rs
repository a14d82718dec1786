//! Memory management: address types, frames and stage-2 tables.
pub mod addr;
pub mod frame;
pub mod stage2;

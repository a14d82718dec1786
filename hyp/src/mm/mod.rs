//! Memory management: address types, frames, Janus' own EL2 map and stage-2 tables.
pub mod addr;
pub mod frame;
pub mod hyp_map;
pub mod stage2;

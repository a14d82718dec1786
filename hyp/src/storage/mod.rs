//! Persistent storage: the physical disk's partition table and each
//! personality's volume on it.
#![forbid(unsafe_code)]

pub mod gpt;

//! The shared-storage channel: the only path between the personalities.
//!
//! A 9P2000.L server per personality (`p9`) over one store on the `shared`
//! partition (`store`), with labels, a per-direction policy, quotas (`policy`) and
//! an audit log on the `janus` partition (`audit`). Everything here is pure and
//! host-tested; the devices are wired up in `arch`.
#![forbid(unsafe_code)]

pub mod audit;
pub mod disk;
pub mod folder;
pub mod fs;
pub mod p9;
pub mod policy;
pub mod store;

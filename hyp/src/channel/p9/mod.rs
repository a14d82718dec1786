//! The 9P2000.L server of the shared folder: the wire codec and one server per
//! personality, over the [`Fs`](super::fs::Fs) trait.
//!
//! [`wire`] decodes what Linux 6.1's `9p` client sends and encodes the replies;
//! [`server`] keeps the fid table and turns each request into `Fs` calls. The virtio
//! device (`dev::virtio::p9`) moves the bytes between guest memory and the server.

pub mod memfs;
pub mod server;
pub mod wire;

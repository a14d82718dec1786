//! The virtio-9p device model: one request queue carrying 9P2000.L messages to a
//! personality's [`Server`].
//!
//! virtio 1.2 lists device ID 9 ("9P transport") but has no section for it; the ABI is
//! Linux `include/uapi/linux/virtio_9p.h`: feature VIRTIO_9P_MOUNT_TAG (bit 0, without
//! which Linux refuses the device), configuration `le16 tag_len; u8 tag[tag_len]`, one
//! queue. Each chain is one request (its readable bytes) and the room for its reply
//! (its writable bytes); requests are handled synchronously, in order, at most `budget`
//! per call, each under one [`FsAccess::with_fs`].

mod chain;

use alloc::boxed::Box;
use alloc::vec::Vec;

use chain::ChainExchange;

use super::queue::{Popped, Queue, QueueError};
use super::{GuestMemory, VirtioDevice, VIRTIO_F_VERSION_1};
use crate::channel::fs::{Fs, Who};
use crate::channel::p9::server::{Server, Stats};

/// The virtio device ID of a 9P transport.
pub const DEVICE_ID: u32 = 9;
/// VIRTIO_9P_MOUNT_TAG: the configuration holds the mount tag.
pub const VIRTIO_9P_MOUNT_TAG: u64 = 1 << 0;
/// What the device offers.
pub const FEATURES: u64 = VIRTIO_F_VERSION_1 | VIRTIO_9P_MOUNT_TAG;
/// The request queue's maximum size (Linux's 9p transport uses 128 descriptors per
/// request at most, VIRTQUEUE_NUM).
pub const QUEUE_MAX_SIZE: u16 = 128;
/// The longest mount tag kept (a longer one is cut).
pub const MAX_TAG_BYTES: usize = 64;

/// The device's way to the shared folder: the owner implements it with a lock on the
/// channel, tests with an in-memory file system.
pub trait FsAccess: Send {
    /// Runs `f` with the file system (holding whatever lock it needs for that long).
    fn with_fs(&mut self, f: &mut dyn FnMut(&mut dyn Fs));
}

/// Device-level counters (the server keeps its own, [`P9Device::server_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Chains completed with no reply (bad chains, and requests the server could not
    /// answer: under 7 readable bytes or less room than an `Rlerror`).
    pub unanswered: u64,
    /// Of those, chains the queue refused (bad descriptors).
    pub bad_chains: u64,
}

/// A virtio-9p device for one personality.
pub struct P9Device {
    /// The 9P server (session, fid table, buffers).
    server: Server,
    /// The file system.
    fs: Box<dyn FsAccess>,
    /// The configuration space: tag_len, tag.
    config: Vec<u8>,
    /// The features the driver accepted.
    driver_features: u64,
    /// Counters.
    stats: DeviceStats,
}

impl core::fmt::Debug for P9Device {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("P9Device")
            .field("server", &self.server)
            .field("driver_features", &self.driver_features)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl P9Device {
    /// A device serving personality `who` from `fs`, with mount tag `tag` (cut to
    /// [`MAX_TAG_BYTES`]). Allocates the server's buffers (about 72 KiB) once.
    pub fn new(who: Who, tag: &str, fs: Box<dyn FsAccess>) -> Self {
        let tag = tag
            .as_bytes()
            .get(..MAX_TAG_BYTES)
            .unwrap_or(tag.as_bytes());
        let mut config = Vec::with_capacity(2 + tag.len());
        // tag.len() <= MAX_TAG_BYTES fits a u16.
        config.extend_from_slice(&(tag.len() as u16).to_le_bytes());
        config.extend_from_slice(tag);
        P9Device {
            server: Server::new(who),
            fs,
            config,
            driver_features: 0,
            stats: DeviceStats::default(),
        }
    }

    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The server's counters.
    pub fn server_stats(&self) -> Stats {
        self.server.stats()
    }

    /// The device's counters.
    pub fn stats(&self) -> DeviceStats {
        self.stats
    }

    /// Handles one well-formed chain; returns the used length.
    fn handle(&mut self, memory: &mut dyn GuestMemory, segments: &[super::queue::Segment]) -> u32 {
        let mut exchange = ChainExchange::new(memory, segments);
        let server = &mut self.server;
        let mut written = 0;
        self.fs
            .with_fs(&mut |fs| written = server.handle(fs, &mut exchange));
        if written == 0 {
            self.stats.unanswered += 1;
        }
        // The server never writes more than the capacity, which fits a u32.
        u32::try_from(written).unwrap_or(0)
    }
}

impl VirtioDevice for P9Device {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn device_features(&self) -> u64 {
        FEATURES
    }

    fn ack_features(&mut self, features: u64) {
        self.driver_features = features & FEATURES;
    }

    fn read_config(&self, offset: usize, data: &mut [u8]) {
        super::read_config_bytes(&self.config, offset, data);
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_MAX_SIZE]
    }

    fn reset(&mut self) {
        self.driver_features = 0;
        // The driver is gone: end its session, closing what it had open.
        let server = &mut self.server;
        self.fs.with_fs(&mut |fs| server.reset(fs));
    }

    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut Queue,
        memory: &mut dyn GuestMemory,
        budget: usize,
    ) -> Result<bool, QueueError> {
        if index != 0 {
            return Ok(false);
        }
        for _ in 0..budget {
            let (head, used_len) = match queue.pop(memory)? {
                None => return Ok(false),
                Some(Popped::Chain { head, segments }) => (head, self.handle(memory, segments)),
                Some(Popped::Bad(bad)) => {
                    // No request can be read from it, so no tag to answer with.
                    self.stats.bad_chains += 1;
                    self.stats.unanswered += 1;
                    (bad.head, 0)
                }
            };
            queue.push_used(memory, head, used_len)?;
        }
        queue.has_available(memory)
    }
}

#[cfg(test)]
mod tests;

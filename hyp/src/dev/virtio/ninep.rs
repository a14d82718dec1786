//! The virtio-9p device model (device ID 9; the ABI is Linux'
//! `include/uapi/linux/virtio_9p.h`, the virtio spec has no 9P section): one
//! request queue, the mount tag in configuration space, and each chain one 9P
//! message: its device-readable bytes the request, its device-writable bytes
//! the reply.
//!
//! The model moves bytes only; the protocol is the [`MessageServer`]'s. A
//! message is reached through a [`Message`]: reads and writes at any offset of
//! the chain, scattered over its descriptors at any boundary (Linux' zero-copy
//! path puts the header in one buffer and the payload in pinned user pages),
//! every access bounds-checked, so no server needs a msize-sized buffer.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use super::queue::{Popped, Queue, QueueError, Segment};
use super::{GuestMemory, MemError, VirtioDevice, VIRTIO_F_VERSION_1};

/// The virtio device ID of a 9P transport.
pub const DEVICE_ID: u32 = 9;
/// VIRTIO_9P_MOUNT_TAG: the configuration space holds the mount tag (Linux
/// refuses a device without it).
pub const VIRTIO_9P_MOUNT_TAG: u64 = 1;
/// What the device offers.
pub const FEATURES: u64 = VIRTIO_F_VERSION_1 | VIRTIO_9P_MOUNT_TAG;
/// The request queue's maximum size.
pub const QUEUE_MAX_SIZE: u16 = 128;
/// The longest mount tag (Linux' client takes up to 64 bytes, less a NUL).
pub const TAG_MAX: usize = 63;

/// Why a message access failed: past the chain's bytes, or guest memory
/// refused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfChain;

/// One message as the server sees it.
pub trait Message {
    /// Bytes of request (the chain's device-readable bytes).
    fn request_len(&self) -> usize;
    /// Copies request bytes from `offset` into `buf`.
    ///
    /// # Errors
    /// `OutOfChain` when `[offset, offset + buf.len())` is not all request.
    fn read(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfChain>;
    /// Bytes the reply may take (the chain's device-writable bytes).
    fn reply_capacity(&self) -> usize;
    /// Writes reply bytes at `offset`.
    ///
    /// # Errors
    /// `OutOfChain` when `[offset, offset + data.len())` is not all reply room.
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), OutOfChain>;
}

/// The protocol behind the device: one server per personality.
pub trait MessageServer: Send {
    /// Answers one message; returns the reply's length in bytes (0 when no
    /// reply could be written, which the guest sees as a used length of 0).
    fn serve(&mut self, message: &mut dyn Message) -> usize;
    /// The driver reset the device: every fid is forgotten (and every open
    /// object closed).
    fn reset(&mut self);
}

/// The chain of one message: its readable and writable segments.
struct Chain<'a> {
    memory: &'a mut dyn GuestMemory,
    readable: &'a [Segment],
    writable: &'a [Segment],
    request_len: usize,
    reply_capacity: usize,
}

/// Calls `each(addr, range in the caller's buffer)` for the pieces of
/// `[offset, offset + len)` of the bytes `segments` hold, in order.
fn walk(
    segments: &[Segment],
    offset: usize,
    len: usize,
    mut each: impl FnMut(u64, core::ops::Range<usize>) -> Result<(), MemError>,
) -> Result<(), OutOfChain> {
    let mut skip = offset;
    let mut done = 0;
    for segment in segments {
        if done == len {
            break;
        }
        let seg_len = segment.len as usize;
        if skip >= seg_len {
            skip -= seg_len;
            continue;
        }
        let take = (seg_len - skip).min(len - done);
        each(segment.addr + skip as u64, done..done + take).map_err(|_| OutOfChain)?;
        done += take;
        skip = 0;
    }
    if done == len {
        Ok(())
    } else {
        Err(OutOfChain)
    }
}

impl Message for Chain<'_> {
    fn request_len(&self) -> usize {
        self.request_len
    }

    fn read(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfChain> {
        let end = offset.checked_add(buf.len()).ok_or(OutOfChain)?;
        if end > self.request_len {
            return Err(OutOfChain);
        }
        let memory = &mut *self.memory;
        walk(self.readable, offset, buf.len(), |addr, range| {
            memory.read(addr, &mut buf[range])
        })
    }

    fn reply_capacity(&self) -> usize {
        self.reply_capacity
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), OutOfChain> {
        let end = offset.checked_add(data.len()).ok_or(OutOfChain)?;
        if end > self.reply_capacity {
            return Err(OutOfChain);
        }
        let memory = &mut *self.memory;
        walk(self.writable, offset, data.len(), |addr, range| {
            memory.write(addr, &data[range])
        })
    }
}

/// The virtio-9p device of one personality.
pub struct NinePDevice {
    config: Vec<u8>,
    server: Box<dyn MessageServer>,
    /// Chains completed with no reply (a chain too short for any reply).
    unanswered: u64,
}

impl fmt::Debug for NinePDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NinePDevice")
            .field("config", &self.config)
            .field("unanswered", &self.unanswered)
            .finish_non_exhaustive()
    }
}

impl NinePDevice {
    /// A device with mount tag `tag` (cut at [`TAG_MAX`] bytes) serving
    /// messages with `server`.
    pub fn new(tag: &str, server: Box<dyn MessageServer>) -> Self {
        let tag = &tag.as_bytes()[..tag.len().min(TAG_MAX)];
        let mut config = Vec::with_capacity(2 + tag.len());
        config.extend_from_slice(&(tag.len() as u16).to_le_bytes());
        config.extend_from_slice(tag);
        NinePDevice {
            config,
            server,
            unanswered: 0,
        }
    }

    /// Chains completed without a reply so far.
    pub fn unanswered(&self) -> u64 {
        self.unanswered
    }

    fn handle(&mut self, memory: &mut dyn GuestMemory, segments: &[Segment]) -> u32 {
        let split = segments
            .iter()
            .position(|segment| segment.writable)
            .unwrap_or(segments.len());
        let (readable, writable) = segments.split_at(split);
        // The queue refused chains longer than 2^32 bytes: these sums fit.
        let total = |segments: &[Segment]| segments.iter().map(|s| s.len as usize).sum();
        let mut chain = Chain {
            memory,
            readable,
            writable,
            request_len: total(readable),
            reply_capacity: total(writable),
        };
        let len = self.server.serve(&mut chain);
        if len == 0 {
            self.unanswered += 1;
        }
        u32::try_from(len.min(chain.reply_capacity)).unwrap_or(0)
    }
}

impl VirtioDevice for NinePDevice {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn device_features(&self) -> u64 {
        FEATURES
    }

    fn ack_features(&mut self, features: u64) {
        let _ = features;
    }

    fn read_config(&self, offset: usize, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = offset
                .checked_add(i)
                .and_then(|index| self.config.get(index))
                .copied()
                .unwrap_or(0);
        }
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_MAX_SIZE]
    }

    fn reset(&mut self) {
        self.server.reset();
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
                    // No message can be read from a broken chain: it is
                    // completed empty, and the guest's request fails.
                    self.unanswered += 1;
                    (bad.head, 0)
                }
            };
            queue.push_used(memory, head, used_len)?;
        }
        queue.has_available(memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::virtio::fake::{DriverQueue, SharedRam};
    use alloc::sync::Arc;
    use std::sync::Mutex;

    const BASE: u64 = 0x4000_0000;

    /// A server that echoes the request reversed, reading and writing it in
    /// pieces of 3 bytes at every offset (so every segment boundary is crossed).
    #[derive(Default)]
    struct Echo {
        seen: Arc<Mutex<Vec<Vec<u8>>>>,
        resets: Arc<Mutex<u32>>,
    }

    impl MessageServer for Echo {
        fn serve(&mut self, message: &mut dyn Message) -> usize {
            let len = message.request_len();
            let mut request = vec![0; len];
            for start in (0..len).step_by(3) {
                let end = (start + 3).min(len);
                message
                    .read(start, &mut request[start..end])
                    .expect("inside");
            }
            assert_eq!(message.read(len, &mut [0]), Err(OutOfChain));
            assert_eq!(message.read(usize::MAX, &mut [0; 2]), Err(OutOfChain));
            self.seen.lock().unwrap().push(request.clone());
            request.reverse();
            let n = request.len().min(message.reply_capacity());
            for start in (0..n).step_by(3) {
                let end = (start + 3).min(n);
                message.write(start, &request[start..end]).expect("inside");
            }
            let capacity = message.reply_capacity();
            assert_eq!(message.write(capacity, &[1]), Err(OutOfChain));
            n
        }

        fn reset(&mut self) {
            *self.resets.lock().unwrap() += 1;
        }
    }

    type Setup = (
        SharedRam,
        DriverQueue,
        Queue,
        NinePDevice,
        Arc<Mutex<Vec<Vec<u8>>>>,
        Arc<Mutex<u32>>,
    );

    fn setup() -> Setup {
        let ram = SharedRam::new(BASE, 0x10_0000);
        let driver = DriverQueue::new(ram.clone(), BASE, 16);
        let mut queue = Queue::new(QUEUE_MAX_SIZE);
        queue.set_size(16);
        queue.set_descriptor_table(driver.desc);
        queue.set_avail_ring(driver.avail);
        queue.set_used_ring(driver.used);
        queue.set_ready(true);
        let echo = Echo::default();
        let (seen, resets) = (echo.seen.clone(), echo.resets.clone());
        (
            ram,
            driver,
            queue,
            NinePDevice::new("shared", Box::new(echo)),
            seen,
            resets,
        )
    }

    #[test]
    fn the_config_space_holds_the_tag_and_the_device_offers_the_tag_feature() {
        let (_, _, _, device, _, _) = setup();
        assert_eq!(device.device_id(), 9);
        assert_ne!(device.device_features() & VIRTIO_9P_MOUNT_TAG, 0);
        let mut config = [0xff; 10];
        device.read_config(0, &mut config);
        assert_eq!(&config, b"\x06\x00shared\x00\x00");
        let mut far = [0xff; 4];
        device.read_config(usize::MAX - 1, &mut far);
        assert_eq!(far, [0; 4]);
        let long = NinePDevice::new(&"x".repeat(100), Box::new(Echo::default()));
        let mut len = [0; 2];
        long.read_config(0, &mut len);
        assert_eq!(u16::from_le_bytes(len) as usize, TAG_MAX);
    }

    #[test]
    fn a_message_split_over_descriptors_at_odd_boundaries_is_read_and_answered_whole() {
        let (ram, mut driver, mut queue, mut device, seen, _) = setup();
        let request: Vec<u8> = (0u8..40).collect();
        // Request in 3 pieces (7, 1, 32 bytes), reply room in 2 (5, 100).
        ram.put(BASE + 0x8000, &request[..7]);
        ram.put(BASE + 0x9000, &request[7..8]);
        ram.put(BASE + 0xa000, &request[8..]);
        driver.add_chain(
            0,
            &[
                (BASE + 0x8000, 7, false),
                (BASE + 0x9000, 1, false),
                (BASE + 0xa000, 32, false),
                (BASE + 0xb000, 5, true),
                (BASE + 0xc000, 100, true),
            ],
        );
        let mut memory = ram.clone();
        assert_eq!(
            device.process_queue(0, &mut queue, &mut memory, 8),
            Ok(false)
        );
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            core::slice::from_ref(&request)
        );
        assert_eq!(driver.used_idx(), 1);
        assert_eq!(driver.used_elem(0), (0, 40));
        let mut reply = ram.get(BASE + 0xb000, 5);
        reply.extend(ram.get(BASE + 0xc000, 35));
        let mut expected = request;
        expected.reverse();
        assert_eq!(reply, expected);
        assert_eq!(ram.stray_accesses(), 0);
    }

    #[test]
    fn a_chain_without_reply_room_is_completed_empty_and_the_queue_goes_on() {
        let (ram, mut driver, mut queue, mut device, seen, _) = setup();
        ram.put(BASE + 0x8000, b"abc");
        driver.add_chain(0, &[(BASE + 0x8000, 3, false)]);
        driver.add_chain(1, &[(BASE + 0x8000, 3, false), (BASE + 0x9000, 8, true)]);
        let mut memory = ram.clone();
        assert_eq!(
            device.process_queue(0, &mut queue, &mut memory, 8),
            Ok(false)
        );
        assert_eq!(driver.used_elem(0), (0, 0));
        assert_eq!(driver.used_elem(1), (1, 3));
        assert_eq!(device.unanswered(), 1);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_broken_chain_is_completed_empty_without_reaching_the_server() {
        let (ram, mut driver, mut queue, mut device, seen, _) = setup();
        // A buffer outside RAM.
        driver.add_chain(0, &[(0x10, 3, false), (BASE + 0x9000, 8, true)]);
        let mut memory = ram.clone();
        assert_eq!(
            device.process_queue(0, &mut queue, &mut memory, 8),
            Ok(false)
        );
        assert_eq!(driver.used_elem(0), (0, 0));
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn the_budget_bounds_one_call_and_a_reset_reaches_the_server() {
        let (ram, mut driver, mut queue, mut device, seen, resets) = setup();
        ram.put(BASE + 0x8000, b"x");
        for head in 0..4u16 {
            driver.add_chain(
                2 * head,
                &[(BASE + 0x8000, 1, false), (BASE + 0x9000, 1, true)],
            );
        }
        let mut memory = ram.clone();
        assert_eq!(
            device.process_queue(0, &mut queue, &mut memory, 3),
            Ok(true)
        );
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(
            device.process_queue(0, &mut queue, &mut memory, 3),
            Ok(false)
        );
        assert_eq!(seen.lock().unwrap().len(), 4);
        assert_eq!(
            device.process_queue(1, &mut queue, &mut memory, 3),
            Ok(false)
        );
        device.reset();
        assert_eq!(*resets.lock().unwrap(), 1);
    }
}

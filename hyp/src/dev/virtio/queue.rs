//! The device side of a split virtqueue (virtio 1.2 section 2.7), hostile-guest proof.
//!
//! The driver owns the descriptor table and the available ring and may rewrite them at any
//! time from another vCPU, so every value read from them is copied into Janus once, checked
//! and then only the copy is used. A problem with the queue as a whole (ring placement,
//! indices) is a [`QueueError`]: the transport then sets DEVICE_NEEDS_RESET and stops using
//! the device. A problem with one descriptor chain whose head is valid is a [`BadChain`]
//! that the device completes with an error and steps over.

use alloc::vec::Vec;

use super::GuestMemory;

/// Bytes of one descriptor in the table (spec 2.7.5: le64 addr, le32 len, le16 flags, le16 next).
const DESCRIPTOR_BYTES: u64 = 16;
/// Alignment of the descriptor table (spec 2.7, table "Virtqueue Part Alignment").
const DESCRIPTOR_TABLE_ALIGN: u64 = 16;
/// Alignment of the available ring.
const AVAIL_RING_ALIGN: u64 = 2;
/// Alignment of the used ring.
const USED_RING_ALIGN: u64 = 4;
/// Bytes of the available ring's fixed fields: flags, idx and (with EVENT_IDX) used_event.
const AVAIL_RING_FIXED_BYTES: u64 = 6;
/// Bytes of one available ring entry (a le16 descriptor index).
const AVAIL_ENTRY_BYTES: u64 = 2;
/// Bytes of the used ring's fixed fields: flags, idx and (with EVENT_IDX) avail_event.
const USED_RING_FIXED_BYTES: u64 = 6;
/// Bytes of one used element (le32 id, le32 len).
const USED_ELEMENT_BYTES: u64 = 8;
/// Offset of `idx` in both rings (after le16 flags).
const RING_IDX_OFFSET: u64 = 2;
/// Offset of the first entry in both rings (after flags and idx).
const RING_ENTRIES_OFFSET: u64 = 4;
/// The largest total length of one chain (spec 2.7.5.2: drivers MUST NOT create a chain
/// longer than 2^32 bytes).
const CHAIN_MAX_BYTES: u64 = 1 << 32;

/// VIRTQ_DESC_F_NEXT: the buffer continues via the `next` field.
const DESC_F_NEXT: u16 = 1;
/// VIRTQ_DESC_F_WRITE: the buffer is device write-only (otherwise device read-only).
const DESC_F_WRITE: u16 = 2;
/// VIRTQ_DESC_F_INDIRECT: the buffer holds a table of descriptors (spec 2.7.5.3).
const DESC_F_INDIRECT: u16 = 4;

/// Why a queue can no longer be used (the transport answers with DEVICE_NEEDS_RESET).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The queue size is 0, above the maximum, or not a power of two (spec 2.7: split queue
    /// sizes are powers of two, and the ring indices wrap at 2^16).
    BadSize,
    /// A ring address is not aligned as spec 2.7 requires (16, 2 and 4 bytes).
    Misaligned,
    /// A ring does not lie wholly inside the personality's RAM.
    RingOutsideRam,
    /// The available index ran more than the queue size ahead of the requests handled
    /// (spec 2.7.6: the driver can only offer as many chains as there are descriptors).
    AvailIndexRunaway,
    /// An available ring entry names a descriptor at or past the queue size.
    HeadOutOfRange,
    /// A guest-memory access to an already checked ring failed.
    Memory,
}

/// Why one descriptor chain was refused; the queue itself stays usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainError {
    /// A `next` field names a descriptor at or past the queue size.
    NextOutOfRange,
    /// The chain has more descriptors than the queue (it loops).
    TooManyDescriptors,
    /// A buffer does not lie wholly inside the personality's RAM.
    BufferOutsideRam,
    /// `addr + len` of a buffer does not fit in 64 bits.
    LengthOverflow,
    /// The chain's buffers add up to more than 2^32 bytes (spec 2.7.5.2).
    TooLong,
    /// A device-readable buffer follows a device-writable one (spec 2.7.4.2).
    ReadableAfterWritable,
    /// VIRTQ_DESC_F_INDIRECT without VIRTIO_F_INDIRECT_DESC negotiated (spec 2.7.5.3.1).
    Indirect,
}

/// One buffer of a descriptor chain, as copied and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical address; `[addr, addr+len)` was `check`ed.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// Device-writable (otherwise device-readable).
    pub writable: bool,
}

/// A chain that was refused, with what the device needs to complete it anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadChain {
    /// The chain's head, to complete with [`Queue::push_used`].
    pub head: u16,
    /// The first problem found.
    pub error: ChainError,
    /// The address of the last byte of the chain when the chain ends (no loop, no bad
    /// `next`) in a device-writable buffer that lies in RAM: where a device with a status
    /// byte (block) can still report the failure.
    pub last_writable_byte: Option<u64>,
}

/// What [`Queue::pop`] took off the available ring.
#[derive(Debug, PartialEq, Eq)]
pub enum Popped<'a> {
    /// A well-formed chain: readable segments first, then writable ones.
    Chain {
        /// The head descriptor index, to complete with [`Queue::push_used`].
        head: u16,
        /// The chain's buffers in order, borrowed from the queue's reusable buffer.
        segments: &'a [Segment],
    },
    /// A chain that must be completed with an error.
    Bad(BadChain),
}

/// One descriptor as read from the table, copied once.
#[derive(Clone, Copy)]
struct Descriptor {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

impl Descriptor {
    /// Decodes the little-endian table entry (spec 2.7.5).
    fn from_bytes(bytes: &[u8; 16]) -> Self {
        let [a0, a1, a2, a3, a4, a5, a6, a7, l0, l1, l2, l3, f0, f1, n0, n1] = *bytes;
        Descriptor {
            addr: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            flags: u16::from_le_bytes([f0, f1]),
            next: u16::from_le_bytes([n0, n1]),
        }
    }
}

/// A split virtqueue as the device sees it.
#[derive(Debug)]
pub struct Queue {
    /// The largest size the device accepts (QueueNumMax).
    max_size: u16,
    /// The size the driver chose (QueueNum).
    size: u16,
    /// QueueReady.
    ready: bool,
    /// Guest-physical address of the descriptor table.
    descriptor_table: u64,
    /// Guest-physical address of the available ring (the driver area).
    avail_ring: u64,
    /// Guest-physical address of the used ring (the device area).
    used_ring: u64,
    /// Free-running index of the next available entry to take (last_avail_idx).
    next_avail: u16,
    /// The available index as last read from the guest.
    avail_seen: u16,
    /// Free-running index of the next used element to write (the used idx).
    next_used: u16,
    /// The rings were checked since the queue became ready.
    checked: bool,
    /// The segments of the chain last popped; capacity `max_size`, so no allocation per
    /// request.
    segments: Vec<Segment>,
}

impl Queue {
    /// A queue in its reset state that accepts sizes up to `max_size`.
    pub fn new(max_size: u16) -> Self {
        Queue {
            max_size,
            size: max_size,
            ready: false,
            descriptor_table: 0,
            avail_ring: 0,
            used_ring: 0,
            next_avail: 0,
            avail_seen: 0,
            next_used: 0,
            checked: false,
            segments: Vec::with_capacity(usize::from(max_size)),
        }
    }

    /// Returns to the reset state (spec 4.2.2: QueueNum reads as the maximum again, the
    /// addresses and QueueReady as zero).
    pub fn reset(&mut self) {
        self.size = self.max_size;
        self.ready = false;
        self.descriptor_table = 0;
        self.avail_ring = 0;
        self.used_ring = 0;
        self.next_avail = 0;
        self.avail_seen = 0;
        self.next_used = 0;
        self.checked = false;
        self.segments.clear();
    }

    /// QueueNumMax.
    pub fn max_size(&self) -> u16 {
        self.max_size
    }

    /// QueueNum.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Sets QueueNum; a bad value is kept and refused when the queue is first used.
    pub fn set_size(&mut self, size: u16) {
        self.size = size;
    }

    /// QueueReady.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Sets QueueReady. Enabling starts from indices 0 (spec 2.7: both rings start at 0)
    /// and checks the rings again on first use; disabling stops the queue.
    pub fn set_ready(&mut self, ready: bool) {
        if ready && !self.ready {
            self.next_avail = 0;
            self.avail_seen = 0;
            self.next_used = 0;
        }
        self.ready = ready;
        self.checked = false;
    }

    /// The descriptor table address.
    pub fn descriptor_table(&self) -> u64 {
        self.descriptor_table
    }

    /// Sets the descriptor table address (QueueDescLow/High).
    pub fn set_descriptor_table(&mut self, addr: u64) {
        self.descriptor_table = addr;
    }

    /// The available ring (driver area) address.
    pub fn avail_ring(&self) -> u64 {
        self.avail_ring
    }

    /// Sets the available ring address (QueueDriverLow/High).
    pub fn set_avail_ring(&mut self, addr: u64) {
        self.avail_ring = addr;
    }

    /// The used ring (device area) address.
    pub fn used_ring(&self) -> u64 {
        self.used_ring
    }

    /// Sets the used ring address (QueueDeviceLow/High).
    pub fn set_used_ring(&mut self, addr: u64) {
        self.used_ring = addr;
    }

    /// The free-running index of the next available entry the device will take.
    pub fn next_avail(&self) -> u16 {
        self.next_avail
    }

    /// The free-running used index the device last published.
    pub fn next_used(&self) -> u16 {
        self.next_used
    }

    /// Checks size, alignment and placement of the three parts once after the queue became
    /// ready (spec 2.7, table "Virtqueue Part Alignment" and sizes).
    ///
    /// # Errors
    /// `BadSize`, `Misaligned` or `RingOutsideRam`.
    pub fn validate(&mut self, memory: &mut dyn GuestMemory) -> Result<(), QueueError> {
        if self.checked {
            return Ok(());
        }
        if self.size == 0 || self.size > self.max_size || !self.size.is_power_of_two() {
            return Err(QueueError::BadSize);
        }
        let size = u64::from(self.size);
        let parts = [
            (
                self.descriptor_table,
                DESCRIPTOR_TABLE_ALIGN,
                DESCRIPTOR_BYTES * size,
            ),
            (
                self.avail_ring,
                AVAIL_RING_ALIGN,
                AVAIL_RING_FIXED_BYTES + AVAIL_ENTRY_BYTES * size,
            ),
            (
                self.used_ring,
                USED_RING_ALIGN,
                USED_RING_FIXED_BYTES + USED_ELEMENT_BYTES * size,
            ),
        ];
        for (addr, align, _) in parts {
            if !addr.is_multiple_of(align) {
                return Err(QueueError::Misaligned);
            }
        }
        for (addr, _, len) in parts {
            memory
                .check(addr, len)
                .map_err(|_| QueueError::RingOutsideRam)?;
        }
        self.checked = true;
        Ok(())
    }

    /// Whether the driver has made chains available that were not popped yet.
    ///
    /// # Errors
    /// As [`Queue::pop`] for the queue as a whole.
    pub fn has_available(&mut self, memory: &mut dyn GuestMemory) -> Result<bool, QueueError> {
        if !self.ready {
            return Ok(false);
        }
        self.validate(memory)?;
        self.refresh_avail(memory)?;
        Ok(self.avail_seen != self.next_avail)
    }

    /// Reads the available index again and checks it against what was handled.
    fn refresh_avail(&mut self, memory: &mut dyn GuestMemory) -> Result<(), QueueError> {
        let avail_idx = read_u16(memory, self.avail_ring + RING_IDX_OFFSET)?;
        if avail_idx.wrapping_sub(self.next_avail) > self.size {
            return Err(QueueError::AvailIndexRunaway);
        }
        self.avail_seen = avail_idx;
        // Spec 2.7.13.3 seen from the device: the ring entries the index covers are read
        // only after the index (a read barrier on real hardware).
        memory.fence();
        Ok(())
    }

    /// Takes the next available chain, copying and checking each descriptor once.
    /// `Ok(None)` when nothing is available or the queue is not ready.
    ///
    /// # Errors
    /// A [`QueueError`] when the queue is broken; a bad chain is `Ok(Some(Popped::Bad))`.
    pub fn pop(&mut self, memory: &mut dyn GuestMemory) -> Result<Option<Popped<'_>>, QueueError> {
        if !self.ready {
            return Ok(None);
        }
        self.validate(memory)?;
        if self.avail_seen == self.next_avail {
            self.refresh_avail(memory)?;
            if self.avail_seen == self.next_avail {
                return Ok(None);
            }
        }
        let slot = u64::from(self.next_avail % self.size);
        let head = read_u16(
            memory,
            self.avail_ring + RING_ENTRIES_OFFSET + AVAIL_ENTRY_BYTES * slot,
        )?;
        self.next_avail = self.next_avail.wrapping_add(1);
        if head >= self.size {
            return Err(QueueError::HeadOutOfRange);
        }
        match self.walk(memory, head)? {
            None => Ok(Some(Popped::Chain {
                head,
                segments: &self.segments,
            })),
            Some(bad) => Ok(Some(Popped::Bad(bad))),
        }
    }

    /// Follows the chain from `head` into `self.segments`; `Some` when it is bad.
    fn walk(
        &mut self,
        memory: &mut dyn GuestMemory,
        head: u16,
    ) -> Result<Option<BadChain>, QueueError> {
        self.segments.clear();
        let mut first_error = None;
        let mut total: u64 = 0;
        let mut seen_writable = false;
        let mut index = head;
        let mut last_writable_byte;
        let mut count: u16 = 0;
        loop {
            if count == self.size {
                // More descriptors than the queue has: the chain loops and never ends.
                return Ok(Some(BadChain {
                    head,
                    error: ChainError::TooManyDescriptors,
                    last_writable_byte: None,
                }));
            }
            count += 1;
            let descriptor = self.read_descriptor(memory, index)?;
            let writable = descriptor.flags & DESC_F_WRITE != 0;
            let problem = check_descriptor(memory, &descriptor, seen_writable, &mut total);
            seen_writable |= writable;
            match problem {
                Some(error) => {
                    first_error.get_or_insert(error);
                    last_writable_byte = None;
                }
                None => {
                    last_writable_byte = (writable && descriptor.len > 0)
                        .then(|| descriptor.addr + u64::from(descriptor.len) - 1);
                    if first_error.is_none() {
                        // Capacity is max_size >= size >= count: never reallocates.
                        self.segments.push(Segment {
                            addr: descriptor.addr,
                            len: descriptor.len,
                            writable,
                        });
                    }
                }
            }
            if descriptor.flags & DESC_F_NEXT == 0 {
                break;
            }
            if descriptor.next >= self.size {
                return Ok(Some(BadChain {
                    head,
                    error: ChainError::NextOutOfRange,
                    last_writable_byte: None,
                }));
            }
            index = descriptor.next;
        }
        Ok(first_error.map(|error| BadChain {
            head,
            error,
            last_writable_byte,
        }))
    }

    /// Copies descriptor `index` (< size) out of the table.
    fn read_descriptor(
        &self,
        memory: &mut dyn GuestMemory,
        index: u16,
    ) -> Result<Descriptor, QueueError> {
        let mut bytes = [0u8; 16];
        memory
            .read(
                self.descriptor_table + DESCRIPTOR_BYTES * u64::from(index),
                &mut bytes,
            )
            .map_err(|_| QueueError::Memory)?;
        Ok(Descriptor::from_bytes(&bytes))
    }

    /// Completes chain `head`: writes the used element, then (after a barrier) the used
    /// index, as spec 2.7.8.2 and 2.7.13.3 require. `len` is the number of bytes the device
    /// wrote into the chain's writable buffers.
    ///
    /// # Errors
    /// `HeadOutOfRange` for a head at or past the size (a device bug), `BadSize`,
    /// `Misaligned`, `RingOutsideRam` or `Memory` for the used ring.
    pub fn push_used(
        &mut self,
        memory: &mut dyn GuestMemory,
        head: u16,
        len: u32,
    ) -> Result<(), QueueError> {
        self.validate(memory)?;
        if head >= self.size {
            return Err(QueueError::HeadOutOfRange);
        }
        let slot = u64::from(self.next_used % self.size);
        let mut element = [0u8; 8];
        element[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        element[4..].copy_from_slice(&len.to_le_bytes());
        memory
            .write(
                self.used_ring + RING_ENTRIES_OFFSET + USED_ELEMENT_BYTES * slot,
                &element,
            )
            .map_err(|_| QueueError::Memory)?;
        // The driver may read the element as soon as it sees the new index: the element
        // must be visible first (a write barrier, DMB ISHST, on real hardware).
        memory.fence();
        let next_used = self.next_used.wrapping_add(1);
        memory
            .write(self.used_ring + RING_IDX_OFFSET, &next_used.to_le_bytes())
            .map_err(|_| QueueError::Memory)?;
        self.next_used = next_used;
        // The index must be visible before the interrupt that announces it; the owner's
        // fence before raising the line covers that (spec 2.7.13.4 seen from the device).
        memory.fence();
        Ok(())
    }
}

/// The first problem with one descriptor, adding its length to `total`.
fn check_descriptor(
    memory: &mut dyn GuestMemory,
    descriptor: &Descriptor,
    seen_writable: bool,
    total: &mut u64,
) -> Option<ChainError> {
    if descriptor.flags & DESC_F_INDIRECT != 0 {
        return Some(ChainError::Indirect);
    }
    let len = u64::from(descriptor.len);
    if descriptor.addr.checked_add(len).is_none() {
        return Some(ChainError::LengthOverflow);
    }
    if memory.check(descriptor.addr, len).is_err() {
        return Some(ChainError::BufferOutsideRam);
    }
    if descriptor.flags & DESC_F_WRITE == 0 && seen_writable {
        return Some(ChainError::ReadableAfterWritable);
    }
    *total += len;
    if *total > CHAIN_MAX_BYTES {
        return Some(ChainError::TooLong);
    }
    None
}

/// Reads a little-endian u16 from a checked ring.
fn read_u16(memory: &mut dyn GuestMemory, addr: u64) -> Result<u16, QueueError> {
    let mut bytes = [0u8; 2];
    memory
        .read(addr, &mut bytes)
        .map_err(|_| QueueError::Memory)?;
    Ok(u16::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests;

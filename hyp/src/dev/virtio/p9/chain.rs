//! One descriptor chain as a 9P [`Exchange`]: the request is the chain's readable bytes,
//! the reply goes into its writable bytes, both gathered or scattered across segments
//! at any boundary (Linux's zero-copy requests put the header in one buffer and the
//! data in pinned user pages: out `[header][pages]`, in `[11-byte Rread header][pages]`).

use crate::channel::p9::server::{Exchange, ExchangeError};
use crate::dev::virtio::queue::Segment;
use crate::dev::virtio::GuestMemory;

/// A popped chain's buffers, split into request and reply.
pub(super) struct ChainExchange<'a> {
    /// Guest RAM.
    memory: &'a mut dyn GuestMemory,
    /// The device-readable segments, in order.
    readable: &'a [Segment],
    /// The device-writable segments, in order.
    writable: &'a [Segment],
    /// Total readable bytes.
    request_len: usize,
    /// Total writable bytes (at most u32::MAX: the used length's width).
    reply_capacity: usize,
}

/// Total length of `segments`.
fn total(segments: &[Segment]) -> usize {
    segments
        .iter()
        .map(|segment| segment.len as usize)
        .fold(0, usize::saturating_add)
}

impl<'a> ChainExchange<'a> {
    /// The exchange of a well-formed chain (readable segments first, as the queue
    /// checked).
    pub(super) fn new(memory: &'a mut dyn GuestMemory, segments: &'a [Segment]) -> Self {
        let split = segments
            .iter()
            .position(|segment| segment.writable)
            .unwrap_or(segments.len());
        let (readable, writable) = segments.split_at(split);
        ChainExchange {
            memory,
            readable,
            writable,
            request_len: total(readable),
            reply_capacity: total(writable).min(u32::MAX as usize),
        }
    }
}

/// Calls `each(guest address, start, end)` for the parts of `[offset, offset+len)` of
/// the bytes of `segments` (start and end relative to `offset`), in order.
fn for_each_part(
    segments: &[Segment],
    offset: usize,
    len: usize,
    mut each: impl FnMut(u64, usize, usize) -> Result<(), ExchangeError>,
) -> Result<(), ExchangeError> {
    let end = offset.checked_add(len).ok_or(ExchangeError)?;
    let mut base = 0usize;
    let mut done = 0usize;
    for segment in segments {
        if done == len {
            break;
        }
        let seg_len = segment.len as usize;
        let seg_end = base.saturating_add(seg_len);
        if seg_end > offset && base < end {
            let from = offset.max(base);
            let to = end.min(seg_end);
            let within = u64::try_from(from - base).map_err(|_| ExchangeError)?;
            let addr = segment.addr.checked_add(within).ok_or(ExchangeError)?;
            each(addr, from - offset, to - offset)?;
            done += to - from;
        }
        base = seg_end;
    }
    if done == len {
        Ok(())
    } else {
        Err(ExchangeError)
    }
}

impl Exchange for ChainExchange<'_> {
    fn request_len(&self) -> usize {
        self.request_len
    }

    fn read_request(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), ExchangeError> {
        let memory = &mut *self.memory;
        for_each_part(self.readable, offset, buf.len(), |addr, start, end| {
            let part = buf.get_mut(start..end).ok_or(ExchangeError)?;
            memory.read(addr, part).map_err(|_| ExchangeError)
        })
    }

    fn reply_capacity(&self) -> usize {
        self.reply_capacity
    }

    fn write_reply(&mut self, offset: usize, data: &[u8]) -> Result<(), ExchangeError> {
        if offset.saturating_add(data.len()) > self.reply_capacity {
            return Err(ExchangeError);
        }
        let memory = &mut *self.memory;
        for_each_part(self.writable, offset, data.len(), |addr, start, end| {
            let part = data.get(start..end).ok_or(ExchangeError)?;
            memory.write(addr, part).map_err(|_| ExchangeError)
        })
    }
}

//! One 9P2000.L server per personality: the session (msize, fid table) and the
//! turning of each request into [`Fs`] calls.
//!
//! The server is synchronous: every request is answered before the next is read, so
//! a `Tflush` always finds its request answered already and gets `Rflush` (9P
//! `flush(5)`; research 2.6.1). Every request gets exactly one reply that fits the
//! negotiated msize and the room the client gave; a request whose largest possible
//! reply does not fit that room is refused (`EMSGSIZE`) before it does anything.
//!
//! Bytes move through an [`Exchange`] (one virtio chain, or a buffer in tests): the
//! request's first [`REQUEST_BUFFER_BYTES`] are copied into Janus to be decoded, a
//! `Twrite`'s data and an `Rread`'s are moved in [`SCRATCH_BYTES`] pieces through one
//! buffer allocated with the server.

mod fids;
mod ops;
mod walk;

use alloc::boxed::Box;
use alloc::vec;

pub use fids::{Fid, FidTable, MAX_ANCESTORS, MAX_FIDS};

use super::wire::{
    decode_header, decode_request, encode_reply, kind, Qid, Reply, Request, HEADER_BYTES,
    MAX_FIXED_REPLY_BYTES, MAX_WALK_NAMES, QID_BYTES, READ_HEADER_BYTES, VERSION_9P2000_L,
    VERSION_UNKNOWN,
};
use crate::channel::fs::{Errno, Fs, Who};

/// The largest msize the server accepts (Linux caps virtio at 512,000).
pub const MAX_MSIZE: u32 = 512_000;
/// The smallest msize the server accepts (Linux refuses below 4096 too).
pub const MIN_MSIZE: u32 = 4096;
/// The longest request the server decodes whole: a `Twalk` of 16 names of 255 bytes
/// is 4,193; a `Tsymlink` target may be a 4,096-byte path. Only a `Twrite` is longer,
/// and only its header is copied.
pub const REQUEST_BUFFER_BYTES: usize = 8192 + 64;
/// The buffer a `Twrite`'s and an `Rread`'s data pass through, and the most bytes one
/// `Rreaddir` carries.
pub const SCRATCH_BYTES: usize = 64 * 1024;
/// The longest name (NAME_MAX).
pub const NAME_MAX_BYTES: usize = 255;
/// Bytes of an `Rlerror`.
const LERROR_BYTES: usize = HEADER_BYTES + 4;

/// The bytes of one request and the room for its reply.
pub trait Exchange {
    /// Bytes of the request available (the whole message, perhaps more).
    fn request_len(&self) -> usize;
    /// Copies request bytes from `offset` into `buf`.
    ///
    /// # Errors
    /// `ExchangeError` when the bytes cannot be read (or pass `request_len`).
    fn read_request(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), ExchangeError>;
    /// Bytes the reply may take.
    fn reply_capacity(&self) -> usize;
    /// Copies reply bytes to `offset`.
    ///
    /// # Errors
    /// `ExchangeError` when the bytes cannot be written (or pass the capacity).
    fn write_reply(&mut self, offset: usize, data: &[u8]) -> Result<(), ExchangeError>;
}

/// An [`Exchange`] access failed (guest memory, or past the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExchangeError;

/// What a server did, for the owner's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests handled.
    pub requests: u64,
    /// Requests answered with `Rlerror`.
    pub errors: u64,
    /// Requests that could not be answered at all (under 7 readable bytes, or less room
    /// than an `Rlerror`): the owner completes them with no bytes.
    pub unanswered: u64,
}

/// The session state: what `Tversion` resets.
#[derive(Debug)]
pub(crate) struct Session {
    /// The personality served.
    who: Who,
    /// The negotiated msize (MAX_MSIZE until a `Tversion` succeeded).
    msize: u32,
    /// A `Tversion` succeeded; everything else is refused before.
    established: bool,
    /// The fids.
    fids: FidTable,
}

/// One personality's 9P server.
#[derive(Debug)]
pub struct Server {
    /// Session state.
    session: Session,
    /// The copied start of the current request.
    request: Box<[u8]>,
    /// Data in transit.
    scratch: Box<[u8]>,
    /// Counters.
    stats: Stats,
}

impl Server {
    /// A server for personality `who`, with no session yet (allocates about 72 KiB).
    pub fn new(who: Who) -> Self {
        Server {
            session: Session {
                who,
                msize: MAX_MSIZE,
                established: false,
                fids: FidTable::new(),
            },
            request: vec![0u8; REQUEST_BUFFER_BYTES].into_boxed_slice(),
            scratch: vec![0u8; SCRATCH_BYTES].into_boxed_slice(),
            stats: Stats::default(),
        }
    }

    /// The personality served.
    pub fn who(&self) -> Who {
        self.session.who
    }

    /// The negotiated msize (the maximum before a `Tversion`).
    pub fn msize(&self) -> u32 {
        self.session.msize
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The fid table.
    pub fn fids(&self) -> &FidTable {
        &self.session.fids
    }

    /// Ends the session as a device reset does: closes every open fid, frees all.
    pub fn reset(&mut self, fs: &mut dyn Fs) {
        self.session.reset(fs);
        self.session.established = false;
        self.session.msize = MAX_MSIZE;
    }

    /// Handles one request; returns the bytes of the reply written (0: none could be,
    /// see [`Stats::unanswered`]).
    pub fn handle(&mut self, fs: &mut dyn Fs, exchange: &mut dyn Exchange) -> usize {
        self.stats.requests += 1;
        let available = exchange.request_len();
        let copied = available.min(self.request.len());
        let Some(prefix) = self.request.get_mut(..copied) else {
            return self.unanswered();
        };
        if copied < HEADER_BYTES || exchange.read_request(0, prefix).is_err() {
            return self.unanswered();
        }
        let prefix = &*prefix;
        let capacity = exchange.reply_capacity();
        if capacity < LERROR_BYTES {
            return self.unanswered();
        }
        let Ok(header) = decode_header(prefix) else {
            // size below 7: the tag is still where it belongs.
            let tag = prefix
                .get(5..7)
                .map_or(0, |bytes| u16::from_le_bytes([bytes[0], bytes[1]]));
            return self.error(exchange, tag, Errno::EPROTO);
        };
        let tag = header.tag;
        let size = header.size as usize;
        if size > available {
            return self.error(exchange, tag, Errno::EPROTO);
        }
        if header.size > self.session.msize
            || (header.kind != kind::TWRITE && size > REQUEST_BUFFER_BYTES)
        {
            return self.error(exchange, tag, Errno::EMSGSIZE);
        }
        let request = match decode_request(prefix) {
            Ok((_, request)) => request,
            Err(error) => return self.error(exchange, tag, Errno(error.errno())),
        };
        if reply_bytes(&request) > capacity {
            return self.error(exchange, tag, Errno::EMSGSIZE);
        }
        let mut qids = [Qid::default(); MAX_WALK_NAMES];
        let limit = capacity.min(self.session.msize as usize);
        let result =
            self.session
                .dispatch(fs, &request, exchange, &mut self.scratch, limit, &mut qids);
        match result {
            Ok(reply) => self.reply(exchange, tag, &reply),
            Err(errno) => self.error(exchange, tag, errno),
        }
    }

    /// Counts a request left unanswered.
    fn unanswered(&mut self) -> usize {
        self.stats.unanswered += 1;
        0
    }

    /// Answers `Rlerror`.
    fn error(&mut self, exchange: &mut dyn Exchange, tag: u16, errno: Errno) -> usize {
        self.stats.errors += 1;
        self.reply(exchange, tag, &Reply::Lerror { ecode: errno.0 })
    }

    /// Writes `reply`'s header and fixed fields (its data, if any, is in place).
    fn reply(&mut self, exchange: &mut dyn Exchange, tag: u16, reply: &Reply<'_>) -> usize {
        let mut bytes = [0u8; MAX_FIXED_REPLY_BYTES];
        let Ok(len) = encode_reply(tag, reply, &mut bytes) else {
            return self.unanswered();
        };
        let written = bytes.get(..len).map(|bytes| exchange.write_reply(0, bytes));
        if written != Some(Ok(())) {
            return self.unanswered();
        }
        let payload = match reply {
            Reply::Read { count } | Reply::Readdir { count } => *count as usize,
            _ => 0,
        };
        len + payload
    }
}

/// The most bytes the reply to `request` can take (at least an `Rlerror`); for `Tread`
/// and `Treaddir` the header only (their data is clamped to the room).
fn reply_bytes(request: &Request<'_>) -> usize {
    let body = match request {
        Request::Statfs { .. } => 60,
        Request::Lopen { .. } | Request::Lcreate { .. } => QID_BYTES + 4,
        Request::Getattr { .. } => 153,
        Request::Mkdir { .. } | Request::Attach { .. } => QID_BYTES,
        Request::Version { .. } => 4 + 2 + VERSION_9P2000_L.len().max(VERSION_UNKNOWN.len()),
        Request::Walk { names, .. } => 2 + QID_BYTES * names.len(),
        Request::Lock { .. } => 1,
        _ => 0,
    };
    (HEADER_BYTES + body)
        .max(LERROR_BYTES)
        .max(READ_HEADER_BYTES)
}

#[cfg(test)]
mod tests;

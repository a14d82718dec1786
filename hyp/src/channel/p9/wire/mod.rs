//! The 9P2000.L wire format: framing, fields, and the request and reply codecs.
//!
//! Every message is `size[4] type[1] tag[2] body`, little-endian, `size` counting the
//! whole message; strings are `len[2] bytes` without a NUL (chaos/diod `protocol.md`,
//! Linux `net/9p/protocol.c`). Decoding checks every length against the bytes there
//! are and never panics; strings borrow from the message buffer.
//!
//! Two messages carry a payload that is not copied with the rest: a `Twrite`'s data
//! follows its [`WRITE_HEADER_BYTES`] bytes of header, and an `Rread`'s (and an
//! `Rreaddir`'s) follows [`READ_HEADER_BYTES`] bytes. Decoding a `Twrite` needs only the
//! header; encoding an `Rread` writes only the header, with `size` counting the payload.

mod reply;
mod request;

pub use reply::{decode_reply, encode_reply, Getattr, Reply, Statfs, MAX_FIXED_REPLY_BYTES};
pub use request::{decode_request, encode_request, Request, Setattr, WalkNames};

/// Bytes of `size[4] type[1] tag[2]`.
pub const HEADER_BYTES: usize = 7;
/// Bytes of a `Twrite` before its data: header, `fid[4] offset[8] count[4]`.
pub const WRITE_HEADER_BYTES: usize = HEADER_BYTES + 16;
/// Bytes of an `Rread` or `Rreaddir` before its data: header, `count[4]`.
pub const READ_HEADER_BYTES: usize = HEADER_BYTES + 4;
/// Bytes of a qid: `type[1] version[4] path[8]`.
pub const QID_BYTES: usize = 13;
/// Most names in one `Twalk` (and qids in one `Rwalk`): MAXWELEM.
pub const MAX_WALK_NAMES: usize = 16;
/// The tag of `Tversion`.
pub const NOTAG: u16 = 0xffff;
/// "No fid" (`afid` of an attach without authentication).
pub const NOFID: u32 = 0xffff_ffff;
/// The only protocol version Janus speaks.
pub const VERSION_9P2000_L: &str = "9P2000.L";
/// The `Rversion` string for a version the server does not speak.
pub const VERSION_UNKNOWN: &str = "unknown";

/// qid.type of a directory (QTDIR).
pub const QID_DIR: u8 = 0x80;
/// qid.type of a regular file (QTFILE).
pub const QID_FILE: u8 = 0;

/// Message type numbers (diod `protocol.md`; Linux `include/net/9p/9p.h`).
#[allow(missing_docs)] // Named as the protocol names them.
pub mod kind {
    pub const RLERROR: u8 = 7;
    pub const TSTATFS: u8 = 8;
    pub const TLOPEN: u8 = 12;
    pub const TLCREATE: u8 = 14;
    pub const TSYMLINK: u8 = 16;
    pub const TMKNOD: u8 = 18;
    pub const TRENAME: u8 = 20;
    pub const TREADLINK: u8 = 22;
    pub const TGETATTR: u8 = 24;
    pub const TSETATTR: u8 = 26;
    pub const TXATTRWALK: u8 = 30;
    pub const TXATTRCREATE: u8 = 32;
    pub const TREADDIR: u8 = 40;
    pub const TFSYNC: u8 = 50;
    pub const TLOCK: u8 = 52;
    pub const TGETLOCK: u8 = 54;
    pub const TLINK: u8 = 70;
    pub const TMKDIR: u8 = 72;
    pub const TRENAMEAT: u8 = 74;
    pub const TUNLINKAT: u8 = 76;
    pub const TVERSION: u8 = 100;
    pub const TAUTH: u8 = 102;
    pub const TATTACH: u8 = 104;
    pub const TFLUSH: u8 = 108;
    pub const TWALK: u8 = 110;
    pub const TREAD: u8 = 116;
    pub const TWRITE: u8 = 118;
    pub const TCLUNK: u8 = 120;
    pub const TREMOVE: u8 = 122;
}

/// Why bytes are not a well-formed message, or a message does not fit its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// A field runs past the end of the message or of the bytes given.
    Truncated,
    /// `size` is below the header, or the body does not end where `size` says
    /// (trailing bytes), or a `Twrite`'s count disagrees with its size.
    BadSize,
    /// A type number that is not a 9P2000.L request (or reply).
    UnknownType(u8),
    /// A `Twalk` with more than [`MAX_WALK_NAMES`] names.
    TooManyNames,
    /// A string that is not UTF-8.
    NotUtf8,
    /// The message is larger than the buffer that must hold it.
    TooLarge,
}

impl WireError {
    /// The errno an `Rlerror` carries for this error.
    pub fn errno(self) -> u32 {
        use crate::channel::fs::Errno;
        match self {
            WireError::UnknownType(_) => Errno::EOPNOTSUPP.0,
            WireError::TooManyNames | WireError::NotUtf8 => Errno::EINVAL.0,
            WireError::TooLarge => Errno::EMSGSIZE.0,
            WireError::Truncated | WireError::BadSize => Errno::EPROTO.0,
        }
    }
}

/// A qid: what the server says an object is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Qid {
    /// QID_DIR or QID_FILE.
    pub kind: u8,
    /// Changes with the object's contents or attributes.
    pub version: u32,
    /// Unique per object: the guest's `st_ino`.
    pub path: u64,
}

/// The fixed header of any message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The whole message's length in bytes.
    pub size: u32,
    /// Its type number.
    pub kind: u8,
    /// The tag the reply echoes.
    pub tag: u16,
}

/// Reads the header from the first [`HEADER_BYTES`] of `bytes`.
///
/// # Errors
/// `Truncated` when fewer bytes are given; `BadSize` when `size` is below the header.
pub fn decode_header(bytes: &[u8]) -> Result<Header, WireError> {
    let mut reader = Reader::new(bytes);
    let header = Header {
        size: reader.u32()?,
        kind: reader.u8()?,
        tag: reader.u16()?,
    };
    if (header.size as usize) < HEADER_BYTES {
        return Err(WireError::BadSize);
    }
    Ok(header)
}

/// A cursor over received bytes; every read checks the length.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    /// The bytes not yet read.
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Whether every byte was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next `count` bytes.
    pub(crate) fn bytes(&mut self, count: usize) -> Result<&'a [u8], WireError> {
        if count > self.rest.len() {
            return Err(WireError::Truncated);
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Ok(taken)
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.bytes(N)?);
        Ok(array)
    }

    /// A u8.
    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    /// A little-endian u16.
    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A string: `len[2]` then that many UTF-8 bytes.
    pub(crate) fn str(&mut self) -> Result<&'a str, WireError> {
        let len = self.u16()?;
        let bytes = self.bytes(usize::from(len))?;
        core::str::from_utf8(bytes).map_err(|_| WireError::NotUtf8)
    }

    /// A qid.
    pub(crate) fn qid(&mut self) -> Result<Qid, WireError> {
        Ok(Qid {
            kind: self.u8()?,
            version: self.u32()?,
            path: self.u64()?,
        })
    }
}

/// A cursor over a buffer being filled; every write checks the room left.
#[derive(Debug)]
pub(crate) struct Writer<'a> {
    /// The buffer.
    buf: &'a mut [u8],
    /// Bytes written so far.
    len: usize,
}

impl<'a> Writer<'a> {
    /// A writer into `buf` from its start.
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    /// Appends `data`.
    pub(crate) fn bytes(&mut self, data: &[u8]) -> Result<(), WireError> {
        let end = self
            .len
            .checked_add(data.len())
            .ok_or(WireError::TooLarge)?;
        let target = self.buf.get_mut(self.len..end).ok_or(WireError::TooLarge)?;
        target.copy_from_slice(data);
        self.len = end;
        Ok(())
    }

    /// A u8.
    pub(crate) fn u8(&mut self, value: u8) -> Result<(), WireError> {
        self.bytes(&[value])
    }

    /// A little-endian u16.
    pub(crate) fn u16(&mut self, value: u16) -> Result<(), WireError> {
        self.bytes(&value.to_le_bytes())
    }

    /// A little-endian u32.
    pub(crate) fn u32(&mut self, value: u32) -> Result<(), WireError> {
        self.bytes(&value.to_le_bytes())
    }

    /// A little-endian u64.
    pub(crate) fn u64(&mut self, value: u64) -> Result<(), WireError> {
        self.bytes(&value.to_le_bytes())
    }

    /// A string (`TooLarge` past 65535 bytes).
    pub(crate) fn str(&mut self, value: &str) -> Result<(), WireError> {
        let len = u16::try_from(value.len()).map_err(|_| WireError::TooLarge)?;
        self.u16(len)?;
        self.bytes(value.as_bytes())
    }

    /// A qid.
    pub(crate) fn qid(&mut self, qid: &Qid) -> Result<(), WireError> {
        self.u8(qid.kind)?;
        self.u32(qid.version)?;
        self.u64(qid.path)
    }

    /// Starts a message: a placeholder size, the type and the tag.
    pub(crate) fn header(&mut self, kind: u8, tag: u16) -> Result<(), WireError> {
        self.u32(0)?;
        self.u8(kind)?;
        self.u16(tag)
    }

    /// Ends a message: writes `size` = bytes written + `payload` (data that follows
    /// outside this buffer); returns the bytes written.
    pub(crate) fn finish(self, payload: u32) -> Result<usize, WireError> {
        let written = u32::try_from(self.len).map_err(|_| WireError::TooLarge)?;
        let size = written.checked_add(payload).ok_or(WireError::TooLarge)?;
        let field = self.buf.get_mut(..4).ok_or(WireError::TooLarge)?;
        field.copy_from_slice(&size.to_le_bytes());
        Ok(self.len)
    }
}

/// Splits a message into its header and its body (`bytes` from the message's start,
/// holding at least `size` bytes; bytes past `size` are not the message's).
fn framed(bytes: &[u8]) -> Result<(Header, Reader<'_>), WireError> {
    let header = decode_header(bytes)?;
    let body = bytes
        .get(HEADER_BYTES..header.size as usize)
        .ok_or(WireError::Truncated)?;
    Ok((header, Reader::new(body)))
}

#[cfg(test)]
mod tests;

//! 9P2000.L messages as the probe builds them, one request at a time over the
//! queue, and the session (version, attach, the root fid) the attacks run in.

use core::cell::UnsafeCell;

use super::super::driver::{Driver, Outcome};
use super::super::memory::{ram, spin_range};
use super::super::{DESC_NEXT, DESC_WRITE};

/// Message types (DATA-PATH-RESEARCH 2.2; diod `protocol.md`).
pub mod kind {
    pub const RLERROR: u8 = 7;
    pub const TLOPEN: u8 = 12;
    pub const TLCREATE: u8 = 14;
    pub const TSYMLINK: u8 = 16;
    pub const TMKNOD: u8 = 18;
    pub const TGETATTR: u8 = 24;
    pub const TXATTRWALK: u8 = 30;
    pub const TXATTRCREATE: u8 = 32;
    pub const TREADDIR: u8 = 40;
    pub const TLINK: u8 = 70;
    pub const TUNLINKAT: u8 = 76;
    pub const TVERSION: u8 = 100;
    pub const TATTACH: u8 = 104;
    pub const TFLUSH: u8 = 108;
    pub const TWALK: u8 = 110;
    pub const TREAD: u8 = 116;
    pub const TWRITE: u8 = 118;
    pub const TCLUNK: u8 = 120;
}

/// The tag of Tversion (`NOTAG`).
pub const NOTAG: u16 = 0xffff;
/// "No fid" (`NOFID`), Tattach's afid.
pub const NOFID: u32 = 0xffff_ffff;
/// The root fid the session attaches.
pub const ROOT: u32 = 1;
/// The msize the probe proposes: above QEMU's minimum (4096 + the I/O header),
/// and what its buffers hold with room to spare.
pub const MSIZE: u32 = 8192;
/// Bytes of a message header.
pub const HEADER: u32 = 7;

/// Bytes of each of the two buffers.
pub const BUFFER_BYTES: usize = 0x3000;

/// The request and reply buffers.
#[repr(C, align(4096))]
struct Area(UnsafeCell<[u8; 2 * BUFFER_BYTES]>);
// SAFETY: only vCPU 0 runs the p9 mode; every access is volatile (ram::*).
unsafe impl Sync for Area {}
static AREA: Area = Area(UnsafeCell::new([0; 2 * BUFFER_BYTES]));

/// Where requests are built.
pub fn request() -> u64 {
    AREA.0.get() as u64
}

/// Where replies land.
pub fn reply() -> u64 {
    request() + BUFFER_BYTES as u64
}

/// Lets the volatile accessors reach the buffers (the block mode's data area is
/// not used in this mode).
pub fn claim_memory(extra: &spin_range::Range) {
    extra.set(request(), 2 * BUFFER_BYTES as u64);
}

/// A message being written into the request buffer.
pub struct Msg {
    len: usize,
    /// Bytes the chain's first descriptor gives (default: the message's length).
    pub chain_len: Option<u32>,
    /// A size field other than the true length.
    pub size_field: Option<u32>,
    /// The tag.
    pub tag: u16,
}

impl Msg {
    /// Starts a message `kind` with `tag`.
    pub fn new(kind: u8, tag: u16) -> Msg {
        let mut msg = Msg {
            len: 0,
            chain_len: None,
            size_field: None,
            tag,
        };
        msg.u32(0).u8(kind).u16(tag);
        msg
    }

    /// Appends a byte (silently stops at the buffer's end).
    pub fn u8(&mut self, value: u8) -> &mut Msg {
        if self.len < BUFFER_BYTES {
            ram::put_u8(request() + self.len as u64, value);
            self.len += 1;
        }
        self
    }

    pub fn u16(&mut self, value: u16) -> &mut Msg {
        self.bytes(&value.to_le_bytes())
    }

    pub fn u32(&mut self, value: u32) -> &mut Msg {
        self.bytes(&value.to_le_bytes())
    }

    pub fn u64(&mut self, value: u64) -> &mut Msg {
        self.bytes(&value.to_le_bytes())
    }

    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Msg {
        for &byte in bytes {
            self.u8(byte);
        }
        self
    }

    /// A string: `len[2]` then the bytes.
    pub fn string(&mut self, bytes: &[u8]) -> &mut Msg {
        self.u16(bytes.len() as u16).bytes(bytes)
    }

    /// `count` bytes of `byte`.
    pub fn fill(&mut self, byte: u8, count: usize) -> &mut Msg {
        for _ in 0..count {
            self.u8(byte);
        }
        self
    }

    /// Bytes written so far.
    pub fn len(&self) -> u32 {
        self.len as u32
    }

    /// Writes the size field.
    fn finish(&self) -> u32 {
        let size = self.size_field.unwrap_or(self.len as u32);
        for (index, byte) in size.to_le_bytes().into_iter().enumerate() {
            ram::put_u8(request() + index as u64, byte);
        }
        self.chain_len.unwrap_or(self.len as u32)
    }
}

/// What came back for one request.
#[derive(Clone, Copy)]
pub struct Reply {
    /// How the chain ended.
    pub outcome: Outcome,
    /// The reply's size field, type and tag (when at least a header came back).
    pub size: u32,
    pub kind: u8,
    pub tag: u16,
    /// Rlerror's errno.
    pub errno: u32,
}

impl Reply {
    /// Bytes the device said it wrote (0 without a used element).
    pub fn written(&self) -> u32 {
        match self.outcome {
            Outcome::Done { len, .. } => len,
            _ => 0,
        }
    }

    /// Whether a whole header came back.
    pub fn has_header(&self) -> bool {
        self.written() >= HEADER
    }

    /// Whether it is an Rlerror.
    pub fn is_error(&self) -> bool {
        self.has_header() && self.kind == kind::RLERROR && self.written() >= HEADER + 4
    }

    /// Whether it is `expected` (the R-type).
    pub fn is(&self, expected: u8) -> bool {
        self.has_header() && self.kind == expected
    }

    /// Little-endian u32 at `offset` of the reply.
    pub fn u32_at(&self, offset: u64) -> u32 {
        let mut word = [0u8; 4];
        for (index, byte) in word.iter_mut().enumerate() {
            *byte = ram::get_u8(reply() + offset + index as u64);
        }
        u32::from_le_bytes(word)
    }

    /// Little-endian u16 at `offset`.
    pub fn u16_at(&self, offset: u64) -> u16 {
        u16::from(ram::get_u8(reply() + offset)) | u16::from(ram::get_u8(reply() + offset + 1)) << 8
    }

    /// Byte at `offset`.
    pub fn u8_at(&self, offset: u64) -> u8 {
        ram::get_u8(reply() + offset)
    }

    /// The 13 bytes of a qid at `offset`.
    pub fn qid_at(&self, offset: u64) -> [u8; 13] {
        let mut qid = [0u8; 13];
        for (index, byte) in qid.iter_mut().enumerate() {
            *byte = self.u8_at(offset + index as u64);
        }
        qid
    }
}

/// Whether two qids name the same object: type and path (the version changes
/// whenever a directory's entries do).
pub fn same_object(one: &[u8; 13], other: &[u8; 13]) -> bool {
    one[0] == other[0] && one[5..] == other[5..]
}

/// The byte the reply buffer is filled with before a request: what the device
/// did not write still holds it.
pub const FILL: u8 = 0xee;

/// A 9P session over the device.
pub struct Session {
    pub driver: Driver,
    /// The negotiated msize.
    pub msize: u32,
    /// The root's qid, from Rattach.
    pub root_qid: [u8; 13],
    next_tag: u16,
}

impl Session {
    pub fn new(driver: Driver) -> Session {
        Session {
            driver,
            msize: 0,
            root_qid: [0; 13],
            next_tag: 1,
        }
    }

    /// A fresh tag (never NOTAG).
    pub fn tag(&mut self) -> u16 {
        self.next_tag = self.next_tag.wrapping_add(1) % 0x8000 + 1;
        self.next_tag
    }

    /// Sends `msg` with a reply buffer of `reply_len` bytes (a writable descriptor
    /// unless `reply_len` is 0) and waits for the answer.
    pub fn send(&mut self, msg: &Msg, reply_len: u32) -> Reply {
        let chain_len = msg.finish();
        let guard = (reply_len as usize + 64).min(BUFFER_BYTES);
        ram::fill(reply(), guard, FILL);
        if reply_len == 0 {
            self.driver.descriptor(0, request(), chain_len, 0, 0);
        } else {
            self.driver
                .descriptor(0, request(), chain_len, DESC_NEXT, 1);
            self.driver.descriptor(1, reply(), reply_len, DESC_WRITE, 0);
        }
        self.driver.publish(0, 1);
        let outcome = self.driver.wait(None);
        let mut answer = Reply {
            outcome,
            size: 0,
            kind: 0,
            tag: 0,
            errno: 0,
        };
        if answer.has_header() {
            answer.size = answer.u32_at(0);
            answer.kind = answer.u8_at(4);
            answer.tag = answer.u16_at(5);
            if answer.is_error() {
                answer.errno = answer.u32_at(7);
            }
        }
        answer
    }

    /// Sends with the full reply buffer.
    pub fn call(&mut self, msg: &Msg) -> Reply {
        self.send(msg, BUFFER_BYTES as u32)
    }

    /// Whether the bytes of the reply buffer past `from` (up to `to`) are untouched.
    pub fn untouched(&self, from: u32, to: u32) -> bool {
        (from..to).all(|offset| ram::get_u8(reply() + u64::from(offset)) == FILL)
    }

    /// Tversion with `msize`; returns the reply (and takes the msize on success).
    pub fn version(&mut self, msize: u32) -> Reply {
        let mut msg = Msg::new(kind::TVERSION, NOTAG);
        msg.u32(msize).string(b"9P2000.L");
        let answer = self.call(&msg);
        if answer.is(kind::TVERSION + 1) {
            self.msize = answer.u32_at(7);
        }
        answer
    }

    /// Tattach of the root as fid `ROOT`.
    pub fn attach(&mut self) -> Reply {
        let tag = self.tag();
        let mut msg = Msg::new(kind::TATTACH, tag);
        msg.u32(ROOT).u32(NOFID).string(b"probe").string(b"").u32(0);
        let answer = self.call(&msg);
        if answer.is(kind::TATTACH + 1) && answer.tag == tag {
            self.root_qid = answer.qid_at(7);
        }
        answer
    }

    /// Version and attach: whether each worked.
    pub fn start(&mut self) -> (bool, bool) {
        let version = self.version(MSIZE);
        let version_ok =
            version.is(kind::TVERSION + 1) && self.msize >= 4096 && self.msize <= MSIZE;
        let attach = self.attach();
        (version_ok, attach.is(kind::TATTACH + 1))
    }

    /// Tgetattr of `fid`.
    pub fn getattr(&mut self, fid: u32) -> (Reply, u16) {
        let tag = self.tag();
        let mut msg = Msg::new(kind::TGETATTR, tag);
        msg.u32(fid).u64(0x3fff);
        (self.call(&msg), tag)
    }

    /// The good request: Tgetattr on the root answers with the root's qid.
    pub fn good(&mut self) -> bool {
        let (answer, tag) = self.getattr(ROOT);
        answer.is(kind::TGETATTR + 1)
            && answer.tag == tag
            && same_object(&answer.qid_at(15), &self.root_qid)
    }

    /// Twalk from `fid` to `newfid` through `names`.
    pub fn walk(&mut self, fid: u32, newfid: u32, names: &[&[u8]]) -> (Reply, u16) {
        let tag = self.tag();
        let mut msg = Msg::new(kind::TWALK, tag);
        msg.u32(fid).u32(newfid).u16(names.len() as u16);
        for name in names {
            msg.string(name);
        }
        (self.call(&msg), tag)
    }

    /// Tclunk of `fid`.
    pub fn clunk(&mut self, fid: u32) -> (Reply, u16) {
        let tag = self.tag();
        let mut msg = Msg::new(kind::TCLUNK, tag);
        msg.u32(fid);
        (self.call(&msg), tag)
    }

    /// Tunlinkat of `name` in the root (cleaning up what a lenient server made).
    pub fn unlink(&mut self, name: &[u8]) {
        let tag = self.tag();
        let mut msg = Msg::new(kind::TUNLINKAT, tag);
        msg.u32(ROOT).string(name).u32(0);
        self.call(&msg);
    }

    /// Resets the device and starts a new session.
    pub fn recover(&mut self) -> bool {
        self.driver.recover() && self.start() == (true, true)
    }
}

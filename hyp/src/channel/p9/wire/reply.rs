//! The R-messages of 9P2000.L: encoding (the server) and decoding (tests, fuzzing).

use super::{
    framed, kind, Header, Qid, Reader, WireError, Writer, MAX_WALK_NAMES, QID_BYTES,
    READ_HEADER_BYTES,
};

/// The body of an `Rgetattr` (Linux `struct p9_stat_dotl`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Named as the protocol names them.
pub struct Getattr {
    /// Which fields are valid (P9_GETATTR_BASIC = 0x7ff for what Janus fills).
    pub valid: u64,
    pub qid: Qid,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime_sec: u64,
    pub atime_nsec: u64,
    pub mtime_sec: u64,
    pub mtime_nsec: u64,
    pub ctime_sec: u64,
    pub ctime_nsec: u64,
    pub btime_sec: u64,
    pub btime_nsec: u64,
    pub generation: u64,
    pub data_version: u64,
}

/// The body of an `Rstatfs` (Linux `struct p9_rstatfs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Named as the protocol names them.
pub struct Statfs {
    pub fs_type: u32,
    pub bsize: u32,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: u64,
    pub namelen: u32,
}

/// One reply. `Read` and `Readdir` stand for their header only: `count` data bytes
/// follow at [`READ_HEADER_BYTES`], written by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Fields are named as the protocol names them.
pub enum Reply<'a> {
    Lerror { ecode: u32 },
    Statfs(Statfs),
    Lopen { qid: Qid, iounit: u32 },
    Lcreate { qid: Qid, iounit: u32 },
    Getattr(Getattr),
    Setattr,
    Readdir { count: u32 },
    Fsync,
    Lock { status: u8 },
    Mkdir { qid: Qid },
    Rename,
    Renameat,
    Unlinkat,
    Version { msize: u32, version: &'a str },
    Attach { qid: Qid },
    Flush,
    Walk { qids: &'a [Qid] },
    Read { count: u32 },
    Write { count: u32 },
    Clunk,
    Remove,
}

/// The most bytes any reply but `Read` / `Readdir` data takes (an `Rwalk` of 16 qids,
/// 215; `Rgetattr`, 160).
pub const MAX_FIXED_REPLY_BYTES: usize = 7 + 2 + QID_BYTES * MAX_WALK_NAMES;

/// Encodes `reply` with `tag` into `out`; returns the bytes written. `Read` and
/// `Readdir` are encoded as their header only, `size` counting `count` more bytes.
///
/// # Errors
/// `TooLarge` when `out` is too small; `TooManyNames` for more than 16 walk qids.
pub fn encode_reply(tag: u16, reply: &Reply<'_>, out: &mut [u8]) -> Result<usize, WireError> {
    let mut w = Writer::new(out);
    let mut payload = 0;
    match *reply {
        Reply::Lerror { ecode } => {
            w.header(kind::RLERROR, tag)?;
            w.u32(ecode)?;
        }
        Reply::Statfs(s) => {
            w.header(kind::TSTATFS + 1, tag)?;
            w.u32(s.fs_type)?;
            w.u32(s.bsize)?;
            w.u64(s.blocks)?;
            w.u64(s.bfree)?;
            w.u64(s.bavail)?;
            w.u64(s.files)?;
            w.u64(s.ffree)?;
            w.u64(s.fsid)?;
            w.u32(s.namelen)?;
        }
        Reply::Lopen { qid, iounit } | Reply::Lcreate { qid, iounit } => {
            let number = if matches!(reply, Reply::Lopen { .. }) {
                kind::TLOPEN
            } else {
                kind::TLCREATE
            };
            w.header(number + 1, tag)?;
            w.qid(&qid)?;
            w.u32(iounit)?;
        }
        Reply::Getattr(g) => {
            w.header(kind::TGETATTR + 1, tag)?;
            w.u64(g.valid)?;
            w.qid(&g.qid)?;
            w.u32(g.mode)?;
            w.u32(g.uid)?;
            w.u32(g.gid)?;
            for value in [
                g.nlink,
                g.rdev,
                g.size,
                g.blksize,
                g.blocks,
                g.atime_sec,
                g.atime_nsec,
                g.mtime_sec,
                g.mtime_nsec,
                g.ctime_sec,
                g.ctime_nsec,
                g.btime_sec,
                g.btime_nsec,
                g.generation,
                g.data_version,
            ] {
                w.u64(value)?;
            }
        }
        Reply::Readdir { count } | Reply::Read { count } => {
            let number = if matches!(reply, Reply::Read { .. }) {
                kind::TREAD
            } else {
                kind::TREADDIR
            };
            w.header(number + 1, tag)?;
            w.u32(count)?;
            payload = count;
        }
        Reply::Lock { status } => {
            w.header(kind::TLOCK + 1, tag)?;
            w.u8(status)?;
        }
        Reply::Mkdir { qid } | Reply::Attach { qid } => {
            let number = if matches!(reply, Reply::Mkdir { .. }) {
                kind::TMKDIR
            } else {
                kind::TATTACH
            };
            w.header(number + 1, tag)?;
            w.qid(&qid)?;
        }
        Reply::Version { msize, version } => {
            w.header(kind::TVERSION + 1, tag)?;
            w.u32(msize)?;
            w.str(version)?;
        }
        Reply::Walk { qids } => {
            w.header(kind::TWALK + 1, tag)?;
            if qids.len() > MAX_WALK_NAMES {
                return Err(WireError::TooManyNames);
            }
            w.u16(u16::try_from(qids.len()).map_err(|_| WireError::TooManyNames)?)?;
            for qid in qids {
                w.qid(qid)?;
            }
        }
        Reply::Write { count } => {
            w.header(kind::TWRITE + 1, tag)?;
            w.u32(count)?;
        }
        Reply::Setattr
        | Reply::Fsync
        | Reply::Rename
        | Reply::Renameat
        | Reply::Unlinkat
        | Reply::Flush
        | Reply::Clunk
        | Reply::Remove => {
            let number = match reply {
                Reply::Setattr => kind::TSETATTR,
                Reply::Fsync => kind::TFSYNC,
                Reply::Rename => kind::TRENAME,
                Reply::Renameat => kind::TRENAMEAT,
                Reply::Unlinkat => kind::TUNLINKAT,
                Reply::Flush => kind::TFLUSH,
                Reply::Clunk => kind::TCLUNK,
                _ => kind::TREMOVE,
            };
            w.header(number + 1, tag)?;
        }
    }
    w.finish(payload)
}

/// Decodes a reply from `bytes` (a whole message, or for `Rread` / `Rreaddir` at least
/// its header: their data is at [`READ_HEADER_BYTES`]). `qids` receives an `Rwalk`'s
/// qids, which the returned `Walk` borrows.
///
/// # Errors
/// Any [`WireError`] but `TooLarge`.
pub fn decode_reply<'a>(
    bytes: &'a [u8],
    qids: &'a mut [Qid; MAX_WALK_NAMES],
) -> Result<(Header, Reply<'a>), WireError> {
    let header = super::decode_header(bytes)?;
    if header.kind == kind::TREAD + 1 || header.kind == kind::TREADDIR + 1 {
        let mut r = Reader::new(
            bytes
                .get(7..READ_HEADER_BYTES)
                .ok_or(WireError::Truncated)?,
        );
        let count = r.u32()?;
        if (header.size as usize).checked_sub(READ_HEADER_BYTES) != Some(count as usize) {
            return Err(WireError::BadSize);
        }
        let reply = if header.kind == kind::TREAD + 1 {
            Reply::Read { count }
        } else {
            Reply::Readdir { count }
        };
        return Ok((header, reply));
    }
    let (header, mut r) = framed(bytes)?;
    let reply = match header.kind.wrapping_sub(1) {
        _ if header.kind == kind::RLERROR => Reply::Lerror { ecode: r.u32()? },
        kind::TSTATFS => Reply::Statfs(Statfs {
            fs_type: r.u32()?,
            bsize: r.u32()?,
            blocks: r.u64()?,
            bfree: r.u64()?,
            bavail: r.u64()?,
            files: r.u64()?,
            ffree: r.u64()?,
            fsid: r.u64()?,
            namelen: r.u32()?,
        }),
        kind::TLOPEN => Reply::Lopen {
            qid: r.qid()?,
            iounit: r.u32()?,
        },
        kind::TLCREATE => Reply::Lcreate {
            qid: r.qid()?,
            iounit: r.u32()?,
        },
        kind::TGETATTR => {
            let valid = r.u64()?;
            let qid = r.qid()?;
            let (mode, uid, gid) = (r.u32()?, r.u32()?, r.u32()?);
            let mut values = [0u64; 15];
            for value in &mut values {
                *value = r.u64()?;
            }
            let [nlink, rdev, size, blksize, blocks, atime_sec, atime_nsec, mtime_sec, mtime_nsec, ctime_sec, ctime_nsec, btime_sec, btime_nsec, generation, data_version] =
                values;
            Reply::Getattr(Getattr {
                valid,
                qid,
                mode,
                uid,
                gid,
                nlink,
                rdev,
                size,
                blksize,
                blocks,
                atime_sec,
                atime_nsec,
                mtime_sec,
                mtime_nsec,
                ctime_sec,
                ctime_nsec,
                btime_sec,
                btime_nsec,
                generation,
                data_version,
            })
        }
        kind::TSETATTR => Reply::Setattr,
        kind::TFSYNC => Reply::Fsync,
        kind::TLOCK => Reply::Lock { status: r.u8()? },
        kind::TMKDIR => Reply::Mkdir { qid: r.qid()? },
        kind::TRENAME => Reply::Rename,
        kind::TRENAMEAT => Reply::Renameat,
        kind::TUNLINKAT => Reply::Unlinkat,
        kind::TVERSION => Reply::Version {
            msize: r.u32()?,
            version: r.str()?,
        },
        kind::TATTACH => Reply::Attach { qid: r.qid()? },
        kind::TFLUSH => Reply::Flush,
        kind::TWALK => {
            let count = usize::from(r.u16()?);
            let slots = qids.get_mut(..count).ok_or(WireError::TooManyNames)?;
            for slot in slots.iter_mut() {
                *slot = r.qid()?;
            }
            Reply::Walk { qids: slots }
        }
        kind::TWRITE => Reply::Write { count: r.u32()? },
        kind::TCLUNK => Reply::Clunk,
        kind::TREMOVE => Reply::Remove,
        _ => return Err(WireError::UnknownType(header.kind)),
    };
    if !r.is_empty() {
        return Err(WireError::BadSize);
    }
    Ok((header, reply))
}

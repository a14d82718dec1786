//! The T-messages of 9P2000.L that Linux 6.1 can send: decoding and encoding.

use super::{
    framed, kind, Header, Reader, WireError, Writer, HEADER_BYTES, MAX_WALK_NAMES,
    WRITE_HEADER_BYTES,
};

/// The names of one `Twalk` (at most [`MAX_WALK_NAMES`]), borrowed from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkNames<'a> {
    /// The names; only the first `len` are used.
    names: [&'a str; MAX_WALK_NAMES],
    /// How many there are.
    len: usize,
}

impl<'a> WalkNames<'a> {
    /// The names of `names` (`TooManyNames` past [`MAX_WALK_NAMES`]).
    ///
    /// # Errors
    /// `TooManyNames`.
    pub fn new(names: &[&'a str]) -> Result<Self, WireError> {
        let mut walk = WalkNames {
            names: [""; MAX_WALK_NAMES],
            len: 0,
        };
        for name in names {
            walk.push(name)?;
        }
        Ok(walk)
    }

    /// Appends one name.
    fn push(&mut self, name: &'a str) -> Result<(), WireError> {
        let slot = self
            .names
            .get_mut(self.len)
            .ok_or(WireError::TooManyNames)?;
        *slot = name;
        self.len += 1;
        Ok(())
    }

    /// The names, in order.
    pub fn as_slice(&self) -> &[&'a str] {
        self.names.get(..self.len).unwrap_or(&[])
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none (a clone).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The body of a `Tsetattr` (Linux `struct p9_iattr_dotl`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Named as the protocol names them.
pub struct Setattr {
    /// Which fields to apply (P9_ATTR_MODE 0x1, UID 0x2, GID 0x4, SIZE 0x8, ATIME 0x10,
    /// MTIME 0x20, CTIME 0x40, ATIME_SET 0x80, MTIME_SET 0x100).
    pub valid: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime_sec: u64,
    pub atime_nsec: u64,
    pub mtime_sec: u64,
    pub mtime_nsec: u64,
}

/// One decoded request (the tag travels beside it, in the [`Header`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Fields are named as the protocol names them.
#[allow(clippy::large_enum_variant)] // One per request, on the stack; boxing the walk names would allocate per request.
pub enum Request<'a> {
    Statfs {
        fid: u32,
    },
    Lopen {
        fid: u32,
        flags: u32,
    },
    Lcreate {
        fid: u32,
        name: &'a str,
        flags: u32,
        mode: u32,
        gid: u32,
    },
    Symlink {
        fid: u32,
        name: &'a str,
        target: &'a str,
        gid: u32,
    },
    Mknod {
        dfid: u32,
        name: &'a str,
        mode: u32,
        major: u32,
        minor: u32,
        gid: u32,
    },
    Rename {
        fid: u32,
        dfid: u32,
        name: &'a str,
    },
    Readlink {
        fid: u32,
    },
    Getattr {
        fid: u32,
        request_mask: u64,
    },
    Setattr {
        fid: u32,
        attr: Setattr,
    },
    Xattrwalk {
        fid: u32,
        newfid: u32,
        name: &'a str,
    },
    Xattrcreate {
        fid: u32,
        name: &'a str,
        attr_size: u64,
        flags: u32,
    },
    Readdir {
        fid: u32,
        offset: u64,
        count: u32,
    },
    Fsync {
        fid: u32,
        datasync: u32,
    },
    Lock {
        fid: u32,
        lock_type: u8,
        flags: u32,
        start: u64,
        length: u64,
        proc_id: u32,
        client_id: &'a str,
    },
    Getlock {
        fid: u32,
        lock_type: u8,
        start: u64,
        length: u64,
        proc_id: u32,
        client_id: &'a str,
    },
    Link {
        dfid: u32,
        fid: u32,
        name: &'a str,
    },
    Mkdir {
        dfid: u32,
        name: &'a str,
        mode: u32,
        gid: u32,
    },
    Renameat {
        olddirfid: u32,
        oldname: &'a str,
        newdirfid: u32,
        newname: &'a str,
    },
    Unlinkat {
        dirfid: u32,
        name: &'a str,
        flags: u32,
    },
    Version {
        msize: u32,
        version: &'a str,
    },
    Auth {
        afid: u32,
        uname: &'a str,
        aname: &'a str,
        n_uname: u32,
    },
    Attach {
        fid: u32,
        afid: u32,
        uname: &'a str,
        aname: &'a str,
        n_uname: u32,
    },
    Flush {
        oldtag: u16,
    },
    Walk {
        fid: u32,
        newfid: u32,
        names: WalkNames<'a>,
    },
    Read {
        fid: u32,
        offset: u64,
        count: u32,
    },
    /// The `count` data bytes follow at [`WRITE_HEADER_BYTES`] from the message's start.
    Write {
        fid: u32,
        offset: u64,
        count: u32,
    },
    Clunk {
        fid: u32,
    },
    Remove {
        fid: u32,
    },
}

/// Decodes a request from `bytes`, the message from its first byte. For a `Twrite`
/// only the first [`WRITE_HEADER_BYTES`] are needed (its data is reached at that
/// offset); any other message must be there whole. Bytes past `size` are ignored.
///
/// # Errors
/// Any [`WireError`] but `TooLarge`.
pub fn decode_request(bytes: &[u8]) -> Result<(Header, Request<'_>), WireError> {
    let header = super::decode_header(bytes)?;
    if header.kind == kind::TWRITE {
        let fixed = bytes
            .get(HEADER_BYTES..WRITE_HEADER_BYTES)
            .ok_or(WireError::Truncated)?;
        let mut reader = Reader::new(fixed);
        let (fid, offset, count) = (reader.u32()?, reader.u64()?, reader.u32()?);
        // Linux patches count when it pinned fewer pages than asked, so the two agree.
        let payload = (header.size as usize).checked_sub(WRITE_HEADER_BYTES);
        if payload != Some(count as usize) {
            return Err(WireError::BadSize);
        }
        return Ok((header, Request::Write { fid, offset, count }));
    }
    let (header, mut r) = framed(bytes)?;
    let request = decode_body(header.kind, &mut r)?;
    if !r.is_empty() {
        return Err(WireError::BadSize);
    }
    Ok((header, request))
}

/// Decodes the body of a request of type `kind` (not `Twrite`).
fn decode_body<'a>(kind: u8, r: &mut Reader<'a>) -> Result<Request<'a>, WireError> {
    Ok(match kind {
        kind::TSTATFS => Request::Statfs { fid: r.u32()? },
        kind::TLOPEN => Request::Lopen {
            fid: r.u32()?,
            flags: r.u32()?,
        },
        kind::TLCREATE => Request::Lcreate {
            fid: r.u32()?,
            name: r.str()?,
            flags: r.u32()?,
            mode: r.u32()?,
            gid: r.u32()?,
        },
        kind::TSYMLINK => Request::Symlink {
            fid: r.u32()?,
            name: r.str()?,
            target: r.str()?,
            gid: r.u32()?,
        },
        kind::TMKNOD => Request::Mknod {
            dfid: r.u32()?,
            name: r.str()?,
            mode: r.u32()?,
            major: r.u32()?,
            minor: r.u32()?,
            gid: r.u32()?,
        },
        kind::TRENAME => Request::Rename {
            fid: r.u32()?,
            dfid: r.u32()?,
            name: r.str()?,
        },
        kind::TREADLINK => Request::Readlink { fid: r.u32()? },
        kind::TGETATTR => Request::Getattr {
            fid: r.u32()?,
            request_mask: r.u64()?,
        },
        kind::TSETATTR => Request::Setattr {
            fid: r.u32()?,
            attr: Setattr {
                valid: r.u32()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
                size: r.u64()?,
                atime_sec: r.u64()?,
                atime_nsec: r.u64()?,
                mtime_sec: r.u64()?,
                mtime_nsec: r.u64()?,
            },
        },
        kind::TXATTRWALK => Request::Xattrwalk {
            fid: r.u32()?,
            newfid: r.u32()?,
            name: r.str()?,
        },
        kind::TXATTRCREATE => Request::Xattrcreate {
            fid: r.u32()?,
            name: r.str()?,
            attr_size: r.u64()?,
            flags: r.u32()?,
        },
        kind::TREADDIR => Request::Readdir {
            fid: r.u32()?,
            offset: r.u64()?,
            count: r.u32()?,
        },
        kind::TFSYNC => Request::Fsync {
            fid: r.u32()?,
            datasync: r.u32()?,
        },
        kind::TLOCK => Request::Lock {
            fid: r.u32()?,
            lock_type: r.u8()?,
            flags: r.u32()?,
            start: r.u64()?,
            length: r.u64()?,
            proc_id: r.u32()?,
            client_id: r.str()?,
        },
        kind::TGETLOCK => Request::Getlock {
            fid: r.u32()?,
            lock_type: r.u8()?,
            start: r.u64()?,
            length: r.u64()?,
            proc_id: r.u32()?,
            client_id: r.str()?,
        },
        kind::TLINK => Request::Link {
            dfid: r.u32()?,
            fid: r.u32()?,
            name: r.str()?,
        },
        kind::TMKDIR => Request::Mkdir {
            dfid: r.u32()?,
            name: r.str()?,
            mode: r.u32()?,
            gid: r.u32()?,
        },
        kind::TRENAMEAT => Request::Renameat {
            olddirfid: r.u32()?,
            oldname: r.str()?,
            newdirfid: r.u32()?,
            newname: r.str()?,
        },
        kind::TUNLINKAT => Request::Unlinkat {
            dirfid: r.u32()?,
            name: r.str()?,
            flags: r.u32()?,
        },
        kind::TVERSION => Request::Version {
            msize: r.u32()?,
            version: r.str()?,
        },
        kind::TAUTH => Request::Auth {
            afid: r.u32()?,
            uname: r.str()?,
            aname: r.str()?,
            n_uname: r.u32()?,
        },
        kind::TATTACH => Request::Attach {
            fid: r.u32()?,
            afid: r.u32()?,
            uname: r.str()?,
            aname: r.str()?,
            n_uname: r.u32()?,
        },
        kind::TFLUSH => Request::Flush { oldtag: r.u16()? },
        kind::TWALK => {
            let fid = r.u32()?;
            let newfid = r.u32()?;
            let count = r.u16()?;
            if usize::from(count) > MAX_WALK_NAMES {
                return Err(WireError::TooManyNames);
            }
            let mut names = WalkNames::new(&[])?;
            for _ in 0..count {
                names.push(r.str()?)?;
            }
            Request::Walk { fid, newfid, names }
        }
        kind::TREAD => Request::Read {
            fid: r.u32()?,
            offset: r.u64()?,
            count: r.u32()?,
        },
        kind::TCLUNK => Request::Clunk { fid: r.u32()? },
        kind::TREMOVE => Request::Remove { fid: r.u32()? },
        other => return Err(WireError::UnknownType(other)),
    })
}

/// Encodes `request` with `tag` into `out`; returns the bytes written. A `Twrite` is
/// encoded without its data, with `size` counting `count` data bytes that the caller
/// appends.
///
/// # Errors
/// `TooLarge` when `out` is too small or a string passes 65535 bytes.
pub fn encode_request(tag: u16, request: &Request<'_>, out: &mut [u8]) -> Result<usize, WireError> {
    let mut w = Writer::new(out);
    let mut payload = 0;
    match *request {
        Request::Statfs { fid } => {
            w.header(kind::TSTATFS, tag)?;
            w.u32(fid)?;
        }
        Request::Lopen { fid, flags } => {
            w.header(kind::TLOPEN, tag)?;
            w.u32(fid)?;
            w.u32(flags)?;
        }
        Request::Lcreate {
            fid,
            name,
            flags,
            mode,
            gid,
        } => {
            w.header(kind::TLCREATE, tag)?;
            w.u32(fid)?;
            w.str(name)?;
            w.u32(flags)?;
            w.u32(mode)?;
            w.u32(gid)?;
        }
        Request::Symlink {
            fid,
            name,
            target,
            gid,
        } => {
            w.header(kind::TSYMLINK, tag)?;
            w.u32(fid)?;
            w.str(name)?;
            w.str(target)?;
            w.u32(gid)?;
        }
        Request::Mknod {
            dfid,
            name,
            mode,
            major,
            minor,
            gid,
        } => {
            w.header(kind::TMKNOD, tag)?;
            w.u32(dfid)?;
            w.str(name)?;
            w.u32(mode)?;
            w.u32(major)?;
            w.u32(minor)?;
            w.u32(gid)?;
        }
        Request::Rename { fid, dfid, name } => {
            w.header(kind::TRENAME, tag)?;
            w.u32(fid)?;
            w.u32(dfid)?;
            w.str(name)?;
        }
        Request::Readlink { fid } => {
            w.header(kind::TREADLINK, tag)?;
            w.u32(fid)?;
        }
        Request::Getattr { fid, request_mask } => {
            w.header(kind::TGETATTR, tag)?;
            w.u32(fid)?;
            w.u64(request_mask)?;
        }
        Request::Setattr { fid, attr } => {
            w.header(kind::TSETATTR, tag)?;
            w.u32(fid)?;
            w.u32(attr.valid)?;
            w.u32(attr.mode)?;
            w.u32(attr.uid)?;
            w.u32(attr.gid)?;
            w.u64(attr.size)?;
            w.u64(attr.atime_sec)?;
            w.u64(attr.atime_nsec)?;
            w.u64(attr.mtime_sec)?;
            w.u64(attr.mtime_nsec)?;
        }
        Request::Xattrwalk { fid, newfid, name } => {
            w.header(kind::TXATTRWALK, tag)?;
            w.u32(fid)?;
            w.u32(newfid)?;
            w.str(name)?;
        }
        Request::Xattrcreate {
            fid,
            name,
            attr_size,
            flags,
        } => {
            w.header(kind::TXATTRCREATE, tag)?;
            w.u32(fid)?;
            w.str(name)?;
            w.u64(attr_size)?;
            w.u32(flags)?;
        }
        Request::Readdir { fid, offset, count } => {
            w.header(kind::TREADDIR, tag)?;
            w.u32(fid)?;
            w.u64(offset)?;
            w.u32(count)?;
        }
        Request::Fsync { fid, datasync } => {
            w.header(kind::TFSYNC, tag)?;
            w.u32(fid)?;
            w.u32(datasync)?;
        }
        Request::Lock {
            fid,
            lock_type,
            flags,
            start,
            length,
            proc_id,
            client_id,
        } => {
            w.header(kind::TLOCK, tag)?;
            w.u32(fid)?;
            w.u8(lock_type)?;
            w.u32(flags)?;
            w.u64(start)?;
            w.u64(length)?;
            w.u32(proc_id)?;
            w.str(client_id)?;
        }
        Request::Getlock {
            fid,
            lock_type,
            start,
            length,
            proc_id,
            client_id,
        } => {
            w.header(kind::TGETLOCK, tag)?;
            w.u32(fid)?;
            w.u8(lock_type)?;
            w.u64(start)?;
            w.u64(length)?;
            w.u32(proc_id)?;
            w.str(client_id)?;
        }
        Request::Link { dfid, fid, name } => {
            w.header(kind::TLINK, tag)?;
            w.u32(dfid)?;
            w.u32(fid)?;
            w.str(name)?;
        }
        Request::Mkdir {
            dfid,
            name,
            mode,
            gid,
        } => {
            w.header(kind::TMKDIR, tag)?;
            w.u32(dfid)?;
            w.str(name)?;
            w.u32(mode)?;
            w.u32(gid)?;
        }
        Request::Renameat {
            olddirfid,
            oldname,
            newdirfid,
            newname,
        } => {
            w.header(kind::TRENAMEAT, tag)?;
            w.u32(olddirfid)?;
            w.str(oldname)?;
            w.u32(newdirfid)?;
            w.str(newname)?;
        }
        Request::Unlinkat {
            dirfid,
            name,
            flags,
        } => {
            w.header(kind::TUNLINKAT, tag)?;
            w.u32(dirfid)?;
            w.str(name)?;
            w.u32(flags)?;
        }
        Request::Version { msize, version } => {
            w.header(kind::TVERSION, tag)?;
            w.u32(msize)?;
            w.str(version)?;
        }
        Request::Auth {
            afid,
            uname,
            aname,
            n_uname,
        } => {
            w.header(kind::TAUTH, tag)?;
            w.u32(afid)?;
            w.str(uname)?;
            w.str(aname)?;
            w.u32(n_uname)?;
        }
        Request::Attach {
            fid,
            afid,
            uname,
            aname,
            n_uname,
        } => {
            w.header(kind::TATTACH, tag)?;
            w.u32(fid)?;
            w.u32(afid)?;
            w.str(uname)?;
            w.str(aname)?;
            w.u32(n_uname)?;
        }
        Request::Flush { oldtag } => {
            w.header(kind::TFLUSH, tag)?;
            w.u16(oldtag)?;
        }
        Request::Walk { fid, newfid, names } => {
            w.header(kind::TWALK, tag)?;
            w.u32(fid)?;
            w.u32(newfid)?;
            // At most MAX_WALK_NAMES by construction.
            w.u16(u16::try_from(names.len()).map_err(|_| WireError::TooManyNames)?)?;
            for name in names.as_slice() {
                w.str(name)?;
            }
        }
        Request::Read { fid, offset, count } => {
            w.header(kind::TREAD, tag)?;
            w.u32(fid)?;
            w.u64(offset)?;
            w.u32(count)?;
        }
        Request::Write { fid, offset, count } => {
            w.header(kind::TWRITE, tag)?;
            w.u32(fid)?;
            w.u64(offset)?;
            w.u32(count)?;
            payload = count;
        }
        Request::Clunk { fid } => {
            w.header(kind::TCLUNK, tag)?;
            w.u32(fid)?;
        }
        Request::Remove { fid } => {
            w.header(kind::TREMOVE, tag)?;
            w.u32(fid)?;
        }
    }
    w.finish(payload)
}

//! The request handlers: each turns one decoded request into `Fs` calls and a reply.

use super::{Exchange, Fid, Session, MAX_MSIZE, MIN_MSIZE, NAME_MAX_BYTES};
use crate::channel::fs::{
    Attr, DirEntry, Errno, Fs, FsResult, Kind, OpenMode, SetAttr, TimeSet, Timespec,
};
use crate::channel::p9::wire::{
    self, Getattr, Qid, Reply, Request, Statfs, NOFID, QID_BYTES, QID_DIR, QID_FILE,
    READ_HEADER_BYTES, VERSION_9P2000_L, VERSION_UNKNOWN, WRITE_HEADER_BYTES,
};

/// Linux open flags as 9P2000.L carries them (`P9_DOTL_*`, the same on every arch).
mod open_flag {
    /// The access mode bits.
    pub const ACCMODE: u32 = 0o3;
    /// Write only.
    pub const WRONLY: u32 = 0o1;
    /// Read and write.
    pub const RDWR: u32 = 0o2;
    /// Truncate at open.
    pub const TRUNC: u32 = 0o1000;
    /// Must be a directory.
    pub const DIRECTORY: u32 = 0o200000;
}

/// `Tsetattr` valid bits (Linux `P9_ATTR_*`).
mod attr_bit {
    pub const MODE: u32 = 0x1;
    pub const UID: u32 = 0x2;
    pub const GID: u32 = 0x4;
    pub const SIZE: u32 = 0x8;
    pub const ATIME: u32 = 0x10;
    pub const MTIME: u32 = 0x20;
    pub const ATIME_SET: u32 = 0x80;
    pub const MTIME_SET: u32 = 0x100;
}

/// `Rgetattr` valid: P9_GETATTR_BASIC (mode, nlink, uid, gid, rdev, atime, mtime, ctime,
/// ino, size, blocks); no btime, gen or data_version.
const GETATTR_BASIC: u64 = 0x7ff;
/// S_IFDIR and S_IFREG.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
/// Directory entry types (`DT_DIR`, `DT_REG`).
const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;
/// `Tunlinkat` flag: remove a directory.
const AT_REMOVEDIR: u32 = 0x200;
/// `Tlock` type: unlock (P9_LOCK_TYPE_UNLCK).
const LOCK_TYPE_UNLCK: u8 = 2;
/// `Rlock` status: success.
const LOCK_SUCCESS: u8 = 0;
/// EFAULT: guest memory of the request or reply could not be reached.
const EFAULT: Errno = Errno(14);
/// The `Rstatfs` type: V9FS_MAGIC.
const V9FS_MAGIC: u32 = 0x0102_1997;
/// Bytes of a directory entry before its name: qid, offset[8], type[1], name len[2].
const DIRENT_FIXED_BYTES: usize = QID_BYTES + 8 + 1 + 2;

/// An object's qid.
pub(super) fn qid(attr: &Attr) -> Qid {
    Qid {
        kind: match attr.kind {
            Kind::Dir => QID_DIR,
            Kind::File => QID_FILE,
        },
        version: attr.version,
        path: attr.ino,
    }
}

/// Checks a name the client gives: one component, at most NAME_MAX bytes.
pub(super) fn check_name(name: &str) -> Result<(), Errno> {
    if name.is_empty() || name.contains(['/', '\0']) {
        return Err(Errno::EINVAL);
    }
    if name.len() > NAME_MAX_BYTES {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// Checks a name that becomes or removes an entry: also not `.` or `..`.
fn check_entry_name(name: &str) -> Result<(), Errno> {
    check_name(name)?;
    if name == "." || name == ".." {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// The open mode of Linux open flags.
fn open_mode(flags: u32) -> Result<OpenMode, Errno> {
    let (read, write) = match flags & open_flag::ACCMODE {
        0 => (true, false),
        open_flag::WRONLY => (false, true),
        open_flag::RDWR => (true, true),
        _ => return Err(Errno::EINVAL),
    };
    Ok(OpenMode {
        read,
        write,
        truncate: write && flags & open_flag::TRUNC != 0,
    })
}

/// A `Timespec` from a 9P time, refusing nanoseconds of a second or more.
fn timespec(sec: u64, nsec: u64) -> Result<Timespec, Errno> {
    match u32::try_from(nsec) {
        Ok(nsec) if nsec < 1_000_000_000 => Ok(Timespec { sec, nsec }),
        _ => Err(Errno::EINVAL),
    }
}

impl Session {
    /// Carries out one request.
    pub(super) fn dispatch<'q>(
        &mut self,
        fs: &mut dyn Fs,
        request: &Request<'_>,
        exchange: &mut dyn Exchange,
        scratch: &mut [u8],
        limit: usize,
        qids: &'q mut [Qid; wire::MAX_WALK_NAMES],
    ) -> FsResult<Reply<'q>> {
        if let Request::Version { msize, version } = *request {
            return Ok(self.version(fs, msize, version));
        }
        if !self.established {
            return Err(Errno::EPROTO);
        }
        let who = self.who;
        match *request {
            Request::Version { .. } => Err(Errno::EPROTO),
            Request::Attach { fid, afid, .. } => {
                if afid != NOFID {
                    return Err(Errno::EINVAL);
                }
                self.fids.check_new(fid)?;
                let root = fs.root(who)?;
                self.fids.insert(fid, Fid::root(root.ino))?;
                Ok(Reply::Attach { qid: qid(&root) })
            }
            Request::Walk { fid, newfid, names } => {
                self.walk(fs, fid, newfid, names.as_slice(), qids)
            }
            Request::Getattr { fid, .. } => {
                let ino = self.fids.get(fid)?.ino;
                Ok(Reply::Getattr(getattr(&fs.getattr(who, ino)?)))
            }
            Request::Setattr { fid, attr } => {
                let ino = self.fids.get(fid)?.ino;
                let changes = setattr_changes(&attr)?;
                if changes != SetAttr::default() {
                    fs.setattr(who, ino, &changes)?;
                }
                Ok(Reply::Setattr)
            }
            Request::Lopen { fid, flags } => self.lopen(fs, fid, flags),
            Request::Lcreate {
                fid,
                name,
                flags,
                mode,
                ..
            } => self.lcreate(fs, fid, name, flags, mode),
            Request::Read { fid, offset, count } => {
                self.read(fs, fid, offset, count, exchange, scratch, limit)
            }
            Request::Write { fid, offset, count } => {
                self.write(fs, fid, offset, count, exchange, scratch)
            }
            Request::Readdir { fid, offset, count } => {
                self.readdir(fs, fid, offset, count, exchange, scratch, limit)
            }
            Request::Mkdir {
                dfid, name, mode, ..
            } => {
                check_entry_name(name)?;
                let dir = self.dir(dfid)?;
                let attr = fs.mkdir(who, dir, name, mode & 0o7777)?;
                Ok(Reply::Mkdir { qid: qid(&attr) })
            }
            Request::Renameat {
                olddirfid,
                oldname,
                newdirfid,
                newname,
            } => {
                check_entry_name(oldname)?;
                check_entry_name(newname)?;
                let old_dir = self.dir(olddirfid)?;
                let new_dir = self.dir(newdirfid)?;
                fs.rename(who, old_dir, oldname, new_dir, newname)?;
                Ok(Reply::Renameat)
            }
            Request::Rename { fid, dfid, name } => self.rename(fs, fid, dfid, name),
            Request::Unlinkat {
                dirfid,
                name,
                flags,
            } => {
                check_entry_name(name)?;
                let dir = self.dir(dirfid)?;
                fs.unlink(who, dir, name, flags & AT_REMOVEDIR != 0)?;
                Ok(Reply::Unlinkat)
            }
            Request::Remove { fid } => self.remove(fs, fid),
            Request::Fsync { fid, .. } => {
                let ino = self.fids.get(fid)?.ino;
                fs.fsync(who, ino)?;
                Ok(Reply::Fsync)
            }
            Request::Statfs { fid } => {
                self.fids.get(fid)?;
                let s = fs.statfs(who)?;
                Ok(Reply::Statfs(Statfs {
                    fs_type: V9FS_MAGIC,
                    bsize: s.block_size,
                    blocks: s.blocks,
                    bfree: s.blocks_free,
                    bavail: s.blocks_free,
                    files: s.files,
                    ffree: s.files_free,
                    fsid: 0,
                    namelen: s.name_max,
                }))
            }
            Request::Clunk { fid } => {
                let entry = self.fids.remove(fid)?;
                close(fs, who, &entry)?;
                Ok(Reply::Clunk)
            }
            Request::Flush { .. } => Ok(Reply::Flush),
            // No locks: taking one fails cleanly (flock and fcntl return EOPNOTSUPP
            // in the guest); releasing one never taken succeeds.
            Request::Lock { fid, lock_type, .. } => {
                self.fids.get(fid)?;
                if lock_type == LOCK_TYPE_UNLCK {
                    Ok(Reply::Lock {
                        status: LOCK_SUCCESS,
                    })
                } else {
                    Err(Errno::EOPNOTSUPP)
                }
            }
            Request::Getlock { .. }
            | Request::Xattrwalk { .. }
            | Request::Xattrcreate { .. }
            | Request::Auth { .. } => Err(Errno::EOPNOTSUPP),
            // The share holds files and directories only (research 2.6.2: never create
            // special files); EPERM is what link(2) and symlink(2) give on such a
            // file system.
            Request::Symlink { .. } | Request::Link { .. } | Request::Mknod { .. } => {
                Err(Errno::EPERM)
            }
            Request::Readlink { .. } => Err(Errno::EINVAL),
        }
    }

    /// Ends every fid (closing the open ones), as a new `Tversion` or a reset does.
    pub(super) fn reset(&mut self, fs: &mut dyn Fs) {
        while let Some(entry) = self.fids.pop() {
            // The session is gone: nobody to report a close error to.
            let _ = close(fs, self.who, &entry);
        }
    }

    /// `Tversion`: resets the session and negotiates msize.
    fn version(&mut self, fs: &mut dyn Fs, msize: u32, version: &str) -> Reply<'static> {
        self.reset(fs);
        self.established = false;
        self.msize = MAX_MSIZE;
        if version != VERSION_9P2000_L || msize < MIN_MSIZE {
            // 9P version(5): a version the server does not speak is answered "unknown"
            // (Linux then fails the mount); so is an msize too small to work with.
            return Reply::Version {
                msize: msize.clamp(MIN_MSIZE, MAX_MSIZE),
                version: VERSION_UNKNOWN,
            };
        }
        self.msize = msize.min(MAX_MSIZE);
        self.established = true;
        Reply::Version {
            msize: self.msize,
            version: VERSION_9P2000_L,
        }
    }

    /// The object of a fid that must be a directory.
    fn dir(&self, fid: u32) -> FsResult<crate::channel::fs::Ino> {
        let entry = self.fids.get(fid)?;
        if entry.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(entry.ino)
    }

    /// `Tlopen`.
    fn lopen(&mut self, fs: &mut dyn Fs, fid: u32, flags: u32) -> FsResult<Reply<'static>> {
        let who = self.who;
        let entry = self.fids.get_mut(fid)?;
        if entry.open.is_some() {
            return Err(Errno::EINVAL);
        }
        let mode = open_mode(flags)?;
        match entry.kind {
            Kind::Dir if mode.write => return Err(Errno::EISDIR),
            Kind::File if flags & open_flag::DIRECTORY != 0 => return Err(Errno::ENOTDIR),
            _ => {}
        }
        let attr = fs.open(who, entry.ino, mode)?;
        entry.open = Some(mode);
        Ok(Reply::Lopen {
            qid: qid(&attr),
            iounit: 0,
        })
    }

    /// `Tlcreate`: creates and opens `name`; the directory fid becomes the file.
    fn lcreate(
        &mut self,
        fs: &mut dyn Fs,
        fid: u32,
        name: &str,
        flags: u32,
        mode: u32,
    ) -> FsResult<Reply<'static>> {
        let who = self.who;
        check_entry_name(name)?;
        let entry = self.fids.get_mut(fid)?;
        if entry.open.is_some() {
            return Err(Errno::EINVAL);
        }
        if entry.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        if flags & open_flag::DIRECTORY != 0 {
            return Err(Errno::EINVAL);
        }
        let open = open_mode(flags)?;
        let attr = fs.create(who, entry.ino, name, mode & 0o7777, open)?;
        entry.descend(attr.ino, attr.kind);
        entry.open = Some(open);
        Ok(Reply::Lcreate {
            qid: qid(&attr),
            iounit: 0,
        })
    }

    /// `Tread`: reads into the reply's data, piece by piece through `scratch`.
    #[allow(clippy::too_many_arguments)] // One request's fields plus its buffers.
    fn read(
        &mut self,
        fs: &mut dyn Fs,
        fid: u32,
        offset: u64,
        count: u32,
        exchange: &mut dyn Exchange,
        scratch: &mut [u8],
        limit: usize,
    ) -> FsResult<Reply<'static>> {
        let entry = self.fids.get(fid)?;
        if !entry.open.is_some_and(|mode| mode.read) {
            return Err(Errno::EBADF);
        }
        if entry.kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        let wanted = (count as usize).min(limit.saturating_sub(READ_HEADER_BYTES));
        let mut done = 0usize;
        while done < wanted {
            let piece = (wanted - done).min(scratch.len());
            let buf = scratch.get_mut(..piece).ok_or(Errno::EIO)?;
            let at = offset.checked_add(done as u64).ok_or(Errno::EINVAL)?;
            let got = match fs.read(self.who, entry.ino, at, buf) {
                Ok(got) => got.min(piece),
                Err(errno) if done == 0 => return Err(errno),
                Err(_) => break, // A short read; the next one gets the error.
            };
            let data = buf.get(..got).ok_or(Errno::EIO)?;
            exchange
                .write_reply(READ_HEADER_BYTES + done, data)
                .map_err(|_| EFAULT)?;
            done += got;
            if got < piece {
                break;
            }
        }
        Ok(Reply::Read {
            count: u32::try_from(done).map_err(|_| Errno::EIO)?,
        })
    }

    /// `Twrite`: writes the request's data, piece by piece through `scratch`.
    fn write(
        &mut self,
        fs: &mut dyn Fs,
        fid: u32,
        offset: u64,
        count: u32,
        exchange: &mut dyn Exchange,
        scratch: &mut [u8],
    ) -> FsResult<Reply<'static>> {
        let entry = self.fids.get(fid)?;
        if !entry.open.is_some_and(|mode| mode.write) {
            return Err(Errno::EBADF);
        }
        let total = count as usize;
        offset.checked_add(u64::from(count)).ok_or(Errno::EFBIG)?;
        let mut done = 0usize;
        while done < total {
            let piece = (total - done).min(scratch.len());
            let buf = scratch.get_mut(..piece).ok_or(Errno::EIO)?;
            exchange
                .read_request(WRITE_HEADER_BYTES + done, buf)
                .map_err(|_| EFAULT)?;
            let at = offset + done as u64;
            let written = match fs.write(self.who, entry.ino, at, buf) {
                Ok(written) => written.min(piece),
                Err(errno) if done == 0 => return Err(errno),
                Err(_) => break, // A short write; the next one gets the error.
            };
            done += written;
            if written < piece {
                break;
            }
        }
        Ok(Reply::Write {
            count: u32::try_from(done).map_err(|_| Errno::EIO)?,
        })
    }

    /// `Treaddir`: the entries after cookie `offset` that fit `count`, `limit` and the
    /// scratch buffer. "." and ".." are not synthesized: `DirEntry` cookies are the
    /// store's and leave no values free for them, and Linux needs neither (its VFS
    /// resolves both itself; `ls -a` lists what the server sends).
    #[allow(clippy::too_many_arguments)] // One request's fields plus its buffers.
    fn readdir(
        &mut self,
        fs: &mut dyn Fs,
        fid: u32,
        offset: u64,
        count: u32,
        exchange: &mut dyn Exchange,
        scratch: &mut [u8],
        limit: usize,
    ) -> FsResult<Reply<'static>> {
        let entry = self.fids.get(fid)?;
        if entry.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        if entry.open.is_none() {
            return Err(Errno::EBADF);
        }
        let room = (count as usize)
            .min(limit.saturating_sub(READ_HEADER_BYTES))
            .min(scratch.len());
        let buf = scratch.get_mut(..room).ok_or(Errno::EIO)?;
        let mut used = 0usize;
        let mut emit = |dirent: DirEntry<'_>| -> bool {
            let Ok(name_len) = u16::try_from(dirent.name.len()) else {
                return true; // Not representable: skipped.
            };
            let len = DIRENT_FIXED_BYTES + usize::from(name_len);
            let Some(slot) = buf.get_mut(used..used + len) else {
                return false;
            };
            let attr_qid = Qid {
                kind: if dirent.kind == Kind::Dir {
                    QID_DIR
                } else {
                    QID_FILE
                },
                version: 0,
                path: dirent.ino,
            };
            let kind = if dirent.kind == Kind::Dir {
                DT_DIR
            } else {
                DT_REG
            };
            let mut w = wire::Writer::new(slot);
            let ok = w.qid(&attr_qid).is_ok()
                && w.u64(dirent.cookie).is_ok()
                && w.u8(kind).is_ok()
                && w.str(dirent.name).is_ok();
            if ok {
                used += len;
            }
            ok
        };
        fs.readdir(self.who, entry.ino, offset, &mut emit)?;
        let data = scratch.get(..used).ok_or(Errno::EIO)?;
        exchange
            .write_reply(READ_HEADER_BYTES, data)
            .map_err(|_| EFAULT)?;
        Ok(Reply::Readdir {
            count: u32::try_from(used).map_err(|_| Errno::EIO)?,
        })
    }

    /// `Trename`: renames the fid's object (found in its parent) into `dfid`.
    fn rename(
        &mut self,
        fs: &mut dyn Fs,
        fid: u32,
        dfid: u32,
        name: &str,
    ) -> FsResult<Reply<'static>> {
        check_entry_name(name)?;
        let new_dir = self.dir(dfid)?;
        let new_ancestors = {
            let target = self.fids.get(dfid)?;
            let mut moved = target.clone();
            moved.descend(0, Kind::File);
            (moved.ancestors, moved.truncated)
        };
        let entry = self.fids.get(fid)?;
        let old_dir = entry.parent().ok_or(Errno::EBUSY)?;
        let mut old_name = NameBuf::default();
        find_name(fs, self.who, old_dir, entry.ino, &mut old_name)?;
        fs.rename(self.who, old_dir, old_name.as_str()?, new_dir, name)?;
        let entry = self.fids.get_mut(fid)?;
        (entry.ancestors, entry.truncated) = new_ancestors;
        Ok(Reply::Rename)
    }

    /// `Tremove`: unlinks the fid's object, and clunks the fid whatever happened.
    fn remove(&mut self, fs: &mut dyn Fs, fid: u32) -> FsResult<Reply<'static>> {
        let entry = self.fids.remove(fid)?;
        let unlinked = match entry.parent() {
            None => Err(Errno::EBUSY),
            Some(dir) => {
                let mut name = NameBuf::default();
                find_name(fs, self.who, dir, entry.ino, &mut name).and_then(|()| {
                    fs.unlink(self.who, dir, name.as_str()?, entry.kind == Kind::Dir)
                })
            }
        };
        let closed = close(fs, self.who, &entry);
        unlinked.and(closed).map(|()| Reply::Remove)
    }
}

/// Ends a fid's open, if it has one.
fn close(fs: &mut dyn Fs, who: crate::channel::fs::Who, entry: &Fid) -> FsResult<()> {
    match entry.open {
        Some(mode) => fs.close(who, entry.ino, mode),
        None => Ok(()),
    }
}

/// A name copied out of a `readdir` callback.
struct NameBuf {
    bytes: [u8; NAME_MAX_BYTES],
    len: usize,
}

impl Default for NameBuf {
    fn default() -> Self {
        NameBuf {
            bytes: [0; NAME_MAX_BYTES],
            len: 0,
        }
    }
}

impl NameBuf {
    fn as_str(&self) -> FsResult<&str> {
        let bytes = self.bytes.get(..self.len).ok_or(Errno::EIO)?;
        core::str::from_utf8(bytes).map_err(|_| Errno::EIO)
    }
}

/// Finds the name of `ino` in `dir` (for `Tremove` and `Trename`, which name an
/// object by fid; Linux uses `Tunlinkat` and `Trenameat` instead).
fn find_name(
    fs: &mut dyn Fs,
    who: crate::channel::fs::Who,
    dir: crate::channel::fs::Ino,
    ino: crate::channel::fs::Ino,
    out: &mut NameBuf,
) -> FsResult<()> {
    let mut found = Err(Errno::ENOENT);
    fs.readdir(who, dir, 0, &mut |dirent| {
        if dirent.ino != ino {
            return true;
        }
        found = match out.bytes.get_mut(..dirent.name.len()) {
            Some(slot) => {
                slot.copy_from_slice(dirent.name.as_bytes());
                out.len = dirent.name.len();
                Ok(())
            }
            None => Err(Errno::ENAMETOOLONG),
        };
        false
    })?;
    found
}

/// `Rgetattr` of an object.
fn getattr(attr: &Attr) -> Getattr {
    let file_type = match attr.kind {
        Kind::Dir => S_IFDIR,
        Kind::File => S_IFREG,
    };
    Getattr {
        valid: GETATTR_BASIC,
        qid: qid(attr),
        mode: file_type | (attr.mode & 0o7777),
        uid: 0,
        gid: 0,
        nlink: u64::from(attr.nlink),
        rdev: 0,
        size: attr.size,
        blksize: 4096,
        blocks: attr.size.div_ceil(512),
        atime_sec: attr.atime.sec,
        atime_nsec: u64::from(attr.atime.nsec),
        mtime_sec: attr.mtime.sec,
        mtime_nsec: u64::from(attr.mtime.nsec),
        ctime_sec: attr.ctime.sec,
        ctime_nsec: u64::from(attr.ctime.nsec),
        ..Getattr::default()
    }
}

/// The `Fs` changes a `Tsetattr` asks for. Owner and group are always 0: changing
/// them to anything else is `EPERM`; CTIME alone changes nothing the `Fs` keeps apart.
fn setattr_changes(attr: &wire::Setattr) -> FsResult<SetAttr> {
    let valid = attr.valid;
    if (valid & attr_bit::UID != 0 && attr.uid != 0)
        || (valid & attr_bit::GID != 0 && attr.gid != 0)
    {
        return Err(Errno::EPERM);
    }
    let time = |set_bit: u32, sec: u64, nsec: u64| -> FsResult<TimeSet> {
        if valid & set_bit != 0 {
            Ok(TimeSet::At(timespec(sec, nsec)?))
        } else {
            Ok(TimeSet::Now)
        }
    };
    Ok(SetAttr {
        mode: (valid & attr_bit::MODE != 0).then_some(attr.mode & 0o7777),
        size: (valid & attr_bit::SIZE != 0).then_some(attr.size),
        atime: if valid & attr_bit::ATIME != 0 {
            Some(time(attr_bit::ATIME_SET, attr.atime_sec, attr.atime_nsec)?)
        } else {
            None
        },
        mtime: if valid & attr_bit::MTIME != 0 {
            Some(time(attr_bit::MTIME_SET, attr.mtime_sec, attr.mtime_nsec)?)
        } else {
            None
        },
    })
}

//! The file-system interface the 9P server is written against: what the shared
//! folder looks like to one personality, after policy. The channel
//! (`channel::Channel`) implements it over the store, the policy and the audit log;
//! the server's tests implement it in memory.
//!
//! Every call names the personality making it (`who`, its index in the config:
//! the server knows it from the device that received the request, never from the
//! message). Errors are Linux errno values, which 9P2000.L's `Rlerror` carries.

/// A personality's index in the config (0 = the first `[[personality]]`).
pub type Who = u8;

/// An object's number: unique and never reused on a store (it becomes `qid.path`,
/// and so the guest's `st_ino`).
pub type Ino = u64;

/// A Linux errno value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub u32);

#[allow(missing_docs)]
impl Errno {
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const EIO: Errno = Errno(5);
    pub const EBADF: Errno = Errno(9);
    pub const ENOMEM: Errno = Errno(12);
    pub const EACCES: Errno = Errno(13);
    pub const EBUSY: Errno = Errno(16);
    pub const EEXIST: Errno = Errno(17);
    pub const EXDEV: Errno = Errno(18);
    pub const ENOTDIR: Errno = Errno(20);
    pub const EISDIR: Errno = Errno(21);
    pub const EINVAL: Errno = Errno(22);
    pub const ENFILE: Errno = Errno(23);
    pub const EMFILE: Errno = Errno(24);
    pub const EFBIG: Errno = Errno(27);
    pub const ENOSPC: Errno = Errno(28);
    pub const EROFS: Errno = Errno(30);
    pub const EMLINK: Errno = Errno(31);
    pub const ERANGE: Errno = Errno(34);
    pub const ENAMETOOLONG: Errno = Errno(36);
    pub const ENOSYS: Errno = Errno(38);
    pub const ENOTEMPTY: Errno = Errno(39);
    pub const ELOOP: Errno = Errno(40);
    pub const ENODATA: Errno = Errno(61);
    pub const EPROTO: Errno = Errno(71);
    pub const EMSGSIZE: Errno = Errno(90);
    pub const EOPNOTSUPP: Errno = Errno(95);
    pub const ESTALE: Errno = Errno(116);
    pub const EDQUOT: Errno = Errno(122);
}

/// The result of a file-system call.
pub type FsResult<T> = Result<T, Errno>;

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timespec {
    /// Whole seconds.
    pub sec: u64,
    /// Nanoseconds, below 1e9.
    pub nsec: u32,
}

/// What an object is. The shared folder has no symlinks, devices, FIFOs or sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// An object's attributes, as a personality sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Its number.
    pub ino: Ino,
    /// File or directory.
    pub kind: Kind,
    /// Permission bits only (`0o7777`); the server adds S_IFREG or S_IFDIR.
    pub mode: u32,
    /// Bytes (a directory's size is whatever the store says).
    pub size: u64,
    /// Links: 1 for a file, 2 + subdirectories for a directory.
    pub nlink: u32,
    /// Last access, modification and status change.
    pub atime: Timespec,
    /// Last modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
    /// Changes whenever the object's contents or attributes change (`qid.version`).
    pub version: u32,
}

/// How a time is set by `setattr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSet {
    /// The server's current time.
    Now,
    /// This time.
    At(Timespec),
}

/// The changes one `setattr` asks for; `None` leaves a field alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New size (truncate or extend with zeros).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<TimeSet>,
    /// New modification time.
    pub mtime: Option<TimeSet>,
}

/// How an object is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenMode {
    /// Opened for reading.
    pub read: bool,
    /// Opened for writing.
    pub write: bool,
    /// Truncate to zero at open (O_TRUNC).
    pub truncate: bool,
}

/// One directory entry, as `readdir` hands it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Where to resume to get the entries after this one: opaque, nonzero, and
    /// still valid after other entries were added or removed.
    pub cookie: u64,
    /// The entry's object.
    pub ino: Ino,
    /// Its kind.
    pub kind: Kind,
    /// Its name: one path component (no `/`, not `.` or `..`).
    pub name: &'a str,
}

/// The numbers `statfs` reports (a personality sees its own quota where it has one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFs {
    /// Bytes per block.
    pub block_size: u32,
    /// Blocks in all.
    pub blocks: u64,
    /// Free blocks.
    pub blocks_free: u64,
    /// Objects in all (used and free).
    pub files: u64,
    /// Free objects.
    pub files_free: u64,
    /// Longest name.
    pub name_max: u32,
}

/// The shared folder as one personality sees it. Every object number a call takes
/// was handed out by an earlier call; the implementation still checks it (a stale
/// or never-seen number is `ESTALE` or `ENOENT`) and applies the policy on every
/// call, so a number learned once grants nothing later.
///
/// Durability: when `create`, `mkdir`, `rename`, `unlink`, `setattr`, `fsync`, or
/// `close` of an object opened for writing returns `Ok`, what the call did (and,
/// for `fsync` and `close`, every byte written to that object before it) survives
/// a power cut.
pub trait Fs {
    /// The root of the share (9P attach).
    fn root(&mut self, who: Who) -> FsResult<Attr>;
    /// The entry `name` in directory `dir`; an entry the policy hides is `ENOENT`.
    fn lookup(&mut self, who: Who, dir: Ino, name: &str) -> FsResult<Attr>;
    /// An object's attributes.
    fn getattr(&mut self, who: Who, ino: Ino) -> FsResult<Attr>;
    /// Changes attributes; returns the new ones.
    fn setattr(&mut self, who: Who, ino: Ino, changes: &SetAttr) -> FsResult<Attr>;
    /// Calls `emit` with the entries of `dir` after `cookie` (0 = from the start),
    /// in a stable order, until `emit` returns false (its buffer is full: that
    /// entry was not taken) or the entries run out. Hidden entries are skipped.
    fn readdir(
        &mut self,
        who: Who,
        dir: Ino,
        cookie: u64,
        emit: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> FsResult<()>;
    /// Opens an object (a directory only for reading). Every successful `open` (or
    /// `create`) is matched by one `close` of the same object with the same mode,
    /// when the fid is clunked; an open object stays readable and writable after
    /// it is unlinked, until that close.
    fn open(&mut self, who: Who, ino: Ino, mode: OpenMode) -> FsResult<Attr>;
    /// Creates and opens the file `name` in `dir` with permission bits `mode`.
    fn create(
        &mut self,
        who: Who,
        dir: Ino,
        name: &str,
        mode: u32,
        open: OpenMode,
    ) -> FsResult<Attr>;
    /// Creates the directory `name` in `dir`.
    fn mkdir(&mut self, who: Who, dir: Ino, name: &str, mode: u32) -> FsResult<Attr>;
    /// Reads from an open object at `offset` into `buf`; returns the bytes read (0 at
    /// the end).
    fn read(&mut self, who: Who, ino: Ino, offset: u64, buf: &mut [u8]) -> FsResult<usize>;
    /// Writes `data` to an object opened for writing at `offset`; returns the bytes
    /// written (a short count only when space or quota ran out part way).
    fn write(&mut self, who: Who, ino: Ino, offset: u64, data: &[u8]) -> FsResult<usize>;
    /// Makes the object's data and attributes durable.
    fn fsync(&mut self, who: Who, ino: Ino) -> FsResult<()>;
    /// Ends one `open` or `create`; a close after writing commits (durable at `Ok`).
    fn close(&mut self, who: Who, ino: Ino, mode: OpenMode) -> FsResult<()>;
    /// Renames; replaces an existing file, or an empty directory, at the target.
    fn rename(
        &mut self,
        who: Who,
        old_dir: Ino,
        old_name: &str,
        new_dir: Ino,
        new_name: &str,
    ) -> FsResult<()>;
    /// Removes a file (`dir_expected` false) or an empty directory (true).
    fn unlink(&mut self, who: Who, dir: Ino, name: &str, dir_expected: bool) -> FsResult<()>;
    /// Space and object counts.
    fn statfs(&mut self, who: Who) -> FsResult<StatFs>;
}

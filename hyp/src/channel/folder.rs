//! The shared folder as the personalities see it: the store, seen through the
//! policy, with every crossing, change and refusal written to the audit log.
//!
//! This is the one place that decides. The 9P servers above it only speak the
//! protocol; the store below only keeps objects. Each call:
//!
//! 1. finds the objects it names (a number that no longer exists is `ESTALE`);
//! 2. checks the policy for what the caller wants of each (a hidden object is
//!    `ENOENT`, a visible one it may not touch `EACCES`), and the quotas;
//! 3. does it in the store;
//! 4. appends the audit record, then commits the store (the commit's final
//!    flush covers the record: both partitions are on the one disk), and only
//!    then answers.
//!
//! Labels: every object carries the personality that created it. The root and
//! the release folder belong to no personality ([`SYSTEM`]): everyone may list
//! them and create in them, nobody may remove or rename them.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use super::audit::export::render_line;
use super::audit::{AuditLog, Op, Record, RecordPath, JANUS};
use super::fs::{
    Attr, DirEntry, Errno, Fs, FsResult, Ino, Kind, OpenMode, SetAttr, StatFs, TimeSet, Timespec,
    Who,
};
use super::policy::{Access, Policy};
use super::store::disk::BlockDisk;
use super::store::{NodeInfo, Store, StoreError, ROOT};

/// The owner label of the objects Janus made (the root, the release folder).
pub const SYSTEM: Who = JANUS;

/// The name of the read-only audit export in the root, which only the
/// manager's personality sees.
pub const AUDIT_FILE: &str = ".janus-audit";

/// The audit export's object number (outside what a store hands out).
const AUDIT_INO: Ino = u64::MAX - 1;

/// The audit export's readdir cookie.
const AUDIT_COOKIE: u64 = 1;

/// Bytes of the audit export one open renders (its newest records).
const AUDIT_EXPORT_BYTES: usize = 64 * 1024;

/// Records the audit export looks back over.
const EXPORT_RECORDS: u64 = 512;

/// The same refusal is recorded once per this many seconds: a guest that
/// retries a hidden name in a loop must not rotate the log away.
const REPEAT_SECONDS: u64 = 10;

/// Whether `who` may do `access` to an object labelled `owner` and `released`.
fn allows(policy: &Policy, who: Who, owner: Who, released: bool, access: Access) -> bool {
    if owner == who {
        return true;
    }
    if owner == SYSTEM {
        // Janus' folders: listed and used by all, removed by none.
        return !matches!(access, Access::Delete);
    }
    policy.allows(who, owner, released, access)
}

/// What one personality has open on one object.
#[derive(Debug, Default)]
struct Opened {
    /// Open handles (fids) on it.
    count: u32,
    /// Bytes written through them since the first opened.
    wrote: u64,
    /// Bytes read through them.
    read: u64,
    /// Its rendered text, for the audit export.
    export: Option<String>,
}

/// A refusal already recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Refusal {
    who: Who,
    ino: Ino,
    errno: Errno,
    at: u64,
}

/// The shared folder: the store on the `shared` partition, the audit log on
/// the `janus` partition, and the policy from the config.
pub struct Channel<S: BlockDisk, L: BlockDisk> {
    store: Store<S>,
    log: AuditLog<L>,
    policy: Policy,
    clock: fn() -> Timespec,
    opened: BTreeMap<(Who, Ino), Opened>,
    last_refusal: Option<Refusal>,
    /// The release folder's object, once it exists.
    release: Option<Ino>,
}

impl<S: BlockDisk, L: BlockDisk> Channel<S, L> {
    /// The channel over a mounted store and an open log; makes the release
    /// folder when the store has none.
    ///
    /// # Errors
    /// The store's refusal to make the release folder.
    pub fn new(
        store: Store<S>,
        log: AuditLog<L>,
        policy: Policy,
        clock: fn() -> Timespec,
    ) -> Result<Self, StoreError> {
        let mut channel = Channel {
            store,
            log,
            policy,
            clock,
            opened: BTreeMap::new(),
            last_refusal: None,
            release: None,
        };
        channel.release = channel.ensure_release_folder()?;
        Ok(channel)
    }

    /// The store (for the boot line and tests).
    pub fn store(&self) -> &Store<S> {
        &self.store
    }

    /// The audit log (for the console's hotkey and tests).
    pub fn log(&mut self) -> &mut AuditLog<L> {
        &mut self.log
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The newest `n` audit records as console lines.
    pub fn recent_lines(&mut self, n: usize) -> Vec<String> {
        let names = self.log.labels().names.clone();
        match self.log.recent(n) {
            Ok(records) => records
                .iter()
                .map(|record| {
                    let mut line = String::new();
                    render_line(record, &names, &mut line);
                    line
                })
                .collect(),
            Err(why) => alloc::vec![alloc::format!("audit log: {why}")],
        }
    }

    fn ensure_release_folder(&mut self) -> Result<Option<Ino>, StoreError> {
        let name = self.policy.release_folder();
        if name.is_empty() {
            return Ok(None);
        }
        let now = (self.clock)();
        if self.store.info(ROOT)?.owner != SYSTEM {
            self.store.set_label(ROOT, SYSTEM, false, now)?;
        }
        let ino = match self.store.lookup(ROOT, name) {
            Ok(ino) => ino,
            Err(StoreError::NotFound) => {
                let name = String::from(name);
                self.store.mkdir(ROOT, &name, 0o777, SYSTEM, now)?
            }
            Err(error) => return Err(error),
        };
        if self.store.is_dirty() {
            self.store.commit()?;
        }
        Ok(Some(ino))
    }

    fn node(&self, ino: Ino) -> FsResult<NodeInfo> {
        self.store.info(ino).map_err(|_| Errno::ESTALE)
    }

    /// Whether `who` may do `access` to an object labelled `owner`.
    fn allows(&self, who: Who, owner: Who, released: bool, access: Access) -> bool {
        allows(&self.policy, who, owner, released, access)
    }

    /// `ino` as `who` may see it, or `ENOENT` (hidden) / `ESTALE` (gone).
    fn visible(&self, who: Who, ino: Ino) -> FsResult<NodeInfo> {
        let node = self.node(ino)?;
        if self.allows(who, node.owner, node.released, Access::See) {
            Ok(node)
        } else {
            Err(Errno::ENOENT)
        }
    }

    /// The path of `ino` from the share's root, for the log.
    fn path(&self, ino: Ino) -> String {
        self.store
            .path(ino)
            .unwrap_or_else(|_| alloc::format!("(object {ino})"))
    }

    fn path_in(&self, dir: Ino, name: &str) -> String {
        let mut path = self.path(dir);
        if !path.ends_with('/') {
            path.push('/');
        }
        path.push_str(name);
        path
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        who: Who,
        op: Op,
        owner: Who,
        ino: Ino,
        errno: Option<Errno>,
        bytes: u64,
        path: String,
        to: Option<String>,
    ) {
        self.record_detail(who, op, 0, owner, ino, errno, bytes, &path, to.as_deref());
    }

    #[allow(clippy::too_many_arguments)]
    fn record_detail(
        &mut self,
        who: Who,
        op: Op,
        detail: u8,
        owner: Who,
        ino: Ino,
        errno: Option<Errno>,
        bytes: u64,
        path: &str,
        to: Option<&str>,
    ) {
        let record = Record {
            time: (self.clock)(),
            who,
            op,
            detail,
            result: errno.map_or(0, |errno| errno.0),
            owner: (owner != SYSTEM).then_some(owner),
            ino,
            bytes,
            path: RecordPath::new(path),
            path2: to.map(RecordPath::new).unwrap_or_default(),
            ..Record::default()
        };
        // A full or failing log must not stop the folder (the boot line says
        // when the log is unusable); the store's commit flushes what was written.
        let _ = self.log.append(&record);
    }

    /// Records a refusal (policy or quota) unless the same one was recorded
    /// within [`REPEAT_SECONDS`], flushes it, and returns its errno.
    #[allow(clippy::too_many_arguments)]
    fn refuse_detail(
        &mut self,
        who: Who,
        op: Op,
        detail: u8,
        owner: Who,
        ino: Ino,
        errno: Errno,
        path: String,
    ) -> Errno {
        let now = (self.clock)().sec;
        let repeat = self.last_refusal.is_some_and(|last| {
            last.who == who
                && last.ino == ino
                && last.errno == errno
                && now.saturating_sub(last.at) < REPEAT_SECONDS
        });
        if !repeat {
            self.last_refusal = Some(Refusal {
                who,
                ino,
                errno,
                at: now,
            });
            self.record_detail(who, op, detail, owner, ino, Some(errno), 0, &path, None);
            let _ = self.log.flush();
        }
        errno
    }

    fn refuse(
        &mut self,
        who: Who,
        op: Op,
        owner: Who,
        ino: Ino,
        errno: Errno,
        path: String,
    ) -> Errno {
        self.refuse_detail(who, op, 0, owner, ino, errno, path)
    }

    /// A hidden or forbidden object: hidden ones are `ENOENT`, and both are
    /// recorded when the object is another personality's.
    fn deny(&mut self, who: Who, ino: Ino, access: Access) -> Errno {
        let (owner, released) = match self.store.info(ino) {
            Ok(node) => (node.owner, node.released),
            Err(_) => return Errno::ESTALE,
        };
        let errno = if self.allows(who, owner, released, Access::See) {
            Errno::EACCES
        } else {
            Errno::ENOENT
        };
        let path = self.path(ino);
        self.refuse_detail(who, Op::Denied, access.bit(), owner, ino, errno, path)
    }

    /// Checks `access` to `ino` for `who`, recording a refusal.
    fn check(&mut self, who: Who, ino: Ino, access: Access) -> FsResult<()> {
        let node = self.node(ino)?;
        if self.allows(who, node.owner, node.released, access) {
            Ok(())
        } else {
            Err(self.deny(who, ino, access))
        }
    }

    /// Commits the store: durable when it returns `Ok`.
    fn commit(&mut self) -> FsResult<()> {
        self.store.commit().map_err(|error| error.to_errno())
    }

    fn attr_of(&self, ino: Ino) -> FsResult<Attr> {
        if ino == AUDIT_INO {
            return Ok(self.audit_attr());
        }
        Ok(self.node(ino)?.attr)
    }

    fn audit_attr(&self) -> Attr {
        let now = (self.clock)();
        Attr {
            ino: AUDIT_INO,
            kind: Kind::File,
            mode: 0o444,
            size: AUDIT_EXPORT_BYTES as u64,
            nlink: 1,
            atime: now,
            mtime: now,
            ctime: now,
            version: 0,
        }
    }

    fn is_manager(&self, who: Who) -> bool {
        self.policy.manager() == Some(who)
    }

    /// Whether a write of `len` bytes at `offset` to `ino` fits the file-size
    /// limit and the owner's byte quota; `Ok(n)` is how many bytes may go.
    fn room(&self, ino: Ino, offset: u64, len: u64) -> FsResult<u64> {
        let node = self.node(ino)?;
        let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
        let limit = self.policy.max_file_bytes();
        if offset >= limit {
            return Err(Errno::EFBIG);
        }
        let len = len.min(limit - offset);
        let grow = end.min(limit).saturating_sub(node.attr.size);
        let quota = self.policy.quota(node.owner);
        let used = self.store.usage(node.owner).bytes;
        let left = quota.max_bytes.saturating_sub(used);
        if grow > left {
            // What fits: the bytes up to the old end, plus what is left.
            let fits = node
                .attr
                .size
                .saturating_add(left)
                .saturating_sub(offset)
                .min(len);
            if fits == 0 {
                return Err(Errno::EDQUOT);
            }
            return Ok(fits);
        }
        Ok(len)
    }

    /// Whether `who` may make one more object.
    fn object_room(&mut self, who: Who, dir: Ino, name: &str) -> FsResult<()> {
        let quota = self.policy.quota(who);
        if self.store.usage(who).objects >= quota.max_files {
            let path = self.path_in(dir, name);
            return Err(self.refuse(who, Op::QuotaRefused, who, dir, Errno::EDQUOT, path));
        }
        Ok(())
    }

    /// Whether an object in `dir` is released (in the release folder, and not
    /// the manager's... any personality's file there is released).
    fn in_release(&self, dir: Ino) -> bool {
        self.release == Some(dir)
    }

    /// The errno of a store refusal to make `name` in `dir`; running out of
    /// objects or space is recorded as a quota refusal.
    fn store_refusal(&mut self, who: Who, dir: Ino, name: &str, error: StoreError) -> Errno {
        let errno = error.to_errno();
        if matches!(error, StoreError::NoSpace | StoreError::TooManyNodes) {
            let path = self.path_in(dir, name);
            return self.refuse(who, Op::QuotaRefused, who, dir, errno, path);
        }
        errno
    }

    fn make(&mut self, who: Who, dir: Ino, name: &str, kind: Kind, mode: u32) -> FsResult<Ino> {
        self.visible(who, dir)?;
        if self.node(dir)?.attr.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        self.check(who, dir, Access::Write)?;
        self.object_room(who, dir, name)?;
        let now = (self.clock)();
        let made = match kind {
            Kind::Dir => self.store.mkdir(dir, name, mode & 0o7777, who, now),
            Kind::File => self.store.create(dir, name, mode & 0o7777, who, now),
        };
        let ino = made.map_err(|error| self.store_refusal(who, dir, name, error))?;
        let released = Policy::is_released(kind, self.in_release(dir));
        if released {
            self.store
                .set_label(ino, who, true, now)
                .map_err(|error| error.to_errno())?;
        }
        let path = self.path(ino);
        let op = if kind == Kind::Dir {
            Op::Mkdir
        } else {
            Op::Create
        };
        self.record(who, op, who, ino, None, 0, path.clone(), None);
        if released {
            self.record(who, Op::Release, who, ino, None, 0, path, None);
        }
        self.commit()?;
        Ok(ino)
    }

    /// The entry `name` of `dir`, when `who` may remove it (or rename it
    /// away): visible to it, not Janus' release folder, and deletable by it.
    fn removable(&mut self, who: Who, dir: Ino, name: &str) -> FsResult<Ino> {
        let ino = self
            .store
            .lookup(dir, name)
            .map_err(|error| error.to_errno())?;
        self.visible(who, ino)
            .map_err(|_| self.deny(who, ino, Access::See))?;
        if Some(ino) == self.release {
            let path = self.path(ino);
            return Err(self.refuse(who, Op::Denied, SYSTEM, ino, Errno::EBUSY, path));
        }
        self.check(who, ino, Access::Delete)?;
        Ok(ino)
    }

    fn open_count(&mut self, who: Who, ino: Ino) -> &mut Opened {
        self.opened.entry((who, ino)).or_default()
    }
}

mod ops;

#[cfg(test)]
mod tests;

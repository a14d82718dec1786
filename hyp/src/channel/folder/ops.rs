//! The `Fs` calls of the shared folder: each finds its objects, checks the
//! policy and quotas, does it in the store, records it and commits.

use super::*;

impl<S: BlockDisk, L: BlockDisk> Fs for Channel<S, L> {
    fn root(&mut self, _who: Who) -> FsResult<Attr> {
        self.attr_of(ROOT)
    }

    fn lookup(&mut self, who: Who, dir: Ino, name: &str) -> FsResult<Attr> {
        self.visible(who, dir)?;
        if dir == ROOT && name == AUDIT_FILE && self.is_manager(who) {
            return Ok(self.audit_attr());
        }
        let ino = self
            .store
            .lookup(dir, name)
            .map_err(|error| error.to_errno())?;
        let node = self.node(ino)?;
        if !self.allows(who, node.owner, node.released, Access::See) {
            return Err(self.deny(who, ino, Access::See));
        }
        self.attr_of(ino)
    }

    fn getattr(&mut self, who: Who, ino: Ino) -> FsResult<Attr> {
        if ino == AUDIT_INO && self.is_manager(who) {
            return Ok(self.audit_attr());
        }
        self.visible(who, ino)?;
        self.attr_of(ino)
    }

    fn setattr(&mut self, who: Who, ino: Ino, changes: &SetAttr) -> FsResult<Attr> {
        if ino == AUDIT_INO {
            return Err(Errno::EACCES);
        }
        // Janus' own folders keep their mode and times.
        if self.visible(who, ino)?.owner == SYSTEM {
            return Err(Errno::EPERM);
        }
        self.check(who, ino, Access::Write)?;
        let now = (self.clock)();
        let resolve = |time: Option<TimeSet>| match time {
            Some(TimeSet::Now) => Some(now),
            Some(TimeSet::At(at)) => Some(at),
            None => None,
        };
        if let Some(size) = changes.size {
            if self.node(ino)?.attr.kind == Kind::Dir {
                return Err(Errno::EISDIR);
            }
            let old = self.node(ino)?.attr.size;
            if size > old {
                let room = self.room(ino, old, size - old)?;
                if room < size - old {
                    let owner = self.node(ino)?.owner;
                    let path = self.path(ino);
                    return Err(self.refuse(
                        who,
                        Op::QuotaRefused,
                        owner,
                        ino,
                        Errno::EDQUOT,
                        path,
                    ));
                }
            }
            self.store
                .set_size(ino, size, now)
                .map_err(|error| error.to_errno())?;
            let owner = self.node(ino)?.owner;
            let path = self.path(ino);
            self.record(who, Op::Write, owner, ino, None, size, path, None);
        }
        if let Some(mode) = changes.mode {
            self.store
                .set_mode(ino, mode & 0o7777, now)
                .map_err(|error| error.to_errno())?;
        }
        let (atime, mtime) = (resolve(changes.atime), resolve(changes.mtime));
        if atime.is_some() || mtime.is_some() {
            self.store
                .set_times(ino, atime, mtime, now)
                .map_err(|error| error.to_errno())?;
        }
        self.commit()?;
        self.attr_of(ino)
    }

    fn readdir(
        &mut self,
        who: Who,
        dir: Ino,
        cookie: u64,
        emit: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> FsResult<()> {
        self.visible(who, dir)?;
        if self.node(dir)?.attr.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        self.check(who, dir, Access::Read)?;
        let store = &self.store;
        let policy = &self.policy;
        // The audit export comes first in the root, for the manager only. Its
        // cookie is 1; the store's cookies are handed out one higher.
        if dir == ROOT && cookie == 0 && policy.manager() == Some(who) {
            let taken = emit(DirEntry {
                cookie: AUDIT_COOKIE,
                ino: AUDIT_INO,
                kind: Kind::File,
                name: AUDIT_FILE,
            });
            if !taken {
                return Ok(());
            }
        }
        store
            .readdir(dir, cookie.saturating_sub(1), &mut |entry| {
                let Ok(node) = store.info(entry.ino) else {
                    return true;
                };
                if !allows(policy, who, node.owner, node.released, Access::See) {
                    return true;
                }
                emit(DirEntry {
                    cookie: entry.cookie.saturating_add(1),
                    ..entry
                })
            })
            .map_err(|error| error.to_errno())
    }

    fn open(&mut self, who: Who, ino: Ino, mode: OpenMode) -> FsResult<Attr> {
        if ino == AUDIT_INO {
            if !self.is_manager(who) {
                return Err(Errno::ENOENT);
            }
            if mode.write || mode.truncate {
                return Err(Errno::EACCES);
            }
            // The newest records: an agent that wants all of them reads the
            // file after each of its collections.
            let after = self.log.next_seq().saturating_sub(EXPORT_RECORDS);
            let text = self
                .log
                .export(who, after, AUDIT_EXPORT_BYTES)
                .map_err(|_| Errno::EIO)?
                .text;
            let opened = self.open_count(who, ino);
            opened.count = opened.count.saturating_add(1);
            opened.export = Some(text);
            return Ok(self.audit_attr());
        }
        self.visible(who, ino)?;
        let kind = self.node(ino)?.attr.kind;
        if kind == Kind::Dir && (mode.write || mode.truncate) {
            return Err(Errno::EISDIR);
        }
        if mode.read || kind == Kind::Dir {
            self.check(who, ino, Access::Read)?;
        }
        if mode.write || mode.truncate {
            self.check(who, ino, Access::Write)?;
        }
        if mode.truncate && self.node(ino)?.attr.size != 0 {
            let now = (self.clock)();
            self.store
                .set_size(ino, 0, now)
                .map_err(|error| error.to_errno())?;
            let owner = self.node(ino)?.owner;
            let path = self.path(ino);
            self.record(who, Op::Write, owner, ino, None, 0, path, None);
            self.commit()?;
        }
        self.store.open(ino).map_err(|error| error.to_errno())?;
        let opened = self.open_count(who, ino);
        opened.count = opened.count.saturating_add(1);
        self.attr_of(ino)
    }

    fn create(
        &mut self,
        who: Who,
        dir: Ino,
        name: &str,
        mode: u32,
        open: OpenMode,
    ) -> FsResult<Attr> {
        let ino = self.make(who, dir, name, Kind::File, mode)?;
        let _ = open;
        self.store.open(ino).map_err(|error| error.to_errno())?;
        let opened = self.open_count(who, ino);
        opened.count = opened.count.saturating_add(1);
        self.attr_of(ino)
    }

    fn mkdir(&mut self, who: Who, dir: Ino, name: &str, mode: u32) -> FsResult<Attr> {
        let ino = self.make(who, dir, name, Kind::Dir, mode)?;
        self.attr_of(ino)
    }

    fn read(&mut self, who: Who, ino: Ino, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        if ino == AUDIT_INO {
            let text = self
                .opened
                .get(&(who, ino))
                .and_then(|opened| opened.export.as_ref())
                .ok_or(Errno::EBADF)?;
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(text.len());
            let bytes = &text.as_bytes()[start..];
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            return Ok(n);
        }
        // The policy is checked again: a grant does not outlive a change of it.
        self.check(who, ino, Access::Read)?;
        let n = self
            .store
            .read(ino, offset, buf)
            .map_err(|error| error.to_errno())?;
        if let Some(opened) = self.opened.get_mut(&(who, ino)) {
            opened.read = opened.read.saturating_add(n as u64);
        }
        Ok(n)
    }

    fn write(&mut self, who: Who, ino: Ino, offset: u64, data: &[u8]) -> FsResult<usize> {
        if ino == AUDIT_INO {
            return Err(Errno::EBADF);
        }
        self.check(who, ino, Access::Write)?;
        let fits = match self.room(ino, offset, data.len() as u64) {
            Ok(fits) => fits,
            Err(errno) => {
                let owner = self.node(ino)?.owner;
                let path = self.path(ino);
                let op = if errno == Errno::EDQUOT {
                    Op::QuotaRefused
                } else {
                    Op::Denied
                };
                return Err(self.refuse(who, op, owner, ino, errno, path));
            }
        };
        let fits = usize::try_from(fits).unwrap_or(data.len()).min(data.len());
        let now = (self.clock)();
        let n = self
            .store
            .write(ino, offset, &data[..fits], now)
            .map_err(|error| error.to_errno())?;
        let opened = self.open_count(who, ino);
        opened.wrote = opened.wrote.saturating_add(n as u64);
        Ok(n)
    }

    fn fsync(&mut self, who: Who, ino: Ino) -> FsResult<()> {
        if ino != AUDIT_INO {
            self.visible(who, ino)?;
        }
        self.commit()
    }

    fn close(&mut self, who: Who, ino: Ino, mode: OpenMode) -> FsResult<()> {
        let _ = mode;
        let Some(opened) = self.opened.get_mut(&(who, ino)) else {
            return Err(Errno::EBADF);
        };
        opened.count = opened.count.saturating_sub(1);
        if opened.count > 0 {
            return Ok(());
        }
        let Some(opened) = self.opened.remove(&(who, ino)) else {
            return Ok(());
        };
        if ino == AUDIT_INO {
            return Ok(());
        }
        let (owner, kind) = match self.store.info(ino) {
            Ok(node) => (node.owner, node.attr.kind),
            Err(_) => (SYSTEM, Kind::File),
        };
        let path = self.path(ino);
        if opened.wrote > 0 {
            self.record(
                who,
                Op::Write,
                owner,
                ino,
                None,
                opened.wrote,
                path.clone(),
                None,
            );
        }
        if kind == Kind::File && owner != who && opened.read > 0 {
            self.record(who, Op::Read, owner, ino, None, opened.read, path, None);
        }
        let closed = self.store.close(ino);
        if opened.wrote > 0 || self.store.is_dirty() {
            self.commit()?;
        }
        closed.map_err(|error| error.to_errno())
    }

    fn rename(
        &mut self,
        who: Who,
        old_dir: Ino,
        old_name: &str,
        new_dir: Ino,
        new_name: &str,
    ) -> FsResult<()> {
        self.visible(who, old_dir)?;
        self.visible(who, new_dir)?;
        let ino = self.removable(who, old_dir, old_name)?;
        self.check(who, new_dir, Access::Write)?;
        if let Ok(target) = self.store.lookup(new_dir, new_name) {
            if target != ino {
                self.visible(who, target).map_err(|_| {
                    // Replacing a hidden object would reveal it or destroy it.
                    self.deny(who, target, Access::Delete)
                })?;
                self.check(who, target, Access::Delete)?;
            }
        }
        let from = self.path(ino);
        let to = self.path_in(new_dir, new_name);
        let now = (self.clock)();
        self.store
            .rename(old_dir, old_name, new_dir, new_name, now)
            .map_err(|error| error.to_errno())?;
        let node = self.node(ino)?;
        let (owner, was_released) = (node.owner, node.released);
        let released = Policy::is_released(node.attr.kind, self.in_release(new_dir));
        self.record(who, Op::Rename, owner, ino, None, 0, from, Some(to.clone()));
        if released != was_released {
            self.store
                .set_label(ino, owner, released, now)
                .map_err(|error| error.to_errno())?;
            let op = if released { Op::Release } else { Op::Withdraw };
            self.record(who, op, owner, ino, None, 0, to, None);
        }
        self.commit()
    }

    fn unlink(&mut self, who: Who, dir: Ino, name: &str, dir_expected: bool) -> FsResult<()> {
        self.visible(who, dir)?;
        let ino = self.removable(who, dir, name)?;
        let owner = self.node(ino)?.owner;
        let path = self.path(ino);
        let now = (self.clock)();
        let removed = if dir_expected {
            self.store.rmdir(dir, name, now)
        } else {
            self.store.unlink(dir, name, now)
        };
        removed.map_err(|error| error.to_errno())?;
        self.record(who, Op::Delete, owner, ino, None, 0, path, None);
        self.commit()
    }

    fn statfs(&mut self, who: Who) -> FsResult<StatFs> {
        // What the personality may still use: the store's room, bounded by its
        // quota.
        let stat = self.store.statfs();
        let quota = self.policy.quota(who);
        let usage = self.store.usage(who);
        let block = u64::from(stat.block_size.max(1));
        let quota_blocks = quota.max_bytes / block;
        let used_blocks = usage.bytes.div_ceil(block);
        let files = stat.files.min(quota.max_files);
        Ok(StatFs {
            blocks: stat.blocks.min(quota_blocks),
            blocks_free: stat
                .blocks_free
                .min(quota_blocks.saturating_sub(used_blocks)),
            files,
            files_free: stat.files_free.min(files.saturating_sub(usage.objects)),
            ..stat
        })
    }
}

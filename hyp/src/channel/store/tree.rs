//! Namespace changes: create, mkdir, rename, unlink, attributes, labels, opens.

use alloc::boxed::Box;

use super::disk::BlockDisk;
use super::extents::ExtentMap;
use super::{check_name, format, Node, Store, StoreError, ROOT};
use crate::channel::fs::{Ino, Kind, Timespec, Who};

impl<D: BlockDisk> Store<D> {
    /// Creates the empty file `name` in `dir`, owned by `owner`.
    ///
    /// # Errors
    ///
    /// `NotFound`, `NotDir`, `Exists`, a name error, `TooManyNodes`, `Io` after a
    /// failed commit.
    pub fn create(
        &mut self,
        dir: Ino,
        name: &str,
        mode: u32,
        owner: Who,
        now: Timespec,
    ) -> Result<Ino, StoreError> {
        self.make(dir, name, Kind::File, mode, owner, now)
    }

    /// Creates the empty directory `name` in `dir`, owned by `owner`.
    ///
    /// # Errors
    ///
    /// As [`Store::create`].
    pub fn mkdir(
        &mut self,
        dir: Ino,
        name: &str,
        mode: u32,
        owner: Who,
        now: Timespec,
    ) -> Result<Ino, StoreError> {
        self.make(dir, name, Kind::Dir, mode, owner, now)
    }

    fn make(
        &mut self,
        dir: Ino,
        name: &str,
        kind: Kind,
        mode: u32,
        owner: Who,
        now: Timespec,
    ) -> Result<Ino, StoreError> {
        self.check_writable()?;
        check_name(name)?;
        if self.find(dir, name)?.is_some() {
            return Err(StoreError::Exists);
        }
        if self.nodes.len() >= self.limits.max_nodes {
            return Err(StoreError::TooManyNodes);
        }
        if self.free.blocks() < self.metadata_reserve_blocks() + 1 {
            return Err(StoreError::NoSpace);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let node = new_node(kind, mode, owner, now, Box::from(name));
        self.nodes.insert(ino, node);
        self.link(ino, dir, now)?;
        self.usage_mut(owner).objects += 1;
        Ok(ino)
    }

    /// Enters `ino` (not in any directory) in `dir` under its name.
    fn link(&mut self, ino: Ino, dir: Ino, now: Timespec) -> Result<(), StoreError> {
        let (kind, hash) = {
            let node = self.node(ino)?;
            (node.kind, format::name_hash(&node.name))
        };
        let parent = self.node_mut(dir)?;
        let cookie = parent.next_cookie;
        parent.next_cookie += 1;
        parent.entries += 1;
        if kind == Kind::Dir {
            parent.subdirs += 1;
        }
        touch_changed(parent, now);
        let node = self.node_mut(ino)?;
        node.parent = dir;
        node.cookie = cookie;
        self.entries.insert((dir, cookie), ino);
        self.names.insert((dir, hash, cookie));
        self.dirty.insert(dir);
        self.dirty.insert(ino);
        Ok(())
    }

    /// Takes `ino` out of its directory.
    fn unlink_entry(&mut self, ino: Ino, now: Timespec) -> Result<(), StoreError> {
        let (dir, cookie, kind, hash) = {
            let node = self.node(ino)?;
            (
                node.parent,
                node.cookie,
                node.kind,
                format::name_hash(&node.name),
            )
        };
        self.entries.remove(&(dir, cookie));
        self.names.remove(&(dir, hash, cookie));
        let parent = self.node_mut(dir)?;
        parent.entries = parent.entries.saturating_sub(1);
        if kind == Kind::Dir {
            parent.subdirs = parent.subdirs.saturating_sub(1);
        }
        touch_changed(parent, now);
        self.dirty.insert(dir);
        self.node_mut(ino)?.parent = 0;
        Ok(())
    }

    /// Removes the file `name` from `dir`; returns its number. An open file lives
    /// on, unlinked, until its last [`Store::close`].
    ///
    /// # Errors
    ///
    /// `NotFound`, `NotDir`, `IsDir`, a name error.
    pub fn unlink(&mut self, dir: Ino, name: &str, now: Timespec) -> Result<Ino, StoreError> {
        self.remove(dir, name, Kind::File, now)
    }

    /// Removes the empty directory `name` from `dir`; returns its number.
    ///
    /// # Errors
    ///
    /// `NotFound`, `NotDir`, `NotEmpty`, a name error.
    pub fn rmdir(&mut self, dir: Ino, name: &str, now: Timespec) -> Result<Ino, StoreError> {
        self.remove(dir, name, Kind::Dir, now)
    }

    fn remove(
        &mut self,
        dir: Ino,
        name: &str,
        kind: Kind,
        now: Timespec,
    ) -> Result<Ino, StoreError> {
        self.check_writable()?;
        let ino = self.lookup(dir, name)?;
        let node = self.node(ino)?;
        match (kind, node.kind) {
            (Kind::File, Kind::Dir) => return Err(StoreError::IsDir),
            (Kind::Dir, Kind::File) => return Err(StoreError::NotDir),
            (Kind::Dir, Kind::Dir) if node.entries > 0 => return Err(StoreError::NotEmpty),
            _ => {}
        }
        self.drop_entry(ino, now)?;
        Ok(ino)
    }

    /// Unlinks `ino` and deletes it, or keeps it as an orphan while it is open.
    fn drop_entry(&mut self, ino: Ino, now: Timespec) -> Result<(), StoreError> {
        self.unlink_entry(ino, now)?;
        self.dirty.remove(&ino);
        self.deleted.insert(ino);
        let node = self.node_mut(ino)?;
        node.ctime = now;
        if node.opens > 0 {
            node.orphan = true;
            node.name = Box::from("");
        } else {
            self.forget(ino);
        }
        Ok(())
    }

    /// Deletes an unlinked node from RAM and gives its blocks back.
    fn forget(&mut self, ino: Ino) {
        let Some(mut node) = self.nodes.remove(&ino) else {
            return;
        };
        let blocks = node.extents.blocks();
        self.extent_count = self.extent_count.saturating_sub(node.extents.len());
        let mut freed = core::mem::take(&mut node.extents);
        freed.unmap(0, u64::MAX, &mut |start, len| {
            self.release_blocks(start, len);
        });
        let usage = self.usage_mut(node.owner);
        usage.objects = usage.objects.saturating_sub(1);
        usage.bytes = usage
            .bytes
            .saturating_sub(blocks * format::BLOCK_BYTES as u64);
    }

    /// Renames `old_name` in `old_dir` to `new_name` in `new_dir` (POSIX
    /// `rename`): a file or an empty directory there is replaced, and its number
    /// returned.
    ///
    /// # Errors
    ///
    /// `NotFound`, `NotDir`, `IsDir`, `NotEmpty`, a name error, `InvalidMove`
    /// when a directory would go into its own subtree.
    pub fn rename(
        &mut self,
        old_dir: Ino,
        old_name: &str,
        new_dir: Ino,
        new_name: &str,
        now: Timespec,
    ) -> Result<Option<Ino>, StoreError> {
        self.check_writable()?;
        let ino = self.lookup(old_dir, old_name)?;
        check_name(new_name)?;
        let target = self.find(new_dir, new_name)?;
        if target == Some(ino) {
            return Ok(None);
        }
        let kind = self.node(ino)?.kind;
        if kind == Kind::Dir {
            // Walk up from the new directory: the source must not be on the way.
            let mut at = new_dir;
            for _ in 0..=self.nodes.len() {
                if at == ino {
                    return Err(StoreError::InvalidMove);
                }
                if at == ROOT || at == 0 {
                    break;
                }
                at = self.node(at)?.parent;
            }
        }
        if let Some(target) = target {
            let other = self.node(target)?;
            match (kind, other.kind) {
                (Kind::File, Kind::Dir) => return Err(StoreError::IsDir),
                (Kind::Dir, Kind::File) => return Err(StoreError::NotDir),
                (Kind::Dir, Kind::Dir) if other.entries > 0 => return Err(StoreError::NotEmpty),
                _ => {}
            }
            self.drop_entry(target, now)?;
        }
        self.unlink_entry(ino, now)?;
        let node = self.node_mut(ino)?;
        node.name = Box::from(new_name);
        node.ctime = now;
        self.link(ino, new_dir, now)?;
        Ok(target)
    }

    /// Counts one more open reference to `ino`.
    ///
    /// # Errors
    ///
    /// `NotFound`; `Busy` past `u32::MAX` opens.
    pub fn open(&mut self, ino: Ino) -> Result<(), StoreError> {
        let node = self.node_mut(ino)?;
        node.opens = node.opens.checked_add(1).ok_or(StoreError::Busy)?;
        Ok(())
    }

    /// Drops one open reference; the last close of an unlinked file frees it.
    ///
    /// # Errors
    ///
    /// `NotFound`; `Busy` when it was not open.
    pub fn close(&mut self, ino: Ino) -> Result<(), StoreError> {
        let node = self.node_mut(ino)?;
        node.opens = node.opens.checked_sub(1).ok_or(StoreError::Busy)?;
        if node.opens == 0 && node.orphan {
            self.forget(ino);
        }
        Ok(())
    }

    /// Sets the permission bits (`mode & 0o7777`).
    ///
    /// # Errors
    ///
    /// `NotFound`.
    pub fn set_mode(&mut self, ino: Ino, mode: u32, now: Timespec) -> Result<(), StoreError> {
        self.check_writable()?;
        let node = self.node_mut(ino)?;
        node.mode = mode & 0o7777;
        touch_status(node, now);
        self.mark(ino);
        Ok(())
    }

    /// Sets the access and modification times (`None` leaves one alone).
    ///
    /// # Errors
    ///
    /// `NotFound`.
    pub fn set_times(
        &mut self,
        ino: Ino,
        atime: Option<Timespec>,
        mtime: Option<Timespec>,
        now: Timespec,
    ) -> Result<(), StoreError> {
        self.check_writable()?;
        let node = self.node_mut(ino)?;
        if let Some(atime) = atime {
            node.atime = clamp_time(atime);
        }
        if let Some(mtime) = mtime {
            node.mtime = clamp_time(mtime);
        }
        touch_status(node, now);
        self.mark(ino);
        Ok(())
    }

    /// Sets the label: the owning personality and the released flag. The object's
    /// space moves to the new owner's usage.
    ///
    /// # Errors
    ///
    /// `NotFound`.
    pub fn set_label(
        &mut self,
        ino: Ino,
        owner: Who,
        released: bool,
        now: Timespec,
    ) -> Result<(), StoreError> {
        self.check_writable()?;
        let node = self.node_mut(ino)?;
        let old = node.owner;
        let bytes = node.extents.blocks() * format::BLOCK_BYTES as u64;
        node.owner = owner;
        node.released = released;
        touch_status(node, now);
        let from = self.usage_mut(old);
        from.objects = from.objects.saturating_sub(1);
        from.bytes = from.bytes.saturating_sub(bytes);
        let to = self.usage_mut(owner);
        to.objects += 1;
        to.bytes += bytes;
        self.mark(ino);
        Ok(())
    }

    /// Notes that `ino` must go into the next commit (unless it is an orphan,
    /// which the disk no longer knows).
    pub(super) fn mark(&mut self, ino: Ino) {
        if self.nodes.get(&ino).is_some_and(|node| !node.orphan) {
            self.dirty.insert(ino);
        }
    }
}

/// A node just made: no entries, no blocks, all times `now`.
pub(super) fn new_node(kind: Kind, mode: u32, owner: Who, now: Timespec, name: Box<str>) -> Node {
    let now = clamp_time(now);
    Node {
        kind,
        parent: 0,
        cookie: 0,
        name,
        mode: mode & 0o7777,
        size: 0,
        atime: now,
        mtime: now,
        ctime: now,
        version: 0,
        owner,
        released: false,
        next_cookie: 1,
        entries: 0,
        subdirs: 0,
        opens: 0,
        orphan: false,
        extents: ExtentMap::default(),
    }
}

/// A time with its nanoseconds below one second.
fn clamp_time(time: Timespec) -> Timespec {
    Timespec {
        sec: time.sec,
        nsec: time.nsec.min(999_999_999),
    }
}

/// Contents changed: mtime, ctime and the version.
pub(super) fn touch_changed(node: &mut Node, now: Timespec) {
    let now = clamp_time(now);
    node.mtime = now;
    node.ctime = now;
    node.version = node.version.wrapping_add(1);
}

/// Attributes changed: ctime and the version.
fn touch_status(node: &mut Node, now: Timespec) {
    node.ctime = clamp_time(now);
    node.version = node.version.wrapping_add(1);
}

//! An in-memory [`Fs`] for the server's tests, the device's tests and the fuzz targets:
//! a tree of files and directories with stable readdir cookies, entries hidden from one
//! personality (as the policy hides them), bounded sizes, and checks that every `read`,
//! `write` and `close` matches an earlier `open` (so a server bug shows as `EBADF`).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::channel::fs::{
    Attr, DirEntry, Errno, Fs, FsResult, Ino, Kind, OpenMode, SetAttr, StatFs, TimeSet, Timespec,
    Who,
};

/// The root directory's number.
pub const ROOT: Ino = 1;

/// One object.
#[derive(Debug)]
struct Node {
    kind: Kind,
    mode: u32,
    data: Vec<u8>,
    /// A directory's entries by cookie: (name, object).
    entries: BTreeMap<u64, (String, Ino)>,
    /// The cookie the next entry gets (cookies are never reused within a directory).
    next_cookie: u64,
    /// Still in a directory (else it lives only while open).
    linked: bool,
    /// Hidden from this personality (lookup ENOENT, skipped by readdir).
    hidden_from: Option<Who>,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
    version: u32,
}

/// The in-memory file system.
#[derive(Debug)]
pub struct MemFs {
    nodes: BTreeMap<Ino, Node>,
    next_ino: Ino,
    /// A clock that ticks once per changing call.
    clock: u64,
    /// Open counts per (object, mode as read | write << 1 | truncate << 2).
    opens: BTreeMap<(Ino, u8), u32>,
    /// Most objects at once (`ENOSPC` past it).
    pub max_nodes: usize,
    /// Largest file (`EFBIG` past it; a write that crosses it is short).
    pub max_file_bytes: u64,
    /// When set, every `close` fails with this error (after ending the open).
    pub fail_close: Option<Errno>,
    /// Calls made, by name, for tests that count them.
    pub calls: BTreeMap<&'static str, u32>,
}

impl Default for MemFs {
    fn default() -> Self {
        Self::new()
    }
}

/// The open-count key of a mode.
fn mode_key(mode: OpenMode) -> u8 {
    u8::from(mode.read) | u8::from(mode.write) << 1 | u8::from(mode.truncate) << 2
}

impl MemFs {
    /// An empty share (the root, mode 0o777), at most 4096 objects of 4 MiB each.
    pub fn new() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(ROOT, Node::new(Kind::Dir, 0o777, Timespec::default()));
        MemFs {
            nodes,
            next_ino: ROOT + 1,
            clock: 0,
            opens: BTreeMap::new(),
            max_nodes: 4096,
            max_file_bytes: 4 << 20,
            fail_close: None,
            calls: BTreeMap::new(),
        }
    }

    /// Hides `ino` from personality `who` (as a policy would).
    pub fn hide(&mut self, ino: Ino, who: Who) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.hidden_from = Some(who);
        }
    }

    /// Opens still not closed, over all objects.
    pub fn open_count(&self) -> u32 {
        self.opens.values().sum()
    }

    /// Objects that exist (linked or open).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// A file's contents.
    pub fn contents(&self, ino: Ino) -> Option<&[u8]> {
        self.nodes.get(&ino).map(|node| node.data.as_slice())
    }

    /// Counts a call.
    fn count(&mut self, name: &'static str) {
        *self.calls.entry(name).or_insert(0) += 1;
    }

    /// Ticks the clock.
    fn tick(&mut self) -> Timespec {
        self.clock += 1;
        Timespec {
            sec: self.clock,
            nsec: 0,
        }
    }

    /// A visible object.
    fn node(&self, who: Who, ino: Ino) -> FsResult<&Node> {
        let node = self.nodes.get(&ino).ok_or(Errno::ESTALE)?;
        if node.hidden_from == Some(who) {
            return Err(Errno::ENOENT);
        }
        Ok(node)
    }

    /// A visible directory.
    fn dir(&self, who: Who, ino: Ino) -> FsResult<&Node> {
        let node = self.node(who, ino)?;
        if node.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(node)
    }

    /// The cookie and object of `name` in `dir` (hidden entries included).
    fn entry(&self, dir: Ino, name: &str) -> Option<(u64, Ino)> {
        let node = self.nodes.get(&dir)?;
        node.entries
            .iter()
            .find(|(_, (entry, _))| entry == name)
            .map(|(cookie, (_, ino))| (*cookie, *ino))
    }

    /// An object's attributes.
    fn attr(&self, ino: Ino) -> FsResult<Attr> {
        let node = self.nodes.get(&ino).ok_or(Errno::ESTALE)?;
        let subdirs = node
            .entries
            .values()
            .filter(|(_, child)| {
                self.nodes
                    .get(child)
                    .is_some_and(|child| child.kind == Kind::Dir)
            })
            .count();
        Ok(Attr {
            ino,
            kind: node.kind,
            mode: node.mode,
            size: node.data.len() as u64,
            nlink: match node.kind {
                Kind::File => u32::from(node.linked),
                Kind::Dir => 2 + subdirs as u32,
            },
            atime: node.atime,
            mtime: node.mtime,
            ctime: node.ctime,
            version: node.version,
        })
    }

    /// Adds a new object `name` to `dir`.
    fn insert(&mut self, who: Who, dir: Ino, name: &str, kind: Kind, mode: u32) -> FsResult<Ino> {
        self.dir(who, dir)?;
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(Errno::EINVAL);
        }
        if name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        if self.entry(dir, name).is_some() {
            return Err(Errno::EEXIST);
        }
        if self.nodes.len() >= self.max_nodes {
            return Err(Errno::ENOSPC);
        }
        let now = self.tick();
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, Node::new(kind, mode & 0o7777, now));
        let parent = self.nodes.get_mut(&dir).ok_or(Errno::ESTALE)?;
        parent.next_cookie += 1;
        parent
            .entries
            .insert(parent.next_cookie, (String::from(name), ino));
        parent.mtime = now;
        parent.version = parent.version.wrapping_add(1);
        Ok(ino)
    }

    /// Takes `ino` out of its directory's entry `cookie`.
    fn detach(&mut self, dir: Ino, cookie: u64, ino: Ino) {
        let now = self.tick();
        if let Some(parent) = self.nodes.get_mut(&dir) {
            parent.entries.remove(&cookie);
            parent.mtime = now;
            parent.version = parent.version.wrapping_add(1);
        }
        let open = self
            .opens
            .range((ino, 0)..=(ino, u8::MAX))
            .any(|(_, n)| *n > 0);
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.linked = false;
        }
        if !open {
            self.nodes.remove(&ino);
        }
    }

    /// Whether `ino` is `ancestor` or lies under it.
    fn is_under(&self, mut ino: Ino, ancestor: Ino) -> bool {
        // Depth is bounded by the node count.
        for _ in 0..=self.nodes.len() {
            if ino == ancestor {
                return true;
            }
            let parent = self.nodes.iter().find_map(|(number, node)| {
                node.entries
                    .values()
                    .any(|(_, child)| *child == ino)
                    .then_some(*number)
            });
            match parent {
                Some(parent) => ino = parent,
                None => return false,
            }
        }
        false
    }

    /// Whether `ino` is open with a mode that has `write` (or `read`) set.
    fn open_for(&self, ino: Ino, write: bool) -> bool {
        self.opens
            .range((ino, 0)..=(ino, u8::MAX))
            .any(|((_, key), n)| *n > 0 && key & if write { 2 } else { 1 } != 0)
    }
}

impl Node {
    fn new(kind: Kind, mode: u32, now: Timespec) -> Self {
        Node {
            kind,
            mode,
            data: Vec::new(),
            entries: BTreeMap::new(),
            next_cookie: 0,
            linked: true,
            hidden_from: None,
            atime: now,
            mtime: now,
            ctime: now,
            version: 0,
        }
    }
}

impl Fs for MemFs {
    fn root(&mut self, who: Who) -> FsResult<Attr> {
        self.count("root");
        self.node(who, ROOT)?;
        self.attr(ROOT)
    }

    fn lookup(&mut self, who: Who, dir: Ino, name: &str) -> FsResult<Attr> {
        self.count("lookup");
        self.dir(who, dir)?;
        let (_, ino) = self.entry(dir, name).ok_or(Errno::ENOENT)?;
        self.node(who, ino)?;
        self.attr(ino)
    }

    fn getattr(&mut self, who: Who, ino: Ino) -> FsResult<Attr> {
        self.count("getattr");
        self.node(who, ino)?;
        self.attr(ino)
    }

    fn setattr(&mut self, who: Who, ino: Ino, changes: &SetAttr) -> FsResult<Attr> {
        self.count("setattr");
        self.node(who, ino)?;
        let max = self.max_file_bytes;
        let now = self.tick();
        let node = self.nodes.get_mut(&ino).ok_or(Errno::ESTALE)?;
        if let Some(size) = changes.size {
            if node.kind == Kind::Dir {
                return Err(Errno::EISDIR);
            }
            if size > max {
                return Err(Errno::EFBIG);
            }
            node.data.resize(size as usize, 0);
            node.mtime = now;
        }
        if let Some(mode) = changes.mode {
            node.mode = mode & 0o7777;
        }
        let resolve = |set: TimeSet| match set {
            TimeSet::Now => now,
            TimeSet::At(at) => at,
        };
        if let Some(atime) = changes.atime {
            node.atime = resolve(atime);
        }
        if let Some(mtime) = changes.mtime {
            node.mtime = resolve(mtime);
        }
        node.ctime = now;
        node.version = node.version.wrapping_add(1);
        self.attr(ino)
    }

    fn readdir(
        &mut self,
        who: Who,
        dir: Ino,
        cookie: u64,
        emit: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> FsResult<()> {
        self.count("readdir");
        let node = self.dir(who, dir)?;
        let start = cookie.saturating_add(1);
        if cookie == u64::MAX {
            return Ok(());
        }
        for (cookie, (name, ino)) in node.entries.range(start..) {
            let Some(child) = self.nodes.get(ino) else {
                continue;
            };
            if child.hidden_from == Some(who) {
                continue;
            }
            let entry = DirEntry {
                cookie: *cookie,
                ino: *ino,
                kind: child.kind,
                name,
            };
            if !emit(entry) {
                break;
            }
        }
        Ok(())
    }

    fn open(&mut self, who: Who, ino: Ino, mode: OpenMode) -> FsResult<Attr> {
        self.count("open");
        let node = self.node(who, ino)?;
        if node.kind == Kind::Dir && (mode.write || mode.truncate) {
            return Err(Errno::EISDIR);
        }
        if mode.truncate && mode.write {
            let now = self.tick();
            if let Some(node) = self.nodes.get_mut(&ino) {
                node.data.clear();
                node.mtime = now;
            }
        }
        *self.opens.entry((ino, mode_key(mode))).or_insert(0) += 1;
        self.attr(ino)
    }

    fn create(
        &mut self,
        who: Who,
        dir: Ino,
        name: &str,
        mode: u32,
        open: OpenMode,
    ) -> FsResult<Attr> {
        self.count("create");
        let ino = self.insert(who, dir, name, Kind::File, mode)?;
        *self.opens.entry((ino, mode_key(open))).or_insert(0) += 1;
        self.attr(ino)
    }

    fn mkdir(&mut self, who: Who, dir: Ino, name: &str, mode: u32) -> FsResult<Attr> {
        self.count("mkdir");
        let ino = self.insert(who, dir, name, Kind::Dir, mode)?;
        self.attr(ino)
    }

    fn read(&mut self, who: Who, ino: Ino, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        self.count("read");
        let node = self.node(who, ino)?;
        if node.kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        if !self.open_for(ino, false) {
            return Err(Errno::EBADF);
        }
        let data = &node.data;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let count = buf.len().min(data.len() - start);
        buf[..count].copy_from_slice(&data[start..start + count]);
        Ok(count)
    }

    fn write(&mut self, who: Who, ino: Ino, offset: u64, data: &[u8]) -> FsResult<usize> {
        self.count("write");
        self.node(who, ino)?;
        if !self.open_for(ino, true) {
            return Err(Errno::EBADF);
        }
        let max = self.max_file_bytes;
        if offset >= max && !data.is_empty() {
            return Err(Errno::EFBIG);
        }
        let end = offset.saturating_add(data.len() as u64).min(max);
        let count = (end.saturating_sub(offset)) as usize;
        let now = self.tick();
        let node = self.nodes.get_mut(&ino).ok_or(Errno::ESTALE)?;
        if node.data.len() < end as usize {
            node.data.resize(end as usize, 0);
        }
        node.data[offset as usize..end as usize].copy_from_slice(&data[..count]);
        node.mtime = now;
        node.version = node.version.wrapping_add(1);
        Ok(count)
    }

    fn fsync(&mut self, who: Who, ino: Ino) -> FsResult<()> {
        self.count("fsync");
        self.node(who, ino).map(|_| ())
    }

    fn close(&mut self, _who: Who, ino: Ino, mode: OpenMode) -> FsResult<()> {
        self.count("close");
        let key = (ino, mode_key(mode));
        match self.opens.get_mut(&key) {
            Some(count) if *count > 0 => *count -= 1,
            _ => return Err(Errno::EBADF),
        }
        if self.opens.get(&key) == Some(&0) {
            self.opens.remove(&key);
        }
        let still_open = self.opens.range((ino, 0)..=(ino, u8::MAX)).next().is_some();
        if !still_open && self.nodes.get(&ino).is_some_and(|node| !node.linked) {
            self.nodes.remove(&ino);
        }
        match self.fail_close {
            Some(errno) => Err(errno),
            None => Ok(()),
        }
    }

    fn rename(
        &mut self,
        who: Who,
        old_dir: Ino,
        old_name: &str,
        new_dir: Ino,
        new_name: &str,
    ) -> FsResult<()> {
        self.count("rename");
        self.dir(who, old_dir)?;
        self.dir(who, new_dir)?;
        if new_name.is_empty() || new_name == "." || new_name == ".." || new_name.contains('/') {
            return Err(Errno::EINVAL);
        }
        let (old_cookie, ino) = self.entry(old_dir, old_name).ok_or(Errno::ENOENT)?;
        let kind = self.node(who, ino)?.kind;
        if kind == Kind::Dir && self.is_under(new_dir, ino) {
            return Err(Errno::EINVAL);
        }
        if let Some((target_cookie, target)) = self.entry(new_dir, new_name) {
            if target == ino {
                return Ok(());
            }
            let target_node = self.nodes.get(&target).ok_or(Errno::ESTALE)?;
            match (kind, target_node.kind) {
                (Kind::File, Kind::Dir) => return Err(Errno::EISDIR),
                (Kind::Dir, Kind::File) => return Err(Errno::ENOTDIR),
                (Kind::Dir, Kind::Dir) if !target_node.entries.is_empty() => {
                    return Err(Errno::ENOTEMPTY)
                }
                _ => {}
            }
            self.detach(new_dir, target_cookie, target);
        }
        let now = self.tick();
        let old = self.nodes.get_mut(&old_dir).ok_or(Errno::ESTALE)?;
        let entry = old.entries.remove(&old_cookie).ok_or(Errno::ENOENT)?;
        old.mtime = now;
        let new = self.nodes.get_mut(&new_dir).ok_or(Errno::ESTALE)?;
        new.next_cookie += 1;
        new.entries
            .insert(new.next_cookie, (String::from(new_name), entry.1));
        new.mtime = now;
        Ok(())
    }

    fn unlink(&mut self, who: Who, dir: Ino, name: &str, dir_expected: bool) -> FsResult<()> {
        self.count("unlink");
        self.dir(who, dir)?;
        let (cookie, ino) = self.entry(dir, name).ok_or(Errno::ENOENT)?;
        let node = self.node(who, ino)?;
        match (node.kind, dir_expected) {
            (Kind::Dir, false) => return Err(Errno::EISDIR),
            (Kind::File, true) => return Err(Errno::ENOTDIR),
            (Kind::Dir, true) if !node.entries.is_empty() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        self.detach(dir, cookie, ino);
        Ok(())
    }

    fn statfs(&mut self, _who: Who) -> FsResult<StatFs> {
        self.count("statfs");
        let used: u64 = self.nodes.values().map(|node| node.data.len() as u64).sum();
        let blocks = 1 << 16;
        Ok(StatFs {
            block_size: 4096,
            blocks,
            blocks_free: blocks - used.div_ceil(4096).min(blocks),
            files: self.max_nodes as u64,
            files_free: (self.max_nodes - self.nodes.len().min(self.max_nodes)) as u64,
            name_max: 255,
        })
    }
}

//! The fid table of one session: bounded, sorted by fid, allocated once.

use alloc::vec::Vec;

use crate::channel::fs::{Errno, Ino, Kind, OpenMode};
use crate::channel::p9::wire::NOFID;

/// Most fids one session may hold (beyond: `ENFILE`). Linux holds one per dentry and
/// one per open file, and gives them back under memory pressure.
pub const MAX_FIDS: usize = 512;
/// Most ancestors a fid remembers for walking `..`. Linux resolves `..` itself (through
/// its dentries) and never walks it, so the bound only limits what a hostile client
/// can make Janus store; past it the oldest are dropped and `..` from there fails.
pub const MAX_ANCESTORS: usize = 16;

/// What one fid stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fid {
    /// The object.
    pub ino: Ino,
    /// Its kind (fixed for an object's life).
    pub kind: Kind,
    /// The directories walked through from the root, nearest last (at most
    /// [`MAX_ANCESTORS`]); empty at the root.
    pub ancestors: Vec<Ino>,
    /// Older ancestors were dropped (so an empty `ancestors` is not the root).
    pub truncated: bool,
    /// Opened (`Tlopen` or `Tlcreate`) with this mode: a `close` is owed.
    pub open: Option<OpenMode>,
}

impl Fid {
    /// The root of the share.
    pub fn root(ino: Ino) -> Self {
        Fid {
            ino,
            kind: Kind::Dir,
            ancestors: Vec::new(),
            truncated: false,
            open: None,
        }
    }

    /// Whether this is the root of the share.
    pub fn is_root(&self) -> bool {
        self.ancestors.is_empty() && !self.truncated
    }

    /// The directory holding the object, when known.
    pub fn parent(&self) -> Option<Ino> {
        self.ancestors.last().copied()
    }

    /// Moves down into `child` (of `kind`), remembering the current object.
    pub fn descend(&mut self, child: Ino, kind: Kind) {
        if self.ancestors.len() >= MAX_ANCESTORS {
            self.ancestors.remove(0);
            self.truncated = true;
        }
        self.ancestors.push(self.ino);
        self.ino = child;
        self.kind = kind;
    }

    /// A copy that is not open (what a walk makes).
    pub fn unopened(&self) -> Self {
        Fid {
            open: None,
            ..self.clone()
        }
    }
}

/// The fids of one session.
#[derive(Debug)]
pub struct FidTable {
    /// Sorted by fid number; capacity [`MAX_FIDS`], so it never reallocates.
    entries: Vec<(u32, Fid)>,
}

impl Default for FidTable {
    fn default() -> Self {
        Self::new()
    }
}

impl FidTable {
    /// An empty table.
    pub fn new() -> Self {
        FidTable {
            entries: Vec::with_capacity(MAX_FIDS),
        }
    }

    /// Where `fid` is or would go.
    fn position(&self, fid: u32) -> Result<usize, usize> {
        self.entries
            .binary_search_by_key(&fid, |(number, _)| *number)
    }

    /// The fid, or `EBADF`.
    ///
    /// # Errors
    /// `EBADF` for an unknown fid.
    pub fn get(&self, fid: u32) -> Result<&Fid, Errno> {
        let index = self.position(fid).map_err(|_| Errno::EBADF)?;
        self.entries
            .get(index)
            .map(|(_, entry)| entry)
            .ok_or(Errno::EBADF)
    }

    /// The fid, mutable, or `EBADF`.
    ///
    /// # Errors
    /// `EBADF` for an unknown fid.
    pub fn get_mut(&mut self, fid: u32) -> Result<&mut Fid, Errno> {
        let index = self.position(fid).map_err(|_| Errno::EBADF)?;
        self.entries
            .get_mut(index)
            .map(|(_, entry)| entry)
            .ok_or(Errno::EBADF)
    }

    /// Whether `fid` is in use.
    pub fn contains(&self, fid: u32) -> bool {
        self.position(fid).is_ok()
    }

    /// Whether `fid` could be added: not in use, not NOFID, room left.
    ///
    /// # Errors
    /// `EBADF` for a fid in use or NOFID, `ENFILE` when the table is full.
    pub fn check_new(&self, fid: u32) -> Result<(), Errno> {
        if fid == NOFID || self.contains(fid) {
            return Err(Errno::EBADF);
        }
        if self.entries.len() >= MAX_FIDS {
            return Err(Errno::ENFILE);
        }
        Ok(())
    }

    /// Adds a new fid.
    ///
    /// # Errors
    /// As [`FidTable::check_new`].
    pub fn insert(&mut self, fid: u32, entry: Fid) -> Result<(), Errno> {
        self.check_new(fid)?;
        let index = self.position(fid).err().ok_or(Errno::EBADF)?;
        self.entries.insert(index, (fid, entry));
        Ok(())
    }

    /// Takes a fid out.
    ///
    /// # Errors
    /// `EBADF` for an unknown fid.
    pub fn remove(&mut self, fid: u32) -> Result<Fid, Errno> {
        let index = self.position(fid).map_err(|_| Errno::EBADF)?;
        Ok(self.entries.remove(index).1)
    }

    /// Takes out any one fid (to empty the table).
    pub fn pop(&mut self) -> Option<Fid> {
        self.entries.pop().map(|(_, entry)| entry)
    }

    /// Fids in use.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no fid is in use.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Fids that are open.
    pub fn open_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|(_, entry)| entry.open.is_some())
            .count()
    }
}

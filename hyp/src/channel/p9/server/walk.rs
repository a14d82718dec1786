//! `Twalk`: single-component names, `..` clamped at the root, partial walks.

use super::ops::{check_name, qid};
use super::Session;
use crate::channel::fs::{Errno, Fs, FsResult, Kind};
use crate::channel::p9::wire::{Qid, Reply, MAX_WALK_NAMES};

impl Session {
    /// Walks `names` from `fid` into `newfid` (research 2.6.3): the new fid exists only
    /// when every name was walked (`newfid == fid` is replaced only then); a walk that
    /// stops part way answers the qids it got, and one whose first name fails is an
    /// error; no names clones the fid.
    pub(super) fn walk<'q>(
        &mut self,
        fs: &mut dyn Fs,
        fid: u32,
        newfid: u32,
        names: &[&str],
        qids: &'q mut [Qid; MAX_WALK_NAMES],
    ) -> FsResult<Reply<'q>> {
        let start = self.fids.get(fid)?;
        if newfid == fid {
            if names.is_empty() {
                return Ok(Reply::Walk { qids: &[] });
            }
            // Replacing an open fid would lose the open's close.
            if start.open.is_some() {
                return Err(Errno::EBUSY);
            }
        } else {
            self.fids.check_new(newfid)?;
        }
        let mut current = start.unopened();
        let mut walked = 0;
        for (name, slot) in names.iter().zip(qids.iter_mut()) {
            match self.step(fs, &mut current, name) {
                Ok(step) => *slot = step,
                Err(errno) if walked == 0 => return Err(errno),
                Err(_) => {
                    let got = qids.get(..walked).unwrap_or(&[]);
                    return Ok(Reply::Walk { qids: got });
                }
            }
            walked += 1;
        }
        if newfid == fid {
            *self.fids.get_mut(fid)? = current;
        } else {
            self.fids.insert(newfid, current)?;
        }
        Ok(Reply::Walk {
            qids: qids.get(..walked).unwrap_or(&[]),
        })
    }

    /// Walks one name from `current`, moving it.
    fn step(&self, fs: &mut dyn Fs, current: &mut super::Fid, name: &str) -> FsResult<Qid> {
        check_name(name)?;
        if current.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        match name {
            "." => Ok(qid(&fs.getattr(self.who, current.ino)?)),
            ".." => {
                if current.is_root() {
                    // Clamped: `..` of the share's root is the root.
                    return Ok(qid(&fs.getattr(self.who, current.ino)?));
                }
                // No parent remembered past MAX_ANCESTORS.
                let parent = current.parent().ok_or(Errno::ENOENT)?;
                let attr = fs.getattr(self.who, parent)?;
                current.ancestors.pop();
                current.ino = parent;
                current.kind = attr.kind;
                Ok(qid(&attr))
            }
            _ => {
                let attr = fs.lookup(self.who, current.ino, name)?;
                current.descend(attr.ino, attr.kind);
                Ok(qid(&attr))
            }
        }
    }
}

//! Who may do what with the other personality's files in the shared folder.
//!
//! Pure decisions, no state: the channel asks [`Policy::allows`] on every call
//! (a right learned once grants nothing later) with the acting personality, the
//! object's owner label and whether the object is released.
//!
//! # The rules
//!
//! - A personality has every right on its own files ([`Access`] is about the
//!   other's files only).
//! - Each direction `(who, owner)` with `who != owner` has a set of rights:
//!   [`Access::See`] (listed by readdir, found by lookup, getattr),
//!   [`Access::Read`], [`Access::Write`] (write, setattr, and adding or removing
//!   entries in a directory the owner labels), [`Access::Delete`] (unlink, rmdir,
//!   and renaming the object away: a rename of another's object needs `Delete` on
//!   it, and replacing one at the target needs `Delete` on that one too).
//! - Default (no `[channel]` table, or a direction it does not list): the
//!   personality named `work` may see and read the files of the personality named
//!   `personal`; every other direction gets nothing, so work's files are invisible
//!   in personal.
//! - **Release.** A *regular file* whose parent directory is the release folder
//!   ([`Policy::release_folder`], default `release`, directly in the root of the
//!   share) is released: every personality may see and read it (never write or
//!   delete it). The gesture is `mv file /shared/release/` in work. Only direct
//!   children count: a directory is never released, and neither is anything in a
//!   subfolder of `release/` (to release a folder, release its files or an archive
//!   of it). The reason: releasing is one deliberate act per file, the audit
//!   record names exactly what crossed, and the flag is a property of one entry
//!   (no walk over a tree, no unbounded relabelling when a folder moves).
//!   Moving the file out of the release folder again withdraws the release at
//!   once: the next call of the other personality is refused (an open fid
//!   included, as the policy is applied on every call). [`Policy::is_released`]
//!   is the rule; the channel audits both the release and the withdrawal.
//! - The root and the release folder are common: every personality may list them
//!   and add entries to them, and neither may be removed or renamed (the channel
//!   enforces this; the policy is not asked about them).
//! - Quotas ([`Policy::quota`]) count the bytes and objects a personality owns;
//!   [`Policy::max_file_bytes`] caps every file. [`UNLIMITED`] means no limit
//!   beyond the partition.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use super::fs::{Kind, Who};
use crate::vm::config::channel::{ChannelConfig, Manager};

/// A limit that is not set: only the partition's size bounds it.
pub const UNLIMITED: u64 = u64::MAX;

/// Bytes in a mebibyte (the config gives sizes in MiB).
const MIB_BYTES: u64 = 1 << 20;

/// Name of the personality whose files are readable by default.
pub const DEFAULT_PERSONAL: &str = "personal";
/// Name of the personality that may read them by default, and the default manager.
pub const DEFAULT_WORK: &str = "work";

/// One right on another personality's object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Listed by readdir, found by lookup, its attributes read.
    See,
    /// Its contents read (a directory: its entries listed).
    Read,
    /// Its contents or attributes changed; for a directory, entries added or removed.
    Write,
    /// Removed, or renamed away.
    Delete,
}

impl Access {
    /// Every right, in bit order.
    pub const ALL: [Access; 4] = [Access::See, Access::Read, Access::Write, Access::Delete];

    /// The bit this right has in an [`AccessSet`].
    pub const fn bit(self) -> u8 {
        match self {
            Access::See => 1 << 0,
            Access::Read => 1 << 1,
            Access::Write => 1 << 2,
            Access::Delete => 1 << 3,
        }
    }

    /// The word the config and the audit export use.
    pub const fn name(self) -> &'static str {
        match self {
            Access::See => "see",
            Access::Read => "read",
            Access::Write => "write",
            Access::Delete => "delete",
        }
    }

    /// The right a config word names.
    pub fn from_name(name: &str) -> Option<Access> {
        Access::ALL.into_iter().find(|access| access.name() == name)
    }
}

/// A set of rights, one bit per [`Access`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccessSet(pub u8);

impl AccessSet {
    /// No right.
    pub const NONE: AccessSet = AccessSet(0);
    /// See and read: the default for personal's files in work, and what release gives.
    pub const SEE_READ: AccessSet = AccessSet(Access::See.bit() | Access::Read.bit());
    /// Every right.
    pub const ALL: AccessSet = AccessSet(0b1111);

    /// True when the set holds `access`.
    pub const fn contains(self, access: Access) -> bool {
        self.0 & access.bit() != 0
    }

    /// The set with `access` added.
    pub const fn with(self, access: Access) -> AccessSet {
        AccessSet(self.0 | access.bit())
    }

    /// True when only defined bits are set.
    pub const fn is_valid(self) -> bool {
        self.0 & !Self::ALL.0 == 0
    }
}

/// A personality's share of the shared partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Most bytes of file data it may own ([`UNLIMITED`] for no quota).
    pub max_bytes: u64,
    /// Most files and directories it may own ([`UNLIMITED`] for no quota).
    pub max_files: u64,
}

impl Quota {
    /// No quota.
    pub const UNLIMITED: Quota = Quota {
        max_bytes: UNLIMITED,
        max_files: UNLIMITED,
    };
}

/// The policy for one configuration, built once at boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Personalities in config order.
    count: usize,
    /// `rights[who * count + owner]`, for `who != owner`.
    rights: Vec<AccessSet>,
    /// Per personality.
    quotas: Vec<Quota>,
    /// Cap on every file's size.
    max_file_bytes: u64,
    /// Name of the release folder in the root.
    release_folder: String,
    /// Who gets the audit export.
    manager: Option<Who>,
}

impl Policy {
    /// The default policy for personalities called `names` (config order).
    pub fn default_for(names: &[&str]) -> Policy {
        Policy::new(&ChannelConfig::default(), names)
    }

    /// The policy `config` describes for personalities called `names`. `config`
    /// has passed [`crate::vm::config::channel::validate_channel`]; indices it
    /// names past `names` are ignored.
    pub fn new(config: &ChannelConfig<'_>, names: &[&str]) -> Policy {
        let count = names.len();
        let index_of = |wanted: &str| names.iter().position(|name| *name == wanted);
        let mut rights = alloc::vec![AccessSet::NONE; count * count];
        if let (Some(work), Some(personal)) = (index_of(DEFAULT_WORK), index_of(DEFAULT_PERSONAL)) {
            if let Some(slot) = rights.get_mut(work * count + personal) {
                *slot = AccessSet::SEE_READ;
            }
        }
        for rule in &config.access {
            let (who, owner) = (usize::from(rule.who), usize::from(rule.owner));
            if who < count && owner < count && who != owner {
                if let Some(slot) = rights.get_mut(who * count + owner) {
                    *slot = AccessSet(rule.may.0 & AccessSet::ALL.0);
                }
            }
        }
        let mut quotas = alloc::vec![Quota::UNLIMITED; count];
        for rule in &config.quotas {
            if let Some(quota) = quotas.get_mut(usize::from(rule.who)) {
                if let Some(mib) = rule.max_mib {
                    quota.max_bytes = u64::from(mib).saturating_mul(MIB_BYTES);
                }
                if let Some(files) = rule.max_files {
                    quota.max_files = u64::from(files);
                }
            }
        }
        let manager = match config.manager {
            Manager::Default => index_of(DEFAULT_WORK).and_then(|index| Who::try_from(index).ok()),
            Manager::Nobody => None,
            Manager::Personality(who) => (usize::from(who) < count).then_some(who),
        };
        Policy {
            count,
            rights,
            quotas,
            max_file_bytes: config
                .max_file_mib
                .map_or(UNLIMITED, |mib| u64::from(mib).saturating_mul(MIB_BYTES)),
            release_folder: String::from(config.release_folder),
            manager,
        }
    }

    /// May `who` do `access` on an object that `owner` labels, released or not?
    /// A personality unknown to the config may do nothing with others' objects.
    pub fn allows(&self, who: Who, owner: Who, released: bool, access: Access) -> bool {
        if who == owner {
            return true;
        }
        if released && matches!(access, Access::See | Access::Read) {
            return true;
        }
        self.rights(who, owner).contains(access)
    }

    /// The rights `who` has on `owner`'s unreleased objects (all of them when
    /// `who == owner`; none for a personality the config does not have).
    pub fn rights(&self, who: Who, owner: Who) -> AccessSet {
        if who == owner {
            return AccessSet::ALL;
        }
        let (who, owner) = (usize::from(who), usize::from(owner));
        if who >= self.count || owner >= self.count {
            return AccessSet::NONE;
        }
        self.rights
            .get(who * self.count + owner)
            .copied()
            .unwrap_or(AccessSet::NONE)
    }

    /// Is an object released? Only a regular file whose parent directory is the
    /// release folder of the root is.
    pub fn is_released(kind: Kind, parent_is_release_folder: bool) -> bool {
        kind == Kind::File && parent_is_release_folder
    }

    /// `who`'s quota ([`Quota::UNLIMITED`] when it has none).
    pub fn quota(&self, who: Who) -> Quota {
        self.quotas
            .get(usize::from(who))
            .copied()
            .unwrap_or(Quota::UNLIMITED)
    }

    /// The largest size any file may reach, in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// The release folder's name (one path component in the root of the share).
    pub fn release_folder(&self) -> &str {
        &self.release_folder
    }

    /// The personality whose management agent gets the audit export, if any.
    pub fn manager(&self) -> Option<Who> {
        self.manager
    }

    /// How many personalities the policy covers.
    pub fn personalities(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
mod tests;

//! The `[channel]` table: the shared folder's policy, quotas and audit manager.
//!
//! `janus-pack` reads it from the TOML file (names become config indices) and packs
//! it into the bundle; Janus reads it back and runs [`validate_channel`] again.
//! [`crate::channel::policy::Policy::new`] turns it into decisions; what is left
//! out takes the defaults documented there.

use alloc::vec::Vec;
use core::fmt;

use crate::channel::fs::Who;
use crate::channel::policy::{Access, AccessSet};

/// The release folder without a `release_folder` key.
pub const DEFAULT_RELEASE_FOLDER: &str = "release";
/// Longest release folder name, in bytes.
pub const RELEASE_FOLDER_MAX_BYTES: usize = 64;
/// Largest `max_file_mib` and quota `mib` (1 TiB, the largest `shared` partition).
pub const CHANNEL_MAX_MIB: u32 = 1 << 20;
/// Most `[[channel.access]]` rules: one per ordered pair of personalities.
pub const MAX_ACCESS_RULES: usize = 64;

/// Who gets the audit export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manager {
    /// No `manager` key: the personality named `work`, if there is one.
    Default,
    /// `manager = ""`: nobody; the log is only shown on the console.
    Nobody,
    /// `manager = "<name>"`: this personality.
    Personality(Who),
}

/// One `[[channel.access]]` rule: what `who` may do with `owner`'s files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessRule {
    /// The acting personality (`who = "<name>"`).
    pub who: Who,
    /// The owner of the files (`on = "<name>"`).
    pub owner: Who,
    /// The rights (`may = [...]`).
    pub may: AccessSet,
}

/// One `[[channel.quota]]` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaRule {
    /// The personality (`who = "<name>"`).
    pub who: Who,
    /// `mib`: most MiB of file data it may own.
    pub max_mib: Option<u32>,
    /// `files`: most files and directories it may own.
    pub max_files: Option<u32>,
}

/// The `[channel]` table as the bundle holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelConfig<'a> {
    /// Name of the release folder in the root of the share.
    pub release_folder: &'a str,
    /// `max_file_mib`: the largest file; `None` for no limit but the partition.
    pub max_file_mib: Option<u32>,
    /// Who gets the audit export.
    pub manager: Manager,
    /// The `[[channel.access]]` rules, replacing the default for their direction.
    pub access: Vec<AccessRule>,
    /// The `[[channel.quota]]` tables.
    pub quotas: Vec<QuotaRule>,
}

impl Default for ChannelConfig<'_> {
    /// What a config without a `[channel]` table (and a version 1 bundle) gets.
    fn default() -> Self {
        ChannelConfig {
            release_folder: DEFAULT_RELEASE_FOLDER,
            max_file_mib: None,
            manager: Manager::Default,
            access: Vec::new(),
            quotas: Vec::new(),
        }
    }
}

/// What in the `[channel]` table is at fault, so a tool can point at its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelField {
    /// `release_folder`.
    ReleaseFolder,
    /// `max_file_mib`.
    MaxFileMib,
    /// `manager`.
    Manager,
    /// The `[[channel.access]]` rule with this index: its `who`.
    AccessWho(usize),
    /// Its `on`.
    AccessOn(usize),
    /// Its `may`.
    AccessMay(usize),
    /// The `[[channel.quota]]` table with this index: its `who`.
    QuotaWho(usize),
    /// Its `mib`.
    QuotaMib(usize),
    /// Its `files`.
    QuotaFiles(usize),
}

/// Why a `[channel]` table was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelError {
    /// The release folder name is empty, `.`, `..`, longer than
    /// [`RELEASE_FOLDER_MAX_BYTES`], or has a byte outside `[A-Za-z0-9._-]`.
    BadReleaseFolder,
    /// `max_file_mib` is 0 or above [`CHANNEL_MAX_MIB`].
    MaxFileSize(u32),
    /// The manager names no personality.
    UnknownManager,
    /// A rule or quota names a personality index past the list.
    UnknownPersonality(ChannelField),
    /// An access rule has `who` equal to `on`: a personality always has every
    /// right on its own files.
    RuleOnItself(usize),
    /// Two access rules for the same direction; the first index is the later rule.
    DuplicateRule(usize, usize),
    /// A rule gives read, write or delete without see: what cannot be found
    /// cannot be opened or removed.
    RightWithoutSee(usize),
    /// The rights have bits no [`Access`] defines (only from a bundle).
    UnknownRight(usize),
    /// More access rules than [`MAX_ACCESS_RULES`].
    TooManyRules,
    /// Two quota tables for the same personality; the first index is the later.
    DuplicateQuota(usize, usize),
    /// A quota's `mib` or `files` is 0 or `mib` is above [`CHANNEL_MAX_MIB`].
    QuotaValue(ChannelField),
}

impl ChannelError {
    /// The key at fault.
    pub fn field(&self) -> Option<ChannelField> {
        Some(match *self {
            ChannelError::BadReleaseFolder => ChannelField::ReleaseFolder,
            ChannelError::MaxFileSize(_) => ChannelField::MaxFileMib,
            ChannelError::UnknownManager => ChannelField::Manager,
            ChannelError::UnknownPersonality(field) | ChannelError::QuotaValue(field) => field,
            ChannelError::RuleOnItself(index) => ChannelField::AccessOn(index),
            ChannelError::DuplicateRule(index, _) => ChannelField::AccessOn(index),
            ChannelError::RightWithoutSee(index) | ChannelError::UnknownRight(index) => {
                ChannelField::AccessMay(index)
            }
            ChannelError::DuplicateQuota(index, _) => ChannelField::QuotaWho(index),
            ChannelError::TooManyRules => return None,
        })
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ChannelError::BadReleaseFolder => write!(
                formatter,
                "release_folder must be 1 to {RELEASE_FOLDER_MAX_BYTES} characters from \
                 A-Z, a-z, 0-9, '.', '_' and '-', and not . or .."
            ),
            ChannelError::MaxFileSize(mib) => write!(
                formatter,
                "max_file_mib = {mib} is outside 1 to {CHANNEL_MAX_MIB}"
            ),
            ChannelError::UnknownManager => {
                formatter.write_str("manager names no personality (\"\" for none)")
            }
            ChannelError::UnknownPersonality(_) => {
                formatter.write_str("no personality has this name")
            }
            ChannelError::RuleOnItself(_) => formatter.write_str(
                "who and on are the same personality: it always has every right on its own files",
            ),
            ChannelError::DuplicateRule(_, first) => write!(
                formatter,
                "this direction already has a rule ([[channel.access]] number {})",
                first + 1
            ),
            ChannelError::RightWithoutSee(_) => formatter.write_str(
                "may gives read, write or delete without \"see\": what is not listed cannot be used",
            ),
            ChannelError::UnknownRight(_) => formatter.write_str("may has an unknown right"),
            ChannelError::TooManyRules => write!(
                formatter,
                "more than {MAX_ACCESS_RULES} [[channel.access]] rules"
            ),
            ChannelError::DuplicateQuota(_, first) => write!(
                formatter,
                "this personality already has a quota ([[channel.quota]] number {})",
                first + 1
            ),
            ChannelError::QuotaValue(ChannelField::QuotaFiles(_)) => {
                formatter.write_str("files must be at least 1")
            }
            ChannelError::QuotaValue(_) => {
                write!(formatter, "mib must be 1 to {CHANNEL_MAX_MIB}")
            }
        }
    }
}

/// Is `name` a valid release folder name?
pub fn release_folder_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= RELEASE_FOLDER_MAX_BYTES
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

/// Checks `channel` for a config of `personalities` personalities.
///
/// # Errors
///
/// The first [`ChannelError`] found, in the order of the table's keys.
pub fn validate_channel(
    channel: &ChannelConfig<'_>,
    personalities: usize,
) -> Result<(), ChannelError> {
    if !release_folder_is_valid(channel.release_folder) {
        return Err(ChannelError::BadReleaseFolder);
    }
    if let Some(mib) = channel.max_file_mib {
        if !(1..=CHANNEL_MAX_MIB).contains(&mib) {
            return Err(ChannelError::MaxFileSize(mib));
        }
    }
    if let Manager::Personality(who) = channel.manager {
        if usize::from(who) >= personalities {
            return Err(ChannelError::UnknownManager);
        }
    }
    if channel.access.len() > MAX_ACCESS_RULES {
        return Err(ChannelError::TooManyRules);
    }
    for (index, rule) in channel.access.iter().enumerate() {
        if usize::from(rule.who) >= personalities {
            return Err(ChannelError::UnknownPersonality(ChannelField::AccessWho(
                index,
            )));
        }
        if usize::from(rule.owner) >= personalities {
            return Err(ChannelError::UnknownPersonality(ChannelField::AccessOn(
                index,
            )));
        }
        if rule.who == rule.owner {
            return Err(ChannelError::RuleOnItself(index));
        }
        if let Some(first) = channel.access[..index]
            .iter()
            .position(|earlier| earlier.who == rule.who && earlier.owner == rule.owner)
        {
            return Err(ChannelError::DuplicateRule(index, first));
        }
        if !rule.may.is_valid() {
            return Err(ChannelError::UnknownRight(index));
        }
        if rule.may != AccessSet::NONE && !rule.may.contains(Access::See) {
            return Err(ChannelError::RightWithoutSee(index));
        }
    }
    for (index, quota) in channel.quotas.iter().enumerate() {
        if usize::from(quota.who) >= personalities {
            return Err(ChannelError::UnknownPersonality(ChannelField::QuotaWho(
                index,
            )));
        }
        if let Some(first) = channel.quotas[..index]
            .iter()
            .position(|earlier| earlier.who == quota.who)
        {
            return Err(ChannelError::DuplicateQuota(index, first));
        }
        if let Some(mib) = quota.max_mib {
            if !(1..=CHANNEL_MAX_MIB).contains(&mib) {
                return Err(ChannelError::QuotaValue(ChannelField::QuotaMib(index)));
            }
        }
        if quota.max_files == Some(0) {
            return Err(ChannelError::QuotaValue(ChannelField::QuotaFiles(index)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(who: Who, owner: Who, may: AccessSet) -> AccessRule {
        AccessRule { who, owner, may }
    }

    #[test]
    fn the_default_is_valid() {
        assert_eq!(validate_channel(&ChannelConfig::default(), 2), Ok(()));
    }

    #[test]
    fn every_bad_value_is_refused_with_its_field() {
        let base = ChannelConfig::default;
        let cases: [(ChannelConfig<'static>, ChannelError); 12] = [
            (
                ChannelConfig {
                    release_folder: "",
                    ..base()
                },
                ChannelError::BadReleaseFolder,
            ),
            (
                ChannelConfig {
                    release_folder: "..",
                    ..base()
                },
                ChannelError::BadReleaseFolder,
            ),
            (
                ChannelConfig {
                    release_folder: "a/b",
                    ..base()
                },
                ChannelError::BadReleaseFolder,
            ),
            (
                ChannelConfig {
                    max_file_mib: Some(0),
                    ..base()
                },
                ChannelError::MaxFileSize(0),
            ),
            (
                ChannelConfig {
                    manager: Manager::Personality(2),
                    ..base()
                },
                ChannelError::UnknownManager,
            ),
            (
                ChannelConfig {
                    access: alloc::vec![rule(2, 0, AccessSet::NONE)],
                    ..base()
                },
                ChannelError::UnknownPersonality(ChannelField::AccessWho(0)),
            ),
            (
                ChannelConfig {
                    access: alloc::vec![rule(1, 1, AccessSet::NONE)],
                    ..base()
                },
                ChannelError::RuleOnItself(0),
            ),
            (
                ChannelConfig {
                    access: alloc::vec![rule(1, 0, AccessSet::NONE), rule(1, 0, AccessSet::ALL)],
                    ..base()
                },
                ChannelError::DuplicateRule(1, 0),
            ),
            (
                ChannelConfig {
                    access: alloc::vec![rule(1, 0, AccessSet(0b10))],
                    ..base()
                },
                ChannelError::RightWithoutSee(0),
            ),
            (
                ChannelConfig {
                    access: alloc::vec![rule(1, 0, AccessSet(0x11))],
                    ..base()
                },
                ChannelError::UnknownRight(0),
            ),
            (
                ChannelConfig {
                    quotas: alloc::vec![QuotaRule {
                        who: 0,
                        max_mib: Some(0),
                        max_files: None
                    }],
                    ..base()
                },
                ChannelError::QuotaValue(ChannelField::QuotaMib(0)),
            ),
            (
                ChannelConfig {
                    quotas: alloc::vec![
                        QuotaRule {
                            who: 0,
                            max_mib: None,
                            max_files: Some(1)
                        },
                        QuotaRule {
                            who: 0,
                            max_mib: None,
                            max_files: Some(2)
                        },
                    ],
                    ..base()
                },
                ChannelError::DuplicateQuota(1, 0),
            ),
        ];
        for (config, error) in cases {
            assert_eq!(validate_channel(&config, 2), Err(error), "{config:?}");
            assert!(error.field().is_some());
        }
    }
}

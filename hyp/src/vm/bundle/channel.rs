//! The bundle's channel section: the `[channel]` table, written and read back.
//!
//! Layout (all integers little-endian, offsets from the start of the section):
//!
//! | offset | size | field                                                      |
//! |--------|------|------------------------------------------------------------|
//! | 0x00   | 4    | `max_file_mib`; 0 = no limit but the partition              |
//! | 0x04   | 1    | manager: 0 = default, 1 = nobody, 2 = the personality below |
//! | 0x05   | 1    | manager's personality index; zero unless 0x04 is 2          |
//! | 0x06   | 1    | release folder length in bytes                              |
//! | 0x07   | 1    | number of access rules                                      |
//! | 0x08   | 1    | number of quotas                                            |
//! | 0x09   | 3    | reserved, zero                                              |
//! | 0x0c   | …    | release folder name, UTF-8                                  |
//!
//! then each access rule in 4 bytes (who, owner, rights bits, zero) and each quota
//! in 12 bytes (who, three zero bytes, `mib` u32, `files` u32; 0 = no limit). The
//! section is exactly as long as these, so a length that disagrees is refused.

use alloc::vec::Vec;

use super::{read_u32, BundleError};
use crate::channel::policy::AccessSet;
use crate::vm::config::channel::{AccessRule, ChannelConfig, Manager, QuotaRule};

/// Bytes before the release folder name.
const FIXED_BYTES: usize = 0x0c;
/// Bytes per access rule.
const RULE_BYTES: usize = 4;
/// Bytes per quota.
const QUOTA_BYTES: usize = 12;

/// Manager codes.
const MANAGER_DEFAULT: u8 = 0;
const MANAGER_NOBODY: u8 = 1;
const MANAGER_PERSONALITY: u8 = 2;

/// The section for `channel`.
///
/// # Panics
///
/// If the release folder is longer than 255 bytes or there are more than 255 rules
/// or quotas: [`crate::vm::config::channel::validate_channel`] refuses these (64
/// bytes, 64 rules, one quota per personality), and `janus-pack` runs it first.
pub(super) fn encode(channel: &ChannelConfig<'_>) -> Vec<u8> {
    let count = |what: &str, length: usize| {
        u8::try_from(length)
            .unwrap_or_else(|_| panic!("{length} {what} cannot be stored in a bundle"))
    };
    let folder = channel.release_folder.as_bytes();
    let (manager_code, manager_index) = match channel.manager {
        Manager::Default => (MANAGER_DEFAULT, 0),
        Manager::Nobody => (MANAGER_NOBODY, 0),
        Manager::Personality(who) => (MANAGER_PERSONALITY, who),
    };
    let mut out = Vec::with_capacity(
        FIXED_BYTES
            + folder.len()
            + channel.access.len() * RULE_BYTES
            + channel.quotas.len() * QUOTA_BYTES,
    );
    out.extend_from_slice(&channel.max_file_mib.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&[
        manager_code,
        manager_index,
        count("release folder bytes", folder.len()),
        count("access rules", channel.access.len()),
        count("quotas", channel.quotas.len()),
        0,
        0,
        0,
    ]);
    out.extend_from_slice(folder);
    for rule in &channel.access {
        out.extend_from_slice(&[rule.who, rule.owner, rule.may.0, 0]);
    }
    for quota in &channel.quotas {
        out.extend_from_slice(&[quota.who, 0, 0, 0]);
        out.extend_from_slice(&quota.max_mib.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&quota.max_files.unwrap_or(0).to_le_bytes());
    }
    out
}

/// Reads a section written by [`encode`]; checks the structure, not the values.
///
/// # Errors
///
/// [`BundleError::BadChannelSection`] for a length that disagrees with the counts,
/// an unknown manager code, nonzero reserved bytes or a folder name not in UTF-8.
pub(super) fn parse(bytes: &[u8]) -> Result<ChannelConfig<'_>, BundleError> {
    let bad = BundleError::BadChannelSection;
    let fixed = bytes.get(..FIXED_BYTES).ok_or(bad)?;
    let max_file_mib = read_u32(fixed, 0).ok_or(bad)?;
    let &[manager_code, manager_index, folder_bytes, rules, quotas, 0, 0, 0] =
        fixed.get(4..FIXED_BYTES).ok_or(bad)?
    else {
        return Err(bad);
    };
    let manager = match (manager_code, manager_index) {
        (MANAGER_DEFAULT, 0) => Manager::Default,
        (MANAGER_NOBODY, 0) => Manager::Nobody,
        (MANAGER_PERSONALITY, who) => Manager::Personality(who),
        _ => return Err(bad),
    };
    // At most 255 + 255 * 4 + 255 * 12 bytes: no overflow.
    let folder_end = FIXED_BYTES + usize::from(folder_bytes);
    let rules_end = folder_end + usize::from(rules) * RULE_BYTES;
    let quotas_end = rules_end + usize::from(quotas) * QUOTA_BYTES;
    if bytes.len() != quotas_end {
        return Err(bad);
    }
    let release_folder =
        core::str::from_utf8(bytes.get(FIXED_BYTES..folder_end).ok_or(bad)?).map_err(|_| bad)?;
    let mut access = Vec::with_capacity(usize::from(rules));
    for rule in bytes
        .get(folder_end..rules_end)
        .ok_or(bad)?
        .chunks_exact(RULE_BYTES)
    {
        let &[who, owner, may, 0] = rule else {
            return Err(bad);
        };
        access.push(AccessRule {
            who,
            owner,
            may: AccessSet(may),
        });
    }
    let mut quota_rules = Vec::with_capacity(usize::from(quotas));
    for quota in bytes
        .get(rules_end..quotas_end)
        .ok_or(bad)?
        .chunks_exact(QUOTA_BYTES)
    {
        let (&[who, 0, 0, 0], _) = quota.split_first_chunk::<4>().ok_or(bad)? else {
            return Err(bad);
        };
        let limit = |offset| read_u32(quota, offset).map(|value| (value != 0).then_some(value));
        quota_rules.push(QuotaRule {
            who,
            max_mib: limit(4).ok_or(bad)?,
            max_files: limit(8).ok_or(bad)?,
        });
    }
    Ok(ChannelConfig {
        release_folder,
        max_file_mib: (max_file_mib != 0).then_some(max_file_mib),
        manager,
        access,
        quotas: quota_rules,
    })
}

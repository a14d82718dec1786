//! The `[channel]` table: names become personality indices, every refusal points
//! at the key at fault.

use std::ops::Range;

use hyp::channel::fs::Who;
use hyp::channel::policy::{Access, AccessSet};
use hyp::vm::config::channel::{
    self as channel_config, AccessRule, ChannelConfig, ChannelError, ChannelField, Manager,
    QuotaRule, DEFAULT_RELEASE_FOLDER,
};
use serde::Deserialize;
use toml::Spanned;

use super::Source;
use crate::PackError;

/// The `[channel]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelToml {
    release_folder: Option<Spanned<String>>,
    max_file_mib: Option<Spanned<u32>>,
    manager: Option<Spanned<String>>,
    #[serde(default)]
    access: Vec<Spanned<AccessToml>>,
    #[serde(default)]
    quota: Vec<Spanned<QuotaToml>>,
}

/// One `[[channel.access]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessToml {
    who: Spanned<String>,
    on: Spanned<String>,
    may: Spanned<Vec<Spanned<String>>>,
}

/// One `[[channel.quota]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaToml {
    who: Spanned<String>,
    mib: Option<Spanned<u32>>,
    files: Option<Spanned<u32>>,
}

/// The index of the personality called `name`, or an error at its line.
fn who(source: &Source<'_>, names: &[&str], name: &Spanned<String>) -> Result<Who, PackError> {
    names
        .iter()
        .position(|known| *known == name.get_ref())
        .and_then(|index| Who::try_from(index).ok())
        .ok_or_else(|| {
            source.error(
                name.span(),
                format!("no personality is called {:?}", name.get_ref()),
            )
        })
}

/// Turns the table into a [`ChannelConfig`] for the personalities `names` (in config
/// order) and runs [`channel_config::validate_channel`] on it.
///
/// # Errors
///
/// A [`PackError`] at the line of the key at fault: a name that is no personality,
/// an unknown or repeated right, or a rule of `validate_channel`.
pub(crate) fn convert<'a>(
    source: &Source<'_>,
    table: Option<&'a Spanned<ChannelToml>>,
    names: &[&str],
) -> Result<ChannelConfig<'a>, PackError> {
    let Some(spanned) = table else {
        return Ok(ChannelConfig::default());
    };
    let table = spanned.get_ref();
    let manager = match &table.manager {
        None => Manager::Default,
        Some(name) if name.get_ref().is_empty() => Manager::Nobody,
        Some(name) => Manager::Personality(who(source, names, name).map_err(|_| {
            source.error(
                name.span(),
                format!(
                    "manager = {:?}: {}",
                    name.get_ref(),
                    ChannelError::UnknownManager
                ),
            )
        })?),
    };
    let mut access = Vec::with_capacity(table.access.len());
    for rule in &table.access {
        let rule = rule.get_ref();
        let mut may = AccessSet::NONE;
        for right in rule.may.get_ref() {
            let Some(access) = Access::from_name(right.get_ref()) else {
                return Err(source.error(
                    right.span(),
                    format!(
                        "unknown right {:?} (rights are see, read, write, delete)",
                        right.get_ref()
                    ),
                ));
            };
            if may.contains(access) {
                return Err(source.error(
                    right.span(),
                    format!("right {:?} is listed twice", right.get_ref()),
                ));
            }
            may = may.with(access);
        }
        access.push(AccessRule {
            who: who(source, names, &rule.who)?,
            owner: who(source, names, &rule.on)?,
            may,
        });
    }
    let mut quotas = Vec::with_capacity(table.quota.len());
    for quota in &table.quota {
        let quota = quota.get_ref();
        quotas.push(QuotaRule {
            who: who(source, names, &quota.who)?,
            max_mib: quota.mib.as_ref().map(|mib| *mib.get_ref()),
            max_files: quota.files.as_ref().map(|files| *files.get_ref()),
        });
    }
    let channel = ChannelConfig {
        release_folder: table
            .release_folder
            .as_ref()
            .map_or(DEFAULT_RELEASE_FOLDER, |folder| folder.get_ref()),
        max_file_mib: table.max_file_mib.as_ref().map(|mib| *mib.get_ref()),
        manager,
        access,
        quotas,
    };
    channel_config::validate_channel(&channel, names.len()).map_err(|error| {
        let span = error
            .field()
            .and_then(|field| field_span(table, field))
            .or_else(|| match error {
                // The first rule past the limit.
                ChannelError::TooManyRules => table
                    .access
                    .get(channel_config::MAX_ACCESS_RULES)
                    .map(Spanned::span),
                _ => None,
            })
            .unwrap_or_else(|| spanned.span());
        source.error(span, error.to_string())
    })?;
    Ok(channel)
}

/// Where `field` was written, if it was.
fn field_span(table: &ChannelToml, field: ChannelField) -> Option<Range<usize>> {
    let rule = |index: usize| table.access.get(index).map(Spanned::get_ref);
    let quota = |index: usize| table.quota.get(index).map(Spanned::get_ref);
    Some(match field {
        ChannelField::ReleaseFolder => table.release_folder.as_ref()?.span(),
        ChannelField::MaxFileMib => table.max_file_mib.as_ref()?.span(),
        ChannelField::Manager => table.manager.as_ref()?.span(),
        ChannelField::AccessWho(index) => rule(index)?.who.span(),
        ChannelField::AccessOn(index) => rule(index)?.on.span(),
        ChannelField::AccessMay(index) => rule(index)?.may.span(),
        ChannelField::QuotaWho(index) => quota(index)?.who.span(),
        ChannelField::QuotaMib(index) => quota(index)?.mib.as_ref()?.span(),
        ChannelField::QuotaFiles(index) => quota(index)?.files.as_ref()?.span(),
    })
}

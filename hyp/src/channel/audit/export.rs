//! What the manager's agent may read of the log, and the text it gets.
//!
//! # Who sees what
//!
//! - The console (Janus' own hotkey, on the physical machine) shows every record.
//! - The export goes to the manager only (`[channel] manager`, default `work`) and
//!   holds what [`exported_to_manager`] allows: records about objects the manager
//!   labels, crossings (one personality acting on another's object), denials,
//!   and Janus' own records; never another personality's activity on its own
//!   files, names included.
//!
//! # Line format
//!
//! One record per line, fields separated by one space, in this order:
//!
//! ```text
//! <seq> <time> who=<name> op=<op> owner=<name> result=<errno> ino=<n> bytes=<n> [detail=<word>] path=<path> [to=<path>]
//! 42 2026-12-03T14:53:19.000000000Z who=work op=release owner=work result=0 ino=17 bytes=4096 path="/report.pdf" to="/release/report.pdf"
//! ```
//!
//! - `time` is UTC, ISO 8601 with nanoseconds (`@<seconds>` past year 9999).
//! - `who` and `owner` are personality names, `janus` for Janus itself, `-` for no
//!   owner, `#<n>` for an index the config does not have.
//! - `op` is `create mkdir write read rename delete release withdraw denied quota
//!   mount boot scrub`; `detail` is the right refused (`see read write delete`)
//!   for `denied`, the limit (`bytes files size`) for `quota`.
//! - `result` is 0 or the Linux errno the guest got.
//! - Paths are in double quotes; bytes outside printable ASCII, `"` and `\` are
//!   written `\xHH`. A path whose beginning was cut off (it was longer than 255
//!   bytes) is preceded by `...`, outside the quotes.
//! - The last line is `end next=<seq> lost=<n>`: pass `next` as `after_seq` to get
//!   the records after these; `lost` counts records lost to rotation so far (the
//!   agent missed records if `next` was below the oldest one's number).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use super::record::{Op, Record, RecordPath, JANUS};
use crate::channel::fs::{Timespec, Who};
use crate::channel::policy::Access;

/// Most bytes one export returns.
pub const EXPORT_MAX_BYTES: usize = 64 * 1024;
/// Most records one export looks at (filtered ones included).
pub const EXPORT_MAX_RECORDS: usize = 4096;
/// Room kept for the `end` line.
const END_LINE_BYTES: usize = 64;

/// Personality names (config order) and the manager, for rendering and filtering.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    /// Names in config order.
    pub names: Vec<String>,
    /// Who gets the export ([`crate::channel::policy::Policy::manager`]).
    pub manager: Option<Who>,
}

/// One export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// The lines, the `end` line last.
    pub text: String,
    /// The number of the last record looked at: the next `after_seq`.
    pub next_after: u64,
}

/// The privacy rule: may the manager `manager` read `record`?
///
/// 1. A personality's activity on its own objects is private, unless it is the
///    manager's: never exported (names included), whatever the operation.
/// 2. Anything about an object the manager labels is exported.
/// 3. Denials are exported.
/// 4. Crossings (who acts on an object another personality labels) are exported.
/// 5. Without an owner: Janus' own records and the manager's are exported, others
///    are not.
pub fn exported_to_manager(manager: Who, record: &Record) -> bool {
    match record.owner {
        Some(owner) if owner == record.who => owner == manager,
        Some(owner) if owner == manager => true,
        _ if record.op == Op::Denied => true,
        Some(_) => true,
        None => record.who == JANUS || record.who == manager,
    }
}

/// Builds an export line by line within its budget.
pub(super) struct Builder {
    text: String,
    budget: usize,
    looked_at: usize,
    next_after: u64,
    lost: u64,
    line: String,
}

impl Builder {
    /// An export of at most `max_bytes` resuming after `after_seq`.
    pub fn new(max_bytes: usize, after_seq: u64, lost: u64) -> Builder {
        Builder {
            text: String::new(),
            budget: max_bytes
                .min(EXPORT_MAX_BYTES)
                .saturating_sub(END_LINE_BYTES),
            looked_at: 0,
            next_after: after_seq,
            lost,
            line: String::new(),
        }
    }

    /// Offers the next record; false when the export is full (it was not taken).
    pub fn offer(&mut self, record: &Record, labels: &Labels) -> bool {
        if self.looked_at >= EXPORT_MAX_RECORDS {
            return false;
        }
        if labels
            .manager
            .is_some_and(|manager| exported_to_manager(manager, record))
        {
            self.line.clear();
            render_line(record, &labels.names, &mut self.line);
            self.line.push('\n');
            if self.text.len() + self.line.len() > self.budget {
                return false;
            }
            self.text.push_str(&self.line);
        }
        self.looked_at += 1;
        self.next_after = record.seq;
        true
    }

    /// The export with its `end` line.
    pub fn finish(mut self) -> Export {
        let _ = writeln!(self.text, "end next={} lost={}", self.next_after, self.lost);
        Export {
            text: self.text,
            next_after: self.next_after,
        }
    }
}

/// Appends `record` as one line (no newline) in the format above.
pub fn render_line(record: &Record, names: &[String], out: &mut String) {
    let _ = write!(out, "{} ", record.seq);
    render_time(record.time, out);
    out.push_str(" who=");
    render_who(Some(record.who), names, out);
    let _ = write!(out, " op={} owner=", record.op.name());
    render_who(record.owner, names, out);
    let _ = write!(
        out,
        " result={} ino={} bytes={}",
        record.result, record.ino, record.bytes
    );
    let detail = match record.op {
        Op::Denied => Access::ALL
            .into_iter()
            .find(|access| access.bit() == record.detail)
            .map(Access::name),
        Op::QuotaRefused => match record.detail {
            1 => Some("bytes"),
            2 => Some("files"),
            3 => Some("size"),
            _ => None,
        },
        _ => None,
    };
    if let Some(detail) = detail {
        let _ = write!(out, " detail={detail}");
    }
    out.push_str(" path=");
    render_path(&record.path, out);
    if !record.path2.as_bytes().is_empty() {
        out.push_str(" to=");
        render_path(&record.path2, out);
    }
}

/// A personality's name.
fn render_who(who: Option<Who>, names: &[String], out: &mut String) {
    match who {
        None => out.push('-'),
        Some(JANUS) => out.push_str("janus"),
        Some(who) => match names.get(usize::from(who)) {
            Some(name) => out.push_str(name),
            None => {
                let _ = write!(out, "#{who}");
            }
        },
    }
}

/// A quoted, escaped path.
fn render_path(path: &RecordPath, out: &mut String) {
    if path.is_truncated() {
        out.push_str("...");
    }
    out.push('"');
    for &byte in path.as_bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'\\' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('"');
}

/// Last second of year 9999.
const LAST_RENDERED_SECOND: u64 = 253_402_300_799;

/// `time` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn render_time(time: Timespec, out: &mut String) {
    if time.sec > LAST_RENDERED_SECOND {
        let _ = write!(out, "@{}", time.sec);
        return;
    }
    let days = time.sec / 86_400;
    let second_of_day = time.sec % 86_400;
    let (year, month, day) = civil_date(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        time.nsec.min(999_999_999)
    );
}

/// The Gregorian date `days` after 1970-01-01. Counts in 400-year eras of
/// 146,097 days starting on 1 March, so the leap day is the era-year's last day.
fn civil_date(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

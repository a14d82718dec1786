//! What the probe's `probe.after=p9` mode (guests/probe/src/virtio/p9) prints, and
//! how tests read it: one line per malformed 9P message, then a summary.

/// The attacks, in the order the probe runs them.
pub const ATTACKS: [&str; 42] = [
    "size-below-header",
    "size-zero",
    "size-beyond-chain",
    "size-beyond-msize",
    "chain-shorter-than-header",
    "unknown-type-99",
    "unknown-type-255",
    "r-message-type",
    "unknown-fid",
    "reused-newfid",
    "clunk-twice",
    "walk-from-unknown-fid",
    "walk-17-names",
    "name-slash",
    "name-absolute",
    "name-empty",
    "name-nul",
    "name-non-utf8",
    "name-300-bytes",
    "name-dot",
    "dotdot-at-root",
    "walk-up-out-of-share",
    "read-huge-count",
    "write-huge-count",
    "write-beyond-chain",
    "write-beyond-msize",
    "readdir-huge-count",
    "lcreate-dotdot",
    "lcreate-slash",
    "lcreate-300-bytes",
    "mknod",
    "symlink",
    "link",
    "xattrwalk",
    "xattrcreate",
    "flush-unknown-tag",
    "no-writable-bytes",
    "reply-buffer-too-small",
    "tversion-tiny-msize",
    "tversion-huge-msize",
    "tversion-unknown-version",
    "attach-before-version",
];

/// The attacks QEMU 7.2's own 9p server (`-fsdev local,security_model=none`)
/// answers otherwise than the probe asks of Janus, measured natively: it ignores
/// the size field (serving the Tgetattr inside), stops the device
/// (DEVICE_NEEDS_RESET) on a chain shorter than a header, on a Tread count that
/// does not fit the reply buffer and on a Twrite count past the chain, creates
/// the symlink, accepts Txattrcreate, and serves Tattach after a device reset
/// without a new Tversion.
pub const QEMU_DIFFERS: [&str; 11] = [
    "size-below-header",
    "size-zero",
    "size-beyond-chain",
    "size-beyond-msize",
    "chain-shorter-than-header",
    "read-huge-count",
    "write-huge-count",
    "write-beyond-chain",
    "symlink",
    "xattrcreate",
    "attach-before-version",
];

/// One `p9 attack=...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttackLine {
    /// The attack's name.
    pub name: String,
    /// What came back (`Rlerror(22) len=11`, `type25 len=160`, `needs-reset`, ...).
    pub reply: String,
    /// Whether the answer is one a correct server may give (`verdict=ok`).
    pub verdict_ok: bool,
    /// Why not, when not (`not-an-error`, `no-reply`, ...).
    pub why: Option<String>,
    /// Whether the device had to be reset afterwards (`reinit=yes`).
    pub reinit: bool,
    /// Whether the good request after it worked (`good-after=ok`).
    pub good_after: bool,
}

/// The attack lines in `output` (the console), in order.
pub fn attack_lines(output: &str) -> Vec<AttackLine> {
    output
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find("p9 attack=")? + "p9 attack=".len()..];
            let rest = rest.trim_end_matches('\r');
            let name = rest.split(' ').next()?.to_owned();
            let reply = rest
                .split(" reply=")
                .nth(1)?
                .split(" tag=")
                .next()?
                .to_owned();
            let verdict = rest.split(" verdict=").nth(1)?.split(' ').next()?;
            let why = verdict
                .strip_prefix("BAD(")
                .and_then(|why| why.strip_suffix(')'))
                .map(str::to_owned);
            Some(AttackLine {
                name,
                reply,
                verdict_ok: verdict == "ok",
                why,
                reinit: rest.contains(" reinit=yes"),
                good_after: rest.ends_with("good-after=ok"),
            })
        })
        .collect()
}

/// The summary line's `N of M` and whether it says the device still works.
pub fn summary(output: &str) -> Option<(u32, u32, bool)> {
    let line = output
        .lines()
        .find(|line| line.contains("p9 attacks done: "))?;
    let rest = &line[line.find("p9 attacks done: ")? + "p9 attacks done: ".len()..];
    let mut words = rest.split(' ');
    let passed = words.next()?.parse().ok()?;
    let _of = words.next()?;
    let tried = words.next()?.parse().ok()?;
    Some((passed, tried, rest.contains("device still works")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_lines_and_the_summary_parse() {
        let output = "work: p9 good: version=ok attach=ok getattr=ok\r\n\
            work: p9 attack=size-zero reply=type25 len=160 tag=ok verdict=BAD(not-an-error) good-after=ok\r\n\
            work: p9 attack=no-writable-bytes reply=needs-reset tag=- verdict=ok reinit=yes good-after=ok\n\
            work: p9 attacks done: 1 of 2 answered as a correct server may, device still works\n";
        let lines = attack_lines(output);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].name, "size-zero");
        assert_eq!(lines[0].reply, "type25 len=160");
        assert!(!lines[0].verdict_ok);
        assert_eq!(lines[0].why.as_deref(), Some("not-an-error"));
        assert!(lines[1].verdict_ok && lines[1].reinit && lines[1].good_after);
        assert_eq!(summary(output), Some((1, 2, true)));
        assert_eq!(summary("nothing"), None);
    }
}

//! The malformed 9P2000.L messages. Each must get what a correct server may
//! answer (mostly an Rlerror with the request's tag; DATA-PATH-RESEARCH 2.6 lists
//! the rules), never a hang, and the session must serve a good request after it.

use core::fmt;

use super::super::driver::Outcome;
use super::wire::{kind, same_object, Msg, Reply, Session, HEADER, ROOT};
use crate::say;

/// What an attack's checks concluded: `Err` says why the answer is wrong.
type Verdict = Result<(), &'static str>;

/// Fids the attacks use besides the root.
const FILE: u32 = 10;
/// The file the attacks read and write.
const FILE_NAME: &[u8] = b"probe-p9-file";
/// 9P2000.L open flags (Linux' generic values, `P9_DOTL_*`).
const O_RDWR: u32 = 2;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;
/// Bytes of Rread's and Rreaddir's header (size, type, tag, count).
const IO_HEADER: u32 = HEADER + 4;
/// The most msize a server should grant (what Linux caps virtio at).
const MSIZE_CAP: u32 = 512_000;

struct Tally {
    tried: u32,
    passed: u32,
    works: bool,
}

/// A reply as an attack line shows it.
struct Show(Reply);

impl fmt::Display for Show {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reply = self.0;
        match reply.outcome {
            Outcome::Done { len, .. } if reply.is_error() => {
                write!(formatter, "Rlerror({}) len={len}", reply.errno)
            }
            Outcome::Done { len, .. } if reply.has_header() => {
                write!(formatter, "type{} len={len}", reply.kind)
            }
            Outcome::Done { len, .. } => write!(formatter, "none len={len}"),
            other => formatter.write_str(other.word()),
        }
    }
}

/// An Rlerror with `tag`.
fn error(reply: &Reply, tag: u16) -> Verdict {
    if !reply.has_header() {
        return Err("no-reply");
    }
    if !reply.is_error() {
        return Err("not-an-error");
    }
    if reply.tag != tag {
        return Err("wrong-tag");
    }
    Ok(())
}

/// An Rlerror with `tag`, or (for a message too broken to read a tag from) the
/// chain completed with nothing written.
fn error_or_nothing(reply: &Reply, tag: u16) -> Verdict {
    if matches!(reply.outcome, Outcome::Done { len: 0, .. }) {
        return Ok(());
    }
    error(reply, tag)
}

/// Reply `expected` with `tag`.
fn is(reply: &Reply, expected: u8, tag: u16) -> Verdict {
    if !reply.is(expected) {
        return Err("unexpected-reply");
    }
    if reply.tag != tag {
        return Err("wrong-tag");
    }
    Ok(())
}

/// Runs one attack, recovers the session when the device stopped, checks the
/// good request and prints the attack's line.
fn attack(
    session: &mut Session,
    tally: &mut Tally,
    name: &str,
    run: impl FnOnce(&mut Session) -> (Reply, u16, Verdict),
) {
    if !tally.works {
        return;
    }
    let (reply, tag, verdict) = run(session);
    let stopped = matches!(reply.outcome, Outcome::NeedsReset | Outcome::Timeout)
        || session.driver.needs_reset();
    let recovered = !stopped || session.recover();
    let good = recovered && session.good();
    tally.tried += 1;
    if verdict.is_ok() {
        tally.passed += 1;
    }
    tally.works &= good;
    let tag_word = if !reply.has_header() {
        "-"
    } else if reply.tag == tag {
        "ok"
    } else {
        "bad"
    };
    match verdict {
        Ok(()) => say!(
            "p9 attack={name} reply={} tag={tag_word} verdict=ok{} good-after={}",
            Show(reply),
            if stopped { " reinit=yes" } else { "" },
            if good { "ok" } else { "fail" }
        ),
        Err(why) => say!(
            "p9 attack={name} reply={} tag={tag_word} verdict=BAD({why}){} good-after={}",
            Show(reply),
            if stopped { " reinit=yes" } else { "" },
            if good { "ok" } else { "fail" }
        ),
    }
    if !good {
        say!("p9 attacks stopped after attack={name}: the device no longer works");
    }
}

/// A Tgetattr of the root, to bend.
fn getattr_msg(session: &mut Session) -> Msg {
    let tag = session.tag();
    let mut msg = Msg::new(kind::TGETATTR, tag);
    msg.u32(ROOT).u64(0x3fff);
    msg
}

/// Sends `msg` and expects an Rlerror (or nothing, when `or_nothing`).
fn expect_error(session: &mut Session, msg: &Msg, or_nothing: bool) -> (Reply, u16, Verdict) {
    let reply = session.call(msg);
    let verdict = if or_nothing {
        error_or_nothing(&reply, msg.tag)
    } else {
        error(&reply, msg.tag)
    };
    (reply, msg.tag, verdict)
}

/// A walk from the root to `newfid` through `names` that must fail; a newfid a
/// lenient server made anyway is clunked (and the walk counts as wrong).
fn bad_walk(session: &mut Session, newfid: u32, names: &[&[u8]]) -> (Reply, u16, Verdict) {
    let (reply, tag) = session.walk(ROOT, newfid, names);
    let mut verdict = error(&reply, tag);
    let (clunk, _) = session.clunk(newfid);
    if clunk.is(kind::TCLUNK + 1) && verdict.is_ok() {
        verdict = Err("newfid-made");
    }
    (reply, tag, verdict)
}

/// A walk up from the root: an error, or every qid the root's (clamped at the
/// share's root), and the new fid the root too.
fn walk_up(session: &mut Session, newfid: u32, names: &[&[u8]]) -> (Reply, u16, Verdict) {
    let (reply, tag) = session.walk(ROOT, newfid, names);
    if reply.is_error() {
        return (
            reply,
            tag,
            if reply.tag == tag {
                Ok(())
            } else {
                Err("wrong-tag")
            },
        );
    }
    let mut verdict = is(&reply, kind::TWALK + 1, tag);
    if verdict.is_ok() {
        let count = usize::from(reply.u16_at(7));
        if count != names.len() {
            verdict = Err("partial-walk");
        }
        for index in 0..count.min(16) {
            if !same_object(&reply.qid_at(9 + 13 * index as u64), &session.root_qid) {
                verdict = Err("left-the-root");
            }
        }
        let (attr, _) = session.getattr(newfid);
        if !same_object(&attr.qid_at(15), &session.root_qid) {
            verdict = Err("fid-not-root");
        }
    }
    session.clunk(newfid);
    (reply, tag, verdict)
}

/// A create in a clone of the root named `name` that must fail.
fn bad_create(session: &mut Session, fid: u32, name: &[u8]) -> (Reply, u16, Verdict) {
    session.walk(ROOT, fid, &[]);
    let tag = session.tag();
    let mut msg = Msg::new(kind::TLCREATE, tag);
    msg.u32(fid)
        .string(name)
        .u32(O_RDWR | O_CREAT)
        .u32(0o644)
        .u32(0);
    let (reply, tag, verdict) = expect_error(session, &msg, false);
    session.clunk(fid);
    (reply, tag, verdict)
}

/// Twrite of `count` claimed bytes at offset 0 of [`FILE`], with `data` bytes of data.
fn write_msg(session: &mut Session, count: u32, data: usize) -> Msg {
    let tag = session.tag();
    let mut msg = Msg::new(kind::TWRITE, tag);
    msg.u32(FILE).u64(0).u32(count).fill(b'w', data);
    msg
}

/// An error, or Rwrite of at most `most` bytes.
fn error_or_written(reply: &Reply, tag: u16, most: u32) -> Verdict {
    if reply.is(kind::TWRITE + 1) && reply.tag == tag {
        return if reply.u32_at(7) <= most {
            Ok(())
        } else {
            Err("wrote-more-than-sent")
        };
    }
    error_or_nothing(reply, tag)
}

/// Something a lenient server made, removed again (the verdict says it was made).
fn made(session: &mut Session, reply: &Reply, expected: u8, name: &[u8]) -> bool {
    let was = reply.is(expected);
    if was {
        session.unlink(name);
    }
    was
}

/// Runs every attack; returns (answered as a correct server may, tried, worked after each).
pub fn run_all(session: &mut Session) -> (u32, u32, bool) {
    let mut tally = Tally {
        tried: 0,
        passed: 0,
        works: true,
    };
    let t = &mut tally;

    // Framing.
    attack(session, t, "size-below-header", |s| {
        let mut msg = getattr_msg(s);
        msg.size_field = Some(5);
        expect_error(s, &msg, true)
    });
    attack(session, t, "size-zero", |s| {
        let mut msg = getattr_msg(s);
        msg.size_field = Some(0);
        expect_error(s, &msg, true)
    });
    attack(session, t, "size-beyond-chain", |s| {
        let mut msg = getattr_msg(s);
        msg.size_field = Some(msg.len() + 1000);
        expect_error(s, &msg, true)
    });
    attack(session, t, "size-beyond-msize", |s| {
        let msize = s.msize;
        let mut msg = getattr_msg(s);
        msg.fill(0, (msize + 100 - msg.len()) as usize);
        expect_error(s, &msg, true)
    });
    attack(session, t, "chain-shorter-than-header", |s| {
        let mut msg = getattr_msg(s);
        msg.chain_len = Some(4);
        expect_error(s, &msg, true)
    });
    for (name, number) in [
        ("unknown-type-99", 99u8),
        ("unknown-type-255", 255),
        ("r-message-type", 25),
    ] {
        attack(session, t, name, |s| {
            let tag = s.tag();
            let mut msg = Msg::new(number, tag);
            msg.u32(ROOT).u64(0);
            expect_error(s, &msg, false)
        });
    }

    // Fids.
    attack(session, t, "unknown-fid", |s| {
        let (reply, tag) = s.getattr(0xdead);
        (reply, tag, error(&reply, tag))
    });
    attack(session, t, "reused-newfid", |s| {
        let (first, _) = s.walk(ROOT, 2, &[]);
        let (reply, tag) = s.walk(ROOT, 2, &[]);
        let verdict = if first.is(kind::TWALK + 1) {
            error(&reply, tag)
        } else {
            Err("setup")
        };
        s.clunk(2);
        (reply, tag, verdict)
    });
    attack(session, t, "clunk-twice", |s| {
        s.walk(ROOT, 3, &[]);
        let (first, _) = s.clunk(3);
        let (reply, tag) = s.clunk(3);
        let verdict = if first.is(kind::TCLUNK + 1) {
            error(&reply, tag)
        } else {
            Err("setup")
        };
        (reply, tag, verdict)
    });
    attack(session, t, "walk-from-unknown-fid", |s| {
        let (reply, tag) = s.walk(0xbeef, 4, &[]);
        let verdict = error(&reply, tag);
        s.clunk(4);
        (reply, tag, verdict)
    });

    // Names.
    attack(session, t, "walk-17-names", |s| {
        bad_walk(s, 4, &[b"x".as_slice(); 17])
    });
    attack(session, t, "name-slash", |s| bad_walk(s, 4, &[b"a/b"]));
    attack(session, t, "name-absolute", |s| bad_walk(s, 4, &[b"/etc"]));
    attack(session, t, "name-empty", |s| bad_walk(s, 4, &[b""]));
    attack(session, t, "name-nul", |s| bad_walk(s, 4, &[b"a\0b"]));
    attack(session, t, "name-non-utf8", |s| {
        bad_walk(s, 4, &[b"\xff\xfe"])
    });
    attack(session, t, "name-300-bytes", |s| {
        bad_walk(s, 4, &[&[b'n'; 300]])
    });
    attack(session, t, "name-dot", |s| walk_up(s, 5, &[b"."]));
    attack(session, t, "dotdot-at-root", |s| walk_up(s, 5, &[b".."]));
    attack(session, t, "walk-up-out-of-share", |s| {
        walk_up(s, 6, &[b"..".as_slice(); 16])
    });

    // A file of the probe's own, for the I/O attacks.
    session.walk(ROOT, FILE, &[]);
    let tag = session.tag();
    let mut create = Msg::new(kind::TLCREATE, tag);
    create
        .u32(FILE)
        .string(FILE_NAME)
        .u32(O_RDWR | O_CREAT | O_TRUNC)
        .u32(0o644)
        .u32(0);
    let created = session.call(&create).is(kind::TLCREATE + 1);
    let msg = write_msg(session, 16, 16);
    let wrote = session.call(&msg).is(kind::TWRITE + 1);
    let file_ok = created && wrote;
    say!("p9 file: create={} write={}", ok(created), ok(wrote));

    attack(session, t, "read-huge-count", |s| {
        let tag = s.tag();
        let mut msg = Msg::new(kind::TREAD, tag);
        msg.u32(FILE).u64(0).u32(u32::MAX);
        let reply = s.call(&msg);
        let verdict = if !file_ok {
            Err("setup")
        } else if reply.is(kind::TREAD + 1) && reply.tag == tag {
            let count = reply.u32_at(7);
            if count > s.msize - IO_HEADER || reply.written() != IO_HEADER + count {
                Err("count-past-msize")
            } else {
                Ok(())
            }
        } else {
            error(&reply, tag)
        };
        (reply, tag, verdict)
    });
    attack(session, t, "write-huge-count", |s| {
        let msg = write_msg(s, u32::MAX, 16);
        let reply = s.call(&msg);
        (reply, msg.tag, error_or_written(&reply, msg.tag, 16))
    });
    attack(session, t, "write-beyond-chain", |s| {
        let mut msg = write_msg(s, 1000, 16);
        msg.size_field = Some(msg.len() + 984);
        let reply = s.call(&msg);
        (reply, msg.tag, error_or_written(&reply, msg.tag, 16))
    });
    attack(session, t, "write-beyond-msize", |s| {
        let count = s.msize + 808;
        let msg = write_msg(s, count, count as usize);
        let reply = s.call(&msg);
        (reply, msg.tag, error_or_nothing(&reply, msg.tag))
    });
    attack(session, t, "readdir-huge-count", |s| {
        s.walk(ROOT, 11, &[]);
        let tag = s.tag();
        let mut open = Msg::new(kind::TLOPEN, tag);
        open.u32(11).u32(0);
        let opened = s.call(&open).is(kind::TLOPEN + 1);
        let tag = s.tag();
        let mut msg = Msg::new(kind::TREADDIR, tag);
        msg.u32(11).u64(0).u32(u32::MAX);
        let reply = s.call(&msg);
        let verdict = if !opened {
            Err("setup")
        } else if reply.is(kind::TREADDIR + 1) && reply.tag == tag {
            let count = reply.u32_at(7);
            if count > s.msize - IO_HEADER || reply.written() != IO_HEADER + count {
                Err("count-past-msize")
            } else {
                Ok(())
            }
        } else {
            error(&reply, tag)
        };
        s.clunk(11);
        (reply, tag, verdict)
    });

    // Creating what must not be created.
    attack(session, t, "lcreate-dotdot", |s| bad_create(s, 12, b".."));
    attack(session, t, "lcreate-slash", |s| bad_create(s, 12, b"a/b"));
    attack(session, t, "lcreate-300-bytes", |s| {
        bad_create(s, 12, &[b'c'; 300])
    });
    attack(session, t, "mknod", |s| {
        let tag = s.tag();
        let mut msg = Msg::new(kind::TMKNOD, tag);
        // A character device 1:3 (/dev/null's numbers): no device nodes, ever.
        msg.u32(ROOT)
            .string(b"probe-node")
            .u32(0o020_666)
            .u32(1)
            .u32(3)
            .u32(0);
        let reply = s.call(&msg);
        let verdict = if made(s, &reply, kind::TMKNOD + 1, b"probe-node") {
            Err("node-made")
        } else {
            error(&reply, tag)
        };
        (reply, tag, verdict)
    });
    attack(session, t, "symlink", |s| {
        let tag = s.tag();
        let mut msg = Msg::new(kind::TSYMLINK, tag);
        msg.u32(ROOT)
            .string(b"probe-link")
            .string(b"/etc/passwd")
            .u32(0);
        let reply = s.call(&msg);
        let verdict = if made(s, &reply, kind::TSYMLINK + 1, b"probe-link") {
            Err("link-made")
        } else {
            error(&reply, tag)
        };
        (reply, tag, verdict)
    });
    attack(session, t, "link", |s| {
        let tag = s.tag();
        let mut msg = Msg::new(kind::TLINK, tag);
        msg.u32(ROOT).u32(FILE).string(b"probe-hard-link");
        let reply = s.call(&msg);
        let verdict = if made(s, &reply, kind::TLINK + 1, b"probe-hard-link") {
            Err("link-made")
        } else {
            error(&reply, tag)
        };
        (reply, tag, verdict)
    });
    attack(session, t, "xattrwalk", |s| {
        let tag = s.tag();
        let mut msg = Msg::new(kind::TXATTRWALK, tag);
        msg.u32(ROOT).u32(13).string(b"security.capability");
        let reply = s.call(&msg);
        let verdict = error(&reply, tag);
        s.clunk(13);
        (reply, tag, verdict)
    });
    attack(session, t, "xattrcreate", |s| {
        s.walk(ROOT, 14, &[]);
        let tag = s.tag();
        let mut msg = Msg::new(kind::TXATTRCREATE, tag);
        msg.u32(14).string(b"user.probe").u64(8).u32(0);
        let reply = s.call(&msg);
        let verdict = error(&reply, tag);
        s.clunk(14);
        (reply, tag, verdict)
    });

    // The queue and the reply buffer.
    attack(session, t, "flush-unknown-tag", |s| {
        let tag = s.tag();
        let mut msg = Msg::new(kind::TFLUSH, tag);
        msg.u16(0x7777);
        let reply = s.call(&msg);
        (reply, tag, is(&reply, kind::TFLUSH + 1, tag))
    });
    attack(session, t, "no-writable-bytes", |s| {
        let msg = getattr_msg(s);
        let reply = s.send(&msg, 0);
        let verdict = match reply.outcome {
            Outcome::Done { len: 0, .. } | Outcome::NeedsReset => Ok(()),
            Outcome::Done { .. } => Err("wrote-somewhere"),
            _ => Err("no-answer"),
        };
        (reply, msg.tag, verdict)
    });
    attack(session, t, "reply-buffer-too-small", |s| {
        let msg = getattr_msg(s);
        let room = HEADER + 4;
        let reply = s.send(&msg, room);
        let verdict = if !s.untouched(room, room + 64) {
            Err("wrote-past-the-buffer")
        } else {
            match reply.outcome {
                Outcome::Done { len: 0, .. } | Outcome::NeedsReset => Ok(()),
                Outcome::Done { len, .. } if len <= room => error(&reply, msg.tag),
                Outcome::Done { .. } => Err("claims-more-than-the-buffer"),
                _ => Err("no-answer"),
            }
        };
        (reply, msg.tag, verdict)
    });

    // The file is done with.
    session.clunk(FILE);
    session.unlink(FILE_NAME);

    // Sessions: each of these ends the session, so a new one starts after it.
    attack(session, t, "tversion-tiny-msize", |s| {
        let reply = s.version(16);
        let verdict = if reply.is(kind::TVERSION + 1) {
            // Version "unknown" refuses; otherwise the msize must not be one
            // that cannot carry an Rlerror.
            if reply.u16_at(11) == 7 || s.msize >= 4096 {
                Ok(())
            } else {
                Err("tiny-msize-granted")
            }
        } else {
            error(&reply, super::wire::NOTAG)
        };
        let restarted = s.start() == (true, true);
        (
            reply,
            super::wire::NOTAG,
            if restarted {
                verdict
            } else {
                Err("no-new-session")
            },
        )
    });
    attack(session, t, "tversion-huge-msize", |s| {
        let reply = s.version(u32::MAX);
        let verdict = if reply.is(kind::TVERSION + 1) && s.msize <= MSIZE_CAP {
            Ok(())
        } else if reply.is(kind::TVERSION + 1) {
            Err("msize-above-512000")
        } else {
            error(&reply, super::wire::NOTAG)
        };
        let restarted = s.start() == (true, true);
        (
            reply,
            super::wire::NOTAG,
            if restarted {
                verdict
            } else {
                Err("no-new-session")
            },
        )
    });
    attack(session, t, "tversion-unknown-version", |s| {
        let mut msg = Msg::new(kind::TVERSION, super::wire::NOTAG);
        msg.u32(super::wire::MSIZE).string(b"9P2000.X");
        let reply = s.call(&msg);
        // Rversion "unknown" (9P's refusal) or an Rlerror.
        let verdict = if reply.is(kind::TVERSION + 1) {
            if reply.u16_at(11) == 7 && reply.u8_at(13) == b'u' {
                Ok(())
            } else {
                Err("version-accepted")
            }
        } else {
            error(&reply, super::wire::NOTAG)
        };
        let restarted = s.start() == (true, true);
        (
            reply,
            super::wire::NOTAG,
            if restarted {
                verdict
            } else {
                Err("no-new-session")
            },
        )
    });
    attack(session, t, "attach-before-version", |s| {
        // A device reset ends the session; the next message is not a Tversion.
        let reset = s.driver.recover();
        let reply = s.attach();
        let tag = reply.tag;
        let verdict = if !reset {
            Err("setup")
        } else if reply.is_error() {
            Ok(())
        } else {
            Err("served-without-version")
        };
        let restarted = s.start() == (true, true);
        (
            reply,
            tag,
            if restarted {
                verdict
            } else {
                Err("no-new-session")
            },
        )
    });
    (tally.passed, tally.tried, tally.works)
}

/// `ok` or `fail`.
fn ok(done: bool) -> &'static str {
    if done {
        "ok"
    } else {
        "fail"
    }
}

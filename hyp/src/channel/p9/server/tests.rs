//! The server against a fake client over [`MemFs`]: Linux 6.1's sequences (research
//! 2.3) message by message, then hostile ones.

use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::channel::fs::Errno;
use crate::channel::p9::memfs::{MemFs, ROOT};
use crate::channel::p9::wire::{
    decode_reply, encode_request, Reply, Request, Setattr, WalkNames, NOFID, NOTAG,
    WRITE_HEADER_BYTES,
};

/// A request and reply as byte buffers.
pub(crate) struct VecExchange {
    pub request: Vec<u8>,
    pub reply: Vec<u8>,
}

impl Exchange for VecExchange {
    fn request_len(&self) -> usize {
        self.request.len()
    }
    fn read_request(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), ExchangeError> {
        let part = self
            .request
            .get(offset..offset + buf.len())
            .ok_or(ExchangeError)?;
        buf.copy_from_slice(part);
        Ok(())
    }
    fn reply_capacity(&self) -> usize {
        self.reply.len()
    }
    fn write_reply(&mut self, offset: usize, data: &[u8]) -> Result<(), ExchangeError> {
        let part = self
            .reply
            .get_mut(offset..offset + data.len())
            .ok_or(ExchangeError)?;
        part.copy_from_slice(data);
        Ok(())
    }
}

/// A fake 9P client.
struct Client {
    server: Server,
    fs: MemFs,
    tag: u16,
    room: usize,
}

/// What came back: the raw bytes (trimmed to the reply).
struct Answer(Vec<u8>);

impl Answer {
    fn errno(&self) -> Option<u32> {
        let mut qids = Default::default();
        match decode_reply(&self.0, &mut qids) {
            Ok((_, Reply::Lerror { ecode })) => Some(ecode),
            _ => None,
        }
    }
    fn ok(&self) -> &Self {
        assert_eq!(self.errno(), None, "unexpected error reply");
        self
    }
    fn walk_len(&self) -> usize {
        let mut qids = Default::default();
        match decode_reply(&self.0, &mut qids) {
            Ok((_, Reply::Walk { qids })) => qids.len(),
            other => panic!("not Rwalk: {other:?}"),
        }
    }
    fn reply(&self, f: impl FnOnce(&Reply<'_>)) {
        let mut qids = Default::default();
        let (_, reply) = decode_reply(&self.0, &mut qids).expect("well-formed reply");
        f(&reply);
    }
    /// The data of an Rread / Rreaddir.
    fn data(&self) -> &[u8] {
        &self.0[READ_HEADER_BYTES..]
    }
}

const MSIZE: u32 = 131_072;

impl Client {
    fn new() -> Self {
        Client {
            server: Server::new(0),
            fs: MemFs::new(),
            tag: 0,
            room: MSIZE as usize,
        }
    }

    /// Version + attach fid 0 (mount).
    fn mounted() -> Self {
        let mut client = Client::new();
        client.version(MSIZE).ok();
        client.attach(0).ok();
        client.getattr(0).ok();
        client
    }

    fn raw(&mut self, request: Vec<u8>) -> Answer {
        let mut exchange = VecExchange {
            request,
            reply: vec![0xee; self.room],
        };
        let len = self.server.handle(&mut self.fs, &mut exchange);
        let mut reply = exchange.reply;
        reply.truncate(len);
        if len > 0 {
            let size = u32::from_le_bytes(reply[..4].try_into().unwrap()) as usize;
            assert_eq!(size, len, "size field matches bytes written");
            assert!(len <= self.server.msize() as usize);
        }
        Answer(reply)
    }

    fn send(&mut self, request: Request<'_>) -> Answer {
        self.send_with(request, &[])
    }

    fn send_with(&mut self, request: Request<'_>, payload: &[u8]) -> Answer {
        self.tag = self.tag.wrapping_add(1) % NOTAG;
        let mut bytes = vec![0u8; 16384];
        let len = encode_request(self.tag, &request, &mut bytes).unwrap();
        bytes.truncate(len);
        bytes.extend_from_slice(payload);
        let tag = self.tag;
        let answer = self.raw(bytes);
        if !answer.0.is_empty() {
            assert_eq!(u16::from_le_bytes([answer.0[5], answer.0[6]]), tag);
        }
        answer
    }

    fn version(&mut self, msize: u32) -> Answer {
        self.send(Request::Version {
            msize,
            version: "9P2000.L",
        })
    }
    fn attach(&mut self, fid: u32) -> Answer {
        self.send(Request::Attach {
            fid,
            afid: NOFID,
            uname: "root",
            aname: "",
            n_uname: 0,
        })
    }
    fn getattr(&mut self, fid: u32) -> Answer {
        self.send(Request::Getattr {
            fid,
            request_mask: 0x3fff,
        })
    }
    fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Answer {
        self.send(Request::Walk {
            fid,
            newfid,
            names: WalkNames::new(names).unwrap(),
        })
    }
    fn lopen(&mut self, fid: u32, flags: u32) -> Answer {
        self.send(Request::Lopen { fid, flags })
    }
    fn lcreate(&mut self, fid: u32, name: &str, flags: u32) -> Answer {
        self.send(Request::Lcreate {
            fid,
            name,
            flags,
            mode: 0o100644,
            gid: 0,
        })
    }
    fn write(&mut self, fid: u32, offset: u64, data: &[u8]) -> Answer {
        self.send_with(
            Request::Write {
                fid,
                offset,
                count: data.len() as u32,
            },
            data,
        )
    }
    fn read(&mut self, fid: u32, offset: u64, count: u32) -> Answer {
        self.send(Request::Read { fid, offset, count })
    }
    fn readdir(&mut self, fid: u32, offset: u64, count: u32) -> Answer {
        self.send(Request::Readdir { fid, offset, count })
    }
    fn clunk(&mut self, fid: u32) -> Answer {
        self.send(Request::Clunk { fid })
    }
    fn mkdir(&mut self, dfid: u32, name: &str) -> Answer {
        self.send(Request::Mkdir {
            dfid,
            name,
            mode: 0o40755,
            gid: 0,
        })
    }
    fn unlinkat(&mut self, dirfid: u32, name: &str, flags: u32) -> Answer {
        self.send(Request::Unlinkat {
            dirfid,
            name,
            flags,
        })
    }

    /// Every entry name of a directory, through repeated Treaddir (as `ls` does).
    fn list(&mut self, dir_fid: u32, count: u32) -> Vec<(String, u64)> {
        self.walk(dir_fid, 90, &[]).ok();
        self.lopen(90, 0o200000).ok();
        let mut names = Vec::new();
        let mut offset = 0;
        loop {
            let answer = self.readdir(90, offset, count);
            let data = answer.ok().data().to_vec();
            if data.is_empty() {
                break;
            }
            let mut at = 0;
            while at < data.len() {
                let cookie = u64::from_le_bytes(data[at + 13..at + 21].try_into().unwrap());
                let len = u16::from_le_bytes([data[at + 22], data[at + 23]]) as usize;
                let name = core::str::from_utf8(&data[at + 24..at + 24 + len]).unwrap();
                names.push((String::from(name), cookie));
                offset = cookie;
                at += 24 + len;
            }
        }
        self.clunk(90).ok();
        names
    }

    /// Creates `name` in the root with `data`, as `echo >` does (fid 10 walk ENOENT,
    /// clone, create, write, clunk).
    fn create_file(&mut self, name: &str, data: &[u8]) {
        assert_eq!(self.walk(0, 10, &[name]).errno(), Some(Errno::ENOENT.0));
        self.walk(0, 10, &[]).ok();
        self.lcreate(10, name, 0o1 | 0o100 | 0o1000).ok();
        if !data.is_empty() {
            self.write(10, 0, data).ok().reply(|reply| {
                assert_eq!(
                    *reply,
                    Reply::Write {
                        count: data.len() as u32
                    }
                )
            });
        }
        self.clunk(10).ok();
    }

    /// Reads a whole file from the root as `cat` does.
    fn cat(&mut self, name: &str) -> Vec<u8> {
        self.walk(0, 11, &[name]).ok();
        self.lopen(11, 0).ok();
        let mut out = Vec::new();
        loop {
            let answer = self.read(11, out.len() as u64, 4096);
            let data = answer.ok().data().to_vec();
            if data.is_empty() {
                break;
            }
            out.extend_from_slice(&data);
        }
        self.clunk(11).ok();
        out
    }
}

use alloc::string::String;

#[test]
fn mount_answers_version_attach_getattr() {
    let mut c = Client::new();
    c.version(MSIZE).reply(|r| {
        assert_eq!(
            *r,
            Reply::Version {
                msize: MSIZE,
                version: "9P2000.L"
            }
        )
    });
    c.attach(0).ok();
    c.getattr(0).reply(|r| match r {
        Reply::Getattr(g) => {
            assert_eq!(g.qid.path, ROOT);
            assert_eq!(g.mode & 0o170000, 0o040000);
            assert_eq!(g.blksize, 4096);
        }
        other => panic!("{other:?}"),
    });
}

#[test]
fn msize_is_the_smaller_of_the_two_and_small_ones_are_refused() {
    let mut c = Client::new();
    c.version(1 << 20).reply(|r| {
        assert_eq!(
            *r,
            Reply::Version {
                msize: MAX_MSIZE,
                version: "9P2000.L"
            }
        )
    });
    c.version(4095).reply(|r| {
        assert!(matches!(
            r,
            Reply::Version {
                version: "unknown",
                ..
            }
        ))
    });
    assert_eq!(c.attach(0).errno(), Some(Errno::EPROTO.0), "no session");
    c.send(Request::Version {
        msize: MSIZE,
        version: "9P2000.u",
    })
    .reply(|r| {
        assert!(matches!(
            r,
            Reply::Version {
                version: "unknown",
                ..
            }
        ))
    });
}

#[test]
fn linux_sequences_create_cat_cp_dd_mv_chmod_rm_rmdir_df() {
    let mut c = Client::mounted();
    // second attach per uid, ls of the empty root
    c.attach(1).ok();
    assert!(c.list(1, 8168).is_empty());
    // mkdir: walk ENOENT, walk clone, mkdir, clunk
    assert_eq!(c.walk(0, 2, &["dir"]).errno(), Some(Errno::ENOENT.0));
    c.walk(0, 2, &[]).ok();
    c.mkdir(2, "dir").ok();
    c.clunk(2).ok();
    // echo > and cat
    c.create_file("a.txt", b"hello\n");
    assert_eq!(c.cat("a.txt"), b"hello\n");
    // cp 300 KiB in 4 KiB writes
    let big: Vec<u8> = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
    c.walk(0, 12, &[]).ok();
    c.lcreate(12, "big", 0o1).ok();
    for (i, chunk) in big.chunks(4096).enumerate() {
        c.write(12, (i * 4096) as u64, chunk).ok();
    }
    c.clunk(12).ok();
    assert_eq!(c.cat("big"), big);
    // dd bs=1M conv=fsync: 126,976-byte writes then Tfsync
    c.walk(0, 13, &[]).ok();
    c.lcreate(13, "dd", 0o1).ok();
    let mb = vec![7u8; 1 << 20];
    let mut at = 0;
    while at < mb.len() {
        let n = 126_976.min(mb.len() - at);
        c.write(13, at as u64, &mb[at..at + n]).ok();
        at += n;
    }
    c.send(Request::Fsync {
        fid: 13,
        datasync: 0,
    })
    .ok();
    c.clunk(13).ok();
    assert_eq!(c.fs.calls["fsync"], 1);
    // mv a.txt dir/b.txt
    c.walk(0, 14, &["dir"]).ok();
    c.send(Request::Renameat {
        olddirfid: 0,
        oldname: "a.txt",
        newdirfid: 14,
        newname: "b.txt",
    })
    .ok();
    c.walk(14, 15, &["b.txt"]).ok();
    // chmod
    c.send(Request::Setattr {
        fid: 15,
        attr: Setattr {
            valid: 0x1,
            mode: 0o600,
            ..Setattr::default()
        },
    })
    .ok();
    c.getattr(15).reply(|r| match r {
        Reply::Getattr(g) => {
            assert_eq!(g.mode, 0o100600);
            assert_eq!(g.size, 6);
            assert_eq!(g.blocks, 1);
        }
        other => panic!("{other:?}"),
    });
    c.clunk(15).ok();
    // rm, rmdir
    c.unlinkat(14, "b.txt", 0).ok();
    c.clunk(14).ok();
    c.unlinkat(0, "dir", 0x200).ok();
    c.unlinkat(0, "big", 0).ok();
    // df
    c.send(Request::Statfs { fid: 0 }).reply(|r| match r {
        Reply::Statfs(s) => assert_eq!(s.fs_type, 0x0102_1997),
        other => panic!("{other:?}"),
    });
    let names: Vec<String> = c.list(0, 8168).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["dd"]);
    assert_eq!(c.fs.open_count(), 0, "every open was closed");
    assert_eq!(c.server.fids().len(), 2);
}

#[test]
fn readdir_in_small_pieces_keeps_cookies_stable_around_a_hidden_entry() {
    let mut c = Client::mounted();
    for name in ["a", "b", "secret", "c", "d"] {
        c.create_file(name, b"");
    }
    let secret = c.fs.lookup(0, ROOT, "secret").unwrap().ino;
    c.fs.hide(secret, 0);
    let all = c.list(0, 30);
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    // Resuming after "b" gives "c" even after "a" is removed.
    c.unlinkat(0, "a", 0).ok();
    let after_b = all[1].1;
    c.walk(0, 20, &[]).ok();
    c.lopen(20, 0).ok();
    let answer = c.readdir(20, after_b, 8000);
    let data = answer.ok().data();
    assert_eq!(&data[24..25], b"c");
    assert_eq!(c.walk(0, 21, &["secret"]).errno(), Some(Errno::ENOENT.0));
}

#[test]
fn walk_semantics_partial_clone_replace_and_dotdot() {
    let mut c = Client::mounted();
    c.walk(0, 1, &[]).ok();
    c.mkdir(1, "d").ok();
    c.walk(0, 2, &["d"]).ok();
    c.mkdir(2, "e").ok();
    // partial: d exists, x does not -> one qid, no newfid
    assert_eq!(c.walk(0, 3, &["d", "x", "y"]).walk_len(), 1);
    assert!(!c.server.fids().contains(3));
    // first name failing is an error
    assert_eq!(c.walk(0, 3, &["x"]).errno(), Some(Errno::ENOENT.0));
    // newfid == fid replaced only on full success
    c.walk(0, 4, &[]).ok();
    assert_eq!(c.walk(4, 4, &["d", "nope"]).walk_len(), 1);
    assert_eq!(c.server.fids().get(4).unwrap().ino, ROOT);
    assert_eq!(c.walk(4, 4, &["d", "e"]).walk_len(), 2);
    // .. from d/e is d, then root, then clamped at root
    assert_eq!(c.walk(4, 5, &["..", "..", "..", "."]).walk_len(), 4);
    assert_eq!(c.server.fids().get(5).unwrap().ino, ROOT);
    assert!(c.server.fids().get(5).unwrap().is_root());
    // names with / or NUL or empty
    for bad in ["", "a/b", "/", "a\0"] {
        assert_eq!(
            c.walk(0, 6, &[bad]).errno(),
            Some(Errno::EINVAL.0),
            "{bad:?}"
        );
    }
    // reused newfid
    assert_eq!(c.walk(0, 5, &[]).errno(), Some(Errno::EBADF.0));
    // unknown fid
    assert_eq!(c.walk(77, 78, &[]).errno(), Some(Errno::EBADF.0));
}

#[test]
fn deep_walks_forget_old_ancestors_and_refuse_dotdot_past_them() {
    let mut c = Client::mounted();
    c.walk(0, 1, &[]).ok();
    for _ in 0..(MAX_ANCESTORS + 2) {
        c.mkdir(1, "n").ok();
        c.walk(1, 1, &["n"]).ok();
    }
    let fid = c.server.fids().get(1).unwrap();
    assert_eq!(fid.ancestors.len(), MAX_ANCESTORS);
    assert!(fid.truncated);
    let dots = vec![".."; MAX_ANCESTORS];
    assert_eq!(c.walk(1, 2, &dots).walk_len(), MAX_ANCESTORS);
    assert_eq!(c.walk(2, 3, &[".."]).errno(), Some(Errno::ENOENT.0));
}

#[test]
fn fid_table_is_bounded() {
    let mut c = Client::mounted();
    for fid in 1..MAX_FIDS as u32 {
        c.walk(0, fid, &[]).ok();
    }
    assert_eq!(c.walk(0, 100_000, &[]).errno(), Some(Errno::ENFILE.0));
    assert_eq!(c.attach(100_001).errno(), Some(Errno::ENFILE.0));
    c.clunk(5).ok();
    c.walk(0, 100_000, &[]).ok();
}

#[test]
fn seventeen_names_and_truncated_messages_get_errors() {
    let mut c = Client::mounted();
    // hand-built walk of 17 names
    let mut bytes = vec![0, 0, 0, 0, 110, 1, 0];
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&17u16.to_le_bytes());
    for _ in 0..17 {
        bytes.extend_from_slice(&[1, 0, b'a']);
    }
    let len = bytes.len() as u32;
    bytes[..4].copy_from_slice(&len.to_le_bytes());
    assert_eq!(c.raw(bytes.clone()).errno(), Some(Errno::EINVAL.0));
    // size larger than the bytes there are
    bytes[..4].copy_from_slice(&(len + 10).to_le_bytes());
    assert_eq!(c.raw(bytes.clone()).errno(), Some(Errno::EPROTO.0));
    // size below the header
    assert_eq!(
        c.raw(vec![3, 0, 0, 0, 120, 9, 0]).errno(),
        Some(Errno::EPROTO.0)
    );
    // under 7 bytes: nothing to answer with
    assert!(c.raw(vec![1, 2, 3]).0.is_empty());
    assert_eq!(c.server.stats().unanswered, 1);
    // unknown type
    assert_eq!(
        c.raw(vec![7, 0, 0, 0, 200, 1, 0]).errno(),
        Some(Errno::EOPNOTSUPP.0)
    );
    // a message past msize
    let mut c = Client::new();
    c.version(4096).ok();
    c.attach(0).ok();
    c.walk(0, 1, &[]).ok();
    c.lcreate(1, "f", 2).ok();
    assert_eq!(c.write(1, 0, &[0; 5000]).errno(), Some(Errno::EMSGSIZE.0));
}

#[test]
fn huge_counts_are_clamped_to_msize_and_room() {
    let mut c = Client::mounted();
    let data = vec![3u8; 200_000];
    c.walk(0, 1, &[]).ok();
    c.lcreate(1, "f", 2).ok();
    c.write(1, 0, &data[..100_000]).ok();
    c.write(1, 100_000, &data[100_000..]).ok();
    let answer = c.read(1, 0, u32::MAX);
    assert_eq!(answer.ok().data().len(), MSIZE as usize - READ_HEADER_BYTES);
    c.room = 1000;
    assert_eq!(
        c.read(1, 0, u32::MAX).ok().data().len(),
        1000 - READ_HEADER_BYTES
    );
    c.room = 100;
    // An Rgetattr (160 bytes) does not fit: refused before anything happens.
    assert_eq!(c.getattr(1).errno(), Some(Errno::EMSGSIZE.0));
    c.room = 10;
    assert!(c.clunk(1).0.is_empty());
    assert!(c.server.fids().contains(1), "nothing done without a reply");
    c.room = 1000;
    assert_eq!(c.read(1, u64::MAX, 10).ok().data().len(), 0);
    assert_eq!(
        c.write(1, u64::MAX - 1, &[1, 2, 3]).errno(),
        Some(Errno::EFBIG.0)
    );
}

#[test]
fn open_modes_and_fid_state_are_checked() {
    let mut c = Client::mounted();
    c.create_file("f", b"data");
    c.walk(0, 1, &["f"]).ok();
    assert_eq!(c.read(1, 0, 10).errno(), Some(Errno::EBADF.0), "not opened");
    c.lopen(1, 0).ok();
    assert_eq!(c.lopen(1, 0).errno(), Some(Errno::EINVAL.0), "opened twice");
    assert_eq!(
        c.write(1, 0, b"x").errno(),
        Some(Errno::EBADF.0),
        "read only"
    );
    assert_eq!(c.walk(1, 1, &["x"]).errno(), Some(Errno::EBUSY.0));
    c.walk(1, 2, &[]).ok(); // Linux clones open fids
    c.walk(0, 3, &[]).ok();
    assert_eq!(c.lopen(3, 1).errno(), Some(Errno::EISDIR.0));
    assert_eq!(c.lopen(3, 3).errno(), Some(Errno::EINVAL.0));
    assert_eq!(c.read(3, 0, 10).errno(), Some(Errno::EBADF.0));
    c.lopen(3, 0).ok();
    assert_eq!(c.read(3, 0, 10).errno(), Some(Errno::EISDIR.0));
    assert_eq!(c.walk(2, 4, &["x"]).errno(), Some(Errno::ENOTDIR.0));
    // O_TRUNC with write truncates
    c.walk(0, 5, &["f"]).ok();
    c.lopen(5, 0o1 | 0o1000).ok();
    c.clunk(5).ok();
    assert_eq!(c.cat("f"), b"");
}

#[test]
fn clunk_remove_and_version_close_what_was_open() {
    let mut c = Client::mounted();
    c.create_file("f", b"1");
    c.walk(0, 1, &["f"]).ok();
    c.lopen(1, 2).ok();
    c.fs.fail_close = Some(Errno::EIO);
    assert_eq!(c.clunk(1).errno(), Some(Errno::EIO.0));
    assert!(!c.server.fids().contains(1), "freed anyway");
    c.fs.fail_close = None;
    // Tremove: unlinks and clunks; fails but clunks for the root
    c.walk(0, 2, &["f"]).ok();
    c.lopen(2, 0).ok();
    c.send(Request::Remove { fid: 2 }).ok();
    assert!(!c.server.fids().contains(2));
    assert_eq!(c.walk(0, 3, &["f"]).errno(), Some(Errno::ENOENT.0));
    c.walk(0, 4, &[]).ok();
    assert_eq!(
        c.send(Request::Remove { fid: 4 }).errno(),
        Some(Errno::EBUSY.0)
    );
    assert!(!c.server.fids().contains(4));
    // Open-unlinked files stay readable until clunked
    c.create_file("g", b"kept");
    c.walk(0, 5, &["g"]).ok();
    c.lopen(5, 0).ok();
    c.unlinkat(0, "g", 0).ok();
    assert_eq!(c.read(5, 0, 100).ok().data(), b"kept");
    // Tversion mid-session: closes and frees everything
    c.walk(0, 6, &[]).ok();
    c.lcreate(6, "h", 1).ok();
    assert_eq!(c.fs.open_count(), 2);
    c.version(MSIZE).ok();
    assert_eq!(c.fs.open_count(), 0);
    assert!(c.server.fids().is_empty());
    assert_eq!(c.getattr(0).errno(), Some(Errno::EBADF.0));
}

#[test]
fn trename_moves_a_fid_and_unsupported_requests_fail_cleanly() {
    let mut c = Client::mounted();
    c.create_file("f", b"x");
    c.walk(0, 1, &[]).ok();
    c.mkdir(1, "d").ok();
    c.walk(0, 2, &["d"]).ok();
    c.walk(0, 3, &["f"]).ok();
    c.send(Request::Rename {
        fid: 3,
        dfid: 2,
        name: "g",
    })
    .ok();
    let d = c.server.fids().get(2).unwrap().ino;
    assert_eq!(c.server.fids().get(3).unwrap().parent(), Some(d));
    assert_eq!(c.walk(2, 4, &["g"]).walk_len(), 1);
    assert_eq!(c.walk(0, 5, &["f"]).errno(), Some(Errno::ENOENT.0));
    assert_eq!(
        c.send(Request::Xattrwalk {
            fid: 0,
            newfid: 9,
            name: "security.capability"
        })
        .errno(),
        Some(Errno::EOPNOTSUPP.0)
    );
    assert!(!c.server.fids().contains(9));
    let lock = |lock_type| Request::Lock {
        fid: 3,
        lock_type,
        flags: 0,
        start: 0,
        length: 0,
        proc_id: 1,
        client_id: "host",
    };
    assert_eq!(c.send(lock(1)).errno(), Some(Errno::EOPNOTSUPP.0));
    c.send(lock(2)).ok();
    assert_eq!(
        c.send(Request::Symlink {
            fid: 0,
            name: "l",
            target: "f",
            gid: 0
        })
        .errno(),
        Some(Errno::EPERM.0)
    );
    assert_eq!(
        c.send(Request::Link {
            dfid: 0,
            fid: 3,
            name: "l"
        })
        .errno(),
        Some(Errno::EPERM.0)
    );
    assert_eq!(
        c.send(Request::Mknod {
            dfid: 0,
            name: "n",
            mode: 0o20644,
            major: 1,
            minor: 3,
            gid: 0
        })
        .errno(),
        Some(Errno::EPERM.0)
    );
    assert_eq!(
        c.send(Request::Readlink { fid: 3 }).errno(),
        Some(Errno::EINVAL.0)
    );
    assert_eq!(
        c.send(Request::Auth {
            afid: 5,
            uname: "",
            aname: "",
            n_uname: 0
        })
        .errno(),
        Some(Errno::EOPNOTSUPP.0)
    );
    c.send(Request::Flush { oldtag: 3 })
        .reply(|r| assert_eq!(*r, Reply::Flush));
    assert_eq!(
        c.send(Request::Attach {
            fid: 30,
            afid: 1,
            uname: "",
            aname: "",
            n_uname: 0
        })
        .errno(),
        Some(Errno::EINVAL.0)
    );
}

#[test]
fn setattr_refuses_chown_and_takes_times() {
    let mut c = Client::mounted();
    c.create_file("f", b"abc");
    c.walk(0, 1, &["f"]).ok();
    let set = |valid, uid| Request::Setattr {
        fid: 1,
        attr: Setattr {
            valid,
            uid,
            size: 1,
            mtime_sec: 1_700_000_000,
            mtime_nsec: 5,
            ..Setattr::default()
        },
    };
    assert_eq!(c.send(set(0x2, 1000)).errno(), Some(Errno::EPERM.0));
    c.send(set(0x2, 0)).ok();
    c.send(set(0x40, 0)).ok();
    c.send(set(0x8 | 0x20 | 0x100, 0)).ok();
    c.getattr(1).reply(|r| match r {
        Reply::Getattr(g) => {
            assert_eq!((g.size, g.mtime_sec, g.mtime_nsec), (1, 1_700_000_000, 5));
        }
        other => panic!("{other:?}"),
    });
    let mut bad = set(0x20 | 0x100, 0);
    if let Request::Setattr { attr, .. } = &mut bad {
        attr.mtime_nsec = 1_000_000_000;
    }
    assert_eq!(c.send(bad).errno(), Some(Errno::EINVAL.0));
}

#[test]
fn twrite_payload_is_read_at_its_offset_in_pieces() {
    let mut c = Client::mounted();
    c.walk(0, 1, &[]).ok();
    c.lcreate(1, "f", 2).ok();
    let data: Vec<u8> = (0..(SCRATCH_BYTES + 123)).map(|i| (i * 7) as u8).collect();
    c.write(1, 5, &data).ok();
    assert_eq!(c.fs.calls["write"], 2);
    let ino = c.server.fids().get(1).unwrap().ino;
    assert_eq!(&c.fs.contents(ino).unwrap()[5..], &data[..]);
    assert_eq!(WRITE_HEADER_BYTES, 23);
}

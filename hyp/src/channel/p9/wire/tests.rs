//! Codec tests: every request and reply round trips; every truncation and every extra
//! byte is refused; arbitrary bytes never panic and what decodes re-encodes the same.

use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

fn samples() -> Vec<Request<'static>> {
    let names = WalkNames::new(&["a", "bb", "ccc"]).unwrap();
    vec![
        Request::Statfs { fid: 1 },
        Request::Lopen { fid: 1, flags: 0o2 },
        Request::Lcreate {
            fid: 1,
            name: "f",
            flags: 0o101,
            mode: 0o644,
            gid: 0,
        },
        Request::Symlink {
            fid: 1,
            name: "l",
            target: "t",
            gid: 0,
        },
        Request::Mknod {
            dfid: 1,
            name: "n",
            mode: 0o20644,
            major: 1,
            minor: 2,
            gid: 3,
        },
        Request::Rename {
            fid: 1,
            dfid: 2,
            name: "r",
        },
        Request::Readlink { fid: 1 },
        Request::Getattr {
            fid: 1,
            request_mask: 0x3fff,
        },
        Request::Setattr {
            fid: 1,
            attr: Setattr {
                valid: 0x1ff,
                mode: 1,
                uid: 2,
                gid: 3,
                size: 4,
                atime_sec: 5,
                atime_nsec: 6,
                mtime_sec: 7,
                mtime_nsec: 8,
            },
        },
        Request::Xattrwalk {
            fid: 1,
            newfid: 2,
            name: "security.capability",
        },
        Request::Xattrcreate {
            fid: 1,
            name: "x",
            attr_size: 9,
            flags: 0,
        },
        Request::Readdir {
            fid: 1,
            offset: 99,
            count: 8168,
        },
        Request::Fsync {
            fid: 1,
            datasync: 1,
        },
        Request::Lock {
            fid: 1,
            lock_type: 1,
            flags: 0,
            start: 0,
            length: 0,
            proc_id: 7,
            client_id: "c",
        },
        Request::Getlock {
            fid: 1,
            lock_type: 1,
            start: 0,
            length: 0,
            proc_id: 7,
            client_id: "c",
        },
        Request::Link {
            dfid: 1,
            fid: 2,
            name: "l",
        },
        Request::Mkdir {
            dfid: 1,
            name: "d",
            mode: 0o755,
            gid: 0,
        },
        Request::Renameat {
            olddirfid: 1,
            oldname: "a",
            newdirfid: 2,
            newname: "b",
        },
        Request::Unlinkat {
            dirfid: 1,
            name: "a",
            flags: 0x200,
        },
        Request::Version {
            msize: 131_072,
            version: VERSION_9P2000_L,
        },
        Request::Auth {
            afid: 1,
            uname: "u",
            aname: "",
            n_uname: 0,
        },
        Request::Attach {
            fid: 0,
            afid: NOFID,
            uname: "root",
            aname: "",
            n_uname: 0,
        },
        Request::Flush { oldtag: 3 },
        Request::Walk {
            fid: 0,
            newfid: 1,
            names,
        },
        Request::Read {
            fid: 1,
            offset: 2,
            count: 3,
        },
        Request::Clunk { fid: 1 },
        Request::Remove { fid: 1 },
    ]
}

fn encode(request: &Request<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    let len = encode_request(42, request, &mut buf).unwrap();
    buf.truncate(len);
    buf
}

#[test]
fn every_request_round_trips() {
    for request in samples() {
        let bytes = encode(&request);
        let (header, decoded) = decode_request(&bytes).unwrap();
        assert_eq!(decoded, request);
        assert_eq!((header.tag, header.size as usize), (42, bytes.len()));
    }
}

#[test]
fn every_truncation_and_every_extra_byte_is_refused() {
    for request in samples() {
        let bytes = encode(&request);
        for cut in 0..bytes.len() {
            // Shortened bytes with the original size: truncated.
            assert!(
                decode_request(&bytes[..cut]).is_err(),
                "{request:?} cut {cut}"
            );
            // A size that claims fewer bytes: the body ends early.
            if cut >= HEADER_BYTES {
                let mut short = bytes[..cut].to_vec();
                short[..4].copy_from_slice(&(cut as u32).to_le_bytes());
                assert!(decode_request(&short).is_err(), "{request:?} size {cut}");
            }
        }
        let mut long = bytes.clone();
        long.push(0);
        long[..4].copy_from_slice(&(bytes.len() as u32 + 1).to_le_bytes());
        assert_eq!(decode_request(&long).err(), Some(WireError::BadSize));
        // Bytes past size are not the message's.
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decode_request(&trailing).unwrap().1, request);
    }
}

#[test]
fn twrite_decodes_from_its_header_and_checks_count_against_size() {
    let request = Request::Write {
        fid: 1,
        offset: 2,
        count: 100_000,
    };
    let bytes = encode(&request);
    assert_eq!(bytes.len(), WRITE_HEADER_BYTES);
    assert_eq!(u32::from_le_bytes(bytes[..4].try_into().unwrap()), 100_023);
    assert_eq!(decode_request(&bytes).unwrap().1, request);
    let mut wrong = bytes.clone();
    wrong[19..23].copy_from_slice(&99_999u32.to_le_bytes());
    assert_eq!(decode_request(&wrong).err(), Some(WireError::BadSize));
    assert_eq!(
        decode_request(&bytes[..22]).err(),
        Some(WireError::Truncated)
    );
}

#[test]
fn walk_of_seventeen_names_and_bad_strings_are_refused() {
    let mut bytes = vec![0, 0, 0, 0, kind::TWALK, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 17, 0];
    for _ in 0..17 {
        bytes.extend_from_slice(&[1, 0, b'x']);
    }
    let len = bytes.len() as u32;
    bytes[..4].copy_from_slice(&len.to_le_bytes());
    assert_eq!(decode_request(&bytes).err(), Some(WireError::TooManyNames));
    let mut utf = encode(&Request::Mkdir {
        dfid: 1,
        name: "ab",
        mode: 0,
        gid: 0,
    });
    utf[13] = 0xff;
    assert_eq!(decode_request(&utf).err(), Some(WireError::NotUtf8));
    let mut huge = encode(&Request::Mkdir {
        dfid: 1,
        name: "ab",
        mode: 0,
        gid: 0,
    });
    huge[11..13].copy_from_slice(&u16::MAX.to_le_bytes());
    assert_eq!(decode_request(&huge).err(), Some(WireError::Truncated));
    assert_eq!(
        decode_request(&[7, 0, 0, 0, 99, 0, 0]).err(),
        Some(WireError::UnknownType(99))
    );
    assert_eq!(
        decode_request(&[6, 0, 0, 0, 8, 0, 0]).err(),
        Some(WireError::BadSize)
    );
}

#[test]
fn replies_round_trip() {
    let qids = [Qid {
        kind: QID_DIR,
        version: 1,
        path: 2,
    }; 3];
    let replies = [
        Reply::Lerror { ecode: 2 },
        Reply::Statfs(Statfs {
            fs_type: 1,
            bsize: 2,
            blocks: 3,
            bfree: 4,
            bavail: 5,
            files: 6,
            ffree: 7,
            fsid: 8,
            namelen: 9,
        }),
        Reply::Lopen {
            qid: qids[0],
            iounit: 0,
        },
        Reply::Lcreate {
            qid: qids[0],
            iounit: 1,
        },
        Reply::Getattr(Getattr {
            valid: 0x7ff,
            size: 5,
            ..Getattr::default()
        }),
        Reply::Setattr,
        Reply::Fsync,
        Reply::Lock { status: 0 },
        Reply::Mkdir { qid: qids[1] },
        Reply::Rename,
        Reply::Renameat,
        Reply::Unlinkat,
        Reply::Version {
            msize: 4096,
            version: "9P2000.L",
        },
        Reply::Attach { qid: qids[2] },
        Reply::Flush,
        Reply::Walk { qids: &qids },
        Reply::Write { count: 5 },
        Reply::Clunk,
        Reply::Remove,
    ];
    for reply in replies {
        let mut buf = [0u8; MAX_FIXED_REPLY_BYTES];
        let len = encode_reply(9, &reply, &mut buf).unwrap();
        let mut out = [Qid::default(); MAX_WALK_NAMES];
        let (header, decoded) = decode_reply(&buf[..len], &mut out).unwrap();
        assert_eq!((header.tag, decoded), (9, reply));
        assert!(encode_reply(9, &reply, &mut buf[..len - 1]).is_err());
    }
    let mut buf = [0u8; 16];
    let len = encode_reply(1, &Reply::Read { count: 1000 }, &mut buf).unwrap();
    assert_eq!(len, READ_HEADER_BYTES);
    assert_eq!(u32::from_le_bytes(buf[..4].try_into().unwrap()), 1011);
    let walk = Reply::Walk {
        qids: &[Qid::default(); 17],
    };
    assert_eq!(
        encode_reply(1, &walk, &mut [0u8; 512]).err(),
        Some(WireError::TooManyNames)
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_reencode_exactly(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        if let Ok((header, request)) = decode_request(&bytes) {
            let mut out = vec![0u8; 8192];
            let len = encode_request(header.tag, &request, &mut out).unwrap();
            let end = if header.kind == kind::TWRITE { WRITE_HEADER_BYTES } else { header.size as usize };
            prop_assert_eq!(&out[..len], &bytes[..end]);
        }
    }

    #[test]
    fn framed_bytes_with_a_right_size_never_panic(kind_byte in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = vec![0, 0, 0, 0, kind_byte, 1, 0];
        bytes.extend_from_slice(&body);
        let len = bytes.len() as u32;
        bytes[..4].copy_from_slice(&len.to_le_bytes());
        let _ = decode_request(&bytes);
        let mut qids = [Qid::default(); MAX_WALK_NAMES];
        let _ = decode_reply(&bytes, &mut qids);
    }

    #[test]
    fn walks_round_trip(names in proptest::collection::vec("[a-z.]{0,8}", 0..=16), fid in any::<u32>()) {
        let refs: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        let request = Request::Walk { fid, newfid: fid ^ 1, names: WalkNames::new(&refs).unwrap() };
        let bytes = encode(&request);
        prop_assert_eq!(decode_request(&bytes).unwrap().1, request);
    }
}

//! A 9P server over an in-memory file system fed arbitrary messages after a valid
//! `Tversion` and `Tattach`, each through an exchange with arbitrary reply room. Never a
//! panic; every reply fits the room and the msize, decodes as an R-message and carries
//! the request's tag.
#![no_main]

use hyp::channel::p9::memfs::MemFs;
use hyp::channel::p9::server::{Exchange, ExchangeError, Server};
use hyp::channel::p9::wire::{
    decode_header, decode_reply, encode_request, Qid, Request, MAX_WALK_NAMES, NOFID, NOTAG,
    VERSION_9P2000_L,
};
use libfuzzer_sys::fuzz_target;

/// The msize the fuzzed session negotiates.
const MSIZE: u32 = 16 * 1024;

/// One request and the room for its reply.
struct VecExchange {
    request: Vec<u8>,
    reply: Vec<u8>,
}

impl Exchange for VecExchange {
    fn request_len(&self) -> usize {
        self.request.len()
    }

    fn read_request(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), ExchangeError> {
        let end = offset.checked_add(buf.len()).ok_or(ExchangeError)?;
        buf.copy_from_slice(self.request.get(offset..end).ok_or(ExchangeError)?);
        Ok(())
    }

    fn reply_capacity(&self) -> usize {
        self.reply.len()
    }

    fn write_reply(&mut self, offset: usize, data: &[u8]) -> Result<(), ExchangeError> {
        let end = offset.checked_add(data.len()).ok_or(ExchangeError)?;
        self.reply
            .get_mut(offset..end)
            .ok_or(ExchangeError)?
            .copy_from_slice(data);
        Ok(())
    }
}

/// Sends `request`, with `room` bytes for the reply, and checks the reply.
fn exchange(server: &mut Server, fs: &mut MemFs, request: Vec<u8>, room: usize) -> usize {
    let tag = request
        .get(5..7)
        .map(|bytes| u16::from_le_bytes([bytes[0], bytes[1]]));
    let mut exchange = VecExchange {
        request,
        reply: vec![0; room],
    };
    let len = server.handle(fs, &mut exchange);
    if len == 0 {
        return 0;
    }
    assert!(len <= room, "reply of {len} bytes in {room} of room");
    assert!(
        len <= server.msize() as usize,
        "reply of {len} bytes past msize"
    );
    // An Rread's or Rreaddir's data follows its header; decoding needs the header only.
    let header = decode_header(&exchange.reply).expect("reply has a header");
    assert_eq!(
        header.size as usize, len,
        "size field matches bytes written"
    );
    assert_eq!(
        header.kind % 2,
        1,
        "reply type {} is not an R-message",
        header.kind
    );
    let mut qids = [Qid::default(); MAX_WALK_NAMES];
    let (header, _) = decode_reply(&exchange.reply[..len], &mut qids).expect("reply decodes");
    assert_eq!(
        Some(header.tag),
        tag,
        "reply tag differs from the request's"
    );
    len
}

/// Encodes a well-formed request.
fn encode(tag: u16, request: &Request<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 512];
    let len = encode_request(tag, request, &mut out).expect("session request fits");
    out.truncate(len);
    out
}

/// Takes `n` bytes from the front of `input`, or what there is.
fn take<'a>(input: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, rest) = input.split_at(n.min(input.len()));
    *input = rest;
    head
}

fuzz_target!(|data: &[u8]| {
    let mut server = Server::new(0);
    let mut fs = MemFs::new();
    let version = Request::Version {
        msize: MSIZE,
        version: VERSION_9P2000_L,
    };
    let attach = Request::Attach {
        fid: 0,
        afid: NOFID,
        uname: "root",
        aname: "",
        n_uname: 0,
    };
    let room = MSIZE as usize;
    assert!(exchange(&mut server, &mut fs, encode(NOTAG, &version), room) > 0);
    assert!(exchange(&mut server, &mut fs, encode(1, &attach), room) > 0);

    // Each message: len[2] room[2] bytes[len].
    let mut input = data;
    while input.len() >= 4 {
        let control = take(&mut input, 4);
        let len = usize::from(u16::from_le_bytes([control[0], control[1]]));
        let room = usize::from(u16::from_le_bytes([control[2], control[3]]));
        let request = take(&mut input, len).to_vec();
        exchange(&mut server, &mut fs, request, room);
    }
    server.reset(&mut fs);
    assert_eq!(fs.open_count(), 0, "reset left files open");
});

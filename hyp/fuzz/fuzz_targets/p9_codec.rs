//! Arbitrary bytes through the 9P2000.L codec, as a request and as a reply. Never a
//! panic; whatever decodes re-encodes, and the re-encoding decodes to the same message
//! (a `Twrite` and an `Rread`/`Rreaddir` as their headers: their data is not the codec's).
#![no_main]

use hyp::channel::p9::wire::{
    decode_reply, decode_request, encode_reply, encode_request, Qid, MAX_FIXED_REPLY_BYTES,
    MAX_WALK_NAMES,
};
use libfuzzer_sys::fuzz_target;

/// Room for any request the codec encodes (a `Tsymlink` of two 4 KiB strings at most
/// within 64 KiB of input).
const REQUEST_ROOM_BYTES: usize = 128 * 1024;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, request)) = decode_request(data) {
        let mut out = vec![0u8; REQUEST_ROOM_BYTES];
        let len =
            encode_request(header.tag, &request, &mut out).expect("a decoded request re-encodes");
        let (again_header, again) =
            decode_request(&out[..len]).expect("a re-encoded request decodes");
        assert_eq!(again, request, "request changed through re-encoding");
        assert_eq!(again_header.tag, header.tag);
        assert_eq!(again_header.kind, header.kind);
    }
    let mut qids = [Qid::default(); MAX_WALK_NAMES];
    if let Ok((header, reply)) = decode_reply(data, &mut qids) {
        let mut out = [0u8; MAX_FIXED_REPLY_BYTES];
        let len = encode_reply(header.tag, &reply, &mut out).expect("a decoded reply re-encodes");
        let mut again_qids = [Qid::default(); MAX_WALK_NAMES];
        let (again_header, again) =
            decode_reply(&out[..len], &mut again_qids).expect("a re-encoded reply decodes");
        assert_eq!(again, reply, "reply changed through re-encoding");
        assert_eq!(again_header, header);
    }
});

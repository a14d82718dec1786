//! What personalities write to the console, with Janus lines, switches and
//! ticks between, in any order: never a panic, no guest byte lost or
//! reordered (markers, Janus lines and lines shown again aside), and no guest
//! line begins the way Janus' lines do.
#![no_main]

use hyp::console::mux::{Mux, Urgency};
use libfuzzer_sys::fuzz_target;

/// `printed` with every `from` replaced by `to`.
fn replace(printed: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut rest = printed;
    while let Some(at) = rest.windows(from.len()).position(|window| window == from) {
        kept.extend_from_slice(&rest[..at]);
        kept.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    kept.extend_from_slice(rest);
    kept
}

fuzz_target!(|ops: Vec<(u8, Vec<u8>)>| {
    // One personality, always in front: everything it writes is shown.
    let mut mux = Mux::new(&["w"], 64, 10);
    let mut printed = Vec::new();
    let mut written = Vec::new();
    let mut now = 0u64;
    for (kind, bytes) in ops {
        now += u64::from(kind >> 4);
        let mut out = |shown: &[u8]| printed.extend_from_slice(shown);
        match kind & 3 {
            0 | 1 => {
                written.extend_from_slice(&bytes);
                mux.guest_output(0, &bytes, now, &mut out);
            }
            2 => {
                mux.tick(now, &mut out);
            }
            _ => {
                let urgency = if kind & 4 == 0 {
                    Urgency::Deferred
                } else {
                    Urgency::Now
                };
                mux.janus_line("J", urgency, now, &mut out);
                mux.settle(&mut out);
            }
        }
    }
    mux.tick(u64::MAX, &mut |shown: &[u8]| printed.extend_from_slice(shown));
    // Janus' own lines, and the lines shown again after them, are the only
    // additions: take them out and the guest's bytes must remain, in order.
    let janus = b"[janus] J\r\n";
    let guest = replace(&replace(&printed, janus, b""), b"w| [janus]", b"[janus]");
    let mut expected = written.iter().peekable();
    for byte in &guest {
        if expected.peek() == Some(&byte) {
            expected.next();
        }
    }
    assert!(
        expected.next().is_none(),
        "a guest byte was lost: wrote {written:?}, shown {printed:?}"
    );
    // Every '[janus]' at a line start is Janus' own line.
    for (at, _) in printed.match_indices_bytes(b"[janus]") {
        let start = at == 0 || matches!(printed[at - 1], b'\n' | b'\r');
        if start {
            assert!(printed[at..].starts_with(janus), "a forged Janus line");
        }
    }
});

/// Positions of `needle` in a byte string.
trait MatchIndices {
    fn match_indices_bytes<'a>(&'a self, needle: &'a [u8]) -> Vec<(usize, &'a [u8])>;
}

impl MatchIndices for Vec<u8> {
    fn match_indices_bytes<'a>(&'a self, needle: &'a [u8]) -> Vec<(usize, &'a [u8])> {
        self.windows(needle.len())
            .enumerate()
            .filter(|(_, window)| *window == needle)
            .map(|(at, window)| (at, window))
            .collect()
    }
}

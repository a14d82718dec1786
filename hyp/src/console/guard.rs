//! Keeps a personality's output from forging Janus' lines: guest text that
//! would begin a line with Janus' prefix is shown behind the personality's name.
//!
//! A terminal line can begin in more places than after a newline: a carriage
//! return, a backspace or an escape sequence (cursor left, to column 1,
//! restore cursor, erase line) can bring the cursor back to the start of a
//! line already written, and text written there reads as a line of its own.
//! So the guard takes any control byte or escape sequence as a possible line
//! start, which can only err towards marking too often. At such a place it
//! holds back bytes while they spell the beginning of [`TRIGGER`]: if the
//! trigger is completed, the marker (`work| `) goes out before it; at the
//! first other byte, or when the console asks ([`LineGuard::release`]), the
//! held bytes go out as they came.

use alloc::vec::Vec;

/// What a guest line may not begin with: Janus' own prefix without its space,
/// so that `[janus]x` is marked as well.
pub const TRIGGER: &[u8] = b"[janus]";

/// The escape byte that starts a control sequence (ECMA-48 §5.3).
const ESC: u8 = 0x1b;
/// DEL, a control byte outside the C0 range.
const DEL: u8 = 0x7f;
/// Longest escape sequence followed; a longer one is taken as ended, so a
/// guest cannot keep the guard inside a sequence for ever.
const MAX_SEQUENCE_BYTES: usize = 64;

/// Where the guard is in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Plain text.
    Text,
    /// After ESC: the next byte says which kind of sequence.
    Escape,
    /// Inside ESC + intermediate bytes (0x20-0x2f), until a final byte.
    Intermediate,
    /// Inside a control sequence (ESC `[`), until a final byte 0x40-0x7e.
    Csi,
    /// Inside an operating system command or string (ESC `]`, `P`, `X`, `^`,
    /// `_`), until BEL or ESC `\`.
    String,
    /// ESC seen inside a string: `\` ends it.
    StringEscape,
}

/// The per-personality filter; see the module documentation.
#[derive(Clone, Debug)]
pub struct LineGuard {
    /// Put before a line that begins with the trigger: `<name>| `.
    marker: Vec<u8>,
    /// Whether the cursor may be at the start of a line.
    line_start: bool,
    /// Bytes held back because they spell the beginning of the trigger.
    held: Vec<u8>,
    mode: Mode,
    /// Bytes of the current escape sequence so far.
    sequence_bytes: usize,
}

impl LineGuard {
    /// A guard for the personality called `name`, at the start of a line.
    pub fn new(name: &str) -> Self {
        let mut marker = Vec::with_capacity(name.len() + 2);
        marker.extend_from_slice(name.as_bytes());
        marker.extend_from_slice(b"| ");
        LineGuard {
            marker,
            line_start: true,
            held: Vec::with_capacity(TRIGGER.len()),
            mode: Mode::Text,
            sequence_bytes: 0,
        }
    }

    /// Back to the start of a line with nothing held (the personality restarted).
    pub fn reset(&mut self) {
        self.line_start = true;
        self.held.clear();
        self.mode = Mode::Text;
        self.sequence_bytes = 0;
    }

    /// Whether bytes are held back, waiting for more output or [`LineGuard::release`].
    pub fn holds(&self) -> bool {
        !self.held.is_empty()
    }

    /// Passes `bytes` through the guard, appending what may be shown to `out`.
    pub fn filter(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        out.reserve(bytes.len());
        for &byte in bytes {
            self.byte(byte, out);
        }
    }

    /// Lets held bytes go out as they came: no more output has arrived to show
    /// whether they begin the trigger, and they cannot wait for ever.
    pub fn release(&mut self, out: &mut Vec<u8>) {
        if !self.held.is_empty() {
            out.append(&mut self.held);
            self.line_start = false;
        }
    }

    fn byte(&mut self, byte: u8, out: &mut Vec<u8>) {
        match self.mode {
            Mode::Text => self.text(byte, out),
            Mode::Escape => {
                self.mode = match byte {
                    b'[' => Mode::Csi,
                    b']' | b'P' | b'X' | b'^' | b'_' => Mode::String,
                    0x20..=0x2f => Mode::Intermediate,
                    // ESC + one byte (restore cursor, next line, ...): done.
                    _ => Mode::Text,
                };
                self.sequence(byte, out);
            }
            Mode::Intermediate => {
                if !(0x20..=0x2f).contains(&byte) {
                    self.mode = Mode::Text;
                }
                self.sequence(byte, out);
            }
            Mode::Csi => {
                if (0x40..=0x7e).contains(&byte) {
                    self.mode = Mode::Text;
                }
                self.sequence(byte, out);
            }
            Mode::String => {
                match byte {
                    0x07 => self.mode = Mode::Text,
                    ESC => self.mode = Mode::StringEscape,
                    _ => {}
                }
                self.sequence(byte, out);
            }
            Mode::StringEscape => {
                self.mode = if byte == b'\\' {
                    Mode::Text
                } else {
                    Mode::String
                };
                self.sequence(byte, out);
            }
        }
    }

    /// A byte of an escape sequence: shown as it is; once the sequence ends
    /// (or grows too long) the cursor may be anywhere, a line start included.
    fn sequence(&mut self, byte: u8, out: &mut Vec<u8>) {
        out.push(byte);
        self.sequence_bytes = self.sequence_bytes.saturating_add(1);
        if self.sequence_bytes >= MAX_SEQUENCE_BYTES {
            self.mode = Mode::Text;
        }
        if self.mode == Mode::Text {
            self.line_start = true;
        }
    }

    fn text(&mut self, byte: u8, out: &mut Vec<u8>) {
        if byte == ESC || byte < 0x20 || byte == DEL {
            // A control byte ends any match: what was held was text.
            self.release(out);
            out.push(byte);
            if byte == ESC {
                self.mode = Mode::Escape;
                self.sequence_bytes = 1;
            } else {
                // CR, LF, backspace, tab, form feed...: the cursor may now be
                // at a line start; the others (BEL) do not move it from one.
                self.line_start = true;
            }
            return;
        }
        if !self.line_start {
            out.push(byte);
            return;
        }
        if TRIGGER.get(self.held.len()) == Some(&byte) {
            self.held.push(byte);
            if self.held.len() == TRIGGER.len() {
                out.extend_from_slice(&self.marker);
                out.append(&mut self.held);
                self.line_start = false;
            }
            return;
        }
        // Not the trigger: the held bytes and this one are ordinary text.
        self.release(out);
        out.push(byte);
        self.line_start = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(guard: &mut LineGuard, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        guard.filter(bytes, &mut out);
        out
    }

    fn guarded(bytes: &[u8]) -> Vec<u8> {
        run(&mut LineGuard::new("work"), bytes)
    }

    #[test]
    fn ordinary_text_passes_unchanged() {
        assert_eq!(guarded(b"hello\r\nworld\r\n"), b"hello\r\nworld\r\n");
        assert_eq!(
            guarded(b"[    0.000] Booting\r\n"),
            b"[    0.000] Booting\r\n"
        );
    }

    #[test]
    fn a_line_that_starts_with_the_prefix_is_marked() {
        assert_eq!(
            guarded(b"[janus] foreground: personal\r\n"),
            b"work| [janus] foreground: personal\r\n"
        );
        assert_eq!(
            guarded(b"ok\n[janus] x\n[janus]y"),
            b"ok\nwork| [janus] x\nwork| [janus]y"
        );
    }

    #[test]
    fn the_prefix_inside_a_line_is_left_alone() {
        assert_eq!(guarded(b"see [janus] lines"), b"see [janus] lines");
    }

    #[test]
    fn carriage_return_backspace_and_escapes_count_as_line_starts() {
        assert_eq!(guarded(b"abc\r[janus] x"), b"abc\rwork| [janus] x");
        assert_eq!(
            guarded(b"ab\x08\x08[janus] x"),
            b"ab\x08\x08work| [janus] x"
        );
        assert_eq!(
            guarded(b"abc\x1b[1G[janus] x"),
            b"abc\x1b[1Gwork| [janus] x"
        );
        assert_eq!(
            guarded(b"\x1b[2K\r\x1b[0m[janus] x"),
            b"\x1b[2K\r\x1b[0mwork| [janus] x"
        );
        assert_eq!(guarded(b"abc\x1b8[janus] x"), b"abc\x1b8work| [janus] x");
        assert_eq!(
            guarded(b"abc\x1b]0;title\x07[janus] x"),
            b"abc\x1b]0;title\x07work| [janus] x"
        );
        assert_eq!(guarded(b"abc\x1b(B[janus] x"), b"abc\x1b(Bwork| [janus] x");
    }

    #[test]
    fn a_prefix_split_across_writes_is_still_marked() {
        let mut guard = LineGuard::new("work");
        assert_eq!(run(&mut guard, b"\r\n[ja"), b"\r\n");
        assert!(guard.holds());
        assert_eq!(run(&mut guard, b"nus] hi"), b"work| [janus] hi");
        assert!(!guard.holds());
    }

    #[test]
    fn held_bytes_that_turn_out_different_go_out_in_order() {
        let mut guard = LineGuard::new("work");
        assert_eq!(run(&mut guard, b"[jan"), b"");
        assert_eq!(run(&mut guard, b"e] x"), b"[jane] x");
        assert_eq!(guarded(b"[ja\r\n"), b"[ja\r\n");
        assert_eq!(guarded(b"[[janus]"), b"[[janus]");
    }

    #[test]
    fn release_lets_held_bytes_out_and_ends_the_line_start() {
        let mut guard = LineGuard::new("work");
        assert_eq!(run(&mut guard, b"[jan"), b"");
        let mut out = Vec::new();
        guard.release(&mut out);
        assert_eq!(out, b"[jan");
        // The cursor is now past the start of the line: no marker.
        assert_eq!(run(&mut guard, b"us] x"), b"us] x");
    }

    #[test]
    fn an_endless_escape_sequence_ends_after_a_bound() {
        let mut bytes = b"\x1b[".to_vec();
        bytes.extend(core::iter::repeat_n(b'1', 200));
        bytes.extend_from_slice(b"[janus] x");
        let out = guarded(&bytes);
        assert!(out.ends_with(b"work| [janus] x") || out.ends_with(b"[janus] x"));
        // Whatever the sequence swallowed, every byte came out, in order.
        let mut stripped = out.clone();
        if let Some(at) = stripped.windows(6).position(|w| w == b"work| ") {
            stripped.drain(at..at + 6);
        }
        assert_eq!(stripped, bytes);
    }

    #[test]
    fn reset_forgets_what_was_held() {
        let mut guard = LineGuard::new("work");
        run(&mut guard, b"x[jan");
        guard.reset();
        assert!(!guard.holds());
        assert_eq!(run(&mut guard, b"[janus]"), b"work| [janus]");
    }

    #[test]
    fn every_byte_comes_out_exactly_once() {
        // Whatever the input, removing the markers gives the input back.
        let inputs: [&[u8]; 5] = [
            b"[janus][janus]\n[janus",
            b"\x1b[\x1b[[janus]\r\r[ja[janus]",
            b"\x08[j\x1b]\x1b\\[janus] \x7f[janus]",
            b"",
            b"\xff\xfe[janus]\n",
        ];
        for input in inputs {
            let mut guard = LineGuard::new("w");
            let mut out = run(&mut guard, input);
            guard.release(&mut out);
            let text: Vec<u8> = {
                let mut kept = Vec::new();
                let mut rest = out.as_slice();
                while let Some(at) = rest.windows(3).position(|w| w == b"w| ") {
                    kept.extend_from_slice(&rest[..at]);
                    rest = &rest[at + 3..];
                }
                kept.extend_from_slice(rest);
                kept
            };
            assert_eq!(text, input, "{:?}", core::str::from_utf8(input));
        }
    }
}

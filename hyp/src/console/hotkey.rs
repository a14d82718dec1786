//! The console hotkey: Ctrl-] followed by a command key, parsed one typed byte at a time.
//!
//! | after Ctrl-]      | meaning                                       |
//! |-------------------|-----------------------------------------------|
//! | `Tab` or `n`      | foreground the next personality               |
//! | `1` ... `9`       | foreground personality N, in configuration order |
//! | Ctrl-]            | send one Ctrl-] to the foreground personality |
//! | `?` or `h`        | show the help                                 |
//! | `s`               | show statistics                               |
//! | `a`               | show the last audit records                   |
//! | anything else     | send both bytes on unchanged                  |

/// The escape byte: Ctrl-] (ASCII GS), as telnet and QEMU's monitor use.
pub const ESCAPE: u8 = 0x1d;

/// Horizontal tab, which a Tab key sends.
const TAB: u8 = b'\t';

/// The help for the hotkey, one line per command (each printed as a Janus line).
pub const HELP_LINES: [&str; 7] = [
    "console hotkey: Ctrl-] then",
    "  Tab or n  next personality",
    "  1 ... 9   personality N",
    "  Ctrl-]    send Ctrl-] to the guest",
    "  ? or h    this help",
    "  s         statistics",
    "  a         last audit records",
];

/// A console command chosen with the hotkey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Foreground the next personality, wrapping after the last.
    Next,
    /// Foreground the personality at this 0-based index: typing `1` gives
    /// `Select(0)`. The index may be past the last personality; the
    /// multiplexer checks it.
    Select(usize),
    /// Show the hotkey help.
    Help,
    /// Show console statistics.
    Stats,
    /// Show the last records of the shared folder's audit log.
    Audit,
}

/// What to do with a byte fed to the parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Send this byte to the foreground personality.
    Pass(u8),
    /// Send these two bytes to the foreground personality, in order.
    PassTwo(u8, u8),
    /// Send nothing yet: the byte started a hotkey.
    Hold,
    /// Carry out a console command; nothing goes to the guest.
    Command(Command),
}

/// The hotkey parser: a two-state machine with no hardware access.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hotkey {
    /// An escape byte was seen and the command key is awaited.
    escaped: bool,
}

impl Hotkey {
    /// A parser waiting for the escape byte.
    pub const fn new() -> Self {
        Hotkey { escaped: false }
    }

    /// True between the escape byte and the command key.
    pub const fn is_pending(&self) -> bool {
        self.escaped
    }

    /// Takes one byte typed on the physical console and says what to do with it.
    pub fn feed(&mut self, byte: u8) -> Feed {
        if !self.escaped {
            if byte == ESCAPE {
                self.escaped = true;
                return Feed::Hold;
            }
            return Feed::Pass(byte);
        }
        self.escaped = false;
        match byte {
            TAB | b'n' => Feed::Command(Command::Next),
            b'1'..=b'9' => Feed::Command(Command::Select(usize::from(byte - b'1'))),
            ESCAPE => Feed::Pass(ESCAPE),
            b'?' | b'h' => Feed::Command(Command::Help),
            b's' => Feed::Command(Command::Stats),
            b'a' => Feed::Command(Command::Audit),
            other => Feed::PassTwo(ESCAPE, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(hotkey: &mut Hotkey, bytes: &[u8]) -> Vec<Feed> {
        bytes.iter().map(|byte| hotkey.feed(*byte)).collect()
    }

    #[test]
    fn ordinary_bytes_pass_through() {
        let mut hotkey = Hotkey::new();
        assert_eq!(
            feed_all(&mut hotkey, b"ls\r"),
            [Feed::Pass(b'l'), Feed::Pass(b's'), Feed::Pass(b'\r')]
        );
        assert!(!hotkey.is_pending());
    }

    #[test]
    fn escape_is_held_until_the_command_key() {
        let mut hotkey = Hotkey::new();
        assert_eq!(hotkey.feed(ESCAPE), Feed::Hold);
        assert!(hotkey.is_pending());
    }

    #[test]
    fn tab_and_n_select_the_next_personality() {
        let mut hotkey = Hotkey::new();
        assert_eq!(
            feed_all(&mut hotkey, &[ESCAPE, b'\t', ESCAPE, b'n']),
            [
                Feed::Hold,
                Feed::Command(Command::Next),
                Feed::Hold,
                Feed::Command(Command::Next)
            ]
        );
        assert!(!hotkey.is_pending());
    }

    #[test]
    fn digits_select_a_personality_by_zero_based_index() {
        let mut hotkey = Hotkey::new();
        for (digit, index) in (b'1'..=b'9').zip(0usize..) {
            assert_eq!(hotkey.feed(ESCAPE), Feed::Hold);
            assert_eq!(hotkey.feed(digit), Feed::Command(Command::Select(index)));
        }
    }

    #[test]
    fn zero_is_not_a_personality() {
        let mut hotkey = Hotkey::new();
        hotkey.feed(ESCAPE);
        assert_eq!(hotkey.feed(b'0'), Feed::PassTwo(ESCAPE, b'0'));
    }

    #[test]
    fn double_escape_sends_one_literal_escape() {
        let mut hotkey = Hotkey::new();
        assert_eq!(
            feed_all(&mut hotkey, &[ESCAPE, ESCAPE, b'a']),
            [Feed::Hold, Feed::Pass(ESCAPE), Feed::Pass(b'a')]
        );
    }

    #[test]
    fn question_mark_and_h_show_help() {
        let mut hotkey = Hotkey::new();
        assert_eq!(
            feed_all(&mut hotkey, &[ESCAPE, b'?', ESCAPE, b'h']),
            [
                Feed::Hold,
                Feed::Command(Command::Help),
                Feed::Hold,
                Feed::Command(Command::Help)
            ]
        );
    }

    #[test]
    fn s_shows_statistics() {
        let mut hotkey = Hotkey::new();
        assert_eq!(
            feed_all(&mut hotkey, &[ESCAPE, b's']),
            [Feed::Hold, Feed::Command(Command::Stats)]
        );
    }

    #[test]
    fn a_shows_the_audit_log() {
        let mut hotkey = Hotkey::new();
        assert_eq!(
            feed_all(&mut hotkey, &[ESCAPE, b'a']),
            [Feed::Hold, Feed::Command(Command::Audit)]
        );
    }

    #[test]
    fn other_key_after_escape_passes_both_bytes() {
        let mut hotkey = Hotkey::new();
        assert_eq!(
            feed_all(&mut hotkey, &[ESCAPE, b'x', b'y']),
            [Feed::Hold, Feed::PassTwo(ESCAPE, b'x'), Feed::Pass(b'y')]
        );
        // Capitals are other keys too: N is not n.
        assert_eq!(
            feed_all(&mut hotkey, &[ESCAPE, b'N']),
            [Feed::Hold, Feed::PassTwo(ESCAPE, b'N')]
        );
    }

    #[test]
    fn help_names_every_command_on_a_line_of_its_own() {
        for key in ["Tab or n", "1 ... 9", "Ctrl-]", "? or h", "s ", "a "] {
            assert!(HELP_LINES.iter().any(|line| line.contains(key)), "{key}");
        }
        assert!(HELP_LINES.iter().all(|line| !line.contains('\n')));
    }
}

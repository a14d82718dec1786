//! The console multiplexer: the foreground personality's output reaches the
//! physical console, the others' waits in a bounded buffer until they come forward.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::PREFIX;

/// One personality as the console sees it.
#[derive(Debug)]
struct Personality {
    /// Its name in the configuration, used in `[janus]` lines.
    name: String,
    /// Output written while in the background, oldest first, at most `capacity` bytes.
    buffered: VecDeque<u8>,
    /// Bytes dropped from the front of `buffered` since it was last shown.
    overflow: u64,
}

/// Routes each personality's console output to the physical console or to its buffer.
#[derive(Debug)]
pub struct Mux {
    /// The personalities in configuration order.
    personalities: Vec<Personality>,
    /// Bytes each background buffer holds before the oldest are dropped.
    capacity: usize,
    /// Index of the personality whose output goes straight out.
    foreground: usize,
}

impl Mux {
    /// A multiplexer over personalities with these names, in configuration
    /// order, keeping up to `capacity` bytes of each one's background output.
    /// The first personality starts in the foreground.
    pub fn new(names: &[&str], capacity: usize) -> Self {
        let personalities = names
            .iter()
            .map(|name| Personality {
                name: String::from(*name),
                buffered: VecDeque::with_capacity(capacity),
                overflow: 0,
            })
            .collect();
        Mux {
            personalities,
            capacity,
            foreground: 0,
        }
    }

    /// How many personalities share the console.
    pub fn count(&self) -> usize {
        self.personalities.len()
    }

    /// The name of a personality, or `None` past the last one.
    pub fn name(&self, personality: usize) -> Option<&str> {
        self.personalities
            .get(personality)
            .map(|entry| entry.name.as_str())
    }

    /// Index of the foreground personality.
    pub fn foreground(&self) -> usize {
        self.foreground
    }

    /// Takes output a personality wrote to its console: the foreground's goes
    /// to `out` at once, a background one's is buffered, dropping its oldest
    /// bytes once the buffer is full. Output of an unknown personality is dropped.
    pub fn guest_output(&mut self, personality: usize, bytes: &[u8], out: &mut dyn FnMut(&[u8])) {
        let capacity = self.capacity;
        let foreground = self.foreground;
        let Some(entry) = self.personalities.get_mut(personality) else {
            return;
        };
        if personality == foreground {
            if !bytes.is_empty() {
                out(bytes);
            }
            return;
        }
        // Only the newest `capacity` bytes of this write can survive.
        let kept = &bytes[bytes.len().saturating_sub(capacity)..];
        let skipped = bytes.len() - kept.len();
        let excess = (entry.buffered.len() + kept.len()).saturating_sub(capacity);
        entry.buffered.drain(..excess);
        entry.buffered.extend(kept);
        let dropped = u64::try_from(skipped + excess).unwrap_or(u64::MAX);
        entry.overflow = entry.overflow.saturating_add(dropped);
    }

    /// Brings a personality to the foreground: prints
    /// `[janus] foreground: <name>`, then, if some of its background output
    /// was dropped, how much, then the output it buffered, in order, and
    /// empties its buffer. Switching to the current foreground prints the
    /// line too. An unknown personality prints a `[janus]` line saying so and
    /// changes nothing.
    pub fn switch_to(&mut self, personality: usize, out: &mut dyn FnMut(&[u8])) {
        let count = self.personalities.len();
        let Some(entry) = self.personalities.get_mut(personality) else {
            let line = format!(
                "{PREFIX}no personality {} (there are {count})\r\n",
                personality.saturating_add(1)
            );
            out(line.as_bytes());
            return;
        };
        self.foreground = personality;
        out(format!("{PREFIX}foreground: {}\r\n", entry.name).as_bytes());
        if entry.overflow != 0 {
            let line = format!(
                "{PREFIX}{}: {} bytes of output lost while in the background\r\n",
                entry.name, entry.overflow
            );
            out(line.as_bytes());
            entry.overflow = 0;
        }
        let (front, back) = entry.buffered.as_slices();
        for part in [front, back] {
            if !part.is_empty() {
                out(part);
            }
        }
        entry.buffered.clear();
    }

    /// Brings the next personality in configuration order to the foreground,
    /// wrapping after the last, as [`Mux::switch_to`] does.
    pub fn next(&mut self, out: &mut dyn FnMut(&[u8])) {
        let count = self.personalities.len();
        if count == 0 {
            return;
        }
        let next = (self.foreground + 1) % count;
        self.switch_to(next, out);
    }

    /// Bytes of a personality's background output dropped since it was last
    /// shown; 0 for an unknown personality.
    pub fn overflow(&self, personality: usize) -> u64 {
        self.personalities
            .get(personality)
            .map_or(0, |entry| entry.overflow)
    }

    /// Bytes of a personality's background output waiting to be shown; 0 for
    /// an unknown personality.
    pub fn buffered(&self, personality: usize) -> usize {
        self.personalities
            .get(personality)
            .map_or(0, |entry| entry.buffered.len())
    }

    /// Prints one `[janus]` line per personality: its number for the hotkey,
    /// name, whether it is in the foreground, and its buffered and lost bytes.
    pub fn stats(&self, out: &mut dyn FnMut(&[u8])) {
        for (index, entry) in self.personalities.iter().enumerate() {
            let role = if index == self.foreground {
                "foreground"
            } else {
                "background"
            };
            let line = format!(
                "{PREFIX}{} {}: {role}, {} bytes buffered, {} bytes lost\r\n",
                index + 1,
                entry.name,
                entry.buffered.len(),
                entry.overflow
            );
            out(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `action` with an `out` that collects everything into one byte string.
    fn collect(action: impl FnOnce(&mut dyn FnMut(&[u8]))) -> Vec<u8> {
        let mut printed = Vec::new();
        action(&mut |bytes: &[u8]| printed.extend_from_slice(bytes));
        printed
    }

    fn two() -> Mux {
        Mux::new(&["linux", "debian"], 16)
    }

    #[test]
    fn first_personality_starts_in_the_foreground() {
        let mux = two();
        assert_eq!(mux.foreground(), 0);
        assert_eq!(mux.count(), 2);
        assert_eq!(mux.name(1), Some("debian"));
        assert_eq!(mux.name(2), None);
    }

    #[test]
    fn foreground_output_passes_straight_through() {
        let mut mux = two();
        let printed = collect(|out| mux.guest_output(0, b"login: ", out));
        assert_eq!(printed, b"login: ");
        assert_eq!(mux.buffered(0), 0);
    }

    #[test]
    fn background_output_is_buffered_then_shown_in_order_on_switch() {
        let mut mux = two();
        let printed = collect(|out| {
            mux.guest_output(1, b"boot ", out);
            mux.guest_output(1, b"done\r\n", out);
        });
        assert!(printed.is_empty());
        assert_eq!(mux.buffered(1), 11);

        let printed = collect(|out| mux.switch_to(1, out));
        assert_eq!(printed, b"[janus] foreground: debian\r\nboot done\r\n");
        assert_eq!(mux.foreground(), 1);
        assert_eq!(mux.buffered(1), 0);

        // Now the other one is buffered.
        let printed = collect(|out| {
            mux.guest_output(0, b"x", out);
            mux.guest_output(1, b"y", out);
        });
        assert_eq!(printed, b"y");
        assert_eq!(mux.buffered(0), 1);
    }

    #[test]
    fn exactly_capacity_is_kept_whole() {
        let mut mux = two();
        let bytes: Vec<u8> = (b'a'..b'a' + 16).collect();
        collect(|out| {
            mux.guest_output(1, &bytes[..10], out);
            mux.guest_output(1, &bytes[10..], out);
        });
        assert_eq!(mux.buffered(1), 16);
        assert_eq!(mux.overflow(1), 0);
        let printed = collect(|out| mux.switch_to(1, out));
        let mut expected = b"[janus] foreground: debian\r\n".to_vec();
        expected.extend_from_slice(&bytes);
        assert_eq!(printed, expected);
    }

    #[test]
    fn overflow_counts_dropped_bytes_and_keeps_the_newest() {
        let mut mux = two();
        collect(|out| {
            mux.guest_output(1, b"0123456789", out);
            mux.guest_output(1, b"abcdefghij", out);
        });
        assert_eq!(mux.buffered(1), 16);
        assert_eq!(mux.overflow(1), 4);
        let printed = collect(|out| mux.switch_to(1, out));
        assert_eq!(
            printed,
            b"[janus] foreground: debian\r\n\
              [janus] debian: 4 bytes of output lost while in the background\r\n\
              456789abcdefghij"
        );
        assert_eq!(mux.overflow(1), 0);
    }

    #[test]
    fn one_write_larger_than_capacity_keeps_its_tail() {
        let mut mux = two();
        let bytes: Vec<u8> = (0..40u8).collect();
        collect(|out| {
            mux.guest_output(1, b"old", out);
            mux.guest_output(1, &bytes, out);
        });
        assert_eq!(mux.overflow(1), 3 + 24);
        let printed = collect(|out| mux.switch_to(1, out));
        assert!(printed.ends_with(&bytes[24..]));
    }

    #[test]
    fn buffer_keeps_order_across_wraparound() {
        let mut mux = two();
        let printed = collect(|out| {
            for chunk in [&b"abcdefgh"[..], b"ijklmnop", b"qrst", b"uv"] {
                mux.guest_output(1, chunk, out);
            }
            mux.switch_to(1, out);
        });
        assert!(printed.ends_with(b"\r\nghijklmnopqrstuv"));
    }

    #[test]
    fn switching_to_the_current_foreground_still_prints_the_line() {
        let mut mux = two();
        let printed = collect(|out| mux.switch_to(0, out));
        assert_eq!(printed, b"[janus] foreground: linux\r\n");
        assert_eq!(mux.foreground(), 0);
    }

    #[test]
    fn next_cycles_in_configuration_order() {
        let mut mux = Mux::new(&["a", "b", "c"], 8);
        let printed = collect(|out| {
            mux.next(out);
            mux.next(out);
            mux.next(out);
        });
        assert_eq!(
            printed,
            b"[janus] foreground: b\r\n[janus] foreground: c\r\n[janus] foreground: a\r\n"
        );
        assert_eq!(mux.foreground(), 0);
    }

    #[test]
    fn switching_to_an_unknown_personality_changes_nothing() {
        let mut mux = two();
        collect(|out| mux.guest_output(1, b"kept", out));
        let printed = collect(|out| mux.switch_to(5, out));
        assert_eq!(printed, b"[janus] no personality 6 (there are 2)\r\n");
        assert_eq!(mux.foreground(), 0);
        assert_eq!(mux.buffered(1), 4);
    }

    #[test]
    fn output_of_an_unknown_personality_is_dropped() {
        let mut mux = two();
        let printed = collect(|out| mux.guest_output(7, b"lost", out));
        assert!(printed.is_empty());
        assert_eq!(mux.buffered(7), 0);
        assert_eq!(mux.overflow(7), 0);
    }

    #[test]
    fn zero_capacity_counts_everything_as_lost() {
        let mut mux = Mux::new(&["a", "b"], 0);
        collect(|out| mux.guest_output(1, b"abc", out));
        assert_eq!(mux.buffered(1), 0);
        assert_eq!(mux.overflow(1), 3);
    }

    #[test]
    fn stats_list_every_personality() {
        let mut mux = two();
        collect(|out| mux.guest_output(1, b"0123456789abcdefXY", out));
        let printed = collect(|out| mux.stats(out));
        assert_eq!(
            printed,
            b"[janus] 1 linux: foreground, 0 bytes buffered, 0 bytes lost\r\n\
              [janus] 2 debian: background, 16 bytes buffered, 2 bytes lost\r\n"
        );
    }
}

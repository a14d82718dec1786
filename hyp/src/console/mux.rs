//! The console multiplexer: the foreground personality's output reaches the
//! physical console, the others' waits in a bounded buffer until they come
//! forward, and Janus' own lines go between the foreground's lines, not inside them.
//!
//! Every byte a personality writes passes its [`LineGuard`] first, so no
//! guest line can begin the way Janus' lines do, whether it is shown at once
//! or kept. The multiplexer knows what the terminal shows: whether the cursor
//! is in the middle of a line, and the foreground's unfinished line. A Janus
//! line that arrives then waits ([`Urgency::Deferred`]) until the foreground
//! ends its line, or until `defer_ticks` have passed (a prompt waiting for
//! input ends no line): then it breaks in on a line of its own and the
//! unfinished line is shown again after it, so that what the user was typing
//! stays in view. Lines the user asked for with the hotkey break in at once
//! ([`Urgency::Now`]).
//!
//! Nothing is lost silently: a background buffer that overflows drops its
//! oldest bytes and counts them, and the count is shown on the next switch
//! and in the statistics.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::guard::LineGuard;
use super::PREFIX;

/// Longest unfinished line kept to show again after a Janus line broke in;
/// of a longer one, the newest bytes.
pub const LINE_TAIL_BYTES: usize = 256;
/// Janus lines that may wait for the foreground's line to end; one more makes
/// them all break in at once.
pub const DEFERRED_LINES: usize = 32;

/// When a Janus line may be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// The user asked for it (a switch, the help, the statistics): at once,
    /// on a line of its own.
    Now,
    /// Anything else: between two lines of the foreground's output.
    Deferred,
}

/// One personality as the console sees it.
#[derive(Debug)]
struct Personality {
    /// Its name in the configuration, used in `[janus]` lines.
    name: String,
    /// Neutralises output that would forge a Janus line.
    guard: LineGuard,
    /// When the guard began holding bytes back, if it holds any.
    held_since: Option<u64>,
    /// Output written while in the background, oldest first, at most `capacity` bytes.
    buffered: VecDeque<u8>,
    /// Bytes dropped from the front of `buffered` since it was last shown.
    overflow: u64,
    /// Its output since its last newline (the newest `LINE_TAIL_BYTES`).
    line_tail: Vec<u8>,
}

impl Personality {
    fn new(name: &str, capacity: usize) -> Self {
        Personality {
            name: String::from(name),
            guard: LineGuard::new(name),
            held_since: None,
            buffered: VecDeque::with_capacity(capacity),
            overflow: 0,
            line_tail: Vec::new(),
        }
    }

    /// Remembers the unfinished line after `bytes` were written.
    fn track_line(&mut self, bytes: &[u8]) {
        match bytes.iter().rposition(|&byte| byte == b'\n') {
            Some(end) => {
                self.line_tail.clear();
                self.line_tail
                    .extend_from_slice(bytes.get(end + 1..).unwrap_or(&[]));
            }
            None => self.line_tail.extend_from_slice(bytes),
        }
        let excess = self.line_tail.len().saturating_sub(LINE_TAIL_BYTES);
        self.line_tail.drain(..excess);
    }
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
    /// Whether the last byte the terminal was sent was not a newline.
    mid_line: bool,
    /// A Janus line broke into the foreground's unfinished line, which is to be shown again.
    broken: bool,
    /// Janus lines (whole, with their line end) waiting for the foreground's line to end.
    deferred: VecDeque<Vec<u8>>,
    /// When the oldest of `deferred` arrived.
    deferred_since: Option<u64>,
    /// Counter ticks a Janus line, or held guest bytes, may wait.
    defer_ticks: u64,
    /// Reused for what a guard lets through of each write.
    scratch: Vec<u8>,
}

impl Mux {
    /// A multiplexer over personalities with these names, in configuration
    /// order, keeping up to `capacity` bytes of each one's background output,
    /// and letting Janus lines wait up to `defer_ticks` counter ticks for the
    /// foreground's line to end. The first personality starts in the foreground.
    pub fn new(names: &[&str], capacity: usize, defer_ticks: u64) -> Self {
        Mux {
            personalities: names
                .iter()
                .map(|name| Personality::new(name, capacity))
                .collect(),
            capacity,
            foreground: 0,
            mid_line: false,
            broken: false,
            deferred: VecDeque::new(),
            deferred_since: None,
            defer_ticks,
            scratch: Vec::new(),
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

    /// Takes output a personality wrote to its console at counter value `now`:
    /// through its guard, then the foreground's to `out` at once (with the
    /// Janus lines that waited for its line to end placed after that line's
    /// end), a background one's into its buffer, dropping its oldest bytes
    /// once the buffer is full. Output of an unknown personality is dropped.
    pub fn guest_output(
        &mut self,
        personality: usize,
        bytes: &[u8],
        now: u64,
        out: &mut dyn FnMut(&[u8]),
    ) {
        let Some(entry) = self.personalities.get_mut(personality) else {
            return;
        };
        // One buffer for every write: a UART exit (one byte, most often)
        // allocates nothing once it has grown.
        let mut shown = core::mem::take(&mut self.scratch);
        shown.clear();
        entry.guard.filter(bytes, &mut shown);
        entry.held_since = match entry.guard.holds() {
            true => entry.held_since.or(Some(now)),
            false => None,
        };
        self.deliver(personality, &shown, out);
        self.scratch = shown;
    }

    /// Puts a personality's guarded bytes where they go.
    fn deliver(&mut self, personality: usize, bytes: &[u8], out: &mut dyn FnMut(&[u8])) {
        if bytes.is_empty() {
            return;
        }
        let capacity = self.capacity;
        let foreground = personality == self.foreground;
        let Some(entry) = self.personalities.get_mut(personality) else {
            return;
        };
        entry.track_line(bytes);
        if !foreground {
            buffer(entry, bytes, capacity);
            return;
        }
        let split = match self.deferred.is_empty() {
            true => None,
            false => bytes.iter().rposition(|&byte| byte == b'\n'),
        };
        match split {
            Some(end) => {
                let (head, tail) = bytes.split_at(end + 1);
                self.terminal(head, out);
                self.flush_deferred(out);
                self.terminal(tail, out);
            }
            None => self.terminal(bytes, out),
        }
    }

    /// Sends bytes to the terminal, keeping track of where its cursor is.
    fn terminal(&mut self, bytes: &[u8], out: &mut dyn FnMut(&[u8])) {
        if let Some(&last) = bytes.last() {
            out(bytes);
            self.mid_line = last != b'\n';
        }
    }

    /// Shows the Janus lines that waited.
    fn flush_deferred(&mut self, out: &mut dyn FnMut(&[u8])) {
        self.deferred_since = None;
        while let Some(line) = self.deferred.pop_front() {
            self.break_in(&line, out);
        }
    }

    /// Shows a whole Janus line on a line of its own.
    fn break_in(&mut self, line: &[u8], out: &mut dyn FnMut(&[u8])) {
        if self.mid_line {
            out(b"\r\n");
            self.mid_line = false;
            self.broken = true;
        }
        self.terminal(line, out);
    }

    /// Shows one Janus line (`text` is without the prefix and the line end)
    /// at counter value `now`: at once when the terminal is at a line start or
    /// `urgency` is `Now`, otherwise after the foreground's line ends. Call
    /// [`Mux::settle`] after the last of a group of lines.
    pub fn janus_line(
        &mut self,
        text: &str,
        urgency: Urgency,
        now: u64,
        out: &mut dyn FnMut(&[u8]),
    ) {
        let line = format!("{PREFIX}{text}\r\n").into_bytes();
        if urgency == Urgency::Deferred && self.mid_line {
            self.deferred_since.get_or_insert(now);
            self.deferred.push_back(line);
            if self.deferred.len() > DEFERRED_LINES {
                self.flush_deferred(out);
                self.settle(out);
            }
            return;
        }
        // What waited came first.
        self.flush_deferred(out);
        self.break_in(&line, out);
    }

    /// After Janus lines broke into the foreground's unfinished line: shows
    /// that line again, so that a prompt and what was typed after it stay in view.
    pub fn settle(&mut self, out: &mut dyn FnMut(&[u8])) {
        if !core::mem::take(&mut self.broken) {
            return;
        }
        let tail = self
            .personalities
            .get(self.foreground)
            .map(|entry| entry.line_tail.clone())
            .unwrap_or_default();
        self.terminal(&tail, out);
    }

    /// Does what is due at counter value `now`: guest bytes held back too
    /// long by a guard go on, and Janus lines that waited too long for the
    /// foreground's line break in. Returns when to call again, if anything waits.
    pub fn tick(&mut self, now: u64, out: &mut dyn FnMut(&[u8])) -> Option<u64> {
        let defer = self.defer_ticks;
        for personality in 0..self.personalities.len() {
            let Some(entry) = self.personalities.get_mut(personality) else {
                continue;
            };
            if entry
                .held_since
                .is_some_and(|since| now >= since.saturating_add(defer))
            {
                entry.held_since = None;
                let mut released = Vec::new();
                entry.guard.release(&mut released);
                self.deliver(personality, &released, out);
            }
        }
        if self
            .deferred_since
            .is_some_and(|since| now >= since.saturating_add(defer))
        {
            self.flush_deferred(out);
            self.settle(out);
        }
        self.next_deadline()
    }

    /// When [`Mux::tick`] has something to do, if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        let defer = self.defer_ticks;
        self.personalities
            .iter()
            .filter_map(|entry| entry.held_since)
            .chain(self.deferred_since)
            .map(|since| since.saturating_add(defer))
            .min()
    }

    /// Brings a personality to the foreground: prints
    /// `[janus] foreground: <name>`, then, if some of its background output
    /// was dropped, how much, then the output it buffered, in order, and
    /// empties its buffer; with nothing buffered, its unfinished line (its
    /// prompt) is shown again. Switching to the current foreground prints the
    /// line too. An unknown personality prints a `[janus]` line saying so and
    /// changes nothing.
    pub fn switch_to(&mut self, personality: usize, now: u64, out: &mut dyn FnMut(&[u8])) {
        let count = self.personalities.len();
        let Some(name) = self.name(personality).map(String::from) else {
            let text = format!(
                "no personality {} (there are {count})",
                personality.saturating_add(1)
            );
            self.janus_line(&text, Urgency::Now, now, out);
            self.settle(out);
            return;
        };
        self.janus_line(&format!("foreground: {name}"), Urgency::Now, now, out);
        self.broken = false;
        self.foreground = personality;
        let Some(entry) = self.personalities.get_mut(personality) else {
            return;
        };
        let overflow = core::mem::take(&mut entry.overflow);
        let replay = take_all(&mut entry.buffered);
        let tail = entry.line_tail.clone();
        if overflow != 0 {
            let text = format!("{name}: {overflow} bytes of output lost while in the background");
            self.janus_line(&text, Urgency::Now, now, out);
        }
        if replay.is_empty() {
            self.terminal(&tail, out);
        } else {
            self.terminal(&replay, out);
        }
    }

    /// Brings the next personality in configuration order to the foreground,
    /// wrapping after the last, as [`Mux::switch_to`] does.
    pub fn next(&mut self, now: u64, out: &mut dyn FnMut(&[u8])) {
        let count = self.personalities.len();
        if count == 0 {
            return;
        }
        let next = (self.foreground + 1) % count;
        self.switch_to(next, now, out);
    }

    /// The board is about to power off: everything that waits is shown now,
    /// the background personalities' buffers included, each after a line
    /// naming it (and saying how much of its output was lost).
    pub fn drain(&mut self, now: u64, out: &mut dyn FnMut(&[u8])) {
        for personality in 0..self.personalities.len() {
            if let Some(entry) = self.personalities.get_mut(personality) {
                entry.held_since = None;
                let mut released = Vec::new();
                entry.guard.release(&mut released);
                self.deliver(personality, &released, out);
            }
        }
        self.flush_deferred(out);
        for personality in 0..self.personalities.len() {
            let Some(entry) = self.personalities.get_mut(personality) else {
                continue;
            };
            if entry.buffered.is_empty() && entry.overflow == 0 {
                continue;
            }
            let replay = take_all(&mut entry.buffered);
            let overflow = core::mem::take(&mut entry.overflow);
            let text = format!(
                "{}: its output while in the background ({} bytes, {overflow} lost):",
                entry.name,
                replay.len()
            );
            self.janus_line(&text, Urgency::Now, now, out);
            self.terminal(&replay, out);
            if self.mid_line {
                self.terminal(b"\r\n", out);
            }
        }
    }

    /// A personality started again: its next output begins a line.
    pub fn restarted(&mut self, personality: usize) {
        if let Some(entry) = self.personalities.get_mut(personality) {
            entry.guard.reset();
            entry.held_since = None;
        }
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

    /// One statistics line per personality: its number for the hotkey, name,
    /// whether it is in the foreground, and its buffered and lost bytes.
    pub fn stats(&self) -> Vec<String> {
        self.personalities
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                let role = if index == self.foreground {
                    "foreground"
                } else {
                    "background"
                };
                format!(
                    "{} {}: {role}, {} bytes buffered, {} bytes lost",
                    index + 1,
                    entry.name,
                    entry.buffered.len(),
                    entry.overflow
                )
            })
            .collect()
    }
}

/// Empties `queue` into a `Vec`, oldest first, keeping its capacity: what
/// `drain(..).collect()` does, without `VecDeque::drain`'s kilobyte of image.
fn take_all(queue: &mut VecDeque<u8>) -> Vec<u8> {
    let (older, newer) = queue.as_slices();
    let mut bytes = Vec::with_capacity(older.len() + newer.len());
    bytes.extend_from_slice(older);
    bytes.extend_from_slice(newer);
    queue.clear();
    bytes
}

/// Keeps background output, dropping (and counting) the oldest beyond `capacity`.
fn buffer(entry: &mut Personality, bytes: &[u8], capacity: usize) {
    // Only the newest `capacity` bytes of this write can survive.
    let kept = bytes
        .get(bytes.len().saturating_sub(capacity)..)
        .unwrap_or(&[]);
    let skipped = bytes.len() - kept.len();
    let excess = (entry.buffered.len() + kept.len()).saturating_sub(capacity);
    // Popped rather than drained: `VecDeque::drain` costs a kilobyte of image.
    for _ in 0..excess {
        entry.buffered.pop_front();
    }
    entry.buffered.extend(kept);
    let dropped = u64::try_from(skipped + excess).unwrap_or(u64::MAX);
    entry.overflow = entry.overflow.saturating_add(dropped);
}

#[cfg(test)]
mod tests;

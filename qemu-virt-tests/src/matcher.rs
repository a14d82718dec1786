//! Pure console matching: finding needles and hypervisor panic lines in a growing buffer.

/// How much of the console's end an error carries.
pub const OUTPUT_TAIL_BYTES: usize = 4096;

/// How far into a tail the cut may move forward to start on a whole line.
const TAIL_LINE_SLACK_BYTES: usize = 256;

/// Whether `line` (one console line, with or without its `\r\n`) reports a
/// hypervisor panic: it starts with `[janus] PANIC` or contains `[janus] panic`.
pub fn is_panic_line(line: &str) -> bool {
    let line = line.trim_matches(['\r', '\n']);
    line.starts_with("[janus] PANIC") || line.contains("[janus] panic")
}

/// The first hypervisor panic line in `text`, without its line ending.
pub fn find_panic_line(text: &str) -> Option<&str> {
    text.lines()
        .find(|line| is_panic_line(line))
        .map(|line| line.trim_matches('\r'))
}

/// The last [`OUTPUT_TAIL_BYTES`] of `output` as (lossy) UTF-8, starting on a
/// line boundary when one is near and marked with `...` when cut.
pub fn output_tail(output: &[u8]) -> String {
    tail_of(output, OUTPUT_TAIL_BYTES)
}

/// The last `max_bytes` of `output`, as [`output_tail`] describes.
pub(crate) fn tail_of(output: &[u8], max_bytes: usize) -> String {
    let Some(mut start) = output.len().checked_sub(max_bytes).filter(|&s| s > 0) else {
        return String::from_utf8_lossy(output).into_owned();
    };
    let slack_end = output.len().min(start + TAIL_LINE_SLACK_BYTES);
    if let Some(newline) = output[start..slack_end].iter().position(|&b| b == b'\n') {
        start += newline + 1;
    }
    format!("...\n{}", String::from_utf8_lossy(&output[start..]))
}

/// Position of `needle` in `haystack`; an empty needle is found at once.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// What a scan of the buffer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Needle `index` occupies `start..end` of the buffer, before any panic line.
    Found {
        /// Which needle matched.
        index: usize,
        /// Byte offset just past the match.
        end: usize,
    },
    /// A complete panic line came before any needle.
    Panic(String),
    /// Nothing decisive yet.
    Pending,
}

/// Incremental search for needles and panic lines from a start offset.
///
/// Each [`Scanner::scan`] looks only at what arrived since the last one (plus
/// a needle's length of overlap), so waiting on a console that grows one byte
/// at a time stays linear in its size.
#[derive(Debug)]
pub(crate) struct Scanner {
    needles: Vec<Vec<u8>>,
    /// Per needle: the first start offset not yet ruled out.
    search_from: Vec<usize>,
    /// Start of the first line not yet checked for a panic.
    line_start: usize,
}

impl Scanner {
    /// A scanner for `needles` appearing at or after `cursor` in `buffer`.
    ///
    /// Panic lines are checked from the start of the line holding `cursor`,
    /// so a panic line the cursor points into still counts.
    pub(crate) fn new(needles: &[&str], cursor: usize, buffer: &[u8]) -> Self {
        let cursor = cursor.min(buffer.len());
        let line_start = buffer[..cursor]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |newline| newline + 1);
        Self {
            needles: needles.iter().map(|n| n.as_bytes().to_vec()).collect(),
            search_from: vec![cursor; needles.len()],
            line_start,
        }
    }

    /// Looks at `buffer` (which only ever grows between calls).
    ///
    /// With `complete` set (the stream has ended), an unterminated last line
    /// counts as a line for panic detection.
    ///
    /// A needle wins over a panic line when it starts before that line ends,
    /// so a test can expect the panic line itself. Among needles, the one
    /// whose match ends first wins, then the lower index.
    pub(crate) fn scan(&mut self, buffer: &[u8], complete: bool) -> Scan {
        let mut best: Option<(usize, usize, usize)> = None;
        for (index, needle) in self.needles.iter().enumerate() {
            let from = self.search_from[index].min(buffer.len());
            match find(&buffer[from..], needle) {
                Some(offset) => {
                    let start = from + offset;
                    let end = start + needle.len();
                    if best.is_none_or(|(best_end, _, _)| end < best_end) {
                        best = Some((end, index, start));
                    }
                }
                None => {
                    let overlap = needle.len().saturating_sub(1);
                    self.search_from[index] = buffer.len().saturating_sub(overlap).max(from);
                }
            }
        }
        let panic = self.next_panic_line(buffer, complete);
        match (best, panic) {
            (Some((end, index, start)), Some((panic_end, _))) if start < panic_end => {
                Scan::Found { index, end }
            }
            (_, Some((_, line))) => Scan::Panic(line),
            (Some((end, index, _)), None) => Scan::Found { index, end },
            (None, None) => Scan::Pending,
        }
    }

    /// The unterminated last line of `buffer`, when it looks like a panic line.
    ///
    /// Valid after a [`Scanner::scan`] of the same buffer returned `Pending`.
    pub(crate) fn trailing_panic_line(&self, buffer: &[u8]) -> Option<String> {
        let rest = buffer.get(self.line_start..)?;
        let line = String::from_utf8_lossy(rest);
        is_panic_line(&line).then(|| line.trim_matches(['\r', '\n']).to_owned())
    }

    /// The first panic line at or after `line_start`: the offset where it
    /// ends and its text. Advances `line_start` past lines that are not.
    fn next_panic_line(&mut self, buffer: &[u8], complete: bool) -> Option<(usize, String)> {
        loop {
            let rest = buffer.get(self.line_start..)?;
            let (line, line_end) = match rest.iter().position(|&b| b == b'\n') {
                Some(newline) => (&rest[..newline], self.line_start + newline),
                None if complete && !rest.is_empty() => (rest, buffer.len()),
                None => return None,
            };
            let text = String::from_utf8_lossy(line);
            if is_panic_line(&text) {
                return Some((line_end, text.trim_matches('\r').to_owned()));
            }
            if line_end == buffer.len() {
                return None;
            }
            self.line_start = line_end + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_lines_are_recognised() {
        assert!(is_panic_line("[janus] PANIC at hyp/src/mm/frame.rs:10"));
        assert!(is_panic_line("[janus] PANIC\r\n"));
        assert!(is_panic_line("cpu1: [janus] panic: out of frames"));
        assert!(!is_panic_line(
            "work: [janus] PANIC mid-line is not a start"
        ));
        assert!(!is_panic_line("[janus] foreground: personal"));
        assert!(!is_panic_line("Kernel panic - not syncing"));
    }

    #[test]
    fn find_panic_line_returns_the_first_without_line_ending() {
        let text = "boot\r\n[janus] PANIC first\r\n[janus] PANIC second\n";
        assert_eq!(find_panic_line(text), Some("[janus] PANIC first"));
        assert_eq!(find_panic_line("all fine\n"), None);
    }

    #[test]
    fn tail_keeps_short_output_whole() {
        assert_eq!(output_tail(b"short\n"), "short\n");
    }

    #[test]
    fn tail_of_long_output_starts_on_a_line() {
        let mut output = Vec::new();
        for line in 0..2000 {
            output.extend_from_slice(format!("line {line}\n").as_bytes());
        }
        let tail = output_tail(&output);
        assert!(tail.starts_with("...\nline "), "{}", &tail[..20]);
        assert!(tail.ends_with("line 1999\n"));
        assert!(tail.len() <= OUTPUT_TAIL_BYTES + 4);
    }

    #[test]
    fn scan_finds_needle_after_cursor_only() {
        let buffer = b"login: x\nlogin: y\n";
        let mut scanner = Scanner::new(&["login:"], 3, buffer);
        assert_eq!(
            scanner.scan(buffer, false),
            Scan::Found { index: 0, end: 15 }
        );
    }

    #[test]
    fn scan_finds_needle_split_across_growth() {
        let full = b"booting...\nwork: ready\n";
        let mut scanner = Scanner::new(&["work: ready"], 0, b"");
        for len in 0..full.len() {
            let scan = scanner.scan(&full[..len], false);
            if len < 22 {
                assert_eq!(scan, Scan::Pending, "at {len}");
            } else {
                assert_eq!(scan, Scan::Found { index: 0, end: 22 });
            }
        }
    }

    #[test]
    fn earliest_ending_needle_wins() {
        let buffer = b"abc personal: ready";
        let mut scanner = Scanner::new(&["personal: ready", "abc", "ab"], 0, buffer);
        assert_eq!(
            scanner.scan(buffer, false),
            Scan::Found { index: 2, end: 2 }
        );
    }

    #[test]
    fn empty_needle_matches_at_cursor() {
        let mut scanner = Scanner::new(&[""], 4, b"abcdef");
        assert_eq!(
            scanner.scan(b"abcdef", false),
            Scan::Found { index: 0, end: 4 }
        );
    }

    #[test]
    fn panic_line_before_needle_fails() {
        let buffer = b"boot\n[janus] PANIC: bad frame\nlogin:";
        let mut scanner = Scanner::new(&["login:"], 0, buffer);
        assert_eq!(
            scanner.scan(buffer, false),
            Scan::Panic("[janus] PANIC: bad frame".to_owned())
        );
    }

    #[test]
    fn needle_before_panic_line_succeeds() {
        let buffer = b"login:\n[janus] PANIC\n";
        let mut scanner = Scanner::new(&["login:"], 0, buffer);
        assert_eq!(
            scanner.scan(buffer, false),
            Scan::Found { index: 0, end: 6 }
        );
    }

    #[test]
    fn needle_inside_the_panic_line_succeeds() {
        let buffer = b"[janus] PANIC on purpose\n";
        let mut scanner = Scanner::new(&["[janus] PANIC"], 0, buffer);
        assert_eq!(
            scanner.scan(buffer, false),
            Scan::Found { index: 0, end: 13 }
        );
    }

    #[test]
    fn panic_line_is_only_final_once_complete() {
        let mut scanner = Scanner::new(&["never"], 0, b"");
        let partial = b"ok\n[janus] PANIC: half";
        assert_eq!(scanner.scan(partial, false), Scan::Pending);
        assert_eq!(
            scanner.trailing_panic_line(partial).as_deref(),
            Some("[janus] PANIC: half")
        );
        assert_eq!(
            scanner.scan(partial, true),
            Scan::Panic("[janus] PANIC: half".to_owned())
        );
        let whole = b"ok\n[janus] PANIC: half done\r\n";
        assert_eq!(
            scanner.scan(whole, false),
            Scan::Panic("[janus] PANIC: half done".to_owned())
        );
    }

    #[test]
    fn panic_line_under_the_cursor_still_counts() {
        let buffer = b"x\n[janus] PANIC now\n";
        let mut scanner = Scanner::new(&["never"], 6, buffer);
        assert_eq!(
            scanner.scan(buffer, false),
            Scan::Panic("[janus] PANIC now".to_owned())
        );
    }

    #[test]
    fn panic_lines_before_the_cursor_line_are_ignored() {
        let buffer = b"[janus] PANIC expected\nnext\n";
        let mut scanner = Scanner::new(&["never"], 23, buffer);
        assert_eq!(scanner.scan(buffer, true), Scan::Pending);
    }
}

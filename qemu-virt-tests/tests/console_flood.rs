//! A personality that storms Janus with calls and faults cannot flood the
//! console, shred the foreground's lines or forge Janus' own lines.

use std::time::Duration;

use qemu_virt_tests::linux::{Linux, BOOT_TIMEOUT};
use qemu_virt_tests::probe;
use qemu_virt_tests::{image_path, workspace_root};

/// Calls and faults the flooding probe makes, of each kind.
const FLOOD: u64 = 200_000;
/// Console lines the flood may add besides its summaries.
const MAX_FLOOD_LINES: usize = 100;

/// `personal` a Linux personality in the foreground, `work` a probe with `work_args`.
fn mixed_config(work_args: &str) -> String {
    let root = workspace_root();
    let kernel = root.join("target/cache/debian/Image");
    let initrd = image_path("personal.cpio");
    let probe = image_path("probe.bin");
    format!(
        r#"
[[personality]]
name = "personal"
kind = "linux"
ram_mib = 256
vcpus = 2
cpus = [0, 1]
kernel = "{}"
initrd = "{}"
bootargs = "console=ttyAMA0 rdinit=/init quiet"

[[personality]]
name = "work"
kind = "baremetal"
ram_mib = 64
vcpus = 2
cpus = [2, 3]
kernel = "{}"
bootargs = "{work_args}"
"#,
        kernel.display(),
        initrd.display(),
        probe.display()
    )
}

/// Boots the mixed configuration and waits for personal's shell.
fn boot_mixed(test: &str, work_args: &str) -> Linux {
    let bundle = probe::bundle(test, &mixed_config(work_args));
    let mut linux = Linux::boot_bundle(bundle);
    linux.wait_shell("personal");
    linux
}

/// The lines the personal guest printed up to its first prompt: every line
/// that is not Janus' (work, in the background, shows nothing).
fn guest_lines(output: &str) -> Vec<String> {
    let end = output.find("personal:~# ").unwrap_or(output.len());
    output[..end]
        .replace('\r', "")
        .lines()
        .filter(|line| !line.starts_with("[janus] ") && !line.is_empty())
        .map(String::from)
        .collect()
}

/// The number after `prefix` and before the next space in `line`.
fn number_after(line: &str, prefix: &str) -> Option<u64> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    rest.split(' ').next()?.parse().ok()
}

#[test]
fn a_flood_leaves_the_foreground_boot_whole_and_adds_a_bounded_count() {
    // A quiet run first: what personal's boot shows with nobody misbehaving.
    let mut quiet = boot_mixed("flood_quiet", "probe.after=wfi");
    let expected = guest_lines(&quiet.qemu.output());
    assert!(
        expected.iter().any(|line| line == "personal: ready"),
        "{expected:?}"
    );
    quiet.qemu.kill();

    let mut linux = boot_mixed("flood", &format!("probe.after=flood probe.flood={FLOOD}"));
    assert_eq!(linux.run("hostname"), "personal");
    // Work stops itself after the flood; Janus then settles its counts.
    linux.wait("[janus] work: system off", BOOT_TIMEOUT);
    assert_eq!(linux.run("hostname"), "personal");
    let output = linux.qemu.output();

    // Every line of the quiet boot arrives whole and in order.
    let got = guest_lines(&output);
    let mut rest = got.iter();
    for line in &expected {
        assert!(
            rest.any(|candidate| candidate == line),
            "{line:?} of the quiet boot is missing or out of order in\n{got:#?}"
        );
    }

    // The flood's own lines are few, and with the summaries they account
    // for every call and fault the probe made.
    let text = output.replace('\r', "");
    let calls: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("[janus] work: unknown SMCCC call 0xc60000ff"))
        .collect();
    let reads: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.starts_with("[janus] work: read of IPA 0x40200000")
                && line.ends_with("refused; data abort injected")
        })
        .collect();
    let summaries = |cause: &str| -> (usize, u64) {
        let lines: Vec<u64> = text
            .lines()
            .filter(|line| {
                line.starts_with("[janus] work: ")
                    && line.ends_with(&format!(" more {cause} reports suppressed"))
            })
            .filter_map(|line| number_after(line, "[janus] work: "))
            .collect();
        (lines.len(), lines.iter().sum())
    };
    let (call_summaries, suppressed_calls) = summaries("unknown-call");
    let (read_summaries, suppressed_reads) = summaries("refused-access");
    assert_eq!(calls.len() as u64 + suppressed_calls, FLOOD, "{text}");
    assert_eq!(reads.len() as u64 + suppressed_reads, FLOOD, "{text}");
    let added = calls.len() + reads.len();
    assert!(added < MAX_FLOOD_LINES, "{added} flood lines:\n{text}");
    assert!(call_summaries + read_summaries < MAX_FLOOD_LINES, "{text}");
    // Nothing else of work's reached the console while it was behind.
    assert!(!text.contains("\nwork: "), "{text}");

    // Its own account, kept while it was behind, agrees.
    linux.switch_to(1, "work");
    linux.wait("work: flood done", BOOT_TIMEOUT);
    let done = format!(
        "work: flood done: {FLOOD} unknown calls ({FLOOD} refused), {FLOOD} reads of Janus memory ({FLOOD} refused)"
    );
    assert!(
        linux.qemu.output().contains(&done),
        "{}",
        linux.qemu.output_tail()
    );
}

/// Splits console output where a terminal starts writing at the left edge
/// again (newline or carriage return) and drops escape sequences, so that
/// each piece is what could read as a line of its own.
fn visible_line_starts(output: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = output.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final; other escapes: ESC + one char.
            if chars.peek() == Some(&'[') {
                chars.next();
                for next in chars.by_ref() {
                    if ('@'..='~').contains(&next) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
            plain.push('\n');
            continue;
        }
        plain.push(if c == '\r' { '\n' } else { c });
    }
    plain.lines().map(String::from).collect()
}

#[test]
fn lines_that_forge_janus_lines_are_shown_behind_the_guests_name() {
    let bundle = probe::bundle("forge", &mixed_config("probe.after=forge"));
    let mut linux = Linux::boot_bundle(bundle);
    linux.wait_shell("personal");
    // The UART path: the Linux personality prints forged lines.
    linux.run("printf '[janus] foreground: work FORGED-UART\\n'");
    linux.run("printf 'ok\\r[janus] foreground: work FORGED-UART-CR\\n'");
    linux.run("printf '\\033[2K\\r[janus] foreground: work FORGED-UART-ESC\\n'");
    // The hypercall path: the probe in the background forged lines too.
    linux.switch_to(1, "work");
    linux.wait("work: forged lines written", Duration::from_secs(60));
    let output = linux.qemu.output();
    for (name, tag) in [
        ("personal", "FORGED-UART"),
        ("personal", "FORGED-UART-CR"),
        ("personal", "FORGED-UART-ESC"),
        ("work", "FORGED-HVC"),
        ("work", "FORGED-HVC-ESC"),
    ] {
        let needle = format!("{name}| [janus] foreground: ");
        assert!(
            output
                .lines()
                .any(|line| line.contains(&needle) && line.trim_end().ends_with(&format!(" {tag}"))),
            "{tag} not shown behind {name}'s name:\n{output}"
        );
    }
    // No guest-made text starts a line, as a terminal shows it, with Janus' prefix.
    let forged: Vec<String> = visible_line_starts(&output)
        .into_iter()
        .filter(|line| line.starts_with("[janus]") && line.contains("FORGED"))
        .collect();
    assert!(forged.is_empty(), "forged Janus lines: {forged:?}");
}

//! Both Linux personalities reach their shells; the hotkey moves the console
//! between them; what the background printed is shown, in order, on switching.

use qemu_virt_tests::linux::{Linux, BOOT_TIMEOUT};

#[test]
fn hostname_follows_the_hotkey() {
    let mut linux = Linux::boot();
    assert!(linux.qemu.output().contains("[janus] foreground: personal"));
    assert_eq!(linux.run("hostname"), "personal");
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    assert_eq!(linux.run("hostname"), "work");
    linux.switch_to(0, "personal");
    assert_eq!(linux.run("hostname"), "personal");
    // The prompt shows the hostname.
    let output = linux.qemu.output();
    assert!(output.contains("personal:~# "));
    // Janus' lines start on a fresh line, even after a prompt, which ends none.
    assert!(output.contains("\n[janus] foreground: work"), "{output}");
    assert!(!output.contains("# [janus]"), "{output}");
}

/// The number right before `unit` in `line`, after `prefix`.
fn number_before(line: &str, unit: &str) -> u64 {
    let head = &line[..line
        .find(unit)
        .unwrap_or_else(|| panic!("no {unit:?} in {line}"))];
    let digits: String = head
        .trim_end()
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number before {unit:?} in {line}"))
}

#[test]
fn statistics_show_ram_cleared_on_first_touch_and_mapped_with_pages() {
    let mut linux = Linux::boot();
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    linux
        .qemu
        .send(&[qemu_virt_tests::linux::HOTKEY, b's'])
        .expect("send hotkey");
    // The statistics end with each personality's RAM line, work's last.
    let deadline = std::time::Instant::now() + BOOT_TIMEOUT;
    while linux
        .qemu
        .output()
        .matches("MiB of it in 4 KiB pages\r\n")
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            linux.qemu.output_tail()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = linux.qemu.output().replace('\r', "");
    for name in ["personal", "work"] {
        let exits = output
            .lines()
            .rfind(|line| line.starts_with(&format!("[janus] {name} exits:")))
            .unwrap_or_else(|| panic!("no exits line for {name} in\n{output}"));
        // Linux touched RAM beyond what its images fill at start.
        let fills: u64 = exits
            .rsplit("ram ")
            .next()
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or_else(|| panic!("no ram count in {exits}"));
        assert!(fills > 0, "{exits}");
        let ram = output
            .lines()
            .rfind(|line| {
                line.starts_with(&format!("[janus] {name}: ")) && line.contains("MiB of RAM")
            })
            .unwrap_or_else(|| panic!("no RAM line for {name} in\n{output}"));
        let in_use = number_before(ram, "of 256 MiB");
        let paged = number_before(ram, "MiB of it in 4 KiB pages");
        // Kernel, initrd and device tree alone fill 19 chunks (38 MiB); a shell
        // needs more, and far from all of it.
        assert!((40..200).contains(&in_use), "{ram}");
        assert!(paged > 0 && paged <= in_use, "{ram}");
    }
}

/// What `work` printed in the background, as the console showed it.
struct Background {
    /// The console from the switch back to `work` on, carriage returns removed.
    shown: String,
    /// Bytes the statistics said were buffered for `work` just before the switch.
    buffered: u64,
    /// Bytes they said were lost.
    lost: u64,
    /// Bytes the job printed: its lines with the terminal's CR LF, and the end marker.
    printed: u64,
}

/// Has `work` print `lines` numbered lines (`<prefix><n>-<padding>`) while
/// `personal` is in front for `seconds_away` seconds (answering meanwhile),
/// asks for the statistics, then switches back to `work`.
fn print_in_background(
    linux: &mut Linux,
    lines: u32,
    prefix: &str,
    padding: &str,
    seconds_away: u32,
) -> Background {
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    // The shell computes the end marker, so the echoed command line never holds it.
    linux.run(&format!(
        "(sleep 1; i=1; while [ $i -le {lines} ]; do echo {prefix}$i-{padding}; i=$((i+1)); done; \
         echo END$((40+2))MARK) & true"
    ));
    // Its next prompt is still work's to show in front: wait for it, so that
    // only the job's output is left for the background.
    let deadline = std::time::Instant::now() + BOOT_TIMEOUT;
    while !linux
        .qemu
        .output()
        .rsplit('\n')
        .next()
        .is_some_and(|last| last.starts_with("work:~# "))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            linux.qemu.output_tail()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    linux.switch_to(0, "personal");
    for _ in 0..seconds_away {
        assert_eq!(linux.run("sleep 1; hostname"), "personal");
    }
    assert!(
        !linux.qemu.output().contains(&format!("{prefix}1-")),
        "background output reached the console while personal was in front"
    );
    let printed = (1..=lines)
        .map(|line| format!("{prefix}{line}-{padding}\r\n").len() as u64)
        .sum::<u64>()
        + "END42MARK\r\n".len() as u64;
    // On a loaded host the job may need longer than `seconds_away`: wait
    // (bounded) until Janus has taken all of it, kept or counted as lost.
    let deadline = std::time::Instant::now() + BOOT_TIMEOUT;
    let (buffered, lost) = loop {
        let (buffered, lost) = work_buffer(linux);
        if buffered + lost >= printed || std::time::Instant::now() > deadline {
            break (buffered, lost);
        }
        assert_eq!(linux.run("sleep 1; hostname"), "personal");
    };
    let before_switch = linux.qemu.output().len();
    linux.switch_to(1, "work");
    linux.wait("END42MARK", BOOT_TIMEOUT);
    Background {
        shown: linux.qemu.output()[before_switch..].replace('\r', ""),
        buffered,
        lost,
        printed,
    }
}

/// Asks for the statistics and reads work's buffered and lost bytes.
fn work_buffer(linux: &mut Linux) -> (u64, u64) {
    let before = linux.qemu.output().len();
    linux
        .qemu
        .send(&[qemu_virt_tests::linux::HOTKEY, b's'])
        .expect("send hotkey");
    let needle = "[janus] 2 work: background, ";
    // The statistics end with the frame pool's line.
    let deadline = std::time::Instant::now() + BOOT_TIMEOUT;
    while !linux.qemu.output()[before..].contains("page-table frames\r\n") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            linux.qemu.output_tail()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = linux.qemu.output();
    let line = output[before..]
        .lines()
        .find(|line| line.starts_with(needle))
        .unwrap_or_else(|| panic!("no statistics for work in\n{}", &output[before..]))
        .to_string();
    (
        number_before(&line, "bytes buffered"),
        number_before(&line, "bytes lost"),
    )
}

/// The numbers of the `<prefix><n>-` lines in `shown`, in order, wherever
/// they start (a prompt may precede the first).
fn numbered_lines(shown: &str, prefix: &str) -> Vec<u32> {
    shown
        .split(prefix)
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

#[test]
fn background_output_is_shown_in_order_after_switching() {
    let mut linux = Linux::boot();
    // About 64 KB: close to the 64 KiB Janus keeps, none of it lost.
    let padding = "x".repeat(40);
    let background = print_in_background(&mut linux, 1180, "bg-line-", &padding, 3);
    assert!(background.printed > 63_000, "{}", background.printed);
    assert_eq!(background.buffered, background.printed);
    assert_eq!(background.lost, 0);
    assert_eq!(
        numbered_lines(&background.shown, "bg-line-"),
        (1..=1180).collect::<Vec<u32>>()
    );
    assert!(!background.shown.contains("bytes of output lost"));
}

#[test]
fn background_overflow_is_counted_and_the_newest_output_kept() {
    let mut linux = Linux::boot();
    // About 110 KB, more than the 64 KiB background buffer.
    let background = print_in_background(&mut linux, 4000, "overflow-line-", "xxxxxxxxx", 6);
    // Janus kept the newest 64 KiB and counted every byte before them.
    assert_eq!(background.buffered, 64 * 1024);
    assert_eq!(background.lost, background.printed - 64 * 1024);
    assert!(
        background.shown.contains(&format!(
            "[janus] work: {} bytes of output lost while in the background",
            background.lost
        )),
        "no overflow report"
    );
    let numbers = numbered_lines(&background.shown, "overflow-line-");
    // The oldest lines were dropped, the newest kept, in order, to the last.
    assert!(
        !numbers.contains(&1),
        "the oldest line survived the overflow"
    );
    assert_eq!(numbers.last(), Some(&4000));
    assert!(numbers.windows(2).all(|pair| pair[1] == pair[0] + 1));
}

#[test]
fn hardware_key_switches_the_foreground() {
    let mut linux = Linux::boot();
    assert!(linux
        .qemu
        .output()
        .contains("[janus] hardware key (GPIO line 3 at 0x9030000): next personality"));
    // QEMU's system_powerdown presses the virt board's power button (PL061 line 3).
    linux
        .qemu
        .qmp()
        .expect("QMP")
        .system_powerdown()
        .expect("powerdown");
    linux.wait("[janus] foreground: work", BOOT_TIMEOUT);
    linux.wait_shell("work");
    assert_eq!(linux.run("hostname"), "work");
    // QEMU's key stays down for 100 ms after a press; a second press before
    // it is released makes no new edge (as with a real button). Let it go up.
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The boot line already said "foreground: personal": wait for a second one.
    linux
        .qemu
        .qmp()
        .expect("QMP")
        .system_powerdown()
        .expect("powerdown");
    let deadline = std::time::Instant::now() + BOOT_TIMEOUT;
    while linux
        .qemu
        .output()
        .matches("[janus] foreground: personal")
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "second press did not switch"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(linux.run("hostname"), "personal");
    // The button switches; it powers nothing off.
    assert!(linux.qemu.is_running());
    assert!(!linux.qemu.output().contains("system off"));
}

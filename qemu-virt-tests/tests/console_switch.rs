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
    assert!(linux.qemu.output().contains("personal:~# "));
}

#[test]
fn background_output_is_shown_in_order_after_switching() {
    let mut linux = Linux::boot();
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    // Start printing 400 numbered lines a second from now, then leave.
    linux.run("(sleep 1; i=1; while [ $i -le 400 ]; do echo bg-line-$i; i=$((i+1)); done; echo BG$((40+2))DONE) & true");
    linux.switch_to(0, "personal");
    // While work prints in the background, personal keeps answering.
    for _ in 0..3 {
        assert_eq!(linux.run("sleep 1; hostname"), "personal");
    }
    let before_switch = linux.qemu.output().len();
    assert!(
        !linux.qemu.output().contains("bg-line-1\r"),
        "background output reached the console while personal was in front"
    );
    linux.switch_to(1, "work");
    linux.wait("BG42DONE", BOOT_TIMEOUT);
    let shown = linux.qemu.output()[before_switch..].replace('\r', "");
    // Each numbered line, wherever it starts (a prompt may precede the first).
    let numbers: Vec<u32> = shown
        .split("bg-line-")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    assert_eq!(numbers, (1..=400).collect::<Vec<u32>>());
}

#[test]
fn background_overflow_is_counted_and_the_newest_output_kept() {
    let mut linux = Linux::boot();
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    // About 100 KB, more than the 64 KiB background buffer.
    linux.run("(sleep 1; i=1; while [ $i -le 4000 ]; do echo overflow-line-$i-xxxxxxxxx; i=$((i+1)); done; echo OF$((40+2))DONE) & true");
    linux.switch_to(0, "personal");
    for _ in 0..6 {
        assert_eq!(linux.run("sleep 1; hostname"), "personal");
    }
    linux.switch_to(1, "work");
    linux.wait("OF42DONE", BOOT_TIMEOUT);
    let output = linux.qemu.output();
    assert!(
        output.contains("bytes of output lost while in the background"),
        "no overflow report"
    );
    assert!(output.contains("overflow-line-4000-"));
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

//! SYSTEM_OFF, SYSTEM_RESET and an unrecoverable fault stop or restart only the
//! personality concerned; the other keeps running and Janus stays up.

use std::time::Duration;

use qemu_virt_tests::probe::{self, wait_for_all, LINE_TIMEOUT, SCAN};

/// The highest `alive N` heartbeat `name` has printed so far.
fn heartbeat(output: &str, name: &str) -> u64 {
    let prefix = format!("{name}: alive ");
    output
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// Waits for `name` to print `beats` more heartbeats than it had.
fn keeps_running(qemu: &mut qemu_virt_tests::Qemu, name: &str, beats: u64) {
    let now = heartbeat(&qemu.output(), name);
    let needle = format!("{name}: alive {}", now + beats);
    wait_for_all(qemu, &[&needle], LINE_TIMEOUT).unwrap();
}

#[test]
fn system_off_stops_only_that_personality() {
    let mut qemu = probe::boot("lifecycle_off", SCAN, &format!("{SCAN} probe.after=off"));
    wait_for_all(
        &mut qemu,
        &["work: powering off", "[janus] work: system off"],
        LINE_TIMEOUT,
    )
    .unwrap();
    keeps_running(&mut qemu, "personal", 3);
    let output = qemu.output();
    assert!(!output.contains("work: SYSTEM_OFF returned"), "{output}");
    assert!(
        !output.contains("work: alive"),
        "work kept running:\n{output}"
    );
    assert!(!output.contains("powering the board off"), "{output}");
    assert!(qemu.is_running());
}

#[test]
fn unrecoverable_fault_stops_only_that_personality() {
    let mut qemu = probe::boot(
        "lifecycle_crash",
        SCAN,
        &format!("{SCAN} probe.after=crash"),
    );
    wait_for_all(
        &mut qemu,
        &[
            "work: crashing",
            "[janus] work: instruction abort at its exception vector",
        ],
        LINE_TIMEOUT,
    )
    .unwrap();
    keeps_running(&mut qemu, "personal", 3);
    let output = qemu.output();
    assert!(output.contains("stopping it"), "{output}");
    // Janus shows the state the personality died in: its vector base is the
    // address the probe moved it to.
    assert!(
        output.contains("[janus] work: pc 0x8000000200 "),
        "{output}"
    );
    assert!(output.contains(" vbar_el1 0x8000000000 "), "{output}");
    assert!(
        !output.contains("work: still running after the crash"),
        "{output}"
    );
    assert!(!output.contains("work: alive"), "{output}");
}

#[test]
fn system_reset_restarts_only_that_personality() {
    let mut qemu = probe::boot(
        "lifecycle_reset",
        SCAN,
        &format!("{SCAN} probe.after=reset"),
    );
    wait_for_all(
        &mut qemu,
        &["[janus] work: system reset", "[janus] work: restarted"],
        LINE_TIMEOUT,
    )
    .unwrap();
    // The restarted work boots again from a clean image: a second hello and a
    // second full round of attacks.
    let deadline = std::time::Instant::now() + LINE_TIMEOUT;
    while qemu
        .output()
        .matches("work: attacks: 20 of 20 refused")
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            qemu.output_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    keeps_running(&mut qemu, "personal", 3);
    let output = qemu.output();
    assert!(
        output.matches("work: hello from vCPU 0").count() >= 2,
        "{output}"
    );
    assert!(output.matches("work: vCPU 1 up").count() >= 2, "{output}");
    // Each start finds its RAM clear, the restart included: what the first
    // start left behind is gone, even where Janus read it for the console
    // hypercall before the guest touched it, and right after the device tree,
    // in the page Janus loads it into.
    assert!(
        output
            .matches("work: RAM clear at 5 places, first store kept")
            .count()
            >= 2,
        "{output}"
    );
    assert!(!output.contains("RAM not clear"), "{output}");
    assert!(!output.contains("probe-leftover!"), "{output}");
}

#[test]
fn board_powers_off_when_both_personalities_are_off() {
    let off = format!("{SCAN} probe.after=off");
    let mut qemu = probe::boot("lifecycle_both_off", &off, &off);
    wait_for_all(
        &mut qemu,
        &["[janus] every personality is off; powering the board off"],
        LINE_TIMEOUT,
    )
    .unwrap();
    let status = qemu.wait_exit(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}

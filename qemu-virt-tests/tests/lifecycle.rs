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
    probe::switch_to(&mut qemu, 1).unwrap();
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

/// Where the probe config places `work`'s 64 MiB of RAM.
const WORK_RAM: u64 = 0xb800_0000;
const MIB: u64 = 1024 * 1024;

#[test]
fn ram_an_earlier_occupant_left_is_clear_at_the_first_start() {
    // What a previous run of the board (a warm reset) may have left in work's RAM:
    // 2 MiB of data over the chunk its image goes into (its statics and stacks lie
    // past the image), the chunk of its device tree, and every chunk its RAM check
    // reads, the console hypercall's buffer included ("probe-leftover!\n" first).
    let mut stale = b"probe-leftover!\n".to_vec();
    while stale.len() < (2 * MIB) as usize {
        stale.extend_from_slice(b"stale-occupant!\n");
    }
    let dir = qemu_virt_tests::workspace_root()
        .join("target")
        .join("test-bundles");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stale-ram.bin");
    std::fs::write(&file, &stale).unwrap();
    let bundle = probe::bundle("lifecycle_stale_ram", &probe::probe_config(SCAN, SCAN));
    let mut config = qemu_virt_tests::QemuConfig::new(qemu_virt_tests::image_path("janus.bin"));
    config.initrd = Some(bundle);
    config.timeout = Duration::from_secs(240);
    // Chunks 0 (image), 2 and 3 (checked), 16 (hypercall buffer), 29 (first store),
    // 30 (checked) and 31 (device tree).
    for chunk in [0, 2, 3, 16, 29, 30, 31] {
        config.extra_args.push("-device".into());
        config.extra_args.push(format!(
            "loader,file={},addr={:#x},force-raw=on",
            file.display(),
            WORK_RAM + chunk * 2 * MIB
        ));
    }
    let mut qemu = qemu_virt_tests::Qemu::start(config).expect("start QEMU");
    wait_for_all(
        &mut qemu,
        &[
            "work: RAM clear at 5 places, first store kept",
            "work: attacks: 20 of 20 refused",
            "personal: attacks: 20 of 20 refused",
        ],
        LINE_TIMEOUT,
    )
    .unwrap();
    keeps_running(&mut qemu, "work", 2);
    let output = qemu.output();
    assert!(!output.contains("RAM not clear"), "{output}");
    assert!(!output.contains("probe-leftover!"), "{output}");
    assert!(!output.contains("stale-occupant"), "{output}");
    assert!(output.contains("work: 2 vCPUs online"), "{output}");
}

#[test]
fn board_powers_off_when_both_personalities_are_off() {
    let off = format!("{SCAN} probe.after=off");
    let mut qemu = probe::boot("lifecycle_both_off", &off, &off);
    probe::wait_for_output(
        &mut qemu,
        &["[janus] every personality is off; powering the board off"],
        LINE_TIMEOUT,
    )
    .unwrap();
    let status = qemu.wait_exit(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
    // Work was in the background all along: its last lines, kept by Janus,
    // are shown before the board goes off, after a line that says whose they are.
    let output = qemu.output().replace('\r', "");
    let kept = output
        .find("[janus] work: its output while in the background")
        .unwrap_or_else(|| panic!("work's kept output was not shown:\n{output}"));
    let off = output
        .find("[janus] every personality is off")
        .unwrap_or_else(|| panic!("{output}"));
    let shown = &output[kept..off];
    for line in [
        "work: hello from vCPU 0",
        "work: attacks: 20 of 20 refused",
        "work: powering off\n",
    ] {
        assert!(
            shown.contains(line),
            "{line:?} not shown before power-off:\n{output}"
        );
    }
    assert!(
        !output[..kept].contains("work: powering off"),
        "work's output reached the console while it was in the background:\n{output}"
    );
}

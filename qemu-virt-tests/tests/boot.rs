//! Janus boots at EL2, prints its boot lines, and runs both personalities at once.

use std::time::Duration;

use qemu_virt_tests::probe::{self, wait_for_all, LINE_TIMEOUT, SCAN};
use qemu_virt_tests::{image_path, Qemu, QemuConfig};

#[test]
fn janus_prints_version_reservation_and_each_memory_map() {
    let mut qemu = probe::boot("boot_lines", SCAN, SCAN);
    wait_for_all(&mut qemu, &["[janus] stage-2 tables use"], LINE_TIMEOUT).unwrap();
    let output = qemu.output();
    let lines: Vec<&str> = output.lines().collect();
    let find = |prefix: &str| {
        lines
            .iter()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in\n{output}"))
            .to_string()
    };
    assert!(find("[janus] Janus ").contains(" at EL2 on "));
    let reserved = find("[janus] reserved ");
    assert!(
        reserved.starts_with("[janus] reserved 0x40200000-"),
        "{reserved}"
    );
    assert!(reserved.contains("KiB: image"), "{reserved}");
    assert!(find("[janus] 4 CPUs, GICv3").contains("PL011"));
    let personal = find("[janus] personal: RAM ");
    assert!(
        personal.contains("(64 MiB, IPA = PA), VMID 1, vCPUs 2 on CPUs [0, 1]"),
        "{personal}"
    );
    let work = find("[janus] work: RAM ");
    assert!(
        work.contains("(64 MiB, IPA = PA), VMID 2, vCPUs 2 on CPUs [2, 3]"),
        "{work}"
    );
    // The two maps do not overlap each other or Janus.
    let range = |line: &str| {
        probe::field(line, "RAM ")
            .and_then(probe::parse_range)
            .unwrap()
    };
    let janus = probe::field(&reserved, "reserved ")
        .and_then(probe::parse_range)
        .unwrap();
    let (p, w) = (range(&personal), range(&work));
    for (a, b) in [(p, w), (p, janus), (w, janus)] {
        assert!(a.1 <= b.0 || b.1 <= a.0, "{a:x?} overlaps {b:x?}");
    }
}

#[test]
fn both_personalities_run_both_vcpus_at_the_same_time() {
    let mut qemu = probe::boot("boot_both", SCAN, SCAN);
    let needles_of = |name: &str| {
        vec![
            format!("{name}: hello from vCPU 0 at EL1"),
            format!("{name}: vCPU 1 up"),
            // vCPU 1 came up through PSCI CPU_ON; a second CPU_ON is ALREADY_ON
            // and AFFINITY_INFO reports it on.
            format!("{name}: 2 vCPUs online; AFFINITY_INFO(1) = 0 (0 = on), CPU_ON(1) again = -4"),
            format!("{name}: alive 3"),
        ]
    };
    let personal = needles_of("personal");
    let personal: Vec<&str> = personal.iter().map(String::as_str).collect();
    probe::wait_for_output(&mut qemu, &personal, LINE_TIMEOUT).unwrap();
    // Work ran while personal was in front: its output waits in its buffer.
    let before_switch = qemu.output().len();
    qemu.send(&[qemu_virt_tests::linux::HOTKEY, b'2']).unwrap();
    let work = needles_of("work");
    let work: Vec<&str> = work.iter().map(String::as_str).collect();
    probe::wait_for_output(&mut qemu, &work, LINE_TIMEOUT).unwrap();
    let shown = qemu.output()[before_switch..].to_string();
    let replay = shown
        .split_once("[janus] foreground: work\r\n")
        .map(|(_, after)| after)
        .unwrap_or_else(|| panic!("no switch line in {shown}"));
    // The first lines after the switch are what work printed while personal
    // ran: its start and its first heartbeat, all at once.
    assert!(
        replay.starts_with("work: hello from vCPU 0 at EL1"),
        "{shown}"
    );
    assert!(
        !shown.contains("personal: alive"),
        "personal's output reached the console while work was in front:\n{shown}"
    );
}

#[test]
fn boot_entropy_is_reported_and_its_absence_stops_nothing() {
    let mut qemu = probe::boot("boot_entropy", SCAN, SCAN);
    wait_for_all(&mut qemu, &["[janus] work: started"], LINE_TIMEOUT).unwrap();
    assert!(
        qemu.output()
            .contains("[janus] boot entropy: 40 bytes from /chosen, 0 from the CPU"),
        "QEMU's rng-seed and kaslr-seed were not found"
    );
    drop(qemu);
    let config = QemuConfig {
        initrd: Some(probe::bundle(
            "boot_no_entropy",
            &probe::probe_config(SCAN, SCAN),
        )),
        dtb_randomness: false,
        timeout: Duration::from_secs(240),
        ..QemuConfig::new(image_path("janus.bin"))
    };
    let mut qemu = Qemu::start(config).expect("start QEMU");
    wait_for_all(
        &mut qemu,
        &[
            "[janus] no boot entropy",
            "personal: hello from vCPU 0 at EL1",
            "work: hello from vCPU 0 at EL1",
        ],
        LINE_TIMEOUT,
    )
    .unwrap();
}

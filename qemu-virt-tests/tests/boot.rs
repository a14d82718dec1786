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
    let mut needles = Vec::new();
    for name in ["personal", "work"] {
        needles.push(format!("{name}: hello from vCPU 0 at EL1"));
        needles.push(format!("{name}: vCPU 1 up"));
        // vCPU 1 came up through PSCI CPU_ON; a second CPU_ON is ALREADY_ON and
        // AFFINITY_INFO reports it on.
        needles.push(format!(
            "{name}: 2 vCPUs online; AFFINITY_INFO(1) = 0 (0 = on), CPU_ON(1) again = -4"
        ));
        needles.push(format!("{name}: alive 3"));
    }
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    wait_for_all(&mut qemu, &needles, LINE_TIMEOUT).unwrap();
    // Their heartbeats interleave: both run at once, not one after the other.
    let output = qemu.output();
    let first_work = output.find("work: alive 1").unwrap();
    let last_personal = output.find("personal: alive 3").unwrap();
    assert!(
        first_work < last_personal,
        "work only ran after personal:\n{output}"
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

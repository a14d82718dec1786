//! Every attack of each probe on Janus, the other personality, the physical
//! devices and the firmware is refused, and Janus reports the faults it injects.

use qemu_virt_tests::probe::{self, wait_for_all, LINE_TIMEOUT, SCAN};

/// Attacks in `guests/probe/src/attacks.rs`, the RAM scan included.
const ATTACKS: u32 = 20;

#[test]
fn every_attack_is_refused_and_reported() {
    let mut qemu = probe::boot("isolation", SCAN, SCAN);
    let personal = format!("personal: attacks: {ATTACKS} of {ATTACKS} refused");
    let work = format!("work: attacks: {ATTACKS} of {ATTACKS} refused");
    wait_for_all(&mut qemu, &[&personal, &work], LINE_TIMEOUT).unwrap();
    let output = qemu.output();
    assert!(
        !output.contains("ALLOWED"),
        "an attack got through:\n{output}"
    );
    for name in ["personal", "work"] {
        for attack in [
            "read Janus memory",
            "write Janus memory",
            "execute Janus memory",
            "read physical GIC",
            "write physical UART",
            "read unmapped address",
            "write trapped ACTLR_EL1",
        ] {
            let line = format!("{name}: attack {attack}: refused (exception injected");
            assert!(output.contains(&line), "missing {line:?}\n{output}");
        }
        for (attack, code) in [
            ("SMC to firmware SiP service", -1),
            ("SMC CPU_ON of physical CPU 2", -2),
            ("unknown hypercall", -1),
            ("console write from Janus memory", -2),
            ("console write of huge length", -2),
            ("CPU_ON with entry outside own RAM", -9),
            ("CPU_ON of a CPU it does not have", -2),
        ] {
            let line = format!("{name}: attack {attack}: refused (error {code})");
            assert!(output.contains(&line), "missing {line:?}\n{output}");
        }
        // Janus says what it refused.
        for report in [
            format!("[janus] {name}: read of IPA 0x40200000"),
            format!("[janus] {name}: write of IPA 0x9000000"),
            format!("[janus] {name}: instruction fetch from IPA 0x40200000 refused"),
            format!("[janus] {name}: unknown SMCCC call 0xc2000001 answered NOT_SUPPORTED"),
            format!("[janus] {name}: CPU_ON with entry 0x40200000 outside its RAM refused"),
        ] {
            assert!(output.contains(&report), "missing {report:?}\n{output}");
        }
    }
}

#[test]
fn ram_scan_covers_the_other_personality_and_janus() {
    let mut qemu = probe::boot("isolation_scan", SCAN, SCAN);
    wait_for_all(&mut qemu, &["personal: scan ", "work: scan "], LINE_TIMEOUT).unwrap();
    wait_for_all(
        &mut qemu,
        &["personal: attacks:", "work: attacks:"],
        LINE_TIMEOUT,
    )
    .unwrap();
    let output = qemu.output();
    let line_of = |prefix: &str| {
        output
            .lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line\n{output}"))
    };
    let ram_of = |name: &str| {
        let line = line_of(&format!("[janus] {name}: RAM "));
        probe::field(line, "RAM ")
            .and_then(probe::parse_range)
            .unwrap()
    };
    let janus = probe::field(line_of("[janus] reserved "), "reserved ")
        .and_then(probe::parse_range)
        .unwrap();
    for (name, other) in [("personal", "work"), ("work", "personal")] {
        let scan = line_of(&format!("{name}: scan "));
        // "scan A-B outside X-Y: N blocks, 0 readable, 0 writable"
        let scanned = probe::field(scan, "scan ")
            .and_then(probe::parse_range)
            .unwrap();
        let own = probe::field(scan, "outside ")
            .map(|text| text.trim_end_matches(':'))
            .and_then(probe::parse_range)
            .unwrap();
        assert_eq!(own, ram_of(name), "{scan}");
        for target in [ram_of(other), janus] {
            assert!(
                scanned.0 <= target.0 && target.1 <= scanned.1,
                "{scan} misses {target:x?}"
            );
        }
        assert!(scan.ends_with(" 0 readable, 0 writable"), "{scan}");
        let blocks: u64 = scan
            .split(": ")
            .nth(2)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("no block count in {scan}"));
        assert_eq!(
            blocks,
            (scanned.1 - scanned.0 - (own.1 - own.0)) / (2 << 20),
            "{scan}"
        );
    }
}

//! Boards with more than 3 GiB of RAM: Janus maps what lies above 4 GiB,
//! places the personalities there (top of RAM downwards), and says what it
//! leaves unused.

use std::time::Duration;

use qemu_virt_tests::linux::Linux;
use qemu_virt_tests::probe::{self, wait_for_all, LINE_TIMEOUT};
use qemu_virt_tests::{image_path, Qemu, QemuConfig};

/// The first address above 4 GiB.
const FOUR_GIB: u64 = 1 << 32;
/// Where QEMU virt's RAM starts.
const VIRT_RAM_BASE: u64 = 0x4000_0000;
/// Bytes in a MiB.
const MIB: u64 = 1 << 20;

/// The `[start, end)` a `[janus] <prefix>0x...-0x...` boot line names.
fn boot_range(output: &str, prefix: &str) -> (u64, u64) {
    let line = output
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in\n{output}"));
    probe::field(line, "RAM ")
        .and_then(probe::parse_range)
        .unwrap_or_else(|| panic!("no RAM range in {line:?}"))
}

/// The RAM the foreground Linux sees, from the top-level `System RAM`
/// entries of /proc/iomem (`start-last : System RAM`): `[start, end)`.
fn guest_ram(linux: &mut Linux) -> (u64, u64) {
    let text = linux.run("grep '^[0-9a-f]*-[0-9a-f]* : System RAM' /proc/iomem");
    let ranges: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|line| line.split(' ').next())
        .filter_map(probe::parse_range)
        .collect();
    let start = ranges.iter().map(|range| range.0).min();
    let last = ranges.iter().map(|range| range.1).max();
    match (start, last) {
        (Some(start), Some(last)) => (start, last + 1),
        _ => panic!("no System RAM in /proc/iomem: {text:?}"),
    }
}

/// Boots the two default Linux personalities with `-m memory`, checks both
/// shells answer and see the RAM their boot lines name, and returns those
/// ranges (personal, work) and the board's RAM line.
fn boot_linux_pair(memory: &str) -> ((u64, u64), (u64, u64), (u64, u64)) {
    let config = QemuConfig {
        memory: memory.to_owned(),
        ..Linux::config(image_path("linux.bundle"))
    };
    let mut linux = Linux::start(config);
    linux.wait_shell("personal");
    let output = linux.qemu.output();
    assert!(!output.contains("left unused"), "{output}");
    let board = boot_range(&output, "[janus] RAM ");
    let personal = boot_range(&output, "[janus] personal: RAM ");
    let work = boot_range(&output, "[janus] work: RAM ");
    assert_eq!(linux.run("hostname"), "personal");
    assert_eq!(guest_ram(&mut linux), personal, "personal's /proc/iomem");
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    assert_eq!(linux.run("hostname"), "work");
    assert_eq!(guest_ram(&mut linux), work, "work's /proc/iomem");
    linux.switch_to(0, "personal");
    assert_eq!(linux.run("hostname"), "personal");
    (board, personal, work)
}

#[test]
fn two_linux_personalities_boot_with_4_gib_of_ram() {
    let (board, personal, work) = boot_linux_pair("4G");
    assert_eq!(board, (VIRT_RAM_BASE, VIRT_RAM_BASE + 4096 * MIB));
    // Top-down placement: personal at the top of RAM, work right below it,
    // both in the GiB above 4 GiB that the boot map lacks.
    assert_eq!(personal.1, board.1);
    assert_eq!(work.1, personal.0);
    assert!(work.0 >= FOUR_GIB, "work at {work:x?}");
}

#[test]
fn two_linux_personalities_boot_with_8_gib_of_ram_above_4_gib() {
    let (board, personal, work) = boot_linux_pair("8G");
    assert_eq!(board, (VIRT_RAM_BASE, VIRT_RAM_BASE + 8192 * MIB));
    assert_eq!(personal.1, board.1);
    assert_eq!(work.1, personal.0);
    assert!(
        work.0 >= 2 * FOUR_GIB,
        "work at {work:x?}: not at the top of 9 GiB"
    );
}

/// `-m 4097M` ends RAM 1 MiB into a 2 MiB block above 4 GiB: Janus maps the
/// whole blocks, says it leaves the last MiB unused, and the probes placed
/// above 4 GiB find their RAM clear and every other block (the unused MiB's
/// included) out of reach.
#[test]
fn probes_above_4_gib_are_isolated_and_a_ragged_end_is_left_unused() {
    let ram_end = VIRT_RAM_BASE + 4097 * MIB;
    let scan = format!("probe.scan={VIRT_RAM_BASE:#x}-{:#x}", ram_end + MIB);
    let bundle = probe::bundle("large_ram_probes", &probe::probe_config(&scan, &scan));
    let config = QemuConfig {
        memory: "4097M".to_owned(),
        initrd: Some(bundle),
        timeout: Duration::from_secs(300),
        ..QemuConfig::new(image_path("janus.bin"))
    };
    let mut qemu = Qemu::start(config).expect("start QEMU");
    let needles = [
        "personal: RAM clear at",
        "work: RAM clear at",
        "personal: scan ",
        "work: scan ",
    ];
    wait_for_all(&mut qemu, &needles, 4 * LINE_TIMEOUT).unwrap();
    let output = qemu.output();
    let unused = format!(
        "[janus] RAM {:#x}-{ram_end:#x} (1 MiB) is beyond what Janus maps; left unused",
        ram_end - MIB
    );
    assert!(output.contains(&unused), "no {unused:?} in\n{output}");
    assert!(!output.contains("RAM not clear"), "{output}");
    for name in ["personal", "work"] {
        let placed = boot_range(&output, &format!("[janus] {name}: RAM "));
        assert!(placed.0 >= FOUR_GIB, "{name} at {placed:x?}");
        assert!(
            placed.1 <= ram_end - MIB,
            "{name} in unused RAM: {placed:x?}"
        );
        let hello = boot_range(&output, &format!("{name}: hello from vCPU 0"));
        assert_eq!(hello, placed, "{name} sees other RAM than Janus placed");
        let scan_line = output
            .lines()
            .find(|line| line.starts_with(&format!("{name}: scan ")))
            .unwrap_or_default();
        assert!(
            scan_line.ends_with(" 0 readable, 0 writable"),
            "{scan_line}"
        );
    }
}

//! The probe's malformed 9P messages against QEMU's own virtio-9p server, natively
//! (QEMU alone, no Janus): the probe drives the device itself, every attack gets
//! an answer and the device serves a good request after each. QEMU's server is
//! the reference that shows the probe's messages and checks work; where it
//! answers otherwise than Janus must, the attack is in `p9_probe::QEMU_DIFFERS`,
//! and this test checks it stays so (a change means QEMU or the probe changed).
//!
//! Needs `target/images/probe.bin` (`make images`).

use std::fs;
use std::time::Duration;

use qemu_virt_tests::p9_probe::{attack_lines, summary, ATTACKS, QEMU_DIFFERS};
use qemu_virt_tests::{disk, image_path, Qemu, QemuConfig};

#[test]
fn the_probe_attacks_qemus_own_9p_server_and_it_keeps_serving() {
    let share = disk::test_disks_dir().join("shared_probe_native-share");
    let _ = fs::remove_dir_all(&share);
    fs::create_dir_all(&share).expect("make the share");
    let mut config = QemuConfig::new(image_path("probe.bin"));
    config.virtualization = false;
    config.smp = 2;
    config.memory = "256M".to_owned();
    config.timeout = Duration::from_secs(180);
    config.extra_args = [
        "-append",
        "probe.after=p9 probe.console=uart probe.name=native",
        // A modern (version 2) virtio-mmio transport, as Janus' device is.
        "-global",
        "virtio-mmio.force-legacy=false",
    ]
    .map(str::to_owned)
    .to_vec();
    let config = config.with_9p_share(&share, "shared");
    let mut qemu = Qemu::start(config).expect("start QEMU");
    qemu.expect("native: p9 attacks done: ", Duration::from_secs(150))
        .unwrap_or_else(|error| panic!("{error}"));
    qemu.expect("\n", Duration::from_secs(5))
        .unwrap_or_else(|error| panic!("{error}"));
    let output = qemu.output();
    qemu.kill();

    assert!(
        output.contains("native: p9 device: window=0xa003e00 ")
            && output.contains(" tag=shared msize=8192"),
        "{output}"
    );
    assert!(output.contains("native: p9 good: version=ok attach=ok getattr=ok"));
    let lines = attack_lines(&output);
    let names: Vec<&str> = lines.iter().map(|line| line.name.as_str()).collect();
    assert_eq!(names, ATTACKS, "{output}");
    for line in &lines {
        assert!(line.good_after, "the device failed after {line:?}");
        assert_ne!(line.reply, "timeout", "no answer to {line:?}");
        assert_eq!(
            !line.verdict_ok,
            QEMU_DIFFERS.contains(&line.name.as_str()),
            "QEMU's answer changed: {line:?}"
        );
    }
    let passed = (ATTACKS.len() - QEMU_DIFFERS.len()) as u32;
    assert_eq!(
        summary(&output),
        Some((passed, ATTACKS.len() as u32, true)),
        "{output}"
    );
    // Nothing the probe made or tried to make is left in the share.
    let left: Vec<_> = fs::read_dir(&share)
        .expect("list the share")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "left in the share: {left:?}");
    let _ = fs::remove_dir_all(&share);
}

//! A hostile guest against the shared folder: `work` is the bare-metal probe,
//! driving its virtio-9p device itself (`probe.after=p9`) and sending the
//! malformed 9P2000.L messages of guests/probe/src/virtio/p9/attacks.rs, while
//! `personal`, a Linux personality, copies files in its /shared in a loop. Each
//! malformed message must get what a correct server may answer (an Rlerror with
//! its tag, mostly), Janus' 9P server must serve a good request after each, and
//! personal's copies must go on, intact, before, during and after the attacks.
//!
//! The probe holds its attacks back until personal has made `start-attacks` in
//! the folder (`probe.p9.wait=`), so that the two overlap.
//!
//! Needs the shared folder in Janus (issue 10) and `make images`.

use std::ops::Range;
use std::time::{Duration, Instant};

use qemu_virt_tests::linux::{Linux, BOOT_TIMEOUT};
use qemu_virt_tests::p9_probe::{attack_lines, summary, ATTACKS};
use qemu_virt_tests::probe::{self, wait_for_all};
use qemu_virt_tests::{disk, find_panic_line, image_path, workspace_root, Qemu};

/// This test's name: its bundle and disk are named after it.
const TEST: &str = "shared_attacks";

/// The personalities' RAM, fixed (as storage_attacks does) so the layout is known.
const PERSONAL_RAM: Range<u64> = 0xb000_0000..0xc000_0000;
const WORK_RAM: Range<u64> = 0xac00_0000..0xb000_0000;

/// The file personal makes to set the probe off.
const START: &str = "start-attacks";

/// `personal` Linux with a volume and the shared folder, `work` the probe.
fn config() -> String {
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
ram_base = {personal_base:#x}
vcpus = 2
cpus = [0, 1]
kernel = "{kernel}"
initrd = "{initrd}"
bootargs = "console=ttyAMA0 rdinit=/init quiet"
volume_mib = 64

[[personality]]
name = "work"
kind = "baremetal"
ram_mib = 64
ram_base = {work_base:#x}
vcpus = 2
cpus = [2, 3]
kernel = "{probe}"
bootargs = "probe.after=p9 probe.p9.wait={START}"
volume_mib = 16
"#,
        personal_base = PERSONAL_RAM.start,
        work_base = WORK_RAM.start,
        kernel = kernel.display(),
        initrd = initrd.display(),
        probe = probe.display(),
    )
}

/// The copy loop personal runs in the background: each round copies a fresh
/// 32 KiB file into /shared (one of four names), compares it, counts the round in
/// /tmp/rounds and any failure in /tmp/failures. It prints nothing, so that the
/// console stays the test's.
const COPY_LOOP: &str = "(i=0; : >/tmp/failures; while [ $i -lt 100000 ]; do \
     i=$((i+1)); n=$((i % 4)); \
     dd if=/dev/urandom of=/tmp/source bs=4096 count=8 2>/dev/null; \
     if cp /tmp/source /shared/copy-$n && cmp -s /tmp/source /shared/copy-$n; \
     then echo $i >/tmp/rounds; else echo $i >>/tmp/failures; fi; \
     done) >/dev/null 2>&1 & :";

/// personal's rounds so far.
fn rounds(linux: &mut Linux) -> u64 {
    linux
        .run("cat /tmp/rounds 2>/dev/null || echo 0")
        .trim()
        .parse()
        .unwrap_or_else(|error| panic!("rounds: {error}"))
}

/// Waits until personal's copy loop has gone `more` rounds past `from`.
fn wait_rounds(linux: &mut Linux, from: u64, more: u64) -> u64 {
    let deadline = Instant::now() + BOOT_TIMEOUT;
    loop {
        let now = rounds(linux);
        if now >= from + more {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "personal's copies stopped at round {now}:\n{}",
            linux.qemu.output_tail()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Waits (bringing work forward) for the probe's summary line.
fn wait_for_probe(qemu: &mut Qemu) {
    wait_for_all(qemu, &["work: p9 attacks done: "], BOOT_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
}

#[test]
fn a_hostile_guest_gets_errors_from_the_shared_folder_while_the_other_keeps_copying() {
    let text = config();
    let bundle = probe::bundle(TEST, &text);
    let disk_path = disk::create_for(TEST, &text);
    let mut linux = Linux::start(Linux::config(bundle).with_disk(&disk_path));

    // personal comes up with the shared folder and starts copying.
    linux.wait_shell("personal");
    assert!(
        linux
            .qemu
            .output()
            .contains("personal: /shared is the shared folder (9p)"),
        "personal has no shared folder:\n{}",
        linux.qemu.output_tail()
    );
    linux.run(COPY_LOOP);
    let started = wait_rounds(&mut linux, 0, 3);
    // The probe found its device and a session, and waits for the go (its
    // lines show once it is brought forward; personal copies meanwhile).
    wait_for_all(
        &mut linux.qemu,
        &["work: p9 good: version=ok attach=ok getattr=ok"],
        BOOT_TIMEOUT,
    )
    .unwrap_or_else(|error| panic!("{error}"));
    probe::switch_to(&mut linux.qemu, 0).unwrap_or_else(|error| panic!("{error}"));
    linux.wait_shell("personal");
    linux.run(&format!("touch /shared/{START}"));

    // The attacks (work's lines show once it is brought forward).
    wait_for_probe(&mut linux.qemu);
    let output = linux.qemu.output();
    assert!(find_panic_line(&output).is_none(), "{output}");
    let lines = attack_lines(&output);
    let names: Vec<&str> = lines.iter().map(|line| line.name.as_str()).collect();
    assert_eq!(names, ATTACKS, "attacks run:\n{output}");
    for line in &lines {
        assert!(
            line.verdict_ok,
            "not what a correct server may answer: {line:?}"
        );
        assert!(line.good_after, "the device failed after it: {line:?}");
        assert_ne!(line.reply, "timeout", "no answer: {line:?}");
    }
    let count = ATTACKS.len() as u32;
    assert_eq!(summary(&output), Some((count, count, true)), "{output}");

    // personal went on copying, and still does, without a failure.
    probe::switch_to(&mut linux.qemu, 0).unwrap_or_else(|error| panic!("{error}"));
    linux.wait_shell("personal");
    let after = wait_rounds(&mut linux, started, 5);
    wait_rounds(&mut linux, after, 3);
    assert_eq!(
        linux.run("cat /tmp/failures"),
        "",
        "personal's copies failed in these rounds"
    );
    // Nothing the probe tried to make is visible, and the copies are whole.
    let listing = linux.run("ls /shared");
    for made in ["probe-node", "probe-link", "probe-hard-link"] {
        assert!(
            !listing.lines().any(|name| name == made),
            "{made} in /shared: {listing}"
        );
    }
    linux.run("kill %1; wait");
    assert_eq!(
        linux.run("cp /tmp/source /shared/final && cmp /shared/final /tmp/source && echo same"),
        "same"
    );

    // Janus and both personalities are still up.
    let status = linux
        .qemu
        .qmp()
        .expect("QMP")
        .query_status()
        .expect("query-status");
    assert_eq!(status["status"], "running", "{status}");
    assert!(find_panic_line(&linux.qemu.output()).is_none());
}

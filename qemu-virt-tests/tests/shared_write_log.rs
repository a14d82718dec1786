//! The write log of QEMU's `blklogwrites` as the harness reads it: a native Linux
//! (no Janus) writes known sectors to its disk, flushing after each, and the log
//! QEMU kept must hold exactly those writes and flushes, in that order, and its
//! replay must give the disk as of each flush.
//!
//! Needs `target/images/personal.cpio` and Debian's kernel (`make linux-images`).

use std::fs;
use std::time::Duration;

use qemu_virt_tests::blklog::{replay_files, ReplayOptions, WriteLog};
use qemu_virt_tests::linux::{native_config, BOOT_TIMEOUT, COMMAND_TIMEOUT};
use qemu_virt_tests::{disk, Qemu};

const TEST: &str = "shared_write_log";
/// The disk: 8 MiB of zeros.
const DISK_BYTES: u64 = 8 << 20;

/// Runs `command` in the native shell and waits for the marker it prints last.
fn run(qemu: &mut Qemu, command: &str, done: &str) {
    qemu.send_line(&format!("{command}; echo {done}-$((6*7))"))
        .expect("send");
    qemu.expect(&format!("{done}-42"), COMMAND_TIMEOUT)
        .unwrap_or_else(|error| panic!("{command}: {error}"));
}

#[test]
fn the_log_qemu_writes_holds_each_write_and_flush_and_replays() {
    let dir = disk::test_disks_dir();
    fs::create_dir_all(&dir).expect("test-disks");
    let image = dir.join(format!("{TEST}.img"));
    let original = dir.join(format!("{TEST}-original.img"));
    let log = dir.join(format!("{TEST}.log"));
    let file = fs::File::create(&image).expect("create the disk");
    file.set_len(DISK_BYTES).expect("size the disk");
    drop(file);
    disk::copy_sparse(&image, &original).expect("copy the original");

    let config = native_config("personal").with_logged_disk(&image, &log);
    let mut qemu = Qemu::start(config).expect("start QEMU");
    qemu.expect("personal: ready", BOOT_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    qemu.expect("personal:~# ", BOOT_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    // The ext4 mount attempt of /init may have read the disk; nothing wrote it.
    // A page of 'A' at sector 8, fsync'd (a FLUSH), then a page of 'B' at sector
    // 24, likewise. Pages: busybox' dd writes through the page cache, and Linux
    // writes a block device's cache back by the page.
    run(
        &mut qemu,
        "dd if=/dev/zero bs=4096 count=1 2>/dev/null | tr '\\000' A >/tmp/a; \
         dd if=/dev/zero bs=4096 count=1 2>/dev/null | tr '\\000' B >/tmp/b",
        "made",
    );
    run(
        &mut qemu,
        "dd if=/tmp/a of=/dev/vda bs=4096 seek=1 conv=fsync 2>/dev/null",
        "first",
    );
    run(
        &mut qemu,
        "dd if=/tmp/b of=/dev/vda bs=4096 seek=3 conv=fsync 2>/dev/null",
        "second",
    );
    // QMP still names the drive disk0, as for a plain disk.
    let stats = qemu
        .qmp()
        .expect("QMP")
        .execute("query-blockstats", None)
        .expect("query-blockstats");
    let disk0 = stats
        .as_array()
        .and_then(|devices| devices.iter().find(|device| device["device"] == "disk0"))
        .unwrap_or_else(|| panic!("no disk0 in {stats}"));
    let flushes = disk0["stats"]["flush_operations"]
        .as_u64()
        .expect("flushes");
    assert!(flushes >= 2, "{disk0}");
    qemu.send_line("poweroff -f").expect("send poweroff");
    qemu.wait_exit(Duration::from_secs(60)).expect("QEMU exits");

    let parsed = WriteLog::read(&log).expect("parse the log");
    assert_eq!(parsed.sector_bytes, 512);
    let writes: Vec<(u64, u64, u8)> = parsed
        .entries
        .iter()
        .filter(|entry| entry.is_write())
        .map(|entry| (entry.sector, entry.sectors, entry.data[0]))
        .collect();
    assert_eq!(
        writes,
        [(8, 8, b'A'), (24, 8, b'B')],
        "{:?}",
        parsed.entries
    );
    for entry in parsed.entries.iter().filter(|entry| entry.is_write()) {
        assert!(entry.data.iter().all(|&byte| byte == entry.data[0]));
    }
    // Each write is followed by a flush before the next one.
    let write_at: Vec<usize> = (0..parsed.entries.len())
        .filter(|&index| parsed.entries[index].is_write())
        .collect();
    let flushes = parsed.flushes();
    assert!(
        flushes
            .iter()
            .any(|&flush| flush > write_at[0] && flush < write_at[1]),
        "no flush between the writes: {:?}",
        parsed.entries
    );
    assert!(flushes.iter().any(|&flush| flush > write_at[1]));

    // The replay: at each flush the disk holds exactly the writes before it.
    let mut states = Vec::new();
    let made = replay_files(
        &original,
        &log,
        &ReplayOptions::default(),
        |point, image| {
            let a = image[8 * 512..16 * 512].iter().all(|&byte| byte == b'A');
            let b = image[24 * 512..32 * 512].iter().all(|&byte| byte == b'B');
            let others = image[..8 * 512]
                .iter()
                .chain(&image[16 * 512..24 * 512])
                .chain(&image[32 * 512..])
                .all(|&byte| byte == 0);
            assert!(others, "flush {}: bytes outside the writes", point.flush);
            states.push((a, b));
        },
    )
    .expect("replay");
    assert_eq!(made, flushes.len() + 1);
    assert_eq!(states.first(), Some(&(false, false)));
    assert_eq!(states.last(), Some(&(true, true)));
    assert!(states.contains(&(true, false)), "{states:?}");
    assert!(!states.contains(&(false, true)), "{states:?}");
    // The disk itself ends as the last flush image.
    let after = fs::read(&image).expect("read the disk");
    assert!(after[24 * 512..32 * 512].iter().all(|&byte| byte == b'B'));
    for path in [&image, &original, &log] {
        let _ = fs::remove_file(path);
    }
}

//! The storage figures of `make bench`: a personality's volume under Janus
//! against the same kernel reading and writing a virtio-blk disk natively (the
//! same partition of the same kind of disk image, attached to QEMU alone), in
//! the same run.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qemu_virt_tests::disk;
use qemu_virt_tests::linux::{Linux, BOOT_TIMEOUT, COMMAND_TIMEOUT};
use qemu_virt_tests::{image_path, workspace_root, QemuConfig};

/// MiB each sequential transfer moves.
pub const TRANSFER_MIB: u32 = 64;
/// Flushes timed for `blk_flush_us`.
const FLUSHES: u32 = 100;

/// What one setup (Janus, or native) measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    /// Sequential direct write of TRANSFER_MIB, with fsync, MiB/s.
    pub write_mib_s: f64,
    /// Sequential direct read of the same file, MiB/s.
    pub read_mib_s: f64,
    /// Mean time the guest's block layer spent per flush, microseconds.
    pub flush_us: f64,
}

/// A fresh disk made from the default configuration, for the bench alone.
pub fn bench_disk(name: &str) -> PathBuf {
    let dir = disk::test_disks_dir();
    fs::create_dir_all(&dir).expect("create target/test-disks");
    disk::create(
        &workspace_root().join("images/personalities.toml"),
        &dir.join(format!("bench-{name}.img")),
    )
}

/// Seconds `command` takes in the foreground shell (host wall clock, around
/// the command's own markers).
fn timed(linux: &mut Linux, command: &str) -> f64 {
    timed_for(linux, command, COMMAND_TIMEOUT)
}

/// [`timed`] for a command that may take up to `timeout`.
pub fn timed_for(linux: &mut Linux, command: &str, timeout: Duration) -> f64 {
    let start = Instant::now();
    let output = linux.run_for(command, timeout);
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        !output.contains("rror") && !output.contains("can't"),
        "{command}: {output}"
    );
    seconds
}

/// The guest's completed flushes and the milliseconds spent on them, from
/// /sys/block/vda/stat (fields 16 and 17).
fn flush_stats(linux: &mut Linux) -> (u64, u64) {
    let stat = linux.run("cat /sys/block/vda/stat");
    let fields: Vec<u64> = stat
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    assert!(fields.len() >= 17, "/sys/block/vda/stat: {stat}");
    (fields[15], fields[16])
}

/// Measures the volume mounted at /data in the foreground personality.
fn measure(linux: &mut Linux) -> Figures {
    let mib = f64::from(TRANSFER_MIB);
    let write = timed(
        linux,
        &format!(
            "dd if=/dev/zero of=/data/bench bs=1M count={TRANSFER_MIB} oflag=direct conv=fsync 2>&1 | grep -v records"
        ),
    );
    // Nothing of the file may come from the page cache.
    linux.run("echo 3 > /proc/sys/vm/drop_caches");
    let read = timed(
        linux,
        "dd if=/data/bench of=/dev/null bs=1M iflag=direct 2>&1 | grep -v records",
    );
    let (flushes_before, ms_before) = flush_stats(linux);
    linux.run(&format!(
        "i=0; while [ $i -lt {FLUSHES} ]; do echo $i >> /data/flushes; sync; i=$((i+1)); done"
    ));
    let (flushes_after, ms_after) = flush_stats(linux);
    let flushes = flushes_after.saturating_sub(flushes_before).max(1);
    linux.run("rm -f /data/bench /data/flushes; sync");
    Figures {
        write_mib_s: mib / write,
        read_mib_s: mib / read,
        flush_us: (ms_after.saturating_sub(ms_before) as f64 * 1000.0) / flushes as f64,
    }
}

/// Janus with both personalities on `disk`; personal in front, measured.
pub fn under_janus(disk: &Path) -> Figures {
    let config = Linux::config(image_path("linux.bundle")).with_disk(disk);
    let mut linux = Linux::start(config);
    linux.wait_shell("personal");
    let figures = measure(&mut linux);
    linux.qemu.kill();
    figures
}

/// The same kernel and initramfs on QEMU alone, with personal's partition of
/// `disk` as its virtio-blk disk (`config` is the bench's native machine).
pub fn native(disk: &Path, config: QemuConfig) -> Figures {
    let partition = disk::partition(disk, "personal");
    let mut linux = Linux::start(config.with_partition(disk, partition));
    linux.wait_shell("personal");
    let figures = measure(&mut linux);
    linux.qemu.kill();
    figures
}

/// MiB/s of both personalities writing TRANSFER_MIB each at the same time:
/// everything written over the time until both are done.
pub fn both_write(disk: &Path) -> f64 {
    let config = Linux::config(image_path("linux.bundle")).with_disk(disk);
    let mut linux = Linux::start(config);
    linux.wait_shell("personal");
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    let start = Instant::now();
    linux.run(&format!(
        "(dd if=/dev/zero of=/data/both bs=1M count={TRANSFER_MIB} oflag=direct conv=fsync 2>/dev/null; \
         echo work-wrote-$((40+2))) & true"
    ));
    linux.switch_to(0, "personal");
    linux.run(&format!(
        "dd if=/dev/zero of=/data/both bs=1M count={TRANSFER_MIB} oflag=direct conv=fsync 2>/dev/null"
    ));
    linux.switch_to(1, "work");
    linux.wait("work-wrote-42", BOOT_TIMEOUT);
    let seconds = start.elapsed().as_secs_f64();
    linux.qemu.kill();
    f64::from(2 * TRANSFER_MIB) / seconds
}

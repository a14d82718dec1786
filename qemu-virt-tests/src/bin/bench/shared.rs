//! The shared-folder figures of `make bench`: personal's `/shared` under Janus
//! against its own `/data` in the same boot (a 64 MiB copy, and 1,000 small
//! files made, stat'ed and read back), what the audit log spends per operation,
//! and the physical disk's writes per small file. The same commands run natively
//! with QEMU's own 9P server as `/shared`, for reference.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qemu_virt_tests::linux::{Linux, COMMAND_TIMEOUT, NATIVE_BOOTARGS};
use qemu_virt_tests::{disk, image_path, probe, workspace_root, QemuConfig};

use super::storage::timed_for;
use super::Metric;

/// MiB of the copied file.
pub const COPY_MIB: u32 = 64;
/// Copies of each kind per boot; the median is reported.
const COPY_ROUNDS: usize = 3;
/// Small files the loop makes, stats and reads back.
pub const SMALL_FILES: u32 = 1000;
/// The bench disk's `shared` partition: room for the 64 MiB copy in a
/// log-structured store, with its metadata and what the loop adds.
const SHARED_MIB: u32 = 256;
/// The bench disk's `janus` partition (the first MiB is issue 11's).
const JANUS_MIB: u32 = 8;
/// How long one copy, or the small-files loop, may take (TCG on a loaded host).
const LONG_COMMAND: Duration = Duration::from_secs(600);
/// A whole measuring run, boot included, before the watchdog kills QEMU.
const RUN_TIMEOUT: Duration = Duration::from_secs(1800);

/// What one setup (Janus, or QEMU's own 9P server natively) measured.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// The copy into /shared (`dd bs=1M`, durable at close), MiB/s (median).
    pub shared_copy_mib_s: f64,
    /// The same copy into /data (`dd bs=1M conv=fsync`), MiB/s (median).
    pub data_copy_mib_s: f64,
    /// Small files a second in /shared.
    pub shared_files_per_s: f64,
    /// Small files a second in /data.
    pub data_files_per_s: f64,
    /// The physical disk's (`disk0`) write requests during the /shared loop.
    pub disk_writes: u64,
    /// The physical disk's flushes during the /shared loop.
    pub disk_flushes: u64,
}

/// A bundle and disk configuration: the two personalities of
/// `images/personalities.toml` with a `shared` partition that holds the copy
/// (the default one, 64 MiB, cannot).
fn config_text() -> String {
    let root = workspace_root();
    let kernel = root.join("target/cache/debian/Image");
    let mut text = String::new();
    for (name, cpus) in [("personal", "[0, 1]"), ("work", "[2, 3]")] {
        text.push_str(&format!(
            "[[personality]]\nname = \"{name}\"\nkind = \"linux\"\nram_mib = 256\nvcpus = 2\n\
             cpus = {cpus}\nkernel = \"{}\"\ninitrd = \"{}\"\n\
             bootargs = \"{}\"\nvolume_mib = 256\n\n",
            kernel.display(),
            image_path(&format!("{name}.cpio")).display(),
            NATIVE_BOOTARGS,
        ));
    }
    text.push_str(&format!(
        "[disk]\nshared_mib = {SHARED_MIB}\njanus_mib = {JANUS_MIB}\n"
    ));
    text
}

/// The physical disk's completed write requests and flushes so far, from QMP
/// `query-blockstats` (drive `disk0`).
fn disk_operations(linux: &mut Linux) -> (u64, u64) {
    let stats = linux
        .qemu
        .qmp()
        .expect("QMP")
        .execute("query-blockstats", None)
        .expect("query-blockstats");
    let disk0 = stats
        .as_array()
        .and_then(|devices| devices.iter().find(|device| device["device"] == "disk0"))
        .unwrap_or_else(|| panic!("no disk0 in {stats}"));
    let count = |key: &str| {
        disk0["stats"][key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key} in {disk0}"))
    };
    (count("wr_operations"), count("flush_operations"))
}

/// MiB/s of copying /data/source to `target` with `dd` options `options`, the
/// source's pages dropped from the cache first; the copy is checked, then removed.
fn copy(linux: &mut Linux, target: &str, options: &str) -> f64 {
    linux.run("sync; echo 3 > /proc/sys/vm/drop_caches");
    let seconds = timed_for(
        linux,
        &format!("dd if=/data/source of={target} bs=1M {options} 2>&1 | grep -v records"),
        LONG_COMMAND,
    );
    let same = linux.run_for(
        &format!("cmp /data/source {target} && echo same-$((6*7))"),
        LONG_COMMAND,
    );
    assert!(same.contains("same-42"), "{target}: {same}");
    linux.run_for(&format!("rm -f {target}; sync"), COMMAND_TIMEOUT);
    f64::from(COPY_MIB) / seconds
}

/// Files a second of the small-files loop in `folder`/small (made before):
/// each file written with the shell's `echo`, `stat`'ed and read back with
/// `cat`, one shell loop timed as a whole.
fn small_files(linux: &mut Linux, folder: &str) -> f64 {
    let seconds = timed_for(
        linux,
        &format!(
            "i=0; while [ $i -lt {SMALL_FILES} ]; do echo $i > {folder}/small/$i; \
             stat -c %s {folder}/small/$i >/dev/null; cat {folder}/small/$i >/dev/null; \
             i=$((i+1)); done"
        ),
        LONG_COMMAND,
    );
    f64::from(SMALL_FILES) / seconds
}

/// Checks that the loop in `folder`/small left its files.
fn check_small_files(linux: &mut Linux, folder: &str) {
    let count = linux.run(&format!("ls {folder}/small | wc -l"));
    assert_eq!(count.trim(), SMALL_FILES.to_string(), "{folder}/small");
}

/// Measures /shared against /data in the foreground personality: the copies
/// first (`COPY_ROUNDS` of each), then the small files, /shared's loop alone between two readings of
/// the physical disk's counters (everything before settled by a `sync`).
fn measure(linux: &mut Linux) -> Figures {
    let made = linux.run_for(
        &format!(
            "dd if=/dev/urandom of=/data/source bs=1M count={COPY_MIB} 2>&1 | grep -v records; sync"
        ),
        LONG_COMMAND,
    );
    assert!(!made.contains("rror"), "{made}");
    // Rounds in alternating order, so that neither copy always goes first.
    let (mut data, mut shared) = (Vec::new(), Vec::new());
    for round in 0..COPY_ROUNDS {
        if round % 2 == 0 {
            data.push(copy(linux, "/data/copy", "conv=fsync"));
            shared.push(copy(linux, "/shared/copy", ""));
        } else {
            shared.push(copy(linux, "/shared/copy", ""));
            data.push(copy(linux, "/data/copy", "conv=fsync"));
        }
    }
    let (data_copy_mib_s, shared_copy_mib_s) = (super::median(data), super::median(shared));
    linux.run("mkdir /shared/small /data/small; sync");
    let (writes_before, flushes_before) = disk_operations(linux);
    let shared_files_per_s = small_files(linux, "/shared");
    let (writes_after, flushes_after) = disk_operations(linux);
    check_small_files(linux, "/shared");
    let data_files_per_s = small_files(linux, "/data");
    check_small_files(linux, "/data");
    Figures {
        shared_copy_mib_s,
        data_copy_mib_s,
        shared_files_per_s,
        data_files_per_s,
        disk_writes: writes_after.saturating_sub(writes_before),
        disk_flushes: flushes_after.saturating_sub(flushes_before),
    }
}

/// Janus with both personalities on a fresh disk; personal in front, measured.
/// Returns the figures and the disk, whose audit log holds the run's records
/// (QEMU is gone when this returns).
pub fn under_janus() -> (Figures, PathBuf) {
    let text = config_text();
    let bundle = probe::bundle("bench_shared", &text);
    let disk = disk::create_for("bench-shared-janus", &text);
    let mut config = Linux::config(bundle).with_disk(&disk);
    config.timeout = RUN_TIMEOUT;
    let mut linux = Linux::start(config);
    linux.wait_shell("personal");
    let output = linux.qemu.output();
    assert!(
        output.contains("personal: /shared is the shared folder (9p)"),
        "personal has no shared folder:\n{}",
        linux.qemu.output_tail()
    );
    let figures = measure(&mut linux);
    linux.qemu.kill();
    (figures, disk)
}

/// The same kernel and initramfs on QEMU alone (`config` is the bench's native
/// machine): personal's partition of a fresh disk as its virtio-blk disk, and a
/// fresh host folder served by QEMU's own 9P server as /shared.
pub fn native(config: QemuConfig) -> Figures {
    // Of this disk, only personal's partition is used.
    let disk = disk::create_for("bench-shared-native", &config_text());
    let share = disk::test_disks_dir().join("bench-shared-native-share");
    let _ = fs::remove_dir_all(&share);
    fs::create_dir_all(&share).expect("make the share");
    let partition = disk::partition(&disk, "personal");
    let mut config = config
        .with_partition(&disk, partition)
        .with_9p_share(&share, "shared");
    config.timeout = RUN_TIMEOUT;
    let mut linux = Linux::start(config);
    linux.wait_shell("personal");
    let figures = measure(&mut linux);
    linux.qemu.kill();
    let _ = fs::remove_dir_all(&share);
    figures
}

/// What the audit log held after a run: records, and the bytes they take.
#[derive(Clone, Copy, Debug)]
pub struct AuditLog {
    /// Records in the log.
    pub records: u64,
    /// Bytes of the `janus` partition the log used.
    pub bytes: u64,
}

/// The audit log a run left on `disk` (QEMU gone), read from the host with
/// Janus' own log code.
pub fn read_audit_log(disk: &Path) -> Option<AuditLog> {
    let (records, bytes) = qemu_virt_tests::shared::audit_records(disk);
    Some(AuditLog {
        records: records.len() as u64,
        bytes,
    })
}

/// The shared-folder metrics from the Janus run, the native run and the audit
/// log the Janus run left.
pub fn metrics(janus: &Figures, native: &Figures, audit: Option<AuditLog>) -> Vec<Metric> {
    let x1000 = |value: f64| (value * 1000.0) as u64;
    let data_source = "the same copy into personal's own /data (ext4 on its virtio-blk volume, dd bs=1M conv=fsync), same boot";
    let ratio = janus.shared_copy_mib_s / janus.data_copy_mib_s;
    let mut metrics = vec![
        Metric {
            baseline: Some((janus.data_copy_mib_s, data_source)),
            ..Metric::new("shared_copy_mib_s", janus.shared_copy_mib_s, "MiB/s")
        },
        Metric {
            // Issue 10's goal: half of /data's speed or better.
            target: Some(0.5),
            detail_name: "mib_s_x1000",
            detail: vec![
                ("janus_shared".to_string(), x1000(janus.shared_copy_mib_s)),
                ("janus_data".to_string(), x1000(janus.data_copy_mib_s)),
                (
                    "native_qemu_9p".to_string(),
                    x1000(native.shared_copy_mib_s),
                ),
                ("native_data".to_string(), x1000(native.data_copy_mib_s)),
            ],
            ..Metric::new("shared_copy_ratio", ratio, "ratio")
        },
        Metric {
            baseline: Some((
                janus.data_files_per_s,
                "the same loop in personal's own /data (ext4, not synced), same boot",
            )),
            detail_name: "files_per_s_x1000",
            detail: vec![
                (
                    "native_qemu_9p".to_string(),
                    x1000(native.shared_files_per_s),
                ),
                ("native_data".to_string(), x1000(native.data_files_per_s)),
            ],
            ..Metric::new(
                "shared_small_files_per_s",
                janus.shared_files_per_s,
                "files/s",
            )
        },
        Metric {
            detail_name: "during_the_loop",
            detail: vec![
                ("wr_operations".to_string(), janus.disk_writes),
                ("flush_operations".to_string(), janus.disk_flushes),
            ],
            ..Metric::new(
                "shared_disk_writes_per_file",
                janus.disk_writes as f64 / f64::from(SMALL_FILES),
                "writes",
            )
        },
    ];
    if let Some(audit) = audit {
        metrics.extend(audit_metrics(audit));
    }
    metrics
}

/// The audit log's cost: bytes per record, and records per small file. The log
/// also holds the copy's few records (create, write, delete) and the loop
/// folder's, next to the loop's.
pub fn audit_metrics(audit: AuditLog) -> Vec<Metric> {
    let detail = vec![
        ("records".to_string(), audit.records),
        ("log_bytes".to_string(), audit.bytes),
    ];
    vec![
        Metric {
            detail_name: "log",
            detail: detail.clone(),
            ..Metric::new(
                "audit_bytes_per_op",
                audit.bytes as f64 / audit.records.max(1) as f64,
                "bytes",
            )
        },
        Metric {
            detail_name: "log",
            detail,
            ..Metric::new(
                "audit_records_per_file",
                audit.records as f64 / f64::from(SMALL_FILES),
                "records",
            )
        },
    ]
}

//! Persistent storage: each Linux personality's volume on Janus' disk.
//!
//! Every test makes its own disk from images/personalities.toml (the user's
//! target/images/disk.img is never used), boots Janus with it, and checks what
//! the guests see and what the disk image holds, read from the host.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qemu_virt_tests::linux::Linux;
use qemu_virt_tests::{disk, image_path, workspace_root};

/// A disk of the test's own, made from the default configuration.
fn fresh_disk(test: &str) -> PathBuf {
    let dir = disk::test_disks_dir();
    fs::create_dir_all(&dir).expect("create target/test-disks");
    disk::create(
        &workspace_root().join("images/personalities.toml"),
        &dir.join(format!("{test}.img")),
    )
}

/// Boots both Linux personalities on `disk` and waits for both shells.
fn boot_on(disk: &Path) -> Linux {
    let config = Linux::config(image_path("linux.bundle")).with_disk(disk);
    let mut linux = Linux::start(config);
    linux.wait_shell("personal");
    linux
}

/// The bytes of partition `name` of `disk`.
fn partition_bytes(disk: &Path, name: &str) -> Vec<u8> {
    let range = disk::partition(disk, name);
    let bytes = fs::read(disk).expect("read the disk image");
    bytes[range.start as usize..range.end as usize].to_vec()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The physical disk's completed flushes, from QMP `query-blockstats`.
fn flushes(linux: &mut Linux) -> u64 {
    let stats = linux
        .qemu
        .qmp()
        .expect("QMP")
        .execute("query-blockstats", None)
        .expect("query-blockstats");
    let devices = stats.as_array().expect("a list of devices");
    let disk = devices
        .iter()
        .find(|device| device["device"] == "disk0")
        .expect("the disk's statistics");
    disk["stats"]["flush_operations"]
        .as_u64()
        .expect("flush_operations")
}

#[test]
fn what_each_personality_writes_and_syncs_survives_a_hard_kill() {
    let disk = fresh_disk("storage_survives_kill");
    let mut linux = boot_on(&disk);
    // Each personality has its own volume, with its own files.
    assert_eq!(linux.run("cat /data/owner"), "personal");
    assert!(linux
        .run("grep ' /data ' /proc/mounts")
        .contains("/dev/vda /data ext4"));
    linux.run("echo personal-wrote-7431 > /data/note; sync");
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    assert_eq!(linux.run("cat /data/owner"), "work");
    assert_eq!(
        linux.run("cat /data/note 2>&1 || echo absent"),
        "cat: can't open '/data/note': No such file or directory\nabsent"
    );
    linux.run("echo work-wrote-5528 > /data/note; sync");
    // No clean shutdown: whatever was not on the disk is lost now.
    linux.qemu.kill();
    drop(linux);

    // From the host: each partition holds its own personality's note only.
    let personal = partition_bytes(&disk, "personal");
    let work = partition_bytes(&disk, "work");
    assert!(contains(&personal, "personal-wrote-7431"));
    assert!(!contains(&personal, "work-wrote-5528"));
    assert!(contains(&work, "work-wrote-5528"));
    assert!(!contains(&work, "personal-wrote-7431"));

    let mut linux = boot_on(&disk);
    assert_eq!(linux.run("cat /data/note"), "personal-wrote-7431");
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    assert_eq!(linux.run("cat /data/note"), "work-wrote-5528");
    linux.qemu.kill();
}

#[test]
fn sync_flushes_the_physical_disk_and_the_volume_ends_where_its_partition_does() {
    let disk = fresh_disk("storage_flush_bounds");
    let mut linux = boot_on(&disk);
    let sectors: u64 = linux
        .run("cat /sys/block/vda/size")
        .parse()
        .expect("sectors");
    let partition = disk::partition(&disk, "personal");
    assert_eq!(sectors * 512, partition.end - partition.start);

    // A guest sync reaches the physical disk as a flush.
    linux.run("echo flush-me > /data/flush; sync");
    let before = flushes(&mut linux);
    linux.run("echo again >> /data/flush; sync");
    let after = flushes(&mut linux);
    assert!(after > before, "flushes {before} -> {after}");

    // The last sector can be written; one past it cannot.
    let last = sectors - 1;
    let marker = "last-sector-of-personal";
    let written = linux.run(&format!(
        "echo {marker} | dd of=/dev/vda bs=512 seek={last} conv=sync,fsync 2>&1; echo rc=$?"
    ));
    assert!(written.ends_with("rc=0"), "{written}");
    let past = linux.run(&format!(
        "echo past | dd of=/dev/vda bs=512 seek={sectors} conv=sync,fsync 2>&1; echo rc=$?"
    ));
    assert!(
        !past.ends_with("rc=0"),
        "a write past the end succeeded: {past}"
    );
    linux.qemu.kill();
    drop(linux);

    let bytes = fs::read(&disk).expect("read the disk image");
    let last_sector = (partition.end - 512) as usize;
    assert!(bytes[last_sector..last_sector + marker.len()] == *marker.as_bytes());
    // Work's partition, right after, does not start with it.
    let work = disk::partition(&disk, "work");
    assert!(!contains(
        &bytes[work.start as usize..work.start as usize + 4096],
        marker
    ));
}

#[test]
fn both_personalities_write_at_the_same_time_and_both_finish() {
    let disk = fresh_disk("storage_both_write");
    let mut linux = boot_on(&disk);
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    // Work writes 16 MiB in the background while personal writes in front.
    linux.run(
        "(dd if=/dev/zero of=/data/big bs=64k count=256 conv=fsync 2>/dev/null; \
         echo work-wrote-$(stat -c %s /data/big)-bytes) & true",
    );
    linux.switch_to(0, "personal");
    let personal = linux.run(
        "dd if=/dev/zero of=/data/big bs=64k count=256 conv=fsync 2>/dev/null; stat -c %s /data/big",
    );
    assert_eq!(personal, "16777216");
    linux.switch_to(1, "work");
    linux.wait("work-wrote-16777216-bytes", Duration::from_secs(300));
    linux.qemu.kill();
}

/// Boots on `disk` and returns personal's shell once it is ready, with the
/// console text so far.
fn boot_and_read(disk: &Path) -> (Linux, String) {
    let linux = boot_on(disk);
    let output = linux.qemu.output();
    (linux, output)
}

/// Flips a byte of `disk` at `offset`.
fn corrupt(disk: &Path, offset: u64) {
    let mut bytes = fs::read(disk).expect("read the disk image");
    bytes[offset as usize] ^= 0xff;
    fs::write(disk, bytes).expect("write the disk image");
}

#[test]
fn a_disk_without_a_partition_table_leaves_the_personalities_without_volumes() {
    let dir = disk::test_disks_dir();
    fs::create_dir_all(&dir).expect("create target/test-disks");
    let blank = dir.join("storage_blank.img");
    let file = fs::File::create(&blank).expect("create a blank disk");
    file.set_len(64 << 20).expect("size the blank disk");
    drop(file);
    let (mut linux, output) = boot_and_read(&blank);
    assert!(
        output
            .contains("[janus] disk: no GPT partition table; personalities start without volumes"),
        "{output}"
    );
    assert!(output.contains("personal: no volume; /data is in RAM and lost at reboot"));
    assert_eq!(linux.run("hostname"), "personal");
    linux.qemu.kill();
    // Nothing was written to it.
    let bytes = fs::read(&blank).expect("read the blank disk");
    assert!(bytes.iter().all(|&byte| byte == 0));
}

#[test]
fn a_damaged_primary_table_is_read_from_the_backup_and_two_damaged_ones_are_refused() {
    let disk = fresh_disk("storage_damaged_gpt");
    // The primary header's CRC (LBA 1, bytes 16-19).
    corrupt(&disk, 512 + 16);
    let (mut linux, output) = boot_and_read(&disk);
    assert!(output.contains("read the backup"), "{output}");
    assert_eq!(linux.run("cat /data/owner"), "personal");
    linux.qemu.kill();
    drop(linux);

    // And the backup's, in the disk's last sector.
    let last = fs::metadata(&disk).expect("disk size").len() - 512;
    corrupt(&disk, last + 16);
    let (mut linux, output) = boot_and_read(&disk);
    let line = output
        .lines()
        .find(|line| line.starts_with("[janus] disk: "))
        .unwrap_or_else(|| panic!("no disk line in\n{output}"));
    assert!(line.contains("primary GPT"), "{line}");
    assert!(
        line.ends_with("personalities start without volumes\r")
            || line.ends_with("personalities start without volumes"),
        "{line}"
    );
    assert!(output.contains("personal: no volume"));
    assert_eq!(linux.run("hostname"), "personal");
    linux.qemu.kill();
}

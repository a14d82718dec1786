//! The shared folder: `/shared` in both Linux personalities, served by Janus
//! from its store on the disk's `shared` partition, under the default policy,
//! with every crossing and refusal in the audit log on the `janus` partition.
//!
//! Every test makes its own disk; what the store and the log hold is read from
//! the disk image on the host, with Janus' own store and log code.

use std::fs;
use std::path::{Path, PathBuf};

use qemu_virt_tests::linux::Linux;
use qemu_virt_tests::{disk, image_path, shared, workspace_root};

/// A disk of the test's own, made from the default configuration.
fn fresh_disk(test: &str) -> PathBuf {
    let dir = disk::test_disks_dir();
    fs::create_dir_all(&dir).expect("create target/test-disks");
    disk::create(
        &workspace_root().join("images/personalities.toml"),
        &dir.join(format!("{test}.img")),
    )
}

/// Boots both Linux personalities on `disk` (with `bundle`) and waits for
/// personal's shell, then work's.
fn boot_on(bundle: &str, disk: &Path) -> Linux {
    let config = Linux::config(image_path(bundle)).with_disk(disk);
    let mut linux = Linux::start(config);
    linux.wait_shell("personal");
    linux
}

fn to_work(linux: &mut Linux) {
    linux.switch_to(1, "work");
    linux.wait_shell("work");
}

fn to_personal(linux: &mut Linux) {
    linux.switch_to(0, "personal");
    linux.wait_shell("personal");
}

#[test]
fn personal_files_cross_to_work_and_work_files_cross_only_when_released() {
    let disk = fresh_disk("shared_policy");
    let mut linux = boot_on("linux.bundle", &disk);
    assert!(linux
        .run("grep ' /shared ' /proc/mounts")
        .starts_with("shared /shared 9p"));
    linux.run("echo holiday-photos-4417 > /shared/from-personal.txt");
    linux.run("echo diary-entry-9921 > /shared/personal-diary.txt");

    to_work(&mut linux);
    // Personal's file is readable in work.
    assert_eq!(
        linux.run("cat /shared/from-personal.txt"),
        "holiday-photos-4417"
    );
    // ...but not writable or removable there.
    let write = linux.run("echo x >> /shared/from-personal.txt 2>&1; echo rc=$?");
    assert!(
        write.contains("Permission denied") && write.ends_with("rc=1"),
        "{write}"
    );
    let remove = linux.run("rm /shared/from-personal.txt 2>&1; echo rc=$?");
    assert!(!remove.ends_with("rc=0"), "{remove}");
    linux.run("echo quarterly-numbers-3310 > /shared/work-report.txt");
    linux.run("echo roadmap-7702 > /shared/to-release.txt");

    to_personal(&mut linux);
    // Work's file is neither listed nor readable in personal.
    let listing = linux.run("ls -a /shared");
    assert!(!listing.contains("work-report"), "{listing}");
    assert!(listing.contains("from-personal.txt"), "{listing}");
    assert_eq!(
        linux.run("cat /shared/work-report.txt 2>&1; echo rc=$?"),
        "cat: can't open '/shared/work-report.txt': No such file or directory\nrc=1"
    );
    // Personal cannot replace it blindly either.
    let clobber = linux.run("echo mine > /shared/work-report.txt 2>&1; echo rc=$?");
    assert!(!clobber.ends_with("rc=0"), "{clobber}");

    // Work releases one file: moving it into release/.
    to_work(&mut linux);
    linux.run("mv /shared/to-release.txt /shared/release/");
    to_personal(&mut linux);
    assert_eq!(
        linux.run("cat /shared/release/to-release.txt"),
        "roadmap-7702"
    );
    assert!(linux.run("ls /shared").find("work-report").is_none());

    // The audit log, as work's management agent reads it.
    to_work(&mut linux);
    let view = linux.run("cat /shared/.janus-audit");
    assert!(view.contains("work-report.txt"), "{view}");
    assert!(
        view.lines().any(|line| line.contains("denied")
            && line.contains("personal")
            && line.contains("work-report.txt")),
        "no denial of personal's read in work's view:\n{view}"
    );
    assert!(
        view.lines()
            .any(|line| line.contains("release") && line.contains("to-release.txt")),
        "{view}"
    );
    // Work read personal's file: a crossing, in work's view.
    assert!(
        view.lines()
            .any(|line| line.contains("read") && line.contains("from-personal.txt")),
        "{view}"
    );
    // Personal's activity on its own files is not in it, names included.
    assert!(!view.contains("personal-diary"), "{view}");
    // Personal has no such file.
    to_personal(&mut linux);
    assert!(linux
        .run("cat /shared/.janus-audit 2>&1; echo rc=$?")
        .ends_with("rc=1"));
    linux.qemu.kill();
    drop(linux);

    // On the host: the store holds the files with their labels, and the log
    // holds every operation, personal's own included.
    let store = shared::Store::read(&disk);
    assert_eq!(store.owner("/from-personal.txt"), Some(0));
    assert_eq!(store.owner("/work-report.txt"), Some(1));
    assert_eq!(store.released("/release/to-release.txt"), Some(true));
    let log = shared::audit_lines(&disk);
    for needle in ["create", "personal-diary.txt", "work-report.txt", "release"] {
        assert!(
            log.iter().any(|line| line.contains(needle)),
            "{needle} missing:\n{log:#?}"
        );
    }
}

#[test]
fn fsynced_and_closed_files_survive_a_hard_kill_and_the_store_mounts() {
    let disk = fresh_disk("shared_kill");
    let mut linux = boot_on("linux.bundle", &disk);
    linux.run("mkdir /shared/dir && echo closed-file-5150 > /shared/dir/closed.txt");
    linux.run("dd if=/dev/urandom of=/data/random bs=64k count=16 2>/dev/null");
    linux.run("dd if=/data/random of=/shared/random bs=64k conv=fsync 2>/dev/null");
    let sum = linux.run("md5sum < /data/random");
    linux.run("mv /shared/dir/closed.txt /shared/dir/renamed.txt");
    linux.run("echo gone > /shared/deleted.txt && rm /shared/deleted.txt");
    linux.qemu.kill();
    drop(linux);

    let mut store = shared::Store::read(&disk);
    store.check();
    assert_eq!(store.cat("/dir/renamed.txt"), b"closed-file-5150\n");
    assert!(store.cat_opt("/deleted.txt").is_none());
    assert_eq!(store.size("/random"), Some(1 << 20));

    let mut linux = boot_on("linux.bundle", &disk);
    assert_eq!(linux.run("cat /shared/dir/renamed.txt"), "closed-file-5150");
    assert_eq!(linux.run("md5sum < /shared/random"), sum);
    to_work(&mut linux);
    assert_eq!(linux.run("cat /shared/dir/renamed.txt"), "closed-file-5150");
    linux.qemu.kill();
}

#[test]
fn a_full_store_refuses_with_enospc_and_keeps_working() {
    let disk = fresh_disk("shared_full");
    let mut linux = boot_on("linux.bundle", &disk);
    linux.run("echo before > /shared/before.txt");
    // The default shared partition is 64 MiB: 80 MiB do not fit.
    let full = linux.run_for(
        "dd if=/dev/zero of=/shared/big bs=1M count=80 2>&1 | grep -v records; echo rc=$?",
        std::time::Duration::from_secs(300),
    );
    assert!(full.contains("No space left on device"), "{full}");
    // What did fit is there, nothing else broke, and space comes back.
    let size: u64 = linux.run("stat -c %s /shared/big").parse().expect("a size");
    assert!(size > 32 << 20 && size < 64 << 20, "{size}");
    linux.run("rm /shared/big");
    linux.run("echo after > /shared/after.txt");
    assert_eq!(
        linux.run("cat /shared/before.txt /shared/after.txt"),
        "before\nafter"
    );
    let df = linux.run("df -k /shared | tail -1");
    assert!(df.contains("/shared"), "{df}");
    linux.qemu.kill();
    drop(linux);
    let mut store = shared::Store::read(&disk);
    store.check();
    assert!(store.cat_opt("/big").is_none());
    assert_eq!(store.cat("/after.txt"), b"after\n");
}

//! Power cuts of the shared folder, honestly: QEMU records every write and
//! flush Janus makes to the disk (its `blklogwrites` driver), and the host
//! rebuilds the `shared` partition as it was at every flush point, and with
//! random subsets of the writes after each (what a power cut before the next
//! flush may leave). Each image must mount with Janus' store code and pass its
//! check; what the guest was told was done must be there at the end; the audit
//! log holds a record of each.

use std::fs;

use qemu_virt_tests::blklog::{replay_files, ReplayOptions};
use qemu_virt_tests::linux::Linux;
use qemu_virt_tests::{disk, image_path, shared, workspace_root};

#[test]
fn every_flush_point_of_a_recorded_run_mounts_and_the_end_holds_every_answered_step() {
    let dir = disk::test_disks_dir();
    fs::create_dir_all(&dir).expect("create target/test-disks");
    let image = disk::create(
        &workspace_root().join("images/personalities.toml"),
        &dir.join("shared_crash.img"),
    );
    let original = dir.join("shared_crash-original.img");
    fs::copy(&image, &original).expect("keep the original");
    let log = dir.join("shared_crash.log");
    let config = Linux::config(image_path("linux.bundle")).with_logged_disk(&image, &log);
    let mut linux = Linux::start(config);
    linux.wait_shell("personal");
    for step in [
        "mkdir /shared/docs",
        "echo first-7781 > /shared/docs/a.txt",
        "dd if=/dev/zero of=/shared/docs/zeros bs=64k count=16 conv=fsync 2>/dev/null",
        "echo second-2290 > /shared/docs/b.txt",
        "mv /shared/docs/b.txt /shared/docs/a.txt",
        "echo doomed > /shared/doomed.txt",
        "rm /shared/doomed.txt",
        "echo 123456789 > /shared/cut.txt && truncate -s 4 /shared/cut.txt",
    ] {
        let out = linux.run(&format!("{step}; echo rc=$?"));
        assert!(out.ends_with("rc=0"), "{step}: {out}");
    }
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    let out = linux.run("echo from-work-4410 > /shared/work.txt; echo rc=$?");
    assert!(out.ends_with("rc=0"), "{out}");
    linux.qemu.kill();
    drop(linux);

    let window = disk::partition(&original, "shared");
    let options = ReplayOptions {
        subsets_per_flush: 2,
        window: Some(window),
        ..ReplayOptions::default()
    };
    let (mut images, mut formatted, mut last) = (0, false, None);
    replay_files(&original, &log, &options, |point, bytes| {
        images += 1;
        match shared::mount_and_check(bytes.to_vec()) {
            Ok(_) => formatted = true,
            // Blank only until Janus first formatted it.
            Err(None) => assert!(!formatted, "blank again at {point:?}"),
            Err(Some(why)) => panic!("the store at {point:?} does not mount: {why}"),
        }
        if point.applied_after.is_empty() {
            last = Some(bytes.to_vec());
        }
    })
    .expect("replay the write log");
    assert!(formatted && images > 2, "{images} images");
    eprintln!("shared_crash: {images} replayed images of the shared partition mounted and checked");

    // The last flush point holds every step the guests were answered for.
    let mut store = shared::mount_and_check(last.expect("a last image")).expect("mounts");
    let read = |store: &mut hyp::channel::store::Store<shared::RamPartition>, path: &str| {
        let ino = janus_pack::store_image::resolve(store, path).ok()?;
        janus_pack::store_image::read_all(store, ino).ok()
    };
    assert_eq!(
        read(&mut store, "/docs/a.txt").as_deref(),
        Some(&b"second-2290\n"[..])
    );
    assert_eq!(read(&mut store, "/docs/b.txt"), None);
    assert_eq!(
        read(&mut store, "/docs/zeros").map(|d| d.len()),
        Some(1 << 20)
    );
    assert_eq!(read(&mut store, "/doomed.txt"), None);
    assert_eq!(read(&mut store, "/cut.txt").as_deref(), Some(&b"1234"[..]));
    assert_eq!(
        read(&mut store, "/work.txt").as_deref(),
        Some(&b"from-work-4410\n"[..])
    );

    // The log (the final image: its records were flushed with the commits).
    let lines = shared::audit_lines(&image);
    for (op, who, path) in [
        ("mkdir", "personal", "/docs"),
        ("create", "personal", "/docs/a.txt"),
        ("write", "personal", "/docs/zeros"),
        ("rename", "personal", "/docs/b.txt"),
        ("delete", "personal", "/doomed.txt"),
        ("write", "personal", "/cut.txt"),
        ("create", "work", "/work.txt"),
    ] {
        assert!(
            lines
                .iter()
                .any(|line| line.contains(&format!("who={who} op={op}"))
                    && line.contains(&format!("\"{path}\""))),
            "no {op} of {path} by {who}:\n{lines:#?}"
        );
    }
}

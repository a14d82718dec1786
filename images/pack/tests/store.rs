//! `janus-store`: lists, prints and checks a store written by the hypervisor's
//! own store code, found through the GPT, by offset, or as a bare partition file;
//! refuses a damaged one.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use hyp::channel::fs::Timespec;
use hyp::channel::store::{Limits, Store, ROOT};
use janus_pack::store_image::FileDisk;

struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(test: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "janus-store-{}-{test}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

const NOW: Timespec = Timespec {
    sec: 1_700_000_000,
    nsec: 5,
};

/// Writes a store of `sectors` sectors at byte `offset` of `image`: a work file
/// in `release/`, a personal file, and a large file.
fn make_store(image: &Path, offset: u64, sectors: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(image)
        .unwrap();
    let length = file.metadata().unwrap().len().max(offset + sectors * 512);
    file.set_len(length).unwrap();
    let disk = FileDisk::new(file, offset, sectors, true);
    let mut store = Store::format(disk, Limits::default(), NOW).unwrap();
    let release = store.mkdir(ROOT, "release", 0o755, 1, NOW).unwrap();
    let report = store.create(release, "report.txt", 0o644, 1, NOW).unwrap();
    store.write(report, 0, b"quarterly figures\n", NOW).unwrap();
    store.set_label(report, 1, true, NOW).unwrap();
    let notes = store.create(ROOT, "notes.txt", 0o600, 0, NOW).unwrap();
    store.write(notes, 0, b"personal notes\n", NOW).unwrap();
    let big = store.create(ROOT, "big.bin", 0o644, 0, NOW).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    store.write(big, 0, &data, NOW).unwrap();
    store.commit().unwrap();
}

fn run(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_janus-store"))
        .args(arguments)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn lists_prints_stats_and_checks_a_bare_partition() {
    let scratch = Scratch::new("bare");
    let image = scratch.dir.join("shared.img");
    make_store(&image, 0, 16 * 2048);
    let image = image.to_str().unwrap();
    let listing = stdout(&run(&["ls", "-R", image]));
    assert_eq!(
        listing,
        "d owner=1 released=0 size=4096 /release\n\
         f owner=1 released=1 size=18 /release/report.txt\n\
         f owner=0 released=0 size=15 /notes.txt\n\
         f owner=0 released=0 size=3000000 /big.bin\n"
    );
    let top = stdout(&run(&["ls", image]));
    assert_eq!(top.lines().count(), 3);
    assert_eq!(
        stdout(&run(&["cat", image, "/release/report.txt"])),
        "quarterly figures\n"
    );
    let big = run(&["cat", image, "big.bin"]);
    assert!(big.status.success());
    assert_eq!(big.stdout.len(), 3_000_000);
    assert!(big
        .stdout
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));
    let stat = stdout(&run(&["stat", image, "/notes.txt"]));
    assert!(
        stat.contains("mode=600 size=15 nlink=1 owner=0 released=0"),
        "{stat}"
    );
    let check = stdout(&run(&["check", image]));
    assert!(
        check.starts_with("janus-store: ok: commit 2, 3 files, 1 directories, 3000033 bytes"),
        "{check}"
    );
}

#[test]
fn finds_the_store_by_offset() {
    let scratch = Scratch::new("offset");
    let image = scratch.dir.join("disk.img");
    fs::write(&image, vec![0xee; 1 << 20]).unwrap();
    make_store(&image, 1 << 20, 8 * 2048);
    let image = image.to_str().unwrap();
    let output = stdout(&run(&[
        "check",
        image,
        "--offset",
        "1048576",
        "--sectors",
        "16384",
    ]));
    assert!(output.contains("3 files"), "{output}");
    // Without the offset, the junk in front is no store.
    assert_eq!(run(&["check", image]).status.code(), Some(1));
}

#[test]
fn damaged_store_fails_check_and_usage_errors_exit_2() {
    let scratch = Scratch::new("damaged");
    let image = scratch.dir.join("shared.img");
    make_store(&image, 0, 4 * 2048);
    // Flip a byte in every metadata block (each starts with "JMLB").
    let mut bytes = fs::read(&image).unwrap();
    for block in bytes.chunks_mut(4096) {
        if block.starts_with(b"JMLB") {
            block[40] ^= 0x55;
        }
    }
    fs::write(&image, bytes).unwrap();
    let image = image.to_str().unwrap();
    let output = run(&["check", image]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not mount"));
    assert_eq!(run(&["cat", image]).status.code(), Some(2));
    assert_eq!(run(&["frobnicate", image]).status.code(), Some(2));
    assert_eq!(
        run(&["check", image, "--offset", "0"]).status.code(),
        Some(2)
    );
}

#[test]
fn finds_the_shared_partition_through_the_gpt() {
    if janus_pack::disk::mkfs::find_default().is_none() {
        eprintln!("skipped: no mkfs.ext4 (install e2fsprogs)");
        return;
    }
    let scratch = Scratch::new("gpt");
    let config = scratch.dir.join("personalities.toml");
    fs::write(
        &config,
        "[[personality]]\nname = \"personal\"\nkind = \"linux\"\nram_mib = 64\nvcpus = 1\n\
         cpus = [0]\nkernel = \"Image\"\nvolume_mib = 16\n\
         [[personality]]\nname = \"work\"\nkind = \"linux\"\nram_mib = 64\nvcpus = 1\n\
         cpus = [1]\nkernel = \"Image\"\nvolume_mib = 16\n\
         [disk]\nshared_mib = 16\njanus_mib = 2\n",
    )
    .unwrap();
    let image = scratch.dir.join("disk.img");
    janus_pack::disk::create(&config, &image, &Default::default()).unwrap();
    let shared = janus_pack::store_image::find_shared(&image).unwrap();
    assert_eq!(shared.sectors, 16 * 2048);
    // A blank shared partition is not a store yet.
    assert_eq!(
        run(&["check", image.to_str().unwrap()]).status.code(),
        Some(1)
    );
    make_store(&image, shared.offset, shared.sectors);
    let output = stdout(&run(&["ls", "-R", image.to_str().unwrap()]));
    assert!(
        output.contains("f owner=1 released=1 size=18 /release/report.txt"),
        "{output}"
    );
    drop(File::open(&image).unwrap());
}

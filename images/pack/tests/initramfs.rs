//! The `janus-initramfs` command: what it writes and how it exits.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use janus_pack::initramfs::{self, S_IFCHR};

/// A fresh scratch folder for `test`.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("janus-initramfs-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Enough of an arm64 ELF header to pass the builder's check.
fn fake_busybox() -> Vec<u8> {
    let mut binary = vec![0u8; 64];
    binary[..4].copy_from_slice(b"\x7fELF");
    binary[4] = 2; // 64-bit
    binary[5] = 1; // little-endian
    binary[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    binary
}

fn janus_initramfs(arguments: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_janus-initramfs"))
        .args(arguments)
        .output()
        .unwrap()
}

#[test]
fn writes_the_archive_and_its_folder() {
    let dir = scratch("writes");
    let busybox = dir.join("busybox");
    fs::write(&busybox, fake_busybox()).unwrap();
    let output = dir.join("images/work.cpio");

    let result = janus_initramfs(&[
        "--name",
        "work",
        "--busybox",
        busybox.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{result:?}");

    let entries = initramfs::parse(&fs::read(&output).unwrap()).unwrap();
    let console = entries
        .iter()
        .find(|entry| entry.name == "dev/console")
        .unwrap();
    assert_eq!((console.file_type(), console.rdev), (S_IFCHR, (5, 1)));
    let init = entries.iter().find(|entry| entry.name == "init").unwrap();
    assert!(String::from_utf8_lossy(&init.data).contains("NAME=work\n"));
    assert!(!dir.join("images/work.cpio.tmp").exists());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_exits_1_and_bad_usage_2() {
    let dir = scratch("errors");
    let busybox = dir.join("busybox");
    fs::write(&busybox, fake_busybox()).unwrap();
    let not_arm64 = dir.join("script");
    fs::write(&not_arm64, "#!/bin/sh\n").unwrap();
    let output = dir.join("out.cpio");
    let output = output.to_str().unwrap();

    let bad_name = janus_initramfs(&[
        "--name",
        "Work",
        "--busybox",
        busybox.to_str().unwrap(),
        "-o",
        output,
    ]);
    assert_eq!(bad_name.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_name.stderr).contains("\"Work\""));

    let bad_busybox = janus_initramfs(&[
        "--name",
        "work",
        "--busybox",
        not_arm64.to_str().unwrap(),
        "-o",
        output,
    ]);
    assert_eq!(bad_busybox.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_busybox.stderr).contains("not an arm64 ELF"));

    let missing = janus_initramfs(&["--name", "work", "--busybox", "/nonexistent", "-o", output]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(!dir.join("out.cpio").exists());

    let usage = janus_initramfs(&["--name", "work"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage: janus-initramfs"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn modules_need_their_folder_and_a_missing_one_is_an_error() {
    let dir = scratch("modules");
    let busybox = dir.join("busybox");
    fs::write(&busybox, fake_busybox()).unwrap();
    let output = dir.join("out.cpio");
    let common = [
        "--name",
        "work",
        "--busybox",
        busybox.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ];

    let no_folder = janus_initramfs(&[&common[..], &["--module", "ext4"]].concat());
    assert_eq!(no_folder.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_folder.stderr).contains("--modules DIR"));

    let empty = dir.join("lib-modules");
    fs::create_dir_all(&empty).unwrap();
    let missing = janus_initramfs(&[&common[..], &["--modules", empty.to_str().unwrap()]].concat());
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("kernel module virtio_mmio not found"),
        "{missing:?}"
    );
    assert!(!output.exists());
    let _ = fs::remove_dir_all(&dir);
}

/// The real thing, when `images/fetch-debian.sh` has fetched it: Debian's arm64
/// kernel modules for the volume and the shared folder resolve, dependencies first.
#[test]
fn debian_kernel_modules_resolve_when_fetched() {
    let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/cache/debian");
    let Ok(version) = fs::read_to_string(cache.join("VERSION")) else {
        eprintln!("skipped: no Debian kernel in {}", cache.display());
        return;
    };
    let dir = cache.join("kernel/lib/modules").join(version.trim());
    let tree = janus_pack::modules::ModuleTree::open(&dir).unwrap();
    let (order, missing) = tree.resolve(&janus_pack::modules::DEFAULT_MODULES).unwrap();
    let names: Vec<&str> = order.iter().map(|module| module.name.as_str()).collect();
    let position = |name: &str| {
        names
            .iter()
            .position(|listed| *listed == name)
            .unwrap_or_else(|| panic!("{name} not in {names:?}"))
    };
    for dependency in ["jbd2", "mbcache", "crc16"] {
        assert!(position(dependency) < position("ext4"), "{names:?}");
    }
    assert!(position("virtio_mmio") < position("virtio_blk"));
    // The shared folder's client last, in the order DATA-PATH-RESEARCH 2.1 booted.
    let ext4 = position("ext4");
    assert_eq!(
        names[ext4 + 1..],
        ["netfs", "fscache", "9pnet", "9pnet_virtio", "9p"],
        "{names:?}"
    );
    assert!(missing.is_empty(), "{missing:?}");
}

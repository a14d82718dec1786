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

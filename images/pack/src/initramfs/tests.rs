//! Tests of the initramfs writer.

use super::*;

/// The smallest thing that passes for an arm64 ELF executable.
fn fake_busybox() -> Vec<u8> {
    let mut binary = vec![0u8; 64];
    binary[..4].copy_from_slice(b"\x7fELF");
    binary[4] = 2;
    binary[5] = 1;
    binary[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
    binary.extend_from_slice(b"busybox body");
    binary
}

fn field(header: &[u8], index: usize) -> u32 {
    let at = 6 + index * 8;
    u32::from_str_radix(std::str::from_utf8(&header[at..at + 8]).unwrap(), 16).unwrap()
}

#[test]
fn header_fields_are_where_newc_puts_them() {
    let mut archive = Newc::new();
    archive.file("/etc/motd", 0o644, b"hello").unwrap();
    let bytes = archive.finish();

    assert_eq!(&bytes[..6], b"070701");
    let header = &bytes[..HEADER_BYTES];
    assert!(header[6..]
        .iter()
        .all(|byte| byte.is_ascii_digit() || (b'A'..=b'F').contains(byte)));
    assert_eq!(field(header, 0), 1, "inode");
    assert_eq!(field(header, 1), 0o100_644, "mode");
    assert_eq!(field(header, 2), 0, "uid");
    assert_eq!(field(header, 3), 0, "gid");
    assert_eq!(field(header, 4), 1, "nlink");
    assert_eq!(field(header, 5), 0, "mtime");
    assert_eq!(field(header, 6), 5, "file size");
    assert_eq!(field(header, 11), 9, "name size counts the NUL");
    assert_eq!(field(header, 12), 0, "check");
    // Name right after the header, leading '/' dropped, NUL-terminated.
    assert_eq!(&bytes[110..119], b"etc/motd\0");
    // 110 + 9 = 119: one byte of padding, then the data at 120.
    assert_eq!(bytes[119], 0);
    assert_eq!(&bytes[120..125], b"hello");
    // Data padded to 128, where the trailer starts.
    assert_eq!(&bytes[125..128], &[0, 0, 0]);
    assert_eq!(&bytes[128..134], b"070701");
}

#[test]
fn every_entry_and_the_end_are_4_byte_aligned() {
    for length in 0..9 {
        let mut archive = Newc::new();
        let name = "a".repeat(length + 1);
        archive.file(&name, 0o644, &vec![b'x'; length]).unwrap();
        archive.directory("d", 0o755).unwrap();
        let bytes = archive.finish();
        assert_eq!(bytes.len() % 4, 0, "length {length}");
        let magics: Vec<usize> = (0..bytes.len())
            .filter(|&at| bytes[at..].starts_with(b"070701"))
            .collect();
        assert_eq!(magics.len(), 3, "length {length}");
        assert!(magics.iter().all(|at| at % 4 == 0), "{magics:?}");
    }
}

#[test]
fn trailer_ends_the_archive() {
    let bytes = Newc::new().finish();
    // Header + "TRAILER!!!\0" (121 bytes) padded to 124.
    assert_eq!(bytes.len(), 124);
    assert_eq!(field(&bytes, 4), 1, "trailer nlink");
    assert_eq!(field(&bytes, 6), 0, "trailer size");
    assert_eq!(field(&bytes, 11), 11, "trailer name size");
    assert_eq!(&bytes[110..121], b"TRAILER!!!\0");
    assert_eq!(&bytes[121..], &[0, 0, 0]);
    assert_eq!(parse(&bytes), Ok(Vec::new()));
}

#[test]
fn what_is_written_parses_back() {
    let mut archive = Newc::new();
    archive.directory("dev", 0o755).unwrap();
    archive.char_device("dev/console", 0o600, 5, 1).unwrap();
    archive.file("bin-file", 0o755, b"\x00\x01\x02").unwrap();
    archive.symlink("bin/sh", "busybox").unwrap();
    archive.file("empty", 0o644, b"").unwrap();
    let entries = parse(&archive.finish()).unwrap();

    let names: Vec<&str> = entries.iter().map(|entry| entry.name.as_str()).collect();
    assert_eq!(names, ["dev", "dev/console", "bin-file", "bin/sh", "empty"]);
    assert_eq!(entries[0].mode, S_IFDIR | 0o755);
    assert_eq!(entries[1].file_type(), S_IFCHR);
    assert_eq!(entries[1].permissions(), 0o600);
    assert_eq!(entries[1].rdev, (5, 1));
    assert_eq!(entries[2].data, b"\x00\x01\x02");
    assert_eq!(entries[3].mode, S_IFLNK | 0o777);
    assert_eq!(entries[3].data, b"busybox");
    assert!(entries[4].data.is_empty());
    let inodes: Vec<u32> = entries.iter().map(|entry| entry.inode).collect();
    assert_eq!(inodes, [1, 2, 3, 4, 5]);
}

#[test]
fn bad_paths_are_refused() {
    let mut archive = Newc::new();
    for path in ["", "/", "a//b", "./a", "a/../b", "a\0b", "TRAILER!!!"] {
        assert_eq!(
            archive.file(path, 0o644, b""),
            Err(CpioError::BadPath(path.to_owned())),
            "{path:?}"
        );
    }
    assert!(archive.symlink("link", "").is_err());
}

#[test]
fn parse_refuses_broken_archives() {
    let mut archive = Newc::new();
    archive.file("file", 0o644, b"data!").unwrap();
    let good = archive.finish();

    // Entry: header 0..110, "file\0" 110..115, padding to 116, data 116..121,
    // padding to 124, then the trailer.
    assert_eq!(parse(&good[..118]), Err(ParseError::Truncated(116)));
    assert_eq!(parse(&good[..200]), Err(ParseError::Truncated(124)));
    assert_eq!(parse(&good[..240]), Err(ParseError::Truncated(234)));
    assert_eq!(parse(&good[..50]), Err(ParseError::Truncated(0)));

    let mut bad = good.clone();
    bad[5] = b'2';
    assert_eq!(parse(&bad), Err(ParseError::BadMagic(0)));

    let mut bad = good.clone();
    bad[20] = b'G';
    assert_eq!(parse(&bad), Err(ParseError::BadField(14)));

    let mut bad = good.clone();
    bad[115] = 1;
    assert_eq!(parse(&bad), Err(ParseError::BadPadding(115)));

    let mut bad = good;
    bad[114] = b'x'; // the name's NUL
    assert_eq!(parse(&bad), Err(ParseError::BadName(110)));
}

#[test]
fn init_script_gets_the_name() {
    let script = init_script("work").unwrap();
    assert!(script.starts_with("#!/bin/sh\n"));
    assert!(!script.contains(NAME_PLACEHOLDER));
    assert!(script.contains("NAME=work\n"));
    assert!(INIT_TEMPLATE.contains(NAME_PLACEHOLDER));
    // The contract: the ready line and the hostname.
    assert!(script.contains("echo \"$NAME: ready\""));
    assert!(script.contains("hostname \"$NAME\""));
}

#[test]
fn init_mounts_the_shared_folder_after_the_volume_and_before_ready() {
    let script = init_script("work").unwrap();
    let mount = "mount -t 9p -o \"$shared_options\" shared /shared";
    assert!(
        script.contains("shared_options=trans=virtio,version=9p2000.L,msize=131072,cache=none\n"),
        "the contract's mount options"
    );
    let at = |needle: &str| {
        script
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in /init"))
    };
    // The 9P modules load before either mount.
    assert!(at("/lib/modules/load-order") < at("mount -t ext4 /dev/vda /data"));
    assert!(at("mount -t ext4 /dev/vda /data") < at(mount));
    assert!(at(mount) < at("echo \"$NAME: ready\""));
    assert!(at("echo \"$NAME: /shared is the shared folder (9p)\"") < at("echo \"$NAME: ready\""));
    // Both outcomes say so, in the form the tests look for.
    assert_eq!(
        script.matches("echo \"$NAME: no shared folder; ").count(),
        2
    );
    // The device is found by its virtio ID and tag, not assumed.
    assert!(script.contains("= 0x0009 ]"));
    assert!(script.contains("$device/mount_tag"));
}

#[test]
fn poweroff_reboot_and_halt_let_the_shared_folder_go_before_the_volume() {
    let script = init_script("personal").unwrap();
    let release = &script[script.find("release_data() {").unwrap()..];
    let release = &release[..release.find("\n}\n").unwrap()];
    let shared = release.find("umount /shared").expect("unmounts /shared");
    let data = release.find("umount /data").expect("unmounts /data");
    assert!(shared < data, "{release}");
    for command in ["poweroff", "reboot", "halt"] {
        assert!(
            script.contains(&format!(
                "{command}() {{ release_data; /bin/busybox {command} -f"
            )),
            "{command}"
        );
    }
}

#[test]
fn names_follow_the_bundle_rule() {
    for name in ["personal", "work", "a", "work-2", "abcdefghijklmno"] {
        assert_eq!(check_name(name), Ok(()), "{name}");
    }
    for name in ["", "-x", "Work", "a b", "a;b", "a/b", "abcdefghijklmnop"] {
        assert!(check_name(name).is_err(), "{name:?}");
    }
}

#[test]
fn build_makes_a_bootable_tree() {
    let busybox = fake_busybox();
    let entries = parse(&build("personal", &busybox, &[]).unwrap()).unwrap();
    let find = |name: &str| {
        entries
            .iter()
            .find(|entry| entry.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };

    for directory in [
        "dev", "proc", "sys", "tmp", "root", "etc", "bin", "sbin", "data", "shared",
    ] {
        assert_eq!(find(directory).file_type(), S_IFDIR, "{directory}");
    }
    assert_eq!(find("tmp").permissions(), 0o1777);
    let console = find("dev/console");
    assert_eq!(console.file_type(), S_IFCHR);
    assert_eq!(console.rdev, (5, 1));
    let busybox_entry = find("bin/busybox");
    assert_eq!(busybox_entry.mode, S_IFREG | 0o755);
    assert_eq!(busybox_entry.data, busybox);
    assert_eq!(find("bin/sh").data, b"busybox");
    assert_eq!(find("etc/hostname").data, b"personal\n");
    assert!(find("etc/passwd")
        .data
        .starts_with(b"root:x:0:0:root:/root:"));
    let init = find("init");
    assert_eq!(init.mode, S_IFREG | 0o755);
    assert_eq!(init.data, init_script("personal").unwrap().as_bytes());

    // Each entry's parent comes before it, as the kernel creates them in order.
    for (index, entry) in entries.iter().enumerate() {
        if let Some((parent, _)) = entry.name.rsplit_once('/') {
            assert!(
                entries[..index]
                    .iter()
                    .any(|earlier| earlier.name == parent),
                "{} before its parent",
                entry.name
            );
        }
    }
    // Owned by root, reproducible.
    assert!(entries.iter().all(|entry| entry.uid == 0 && entry.gid == 0));
    assert_eq!(
        build("personal", &busybox, &[]),
        build("personal", &busybox, &[])
    );
}

#[test]
fn modules_go_in_lib_modules_with_their_load_order() {
    let modules = [
        KernelModule {
            file_name: "jbd2.ko",
            bytes: b"jbd2 module",
        },
        KernelModule {
            file_name: "ext4.ko",
            bytes: b"ext4 module",
        },
    ];
    let entries = parse(&build("work", &fake_busybox(), &modules).unwrap()).unwrap();
    let find = |name: &str| entries.iter().find(|entry| entry.name == name);
    assert_eq!(find("lib/modules/jbd2.ko").unwrap().data, b"jbd2 module");
    assert_eq!(find("lib/modules/ext4.ko").unwrap().data, b"ext4 module");
    assert_eq!(find(LOAD_ORDER_FILE).unwrap().data, b"jbd2.ko\next4.ko\n");
    assert_eq!(find("data").unwrap().file_type(), S_IFDIR);

    let without = parse(&build("work", &fake_busybox(), &[]).unwrap()).unwrap();
    let order = without.iter().find(|entry| entry.name == LOAD_ORDER_FILE);
    assert_eq!(order.unwrap().data, b"");

    for file_name in ["../evil.ko", "a/b.ko", "readme.txt"] {
        let module = KernelModule {
            file_name,
            bytes: b"",
        };
        assert!(
            build("work", &fake_busybox(), &[module]).is_err(),
            "{file_name}"
        );
    }
}

#[test]
fn build_refuses_bad_input() {
    assert_eq!(
        build("Bad", &fake_busybox(), &[]),
        Err(InitramfsError::BadName("Bad".to_owned()))
    );
    let mut x86 = fake_busybox();
    x86[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    assert_eq!(
        build("work", &x86, &[]),
        Err(InitramfsError::NotArm64Busybox)
    );
    assert_eq!(
        build("work", b"#!/bin/sh\n", &[]),
        Err(InitramfsError::NotArm64Busybox)
    );
}

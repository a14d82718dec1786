//! `janus-disk`: a disk made from a config passes `check`, a changed config does not,
//! and a missing `mkfs.ext4` says what to install.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use janus_pack::disk::{self, CreateOptions, DiskError, MkfsError, Role};

/// A fresh folder under the system temp dir, removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(test: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "janus-disk-{}-{test}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    /// Writes a config with these volume sizes (`None`: no `volume_mib`) and returns
    /// its path.
    fn config(&self, file: &str, personal: Option<u32>, work: Option<u32>) -> PathBuf {
        let volume =
            |mib: Option<u32>| mib.map_or(String::new(), |mib| format!("volume_mib = {mib}\n"));
        let text = format!(
            "[[personality]]\nname = \"personal\"\nkind = \"linux\"\nram_mib = 64\nvcpus = 1\n\
             cpus = [0]\nkernel = \"Image\"\n{}\n\
             [[personality]]\nname = \"work\"\nkind = \"linux\"\nram_mib = 64\nvcpus = 1\n\
             cpus = [1]\nkernel = \"Image\"\n{}\n\
             [disk]\nshared_mib = 16\njanus_mib = 2\n",
            volume(personal),
            volume(work)
        );
        let path = self.dir.join(file);
        fs::write(&path, text).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Reads `length` bytes at `offset` of `file`.
fn read_at(file: &Path, offset: u64, length: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs::File::open(file).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut bytes = vec![0; length];
    file.read_exact(&mut bytes).unwrap();
    bytes
}

fn have_mkfs() -> bool {
    disk::mkfs::find_default().is_some()
}

#[test]
fn created_disk_passes_check_and_lists_its_partitions() {
    if !have_mkfs() {
        eprintln!("skipped: no mkfs.ext4 (install e2fsprogs)");
        return;
    }
    let scratch = Scratch::new("create");
    let config = scratch.config("personalities.toml", Some(32), Some(16));
    let image = scratch.path("disk.img");
    let plan = disk::create(&config, &image, &CreateOptions::default()).expect("create");
    assert_eq!(disk::check(&config, &image), Ok(()));

    let metadata = fs::metadata(&image).unwrap();
    assert_eq!(metadata.len(), (32 + 16 + 16 + 2 + 2) << 20);
    assert_eq!(metadata.len(), plan.total_bytes());
    // Sparse: far less is allocated than the file's length.
    assert!(metadata.blocks() * 512 < metadata.len() / 2, "{metadata:?}");

    let layout = disk::read_layout(&image).unwrap();
    let rows: Vec<_> = layout
        .iter()
        .map(|entry| {
            (
                entry.name.as_str(),
                entry.offset_bytes(),
                entry.size_bytes(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("personal", 1 << 20, 32 << 20),
            ("work", 33 << 20, 16 << 20),
            ("shared", 49 << 20, 16 << 20),
            ("janus", 65 << 20, 2 << 20),
        ]
    );

    // Each volume is ext4 (superblock magic 0xef53 at byte 1080 of the file system)
    // labelled with its name (at 1144); shared and janus stay zero.
    for (partition, entry) in plan.partitions.iter().zip(&layout) {
        let superblock = read_at(&image, entry.offset_bytes() + 1024, 1024);
        if partition.role == Role::Volume {
            assert_eq!(&superblock[56..58], &[0x53, 0xef], "{}", entry.name);
            let label = &superblock[120..136];
            let label = &label[..label.iter().position(|&b| b == 0).unwrap_or(16)];
            assert_eq!(label, entry.name.as_bytes());
        } else {
            assert!(
                superblock.iter().all(|&b| b == 0),
                "{} is not zeroed",
                entry.name
            );
        }
    }
    // The protective MBR's signature and the backup header's "EFI PART".
    assert_eq!(&read_at(&image, 510, 2), &[0x55, 0xaa]);
    assert_eq!(&read_at(&image, metadata.len() - 512, 8), b"EFI PART");
}

#[test]
fn changed_config_fails_check_and_says_how_to_remake() {
    if !have_mkfs() {
        eprintln!("skipped: no mkfs.ext4 (install e2fsprogs)");
        return;
    }
    let scratch = Scratch::new("mismatch");
    let config = scratch.config("personalities.toml", Some(16), Some(16));
    let image = scratch.path("disk.img");
    disk::create(&config, &image, &CreateOptions::default()).expect("create");
    let before = fs::read(&image).unwrap();

    for (name, personal, work, wanted) in [
        (
            "bigger.toml",
            Some(32),
            Some(16),
            "personal 32 MiB, work 16 MiB",
        ),
        (
            "fewer.toml",
            Some(16),
            None,
            "personal 16 MiB, shared 16 MiB",
        ),
    ] {
        let changed = scratch.config(name, personal, work);
        let error = disk::check(&changed, &image).expect_err("mismatch");
        assert!(matches!(error, DiskError::Mismatch { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(&changed.display().to_string()),
            "{message}"
        );
        assert!(
            message.contains("on the disk: personal 16 MiB, work 16 MiB"),
            "{message}"
        );
        assert!(message.contains(wanted), "{message}");
        assert!(message.contains("make disk-reset"), "{message}");
        assert!(message.contains("destroys"), "{message}");
    }
    // check never writes.
    assert_eq!(fs::read(&image).unwrap(), before);
}

#[test]
fn create_keeps_an_existing_disk_unless_told_to_replace_it() {
    if !have_mkfs() {
        eprintln!("skipped: no mkfs.ext4 (install e2fsprogs)");
        return;
    }
    let scratch = Scratch::new("exists");
    let config = scratch.config("personalities.toml", Some(16), None);
    let image = scratch.path("disk.img");
    fs::write(&image, b"the user's data").unwrap();
    let error = disk::create(&config, &image, &CreateOptions::default()).unwrap_err();
    assert_eq!(error, DiskError::Exists(image.clone()));
    assert!(error.to_string().contains("not replacing"));
    assert_eq!(fs::read(&image).unwrap(), b"the user's data");

    let replace = CreateOptions {
        replace: true,
        ..CreateOptions::default()
    };
    disk::create(&config, &image, &replace).expect("replace");
    assert_eq!(disk::check(&config, &image), Ok(()));
}

#[test]
fn missing_mkfs_is_a_clear_error_and_leaves_nothing() {
    let scratch = Scratch::new("nomkfs");
    let config = scratch.config("personalities.toml", Some(16), Some(16));
    let image = scratch.path("disk.img");
    let options = CreateOptions {
        mkfs: Some(scratch.path("no-such-mkfs.ext4")),
        ..CreateOptions::default()
    };
    let error = disk::create(&config, &image, &options).unwrap_err();
    assert_eq!(error, DiskError::Mkfs(MkfsError::NotFound));
    let message = error.to_string();
    assert!(message.contains("mkfs.ext4 not found"), "{message}");
    assert!(message.contains("e2fsprogs"), "{message}");
    assert!(message.contains("/usr/sbin"), "{message}");
    assert!(!image.exists());
}

#[test]
fn failing_mkfs_leaves_no_half_disk() {
    let scratch = Scratch::new("badmkfs");
    let config = scratch.config("personalities.toml", Some(16), None);
    let image = scratch.path("disk.img");
    let options = CreateOptions {
        mkfs: Some(PathBuf::from("/bin/false")),
        ..CreateOptions::default()
    };
    let error = disk::create(&config, &image, &options).unwrap_err();
    assert!(error.to_string().contains("failed"), "{error}");
    assert!(!image.exists());
    let leftovers: Vec<_> = fs::read_dir(&scratch.dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["personalities.toml"]);
}

#[test]
fn a_file_without_a_gpt_is_refused() {
    let scratch = Scratch::new("nogpt");
    let config = scratch.config("personalities.toml", Some(16), None);
    let image = scratch.path("disk.img");
    fs::write(&image, vec![0u8; 64 << 10]).unwrap();
    let error = disk::check(&config, &image).unwrap_err();
    assert!(matches!(error, DiskError::BadTable { .. }), "{error:?}");
    assert!(error.to_string().contains("no GPT"), "{error}");
    assert!(error.to_string().contains("make disk-reset"), "{error}");
}

#[test]
fn a_bad_config_is_refused_at_its_line() {
    let scratch = Scratch::new("badconfig");
    let config = scratch.config("personalities.toml", Some(8), None);
    let error = disk::plan(&config).unwrap_err();
    assert_eq!(error.line(), Some(8));
    assert!(error.reason().contains("volume_mib = 8"), "{error}");
}

#[test]
fn the_binary_creates_checks_and_prints_the_layout() {
    if !have_mkfs() {
        eprintln!("skipped: no mkfs.ext4 (install e2fsprogs)");
        return;
    }
    let binary = env!("CARGO_BIN_EXE_janus-disk");
    let scratch = Scratch::new("binary");
    let config = scratch.config("personalities.toml", Some(16), Some(16));
    let image = scratch.path("disk.img");
    let run = |args: &[&std::ffi::OsStr]| Command::new(binary).args(args).output().unwrap();

    let created = run(&[
        "create".as_ref(),
        config.as_os_str(),
        "-o".as_ref(),
        image.as_os_str(),
    ]);
    assert!(created.status.success(), "{created:?}");
    let again = run(&[
        "create".as_ref(),
        config.as_os_str(),
        "-o".as_ref(),
        image.as_os_str(),
    ]);
    assert_eq!(again.status.code(), Some(1), "{again:?}");

    let checked = run(&["check".as_ref(), config.as_os_str(), image.as_os_str()]);
    assert!(checked.status.success(), "{checked:?}");
    let changed = scratch.config("changed.toml", Some(32), Some(16));
    let refused = run(&["check".as_ref(), changed.as_os_str(), image.as_os_str()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("make disk-reset"));

    let layout = run(&["layout".as_ref(), image.as_os_str()]);
    assert!(layout.status.success());
    assert_eq!(
        String::from_utf8_lossy(&layout.stdout),
        "personal 1048576 16777216\nwork 17825792 16777216\n\
         shared 34603008 16777216\njanus 51380224 2097152\n"
    );

    let usage = run(&["frobnicate".as_ref()]);
    assert_eq!(usage.status.code(), Some(2));
}

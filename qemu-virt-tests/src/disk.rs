//! Disk images for tests: copies of the default disk, or disks made from a config.
//!
//! A test never boots the user's `target/images/disk.img` in place: that holds what
//! the personalities wrote. [`copy_default`] copies it (sparse) into
//! `target/test-disks/`, and [`create`] / [`create_for`] make a fresh one from a
//! config with `janus_pack::disk`, as `janus-disk create` does. Attach one with
//! [`QemuConfig::with_disk`](crate::QemuConfig::with_disk).

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use janus_pack::disk::{self as pack_disk, CreateOptions};

use crate::{images_dir, workspace_root};

/// The default disk's file name in [`images_dir`].
pub const DEFAULT_DISK: &str = "disk.img";

/// Bytes copied at a time; a chunk of zeros becomes a hole.
const COPY_CHUNK_BYTES: usize = 64 << 10;

/// `<workspace root>/target/test-disks`, where the tests' disks live.
pub fn test_disks_dir() -> PathBuf {
    workspace_root().join("target").join("test-disks")
}

/// The path of test `test`'s disk, `target/test-disks/<test>.img` (its folder made).
///
/// # Panics
/// When the folder cannot be made.
fn test_disk_path(test: &str) -> PathBuf {
    let dir = test_disks_dir();
    fs::create_dir_all(&dir).expect("create target/test-disks");
    dir.join(format!("{test}.img"))
}

/// Copies the default disk (`target/images/disk.img`) to
/// `target/test-disks/<test>.img`, replacing an earlier copy, and returns the copy's
/// path. Runs of zeros stay holes, so the copy takes no more space than the original
/// holds data.
///
/// # Panics
/// When there is no default disk (`make test` and `make disk` make one) or the copy
/// fails.
pub fn copy_default(test: &str) -> PathBuf {
    let source = images_dir().join(DEFAULT_DISK);
    assert!(
        source.is_file(),
        "{} is missing: run `make disk` in {} first",
        source.display(),
        workspace_root().display()
    );
    let copy = test_disk_path(test);
    copy_sparse(&source, &copy)
        .unwrap_or_else(|error| panic!("copy {} to {}: {error}", source.display(), copy.display()));
    copy
}

/// Copies `source` to `target` (created or truncated), seeking over every
/// [`COPY_CHUNK_BYTES`] chunk that is all zeros so that it stays a hole.
///
/// # Errors
/// Any error reading `source` or writing `target`.
pub fn copy_sparse(source: &Path, target: &Path) -> io::Result<()> {
    let mut input = File::open(source)?;
    let length = input.metadata()?.len();
    let mut output = File::create(target)?;
    let mut chunk = vec![0u8; COPY_CHUNK_BYTES];
    let mut position = 0u64;
    while position < length {
        let want = usize::try_from(length - position)
            .map_or(COPY_CHUNK_BYTES, |left| left.min(COPY_CHUNK_BYTES));
        let bytes = &mut chunk[..want];
        input.read_exact(bytes)?;
        if bytes.iter().any(|&byte| byte != 0) {
            output.seek(SeekFrom::Start(position))?;
            output.write_all(bytes)?;
        }
        position += want as u64;
    }
    // Holes at the end still count: the length is the disk's size.
    output.set_len(length)?;
    output.sync_all()
}

/// Makes a fresh disk at `output` from the config at `config` (replacing whatever is
/// there; it is the test's own file) and returns `output`.
///
/// # Panics
/// When the config is refused or the disk cannot be made (`mkfs.ext4` missing, say).
pub fn create(config: &Path, output: &Path) -> PathBuf {
    let options = CreateOptions {
        replace: true,
        ..CreateOptions::default()
    };
    if let Err(error) = pack_disk::create(config, output, &options) {
        panic!("cannot make test disk {}: {error}", output.display());
    }
    output.to_path_buf()
}

/// Makes test `test`'s own disk, `target/test-disks/<test>.img`, from config text
/// `config` (written beside it as `<test>.toml`), and returns its path.
///
/// # Panics
/// As [`create`].
pub fn create_for(test: &str, config: &str) -> PathBuf {
    let disk = test_disk_path(test);
    let config_path = disk.with_extension("toml");
    fs::write(&config_path, config).expect("write the test disk's config");
    create(&config_path, &disk)
}

/// The partitions of the disk at `path`, in table order: each name with the byte
/// range it covers.
///
/// # Panics
/// When the disk cannot be read or has no valid GPT.
pub fn layout(path: &Path) -> Vec<(String, Range<u64>)> {
    let entries = pack_disk::read_layout(path).unwrap_or_else(|error| panic!("{error}"));
    entries
        .into_iter()
        .map(|entry| {
            let start = entry.offset_bytes();
            let end = start + entry.size_bytes();
            (entry.name, start..end)
        })
        .collect()
}

/// The byte range of partition `name` of the disk at `path`.
///
/// # Panics
/// When the disk has no such partition, or as [`layout`].
pub fn partition(path: &Path, name: &str) -> Range<u64> {
    layout(path)
        .into_iter()
        .find(|(partition, _)| partition == name)
        .map(|(_, range)| range)
        .unwrap_or_else(|| panic!("{} has no partition {name}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("harness-disk-{}-{name}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn sparse_copy_keeps_bytes_length_and_holes() {
        use std::os::unix::fs::MetadataExt;
        let dir = scratch("copy");
        let source = dir.join("source.img");
        let mut file = File::create(&source).unwrap();
        file.set_len(8 << 20).unwrap();
        file.seek(SeekFrom::Start(3 << 20)).unwrap();
        file.write_all(b"data in the middle").unwrap();
        file.seek(SeekFrom::Start((8 << 20) - 5)).unwrap();
        file.write_all(b"tail!").unwrap();
        drop(file);

        let copy = dir.join("copy.img");
        fs::write(&copy, vec![1u8; 100]).unwrap(); // replaced, not appended to
        copy_sparse(&source, &copy).unwrap();
        assert_eq!(fs::read(&copy).unwrap(), fs::read(&source).unwrap());
        let metadata = fs::metadata(&copy).unwrap();
        assert_eq!(metadata.len(), 8 << 20);
        assert!(
            metadata.blocks() * 512 <= 1 << 20,
            "{} blocks",
            metadata.blocks()
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn created_disk_lists_its_partitions() {
        if janus_pack::disk::mkfs::find_default().is_none() {
            eprintln!("skipped: no mkfs.ext4");
            return;
        }
        let dir = scratch("create");
        let config = dir.join("config.toml");
        fs::write(
            &config,
            "[[personality]]\nname = \"solo\"\nkind = \"baremetal\"\nram_mib = 2\nvcpus = 1\n\
             cpus = [0]\nkernel = \"k\"\nvolume_mib = 16\n[disk]\nshared_mib = 16\njanus_mib = 2\n",
        )
        .unwrap();
        let disk = create(&config, &dir.join("disk.img"));
        let names: Vec<String> = layout(&disk).into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["solo", "shared", "janus"]);
        assert_eq!(partition(&disk, "solo"), (1 << 20)..(17 << 20));
        fs::remove_dir_all(&dir).unwrap();
    }
}

//! Makes a personality's ext4 file system in its partition with Debian's `mkfs.ext4`.
//!
//! `mkfs.ext4 -E offset=BYTES FILE SIZE` writes a file system of SIZE at BYTES into the
//! image, without touching the rest (e2fsprogs 1.47; the file must already be long
//! enough, or mke2fs extends it). `-d DIR` fills it from a folder, so no mount and no
//! root are needed.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::layout::PlannedPartition;

/// The program's name.
pub const MKFS_EXT4: &str = "mkfs.ext4";
/// Where Debian puts it when `PATH` (of a user, say) has no `sbin`.
pub const SBIN_DIRS: [&str; 2] = ["/sbin", "/usr/sbin"];
/// ext4 block size: 4 KiB. mke2fs would take 1 KiB blocks for a file system below
/// 512 MiB (its "small" type), which makes every large I/O four times the requests.
const BLOCK_BYTES: &str = "4096";

/// Why the file system of a partition could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MkfsError {
    /// No `mkfs.ext4` in `PATH` or [`SBIN_DIRS`] (or where `--mkfs` said).
    NotFound,
    /// The folder of files to put in it could not be written.
    Files(String),
    /// `mkfs.ext4` did not start or failed; the text says how.
    Failed(String),
}

/// Finds `mkfs.ext4`: in each folder of `path` (the value of `PATH`), then in `extra`.
pub fn find(path: Option<&OsStr>, extra: &[&Path]) -> Option<PathBuf> {
    let from_path = path.into_iter().flat_map(env::split_paths);
    from_path
        .chain(extra.iter().map(|dir| dir.to_path_buf()))
        .map(|dir| dir.join(MKFS_EXT4))
        .find(|candidate| candidate.is_file())
}

/// [`find`] with this process' `PATH` and [`SBIN_DIRS`].
pub fn find_default() -> Option<PathBuf> {
    let sbin: Vec<&Path> = SBIN_DIRS.iter().map(Path::new).collect();
    find(env::var_os("PATH").as_deref(), &sbin)
}

/// The files a new volume holds: `/README` and `/owner`.
pub fn volume_files(name: &str) -> [(&'static str, String); 2] {
    let readme = format!(
        "This is the volume of the personality `{name}`.\n\
         \n\
         Janus gives it to `{name}` alone, as the disk /dev/vda, which its init mounts at\n\
         /data. What is written here is kept across reboots and power-offs: it lives in\n\
         the partition `{name}` of Janus' disk (target/images/disk.img under QEMU).\n\
         Only `make disk-reset` remakes that disk, and that erases this volume.\n"
    );
    [("README", readme), ("owner", format!("{name}\n"))]
}

/// Makes the ext4 file system of `partition` (a personality's volume) inside the
/// image `image` with the program `mkfs`, labelled with its name and holding
/// [`volume_files`]; `uuid` becomes the file system's UUID. `scratch` is a folder this
/// may fill and leave behind.
///
/// # Errors
///
/// [`MkfsError::Files`] when the files cannot be staged, [`MkfsError::Failed`] when
/// `mkfs` cannot run or exits with an error (with its output).
pub fn make_volume(
    mkfs: &Path,
    image: &Path,
    partition: &PlannedPartition,
    uuid: &str,
    scratch: &Path,
) -> Result<(), MkfsError> {
    let files = scratch.join(&partition.name);
    fs::create_dir_all(&files)
        .map_err(|error| MkfsError::Files(format!("{}: {error}", files.display())))?;
    for (file, text) in volume_files(&partition.name) {
        let path = files.join(file);
        fs::write(&path, text)
            .map_err(|error| MkfsError::Files(format!("{}: {error}", path.display())))?;
    }
    // The inode tables are written now rather than by the guest's ext4lazyinit
    // thread after its first mount; the journal is left as the zeros the new sparse
    // image already holds there; nothing is discarded (the image is all holes).
    let extended = format!(
        "offset={},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=1,nodiscard",
        partition.offset_bytes()
    );
    let size_kib = format!("{}k", partition.size_bytes() / 1024);
    let output = Command::new(mkfs)
        .args(["-F", "-q", "-t", "ext4", "-b", BLOCK_BYTES, "-L"])
        .arg(&partition.name)
        .arg("-U")
        .arg(uuid)
        .arg("-d")
        .arg(&files)
        .arg("-E")
        .arg(&extended)
        .arg(image)
        .arg(&size_kib)
        .output()
        .map_err(|error| MkfsError::Failed(format!("cannot run {}: {error}", mkfs.display())))?;
    if !output.status.success() {
        return Err(MkfsError::Failed(format!(
            "{} failed ({}) for partition {}: {}",
            mkfs.display(),
            output.status,
            partition.name,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_looks_in_path_then_in_the_extra_folders() {
        let root = env::temp_dir().join(format!("janus-mkfs-find-{}", std::process::id()));
        let (first, second) = (root.join("a"), root.join("b"));
        fs::create_dir_all(&first).unwrap();
        fs::create_dir_all(&second).unwrap();
        fs::write(second.join(MKFS_EXT4), b"").unwrap();

        let path = env::join_paths([&first]).unwrap();
        assert_eq!(find(Some(&path), &[]), None);
        assert_eq!(
            find(Some(&path), &[&first, &second]),
            Some(second.join(MKFS_EXT4))
        );
        let path = env::join_paths([&second, &first]).unwrap();
        assert_eq!(find(Some(&path), &[]), Some(second.join(MKFS_EXT4)));
        assert_eq!(find(None, &[]), None);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn volume_files_name_their_owner() {
        let [(readme, text), (owner, name)] = volume_files("work");
        assert_eq!((readme, owner), ("README", "owner"));
        assert!(text.contains("personality `work`"));
        assert!(text.contains("kept across reboots"));
        assert!(text.contains("make disk-reset"));
        assert_eq!(name, "work\n");
    }
}

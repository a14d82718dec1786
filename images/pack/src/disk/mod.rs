//! Janus' disk: a GPT image with a partition per personality volume, `shared` and
//! `janus`, made from the personalities' config (`janus-disk`).
//!
//! [`create`] writes a new sparse image: the table ([`gpt`]), then an ext4 file system
//! in each volume ([`mkfs`]); `shared` and `janus` stay zeroed for the issues that
//! format them. [`check`] reads an existing image's table and compares it with the
//! config without writing a byte; [`read_layout`] lists the partitions of an image.
//! Where everything lies is [`layout`]'s business.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::{config_file, read_config, PackError, DEFAULT_PHYSICAL_CPUS};

pub mod gpt;
pub mod layout;
pub mod mkfs;

pub use gpt::TableEntry;
pub use layout::{DiskPlan, PlannedPartition, Role, SECTOR_BYTES};
pub use mkfs::MkfsError;

/// What remakes the default disk, for the messages that tell the user how.
pub const RESET_COMMAND: &str = "make disk-reset";

/// Why a disk could not be made, read or accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskError {
    /// The config is at fault (`FILE:LINE: reason`).
    Config(PackError),
    /// The image exists and [`CreateOptions::replace`] was not given.
    Exists(PathBuf),
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The image has no valid partition table.
    BadTable {
        /// The image.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The image's partitions are not the ones the config describes.
    Mismatch {
        /// The image.
        disk: PathBuf,
        /// The config file.
        config: String,
        /// What the disk has.
        found: String,
        /// What the config asks for.
        wanted: String,
    },
    /// `mkfs.ext4` is missing or failed.
    Mkfs(MkfsError),
}

impl fmt::Display for DiskError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::Config(error) => error.fmt(formatter),
            DiskError::Exists(path) => write!(
                formatter,
                "{}: already exists, and may hold the personalities' data; not replacing \
                 it (`{RESET_COMMAND}` remakes it, destroying that data)",
                path.display()
            ),
            DiskError::Io { path, reason } => write!(formatter, "{}: {reason}", path.display()),
            DiskError::BadTable { path, reason } => write!(
                formatter,
                "{}: not a Janus disk: {reason}; run `{RESET_COMMAND}` to remake it \
                 (this destroys everything on it)",
                path.display()
            ),
            DiskError::Mismatch {
                disk,
                config,
                found,
                wanted,
            } => write!(
                formatter,
                "{}: its partitions do not match {config}\n  \
                 on the disk: {found}\n  \
                 the config:  {wanted}\n\
                 Change the config back, or run `{RESET_COMMAND}` to remake the disk from \
                 it: that destroys everything the personalities wrote on it.",
                disk.display()
            ),
            DiskError::Mkfs(MkfsError::NotFound) => write!(
                formatter,
                "{} not found (looked in PATH, {}): install Debian's e2fsprogs \
                 (`apt-get install e2fsprogs`; `make disk` does it)",
                mkfs::MKFS_EXT4,
                mkfs::SBIN_DIRS.join(" and ")
            ),
            DiskError::Mkfs(MkfsError::Files(reason) | MkfsError::Failed(reason)) => {
                formatter.write_str(reason)
            }
        }
    }
}

impl std::error::Error for DiskError {}

impl From<PackError> for DiskError {
    fn from(error: PackError) -> Self {
        DiskError::Config(error)
    }
}

/// How [`create`] behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Replace an existing image (destroying its data) instead of refusing.
    pub replace: bool,
    /// The `mkfs.ext4` to run; `None` looks in `PATH`, `/sbin` and `/usr/sbin`.
    pub mkfs: Option<PathBuf>,
}

/// The disk that config `text` (read from `file_name`) describes.
///
/// # Errors
///
/// The config's first mistake, as `janus-pack` reports it.
pub fn plan_str(text: &str, file_name: &str) -> Result<DiskPlan, PackError> {
    let parsed = config_file::parse(text, file_name, DEFAULT_PHYSICAL_CPUS)?;
    let personalities = parsed.personalities(|_| (b"not read", &[]));
    Ok(DiskPlan::new(&personalities, &parsed.disk))
}

/// The disk that the config at `config_path` describes.
///
/// # Errors
///
/// As [`plan_str`], or the config cannot be read.
pub fn plan(config_path: &Path) -> Result<DiskPlan, PackError> {
    let text = read_config(config_path)?;
    plan_str(&text, &config_path.display().to_string())
}

/// An I/O error about `path`.
fn io_error(path: &Path, error: impl fmt::Display) -> DiskError {
    DiskError::Io {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// Makes the image `output` of the config at `config_path`: a sparse file with the
/// GPT, an ext4 file system in each volume, `shared` and `janus` zeroed. It is built
/// beside `output` and renamed into place at the end, so a failure leaves no half
/// disk under that name. Returns the plan it followed.
///
/// # Errors
///
/// [`DiskError::Config`] for a bad config, [`DiskError::Exists`] when `output` exists
/// and `options.replace` is false, [`DiskError::Mkfs`] when `mkfs.ext4` is missing or
/// fails, [`DiskError::Io`] when a file cannot be written.
pub fn create(
    config_path: &Path,
    output: &Path,
    options: &CreateOptions,
) -> Result<DiskPlan, DiskError> {
    let plan = plan(config_path)?;
    if !options.replace && output.exists() {
        return Err(DiskError::Exists(output.to_path_buf()));
    }
    let mkfs = match &options.mkfs {
        Some(path) if path.is_file() => path.clone(),
        Some(_) => return Err(DiskError::Mkfs(MkfsError::NotFound)),
        None => mkfs::find_default().ok_or(DiskError::Mkfs(MkfsError::NotFound))?,
    };
    let partial = sibling(output, ".partial");
    let scratch = sibling(output, ".files");
    let result = build(&plan, &mkfs, &partial, &scratch)
        .and_then(|()| fs::rename(&partial, output).map_err(|error| io_error(output, error)));
    let _ = fs::remove_dir_all(&scratch);
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result.map(|()| plan)
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes the whole image of `plan` to `image` with `mkfs`, staging files in `scratch`.
fn build(plan: &DiskPlan, mkfs: &Path, image: &Path, scratch: &Path) -> Result<(), DiskError> {
    if let Some(parent) = image
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        fs::create_dir_all(parent).map_err(|error| io_error(parent, error))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(image)
        .map_err(|error| io_error(image, error))?;
    // A file of holes: only what is written takes space.
    file.set_len(plan.total_bytes())
        .map_err(|error| io_error(image, error))?;
    gpt::write(&file, plan).map_err(|reason| io_error(image, reason))?;
    for (index, partition) in plan.partitions.iter().enumerate() {
        if partition.role == Role::Volume {
            let uuid = layout::unique_guid(index).to_string();
            mkfs::make_volume(mkfs, image, partition, &uuid, scratch).map_err(DiskError::Mkfs)?;
        }
    }
    file.sync_all().map_err(|error| io_error(image, error))
}

/// Reads the partition table of the image at `disk`.
///
/// # Errors
///
/// [`DiskError::Io`] when it cannot be opened, [`DiskError::BadTable`] when it has no
/// valid GPT.
pub fn read_layout(disk: &Path) -> Result<Vec<TableEntry>, DiskError> {
    let file = File::open(disk).map_err(|error| io_error(disk, error))?;
    gpt::read(&file).map_err(|reason| DiskError::BadTable {
        path: disk.to_path_buf(),
        reason,
    })
}

/// Checks that the image at `disk` has exactly the partitions the config at
/// `config_path` describes: the same names in the same order, at the same places,
/// of the same sizes. It only reads.
///
/// # Errors
///
/// [`DiskError::Config`] for a bad config, [`DiskError::Io`] or
/// [`DiskError::BadTable`] as [`read_layout`], [`DiskError::Mismatch`] when the
/// partitions differ.
pub fn check(config_path: &Path, disk: &Path) -> Result<(), DiskError> {
    let plan = plan(config_path)?;
    let found = read_layout(disk)?;
    let matches = found.len() == plan.partitions.len()
        && found.iter().zip(&plan.partitions).all(|(entry, planned)| {
            entry.name == planned.name
                && entry.first_lba == planned.first_lba
                && entry.sectors == planned.sectors
        });
    if matches {
        return Ok(());
    }
    Err(DiskError::Mismatch {
        disk: disk.to_path_buf(),
        config: config_path.display().to_string(),
        found: describe(found.iter().map(|entry| (&entry.name, entry.sectors))),
        wanted: describe(
            plan.partitions
                .iter()
                .map(|partition| (&partition.name, partition.sectors)),
        ),
    })
}

/// "personal 256 MiB, work 256 MiB, ..." for a list of names and sizes in sectors.
fn describe<'a>(partitions: impl Iterator<Item = (&'a String, u64)>) -> String {
    let list: Vec<String> = partitions
        .map(|(name, sectors)| {
            let bytes = sectors * SECTOR_BYTES;
            if bytes.is_multiple_of(1 << 20) {
                format!("{name} {} MiB", bytes >> 20)
            } else {
                format!("{name} {bytes} bytes")
            }
        })
        .collect();
    if list.is_empty() {
        "no partitions".to_owned()
    } else {
        list.join(", ")
    }
}

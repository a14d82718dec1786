//! Packs the personalities TOML file and each guest's images into a Janus boot bundle.
//!
//! The config is read with serde (unknown keys refused), turned into
//! [`hyp::vm::bundle::PersonalityConfig`]s, checked with the same
//! [`hyp::vm::config::validate`] that Janus runs at boot, and written with
//! [`hyp::vm::bundle::encode`]. Every error names the config file and the line of the
//! key at fault, as `FILE:LINE: reason`.
//!
//! The checks run in two passes: the config first, without opening any image, so a
//! config mistake is reported even before the guests are built; then the images are
//! read and everything is checked once more with their real contents.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use hyp::vm::bundle;
use toml::Spanned;

mod config_file;
pub mod disk;
pub mod initramfs;
pub mod modules;
pub mod store_image;

use config_file::Source;

/// Physical CPUs assumed when the command line does not say (QEMU `-smp 4`).
pub const DEFAULT_PHYSICAL_CPUS: u32 = 4;

/// Why a config could not be packed, printed as `FILE:LINE: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackError {
    file: String,
    line: Option<usize>,
    reason: String,
}

impl PackError {
    /// An error about `file` as a whole (it could not be read).
    fn whole_file(file: &str, reason: impl Into<String>) -> Self {
        PackError {
            file: file.to_owned(),
            line: None,
            reason: reason.into(),
        }
    }

    /// An error at 1-based `line` of `file`.
    fn at(file: &str, line: usize, reason: impl Into<String>) -> Self {
        PackError {
            file: file.to_owned(),
            line: Some(line),
            reason: reason.into(),
        }
    }

    /// The config file the error is in.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The 1-based line at fault; `None` only when the config file itself could not
    /// be read.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What is wrong, without the file and line.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for PackError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(formatter, "{}:{line}: {}", self.file, self.reason),
            None => write!(formatter, "{}: {}", self.file, self.reason),
        }
    }
}

impl std::error::Error for PackError {}

/// Reads the config at `config_path` and the images it names, checks them for a
/// machine with `physical_cpus` CPUs, and returns the bundle.
///
/// Image paths in the config are relative to the config file's folder.
///
/// # Errors
///
/// A [`PackError`] naming the file and line at fault: the config cannot be read or is
/// not valid TOML, has an unknown key or a value of the wrong type, breaks a rule of
/// [`hyp::vm::config::validate`] or [`hyp::vm::config::validate_disk`], or names an
/// image that cannot be read.
pub fn pack(config_path: &Path, physical_cpus: u32) -> Result<Vec<u8>, PackError> {
    let file_name = config_path.display().to_string();
    let text = read_config(config_path)?;
    let base_dir = config_path.parent().unwrap_or(Path::new(""));
    pack_str(&text, base_dir, &file_name, physical_cpus)
}

/// Reads the config file at `config_path`.
fn read_config(config_path: &Path) -> Result<String, PackError> {
    fs::read_to_string(config_path).map_err(|error| {
        PackError::whole_file(
            &config_path.display().to_string(),
            format!("cannot read config: {error}"),
        )
    })
}

/// Packs config `text` as if read from a file called `file_name` in `base_dir`.
///
/// # Errors
///
/// As [`pack`], except that the config is not read from disk.
pub fn pack_str(
    text: &str,
    base_dir: &Path,
    file_name: &str,
    physical_cpus: u32,
) -> Result<Vec<u8>, PackError> {
    // First pass, inside `parse`: the config alone.
    let parsed = config_file::parse(text, file_name, physical_cpus)?;

    // Second pass: with the images.
    let mut images = Vec::with_capacity(parsed.tables().len());
    for table in parsed.tables() {
        let table = table.get_ref();
        let kernel = read_image(parsed.source(), base_dir, "kernel", &table.kernel)?;
        let initrd = match &table.initrd {
            Some(path) => read_image(parsed.source(), base_dir, "initrd", path)?,
            None => Vec::new(),
        };
        images.push((kernel, initrd));
    }
    let personalities = parsed.personalities(|index| {
        let (kernel, initrd) = &images[index];
        (kernel, initrd)
    });
    parsed.validate(&personalities, physical_cpus)?;
    let channel = parsed.channel()?;
    Ok(bundle::encode_with_channel(&personalities, &channel))
}

/// Reads the image at `path` (relative to `base_dir`), blaming the line of its key.
fn read_image(
    source: &Source<'_>,
    base_dir: &Path,
    key: &str,
    path: &Spanned<String>,
) -> Result<Vec<u8>, PackError> {
    let full: PathBuf = base_dir.join(path.get_ref());
    fs::read(&full).map_err(|error| {
        source.error(
            path.span(),
            format!("cannot read {key} `{}`: {error}", full.display()),
        )
    })
}

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
use std::ops::Range;
use std::path::{Path, PathBuf};

use hyp::vm::bundle::{self, GuestKind, PersonalityConfig};
use hyp::vm::config::{self, ConfigError, Field, Limits, MAX_PHYSICAL_CPUS};
use serde::Deserialize;
use toml::Spanned;
pub mod initramfs;

/// Physical CPUs assumed when the command line does not say (QEMU `-smp 4`).
pub const DEFAULT_PHYSICAL_CPUS: u32 = 4;

/// Bytes in a mebibyte, to turn `ram_mib` into bytes.
const MIB_BYTES: u64 = 1 << 20;

/// A stand-in kernel for the first pass, which checks the config before any image is
/// read; the second pass checks the real image (for instance that it is not empty).
const KERNEL_NOT_READ_YET: &[u8] = b"not read yet";

/// Why a config could not be packed, printed as `FILE:LINE: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackError {
    file: String,
    line: Option<usize>,
    reason: String,
}

impl PackError {
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

/// The whole file: a list of `[[personality]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    personality: Vec<Spanned<PersonalityToml>>,
}

/// One `[[personality]]` table, every value with the place it came from.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonalityToml {
    name: Spanned<String>,
    kind: Spanned<KindToml>,
    ram_mib: Spanned<u64>,
    ram_base: Option<Spanned<u64>>,
    vcpus: Spanned<u32>,
    cpus: Spanned<Vec<Spanned<u32>>>,
    kernel: Spanned<String>,
    initrd: Option<Spanned<String>>,
    bootargs: Option<Spanned<String>>,
}

/// The `kind` values.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum KindToml {
    Baremetal,
    Linux,
}

impl From<KindToml> for GuestKind {
    fn from(kind: KindToml) -> Self {
        match kind {
            KindToml::Baremetal => GuestKind::BareMetal,
            KindToml::Linux => GuestKind::Linux,
        }
    }
}

/// A personality's values in the form `validate` takes, minus the images.
struct Converted {
    ram_bytes: u64,
    cpus: u64,
}

/// The source text and its name, to turn byte offsets into `FILE:LINE` errors.
struct Source<'a> {
    text: &'a str,
    file_name: &'a str,
}

impl Source<'_> {
    /// 1-based line of byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        let before = self.text.as_bytes();
        let before = before.get(..offset).unwrap_or(before);
        before.iter().filter(|&&byte| byte == b'\n').count() + 1
    }

    /// An error at the line where `span` starts.
    fn error(&self, span: Range<usize>, reason: impl Into<String>) -> PackError {
        PackError::at(self.file_name, self.line_of(span.start), reason)
    }
}

/// Reads the config at `config_path` and the images it names, checks them for a
/// machine with `physical_cpus` CPUs, and returns the bundle.
///
/// Image paths in the config are relative to the config file's folder.
///
/// # Errors
///
/// A [`PackError`] naming the file and line at fault: the config cannot be read or is
/// not valid TOML, has an unknown key or a value of the wrong type, breaks a rule of
/// [`hyp::vm::config::validate`], or names an image that cannot be read.
pub fn pack(config_path: &Path, physical_cpus: u32) -> Result<Vec<u8>, PackError> {
    let file_name = config_path.display().to_string();
    let text = fs::read_to_string(config_path).map_err(|error| PackError {
        file: file_name.clone(),
        line: None,
        reason: format!("cannot read config: {error}"),
    })?;
    let base_dir = config_path.parent().unwrap_or(Path::new(""));
    pack_str(&text, base_dir, &file_name, physical_cpus)
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
    let source = Source { text, file_name };
    let limits = Limits::with_physical_cpus(physical_cpus);
    let config: ConfigFile = toml::from_str(text).map_err(|error| {
        let line = error.span().map_or(1, |span| source.line_of(span.start));
        PackError::at(file_name, line, error.message().trim_end())
    })?;
    let tables = &config.personality;

    let converted = tables
        .iter()
        .enumerate()
        .map(|(index, table)| convert(&source, index, table.get_ref()))
        .collect::<Result<Vec<_>, _>>()?;

    // First pass: the config alone.
    let placeholders: Vec<_> = tables
        .iter()
        .zip(&converted)
        .map(|(table, values)| personality(table.get_ref(), values, KERNEL_NOT_READ_YET, &[]))
        .collect();
    config::validate(&placeholders, &limits)
        .map_err(|error| config_error(&source, tables, error))?;

    // Second pass: with the images.
    let mut images = Vec::with_capacity(tables.len());
    for table in tables {
        let table = table.get_ref();
        let kernel = read_image(&source, base_dir, "kernel", &table.kernel)?;
        let initrd = match &table.initrd {
            Some(path) => read_image(&source, base_dir, "initrd", path)?,
            None => Vec::new(),
        };
        images.push((kernel, initrd));
    }
    let personalities: Vec<_> = tables
        .iter()
        .zip(&converted)
        .zip(&images)
        .map(|((table, values), (kernel, initrd))| {
            personality(table.get_ref(), values, kernel, initrd)
        })
        .collect();
    config::validate(&personalities, &limits)
        .map_err(|error| config_error(&source, tables, error))?;
    Ok(bundle::encode(&personalities))
}

/// Turns what TOML holds into what the bundle holds: MiB into bytes, a CPU list into
/// a bitmask (refusing a CPU listed twice or one no bitmask can name).
fn convert(
    source: &Source<'_>,
    index: usize,
    table: &PersonalityToml,
) -> Result<Converted, PackError> {
    let ram_mib = *table.ram_mib.get_ref();
    let ram_bytes = ram_mib.checked_mul(MIB_BYTES).ok_or_else(|| {
        source.error(
            table.ram_mib.span(),
            format!("ram_mib = {ram_mib} is too large"),
        )
    })?;
    let mut cpus = 0u64;
    for cpu in table.cpus.get_ref() {
        let number = *cpu.get_ref();
        if number >= MAX_PHYSICAL_CPUS {
            let error = ConfigError::CpuOutOfRange {
                index,
                cpu: number,
                physical_cpus: MAX_PHYSICAL_CPUS,
            };
            return Err(source.error(cpu.span(), error.to_string()));
        }
        let bit = 1u64 << number;
        if cpus & bit != 0 {
            return Err(source.error(cpu.span(), format!("CPU {number} is listed twice")));
        }
        cpus |= bit;
    }
    Ok(Converted { ram_bytes, cpus })
}

/// The bundle's view of one personality.
fn personality<'a>(
    table: &'a PersonalityToml,
    values: &Converted,
    kernel: &'a [u8],
    initrd: &'a [u8],
) -> PersonalityConfig<'a> {
    PersonalityConfig {
        name: table.name.get_ref(),
        kind: (*table.kind.get_ref()).into(),
        ram_bytes: values.ram_bytes,
        ram_base: table.ram_base.as_ref().map(|base| *base.get_ref()),
        vcpus: *table.vcpus.get_ref(),
        cpus: values.cpus,
        kernel,
        initrd,
        bootargs: table.bootargs.as_ref().map_or("", |args| args.get_ref()),
    }
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

/// Points a [`ConfigError`] at the line of the key it is about.
fn config_error(
    source: &Source<'_>,
    tables: &[Spanned<PersonalityToml>],
    error: ConfigError,
) -> PackError {
    let reason = match error {
        ConfigError::NoPersonalities => format!("{error} (add a [[personality]] table)"),
        _ => error.to_string(),
    };
    let Some(table) = error.personality().and_then(|index| tables.get(index)) else {
        return PackError::at(source.file_name, 1, reason);
    };
    let span = error
        .field()
        .and_then(|field| field_span(table.get_ref(), field, error.cpu()))
        .unwrap_or_else(|| table.span());
    source.error(span, reason)
}

/// Where `field` of a personality was written; for `cpus`, the element naming `cpu`
/// when there is one.
fn field_span(table: &PersonalityToml, field: Field, cpu: Option<u32>) -> Option<Range<usize>> {
    Some(match field {
        Field::Name => table.name.span(),
        Field::RamBytes => table.ram_mib.span(),
        Field::RamBase => table.ram_base.as_ref()?.span(),
        Field::Vcpus => table.vcpus.span(),
        Field::Cpus => cpu
            .and_then(|cpu| {
                table
                    .cpus
                    .get_ref()
                    .iter()
                    .find(|listed| *listed.get_ref() == cpu)
            })
            .map_or_else(|| table.cpus.span(), Spanned::span),
        Field::Kernel => table.kernel.span(),
    })
}

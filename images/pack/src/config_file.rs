//! Reads `personalities.toml` and checks it, pointing each mistake at its line.
//!
//! Both tools start here: `janus-pack` goes on to read the images the config names,
//! `janus-disk` lays out the disk it describes. [`parse`] checks everything that can be
//! checked without the images: [`hyp::vm::config::validate`] on the personalities (with
//! a stand-in kernel) and [`hyp::vm::config::validate_disk`] on the disk.

mod channel;

use std::ops::Range;

use hyp::vm::bundle::{GuestKind, PersonalityConfig};
use hyp::vm::config::channel::ChannelConfig;
use hyp::vm::config::{
    self, ConfigError, DiskConfig, DiskPartition, Field, Limits, MAX_PHYSICAL_CPUS,
};
use serde::Deserialize;
use toml::Spanned;

use crate::PackError;

/// Bytes in a mebibyte, to turn `ram_mib` into bytes.
const MIB_BYTES: u64 = 1 << 20;

/// A stand-in kernel for the first pass, which checks the config before any image is
/// read; the second pass checks the real image (for instance that it is not empty).
const KERNEL_NOT_READ_YET: &[u8] = b"not read yet";

/// The whole file: a list of `[[personality]]` tables and optional `[disk]` and
/// `[channel]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    personality: Vec<Spanned<PersonalityToml>>,
    disk: Option<Spanned<DiskToml>>,
    channel: Option<Spanned<channel::ChannelToml>>,
}

/// One `[[personality]]` table, every value with the place it came from.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersonalityToml {
    name: Spanned<String>,
    kind: Spanned<KindToml>,
    ram_mib: Spanned<u64>,
    ram_base: Option<Spanned<u64>>,
    vcpus: Spanned<u32>,
    cpus: Spanned<Vec<Spanned<u32>>>,
    volume_mib: Option<Spanned<u32>>,
    pub(crate) kernel: Spanned<String>,
    pub(crate) initrd: Option<Spanned<String>>,
    bootargs: Option<Spanned<String>>,
}

/// The `[disk]` table: the sizes of the disk's own partitions, both required.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskToml {
    shared_mib: Spanned<u32>,
    janus_mib: Spanned<u32>,
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
pub(crate) struct Source<'a> {
    text: &'a str,
    pub(crate) file_name: &'a str,
}

impl<'a> Source<'a> {
    /// The config `text`, read from a file called `file_name`.
    pub(crate) fn new(text: &'a str, file_name: &'a str) -> Self {
        Source { text, file_name }
    }

    /// 1-based line of byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        let before = self.text.as_bytes();
        let before = before.get(..offset).unwrap_or(before);
        before.iter().filter(|&&byte| byte == b'\n').count() + 1
    }

    /// An error at the line where `span` starts.
    pub(crate) fn error(&self, span: Range<usize>, reason: impl Into<String>) -> PackError {
        PackError::at(self.file_name, self.line_of(span.start), reason)
    }
}

/// A config that passed every check that needs no image.
pub(crate) struct Parsed<'a> {
    source: Source<'a>,
    tables: Vec<Spanned<PersonalityToml>>,
    disk_table: Option<Spanned<DiskToml>>,
    converted: Vec<Converted>,
    /// The `[disk]` table's values, or [`DiskConfig::DEFAULT`] without one.
    pub(crate) disk: DiskConfig,
    /// The `[channel]` table, checked.
    channel_table: Option<Spanned<channel::ChannelToml>>,
}

/// Parses config `text` (from a file called `file_name`) and checks it without its
/// images, for a machine with `physical_cpus` CPUs.
///
/// # Errors
///
/// A [`PackError`] at the line at fault: not valid TOML, an unknown key or a value of
/// the wrong type, or a rule of [`config::validate`] or [`config::validate_disk`].
pub(crate) fn parse<'a>(
    text: &'a str,
    file_name: &'a str,
    physical_cpus: u32,
) -> Result<Parsed<'a>, PackError> {
    let source = Source::new(text, file_name);
    let config: ConfigFile = toml::from_str(text).map_err(|error| {
        let line = error.span().map_or(1, |span| source.line_of(span.start));
        PackError::at(file_name, line, error.message().trim_end())
    })?;
    let converted = config
        .personality
        .iter()
        .enumerate()
        .map(|(index, table)| convert(&source, index, table.get_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let disk = config.disk.as_ref().map_or(DiskConfig::DEFAULT, |table| {
        let table = table.get_ref();
        DiskConfig {
            shared_mib: *table.shared_mib.get_ref(),
            janus_mib: *table.janus_mib.get_ref(),
        }
    });
    let parsed = Parsed {
        source,
        tables: config.personality,
        disk_table: config.disk,
        converted,
        disk,
        channel_table: config.channel,
    };
    let placeholders = parsed.personalities(|_| (KERNEL_NOT_READ_YET, &[]));
    parsed.validate(&placeholders, physical_cpus)?;
    config::validate_disk(&placeholders, &parsed.disk).map_err(|error| parsed.error(error))?;
    // After `validate`, so the names are known to be distinct.
    parsed.channel()?;
    Ok(parsed)
}

impl<'a> Parsed<'a> {
    /// The `[channel]` table with names turned into indices, checked by
    /// [`hyp::vm::config::channel::validate_channel`]; the default without one.
    ///
    /// # Errors
    ///
    /// A [`PackError`] at the line of the key at fault.
    pub(crate) fn channel(&self) -> Result<ChannelConfig<'_>, PackError> {
        let names: Vec<&str> = self
            .tables
            .iter()
            .map(|table| table.get_ref().name.get_ref().as_str())
            .collect();
        channel::convert(&self.source, self.channel_table.as_ref(), &names)
    }

    /// The `[[personality]]` tables, in order.
    pub(crate) fn tables(&self) -> &[Spanned<PersonalityToml>] {
        &self.tables
    }

    /// Where the config came from.
    pub(crate) fn source(&self) -> &Source<'a> {
        &self.source
    }

    /// The personalities with the images `images` gives for each index.
    pub(crate) fn personalities<'b>(
        &'b self,
        images: impl Fn(usize) -> (&'b [u8], &'b [u8]),
    ) -> Vec<PersonalityConfig<'b>> {
        self.tables
            .iter()
            .zip(&self.converted)
            .enumerate()
            .map(|(index, (table, values))| {
                let table = table.get_ref();
                let (kernel, initrd) = images(index);
                PersonalityConfig {
                    name: table.name.get_ref(),
                    kind: (*table.kind.get_ref()).into(),
                    ram_bytes: values.ram_bytes,
                    ram_base: table.ram_base.as_ref().map(|base| *base.get_ref()),
                    vcpus: *table.vcpus.get_ref(),
                    cpus: values.cpus,
                    volume_mib: table.volume_mib.as_ref().map(|mib| *mib.get_ref()),
                    kernel,
                    initrd,
                    bootargs: table.bootargs.as_ref().map_or("", |args| args.get_ref()),
                }
            })
            .collect()
    }

    /// Runs [`config::validate`] on `personalities` (made by [`Parsed::personalities`]).
    ///
    /// # Errors
    ///
    /// The first rule broken, at the line of the key at fault.
    pub(crate) fn validate(
        &self,
        personalities: &[PersonalityConfig<'_>],
        physical_cpus: u32,
    ) -> Result<(), PackError> {
        let limits = Limits::with_physical_cpus(physical_cpus);
        config::validate(personalities, &limits).map_err(|error| self.error(error))
    }

    /// Points a [`ConfigError`] at the line of the key it is about.
    fn error(&self, error: ConfigError) -> PackError {
        let source = &self.source;
        let reason = match error {
            ConfigError::NoPersonalities => format!("{error} (add a [[personality]] table)"),
            _ => error.to_string(),
        };
        if let Some(span) = self.disk_span(error) {
            return source.error(span, reason);
        }
        let Some(table) = error.personality().and_then(|index| self.tables.get(index)) else {
            return PackError::at(source.file_name, 1, reason);
        };
        let span = error
            .field()
            .and_then(|field| field_span(table.get_ref(), field, error.cpu()))
            .unwrap_or_else(|| table.span());
        source.error(span, reason)
    }

    /// Where an error about the disk as a whole points: its key in `[disk]`, or the
    /// table itself; `None` for other errors or when there is no `[disk]` table.
    fn disk_span(&self, error: ConfigError) -> Option<Range<usize>> {
        let table = self.disk_table.as_ref()?;
        match error {
            ConfigError::DiskPartitionSize { partition, .. } => Some(match partition {
                DiskPartition::Shared => table.get_ref().shared_mib.span(),
                DiskPartition::Janus => table.get_ref().janus_mib.span(),
            }),
            ConfigError::DiskTooLarge { .. } => Some(table.span()),
            _ => None,
        }
    }
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

/// Where `field` of a personality was written; for `cpus`, the element naming `cpu`
/// when there is one. `None` for a field that is not in a personality's table.
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
        Field::Volume => table.volume_mib.as_ref()?.span(),
        Field::DiskShared | Field::DiskJanus => return None,
    })
}

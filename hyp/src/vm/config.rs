//! Checks a set of personalities against the rules and this machine's limits.
//!
//! [`validate`] is pure and shared: `janus-pack` runs it at build time and points at
//! the offending line of the TOML file, and Janus runs it again at boot on what it
//! parsed from the bundle, so a bundle built by anything else gets the same checks.
//!
//! What it does not know (where physical RAM is, which IPAs the devices use) is checked
//! by the boot code that places each personality.
//!
//! [`validate_disk`] checks the disk the config describes (a volume per personality
//! that asks for one, then the `shared` and `janus` partitions). Only the build runs
//! it: Janus reads the partitions from the disk's GPT, not from the bundle.

use core::fmt;

use super::bundle::{PersonalityConfig, NAME_MAX_BYTES};

pub mod channel;
mod disk;

pub use disk::{
    validate_disk, DiskConfig, DiskPartition, DISK_MAX_MIB, DISK_OVERHEAD_MIB, JANUS_MAX_MIB,
    JANUS_MIN_MIB, RESERVED_NAMES, VOLUME_MAX_MIB, VOLUME_MIN_MIB,
};

/// Stage-2 block size: guest RAM is mapped in 2 MiB blocks, so sizes and bases are
/// multiples of it.
pub const RAM_ALIGN_BYTES: u64 = 2 << 20;
/// Default for [`Limits::max_personalities`]: a personal and a work personality.
pub const DEFAULT_MAX_PERSONALITIES: usize = 2;
/// Default for [`Limits::max_vcpus_per_personality`].
pub const DEFAULT_MAX_VCPUS_PER_PERSONALITY: u32 = 8;
/// Most physical CPUs a `cpus` bitmask can name.
pub const MAX_PHYSICAL_CPUS: u32 = u64::BITS;

/// What the machine and this build of Janus can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most personalities at once.
    pub max_personalities: usize,
    /// Most vCPUs in one personality.
    pub max_vcpus_per_personality: u32,
    /// Physical CPUs on the machine, numbered from 0 (at most [`MAX_PHYSICAL_CPUS`]
    /// count; a bitmask names no more).
    pub physical_cpus: u32,
}

impl Limits {
    /// The default limits on a machine with `physical_cpus` CPUs.
    pub const fn with_physical_cpus(physical_cpus: u32) -> Self {
        Limits {
            max_personalities: DEFAULT_MAX_PERSONALITIES,
            max_vcpus_per_personality: DEFAULT_MAX_VCPUS_PER_PERSONALITY,
            physical_cpus,
        }
    }

    /// Bitmask of the CPUs that exist.
    fn cpu_mask(&self) -> u64 {
        if self.physical_cpus >= MAX_PHYSICAL_CPUS {
            u64::MAX
        } else {
            (1u64 << self.physical_cpus) - 1
        }
    }
}

/// A field of [`PersonalityConfig`], to point at the config line that set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `name`.
    Name,
    /// `ram_bytes` (`ram_mib` in the TOML file).
    RamBytes,
    /// `ram_base`.
    RamBase,
    /// `vcpus`.
    Vcpus,
    /// `cpus`.
    Cpus,
    /// `kernel`.
    Kernel,
    /// `volume_mib`.
    Volume,
    /// `shared_mib` of the `[disk]` table.
    DiskShared,
    /// `janus_mib` of the `[disk]` table.
    DiskJanus,
}

/// Why a set of personalities was refused. Each variant names the personality (its
/// index in the list) and, through [`ConfigError::field`], the field at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// There is no personality at all.
    NoPersonalities,
    /// More personalities than [`Limits::max_personalities`]; `index` is the first extra.
    TooManyPersonalities {
        /// Index of the first personality past the limit.
        index: usize,
        /// The limit.
        max: usize,
    },
    /// The name is empty.
    NameEmpty {
        /// Index of the personality.
        index: usize,
    },
    /// The name is longer than [`NAME_MAX_BYTES`].
    NameTooLong {
        /// Index of the personality.
        index: usize,
        /// Its length in bytes.
        length: usize,
    },
    /// The name has a character outside `[a-z0-9-]`.
    NameBadCharacter {
        /// Index of the personality.
        index: usize,
        /// The first bad character.
        character: char,
    },
    /// Two personalities have the same name.
    DuplicateName {
        /// Index of the later personality.
        index: usize,
        /// Index of the earlier one with that name.
        first: usize,
    },
    /// `ram_bytes` is zero.
    RamZero {
        /// Index of the personality.
        index: usize,
    },
    /// `ram_bytes` is not a multiple of [`RAM_ALIGN_BYTES`].
    RamNotAligned {
        /// Index of the personality.
        index: usize,
        /// The size given.
        ram_bytes: u64,
    },
    /// `ram_base` is not a multiple of [`RAM_ALIGN_BYTES`].
    RamBaseNotAligned {
        /// Index of the personality.
        index: usize,
        /// The base given.
        ram_base: u64,
    },
    /// `ram_base + ram_bytes` passes the end of the 64-bit address space.
    RamBaseOverflow {
        /// Index of the personality.
        index: usize,
        /// The base given.
        ram_base: u64,
    },
    /// Two fixed RAM ranges overlap.
    RamOverlap {
        /// Index of the later personality.
        index: usize,
        /// Index of the earlier one it overlaps.
        other: usize,
    },
    /// `vcpus` is zero.
    VcpusZero {
        /// Index of the personality.
        index: usize,
    },
    /// `vcpus` is more than [`Limits::max_vcpus_per_personality`].
    TooManyVcpus {
        /// Index of the personality.
        index: usize,
        /// The number given.
        vcpus: u32,
        /// The limit.
        max: u32,
    },
    /// `cpus` names a CPU the machine does not have.
    CpuOutOfRange {
        /// Index of the personality.
        index: usize,
        /// The lowest CPU number that does not exist.
        cpu: u32,
        /// How many physical CPUs there are.
        physical_cpus: u32,
    },
    /// More vCPUs than CPUs in `cpus`: each vCPU is pinned to its own physical CPU.
    VcpusExceedCpus {
        /// Index of the personality.
        index: usize,
        /// The number of vCPUs.
        vcpus: u32,
        /// The number of CPUs in `cpus`.
        cpus: u32,
    },
    /// Two personalities may use the same physical CPU; their sets must be disjoint.
    CpusShared {
        /// Index of the later personality.
        index: usize,
        /// Index of the earlier one.
        other: usize,
        /// The lowest CPU both list.
        cpu: u32,
    },
    /// The kernel image is empty.
    KernelEmpty {
        /// Index of the personality.
        index: usize,
    },
    /// The name is one the disk keeps for its own partitions ([`RESERVED_NAMES`]).
    NameReserved {
        /// Index of the personality.
        index: usize,
    },
    /// `volume_mib` is below [`VOLUME_MIN_MIB`].
    VolumeTooSmall {
        /// Index of the personality.
        index: usize,
        /// The size given.
        volume_mib: u32,
    },
    /// `volume_mib` is above [`VOLUME_MAX_MIB`].
    VolumeTooLarge {
        /// Index of the personality.
        index: usize,
        /// The size given.
        volume_mib: u32,
    },
    /// A partition of the `[disk]` table is outside [`DiskPartition::size_range_mib`].
    DiskPartitionSize {
        /// Which partition.
        partition: DiskPartition,
        /// The size given.
        mib: u32,
    },
    /// The whole disk, GPT included, is larger than [`DISK_MAX_MIB`].
    DiskTooLarge {
        /// What it would be.
        total_mib: u64,
    },
}

impl ConfigError {
    /// Index of the personality at fault, if the error is about one.
    pub fn personality(&self) -> Option<usize> {
        match *self {
            ConfigError::NoPersonalities
            | ConfigError::DiskPartitionSize { .. }
            | ConfigError::DiskTooLarge { .. } => None,
            ConfigError::NameReserved { index }
            | ConfigError::VolumeTooSmall { index, .. }
            | ConfigError::VolumeTooLarge { index, .. }
            | ConfigError::TooManyPersonalities { index, .. }
            | ConfigError::NameEmpty { index }
            | ConfigError::NameTooLong { index, .. }
            | ConfigError::NameBadCharacter { index, .. }
            | ConfigError::DuplicateName { index, .. }
            | ConfigError::RamZero { index }
            | ConfigError::RamNotAligned { index, .. }
            | ConfigError::RamBaseNotAligned { index, .. }
            | ConfigError::RamBaseOverflow { index, .. }
            | ConfigError::RamOverlap { index, .. }
            | ConfigError::VcpusZero { index }
            | ConfigError::TooManyVcpus { index, .. }
            | ConfigError::CpuOutOfRange { index, .. }
            | ConfigError::VcpusExceedCpus { index, .. }
            | ConfigError::CpusShared { index, .. }
            | ConfigError::KernelEmpty { index } => Some(index),
        }
    }

    /// The field at fault, if one is; `None` for errors about the list as a whole.
    pub fn field(&self) -> Option<Field> {
        match self {
            ConfigError::NoPersonalities
            | ConfigError::TooManyPersonalities { .. }
            | ConfigError::DiskTooLarge { .. } => None,
            ConfigError::NameReserved { .. }
            | ConfigError::NameEmpty { .. }
            | ConfigError::NameTooLong { .. }
            | ConfigError::NameBadCharacter { .. }
            | ConfigError::DuplicateName { .. } => Some(Field::Name),
            ConfigError::RamZero { .. } | ConfigError::RamNotAligned { .. } => {
                Some(Field::RamBytes)
            }
            ConfigError::RamBaseNotAligned { .. }
            | ConfigError::RamBaseOverflow { .. }
            | ConfigError::RamOverlap { .. } => Some(Field::RamBase),
            ConfigError::VcpusZero { .. }
            | ConfigError::TooManyVcpus { .. }
            | ConfigError::VcpusExceedCpus { .. } => Some(Field::Vcpus),
            ConfigError::CpuOutOfRange { .. } | ConfigError::CpusShared { .. } => Some(Field::Cpus),
            ConfigError::KernelEmpty { .. } => Some(Field::Kernel),
            ConfigError::VolumeTooSmall { .. } | ConfigError::VolumeTooLarge { .. } => {
                Some(Field::Volume)
            }
            ConfigError::DiskPartitionSize { partition, .. } => Some(match partition {
                DiskPartition::Shared => Field::DiskShared,
                DiskPartition::Janus => Field::DiskJanus,
            }),
        }
    }

    /// The physical CPU the error is about, so a tool can point at that list element.
    pub fn cpu(&self) -> Option<u32> {
        match *self {
            ConfigError::CpuOutOfRange { cpu, .. } | ConfigError::CpusShared { cpu, .. } => {
                Some(cpu)
            }
            _ => None,
        }
    }
}

/// Prints a size as "N MiB" when it is whole mebibytes, else as bytes.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: u64 = 1 << 20;
        if self.0 != 0 && self.0.is_multiple_of(MIB) {
            write!(formatter, "{} MiB", self.0 / MIB)
        } else {
            write!(formatter, "{} bytes", self.0)
        }
    }
}

/// The plural ending for a count of `count`.
fn plural(count: u32) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let align = Size(RAM_ALIGN_BYTES);
        match *self {
            ConfigError::NoPersonalities => formatter.write_str("no personality is defined"),
            ConfigError::TooManyPersonalities { index, max } => write!(
                formatter,
                "personality {} is one too many: at most {max} are supported",
                index + 1
            ),
            ConfigError::NameEmpty { .. } => formatter.write_str("name is empty"),
            ConfigError::NameTooLong { length, .. } => write!(
                formatter,
                "name is {length} characters long, more than {NAME_MAX_BYTES}"
            ),
            // escape_default rather than Debug: the same quoting for what
            // matters here, without core's printable-character tables in Janus.
            ConfigError::NameBadCharacter { character, .. } => write!(
                formatter,
                "name has '{}': only a-z, 0-9 and '-' are allowed",
                character.escape_default()
            ),
            ConfigError::DuplicateName { first, .. } => write!(
                formatter,
                "name is already used by personality {}",
                first + 1
            ),
            ConfigError::RamZero { .. } => formatter.write_str("RAM size is zero"),
            ConfigError::RamNotAligned { ram_bytes, .. } => write!(
                formatter,
                "RAM size {} is not a multiple of {align}",
                Size(ram_bytes)
            ),
            ConfigError::RamBaseNotAligned { ram_base, .. } => write!(
                formatter,
                "ram_base = {ram_base:#x} is not aligned to {align}"
            ),
            ConfigError::RamBaseOverflow { ram_base, .. } => write!(
                formatter,
                "RAM at ram_base = {ram_base:#x} runs past the end of the address space"
            ),
            ConfigError::RamOverlap { other, .. } => write!(
                formatter,
                "RAM range overlaps the RAM of personality {}",
                other + 1
            ),
            ConfigError::VcpusZero { .. } => formatter.write_str("vcpus = 0: at least one is needed"),
            ConfigError::TooManyVcpus { vcpus, max, .. } => write!(
                formatter,
                "vcpus = {vcpus} is more than the {max} a personality may have"
            ),
            ConfigError::CpuOutOfRange {
                cpu, physical_cpus, ..
            } => write!(
                formatter,
                "CPU {cpu} does not exist: the machine has {physical_cpus} physical CPU{} (0 to {})",
                plural(physical_cpus),
                physical_cpus.saturating_sub(1)
            ),
            ConfigError::VcpusExceedCpus { vcpus, cpus, .. } => write!(
                formatter,
                "vcpus = {vcpus} but cpus lists only {cpus} physical CPU{}",
                plural(cpus)
            ),
            ConfigError::CpusShared { other, cpu, .. } => write!(
                formatter,
                "CPU {cpu} is already given to personality {}: CPU sets must not overlap",
                other + 1
            ),
            ConfigError::KernelEmpty { .. } => formatter.write_str("kernel image is empty"),
            ConfigError::NameReserved { .. } => formatter.write_str(
                "name is reserved: the disk's own partitions are called shared and janus",
            ),
            ConfigError::VolumeTooSmall { volume_mib, .. } => write!(
                formatter,
                "volume_mib = {volume_mib} is below the {VOLUME_MIN_MIB} MiB an ext4 volume needs"
            ),
            ConfigError::VolumeTooLarge { volume_mib, .. } => write!(
                formatter,
                "volume_mib = {volume_mib} is above the largest volume, {VOLUME_MAX_MIB} MiB"
            ),
            ConfigError::DiskPartitionSize { partition, mib } => {
                let (min, max) = partition.size_range_mib();
                write!(
                    formatter,
                    "{}_mib = {mib} is outside {min} to {max} MiB",
                    partition.name()
                )
            }
            ConfigError::DiskTooLarge { total_mib } => write!(
                formatter,
                "the disk would be {total_mib} MiB (volumes, shared, janus and \
                 {DISK_OVERHEAD_MIB} MiB of GPT), more than {DISK_MAX_MIB} MiB"
            ),
        }
    }
}

/// Checks `personalities` against the rules and `limits`.
///
/// Each personality is checked in order, its own fields first, then against the
/// personalities before it; the first problem found is returned.
///
/// # Errors
///
/// A [`ConfigError`] naming the personality and field at fault: no or too many
/// personalities; a name that is empty, too long, has a character outside
/// `[a-z0-9-]` or repeats an earlier one; RAM that is zero, not a 2 MiB multiple, at a
/// misaligned or overflowing base, or overlapping another fixed range; vCPUs that are
/// zero, past the limit or more than the CPUs listed; CPUs the machine lacks or that
/// another personality uses; an empty kernel; a name the disk reserves; a volume
/// smaller than [`VOLUME_MIN_MIB`] or larger than [`VOLUME_MAX_MIB`].
pub fn validate(
    personalities: &[PersonalityConfig<'_>],
    limits: &Limits,
) -> Result<(), ConfigError> {
    if personalities.is_empty() {
        return Err(ConfigError::NoPersonalities);
    }
    if personalities.len() > limits.max_personalities {
        return Err(ConfigError::TooManyPersonalities {
            index: limits.max_personalities,
            max: limits.max_personalities,
        });
    }
    for (index, personality) in personalities.iter().enumerate() {
        check_own_fields(index, personality, limits)?;
        for (other, earlier) in personalities[..index].iter().enumerate() {
            check_pair(index, personality, other, earlier)?;
        }
    }
    Ok(())
}

/// Checks what one personality can get wrong on its own.
fn check_own_fields(
    index: usize,
    personality: &PersonalityConfig<'_>,
    limits: &Limits,
) -> Result<(), ConfigError> {
    check_name(index, personality.name)?;

    if personality.ram_bytes == 0 {
        return Err(ConfigError::RamZero { index });
    }
    if !personality.ram_bytes.is_multiple_of(RAM_ALIGN_BYTES) {
        return Err(ConfigError::RamNotAligned {
            index,
            ram_bytes: personality.ram_bytes,
        });
    }
    if let Some(ram_base) = personality.ram_base {
        if !ram_base.is_multiple_of(RAM_ALIGN_BYTES) {
            return Err(ConfigError::RamBaseNotAligned { index, ram_base });
        }
        if ram_range(personality).is_none() {
            return Err(ConfigError::RamBaseOverflow { index, ram_base });
        }
    }

    let vcpus = personality.vcpus;
    if vcpus == 0 {
        return Err(ConfigError::VcpusZero { index });
    }
    if vcpus > limits.max_vcpus_per_personality {
        return Err(ConfigError::TooManyVcpus {
            index,
            vcpus,
            max: limits.max_vcpus_per_personality,
        });
    }
    let missing = personality.cpus & !limits.cpu_mask();
    if missing != 0 {
        return Err(ConfigError::CpuOutOfRange {
            index,
            cpu: missing.trailing_zeros(),
            physical_cpus: limits.physical_cpus,
        });
    }
    let cpus = personality.cpus.count_ones();
    if vcpus > cpus {
        return Err(ConfigError::VcpusExceedCpus { index, vcpus, cpus });
    }

    if personality.kernel.is_empty() {
        return Err(ConfigError::KernelEmpty { index });
    }

    if let Some(volume_mib) = personality.volume_mib {
        if volume_mib < VOLUME_MIN_MIB {
            return Err(ConfigError::VolumeTooSmall { index, volume_mib });
        }
        if volume_mib > VOLUME_MAX_MIB {
            return Err(ConfigError::VolumeTooLarge { index, volume_mib });
        }
    }
    Ok(())
}

/// Checks a name: 1 to [`NAME_MAX_BYTES`] characters from `[a-z0-9-]`, not one of
/// [`RESERVED_NAMES`].
fn check_name(index: usize, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::NameEmpty { index });
    }
    if let Some(character) = name
        .chars()
        .find(|character| !matches!(character, 'a'..='z' | '0'..='9' | '-'))
    {
        return Err(ConfigError::NameBadCharacter { index, character });
    }
    // Every allowed character is one byte, so the byte length is the character count.
    if name.len() > NAME_MAX_BYTES {
        return Err(ConfigError::NameTooLong {
            index,
            length: name.len(),
        });
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(ConfigError::NameReserved { index });
    }
    Ok(())
}

/// Checks personality `index` against the earlier personality `other`.
fn check_pair(
    index: usize,
    personality: &PersonalityConfig<'_>,
    other: usize,
    earlier: &PersonalityConfig<'_>,
) -> Result<(), ConfigError> {
    if personality.name == earlier.name {
        return Err(ConfigError::DuplicateName {
            index,
            first: other,
        });
    }
    if let (Some((start, end)), Some((earlier_start, earlier_end))) =
        (ram_range(personality), ram_range(earlier))
    {
        if start < earlier_end && earlier_start < end {
            return Err(ConfigError::RamOverlap { index, other });
        }
    }
    let shared = personality.cpus & earlier.cpus;
    if shared != 0 {
        return Err(ConfigError::CpusShared {
            index,
            other,
            cpu: shared.trailing_zeros(),
        });
    }
    Ok(())
}

/// The half-open range `[ram_base, ram_base + ram_bytes)` of a fixed RAM base, or
/// `None` when the base is not fixed or the end does not fit in 64 bits.
fn ram_range(personality: &PersonalityConfig<'_>) -> Option<(u64, u64)> {
    let base = personality.ram_base?;
    Some((base, base.checked_add(personality.ram_bytes)?))
}

#[cfg(test)]
mod tests;

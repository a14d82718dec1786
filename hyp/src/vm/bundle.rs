//! The boot bundle: personality configs and guest images packed into one blob.
//!
//! The host tool `janus-pack` writes a bundle; QEMU loads it with `-initrd`, and Janus
//! finds it through the DTB's `/chosen` initrd range and reads it with [`Bundle::parse`].
//! The parser trusts nothing: every offset and length is checked against the bytes it
//! was given with checked arithmetic, and no input makes it panic.
//!
//! # Format (version 2)
//!
//! All integers are little-endian. Offsets count from the first byte of the bundle.
//!
//! Header, [`HEADER_BYTES`] bytes:
//!
//! | offset | size | field                                                       |
//! |--------|------|-------------------------------------------------------------|
//! | 0x00   | 8    | magic, `b"JANUSBDL"`                                        |
//! | 0x08   | 4    | format version, [`FORMAT_VERSION`] (1 is still read)        |
//! | 0x0c   | 4    | number of entries                                           |
//! | 0x10   | 4    | size of one entry, [`ENTRY_BYTES`]                          |
//! | 0x14   | 4    | length of the channel section in bytes; zero in version 1   |
//! | 0x18   | 8    | total bytes: header, entries, blobs and padding             |
//!
//! Then one entry per personality, [`ENTRY_BYTES`] bytes each:
//!
//! | offset | size | field                                                       |
//! |--------|------|-------------------------------------------------------------|
//! | 0x00   | 16   | name, UTF-8, padded with NUL (so at most 15 bytes long)     |
//! | 0x10   | 4    | kind: 0 = bare metal, 1 = Linux                             |
//! | 0x14   | 4    | flags: bit 0 = `ram_base` is fixed; other bits zero         |
//! | 0x18   | 8    | RAM size in bytes                                           |
//! | 0x20   | 8    | RAM base (IPA == physical address), zero unless bit 0 is set |
//! | 0x28   | 8    | bitmask of the physical CPUs the personality may use        |
//! | 0x30   | 4    | number of vCPUs                                             |
//! | 0x34   | 4    | size of its disk volume in MiB; 0 = no volume               |
//! | 0x38   | 16   | kernel blob: offset (8), length (8)                         |
//! | 0x48   | 16   | initrd blob: offset (8), length (8)                         |
//! | 0x58   | 16   | bootargs blob (UTF-8, no NUL terminator): offset, length    |
//!
//! Then the channel section (the `[channel]` table; layout in the `channel`
//! submodule), right after the entry table. A version 1 bundle has none and reads
//! as [`ChannelConfig::default`].
//!
//! Then the blobs, each starting on a [`BLOB_ALIGN`]-byte boundary after the channel
//! section, zero padding between them and after the last one. An empty blob has offset
//! 0 and length 0. Bytes past "total bytes" are ignored, since a loader may hand over a
//! region rounded up to a page; fewer bytes than "total bytes" is a truncated bundle.
//! Blobs need not be disjoint: Janus only reads them (copying images into guest RAM).
//!
//! The volume field was reserved (zero) before personalities had disk volumes, so a
//! bundle without volumes is byte for byte what it was, and the version stays 1.
//!
//! The parser checks the structure only; whether the values make sense (name
//! characters, RAM alignment, CPU sets) is [`super::config::validate`]'s job, and
//! [`validate_channel`](super::config::channel::validate_channel)'s for the channel.

use alloc::vec::Vec;
use core::fmt;

use super::config::channel::ChannelConfig;

mod channel;

/// The first eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"JANUSBDL";
/// The format version [`encode`] writes; the parser reads it and version 1.
pub const FORMAT_VERSION: u32 = 2;
/// The version before the channel section; read as the default channel config.
pub const FORMAT_VERSION_WITHOUT_CHANNEL: u32 = 1;
/// Size of the header in bytes.
pub const HEADER_BYTES: usize = 32;
/// Size of one entry in bytes.
pub const ENTRY_BYTES: usize = 104;
/// Alignment of every blob, in bytes, so a kernel image can be used in place.
pub const BLOB_ALIGN: usize = 16;
/// Longest personality name in bytes; the name field holds it plus a NUL.
pub const NAME_MAX_BYTES: usize = 15;

/// Size of the NUL-padded name field of an entry.
const NAME_FIELD_BYTES: usize = NAME_MAX_BYTES + 1;
/// Entry flag: the `ram_base` field is meaningful.
const FLAG_RAM_BASE: u32 = 1 << 0;

/// Header field offsets.
mod header {
    pub const VERSION: usize = 0x08;
    pub const COUNT: usize = 0x0c;
    pub const ENTRY_SIZE: usize = 0x10;
    pub const CHANNEL_BYTES: usize = 0x14;
    pub const TOTAL_BYTES: usize = 0x18;
}

/// Entry field offsets, relative to the start of the entry.
mod entry {
    pub const NAME: usize = 0x00;
    pub const KIND: usize = 0x10;
    pub const FLAGS: usize = 0x14;
    pub const RAM_BYTES: usize = 0x18;
    pub const RAM_BASE: usize = 0x20;
    pub const CPUS: usize = 0x28;
    pub const VCPUS: usize = 0x30;
    pub const VOLUME_MIB: usize = 0x34;
    pub const KERNEL: usize = 0x38;
    pub const INITRD: usize = 0x48;
    pub const BOOTARGS: usize = 0x58;
}

const _: () = assert!(entry::BOOTARGS + 16 == ENTRY_BYTES);
const _: () = assert!(header::TOTAL_BYTES + 8 == HEADER_BYTES);
const _: () = assert!(entry::NAME + NAME_FIELD_BYTES == entry::KIND);

/// What a personality runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestKind {
    /// A bare-metal EL1 program (the test guests), entered at the start of its kernel.
    BareMetal,
    /// A Linux arm64 `Image`, booted by the arm64 boot protocol with a generated DTB.
    Linux,
}

impl GuestKind {
    /// The value stored in an entry's kind field.
    const fn code(self) -> u32 {
        match self {
            GuestKind::BareMetal => 0,
            GuestKind::Linux => 1,
        }
    }

    /// The kind an entry's kind field names, if any.
    const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(GuestKind::BareMetal),
            1 => Some(GuestKind::Linux),
            _ => None,
        }
    }
}

/// One personality as packed in the bundle; the slices borrow the bundle's bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PersonalityConfig<'a> {
    /// 1 to 15 characters from `[a-z0-9-]`; also the guest's hostname.
    pub name: &'a str,
    /// What the personality runs.
    pub kind: GuestKind,
    /// Guest RAM size, a multiple of 2 MiB.
    pub ram_bytes: u64,
    /// Physical (== guest IPA) base of its RAM if the config fixes it, 2 MiB aligned.
    pub ram_base: Option<u64>,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// Bitmask of the physical CPUs it may use (bit n = CPU n).
    pub cpus: u64,
    /// Size in MiB of its disk volume, the GPT partition of the physical disk named
    /// after it; `None` when it has none (the bundle stores 0).
    pub volume_mib: Option<u32>,
    /// The kernel (or bare-metal program) image.
    pub kernel: &'a [u8],
    /// The initial RAM disk; may be empty.
    pub initrd: &'a [u8],
    /// The kernel command line.
    pub bootargs: &'a str,
}

impl fmt::Debug for PersonalityConfig<'_> {
    // Images can be megabytes: print their sizes, not their bytes.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PersonalityConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("ram_bytes", &Hex(self.ram_bytes))
            .field("ram_base", &self.ram_base.map(Hex))
            .field("vcpus", &self.vcpus)
            .field("cpus", &format_args!("{:#b}", self.cpus))
            .field("volume_mib", &self.volume_mib)
            .field("kernel_bytes", &self.kernel.len())
            .field("initrd_bytes", &self.initrd.len())
            .field("bootargs", &self.bootargs)
            .finish()
    }
}

/// Prints an address or size in hex inside `Debug` output.
struct Hex(u64);

impl fmt::Debug for Hex {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:#x}", self.0)
    }
}

/// Which blob of an entry an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blob {
    /// The kernel image.
    Kernel,
    /// The initial RAM disk.
    Initrd,
    /// The kernel command line.
    Bootargs,
}

impl fmt::Display for Blob {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Blob::Kernel => "kernel",
            Blob::Initrd => "initrd",
            Blob::Bootargs => "bootargs",
        })
    }
}

/// Why a bundle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleError {
    /// Fewer bytes than a header.
    TooShort {
        /// How many bytes there were.
        available: usize,
    },
    /// The first eight bytes are not `JANUSBDL`.
    BadMagic,
    /// The format version is neither [`FORMAT_VERSION`] nor
    /// [`FORMAT_VERSION_WITHOUT_CHANNEL`].
    UnsupportedVersion(u32),
    /// The entry size in the header is not [`ENTRY_BYTES`].
    BadEntrySize(u32),
    /// A reserved header field is not zero (the channel length, in version 1).
    ReservedHeaderField,
    /// The channel section does not fit in the bundle, its length disagrees with
    /// its counts, or it has an unknown manager code, nonzero reserved bytes or a
    /// release folder name not in UTF-8.
    BadChannelSection,
    /// The entry table does not fit inside the total size the header claims.
    TableOutOfBounds {
        /// Number of entries the header claims.
        count: u32,
        /// Total size the header claims.
        total_bytes: u64,
    },
    /// The header claims more bytes than were given: the bundle was cut short.
    Truncated {
        /// Total size the header claims.
        total_bytes: u64,
        /// How many bytes there were.
        available: usize,
    },
    /// The name field has bytes after its first NUL, or no NUL at all.
    NameNotPadded {
        /// Index of the entry.
        index: usize,
    },
    /// The name is not UTF-8.
    NameNotUtf8 {
        /// Index of the entry.
        index: usize,
    },
    /// The kind field names no [`GuestKind`].
    UnknownKind {
        /// Index of the entry.
        index: usize,
        /// The value found.
        value: u32,
    },
    /// The flags field has bits this version does not define.
    UnknownFlags {
        /// Index of the entry.
        index: usize,
        /// The value found.
        flags: u32,
    },
    /// `ram_base` is set without its flag (or an entry field could not be read).
    ReservedEntryField {
        /// Index of the entry.
        index: usize,
    },
    /// A blob starts inside the header or entry table, ends past the total size, or
    /// is empty with a nonzero offset.
    BlobOutOfBounds {
        /// Index of the entry.
        index: usize,
        /// Which blob.
        blob: Blob,
    },
    /// A non-empty blob does not start on a [`BLOB_ALIGN`]-byte boundary.
    BlobMisaligned {
        /// Index of the entry.
        index: usize,
        /// Which blob.
        blob: Blob,
    },
    /// The bootargs blob is not UTF-8.
    BootargsNotUtf8 {
        /// Index of the entry.
        index: usize,
    },
}

impl fmt::Display for BundleError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BundleError::TooShort { available } => write!(
                formatter,
                "bundle is {available} bytes, shorter than its {HEADER_BYTES}-byte header"
            ),
            BundleError::BadMagic => formatter.write_str("bundle does not start with JANUSBDL"),
            BundleError::UnsupportedVersion(version) => write!(
                formatter,
                "bundle format version {version} is not supported (expected {FORMAT_VERSION})"
            ),
            BundleError::BadEntrySize(size) => write!(
                formatter,
                "bundle entry size is {size} bytes (expected {ENTRY_BYTES})"
            ),
            BundleError::ReservedHeaderField => {
                formatter.write_str("bundle header has a nonzero reserved field")
            }
            BundleError::BadChannelSection => {
                formatter.write_str("bundle channel section is malformed")
            }
            BundleError::TableOutOfBounds { count, total_bytes } => write!(
                formatter,
                "bundle claims {count} entries, which do not fit in its {total_bytes} bytes"
            ),
            BundleError::Truncated {
                total_bytes,
                available,
            } => write!(
                formatter,
                "bundle is truncated: header says {total_bytes} bytes, only {available} present"
            ),
            BundleError::NameNotPadded { index } => write!(
                formatter,
                "entry {index}: name is not NUL-padded within {NAME_FIELD_BYTES} bytes"
            ),
            BundleError::NameNotUtf8 { index } => {
                write!(formatter, "entry {index}: name is not UTF-8")
            }
            BundleError::UnknownKind { index, value } => {
                write!(formatter, "entry {index}: unknown guest kind {value}")
            }
            BundleError::UnknownFlags { index, flags } => {
                write!(formatter, "entry {index}: unknown flags {flags:#x}")
            }
            BundleError::ReservedEntryField { index } => {
                write!(formatter, "entry {index}: a reserved field is nonzero")
            }
            BundleError::BlobOutOfBounds { index, blob } => {
                write!(formatter, "entry {index}: {blob} lies outside the bundle")
            }
            BundleError::BlobMisaligned { index, blob } => write!(
                formatter,
                "entry {index}: {blob} does not start on a {BLOB_ALIGN}-byte boundary"
            ),
            BundleError::BootargsNotUtf8 { index } => {
                write!(formatter, "entry {index}: bootargs are not UTF-8")
            }
        }
    }
}

/// A parsed bundle: the personalities it holds, borrowing its bytes.
#[derive(Debug, Clone)]
pub struct Bundle<'a> {
    personalities: Vec<PersonalityConfig<'a>>,
    channel: ChannelConfig<'a>,
}

impl<'a> Bundle<'a> {
    /// Parses and bounds-checks a bundle.
    ///
    /// # Errors
    ///
    /// Any [`BundleError`]: a short or truncated input, a bad magic, version or entry
    /// size, nonzero reserved fields, an unknown kind or flag, a name or bootargs that
    /// is not UTF-8, or a blob outside the bundle or misaligned.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BundleError> {
        let available = bytes.len();
        let too_short = BundleError::TooShort { available };
        if bytes.get(..MAGIC.len()).ok_or(too_short)? != MAGIC {
            // A short input that is not a bundle at all gets the clearer of the two.
            return Err(if available < HEADER_BYTES {
                too_short
            } else {
                BundleError::BadMagic
            });
        }
        let header_bytes = bytes.get(..HEADER_BYTES).ok_or(too_short)?;
        let version = read_u32(header_bytes, header::VERSION).ok_or(too_short)?;
        if version != FORMAT_VERSION && version != FORMAT_VERSION_WITHOUT_CHANNEL {
            return Err(BundleError::UnsupportedVersion(version));
        }
        let count = read_u32(header_bytes, header::COUNT).ok_or(too_short)?;
        let entry_size = read_u32(header_bytes, header::ENTRY_SIZE).ok_or(too_short)?;
        if usize::try_from(entry_size) != Ok(ENTRY_BYTES) {
            return Err(BundleError::BadEntrySize(entry_size));
        }
        let channel_bytes = read_u32(header_bytes, header::CHANNEL_BYTES).ok_or(too_short)?;
        if version == FORMAT_VERSION_WITHOUT_CHANNEL && channel_bytes != 0 {
            return Err(BundleError::ReservedHeaderField);
        }
        let total_bytes = read_u64(header_bytes, header::TOTAL_BYTES).ok_or(too_short)?;

        let table_out_of_bounds = BundleError::TableOutOfBounds { count, total_bytes };
        let table_end = usize::try_from(count)
            .ok()
            .and_then(|count| count.checked_mul(ENTRY_BYTES))
            .and_then(|table| table.checked_add(HEADER_BYTES))
            .ok_or(table_out_of_bounds)?;
        let total = usize::try_from(total_bytes).map_err(|_| BundleError::Truncated {
            total_bytes,
            available,
        })?;
        if table_end > total {
            return Err(table_out_of_bounds);
        }
        let bundle = bytes.get(..total).ok_or(BundleError::Truncated {
            total_bytes,
            available,
        })?;

        // The section is at most u32::MAX bytes and ends inside `bundle`.
        let channel_end = usize::try_from(channel_bytes)
            .ok()
            .and_then(|length| table_end.checked_add(length))
            .ok_or(BundleError::BadChannelSection)?;
        let channel = if version == FORMAT_VERSION_WITHOUT_CHANNEL {
            ChannelConfig::default()
        } else {
            let section = bundle
                .get(table_end..channel_end)
                .ok_or(BundleError::BadChannelSection)?;
            channel::parse(section)?
        };
        let layout = Layout {
            bundle,
            blobs_start: channel_end,
        };
        let table = bundle
            .get(HEADER_BYTES..table_end)
            .ok_or(table_out_of_bounds)?;
        let mut personalities = Vec::new();
        // The table is exactly `count` entries long, so no chunk is left over.
        for (index, entry_bytes) in table.chunks_exact(ENTRY_BYTES).enumerate() {
            personalities.push(layout.entry(index, entry_bytes)?);
        }
        Ok(Bundle {
            personalities,
            channel,
        })
    }

    /// The `[channel]` table; the default for a version 1 bundle.
    pub fn channel(&self) -> &ChannelConfig<'a> {
        &self.channel
    }

    /// The personalities, in the order the bundle lists them.
    pub fn personalities(&self) -> &[PersonalityConfig<'a>] {
        &self.personalities
    }
}

/// The checked outline of a bundle that entries are read against.
struct Layout<'a> {
    /// The bundle, cut to its total size.
    bundle: &'a [u8],
    /// First byte after the entry table: no blob may start before it.
    blobs_start: usize,
}

impl<'a> Layout<'a> {
    /// Reads entry `index` from its `ENTRY_BYTES` bytes, a slice of the bundle.
    fn entry(&self, index: usize, bytes: &'a [u8]) -> Result<PersonalityConfig<'a>, BundleError> {
        // `bytes` is exactly ENTRY_BYTES long, so the field reads below all succeed;
        // were one to fail, the bundle would still only be refused.
        let reserved = BundleError::ReservedEntryField { index };
        let name_field = bytes
            .get(entry::NAME..entry::NAME + NAME_FIELD_BYTES)
            .ok_or(reserved)?;
        let name = name(index, name_field)?;
        let kind_code = read_u32(bytes, entry::KIND).ok_or(reserved)?;
        let kind = GuestKind::from_code(kind_code).ok_or(BundleError::UnknownKind {
            index,
            value: kind_code,
        })?;
        let flags = read_u32(bytes, entry::FLAGS).ok_or(reserved)?;
        if flags & !FLAG_RAM_BASE != 0 {
            return Err(BundleError::UnknownFlags { index, flags });
        }
        let ram_bytes = read_u64(bytes, entry::RAM_BYTES).ok_or(reserved)?;
        let ram_base_field = read_u64(bytes, entry::RAM_BASE).ok_or(reserved)?;
        let ram_base = if flags & FLAG_RAM_BASE != 0 {
            Some(ram_base_field)
        } else if ram_base_field == 0 {
            None
        } else {
            return Err(reserved);
        };
        let cpus = read_u64(bytes, entry::CPUS).ok_or(reserved)?;
        let vcpus = read_u32(bytes, entry::VCPUS).ok_or(reserved)?;
        let volume_mib = match read_u32(bytes, entry::VOLUME_MIB).ok_or(reserved)? {
            0 => None,
            mib => Some(mib),
        };
        let kernel = self.blob(index, bytes, entry::KERNEL, Blob::Kernel)?;
        let initrd = self.blob(index, bytes, entry::INITRD, Blob::Initrd)?;
        let bootargs = self.blob(index, bytes, entry::BOOTARGS, Blob::Bootargs)?;
        let bootargs =
            core::str::from_utf8(bootargs).map_err(|_| BundleError::BootargsNotUtf8 { index })?;
        Ok(PersonalityConfig {
            name,
            kind,
            ram_bytes,
            ram_base,
            vcpus,
            cpus,
            volume_mib,
            kernel,
            initrd,
            bootargs,
        })
    }

    /// Reads the (offset, length) pair at `field` and returns the blob it names.
    fn blob(
        &self,
        index: usize,
        entry_bytes: &[u8],
        field: usize,
        blob: Blob,
    ) -> Result<&'a [u8], BundleError> {
        let out_of_bounds = BundleError::BlobOutOfBounds { index, blob };
        let offset = read_u64(entry_bytes, field).ok_or(out_of_bounds)?;
        let length = read_u64(entry_bytes, field + 8).ok_or(out_of_bounds)?;
        if length == 0 {
            return if offset == 0 {
                Ok(&[])
            } else {
                Err(out_of_bounds)
            };
        }
        let start = usize::try_from(offset).map_err(|_| out_of_bounds)?;
        let length = usize::try_from(length).map_err(|_| out_of_bounds)?;
        if start < self.blobs_start {
            return Err(out_of_bounds);
        }
        if !start.is_multiple_of(BLOB_ALIGN) {
            return Err(BundleError::BlobMisaligned { index, blob });
        }
        let end = start.checked_add(length).ok_or(out_of_bounds)?;
        self.bundle.get(start..end).ok_or(out_of_bounds)
    }
}

/// Reads the NUL-padded name field of entry `index`.
fn name(index: usize, field: &[u8]) -> Result<&str, BundleError> {
    let not_padded = BundleError::NameNotPadded { index };
    let length = field.iter().position(|&byte| byte == 0).ok_or(not_padded)?;
    let (name, padding) = field.split_at(length);
    if padding.iter().any(|&byte| byte != 0) {
        return Err(not_padded);
    }
    core::str::from_utf8(name).map_err(|_| BundleError::NameNotUtf8 { index })
}

/// Reads a little-endian u32 at `offset`, if it fits in `bytes`.
fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    Some(u32::from_le_bytes(bytes.get(offset..end)?.try_into().ok()?))
}

/// Reads a little-endian u64 at `offset`, if it fits in `bytes`.
fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    let end = offset.checked_add(8)?;
    Some(u64::from_le_bytes(bytes.get(offset..end)?.try_into().ok()?))
}

/// `value` rounded up to a multiple of [`BLOB_ALIGN`].
const fn align_blob(value: usize) -> usize {
    value.div_ceil(BLOB_ALIGN) * BLOB_ALIGN
}

/// A host length as the u64 the format stores; usize is at most 64 bits on every
/// target Rust supports, so this never loses bits.
fn length_u64(length: usize) -> u64 {
    length as u64
}

/// Packs `personalities` with the default channel config; see [`encode_with_channel`].
///
/// # Panics
///
/// As [`encode_with_channel`].
pub fn encode(personalities: &[PersonalityConfig<'_>]) -> Vec<u8> {
    encode_with_channel(personalities, &ChannelConfig::default())
}

/// Packs `personalities` and `channel` into a bundle that [`Bundle::parse`] reads
/// back unchanged.
///
/// Run [`super::config::validate`] and
/// [`validate_channel`](super::config::channel::validate_channel) first: `encode` stores what it is given, including
/// values that `validate` would refuse, as long as the format can hold them.
///
/// # Panics
///
/// If a name is longer than [`NAME_MAX_BYTES`] or contains a NUL byte, or if there are
/// more than `u32::MAX` personalities, or a channel config the section cannot hold
/// (see the `channel` submodule): the format cannot hold these, and a validated
/// config never has them.
pub fn encode_with_channel(
    personalities: &[PersonalityConfig<'_>],
    channel: &ChannelConfig<'_>,
) -> Vec<u8> {
    // A slice of 2^32 personalities would need hundreds of GiB; refusing it loudly is
    // the documented contract, and no validated config comes near it.
    let Ok(count) = u32::try_from(personalities.len()) else {
        panic!(
            "{} personalities cannot be stored in a bundle",
            personalities.len()
        );
    };
    let table_end = HEADER_BYTES + personalities.len() * ENTRY_BYTES;
    let channel_section = channel::encode(channel);
    // At most FIXED + 255 * 16 bytes (see `channel::encode`), so it fits in u32.
    let channel_bytes = channel_section.len() as u32;
    let channel_end = table_end + channel_section.len();

    // Lay the blobs out first so the table can point at them. A blob identical
    // to one already placed (both personalities booting the same kernel) is
    // stored once and pointed at twice.
    let mut cursor = align_blob(channel_end);
    let mut stored: Vec<(&[u8], usize)> = Vec::new();
    let mut blob_places = Vec::with_capacity(personalities.len());
    for personality in personalities {
        let mut places = [(0, 0); 3];
        for (slot, blob) in places.iter_mut().zip([
            personality.kernel,
            personality.initrd,
            personality.bootargs.as_bytes(),
        ]) {
            if blob.is_empty() {
                continue;
            }
            let offset = match stored.iter().find(|(earlier, _)| *earlier == blob) {
                Some(&(_, offset)) => offset,
                None => {
                    let offset = cursor;
                    cursor = align_blob(offset + blob.len());
                    stored.push((blob, offset));
                    offset
                }
            };
            *slot = (length_u64(offset), length_u64(blob.len()));
        }
        blob_places.push(places);
    }
    let total = cursor;

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(ENTRY_BYTES as u32).to_le_bytes());
    out.extend_from_slice(&channel_bytes.to_le_bytes());
    out.extend_from_slice(&length_u64(total).to_le_bytes());

    for (personality, places) in personalities.iter().zip(&blob_places) {
        let name = personality.name.as_bytes();
        assert!(
            name.len() <= NAME_MAX_BYTES && !name.contains(&0),
            "personality name {:?} cannot be stored in a bundle",
            personality.name
        );
        let mut name_field = [0u8; NAME_FIELD_BYTES];
        name_field[..name.len()].copy_from_slice(name);
        out.extend_from_slice(&name_field);
        out.extend_from_slice(&personality.kind.code().to_le_bytes());
        let flags = if personality.ram_base.is_some() {
            FLAG_RAM_BASE
        } else {
            0
        };
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&personality.ram_bytes.to_le_bytes());
        out.extend_from_slice(&personality.ram_base.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&personality.cpus.to_le_bytes());
        out.extend_from_slice(&personality.vcpus.to_le_bytes());
        // `Some(0)` is stored as "no volume"; `validate` refuses it anyway.
        out.extend_from_slice(&personality.volume_mib.unwrap_or(0).to_le_bytes());
        for (offset, length) in places {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&length.to_le_bytes());
        }
    }

    out.extend_from_slice(&channel_section);

    for (blob, offset) in stored {
        out.resize(offset, 0);
        out.extend_from_slice(blob);
    }
    out.resize(total, 0);
    out
}

#[cfg(test)]
mod tests;

//! The initramfs of a Linux personality: busybox, a `/dev/console` node, an `/init`
//! script and the kernel modules that mount its volume, as an uncompressed `newc` cpio
//! archive that the kernel unpacks into its rootfs.
//!
//! The `newc` format (the kernel's `Documentation/driver-api/early-userspace/
//! buffer-format.rst`) is a list of entries, each a 110-byte ASCII header, the path
//! name with its NUL, zero padding to a multiple of 4 bytes, the file data, and zero
//! padding to a multiple of 4 again. The header is the magic `070701` and thirteen
//! 8-digit hexadecimal fields: inode, mode, uid, gid, nlink, mtime, file size, the
//! device holding the file (major, minor), the device a node stands for (major,
//! minor), the name size (with the NUL) and a checksum (0 in `newc`). An entry named
//! `TRAILER!!!` ends the archive.
//!
//! [`Newc`] writes such an archive and [`parse`] reads one back (for tests and
//! checks); [`build`] makes a personality's whole initramfs. The `/init` script is
//! `guests/linux/init.sh`, embedded here, with the personality's name written in place
//! of [`NAME_PLACEHOLDER`].

use std::fmt;

use hyp::vm::bundle::NAME_MAX_BYTES;

/// The magic at the start of every `newc` header (no checksums).
pub const NEWC_MAGIC: &[u8; 6] = b"070701";
/// The name of the entry that ends an archive.
pub const TRAILER_NAME: &str = "TRAILER!!!";
/// Bytes in a `newc` header: the magic and thirteen 8-digit hexadecimal fields.
pub const HEADER_BYTES: usize = 6 + 13 * 8;

/// File type bits of a mode (`S_IFMT`).
pub const S_IFMT: u32 = 0o170_000;
/// A directory.
pub const S_IFDIR: u32 = 0o040_000;
/// A regular file.
pub const S_IFREG: u32 = 0o100_000;
/// A symbolic link.
pub const S_IFLNK: u32 = 0o120_000;
/// A character device.
pub const S_IFCHR: u32 = 0o020_000;

/// The `/init` template: `guests/linux/init.sh`.
pub const INIT_TEMPLATE: &str = include_str!("../../../guests/linux/init.sh");
/// What [`init_script`] replaces with the personality's name.
pub const NAME_PLACEHOLDER: &str = "@JANUS_NAME@";

/// `/dev/console`: character device 5:1, so the kernel can open the console for
/// `/init` before devtmpfs is mounted.
pub const CONSOLE_DEVICE: (u32, u32) = (5, 1);

/// The ELF machine number of AArch64 (`EM_AARCH64`).
const EM_AARCH64: u16 = 183;

/// Why an archive could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpioError {
    /// The path is empty, `.`/`..`-laden, or holds a NUL byte.
    BadPath(String),
    /// The data is too large for the 32-bit size field.
    TooLarge(String),
}

impl fmt::Display for CpioError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpioError::BadPath(path) => write!(formatter, "bad path {path:?} in the archive"),
            CpioError::TooLarge(path) => {
                write!(
                    formatter,
                    "{path}: larger than a cpio entry can hold (4 GiB)"
                )
            }
        }
    }
}

impl std::error::Error for CpioError {}

/// A `newc` cpio archive being written in memory.
///
/// Entries keep the order they are added in, and the kernel creates them in that
/// order: add a directory before what it holds. Every entry belongs to root (uid and
/// gid 0) and has mtime 0, so the same input always gives the same bytes.
#[derive(Debug, Clone)]
pub struct Newc {
    bytes: Vec<u8>,
    next_inode: u32,
}

impl Default for Newc {
    fn default() -> Self {
        Self::new()
    }
}

impl Newc {
    /// An empty archive.
    pub fn new() -> Self {
        Newc {
            bytes: Vec::new(),
            next_inode: 1,
        }
    }

    /// Adds a directory with permission bits `permissions` (such as `0o755`).
    ///
    /// # Errors
    ///
    /// [`CpioError::BadPath`] for an empty path, one with a `.` or `..` component, or
    /// one holding a NUL.
    pub fn directory(&mut self, path: &str, permissions: u32) -> Result<(), CpioError> {
        self.entry(path, S_IFDIR | permissions, 2, (0, 0), &[])
    }

    /// Adds a regular file holding `data`.
    ///
    /// # Errors
    ///
    /// As [`Newc::directory`], and [`CpioError::TooLarge`] for 4 GiB of data or more.
    pub fn file(&mut self, path: &str, permissions: u32, data: &[u8]) -> Result<(), CpioError> {
        self.entry(path, S_IFREG | permissions, 1, (0, 0), data)
    }

    /// Adds a symbolic link to `target` (the link's data is the target path).
    ///
    /// # Errors
    ///
    /// As [`Newc::directory`].
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), CpioError> {
        if target.is_empty() || target.contains('\0') {
            return Err(CpioError::BadPath(target.to_owned()));
        }
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// Adds a character device node `major:minor`.
    ///
    /// # Errors
    ///
    /// As [`Newc::directory`].
    pub fn char_device(
        &mut self,
        path: &str,
        permissions: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        self.entry(path, S_IFCHR | permissions, 1, (major, minor), &[])
    }

    /// Ends the archive with its trailer and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        let fields = Fields {
            nlink: 1,
            ..Fields::default()
        };
        self.push_entry(&fields, TRAILER_NAME, &[]);
        self.bytes
    }

    /// Adds one entry after checking its path (stored without a leading `/`).
    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        nlink: u32,
        (rdev_major, rdev_minor): (u32, u32),
        data: &[u8],
    ) -> Result<(), CpioError> {
        let name = path.trim_start_matches('/');
        let bad_component = name
            .split('/')
            .any(|component| matches!(component, "" | "." | ".."));
        if bad_component || name.contains('\0') || name == TRAILER_NAME {
            return Err(CpioError::BadPath(path.to_owned()));
        }
        let file_size =
            u32::try_from(data.len()).map_err(|_| CpioError::TooLarge(path.to_owned()))?;
        let fields = Fields {
            inode: self.next_inode,
            mode,
            nlink,
            file_size,
            rdev_major,
            rdev_minor,
            ..Fields::default()
        };
        self.next_inode += 1;
        self.push_entry(&fields, name, data);
        Ok(())
    }

    /// Appends header, name, data and their padding.
    fn push_entry(&mut self, fields: &Fields, name: &str, data: &[u8]) {
        // Names are short and NUL-free (checked by the callers), so this fits in u32.
        let name_size = u32::try_from(name.len() + 1).unwrap_or(u32::MAX);
        let values = [
            fields.inode,
            fields.mode,
            fields.uid,
            fields.gid,
            fields.nlink,
            fields.mtime,
            fields.file_size,
            fields.dev_major,
            fields.dev_minor,
            fields.rdev_major,
            fields.rdev_minor,
            name_size,
            0, // check: only the "070702" format has checksums
        ];
        self.bytes.extend_from_slice(NEWC_MAGIC);
        for value in values {
            self.bytes
                .extend_from_slice(format!("{value:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    /// Zero bytes up to the next multiple of 4.
    fn pad(&mut self) {
        self.bytes.resize(align4(self.bytes.len()), 0);
    }
}

/// The numeric fields of a header, less the name size and the checksum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Fields {
    inode: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    file_size: u32,
    dev_major: u32,
    dev_minor: u32,
    rdev_major: u32,
    rdev_minor: u32,
}

/// `offset` rounded up to a multiple of 4.
const fn align4(offset: usize) -> usize {
    (offset + 3) & !3
}

/// One entry read back by [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path as stored (no leading `/`).
    pub name: String,
    /// Inode number.
    pub inode: u32,
    /// File type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Link count.
    pub nlink: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u32,
    /// For a device node, the device it stands for: (major, minor).
    pub rdev: (u32, u32),
    /// File contents, or a symlink's target.
    pub data: Vec<u8>,
}

impl Entry {
    /// The file type bits of [`Entry::mode`].
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }

    /// The permission bits of [`Entry::mode`].
    pub fn permissions(&self) -> u32 {
        self.mode & !S_IFMT
    }
}

/// Why [`parse`] refused an archive; each names the byte offset at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The archive ends inside an entry, or has no trailer.
    Truncated(usize),
    /// A header does not start with [`NEWC_MAGIC`].
    BadMagic(usize),
    /// A header field is not 8 hexadecimal digits.
    BadField(usize),
    /// A name is empty, lacks its NUL or is not UTF-8.
    BadName(usize),
    /// Padding holds something other than zeros.
    BadPadding(usize),
}

impl fmt::Display for ParseError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Truncated(at) => write!(formatter, "archive truncated at byte {at}"),
            ParseError::BadMagic(at) => write!(formatter, "no newc magic at byte {at}"),
            ParseError::BadField(at) => write!(formatter, "bad header field at byte {at}"),
            ParseError::BadName(at) => write!(formatter, "bad name at byte {at}"),
            ParseError::BadPadding(at) => write!(formatter, "non-zero padding at byte {at}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads a `newc` archive up to its trailer: the entries without the trailer.
///
/// Strict: the padding must be zeros and the trailer must be there. Bytes after the
/// trailer (such as padding to a block size) are ignored.
///
/// # Errors
///
/// A [`ParseError`] naming the byte offset at fault.
pub fn parse(archive: &[u8]) -> Result<Vec<Entry>, ParseError> {
    let mut entries = Vec::new();
    let mut offset = 0;
    loop {
        let header = archive
            .get(offset..offset + HEADER_BYTES)
            .ok_or(ParseError::Truncated(offset))?;
        if &header[..6] != NEWC_MAGIC {
            return Err(ParseError::BadMagic(offset));
        }
        let mut values = [0u32; 13];
        for (index, value) in values.iter_mut().enumerate() {
            let at = 6 + index * 8;
            let digits = &header[at..at + 8];
            *value = parse_hex(digits).ok_or(ParseError::BadField(offset + at))?;
        }
        let [inode, mode, uid, gid, nlink, mtime, file_size, _dev_major, _dev_minor, rdev_major, rdev_minor, name_size, _check] =
            values;

        let name_start = offset + HEADER_BYTES;
        let name_size = name_size as usize;
        let name_end = name_start + name_size;
        let name_bytes = archive
            .get(name_start..name_end)
            .ok_or(ParseError::Truncated(name_start))?;
        let Some((&0, name)) = name_bytes.split_last() else {
            return Err(ParseError::BadName(name_start));
        };
        if name.is_empty() || name.contains(&0) {
            return Err(ParseError::BadName(name_start));
        }
        let name = std::str::from_utf8(name).map_err(|_| ParseError::BadName(name_start))?;
        let data_start = check_padding(archive, name_end)?;

        if name == TRAILER_NAME {
            return Ok(entries);
        }

        let data_end = data_start + file_size as usize;
        let data = archive
            .get(data_start..data_end)
            .ok_or(ParseError::Truncated(data_start))?;
        offset = check_padding(archive, data_end)?;
        entries.push(Entry {
            name: name.to_owned(),
            inode,
            mode,
            uid,
            gid,
            nlink,
            mtime,
            rdev: (rdev_major, rdev_minor),
            data: data.to_vec(),
        });
    }
}

/// Checks that the bytes from `from` up to the next multiple of 4 are zeros; returns
/// that multiple.
fn check_padding(archive: &[u8], from: usize) -> Result<usize, ParseError> {
    let to = align4(from);
    let padding = archive.get(from..to).ok_or(ParseError::Truncated(from))?;
    match padding.iter().position(|&byte| byte != 0) {
        Some(index) => Err(ParseError::BadPadding(from + index)),
        None => Ok(to),
    }
}

/// Eight hexadecimal digits (either case) as a number.
fn parse_hex(digits: &[u8]) -> Option<u32> {
    if digits.len() != 8 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Why a personality's initramfs could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitramfsError {
    /// The personality name cannot be a hostname here.
    BadName(String),
    /// The busybox given is not an arm64 ELF executable.
    NotArm64Busybox,
    /// Writing the archive failed.
    Cpio(CpioError),
}

impl fmt::Display for InitramfsError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitramfsError::BadName(name) => write!(
                formatter,
                "name {name:?}: use 1-{NAME_MAX_BYTES} characters from a-z, 0-9 and '-', \
                 not starting with '-'"
            ),
            InitramfsError::NotArm64Busybox => formatter
                .write_str("busybox is not an arm64 ELF executable (want busybox-static:arm64)"),
            InitramfsError::Cpio(error) => error.fmt(formatter),
        }
    }
}

impl std::error::Error for InitramfsError {}

impl From<CpioError> for InitramfsError {
    fn from(error: CpioError) -> Self {
        InitramfsError::Cpio(error)
    }
}

/// Checks that `name` can be a personality's name and hostname: the bundle's rule
/// (1 to [`NAME_MAX_BYTES`] characters from `[a-z0-9-]`) and no leading `-`.
///
/// # Errors
///
/// [`InitramfsError::BadName`] otherwise.
pub fn check_name(name: &str) -> Result<(), InitramfsError> {
    let allowed = name
        .bytes()
        .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'-'));
    if name.is_empty() || name.len() > NAME_MAX_BYTES || !allowed || name.starts_with('-') {
        return Err(InitramfsError::BadName(name.to_owned()));
    }
    Ok(())
}

/// The `/init` script of personality `name`.
///
/// # Errors
///
/// [`InitramfsError::BadName`] when `name` fails [`check_name`] (so it is safe to
/// write into a shell script unquoted).
pub fn init_script(name: &str) -> Result<String, InitramfsError> {
    check_name(name)?;
    Ok(INIT_TEMPLATE.replace(NAME_PLACEHOLDER, name))
}

/// Whether `binary` is a 64-bit little-endian AArch64 ELF file.
fn is_arm64_elf(binary: &[u8]) -> bool {
    binary.len() >= 20
        && binary.starts_with(b"\x7fELF")
        && binary[4] == 2 // ELFCLASS64
        && binary[5] == 1 // ELFDATA2LSB
        && u16::from_le_bytes([binary[18], binary[19]]) == EM_AARCH64
}

/// `/etc/passwd`: root alone, so `id`, `whoami` and the prompt's `~` know root and
/// its home.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n";
/// `/etc/group`: root, and tty (the group devpts gives terminals).
const GROUP: &str = "root:x:0:\ntty:x:5:\n";

/// Where the kernel modules go, flat, as `<name>.ko`.
pub const MODULES_DIR: &str = "lib/modules";
/// The file `/init` reads to load the modules: one file name (in [`MODULES_DIR`]) a
/// line, each after everything it depends on, as `modules.dep` would order them.
pub const LOAD_ORDER_FILE: &str = "lib/modules/load-order";

/// A kernel module to put in the initramfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelModule<'a> {
    /// Its file name in [`MODULES_DIR`], such as `ext4.ko`.
    pub file_name: &'a str,
    /// The `.ko` file.
    pub bytes: &'a [u8],
}

/// The directories of the initramfs, parents first, with their permissions.
const DIRECTORIES: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("data", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("lib", 0o755),
    ("lib/modules", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("run", 0o755),
    ("sbin", 0o755),
    ("shared", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
];

/// The whole initramfs of personality `name`: the [`DIRECTORIES`], `/dev/console`,
/// `/bin/busybox` (the static arm64 `busybox`) with `/bin/sh` linked to it (the
/// rest of the applets are linked by `/init` at boot), `/etc/hostname`,
/// `/etc/passwd`, `/etc/group`, `/init`, and `modules` in [`MODULES_DIR`] with their
/// [`LOAD_ORDER_FILE`] (in the order given, which must be load order).
///
/// # Errors
///
/// [`InitramfsError::BadName`] for a name that fails [`check_name`],
/// [`InitramfsError::NotArm64Busybox`] when `busybox` is not an arm64 ELF file,
/// [`InitramfsError::Cpio`] for a module file name that is not a plain file name.
pub fn build(
    name: &str,
    busybox: &[u8],
    modules: &[KernelModule<'_>],
) -> Result<Vec<u8>, InitramfsError> {
    let init = init_script(name)?;
    if !is_arm64_elf(busybox) {
        return Err(InitramfsError::NotArm64Busybox);
    }
    let mut archive = Newc::new();
    for &(path, permissions) in DIRECTORIES {
        archive.directory(path, permissions)?;
    }
    let (major, minor) = CONSOLE_DEVICE;
    archive.char_device("dev/console", 0o600, major, minor)?;
    archive.file("bin/busybox", 0o755, busybox)?;
    archive.symlink("bin/sh", "busybox")?;
    archive.file("etc/hostname", 0o644, format!("{name}\n").as_bytes())?;
    archive.file("etc/passwd", 0o644, PASSWD.as_bytes())?;
    archive.file("etc/group", 0o644, GROUP.as_bytes())?;
    archive.file("init", 0o755, init.as_bytes())?;
    let mut load_order = String::new();
    for module in modules {
        if module.file_name.contains('/') || !module.file_name.ends_with(".ko") {
            return Err(CpioError::BadPath(module.file_name.to_owned()).into());
        }
        archive.file(
            &format!("{MODULES_DIR}/{}", module.file_name),
            0o644,
            module.bytes,
        )?;
        load_order.push_str(module.file_name);
        load_order.push('\n');
    }
    archive.file(LOAD_ORDER_FILE, 0o644, load_order.as_bytes())?;
    Ok(archive.finish())
}

#[cfg(test)]
mod tests;

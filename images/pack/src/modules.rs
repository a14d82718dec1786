//! The kernel modules an initramfs needs, with everything they depend on, in load
//! order, read from an unpacked Debian kernel package's `lib/modules/<VERSION>/`.
//!
//! The package ships no `modules.dep` (depmod runs when it is installed, and here it is
//! only unpacked), so the dependencies come from each module's own `.modinfo` ELF
//! section: `depends=a,b` (modules whose symbols it uses) and `softdep=pre: x y`
//! (modules it wants loaded first without linking to them, such as ext4's
//! `crypto-crc32c`, which names an alias rather than a module). What the kernel has
//! built in (`modules.builtin`, and the aliases in `modules.builtin.modinfo`) needs no
//! loading. Module names treat `-` and `_` alike, as the kernel does.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// What a Janus Linux personality loads to mount its volume and the shared folder:
/// the virtio-mmio transport, the virtio block driver and ext4 for `/data`, and the
/// 9P client over virtio for `/shared` (`9p` needs `9pnet`, `fscache` and `netfs`;
/// `fscache` needs `netfs`; `9pnet_virtio` needs `9pnet`). The rest comes as
/// dependencies. Listed in the order the research booted them (DATA-PATH-RESEARCH
/// 2.1), which is also an order the resolver keeps, each after what it needs.
pub const DEFAULT_MODULES: [&str; 8] = [
    "virtio_mmio",
    "virtio_blk",
    "ext4",
    "netfs",
    "fscache",
    "9pnet",
    "9pnet_virtio",
    "9p",
];

/// `EM_AARCH64`.
const EM_AARCH64: u16 = 183;
/// Bytes of an ELF64 file header.
const ELF64_HEADER_BYTES: usize = 64;
/// Bytes of an ELF64 section header.
const ELF64_SECTION_HEADER_BYTES: usize = 64;
/// `SHN_XINDEX`: the section name table's index does not fit the header field.
const SHN_XINDEX: u16 = 0xffff;
/// Most bytes a `.modinfo` section or the section-name table may have: real ones are
/// a few hundred bytes and a few KiB; more is a broken file, not a bigger module.
const SECTION_MAX_BYTES: u64 = 1 << 20;
/// Endings of compressed modules, which this reader cannot unpack.
const COMPRESSED_ENDINGS: [&str; 3] = [".ko.xz", ".ko.zst", ".ko.gz"];

/// Why the modules could not be found or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleError {
    /// A file could not be read.
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A `.ko` file is not a 64-bit little-endian AArch64 ELF with a `.modinfo`.
    BadElf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No module of that name (nor a built-in one).
    NotFound {
        /// The module.
        name: String,
        /// Who needs it: `None` when it was asked for directly.
        needed_by: Option<String>,
    },
    /// The module exists only compressed.
    Compressed {
        /// The module.
        name: String,
        /// Its file.
        path: PathBuf,
    },
    /// Modules depend on each other in a circle.
    Cycle(Vec<String>),
}

impl fmt::Display for ModuleError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleError::Io { path, reason } => write!(formatter, "{}: {reason}", path.display()),
            ModuleError::BadElf { path, reason } => {
                write!(
                    formatter,
                    "{}: not an arm64 kernel module: {reason}",
                    path.display()
                )
            }
            ModuleError::NotFound { name, needed_by } => {
                write!(formatter, "kernel module {name} not found")?;
                if let Some(by) = needed_by {
                    write!(formatter, " (needed by {by})")?;
                }
                formatter.write_str(": neither a .ko file nor in modules.builtin")
            }
            ModuleError::Compressed { name, path } => write!(
                formatter,
                "kernel module {name} is compressed ({}): janus-initramfs reads only \
                 uncompressed .ko files",
                path.display()
            ),
            ModuleError::Cycle(chain) => {
                write!(
                    formatter,
                    "kernel modules depend on each other in a circle: {}",
                    chain.join(" -> ")
                )
            }
        }
    }
}

impl std::error::Error for ModuleError {}

/// An I/O error about `path`.
fn io_error(path: &Path, error: impl fmt::Display) -> ModuleError {
    ModuleError::Io {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// A module's name as the kernel compares them: `-` and `_` alike.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The `key=value` strings of the `.modinfo` section of the ELF64 module read by
/// `reader`, which reads only the headers and that section.
///
/// # Errors
///
/// The reason, as text, when the file is not a 64-bit little-endian AArch64 ELF, its
/// section headers lie outside it, or it has no `.modinfo`; or a read fails.
pub fn read_modinfo(reader: &mut (impl Read + Seek)) -> Result<Vec<String>, String> {
    let header = read_exact_at(reader, 0, ELF64_HEADER_BYTES)?;
    if !header.starts_with(b"\x7fELF") {
        return Err("no ELF magic".to_owned());
    }
    if header[4] != 2 || header[5] != 1 {
        return Err("not a 64-bit little-endian ELF".to_owned());
    }
    if le_u16(&header, 18) != EM_AARCH64 {
        return Err(format!("machine {} is not AArch64", le_u16(&header, 18)));
    }
    let section_table = le_u64(&header, 0x28);
    let entry_size = usize::from(le_u16(&header, 0x3a));
    let count = le_u16(&header, 0x3c);
    let names_index = le_u16(&header, 0x3e);
    if entry_size != ELF64_SECTION_HEADER_BYTES {
        return Err(format!("section headers are {entry_size} bytes, not 64"));
    }
    if count == 0 || names_index == SHN_XINDEX || names_index >= count {
        return Err("no usable section table".to_owned());
    }
    let table_bytes = usize::from(count) * ELF64_SECTION_HEADER_BYTES;
    let table = read_exact_at(reader, section_table, table_bytes)?;
    let section = |index: usize| -> (u32, u64, u64) {
        let at = index * ELF64_SECTION_HEADER_BYTES;
        (
            le_u32(&table, at),
            le_u64(&table, at + 24),
            le_u64(&table, at + 32),
        )
    };
    let (_, names_offset, names_size) = section(usize::from(names_index));
    let names = read_section(reader, names_offset, names_size)?;
    let modinfo = (0..usize::from(count)).find(|&index| {
        let name_at = usize::try_from(section(index).0).unwrap_or(usize::MAX);
        names
            .get(name_at..)
            .is_some_and(|rest| rest.starts_with(b".modinfo\0"))
    });
    let Some(index) = modinfo else {
        return Err("no .modinfo section".to_owned());
    };
    let (_, offset, size) = section(index);
    let bytes = read_section(reader, offset, size)?;
    Ok(bytes
        .split(|&byte| byte == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .collect())
}

/// Reads a section of `size` bytes at `offset`, refusing absurd sizes.
fn read_section(
    reader: &mut (impl Read + Seek),
    offset: u64,
    size: u64,
) -> Result<Vec<u8>, String> {
    if size > SECTION_MAX_BYTES {
        return Err(format!("a section claims {size} bytes"));
    }
    // At most SECTION_MAX_BYTES, so it fits a usize.
    read_exact_at(reader, offset, size as usize)
}

/// Reads exactly `length` bytes at `offset`.
fn read_exact_at(
    reader: &mut (impl Read + Seek),
    offset: u64,
    length: usize,
) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0; length];
    reader
        .seek(SeekFrom::Start(offset))
        .and_then(|_| reader.read_exact(&mut bytes))
        .map_err(|error| match error.kind() {
            io::ErrorKind::UnexpectedEof => {
                format!("truncated: {length} bytes at {offset} run past the end")
            }
            _ => error.to_string(),
        })?;
    Ok(bytes)
}

fn le_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// What one module's `.modinfo` says about loading it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// `depends=`: modules that must be loaded first.
    pub depends: Vec<String>,
    /// `softdep=pre:`: modules or aliases wanted loaded first.
    pub soft_pre: Vec<String>,
    /// `alias=` entries.
    pub aliases: Vec<String>,
}

impl Dependencies {
    /// Picks the entries that matter out of `.modinfo` strings.
    pub fn from_modinfo(entries: &[String]) -> Self {
        let mut dependencies = Dependencies::default();
        for entry in entries {
            let Some((key, value)) = entry.split_once('=') else {
                continue;
            };
            match key {
                "depends" => dependencies.depends.extend(
                    value
                        .split(',')
                        .filter(|name| !name.is_empty())
                        .map(normalize),
                ),
                "softdep" => dependencies.soft_pre.extend(soft_pre(value)),
                "alias" => dependencies.aliases.push(normalize(value)),
                _ => {}
            }
        }
        dependencies
    }
}

/// The names after `pre:` in a softdep value (`pre: a b post: c`).
fn soft_pre(value: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_pre = false;
    for word in value.split_whitespace() {
        match word {
            "pre:" => in_pre = true,
            "post:" => in_pre = false,
            name if in_pre => names.push(normalize(name)),
            _ => {}
        }
    }
    names
}

/// A module to put in the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Its (normalized) name.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
}

impl Module {
    /// The name its file gets in the initramfs: `<name>.ko`.
    pub fn file_name(&self) -> String {
        format!("{}.ko", self.name)
    }
}

/// The modules of one kernel: where each `.ko` is and what is built in.
#[derive(Debug, Clone, Default)]
pub struct ModuleTree {
    files: HashMap<String, PathBuf>,
    compressed: HashMap<String, PathBuf>,
    builtin: HashSet<String>,
    builtin_aliases: HashSet<String>,
}

impl ModuleTree {
    /// Indexes `dir`, a kernel's `lib/modules/<VERSION>/`: every `.ko` under it by
    /// name, and `modules.builtin` and `modules.builtin.modinfo` when present.
    ///
    /// # Errors
    ///
    /// [`ModuleError::Io`] when `dir` or a folder in it cannot be listed.
    pub fn open(dir: &Path) -> Result<Self, ModuleError> {
        let mut tree = ModuleTree::default();
        tree.index(dir)?;
        if let Ok(text) = fs::read_to_string(dir.join("modules.builtin")) {
            for line in text.lines() {
                let file = line.rsplit('/').next().unwrap_or(line);
                if let Some(name) = file.strip_suffix(".ko") {
                    tree.builtin.insert(normalize(name));
                }
            }
        }
        if let Ok(bytes) = fs::read(dir.join("modules.builtin.modinfo")) {
            for entry in bytes.split(|&byte| byte == 0) {
                let entry = String::from_utf8_lossy(entry);
                if let Some((_, alias)) = entry.split_once(".alias=") {
                    tree.builtin_aliases.insert(normalize(alias));
                }
            }
        }
        Ok(tree)
    }

    /// Adds every module file under `dir` (recursively) to the index.
    fn index(&mut self, dir: &Path) -> Result<(), ModuleError> {
        let entries = fs::read_dir(dir).map_err(|error| io_error(dir, error))?;
        for entry in entries {
            let entry = entry.map_err(|error| io_error(dir, error))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|error| io_error(&path, error))?;
            if kind.is_dir() {
                self.index(&path)?;
                continue;
            }
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if let Some(name) = file_name.strip_suffix(".ko") {
                self.files.insert(normalize(name), path);
            } else if let Some(ending) = COMPRESSED_ENDINGS.iter().find(|e| file_name.ends_with(*e))
            {
                let name = &file_name[..file_name.len() - ending.len()];
                self.compressed.insert(normalize(name), path);
            }
        }
        Ok(())
    }

    /// Whether the kernel has module `name` (or something with that alias) built in.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(name) || self.builtin_aliases.contains(name)
    }

    /// The modules to load, in order, so that `wanted` can be loaded: each one's
    /// `depends` and `softdep` `pre:` modules come before it, built-in ones are left
    /// out, and a module appears once. A soft dependency may name an alias, which is
    /// looked up (exactly, no wildcards) in every module's `.modinfo`; one that
    /// nothing provides is returned in the second list, as modprobe would skip it.
    ///
    /// # Errors
    ///
    /// [`ModuleError::NotFound`] for a wanted module or a `depends` entry that is
    /// neither a file nor built in, [`ModuleError::Compressed`] for one that exists
    /// only compressed, [`ModuleError::BadElf`] or [`ModuleError::Io`] for a file that
    /// cannot be read, [`ModuleError::Cycle`] for circular dependencies.
    pub fn resolve(&self, wanted: &[&str]) -> Result<(Vec<Module>, Vec<String>), ModuleError> {
        let mut resolver = Resolver {
            tree: self,
            order: Vec::new(),
            done: HashSet::new(),
            path: Vec::new(),
            aliases: None,
            missing_soft: Vec::new(),
        };
        for name in wanted {
            resolver.visit(&normalize(name), None)?;
        }
        Ok((resolver.order, resolver.missing_soft))
    }

    /// Reads what the module file at `path` depends on.
    fn dependencies(&self, path: &Path) -> Result<Dependencies, ModuleError> {
        let mut file = File::open(path).map_err(|error| io_error(path, error))?;
        let entries = read_modinfo(&mut file).map_err(|reason| ModuleError::BadElf {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(Dependencies::from_modinfo(&entries))
    }
}

/// The state of one [`ModuleTree::resolve`].
struct Resolver<'a> {
    tree: &'a ModuleTree,
    order: Vec<Module>,
    done: HashSet<String>,
    /// The modules being visited, outermost first, to catch circles.
    path: Vec<String>,
    /// Alias -> module name, built on first need (it reads every module's headers).
    aliases: Option<HashMap<String, String>>,
    missing_soft: Vec<String>,
}

impl Resolver<'_> {
    /// Puts `name` and what it needs into the order.
    fn visit(&mut self, name: &str, needed_by: Option<&str>) -> Result<(), ModuleError> {
        if self.done.contains(name) || self.tree.is_builtin(name) {
            return Ok(());
        }
        if let Some(start) = self.path.iter().position(|open| open == name) {
            let mut chain = self.path[start..].to_vec();
            chain.push(name.to_owned());
            return Err(ModuleError::Cycle(chain));
        }
        let Some(path) = self.tree.files.get(name) else {
            if let Some(path) = self.tree.compressed.get(name) {
                return Err(ModuleError::Compressed {
                    name: name.to_owned(),
                    path: path.clone(),
                });
            }
            return Err(ModuleError::NotFound {
                name: name.to_owned(),
                needed_by: needed_by.map(str::to_owned),
            });
        };
        let dependencies = self.tree.dependencies(path)?;
        self.path.push(name.to_owned());
        for soft in &dependencies.soft_pre {
            match self.provider(soft)? {
                Some(module) => self.visit(&module, Some(name))?,
                None if self.tree.is_builtin(soft) => {}
                None => self.missing_soft.push(soft.clone()),
            }
        }
        for dependency in &dependencies.depends {
            self.visit(dependency, Some(name))?;
        }
        self.path.pop();
        self.done.insert(name.to_owned());
        self.order.push(Module {
            name: name.to_owned(),
            path: path.clone(),
        });
        Ok(())
    }

    /// The module that a soft dependency `name` means: a module of that name, or the
    /// first (by name) whose `.modinfo` has `alias=name`.
    fn provider(&mut self, name: &str) -> Result<Option<String>, ModuleError> {
        if self.tree.files.contains_key(name) || self.tree.compressed.contains_key(name) {
            return Ok(Some(name.to_owned()));
        }
        if self.tree.is_builtin(name) {
            return Ok(None);
        }
        if self.aliases.is_none() {
            let mut aliases = HashMap::new();
            let mut names: Vec<&String> = self.tree.files.keys().collect();
            names.sort();
            for module in names {
                let dependencies = self.tree.dependencies(&self.tree.files[module])?;
                for alias in dependencies.aliases {
                    aliases.entry(alias).or_insert_with(|| module.clone());
                }
            }
            self.aliases = Some(aliases);
        }
        Ok(self
            .aliases
            .as_ref()
            .and_then(|aliases| aliases.get(name).cloned()))
    }
}

#[cfg(test)]
mod tests;

//! Reads Janus' shared store out of a disk image, for `janus-store` and the QEMU
//! tests: the `shared` partition found through the GPT (or given by offset and
//! size), mounted with the store's own code, read-only.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use hyp::channel::fs::{Ino, Kind};
use hyp::channel::store::disk::{BlockDisk, DiskError, SECTOR_BYTES};
use hyp::channel::store::{Limits, NodeInfo, Store, StoreError, ROOT};

/// One partition of an image file as a block disk. Writes are refused unless it
/// was opened for writing (tests make images with it).
pub struct FileDisk {
    file: File,
    offset: u64,
    sectors: u64,
    writable: bool,
}

impl FileDisk {
    /// The `sectors` sectors at byte `offset` of `file`.
    pub fn new(file: File, offset: u64, sectors: u64, writable: bool) -> Self {
        FileDisk {
            file,
            offset,
            sectors,
            writable,
        }
    }

    fn at(&self, sector: u64, len: usize) -> Result<u64, DiskError> {
        let count = (len / SECTOR_BYTES) as u64;
        if !len.is_multiple_of(SECTOR_BYTES)
            || sector
                .checked_add(count)
                .is_none_or(|end| end > self.sectors)
        {
            return Err(DiskError);
        }
        Ok(self.offset + sector * SECTOR_BYTES as u64)
    }
}

impl BlockDisk for FileDisk {
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let at = self.at(sector, buf.len())?;
        self.file.read_exact_at(buf, at).map_err(|_| DiskError)
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError> {
        if !self.writable {
            return Err(DiskError);
        }
        let at = self.at(sector, data.len())?;
        self.file.write_all_at(data, at).map_err(|_| DiskError)
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        if !self.writable {
            return Err(DiskError);
        }
        self.file.sync_data().map_err(|_| DiskError)
    }
}

/// Limits for reading: far above what Janus allows, so that any store it wrote
/// mounts here.
pub const READ_LIMITS: Limits = Limits {
    max_nodes: 1 << 20,
    max_extents: 1 << 22,
    max_file_bytes: 1 << 40,
};

/// Where the store lies in an image: bytes from its start, and sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// First byte.
    pub offset: u64,
    /// Length in 512-byte sectors.
    pub sectors: u64,
}

/// The `shared` partition of the GPT disk `image`; a file without a GPT is taken
/// as the partition itself.
///
/// # Errors
///
/// The message, when the image cannot be read or has a GPT without `shared`.
pub fn find_shared(image: &Path) -> Result<Place, String> {
    let length = std::fs::metadata(image)
        .map_err(|error| format!("{}: {error}", image.display()))?
        .len();
    match crate::disk::read_layout(image) {
        Ok(entries) => entries
            .iter()
            .find(|entry| entry.name == "shared")
            .map(|entry| Place {
                offset: entry.offset_bytes(),
                sectors: entry.sectors,
            })
            .ok_or_else(|| format!("{}: no `shared` partition", image.display())),
        Err(_) => Ok(Place {
            offset: 0,
            sectors: length / SECTOR_BYTES as u64,
        }),
    }
}

/// Mounts the store at `place` in `image`, read-only.
///
/// # Errors
///
/// The message, when the file cannot be opened or the store does not mount.
pub fn open(image: &Path, place: Place) -> Result<Store<FileDisk>, String> {
    let file = File::open(image).map_err(|error| format!("{}: {error}", image.display()))?;
    Store::mount(
        FileDisk::new(file, place.offset, place.sectors, false),
        READ_LIMITS,
    )
    .map_err(|error| format!("{}: the store does not mount: {error:?}", image.display()))
}

/// The object at `path` (`/`-separated, from the root).
///
/// # Errors
///
/// The message, when a component is missing.
pub fn resolve<D: BlockDisk>(store: &Store<D>, path: &str) -> Result<Ino, String> {
    let mut ino = ROOT;
    for part in path.split('/').filter(|part| !part.is_empty()) {
        ino = store
            .lookup(ino, part)
            .map_err(|error| format!("{path}: {error:?}"))?;
    }
    Ok(ino)
}

/// One line of `ls`: kind, owner, released flag, size, path.
pub fn ls_line(info: &NodeInfo, path: &str) -> String {
    let kind = match info.attr.kind {
        Kind::File => 'f',
        Kind::Dir => 'd',
    };
    format!(
        "{kind} owner={} released={} size={} {path}",
        info.owner,
        u8::from(info.released),
        info.attr.size
    )
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The entries of directory `path` (all of the subtree when `recursive`), as
/// `(path, info)` in readdir order, depth first.
///
/// # Errors
///
/// The message, when the path is missing or a read fails.
pub fn list<D: BlockDisk>(
    store: &Store<D>,
    path: &str,
    recursive: bool,
) -> Result<Vec<(String, NodeInfo)>, String> {
    let start = resolve(store, path)?;
    let info = store.info(start).map_err(|e| format!("{path}: {e:?}"))?;
    if info.attr.kind == Kind::File {
        return Ok(vec![(path.to_owned(), info)]);
    }
    let mut out = Vec::new();
    let top = if path.is_empty() { "/" } else { path };
    walk(store, start, top, recursive, &mut out)?;
    Ok(out)
}

/// Appends the entries of `dir` (at `dir_path`) to `out`, each directory's
/// subtree right after it when `recursive`.
fn walk<D: BlockDisk>(
    store: &Store<D>,
    dir: Ino,
    dir_path: &str,
    recursive: bool,
    out: &mut Vec<(String, NodeInfo)>,
) -> Result<(), String> {
    let mut children = Vec::new();
    store
        .readdir(dir, 0, &mut |entry| {
            children.push((entry.ino, entry.name.to_owned()));
            true
        })
        .map_err(|e| format!("{dir_path}: {e:?}"))?;
    for (ino, name) in children {
        let info = store.info(ino).map_err(|e| format!("{name}: {e:?}"))?;
        let child = join(dir_path, &name);
        out.push((child.clone(), info));
        if recursive && info.attr.kind == Kind::Dir {
            walk(store, ino, &child, recursive, out)?;
        }
    }
    Ok(())
}

/// Reads all of file `ino`.
///
/// # Errors
///
/// The store's error.
pub fn read_all<D: BlockDisk>(store: &mut Store<D>, ino: Ino) -> Result<Vec<u8>, StoreError> {
    let size = store.info(ino)?.attr.size;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    while (out.len() as u64) < size {
        let n = store.read(ino, out.len() as u64, &mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}

/// What `check` found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files and directories (the root not counted).
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Bytes in files.
    pub bytes: u64,
    /// The commit mounted.
    pub seq: u64,
    /// Free blocks.
    pub free_blocks: u64,
}

/// Checks a mounted store: mounting already verified every superblock and
/// metadata checksum, the tree's shape and that no blocks overlap; this reads
/// every file to the end too.
///
/// # Errors
///
/// The message naming the first file that fails to read.
pub fn check<D: BlockDisk>(store: &mut Store<D>) -> Result<Summary, String> {
    let mut summary = Summary {
        seq: store.seq(),
        free_blocks: store.statfs().blocks_free,
        ..Summary::default()
    };
    for (path, info) in list(store, "/", true)? {
        match info.attr.kind {
            Kind::Dir => summary.dirs += 1,
            Kind::File => {
                summary.files += 1;
                let data = read_all(store, info.attr.ino).map_err(|e| format!("{path}: {e:?}"))?;
                if data.len() as u64 != info.attr.size {
                    return Err(format!(
                        "{path}: read {} of {} bytes",
                        data.len(),
                        info.attr.size
                    ));
                }
                summary.bytes += info.attr.size;
            }
        }
    }
    Ok(summary)
}

//! The shared folder read from a disk image on the host, with Janus' own
//! store and audit-log code: what the QEMU tests assert the disk holds.

use std::path::{Path, PathBuf};

use janus_pack::store_image::{self, FileDisk};

use hyp::channel::audit::export::render_line;
use hyp::channel::audit::{AuditLog, Labels, Record};
use hyp::channel::fs::Who;
use hyp::channel::store::disk::{BlockDisk, DiskError, SECTOR_BYTES};
use hyp::channel::store::Store as Inner;

/// The store on the `shared` partition of a disk image, mounted read-only.
pub struct Store {
    image: PathBuf,
    store: Inner<FileDisk>,
}

impl Store {
    /// Mounts the store of `image`; panics (a test failure) when it does not
    /// mount.
    pub fn read(image: &Path) -> Store {
        let place = store_image::find_shared(image).expect("the shared partition");
        let store = store_image::open(image, place).expect("the store mounts");
        Store {
            image: image.to_path_buf(),
            store,
        }
    }

    /// Checks every checksum and the tree; panics when something is wrong.
    pub fn check(&mut self) {
        if let Err(why) = store_image::check(&mut self.store) {
            panic!("{}: {why}", self.image.display());
        }
    }

    /// The contents of the file at `path`, if there is one.
    pub fn cat_opt(&mut self, path: &str) -> Option<Vec<u8>> {
        let ino = store_image::resolve(&self.store, path).ok()?;
        store_image::read_all(&mut self.store, ino).ok()
    }

    /// The contents of the file at `path`; panics when there is none.
    pub fn cat(&mut self, path: &str) -> Vec<u8> {
        self.cat_opt(path)
            .unwrap_or_else(|| panic!("{path}: no such file in the store"))
    }

    /// The size of the object at `path`.
    pub fn size(&self, path: &str) -> Option<u64> {
        let ino = store_image::resolve(&self.store, path).ok()?;
        Some(self.store.info(ino).ok()?.attr.size)
    }

    /// The personality that created the object at `path`.
    pub fn owner(&self, path: &str) -> Option<Who> {
        let ino = store_image::resolve(&self.store, path).ok()?;
        Some(self.store.info(ino).ok()?.owner)
    }

    /// Whether the object at `path` is released.
    pub fn released(&self, path: &str) -> Option<bool> {
        let ino = store_image::resolve(&self.store, path).ok()?;
        Some(self.store.info(ino).ok()?.released)
    }
}

/// A partition copied into RAM (opening the log may tidy a torn tail: the
/// image on the host is never written).
pub struct RamPartition(pub Vec<u8>);

impl RamPartition {
    fn range(&self, sector: u64, len: usize) -> Result<std::ops::Range<usize>, DiskError> {
        let start = usize::try_from(sector).map_err(|_| DiskError)? * SECTOR_BYTES;
        let end = start.checked_add(len).ok_or(DiskError)?;
        (end <= self.0.len()).then_some(start..end).ok_or(DiskError)
    }
}

impl BlockDisk for RamPartition {
    fn sectors(&self) -> u64 {
        (self.0.len() / SECTOR_BYTES) as u64
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let range = self.range(sector, buf.len())?;
        buf.copy_from_slice(&self.0[range]);
        Ok(())
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError> {
        let range = self.range(sector, data.len())?;
        self.0[range].copy_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
}

/// The personality names of the default configuration, for rendering.
const NAMES: [&str; 2] = ["personal", "work"];

/// Every record of the audit log on `image`'s `janus` partition, with the
/// bytes they take on the disk (each record has whole sectors of its own).
pub fn audit_records(image: &Path) -> (Vec<Record>, u64) {
    let range = crate::disk::partition(image, "janus");
    let bytes = std::fs::read(image).expect("read the disk image");
    let part = bytes[range.start as usize..range.end as usize].to_vec();
    let labels = Labels {
        names: NAMES.iter().map(|name| String::from(*name)).collect(),
        manager: Some(1),
    };
    let mut log = AuditLog::open(RamPartition(part), labels).expect("the audit log opens");
    let records = log.all_records().expect("the audit log reads");
    let used = records
        .iter()
        .map(|record| (record.sectors() * SECTOR_BYTES) as u64)
        .sum();
    (records, used)
}

/// The audit log of `image`, one rendered line per record, unfiltered.
pub fn audit_lines(image: &Path) -> Vec<String> {
    let names: Vec<String> = NAMES.iter().map(|name| String::from(*name)).collect();
    audit_records(image)
        .0
        .iter()
        .map(|record| {
            let mut line = String::new();
            render_line(record, &names, &mut line);
            line
        })
        .collect()
}

/// Bytes the audit log's records take on `image`'s disk.
pub fn audit_bytes(image: &Path) -> u64 {
    audit_records(image).1
}

/// Mounts a store from the bytes of a `shared` partition, and checks it.
///
/// # Errors
/// `Err(None)` for a blank (never formatted) partition, `Err(Some(why))` for
/// one that does not mount or fails the check.
pub fn mount_and_check(bytes: Vec<u8>) -> Result<Inner<RamPartition>, Option<String>> {
    match Inner::mount(RamPartition(bytes), store_image::READ_LIMITS) {
        Ok(mut store) => match store_image::check(&mut store) {
            Ok(_) => Ok(store),
            Err(why) => Err(Some(why)),
        },
        Err(hyp::channel::store::StoreError::Blank) => Err(None),
        Err(why) => Err(Some(format!("{why:?}"))),
    }
}

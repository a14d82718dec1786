//! The shared folder read from a disk image on the host, with Janus' own
//! store and audit-log code: what the QEMU tests assert the disk holds.

use std::path::{Path, PathBuf};

use janus_pack::store_image::{self, FileDisk};

use hyp::channel::fs::Who;
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

//! Host tests of `modules.rs`, on small synthetic ELF files.

use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A minimal ELF64 little-endian AArch64 relocatable file with a null section, a
/// section-name table, one unrelated section and a `.modinfo` holding `entries`.
fn elf(entries: &[&str]) -> Vec<u8> {
    let names = b"\0.shstrtab\0.text\0.modinfo\0";
    let mut modinfo = Vec::new();
    for entry in entries {
        modinfo.extend_from_slice(entry.as_bytes());
        modinfo.push(0);
    }
    let text = b"\x1f\x20\x03\xd5"; // nop
    let names_at = 64u64;
    let text_at = names_at + names.len() as u64;
    let modinfo_at = text_at + text.len() as u64;
    let table_at = (modinfo_at + modinfo.len() as u64).div_ceil(8) * 8;

    let mut bytes = vec![0u8; 64];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2; // ELFCLASS64
    bytes[5] = 1; // ELFDATA2LSB
    bytes[6] = 1; // EV_CURRENT
    bytes[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
    bytes[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
    bytes[0x28..0x30].copy_from_slice(&table_at.to_le_bytes());
    bytes[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    bytes[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    bytes[0x3c..0x3e].copy_from_slice(&4u16.to_le_bytes()); // e_shnum
    bytes[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes()); // e_shstrndx
    bytes.extend_from_slice(names);
    bytes.extend_from_slice(text);
    bytes.extend_from_slice(&modinfo);
    bytes.resize(table_at as usize, 0);
    let section = |name: u32, kind: u32, offset: u64, size: u64| {
        let mut header = vec![0u8; 64];
        header[0..4].copy_from_slice(&name.to_le_bytes());
        header[4..8].copy_from_slice(&kind.to_le_bytes());
        header[24..32].copy_from_slice(&offset.to_le_bytes());
        header[32..40].copy_from_slice(&size.to_le_bytes());
        header
    };
    bytes.extend(section(0, 0, 0, 0));
    bytes.extend(section(1, 3, names_at, names.len() as u64)); // SHT_STRTAB
    bytes.extend(section(11, 1, text_at, text.len() as u64)); // SHT_PROGBITS
    bytes.extend(section(17, 1, modinfo_at, modinfo.len() as u64));
    // Debian appends a signature after the ELF; the reader must not mind.
    bytes.extend_from_slice(b"~Module signature appended~\n");
    bytes
}

fn modinfo(bytes: &[u8]) -> Result<Vec<String>, String> {
    read_modinfo(&mut Cursor::new(bytes))
}

#[test]
fn modinfo_strings_are_read_from_the_section() {
    let bytes = elf(&[
        "softdep=pre: crypto-crc32c",
        "depends=jbd2,mbcache,crc16",
        "name=ext4",
    ]);
    assert_eq!(
        modinfo(&bytes).unwrap(),
        [
            "softdep=pre: crypto-crc32c",
            "depends=jbd2,mbcache,crc16",
            "name=ext4"
        ]
    );
    assert_eq!(modinfo(&elf(&[])).unwrap(), Vec::<String>::new());
}

#[test]
fn files_that_are_not_arm64_modules_are_refused() {
    let good = elf(&["name=x"]);
    let mut bad = good.clone();
    bad[0] = 0;
    assert_eq!(modinfo(&bad).unwrap_err(), "no ELF magic");
    let mut bad = good.clone();
    bad[4] = 1;
    assert!(modinfo(&bad).unwrap_err().contains("64-bit"));
    let mut bad = good.clone();
    bad[18..20].copy_from_slice(&62u16.to_le_bytes());
    assert!(modinfo(&bad).unwrap_err().contains("not AArch64"));
    let mut bad = good.clone();
    bad[0x3e..0x40].copy_from_slice(&9u16.to_le_bytes()); // names index past the count
    assert!(modinfo(&bad).unwrap_err().contains("section table"));
    let mut bad = good.clone();
    bad[0x3a..0x3c].copy_from_slice(&40u16.to_le_bytes());
    assert!(modinfo(&bad).unwrap_err().contains("not 64"));
    assert!(modinfo(&good[..40]).unwrap_err().contains("truncated"));
    // Section table past the end of the file.
    let mut bad = good.clone();
    bad[0x28..0x30].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(modinfo(&bad).unwrap_err().contains("truncated"));
}

#[test]
fn a_module_without_modinfo_or_with_a_huge_one_is_refused() {
    let mut bytes = elf(&["name=x"]);
    let at = bytes.windows(9).position(|w| w == b".modinfo\0").unwrap();
    bytes[at + 1] = b'M';
    assert_eq!(modinfo(&bytes).unwrap_err(), "no .modinfo section");

    let bytes = elf(&["name=x"]);
    let table = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
    let mut huge = bytes.clone();
    let size_at = table + 3 * 64 + 32;
    huge[size_at..size_at + 8].copy_from_slice(&(1u64 << 30).to_le_bytes());
    assert!(modinfo(&huge).unwrap_err().contains("claims"));
}

#[test]
fn dependencies_come_from_depends_softdep_pre_and_alias() {
    let entries: Vec<String> = [
        "alias=crypto-crc32c",
        "depends=jbd2,mbcache,crc16",
        "softdep=pre: crypto-crc32c other-thing post: later",
        "license=GPL",
        "depends=",
    ]
    .map(str::to_owned)
    .to_vec();
    let dependencies = Dependencies::from_modinfo(&entries);
    assert_eq!(dependencies.depends, ["jbd2", "mbcache", "crc16"]);
    assert_eq!(dependencies.soft_pre, ["crypto_crc32c", "other_thing"]);
    assert_eq!(dependencies.aliases, ["crypto_crc32c"]);
}

/// A fake `lib/modules/<VERSION>/` folder, removed on drop.
struct Tree {
    dir: PathBuf,
}

impl Tree {
    fn new(test: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "janus-modules-{}-{test}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        Tree { dir }
    }

    fn module(&self, path: &str, entries: &[&str]) -> &Self {
        let path = self.dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, elf(entries)).unwrap();
        self
    }

    fn file(&self, path: &str, bytes: &[u8]) -> &Self {
        fs::write(self.dir.join(path), bytes).unwrap();
        self
    }

    fn resolve(&self, wanted: &[&str]) -> Result<(Vec<String>, Vec<String>), ModuleError> {
        let tree = ModuleTree::open(&self.dir)?;
        let (modules, missing) = tree.resolve(wanted)?;
        Ok((modules.into_iter().map(|m| m.name).collect(), missing))
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The shape of Debian 6.1's arm64 modules for a virtio disk with ext4.
fn debian_like(test: &str) -> Tree {
    let tree = Tree::new(test);
    tree.module(
        "kernel/drivers/virtio/virtio_mmio.ko",
        &["depends=", "name=virtio_mmio"],
    )
    .module(
        "kernel/drivers/block/virtio_blk.ko",
        &["depends=", "name=virtio_blk"],
    )
    .module(
        "kernel/fs/ext4/ext4.ko",
        &[
            "softdep=pre: crypto-crc32c",
            "depends=jbd2,mbcache,crc16",
            "name=ext4",
        ],
    )
    .module(
        "kernel/fs/jbd2/jbd2.ko",
        &["softdep=pre: crypto-crc32c", "depends=", "name=jbd2"],
    )
    .module("kernel/fs/mbcache.ko", &["depends=", "name=mbcache"])
    .module("kernel/lib/crc16.ko", &["depends=", "name=crc16"])
    .module(
        "kernel/crypto/crc32c_generic.ko",
        &[
            "alias=crypto-crc32c-generic",
            "alias=crypto-crc32c",
            "alias=crc32c",
            "depends=",
            "name=crc32c_generic",
        ],
    )
    // The 9P client, with the dependencies Debian 6.1's .modinfo gives them.
    .module("kernel/fs/netfs/netfs.ko", &["depends=", "name=netfs"])
    .module(
        "kernel/fs/fscache/fscache.ko",
        &["depends=netfs", "name=fscache"],
    )
    .module("kernel/net/9p/9pnet.ko", &["depends=", "name=9pnet"])
    .module(
        "kernel/net/9p/9pnet_virtio.ko",
        &["depends=9pnet", "name=9pnet_virtio"],
    )
    .module(
        "kernel/fs/9p/9p.ko",
        &["depends=9pnet,fscache,netfs", "name=9p"],
    )
    .module(
        "kernel/drivers/net/unrelated.ko",
        &["alias=crc32c-fake", "depends="],
    )
    .file(
        "modules.builtin",
        b"kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n",
    );
    tree
}

#[test]
fn debian_like_tree_loads_dependencies_first() {
    let tree = debian_like("debian");
    let (order, missing) = tree.resolve(&DEFAULT_MODULES).unwrap();
    assert_eq!(
        order,
        [
            "virtio_mmio",
            "virtio_blk",
            "crc32c_generic",
            "jbd2",
            "mbcache",
            "crc16",
            "ext4",
            "netfs",
            "fscache",
            "9pnet",
            "9pnet_virtio",
            "9p"
        ]
    );
    assert!(missing.is_empty());
}

#[test]
fn the_9p_client_loads_in_the_researched_order_whatever_is_asked_first() {
    // DATA-PATH-RESEARCH 2.1 booted `virtio_mmio netfs fscache 9pnet 9pnet_virtio
    // 9p`; asking for the file system alone still puts what it needs before it.
    let tree = debian_like("9p");
    let (order, _) = tree
        .resolve(&["virtio_mmio", "9p", "9pnet_virtio"])
        .unwrap();
    assert_eq!(
        order,
        [
            "virtio_mmio",
            "9pnet",
            "netfs",
            "fscache",
            "9p",
            "9pnet_virtio"
        ]
    );
    let position = |name: &str| order.iter().position(|module| module == name).unwrap();
    assert!(position("netfs") < position("fscache"));
    assert!(position("fscache") < position("9p"));
    assert!(position("9pnet") < position("9p"));
    assert!(position("9pnet") < position("9pnet_virtio"));
}

#[test]
fn built_in_modules_and_aliases_are_not_loaded() {
    let tree = debian_like("builtin");
    tree.module("kernel/fs/needs_virtio.ko", &["depends=virtio,virtio_ring"])
        .file(
            "modules.builtin.modinfo",
            b"crc32c_generic.alias=crypto-crc32c\0libcrc32c.license=GPL\0",
        );
    let (order, missing) = tree.resolve(&["needs-virtio", "jbd2"]).unwrap();
    // The soft dependency is built in now, so crc32c_generic is not loaded.
    assert_eq!(order, ["needs_virtio", "jbd2"]);
    assert!(missing.is_empty());
}

#[test]
fn a_soft_dependency_nothing_provides_is_reported_not_fatal() {
    let tree = Tree::new("softmissing");
    tree.module("kernel/a.ko", &["softdep=pre: crypto-nothing", "depends="]);
    let (order, missing) = tree.resolve(&["a"]).unwrap();
    assert_eq!(order, ["a"]);
    assert_eq!(missing, ["crypto_nothing"]);
}

#[test]
fn missing_compressed_and_circular_modules_are_errors() {
    let tree = Tree::new("errors");
    tree.module("kernel/a.ko", &["depends=b"])
        .module("kernel/b.ko", &["depends=c"])
        .module("kernel/c.ko", &["depends=a"])
        .module("kernel/d.ko", &["depends=nope"])
        .file("kernel/x.ko.xz", b"\xfd7zXZ\0")
        .file("kernel/z.ko.zst", b"\x28\xb5\x2f\xfd");
    assert_eq!(
        tree.resolve(&["a"]).unwrap_err(),
        ModuleError::Cycle(["a", "b", "c", "a"].map(str::to_owned).to_vec())
    );
    let error = tree.resolve(&["d"]).unwrap_err();
    assert_eq!(
        error,
        ModuleError::NotFound {
            name: "nope".to_owned(),
            needed_by: Some("d".to_owned())
        }
    );
    assert!(error.to_string().contains("needed by d"));
    for name in ["x", "z"] {
        let error = tree.resolve(&[name]).unwrap_err();
        assert!(matches!(error, ModuleError::Compressed { .. }), "{error:?}");
        assert!(error.to_string().contains("uncompressed .ko"), "{error}");
    }
    assert!(matches!(
        tree.resolve(&["absent"]).unwrap_err(),
        ModuleError::NotFound {
            needed_by: None,
            ..
        }
    ));
}

#[test]
fn a_broken_module_file_names_itself() {
    let tree = Tree::new("broken");
    tree.file(
        "kernel_bad.ko",
        b"not an elf at all, but long enough to have a header.........",
    );
    let error = tree.resolve(&["kernel_bad"]).unwrap_err();
    assert!(matches!(error, ModuleError::BadElf { .. }), "{error:?}");
    assert!(error.to_string().contains("kernel_bad.ko"), "{error}");
}

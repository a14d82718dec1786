//! What to start: the knobs of one QEMU virt machine and the command line built from them.

use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The QEMU binary the harness runs, looked up in `PATH`.
pub const QEMU_BINARY: &str = "qemu-system-aarch64";

/// Default hard cap on a whole QEMU run before the watchdog kills it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// One QEMU `virt` machine with EL2 enabled, booting `kernel` through `-kernel`.
///
/// Build it with [`QemuConfig::new`] and change fields with struct update
/// syntax: `QemuConfig { smp: 2, ..QemuConfig::new(kernel) }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuConfig {
    /// Image given to `-kernel`, entered at EL2 (the Janus Image, or a raw test binary).
    pub kernel: PathBuf,
    /// Image given to `-initrd`, if any.
    pub initrd: Option<PathBuf>,
    /// `gic-version=` of the virt machine: 3 (default) or 2 (the Raspberry Pi 4 path).
    pub gic_version: u8,
    /// Number of CPUs, `-smp`.
    pub smp: u32,
    /// `virtualization=` of the virt machine: on (EL2, for Janus) unless a test
    /// boots a guest kernel natively as a baseline.
    pub virtualization: bool,
    /// RAM size as QEMU spells it, `-m` (`"2G"`, `"512M"`).
    pub memory: String,
    /// `-icount shift=N`: virtual time counts instructions, for deterministic figures.
    pub icount_shift: Option<u32>,
    /// `dtb-randomness=` of the virt machine: whether QEMU puts `rng-seed` and
    /// `kaslr-seed` into the device tree (on by default, as QEMU does).
    pub dtb_randomness: bool,
    /// Disks on the board's virtio-mmio bus, as `virtio-blk-device`s in this order.
    pub disks: Vec<Disk>,
    /// Further arguments, appended after the ones the harness builds.
    pub extra_args: Vec<String>,
    /// Hard cap on the whole run: the watchdog kills QEMU once it has passed.
    pub timeout: Duration,
}

impl QemuConfig {
    /// A GICv3 machine with 4 CPUs, 2 GiB of RAM, no initrd and the default timeout.
    pub fn new(kernel: impl Into<PathBuf>) -> Self {
        Self {
            kernel: kernel.into(),
            initrd: None,
            gic_version: 3,
            smp: 4,
            virtualization: true,
            memory: "2G".to_owned(),
            icount_shift: None,
            dtb_randomness: true,
            disks: Vec::new(),
            extra_args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// This machine with the raw image at `path` as one more virtio block device:
    /// Janus' physical disk (use a test's own copy, see [`crate::disk`]).
    pub fn with_disk(mut self, path: impl Into<PathBuf>) -> Self {
        self.disks.push(Disk {
            path: path.into(),
            bytes: None,
            write_log: None,
        });
        self
    }

    /// This machine with the raw image at `path` as one more virtio block device,
    /// behind QEMU's `blklogwrites` driver, which records every write and flush the
    /// guest's device completes into `log` (created or emptied here) in Linux'
    /// dm-log-writes format, 512-byte log sectors: read it with
    /// [`crate::blklog::WriteLog`]. Copy the image before the run to replay the
    /// log onto it ([`crate::blklog::replay`]). The drive keeps its `-drive` id
    /// (`disk<N>`), so QMP `query-blockstats` names it as it names a plain disk.
    ///
    /// # Panics
    /// When `log` cannot be created.
    pub fn with_logged_disk(mut self, path: impl Into<PathBuf>, log: impl Into<PathBuf>) -> Self {
        let log = log.into();
        // The file driver opens, never creates, its file: an empty one to start.
        std::fs::File::create(&log)
            .unwrap_or_else(|error| panic!("create write log {}: {error}", log.display()));
        self.disks.push(Disk {
            path: path.into(),
            bytes: None,
            write_log: Some(log),
        });
        self
    }

    /// This machine with the bytes `bytes` of the raw image at `path` as one more
    /// virtio block device: a partition as a disk of its own, as a personality sees
    /// its volume (the native baseline of a guest under Janus).
    pub fn with_partition(mut self, path: impl Into<PathBuf>, bytes: Range<u64>) -> Self {
        self.disks.push(Disk {
            path: path.into(),
            bytes: Some(bytes),
            write_log: None,
        });
        self
    }

    /// This machine with QEMU's own virtio-9p server sharing the host folder `dir`
    /// under mount tag `tag` (`-fsdev local,security_model=none` and a
    /// `virtio-9p-device`): the stand-in for Janus' shared folder in native runs,
    /// and a reference 9P server for the probe's attacks.
    pub fn with_9p_share(mut self, dir: impl AsRef<Path>, tag: &str) -> Self {
        let path = dir.as_ref().to_string_lossy().replace(',', ",,");
        let id = format!("fs{}", self.extra_args.len());
        self.extra_args.extend([
            "-fsdev".to_owned(),
            format!("local,id={id},path={path},security_model=none"),
            "-device".to_owned(),
            format!("virtio-9p-device,fsdev={id},mount_tag={tag}"),
        ]);
        self
    }

    /// The arguments (without the program name) that start this machine.
    ///
    /// The serial console is QEMU's stdio, the human monitor is off and the
    /// QMP monitor listens on `qmp_socket` without waiting for a client, so
    /// the guest starts at once. `-no-reboot` turns a guest reset into an
    /// exit, so a test sees it instead of a silent second boot.
    pub fn args(&self, qmp_socket: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "-M".into(),
            format!(
                "virt,virtualization={},gic-version={}{}",
                if self.virtualization { "on" } else { "off" },
                self.gic_version,
                if self.dtb_randomness {
                    ""
                } else {
                    ",dtb-randomness=off"
                }
            )
            .into(),
            "-cpu".into(),
            "cortex-a72".into(),
            "-smp".into(),
            self.smp.to_string().into(),
            "-m".into(),
            self.memory.clone().into(),
            "-display".into(),
            "none".into(),
            "-serial".into(),
            "stdio".into(),
            "-monitor".into(),
            "none".into(),
            "-qmp".into(),
        ];
        let mut qmp = OsString::from("unix:");
        qmp.push(qmp_socket.as_os_str());
        qmp.push(",server=on,wait=off");
        args.push(qmp);
        args.push("-kernel".into());
        args.push(self.kernel.clone().into_os_string());
        if let Some(initrd) = &self.initrd {
            args.push("-initrd".into());
            args.push(initrd.clone().into_os_string());
        }
        if let Some(shift) = self.icount_shift {
            args.push("-icount".into());
            args.push(format!("shift={shift}").into());
        }
        for (index, disk) in self.disks.iter().enumerate() {
            args.push("-drive".into());
            args.push(disk.drive_option(&format!("disk{index}")));
            args.push("-device".into());
            args.push(format!("virtio-blk-device,drive=disk{index}").into());
        }
        args.push("-no-reboot".into());
        args.extend(self.extra_args.iter().map(OsString::from));
        args
    }
}

/// A raw disk image, or a byte range of one, given to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// The image file.
    pub path: PathBuf,
    /// The part of it the device shows; `None` for all of it.
    pub bytes: Option<Range<u64>>,
    /// Where `blklogwrites` records the device's writes, if it does.
    pub write_log: Option<PathBuf>,
}

/// `blklogwrites`' log sector size, the unit of the log's sector numbers: the
/// guest's sector, so every write a virtio-blk guest makes is whole log sectors.
pub const WRITE_LOG_SECTOR_BYTES: u32 = 512;

impl Disk {
    /// The `-drive` option value for this disk with id `id`. A comma in the path is
    /// doubled, as QEMU's option syntax wants.
    fn drive_option(&self, id: &str) -> OsString {
        let path = self.path.to_string_lossy().replace(',', ",,");
        if let Some(log) = &self.write_log {
            // blklogwrites (QEMU block/blklogwrites.c, QMP BlockdevOptionsBlklogwrites):
            // `file` is the disk, `log` the record; both children are named by
            // option prefix so that one -drive (and its id) stays the backend.
            let log = log.to_string_lossy().replace(',', ",,");
            let file = match &self.bytes {
                None => format!("file.driver=file,file.filename={path}"),
                Some(bytes) => format!(
                    "file.driver=raw,file.offset={},file.size={},file.file.driver=file,\
                     file.file.filename={path}",
                    bytes.start,
                    bytes.end.saturating_sub(bytes.start)
                ),
            };
            return format!(
                "if=none,id={id},driver=blklogwrites,{file},log.driver=file,\
                 log.filename={log},log-sector-size={WRITE_LOG_SECTOR_BYTES}"
            )
            .into();
        }
        match &self.bytes {
            None => format!("if=none,id={id},format=raw,file={path}"),
            Some(bytes) => format!(
                "driver=raw,file.filename={path},offset={},size={},if=none,id={id}",
                bytes.start,
                bytes.end.saturating_sub(bytes.start)
            ),
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_logged_disk_is_one_drive_behind_blklogwrites() {
        let dir = std::env::temp_dir().join(format!("harness-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("w,log");
        let config = QemuConfig::new("/images/janus.bin").with_logged_disk("/tmp/a.img", &log);
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0, "made, empty");
        let args = strings(&config.args(Path::new("/tmp/x/qmp.sock")));
        let at = args.iter().position(|arg| arg == "-drive").unwrap();
        let log = log.to_string_lossy().replace(',', ",,");
        assert_eq!(
            args[at + 1],
            format!(
                "if=none,id=disk0,driver=blklogwrites,file.driver=file,file.filename=/tmp/a.img,\
                 log.driver=file,log.filename={log},log-sector-size=512"
            )
        );
        assert_eq!(args[at + 3], "virtio-blk-device,drive=disk0");
        let mut partition = config.clone();
        partition.disks[0].bytes = Some(1024..4096);
        let args = strings(&partition.args(Path::new("/tmp/x/qmp.sock")));
        assert!(args[at + 1].contains(
            "file.driver=raw,file.offset=1024,file.size=3072,file.file.driver=file,\
             file.file.filename=/tmp/a.img"
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn new_uses_documented_defaults() {
        let config = QemuConfig::new("/images/janus.bin");
        assert_eq!(config.kernel, PathBuf::from("/images/janus.bin"));
        assert_eq!(config.initrd, None);
        assert_eq!(config.gic_version, 3);
        assert_eq!(config.smp, 4);
        assert_eq!(config.memory, "2G");
        assert_eq!(config.icount_shift, None);
        assert!(config.extra_args.is_empty());
        assert_eq!(config.timeout, Duration::from_secs(120));
    }

    #[test]
    fn default_command_line_has_every_fixed_option() {
        let config = QemuConfig::new("/images/janus.bin");
        let args = strings(&config.args(Path::new("/tmp/x/qmp.sock")));
        assert_eq!(
            args,
            [
                "-M",
                "virt,virtualization=on,gic-version=3",
                "-cpu",
                "cortex-a72",
                "-smp",
                "4",
                "-m",
                "2G",
                "-display",
                "none",
                "-serial",
                "stdio",
                "-monitor",
                "none",
                "-qmp",
                "unix:/tmp/x/qmp.sock,server=on,wait=off",
                "-kernel",
                "/images/janus.bin",
                "-no-reboot",
            ]
        );
    }

    #[test]
    fn disks_become_virtio_block_devices() {
        let config = QemuConfig::new("/images/janus.bin")
            .with_disk("/tmp/a,b.img")
            .with_partition("/tmp/disk.img", 1_048_576..269_484_032);
        let args = strings(&config.args(Path::new("/tmp/q.sock")));
        assert_eq!(
            args[18..],
            [
                "-drive",
                "if=none,id=disk0,format=raw,file=/tmp/a,,b.img",
                "-device",
                "virtio-blk-device,drive=disk0",
                "-drive",
                "driver=raw,file.filename=/tmp/disk.img,offset=1048576,size=268435456,\
                 if=none,id=disk1",
                "-device",
                "virtio-blk-device,drive=disk1",
                "-no-reboot",
            ]
        );
    }

    #[test]
    fn optional_parts_appear_in_order() {
        let config = QemuConfig {
            initrd: Some("/images/initrd.cpio".into()),
            gic_version: 2,
            smp: 2,
            memory: "1G".to_owned(),
            icount_shift: Some(0),
            dtb_randomness: false,
            extra_args: vec!["-d".to_owned(), "int".to_owned()],
            ..QemuConfig::new("/images/janus.bin")
        };
        let args = strings(&config.args(Path::new("/tmp/q.sock")));
        assert_eq!(
            args[1],
            "virt,virtualization=on,gic-version=2,dtb-randomness=off"
        );
        assert_eq!(args[5], "2");
        assert_eq!(args[7], "1G");
        assert_eq!(
            args[16..],
            [
                "-kernel",
                "/images/janus.bin",
                "-initrd",
                "/images/initrd.cpio",
                "-icount",
                "shift=0",
                "-no-reboot",
                "-d",
                "int",
            ]
        );
    }
}

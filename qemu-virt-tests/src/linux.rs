//! Boots Janus with the two Linux personalities and drives their shells.

use std::time::Duration;

use crate::probe::wait_for_output;
use crate::{image_path, Qemu, QemuConfig};

/// How long a Linux personality may take to reach its shell (TCG, loaded host).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// How long one shell command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The hotkey prefix (Ctrl-]).
pub const HOTKEY: u8 = 0x1d;

/// The kernel command line of a native boot (no Janus) of a personality's initramfs.
pub const NATIVE_BOOTARGS: &str = "console=ttyAMA0 rdinit=/init quiet";

/// The machine for a native boot (QEMU alone, no EL2, no Janus) of Debian's kernel
/// with personality `name`'s initramfs (`target/images/<name>.cpio`): 2 CPUs,
/// 256 MiB, no disk (add one with [`QemuConfig::with_disk`] and friends).
pub fn native_config(name: &str) -> QemuConfig {
    let kernel = crate::workspace_root().join("target/cache/debian/Image");
    let mut config = QemuConfig::new(kernel);
    config.initrd = Some(image_path(&format!("{name}.cpio")));
    config.smp = 2;
    config.memory = "256M".to_owned();
    config.virtualization = false;
    config.extra_args = vec!["-append".into(), NATIVE_BOOTARGS.into()];
    config.timeout = Duration::from_secs(300);
    config
}

/// A running Janus with both Linux personalities.
pub struct Linux {
    /// The QEMU running it.
    pub qemu: Qemu,
    commands: u32,
}

impl Linux {
    /// Starts Janus with `bundle` (default: `target/images/linux.bundle`).
    ///
    /// # Panics
    /// When QEMU cannot start.
    pub fn boot_bundle(bundle: std::path::PathBuf) -> Linux {
        Linux::start(Linux::config(bundle))
    }

    /// The machine [`Linux::boot_bundle`] starts: Janus with `bundle` as its
    /// initrd and a run long enough for both personalities' boots.
    pub fn config(bundle: std::path::PathBuf) -> QemuConfig {
        let mut config = QemuConfig::new(image_path("janus.bin"));
        config.initrd = Some(bundle);
        config.timeout = Duration::from_secs(600);
        config
    }

    /// Starts Janus as `config` says (see [`Linux::config`]), without waiting.
    ///
    /// # Panics
    /// When QEMU cannot start.
    pub fn start(config: QemuConfig) -> Linux {
        Linux {
            qemu: Qemu::start(config).expect("start QEMU"),
            commands: 0,
        }
    }

    /// Starts Janus with the default Linux bundle and waits for `personal`'s shell.
    ///
    /// # Panics
    /// When it does not come up.
    pub fn boot() -> Linux {
        let mut linux = Linux::boot_bundle(image_path("linux.bundle"));
        linux.wait_shell("personal");
        linux
    }

    /// Waits until personality `name` has said it is ready and its shell has
    /// shown a prompt (it reads the console from then on).
    ///
    /// # Panics
    /// When it does not come up.
    pub fn wait_shell(&mut self, name: &str) {
        self.wait(&format!("{name}: ready"), BOOT_TIMEOUT);
        self.wait(&format!("{name}:~# "), BOOT_TIMEOUT);
    }

    /// Waits for `needle` anywhere in the console output.
    ///
    /// # Panics
    /// On a timeout, a Janus panic or QEMU exiting.
    pub fn wait(&mut self, needle: &str, timeout: Duration) {
        if let Err(error) = wait_for_output(&mut self.qemu, &[needle], timeout) {
            panic!("{error}");
        }
    }

    /// Makes personality `index` (0 = personal, 1 = work) the foreground.
    ///
    /// # Panics
    /// When Janus does not confirm the switch.
    pub fn switch_to(&mut self, index: usize, name: &str) {
        let key = b'1' + u8::try_from(index).expect("small index");
        self.qemu.send(&[HOTKEY, key]).expect("send hotkey");
        let confirmed = format!("[janus] foreground: {name}");
        self.qemu
            .expect(&confirmed, COMMAND_TIMEOUT)
            .unwrap_or_else(|error| panic!("{error}"));
    }

    /// Runs `command` in the foreground shell and returns what it printed
    /// (carriage returns removed, surrounding whitespace trimmed, and Janus'
    /// own `[janus]` lines, which may arrive in between, left out).
    ///
    /// # Panics
    /// When the command does not finish in [`COMMAND_TIMEOUT`].
    pub fn run(&mut self, command: &str) -> String {
        self.run_for(command, COMMAND_TIMEOUT)
    }

    /// [`Linux::run`] for a command that may take up to `timeout` (a benchmark's
    /// long transfer, say).
    ///
    /// # Panics
    /// When the command does not finish in time.
    pub fn run_for(&mut self, command: &str, timeout: Duration) -> String {
        self.commands += 1;
        let tag = 1000 + self.commands;
        // The shell computes the markers, so the echoed command line never
        // contains them and only the command's own output lies between them.
        self.qemu
            .send_line(&format!(
                "echo B$((1000+{})); {command}; echo E$((1000+{}))",
                self.commands, self.commands
            ))
            .expect("send command");
        let begin = format!("B{tag}");
        let end = format!("E{tag}");
        self.qemu
            .expect(&begin, COMMAND_TIMEOUT)
            .unwrap_or_else(|error| panic!("{command}: {error}"));
        let text = self
            .qemu
            .expect(&end, timeout)
            .unwrap_or_else(|error| panic!("{command}: {error}"));
        let text = text.trim_end_matches(&end).replace('\r', "");
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| !line.contains("[janus] "))
            .collect();
        lines.join("\n").trim().to_string()
    }
}

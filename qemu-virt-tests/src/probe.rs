//! Boots Janus with two probe personalities whose behaviour each test chooses.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::{image_path, workspace_root, Qemu, QemuConfig};

/// How long a probe boot may take to print a line (TCG on a busy 2-core host).
pub const LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// The physical RAM QEMU's virt board has with `-m 2G`: what the probes scan.
pub const SCAN: &str = "probe.scan=0x40000000-0xc0000000";

/// The personality configuration for two probes with these command lines.
pub fn probe_config(personal_args: &str, work_args: &str) -> String {
    let kernel = image_path("probe.bin");
    let kernel = kernel.display();
    format!(
        r#"
[[personality]]
name = "personal"
kind = "baremetal"
ram_mib = 64
vcpus = 2
cpus = [0, 1]
kernel = "{kernel}"
bootargs = "{personal_args}"

[[personality]]
name = "work"
kind = "baremetal"
ram_mib = 64
vcpus = 2
cpus = [2, 3]
kernel = "{kernel}"
bootargs = "{work_args}"
"#
    )
}

/// Packs a bundle for `test` (its file name) from a configuration text.
///
/// # Panics
/// When the configuration does not pack: the test is wrong.
pub fn bundle(test: &str, config: &str) -> PathBuf {
    let dir = workspace_root().join("target").join("test-bundles");
    fs::create_dir_all(&dir).expect("create target/test-bundles");
    let bytes = janus_pack::pack_str(config, &dir, &format!("{test}.toml"), 4)
        .unwrap_or_else(|error| panic!("test configuration does not pack: {error}"));
    let path = dir.join(format!("{test}.bundle"));
    fs::write(&path, bytes).expect("write test bundle");
    path
}

/// Starts Janus with two probes running with the given command lines.
///
/// # Panics
/// When QEMU cannot start.
pub fn boot(test: &str, personal_args: &str, work_args: &str) -> Qemu {
    let bundle = bundle(test, &probe_config(personal_args, work_args));
    let mut config = QemuConfig::new(image_path("janus.bin"));
    config.initrd = Some(bundle);
    config.timeout = Duration::from_secs(240);
    Qemu::start(config).expect("start QEMU")
}

/// Parses `0x...-0x...` into a range.
pub fn parse_range(text: &str) -> Option<(u64, u64)> {
    let (start, end) = text.split_once('-')?;
    let parse = |t: &str| u64::from_str_radix(t.trim().trim_start_matches("0x"), 16).ok();
    Some((parse(start)?, parse(end)?))
}

/// The value after `key` up to the next space or comma in `line`.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(key)? + key.len();
    let rest = &line[start..];
    let end = rest.find([' ', ',', ')']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Waits until the console has shown every needle, in any order.
///
/// # Errors
/// A timeout (naming the needles still missing), a Janus panic line, or QEMU exiting.
pub fn wait_for_all(qemu: &mut Qemu, needles: &[&str], timeout: Duration) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let output = qemu.output();
        if let Some(line) = crate::find_panic_line(&output) {
            return Err(format!("Janus panicked: {line}\n{}", qemu.output_tail()));
        }
        let missing: Vec<&str> = needles
            .iter()
            .copied()
            .filter(|needle| !output.contains(needle))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if !qemu.is_running() {
            return Err(format!(
                "QEMU exited; never saw {missing:?}\n{}",
                qemu.output_tail()
            ));
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "timed out waiting for {missing:?}\n{}",
                qemu.output_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

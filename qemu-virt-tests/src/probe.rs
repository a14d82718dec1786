//! Boots Janus with two probe personalities whose behaviour each test chooses.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::{image_path, workspace_root, Qemu, QemuConfig};

/// How long a probe boot may take to print a line (TCG on a busy 2-core host).
pub const LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// The physical RAM QEMU's virt board has with `-m 2G`: what the probes scan.
pub const SCAN: &str = "probe.scan=0x40000000-0xc0000000";

/// The personality configuration for two probes with these command lines, each with
/// a small volume (for the probe to attack its virtio-blk device).
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
volume_mib = 16

[[personality]]
name = "work"
kind = "baremetal"
ram_mib = 64
vcpus = 2
cpus = [2, 3]
kernel = "{kernel}"
bootargs = "{work_args}"
volume_mib = 16
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

/// Starts Janus with two probes running with the given command lines, and a disk of
/// the test's own made from the same configuration (`target/test-disks/<test>.img`).
///
/// # Panics
/// When the disk cannot be made or QEMU cannot start.
pub fn boot(test: &str, personal_args: &str, work_args: &str) -> Qemu {
    let text = probe_config(personal_args, work_args);
    let bundle = bundle(test, &text);
    let disk = crate::disk::create_for(test, &text);
    let mut config = QemuConfig::new(image_path("janus.bin")).with_disk(disk);
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

/// The personalities of [`probe_config`], in hotkey order.
pub const NAMES: [&str; 2] = ["personal", "work"];

/// How often [`wait_for_all`] may switch the console to a personality whose
/// lines it still waits for.
const SWITCH_INTERVAL: Duration = Duration::from_secs(1);

/// Waits until the console has shown every needle, in any order. A needle
/// that is a personality's own line (`work: ...`) can only show while that
/// personality is in the foreground (Janus keeps a background one's output
/// until then): while one is missing, the console is switched to its
/// personality with the hotkey, as a user would, at most once a second.
///
/// # Errors
/// A timeout (naming the needles still missing), a Janus panic line, or QEMU exiting.
pub fn wait_for_all(qemu: &mut Qemu, needles: &[&str], timeout: Duration) -> Result<(), String> {
    wait(qemu, needles, timeout, true)
}

/// Waits like [`wait_for_all`], but never touches the console: for needles
/// that come whichever personality is in the foreground.
///
/// # Errors
/// As [`wait_for_all`].
pub fn wait_for_output(qemu: &mut Qemu, needles: &[&str], timeout: Duration) -> Result<(), String> {
    wait(qemu, needles, timeout, false)
}

/// Brings personality `index` (0 = personal, 1 = work) to the foreground and
/// waits until Janus says so.
///
/// # Errors
/// When the hotkey cannot be sent or Janus does not confirm in time.
pub fn switch_to(qemu: &mut Qemu, index: usize) -> Result<(), String> {
    let name = NAMES.get(index).ok_or("no such personality")?;
    // From the last byte already shown: the line end before the switch line.
    let before = qemu.output().len().saturating_sub(1);
    let key = b'1' + u8::try_from(index).map_err(|_| "no such personality")?;
    qemu.send(&[crate::linux::HOTKEY, key])
        .map_err(|error| format!("hotkey: {error}"))?;
    let confirmed = format!("\n[janus] foreground: {name}");
    let deadline = std::time::Instant::now() + LINE_TIMEOUT;
    while !qemu.output()[before..].contains(&confirmed) {
        if std::time::Instant::now() > deadline || !qemu.is_running() {
            return Err(format!("no {confirmed:?}\n{}", qemu.output_tail()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The personality Janus last said is in the foreground (its own line, never
/// a guest's, which Janus shows behind the guest's name).
pub fn foreground(output: &str) -> usize {
    output
        .rsplit("\n[janus] foreground: ")
        .next()
        .filter(|_| output.contains("\n[janus] foreground: "))
        .and_then(|rest| NAMES.iter().position(|name| rest.starts_with(name)))
        .unwrap_or(0)
}

fn wait(qemu: &mut Qemu, needles: &[&str], timeout: Duration, switch: bool) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout;
    let mut switched = std::time::Instant::now();
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
        if switch && switched.elapsed() >= SWITCH_INTERVAL {
            let front = foreground(&output);
            let behind = missing.iter().find_map(|needle| {
                NAMES
                    .iter()
                    .position(|name| needle.starts_with(&format!("{name}:")))
                    .filter(|&index| index != front)
            });
            if let Some(index) = behind {
                let key = b'1' + u8::try_from(index).unwrap_or(0);
                qemu.send(&[crate::linux::HOTKEY, key])
                    .map_err(|error| format!("hotkey: {error}"))?;
                switched = std::time::Instant::now();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

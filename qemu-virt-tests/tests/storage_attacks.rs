//! A hostile guest attacks its virtio block device: every attack is refused, none
//! is performed, the device keeps working, Janus keeps running, and the other
//! personality's volume holds what it wrote and nothing the attacker wrote.
//!
//! `personal` is Linux with its volume on /data; `work` is the probe in
//! `probe.after=virtio` mode (guests/probe/src/virtio.rs), aiming at Janus' text and
//! at the middle of personal's RAM, and racing a second vCPU that flips a
//! descriptor's address to those targets while the first sends requests. The probe checks what it can see itself (its
//! canary sectors, its own buffers); this test checks the rest from the host: the
//! memory it aimed at (through QMP's `pmemsave`), the console (an IN aimed at the
//! physical UART) and, after the run, the whole disk image.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qemu_virt_tests::linux::{Linux, BOOT_TIMEOUT};
use qemu_virt_tests::probe::{self, wait_for_all, wait_for_output};
use qemu_virt_tests::{disk, find_panic_line, image_path, workspace_root, Qemu};

/// This test's name: its bundle, disk and memory dumps are named after it.
const TEST: &str = "storage_attacks";

/// Where the configuration fixes the personalities' RAM (what Janus' top-down
/// placement would choose on a 2 GiB board, written out so that the probe can be
/// told before the boot).
const PERSONAL_RAM: Range<u64> = 0xb000_0000..0xc000_0000;
const WORK_RAM: Range<u64> = 0xac00_0000..0xb000_0000;
/// Janus' image is loaded at 0x4020_0000; one page in is its text, which never
/// changes, so the bytes there must still be those of janus.bin.
const JANUS_BASE: u64 = 0x4020_0000;
const JANUS_TARGET: u64 = JANUS_BASE + 0x1000;
/// The probe's target in personal's RAM.
const OTHER_TARGET: u64 = 0xb800_0000;
/// Bytes dumped at each target: the data buffer, the status byte (+0x400) and the
/// used ring (+0x800) the probe places there.
const TARGET_BYTES: u64 = 0x1000;

/// What every sector the probe writes starts with (`virtio::MARK`).
const MARK: &[u8] = b"PROBE-WROTE-THIS";
/// The tag of the probe's good write to sector 0 (`virtio::GOOD_TAG`).
const GOOD_TAG: &[u8] = b"good-write-sec-0";

/// The attacks of guests/probe/src/virtio/attacks.rs, in order, with
/// `probe.other=` given.
const ATTACKS: [&str; 35] = [
    "past-ram-in",
    "straddle-ram-in",
    "unmapped-in",
    "mmio-in",
    "past-ram-out",
    "janus-in",
    "janus-out",
    "janus-header",
    "janus-status",
    "other-in",
    "other-out",
    "desc-outside",
    "avail-outside",
    "used-janus",
    "used-other",
    "loop",
    "loop-back",
    "long-chain",
    "next-out-of-range",
    "head-out-of-range",
    "avail-idx-jump",
    "short-header",
    "no-status",
    "writable-first",
    "indirect",
    "addr-wrap",
    "odd-length",
    "past-end-out",
    "past-end-in",
    "straddle-end-out",
    "sector-overflow",
    "byte-offset-overflow",
    "discard",
    "write-zeroes",
    "unknown-type",
];

/// `personal` Linux with a volume, `work` the attacking probe with a volume.
fn config() -> String {
    let root = workspace_root();
    let kernel = root.join("target/cache/debian/Image");
    let initrd = image_path("personal.cpio");
    let probe = image_path("probe.bin");
    format!(
        r#"
[[personality]]
name = "personal"
kind = "linux"
ram_mib = 256
ram_base = {personal_base:#x}
vcpus = 2
cpus = [0, 1]
kernel = "{kernel}"
initrd = "{initrd}"
bootargs = "console=ttyAMA0 rdinit=/init quiet"
volume_mib = 64

[[personality]]
name = "work"
kind = "baremetal"
ram_mib = 64
ram_base = {work_base:#x}
vcpus = 2
cpus = [2, 3]
kernel = "{probe}"
bootargs = "probe.after=virtio probe.janus={JANUS_TARGET:#x} probe.other={OTHER_TARGET:#x}"
volume_mib = 16
"#,
        personal_base = PERSONAL_RAM.start,
        work_base = WORK_RAM.start,
        kernel = kernel.display(),
        initrd = initrd.display(),
        probe = probe.display(),
    )
}

/// Lines with which the probe gives up on the device before any attack.
const PROBE_GAVE_UP: [&str; 3] = [
    "work: virtio: no device",
    "work: virtio: device does not initialise",
    "device broken before the attacks",
];

/// Waits (bringing work forward) for the probe's `done` line; fails at once when
/// the probe gave up on the device instead.
fn wait_for_probe(qemu: &mut Qemu, done: &str) {
    const SLICE: Duration = Duration::from_secs(5);
    let deadline = Instant::now() + BOOT_TIMEOUT;
    loop {
        let result = wait_for_all(qemu, &[done], SLICE);
        let output = qemu.output();
        if let Some(line) = lines(&output)
            .into_iter()
            .find(|line| PROBE_GAVE_UP.iter().any(|needle| line.contains(needle)))
        {
            panic!("the probe gave up: {line}\n{}", qemu.output_tail());
        }
        match result {
            Ok(()) => return,
            Err(error) if Instant::now() > deadline || !qemu.is_running() => panic!("{error}"),
            Err(_) => {}
        }
    }
}

/// `size` bytes of guest-physical memory at `addr`, through QMP's `pmemsave`.
fn dump(qemu: &mut Qemu, addr: u64, size: u64) -> Vec<u8> {
    let path = disk::test_disks_dir().join(format!("{TEST}-{addr:x}.bin"));
    let _ = fs::remove_file(&path);
    qemu.qmp()
        .expect("QMP")
        .execute(
            "pmemsave",
            Some(serde_json::json!({
                "val": addr,
                "size": size,
                "filename": path.to_string_lossy(),
            })),
        )
        .expect("pmemsave");
    let bytes = fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let _ = fs::remove_file(&path);
    bytes
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The byte offsets in `file` where `needle` starts, within `range`.
fn find_in_file(file: &Path, range: Range<u64>, needle: &[u8]) -> Vec<u64> {
    const CHUNK: usize = 1 << 20;
    let mut input = File::open(file).unwrap_or_else(|error| panic!("{}: {error}", file.display()));
    input.seek(SeekFrom::Start(range.start)).expect("seek");
    let overlap = needle.len() - 1;
    let mut found = Vec::new();
    let mut buffer = vec![0u8; CHUNK + overlap];
    let mut kept = 0;
    let mut position = range.start;
    while position < range.end {
        let want = usize::try_from(range.end - position).map_or(CHUNK, |left| left.min(CHUNK));
        input
            .read_exact(&mut buffer[kept..kept + want])
            .expect("read the disk image");
        let window = &buffer[..kept + want];
        let base = position - kept as u64;
        for (offset, candidate) in window.windows(needle.len()).enumerate() {
            if candidate == needle {
                found.push(base + offset as u64);
            }
        }
        position += want as u64;
        let keep = overlap.min(kept + want);
        buffer.copy_within(kept + want - keep..kept + want, 0);
        kept = keep;
    }
    found
}

/// The 512 bytes of the probe's good sector: `MARK` + tag, 16 times.
fn good_sector() -> Vec<u8> {
    let mut unit = MARK.to_vec();
    unit.extend_from_slice(GOOD_TAG);
    unit.repeat(512 / unit.len())
}

/// The console's lines without carriage returns.
fn lines(output: &str) -> Vec<String> {
    output
        .replace('\r', "")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_hostile_guest_cannot_break_its_block_device_or_reach_other_storage() {
    let text = config();
    let bundle = probe::bundle(TEST, &text);
    let disk_path: PathBuf = disk::create_for(TEST, &text);
    let mut linux = Linux::start(Linux::config(bundle).with_disk(&disk_path));

    // Janus placed everything where the probe was told.
    let personal_ram = format!(
        "[janus] personal: RAM {:#x}-{:#x}",
        PERSONAL_RAM.start, PERSONAL_RAM.end
    );
    let work_ram = format!(
        "[janus] work: RAM {:#x}-{:#x}",
        WORK_RAM.start, WORK_RAM.end
    );
    let reserved = format!("[janus] reserved {JANUS_BASE:#x}-");
    wait_for_output(
        &mut linux.qemu,
        &[&personal_ram, &work_ram, &reserved],
        BOOT_TIMEOUT,
    )
    .unwrap_or_else(|error| panic!("{error}"));

    // The probe's attacks (work's lines show once it is brought forward).
    let done = "work: virtio attacks done:";
    wait_for_probe(&mut linux.qemu, done);
    // At once, before personal's RAM moves on: what the probe aimed at.
    let janus_now = dump(&mut linux.qemu, JANUS_TARGET, TARGET_BYTES);
    let other_now = dump(&mut linux.qemu, OTHER_TARGET, TARGET_BYTES);
    // The probe's good read into a chunk of its own RAM it had not touched (the
    // middle of its RAM, `untouched_chunk`): seen there, the dump and the pattern
    // search can see the probe's data where it did land.
    let own_chunk = (WORK_RAM.start + (WORK_RAM.end - WORK_RAM.start) / 2) & !((2 << 20) - 1);
    let own_now = dump(&mut linux.qemu, own_chunk, 512);
    assert!(
        own_now == good_sector(),
        "the probe's good read is not at {own_chunk:#x}"
    );

    let output = linux.qemu.output();
    let all = lines(&output);
    assert!(
        !all.iter()
            .any(|line| line.starts_with("work: virtio: no device")),
        "the probe found no block device:\n{output}"
    );
    let good = all
        .iter()
        .find(|line| line.starts_with("work: virtio good: "))
        .unwrap_or_else(|| panic!("no good-round line:\n{output}"));
    for field in [
        "write=ok",
        "read=ok",
        "match=yes",
        "get-id=ok",
        "untouched-chunk=ok",
        "canaries=ok",
    ] {
        assert!(good.contains(field), "{field} missing from {good:?}");
    }
    let attacks: Vec<&String> = all
        .iter()
        .filter(|line| line.starts_with("work: virtio attack="))
        .collect();
    let names: Vec<&str> = attacks
        .iter()
        .filter_map(|line| probe::field(line, "attack="))
        .collect();
    for line in &attacks {
        assert!(
            line.contains(" refused=yes") && line.contains(" good-after=ok"),
            "not refused, or the device failed after it: {line}\n{output}"
        );
        assert!(!line.contains("performed=yes"), "performed: {line}");
        assert!(!line.contains("result=timeout"), "no answer: {line}");
    }
    assert_eq!(names, ATTACKS, "attacks run:\n{output}");
    // The double-fetch race: every request answered (landing in the probe's own
    // buffer or refused), the device fine afterwards; the targets are checked below.
    let race = all
        .iter()
        .find(|line| line.starts_with("work: virtio race: "))
        .unwrap_or_else(|| panic!("no race line:\n{output}"));
    for field in [
        "requests=300 ",
        " other=0 ",
        " stopped=yes ",
        " good-after=ok",
    ] {
        assert!(race.contains(field), "{field:?} missing from {race:?}");
    }
    let count = ATTACKS.len();
    let summary = format!("{done} {count} of {count} refused, device still works");
    assert!(all.contains(&summary), "no {summary:?} line:\n{output}");

    // From outside: Janus' text is as in its image, and nothing the probe read
    // from its volume reached Janus, personal's RAM or the UART.
    let image = fs::read(image_path("janus.bin")).expect("read janus.bin");
    let offset = usize::try_from(JANUS_TARGET - JANUS_BASE).expect("small offset");
    let expected_text = &image[offset..offset + TARGET_BYTES as usize];
    assert!(
        janus_now == expected_text,
        "Janus' text at {JANUS_TARGET:#x} changed"
    );
    assert!(
        !contains(&other_now, MARK),
        "the probe's data reached personal's RAM at {OTHER_TARGET:#x}"
    );
    assert!(
        !output.contains("PROBE-WROTE-THIS"),
        "the probe's data reached the console:\n{output}"
    );
    assert!(find_panic_line(&output).is_none(), "{output}");

    // Personal is unharmed: its shell answers and its volume works.
    if let Err(error) = probe::switch_to(&mut linux.qemu, 0) {
        panic!("{error}");
    }
    linux.wait_shell("personal");
    assert_eq!(linux.run("hostname"), "personal");
    assert!(
        linux
            .qemu
            .output()
            .contains("personal: /data is the personal volume"),
        "personal's volume is not mounted:\n{}",
        linux.qemu.output_tail()
    );
    let note = format!("PERSONAL-WROTE-{}", std::process::id());
    let written = linux.run(&format!(
        "echo {note} >/data/storage-attacks.txt && sync && echo 3 >/proc/sys/vm/drop_caches && cat /data/storage-attacks.txt"
    ));
    assert_eq!(written, note, "{}", linux.qemu.output_tail());
    // Out with /data unmounted (the shell's poweroff writes it out first); Janus
    // and the probe stay.
    linux.qemu.send_line("poweroff").expect("send poweroff");
    linux.wait("[janus] personal: system off", BOOT_TIMEOUT);
    let status = linux
        .qemu
        .qmp()
        .expect("QMP")
        .query_status()
        .expect("query-status");
    assert_eq!(status["status"], "running", "{status}");
    let output = linux.qemu.output();
    assert!(find_panic_line(&output).is_none(), "{output}");
    linux.qemu.kill();

    // The disk: the probe's data only in its own volume, its good write at sector
    // 0 there, personal's file in personal's volume, the partition table intact.
    let personal = disk::partition(&disk_path, "personal");
    let work = disk::partition(&disk_path, "work");
    let length = fs::metadata(&disk_path).expect("disk size").len();
    let marks = find_in_file(&disk_path, 0..length, MARK);
    assert!(
        marks.contains(&work.start),
        "the search does not even find the probe's good write at {:#x}",
        work.start
    );
    let strays: Vec<u64> = marks
        .into_iter()
        .filter(|offset| !work.contains(offset))
        .collect();
    assert!(
        strays.is_empty(),
        "the probe's data outside its volume {work:x?} at {strays:x?} (personal {personal:x?})"
    );
    let mut first = vec![0u8; 512];
    let mut file = File::open(&disk_path).expect("open disk");
    file.seek(SeekFrom::Start(work.start)).expect("seek");
    file.read_exact(&mut first).expect("read work's sector 0");
    assert!(
        first == good_sector(),
        "work's sector 0 does not hold the probe's good write: {:?}",
        String::from_utf8_lossy(&first)
    );
    assert!(
        !find_in_file(&disk_path, personal.clone(), note.as_bytes()).is_empty(),
        "personal's file is not in its volume {personal:x?}"
    );
}

#[test]
fn the_disk_search_finds_needles_across_its_chunks() {
    let path = disk::test_disks_dir().join(format!("{TEST}-search-{}.img", std::process::id()));
    fs::create_dir_all(disk::test_disks_dir()).expect("test-disks");
    let mut bytes = vec![0u8; (3 << 20) + 100];
    // At the start, across the first chunk boundary, at the very end.
    for offset in [0, (1 << 20) - 5, bytes.len() - MARK.len()] {
        bytes[offset..offset + MARK.len()].copy_from_slice(MARK);
    }
    fs::write(&path, &bytes).expect("write");
    let length = bytes.len() as u64;
    assert_eq!(
        find_in_file(&path, 0..length, MARK),
        [0, (1 << 20) - 5, length - MARK.len() as u64]
    );
    assert_eq!(find_in_file(&path, 1..length - 1, MARK), [(1 << 20) - 5]);
    fs::remove_file(&path).expect("remove");
}

//! Each kind of config mistake is reported at the right line; a good config packs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyp::vm::bundle::{Bundle, GuestKind};
use janus_pack::{pack, pack_str, PackError};

const PROBE_KERNEL: &[u8] = b"\x7fELF probe guest";
const WORK_KERNEL: &[u8] = b"ARM\x64 work kernel";
const WORK_INITRD: &[u8] = b"070701 initramfs";

/// A fresh folder under the system temp dir holding the guest images, removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(test: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "janus-pack-{}-{test}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(dir.join("guests")).unwrap();
        fs::write(dir.join("guests/probe.bin"), PROBE_KERNEL).unwrap();
        fs::write(dir.join("guests/work.Image"), WORK_KERNEL).unwrap();
        fs::write(dir.join("guests/work.cpio"), WORK_INITRD).unwrap();
        fs::write(dir.join("guests/empty.bin"), b"").unwrap();
        Scratch { dir }
    }

    fn pack(&self, text: &str) -> Result<Vec<u8>, PackError> {
        pack_str(text, &self.dir, "personalities.toml", 4)
    }

    /// Packs `text` expecting an error at `line` whose reason contains `reason`.
    fn expect_error(&self, text: &str, line: usize, reason: &str) -> PackError {
        let error = self.pack(text).expect_err("config should be refused");
        assert_eq!(error.file(), "personalities.toml");
        assert_eq!(error.line(), Some(line), "wrong line for: {error}");
        assert!(
            error.reason().contains(reason),
            "reason {:?} lacks {reason:?}",
            error.reason()
        );
        assert_eq!(
            error.to_string(),
            format!("personalities.toml:{line}: {}", error.reason())
        );
        error
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A good two-personality config; line numbers in the tests refer to it.
const GOOD: &str = r#"# Janus personalities
[[personality]]
name = "personal"
kind = "baremetal"
ram_mib = 64
ram_base = 0x5000_0000
vcpus = 2
cpus = [0, 1]
kernel = "guests/probe.bin"

[[personality]]
name = "work"
kind = "linux"
ram_mib = 128
ram_base = 0x6000_0000
vcpus = 1
cpus = [2]
kernel = "guests/work.Image"
initrd = "guests/work.cpio"
bootargs = "console=ttyAMA0 rdinit=/init"
"#;

/// `GOOD` with `from` replaced by `to`, which must occur exactly once.
fn edit(from: &str, to: &str) -> String {
    assert_eq!(GOOD.matches(from).count(), 1, "{from:?} is not unique");
    GOOD.replace(from, to)
}

#[test]
fn good_config_round_trips_through_the_bundle_parser() {
    let scratch = Scratch::new("good");
    let bytes = scratch.pack(GOOD).unwrap();
    let bundle = Bundle::parse(&bytes).unwrap();
    let [personal, work] = bundle.personalities() else {
        panic!("expected two personalities");
    };
    assert_eq!(personal.name, "personal");
    assert_eq!(personal.kind, GuestKind::BareMetal);
    assert_eq!(personal.ram_bytes, 64 << 20);
    assert_eq!(personal.ram_base, Some(0x5000_0000));
    assert_eq!(personal.vcpus, 2);
    assert_eq!(personal.cpus, 0b011);
    assert_eq!(personal.kernel, PROBE_KERNEL);
    assert_eq!(personal.initrd, b"");
    assert_eq!(personal.bootargs, "");
    assert_eq!(work.name, "work");
    assert_eq!(work.kind, GuestKind::Linux);
    assert_eq!(work.ram_bytes, 128 << 20);
    assert_eq!(work.cpus, 0b100);
    assert_eq!(work.kernel, WORK_KERNEL);
    assert_eq!(work.initrd, WORK_INITRD);
    assert_eq!(work.bootargs, "console=ttyAMA0 rdinit=/init");
}

#[test]
fn pack_reads_paths_relative_to_the_config_file() {
    let scratch = Scratch::new("from-file");
    let config = scratch.dir.join("personalities.toml");
    fs::write(&config, GOOD).unwrap();
    let bytes = pack(&config, 4).unwrap();
    assert_eq!(Bundle::parse(&bytes).unwrap().personalities().len(), 2);
}

#[test]
fn unreadable_config_names_the_file() {
    let error = pack(Path::new("/nonexistent/janus/personalities.toml"), 4).unwrap_err();
    assert_eq!(error.line(), None);
    assert!(error
        .to_string()
        .starts_with("/nonexistent/janus/personalities.toml: cannot read config"));
}

#[test]
fn toml_syntax_error_gives_its_line() {
    let scratch = Scratch::new("syntax");
    scratch.expect_error(&edit("vcpus = 1\n", "vcpus = = 1\n"), 16, "expected");
    scratch.expect_error(
        &edit(
            "[[personality]]\nname = \"work\"",
            "[[personality]\nname = \"work\"",
        ),
        11,
        "",
    );
}

#[test]
fn unknown_key_is_refused() {
    let scratch = Scratch::new("unknown-key");
    scratch.expect_error(
        &edit("vcpus = 1\n", "vcpus = 1\nmemory = 3\n"),
        17,
        "unknown field `memory`",
    );
}

#[test]
fn unknown_top_level_key_is_refused() {
    let scratch = Scratch::new("unknown-top");
    let text = format!("physical_cpus = 4\n{GOOD}");
    scratch.expect_error(&text, 1, "unknown field `physical_cpus`");
}

#[test]
fn wrong_type_is_refused() {
    let scratch = Scratch::new("wrong-type");
    scratch.expect_error(
        &edit("ram_mib = 128", "ram_mib = \"128\""),
        14,
        "expected u64",
    );
    scratch.expect_error(&edit("cpus = [2]", "cpus = [-2]"), 17, "expected u32");
}

#[test]
fn unknown_kind_is_refused() {
    let scratch = Scratch::new("kind");
    scratch.expect_error(
        &edit("kind = \"linux\"", "kind = \"windows\""),
        13,
        "unknown variant `windows`",
    );
}

#[test]
fn missing_key_points_at_its_table() {
    let scratch = Scratch::new("missing-key");
    scratch.expect_error(&edit("vcpus = 1\n", ""), 11, "missing field `vcpus`");
}

#[test]
fn missing_kernel_gives_the_line_and_the_path() {
    let scratch = Scratch::new("missing-kernel");
    scratch.expect_error(
        &edit("guests/work.Image", "guests/nope.Image"),
        18,
        "cannot read kernel",
    );
    let error = scratch
        .pack(&edit("guests/work.Image", "guests/nope.Image"))
        .unwrap_err();
    assert!(error.reason().contains("guests/nope.Image"), "{error}");
}

#[test]
fn missing_initrd_gives_the_line_and_the_path() {
    let scratch = Scratch::new("missing-initrd");
    let error = scratch.expect_error(
        &edit("guests/work.cpio", "guests/nope.cpio"),
        19,
        "cannot read initrd",
    );
    assert!(error.reason().contains("guests/nope.cpio"), "{error}");
}

#[test]
fn empty_kernel_is_refused() {
    let scratch = Scratch::new("empty-kernel");
    scratch.expect_error(
        &edit("guests/probe.bin", "guests/empty.bin"),
        9,
        "kernel image is empty",
    );
}

#[test]
fn overlapping_ram_base_ranges_are_refused() {
    let scratch = Scratch::new("overlap");
    // personal is [0x5000_0000, 0x5400_0000).
    scratch.expect_error(
        &edit("ram_base = 0x6000_0000", "ram_base = 0x5200_0000"),
        15,
        "overlaps the RAM of personality 1",
    );
}

#[test]
fn misaligned_ram_base_is_refused() {
    let scratch = Scratch::new("ram-base-align");
    scratch.expect_error(
        &edit("ram_base = 0x6000_0000", "ram_base = 0x6010_0000"),
        15,
        "not aligned to 2 MiB",
    );
}

#[test]
fn more_vcpus_than_cpus_is_refused() {
    let scratch = Scratch::new("vcpus");
    scratch.expect_error(
        &edit("vcpus = 2", "vcpus = 4"),
        7,
        "vcpus = 4 but cpus lists only 2 physical CPUs",
    );
}

#[test]
fn too_many_vcpus_are_refused() {
    let scratch = Scratch::new("vcpus-max");
    let text = edit(
        "vcpus = 2\ncpus = [0, 1]",
        "vcpus = 9\ncpus = [0, 1, 3, 4, 5, 6, 7, 8, 9]",
    );
    let error = pack_str(&text, &scratch.dir, "personalities.toml", 16).unwrap_err();
    assert_eq!(error.line(), Some(7));
    assert!(
        error.reason().contains("vcpus = 9 is more than the 8"),
        "{error}"
    );
}

#[test]
fn cpu_out_of_range_is_refused() {
    let scratch = Scratch::new("cpu-range");
    scratch.expect_error(
        &edit("cpus = [2]", "cpus = [2, 4]"),
        17,
        "CPU 4 does not exist: the machine has 4 physical CPUs",
    );
    // Past what any bitmask can name.
    scratch.expect_error(
        &edit("cpus = [2]", "cpus = [64]"),
        17,
        "CPU 64 does not exist",
    );
}

#[test]
fn cpu_error_points_at_the_list_element() {
    let scratch = Scratch::new("cpu-element");
    scratch.expect_error(
        &edit("cpus = [2]", "cpus = [\n  2,\n  7,\n]"),
        19,
        "CPU 7 does not exist",
    );
}

#[test]
fn cpu_listed_twice_is_refused() {
    let scratch = Scratch::new("cpu-twice");
    scratch.expect_error(
        &edit("cpus = [0, 1]", "cpus = [0, 0]"),
        8,
        "CPU 0 is listed twice",
    );
}

#[test]
fn shared_cpus_are_refused() {
    let scratch = Scratch::new("shared");
    scratch.expect_error(
        &edit("cpus = [2]", "cpus = [1]"),
        17,
        "CPU 1 is already given to personality 1",
    );
}

#[test]
fn physical_cpu_count_is_honoured() {
    let scratch = Scratch::new("physical");
    let error = pack_str(GOOD, &scratch.dir, "personalities.toml", 2).unwrap_err();
    assert_eq!(error.line(), Some(17));
    assert!(error.reason().contains("CPU 2 does not exist"), "{error}");
}

#[test]
fn duplicate_name_is_refused() {
    let scratch = Scratch::new("duplicate");
    scratch.expect_error(
        &edit("name = \"work\"", "name = \"personal\""),
        12,
        "already used by personality 1",
    );
}

#[test]
fn bad_name_is_refused() {
    let scratch = Scratch::new("bad-name");
    scratch.expect_error(
        &edit("name = \"work\"", "name = \"Work\""),
        12,
        "only a-z, 0-9 and '-'",
    );
    scratch.expect_error(
        &edit("name = \"work\"", "name = \"work-personality-2\""),
        12,
        "more than 15",
    );
    scratch.expect_error(&edit("name = \"work\"", "name = \"\""), 12, "name is empty");
}

#[test]
fn ram_not_a_2_mib_multiple_is_refused() {
    let scratch = Scratch::new("ram-align");
    scratch.expect_error(
        &edit("ram_mib = 128", "ram_mib = 129"),
        14,
        "RAM size 129 MiB is not a multiple of 2 MiB",
    );
    scratch.expect_error(
        &edit("ram_mib = 128", "ram_mib = 0"),
        14,
        "RAM size is zero",
    );
}

#[test]
fn huge_ram_is_refused() {
    let scratch = Scratch::new("ram-huge");
    scratch.expect_error(
        &edit("ram_mib = 128", "ram_mib = 18446744073709551615"),
        14,
        "too large",
    );
}

#[test]
fn empty_config_is_refused() {
    let scratch = Scratch::new("empty");
    scratch.expect_error("# nothing here\n", 1, "no personality is defined");
}

#[test]
fn third_personality_is_refused() {
    let scratch = Scratch::new("third");
    let third = "\n[[personality]]\nname = \"spare\"\nkind = \"baremetal\"\nram_mib = 2\nvcpus = 1\ncpus = [3]\nkernel = \"guests/probe.bin\"\n";
    let text = format!("{GOOD}{third}");
    scratch.expect_error(&text, 22, "at most 2");
}

#[test]
fn config_mistakes_are_found_before_images_are_read() {
    let scratch = Scratch::new("order");
    let text = edit("guests/work.Image", "guests/nope.Image").replace("vcpus = 2", "vcpus = 3");
    scratch.expect_error(&text, 7, "vcpus = 3");
}

#[test]
fn binary_writes_the_bundle_and_reports_errors() {
    let scratch = Scratch::new("binary");
    let config = scratch.dir.join("personalities.toml");
    let output = scratch.dir.join("out.bundle");
    fs::write(&config, GOOD).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_janus-pack"))
        .arg(&config)
        .arg("-o")
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = fs::read(&output).unwrap();
    assert_eq!(Bundle::parse(&bytes).unwrap().personalities().len(), 2);

    let result = Command::new(env!("CARGO_BIN_EXE_janus-pack"))
        .arg(&config)
        .args(["--physical-cpus", "2", "-o"])
        .arg(&output)
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8(result.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "{}:17: CPU 2 does not exist: the machine has 2 physical CPUs (0 to 1)",
            config.display()
        )
    );
}

#[test]
fn binary_refuses_a_bad_command_line() {
    let result = Command::new(env!("CARGO_BIN_EXE_janus-pack"))
        .arg("only-a-config.toml")
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("usage: janus-pack"));
}

#[test]
fn volume_is_packed_and_optional() {
    let scratch = Scratch::new("volume");
    let text = edit("cpus = [2]\n", "cpus = [2]\nvolume_mib = 256\n");
    let bytes = scratch.pack(&text).unwrap();
    let bundle = Bundle::parse(&bytes).unwrap();
    assert_eq!(bundle.personalities()[0].volume_mib, None);
    assert_eq!(bundle.personalities()[1].volume_mib, Some(256));
}

#[test]
fn too_small_or_negative_volume_is_refused_at_its_line() {
    let scratch = Scratch::new("small-volume");
    let text = edit("cpus = [2]\n", "cpus = [2]\nvolume_mib = 4\n");
    scratch.expect_error(&text, 18, "volume_mib = 4 is below the 16 MiB");
    let text = edit("cpus = [2]\n", "cpus = [2]\nvolume_mib = -1\n");
    scratch.expect_error(&text, 18, "");
    let text = edit("cpus = [2]\n", "cpus = [2]\nvolume_mib = 2000000\n");
    scratch.expect_error(&text, 18, "above the largest volume");
}

#[test]
fn disk_partition_names_cannot_be_personality_names() {
    let scratch = Scratch::new("reserved");
    scratch.expect_error(&edit("\"work\"", "\"shared\""), 12, "reserved");
    scratch.expect_error(&edit("\"personal\"", "\"janus\""), 3, "reserved");
}

#[test]
fn disk_table_is_checked_at_its_lines() {
    let scratch = Scratch::new("disk-table");
    let good = format!("{GOOD}\n[disk]\nshared_mib = 64\njanus_mib = 8\n");
    scratch.pack(&good).unwrap();

    let text = format!("{GOOD}\n[disk]\nshared_mib = 8\njanus_mib = 8\n");
    scratch.expect_error(&text, 23, "shared_mib = 8 is outside 16 to");
    let text = format!("{GOOD}\n[disk]\nshared_mib = 64\njanus_mib = 0\n");
    scratch.expect_error(&text, 24, "janus_mib = 0 is outside 2 to 1024 MiB");
    let text = format!("{GOOD}\n[disk]\nshared_mib = 64\n");
    scratch.expect_error(&text, 22, "janus_mib");
    let text = format!("{GOOD}\n[disk]\nshared_mib = 64\njanus_mib = 8\nsize_mib = 9\n");
    scratch.expect_error(&text, 25, "unknown field `size_mib`");

    let huge = edit("cpus = [0, 1]\n", "cpus = [0, 1]\nvolume_mib = 1048576\n")
        .replace("cpus = [2]\n", "cpus = [2]\nvolume_mib = 1048576\n");
    let text = format!("{huge}\n[disk]\nshared_mib = 64\njanus_mib = 8\n");
    scratch.expect_error(&text, 24, "the disk would be 2097226 MiB");
}

/// `GOOD` followed by a `[channel]` table whose lines are `lines`: line 23 is the
/// first of them (22 is `[channel]`).
fn with_channel(lines: &str) -> String {
    format!("{GOOD}\n[channel]\n{lines}")
}

#[test]
fn channel_table_is_packed_into_the_bundle() {
    use hyp::channel::policy::AccessSet;
    use hyp::vm::config::channel::{AccessRule, ChannelConfig, Manager, QuotaRule};

    let scratch = Scratch::new("channel");
    let text = with_channel(
        "release_folder = \"out\"\nmax_file_mib = 1024\nmanager = \"work\"\n\
         [[channel.access]]\nwho = \"work\"\non = \"personal\"\nmay = [\"see\", \"read\"]\n\
         [[channel.access]]\nwho = \"personal\"\non = \"work\"\nmay = []\n\
         [[channel.quota]]\nwho = \"work\"\nmib = 32\nfiles = 1000\n",
    );
    let bytes = scratch.pack(&text).unwrap();
    let bundle = Bundle::parse(&bytes).unwrap();
    assert_eq!(
        bundle.channel(),
        &ChannelConfig {
            release_folder: "out",
            max_file_mib: Some(1024),
            manager: Manager::Personality(1),
            access: vec![
                AccessRule {
                    who: 1,
                    owner: 0,
                    may: AccessSet::SEE_READ
                },
                AccessRule {
                    who: 0,
                    owner: 1,
                    may: AccessSet::NONE
                },
            ],
            quotas: vec![QuotaRule {
                who: 1,
                max_mib: Some(32),
                max_files: Some(1000)
            }],
        }
    );

    let bytes = scratch.pack(GOOD).unwrap();
    assert_eq!(
        Bundle::parse(&bytes).unwrap().channel(),
        &ChannelConfig::default()
    );
    let bytes = scratch.pack(&with_channel("manager = \"\"\n")).unwrap();
    assert_eq!(
        Bundle::parse(&bytes).unwrap().channel().manager,
        Manager::Nobody
    );
}

#[test]
fn channel_top_level_values_are_refused_at_their_lines() {
    let scratch = Scratch::new("channel-top");
    let cases = [
        ("release_folder = \"a/b\"\n", 23, "release_folder must be"),
        ("release_folder = \"..\"\n", 23, "release_folder must be"),
        ("release_folder = \"\"\n", 23, "release_folder must be"),
        ("max_file_mib = 0\n", 23, "max_file_mib = 0 is outside"),
        (
            "max_file_mib = 2000000\n",
            23,
            "max_file_mib = 2000000 is outside",
        ),
        ("max_file_mib = -1\n", 23, "invalid value"),
        ("manager = \"boss\"\n", 23, "manager names no personality"),
        ("release = \"x\"\n", 23, "unknown field `release`"),
    ];
    for (lines, line, reason) in cases {
        scratch.expect_error(&with_channel(lines), line, reason);
    }
}

#[test]
fn channel_access_rules_are_refused_at_their_lines() {
    let scratch = Scratch::new("channel-access");
    let rule = |who: &str, on: &str, may: &str| {
        format!("[[channel.access]]\nwho = \"{who}\"\non = \"{on}\"\nmay = {may}\n")
    };
    let good = rule("work", "personal", "[\"see\"]");
    let cases = [
        (
            rule("boss", "personal", "[]"),
            24,
            "no personality is called \"boss\"",
        ),
        (
            rule("work", "boss", "[]"),
            25,
            "no personality is called \"boss\"",
        ),
        (
            rule("work", "personal", "[\"see\", \"fly\"]"),
            26,
            "unknown right \"fly\"",
        ),
        (
            rule("work", "personal", "[\"see\", \"see\"]"),
            26,
            "listed twice",
        ),
        (
            rule("work", "personal", "[\"read\"]"),
            26,
            "without \"see\"",
        ),
        (rule("work", "work", "[]"), 25, "same personality"),
        (
            format!("{good}{}", rule("work", "personal", "[]")),
            29,
            "already has a rule ([[channel.access]] number 1)",
        ),
        (format!("{good}colour = 1\n"), 27, "unknown field `colour`"),
        (rule("work", "personal", "\"see\""), 26, "invalid type"),
    ];
    for (lines, line, reason) in cases {
        scratch.expect_error(&with_channel(&lines), line, reason);
    }
}

#[test]
fn channel_quotas_are_refused_at_their_lines() {
    let scratch = Scratch::new("channel-quota");
    let quota = |who: &str, rest: &str| format!("[[channel.quota]]\nwho = \"{who}\"\n{rest}");
    let cases = [
        (
            quota("boss", "mib = 1\n"),
            24,
            "no personality is called \"boss\"",
        ),
        (quota("work", "mib = 0\n"), 25, "mib must be 1 to"),
        (quota("work", "mib = 1048577\n"), 25, "mib must be 1 to"),
        (quota("work", "files = 0\n"), 25, "files must be at least 1"),
        (quota("work", "bytes = 1\n"), 25, "unknown field `bytes`"),
        (
            format!(
                "{}{}",
                quota("work", "mib = 1\n"),
                quota("work", "files = 9\n")
            ),
            27,
            "already has a quota ([[channel.quota]] number 1)",
        ),
    ];
    for (lines, line, reason) in cases {
        scratch.expect_error(&with_channel(&lines), line, reason);
    }
}

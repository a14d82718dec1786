//! `make bench`: measures Janus under QEMU and writes `target/bench/report.json`.
//!
//! Figures that must repeat run under `-icount shift=0`, where one guest
//! instruction is one nanosecond of virtual time, so the virtual counter counts
//! instructions.

use std::fmt::Write as _;
use std::fs;
use std::time::{Duration, Instant};

use qemu_virt_tests::linux::{BOOT_TIMEOUT, HOTKEY};
use qemu_virt_tests::probe::{self, wait_for_all, LINE_TIMEOUT};
use qemu_virt_tests::{image_path, workspace_root, Qemu, QemuConfig};

#[path = "bench/shared.rs"]
mod shared;
#[path = "bench/storage.rs"]
mod storage;

/// Rounds of the storage figures (Janus, then native, in each).
const STORAGE_RUNS: usize = 2;

/// One metric of the report.
struct Metric {
    name: String,
    value: f64,
    unit: &'static str,
    /// (baseline value, what it is)
    baseline: Option<(f64, &'static str)>,
    target: Option<f64>,
    /// Extra numbers under one key (exits by cause).
    detail_name: &'static str,
    detail: Vec<(String, u64)>,
}

impl Metric {
    fn new(name: &str, value: f64, unit: &'static str) -> Metric {
        Metric {
            name: name.to_string(),
            value,
            unit,
            baseline: None,
            target: None,
            detail_name: "",
            detail: Vec::new(),
        }
    }
}

impl Metric {
    fn json(&self) -> String {
        let mut text = format!(
            "{{\"name\": \"{}\", \"value\": {}, \"unit\": \"{}\"",
            self.name,
            round(self.value),
            self.unit
        );
        if let Some((baseline, what)) = self.baseline {
            let _ = write!(
                text,
                ", \"baseline\": {}, \"baseline_source\": \"{what}\", \"ratio\": {}",
                round(baseline),
                round(self.value / baseline)
            );
        }
        if let Some(target) = self.target {
            let _ = write!(text, ", \"target\": {}", round(target));
        }
        if !self.detail.is_empty() {
            let fields: Vec<String> = self
                .detail
                .iter()
                .map(|(key, value)| format!("\"{key}\": {value}"))
                .collect();
            let _ = write!(
                text,
                ", \"{}\": {{{}}}",
                self.detail_name,
                fields.join(", ")
            );
        }
        text.push('}');
        text
    }
}

/// A number for the table: whole above 100, two decimals below.
fn short(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Null hypercalls per measurement.
const CALLS: u64 = 100_000;

fn hypercall_roundtrip() -> f64 {
    let config = probe::probe_config(
        &format!("probe.after=bench probe.calls={CALLS}"),
        "probe.after=wfi",
    );
    let bundle = probe::bundle("bench_hypercall", &config);
    let mut qemu_config = QemuConfig::new(image_path("janus.bin"));
    qemu_config.initrd = Some(bundle);
    qemu_config.icount_shift = Some(0);
    qemu_config.timeout = Duration::from_secs(300);
    let mut qemu = Qemu::start(qemu_config).expect("start QEMU");
    wait_for_all(
        &mut qemu,
        &["personal: bench hypercall_roundtrip"],
        LINE_TIMEOUT * 4,
    )
    .expect("benchmark line");
    let output = qemu.output();
    let line = output
        .lines()
        .find(|line| line.starts_with("personal: bench hypercall_roundtrip"))
        .expect("benchmark line");
    let number = |key: &str| -> f64 {
        probe::field(line, key)
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line}"))
    };
    let (calls, ticks, frequency) = (number("calls="), number("ticks="), number("frequency="));
    // shift=0: 1 instruction = 1 ns of virtual time.
    ticks * 1e9 / frequency / calls
}

/// Calls and faults of each kind the flood of `console_flood_lines` makes.
const FLOOD: u64 = 200_000;

/// Console lines a storm of `FLOOD` unknown SMCCC calls and `FLOOD` refused
/// reads adds (the reports shown and the summaries of those that were not),
/// with personal quiet in front.
fn console_flood_lines() -> f64 {
    let config = probe::probe_config(
        "probe.after=wfi",
        &format!("probe.after=flood probe.flood={FLOOD}"),
    );
    let bundle = probe::bundle("bench_flood", &config);
    let mut qemu_config = QemuConfig::new(image_path("janus.bin"));
    qemu_config.initrd = Some(bundle);
    qemu_config.timeout = Duration::from_secs(240);
    let mut qemu = Qemu::start(qemu_config).expect("start QEMU");
    probe::wait_for_output(&mut qemu, &["[janus] work: system off"], LINE_TIMEOUT)
        .expect("flood ends");
    // The counts still owed come right after the stop.
    std::thread::sleep(Duration::from_millis(500));
    let output = qemu.output();
    let flood_lines = output
        .lines()
        .filter(|line| {
            line.starts_with("[janus] work: unknown SMCCC call")
                || line.starts_with("[janus] work: read of IPA")
                || line.ends_with("reports suppressed\r")
        })
        .count();
    flood_lines as f64
}

fn reserved_bytes() -> f64 {
    let config = probe::probe_config("probe.after=wfi", "probe.after=wfi");
    let bundle = probe::bundle("bench_reserved", &config);
    let mut qemu_config = QemuConfig::new(image_path("janus.bin"));
    qemu_config.initrd = Some(bundle);
    let mut qemu = Qemu::start(qemu_config).expect("start QEMU");
    // The line after it: the reserved line has arrived whole.
    wait_for_all(
        &mut qemu,
        &["[janus] reserved ", "[janus] RAM "],
        LINE_TIMEOUT,
    )
    .expect("reserved line");
    let output = qemu.output();
    let line = output
        .lines()
        .find(|line| line.starts_with("[janus] reserved "))
        .expect("reserved line");
    let (start, end) = probe::field(line, "reserved ")
        .and_then(probe::parse_range)
        .expect("reserved range");
    (end - start) as f64
}

/// The personalities' bootargs (`images/personalities.toml`), for native boots.
const NATIVE_BOOTARGS: &str = "console=ttyAMA0 rdinit=/init quiet";

/// Runs of each boot measurement; the median is reported.
const BOOT_RUNS: usize = 5;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A personality's name and its exits by cause.
type Exits = (String, Vec<(String, u64)>);

/// Seconds from QEMU start until both personalities of `images/personalities.toml`
/// (two vCPUs each) have printed `ready`, and each one's exits by cause until then.
fn boot_both_shells() -> (f64, Vec<Exits>) {
    let mut config = QemuConfig::new(image_path("janus.bin"));
    config.initrd = Some(image_path("linux.bundle"));
    let (seconds, exits, _) = boot_both_with(config);
    (seconds, exits)
}

/// A bundle of one-vCPU, 256 MiB Linux personalities named `names`, each on its
/// own physical CPU: the setup of the Xen and Bao reference figures.
fn one_vcpu_bundle(tag: &str, names: &[&str]) -> std::path::PathBuf {
    let root = workspace_root();
    let kernel = root.join("target/cache/debian/Image");
    let mut text = String::new();
    for (index, name) in names.iter().enumerate() {
        let initrd = image_path(&format!("{name}.cpio"));
        text.push_str(&format!(
            "[[personality]]\nname = \"{name}\"\nkind = \"linux\"\nram_mib = 256\nvcpus = 1\n\
             cpus = [{index}]\nkernel = \"{}\"\ninitrd = \"{}\"\n\
             bootargs = \"{NATIVE_BOOTARGS}\"\n\n",
            kernel.display(),
            initrd.display()
        ));
    }
    probe::bundle(tag, &text)
}

/// The reference setup of the Xen and Bao figures: one vCPU and 256 MiB per
/// guest (two physical CPUs), against a one-vCPU native boot.
fn boot_both_one_vcpu() -> (f64, ProcessCpu) {
    let mut config = QemuConfig::new(image_path("janus.bin"));
    config.initrd = Some(one_vcpu_bundle("bench_one_vcpu", &["personal", "work"]));
    config.smp = 2;
    let (seconds, _, cpu) = boot_both_with(config);
    (seconds, cpu)
}

/// `personal` alone under Janus, one vCPU on a one-CPU machine: what Janus
/// costs a guest when no second busy guest shares the QEMU process.
fn boot_alone_one_vcpu() -> (f64, ProcessCpu) {
    let mut config = QemuConfig::new(image_path("janus.bin"));
    config.initrd = Some(one_vcpu_bundle("bench_alone", &["personal"]));
    config.smp = 1;
    config.timeout = Duration::from_secs(300);
    let start = Instant::now();
    let mut qemu = Qemu::start(config).expect("start QEMU");
    wait_for_all(&mut qemu, &["personal: ready"], BOOT_TIMEOUT).expect("personal ready");
    let seconds = start.elapsed().as_secs_f64();
    (seconds, ProcessCpu::of(qemu.pid()))
}

/// What a QEMU process has spent so far.
#[derive(Clone, Copy, Default)]
struct ProcessCpu {
    /// CPU seconds in the host kernel, all threads (those that ended too).
    system_seconds: f64,
    /// Times one of its live threads went to sleep of its own accord: waiting
    /// for a lock, or idle. (Counting futex calls with `perf` shows the
    /// pair's extra ones are waits for QEMU's global lock.)
    voluntary_switches: u64,
}

impl ProcessCpu {
    /// Reads `/proc/<pid>/stat` (times in USER_HZ, 100 a second) and
    /// `/proc/<pid>/task/*/status`.
    fn of(pid: u32) -> ProcessCpu {
        let mut total = ProcessCpu::default();
        if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
            // Fields after the parenthesised name; stime is the 15th field.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            if let Some(stime) = after.split_whitespace().nth(12) {
                total.system_seconds = stime.parse::<f64>().unwrap_or(0.0) / 100.0;
            }
        }
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            return total;
        };
        for task in tasks.flatten() {
            if let Ok(status) = fs::read_to_string(task.path().join("status")) {
                total.voluntary_switches += status
                    .lines()
                    .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
                    .and_then(|count| count.trim().parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        total
    }
}

/// Boots `config`'s two personalities: seconds from QEMU's start until both
/// have printed `ready`, each one's exits by cause until then (from the
/// statistics hotkey), and what the QEMU process spent until then.
fn boot_both_with(mut config: QemuConfig) -> (f64, Vec<Exits>, ProcessCpu) {
    config.timeout = Duration::from_secs(300);
    let start = Instant::now();
    let mut qemu = Qemu::start(config).expect("start QEMU");
    wait_for_all(&mut qemu, &["personal: ready"], BOOT_TIMEOUT).expect("personal ready");
    // Put work in front: a ready line it printed already comes out of its
    // background buffer now, one it prints later shows at once.
    qemu.send(&[HOTKEY, b'2']).expect("hotkey");
    wait_for_all(&mut qemu, &["work: ready"], BOOT_TIMEOUT).expect("work ready");
    let seconds = start.elapsed().as_secs_f64();
    let cpu = ProcessCpu::of(qemu.pid());
    qemu.send(&[HOTKEY, b's']).expect("stats hotkey");
    // The statistics end with the frame pool's line: all of them have arrived whole.
    let deadline = Instant::now() + BOOT_TIMEOUT;
    while !qemu.output().contains("page-table frames\r\n") {
        assert!(
            Instant::now() < deadline,
            "no statistics: {}",
            qemu.output_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = qemu.output();
    let mut exits = Vec::new();
    for name in ["personal", "work"] {
        let prefix = format!("[janus] {name} exits:");
        let line = output
            .lines()
            .find_map(|line| line.find(&prefix).map(|at| &line[at + prefix.len()..]))
            .expect("stats line");
        let words: Vec<&str> = line.split_whitespace().collect();
        let causes = words
            .chunks(2)
            .filter_map(|pair| Some((pair.first()?.to_string(), pair.get(1)?.parse().ok()?)))
            .collect();
        exits.push((name.to_string(), causes));
    }
    (seconds, exits, cpu)
}

/// Seconds until the same kernel and initramfs print `ready` alone, without
/// Janus, in the same QEMU, with the personality's RAM and vCPUs.
fn boot_native() -> f64 {
    let start = Instant::now();
    let mut qemu = Qemu::start(native_config("personal")).expect("start QEMU");
    wait_for_all(&mut qemu, &["personal: ready"], BOOT_TIMEOUT).expect("native ready");
    start.elapsed().as_secs_f64()
}

/// `boot_native` with one vCPU.
fn boot_native_one_vcpu() -> f64 {
    let mut config = native_config("personal");
    config.smp = 1;
    let start = Instant::now();
    let mut qemu = Qemu::start(config).expect("start QEMU");
    wait_for_all(&mut qemu, &["personal: ready"], BOOT_TIMEOUT).expect("native ready");
    start.elapsed().as_secs_f64()
}

/// Seconds until two native guests (personal's and work's initramfs) with
/// `vcpus` vCPUs each, started together in two QEMUs, are both ready: what the
/// host's cores allow two guests at once, with no hypervisor at all.
fn boot_two_native_at_once(vcpus: u32) -> f64 {
    let start = Instant::now();
    let config = |name: &str| {
        let mut config = native_config(name);
        config.smp = vcpus;
        config
    };
    let mut personal = Qemu::start(config("personal")).expect("start QEMU");
    let mut work = Qemu::start(config("work")).expect("start QEMU");
    wait_for_all(&mut personal, &["personal: ready"], BOOT_TIMEOUT).expect("native ready");
    wait_for_all(&mut work, &["work: ready"], BOOT_TIMEOUT).expect("native ready");
    start.elapsed().as_secs_f64()
}

/// The machine for a native boot of personality `name`'s initramfs.
fn native_config(name: &str) -> QemuConfig {
    let cache = workspace_root().join("target/cache/debian/Image");
    let mut config = QemuConfig::new(cache);
    config.initrd = Some(image_path(&format!("{name}.cpio")));
    config.smp = 2;
    config.memory = "256M".to_string();
    config.virtualization = false;
    config.extra_args = vec!["-append".into(), NATIVE_BOOTARGS.into()];
    config.timeout = Duration::from_secs(300);
    config
}

/// The storage figures: personal's volume under Janus against the same
/// partition attached natively, each round's pair measured back to back.
fn storage_metrics() -> Vec<Metric> {
    let disk = storage::bench_disk("blk");
    let (mut janus, mut native) = (Vec::new(), Vec::new());
    for _ in 0..STORAGE_RUNS {
        janus.push(storage::under_janus(&disk));
        native.push(storage::native(&disk, native_config("personal")));
    }
    let both = storage::both_write(&storage::bench_disk("both"));
    let pick = |runs: &[storage::Figures], field: fn(&storage::Figures) -> f64| {
        median(runs.iter().map(field).collect())
    };
    let source = "the same kernel and initramfs on QEMU alone, personal's partition as its virtio-blk disk, measured in this run";
    let mut metrics = Vec::new();
    for (name, field) in [
        (
            "read",
            (|f: &storage::Figures| f.read_mib_s) as fn(&storage::Figures) -> f64,
        ),
        ("write", |f: &storage::Figures| f.write_mib_s),
    ] {
        let (value, baseline) = (pick(&janus, field), pick(&native, field));
        metrics.push(Metric {
            baseline: Some((baseline, source)),
            ..Metric::new(&format!("blk_{name}_mib_s"), value, "MiB/s")
        });
        metrics.push(Metric {
            target: Some(0.9),
            detail_name: "mib_s_x1000",
            detail: vec![
                ("janus".to_string(), (value * 1000.0) as u64),
                ("native".to_string(), (baseline * 1000.0) as u64),
            ],
            ..Metric::new(&format!("blk_{name}_ratio"), value / baseline, "ratio")
        });
    }
    metrics.push(Metric {
        baseline: Some((pick(&native, |f| f.flush_us), source)),
        ..Metric::new("blk_flush_us", pick(&janus, |f| f.flush_us), "microseconds")
    });
    metrics.push(Metric::new("blk_both_write_mib_s", both, "MiB/s"));
    metrics
}

/// The shared-folder figures (issue 10): personal's /shared under Janus
/// against its /data in the same boot, the audit log's cost, and the same
/// commands natively with QEMU's own 9P server for reference.
fn shared_metrics() -> Vec<Metric> {
    let (janus, disk) = shared::under_janus();
    let audit = shared::read_audit_log(&disk);
    let native = shared::native(native_config("personal"));
    shared::metrics(&janus, &native, audit)
}

fn main() {
    let image_bytes = fs::metadata(image_path("janus.bin"))
        .expect("janus.bin")
        .len() as f64;
    let mut metrics = vec![
        Metric {
            baseline: Some((424.0, "Xen 4.17 on QEMU 7.2, same method")),
            target: Some(100.0),
            ..Metric::new("hypercall_roundtrip", hypercall_roundtrip(), "instructions")
        },
        Metric {
            baseline: Some((94.0 * 1024.0, "Bao image, 94 KB")),
            target: Some(128.0 * 1024.0),
            ..Metric::new("hyp_image_size", image_bytes, "bytes")
        },
        Metric {
            baseline: Some((352.0 * 1024.0, "Bao, 352 KiB")),
            target: Some(1024.0 * 1024.0),
            ..Metric::new("hyp_ram_reserved", reserved_bytes(), "bytes")
        },
        Metric {
            // Before the rate limits, each call and fault was a line.
            baseline: Some((
                (2 * FLOOD) as f64,
                "one line per call and fault, as before rate limits",
            )),
            target: Some(100.0),
            ..Metric::new("console_flood_lines", console_flood_lines(), "lines")
        },
    ];
    // Alternate the two kinds of boot so that a change in host load hits both.
    let mut both = Vec::new();
    let mut native = Vec::new();
    let mut two_native = Vec::new();
    let mut one_vcpu = Vec::new();
    let mut one_vcpu_cpu = Vec::new();
    let mut alone = Vec::new();
    let mut alone_cpu = Vec::new();
    let mut native_one_vcpu = Vec::new();
    let mut two_native_one_vcpu = Vec::new();
    let mut exits = Vec::new();
    for _ in 0..BOOT_RUNS {
        let (seconds, cpu) = boot_both_one_vcpu();
        one_vcpu.push(seconds);
        one_vcpu_cpu.push(cpu);
        native_one_vcpu.push(boot_native_one_vcpu());
        let (seconds, cpu) = boot_alone_one_vcpu();
        alone.push(seconds);
        alone_cpu.push(cpu);
        let (seconds, run_exits) = boot_both_shells();
        both.push(seconds);
        exits = run_exits;
        native.push(boot_native());
        two_native.push(boot_two_native_at_once(2));
        two_native_one_vcpu.push(boot_two_native_at_once(1));
    }
    // Each round's Janus boot against the native boot of the same round: host load
    // changes over minutes, and a round's boots share it.
    let paired = |janus: &[f64], native: &[f64]| {
        median(janus.iter().zip(native).map(|(j, n)| j / n).collect())
    };
    let (ratio, ratio_one_vcpu) = (paired(&both, &native), paired(&one_vcpu, &native_one_vcpu));
    let ratio_alone = paired(&alone, &native_one_vcpu);
    let (both, native, two_native) = (median(both), median(native), median(two_native));
    metrics.push(Metric {
        baseline: Some((native, "same kernel and initrd alone, no Janus, same QEMU, 2 vCPUs, 256 MiB, measured in this run")),
        ..Metric::new("boot_both_shells", both, "seconds")
    });
    metrics.push(Metric {
        target: Some(1.10),
        detail_name: "seconds_x1000",
        detail: vec![
            ("janus_both".to_string(), (both * 1000.0) as u64),
            ("native_one".to_string(), (native * 1000.0) as u64),
        ],
        // The median of the rounds' ratios, not the ratio of the medians.
        ..Metric::new("boot_ratio_vs_native", ratio, "ratio")
    });
    metrics.push(Metric {
        baseline: Some((
            two_native,
            "two native guests in two QEMUs started together on this host, no Janus",
        )),
        ..Metric::new("boot_both_shells_vs_two_native", both, "seconds")
    });
    let (one_vcpu, native_one_vcpu) = (median(one_vcpu), median(native_one_vcpu));
    metrics.push(Metric {
        baseline: Some((
            native_one_vcpu,
            "the setup of the Xen (1.77x) and Bao (1.84x) reference figures: one vCPU and 256 MiB per guest, two physical CPUs; native: one guest, one vCPU",
        )),
        target: Some(1.10),
        ..Metric::new("boot_both_shells_one_vcpu_each", one_vcpu, "seconds")
    });
    metrics.push(Metric {
        baseline: Some((
            median(two_native_one_vcpu),
            "two native one-vCPU guests in two QEMUs started together on this host, no Janus",
        )),
        ..Metric::new("boot_one_vcpu_vs_two_native", one_vcpu, "seconds")
    });
    metrics.push(Metric {
        target: Some(1.10),
        ..Metric::new("boot_ratio_one_vcpu_vs_native", ratio_one_vcpu, "ratio")
    });
    // Where the one-vCPU pair's time goes beyond a lone guest's: QEMU's global
    // lock, which QEMU 7.2 takes four times per trap (exception entry, the exit
    // from the TB loop it forces, and twice in the exception return). A lone
    // guest never waits for it; two booting guests do, most while both take the
    // ~44,000 TLB invalidations of ftrace's early patching, which Janus traps.
    metrics.push(Metric {
        baseline: Some((
            native_one_vcpu,
            "one native one-vCPU guest (the same baseline as the pair's)",
        )),
        ..Metric::new("boot_alone_one_vcpu", median(alone), "seconds")
    });
    metrics.push(Metric::new(
        "boot_ratio_alone_vs_native",
        ratio_alone,
        "ratio",
    ));
    let median_of = |runs: &[ProcessCpu], field: fn(&ProcessCpu) -> f64| {
        median(runs.iter().map(field).collect())
    };
    metrics.push(Metric {
        baseline: Some((
            median_of(&alone_cpu, |cpu| cpu.system_seconds),
            "one personality alone, until ready",
        )),
        ..Metric::new(
            "qemu_system_seconds_one_vcpu_each",
            median_of(&one_vcpu_cpu, |cpu| cpu.system_seconds),
            "seconds",
        )
    });
    metrics.push(Metric {
        baseline: Some((
            median_of(&alone_cpu, |cpu| cpu.voluntary_switches as f64),
            "one personality alone, until ready",
        )),
        ..Metric::new(
            "qemu_voluntary_switches_one_vcpu_each",
            median_of(&one_vcpu_cpu, |cpu| cpu.voluntary_switches as f64),
            "switches",
        )
    });
    metrics.extend(storage_metrics());
    metrics.extend(shared_metrics());
    for (name, causes) in exits {
        let total = causes.iter().map(|(_, count)| count).sum::<u64>() as f64;
        metrics.push(Metric {
            detail_name: "by_cause",
            detail: causes,
            ..Metric::new(&format!("hyp_traps_during_boot_{name}"), total, "exits")
        });
    }
    let dir = workspace_root().join("target").join("bench");
    fs::create_dir_all(&dir).expect("create target/bench");
    let json: Vec<String> = metrics.iter().map(Metric::json).collect();
    let report = format!("[\n  {}\n]\n", json.join(",\n  "));
    fs::write(dir.join("report.json"), &report).expect("write report.json");

    println!(
        "{:<32} {:>12} {:<13} {:>12} {:>8} {:>12}",
        "metric", "value", "unit", "baseline", "ratio", "target"
    );
    for metric in &metrics {
        let (baseline, ratio) = metric
            .baseline
            .map_or((String::new(), String::new()), |(b, _)| {
                (short(b), format!("{:.3}", metric.value / b))
            });
        let target = metric.target.map_or(String::new(), short);
        println!(
            "{:<32} {:>12} {:<13} {:>12} {:>8} {:>12}",
            metric.name,
            short(metric.value),
            metric.unit,
            baseline,
            ratio,
            target
        );
    }
    println!("wrote {}", dir.join("report.json").display());
}

//! `make bench`: measures Janus under QEMU and writes `target/bench/report.json`.
//!
//! Figures that must repeat run under `-icount shift=0`, where one guest
//! instruction is one nanosecond of virtual time, so the virtual counter counts
//! instructions.

use std::fmt::Write as _;
use std::fs;
use std::time::Duration;

use qemu_virt_tests::probe::{self, wait_for_all, LINE_TIMEOUT};
use qemu_virt_tests::{image_path, workspace_root, Qemu, QemuConfig};

/// One metric of the report.
struct Metric {
    name: &'static str,
    value: f64,
    unit: &'static str,
    /// (baseline value, what it is)
    baseline: Option<(f64, &'static str)>,
    target: Option<f64>,
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
        text.push('}');
        text
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

fn reserved_bytes() -> f64 {
    let config = probe::probe_config("probe.after=wfi", "probe.after=wfi");
    let bundle = probe::bundle("bench_reserved", &config);
    let mut qemu_config = QemuConfig::new(image_path("janus.bin"));
    qemu_config.initrd = Some(bundle);
    let mut qemu = Qemu::start(qemu_config).expect("start QEMU");
    wait_for_all(&mut qemu, &["[janus] reserved "], LINE_TIMEOUT).expect("reserved line");
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

fn main() {
    let image_bytes = fs::metadata(image_path("janus.bin"))
        .expect("janus.bin")
        .len() as f64;
    let metrics = [
        Metric {
            name: "hypercall_roundtrip",
            value: hypercall_roundtrip(),
            unit: "instructions",
            baseline: Some((424.0, "Xen 4.17 on QEMU 7.2, same method")),
            target: Some(100.0),
        },
        Metric {
            name: "hyp_image_size",
            value: image_bytes,
            unit: "bytes",
            baseline: Some((94.0 * 1024.0, "Bao image, 94 KB")),
            target: Some(128.0 * 1024.0),
        },
        Metric {
            name: "hyp_ram_reserved",
            value: reserved_bytes(),
            unit: "bytes",
            baseline: Some((352.0 * 1024.0, "Bao, 352 KiB")),
            target: Some(1024.0 * 1024.0),
        },
    ];
    let dir = workspace_root().join("target").join("bench");
    fs::create_dir_all(&dir).expect("create target/bench");
    let json: Vec<String> = metrics.iter().map(Metric::json).collect();
    let report = format!("[\n  {}\n]\n", json.join(",\n  "));
    fs::write(dir.join("report.json"), &report).expect("write report.json");

    println!(
        "{:<22} {:>14} {:<13} {:>12} {:>8} {:>12}",
        "metric", "value", "unit", "baseline", "ratio", "target"
    );
    for metric in &metrics {
        let (baseline, ratio) = metric
            .baseline
            .map_or((String::new(), String::new()), |(b, _)| {
                (format!("{b:.0}"), format!("{:.3}", metric.value / b))
            });
        let target = metric.target.map_or(String::new(), |t| format!("{t:.0}"));
        println!(
            "{:<22} {:>14.1} {:<13} {:>12} {:>8} {:>12}",
            metric.name, metric.value, metric.unit, baseline, ratio, target
        );
    }
    println!("wrote {}", dir.join("report.json").display());
}

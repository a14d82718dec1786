//! Attacks on isolation: each must be refused by Janus, with an abort injected
//! into this guest or an error code. Also the crash mode and the benchmark.

use core::arch::asm;
use core::sync::atomic::Ordering;

use crate::hvc::{self, hvc, smc};
use crate::probe::{arg, counter, faults};
use crate::say;

/// Where Janus sits on QEMU's virt board (its Image is loaded at RAM + 2 MiB).
const JANUS_IMAGE: u64 = 0x4020_0000;
/// A frame of the physical GICv3 that no personality is given: the redistributor
/// of physical CPU 2 on the virt board (0x080A_0000 + 2 x 128 KiB). The probe's own
/// GIC frames below it (distributor, two redistributors) are Janus' emulated vGIC.
const PHYSICAL_GICR: u64 = 0x080E_0000;
/// The physical PL011 on the virt board.
const PHYSICAL_UART: u64 = 0x0900_0000;
/// Nothing is at 4 GiB on the virt board with 2 GiB of RAM.
const UNMAPPED: u64 = 0x1_0000_0000;
/// Beyond Janus' 39-bit stage-2 IPA space (but inside the CPU's 44-bit PA range).
const BEYOND_IPA_SPACE: u64 = 1 << 39;
/// Scan stride: one stage-2 block.
const BLOCK: u64 = 2 * 1024 * 1024;

/// How an access or call ended.
enum Outcome {
    /// An abort or undefined instruction was injected (ESR_EL1).
    Fault(u64),
    /// Janus answered with an error code.
    Error(i64),
    /// It worked: isolation is broken.
    Allowed(u64),
}

struct Tally {
    tried: u32,
    refused: u32,
}

impl Tally {
    fn check(&mut self, what: &str, outcome: Outcome) {
        self.tried += 1;
        match outcome {
            Outcome::Fault(esr) => {
                self.refused += 1;
                say!("attack {what}: refused (exception injected, ESR {esr:#x})");
            }
            Outcome::Error(code) => {
                self.refused += 1;
                say!("attack {what}: refused (error {code})");
            }
            Outcome::Allowed(value) => {
                say!("attack {what}: ALLOWED ({value:#x})");
            }
        }
    }
}

fn faulted<F: FnOnce() -> u64>(access: F) -> Outcome {
    let record = faults();
    let before = record.count.load(Ordering::Acquire);
    let value = access();
    if record.count.load(Ordering::Acquire) != before {
        Outcome::Fault(record.esr.load(Ordering::Acquire))
    } else {
        Outcome::Allowed(value)
    }
}

fn read(address: u64) -> Outcome {
    faulted(|| {
        let value: u64;
        // SAFETY: a probe: Janus must refuse it with an abort, which the vector
        // records and skips; nothing in this program depends on the memory.
        unsafe {
            asm!("ldr {v}, [{a}]", a = in(reg) address, v = out(reg) value, options(nostack))
        };
        value
    })
}

fn write(address: u64) -> Outcome {
    faulted(|| {
        // SAFETY: as for `read`; the store must never reach memory.
        unsafe {
            asm!("str {v}, [{a}]", a = in(reg) address, v = in(reg) 0xbad_c0de_u64, options(nostack))
        };
        0
    })
}

fn execute(address: u64) -> Outcome {
    faulted(|| {
        // SAFETY: a probe: the fetch must fault; the vector returns to the caller
        // through x30 for an instruction abort.
        unsafe { asm!("blr {a}", a = in(reg) address, out("x30") _, clobber_abi("C")) };
        0
    })
}

fn call(result: i64) -> Outcome {
    if result < 0 {
        Outcome::Error(result)
    } else {
        Outcome::Allowed(result as u64)
    }
}

fn parse_range(text: &str) -> Option<(u64, u64)> {
    let (start, end) = text.split_once('-')?;
    let parse = |t: &str| u64::from_str_radix(t.trim_start_matches("0x"), 16).ok();
    Some((parse(start)?, parse(end)?))
}

/// Runs every attack and prints one line each, then a summary.
pub fn run_all(ram_base: u64, ram_size: u64) {
    let ram_end = ram_base + ram_size;
    let mut tally = Tally {
        tried: 0,
        refused: 0,
    };
    tally.check("read Janus memory", read(JANUS_IMAGE));
    tally.check("write Janus memory", write(JANUS_IMAGE + 0x1000));
    tally.check("execute Janus memory", execute(JANUS_IMAGE));
    tally.check("read physical GIC", read(PHYSICAL_GICR));
    tally.check("write physical GIC", write(PHYSICAL_GICR));
    tally.check("write physical UART", write(PHYSICAL_UART));
    tally.check("read physical UART", read(PHYSICAL_UART + 0x18));
    tally.check("read unmapped address", read(UNMAPPED));
    tally.check("read beyond IPA space", read(BEYOND_IPA_SPACE));
    // SAFETY: ACTLR_EL1 accesses trap to Janus (HCR_EL2.TACR), which must
    // inject an undefined instruction instead of letting the write through.
    tally.check(
        "write trapped ACTLR_EL1",
        faulted(|| {
            unsafe { asm!("msr actlr_el1, xzr", options(nostack)) };
            0
        }),
    );
    tally.check(
        "SMC to firmware SiP service",
        call(smc(0xC200_0001, 0, 0, 0)),
    );
    tally.check(
        "SMC CPU_ON of physical CPU 2",
        call(smc(hvc::PSCI_CPU_ON, 2, ram_base, 0)),
    );
    tally.check("unknown hypercall", call(hvc(UNKNOWN_CALL, 0, 0, 0)));
    tally.check(
        "console write from Janus memory",
        call(hvc(hvc::CONSOLE_WRITE, JANUS_IMAGE, 16, 0)),
    );
    tally.check(
        "console write below own RAM",
        call(hvc(hvc::CONSOLE_WRITE, ram_base - 4096, 16, 0)),
    );
    tally.check(
        "console write past own RAM",
        call(hvc(hvc::CONSOLE_WRITE, ram_end - 8, 16, 0)),
    );
    tally.check(
        "console write of huge length",
        call(hvc(hvc::CONSOLE_WRITE, ram_base, u64::MAX, 0)),
    );
    tally.check(
        "CPU_ON with entry outside own RAM",
        call(hvc(hvc::PSCI_CPU_ON, 1, JANUS_IMAGE, 0)),
    );
    tally.check(
        "CPU_ON of a CPU it does not have",
        call(hvc(hvc::PSCI_CPU_ON, 7, ram_base, 0)),
    );

    if let Some((start, end)) = arg("probe.scan").and_then(parse_range) {
        let (mut probes, mut readable, mut writable) = (0u32, 0u32, 0u32);
        let mut address = start;
        while address < end {
            if address < ram_base || address >= ram_end {
                probes += 1;
                if matches!(read(address), Outcome::Allowed(_)) {
                    readable += 1;
                    say!("scan: {address:#x} readable");
                }
                if matches!(write(address + 8), Outcome::Allowed(_)) {
                    writable += 1;
                    say!("scan: {address:#x} writable");
                }
            }
            address += BLOCK;
        }
        say!(
            "scan {start:#x}-{end:#x} outside {ram_base:#x}-{ram_end:#x}: {probes} blocks, {readable} readable, {writable} writable"
        );
        tally.check(
            "scan of all other physical RAM",
            if readable + writable == 0 {
                Outcome::Fault(faults().esr.load(Ordering::Acquire))
            } else {
                Outcome::Allowed(u64::from(readable + writable))
            },
        );
    }
    say!("attacks: {} of {} refused", tally.refused, tally.tried);
}

/// Makes an abort Janus cannot deliver: the vector table is moved outside this
/// guest's memory, then an access faults. Janus must stop this personality only.
pub fn crash() {
    say!("crashing: VBAR_EL1 outside RAM, then a faulting access");
    // SAFETY: deliberately breaks this guest; nothing runs after the fault.
    unsafe {
        asm!(
            "msr vbar_el1, {vbar}",
            "isb",
            "ldr {tmp}, [{bad}]",
            vbar = in(reg) BEYOND_IPA_SPACE,
            bad = in(reg) JANUS_IMAGE,
            tmp = out(reg) _,
            options(nostack),
        );
    }
    say!("still running after the crash (should not happen)");
}

/// What a misbehaving guest does to the console: `probe.flood=N` unknown
/// SMCCC calls (default 200,000), then as many reads of Janus' memory, each
/// of which Janus answers with an error or an injected abort (and may
/// report). Says how many of each it made and whether each was refused.
pub fn flood() {
    let count: u64 = arg("probe.flood")
        .and_then(|text| text.parse().ok())
        .unwrap_or(200_000);
    let (start, frequency) = counter();
    let mut refused_calls = 0u64;
    for _ in 0..count {
        if hvc(UNKNOWN_CALL, 0, 0, 0) < 0 {
            refused_calls += 1;
        }
    }
    let mut refused_reads = 0u64;
    for _ in 0..count {
        if matches!(read(JANUS_IMAGE), Outcome::Fault(_)) {
            refused_reads += 1;
        }
    }
    let (end, _) = counter();
    say!(
        "flood done: {count} unknown calls ({refused_calls} refused), {count} reads of Janus memory ({refused_reads} refused) in {} ms",
        (end - start) * 1000 / frequency.max(1)
    );
}

/// An SMCCC function ID in Janus' own service range that Janus does not know.
const UNKNOWN_CALL: u64 = 0xC600_00FF;

/// Lines that try to pass for Janus' own, through the console hypercall
/// (without the probe's name in front): at the start of a line, after a
/// carriage return, after an escape sequence that erases the line.
pub fn forge() {
    for line in [
        &b"[janus] foreground: personal FORGED-HVC\n"[..],
        b"ok\r[janus] foreground: personal FORGED-HVC-CR\n",
        b"\x1b[2K\r[janus] foreground: personal FORGED-HVC-ESC\n",
    ] {
        hvc::console_write(line);
    }
    say!("forged lines written");
}

/// The null hypercall round trip: `calls` HVCs in a five-instruction loop,
/// timed with the virtual counter.
pub fn bench() {
    let calls: u64 = arg("probe.calls")
        .and_then(|text| text.parse().ok())
        .unwrap_or(100_000);
    // Warm up Janus' and QEMU's translation caches.
    for _ in 0..1000 {
        hvc(hvc::NULL, 0, 0, 0);
    }
    let (start, frequency) = counter();
    // SAFETY: the loop only makes null hypercalls, which change x0 (set to 0).
    unsafe {
        asm!(
            "2:",
            "movz x0, #0x0002",
            "movk x0, #0xC600, lsl #16",
            "hvc #0",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            n = inout(reg) calls => _,
            out("x0") _,
            options(nostack),
        );
    }
    let (end, _) = counter();
    say!(
        "bench hypercall_roundtrip calls={calls} ticks={} frequency={frequency}",
        end - start
    );
}

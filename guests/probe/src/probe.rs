//! Start-up, fault records, and what the probe does once it is up.

use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::hvc::{self, hvc};
use crate::say;

/// vCPUs the probe supports.
const MAX_VCPUS: usize = 4;
const STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stacks(UnsafeCell<[[u8; STACK_SIZE]; MAX_VCPUS]>);
// SAFETY: vCPU i only uses slot i, as its stack.
unsafe impl Sync for Stacks {}
static STACKS: Stacks = Stacks(UnsafeCell::new([[0; STACK_SIZE]; MAX_VCPUS]));

/// What the exception vector records about the last synchronous exception.
#[repr(C)]
pub struct FaultRecord {
    pub esr: AtomicU64,
    pub far: AtomicU64,
    pub count: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to fill FAULTS
const NO_FAULT: FaultRecord = FaultRecord {
    esr: AtomicU64::new(0),
    far: AtomicU64::new(0),
    count: AtomicU64::new(0),
};
static FAULTS: [FaultRecord; MAX_VCPUS] = [NO_FAULT; MAX_VCPUS];

global_asm!(
    include_str!("entry.S"),
    STACKS = sym STACKS,
    STACK_SIZE = const STACK_SIZE,
    RUST_START = sym rust_start,
    UNEXPECTED = sym unexpected,
    IRQ = sym crate::timer::irq,
);

unsafe extern "C" {
    fn secondary_start();
}

/// Name and command line, read from the device tree by vCPU 0.
static NAME: spin_str::Str = spin_str::Str::new();
static ARGS: spin_str::Str = spin_str::Str::new();
static ONLINE: AtomicUsize = AtomicUsize::new(0);

/// A tiny write-once string store (no allocator here).
mod spin_str {
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicUsize, Ordering};

    pub struct Str {
        bytes: UnsafeCell<[u8; 256]>,
        len: AtomicUsize,
    }
    // SAFETY: written once by vCPU 0 before `len` is published with Release,
    // read only after `len` is seen with Acquire.
    unsafe impl Sync for Str {}

    impl Str {
        pub const fn new() -> Str {
            Str {
                bytes: UnsafeCell::new([0; 256]),
                len: AtomicUsize::new(0),
            }
        }
        pub fn set(&self, text: &str) {
            let len = text.len().min(256);
            // SAFETY: only vCPU 0 calls `set`, once, before anything reads.
            unsafe { (&mut *self.bytes.get())[..len].copy_from_slice(&text.as_bytes()[..len]) };
            self.len.store(len, Ordering::Release);
        }
        pub fn get(&self) -> &str {
            let len = self.len.load(Ordering::Acquire);
            // SAFETY: the bytes up to `len` were written before `len` was published.
            let bytes = unsafe { &(&*self.bytes.get())[..len] };
            core::str::from_utf8(bytes).unwrap_or("?")
        }
    }
}

/// This personality's name.
pub fn name() -> &'static str {
    NAME.get()
}

/// The value of `key=` on the command line.
pub fn arg(key: &str) -> Option<&'static str> {
    ARGS.get().split_whitespace().find_map(|word| {
        let (k, v) = word.split_once('=')?;
        (k == key).then_some(v)
    })
}

/// The fault record of the calling vCPU.
pub fn faults() -> &'static FaultRecord {
    let pointer: u64;
    // SAFETY: reading TPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {p}, tpidr_el1", p = out(reg) pointer, options(nomem, nostack)) };
    // SAFETY: rust_start set TPIDR_EL1 to one of FAULTS' entries, which live forever.
    unsafe { &*(pointer as *const FaultRecord) }
}

extern "C" fn unexpected(esr: u64, elr: u64) -> ! {
    say!("unexpected exception ESR {esr:#x} at {elr:#x}");
    loop {
        // SAFETY: waiting touches no memory.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!("probe panic: {info}");
    loop {
        // SAFETY: waiting touches no memory.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

/// Virtual counter and its frequency.
pub fn counter() -> (u64, u64) {
    let (count, frequency): (u64, u64);
    // SAFETY: reading the virtual counter and its frequency has no side effects.
    unsafe {
        asm!("isb", "mrs {c}, cntvct_el0", "mrs {f}, cntfrq_el0",
             c = out(reg) count, f = out(reg) frequency, options(nomem, nostack));
    }
    (count, frequency)
}

/// The physical counter (not offset by Janus; EL1 may read it).
pub fn physical_counter() -> u64 {
    let count: u64;
    // SAFETY: reading the physical counter has no side effects.
    unsafe { asm!("isb", "mrs {c}, cntpct_el0", c = out(reg) count, options(nomem, nostack)) };
    count
}

pub fn delay_ms(ms: u64) {
    let (start, frequency) = counter();
    let ticks = frequency / 1000 * ms;
    while counter().0.wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}

extern "C" fn rust_start(vcpu: usize, dtb: u64) -> ! {
    let record = FAULTS.get(vcpu).unwrap_or(&FAULTS[0]) as *const FaultRecord as u64;
    // SAFETY: TPIDR_EL1 is the probe's own; it holds this vCPU's fault record.
    unsafe { asm!("msr tpidr_el1, {r}", r = in(reg) record, options(nomem, nostack)) };
    if vcpu == 0 {
        boot_vcpu(dtb)
    } else {
        ONLINE.fetch_add(1, Ordering::AcqRel);
        say!("vCPU {vcpu} up");
        crate::virtio::secondary();
        loop {
            // SAFETY: waiting touches no memory (WFI traps to Janus).
            unsafe { asm!("wfi", options(nomem, nostack)) };
        }
    }
}

fn boot_vcpu(dtb: u64) -> ! {
    // SAFETY: Janus passes a device tree it generated, inside this guest's RAM.
    let tree = unsafe { fdt::Fdt::from_ptr(dtb as *const u8) };
    let Ok(tree) = tree else {
        hvc::console_write(b"probe: no device tree\n");
        halt();
    };
    ARGS.set(tree.chosen().bootargs().unwrap_or(""));
    if arg("probe.console") == Some("uart") {
        hvc::use_uart();
    }
    // `probe.name=` names a native run (QEMU's own device tree says "linux,dummy-virt").
    NAME.set(arg("probe.name").unwrap_or(tree.root().model().trim_start_matches("janus,")));
    let region = tree.memory().regions().next();
    let (ram_base, ram_size) = region
        .map(|r| (r.starting_address as u64, r.size.unwrap_or(0) as u64))
        .unwrap_or((0, 0));
    let vcpus = tree.cpus().count();
    let version = hvc(hvc::VERSION, 0, 0, 0);
    say!(
        "hello from vCPU 0 at EL1: RAM {ram_base:#x}-{:#x}, {vcpus} vCPUs, Janus ABI {}.{}",
        ram_base + ram_size,
        version >> 16,
        version & 0xffff
    );
    // Each start's virtual clock begins near zero (Janus sets CNTVOFF_EL2 when
    // it starts the personality); the physical counter runs on from the board's.
    let (virtual_count, frequency) = counter();
    let physical_count = physical_counter();
    say!(
        "clock at start: virtual {} ms, physical {} ms",
        virtual_count / (frequency / 1000).max(1),
        physical_count / (frequency / 1000).max(1)
    );
    let mode = arg("probe.after").unwrap_or("idle");
    if mode == "timer" {
        crate::timer::run();
        halt();
    }
    if mode == "bench" {
        crate::attacks::bench();
        hvc(hvc::PSCI_SYSTEM_OFF, 0, 0, 0);
        halt();
    }
    if mode == "wfi" {
        halt();
    }
    if mode == "flood" {
        crate::attacks::flood();
        say!("powering off");
        hvc(hvc::PSCI_SYSTEM_OFF, 0, 0, 0);
        halt();
    }
    if mode == "p9" {
        crate::virtio::p9::run(&tree);
        halt();
    }
    if mode == "virtio" {
        crate::virtio::run(ram_base, ram_size);
        halt();
    }
    if mode == "forge" {
        crate::attacks::forge();
    }
    ram_check(ram_base, ram_size, dtb + tree.total_size() as u64);
    start_secondaries(vcpus, ram_base);
    crate::attacks::run_all(ram_base, ram_size);
    match mode {
        "off" => {
            say!("powering off");
            hvc(hvc::PSCI_SYSTEM_OFF, 0, 0, 0);
            say!("SYSTEM_OFF returned");
        }
        "reset" => {
            // `probe.reset_delay_ms=N`: run N ms before resetting.
            let delay = arg("probe.reset_delay_ms").and_then(|text| text.parse().ok());
            delay_ms(delay.unwrap_or(0));
            say!("resetting");
            hvc(hvc::PSCI_SYSTEM_RESET, 0, 0, 0);
            say!("SYSTEM_RESET returned");
        }
        "crash" => crate::attacks::crash(),
        _ => {}
    }
    let mut beat = 0u64;
    loop {
        beat += 1;
        say!("alive {beat}");
        delay_ms(200);
    }
}

/// What the probe leaves in its RAM for its next start to look for.
const LEFTOVER: &[u8; 16] = b"probe-leftover!\n";
const MARKER: u64 = 0x4a61_6e75_735f_5052;
const MIB: u64 = 1024 * 1024;

/// Checks that Janus gave this start clean RAM, then leaves data behind for the
/// next start (after SYSTEM_RESET) to check again. The places lie in different
/// 2 MiB chunks above the probe's image and below its device tree, and one just
/// past the device tree's end (`dtb_end`), in the page Janus loads it into.
///
/// The first thing the probe does with the leftover place is hand it to the
/// console hypercall, before touching it: Janus must clear what is still behind
/// it (the last start's `LEFTOVER`) before reading it for the guest, so nothing
/// is printed (NUL bytes are dropped).
fn ram_check(ram_base: u64, ram_size: u64, dtb_end: u64) {
    let leftover = ram_base + ram_size / 2;
    let places = [
        ram_base + 4 * MIB,
        ram_base + 6 * MIB + 0x1238,
        ram_base + ram_size - 2 * MIB - 8,
        leftover + 64,
        dtb_end.next_multiple_of(8),
    ];
    hvc(hvc::CONSOLE_WRITE, leftover, LEFTOVER.len() as u64, 0);
    let mut dirty = 0;
    for &place in &places {
        // SAFETY: the place is in this guest's RAM, aligned, and used by nothing else.
        let value = unsafe { core::ptr::read_volatile(place as *const u64) };
        if value != 0 {
            say!("RAM not clear at {place:#x}: {value:#x}");
            dirty += 1;
        }
    }
    // A store as the first touch of a chunk (none of the above) must land.
    let first_store = ram_base + ram_size - 6 * MIB + 0x88;
    // SAFETY: as above.
    let stored = unsafe {
        core::ptr::write_volatile(first_store as *mut u64, MARKER);
        core::ptr::read_volatile(first_store as *const u64)
    };
    for &place in &places {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(place as *mut u64, MARKER) };
    }
    for (index, &byte) in LEFTOVER.iter().enumerate() {
        // SAFETY: as above; the leftover bytes end before `leftover + 64`.
        unsafe { core::ptr::write_volatile((leftover + index as u64) as *mut u8, byte) };
    }
    if dirty == 0 && stored == MARKER {
        say!("RAM clear at {} places, first store kept", places.len());
    } else if stored != MARKER {
        say!("first store to {first_store:#x} lost: reads {stored:#x}");
    }
}

/// Starts vCPU `vcpu` at `secondary_start` (PSCI CPU_ON); returns the PSCI result.
pub fn start_vcpu(vcpu: u64) -> i64 {
    hvc(
        hvc::PSCI_CPU_ON,
        vcpu,
        secondary_start as *const () as u64,
        vcpu,
    )
}

fn start_secondaries(vcpus: usize, _ram_base: u64) {
    let entry = secondary_start as *const () as u64;
    for vcpu in 1..vcpus.min(MAX_VCPUS) {
        let result = hvc(hvc::PSCI_CPU_ON, vcpu as u64, entry, vcpu as u64);
        if result != 0 {
            say!("CPU_ON {vcpu} failed: {result}");
        }
    }
    let (start, frequency) = counter();
    while ONLINE.load(Ordering::Acquire) + 1 < vcpus {
        if counter().0.wrapping_sub(start) > frequency * 5 {
            say!("secondary vCPUs did not come up");
            break;
        }
        core::hint::spin_loop();
    }
    let state = hvc(hvc::PSCI_AFFINITY_INFO, 1, 0, 0);
    let again = hvc(hvc::PSCI_CPU_ON, 1, entry, 1);
    say!(
        "{} vCPUs online; AFFINITY_INFO(1) = {state} (0 = on), CPU_ON(1) again = {again} (-4 = ALREADY_ON)",
        ONLINE.load(Ordering::Acquire) + 1
    );
}

pub fn halt() -> ! {
    loop {
        // SAFETY: waiting touches no memory.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

//! The double-fetch race: vCPU 1 flips the address of a request's data descriptor
//! between the probe's own buffer and targets outside its RAM (Janus' text, the
//! other personality's RAM) while vCPU 0 sends the request again and again.
//!
//! A device that read a descriptor twice (once to check, once to use) could be
//! made to use an address it never checked. Janus copies each descriptor once and
//! uses only the copy, so every request either lands in the probe's buffer (`ok`)
//! or is refused (`ioerr`); nothing may reach a target, which the test checks from
//! the host.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::driver::Driver;
use super::memory::{at, layout, ram, write_header};
use super::{DESC_NEXT, DESC_WRITE, GOOD_SECTOR, SECTOR, STATUS_UNWRITTEN, T_IN};
use crate::probe::{counter, start_vcpu};
use crate::say;

/// Requests vCPU 0 sends during the race.
const REQUESTS: u32 = 300;
/// How long vCPU 0 waits for vCPU 1 to start or to stop flipping.
const HANDSHAKE_MS: u64 = 5000;

/// Written by vCPU 0 before it starts vCPU 1 and read by vCPU 1: the address of
/// the descriptor's `addr` field and the addresses it cycles through.
static ENTRY: AtomicU64 = AtomicU64::new(0);
static ADDRESSES: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
/// vCPU 0 sets it to start the race and clears it to stop it.
static FLIPPING: AtomicBool = AtomicBool::new(false);
/// vCPU 1 sets them when it starts and when it stopped.
static STARTED: AtomicBool = AtomicBool::new(false);
static STOPPED: AtomicBool = AtomicBool::new(false);
/// Flips made (vCPU 1 only writes it).
static FLIPS: AtomicU64 = AtomicU64::new(0);

/// What a secondary vCPU does in the virtio mode: vCPU 1 flips while the race runs
/// and returns when it is over (or at once when there is no race).
pub fn secondary() {
    if !FLIPPING.load(Ordering::Acquire) {
        return;
    }
    STARTED.store(true, Ordering::Release);
    let entry = ENTRY.load(Ordering::Acquire);
    let mut flips = 0u64;
    while FLIPPING.load(Ordering::Acquire) {
        for address in &ADDRESSES {
            ram::put_u64(entry, address.load(Ordering::Relaxed));
        }
        flips += 1;
    }
    FLIPS.store(flips, Ordering::Release);
    STOPPED.store(true, Ordering::Release);
}

fn wait_for(flag: &AtomicBool) -> bool {
    let (start, frequency) = counter();
    while !flag.load(Ordering::Acquire) {
        if counter().0.wrapping_sub(start) > frequency / 1000 * HANDSHAKE_MS {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// Runs the race with the data descriptor flipping through the probe's buffer,
/// `janus` and `other` (the probe's buffer again when not given). Prints one line.
pub fn run(driver: &mut Driver, janus: u64, other: Option<u64>) {
    let data = at(layout::DATA);
    let header = at(layout::HEADER);
    let status = at(layout::STATUS);
    write_header(header, T_IN, GOOD_SECTOR);
    driver.descriptor(0, header, 16, DESC_NEXT, 1);
    driver.descriptor(1, data, SECTOR as u32, DESC_NEXT | DESC_WRITE, 2);
    driver.descriptor(2, status, 1, DESC_WRITE, 0);
    ENTRY.store(driver.rings.descriptors + 16, Ordering::Relaxed);
    for (slot, address) in ADDRESSES.iter().zip([data, janus, other.unwrap_or(data)]) {
        slot.store(address, Ordering::Relaxed);
    }
    FLIPPING.store(true, Ordering::Release);
    let started = start_vcpu(1);
    if started != 0 || !wait_for(&STARTED) {
        FLIPPING.store(false, Ordering::Release);
        say!("virtio race: vCPU 1 did not start (CPU_ON = {started})");
        return;
    }
    let (mut ok, mut refused, mut other_outcomes) = (0u32, 0u32, 0u32);
    for _ in 0..REQUESTS {
        ram::put_u8(status, STATUS_UNWRITTEN);
        driver.publish(0, 1);
        let outcome = driver.wait(Some(status));
        if outcome.ok() {
            ok += 1;
        } else if outcome.refused() && !driver.needs_reset() {
            refused += 1;
        } else {
            other_outcomes += 1;
            break;
        }
    }
    FLIPPING.store(false, Ordering::Release);
    let stopped = wait_for(&STOPPED);
    let good = stopped && driver.good_after(900);
    say!(
        "virtio race: requests={} ok={ok} refused={refused} other={other_outcomes} flips={} stopped={} good-after={}",
        ok + refused + other_outcomes,
        FLIPS.load(Ordering::Acquire),
        if stopped { "yes" } else { "no" },
        if good { "ok" } else { "fail" }
    );
}

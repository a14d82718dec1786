//! `probe.after=virtio`: a hand-made driver for the virtio-mmio block device Janus
//! gives a personality (virtio 1.2: mmio registers 4.2.2, split virtqueue 2.7,
//! virtio-blk 5.2), one good round of requests, then the attacks of
//! [`attacks`], each followed by a good request that shows the device still works.
//!
//! [`driver`] holds the register and queue code, [`memory`] the one static area in
//! the probe's own RAM that the device reads and writes (reached through volatile
//! accesses only: the device changes it behind the compiler's back). The probe
//! runs with its MMU off, so all of it is Device memory to the probe (no caches to
//! clean; under QEMU, which models none, that matches what Janus sees through its
//! cacheable map).
//!
//! Lines printed (the test parses them):
//! - `virtio: no device (...)` when nothing answers at the window;
//! - `virtio device: ...` with the features and the capacity;
//! - `virtio good: write=ok read=ok match=yes id=NAME flush=ok ...`;
//! - one `virtio attack=NAME result=R refused=yes|no good-after=ok|fail` per attack;
//! - `virtio attacks done: N of M refused, device still works` (or `device broken`).

mod attacks;
mod driver;
mod memory;
pub mod p9;
mod race;

pub use race::secondary;

use crate::say;
use driver::{input, mmio_read, register, Driver, Register, Rings};
use memory::{at, has_pattern, layout, ram, untouched_chunk, EXTRA};

/// The virtio-mmio window of the personality's block device (the virt board's
/// first virtio-mmio slot), as the storage contract fixes it.
pub const WINDOW: u64 = 0x0a00_0000;

/// MagicValue: "virt".
const MAGIC: u32 = 0x7472_6976;
/// The block device's ID (spec 5).
const BLOCK_DEVICE_ID: u32 = 2;

/// Device status bits (spec 2.1).
mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
}

/// VIRTIO_F_VERSION_1 (spec 6).
const F_VERSION_1: u64 = 1 << 32;
/// VIRTIO_BLK_F_FLUSH (spec 5.2.3).
const F_FLUSH: u64 = 1 << 9;

/// Descriptor flags (spec 2.7.5).
const DESC_NEXT: u16 = 1;
const DESC_WRITE: u16 = 2;
const DESC_INDIRECT: u16 = 4;

/// Request types (spec 5.2.6).
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;
const T_DISCARD: u32 = 11;
const T_WRITE_ZEROES: u32 = 13;
/// Request status values.
const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;
/// What the probe leaves in a status byte before a request: no status the device
/// may write (0, 1, 2), so a byte still holding it was not written.
const STATUS_UNWRITTEN: u8 = 0xff;

/// Bytes per sector.
pub const SECTOR: usize = 512;
/// The queue size the probe asks for (at most; a smaller QueueNumMax wins).
const QUEUE_SIZE: u16 = 16;

/// How long one request may take before the probe calls it a timeout.
const REQUEST_TIMEOUT_MS: u64 = 2000;
/// And at most this many polls (each reads the Status register: one trap).
const MAX_POLLS: u32 = 200_000;

/// The probe's volume: what it keeps where.
pub const GOOD_SECTOR: u64 = 0;
/// Rewritten by every good-after request.
pub const SCRATCH_SECTOR: u64 = 1;
/// Holds [`CANARY_TAG`]; the OUT attacks aim at it and must leave it as it is.
pub const CANARY_SECTOR: u64 = 2;
/// The tag of the good write to sector 0, which the test finds on the disk.
pub const GOOD_TAG: &str = "good-write-sec-0";
/// The tag of the canary sectors.
pub const CANARY_TAG: &str = "canary-sector";

/// The probe's `probe.after=virtio` mode.
pub fn run(ram_base: u64, ram_size: u64) {
    match mmio_read(register(Register::MagicValue)) {
        Err(esr) => {
            say!("virtio: no device (access to {WINDOW:#x} refused, ESR {esr:#x})");
            return;
        }
        Ok(magic) if magic != MAGIC => {
            say!("virtio: no device (magic {magic:#x} at {WINDOW:#x})");
            return;
        }
        Ok(_) => {}
    }
    let version = mmio_read(register(Register::Version)).unwrap_or(0);
    let device_id = mmio_read(register(Register::DeviceId)).unwrap_or(0);
    if version != 2 || device_id != BLOCK_DEVICE_ID {
        say!("virtio: no device (version {version}, device ID {device_id} at {WINDOW:#x})");
        return;
    }
    let mut driver = Driver {
        rings: Rings::own(),
        size: QUEUE_SIZE,
        max_size: 0,
        avail_idx: 0,
        used_idx: 0,
        offered: 0,
        accepted: 0,
        capacity: 0,
        wanted: 0,
    };
    if let Err(error) = driver.init(Rings::own()) {
        say!("virtio: device does not initialise: {error}");
        return;
    }
    say!(
        "virtio device: version {version}, features offered {:#x} accepted {:#x}, capacity={} sectors, queue {} of max {}",
        driver.offered,
        driver.accepted,
        driver.capacity,
        driver.size,
        driver.max_size
    );
    if !good_round(&mut driver, ram_base, ram_size) {
        say!("virtio attacks done: 0 of 0 refused, device broken before the attacks");
        return;
    }
    let (refused, tried, works) = attacks::run_all(&mut driver, ram_base, ram_size);
    let final_good = driver.good_after(999);
    say!(
        "virtio attacks done: {refused} of {tried} refused, {}",
        if works && final_good {
            "device still works"
        } else {
            "device broken"
        }
    );
}

/// The good requests before the attacks: write sector 0 and read it back, GET_ID,
/// FLUSH, a read into a chunk of RAM never touched, and the canaries.
fn good_round(driver: &mut Driver, ram_base: u64, ram_size: u64) -> bool {
    let write = driver.write_pattern(GOOD_SECTOR, GOOD_TAG);
    let (read, matches) = driver.check_pattern(GOOD_SECTOR, GOOD_TAG);
    let id_buffer = at(layout::ID);
    ram::fill(id_buffer, 20, 0);
    let get_id = driver.request(T_GET_ID, 0, Some(input(id_buffer, 20)));
    let mut id = [0u8; 20];
    for (index, byte) in id.iter_mut().enumerate() {
        *byte = ram::get_u8(id_buffer + index as u64);
    }
    let id_len = id.iter().position(|&byte| byte == 0).unwrap_or(id.len());
    let id = core::str::from_utf8(&id[..id_len]).unwrap_or("?");
    let flush = if driver.accepted & F_FLUSH != 0 {
        driver.request(T_FLUSH, 0, None).word()
    } else {
        "not-offered"
    };
    // A read into RAM the probe never touched: Janus must make it ready first.
    let untouched = match untouched_chunk(ram_base, ram_size) {
        Some(chunk) => {
            EXTRA.set(chunk, SECTOR as u64);
            let outcome = driver.request(T_IN, GOOD_SECTOR, Some(input(chunk, SECTOR as u32)));
            if outcome.ok() && has_pattern(chunk, SECTOR, GOOD_TAG) {
                "ok"
            } else {
                outcome.word()
            }
        }
        None => "skipped",
    };
    let canaries = [CANARY_SECTOR, driver.capacity.saturating_sub(1)]
        .iter()
        .all(|&sector| driver.write_pattern(sector, CANARY_TAG).ok());
    say!(
        "virtio good: write={} read={} match={} id={id} get-id={} flush={flush} untouched-chunk={untouched} canaries={}",
        write.word(),
        read.word(),
        if matches { "yes" } else { "no" },
        get_id.word(),
        if canaries { "ok" } else { "fail" }
    );
    write.ok() && matches && get_id.ok() && canaries
}

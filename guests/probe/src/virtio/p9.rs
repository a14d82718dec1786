//! `probe.after=p9`: a hand-made driver for the virtio-9p device Janus gives a
//! personality for the shared folder (virtio-mmio window 0x0a00_0200, SPI 17,
//! device ID 9, one request queue), a 9P2000.L session on it, and the malformed
//! messages of [`attacks`], each followed by a good request (Tgetattr on the root).
//!
//! The wire (DATA-PATH-RESEARCH 2.2): `size[4] type[1] tag[2] body`, little-endian,
//! `size` counting itself; strings are `len[2] bytes`; an error is `Rlerror(7)
//! ecode[4]` with a Linux errno; each R-message is its T-message's type plus one.
//! One request is one chain: the message (device-readable), then the reply buffer
//! (device-writable).
//!
//! `probe.p9=ADDR` names another window (a native run on QEMU alone, whose virt
//! board puts the first virtio device in its last slot); without it the probe uses
//! the fixed window, or else the first `virtio_mmio` node of the device tree (or
//! slot of QEMU's virt board) whose device is a 9P transport.
//!
//! `probe.p9.wait=NAME` holds the attacks back until `NAME` exists in the shared
//! folder (another personality makes it once it is busy there).
//!
//! Lines printed (the test parses them):
//! - `p9: no device (...)` or `p9: device does not initialise: ...`;
//! - `p9 device: window=0x... tag=shared msize=N`, `p9 good: version=ok attach=ok getattr=ok`;
//! - `p9 attack=NAME reply=R tag=ok|bad verdict=ok|BAD(why) good-after=ok|fail`;
//! - `p9 attacks done: N of M answered as a correct server may, device still works`
//!   (or `device broken`).

mod attacks;
mod wire;

use super::driver::{mmio_read, register, set_window, Driver, Register, Rings};
use super::memory::EXTRA;
use crate::probe::arg;
use crate::say;
use wire::Session;

/// The 9P device's window, as the channel contract fixes it.
pub const WINDOW: u64 = 0x0a00_0200;
/// The 9P transport's device ID (virtio 1.2, section 5).
const P9_DEVICE_ID: u32 = 9;
/// VIRTIO_9P_MOUNT_TAG: the device has a tag in its config space (Linux
/// `include/uapi/linux/virtio_9p.h`; Linux refuses a device without it).
const F_MOUNT_TAG: u64 = 1 << 0;
/// The magic value of a virtio-mmio window: "virt".
const MAGIC: u32 = 0x7472_6976;

/// Whether a virtio-mmio 9P device answers at `window`.
fn is_p9(window: u64) -> bool {
    set_window(window);
    matches!(mmio_read(register(Register::MagicValue)), Ok(MAGIC))
        && mmio_read(register(Register::Version)) == Ok(2)
        && mmio_read(register(Register::DeviceId)) == Ok(P9_DEVICE_ID)
}

/// The window to drive: `probe.p9=`, the fixed one, or the device tree's.
fn find_window(tree: &fdt::Fdt<'_>) -> Option<u64> {
    if let Some(text) = arg("probe.p9") {
        let window = u64::from_str_radix(text.trim_start_matches("0x"), 16).ok()?;
        return is_p9(window).then_some(window);
    }
    if is_p9(WINDOW) {
        return Some(WINDOW);
    }
    // The device tree's virtio-mmio windows, else the virt board's 32 slots.
    let from_tree = tree
        .all_nodes()
        .filter(|node| node.name.starts_with("virtio_mmio"))
        .filter_map(|node| node.reg()?.next())
        .map(|region| region.starting_address as u64)
        .find(|&window| is_p9(window));
    from_tree.or_else(|| {
        (0..VIRT_SLOTS)
            .map(|slot| VIRT_FIRST_SLOT + slot * SLOT_BYTES)
            .find(|&window| is_p9(window))
    })
}

/// QEMU virt's virtio-mmio slots: 32 windows of 0x200 bytes from 0x0a00_0000
/// (its `hw/arm/virt.c` memory map); the first `-device` gets the last one.
const VIRT_FIRST_SLOT: u64 = 0x0a00_0000;
const VIRT_SLOTS: u64 = 32;
const SLOT_BYTES: u64 = 0x200;

/// The mount tag from config space (`le16 tag_len; u8 tag[]`), up to 32 bytes.
fn mount_tag(buffer: &mut [u8; 32]) -> &str {
    const CONFIG: u64 = 0x100;
    let base = super::driver::window() + CONFIG;
    let word = |offset: u64| mmio_read(base + offset).unwrap_or(0);
    let length = usize::from((word(0) & 0xffff) as u16).min(buffer.len());
    for (index, slot) in buffer.iter_mut().enumerate().take(length) {
        // Bytes 2.. of config space, read as aligned words.
        let at = 2 + index as u64;
        *slot = (word(at & !3) >> (8 * (at & 3))) as u8;
    }
    core::str::from_utf8(&buffer[..length]).unwrap_or("?")
}

/// The probe's `probe.after=p9` mode.
pub fn run(tree: &fdt::Fdt<'_>) {
    let Some(window) = find_window(tree) else {
        say!("p9: no device (no 9P transport at {WINDOW:#x}, none in the device tree)");
        return;
    };
    let mut driver = Driver {
        rings: Rings::own(),
        size: super::QUEUE_SIZE,
        max_size: 0,
        avail_idx: 0,
        used_idx: 0,
        offered: 0,
        accepted: 0,
        capacity: 0,
        wanted: F_MOUNT_TAG,
    };
    if let Err(error) = driver.init(Rings::own()) {
        say!("p9: device does not initialise: {error}");
        return;
    }
    wire::claim_memory(&EXTRA);
    let mut tag = [0u8; 32];
    let tag = mount_tag(&mut tag);
    let mut session = Session::new(driver);
    let (version, attach) = session.start();
    say!(
        "p9 device: window={window:#x} features offered {:#x} accepted {:#x} tag={tag} msize={}",
        session.driver.offered,
        session.driver.accepted,
        session.msize
    );
    let getattr = session.good();
    say!(
        "p9 good: version={} attach={} getattr={}",
        word(version),
        word(attach),
        word(getattr)
    );
    if !(version && attach && getattr) {
        say!("p9 attacks done: 0 of 0 answered as a correct server may, device broken before the attacks");
        return;
    }
    if let Some(name) = arg("probe.p9.wait") {
        if !wait_for(&mut session, name.as_bytes()) {
            say!("p9 attacks done: 0 of 0 answered as a correct server may, {name} never appeared");
            return;
        }
    }
    let (passed, tried, works) = attacks::run_all(&mut session);
    let final_good = session.good();
    say!(
        "p9 attacks done: {passed} of {tried} answered as a correct server may, {}",
        if works && final_good {
            "device still works"
        } else {
            "device broken"
        }
    );
}

/// How long `probe.p9.wait=` waits at most.
const WAIT_MS: u64 = 600_000;
/// How often it looks.
const WAIT_POLL_MS: u64 = 200;

/// `probe.p9.wait=NAME`: waits until `NAME` exists in the shared folder's root,
/// so that a test can start the attacks once the other personality is busy
/// with the folder (the folder is the one thing the two share).
fn wait_for(session: &mut Session, name: &[u8]) -> bool {
    const PROBE_FID: u32 = 20;
    say!(
        "p9 waiting for {} in the shared folder",
        core::str::from_utf8(name).unwrap_or("?")
    );
    for _ in 0..WAIT_MS / WAIT_POLL_MS {
        let (reply, tag) = session.walk(wire::ROOT, PROBE_FID, &[name]);
        if reply.is(wire::kind::TWALK + 1) && reply.tag == tag && reply.u16_at(7) == 1 {
            session.clunk(PROBE_FID);
            say!("p9 found it: starting the attacks");
            return true;
        }
        crate::probe::delay_ms(WAIT_POLL_MS);
    }
    false
}

/// `ok` or `fail`.
fn word(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "fail"
    }
}

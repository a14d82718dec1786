//! The attacks on the block device: buffers and rings outside the probe's RAM,
//! broken chains and indices, malformed requests. Each must be refused (an error
//! status, a chain completed without one, or DEVICE_NEEDS_RESET) without being
//! performed, and the device must serve a good request afterwards.
//!
//! What the probe can see itself it checks: a sector an OUT attack aimed at still
//! holds what it held, a buffer an IN attack named in its own RAM is untouched.
//! What lies outside its RAM (Janus' memory, the other personality's, the disk
//! beyond its volume) the test checks from the host.

use super::driver::{input, out, Driver, InitError, Outcome, Rings};
use super::memory::{at, fill_pattern, layout, ram, write_descriptor, write_header};
use super::{
    CANARY_SECTOR, CANARY_TAG, DESC_INDIRECT, DESC_NEXT, DESC_WRITE, GOOD_SECTOR, GOOD_TAG, SECTOR,
    STATUS_UNWRITTEN, T_DISCARD, T_IN, T_OUT, T_WRITE_ZEROES,
};
use crate::probe::arg;
use crate::say;

/// Nothing is at 4 GiB on the virt board with 2 GiB of RAM.
const UNMAPPED: u64 = 0x1_0000_0000;
/// The physical PL011 on the virt board: a device buffer on another device's
/// registers (an IN there would print the data).
const PHYSICAL_UART: u64 = 0x0900_0000;
/// Where Janus' text sits on the virt board when the test names no address.
const JANUS_TEXT: u64 = 0x4020_1000;
/// Offsets in a target page: the status byte and the used ring placed there.
const STATUS_OFFSET: u64 = 0x400;
const USED_OFFSET: u64 = 0x800;
/// A request type virtio-blk does not define.
const T_UNKNOWN: u32 = 0xdead;

/// What to check after an attack, once the device works again.
#[derive(Clone, Copy)]
enum Check {
    /// The sector still holds the pattern of the tag.
    Sector(u64, &'static str),
    /// The probe's buffer (filled with 0xee before the attack) is untouched.
    Untouched(u64, usize),
}

/// The byte [`Check::Untouched`] buffers are filled with.
const FILL: u8 = 0xee;

struct Tally {
    tried: u32,
    refused: u32,
    works: bool,
}

/// Runs `attack`, recovers the device if it needs it, runs the checks and a good
/// request, and prints the attack's line.
fn attack(
    driver: &mut Driver,
    tally: &mut Tally,
    name: &str,
    target: Option<u64>,
    checks: &[Check],
    attack: impl FnOnce(&mut Driver) -> Outcome,
) {
    // Once the device failed a good request, further attacks show nothing.
    if !tally.works {
        return;
    }
    for check in checks {
        if let Check::Untouched(addr, len) = *check {
            ram::fill(addr, len, FILL);
        }
    }
    let outcome = attack(driver);
    // Own buffers first: a recovery must not hide what the device wrote.
    let mut performed = checks.iter().any(|check| match *check {
        Check::Untouched(addr, len) => !ram::all(addr, len, FILL),
        Check::Sector(..) => false,
    });
    // A ring attack leaves the queue on the attack's rings, whatever the device
    // answered: the probe's own come back only with a new set-up.
    let broken = matches!(
        outcome,
        Outcome::NeedsReset | Outcome::Timeout | Outcome::SetupRefused
    ) || driver.needs_reset()
        || driver.rings != Rings::own();
    let recovered = !broken || driver.recover();
    let mut unknown = false;
    for check in checks {
        if let Check::Sector(sector, tag) = *check {
            let (read, same) = driver.check_pattern(sector, tag);
            if !read.ok() {
                unknown = true;
            } else if !same {
                performed = true;
            }
        }
    }
    tally.tried += 1;
    let refused = outcome.refused() && !performed && !unknown;
    if refused {
        tally.refused += 1;
    }
    let good = recovered && driver.good_after(tally.tried);
    tally.works &= good;
    if !good {
        say!("virtio attacks stopped after attack={name}: the device no longer works");
    }
    let mut target_text = [0u8; 32];
    let target_text = match target {
        Some(addr) => format_target(&mut target_text, addr),
        None => "",
    };
    say!(
        "virtio attack={name}{target_text} result={}{}{} refused={} good-after={}",
        outcome.word(),
        if broken { " reinit=yes" } else { "" },
        if checks.is_empty() {
            ""
        } else if unknown {
            " performed=unknown"
        } else if performed {
            " performed=yes"
        } else {
            " performed=no"
        },
        if refused { "yes" } else { "no" },
        if good { "ok" } else { "fail" }
    );
}

/// ` target=0x...` into `buffer`.
fn format_target(buffer: &mut [u8; 32], addr: u64) -> &str {
    use core::fmt::Write;
    struct Cursor<'a>(&'a mut [u8], usize);
    impl Write for Cursor<'_> {
        fn write_str(&mut self, text: &str) -> core::fmt::Result {
            let end = self.1 + text.len();
            let slot = self.0.get_mut(self.1..end).ok_or(core::fmt::Error)?;
            slot.copy_from_slice(text.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
    let mut cursor = Cursor(buffer, 0);
    let _ = write!(cursor, " target={addr:#x}");
    let len = cursor.1;
    core::str::from_utf8(&buffer[..len]).unwrap_or("")
}

/// The first address of `probe.KEY=ADDR` or `probe.KEY=ADDR-END`.
fn target_arg(key: &str) -> Option<u64> {
    let text = arg(key)?;
    let first = text.split('-').next()?;
    u64::from_str_radix(first.trim_start_matches("0x"), 16).ok()
}

/// An IN of the good sector into `addr`.
fn read_into(driver: &mut Driver, addr: u64, len: u32) -> Outcome {
    driver.request(T_IN, GOOD_SECTOR, Some(input(addr, len)))
}

/// An OUT to the canary sector from `addr`.
fn write_from(driver: &mut Driver, addr: u64, len: u32) -> Outcome {
    driver.request(T_OUT, CANARY_SECTOR, Some(out(addr, len)))
}

/// An OUT of the pattern of `tag`, `sectors` long, at `sector`.
fn write_at(driver: &mut Driver, sector: u64, sectors: usize, tag: &str) -> Outcome {
    let data = at(layout::DATA);
    fill_pattern(data, sectors * SECTOR, tag);
    driver.request(T_OUT, sector, Some(out(data, (sectors * SECTOR) as u32)))
}

/// Sets the device up with queue 0 at `rings` and sends one good IN through it.
fn ring_attack(driver: &mut Driver, rings: Rings) -> Outcome {
    match driver.init(rings) {
        Ok(()) => read_into(driver, at(layout::DATA), SECTOR as u32),
        Err(InitError::QueueRefused | InitError::DriverOkRefused) => Outcome::SetupRefused,
        Err(_) => Outcome::Timeout,
    }
}

/// A chain of descriptors the probe writes itself, head 0; returns what came back
/// with the status byte at `status`.
fn chain(
    driver: &mut Driver,
    status: Option<u64>,
    descriptors: &[(u64, u32, u16, u16)],
) -> Outcome {
    for (index, &(addr, len, flags, next)) in descriptors.iter().enumerate() {
        driver.descriptor(index as u16, addr, len, flags, next);
    }
    if let Some(status) = status {
        ram::put_u8(status, STATUS_UNWRITTEN);
    }
    driver.publish(0, 1);
    driver.wait(status)
}

/// Runs every attack; returns (refused, tried, device worked after each).
pub fn run_all(driver: &mut Driver, ram_base: u64, ram_size: u64) -> (u32, u32, bool) {
    let ram_end = ram_base + ram_size;
    let janus = target_arg("probe.janus").unwrap_or(JANUS_TEXT);
    let other = target_arg("probe.other");
    let mut tally = Tally {
        tried: 0,
        refused: 0,
        works: true,
    };
    let tally = &mut tally;
    let data = at(layout::DATA);
    let header = at(layout::HEADER);
    let status = at(layout::STATUS);
    let one = SECTOR as u32;
    let canary = [Check::Sector(CANARY_SECTOR, CANARY_TAG)];
    let untouched = [Check::Untouched(data, SECTOR)];

    // 1. Data buffers outside the probe's RAM.
    attack(driver, tally, "past-ram-in", Some(ram_end), &[], |d| {
        read_into(d, ram_end, one)
    });
    attack(
        driver,
        tally,
        "straddle-ram-in",
        Some(ram_end - 256),
        &[],
        |d| read_into(d, ram_end - 256, one),
    );
    attack(driver, tally, "unmapped-in", Some(UNMAPPED), &[], |d| {
        read_into(d, UNMAPPED, one)
    });
    attack(driver, tally, "mmio-in", Some(PHYSICAL_UART), &[], |d| {
        read_into(d, PHYSICAL_UART, one)
    });
    attack(driver, tally, "past-ram-out", Some(ram_end), &canary, |d| {
        write_from(d, ram_end, one)
    });

    // 2. Janus' memory: data in and out, the header read from it, the status
    // byte written into it.
    attack(driver, tally, "janus-in", Some(janus), &[], |d| {
        read_into(d, janus, one)
    });
    attack(driver, tally, "janus-out", Some(janus), &canary, |d| {
        write_from(d, janus, one)
    });
    attack(
        driver,
        tally,
        "janus-header",
        Some(janus),
        &untouched,
        |d| {
            chain(
                d,
                Some(status),
                &[
                    (janus, 16, DESC_NEXT, 1),
                    (data, one, DESC_NEXT | DESC_WRITE, 2),
                    (status, 1, DESC_WRITE, 0),
                ],
            )
        },
    );
    let janus_status = janus + STATUS_OFFSET;
    attack(
        driver,
        tally,
        "janus-status",
        Some(janus_status),
        &untouched,
        |d| {
            write_header(header, T_IN, GOOD_SECTOR);
            chain(
                d,
                None,
                &[
                    (header, 16, DESC_NEXT, 1),
                    (data, one, DESC_NEXT | DESC_WRITE, 2),
                    (janus_status, 1, DESC_WRITE, 0),
                ],
            )
        },
    );

    // 3. The other personality's RAM.
    match other {
        Some(other) => {
            attack(driver, tally, "other-in", Some(other), &[], |d| {
                read_into(d, other, one)
            });
            attack(driver, tally, "other-out", Some(other), &canary, |d| {
                write_from(d, other, one)
            });
        }
        None => say!("virtio attack=other-in skipped (no probe.other=)"),
    }

    // 4. The queue's own parts outside the probe's RAM.
    let own = Rings::own();
    attack(driver, tally, "desc-outside", Some(ram_end), &[], |d| {
        ring_attack(
            d,
            Rings {
                descriptors: ram_end,
                ..own
            },
        )
    });
    attack(
        driver,
        tally,
        "avail-outside",
        Some(ram_end - 16),
        &[],
        |d| {
            ring_attack(
                d,
                Rings {
                    avail: ram_end - 16,
                    ..own
                },
            )
        },
    );
    let janus_used = janus + USED_OFFSET;
    attack(driver, tally, "used-janus", Some(janus_used), &[], |d| {
        ring_attack(
            d,
            Rings {
                used: janus_used,
                ..own
            },
        )
    });
    if let Some(other) = other {
        let other_used = other + USED_OFFSET;
        attack(driver, tally, "used-other", Some(other_used), &[], |d| {
            ring_attack(
                d,
                Rings {
                    used: other_used,
                    ..own
                },
            )
        });
    }

    // 5. Chains that never end or leave the table.
    let size = driver.size;
    attack(driver, tally, "loop", None, &untouched, |d| {
        write_header(header, T_IN, GOOD_SECTOR);
        chain(d, Some(status), &[(header, 16, DESC_NEXT, 0)])
    });
    attack(driver, tally, "loop-back", None, &untouched, |d| {
        write_header(header, T_IN, GOOD_SECTOR);
        chain(
            d,
            Some(status),
            &[
                (header, 16, DESC_NEXT, 1),
                (data, one, DESC_NEXT | DESC_WRITE, 2),
                (status, 1, DESC_WRITE | DESC_NEXT, 0),
            ],
        )
    });
    attack(driver, tally, "long-chain", None, &untouched, |d| {
        write_header(header, T_IN, GOOD_SECTOR);
        d.descriptor(0, header, 16, DESC_NEXT, 1);
        // Every other descriptor a writable piece of the data buffer, the last one
        // leading back to the second: more descriptors than the queue has.
        for index in 1..size {
            let next = if index + 1 == size { 1 } else { index + 1 };
            let piece = data + 16 * u64::from(index);
            d.descriptor(index, piece, 16, DESC_NEXT | DESC_WRITE, next);
        }
        chain(d, Some(status), &[])
    });
    attack(driver, tally, "next-out-of-range", None, &untouched, |d| {
        write_header(header, T_IN, GOOD_SECTOR);
        chain(
            d,
            Some(status),
            &[
                (header, 16, DESC_NEXT, 1),
                (data, one, DESC_NEXT | DESC_WRITE, 2),
                (status, 1, DESC_WRITE | DESC_NEXT, size),
            ],
        )
    });

    // 6. Available ring entries and indices.
    attack(driver, tally, "head-out-of-range", None, &untouched, |d| {
        write_header(header, T_IN, GOOD_SECTOR);
        ram::put_u8(status, STATUS_UNWRITTEN);
        d.descriptor(0, header, 16, DESC_NEXT, 1);
        d.descriptor(1, data, one, DESC_NEXT | DESC_WRITE, 2);
        d.descriptor(2, status, 1, DESC_WRITE, 0);
        d.publish(size, 1);
        d.wait(Some(status))
    });
    attack(driver, tally, "avail-idx-jump", None, &untouched, |d| {
        write_header(header, T_IN, GOOD_SECTOR);
        ram::put_u8(status, STATUS_UNWRITTEN);
        d.descriptor(0, header, 16, DESC_NEXT, 1);
        d.descriptor(1, data, one, DESC_NEXT | DESC_WRITE, 2);
        d.descriptor(2, status, 1, DESC_WRITE, 0);
        d.publish(0, size + 1);
        d.wait(Some(status))
    });

    // 7. Malformed requests.
    attack(driver, tally, "short-header", None, &untouched, |d| {
        write_header(header, T_IN, GOOD_SECTOR);
        chain(
            d,
            Some(status),
            &[
                (header, 8, DESC_NEXT, 1),
                (data, one, DESC_NEXT | DESC_WRITE, 2),
                (status, 1, DESC_WRITE, 0),
            ],
        )
    });
    attack(driver, tally, "no-status", None, &canary, |d| {
        write_header(header, T_OUT, CANARY_SECTOR);
        fill_pattern(data, SECTOR, "no-status");
        chain(d, None, &[(header, 16, DESC_NEXT, 1), (data, one, 0, 0)])
    });
    attack(driver, tally, "writable-first", None, &untouched, |d| {
        write_header(header, T_IN, GOOD_SECTOR);
        chain(
            d,
            Some(status),
            &[
                (data, one, DESC_NEXT | DESC_WRITE, 1),
                (header, 16, DESC_NEXT, 2),
                (status, 1, DESC_WRITE, 0),
            ],
        )
    });
    attack(driver, tally, "indirect", None, &untouched, |d| {
        // A good IN in an indirect table, which was not negotiated: performed if the
        // data or the table's own status byte arrive.
        let table = at(layout::INDIRECT);
        let header_2 = at(layout::HEADER_2);
        let status_2 = at(layout::STATUS_2);
        write_header(header_2, T_IN, GOOD_SECTOR);
        write_descriptor(table, header_2, 16, DESC_NEXT, 1);
        write_descriptor(table + 16, data, one, DESC_NEXT | DESC_WRITE, 2);
        write_descriptor(table + 32, status_2, 1, DESC_WRITE, 0);
        chain(d, Some(status_2), &[(table, 48, DESC_INDIRECT, 0)])
    });

    // 8. Addresses, lengths and sectors that do not add up.
    let wrapping = 0u64.wrapping_sub(256);
    attack(driver, tally, "addr-wrap", Some(wrapping), &[], |d| {
        read_into(d, wrapping, one)
    });
    attack(driver, tally, "odd-length", None, &untouched, |d| {
        read_into(d, data, 100)
    });
    let capacity = driver.capacity;
    attack(driver, tally, "past-end-out", None, &[], |d| {
        write_at(d, capacity, 1, "past-end-out")
    });
    attack(driver, tally, "past-end-in", None, &untouched, |d| {
        d.request(T_IN, capacity, Some(input(data, one)))
    });
    let last = capacity.saturating_sub(1);
    attack(
        driver,
        tally,
        "straddle-end-out",
        None,
        &[Check::Sector(last, CANARY_TAG)],
        |d| write_at(d, last, 2, "straddle-end"),
    );
    let good = [Check::Sector(GOOD_SECTOR, GOOD_TAG)];
    attack(driver, tally, "sector-overflow", None, &good, |d| {
        write_at(d, u64::MAX, 1, "sector-overflow")
    });
    attack(driver, tally, "byte-offset-overflow", None, &good, |d| {
        write_at(d, 1 << 55, 1, "byte-overflow")
    });
    for (name, kind) in [("discard", T_DISCARD), ("write-zeroes", T_WRITE_ZEROES)] {
        attack(driver, tally, name, None, &canary, |d| {
            // One segment: the canary sector, one sector, no flags. Neither command
            // was negotiated.
            let segment = at(layout::SEGMENT);
            ram::put_u64(segment, CANARY_SECTOR);
            ram::put_u32(segment + 8, 1);
            ram::put_u32(segment + 12, 0);
            d.request(kind, 0, Some(out(segment, 16)))
        });
    }
    attack(driver, tally, "unknown-type", None, &canary, |d| {
        fill_pattern(data, SECTOR, "unknown-type");
        d.request(T_UNKNOWN, CANARY_SECTOR, Some(out(data, one)))
    });

    // 9. The double-fetch race (not counted: both answers are right, as long as
    // nothing reaches the targets, which the test checks).
    if tally.works {
        super::race::run(driver, janus, other);
    }

    // The good data is still where it was.
    if !driver.check_pattern(GOOD_SECTOR, GOOD_TAG).1 {
        say!("virtio: sector 0 lost its good pattern");
        tally.works = false;
    }
    (tally.refused, tally.tried, tally.works)
}

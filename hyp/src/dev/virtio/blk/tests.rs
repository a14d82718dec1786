//! Block device tests: requests through the transport and hostile chains; random
//! rings in `random.rs`, gathered runs in `gather.rs`.

mod gather;
mod random;

use super::request::{STATUS_IOERR, STATUS_OK, STATUS_UNSUPP};
use super::*;
use crate::dev::virtio::fake::{reg, DiskOp, Harness, INDIRECT, NEXT, RAM_BASE, RAM_BYTES, WRITE};
use crate::dev::virtio::mmio::INTERRUPT_CONFIG_CHANGE;
use crate::dev::virtio::status;

const HEADER: u64 = crate::dev::virtio::fake::BUFFERS;
const STATUS_AT: u64 = HEADER + 0x100;
const DATA: u64 = HEADER + 0x1000;
const SECTORS: u64 = 64;
const ALL: u64 = FEATURES;

const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;
const T_DISCARD: u32 = 11;
const T_WRITE_ZEROES: u32 = 13;

fn header(request_type: u32, sector: u64) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&request_type.to_le_bytes());
    bytes[8..].copy_from_slice(&sector.to_le_bytes());
    bytes
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn harness() -> Harness {
    Harness::ready(SECTORS, 16, ALL)
}

/// Writes the header and a 0xff status, offers `buffers` at descriptor 0 and processes.
fn run(h: &mut Harness, request_type: u32, sector: u64, buffers: &[(u64, u32, bool)]) -> (u8, u32) {
    h.ram.put(HEADER, &header(request_type, sector));
    h.ram.put(STATUS_AT, &[0xff]);
    let before = h.queue.used_idx();
    h.queue.add_chain(0, buffers);
    h.kick();
    assert_eq!(h.queue.used_idx(), before.wrapping_add(1), "one completion");
    let (id, len) = h.queue.used_elem(before);
    assert_eq!(id, 0);
    (h.ram.get(STATUS_AT, 1)[0], len)
}

fn hdr() -> (u64, u32, bool) {
    (HEADER, 16, false)
}

fn st() -> (u64, u32, bool) {
    (STATUS_AT, 1, true)
}

/// A plain good write then read of sector 3; checks the device still works.
fn still_works(h: &mut Harness) {
    let data = pattern(512, 77);
    h.ram.put(DATA, &data);
    assert_eq!(
        run(h, T_OUT, 3, &[hdr(), (DATA, 512, false), st()]),
        (STATUS_OK, 1)
    );
    h.ram.put(DATA, &[0; 512]);
    assert_eq!(
        run(h, T_IN, 3, &[hdr(), (DATA, 512, true), st()]),
        (STATUS_OK, 513)
    );
    assert_eq!(h.ram.get(DATA, 512), data);
    assert_eq!(h.disk.lock().violations, 0);
    assert_eq!(h.ram.stray_accesses(), 0);
}

#[test]
fn write_then_read_round_trips_as_one_guest_run() {
    let mut h = harness();
    let data = pattern(1024, 1);
    h.ram.put(DATA, &data);
    assert_eq!(
        run(&mut h, T_OUT, 5, &[hdr(), (DATA, 1024, false), st()]),
        (STATUS_OK, 1)
    );
    assert_eq!(&h.disk.lock().data[5 * 512..7 * 512], &data[..]);
    assert_eq!(
        h.disk.lock().log,
        [DiskOp::Write {
            sector: 5,
            len: 1024,
            guest: true
        }]
    );
    let (status, len) = run(&mut h, T_IN, 5, &[hdr(), (DATA + 0x2000, 1024, true), st()]);
    assert_eq!((status, len), (STATUS_OK, 1025));
    assert_eq!(h.ram.get(DATA + 0x2000, 1024), data);
    still_works(&mut h);
}

#[test]
fn adjacent_descriptors_merge_into_one_run() {
    let mut h = harness();
    h.ram.put(DATA, &pattern(1536, 2));
    let buffers = [hdr(), (DATA, 512, false), (DATA + 512, 1024, false), st()];
    assert_eq!(run(&mut h, T_OUT, 0, &buffers), (STATUS_OK, 1));
    assert_eq!(
        h.disk.lock().log,
        [DiskOp::Write {
            sector: 0,
            len: 1536,
            guest: true
        }]
    );
}

#[test]
fn sector_split_across_descriptors_goes_through_a_bounce() {
    let mut h = harness();
    let data = pattern(1024, 3);
    h.ram.put(DATA, &data[..256]);
    h.ram.put(DATA + 0x800, &data[256..]);
    let buffers = [hdr(), (DATA, 256, false), (DATA + 0x800, 768, false), st()];
    assert_eq!(run(&mut h, T_OUT, 10, &buffers), (STATUS_OK, 1));
    assert_eq!(
        h.disk.lock().log,
        [
            DiskOp::Write {
                sector: 10,
                len: 512,
                guest: false
            },
            DiskOp::Write {
                sector: 11,
                len: 512,
                guest: true
            },
        ]
    );
    assert_eq!(&h.disk.lock().data[10 * 512..12 * 512], &data[..]);
    // Read back through four scattered 128-byte pieces and a whole sector.
    let mut buffers = vec![hdr()];
    for i in 0..4 {
        buffers.push((DATA + 0x4000 + 0x200 * i, 128, true));
    }
    buffers.push((DATA + 0x6000, 512, true));
    buffers.push(st());
    assert_eq!(run(&mut h, T_IN, 10, &buffers), (STATUS_OK, 1025));
    let mut back = Vec::new();
    for i in 0..4 {
        back.extend(h.ram.get(DATA + 0x4000 + 0x200 * i, 128));
    }
    back.extend(h.ram.get(DATA + 0x6000, 512));
    assert_eq!(back, data);
}

#[test]
fn header_may_span_descriptors() {
    let mut h = harness();
    h.ram.put(HEADER, &header(T_OUT, 2));
    h.ram.put(DATA, &pattern(512, 4));
    h.ram.put(STATUS_AT, &[0xff]);
    h.queue.add_chain(
        0,
        &[
            (HEADER, 8, false),
            (HEADER + 8, 8, false),
            (DATA, 512, false),
            st(),
        ],
    );
    h.kick();
    assert_eq!(h.ram.get(STATUS_AT, 1)[0], STATUS_OK);
    assert_eq!(&h.disk.lock().data[1024..1536], &pattern(512, 4)[..]);
}

#[test]
fn flush_reaches_the_backend_after_the_writes() {
    let mut h = harness();
    h.ram.put(DATA, &pattern(512, 5));
    run(&mut h, T_OUT, 1, &[hdr(), (DATA, 512, false), st()]);
    run(&mut h, T_OUT, 2, &[hdr(), (DATA, 512, false), st()]);
    assert_eq!(run(&mut h, T_FLUSH, 0, &[hdr(), st()]), (STATUS_OK, 1));
    let log = h.disk.lock().log.clone();
    assert_eq!(log.last(), Some(&DiskOp::Flush));
    assert_eq!(log.iter().filter(|op| **op == DiskOp::Flush).count(), 1);
}

#[test]
fn writes_are_flushed_when_flush_was_not_negotiated() {
    let mut h = Harness::ready(SECTORS, 16, VIRTIO_F_VERSION_1);
    h.ram.put(DATA, &pattern(512, 6));
    assert_eq!(
        run(&mut h, T_OUT, 1, &[hdr(), (DATA, 512, false), st()]),
        (STATUS_OK, 1)
    );
    assert_eq!(h.disk.lock().log.last(), Some(&DiskOp::Flush));
}

#[test]
fn data_and_status_may_share_one_descriptor() {
    let mut h = harness();
    h.disk.lock().data[..512].copy_from_slice(&pattern(512, 8));
    h.ram.put(HEADER, &header(T_IN, 0));
    h.queue.add_chain(0, &[hdr(), (DATA, 513, true)]);
    h.kick();
    assert_eq!(h.queue.used_elem(0), (0, 513));
    assert_eq!(h.ram.get(DATA, 512), pattern(512, 8));
    assert_eq!(h.ram.get(DATA + 512, 1), [STATUS_OK]);
}

#[test]
fn get_id_with_a_short_buffer_writes_what_fits() {
    let mut h = harness();
    let (status, len) = run(&mut h, T_GET_ID, 0, &[hdr(), (DATA, 4, true), st()]);
    assert_eq!((status, len), (STATUS_OK, 5));
    assert_eq!(h.ram.get(DATA, 4), b"pers");
}

#[test]
fn get_id_answers_the_serial() {
    let mut h = harness();
    let (status, len) = run(&mut h, T_GET_ID, 0, &[hdr(), (DATA, 20, true), st()]);
    assert_eq!((status, len), (STATUS_OK, 21));
    let mut expected = b"personal".to_vec();
    expected.resize(20, 0);
    assert_eq!(h.ram.get(DATA, 20), expected);
}

#[test]
fn config_space_holds_capacity_and_limits() {
    let mut h = harness();
    assert_eq!(h.read(reg::CONFIG), SECTORS as u32);
    assert_eq!(h.read(reg::CONFIG + 4), 0);
    assert_eq!(h.read(reg::CONFIG + 12), SEG_MAX);
    assert_eq!(h.read(reg::CONFIG + 20), 512);
    assert_eq!(h.read(reg::CONFIG + 36), MAX_ZEROING_SECTORS);
    assert_eq!(h.read(reg::CONFIG + 40), MAX_ZEROING_SEGMENTS);
    assert_eq!(h.read(reg::CONFIG + 52), MAX_ZEROING_SEGMENTS);
    assert_eq!(h.read(reg::CONFIG + 0x80), 0, "past the end reads zero");
}

#[test]
fn header_shorter_than_16_bytes_is_an_io_error() {
    let mut h = harness();
    assert_eq!(
        run(&mut h, T_OUT, 0, &[(HEADER, 15, false), st()]),
        (STATUS_IOERR, 1)
    );
    still_works(&mut h);
}

#[test]
fn chain_without_status_byte_completes_with_nothing_written() {
    let mut h = harness();
    h.ram.put(DATA, &pattern(512, 7));
    let (status, len) = run(&mut h, T_OUT, 0, &[hdr(), (DATA, 512, false)]);
    assert_eq!((status, len), (0xff, 0));
    assert!(h.disk.lock().log.is_empty());
    still_works(&mut h);
}

#[test]
fn readable_after_writable_is_refused_with_io_error() {
    let mut h = harness();
    let (status, len) = run(&mut h, T_IN, 0, &[(DATA, 512, true), hdr(), st()]);
    assert_eq!((status, len), (STATUS_IOERR, 0));
    assert!(h.disk.lock().log.is_empty());
    still_works(&mut h);
}

#[test]
fn indirect_descriptor_is_refused() {
    let mut h = harness();
    h.ram.put(HEADER, &header(T_IN, 0));
    h.ram.put(STATUS_AT, &[0xff]);
    h.queue.set_desc(0, DATA, 64, INDIRECT | NEXT, 1);
    h.queue.set_desc(1, STATUS_AT, 1, WRITE, 0);
    h.queue.offer(0);
    h.kick();
    assert_eq!(h.queue.used_elem(0), (0, 0));
    assert_eq!(h.ram.get(STATUS_AT, 1)[0], STATUS_IOERR);
    still_works(&mut h);
}

#[test]
fn buffer_outside_ram_is_refused() {
    let mut h = harness();
    let end = RAM_BASE + RAM_BYTES as u64;
    for (addr, len) in [(end - 256, 512), (RAM_BASE - 512, 512), (0, 512), (end, 1)] {
        let (status, len) = run(&mut h, T_IN, 0, &[hdr(), (addr, len, true), st()]);
        assert_eq!((status, len), (STATUS_IOERR, 0));
    }
    assert!(h.disk.lock().log.is_empty());
    still_works(&mut h);
}

#[test]
fn length_overflow_is_refused() {
    let mut h = harness();
    let (status, len) = run(&mut h, T_IN, 0, &[hdr(), (u64::MAX - 10, 512, true), st()]);
    assert_eq!((status, len), (STATUS_IOERR, 0));
    still_works(&mut h);
}

#[test]
fn data_not_a_multiple_of_512_is_an_io_error() {
    let mut h = harness();
    assert_eq!(
        run(&mut h, T_OUT, 0, &[hdr(), (DATA, 500, false), st()]),
        (STATUS_IOERR, 1)
    );
    assert_eq!(
        run(&mut h, T_IN, 0, &[hdr(), (DATA, 513, true), st()]),
        (STATUS_IOERR, 0)
    );
    assert!(h.disk.lock().log.is_empty());
    still_works(&mut h);
}

#[test]
fn sectors_past_the_end_are_an_io_error() {
    let mut h = harness();
    for sector in [SECTORS, SECTORS - 1, u64::MAX, u64::MAX - 1] {
        let buffers = [hdr(), (DATA, 1024, false), st()];
        assert_eq!(run(&mut h, T_OUT, sector, &buffers), (STATUS_IOERR, 1));
        let buffers = [hdr(), (DATA, 1024, true), st()];
        assert_eq!(run(&mut h, T_IN, sector, &buffers), (STATUS_IOERR, 0));
    }
    assert!(h.disk.lock().log.is_empty());
    // The last sector itself is fine.
    let buffers = [hdr(), (DATA, 512, true), st()];
    assert_eq!(run(&mut h, T_IN, SECTORS - 1, &buffers), (STATUS_OK, 513));
    still_works(&mut h);
}

#[test]
fn in_with_readable_data_or_out_with_writable_data_is_an_io_error() {
    let mut h = harness();
    let buffers = [hdr(), (DATA, 512, false), (DATA + 512, 512, true), st()];
    assert_eq!(run(&mut h, T_IN, 0, &buffers).0, STATUS_IOERR);
    assert_eq!(run(&mut h, T_OUT, 0, &buffers).0, STATUS_IOERR);
    assert!(h.disk.lock().log.is_empty());
}

#[test]
fn unknown_request_type_is_unsupported() {
    let mut h = harness();
    for request_type in [2, 10, 14, 0xffff_ffff] {
        assert_eq!(
            run(&mut h, request_type, 0, &[hdr(), st()]),
            (STATUS_UNSUPP, 1)
        );
    }
    still_works(&mut h);
}

fn zeroing_segments(segments: &[(u64, u32, u32)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for &(sector, count, flags) in segments {
        bytes.extend(sector.to_le_bytes());
        bytes.extend(count.to_le_bytes());
        bytes.extend(flags.to_le_bytes());
    }
    bytes
}

fn run_zeroing(h: &mut Harness, request_type: u32, segments: &[(u64, u32, u32)]) -> u8 {
    let bytes = zeroing_segments(segments);
    h.ram.put(DATA, &bytes);
    run(
        h,
        request_type,
        0,
        &[hdr(), (DATA, bytes.len() as u32, false), st()],
    )
    .0
}

#[test]
fn write_zeroes_and_discard_zero_the_sectors() {
    let mut h = harness();
    h.disk.lock().data.fill(0xaa);
    // One segment per request (MAX_ZEROING_SEGMENTS); a second one is refused.
    assert_eq!(
        run_zeroing(&mut h, T_WRITE_ZEROES, &[(2, 3, 1), (10, 1, 0)]),
        STATUS_IOERR
    );
    assert_eq!(run_zeroing(&mut h, T_WRITE_ZEROES, &[(2, 3, 1)]), STATUS_OK);
    assert_eq!(
        run_zeroing(&mut h, T_WRITE_ZEROES, &[(10, 1, 0)]),
        STATUS_OK
    );
    assert_eq!(run_zeroing(&mut h, T_DISCARD, &[(20, 20, 0)]), STATUS_OK);
    let disk = h.disk.lock();
    let zero = |from: usize, to: usize| disk.data[from * 512..to * 512].iter().all(|&b| b == 0);
    assert!(zero(2, 5) && zero(10, 11) && zero(20, 40));
    assert!(disk.data[5 * 512..10 * 512].iter().all(|&b| b == 0xaa));
    assert!(disk.data[40 * 512..].iter().all(|&b| b == 0xaa));
}

#[test]
fn bad_zeroing_requests_are_refused() {
    let mut h = harness();
    let nine = [(0, 1, 0); 9];
    assert_eq!(
        run_zeroing(&mut h, T_DISCARD, &nine),
        STATUS_IOERR,
        "too many segments"
    );
    assert_eq!(run_zeroing(&mut h, T_WRITE_ZEROES, &nine), STATUS_IOERR);
    assert_eq!(
        run_zeroing(&mut h, T_DISCARD, &[(0, 1, 1)]),
        STATUS_UNSUPP,
        "unmap on discard"
    );
    assert_eq!(
        run_zeroing(&mut h, T_WRITE_ZEROES, &[(0, 1, 2)]),
        STATUS_UNSUPP
    );
    assert_eq!(
        run_zeroing(&mut h, T_DISCARD, &[(SECTORS, 1, 0)]),
        STATUS_IOERR
    );
    assert_eq!(
        run_zeroing(&mut h, T_DISCARD, &[(u64::MAX, 2, 0)]),
        STATUS_IOERR
    );
    let too_big = MAX_ZEROING_SECTORS + 1;
    assert_eq!(
        run_zeroing(&mut h, T_WRITE_ZEROES, &[(0, too_big, 0)]),
        STATUS_IOERR
    );
    // A good segment after a bad one in the same request is not run either.
    assert_eq!(
        run_zeroing(&mut h, T_DISCARD, &[(0, 1, 0), (SECTORS, 1, 0)]),
        STATUS_IOERR
    );
    assert_eq!(
        run(&mut h, T_DISCARD, 0, &[hdr(), (DATA, 15, false), st()]).0,
        STATUS_IOERR
    );
    assert_eq!(
        run(&mut h, T_DISCARD, 0, &[hdr(), st()]).0,
        STATUS_IOERR,
        "no segment"
    );
    assert!(h.disk.lock().log.is_empty());
    still_works(&mut h);
}

#[test]
fn zeroing_without_the_feature_is_unsupported() {
    let mut h = Harness::ready(SECTORS, 16, VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_FLUSH);
    assert_eq!(run_zeroing(&mut h, T_DISCARD, &[(0, 1, 0)]), STATUS_UNSUPP);
    assert_eq!(
        run_zeroing(&mut h, T_WRITE_ZEROES, &[(0, 1, 0)]),
        STATUS_UNSUPP
    );
}

#[test]
fn backend_failure_is_an_io_error() {
    let mut h = harness();
    h.disk.lock().failing = true;
    assert_eq!(
        run(&mut h, T_OUT, 0, &[hdr(), (DATA, 512, false), st()]),
        (STATUS_IOERR, 1)
    );
    assert_eq!(
        run(&mut h, T_IN, 0, &[hdr(), (DATA, 512, true), st()]),
        (STATUS_IOERR, 0)
    );
    assert_eq!(run(&mut h, T_FLUSH, 0, &[hdr(), st()]), (STATUS_IOERR, 1));
    h.disk.lock().failing = false;
    still_works(&mut h);
}

#[test]
fn loop_in_chain_completes_with_error_and_the_queue_goes_on() {
    let mut h = harness();
    h.ram.put(STATUS_AT, &[0xff]);
    h.queue.set_desc(0, HEADER, 16, NEXT, 1);
    h.queue.set_desc(1, STATUS_AT, 1, WRITE | NEXT, 0);
    h.queue.offer(0);
    h.kick();
    assert_eq!(h.queue.used_elem(0), (0, 0));
    assert!(!h.needs_reset());
    still_works(&mut h);
}

#[test]
fn chain_longer_than_the_queue_is_refused() {
    let mut h = harness();
    // All 16 descriptors in a row, the last pointing back at the first.
    for index in 0..16u16 {
        h.queue
            .set_desc(index, DATA, 512, NEXT | WRITE, (index + 1) % 16);
    }
    h.queue.offer(0);
    h.kick();
    assert_eq!(h.queue.used_elem(0), (0, 0));
    assert!(!h.needs_reset());
    still_works(&mut h);
}

#[test]
fn ring_outside_ram_needs_reset_and_recovers_after_reset() {
    let mut h = Harness::new(SECTORS, 16);
    h.init(ALL);
    h.write(reg::STATUS, 0);
    h.write(reg::STATUS, status::ACKNOWLEDGE);
    h.write(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    h.write(reg::DRIVER_FEATURES_SEL, 1);
    h.write(reg::DRIVER_FEATURES, 1);
    let negotiating = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
    h.write(reg::STATUS, negotiating);
    let end = RAM_BASE + RAM_BYTES as u64;
    h.set_queue(h.queue.desc, h.queue.avail, end - 64);
    h.write(reg::STATUS, negotiating | status::DRIVER_OK);
    let outcome = h.kick();
    assert!(h.needs_reset());
    assert!(outcome.irq_level);
    assert_eq!(h.read(reg::INTERRUPT_STATUS), INTERRUPT_CONFIG_CHANGE);
    assert_eq!(h.ram.stray_accesses(), 0);
    h.init(ALL);
    assert!(!h.needs_reset());
    still_works(&mut h);
}

#[test]
fn misaligned_ring_needs_reset() {
    for (desc, avail, used) in [(8, 0, 0), (0, 1, 0), (0, 0, 2)] {
        let mut h = Harness::new(SECTORS, 16);
        h.init(ALL);
        h.write(reg::STATUS, 0);
        let q = h.queue.clone();
        h.write(reg::STATUS, status::ACKNOWLEDGE);
        h.write(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        h.write(reg::DRIVER_FEATURES_SEL, 1);
        h.write(reg::DRIVER_FEATURES, 1);
        let negotiating = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        h.write(reg::STATUS, negotiating);
        h.set_queue(q.desc + desc, q.avail + avail, q.used + used);
        h.write(reg::STATUS, negotiating | status::DRIVER_OK);
        h.kick();
        assert!(h.needs_reset());
    }
}

#[test]
fn head_index_out_of_range_needs_reset() {
    let mut h = harness();
    h.queue.offer(16);
    h.kick();
    assert!(h.needs_reset());
    assert_eq!(h.queue.used_idx(), 0);
    // Further notifications are refused until reset.
    h.kick();
    assert_eq!(h.queue.used_idx(), 0);
}

#[test]
fn avail_index_jumping_past_the_queue_size_needs_reset() {
    let mut h = harness();
    h.queue.set_avail_idx(17);
    h.kick();
    assert!(h.needs_reset());
    assert_eq!(h.queue.used_idx(), 0);
}

#[test]
fn budget_bounds_one_process_call() {
    let mut h = harness();
    h.ram.put(HEADER, &header(T_FLUSH, 0));
    for request in 0..5u16 {
        h.queue.add_chain(
            request * 2,
            &[hdr(), (STATUS_AT + u64::from(request), 1, true)],
        );
    }
    let outcome = h.kick_with_budget(2);
    assert_eq!(h.queue.used_idx(), 2);
    assert!(outcome.more_pending && outcome.irq_level);
    let mut memory = h.ram.clone();
    let outcome = h.transport.process(&mut memory, 2);
    assert_eq!(h.queue.used_idx(), 4);
    assert!(outcome.more_pending);
    let outcome = h.transport.process(&mut memory, 2);
    assert_eq!(h.queue.used_idx(), 5);
    assert!(!outcome.more_pending);
    assert!(!h.transport.process(&mut memory, 2).more_pending);
}

#[test]
fn completion_raises_the_used_buffer_interrupt_until_acknowledged() {
    let mut h = harness();
    assert!(!h.transport.irq_level());
    run(&mut h, T_FLUSH, 0, &[hdr(), st()]);
    assert!(h.transport.irq_level());
    assert_eq!(h.read(reg::INTERRUPT_STATUS), 1);
    h.write(reg::INTERRUPT_ACK, 1);
    assert!(!h.transport.irq_level());
}

#[test]
fn default_write_zeroes_writes_bounded_chunks() {
    let h = Harness::new(SECTORS, 16);
    let mut disk = h.disk.clone();
    disk.lock().data.fill(1);
    disk.write_zeroes(1, 20).unwrap();
    assert_eq!(disk.write_zeroes(60, 5), Err(IoError::OutOfRange));
    assert_eq!(disk.discard(u64::MAX, 2), Err(IoError::OutOfRange));
    let state = disk.lock();
    assert!(state.data[512..21 * 512].iter().all(|&b| b == 0));
    assert!(state.data[21 * 512..].iter().all(|&b| b == 1));
    let lens: Vec<_> = state
        .log
        .iter()
        .map(|op| match op {
            DiskOp::Write {
                len, guest: false, ..
            } => *len,
            _ => 0,
        })
        .collect();
    assert_eq!(lens, [4096, 4096, 2048]);
}

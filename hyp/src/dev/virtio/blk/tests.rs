//! Block device tests: requests through the transport, hostile chains, random rings.

use proptest::prelude::*;

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

/// A descriptor address: mostly in the buffer area, sometimes at the edges or anywhere.
fn address() -> impl Strategy<Value = u64> {
    let end = RAM_BASE + RAM_BYTES as u64;
    prop_oneof![
        4 => (0u64..0x6000).prop_map(|offset| HEADER + offset),
        4 => (0u64..48).prop_map(|slot| HEADER + 0x200 * slot),
        1 => (0u64..2048).prop_map(move |back| end - back),
        1 => (0u64..2048).prop_map(|back| RAM_BASE.wrapping_sub(back)),
        1 => any::<u64>(),
    ]
}

/// Descriptor flags: mostly NEXT and WRITE, sometimes anything.
fn flags() -> impl Strategy<Value = u16> {
    prop_oneof![8 => 0u16..4, 1 => any::<u16>()]
}

/// A `next` index: mostly the following descriptor (`None`), sometimes anything small.
fn next() -> impl Strategy<Value = Option<u16>> {
    prop_oneof![3 => Just(None), 1 => (0u16..20).prop_map(Some)]
}

fn length() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..2048,
        2 => (0u32..4).prop_map(|sectors| sectors * 512),
        1 => any::<u32>(),
    ]
}

fn request_header() -> impl Strategy<Value = [u8; 16]> {
    let request_type = prop_oneof![
        Just(T_IN),
        Just(T_OUT),
        Just(T_FLUSH),
        Just(T_GET_ID),
        Just(T_DISCARD),
        Just(T_WRITE_ZEROES),
        any::<u32>()
    ];
    let sector = prop_oneof![
        0..SECTORS + 4,
        any::<u64>(),
        (0u64..4).prop_map(|k| u64::MAX - k)
    ];
    (request_type, sector).prop_map(|(t, s)| header(t, s))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random descriptor tables, rings and request bytes never panic, never reach the
    /// backend outside the volume or with a buffer outside RAM, and never make the device
    /// read or write guest memory outside RAM.
    #[test]
    fn random_rings_stay_inside_ram_and_volume(
        size_log in 0u32..5,
        descriptors in proptest::collection::vec((address(), length(), flags(), next()), 16),
        requests in proptest::collection::vec(
            (
                (any::<bool>(), 0u64..16, 1u32..4, any::<bool>()),
                (0u32..1536, any::<bool>(), proptest::option::of(0u64..SECTORS + 2)),
            ),
            4,
        ),
        heads in proptest::collection::vec((proptest::bool::weighted(0.03), any::<u16>()), 1..24),
        avail_extra in prop_oneof![12 => Just(0u16), 1 => 1u16..3],
        headers in proptest::collection::vec(request_header(), 32),
        filler in proptest::collection::vec(any::<u8>(), 0x6000),
        budget in 1usize..40,
        gathers in any::<bool>(),
    ) {
        let size = 1u16 << size_log;
        let mut h = Harness::ready(SECTORS, size, ALL);
        h.disk.lock().gathers = gathers;
        h.ram.put(HEADER, &filler);
        for (i, bytes) in headers.iter().enumerate() {
            h.ram.put(HEADER + 0x200 * i as u64, bytes);
        }
        for (index, &(addr, len, flags, next)) in descriptors.iter().enumerate().take(usize::from(size)) {
            let next = next.unwrap_or(index as u16 + 1);
            h.queue.set_desc(index as u16, addr, len, flags, next);
        }
        // Some well-formed requests among the noise: header slot, data in two parts
        // (adjacent or not, split anywhere), status.
        let mut request_heads = Vec::new();
        for (group, &((apply, slot, sectors, writable), (split, gap, sector))) in
            requests.iter().enumerate()
        {
            let first = 4 * group as u16;
            if !apply || first + 3 >= size {
                continue;
            }
            let total = sectors * 512;
            let split = split.min(total);
            let data = HEADER + 0x6000 + 0x1000 * slot;
            let second = data + u64::from(split) + if gap { 64 } else { 0 };
            let data_flags = if writable { NEXT | WRITE } else { NEXT };
            h.queue.set_desc(first, HEADER + 0x200 * (2 * slot), 16, NEXT, first + 1);
            h.queue.set_desc(first + 1, data, split, data_flags, first + 2);
            h.queue.set_desc(first + 2, second, total - split, data_flags, first + 3);
            h.queue.set_desc(first + 3, STATUS_AT + slot, 1, WRITE, 0);
            if let Some(sector) = sector {
                let request_type = if writable { T_IN } else { T_OUT };
                h.ram.put(HEADER + 0x200 * (2 * slot), &header(request_type, sector));
            }
            request_heads.push(first);
        }
        let random_heads = heads.iter().map(|&(wild, head)| if wild { head } else { head % size });
        for head in request_heads.into_iter().chain(random_heads).take(usize::from(size)) {
            h.queue.offer(head);
        }
        if avail_extra > 0 {
            h.queue.set_avail_idx(h.queue.avail_idx.wrapping_add(avail_extra * size));
        }
        let mut memory = h.ram.clone();
        h.write(reg::QUEUE_NOTIFY, 0);
        for _ in 0..64 {
            if !h.transport.process(&mut memory, budget).more_pending {
                break;
            }
        }
        prop_assert!(!h.transport.more_pending());
        prop_assert_eq!(h.disk.lock().violations, 0);
        prop_assert_eq!(h.ram.stray_accesses(), 0);
        let used = h.queue.used_idx();
        prop_assert!(h.needs_reset() || used == h.queue.avail_idx);
    }
}

/// A harness whose RAM disk takes `read_runs` / `write_runs` as one call each.
fn gathering_harness(sectors: u64, queue_size: u16) -> Harness {
    let h = Harness::ready(sectors, queue_size, ALL);
    h.disk.lock().gathers = true;
    h
}

#[test]
fn scattered_pieces_of_one_request_take_one_backend_call() {
    let mut h = gathering_harness(SECTORS, 16);
    let data = pattern(2048, 11);
    h.ram.put(DATA, &data[..512]);
    h.ram.put(DATA + 0x2000, &data[512..1536]);
    h.ram.put(DATA + 0x4000, &data[1536..]);
    let buffers = [
        hdr(),
        (DATA, 512, false),
        (DATA + 0x2000, 1024, false),
        (DATA + 0x4000, 512, false),
        st(),
    ];
    assert_eq!(run(&mut h, T_OUT, 5, &buffers), (STATUS_OK, 1));
    assert_eq!(
        h.disk.lock().log,
        [DiskOp::WriteRuns {
            sector: 5,
            lens: vec![512, 1024, 512]
        }]
    );
    assert_eq!(&h.disk.lock().data[5 * 512..9 * 512], &data[..]);
    h.disk.lock().log.clear();
    let buffers = [
        hdr(),
        (DATA + 0x6000, 1024, true),
        (DATA + 0x8000, 512, true),
        (DATA + 0x6400, 512, true),
        st(),
    ];
    assert_eq!(run(&mut h, T_IN, 5, &buffers), (STATUS_OK, 2049));
    assert_eq!(
        h.disk.lock().log,
        [DiskOp::ReadRuns {
            sector: 5,
            lens: vec![1024, 512, 512]
        }]
    );
    let mut back = h.ram.get(DATA + 0x6000, 1024);
    back.extend(h.ram.get(DATA + 0x8000, 512));
    back.extend(h.ram.get(DATA + 0x6400, 512));
    assert_eq!(back, data);
    assert_eq!(h.disk.lock().violations, 0);
}

#[test]
fn adjacent_pieces_merge_inside_the_gathered_runs() {
    let mut h = gathering_harness(SECTORS, 16);
    let buffers = [
        hdr(),
        (DATA, 512, true),
        (DATA + 512, 512, true),
        (DATA + 0x3000, 512, true),
        st(),
    ];
    assert_eq!(run(&mut h, T_IN, 0, &buffers), (STATUS_OK, 1537));
    assert_eq!(
        h.disk.lock().log,
        [DiskOp::ReadRuns {
            sector: 0,
            lens: vec![1024, 512]
        }]
    );
}

#[test]
fn a_bounced_sector_in_the_middle_splits_the_runs_around_it() {
    let mut h = gathering_harness(SECTORS, 16);
    let data = pattern(2048, 12);
    // Sector 20 whole; sector 21 split 256 + 256; sector 22 the rest of that piece;
    // sector 23 elsewhere.
    h.ram.put(DATA, &data[..512]);
    h.ram.put(DATA + 0x2000, &data[512..768]);
    h.ram.put(DATA + 0x3000, &data[768..1536]);
    h.ram.put(DATA + 0x5000, &data[1536..]);
    let buffers = [
        hdr(),
        (DATA, 512, false),
        (DATA + 0x2000, 256, false),
        (DATA + 0x3000, 768, false),
        (DATA + 0x5000, 512, false),
        st(),
    ];
    assert_eq!(run(&mut h, T_OUT, 20, &buffers), (STATUS_OK, 1));
    assert_eq!(
        h.disk.lock().log,
        [
            DiskOp::WriteRuns {
                sector: 20,
                lens: vec![512]
            },
            DiskOp::Write {
                sector: 21,
                len: 512,
                guest: false
            },
            DiskOp::WriteRuns {
                sector: 22,
                lens: vec![512, 512]
            },
        ]
    );
    assert_eq!(&h.disk.lock().data[20 * 512..24 * 512], &data[..]);
    // And back the same way.
    h.disk.lock().log.clear();
    for (addr, len) in [(DATA, 512), (DATA + 0x2000, 256), (DATA + 0x3000, 768)] {
        h.ram.put(addr, &vec![0; len]);
    }
    h.ram.put(DATA + 0x5000, &[0; 512]);
    let buffers: Vec<_> = buffers
        .iter()
        .map(|&(addr, len, _)| (addr, len, addr != HEADER))
        .collect();
    assert_eq!(run(&mut h, T_IN, 20, &buffers), (STATUS_OK, 2049));
    let mut back = h.ram.get(DATA, 512);
    back.extend(h.ram.get(DATA + 0x2000, 256));
    back.extend(h.ram.get(DATA + 0x3000, 768));
    back.extend(h.ram.get(DATA + 0x5000, 512));
    assert_eq!(back, data);
    assert_eq!(h.disk.lock().log.len(), 3);
    assert_eq!(h.disk.lock().violations, 0);
}

#[test]
fn a_full_chain_of_scattered_sectors_is_one_call() {
    let mut h = gathering_harness(512, QUEUE_MAX_SIZE);
    let runs = SEG_MAX as u64;
    let mut buffers = vec![hdr()];
    for i in 0..runs {
        h.ram.put(DATA + 1024 * i, &pattern(512, i as u8));
        buffers.push((DATA + 1024 * i, 512, false));
    }
    buffers.push(st());
    assert_eq!(buffers.len(), usize::from(QUEUE_MAX_SIZE));
    assert_eq!(run(&mut h, T_OUT, 7, &buffers), (STATUS_OK, 1));
    assert_eq!(
        h.disk.lock().log,
        [DiskOp::WriteRuns {
            sector: 7,
            lens: vec![512; MAX_RUNS]
        }]
    );
    for i in 0..runs as usize {
        let sector = 7 + i;
        assert_eq!(
            &h.disk.lock().data[sector * 512..(sector + 1) * 512],
            &pattern(512, i as u8)[..]
        );
    }
}

#[test]
fn more_runs_than_max_runs_take_a_second_call() {
    // The status byte shares the last sector's descriptor, so a chain of the queue's size
    // holds the header and SEG_MAX + 1 runs.
    let mut h = gathering_harness(512, QUEUE_MAX_SIZE);
    let runs = SEG_MAX as u64 + 1;
    h.ram.put(HEADER, &header(T_IN, 3));
    let mut buffers = vec![hdr()];
    for i in 0..runs {
        buffers.push((DATA + 1024 * i, 512, true));
    }
    let status_at = DATA + 1024 * (runs - 1) + 512;
    if let Some(last) = buffers.last_mut() {
        last.1 += 1;
    }
    assert_eq!(buffers.len(), usize::from(QUEUE_MAX_SIZE));
    h.ram.put(status_at, &[0xff]);
    let before = h.queue.used_idx();
    h.queue.add_chain(0, &buffers);
    h.kick();
    assert_eq!(h.queue.used_idx(), before.wrapping_add(1));
    assert_eq!(h.ram.get(status_at, 1)[0], STATUS_OK);
    assert_eq!(
        h.disk.lock().log,
        [
            DiskOp::ReadRuns {
                sector: 3,
                lens: vec![512; MAX_RUNS]
            },
            DiskOp::ReadRuns {
                sector: 3 + MAX_RUNS as u64,
                lens: vec![512]
            },
        ]
    );
}

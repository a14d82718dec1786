//! Split-queue walker tests on hand-built rings.

use super::*;
use crate::dev::virtio::fake::{
    DriverQueue, SharedRam, INDIRECT, NEXT, RAM_BASE, RAM_BYTES, WRITE,
};
use crate::dev::virtio::MemError;

const BUFFER: u64 = RAM_BASE + 0x8000;

fn setup(size: u16) -> (Queue, DriverQueue, SharedRam) {
    let ram = SharedRam::new(RAM_BASE, RAM_BYTES);
    let driver = DriverQueue::new(ram.clone(), RAM_BASE, size);
    let mut queue = Queue::new(16);
    queue.set_size(size);
    queue.set_descriptor_table(driver.desc);
    queue.set_avail_ring(driver.avail);
    queue.set_used_ring(driver.used);
    queue.set_ready(true);
    (queue, driver, ram)
}

fn pop_bad(queue: &mut Queue, ram: &mut SharedRam) -> BadChain {
    match queue.pop(ram) {
        Ok(Some(Popped::Bad(bad))) => bad,
        other => panic!("expected a bad chain, got {other:?}"),
    }
}

#[test]
fn pop_returns_the_chain_and_push_used_completes_it() {
    let (mut queue, mut driver, mut ram) = setup(8);
    assert_eq!(queue.pop(&mut ram), Ok(None));
    driver.add_chain(2, &[(BUFFER, 16, false), (BUFFER + 0x100, 512, true)]);
    let Ok(Some(Popped::Chain { head, segments })) = queue.pop(&mut ram) else {
        panic!("no chain");
    };
    assert_eq!(head, 2);
    assert_eq!(
        segments,
        [
            Segment {
                addr: BUFFER,
                len: 16,
                writable: false
            },
            Segment {
                addr: BUFFER + 0x100,
                len: 512,
                writable: true
            },
        ]
    );
    assert_eq!(queue.pop(&mut ram), Ok(None));
    let fences = ram.lock().fences;
    queue.push_used(&mut ram, 2, 512).unwrap();
    assert_eq!(driver.used_elem(0), (2, 512));
    assert_eq!(driver.used_idx(), 1);
    assert!(
        ram.lock().fences > fences,
        "a barrier between element and index"
    );
}

#[test]
fn indices_wrap_at_two_to_the_sixteen() {
    let (mut queue, mut driver, mut ram) = setup(4);
    for round in 0..70_000u32 {
        driver.add_chain((round % 4) as u16, &[(BUFFER, 1, true)]);
        let Ok(Some(Popped::Chain { head, .. })) = queue.pop(&mut ram) else {
            panic!("round {round}");
        };
        queue.push_used(&mut ram, head, 1).unwrap();
    }
    assert_eq!(driver.used_idx(), (70_000u32 % 65_536) as u16);
}

#[test]
fn descriptor_outside_ram_is_a_bad_chain() {
    let (mut queue, mut driver, mut ram) = setup(8);
    let end = RAM_BASE + RAM_BYTES as u64;
    driver.add_chain(0, &[(end - 8, 16, false), (BUFFER, 1, true)]);
    let bad = pop_bad(&mut queue, &mut ram);
    assert_eq!(bad.error, ChainError::BufferOutsideRam);
    assert_eq!(bad.last_writable_byte, Some(BUFFER));
    // The queue goes on.
    driver.add_chain(3, &[(BUFFER, 1, true)]);
    assert!(matches!(
        queue.pop(&mut ram),
        Ok(Some(Popped::Chain { head: 3, .. }))
    ));
}

#[test]
fn length_overflow_is_a_bad_chain() {
    let (mut queue, mut driver, mut ram) = setup(8);
    driver.add_chain(0, &[(u64::MAX - 3, 8, true)]);
    let bad = pop_bad(&mut queue, &mut ram);
    assert_eq!(bad.error, ChainError::LengthOverflow);
    assert_eq!(bad.last_writable_byte, None);
}

#[test]
fn writable_before_readable_is_a_bad_chain() {
    let (mut queue, mut driver, mut ram) = setup(8);
    driver.add_chain(
        0,
        &[
            (BUFFER, 8, true),
            (BUFFER + 8, 8, false),
            (BUFFER + 16, 1, true),
        ],
    );
    let bad = pop_bad(&mut queue, &mut ram);
    assert_eq!(bad.error, ChainError::ReadableAfterWritable);
    assert_eq!(bad.last_writable_byte, Some(BUFFER + 16));
}

#[test]
fn indirect_flag_is_a_bad_chain() {
    let (mut queue, driver, mut ram) = setup(8);
    let mut driver = driver;
    driver.set_desc(0, BUFFER, 32, INDIRECT, 0);
    driver.offer(0);
    assert_eq!(pop_bad(&mut queue, &mut ram).error, ChainError::Indirect);
}

#[test]
fn loop_is_caught_at_the_queue_size() {
    let (mut queue, mut driver, mut ram) = setup(8);
    driver.set_desc(0, BUFFER, 1, NEXT | WRITE, 1);
    driver.set_desc(1, BUFFER, 1, NEXT | WRITE, 0);
    driver.offer(0);
    let bad = pop_bad(&mut queue, &mut ram);
    assert_eq!(bad.error, ChainError::TooManyDescriptors);
    assert_eq!(bad.last_writable_byte, None);
}

#[test]
fn next_out_of_range_is_a_bad_chain() {
    let (mut queue, mut driver, mut ram) = setup(8);
    driver.set_desc(0, BUFFER, 1, NEXT | WRITE, 8);
    driver.offer(0);
    assert_eq!(
        pop_bad(&mut queue, &mut ram).error,
        ChainError::NextOutOfRange
    );
}

#[test]
fn chain_over_four_gib_is_a_bad_chain() {
    /// RAM that claims every address below 2^40 (reads of the rings go to real RAM).
    struct Huge(SharedRam);
    impl GuestMemory for Huge {
        fn check(&mut self, addr: u64, len: u64) -> Result<(), MemError> {
            let end = addr.checked_add(len).ok_or(MemError::Overflow)?;
            if end <= 1 << 40 {
                Ok(())
            } else {
                Err(MemError::OutsideRam)
            }
        }
        fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
            self.0.read(addr, buf)
        }
        fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
            self.0.write(addr, data)
        }
    }
    let (mut queue, mut driver, ram) = setup(8);
    let mut huge = Huge(ram);
    driver.add_chain(0, &[(0, u32::MAX, false), (0, u32::MAX, false)]);
    match queue.pop(&mut huge) {
        Ok(Some(Popped::Bad(bad))) => assert_eq!(bad.error, ChainError::TooLong),
        other => panic!("{other:?}"),
    }
}

#[test]
fn head_out_of_range_breaks_the_queue() {
    let (mut queue, mut driver, mut ram) = setup(8);
    driver.offer(8);
    assert_eq!(queue.pop(&mut ram), Err(QueueError::HeadOutOfRange));
}

#[test]
fn avail_index_running_ahead_breaks_the_queue() {
    let (mut queue, driver, mut ram) = setup(8);
    driver.set_avail_idx(8);
    assert!(
        queue.has_available(&mut ram).unwrap(),
        "exactly size ahead is fine"
    );
    for idx in [9, u16::MAX] {
        let (mut queue, driver, mut ram) = setup(8);
        driver.set_avail_idx(idx);
        assert_eq!(queue.pop(&mut ram), Err(QueueError::AvailIndexRunaway));
        assert_eq!(
            queue.has_available(&mut ram),
            Err(QueueError::AvailIndexRunaway)
        );
    }
}

/// One of the queue's address setters.
type Setter = fn(&mut Queue, u64);

#[test]
fn ring_placement_is_checked() {
    let end = RAM_BASE + RAM_BYTES as u64;
    let cases: [(Setter, u64, QueueError); 6] = [
        (
            Queue::set_descriptor_table,
            RAM_BASE + 8,
            QueueError::Misaligned,
        ),
        (
            Queue::set_avail_ring,
            RAM_BASE + 0x1001,
            QueueError::Misaligned,
        ),
        (
            Queue::set_used_ring,
            RAM_BASE + 0x2002,
            QueueError::Misaligned,
        ),
        (
            Queue::set_descriptor_table,
            end - 64,
            QueueError::RingOutsideRam,
        ),
        (Queue::set_avail_ring, end - 8, QueueError::RingOutsideRam),
        (
            Queue::set_used_ring,
            u64::MAX - 3,
            QueueError::RingOutsideRam,
        ),
    ];
    for (set, addr, error) in cases {
        let (mut queue, _driver, mut ram) = setup(8);
        set(&mut queue, addr);
        assert_eq!(queue.pop(&mut ram), Err(error));
        assert_eq!(queue.push_used(&mut ram, 0, 0), Err(error));
    }
}

#[test]
fn queue_size_must_be_a_power_of_two_up_to_the_maximum() {
    for size in [0, 3, 12, 32] {
        let (mut queue, _driver, mut ram) = setup(8);
        queue.set_ready(false);
        queue.set_size(size);
        queue.set_ready(true);
        assert_eq!(queue.pop(&mut ram), Err(QueueError::BadSize), "size {size}");
    }
}

#[test]
fn descriptors_are_copied_once() {
    let (mut queue, mut driver, mut ram) = setup(8);
    driver.add_chain(0, &[(BUFFER, 16, false)]);
    let Ok(Some(Popped::Chain { segments, .. })) = queue.pop(&mut ram) else {
        panic!("no chain");
    };
    // The guest rewriting the table afterwards changes nothing the device holds.
    driver.set_desc(0, 0, u32::MAX, WRITE, 0);
    assert_eq!(
        segments,
        [Segment {
            addr: BUFFER,
            len: 16,
            writable: false
        }]
    );
}

#[test]
fn not_ready_queue_pops_nothing() {
    let (mut queue, mut driver, mut ram) = setup(8);
    driver.add_chain(0, &[(BUFFER, 16, false)]);
    queue.set_ready(false);
    assert_eq!(queue.pop(&mut ram), Ok(None));
    assert_eq!(queue.has_available(&mut ram), Ok(false));
}

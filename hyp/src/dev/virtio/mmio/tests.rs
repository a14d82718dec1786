//! Transport tests: registers by offset, status machine, queue setup, faults and reset.

use super::*;
use crate::dev::virtio::blk::{FEATURES, QUEUE_MAX_SIZE};
use crate::dev::virtio::fake::{reg, Harness};

const NEGOTIATING: u32 = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;

fn fresh() -> Harness {
    Harness::new(64, 16)
}

/// Drives the status up to DRIVER with `features` written.
fn up_to_driver(h: &mut Harness, features: u64) {
    h.write(reg::STATUS, status::ACKNOWLEDGE);
    h.write(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    h.write(reg::DRIVER_FEATURES_SEL, 0);
    h.write(reg::DRIVER_FEATURES, features as u32);
    h.write(reg::DRIVER_FEATURES_SEL, 1);
    h.write(reg::DRIVER_FEATURES, (features >> 32) as u32);
}

#[test]
fn identification_registers() {
    let mut h = fresh();
    assert_eq!(h.read(reg::MAGIC), 0x7472_6976);
    assert_eq!(h.read(reg::VERSION), 2);
    assert_eq!(h.read(reg::DEVICE_ID), 2);
    assert_eq!(h.read(reg::VENDOR_ID), VENDOR_ID);
    assert_eq!(h.read(reg::CONFIG_GENERATION), 0);
    assert_eq!(h.read(reg::SHM_LEN_LOW), u32::MAX);
}

#[test]
fn device_features_are_read_a_word_at_a_time() {
    let mut h = fresh();
    h.write(reg::DEVICE_FEATURES_SEL, 0);
    assert_eq!(h.read(reg::DEVICE_FEATURES), FEATURES as u32);
    h.write(reg::DEVICE_FEATURES_SEL, 1);
    assert_eq!(h.read(reg::DEVICE_FEATURES), (FEATURES >> 32) as u32);
    assert_eq!(h.read(reg::DEVICE_FEATURES) & 1, 1, "VERSION_1 is bit 32");
    h.write(reg::DEVICE_FEATURES_SEL, 2);
    assert_eq!(h.read(reg::DEVICE_FEATURES), 0);
}

#[test]
fn features_ok_needs_version_1() {
    let mut h = fresh();
    up_to_driver(&mut h, FEATURES & !VIRTIO_F_VERSION_1);
    h.write(reg::STATUS, NEGOTIATING);
    assert_eq!(h.read(reg::STATUS) & status::FEATURES_OK, 0);
    assert_eq!(h.transport.take_fault(), Some(MmioFault::FeaturesRefused));
}

#[test]
fn features_ok_refuses_features_not_offered() {
    let mut h = fresh();
    up_to_driver(&mut h, FEATURES | super::super::VIRTIO_F_INDIRECT_DESC);
    h.write(reg::STATUS, NEGOTIATING);
    assert_eq!(h.read(reg::STATUS), status::ACKNOWLEDGE | status::DRIVER);
    // The driver may try again with a subset.
    up_to_driver(&mut h, VIRTIO_F_VERSION_1);
    h.write(reg::STATUS, NEGOTIATING);
    assert_eq!(h.read(reg::STATUS), NEGOTIATING);
}

#[test]
fn status_bits_cannot_be_skipped_or_cleared() {
    let mut h = fresh();
    h.write(reg::STATUS, status::DRIVER);
    assert_eq!(h.read(reg::STATUS), 0, "DRIVER without ACKNOWLEDGE");
    assert_eq!(h.transport.take_fault(), Some(MmioFault::StatusRefused));
    up_to_driver(&mut h, FEATURES);
    h.write(
        reg::STATUS,
        status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK,
    );
    assert_eq!(h.read(reg::STATUS), status::ACKNOWLEDGE | status::DRIVER);
    h.write(reg::STATUS, status::ACKNOWLEDGE);
    assert_eq!(
        h.read(reg::STATUS),
        status::ACKNOWLEDGE | status::DRIVER,
        "no clearing"
    );
    h.write(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER | 0x10);
    assert_eq!(
        h.read(reg::STATUS),
        status::ACKNOWLEDGE | status::DRIVER,
        "reserved bit"
    );
    h.write(
        reg::STATUS,
        status::ACKNOWLEDGE | status::DRIVER | status::DEVICE_NEEDS_RESET,
    );
    assert_eq!(
        h.read(reg::STATUS) & status::DEVICE_NEEDS_RESET,
        0,
        "device-owned bit"
    );
    h.write(
        reg::STATUS,
        status::ACKNOWLEDGE | status::DRIVER | status::FAILED,
    );
    assert_eq!(h.read(reg::STATUS) & status::FAILED, status::FAILED);
    assert!(h.transport.fault_count() >= 4);
}

#[test]
fn driver_features_are_only_written_while_negotiating() {
    let mut h = fresh();
    h.write(reg::DRIVER_FEATURES, 1);
    assert_eq!(
        h.transport.take_fault(),
        Some(MmioFault::FeaturesWriteRefused)
    );
    let mut h = Harness::ready(64, 16, FEATURES);
    h.write(reg::DRIVER_FEATURES, 0);
    assert_eq!(
        h.transport.take_fault(),
        Some(MmioFault::FeaturesWriteRefused)
    );
}

#[test]
fn queue_registers_need_features_ok_and_a_stopped_queue() {
    let mut h = fresh();
    h.write(reg::QUEUE_SEL, 0);
    assert_eq!(h.read(reg::QUEUE_NUM_MAX), u32::from(QUEUE_MAX_SIZE));
    h.write(reg::QUEUE_NUM, 8);
    assert_eq!(
        h.read(reg::QUEUE_NUM),
        u32::from(QUEUE_MAX_SIZE),
        "before FEATURES_OK"
    );
    assert_eq!(h.transport.take_fault(), Some(MmioFault::QueueWriteRefused));
    up_to_driver(&mut h, FEATURES);
    h.write(reg::STATUS, NEGOTIATING);
    h.write(reg::QUEUE_NUM, 8);
    h.write(reg::QUEUE_DESC_LOW, 0x1000);
    h.write(reg::QUEUE_DESC_HIGH, 0x2);
    assert_eq!(h.read(reg::QUEUE_NUM), 8);
    assert_eq!(h.read(reg::QUEUE_DESC_LOW), 0x1000);
    assert_eq!(h.read(reg::QUEUE_DESC_HIGH), 0x2);
    h.write(reg::QUEUE_READY, 1);
    assert_eq!(h.read(reg::QUEUE_READY), 1);
    h.write(reg::QUEUE_NUM, 4);
    h.write(reg::QUEUE_DRIVER_LOW, 0x3000);
    assert_eq!(h.read(reg::QUEUE_NUM), 8, "ignored while ready");
    assert_eq!(h.read(reg::QUEUE_DRIVER_LOW), 0);
    assert_eq!(h.transport.take_fault(), Some(MmioFault::QueueWriteRefused));
    // Writing 0 stops the queue at any time, as Linux does when it deletes it.
    h.write(reg::QUEUE_READY, 0);
    assert_eq!(h.read(reg::QUEUE_READY), 0);
    h.write(reg::QUEUE_READY, 2);
    assert_eq!(h.transport.take_fault(), Some(MmioFault::QueueWriteRefused));
}

#[test]
fn missing_queues_read_zero_and_ignore_writes() {
    let mut h = fresh();
    up_to_driver(&mut h, FEATURES);
    h.write(reg::STATUS, NEGOTIATING);
    h.write(reg::QUEUE_SEL, 1);
    assert_eq!(h.read(reg::QUEUE_NUM_MAX), 0);
    assert_eq!(h.read(reg::QUEUE_READY), 0);
    h.write(reg::QUEUE_READY, 1);
    assert_eq!(h.read(reg::QUEUE_READY), 0);
    h.write(reg::QUEUE_SEL, u32::MAX);
    h.write(reg::QUEUE_NUM, 4);
    assert_eq!(h.transport.take_fault(), Some(MmioFault::QueueWriteRefused));
}

#[test]
fn notify_needs_driver_ok_and_a_ready_queue() {
    let mut h = fresh();
    h.write(reg::QUEUE_NOTIFY, 0);
    assert_eq!(h.transport.take_notified(), None);
    assert_eq!(h.transport.take_fault(), Some(MmioFault::NotifyRefused));
    let mut h = Harness::ready(64, 16, FEATURES);
    h.write(reg::QUEUE_NOTIFY, 1);
    h.write(reg::QUEUE_NOTIFY, 0x1_0000);
    assert_eq!(h.transport.take_notified(), None);
    h.write(reg::QUEUE_NOTIFY, 0);
    assert_eq!(h.transport.take_notified(), Some(1));
    assert_eq!(h.transport.take_notified(), None);
    assert!(h.transport.more_pending(), "the notification stays pending");
    let mut memory = h.ram.clone();
    let outcome = h.transport.process(&mut memory, 8);
    assert!(
        !outcome.more_pending && !outcome.irq_level,
        "empty queue: no interrupt"
    );
}

#[test]
fn register_widths_and_offsets_are_checked() {
    let mut h = fresh();
    assert_eq!(
        h.transport.read(reg::MAGIC, Width::Byte),
        Err(DevError::BadWidth)
    );
    assert_eq!(
        h.transport.read(reg::MAGIC, Width::Double),
        Err(DevError::BadWidth)
    );
    assert_eq!(
        h.transport.read(0x002, Width::Word),
        Err(DevError::UnknownRegister)
    );
    assert_eq!(
        h.transport.read(0x018, Width::Word),
        Err(DevError::UnknownRegister)
    );
    assert_eq!(
        h.transport.write(reg::STATUS, Width::Half, 1),
        Err(DevError::BadWidth)
    );
    assert_eq!(
        h.transport.read(0x200, Width::Word),
        Err(DevError::UnknownRegister)
    );
    assert_eq!(
        h.transport.read(u64::MAX, Width::Byte),
        Err(DevError::UnknownRegister)
    );
    h.write(reg::MAGIC, 0);
    assert_eq!(h.transport.take_fault(), Some(MmioFault::ReadOnlyWrite));
    assert_eq!(h.read(reg::MAGIC), 0x7472_6976);
}

#[test]
fn config_space_takes_aligned_byte_half_and_word_accesses() {
    let mut h = fresh();
    // capacity = 64 sectors, little endian.
    let read = |h: &mut Harness, offset: u64, width: Width| h.transport.read(offset, width);
    assert_eq!(read(&mut h, reg::CONFIG, Width::Byte), Ok(64));
    assert_eq!(read(&mut h, reg::CONFIG, Width::Half), Ok(64));
    assert_eq!(read(&mut h, reg::CONFIG, Width::Word), Ok(64));
    assert_eq!(read(&mut h, reg::CONFIG + 1, Width::Byte), Ok(0));
    assert_eq!(
        read(&mut h, reg::CONFIG + 21, Width::Byte),
        Ok(2),
        "blk_size 512"
    );
    assert_eq!(
        read(&mut h, reg::CONFIG + 1, Width::Half),
        Err(DevError::BadWidth)
    );
    assert_eq!(
        read(&mut h, reg::CONFIG + 2, Width::Word),
        Err(DevError::BadWidth)
    );
    assert_eq!(
        read(&mut h, reg::CONFIG, Width::Double),
        Err(DevError::BadWidth)
    );
    assert_eq!(read(&mut h, 0x1fc, Width::Word), Ok(0));
    assert_eq!(h.transport.write(reg::CONFIG, Width::Word, 5), Ok(()));
    assert_eq!(h.transport.take_fault(), Some(MmioFault::ReadOnlyWrite));
    assert_eq!(read(&mut h, reg::CONFIG, Width::Word), Ok(64));
}

#[test]
fn reset_returns_to_power_on() {
    let mut h = Harness::ready(64, 16, FEATURES);
    h.write(reg::QUEUE_NOTIFY, 0);
    h.write(reg::STATUS, 0);
    assert_eq!(h.read(reg::STATUS), 0);
    assert_eq!(h.read(reg::QUEUE_READY), 0);
    assert_eq!(h.read(reg::QUEUE_NUM), u32::from(QUEUE_MAX_SIZE));
    assert_eq!(h.read(reg::QUEUE_DESC_LOW), 0);
    assert_eq!(h.read(reg::INTERRUPT_STATUS), 0);
    assert!(!h.transport.more_pending());
    assert_eq!(h.transport.take_notified(), None);
    // And it comes up again.
    h.init(FEATURES);
    assert_eq!(h.read(reg::STATUS), NEGOTIATING | status::DRIVER_OK);
}

#[test]
fn interrupt_ack_clears_only_the_given_bits() {
    let mut h = Harness::ready(64, 16, FEATURES);
    h.transport.needs_reset(QueueError::Memory);
    assert_eq!(h.read(reg::INTERRUPT_STATUS), INTERRUPT_CONFIG_CHANGE);
    h.write(reg::INTERRUPT_ACK, INTERRUPT_USED_BUFFER);
    assert!(h.transport.irq_level());
    h.write(reg::INTERRUPT_ACK, INTERRUPT_CONFIG_CHANGE);
    assert!(!h.transport.irq_level());
    assert_eq!(
        h.transport.take_fault(),
        Some(MmioFault::QueueBroken(QueueError::Memory))
    );
}

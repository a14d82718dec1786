//! The virtio-mmio transport, version 2 (virtio 1.2 section 4.2.2), over any [`VirtioDevice`].
//!
//! The transport owns the register file: status state machine, feature selection, queue
//! configuration, interrupt status and notifications. It cannot touch guest memory inside
//! [`MmioDevice::write`], so a QueueNotify write only records the queue; the owner then
//! calls [`MmioTransport::process`] with the personality's [`GuestMemory`]:
//!
//! ```text
//! transport.write(offset, width, value)?;            // trapped guest store
//! if transport.take_notified().is_some() {
//!     transport.process(&mut memory, BUDGET);        // again later while more_pending()
//! }
//! set_line(transport.irq_level());                   // level-triggered SPI, after every access
//! ```
//!
//! A driver mistake never stops the device: the write is ignored and recorded as an
//! [`MmioFault`] (spec 4.2.2.2 lists what a driver MUST NOT do; the device side says
//! nothing, so ignoring is ours to choose). A broken queue sets DEVICE_NEEDS_RESET with a
//! configuration-change interrupt (spec 2.1.2) and the device stops until reset.

use alloc::vec::Vec;

use super::queue::{Queue, QueueError};
use super::{status, GuestMemory, VirtioDevice, VIRTIO_F_VERSION_1};
use crate::dev::{DevError, MmioDevice, Width};

mod register;

use register::Register;

/// MagicValue: "virt" in little-endian ASCII (spec 4.2.2).
const MAGIC_VALUE: u32 = 0x7472_6976;
/// Version: 2 is the modern (non-legacy) interface.
const VERSION: u32 = 2;
/// VendorID: "Janu" in little-endian ASCII; drivers do not match on it.
const VENDOR_ID: u32 = 0x756e_614a;
/// Offset of the device-specific configuration space.
const CONFIG_OFFSET: u64 = 0x100;
/// End of the window (the contract's 0x200-byte slot).
const WINDOW_BYTES: u64 = 0x200;
/// The length a SHMLen read returns for a shared-memory region that does not exist (-1).
const NO_SHARED_MEMORY: u32 = u32::MAX;
/// InterruptStatus bit: a used buffer notification (spec 4.2.2, "Used Buffer Notification").
pub const INTERRUPT_USED_BUFFER: u32 = 1;
/// InterruptStatus bit: the configuration changed (spec 4.2.2, "Configuration Change").
pub const INTERRUPT_CONFIG_CHANGE: u32 = 2;

/// Status bits the driver may set; the rest are reserved or device-owned.
const DRIVER_STATUS_BITS: u32 =
    status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK | status::FAILED;

/// The legal order of the status bits (spec 3.1.1, steps 1-8): a status holding the first
/// bit must hold the second as well. Anything else is refused.
const STATUS_REQUIRES: [(u32, u32); 3] = [
    (status::DRIVER, status::ACKNOWLEDGE),
    (status::FEATURES_OK, status::ACKNOWLEDGE | status::DRIVER),
    (
        status::DRIVER_OK,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    ),
];

/// One of the queue's address setters.
type AddressSetter = fn(&mut Queue, u64);

/// A driver action the transport ignored, or the reason the device stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioFault {
    /// A Status write that clears bits, sets reserved or device-owned bits, or skips a step
    /// of spec 3.1.1.
    StatusRefused,
    /// FEATURES_OK with features the device did not offer, or without VERSION_1 (spec
    /// 3.1.1 step 6): FEATURES_OK stays clear.
    FeaturesRefused,
    /// DriverFeatures written outside the DRIVER state, or a bit in a word past 63.
    FeaturesWriteRefused,
    /// A queue register written for a queue that does not exist, that is ready, or before
    /// FEATURES_OK.
    QueueWriteRefused,
    /// QueueNotify for a queue that does not exist or is not ready, or before DRIVER_OK.
    NotifyRefused,
    /// A write to a read-only register or to configuration space with no writable field.
    ReadOnlyWrite,
    /// The queue broke; DEVICE_NEEDS_RESET is set.
    QueueBroken(QueueError),
}

/// What one [`MmioTransport::process`] call left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessOutcome {
    /// The interrupt line's level now.
    pub irq_level: bool,
    /// The budget ran out with requests still available: call `process` again.
    pub more_pending: bool,
}

/// A virtio-mmio version 2 device window.
#[derive(Debug)]
pub struct MmioTransport<D> {
    /// The device model.
    device: D,
    /// One queue per entry of the device's `queue_max_sizes`.
    queues: Vec<Queue>,
    /// The device status (spec 2.1).
    status: u32,
    /// DeviceFeaturesSel.
    device_features_select: u32,
    /// DriverFeaturesSel.
    driver_features_select: u32,
    /// The features the driver wrote so far.
    driver_features: u64,
    /// QueueSel.
    queue_select: u32,
    /// InterruptStatus.
    interrupt_status: u32,
    /// Queues notified since the last `take_notified`.
    notified: u16,
    /// Queues that may have requests to handle.
    pending: u16,
    /// The queue `process` starts with, rotated for fairness between queues.
    next_queue: usize,
    /// How many driver faults were seen since power-on.
    fault_count: u32,
    /// The latest fault not yet taken.
    last_fault: Option<MmioFault>,
}

impl<D: VirtioDevice> MmioTransport<D> {
    /// A transport in its power-on state around `device`.
    pub fn new(mut device: D) -> Self {
        device.reset();
        let queues = device
            .queue_max_sizes()
            .iter()
            .take(16)
            .map(|&max_size| Queue::new(max_size))
            .collect();
        MmioTransport {
            device,
            queues,
            status: 0,
            device_features_select: 0,
            driver_features_select: 0,
            driver_features: 0,
            queue_select: 0,
            interrupt_status: 0,
            notified: 0,
            pending: 0,
            next_queue: 0,
            fault_count: 0,
            last_fault: None,
        }
    }

    /// The device model.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device model, mutably.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Back to power-on (what a Status write of 0 does): device, queues, features and
    /// interrupts reset. The fault count survives.
    pub fn reset(&mut self) {
        self.device.reset();
        for queue in &mut self.queues {
            queue.reset();
        }
        self.status = 0;
        self.device_features_select = 0;
        self.driver_features_select = 0;
        self.driver_features = 0;
        self.queue_select = 0;
        self.interrupt_status = 0;
        self.notified = 0;
        self.pending = 0;
        self.next_queue = 0;
    }

    /// The queues notified since the last call (bit n for queue n), `None` when none was.
    /// The notifications stay pending for [`MmioTransport::process`].
    pub fn take_notified(&mut self) -> Option<u16> {
        let notified = core::mem::take(&mut self.notified);
        (notified != 0).then_some(notified)
    }

    /// Whether requests may be waiting: notified queues not yet processed, or queues a
    /// `process` call left work on because its budget ran out.
    pub fn more_pending(&self) -> bool {
        self.pending != 0
    }

    /// The level of the interrupt line: any InterruptStatus bit set.
    pub fn irq_level(&self) -> bool {
        self.interrupt_status != 0
    }

    /// The fault count since power-on.
    pub fn fault_count(&self) -> u32 {
        self.fault_count
    }

    /// The latest driver fault not yet taken, for the owner to report once.
    pub fn take_fault(&mut self) -> Option<MmioFault> {
        self.last_fault.take()
    }

    /// Handles up to `budget` requests over the pending queues, raising the used-buffer
    /// interrupt when any completed. Queues still holding requests stay pending: the owner
    /// calls again while [`MmioTransport::more_pending`] (after letting the other
    /// personality run, for fairness). A broken queue sets DEVICE_NEEDS_RESET.
    pub fn process(&mut self, memory: &mut dyn GuestMemory, budget: usize) -> ProcessOutcome {
        if self.status & status::DRIVER_OK == 0 || self.status & status::DEVICE_NEEDS_RESET != 0 {
            self.pending = 0;
        }
        let count = self.queues.len();
        let mut left = budget;
        for step in 0..count {
            if self.pending == 0 || left == 0 {
                break;
            }
            let index = (self.next_queue + step) % count;
            let bit = 1u16 << index;
            if self.pending & bit == 0 {
                continue;
            }
            let Some(queue) = self.queues.get_mut(index) else {
                break;
            };
            if !queue.ready() {
                self.pending &= !bit;
                continue;
            }
            let before = queue.next_used();
            let result = self.device.process_queue(index, queue, memory, left);
            let completed = usize::from(queue.next_used().wrapping_sub(before));
            if completed > 0 {
                self.interrupt_status |= INTERRUPT_USED_BUFFER;
            }
            left = left.saturating_sub(completed);
            match result {
                Ok(true) => {}
                Ok(false) => self.pending &= !bit,
                Err(error) => {
                    self.needs_reset(error);
                    break;
                }
            }
        }
        if count > 0 {
            self.next_queue = (self.next_queue + 1) % count;
        }
        ProcessOutcome {
            irq_level: self.irq_level(),
            more_pending: self.more_pending(),
        }
    }

    /// Stops the device after a broken queue (spec 2.1.2): DEVICE_NEEDS_RESET, and a
    /// configuration-change notification once the driver is running.
    fn needs_reset(&mut self, error: QueueError) {
        self.status |= status::DEVICE_NEEDS_RESET;
        if self.status & status::DRIVER_OK != 0 {
            self.interrupt_status |= INTERRUPT_CONFIG_CHANGE;
        }
        self.pending = 0;
        self.notified = 0;
        self.fault(MmioFault::QueueBroken(error));
    }

    /// Records a fault.
    fn fault(&mut self, fault: MmioFault) {
        self.fault_count = self.fault_count.saturating_add(1);
        self.last_fault = Some(fault);
    }

    /// The selected queue, if it exists.
    fn selected_queue(&self) -> Option<&Queue> {
        usize::try_from(self.queue_select)
            .ok()
            .and_then(|index| self.queues.get(index))
    }

    /// The selected queue when the driver may configure it now: it exists, is not ready,
    /// features are negotiated and the device is not stopped (spec 3.1.1 step 7, 4.2.3.2).
    fn configurable_queue(&mut self) -> Option<&mut Queue> {
        let allowed = self.status & status::FEATURES_OK != 0
            && self.status & (status::DEVICE_NEEDS_RESET | status::FAILED) == 0;
        let index = usize::try_from(self.queue_select).ok()?;
        let queue = self.queues.get_mut(index)?;
        (allowed && !queue.ready()).then_some(queue)
    }

    /// Reads a control register.
    fn read_register(&self, register: Register) -> u32 {
        let queue = self.selected_queue();
        match register {
            Register::MagicValue => MAGIC_VALUE,
            Register::Version => VERSION,
            Register::DeviceId => self.device.device_id(),
            Register::VendorId => VENDOR_ID,
            Register::DeviceFeatures => {
                feature_word(self.device.device_features(), self.device_features_select)
            }
            Register::QueueNumMax => queue.map_or(0, |queue| u32::from(queue.max_size())),
            Register::QueueNum => queue.map_or(0, |queue| u32::from(queue.size())),
            Register::QueueReady => queue.map_or(0, |queue| u32::from(queue.ready())),
            Register::QueueDescLow => low(queue.map_or(0, Queue::descriptor_table)),
            Register::QueueDescHigh => high(queue.map_or(0, Queue::descriptor_table)),
            Register::QueueDriverLow => low(queue.map_or(0, Queue::avail_ring)),
            Register::QueueDriverHigh => high(queue.map_or(0, Queue::avail_ring)),
            Register::QueueDeviceLow => low(queue.map_or(0, Queue::used_ring)),
            Register::QueueDeviceHigh => high(queue.map_or(0, Queue::used_ring)),
            Register::InterruptStatus => self.interrupt_status,
            Register::Status => self.status,
            Register::ShmLenLow
            | Register::ShmLenHigh
            | Register::ShmBaseLow
            | Register::ShmBaseHigh => NO_SHARED_MEMORY,
            // The configuration never changes while the device runs.
            Register::ConfigGeneration => 0,
            // Write-only registers read as zero.
            Register::DeviceFeaturesSel
            | Register::DriverFeatures
            | Register::DriverFeaturesSel
            | Register::QueueSel
            | Register::QueueNotify
            | Register::InterruptAck
            | Register::ShmSel => 0,
        }
    }

    /// Writes a control register.
    fn write_register(&mut self, register: Register, value: u32) {
        match register {
            Register::DeviceFeaturesSel => self.device_features_select = value,
            Register::DriverFeaturesSel => self.driver_features_select = value,
            Register::DriverFeatures => self.write_driver_features(value),
            Register::QueueSel => self.queue_select = value,
            Register::QueueNum => match (self.configurable_queue(), u16::try_from(value)) {
                (Some(queue), Ok(size)) => queue.set_size(size),
                _ => self.fault(MmioFault::QueueWriteRefused),
            },
            Register::QueueReady => self.write_queue_ready(value),
            Register::QueueDescLow
            | Register::QueueDescHigh
            | Register::QueueDriverLow
            | Register::QueueDriverHigh
            | Register::QueueDeviceLow
            | Register::QueueDeviceHigh => self.write_queue_address(register, value),
            Register::QueueNotify => self.write_notify(value),
            Register::InterruptAck => self.interrupt_status &= !value,
            Register::Status => self.write_status(value),
            Register::ShmSel => {}
            Register::MagicValue
            | Register::Version
            | Register::DeviceId
            | Register::VendorId
            | Register::DeviceFeatures
            | Register::QueueNumMax
            | Register::InterruptStatus
            | Register::ShmLenLow
            | Register::ShmLenHigh
            | Register::ShmBaseLow
            | Register::ShmBaseHigh
            | Register::ConfigGeneration => self.fault(MmioFault::ReadOnlyWrite),
        }
    }

    /// DriverFeatures: only between DRIVER and FEATURES_OK (spec 3.1.1 steps 4-5).
    fn write_driver_features(&mut self, value: u32) {
        let negotiating = self.status & status::DRIVER != 0
            && self.status & (status::FEATURES_OK | status::DEVICE_NEEDS_RESET) == 0;
        match (negotiating, self.driver_features_select) {
            (true, 0) => {
                self.driver_features = (self.driver_features & !0xffff_ffff) | u64::from(value)
            }
            (true, 1) => {
                self.driver_features =
                    (self.driver_features & 0xffff_ffff) | (u64::from(value) << 32)
            }
            // Words past bit 63 hold no feature: zero is harmless, anything else refused.
            (true, _) if value == 0 => {}
            _ => self.fault(MmioFault::FeaturesWriteRefused),
        }
    }

    /// QueueReady: 1 enables a configured queue, 0 disables it at any time (Linux writes 0
    /// when it deletes a queue and reads it back).
    fn write_queue_ready(&mut self, value: u32) {
        match value {
            0 => {
                let index = usize::try_from(self.queue_select).ok();
                match index.and_then(|index| self.queues.get_mut(index)) {
                    Some(queue) => queue.set_ready(false),
                    None => self.fault(MmioFault::QueueWriteRefused),
                }
            }
            1 => match self.configurable_queue() {
                Some(queue) => queue.set_ready(true),
                None => self.fault(MmioFault::QueueWriteRefused),
            },
            _ => self.fault(MmioFault::QueueWriteRefused),
        }
    }

    /// One half of a queue's descriptor table, driver area or device area address.
    fn write_queue_address(&mut self, register: Register, value: u32) {
        let Some(queue) = self.configurable_queue() else {
            self.fault(MmioFault::QueueWriteRefused);
            return;
        };
        let (old, set): (u64, AddressSetter) = match register {
            Register::QueueDescLow | Register::QueueDescHigh => {
                (queue.descriptor_table(), Queue::set_descriptor_table)
            }
            Register::QueueDriverLow | Register::QueueDriverHigh => {
                (queue.avail_ring(), Queue::set_avail_ring)
            }
            _ => (queue.used_ring(), Queue::set_used_ring),
        };
        let new = match register {
            Register::QueueDescLow | Register::QueueDriverLow | Register::QueueDeviceLow => {
                (old & !0xffff_ffff) | u64::from(value)
            }
            _ => (old & 0xffff_ffff) | (u64::from(value) << 32),
        };
        set(queue, new);
    }

    /// QueueNotify: the value is the queue index (no VIRTIO_F_NOTIFICATION_DATA).
    fn write_notify(&mut self, value: u32) {
        let running =
            self.status & status::DRIVER_OK != 0 && self.status & status::DEVICE_NEEDS_RESET == 0;
        let index = usize::try_from(value).ok();
        let ready = index
            .and_then(|index| self.queues.get(index))
            .is_some_and(Queue::ready);
        match index {
            Some(index) if running && ready && index < 16 => {
                self.notified |= 1 << index;
                self.pending |= 1 << index;
            }
            _ => self.fault(MmioFault::NotifyRefused),
        }
    }

    /// Status: 0 resets; otherwise bits are only added, in the order of `STATUS_REQUIRES`.
    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let device_bits = self.status & status::DEVICE_NEEDS_RESET;
        let driver_bits = self.status & DRIVER_STATUS_BITS;
        let mut new = value & !status::DEVICE_NEEDS_RESET;
        let legal = new & !DRIVER_STATUS_BITS == 0
            && new & driver_bits == driver_bits
            && STATUS_REQUIRES
                .iter()
                .all(|&(bit, needs)| new & bit == 0 || new & needs == needs);
        if !legal {
            self.fault(MmioFault::StatusRefused);
            return;
        }
        if new & !driver_bits & status::FEATURES_OK != 0 {
            let offered = self.device.device_features();
            if self.driver_features & !offered != 0
                || self.driver_features & VIRTIO_F_VERSION_1 == 0
            {
                // Spec 2.2.2: the device leaves FEATURES_OK clear when it refuses.
                new &= !status::FEATURES_OK;
                self.fault(MmioFault::FeaturesRefused);
                if new & status::DRIVER_OK != 0 {
                    return;
                }
            } else {
                self.device.ack_features(self.driver_features);
            }
        }
        self.status = new | device_bits;
    }

    /// A configuration-space read: 8, 16 or 32 bits, aligned (spec 4.2.2.2).
    fn read_config(&self, offset: u64, width: Width) -> Result<u64, DevError> {
        let (offset, bytes) = config_access(offset, width)?;
        let mut data = [0u8; 4];
        let data = data.get_mut(..bytes).ok_or(DevError::BadWidth)?;
        self.device.read_config(offset, data);
        let mut word = [0u8; 4];
        word[..bytes].copy_from_slice(data);
        Ok(u64::from(u32::from_le_bytes(word)))
    }

    /// A configuration-space write.
    fn write_config(&mut self, offset: u64, width: Width, value: u64) -> Result<(), DevError> {
        let (offset, bytes) = config_access(offset, width)?;
        let data = value.to_le_bytes();
        let data = data.get(..bytes).ok_or(DevError::BadWidth)?;
        if !self.device.write_config(offset, data) {
            self.fault(MmioFault::ReadOnlyWrite);
        }
        Ok(())
    }
}

impl<D: VirtioDevice> MmioDevice for MmioTransport<D> {
    fn read(&mut self, offset: u64, width: Width) -> Result<u64, DevError> {
        if offset >= CONFIG_OFFSET {
            return self.read_config(offset, width);
        }
        let register = Register::try_from(offset)?;
        if width != Width::Word {
            return Err(DevError::BadWidth);
        }
        Ok(u64::from(self.read_register(register)))
    }

    fn write(&mut self, offset: u64, width: Width, value: u64) -> Result<(), DevError> {
        if offset >= CONFIG_OFFSET {
            return self.write_config(offset, width, value);
        }
        let register = Register::try_from(offset)?;
        if width != Width::Word {
            return Err(DevError::BadWidth);
        }
        // A 32-bit store carries the low half of the register it came from.
        self.write_register(register, low(value));
        Ok(())
    }
}

/// Checks a configuration-space access and returns its offset into the configuration
/// and its size: byte, half or word, naturally aligned, inside the window.
fn config_access(offset: u64, width: Width) -> Result<(usize, usize), DevError> {
    if offset >= WINDOW_BYTES {
        return Err(DevError::UnknownRegister);
    }
    let bytes = width.bytes();
    if width == Width::Double || !offset.is_multiple_of(bytes as u64) {
        return Err(DevError::BadWidth);
    }
    let offset = usize::try_from(offset - CONFIG_OFFSET).map_err(|_| DevError::UnknownRegister)?;
    Ok((offset, bytes))
}

/// Word `select` of a 64-bit feature set (DeviceFeaturesSel 0 and 1; others read zero).
fn feature_word(features: u64, select: u32) -> u32 {
    match select {
        0 => low(features),
        1 => high(features),
        _ => 0,
    }
}

/// Bits 31:0.
fn low(value: u64) -> u32 {
    (value & 0xffff_ffff) as u32
}

/// Bits 63:32.
fn high(value: u64) -> u32 {
    (value >> 32) as u32
}

#[cfg(test)]
mod tests;

//! The virtio-mmio control registers (virtio 1.2 section 4.2.2, table "MMIO Device Register
//! Layout"), by offset.

use crate::dev::DevError;

/// The control registers, by offset (spec 4.2.2, table "MMIO Device Register Layout").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Register {
    /// "virt".
    MagicValue = 0x000,
    /// The interface version, 2.
    Version = 0x004,
    /// The virtio device ID.
    DeviceId = 0x008,
    /// The vendor ID.
    VendorId = 0x00c,
    /// 32 of the device's feature bits, chosen by DeviceFeaturesSel.
    DeviceFeatures = 0x010,
    /// Which word DeviceFeatures shows.
    DeviceFeaturesSel = 0x014,
    /// 32 of the driver's feature bits, chosen by DriverFeaturesSel.
    DriverFeatures = 0x020,
    /// Which word DriverFeatures takes.
    DriverFeaturesSel = 0x024,
    /// The queue the Queue* registers apply to.
    QueueSel = 0x030,
    /// The selected queue's maximum size.
    QueueNumMax = 0x034,
    /// The selected queue's size.
    QueueNum = 0x038,
    /// The selected queue is enabled.
    QueueReady = 0x044,
    /// The driver has new buffers on the queue written.
    QueueNotify = 0x050,
    /// Pending interrupt causes.
    InterruptStatus = 0x060,
    /// Clears interrupt causes.
    InterruptAck = 0x064,
    /// The device status.
    Status = 0x070,
    /// Descriptor table address, bits 31:0.
    QueueDescLow = 0x080,
    /// Descriptor table address, bits 63:32.
    QueueDescHigh = 0x084,
    /// Driver area (available ring) address, bits 31:0.
    QueueDriverLow = 0x090,
    /// Driver area address, bits 63:32.
    QueueDriverHigh = 0x094,
    /// Device area (used ring) address, bits 31:0.
    QueueDeviceLow = 0x0a0,
    /// Device area address, bits 63:32.
    QueueDeviceHigh = 0x0a4,
    /// Shared memory region selector.
    ShmSel = 0x0ac,
    /// Selected region's length, bits 31:0.
    ShmLenLow = 0x0b0,
    /// Selected region's length, bits 63:32.
    ShmLenHigh = 0x0b4,
    /// Selected region's address, bits 31:0.
    ShmBaseLow = 0x0b8,
    /// Selected region's address, bits 63:32.
    ShmBaseHigh = 0x0bc,
    /// Configuration atomicity value.
    ConfigGeneration = 0x0fc,
}

impl Register {
    /// Every register, for the offset lookup.
    pub(super) const ALL: [Register; 28] = [
        Register::MagicValue,
        Register::Version,
        Register::DeviceId,
        Register::VendorId,
        Register::DeviceFeatures,
        Register::DeviceFeaturesSel,
        Register::DriverFeatures,
        Register::DriverFeaturesSel,
        Register::QueueSel,
        Register::QueueNumMax,
        Register::QueueNum,
        Register::QueueReady,
        Register::QueueNotify,
        Register::InterruptStatus,
        Register::InterruptAck,
        Register::Status,
        Register::QueueDescLow,
        Register::QueueDescHigh,
        Register::QueueDriverLow,
        Register::QueueDriverHigh,
        Register::QueueDeviceLow,
        Register::QueueDeviceHigh,
        Register::ShmSel,
        Register::ShmLenLow,
        Register::ShmLenHigh,
        Register::ShmBaseLow,
        Register::ShmBaseHigh,
        Register::ConfigGeneration,
    ];
}

impl TryFrom<u64> for Register {
    type Error = DevError;

    fn try_from(offset: u64) -> Result<Self, DevError> {
        Register::ALL
            .iter()
            .copied()
            .find(|register| *register as u64 == offset)
            .ok_or(DevError::UnknownRegister)
    }
}

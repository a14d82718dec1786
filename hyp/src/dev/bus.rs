//! The device bus: which emulated device answers at a guest address.
//!
//! A personality's windows are fixed when it is made (its vCPU count sizes the
//! redistributors; a UART and a block device are there or not), so the bus is
//! read without a lock: an MMIO exit is routed once, and only the device it
//! reaches is locked. Adding a device is one `Target` and one window in
//! [`Bus::new`].
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use crate::vm::devicetree::layout::{
    BLOCK_BASE, BLOCK_SIZE, GICD_BASE, GICD_SIZE, GICR_BASE, SHARED_BASE, SHARED_SIZE, UART_BASE,
    UART_SIZE,
};

/// A device on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The virtual GIC distributor.
    Distributor,
    /// The virtual GIC redistributors (all vCPUs').
    Redistributors,
    /// The SBSA UART.
    Uart,
    /// The virtio-mmio block device (the personality's volume).
    Block,
    /// The virtio-mmio 9P device (the shared folder).
    Shared,
}

impl Target {
    /// Whether an access reads or changes the interrupt controller's state, so
    /// the timers must be sampled before it and the list registers brought in
    /// step after it.
    pub fn is_interrupt_controller(self) -> bool {
        matches!(self, Target::Distributor | Target::Redistributors)
    }
}

/// Where an access lands: the device and the offset inside its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The device.
    pub target: Target,
    /// Offset from the start of its window.
    pub offset: u64,
}

/// One device's window of guest-physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    base: u64,
    size: u64,
    target: Target,
}

/// What a personality has on its bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Fitted {
    /// Bytes of redistributor frames (by the vCPU count); 0 without a vGIC.
    pub redistributor_bytes: u64,
    /// Whether it has the vGIC at all.
    pub vgic: bool,
    /// Whether it has a UART (Linux personalities).
    pub uart: bool,
    /// Whether it has a block device (a volume on the disk).
    pub block: bool,
    /// Whether it has the shared folder's 9P device.
    pub shared: bool,
}

/// A personality's device windows.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Bus {
    windows: Vec<Window>,
}

impl Bus {
    /// The bus of a personality fitted with `fitted`.
    pub fn new(fitted: Fitted) -> Bus {
        let all = [
            (fitted.vgic, GICD_BASE, GICD_SIZE, Target::Distributor),
            (
                fitted.vgic,
                GICR_BASE,
                fitted.redistributor_bytes,
                Target::Redistributors,
            ),
            (fitted.uart, UART_BASE, UART_SIZE, Target::Uart),
            (fitted.block, BLOCK_BASE, BLOCK_SIZE, Target::Block),
            (fitted.shared, SHARED_BASE, SHARED_SIZE, Target::Shared),
        ];
        let windows = all
            .iter()
            .filter(|&&(present, _, size, _)| present && size != 0)
            .map(|&(_, base, size, target)| Window { base, size, target })
            .collect();
        Bus { windows }
    }

    /// The device answering at `ipa`, if any.
    pub fn route(&self, ipa: u64) -> Option<Route> {
        self.windows.iter().find_map(|window| {
            let offset = ipa.checked_sub(window.base)?;
            (offset < window.size).then_some(Route {
                target: window.target,
                offset,
            })
        })
    }

    /// Whether `target` is on this bus.
    pub fn has(&self, target: Target) -> bool {
        self.windows.iter().any(|window| window.target == target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(block: bool) -> Bus {
        Bus::new(Fitted {
            redistributor_bytes: 2 * 0x2_0000,
            vgic: true,
            uart: true,
            block,
            shared: block,
        })
    }

    fn at(target: Target, offset: u64) -> Option<Route> {
        Some(Route { target, offset })
    }

    #[test]
    fn every_window_routes_to_its_device_and_offset() {
        let bus = linux(true);
        assert_eq!(bus.route(0x0800_0000), at(Target::Distributor, 0));
        assert_eq!(bus.route(0x0800_ffff), at(Target::Distributor, 0xffff));
        assert_eq!(
            bus.route(0x080A_0000 + 0x3_0000),
            at(Target::Redistributors, 0x3_0000)
        );
        assert_eq!(bus.route(0x0900_0018), at(Target::Uart, 0x18));
        assert_eq!(bus.route(0x0a00_0070), at(Target::Block, 0x70));
        assert_eq!(bus.route(0x0a00_01ff), at(Target::Block, 0x1ff));
        assert_eq!(bus.route(0x0a00_0200), at(Target::Shared, 0));
        assert_eq!(bus.route(0x0a00_03ff), at(Target::Shared, 0x1ff));
    }

    #[test]
    fn addresses_between_and_past_windows_reach_nothing() {
        let bus = linux(true);
        for ipa in [
            0,
            0x0801_0000,
            0x080A_0000 + 0x4_0000,
            0x0900_1000,
            0x0a00_0400,
            0x4000_0000,
            u64::MAX,
        ] {
            assert_eq!(bus.route(ipa), None, "{ipa:#x}");
        }
    }

    #[test]
    fn only_fitted_devices_are_on_the_bus() {
        let bus = linux(false);
        assert_eq!(bus.route(0x0a00_0000), None);
        assert_eq!(bus.route(0x0a00_0200), None);
        assert!(!bus.has(Target::Block));
        assert!(!bus.has(Target::Shared));
        let bare = Bus::new(Fitted {
            redistributor_bytes: 0x2_0000,
            vgic: true,
            ..Fitted::default()
        });
        assert_eq!(bare.route(0x0900_0000), None);
        assert_eq!(bare.route(0x080A_0000), at(Target::Redistributors, 0));
        assert_eq!(bare.route(0x080A_0000 + 0x2_0000), None);
        assert!(Bus::default().route(0x0800_0000).is_none());
    }

    #[test]
    fn interrupt_controller_targets() {
        assert!(Target::Distributor.is_interrupt_controller());
        assert!(Target::Redistributors.is_interrupt_controller());
        assert!(!Target::Uart.is_interrupt_controller());
        assert!(!Target::Block.is_interrupt_controller());
    }
}

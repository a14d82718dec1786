//! The emulated devices of a personality (a virtual GICv3 with its timer PPIs
//! tied to the physical ones; for Linux also an SBSA UART), and which guest
//! address reaches which.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::dev::sbsa_uart::SbsaUart;
use alloc::boxed::Box;

use crate::dev::bus::{Fitted, Route, Target};
use crate::dev::vgic::{GicFrame, Vgic, VgicError, VirtualGic};
use crate::dev::{DevError, MmioDevice, Width};
use crate::vm::devicetree::layout::{TIMER_PHYS_PPI, TIMER_VIRT_PPI, UART_SPI};

/// SPIs the virtual distributor implements (INTIDs 32-63: one ITLinesNumber group).
pub const SPIS: u32 = 32;
/// INTID of the UART's SPI.
pub const UART_INTID: u32 = 32 + UART_SPI;
/// INTIDs of the EL1 virtual and physical timers' PPIs, each tied to the physical
/// PPI of the same number on the vCPU's physical CPU.
pub const TIMER_INTIDS: [u32; 2] = [16 + TIMER_VIRT_PPI, 16 + TIMER_PHYS_PPI];

/// What one emulated access produced besides its value.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Bytes the guest wrote to its UART, for the console.
    pub output: Vec<u8>,
}

/// A personality's devices; behind the personality's lock.
pub struct Devices {
    /// The virtual interrupt controller (a GICv3 model today).
    pub vgic: Box<dyn VirtualGic>,
    /// The virtual UART (ttyAMA0) of a Linux personality; bare-metal ones print
    /// through the console hypercall.
    pub uart: Option<SbsaUart>,
    /// Typed bytes waiting for room in the UART's receive FIFO: the physical
    /// console delivers faster than a 32-byte FIFO drains, and a real UART's
    /// flow control is not there to hold them back.
    input: VecDeque<u8>,
}

// By hand, without the vGIC: a `Debug` bound on `VirtualGic` would put the
// model's formatting in its vtable, and so in the image, for no output Janus prints.
impl core::fmt::Debug for Devices {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Devices")
            .field("uart", &self.uart)
            .field("input", &self.input)
            .finish_non_exhaustive()
    }
}

/// Most typed bytes held for a personality beyond its UART FIFO.
pub const INPUT_QUEUE_BYTES: usize = 4096;

impl Devices {
    /// Devices for a Linux personality with `vcpus` vCPUs: the vGIC and the UART.
    ///
    /// # Errors
    /// When the vGIC cannot have that many vCPUs.
    pub fn new(vcpus: usize) -> Result<Devices, VgicError> {
        let mut devices = Self::interrupts_only(vcpus)?;
        devices.uart = Some(SbsaUart::new());
        Ok(devices)
    }

    /// Devices for a bare-metal personality: the vGIC (for its timers' interrupts)
    /// and nothing else.
    ///
    /// # Errors
    /// When the vGIC cannot have that many vCPUs.
    pub fn interrupts_only(vcpus: usize) -> Result<Devices, VgicError> {
        let mut vgic = Vgic::new(vcpus, SPIS)?;
        for intid in TIMER_INTIDS {
            vgic.tie_to_physical(intid, intid)?;
        }
        Ok(Devices {
            vgic: Box::new(vgic),
            uart: None,
            input: VecDeque::new(),
        })
    }

    /// What this personality has on its bus (the virtio devices are fitted
    /// apart, by whoever gives it a volume or the shared folder).
    pub fn fitted(&self) -> Fitted {
        Fitted {
            redistributor_bytes: self.vgic.frame_bytes(GicFrame::Redistributors),
            vgic: true,
            uart: self.uart.is_some(),
            block: false,
            shared: false,
        }
    }

    /// Performs a guest access that the bus routed here. A device's refusal
    /// (unknown register, bad width) reads as zero and ignores the write, as
    /// the GIC and PL011 specifications ask of reserved locations; it comes back
    /// as the error. A target these devices do not hold is an unknown register.
    ///
    /// # Errors
    /// The device's refusal.
    pub fn access(
        &mut self,
        route: Route,
        width: Width,
        write: Option<u64>,
        effects: &mut Effects,
    ) -> Result<u64, DevError> {
        let offset = route.offset;
        let frame = match route.target {
            Target::Distributor => GicFrame::Distributor,
            Target::Redistributors => GicFrame::Redistributors,
            Target::Uart => return self.uart_access(offset, width, write, effects),
            Target::Block | Target::Shared => return Err(DevError::UnknownRegister),
        };
        match write {
            None => self.vgic.read(frame, offset, width),
            Some(value) => self.vgic.write(frame, offset, width, value).map(|()| 0),
        }
    }

    fn uart_access(
        &mut self,
        offset: u64,
        width: Width,
        write: Option<u64>,
        effects: &mut Effects,
    ) -> Result<u64, DevError> {
        let uart = self.uart.as_mut().ok_or(DevError::UnknownRegister)?;
        let result = match write {
            None => uart.read(offset, width),
            Some(value) => uart.write(offset, width, value).map(|()| 0),
        };
        effects.output.extend(uart.take_output());
        self.refill_input();
        self.update_uart_line();
        result
    }

    /// Feeds typed bytes to the UART, queueing what its FIFO cannot take yet;
    /// returns how many were accepted (the rest is dropped: the queue is full,
    /// or there is no UART).
    pub fn input(&mut self, bytes: &[u8]) -> usize {
        if self.uart.is_none() {
            return 0;
        }
        let room = INPUT_QUEUE_BYTES.saturating_sub(self.input.len());
        let accepted = bytes.len().min(room);
        self.input.extend(bytes.iter().take(accepted));
        self.refill_input();
        self.update_uart_line();
        accepted
    }

    /// Moves queued input into the UART's receive FIFO as far as it has room.
    fn refill_input(&mut self) {
        let Some(uart) = self.uart.as_mut() else {
            return;
        };
        while let Some(&byte) = self.input.front() {
            if uart.push_input(&[byte]) == 0 {
                break;
            }
            self.input.pop_front();
        }
    }

    /// Carries the UART's interrupt output to its SPI.
    fn update_uart_line(&mut self) {
        if let Some(uart) = &self.uart {
            let _ = self.vgic.set_level(UART_INTID, None, uart.irq_level());
        }
    }

    /// Back to power-on state (the personality reboots).
    pub fn reset(&mut self) {
        self.vgic.reset();
        if let Some(uart) = self.uart.as_mut() {
            uart.reset();
        }
        self.input.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::bus::Bus;

    /// Routes an access at `ipa` as the dispatcher does: `None` when no device
    /// of these answers there.
    fn at(
        devices: &mut Devices,
        ipa: u64,
        width: Width,
        write: Option<u64>,
        effects: &mut Effects,
    ) -> Option<Result<u64, DevError>> {
        let route = Bus::new(devices.fitted()).route(ipa)?;
        Some(devices.access(route, width, write, effects))
    }

    #[test]
    fn the_bus_of_a_linux_personality_has_the_gic_and_the_uart() {
        let devices = Devices::new(2).unwrap();
        let bus = Bus::new(devices.fitted());
        assert!(bus.has(Target::Distributor) && bus.has(Target::Uart));
        assert_eq!(
            bus.route(0x080A_0000 + 0x3_0000).map(|route| route.target),
            Some(Target::Redistributors)
        );
        assert_eq!(bus.route(0x080A_0000 + 0x4_0000), None);
        assert!(!bus.has(Target::Block));
    }

    #[test]
    fn uart_output_is_collected_and_input_raises_the_spi_line() {
        let mut devices = Devices::new(2).unwrap();
        let mut effects = Effects::default();
        // UARTDR write.
        let result = at(
            &mut devices,
            0x0900_0000,
            Width::Word,
            Some(u64::from(b'x')),
            &mut effects,
        );
        assert_eq!(result, Some(Ok(0)));
        assert_eq!(effects.output, b"x");
        // Unmask RX (UARTIMSC bit 4), then type.
        at(
            &mut devices,
            0x0900_0038,
            Width::Word,
            Some(1 << 4),
            &mut effects,
        );
        assert_eq!(devices.input(b"ab"), 2);
        assert!(devices.uart.as_ref().is_some_and(SbsaUart::irq_level));
        let read = at(&mut devices, 0x0900_0000, Width::Word, None, &mut effects);
        assert_eq!(read, Some(Ok(u64::from(b'a'))));
    }

    #[test]
    fn a_bare_metal_personality_has_the_gic_but_no_uart() {
        let mut devices = Devices::interrupts_only(2).unwrap();
        let bus = Bus::new(devices.fitted());
        assert!(bus.has(Target::Distributor));
        assert!(bus.route(0x080A_0000 + 0x3_0000).is_some());
        assert!(bus.route(0x0900_0000).is_none());
        let uart = Route {
            target: Target::Uart,
            offset: 0,
        };
        let mut effects = Effects::default();
        assert_eq!(
            devices.access(uart, Width::Word, Some(1), &mut effects),
            Err(DevError::UnknownRegister)
        );
        assert_eq!(devices.input(b"ab"), 0);
        devices.reset();
    }

    #[test]
    fn typed_input_beyond_the_fifo_waits_in_order() {
        let mut devices = Devices::new(2).unwrap();
        let mut effects = Effects::default();
        let typed: Vec<u8> = (0..200u8).collect();
        assert_eq!(devices.input(&typed), 200);
        let mut received = Vec::new();
        // Read UARTDR until UARTFR.RXFE (bit 4) says empty.
        let receive_empty = |devices: &mut Devices, effects: &mut Effects| {
            let flags = at(devices, 0x0900_0018, Width::Word, None, effects);
            flags
                .and_then(Result::ok)
                .is_none_or(|flags| flags & 0x10 != 0)
        };
        while !receive_empty(&mut devices, &mut effects) {
            let Some(Ok(byte)) = at(&mut devices, 0x0900_0000, Width::Word, None, &mut effects)
            else {
                panic!("DR read failed");
            };
            received.push(byte as u8);
        }
        assert_eq!(received, typed);
    }
}

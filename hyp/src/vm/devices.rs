//! The emulated devices of a personality (a virtual GICv3 with its timer PPIs
//! tied to the physical ones; for Linux also an SBSA UART), and which guest
//! address reaches which.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::dev::sbsa_uart::SbsaUart;
use alloc::boxed::Box;

use crate::dev::vgic::{GicFrame, Vgic, VgicError, VirtualGic};
use crate::dev::{DevError, MmioDevice, Width};
use crate::vm::devicetree::layout::{
    GICD_BASE, GICD_SIZE, GICR_BASE, TIMER_PHYS_PPI, TIMER_VIRT_PPI, UART_BASE, UART_SIZE, UART_SPI,
};

/// SPIs the virtual distributor implements (INTIDs 32-63: one ITLinesNumber group).
pub const SPIS: u32 = 32;
/// INTID of the UART's SPI.
pub const UART_INTID: u32 = 32 + UART_SPI;
/// INTIDs of the EL1 virtual and physical timers' PPIs, each tied to the physical
/// PPI of the same number on the vCPU's physical CPU.
pub const TIMER_INTIDS: [u32; 2] = [16 + TIMER_VIRT_PPI, 16 + TIMER_PHYS_PPI];

/// Which device a guest address belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Window {
    Distributor,
    Redistributors,
    Uart,
}

/// What one emulated access produced besides its value.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Bytes the guest wrote to its UART, for the console.
    pub output: Vec<u8>,
}

/// A personality's devices; behind the personality's lock.
#[derive(Debug)]
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

    fn window(&self, ipa: u64) -> Option<(Window, u64)> {
        let inside = |base: u64, size: u64| ipa.checked_sub(base).filter(|&offset| offset < size);
        if let Some(offset) = inside(GICD_BASE, GICD_SIZE) {
            return Some((Window::Distributor, offset));
        }
        if let Some(offset) = inside(GICR_BASE, self.vgic.frame_bytes(GicFrame::Redistributors)) {
            return Some((Window::Redistributors, offset));
        }
        self.uart.as_ref()?;
        inside(UART_BASE, UART_SIZE).map(|offset| (Window::Uart, offset))
    }

    /// Whether `ipa` is in the interrupt controller's distributor or redistributors.
    pub fn is_interrupt_controller(&self, ipa: u64) -> bool {
        matches!(
            self.window(ipa),
            Some((Window::Distributor | Window::Redistributors, _))
        )
    }

    /// Whether a device answers at `ipa`.
    pub fn claims(&self, ipa: u64) -> bool {
        self.window(ipa).is_some()
    }

    /// Performs a guest access at `ipa`: `Some(value)` read (0 for a write), or
    /// `None` when no device is there. A device's refusal (unknown register,
    /// bad width) reads as zero and ignores the write, as the GIC and PL011
    /// specifications ask of reserved locations; it comes back as the error.
    pub fn access(
        &mut self,
        ipa: u64,
        width: Width,
        write: Option<u64>,
        effects: &mut Effects,
    ) -> Option<Result<u64, DevError>> {
        let (window, offset) = self.window(ipa)?;
        let result = match (window, write) {
            (Window::Distributor, None) => self.vgic.read(GicFrame::Distributor, offset, width),
            (Window::Distributor, Some(value)) => self
                .vgic
                .write(GicFrame::Distributor, offset, width, value)
                .map(|()| 0),
            (Window::Redistributors, None) => {
                self.vgic.read(GicFrame::Redistributors, offset, width)
            }
            (Window::Redistributors, Some(value)) => self
                .vgic
                .write(GicFrame::Redistributors, offset, width, value)
                .map(|()| 0),
            (Window::Uart, None) => self.uart.as_mut()?.read(offset, width),
            (Window::Uart, Some(value)) => {
                self.uart.as_mut()?.write(offset, width, value).map(|()| 0)
            }
        };
        if let (Window::Uart, Some(uart)) = (window, self.uart.as_mut()) {
            effects.output.extend(uart.take_output());
            self.refill_input();
            self.update_uart_line();
        }
        Some(result)
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

    #[test]
    fn addresses_reach_their_device() {
        let devices = Devices::new(2).unwrap();
        assert_eq!(devices.window(0x0800_0000), Some((Window::Distributor, 0)));
        assert_eq!(
            devices.window(0x080A_0000 + 0x3_0000),
            Some((Window::Redistributors, 0x3_0000))
        );
        assert_eq!(devices.window(0x080A_0000 + 0x4_0000), None);
        assert_eq!(devices.window(0x0900_0018), Some((Window::Uart, 0x18)));
        assert_eq!(devices.window(0x0900_1000), None);
        assert_eq!(devices.window(0x4000_0000), None);
        assert!(devices.is_interrupt_controller(0x0800_0100));
        assert!(devices.is_interrupt_controller(0x080A_0000));
        assert!(!devices.is_interrupt_controller(0x0900_0000));
    }

    #[test]
    fn uart_output_is_collected_and_input_raises_the_spi_line() {
        let mut devices = Devices::new(2).unwrap();
        let mut effects = Effects::default();
        // UARTDR write.
        let result = devices.access(
            0x0900_0000,
            Width::Word,
            Some(u64::from(b'x')),
            &mut effects,
        );
        assert_eq!(result, Some(Ok(0)));
        assert_eq!(effects.output, b"x");
        // Unmask RX (UARTIMSC bit 4), then type.
        devices.access(0x0900_0038, Width::Word, Some(1 << 4), &mut effects);
        assert_eq!(devices.input(b"ab"), 2);
        assert!(devices.uart.as_ref().is_some_and(SbsaUart::irq_level));
        let read = devices.access(0x0900_0000, Width::Word, None, &mut effects);
        assert_eq!(read, Some(Ok(u64::from(b'a'))));
    }

    #[test]
    fn a_bare_metal_personality_has_the_gic_but_no_uart() {
        let mut devices = Devices::interrupts_only(2).unwrap();
        assert!(devices.is_interrupt_controller(0x0800_0000));
        assert!(devices.claims(0x080A_0000 + 0x3_0000));
        assert!(!devices.claims(0x0900_0000));
        let mut effects = Effects::default();
        assert_eq!(
            devices.access(0x0900_0000, Width::Word, Some(1), &mut effects),
            None
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
            let flags = devices.access(0x0900_0018, Width::Word, None, effects);
            flags
                .and_then(Result::ok)
                .is_none_or(|flags| flags & 0x10 != 0)
        };
        while !receive_empty(&mut devices, &mut effects) {
            let Some(Ok(byte)) = devices.access(0x0900_0000, Width::Word, None, &mut effects)
            else {
                panic!("DR read failed");
            };
            received.push(byte as u8);
        }
        assert_eq!(received, typed);
    }
}

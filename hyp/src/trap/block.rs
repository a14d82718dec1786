//! A personality's virtio-mmio block device on the exit path: a register access
//! under the device's own lock, the requests a QueueNotify announced handled
//! right there (synchronous I/O on the notifying vCPU), and the interrupt line
//! carried to the vGIC afterwards.
//!
//! The device's lock is not the devices lock: one personality's disk I/O never
//! holds up its vGIC or UART. Lock order: the block device, then (after it is
//! released) the devices lock; the physical disk's lock is taken inside the
//! backend, under the block device's.

use super::dispatch::Services;
use crate::dev::bus::{Route, Target};
use crate::dev::virtio::blk::BlkDevice;
use crate::dev::virtio::mmio::MmioTransport;
use crate::dev::virtio::{GuestMemory, MemError};
use crate::dev::{DevError, MmioDevice, Width};
use crate::vm::devicetree::layout::BLOCK_SPI;
use crate::vm::Personality;

/// A personality's block device: the transport and the blk model behind it.
pub type BlockDevice = MmioTransport<BlkDevice>;

/// INTID of the block device's SPI.
pub const BLOCK_INTID: u32 = 32 + BLOCK_SPI;

/// Requests one `process` call handles before the device's lock is dropped
/// and taken again: the other vCPUs of the personality get the lock in
/// between, and the physical disk's ticket lock, taken per physical request,
/// keeps the two personalities in turn whatever this is.
const BUDGET: usize = 8;

/// Most requests one exit handles (EL2 runs with interrupts masked: this
/// bounds how long a guest can keep this CPU there, about 32 MiB of transfers
/// or 32 MiB of zeroing). What is left is taken up at the guest's next access
/// to the device: its interrupt handler reads InterruptStatus for the requests
/// that did complete.
const MOST_PER_EXIT: usize = 32;

/// A personality's RAM as its devices reach it: every range is checked to be
/// wholly its own RAM and prepared (untouched chunks cleared and mapped)
/// before anything reads or writes it.
pub struct PersonalityRam<'a> {
    vm: &'a Personality,
    services: &'a mut dyn Services,
}

impl<'a> PersonalityRam<'a> {
    /// `vm`'s RAM, reached through `services`.
    pub fn new(vm: &'a Personality, services: &'a mut dyn Services) -> Self {
        PersonalityRam { vm, services }
    }
}

impl GuestMemory for PersonalityRam<'_> {
    fn check(&mut self, addr: u64, len: u64) -> Result<(), MemError> {
        addr.checked_add(len).ok_or(MemError::Overflow)?;
        if !self.vm.ram_contains(addr, len) {
            return Err(MemError::OutsideRam);
        }
        if len == 0 || self.services.prepare_for_device(self.vm, addr, len) {
            Ok(())
        } else {
            Err(MemError::OutsideRam)
        }
    }

    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.check(addr, buf.len() as u64)?;
        self.services.copy_from_guest(self.vm, addr, buf);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        self.check(addr, data.len() as u64)?;
        self.services.write_to_guest(self.vm, addr, data);
        Ok(())
    }

    fn fence(&mut self) {
        self.services.guest_memory_fence();
    }
}

/// Performs a guest access to `vm`'s block device registers at `route`, and
/// the requests it announced.
///
/// # Errors
/// The register's refusal (unknown offset, bad width), or `UnknownRegister`
/// when `vm` has no block device.
pub fn access(
    vm: &Personality,
    vcpu: usize,
    route: Route,
    width: Width,
    write: Option<u64>,
    services: &mut dyn Services,
) -> Result<u64, DevError> {
    let Some(device) = (route.target == Target::Block)
        .then_some(vm.block.as_ref())
        .flatten()
    else {
        return Err(DevError::UnknownRegister);
    };
    let mut device = device.lock();
    let result = match write {
        None => device.read(route.offset, width),
        Some(value) => device.write(route.offset, width, value).map(|()| 0),
    };
    if let Some(fault) = device.take_fault() {
        services.guest_report(
            vm,
            crate::console::ratelimit::Cause::DeviceRegister,
            format_args!("{}: block device: {fault:?}", vm.name),
        );
    }
    let notified = device.take_notified().is_some();
    if notified || device.more_pending() {
        let mut handled = 0;
        loop {
            let outcome = device.process(&mut PersonalityRam::new(vm, services), BUDGET);
            handled += BUDGET;
            if !outcome.more_pending || handled >= MOST_PER_EXIT {
                break;
            }
            // Let the personality's other vCPUs at the registers in between.
            drop(device);
            device = match vm.block.as_ref() {
                Some(block) => block.lock(),
                None => return result,
            };
        }
    }
    let level = device.irq_level();
    drop(device);
    // The used ring's updates are visible to the guest's other vCPUs before
    // the interrupt that tells one of them to look.
    services.guest_memory_fence();
    set_line(vm, vcpu, level, services);
    result
}

/// Carries the block device's interrupt output to its SPI in the vGIC, and
/// brings the list registers in step with what that changed.
fn set_line(vm: &Personality, vcpu: usize, level: bool, services: &mut dyn Services) {
    let Some(devices) = &vm.devices else {
        return;
    };
    let mut devices = devices.lock();
    let _ = devices.vgic.set_level(BLOCK_INTID, None, level);
    services.sync_vgic(devices.vgic.as_mut(), vcpu, false);
    drop(devices);
    services.finish_vgic_sync(vm, vcpu);
}

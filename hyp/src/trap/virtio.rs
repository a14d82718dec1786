//! A personality's virtio-mmio devices (its block device and its shared
//! folder's 9P device) on the exit path: a register access under the device's
//! own lock, the requests a QueueNotify announced handled right there
//! (synchronous I/O on the notifying vCPU), and the interrupt line carried to
//! the vGIC afterwards.
//!
//! A device's lock is not the devices lock: one personality's disk I/O never
//! holds up its vGIC or UART. Lock order: the virtio device, then (after it is
//! released) the devices lock; the channel's and the physical disk's locks are
//! taken inside the device, under its own.

use super::dispatch::Services;
use crate::dev::bus::{Route, Target};
use crate::dev::virtio::blk::BlkDevice;
use crate::dev::virtio::mmio::MmioTransport;
use crate::dev::virtio::{GuestMemory, MemError, VirtioDevice};
use crate::dev::{DevError, MmioDevice, Width};
use crate::vm::devicetree::layout::{BLOCK_SPI, SHARED_SPI};
use crate::vm::Personality;
use alloc::boxed::Box;
use spin::Mutex;

/// A personality's block device: the transport and the blk model behind it.
pub type BlockDevice = MmioTransport<BlkDevice>;

/// A personality's shared-folder device: the transport and the 9P model
/// behind it (boxed: the model and its channel handle are made in `arch`).
pub type SharedDevice = MmioTransport<Box<dyn SharedModel>>;

/// What the shared folder's device model is to the exit path.
pub trait SharedModel: VirtioDevice + Send + core::fmt::Debug {}

impl<D: VirtioDevice + Send + core::fmt::Debug> SharedModel for D {}

/// INTID of the block device's SPI.
pub const BLOCK_INTID: u32 = 32 + BLOCK_SPI;

/// INTID of the shared folder's SPI.
pub const SHARED_INTID: u32 = 32 + SHARED_SPI;

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

/// Performs a guest access to the registers of `vm`'s virtio device at
/// `route` (its block device or its shared folder), and the requests it
/// announced.
///
/// # Errors
/// The register's refusal (unknown offset, bad width), or `UnknownRegister`
/// when `vm` has no such device.
pub fn access(
    vm: &Personality,
    vcpu: usize,
    route: Route,
    width: Width,
    write: Option<u64>,
    services: &mut dyn Services,
) -> Result<u64, DevError> {
    match route.target {
        Target::Block => match &vm.block {
            Some(device) => serve(
                vm,
                vcpu,
                device,
                "block device",
                BLOCK_INTID,
                route,
                width,
                write,
                services,
            ),
            None => Err(DevError::UnknownRegister),
        },
        Target::Shared => match &vm.shared {
            Some(device) => serve(
                vm,
                vcpu,
                device,
                "shared folder",
                SHARED_INTID,
                route,
                width,
                write,
                services,
            ),
            None => Err(DevError::UnknownRegister),
        },
        _ => Err(DevError::UnknownRegister),
    }
}

/// The register access and the requests it announced, for one device.
#[allow(clippy::too_many_arguments)]
fn serve<D: VirtioDevice>(
    vm: &Personality,
    vcpu: usize,
    device: &Mutex<MmioTransport<D>>,
    what: &str,
    intid: u32,
    route: Route,
    width: Width,
    write: Option<u64>,
    services: &mut dyn Services,
) -> Result<u64, DevError> {
    let mut transport = device.lock();
    let result = match write {
        None => transport.read(route.offset, width),
        Some(value) => transport.write(route.offset, width, value).map(|()| 0),
    };
    if let Some(fault) = transport.take_fault() {
        services.guest_report(
            vm,
            crate::console::ratelimit::Cause::DeviceRegister,
            format_args!("{}: {what}: {fault:?}", vm.name),
        );
    }
    let notified = transport.take_notified().is_some();
    if notified || transport.more_pending() {
        let mut handled = 0;
        loop {
            let outcome = transport.process(&mut PersonalityRam::new(vm, services), BUDGET);
            handled += BUDGET;
            if !outcome.more_pending || handled >= MOST_PER_EXIT {
                break;
            }
            // Let the personality's other vCPUs at the registers in between.
            drop(transport);
            transport = device.lock();
        }
    }
    let level = transport.irq_level();
    drop(transport);
    // The used ring's updates are visible to the guest's other vCPUs before
    // the interrupt that tells one of them to look.
    services.guest_memory_fence();
    set_line(vm, vcpu, intid, level, services);
    result
}

/// Carries a virtio device's interrupt output to its SPI in the vGIC, and
/// brings the list registers in step with what that changed.
fn set_line(vm: &Personality, vcpu: usize, intid: u32, level: bool, services: &mut dyn Services) {
    let Some(devices) = &vm.devices else {
        return;
    };
    let mut devices = devices.lock();
    let _ = devices.vgic.set_level(intid, None, level);
    services.sync_vgic(devices.vgic.as_mut(), vcpu, false);
    drop(devices);
    services.finish_vgic_sync(vm, vcpu);
}

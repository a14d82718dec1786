//! A personality at run time: its memory, vCPUs and lifecycle state.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, Ordering};

use spin::Mutex;

use super::bundle::GuestKind;
use super::devices::Devices;
use super::vcpu::VcpuSlot;
use crate::console::ratelimit::ReportLimiter;
use crate::dev::bus::Bus;
use crate::trap::virtio::{BlockDevice, SharedDevice};

/// Lifecycle of a personality.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum VmState {
    /// Its vCPUs may run.
    Running = 0,
    /// Stopped for good (PSCI SYSTEM_OFF, or a fault it could not handle).
    Off = 1,
    /// Stopping so that it can be started again from a fresh image (SYSTEM_RESET).
    Resetting = 2,
    /// Waiting for its first start (the physical CPU of its vCPU 0 loads it, so
    /// personalities load in parallel).
    Starting = 3,
}

impl VmState {
    /// Whether it waits to be (re)loaded and started.
    pub fn awaits_start(self) -> bool {
        matches!(self, VmState::Resetting | VmState::Starting)
    }
}

/// Longest console line a personality can print through the hypercall before
/// Janus flushes it without a newline.
pub const CONSOLE_LINE_BYTES: usize = 256;

/// One personality.
#[derive(Debug)]
pub struct Personality {
    /// Index in the personality table (also selects its VMID).
    pub id: usize,
    /// Its name, which is also its hostname.
    pub name: String,
    /// What kind of guest it runs.
    pub kind: GuestKind,
    /// Stage-2 VMID.
    pub vmid: u16,
    /// First byte of its RAM; guest IPA and physical address are the same.
    pub ram_base: u64,
    /// Bytes of RAM.
    pub ram_size: u64,
    /// Its vCPUs, each pinned to one physical CPU.
    pub vcpus: Vec<VcpuSlot>,
    state: AtomicU8,
    /// Console output not yet ended by a newline.
    pub console: Mutex<Vec<u8>>,
    /// Which device answers at which guest address (fixed when it is made,
    /// read without a lock).
    pub bus: Bus,
    /// Emulated devices: the vGIC of every personality made at boot, and a Linux
    /// personality's UART (`None` only in tests).
    pub devices: Option<Mutex<Devices>>,
    /// Its virtio-mmio block device, on its volume (a partition of Janus'
    /// disk), when it has one; apart from `devices` so that disk I/O never
    /// holds up the vGIC.
    pub block: Option<Mutex<BlockDevice>>,
    /// Its virtio-mmio 9P device, the shared folder, when there is one.
    pub shared: Option<Mutex<SharedDevice>>,
    /// The rate limits of the reports it makes Janus print; made at its first
    /// report, when the console's clock is known.
    pub reports: Mutex<Option<ReportLimiter>>,
}

impl Personality {
    /// A stopped personality with `pcpus[i]` running vCPU `i`.
    pub fn new(
        id: usize,
        name: &str,
        kind: GuestKind,
        ram_base: u64,
        ram_size: u64,
        pcpus: &[usize],
        devices: Option<Devices>,
    ) -> Personality {
        Personality {
            id,
            name: String::from(name),
            kind,
            vmid: u16::try_from(id + 1).unwrap_or(u16::MAX),
            ram_base,
            ram_size,
            vcpus: pcpus.iter().map(|&pcpu| VcpuSlot::new(pcpu)).collect(),
            state: AtomicU8::new(VmState::Starting as u8),
            console: Mutex::new(Vec::new()),
            bus: devices
                .as_ref()
                .map(|devices| Bus::new(devices.fitted()))
                .unwrap_or_default(),
            devices: devices.map(Mutex::new),
            block: None,
            shared: None,
            reports: Mutex::new(None),
        }
    }

    /// Gives it `block` as its block device, on its bus.
    pub fn with_block(mut self, block: BlockDevice) -> Personality {
        self.block = Some(Mutex::new(block));
        self.refit();
        self
    }

    /// Gives it `shared` as its shared-folder device, on its bus.
    pub fn with_shared(mut self, shared: SharedDevice) -> Personality {
        self.shared = Some(Mutex::new(shared));
        self.refit();
        self
    }

    /// Makes the bus again from the devices it has.
    fn refit(&mut self) {
        let mut fitted = self
            .devices
            .as_ref()
            .map(|devices| devices.lock().fitted())
            .unwrap_or_default();
        fitted.block = self.block.is_some();
        fitted.shared = self.shared.is_some();
        self.bus = Bus::new(fitted);
    }

    /// The lifecycle state.
    pub fn state(&self) -> VmState {
        match self.state.load(Ordering::Acquire) {
            0 => VmState::Running,
            2 => VmState::Resetting,
            3 => VmState::Starting,
            _ => VmState::Off,
        }
    }

    /// Moves to `state`.
    pub fn set_state(&self, state: VmState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Whether `[ipa, ipa + len)` lies wholly inside this personality's RAM.
    pub fn ram_contains(&self, ipa: u64, len: u64) -> bool {
        let Some(end) = ipa.checked_add(len) else {
            return false;
        };
        let Some(ram_end) = self.ram_base.checked_add(self.ram_size) else {
            return false;
        };
        ipa >= self.ram_base && end <= ram_end
    }

    /// The vCPU whose MPIDR is `mpidr`, if this personality has it.
    ///
    /// vCPU `i` has MPIDR affinity 0.0.0.`i` (VMPIDR_EL2 is programmed so); the
    /// MT and U bits and bit 31 (RES1) are ignored.
    pub fn vcpu_by_mpidr(&self, mpidr: u64) -> Option<(usize, &VcpuSlot)> {
        const AFFINITY_MASK: u64 = 0xff_00ff_ffff;
        let affinity = mpidr & AFFINITY_MASK;
        let index = usize::try_from(affinity).ok()?;
        self.vcpus.get(index).map(|slot| (index, slot))
    }

    /// Stops every vCPU and moves to `state` (`Off` or `Resetting`).
    /// Returns the physical CPUs that are inside one of its vCPUs now and must be kicked.
    pub fn stop(&self, state: VmState) -> Vec<usize> {
        self.set_state(state);
        self.vcpus
            .iter()
            .filter_map(|slot| {
                slot.power_off();
                slot.is_running().then_some(slot.pcpu)
            })
            .collect()
    }

    /// Exits of all its vCPUs by cause, in `ExitCause` order.
    pub fn exit_counts(&self) -> [u64; super::vcpu::EXIT_CAUSES] {
        let mut total = [0; super::vcpu::EXIT_CAUSES];
        for slot in &self.vcpus {
            for (sum, count) in total.iter_mut().zip(slot.exits.snapshot()) {
                *sum += count;
            }
        }
        total
    }

    /// Whether no physical CPU is inside any of its vCPUs.
    pub fn quiescent(&self) -> bool {
        self.vcpus.iter().all(|slot| !slot.is_running())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn personality() -> Personality {
        Personality::new(
            0,
            "work",
            GuestKind::BareMetal,
            0x8000_0000,
            0x400_0000,
            &[2, 3],
            None,
        )
    }

    #[test]
    fn ram_contains_checks_both_ends_and_overflow() {
        let vm = personality();
        assert!(vm.ram_contains(0x8000_0000, 0x400_0000));
        assert!(!vm.ram_contains(0x7fff_ffff, 2));
        assert!(!vm.ram_contains(0x83ff_ffff, 2));
        assert!(!vm.ram_contains(u64::MAX, 2));
    }

    #[test]
    fn mpidr_selects_vcpu_by_aff0_only() {
        let vm = personality();
        assert_eq!(vm.vcpu_by_mpidr(1).map(|(i, s)| (i, s.pcpu)), Some((1, 3)));
        assert_eq!(vm.vcpu_by_mpidr(0x8000_0000).map(|(i, _)| i), Some(0));
        assert!(vm.vcpu_by_mpidr(2).is_none());
        assert!(vm.vcpu_by_mpidr(0x100).is_none());
    }

    #[test]
    fn stop_powers_off_and_names_cpus_to_kick() {
        let vm = personality();
        vm.vcpus[1].set_running(true);
        assert_eq!(vm.stop(VmState::Off), alloc::vec![3]);
        assert_eq!(vm.state(), VmState::Off);
        assert!(!vm.quiescent());
        vm.vcpus[1].set_running(false);
        assert!(vm.quiescent());
    }
}

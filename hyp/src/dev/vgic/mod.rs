//! A GICv3 distributor and redistributors emulated for one VM, feeding the list registers.
//!
//! The guest sees a GICv3 with affinity routing always on, a single security state
//! (GICD_CTLR.DS reads 1, as under KVM, so the guest may use both groups), no ITS, no LPIs
//! and `spis` SPIs from INTID 32. Its CPU interface is the hardware's virtual one (ICV_*
//! registers); this model only decides what goes into the ICH_LR<n>_EL2 list registers.
//!
//! Memory map the caller gives the guest:
//!
//! ```text
//! distributor      DIST_SIZE_BYTES            -> Vgic::distributor() / dist_read, dist_write
//! redistributors   vcpus x REDIST_STRIDE_BYTES -> Vgic::redistributors() / redist_read, ...
//!                  vCPU i: RD_base at i x 128 KiB, SGI_base 64 KiB after it
//! ```
//!
//! vCPU `i` is the one whose MPIDR_EL1 has Aff0 = `i` and Aff1 = Aff2 = Aff3 = 0.
//!
//! # Protocol for the caller
//!
//! One `Vgic` per VM, behind that VM's `spin::Mutex`; every method is pure logic.
//!
//! * To bring vCPU `v` up to date, read its list registers into an array (what they hold
//!   now: [`lr_cache::LrCache::current`] reads only those the guest may have changed) and
//!   call [`Vgic::sync`]; then call [`Vgic::flush`] on the same array, write back the list
//!   registers that changed, and set ICH_HCR_EL2.UIE to what `flush` returned. Do it at
//!   least after every interrupt, trapped GIC register, WFI and distributor or
//!   redistributor access of `v`, and whenever [`VirtualGic::stale`] names `v`.
//! * After any call, [`Vgic::take_kicks`] names the vCPUs whose list registers are now out
//!   of date; send each one running on another CPU a physical SGI so it exits and flushes
//!   (whoever takes a vCPU's bit owes it that SGI).
//! * A maintenance interrupt (underflow, or EOI of a level-sensitive interrupt, whose list
//!   registers carry the EOI bit) needs no handling beyond the exit itself: `sync` frees
//!   the deactivated list registers, which also clears ICH_EISR_EL2, and `flush` refills.
//! * Traps of ICC_SGI1R_EL1 go to [`Vgic::write_sgi1r`]; device lines to
//!   [`Vgic::set_level`]; one-shot events to [`Vgic::raise_edge`].
//! * The timer PPIs are tied to the physical PPIs of the same number
//!   ([`Vgic::tie_to_physical`]) and listed with HW = 1. When a physical timer PPI fires,
//!   acknowledge it, drop its priority but leave it active, and call
//!   [`Vgic::take_physical`]. Sample each timer's output into [`Vgic::set_level`] before
//!   every `sync` and before the guest reads its redistributor, on the vCPU's own
//!   physical CPU. After each `flush`, deactivate (ICC_DIR_EL1) the physical PPIs that
//!   [`Vgic::take_deactivations`] names, on that same CPU. When a vCPU stops or its VM
//!   resets, deactivate its tied physical PPIs outright: the model no longer owns them.
#![forbid(unsafe_code)]

mod access;
mod controller;
mod delivery;
mod distributor;
mod hardware;
mod input;
mod irq_regs;
pub mod lr;
pub mod lr_cache;
mod redistributor;
mod state;

#[cfg(test)]
mod hardware_tests;
#[cfg(test)]
mod linux_init_tests;

use alloc::vec;
use alloc::vec::Vec;

pub use controller::{GicFrame, VirtualGic};
pub use distributor::DistributorView;
pub use hardware::names_pintid;
pub use redistributor::RedistributorView;

use state::{vcpu_bit, IrqTable, FIRST_SPI, LAST_SPI};

/// Size of the distributor's MMIO window.
pub const DIST_SIZE_BYTES: u64 = 0x1_0000;
/// Size of each of a redistributor's two frames (RD_base, then SGI_base).
pub const REDIST_FRAME_BYTES: u64 = 0x1_0000;
/// Distance between two vCPUs' redistributors: two frames, no VLPI frames.
pub const REDIST_STRIDE_BYTES: u64 = 2 * REDIST_FRAME_BYTES;
/// Most vCPUs a VM may have: the 16 bits of an SGI TargetList with RS = 0, as
/// GICD_TYPER.RSS = 0 tells the guest.
pub const MAX_VCPUS: usize = 16;
/// Most SPIs a VM may have: INTIDs 32..=1019.
pub const MAX_SPIS: u32 = LAST_SPI + 1 - FIRST_SPI;

/// Why the virtual GIC refused a request from the hypervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VgicError {
    /// `Vgic::new` was asked for no vCPUs or more than [`MAX_VCPUS`].
    UnsupportedVcpuCount,
    /// `Vgic::new` was asked for more than [`MAX_SPIS`] SPIs.
    UnsupportedSpiCount,
    /// The vCPU index is not one of this VM's, or an SGI or PPI came without one.
    NoSuchVcpu,
    /// Only a PPI can be tied to a physical interrupt, and only to a physical PPI; or a
    /// physical interrupt was reported for an interrupt not tied to one.
    NotTiedToPhysical,
    /// The INTID is not implemented in this VM, or has no input of that kind (an SGI has
    /// no line).
    NoSuchIntid,
}

/// The emulated distributor, redistributors and interrupt state of one VM.
#[derive(Debug, Clone)]
pub struct Vgic {
    /// Every interrupt's state.
    irqs: IrqTable,
    /// GICD_CTLR.EnableGrp0.
    enable_grp0: bool,
    /// GICD_CTLR.EnableGrp1 (the bit Linux writes as EnableGrp1A).
    enable_grp1: bool,
    /// GICR_WAKER.ProcessorSleep of each vCPU's redistributor.
    processor_sleep: Vec<bool>,
    /// vCPUs whose list registers changes have made out of date, for `take_kicks`.
    kicks: u64,
    /// Per vCPU, the physical PPIs (bit `n` for INTID `n`) Janus must deactivate on
    /// that vCPU's physical CPU, for `take_deactivations`.
    deactivations: Vec<u32>,
}

impl Vgic {
    /// A virtual GIC in its power-on state for `vcpus` vCPUs and `spis` SPIs (INTIDs 32 to
    /// 32 + `spis` - 1).
    ///
    /// # Errors
    /// `UnsupportedVcpuCount` or `UnsupportedSpiCount`.
    pub fn new(vcpus: usize, spis: u32) -> Result<Self, VgicError> {
        if vcpus == 0 || vcpus > MAX_VCPUS {
            return Err(VgicError::UnsupportedVcpuCount);
        }
        if spis > MAX_SPIS {
            return Err(VgicError::UnsupportedSpiCount);
        }
        let spis = usize::try_from(spis).map_err(|_| VgicError::UnsupportedSpiCount)?;
        Ok(Self {
            irqs: IrqTable::new(vcpus, spis),
            enable_grp0: false,
            enable_grp1: false,
            processor_sleep: vec![true; vcpus],
            kicks: 0,
            deactivations: vec![0; vcpus],
        })
    }

    /// Back to the power-on state, as when the VM reboots: every interrupt disabled and
    /// idle, nothing listed, the distributor disabled and every redistributor asleep;
    /// PPIs stay tied to their physical interrupts. The next `flush` on each vCPU frees
    /// whatever its list registers still hold; the caller resets the rest of the virtual
    /// CPU interface (ICH_VMCR_EL2, ICH_AP1R<n>_EL2) and deactivates the tied physical
    /// interrupts on each vCPU's physical CPU (the model forgets that it held them).
    pub fn reset(&mut self) {
        self.irqs.reset();
        self.deactivations.fill(0);
        self.enable_grp0 = false;
        self.enable_grp1 = false;
        self.processor_sleep.fill(true);
        self.kicks = self.all_vcpus();
    }

    /// The number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.irqs.vcpus()
    }

    /// The number of SPIs.
    pub fn spis(&self) -> u32 {
        u32::try_from(self.irqs.spis()).unwrap_or(MAX_SPIS)
    }

    /// Size of the redistributor region: one stride per vCPU.
    pub fn redist_region_bytes(&self) -> u64 {
        u64::try_from(self.vcpus()).map_or(0, |vcpus| vcpus * REDIST_STRIDE_BYTES)
    }

    /// The vCPUs (bit `i` for vCPU `i`) whose list registers changed state has made out of
    /// date since the last call; the caller interrupts those running elsewhere.
    pub fn take_kicks(&mut self) -> u64 {
        core::mem::take(&mut self.kicks)
    }

    /// Every vCPU of this VM as a mask.
    fn all_vcpus(&self) -> u64 {
        (0..self.vcpus()).fold(0, |mask, vcpu| mask | vcpu_bit(vcpu))
    }

    /// Notes vCPUs to kick, keeping only this VM's.
    fn kick(&mut self, vcpus: u64) {
        self.kicks |= vcpus & self.all_vcpus();
    }

    /// Whether GICD_CTLR forwards interrupts of this group.
    fn group_enabled(&self, group1: bool) -> bool {
        if group1 {
            self.enable_grp1
        } else {
            self.enable_grp0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcpu_and_spi_counts_are_bounded() {
        assert_eq!(
            Vgic::new(0, 32).err(),
            Some(VgicError::UnsupportedVcpuCount)
        );
        assert_eq!(
            Vgic::new(MAX_VCPUS + 1, 32).err(),
            Some(VgicError::UnsupportedVcpuCount)
        );
        assert_eq!(
            Vgic::new(2, MAX_SPIS + 1).err(),
            Some(VgicError::UnsupportedSpiCount)
        );
        assert!(Vgic::new(MAX_VCPUS, MAX_SPIS).is_ok());
    }

    #[test]
    fn redistributor_region_is_one_stride_per_vcpu() {
        let vgic = Vgic::new(2, 32).ok();
        assert_eq!(vgic.map(|vgic| vgic.redist_region_bytes()), Some(0x4_0000));
    }

    #[test]
    fn kicks_are_taken_once() {
        let Ok(mut vgic) = Vgic::new(2, 32) else {
            panic!("two vCPUs and 32 SPIs are supported");
        };
        vgic.reset();
        assert_eq!(vgic.take_kicks(), 0b11);
        assert_eq!(vgic.take_kicks(), 0);
    }
}

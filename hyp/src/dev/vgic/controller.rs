//! The interface the exit paths drive a virtual interrupt controller through,
//! so that a GICv2 model (the Raspberry Pi 4's GIC-400, with GICH list
//! registers) can stand beside the GICv3 one without touching its callers.

use super::{Vgic, VgicError};
use crate::dev::{DevError, Width};

/// One MMIO frame of a virtual GIC as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicFrame {
    /// The distributor (both versions).
    Distributor,
    /// The redistributors, one per vCPU (GICv3).
    Redistributors,
    /// The memory-mapped CPU interface (GICv2's GICC, backed by GICV).
    CpuInterface,
}

/// A virtual interrupt controller for one personality.
///
/// List register values cross this interface in the GICv3 ICH_LR<n>_EL2
/// layout; a GICv2 back end converts to and from GICH_LR<n> in its arch code.
pub trait VirtualGic: Send {
    /// Bytes of `frame` in the guest's address space; 0 for a frame this model lacks.
    fn frame_bytes(&self, frame: GicFrame) -> u64;
    /// A guest read of `frame` at `offset`.
    ///
    /// # Errors
    /// `UnknownRegister` or `BadWidth`.
    fn read(&mut self, frame: GicFrame, offset: u64, width: Width) -> Result<u64, DevError>;
    /// A guest write of `frame` at `offset`.
    ///
    /// # Errors
    /// `UnknownRegister` or `BadWidth`.
    fn write(
        &mut self,
        frame: GicFrame,
        offset: u64,
        width: Width,
        value: u64,
    ) -> Result<(), DevError>;
    /// Drives a level-sensitive input line (a device's SPI, or a PPI of `vcpu`).
    ///
    /// # Errors
    /// A `VgicError` for an INTID or vCPU the model lacks.
    fn set_level(&mut self, intid: u32, vcpu: Option<usize>, level: bool) -> Result<(), VgicError>;
    /// Pends an interrupt once (an SGI, a one-shot event).
    ///
    /// # Errors
    /// A `VgicError` for an INTID or vCPU the model lacks.
    fn raise_edge(&mut self, intid: u32, vcpu: Option<usize>) -> Result<(), VgicError>;
    /// Janus acknowledged the physical interrupt tied to PPI `intid` of `vcpu` (a timer)
    /// and left it active for the guest to end.
    ///
    /// # Errors
    /// A `VgicError` when the model has no such tie; the caller deactivates it then.
    fn take_physical(&mut self, intid: u32, vcpu: usize) -> Result<(), VgicError>;
    /// The physical PPIs (bit `n` for INTID `n`) Janus must deactivate on `vcpu`'s
    /// physical CPU after a `flush`.
    fn take_deactivations(&mut self, vcpu: usize) -> u32;
    /// A trapped write to the SGI-generation system register (GICv3
    /// ICC_SGI1R_EL1); returns the vCPUs made pending. Models whose SGIs are
    /// written through the distributor (GICv2 GICD_SGIR) ignore it.
    fn sgi_register_write(&mut self, sender: usize, value: u64) -> u64;
    /// Fills `vcpu`'s list registers before guest entry; `true` when more are
    /// pending than fit (ask for an underflow maintenance interrupt).
    fn flush(&mut self, vcpu: usize, lrs: &mut [u64], lr_count: usize) -> bool;
    /// Reads back `vcpu`'s list registers after an exit.
    fn sync(&mut self, vcpu: usize, lrs: &mut [u64]);
    /// Whether `vcpu` has an interrupt it could take (for a trapped WFI).
    fn has_deliverable(&self, vcpu: usize) -> bool;
    /// The vCPUs whose list registers went stale since the last call.
    fn take_kicks(&mut self) -> u64;
    /// What `take_kicks` would return, without taking it.
    fn stale(&self) -> u64;
    /// Back to the power-on state.
    fn reset(&mut self);
}

impl VirtualGic for Vgic {
    fn frame_bytes(&self, frame: GicFrame) -> u64 {
        match frame {
            GicFrame::Distributor => super::DIST_SIZE_BYTES,
            GicFrame::Redistributors => self.redist_region_bytes(),
            GicFrame::CpuInterface => 0,
        }
    }

    fn read(&mut self, frame: GicFrame, offset: u64, width: Width) -> Result<u64, DevError> {
        match frame {
            GicFrame::Distributor => self.dist_read(offset, width),
            GicFrame::Redistributors => self.redist_read(offset, width),
            GicFrame::CpuInterface => Err(DevError::UnknownRegister),
        }
    }

    fn write(
        &mut self,
        frame: GicFrame,
        offset: u64,
        width: Width,
        value: u64,
    ) -> Result<(), DevError> {
        match frame {
            GicFrame::Distributor => self.dist_write(offset, width, value),
            GicFrame::Redistributors => self.redist_write(offset, width, value),
            GicFrame::CpuInterface => Err(DevError::UnknownRegister),
        }
    }

    fn set_level(&mut self, intid: u32, vcpu: Option<usize>, level: bool) -> Result<(), VgicError> {
        Vgic::set_level(self, intid, vcpu, level)
    }

    fn raise_edge(&mut self, intid: u32, vcpu: Option<usize>) -> Result<(), VgicError> {
        Vgic::raise_edge(self, intid, vcpu)
    }

    fn take_physical(&mut self, intid: u32, vcpu: usize) -> Result<(), VgicError> {
        Vgic::take_physical(self, intid, vcpu)
    }

    fn take_deactivations(&mut self, vcpu: usize) -> u32 {
        Vgic::take_deactivations(self, vcpu)
    }

    fn sgi_register_write(&mut self, sender: usize, value: u64) -> u64 {
        self.write_sgi1r(sender, value)
    }

    fn flush(&mut self, vcpu: usize, lrs: &mut [u64], lr_count: usize) -> bool {
        Vgic::flush(self, vcpu, lrs, lr_count)
    }

    fn sync(&mut self, vcpu: usize, lrs: &mut [u64]) {
        Vgic::sync(self, vcpu, lrs);
    }

    fn has_deliverable(&self, vcpu: usize) -> bool {
        Vgic::has_deliverable(self, vcpu)
    }

    fn take_kicks(&mut self) -> u64 {
        Vgic::take_kicks(self)
    }

    fn stale(&self) -> u64 {
        self.kicks
    }

    fn reset(&mut self) {
        Vgic::reset(self);
    }
}

//! The redistributors: per vCPU, an RD_base frame (control, identity, wake) and an SGI_base
//! frame (that vCPU's SGI and PPI registers).
//!
//! Register maps from IHI 0069, "The GIC Redistributor register map". The region holds
//! one 128 KiB redistributor per vCPU in vCPU order; the last one sets GICR_TYPER.Last so
//! that Linux stops scanning there. Without LPIs the LPI registers of RD_base are RAZ/WI,
//! as are the extended PPI registers, GICR_IGRPMODR0 and GICR_NSACR of SGI_base.

use core::ops::Range;

use super::access::{read_part, Access};
use super::distributor::{iidr, pidr2, ID_REGISTERS, PIDR2};
use super::irq_regs::IntidRegister;
use super::state::Bank;
use super::{Vgic, REDIST_FRAME_BYTES, REDIST_STRIDE_BYTES};
use crate::dev::{DevError, MmioDevice, Width};
use crate::trap::esr::Field;

/// GICR_CTLR: LPI enable and RWP, both 0 here (RAZ/WI).
const GICR_CTLR: u64 = 0x0000;
/// GICR_IIDR: the same identification as GICD_IIDR.
const GICR_IIDR: u64 = 0x0004;
/// GICR_TYPER: 64 bits, affinity and position of this redistributor.
const GICR_TYPER: Range<u64> = 0x0008..0x0010;
/// GICR_STATUSR: optional error reporting, not implemented (RAZ/WI).
const GICR_STATUSR: u64 = 0x0010;
/// GICR_WAKER: the power handshake.
const GICR_WAKER: u64 = 0x0014;
/// GICR_MPAMIDR and GICR_PARTIDR: absent without MPAM support (RAZ/WI).
const GICR_MPAM: Range<u64> = 0x0018..0x0020;
/// GICR_SETLPIR to GICR_SYNCR: the LPI registers, absent since GICR_TYPER.PLPIS is 0.
const GICR_LPI_REGISTERS: Range<u64> = 0x0040..0x00C8;
/// GICR_IGRPMODR0 (and the extended PPI IGRPMODR<n>E): two security states only.
const GICR_IGRPMODR: Range<u64> = 0x0D00..0x0D0C;
/// GICR_NSACR: two security states only.
const GICR_NSACR: u64 = 0x0E00;
/// GICR_INMIR0 and GICR_INMIR<n>E: NMI configuration, absent.
const GICR_INMIR: Range<u64> = 0x0F80..0x0F8C;

/// GICR_TYPER.Last, bit [4]: the last redistributor of the region.
const TYPER_LAST: Field = Field::bit(4);
/// GICR_TYPER.Processor_Number, bits [23:8]: the vCPU index. PLPIS, VLPIS, DirectLPI,
/// DPGS, MPAM, RVPEID, CommonLPIAff, VSGI and PPInum (16 PPIs) stay 0.
const TYPER_PROCESSOR_NUMBER: Field = Field::new(8, 16);
/// GICR_TYPER.Affinity_Value, bits [63:32]: Aff3.Aff2.Aff1.Aff0 of the vCPU's MPIDR_EL1,
/// which for vCPU `i` is 0.0.0.`i`.
const TYPER_AFFINITY: Field = Field::new(32, 32);

/// GICR_WAKER.ProcessorSleep, bit [1]: software says the PE is going to sleep.
const WAKER_PROCESSOR_SLEEP: Field = Field::bit(1);
/// GICR_WAKER.ChildrenAsleep, bit [2]: the redistributor's reply. Bits [0] and [31] are
/// IMPLEMENTATION DEFINED and RAZ/WI here.
const WAKER_CHILDREN_ASLEEP: Field = Field::bit(2);

/// Which frame of a redistributor an offset falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// The first 64 KiB: control and identification.
    RdBase,
    /// The second 64 KiB: SGI and PPI registers.
    SgiBase,
}

/// A redistributor register, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RedistRegister {
    /// GICR_IIDR.
    Iidr,
    /// GICR_TYPER, accessed `0` or `4` bytes into the register.
    Typer(u64),
    /// GICR_WAKER.
    Waker,
    /// GICR_PIDR2.
    Pidr2,
    /// A per-INTID register of SGI_base and the first INTID the access covers.
    Intid(IntidRegister, u32),
    /// Reserved or unimplemented: reads as zero, ignores writes, at the sizes given.
    Reserved(Access),
}

impl RedistRegister {
    /// The register at `offset` into `frame`, or `None` for an unused offset.
    fn decode(frame: Frame, offset: u64) -> Option<Self> {
        let register = match (frame, offset) {
            (Frame::RdBase, GICR_IIDR) => Self::Iidr,
            (Frame::RdBase, GICR_WAKER) => Self::Waker,
            (Frame::RdBase, PIDR2) => Self::Pidr2,
            (Frame::RdBase, GICR_CTLR | GICR_STATUSR) => Self::Reserved(Access::Word),
            (Frame::RdBase, _) if GICR_TYPER.contains(&offset) => {
                Self::Typer(offset - GICR_TYPER.start)
            }
            (Frame::RdBase, _) if GICR_LPI_REGISTERS.contains(&offset) => {
                Self::Reserved(Access::WordOrDouble)
            }
            (Frame::RdBase, _)
                if [GICR_MPAM, ID_REGISTERS]
                    .into_iter()
                    .any(|range| range.contains(&offset)) =>
            {
                Self::Reserved(Access::Word)
            }
            (Frame::SgiBase, GICR_NSACR) => Self::Reserved(Access::Word),
            (Frame::SgiBase, _)
                if [GICR_IGRPMODR, GICR_INMIR]
                    .into_iter()
                    .any(|range| range.contains(&offset)) =>
            {
                Self::Reserved(Access::Word)
            }
            (Frame::SgiBase, _) => {
                let (register, first) = IntidRegister::decode(offset)?;
                Self::Intid(register, first)
            }
            (Frame::RdBase, _) => return None,
        };
        Some(register)
    }

    /// The sizes the register takes.
    fn access(self) -> Access {
        match self {
            Self::Intid(register, _) => register.access(),
            Self::Typer(_) => Access::WordOrDouble,
            Self::Reserved(access) => access,
            Self::Iidr | Self::Waker | Self::Pidr2 => Access::Word,
        }
    }
}

impl Vgic {
    /// Reads the redistributor register at `offset` into the redistributor region.
    ///
    /// # Errors
    /// `UnknownRegister` for an offset past the last vCPU's redistributor or unused by
    /// the register map, `BadWidth` for a size or alignment the register does not take.
    pub fn redist_read(&mut self, offset: u64, width: Width) -> Result<u64, DevError> {
        let (vcpu, register) = self.locate(offset)?;
        register.access().check(offset, width)?;
        Ok(match register {
            RedistRegister::Iidr => iidr(),
            RedistRegister::Pidr2 => pidr2(),
            RedistRegister::Typer(within) => read_part(self.gicr_typer(vcpu), within, width),
            RedistRegister::Waker => self.waker(vcpu),
            RedistRegister::Intid(register, first) => {
                self.irqs
                    .read_register(register, Bank::Private(vcpu), first, width)
            }
            RedistRegister::Reserved(_) => 0,
        })
    }

    /// Writes the redistributor register at `offset` into the redistributor region.
    ///
    /// # Errors
    /// As [`Vgic::redist_read`].
    pub fn redist_write(&mut self, offset: u64, width: Width, value: u64) -> Result<(), DevError> {
        let (vcpu, register) = self.locate(offset)?;
        register.access().check(offset, width)?;
        match register {
            RedistRegister::Waker => {
                if let Some(sleep) = self.processor_sleep.get_mut(vcpu) {
                    *sleep = WAKER_PROCESSOR_SLEEP.is_set(value);
                }
            }
            RedistRegister::Intid(register, first) => {
                let concerned =
                    self.irqs
                        .write_register(register, Bank::Private(vcpu), first, width, value);
                self.kick(concerned);
            }
            RedistRegister::Iidr
            | RedistRegister::Pidr2
            | RedistRegister::Typer(_)
            | RedistRegister::Reserved(_) => {}
        }
        Ok(())
    }

    /// The redistributor region as an [`MmioDevice`] for the MMIO bus.
    pub fn redistributors(&mut self) -> RedistributorView<'_> {
        RedistributorView { vgic: self }
    }

    /// The vCPU and register an offset into the region names.
    fn locate(&self, offset: u64) -> Result<(usize, RedistRegister), DevError> {
        let vcpu = usize::try_from(offset / REDIST_STRIDE_BYTES)
            .ok()
            .filter(|&vcpu| vcpu < self.vcpus())
            .ok_or(DevError::UnknownRegister)?;
        let within = offset % REDIST_STRIDE_BYTES;
        let (frame, within) = if within < REDIST_FRAME_BYTES {
            (Frame::RdBase, within)
        } else {
            (Frame::SgiBase, within - REDIST_FRAME_BYTES)
        };
        let register = RedistRegister::decode(frame, within).ok_or(DevError::UnknownRegister)?;
        Ok((vcpu, register))
    }

    /// GICR_TYPER of `vcpu`'s redistributor.
    fn gicr_typer(&self, vcpu: usize) -> u64 {
        let index = u64::try_from(vcpu).unwrap_or(0);
        let last = vcpu.checked_add(1) == Some(self.vcpus());
        TYPER_AFFINITY.place(index)
            | TYPER_PROCESSOR_NUMBER.place(index)
            | TYPER_LAST.place(u64::from(last))
    }

    /// GICR_WAKER of `vcpu`'s redistributor: a virtual redistributor quiesces at once, so
    /// ChildrenAsleep always follows ProcessorSleep and Linux's poll ends on first read.
    /// ProcessorSleep does not gate delivery: Janus, not the guest, powers vCPUs.
    fn waker(&self, vcpu: usize) -> u64 {
        let asleep = u64::from(self.processor_sleep.get(vcpu).copied().unwrap_or(true));
        WAKER_PROCESSOR_SLEEP.place(asleep) | WAKER_CHILDREN_ASLEEP.place(asleep)
    }
}

/// The redistributor region of a [`Vgic`], borrowed for one access.
#[derive(Debug)]
pub struct RedistributorView<'a> {
    /// The VM's virtual GIC, locked by the caller.
    vgic: &'a mut Vgic,
}

impl MmioDevice for RedistributorView<'_> {
    fn read(&mut self, offset: u64, width: Width) -> Result<u64, DevError> {
        self.vgic.redist_read(offset, width)
    }

    fn write(&mut self, offset: u64, width: Width, value: u64) -> Result<(), DevError> {
        self.vgic.redist_write(offset, width, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GICR_IPRIORITYR0 in SGI_base.
    const IPRIORITYR0: u64 = REDIST_FRAME_BYTES + 0x0400;
    /// GICR_ICFGR1 in SGI_base.
    const ICFGR1: u64 = REDIST_FRAME_BYTES + 0x0C04;

    fn vgic() -> Vgic {
        match Vgic::new(2, 32) {
            Ok(vgic) => vgic,
            Err(error) => panic!("two vCPUs and 32 SPIs are supported: {error:?}"),
        }
    }

    #[test]
    fn typer_gives_affinity_processor_number_and_last_only_on_the_last_vcpu() {
        let mut vgic = vgic();
        let typer = GICR_TYPER.start;
        assert_eq!(vgic.redist_read(typer, Width::Double), Ok(0));
        let second = REDIST_STRIDE_BYTES + typer;
        assert_eq!(
            vgic.redist_read(second, Width::Double),
            Ok((1 << 32) | (1 << 8) | (1 << 4))
        );
        assert_eq!(vgic.redist_read(second + 4, Width::Word), Ok(1));
        assert_eq!(
            vgic.redist_read(second, Width::Word),
            Ok((1 << 8) | (1 << 4))
        );
    }

    #[test]
    fn pidr2_and_iidr_match_the_distributor() {
        let mut vgic = vgic();
        assert_eq!(vgic.redist_read(PIDR2, Width::Word), Ok(0x30));
        assert_eq!(
            vgic.redist_read(GICR_IIDR, Width::Word),
            vgic.dist_read(0x8, Width::Word)
        );
    }

    #[test]
    fn waker_starts_asleep_and_wakes_on_clearing_processor_sleep() {
        let mut vgic = vgic();
        assert_eq!(vgic.redist_read(GICR_WAKER, Width::Word), Ok(0b110));
        assert_eq!(vgic.redist_write(GICR_WAKER, Width::Word, 0b100), Ok(()));
        assert_eq!(vgic.redist_read(GICR_WAKER, Width::Word), Ok(0));
        // The other vCPU's redistributor is still asleep.
        let other = REDIST_STRIDE_BYTES + GICR_WAKER;
        assert_eq!(vgic.redist_read(other, Width::Word), Ok(0b110));
        // Going back to sleep: ChildrenAsleep follows.
        assert_eq!(vgic.redist_write(GICR_WAKER, Width::Word, 0b010), Ok(()));
        assert_eq!(vgic.redist_read(GICR_WAKER, Width::Word), Ok(0b110));
    }

    #[test]
    fn sgi_frame_registers_are_banked_per_vcpu() {
        let mut vgic = vgic();
        assert_eq!(
            vgic.redist_write(IPRIORITYR0 + 27, Width::Byte, 0xa0),
            Ok(())
        );
        assert_eq!(vgic.redist_read(IPRIORITYR0 + 27, Width::Byte), Ok(0xa0));
        let other = REDIST_STRIDE_BYTES + IPRIORITYR0 + 27;
        assert_eq!(vgic.redist_read(other, Width::Byte), Ok(0));
    }

    #[test]
    fn ppi_config_is_written_through_icfgr1() {
        let mut vgic = vgic();
        assert_eq!(vgic.redist_write(ICFGR1, Width::Word, 0x0080_0000), Ok(()));
        assert_eq!(vgic.redist_read(ICFGR1, Width::Word), Ok(0x0080_0000));
    }

    #[test]
    fn lpi_and_extended_registers_are_raz_wi() {
        let mut vgic = vgic();
        let extended_isenabler = REDIST_FRAME_BYTES + 0x0104;
        let extended_priority = IPRIORITYR0 + 0x20;
        for offset in [
            GICR_CTLR,
            0x0070,
            0x0078,
            0x00C0,
            REDIST_FRAME_BYTES + 0x0D00,
            REDIST_FRAME_BYTES + GICR_NSACR,
            extended_isenabler,
            extended_priority,
        ] {
            assert_eq!(vgic.redist_write(offset, Width::Word, u64::MAX), Ok(()));
            assert_eq!(
                vgic.redist_read(offset, Width::Word),
                Ok(0),
                "offset {offset:#x}"
            );
        }
        assert_eq!(vgic.redist_read(0x0070, Width::Double), Ok(0));
    }

    #[test]
    fn offsets_past_the_last_redistributor_or_unused_are_unknown() {
        let mut vgic = vgic();
        for offset in [
            2 * REDIST_STRIDE_BYTES,
            u64::MAX - 3,
            0x0020,
            0x1000,
            REDIST_FRAME_BYTES,
            REDIST_FRAME_BYTES + 0x0800,
            REDIST_FRAME_BYTES + PIDR2,
        ] {
            assert_eq!(
                vgic.redist_read(offset, Width::Word),
                Err(DevError::UnknownRegister),
                "offset {offset:#x}"
            );
        }
    }

    #[test]
    fn waker_refuses_double_access() {
        let mut vgic = vgic();
        assert_eq!(
            vgic.redist_read(GICR_STATUSR, Width::Double),
            Err(DevError::BadWidth)
        );
        assert_eq!(
            vgic.redist_write(GICR_WAKER, Width::Double, 0),
            Err(DevError::BadWidth)
        );
    }
}

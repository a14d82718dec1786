//! The distributor (GICD) frame: global control, identification, and the SPIs' registers.
//!
//! Register map from IHI 0069, "The GIC Distributor register map". Affinity routing is
//! always on and there is one security state, so the GICv2-style registers (ITARGETSR,
//! SGIR, CPENDSGIR, SPENDSGIR), the SGI/PPI half of the per-INTID registers, NSACR and
//! IGRPMODR are RAZ/WI, as are the registers of features GICD_TYPER reports absent
//! (message-based SPIs, extended SPIs, NMIs). Offsets the map leaves unused are
//! `UnknownRegister`.

use core::ops::Range;

use super::access::{read_part, write_part, Access};
use super::irq_regs::IntidRegister;
use super::state::{Bank, FIRST_SPI, LAST_SPI};
use super::{Vgic, MAX_VCPUS};
use crate::dev::{DevError, MmioDevice, Width};
use crate::trap::esr::Field;

/// GICD_CTLR: group enables and affinity routing.
const GICD_CTLR: u64 = 0x0000;
/// GICD_TYPER: what the distributor implements.
const GICD_TYPER: u64 = 0x0004;
/// GICD_IIDR: who implemented it.
const GICD_IIDR: u64 = 0x0008;
/// GICD_TYPER2: vPE and SGI features of GICv4.1, all absent (RAZ).
const GICD_TYPER2: u64 = 0x000C;
/// GICD_STATUSR: optional error reporting, not implemented (RAZ/WI).
const GICD_STATUSR: u64 = 0x0010;
/// GICD_SETSPI_NSR, GICD_CLRSPI_NSR, GICD_SETSPI_SR, GICD_CLRSPI_SR: message-based SPIs,
/// absent since GICD_TYPER.MBIS is 0.
const GICD_MESSAGE_SPI: Range<u64> = 0x0040..0x0060;
/// GICD_ITARGETSR<n>: RES0 with affinity routing.
const GICD_ITARGETSR: Range<u64> = 0x0800..0x0C00;
/// GICD_IGRPMODR<n>: only meaningful with two security states.
const GICD_IGRPMODR: Range<u64> = 0x0D00..0x0D80;
/// GICD_NSACR<n>: only meaningful with two security states.
const GICD_NSACR: Range<u64> = 0x0E00..0x0F00;
/// GICD_SGIR: the GICv2 SGI register, WI with affinity routing.
const GICD_SGIR: u64 = 0x0F00;
/// GICD_CPENDSGIR<n> and GICD_SPENDSGIR<n>: RES0 with affinity routing.
const GICD_SGI_PENDING: Range<u64> = 0x0F10..0x0F30;
/// GICD_INMIR<n>: NMI configuration, absent since GICD_TYPER.NMI is 0.
const GICD_INMIR: Range<u64> = 0x0F80..0x1000;
/// The extended SPI registers (GICD_IGROUPR<n>E to GICD_INMIR<n>E), absent since
/// GICD_TYPER.ESPI is 0.
const GICD_EXTENDED_SPI: Range<u64> = 0x1000..0x3B80;
/// GICD_IROUTER<n>: one 64-bit register per INTID; those below 32 are reserved.
const GICD_IROUTER: Range<u64> = 0x6000..0x8000;
/// GICD_IROUTER<n>E: extended SPI routing, absent.
const GICD_IROUTER_EXTENDED: Range<u64> = 0x8000..0xA000;
/// The identification registers GICD_PIDR4 to GICD_CIDR3; all but PIDR2 read as zero.
pub(super) const ID_REGISTERS: Range<u64> = 0xFFD0..0x1_0000;
/// GICD_PIDR2 (and GICR_PIDR2 at the same offset of RD_base).
pub(super) const PIDR2: u64 = 0xFFE8;
/// Bytes per GICD_IROUTER<n>.
const IROUTER_BYTES: u64 = 8;

/// GICD_CTLR.EnableGrp0, bit [0] (single security state view).
const CTLR_ENABLE_GRP0: Field = Field::bit(0);
/// GICD_CTLR.EnableGrp1, bit [1]: the bit Linux names GICD_CTLR_ENABLE_G1A.
const CTLR_ENABLE_GRP1: Field = Field::bit(1);
/// GICD_CTLR.ARE, bit [4]: affinity routing, RAO/WI here.
const CTLR_ARE: Field = Field::bit(4);
/// GICD_CTLR.DS, bit [6]: a single security state, RAO/WI here. RWP, bit [31], stays 0:
/// register writes take effect at once.
const CTLR_DS: Field = Field::bit(6);

/// GICD_TYPER.ITLinesNumber, bits [4:0]: SPIs reach INTID 32 × (N + 1) - 1.
const TYPER_IT_LINES_NUMBER: Field = Field::new(0, 5);
/// GICD_TYPER.IDbits, bits [23:19]: INTID bits supported, minus one. CPUNumber (ignored
/// with affinity routing), SecurityExtn, MBIS, LPIS, ESPI, NMI, No1N and RSS stay 0.
const TYPER_ID_BITS: Field = Field::new(19, 5);
/// INTIDs 0..=1023 need ten bits; without LPIs nothing needs more.
const INTID_BITS: u64 = 10;
/// INTIDs per ITLinesNumber step.
const INTIDS_PER_LINE_GROUP: u64 = 32;

/// GICD_IIDR.ProductID, bits [31:24].
const IIDR_PRODUCT_ID: Field = Field::new(24, 8);
/// 'J' for Janus. The Implementer field, bits [11:0], stays 0: Janus has no JEP106 code,
/// and a zero Implementer matches none of the errata workarounds Linux keys on GICD_IIDR.
const JANUS_PRODUCT_ID: u64 = b'J' as u64;

/// GICD_PIDR2.ArchRev, bits [7:4]: the GIC architecture version.
const PIDR2_ARCH_REV: Field = Field::new(4, 4);
/// ArchRev for GICv3.
const ARCH_REV_GICV3: u64 = 3;

/// GICD_IROUTER<n>.Aff0, bits [7:0].
const IROUTER_AFF0: Field = Field::new(0, 8);
/// GICD_IROUTER<n>.Aff1, bits [15:8].
const IROUTER_AFF1: Field = Field::new(8, 8);
/// GICD_IROUTER<n>.Aff2, bits [23:16].
const IROUTER_AFF2: Field = Field::new(16, 8);
/// GICD_IROUTER<n>.Interrupt_Routing_Mode, bit [31]: 1 routes to any participating PE.
const IROUTER_IRM: Field = Field::bit(31);
/// GICD_IROUTER<n>.Aff3, bits [39:32].
const IROUTER_AFF3: Field = Field::new(32, 8);
/// The bits of GICD_IROUTER<n> that hold state; the rest are RES0.
const IROUTER_WRITABLE: u64 = IROUTER_AFF0.place(u64::MAX)
    | IROUTER_AFF1.place(u64::MAX)
    | IROUTER_AFF2.place(u64::MAX)
    | IROUTER_IRM.place(u64::MAX)
    | IROUTER_AFF3.place(u64::MAX);

/// The value of GICD_IIDR and GICR_IIDR.
pub(super) const fn iidr() -> u64 {
    IIDR_PRODUCT_ID.place(JANUS_PRODUCT_ID)
}

/// The value of GICD_PIDR2 and GICR_PIDR2; Linux checks ArchRev only.
pub(super) const fn pidr2() -> u64 {
    PIDR2_ARCH_REV.place(ARCH_REV_GICV3)
}

/// The vCPU a GICD_IROUTER value sends its SPI to, if any: 1-of-N routing picks vCPU 0;
/// otherwise the affinity must name an existing vCPU (Aff0 = index, the rest 0), and an
/// SPI routed to no PE is never forwarded.
pub(super) fn route_target(route: u64, vcpus: usize) -> Option<usize> {
    if IROUTER_IRM.is_set(route) {
        return Some(0);
    }
    let upper = IROUTER_AFF1.get(route) | IROUTER_AFF2.get(route) | IROUTER_AFF3.get(route);
    let vcpu = usize::try_from(IROUTER_AFF0.get(route)).ok()?;
    (upper == 0 && vcpu < vcpus.min(MAX_VCPUS)).then_some(vcpu)
}

/// A distributor register, decoded from its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DistRegister {
    /// GICD_CTLR.
    Ctlr,
    /// GICD_TYPER.
    Typer,
    /// GICD_IIDR.
    Iidr,
    /// GICD_TYPER2.
    Typer2,
    /// GICD_PIDR2.
    Pidr2,
    /// A per-INTID register and the first INTID the access covers.
    Intid(IntidRegister, u32),
    /// GICD_IROUTER<intid>, accessed `offset` bytes into the register.
    Router {
        /// The SPI routed.
        intid: u32,
        /// 0 for the register or its lower word, 4 for its upper word.
        offset: u64,
    },
    /// Reserved or unimplemented: reads as zero, ignores writes, at the sizes given.
    Reserved(Access),
}

impl DistRegister {
    /// The register at `offset`, or `None` for an offset the register map leaves unused.
    fn decode(offset: u64) -> Option<Self> {
        let in_range = |range: Range<u64>| range.contains(&offset);
        let register = match offset {
            GICD_CTLR => Self::Ctlr,
            GICD_TYPER => Self::Typer,
            GICD_IIDR => Self::Iidr,
            GICD_TYPER2 => Self::Typer2,
            PIDR2 => Self::Pidr2,
            GICD_STATUSR | GICD_SGIR => Self::Reserved(Access::Word),
            _ => {
                if let Some((register, first)) = IntidRegister::decode(offset) {
                    Self::Intid(register, first)
                } else if in_range(GICD_IROUTER) {
                    let within = offset - GICD_IROUTER.start;
                    Self::Router {
                        intid: u32::try_from(within / IROUTER_BYTES).ok()?,
                        offset: within % IROUTER_BYTES,
                    }
                } else if [GICD_ITARGETSR, GICD_SGI_PENDING, GICD_EXTENDED_SPI]
                    .into_iter()
                    .any(in_range)
                {
                    // Byte-accessible registers among them (ITARGETSR, CPENDSGIR,
                    // SPENDSGIR, IPRIORITYR<n>E).
                    Self::Reserved(Access::ByteOrWord)
                } else if [GICD_MESSAGE_SPI, GICD_IROUTER_EXTENDED]
                    .into_iter()
                    .any(in_range)
                {
                    Self::Reserved(Access::WordOrDouble)
                } else if [GICD_IGRPMODR, GICD_NSACR, GICD_INMIR, ID_REGISTERS]
                    .into_iter()
                    .any(in_range)
                {
                    Self::Reserved(Access::Word)
                } else {
                    return None;
                }
            }
        };
        Some(register)
    }

    /// The sizes the register takes.
    fn access(self) -> Access {
        match self {
            Self::Intid(register, _) => register.access(),
            Self::Router { .. } => Access::WordOrDouble,
            Self::Reserved(access) => access,
            Self::Ctlr | Self::Typer | Self::Iidr | Self::Typer2 | Self::Pidr2 => Access::Word,
        }
    }
}

impl Vgic {
    /// Reads the distributor register at `offset` into its 64 KiB window.
    ///
    /// # Errors
    /// `UnknownRegister` for an unused offset, `BadWidth` for a size or alignment the
    /// register does not take.
    pub fn dist_read(&mut self, offset: u64, width: Width) -> Result<u64, DevError> {
        let register = DistRegister::decode(offset).ok_or(DevError::UnknownRegister)?;
        register.access().check(offset, width)?;
        Ok(match register {
            DistRegister::Ctlr => self.ctlr(),
            DistRegister::Typer => self.typer(),
            DistRegister::Iidr => iidr(),
            DistRegister::Pidr2 => pidr2(),
            DistRegister::Typer2 | DistRegister::Reserved(_) => 0,
            DistRegister::Intid(register, first) => {
                self.irqs
                    .read_register(register, Bank::Shared, first, width)
            }
            DistRegister::Router { intid, offset } => self
                .irqs
                .get(Bank::Shared, intid)
                .map_or(0, |irq| read_part(irq.route, offset, width)),
        })
    }

    /// Writes the distributor register at `offset` into its 64 KiB window.
    ///
    /// # Errors
    /// `UnknownRegister` for an unused offset, `BadWidth` for a size or alignment the
    /// register does not take.
    pub fn dist_write(&mut self, offset: u64, width: Width, value: u64) -> Result<(), DevError> {
        let register = DistRegister::decode(offset).ok_or(DevError::UnknownRegister)?;
        register.access().check(offset, width)?;
        match register {
            DistRegister::Ctlr => {
                self.enable_grp0 = CTLR_ENABLE_GRP0.is_set(value);
                self.enable_grp1 = CTLR_ENABLE_GRP1.is_set(value);
                self.kick(u64::MAX);
            }
            DistRegister::Intid(register, first) => {
                let concerned =
                    self.irqs
                        .write_register(register, Bank::Shared, first, width, value);
                self.kick(concerned);
            }
            DistRegister::Router { intid, offset } => {
                self.write_router(intid, offset, width, value)
            }
            DistRegister::Typer
            | DistRegister::Iidr
            | DistRegister::Typer2
            | DistRegister::Pidr2
            | DistRegister::Reserved(_) => {}
        }
        Ok(())
    }

    /// The distributor as an [`MmioDevice`] for the MMIO bus.
    pub fn distributor(&mut self) -> DistributorView<'_> {
        DistributorView { vgic: self }
    }

    /// GICD_CTLR as read.
    fn ctlr(&self) -> u64 {
        CTLR_ENABLE_GRP0.place(u64::from(self.enable_grp0))
            | CTLR_ENABLE_GRP1.place(u64::from(self.enable_grp1))
            | CTLR_ARE.place(1)
            | CTLR_DS.place(1)
    }

    /// GICD_TYPER as read.
    fn typer(&self) -> u64 {
        // ITLinesNumber N covers INTIDs up to 32 × (N + 1) - 1; `new` bounds the SPIs, so
        // the last INTID is at most 1019 and N at most 31.
        let last_intid = (u64::from(FIRST_SPI) + u64::from(self.spis())).saturating_sub(1);
        let lines = last_intid.min(u64::from(LAST_SPI)) / INTIDS_PER_LINE_GROUP;
        TYPER_IT_LINES_NUMBER.place(lines) | TYPER_ID_BITS.place(INTID_BITS - 1)
    }

    /// A write to GICD_IROUTER<intid>: re-route the SPI and kick the old and new targets.
    fn write_router(&mut self, intid: u32, offset: u64, width: Width, value: u64) {
        let vcpus = self.vcpus();
        let Some(irq) = self.irqs.get_mut(Bank::Shared, intid) else {
            return;
        };
        let before = *irq;
        irq.route = write_part(irq.route, offset, width, value) & IROUTER_WRITABLE;
        irq.target = route_target(irq.route, vcpus);
        let after = *irq;
        let concerned =
            self.irqs.concerned(Bank::Shared, &before) | self.irqs.concerned(Bank::Shared, &after);
        self.kick(concerned);
    }
}

/// The distributor window of a [`Vgic`], borrowed for one access.
#[derive(Debug)]
pub struct DistributorView<'a> {
    /// The VM's virtual GIC, locked by the caller.
    vgic: &'a mut Vgic,
}

impl MmioDevice for DistributorView<'_> {
    fn read(&mut self, offset: u64, width: Width) -> Result<u64, DevError> {
        self.vgic.dist_read(offset, width)
    }

    fn write(&mut self, offset: u64, width: Width, value: u64) -> Result<(), DevError> {
        self.vgic.dist_write(offset, width, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets as Linux's include/linux/irqchip/arm-gic-v3.h names them.
    const ISENABLER: u64 = 0x0100;
    const IPRIORITYR: u64 = 0x0400;
    const IROUTER: u64 = 0x6000;

    fn vgic() -> Vgic {
        match Vgic::new(2, 32) {
            Ok(vgic) => vgic,
            Err(error) => panic!("two vCPUs and 32 SPIs are supported: {error:?}"),
        }
    }

    #[test]
    fn typer_reports_one_spi_line_group_and_ten_id_bits() {
        let mut vgic = vgic();
        let typer = vgic.dist_read(GICD_TYPER, Width::Word);
        // ITLinesNumber 1 (INTIDs up to 63), IDbits 9; no LPIs, MBIS, ESPI, RSS.
        assert_eq!(typer, Ok((9 << 19) | 1));
    }

    #[test]
    fn typer_covers_a_partial_line_group() {
        let Ok(mut vgic) = Vgic::new(1, 33) else {
            panic!("33 SPIs are supported");
        };
        assert_eq!(vgic.dist_read(GICD_TYPER, Width::Word), Ok((9 << 19) | 2));
    }

    #[test]
    fn typer_with_all_spis_stops_at_31_line_groups() {
        let Ok(mut vgic) = Vgic::new(1, super::super::MAX_SPIS) else {
            panic!("988 SPIs are supported");
        };
        assert_eq!(vgic.dist_read(GICD_TYPER, Width::Word), Ok((9 << 19) | 31));
    }

    #[test]
    fn pidr2_reports_gicv3() {
        assert_eq!(vgic().dist_read(PIDR2, Width::Word), Ok(0x30));
    }

    #[test]
    fn ctlr_keeps_are_and_ds_set_and_the_group_enables_written() {
        let mut vgic = vgic();
        assert_eq!(vgic.dist_read(GICD_CTLR, Width::Word), Ok(0x50));
        assert_eq!(vgic.dist_write(GICD_CTLR, Width::Word, 0x8000_0013), Ok(()));
        assert_eq!(vgic.dist_read(GICD_CTLR, Width::Word), Ok(0x53));
        assert_eq!(vgic.dist_write(GICD_CTLR, Width::Word, 0), Ok(()));
        assert_eq!(vgic.dist_read(GICD_CTLR, Width::Word), Ok(0x50));
    }

    #[test]
    fn typer2_and_reserved_ranges_read_as_zero() {
        let mut vgic = vgic();
        for offset in [
            GICD_TYPER2,
            GICD_STATUSR,
            0x0800,
            0x0D00,
            0x0F00,
            0x1000,
            0x8000,
            0xFFD0,
        ] {
            assert_eq!(vgic.dist_write(offset, Width::Word, u64::MAX), Ok(()));
            assert_eq!(
                vgic.dist_read(offset, Width::Word),
                Ok(0),
                "offset {offset:#x}"
            );
        }
    }

    #[test]
    fn unused_offsets_are_unknown_registers() {
        let mut vgic = vgic();
        for offset in [
            0x0014, 0x0060, 0x0D80, 0x0F04, 0x4000, 0xA000, 0xC000, 0x1_0000,
        ] {
            assert_eq!(
                vgic.dist_read(offset, Width::Word),
                Err(DevError::UnknownRegister),
                "offset {offset:#x}"
            );
        }
        assert_eq!(
            vgic.dist_write(u64::MAX - 3, Width::Word, 0),
            Err(DevError::UnknownRegister)
        );
    }

    #[test]
    fn ctlr_refuses_byte_and_double_access() {
        let mut vgic = vgic();
        assert_eq!(
            vgic.dist_read(GICD_CTLR, Width::Byte),
            Err(DevError::BadWidth)
        );
        assert_eq!(
            vgic.dist_read(GICD_CTLR, Width::Double),
            Err(DevError::BadWidth)
        );
    }

    #[test]
    fn sgi_and_ppi_half_of_the_distributor_is_raz_wi_with_affinity_routing() {
        let mut vgic = vgic();
        assert_eq!(vgic.dist_write(ISENABLER, Width::Word, u64::MAX), Ok(()));
        assert_eq!(vgic.dist_read(ISENABLER, Width::Word), Ok(0));
        assert_eq!(vgic.dist_write(IPRIORITYR, Width::Word, u64::MAX), Ok(()));
        assert_eq!(vgic.dist_read(IPRIORITYR, Width::Word), Ok(0));
    }

    #[test]
    fn priority_bytes_are_individually_accessible() {
        let mut vgic = vgic();
        let spi_33 = IPRIORITYR + 33;
        assert_eq!(vgic.dist_write(spi_33, Width::Byte, 0x80), Ok(()));
        assert_eq!(vgic.dist_read(spi_33, Width::Byte), Ok(0x80));
        assert_eq!(vgic.dist_read(IPRIORITYR + 32, Width::Word), Ok(0x8000));
        assert_eq!(
            vgic.dist_write(IPRIORITYR + 32, Width::Word, 0x1020_3040),
            Ok(())
        );
        assert_eq!(vgic.dist_read(IPRIORITYR + 35, Width::Byte), Ok(0x10));
    }

    #[test]
    fn irouter_takes_double_and_word_accesses_and_keeps_only_defined_bits() {
        let mut vgic = vgic();
        let spi_40 = IROUTER + 40 * 8;
        assert_eq!(vgic.dist_write(spi_40, Width::Double, u64::MAX), Ok(()));
        assert_eq!(vgic.dist_read(spi_40, Width::Double), Ok(0xff_80ff_ffff));
        assert_eq!(vgic.dist_write(spi_40, Width::Word, 1), Ok(()));
        assert_eq!(vgic.dist_write(spi_40 + 4, Width::Word, 0), Ok(()));
        assert_eq!(vgic.dist_read(spi_40, Width::Double), Ok(1));
        assert_eq!(vgic.dist_read(spi_40 + 4, Width::Word), Ok(0));
        assert_eq!(
            vgic.dist_read(spi_40 + 4, Width::Double),
            Err(DevError::BadWidth)
        );
    }

    #[test]
    fn irouter_of_sgis_and_missing_spis_is_raz_wi() {
        let mut vgic = vgic();
        for intid in [0, 31, 64, 1019] {
            let offset = IROUTER + intid * 8;
            assert_eq!(vgic.dist_write(offset, Width::Double, 1), Ok(()));
            assert_eq!(vgic.dist_read(offset, Width::Double), Ok(0));
        }
    }

    #[test]
    fn route_target_follows_aff0_and_irm() {
        assert_eq!(route_target(1, 2), Some(1));
        assert_eq!(route_target(2, 2), None);
        assert_eq!(route_target(1 << 8, 2), None);
        assert_eq!(route_target(1 << 32, 2), None);
        assert_eq!(route_target((1 << 31) | 1, 2), Some(0));
    }
}

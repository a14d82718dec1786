//! The per-INTID register blocks that GICD and GICR_SGI_base share.
//!
//! Both frames lay out IGROUPR, ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER,
//! ICACTIVER (one bit per INTID), IPRIORITYR (one byte) and ICFGR (two bits) at the same
//! offsets (IHI 0069, "The GIC Distributor register map" and "The GIC Redistributor
//! register map"); the distributor's copy covers the SPIs, the redistributor's its
//! vCPU's SGIs and PPIs. Bits for INTIDs a bank does not hold read as zero and ignore
//! writes, which also gives the distributor its RAZ/WI SGI/PPI registers when affinity
//! routing is on.

use super::access::{width_bytes, Access};
use super::state::{Bank, IrqState, IrqTable, Trigger, SGI_COUNT};
use crate::dev::Width;

/// GICD_IGROUPR<n> / GICR_IGROUPR0.
const IGROUPR: u64 = 0x0080;
/// GICD_ISENABLER<n> / GICR_ISENABLER0.
const ISENABLER: u64 = 0x0100;
/// GICD_ICENABLER<n> / GICR_ICENABLER0.
const ICENABLER: u64 = 0x0180;
/// GICD_ISPENDR<n> / GICR_ISPENDR0.
const ISPENDR: u64 = 0x0200;
/// GICD_ICPENDR<n> / GICR_ICPENDR0.
const ICPENDR: u64 = 0x0280;
/// GICD_ISACTIVER<n> / GICR_ISACTIVER0.
const ISACTIVER: u64 = 0x0300;
/// GICD_ICACTIVER<n> / GICR_ICACTIVER0.
const ICACTIVER: u64 = 0x0380;
/// GICD_IPRIORITYR<n> / GICR_IPRIORITYR<n>.
const IPRIORITYR: u64 = 0x0400;
/// GICD_ICFGR<n> / GICR_ICFGR<n>.
const ICFGR: u64 = 0x0C00;

/// A one-bit-per-INTID block spans 1024 INTIDs.
const BIT_BLOCK_BYTES: u64 = 0x80;
/// A byte-per-INTID block spans 1024 INTIDs.
const BYTE_BLOCK_BYTES: u64 = 0x400;
/// A two-bits-per-INTID block spans 1024 INTIDs.
const CONFIG_BLOCK_BYTES: u64 = 0x100;

/// Bits per INTID in the one-bit registers.
const ONE_BIT: u64 = 1;
/// Bits per INTID in IPRIORITYR.
const PRIORITY_BITS: u64 = 8;
/// Bits per INTID in ICFGR: Int_config is the upper bit, the lower one is RES0.
const CONFIG_BITS: u64 = 2;
/// ICFGR's Int_config value for an edge-triggered interrupt (0b00 is level-sensitive).
const CONFIG_EDGE: u64 = 0b10;
/// Bits in a byte, for walking the bytes of a priority access.
const BITS_PER_BYTE: u64 = 8;

/// What a one-bit-per-INTID register does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BitRegister {
    /// IGROUPR: reads and writes the group.
    Group,
    /// ISENABLER: reads enable, a 1 enables.
    SetEnable,
    /// ICENABLER: reads enable, a 1 disables.
    ClearEnable,
    /// ISPENDR: reads pending, a 1 makes pending.
    SetPending,
    /// ICPENDR: reads pending, a 1 clears a latched pend.
    ClearPending,
    /// ISACTIVER: reads active, a 1 activates.
    SetActive,
    /// ICACTIVER: reads active, a 1 deactivates.
    ClearActive,
}

/// A per-INTID register, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IntidRegister {
    /// One bit per INTID.
    Bits(BitRegister),
    /// IPRIORITYR: one byte per INTID.
    Priority,
    /// ICFGR: two bits per INTID.
    Config,
}

/// One block of per-INTID registers: where it starts, how long it is, how wide each
/// INTID's field is.
struct Block {
    /// Offset of the block's first register.
    base: u64,
    /// Length of the block in bytes.
    bytes: u64,
    /// Width of one INTID's field in bits.
    bits_per_intid: u64,
    /// What the block's registers do.
    register: IntidRegister,
}

/// Every per-INTID block, in offset order.
const BLOCKS: [Block; 9] = [
    Block::bits(IGROUPR, BitRegister::Group),
    Block::bits(ISENABLER, BitRegister::SetEnable),
    Block::bits(ICENABLER, BitRegister::ClearEnable),
    Block::bits(ISPENDR, BitRegister::SetPending),
    Block::bits(ICPENDR, BitRegister::ClearPending),
    Block::bits(ISACTIVER, BitRegister::SetActive),
    Block::bits(ICACTIVER, BitRegister::ClearActive),
    Block {
        base: IPRIORITYR,
        bytes: BYTE_BLOCK_BYTES,
        bits_per_intid: PRIORITY_BITS,
        register: IntidRegister::Priority,
    },
    Block {
        base: ICFGR,
        bytes: CONFIG_BLOCK_BYTES,
        bits_per_intid: CONFIG_BITS,
        register: IntidRegister::Config,
    },
];

impl Block {
    /// A one-bit-per-INTID block at `base`.
    const fn bits(base: u64, register: BitRegister) -> Self {
        Self {
            base,
            bytes: BIT_BLOCK_BYTES,
            bits_per_intid: ONE_BIT,
            register: IntidRegister::Bits(register),
        }
    }
}

impl IntidRegister {
    /// The register at `offset` and the first INTID an access there covers, if `offset`
    /// falls in one of the per-INTID blocks.
    pub(super) fn decode(offset: u64) -> Option<(Self, u32)> {
        BLOCKS.iter().find_map(|block| {
            let within = offset.checked_sub(block.base)?;
            if within >= block.bytes {
                return None;
            }
            let first = within * BITS_PER_BYTE / block.bits_per_intid;
            Some((block.register, u32::try_from(first).ok()?))
        })
    }

    /// The sizes the register takes.
    pub(super) fn access(self) -> Access {
        match self {
            IntidRegister::Priority => Access::ByteOrWord,
            IntidRegister::Bits(_) | IntidRegister::Config => Access::Word,
        }
    }
}

/// Bits per INTID in `register`.
fn field_bits(register: IntidRegister) -> u64 {
    match register {
        IntidRegister::Bits(_) => ONE_BIT,
        IntidRegister::Priority => PRIORITY_BITS,
        IntidRegister::Config => CONFIG_BITS,
    }
}

/// The INTIDs an access of `width` starting at `first` covers, each with the position of
/// its field in the access.
fn fields(register: IntidRegister, first: u32, width: Width) -> impl Iterator<Item = (u32, u64)> {
    let bits = field_bits(register);
    let count = width_bytes(width) * BITS_PER_BYTE / bits;
    (0..count).filter_map(move |index| {
        let intid = first.checked_add(u32::try_from(index).ok()?)?;
        Some((intid, index * bits))
    })
}

/// The value of one INTID's field when read.
fn read_field(register: IntidRegister, irq: &IrqState) -> u64 {
    match register {
        IntidRegister::Bits(BitRegister::Group) => u64::from(irq.group1),
        IntidRegister::Bits(BitRegister::SetEnable | BitRegister::ClearEnable) => {
            u64::from(irq.enabled)
        }
        IntidRegister::Bits(BitRegister::SetPending | BitRegister::ClearPending) => {
            u64::from(irq.reads_pending())
        }
        IntidRegister::Bits(BitRegister::SetActive | BitRegister::ClearActive) => {
            u64::from(irq.reads_active())
        }
        IntidRegister::Priority => u64::from(irq.priority),
        IntidRegister::Config => match irq.trigger {
            Trigger::Edge => CONFIG_EDGE,
            Trigger::Level => 0,
        },
    }
}

/// Applies one INTID's field of a write; `field` is right-aligned.
fn write_field(register: IntidRegister, intid: u32, irq: &mut IrqState, field: u64) {
    let one = field != 0;
    match register {
        IntidRegister::Bits(BitRegister::Group) => irq.group1 = one,
        IntidRegister::Bits(BitRegister::SetEnable) if one => irq.enabled = true,
        IntidRegister::Bits(BitRegister::ClearEnable) if one => irq.enabled = false,
        IntidRegister::Bits(BitRegister::SetPending) if one => irq.set_pending(),
        IntidRegister::Bits(BitRegister::ClearPending) if one => irq.clear_pending(),
        IntidRegister::Bits(BitRegister::SetActive) if one => irq.set_active(),
        IntidRegister::Bits(BitRegister::ClearActive) if one => irq.clear_active(),
        // The whole byte is kept; the CPU interface compares only the top
        // ICH_VTR_EL2.PRIbits of it once the list register carries it.
        IntidRegister::Priority => irq.priority = u8::try_from(field).unwrap_or(u8::MAX),
        // SGIs are always edge-triggered: their Int_config is read-only (IHI 0069,
        // "GICR_ICFGR0").
        IntidRegister::Config if intid >= SGI_COUNT => {
            irq.trigger = if field & CONFIG_EDGE != 0 {
                Trigger::Edge
            } else {
                Trigger::Level
            };
        }
        IntidRegister::Bits(_) | IntidRegister::Config => {}
    }
}

impl IrqTable {
    /// Reads `register` for the INTIDs from `first` in `bank`.
    pub(super) fn read_register(
        &self,
        register: IntidRegister,
        bank: Bank,
        first: u32,
        width: Width,
    ) -> u64 {
        let mask = field_mask(register);
        fields(register, first, width)
            .filter_map(|(intid, shift)| {
                let irq = self.get(bank, intid)?;
                Some((read_field(register, irq) & mask) << shift)
            })
            .fold(0, |value, field| value | field)
    }

    /// Writes `value` to `register` for the INTIDs from `first` in `bank`; returns the
    /// vCPUs whose list registers the change may concern.
    pub(super) fn write_register(
        &mut self,
        register: IntidRegister,
        bank: Bank,
        first: u32,
        width: Width,
        value: u64,
    ) -> u64 {
        let mask = field_mask(register);
        let mut concerned = 0;
        for (intid, shift) in fields(register, first, width) {
            if let Some(irq) = self.get_mut(bank, intid) {
                write_field(register, intid, irq, (value >> shift) & mask);
                let irq = *irq;
                concerned |= self.concerned(bank, &irq);
            }
        }
        concerned
    }
}

/// The right-aligned mask of one INTID's field.
fn field_mask(register: IntidRegister) -> u64 {
    (1 << field_bits(register)) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_decode_to_block_and_first_intid() {
        let decoded = |offset| IntidRegister::decode(offset);
        assert_eq!(
            decoded(0x0104),
            Some((IntidRegister::Bits(BitRegister::SetEnable), 32))
        );
        assert_eq!(decoded(0x0421), Some((IntidRegister::Priority, 33)));
        assert_eq!(decoded(0x0C08), Some((IntidRegister::Config, 32)));
        assert_eq!(
            decoded(0x03FC),
            Some((IntidRegister::Bits(BitRegister::ClearActive), 992))
        );
        assert_eq!(decoded(0x0800), None);
        assert_eq!(decoded(0x007C), None);
    }

    #[test]
    fn enable_bits_set_and_clear_independently() {
        let mut table = IrqTable::new(1, 32);
        let set = IntidRegister::Bits(BitRegister::SetEnable);
        let clear = IntidRegister::Bits(BitRegister::ClearEnable);
        table.write_register(set, Bank::Shared, 32, Width::Word, 0b1010);
        table.write_register(clear, Bank::Shared, 32, Width::Word, 0b0010);
        assert_eq!(
            table.read_register(set, Bank::Shared, 32, Width::Word),
            0b1000
        );
        assert_eq!(
            table.read_register(clear, Bank::Shared, 32, Width::Word),
            0b1000
        );
    }

    #[test]
    fn sgi_config_is_read_only_edge() {
        let mut table = IrqTable::new(1, 0);
        table.write_register(IntidRegister::Config, Bank::Private(0), 0, Width::Word, 0);
        assert_eq!(
            table.read_register(IntidRegister::Config, Bank::Private(0), 0, Width::Word),
            0xaaaa_aaaa
        );
    }

    #[test]
    fn ppi_config_is_writable() {
        let mut table = IrqTable::new(1, 0);
        let edge_for_ppi_27 = CONFIG_EDGE << ((27 - 16) * CONFIG_BITS);
        table.write_register(
            IntidRegister::Config,
            Bank::Private(0),
            16,
            Width::Word,
            edge_for_ppi_27,
        );
        assert_eq!(
            table.get(Bank::Private(0), 27).map(|irq| irq.trigger),
            Some(Trigger::Edge)
        );
    }

    #[test]
    fn unimplemented_intids_read_zero_and_ignore_writes() {
        let mut table = IrqTable::new(1, 32);
        let set = IntidRegister::Bits(BitRegister::SetEnable);
        assert_eq!(
            table.write_register(set, Bank::Shared, 64, Width::Word, u64::MAX),
            0
        );
        assert_eq!(table.read_register(set, Bank::Shared, 64, Width::Word), 0);
        assert_eq!(table.read_register(set, Bank::Shared, 0, Width::Word), 0);
    }
}

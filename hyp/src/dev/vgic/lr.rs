//! The ICH_LR<n>_EL2 list-register format: one virtual interrupt handed to the CPU interface.
//!
//! Layout from the Arm ARM (DDI 0487, "ICH_LR<n>_EL2, Interrupt Controller List Registers")
//! and the GICv3 specification (IHI 0069, "ICH_LR<n>_EL2"): vINTID [31:0]; with HW = 0,
//! EOI [41] asks for a maintenance interrupt when the guest deactivates the interrupt, with
//! HW = 1 pINTID [44:32] names the physical interrupt to deactivate with it; Priority
//! [55:48]; NMI [59]; Group [60]; HW [61]; State [63:62]. HW = 1 only for the timer PPIs,
//! which the model ties to the physical PPI of the same number (`state::IrqState::physical`):
//! the guest's deactivation then deactivates the physical interrupt too, which a GIC
//! without EOI maintenance (bit 41 is part of pINTID then) signals no other way.

use crate::trap::esr::Field;

/// ICH_LR<n>_EL2.vINTID, bits [31:0]: the INTID the guest acknowledges.
const LR_VINTID: Field = Field::new(0, 32);
/// ICH_LR<n>_EL2.EOI, bit [41] (when HW is 0): raise a maintenance interrupt when the
/// guest deactivates this interrupt (ICH_EISR_EL2 then names the list register).
const LR_EOI: Field = Field::bit(41);
/// ICH_LR<n>_EL2.pINTID, bits [44:32] (when HW is 1): the physical interrupt the CPU
/// interface deactivates when the guest deactivates this one.
const LR_PINTID: Field = Field::new(32, 13);
/// ICH_LR<n>_EL2.Priority, bits [55:48]: compared by the CPU interface against the
/// guest's ICV_PMR_EL1 and running priority, using as many top bits as ICH_VTR_EL2.PRIbits
/// implements.
const LR_PRIORITY: Field = Field::new(48, 8);
/// ICH_LR<n>_EL2.Group, bit [60]: 1 for a Group 1 interrupt (a virtual IRQ), 0 for Group 0
/// (a virtual FIQ).
const LR_GROUP: Field = Field::bit(60);
/// ICH_LR<n>_EL2.HW, bit [61]: the virtual interrupt is tied to a physical one.
const LR_HW: Field = Field::bit(61);
/// ICH_LR<n>_EL2.State, bits [63:62]: invalid, pending, active, or pending and active.
const LR_STATE: Field = Field::new(62, 2);

/// The State field of a list register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrState {
    /// 0b00: the list register is free.
    Invalid = 0b00,
    /// 0b01: the guest has not acknowledged the interrupt yet.
    Pending = 0b01,
    /// 0b10: the guest acknowledged it and has not deactivated it.
    Active = 0b10,
    /// 0b11: active, and pending again behind that.
    PendingActive = 0b11,
}

/// The pending bit of the State encoding.
const STATE_PENDING_BIT: u64 = 0b01;
/// The active bit of the State encoding.
const STATE_ACTIVE_BIT: u64 = 0b10;

impl LrState {
    /// The state with the given pending and active bits.
    pub const fn from_flags(pending: bool, active: bool) -> Self {
        match (pending, active) {
            (false, false) => LrState::Invalid,
            (true, false) => LrState::Pending,
            (false, true) => LrState::Active,
            (true, true) => LrState::PendingActive,
        }
    }

    /// Decodes the two-bit State field.
    const fn from_field(bits: u64) -> Self {
        Self::from_flags(bits & STATE_PENDING_BIT != 0, bits & STATE_ACTIVE_BIT != 0)
    }

    /// The pending half of the state.
    pub const fn is_pending(self) -> bool {
        matches!(self, LrState::Pending | LrState::PendingActive)
    }

    /// The active half of the state.
    pub const fn is_active(self) -> bool {
        matches!(self, LrState::Active | LrState::PendingActive)
    }

    /// This state with the pending half replaced by `pending`.
    pub const fn with_pending(self, pending: bool) -> Self {
        Self::from_flags(pending, self.is_active())
    }

    /// This state with the active half replaced by `active`.
    pub const fn with_active(self, active: bool) -> Self {
        Self::from_flags(self.is_pending(), active)
    }
}

/// One list register, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListRegister {
    /// The virtual INTID.
    pub intid: u32,
    /// The priority byte as the guest programmed it in GICD/GICR_IPRIORITYR.
    pub priority: u8,
    /// Group 1 (true) or Group 0 (false).
    pub group1: bool,
    /// Ask for a maintenance interrupt when the guest deactivates it (EOI bit; only
    /// without `physical`, whose pINTID field overlaps it).
    pub eoi_maintenance: bool,
    /// HW = 1 and pINTID: the physical interrupt the guest's deactivation deactivates.
    pub physical: Option<u32>,
    /// Invalid, pending, active or both.
    pub state: LrState,
}

impl ListRegister {
    /// A free list register: the value `sync` and `flush` write to release one.
    pub const FREE: u64 = 0;

    /// Decodes a raw ICH_LR<n>_EL2 value.
    pub fn decode(value: u64) -> Self {
        let hardware = LR_HW.is_set(value);
        Self {
            // The field is 32 bits wide, so the conversion cannot fail.
            intid: u32::try_from(LR_VINTID.get(value)).unwrap_or(u32::MAX),
            priority: LR_PRIORITY.get_u8(value),
            group1: LR_GROUP.is_set(value),
            eoi_maintenance: !hardware && LR_EOI.is_set(value),
            // A 13-bit field always converts.
            physical: hardware.then(|| u32::try_from(LR_PINTID.get(value)).unwrap_or(u32::MAX)),
            state: LrState::from_field(LR_STATE.get(value)),
        }
    }

    /// The raw ICH_LR<n>_EL2 value. With `physical`, HW is set and the pINTID field holds
    /// it (cut to the field's 13 bits), and the EOI bit is not there to set.
    pub fn encode(&self) -> u64 {
        let tie = match self.physical {
            Some(pintid) => LR_HW.place(1) | LR_PINTID.place(u64::from(pintid)),
            None => LR_EOI.place(u64::from(self.eoi_maintenance)),
        };
        LR_VINTID.place(u64::from(self.intid))
            | tie
            | LR_PRIORITY.place(u64::from(self.priority))
            | LR_GROUP.place(u64::from(self.group1))
            | LR_STATE.place(self.state as u64)
    }

    /// Whether the raw value holds an interrupt (State is not Invalid).
    pub fn is_in_use(value: u64) -> bool {
        Self::decode(value).state != LrState::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_group1_interrupt_encodes_to_the_architected_bits() {
        let lr = ListRegister {
            intid: 33,
            priority: 0xa0,
            group1: true,
            eoi_maintenance: false,
            physical: None,
            state: LrState::Pending,
        };
        // State 0b01 at [63:62], Group at 60, priority 0xa0 at [55:48], vINTID 33.
        assert_eq!(lr.encode(), 0x50a0_0000_0000_0021);
    }

    #[test]
    fn eoi_maintenance_sets_bit_41() {
        let lr = ListRegister {
            intid: 27,
            priority: 0,
            group1: false,
            eoi_maintenance: true,
            physical: None,
            state: LrState::Active,
        };
        assert_eq!(lr.encode(), 0x8000_0200_0000_001b);
    }

    #[test]
    fn decode_inverts_encode_for_every_state() {
        for state in [
            LrState::Invalid,
            LrState::Pending,
            LrState::Active,
            LrState::PendingActive,
        ] {
            let lr = ListRegister {
                intid: 1019,
                priority: 0xf8,
                group1: true,
                eoi_maintenance: true,
                physical: None,
                state,
            };
            assert_eq!(ListRegister::decode(lr.encode()), lr);
        }
    }

    #[test]
    fn hardware_bit_is_decoded() {
        assert_eq!(ListRegister::decode(1 << 61).physical, Some(0));
    }

    #[test]
    fn hardware_interrupt_carries_its_pintid_where_eoi_would_be() {
        let lr = ListRegister {
            intid: 30,
            priority: 0xa0,
            group1: true,
            eoi_maintenance: false,
            physical: Some(30),
            state: LrState::Pending,
        };
        // State 0b01, Group, HW at 61, priority 0xa0, pINTID 30 at [44:32], vINTID 30.
        assert_eq!(lr.encode(), 0x70a0_001e_0000_001e);
        assert_eq!(ListRegister::decode(lr.encode()), lr);
        // pINTID 0x21e has bit 41 set: read back as pINTID, not as EOI.
        let decoded = ListRegister::decode(0x70a0_021e_0000_001e);
        assert_eq!(decoded.physical, Some(0x21e));
        assert!(!decoded.eoi_maintenance);
    }

    #[test]
    fn eoi_request_is_dropped_from_a_hardware_interrupt() {
        let lr = ListRegister {
            intid: 27,
            priority: 0,
            group1: true,
            eoi_maintenance: true,
            physical: Some(27),
            state: LrState::Pending,
        };
        assert_eq!(ListRegister::decode(lr.encode()).physical, Some(27));
        assert!(!ListRegister::decode(lr.encode()).eoi_maintenance);
    }

    #[test]
    fn free_register_is_not_in_use() {
        assert!(!ListRegister::is_in_use(ListRegister::FREE));
        assert!(ListRegister::is_in_use(0x4000_0000_0000_0001));
    }

    #[test]
    fn state_halves_combine() {
        assert_eq!(LrState::Active.with_pending(true), LrState::PendingActive);
        assert_eq!(LrState::PendingActive.with_active(false), LrState::Pending);
        assert_eq!(LrState::Pending.with_pending(false), LrState::Invalid);
        assert!(LrState::PendingActive.is_pending() && LrState::PendingActive.is_active());
    }
}

//! VTCR_EL2 for Janus' stage-2 layout (39-bit IPA, level-1 root, 4 KiB granule).

use super::IPA_BITS;

// VTCR_EL2, Virtualization Translation Control Register (Arm ARM DDI 0487, register
// descriptions in chapter D23, "VTCR_EL2"):
//   [5:0]   T0SZ   IPA size is 2^(64 - T0SZ) bytes
//   [7:6]   SL0    starting level (meaning depends on TG0)
//   [9:8]   IRGN0  inner cacheability of table walks
//   [11:10] ORGN0  outer cacheability of table walks
//   [13:12] SH0    shareability of table walks
//   [15:14] TG0    granule size
//   [18:16] PS     physical (output) address size
//   [19]    VS     VMID size (0: 8 bits, the value used here)
//   [31]    RES1
// Fields above bit 19 (HA, HD, NSW, NSA, ...) stay 0: no hardware access-flag or dirty
// management.

/// Bit position of `VTCR_EL2.T0SZ`.
const VTCR_T0SZ_SHIFT: u32 = 0;
/// `T0SZ` for the 39-bit IPA space.
const VTCR_T0SZ_39_BITS: u64 = (u64::BITS - IPA_BITS) as u64;
/// Bit position of `VTCR_EL2.SL0`.
const VTCR_SL0_SHIFT: u32 = 6;
/// `SL0` = 0b01: with the 4 KiB granule, start the walk at level 1.
const VTCR_SL0_4K_LEVEL1: u64 = 0b01;
/// Bit position of `VTCR_EL2.IRGN0`.
const VTCR_IRGN0_SHIFT: u32 = 8;
/// Bit position of `VTCR_EL2.ORGN0`.
const VTCR_ORGN0_SHIFT: u32 = 10;
/// `IRGN0`/`ORGN0` = 0b01: Normal memory, write-back, read-allocate, write-allocate.
const VTCR_RGN_WB_RA_WA: u64 = 0b01;
/// Bit position of `VTCR_EL2.SH0`.
const VTCR_SH0_SHIFT: u32 = 12;
/// `SH0` = 0b11: inner shareable.
const VTCR_SH0_INNER: u64 = 0b11;
/// Bit position of `VTCR_EL2.TG0`.
const VTCR_TG0_SHIFT: u32 = 14;
/// `TG0` = 0b00: 4 KiB granule.
const VTCR_TG0_4K: u64 = 0b00;
/// Bit position of `VTCR_EL2.PS`.
const VTCR_PS_SHIFT: u32 = 16;
/// Bit 31 is RES1.
const VTCR_RES1: u64 = 1 << 31;

/// `PS` encodings by physical address size in bits (the same table as
/// `ID_AA64MMFR0_EL1.PARange`).
const VTCR_PS_BY_PA_BITS: [(u32, u64); 7] = [
    (32, 0b000),
    (36, 0b001),
    (40, 0b010),
    (42, 0b011),
    (44, 0b100),
    (48, 0b101),
    (52, 0b110),
];

/// Computes `VTCR_EL2` for tables built by `Stage2Table`: 39-bit IPA space, 4 KiB granule,
/// walk from level 1, table walks write-back write-allocate and inner shareable, 8-bit VMID,
/// and `PS` from the CPU's physical address size in bits (`ID_AA64MMFR0_EL1.PARange` decoded:
/// 32, 36, 40, 42, 44, 48 or 52). Other widths round down to the next listed one (below 32
/// gives 32). With the 4 KiB granule and no FEAT_LPA2, `PS` = 52 bits acts as 48 bits, which is
/// also the most these descriptors hold.
#[must_use]
pub fn vtcr_el2(pa_range_bits: u32) -> u64 {
    let ps = VTCR_PS_BY_PA_BITS
        .iter()
        .rev()
        .find(|&&(bits, _)| bits <= pa_range_bits)
        .map_or(0, |&(_, encoding)| encoding);
    VTCR_RES1
        | (ps << VTCR_PS_SHIFT)
        | (VTCR_TG0_4K << VTCR_TG0_SHIFT)
        | (VTCR_SH0_INNER << VTCR_SH0_SHIFT)
        | (VTCR_RGN_WB_RA_WA << VTCR_ORGN0_SHIFT)
        | (VTCR_RGN_WB_RA_WA << VTCR_IRGN0_SHIFT)
        | (VTCR_SL0_4K_LEVEL1 << VTCR_SL0_SHIFT)
        | (VTCR_T0SZ_39_BITS << VTCR_T0SZ_SHIFT)
}

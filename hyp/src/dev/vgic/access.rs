//! Which access sizes a GIC register takes, and 32-bit views of 64-bit registers.
//!
//! IHI 0069, "GIC memory-mapped register access": every register can be read and written
//! as a 32-bit word; GICD_IPRIORITYR, GICR_IPRIORITYR, GICD_ITARGETSR, GICD_CPENDSGIR and
//! GICD_SPENDSGIR also byte by byte; the 64-bit registers (GICD_IROUTER, GICR_TYPER, the
//! LPI registers) as a doubleword or as two words. Halfword and unaligned accesses are
//! not supported by any GIC register.

use crate::dev::{DevError, Width};

/// The sizes one register accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// 32-bit only.
    Word,
    /// 8-bit or 32-bit (the byte-per-INTID registers).
    ByteOrWord,
    /// 32-bit or 64-bit (the 64-bit registers).
    WordOrDouble,
}

/// Bytes in a 32-bit word, the size most GIC registers have.
pub(super) const WORD_BYTES: u64 = 4;
/// Bits in the lower half of a 64-bit register.
const HALF_SHIFT: u32 = 32;
/// The lower 32 bits of a value.
const LOW_WORD: u64 = 0xffff_ffff;

/// The access size in bytes.
pub(super) const fn width_bytes(width: Width) -> u64 {
    match width {
        Width::Byte => 1,
        Width::Half => 2,
        Width::Word => 4,
        Width::Double => 8,
    }
}

impl Access {
    /// Accepts `width` at `offset`, or says why not.
    ///
    /// # Errors
    /// `BadWidth` for a size the register does not take or an unaligned access.
    pub(super) fn check(self, offset: u64, width: Width) -> Result<(), DevError> {
        let size_ok = match width {
            Width::Half => false,
            Width::Word => true,
            Width::Byte => self == Access::ByteOrWord,
            Width::Double => self == Access::WordOrDouble,
        };
        if size_ok && offset.is_multiple_of(width_bytes(width)) {
            Ok(())
        } else {
            Err(DevError::BadWidth)
        }
    }
}

/// The part of the 64-bit `register` that an access at `offset` (into the register) of
/// `width` sees: the whole register, or its lower or upper word.
pub(super) fn read_part(register: u64, offset_in_register: u64, width: Width) -> u64 {
    match width {
        Width::Double => register,
        _ if offset_in_register >= WORD_BYTES => register >> HALF_SHIFT,
        _ => register & LOW_WORD,
    }
}

/// `register` after a write of `value` by an access at `offset` (into the register) of
/// `width`: the whole register, or one word of it.
pub(super) fn write_part(register: u64, offset_in_register: u64, width: Width, value: u64) -> u64 {
    match width {
        Width::Double => value,
        _ if offset_in_register >= WORD_BYTES => {
            (register & LOW_WORD) | ((value & LOW_WORD) << HALF_SHIFT)
        }
        _ => (register & !LOW_WORD) | (value & LOW_WORD),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halfword_access_is_refused_everywhere() {
        for access in [Access::Word, Access::ByteOrWord, Access::WordOrDouble] {
            assert_eq!(access.check(0, Width::Half), Err(DevError::BadWidth));
        }
    }

    #[test]
    fn byte_access_only_where_allowed() {
        assert_eq!(Access::ByteOrWord.check(3, Width::Byte), Ok(()));
        assert_eq!(Access::Word.check(0, Width::Byte), Err(DevError::BadWidth));
    }

    #[test]
    fn unaligned_access_is_refused() {
        assert_eq!(Access::Word.check(2, Width::Word), Err(DevError::BadWidth));
        assert_eq!(
            Access::WordOrDouble.check(4, Width::Double),
            Err(DevError::BadWidth)
        );
    }

    #[test]
    fn word_halves_of_a_double_register_read_and_write_independently() {
        let register = 0x1122_3344_5566_7788;
        assert_eq!(read_part(register, 0, Width::Word), 0x5566_7788);
        assert_eq!(read_part(register, 4, Width::Word), 0x1122_3344);
        assert_eq!(read_part(register, 0, Width::Double), register);
        assert_eq!(
            write_part(register, 4, Width::Word, 0xaabb_ccdd),
            0xaabb_ccdd_5566_7788
        );
        assert_eq!(
            write_part(register, 0, Width::Word, 0xffff_ffff_aabb_ccdd),
            0x1122_3344_aabb_ccdd
        );
    }
}

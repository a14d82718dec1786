//! Address newtypes (`Ipa`, `Pa`) and the granule sizes of the 4 KiB translation granule.

use core::fmt;

/// The size in bytes of a page, the smallest unit of a 4 KiB-granule translation table.
pub const PAGE_SIZE: u64 = 4096;

/// The size in bytes of a level-2 block with the 4 KiB granule (2 MiB).
pub const BLOCK_2M: u64 = 2 * 1024 * 1024;

/// The size in bytes of a level-1 block with the 4 KiB granule (1 GiB).
pub const BLOCK_1G: u64 = 1024 * 1024 * 1024;

// Janus targets AArch64 and tests on 64-bit hosts: converting a `u64` address to `usize`
// (`to_usize`) is lossless only because of this.
const _: () = assert!(usize::BITS == u64::BITS);

/// Defines an address newtype with the arithmetic that makes sense for addresses.
macro_rules! address_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// Returns the address `bytes` further on, or `None` if that passes 2^64.
            #[must_use]
            pub const fn checked_add(self, bytes: u64) -> Option<Self> {
                match self.0.checked_add(bytes) {
                    Some(value) => Some(Self(value)),
                    None => None,
                }
            }

            /// Returns whether the address is a multiple of `align`, which must be a power of
            /// two.
            #[must_use]
            pub const fn is_aligned(self, align: u64) -> bool {
                debug_assert!(align.is_power_of_two());
                self.0 & align.wrapping_sub(1) == 0
            }

            /// Rounds the address down to a multiple of `align`, which must be a power of two.
            #[must_use]
            pub const fn align_down(self, align: u64) -> Self {
                debug_assert!(align.is_power_of_two());
                Self(self.0 & !align.wrapping_sub(1))
            }

            /// Rounds the address up to a multiple of `align`, which must be a power of two;
            /// `None` if the result would pass 2^64.
            #[must_use]
            pub const fn align_up(self, align: u64) -> Option<Self> {
                debug_assert!(align.is_power_of_two());
                match self.0.checked_add(align.wrapping_sub(1)) {
                    Some(value) => Some(Self(value & !align.wrapping_sub(1))),
                    None => None,
                }
            }

            /// Returns the address as a `usize` (lossless: Janus only builds for 64-bit).
            #[must_use]
            pub const fn to_usize(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#018x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

address_type!(
    /// An intermediate physical address: what a guest believes is physical, the input of
    /// stage-2 translation.
    Ipa
);

address_type!(
    /// A physical address: the output of stage-2 translation, as seen by the memory system.
    Pa
);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn debug_and_display_print_eighteen_hex_columns() {
        assert_eq!(format!("{:?}", Ipa(0x4000_0000)), "0x0000000040000000");
        assert_eq!(format!("{}", Pa(0x1234)), "0x0000000000001234");
    }

    #[test]
    fn checked_add_stops_at_the_top_of_the_address_space() {
        assert_eq!(Ipa(0x1000).checked_add(0x1000), Some(Ipa(0x2000)));
        assert_eq!(Pa(u64::MAX - 1).checked_add(1), Some(Pa(u64::MAX)));
        assert_eq!(Pa(u64::MAX).checked_add(1), None);
    }

    #[test]
    fn alignment_helpers_round_to_the_granule() {
        assert!(Ipa(0x20_0000).is_aligned(BLOCK_2M));
        assert!(!Ipa(0x20_1000).is_aligned(BLOCK_2M));
        assert!(Pa(0).is_aligned(BLOCK_1G));
        assert_eq!(Ipa(0x20_1fff).align_down(PAGE_SIZE), Ipa(0x20_1000));
        assert_eq!(Ipa(0x20_1001).align_up(PAGE_SIZE), Some(Ipa(0x20_2000)));
        assert_eq!(Ipa(0x20_2000).align_up(PAGE_SIZE), Some(Ipa(0x20_2000)));
        assert_eq!(Pa(u64::MAX - 5).align_up(PAGE_SIZE), None);
    }

    #[test]
    fn addresses_order_by_value() {
        assert!(Ipa(1) < Ipa(2));
        assert_eq!(Pa(7).max(Pa(3)), Pa(7));
    }
}

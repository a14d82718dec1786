//! Boot entropy for the personalities: each start of each personality gets its
//! own `/chosen/rng-seed` and `/chosen/kaslr-seed`.
//!
//! Linux credits `rng-seed` to its random pool at once, so a kernel that gets
//! one has a ready CRNG early (without one it gathers entropy from interrupt
//! timing for a good part of its boot), and `kaslr-seed` randomizes where it
//! places itself. QEMU and U-Boot put both into the device tree they hand to
//! Janus. Janus never passes them on as they are: the two personalities would
//! then share a seed, and each would know the other's. It absorbs the boot
//! seed (with the CPU's random number generator's output where FEAT_RNG has
//! one, and the boot time) into a ChaCha20 (RFC 8439) key, and takes each
//! start's seeds from the keystream under a nonce of its own (personality
//! index, start count), so a personality learns nothing of the key or of any
//! other seed from its own.
#![forbid(unsafe_code)]

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;

/// Bytes of `rng-seed` each start gets: what Linux' `add_bootloader_randomness`
/// takes in full, twice the 256 bits its CRNG needs.
pub const RNG_SEED_BYTES: usize = 64;

/// Bytes of boot seed below which Janus gives no seeds at all: a key with less
/// than 128 bits would be a seed in name only.
pub const MINIMUM_BOOT_SEED_BYTES: usize = 16;

/// The personality field of the nonces the key derivation uses: no
/// personality has this index, so derivation and seeds never share a nonce.
const DERIVATION: u32 = u32::MAX;

/// The seeds of one start of one personality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestSeeds {
    /// `/chosen/rng-seed`.
    pub rng_seed: [u8; RNG_SEED_BYTES],
    /// `/chosen/kaslr-seed`.
    pub kaslr_seed: u64,
}

/// The key every personality's seeds are drawn from.
#[derive(Clone)]
pub struct BootEntropy {
    key: [u8; 32],
}

impl core::fmt::Debug for BootEntropy {
    /// Never prints the key.
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str("BootEntropy { .. }")
    }
}

impl BootEntropy {
    /// A key from the boot seed (the device tree's `rng-seed` and `kaslr-seed`,
    /// and the CPU's random numbers if it has them) and `boot_time` (the
    /// physical count at boot, which only makes a loader that always passes the
    /// same seed less predictable, and is not counted as entropy). `None` when
    /// the seed has fewer than [`MINIMUM_BOOT_SEED_BYTES`].
    ///
    /// Each 32-byte chunk of input is mixed into the key and the result replaced
    /// by ChaCha20's keystream under that key, so the key is as unpredictable
    /// as the least predictable chunk; chunks cannot cancel each other out.
    pub fn new(seed: &[u8], boot_time: u64) -> Option<Self> {
        if seed.len() < MINIMUM_BOOT_SEED_BYTES {
            return None;
        }
        let mut entropy = Self { key: [0; 32] };
        let time = boot_time.to_le_bytes();
        for (index, chunk) in seed.chunks(32).chain([&time[..]]).enumerate() {
            for (byte, &input) in entropy.key.iter_mut().zip(chunk) {
                *byte ^= input;
            }
            let mut next = [0u8; 32];
            entropy.keystream(DERIVATION, index as u64, &mut next);
            entropy.key = next;
        }
        Some(entropy)
    }

    /// ChaCha20's keystream under the key and the nonce (`personality`,
    /// `count`), from block 0.
    fn keystream(&self, personality: u32, count: u64, out: &mut [u8]) {
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&personality.to_le_bytes());
        nonce[4..].copy_from_slice(&count.to_le_bytes());
        out.fill(0);
        ChaCha20::new(&self.key.into(), &nonce.into()).apply_keystream(out);
    }

    /// The seeds of start number `start` of personality `personality`.
    pub fn seeds(&self, personality: u32, start: u64) -> GuestSeeds {
        let mut stream = [0u8; RNG_SEED_BYTES + 8];
        self.keystream(personality, start, &mut stream);
        let mut rng_seed = [0u8; RNG_SEED_BYTES];
        rng_seed.copy_from_slice(&stream[..RNG_SEED_BYTES]);
        let mut kaslr = [0u8; 8];
        kaslr.copy_from_slice(&stream[RNG_SEED_BYTES..]);
        GuestSeeds {
            rng_seed,
            kaslr_seed: u64::from_le_bytes(kaslr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entropy() -> BootEntropy {
        let seed: Vec<u8> = (0u8..40).collect();
        BootEntropy::new(&seed, 1234).expect("40 bytes are enough")
    }

    #[test]
    fn too_little_boot_seed_gives_no_entropy() {
        assert!(BootEntropy::new(&[], 99).is_none());
        assert!(BootEntropy::new(&[7; MINIMUM_BOOT_SEED_BYTES - 1], 99).is_none());
        assert!(BootEntropy::new(&[7; MINIMUM_BOOT_SEED_BYTES], 99).is_some());
    }

    #[test]
    fn the_keystream_is_rfc_8439_chacha20() {
        // RFC 8439 §2.4.2: key 00 01 .. 1f, nonce 00 00 00 00 00 00 00 4a 00 00
        // 00 00; the keystream block with counter 1 starts 22 4f 51 f3 40 1b d9
        // e1. Personality 0 and count 0x4a00_0000 make that nonce.
        let entropy = BootEntropy {
            key: core::array::from_fn(|index| index as u8),
        };
        let mut stream = [0u8; 72];
        entropy.keystream(0, 0x4a00_0000, &mut stream);
        assert_eq!(
            stream[64..],
            [0x22, 0x4f, 0x51, 0xf3, 0x40, 0x1b, 0xd9, 0xe1]
        );
    }

    #[test]
    fn every_personality_and_every_start_gets_its_own_seeds() {
        let entropy = entropy();
        let first = entropy.seeds(0, 0);
        assert_eq!(
            first,
            entropy.seeds(0, 0),
            "the same inputs give the same seeds"
        );
        let others = [
            entropy.seeds(1, 0),
            entropy.seeds(0, 1),
            entropy.seeds(1, 1),
        ];
        for other in others {
            assert_ne!(first.rng_seed, other.rng_seed);
            assert_ne!(first.kaslr_seed, other.kaslr_seed);
        }
    }

    #[test]
    fn every_bit_of_the_seed_and_the_boot_time_changes_the_seeds() {
        let seed: Vec<u8> = (0u8..40).collect();
        let reference = entropy().seeds(0, 0);
        for position in [0, 31, 32, 39] {
            let mut changed = seed.clone();
            changed[position] ^= 1;
            let other = BootEntropy::new(&changed, 1234).expect("40 bytes");
            assert_ne!(reference, other.seeds(0, 0), "byte {position}");
        }
        let later = BootEntropy::new(&seed, 1235).expect("40 bytes");
        assert_ne!(reference, later.seeds(0, 0), "boot time");
    }

    #[test]
    fn chunks_that_repeat_do_not_cancel() {
        // Folding by exclusive or alone would give an all-zero key here.
        let seed = [0x5a; 64];
        let entropy = BootEntropy::new(&seed, 0).expect("64 bytes");
        assert_ne!(entropy.key, [0; 32]);
        assert_ne!(entropy.seeds(0, 0).rng_seed, [0; RNG_SEED_BYTES]);
    }

    #[test]
    fn debug_output_hides_the_key() {
        assert_eq!(alloc::format!("{:?}", entropy()), "BootEntropy { .. }");
    }
}

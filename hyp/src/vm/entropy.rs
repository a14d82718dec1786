//! Boot entropy for the personalities: each start of each personality gets its
//! own `/chosen/rng-seed` and `/chosen/kaslr-seed`.
//!
//! Linux credits `rng-seed` to its random pool at once, so a kernel that gets
//! one has a ready CRNG early (without one it gathers entropy from interrupt
//! timing for a good part of its boot), and `kaslr-seed` randomizes where it
//! places itself. QEMU and U-Boot put both into the device tree they hand to
//! Janus. Janus never passes them on as they are: the two personalities would
//! then share a seed, and each would know the other's. It keys ChaCha20 (RFC
//! 8439) with the boot seed and takes each start's seeds from the keystream
//! under a nonce of its own (personality index, start count), so a personality
//! learns nothing of the key or of any other seed from its own.
#![forbid(unsafe_code)]

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;

/// Bytes of `rng-seed` each start gets: what Linux' `add_bootloader_randomness`
/// takes in full, twice the 256 bits its CRNG needs.
pub const RNG_SEED_BYTES: usize = 64;

/// Bytes of boot seed below which Janus gives no seeds at all: a key with less
/// than 128 bits would be a seed in name only.
pub const MINIMUM_BOOT_SEED_BYTES: usize = 16;

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
    /// A key from the boot device tree's seeds (`rng-seed` bytes, then the
    /// `kaslr-seed` bytes), folded into 32 bytes by exclusive or, which keeps
    /// every bit of entropy up to 256. `None` when there are fewer than
    /// [`MINIMUM_BOOT_SEED_BYTES`].
    pub fn from_boot_seed(seed: &[u8]) -> Option<Self> {
        if seed.len() < MINIMUM_BOOT_SEED_BYTES {
            return None;
        }
        let mut key = [0u8; 32];
        for chunk in seed.chunks(key.len()) {
            for (byte, &input) in key.iter_mut().zip(chunk) {
                *byte ^= input;
            }
        }
        Some(Self { key })
    }

    /// The seeds of start number `start` of personality `personality`.
    pub fn seeds(&self, personality: u32, start: u64) -> GuestSeeds {
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&personality.to_le_bytes());
        nonce[4..].copy_from_slice(&start.to_le_bytes());
        let mut cipher = ChaCha20::new(&self.key.into(), &nonce.into());
        let mut stream = [0u8; RNG_SEED_BYTES + 8];
        cipher.apply_keystream(&mut stream);
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
        BootEntropy::from_boot_seed(&seed).expect("40 bytes are enough")
    }

    #[test]
    fn too_little_boot_seed_gives_no_entropy() {
        assert!(BootEntropy::from_boot_seed(&[]).is_none());
        assert!(BootEntropy::from_boot_seed(&[7; MINIMUM_BOOT_SEED_BYTES - 1]).is_none());
        assert!(BootEntropy::from_boot_seed(&[7; MINIMUM_BOOT_SEED_BYTES]).is_some());
    }

    #[test]
    fn the_keystream_is_rfc_8439_chacha20() {
        // RFC 8439 §2.4.2: key 00 01 .. 1f, nonce 00 00 00 00 00 00 00 4a 00 00
        // 00 00; the keystream block with counter 1 starts 22 4f 51 f3 40 1b d9
        // e1. Personality 0 and start 0x4a00_0000 make that nonce, and the
        // kaslr-seed is the first 8 bytes of block 1.
        let key: Vec<u8> = (0u8..32).collect();
        let entropy = BootEntropy::from_boot_seed(&key).expect("32 bytes");
        let seeds = entropy.seeds(0, 0x4a00_0000);
        assert_eq!(
            seeds.kaslr_seed.to_le_bytes(),
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
    fn a_different_boot_seed_gives_different_seeds() {
        let mut seed: Vec<u8> = (0u8..40).collect();
        seed[39] ^= 1;
        let other = BootEntropy::from_boot_seed(&seed).expect("40 bytes");
        assert_ne!(entropy().seeds(0, 0), other.seeds(0, 0));
    }

    #[test]
    fn debug_output_hides_the_key() {
        assert_eq!(alloc::format!("{:?}", entropy()), "BootEntropy { .. }");
    }
}

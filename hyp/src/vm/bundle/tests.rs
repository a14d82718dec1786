//! Host tests of `vm/bundle.rs`.

use super::*;
use alloc::vec;

#[test]
fn identical_kernels_are_stored_once() {
    let mut both = sample();
    both[1].kernel = both[0].kernel;
    let shared = encode(&both);
    let separate = encode(&sample());
    let bundle = Bundle::parse(&shared).expect("parse");
    let [first, second] = bundle.personalities() else {
        panic!("two personalities expected");
    };
    assert_eq!(first.kernel, second.kernel);
    assert_eq!(first.kernel.as_ptr(), second.kernel.as_ptr());
    assert!(shared.len() < separate.len() + KERNEL_PERSONAL.len() - KERNEL_WORK.len());
}

const KERNEL_PERSONAL: &[u8] = b"\x7fkernel-of-personal";
const KERNEL_WORK: &[u8] = b"work kernel, a little longer than the other one";
const INITRD_WORK: &[u8] = b"070701 cpio";

fn sample() -> [PersonalityConfig<'static>; 2] {
    [
        PersonalityConfig {
            name: "personal",
            kind: GuestKind::BareMetal,
            ram_bytes: 64 << 20,
            ram_base: None,
            vcpus: 2,
            cpus: 0b0011,
            volume_mib: None,
            kernel: KERNEL_PERSONAL,
            initrd: &[],
            bootargs: "",
        },
        PersonalityConfig {
            name: "work",
            kind: GuestKind::Linux,
            ram_bytes: 256 << 20,
            ram_base: Some(0x5000_0000),
            vcpus: 1,
            cpus: 0b0100,
            volume_mib: Some(256),
            kernel: KERNEL_WORK,
            initrd: INITRD_WORK,
            bootargs: "console=ttyAMA0 rdinit=/init",
        },
    ]
}

fn write_u64(bytes: &mut [u8], offset: usize, value: u64) {
    bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
}

fn write_u32(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

/// Offset of field `field` of entry `index`.
fn entry_field(index: usize, field: usize) -> usize {
    HEADER_BYTES + index * ENTRY_BYTES + field
}

#[test]
fn round_trip_keeps_every_field() {
    let personalities = sample();
    let bytes = encode(&personalities);
    let bundle = Bundle::parse(&bytes).unwrap();
    assert_eq!(bundle.personalities(), &personalities[..]);
}

#[test]
fn round_trip_of_no_personalities() {
    let bytes = encode(&[]);
    // The header and the default channel section (12 bytes and "release").
    assert_eq!(bytes.len(), align_blob(HEADER_BYTES + 12 + 7));
    assert!(Bundle::parse(&bytes).unwrap().personalities().is_empty());
}

#[test]
fn blobs_are_aligned_and_total_size_is_recorded() {
    let bytes = encode(&sample());
    assert_eq!(
        read_u64(&bytes, header::TOTAL_BYTES),
        Some(bytes.len() as u64)
    );
    assert_eq!(bytes.len() % BLOB_ALIGN, 0);
    for index in 0..2 {
        for field in [entry::KERNEL, entry::INITRD, entry::BOOTARGS] {
            let offset = read_u64(&bytes, entry_field(index, field)).unwrap();
            assert_eq!(offset % BLOB_ALIGN as u64, 0);
        }
    }
}

#[test]
fn bytes_past_total_size_are_ignored() {
    let personalities = sample();
    let mut bytes = encode(&personalities);
    bytes.extend_from_slice(&[0xff; 4096]);
    let bundle = Bundle::parse(&bytes).unwrap();
    assert_eq!(bundle.personalities(), &personalities[..]);
}

#[test]
fn every_truncation_is_refused() {
    let bytes = encode(&sample());
    for length in 0..bytes.len() {
        let error = Bundle::parse(&bytes[..length]).unwrap_err();
        if length < HEADER_BYTES {
            assert_eq!(error, BundleError::TooShort { available: length });
        } else {
            assert_eq!(
                error,
                BundleError::Truncated {
                    total_bytes: bytes.len() as u64,
                    available: length
                }
            );
        }
    }
}

#[test]
fn bad_magic_is_refused() {
    let mut bytes = encode(&sample());
    bytes[0] = b'X';
    assert_eq!(Bundle::parse(&bytes).unwrap_err(), BundleError::BadMagic);
    assert_eq!(
        Bundle::parse(b"not a bundle").unwrap_err(),
        BundleError::TooShort { available: 12 }
    );
}

#[test]
fn other_version_is_refused() {
    let mut bytes = encode(&sample());
    write_u32(&mut bytes, header::VERSION, 3);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::UnsupportedVersion(3)
    );
}

#[test]
fn other_entry_size_is_refused() {
    let mut bytes = encode(&sample());
    write_u32(&mut bytes, header::ENTRY_SIZE, 96);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::BadEntrySize(96)
    );
}

#[test]
fn nonzero_reserved_fields_are_refused() {
    let mut bytes = encode(&sample());
    write_u32(&mut bytes, header::VERSION, FORMAT_VERSION_WITHOUT_CHANNEL);
    write_u32(&mut bytes, header::CHANNEL_BYTES, 1);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::ReservedHeaderField
    );

    // personal has no fixed RAM base, so its ram_base field must stay zero.
    let mut bytes = encode(&sample());
    write_u64(&mut bytes, entry_field(0, entry::RAM_BASE), 0x4000_0000);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::ReservedEntryField { index: 0 }
    );
}

#[test]
fn volume_size_is_stored_in_mib_and_zero_means_none() {
    let bytes = encode(&sample());
    assert_eq!(
        u32::from_le_bytes(
            bytes[entry_field(0, entry::VOLUME_MIB)..][..4]
                .try_into()
                .unwrap()
        ),
        0
    );
    assert_eq!(
        u32::from_le_bytes(
            bytes[entry_field(1, entry::VOLUME_MIB)..][..4]
                .try_into()
                .unwrap()
        ),
        256
    );
    let bundle = Bundle::parse(&bytes).expect("parse");
    assert_eq!(bundle.personalities()[0].volume_mib, None);
    assert_eq!(bundle.personalities()[1].volume_mib, Some(256));

    // A bundle whose personality asks for no volume reads back as `None`, even
    // from `Some(0)`, which `validate` refuses before anything is packed.
    let mut zero = sample();
    zero[1].volume_mib = Some(0);
    let bytes = encode(&zero);
    assert_eq!(
        Bundle::parse(&bytes).expect("parse").personalities()[1].volume_mib,
        None
    );
}

#[test]
fn huge_entry_count_is_refused() {
    let mut bytes = encode(&sample());
    write_u32(&mut bytes, header::COUNT, u32::MAX);
    let total = bytes.len() as u64;
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::TableOutOfBounds {
            count: u32::MAX,
            total_bytes: total
        }
    );
}

#[test]
fn huge_total_size_is_truncated() {
    let mut bytes = encode(&sample());
    write_u64(&mut bytes, header::TOTAL_BYTES, u64::MAX);
    assert!(matches!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::Truncated {
            total_bytes: u64::MAX,
            ..
        }
    ));
}

#[test]
fn blob_past_the_end_is_refused() {
    let mut bytes = encode(&sample());
    let total = bytes.len() as u64;
    write_u64(&mut bytes, entry_field(1, entry::INITRD), total);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::BlobOutOfBounds {
            index: 1,
            blob: Blob::Initrd
        }
    );
}

#[test]
fn blob_length_past_the_end_is_refused() {
    let mut bytes = encode(&sample());
    let total = bytes.len() as u64;
    write_u64(&mut bytes, entry_field(0, entry::KERNEL) + 8, total);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::BlobOutOfBounds {
            index: 0,
            blob: Blob::Kernel
        }
    );
}

#[test]
fn blob_whose_end_overflows_is_refused() {
    let mut bytes = encode(&sample());
    write_u64(&mut bytes, entry_field(0, entry::KERNEL) + 8, u64::MAX);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::BlobOutOfBounds {
            index: 0,
            blob: Blob::Kernel
        }
    );
    let mut bytes = encode(&sample());
    write_u64(&mut bytes, entry_field(0, entry::KERNEL), !15);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::BlobOutOfBounds {
            index: 0,
            blob: Blob::Kernel
        }
    );
}

#[test]
fn blob_inside_the_header_is_refused() {
    let mut bytes = encode(&sample());
    write_u64(&mut bytes, entry_field(1, entry::KERNEL), 0);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::BlobOutOfBounds {
            index: 1,
            blob: Blob::Kernel
        }
    );
}

#[test]
fn empty_blob_with_an_offset_is_refused() {
    let mut bytes = encode(&sample());
    write_u64(&mut bytes, entry_field(0, entry::INITRD), 0x100);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::BlobOutOfBounds {
            index: 0,
            blob: Blob::Initrd
        }
    );
}

#[test]
fn misaligned_blob_is_refused() {
    let mut bytes = encode(&sample());
    let offset = read_u64(&bytes, entry_field(1, entry::BOOTARGS)).unwrap();
    write_u64(&mut bytes, entry_field(1, entry::BOOTARGS), offset + 1);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::BlobMisaligned {
            index: 1,
            blob: Blob::Bootargs
        }
    );
}

#[test]
fn unknown_kind_and_flags_are_refused() {
    let mut bytes = encode(&sample());
    write_u32(&mut bytes, entry_field(0, entry::KIND), 7);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::UnknownKind { index: 0, value: 7 }
    );
    let mut bytes = encode(&sample());
    write_u32(&mut bytes, entry_field(1, entry::FLAGS), 0b11);
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::UnknownFlags {
            index: 1,
            flags: 0b11
        }
    );
}

#[test]
fn bad_names_are_refused() {
    let mut bytes = encode(&sample());
    // "work\0" followed by a stray byte.
    bytes[entry_field(1, entry::NAME) + 6] = b'x';
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::NameNotPadded { index: 1 }
    );
    let mut bytes = encode(&sample());
    for byte in &mut bytes[entry_field(0, entry::NAME)..entry_field(0, entry::KIND)] {
        *byte = b'a';
    }
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::NameNotPadded { index: 0 }
    );
    let mut bytes = encode(&sample());
    bytes[entry_field(0, entry::NAME)] = 0xff;
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::NameNotUtf8 { index: 0 }
    );
}

#[test]
fn bootargs_that_are_not_utf8_are_refused() {
    let mut bytes = encode(&sample());
    let offset = read_u64(&bytes, entry_field(1, entry::BOOTARGS)).unwrap() as usize;
    bytes[offset] = 0xc3;
    bytes[offset + 1] = b'(';
    assert_eq!(
        Bundle::parse(&bytes).unwrap_err(),
        BundleError::BootargsNotUtf8 { index: 1 }
    );
}

#[test]
fn fifteen_character_name_fits() {
    let mut personalities = sample();
    personalities[0].name = "abcdefghijklmno";
    let bytes = encode(&personalities);
    assert_eq!(
        Bundle::parse(&bytes).unwrap().personalities()[0].name,
        "abcdefghijklmno"
    );
}

#[test]
#[should_panic(expected = "cannot be stored")]
fn encoding_a_sixteen_character_name_panics() {
    let mut personalities = sample();
    personalities[0].name = "abcdefghijklmnop";
    encode(&personalities);
}

/// A small xorshift generator, so the fuzz-like tests are repeatable.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

#[test]
fn flipping_bytes_never_panics() {
    let original = encode(&sample());
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let mut bytes = original.clone();
        for _ in 0..=random.below(4) {
            let at = random.below(bytes.len());
            bytes[at] ^= 1 << random.below(8);
        }
        // Only the absence of a panic matters; a flip inside a blob still parses.
        let _ = Bundle::parse(&bytes);
    }
}

#[test]
fn random_words_in_header_and_table_never_panic() {
    let original = encode(&sample());
    let table_end = HEADER_BYTES + 2 * ENTRY_BYTES;
    let mut random = XorShift(0x1234_5678_9abc_def1);
    for _ in 0..20_000 {
        let mut bytes = original.clone();
        let at = random.below(table_end / 8) * 8;
        let value = match random.below(4) {
            0 => random.next(),
            1 => u64::MAX - random.below(64) as u64,
            2 => random.below(bytes.len() + 64) as u64,
            _ => 0,
        };
        write_u64(&mut bytes, at, value);
        let length = if random.below(4) == 0 {
            random.below(bytes.len())
        } else {
            bytes.len()
        };
        if let Ok(bundle) = Bundle::parse(&bytes[..length]) {
            for personality in bundle.personalities() {
                assert!(personality.kernel.len() <= length);
            }
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut random = XorShift(42);
    for _ in 0..2_000 {
        let length = random.below(600);
        let mut bytes = vec![0u8; length];
        for byte in &mut bytes {
            *byte = random.next() as u8;
        }
        if length >= 16 {
            bytes[..8].copy_from_slice(&MAGIC);
            bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        }
        let _ = Bundle::parse(&bytes);
    }
}

use crate::channel::policy::AccessSet;
use crate::vm::config::channel::{AccessRule, Manager, QuotaRule};

fn sample_channel() -> ChannelConfig<'static> {
    ChannelConfig {
        release_folder: "out-going",
        max_file_mib: Some(1024),
        manager: Manager::Personality(1),
        access: vec![
            AccessRule {
                who: 1,
                owner: 0,
                may: AccessSet::SEE_READ,
            },
            AccessRule {
                who: 0,
                owner: 1,
                may: AccessSet::NONE,
            },
        ],
        quotas: vec![
            QuotaRule {
                who: 1,
                max_mib: Some(32),
                max_files: Some(1000),
            },
            QuotaRule {
                who: 0,
                max_mib: None,
                max_files: Some(7),
            },
        ],
    }
}

/// Where the channel section starts in a bundle of `sample()`.
const CHANNEL_START: usize = HEADER_BYTES + 2 * ENTRY_BYTES;

#[test]
fn channel_round_trips_with_the_personalities() {
    let personalities = sample();
    let bytes = encode_with_channel(&personalities, &sample_channel());
    let bundle = Bundle::parse(&bytes).expect("parse");
    assert_eq!(bundle.channel(), &sample_channel());
    assert_eq!(bundle.personalities(), &personalities);
}

#[test]
fn every_manager_round_trips() {
    for manager in [Manager::Default, Manager::Nobody, Manager::Personality(0)] {
        let channel = ChannelConfig {
            manager,
            ..ChannelConfig::default()
        };
        let bytes = encode_with_channel(&sample(), &channel);
        assert_eq!(Bundle::parse(&bytes).expect("parse").channel(), &channel);
    }
}

#[test]
fn encode_writes_version_2_with_the_default_channel() {
    let bytes = encode(&sample());
    assert_eq!(read_u32(&bytes, header::VERSION), Some(FORMAT_VERSION));
    assert_ne!(read_u32(&bytes, header::CHANNEL_BYTES), Some(0));
    assert_eq!(
        Bundle::parse(&bytes).expect("parse").channel(),
        &ChannelConfig::default()
    );
}

#[test]
fn version_1_bundle_reads_as_the_default_channel() {
    // A version 1 bundle: no section, the bytes where it would be are padding.
    let mut bytes = encode_with_channel(&sample(), &sample_channel());
    write_u32(&mut bytes, header::VERSION, FORMAT_VERSION_WITHOUT_CHANNEL);
    write_u32(&mut bytes, header::CHANNEL_BYTES, 0);
    let bundle = Bundle::parse(&bytes).expect("parse");
    assert_eq!(bundle.channel(), &ChannelConfig::default());
    assert_eq!(bundle.personalities(), &sample());
}

#[test]
fn channel_section_overlapping_a_blob_is_refused() {
    let mut bytes = encode_with_channel(&sample(), &sample_channel());
    let length = read_u32(&bytes, header::CHANNEL_BYTES).expect("length");
    // Claim the section runs into the first blob: the counts disagree.
    write_u32(&mut bytes, header::CHANNEL_BYTES, length + 16);
    assert!(Bundle::parse(&bytes).is_err());
}

#[test]
fn malformed_channel_sections_are_refused() {
    let good = encode_with_channel(&sample(), &sample_channel());
    let length = read_u32(&good, header::CHANNEL_BYTES).expect("length");
    let cases: [(&str, usize, u8); 5] = [
        ("unknown manager code", CHANNEL_START + 4, 3),
        ("nobody with a personality index", CHANNEL_START + 4, 1),
        ("reserved byte", CHANNEL_START + 9, 1),
        ("release folder not UTF-8", CHANNEL_START + 12, 0xff),
        ("more rules than the length holds", CHANNEL_START + 7, 9),
    ];
    for (what, offset, value) in cases {
        let mut bytes = good.clone();
        bytes[offset] = value;
        assert_eq!(
            Bundle::parse(&bytes).unwrap_err(),
            BundleError::BadChannelSection,
            "{what}"
        );
    }
    for short in [0, 11, length - 1] {
        let mut bytes = good.clone();
        write_u32(&mut bytes, header::CHANNEL_BYTES, short);
        assert_eq!(
            Bundle::parse(&bytes).unwrap_err(),
            BundleError::BadChannelSection,
            "length {short}"
        );
    }
    let mut bytes = good.clone();
    write_u32(&mut bytes, header::CHANNEL_BYTES, u32::MAX);
    assert!(Bundle::parse(&bytes).is_err());
}

#[test]
fn rights_bits_are_kept_for_validate_channel_to_judge() {
    let mut channel = sample_channel();
    channel.access[0].may = AccessSet(0xf0);
    let bytes = encode_with_channel(&sample(), &channel);
    let bundle = Bundle::parse(&bytes).expect("parse");
    assert_eq!(
        crate::vm::config::channel::validate_channel(bundle.channel(), 2),
        Err(crate::vm::config::channel::ChannelError::UnknownRight(0))
    );
}

//! Host tests of `vm/config.rs`.

use super::*;
use crate::vm::bundle::GuestKind;

const LIMITS: Limits = Limits::with_physical_cpus(4);

fn personal() -> PersonalityConfig<'static> {
    PersonalityConfig {
        name: "personal",
        kind: GuestKind::Linux,
        ram_bytes: 64 << 20,
        ram_base: Some(0x5000_0000),
        vcpus: 2,
        cpus: 0b0011,
        volume_mib: Some(256),
        kernel: b"kernel",
        initrd: &[],
        bootargs: "",
    }
}

fn work() -> PersonalityConfig<'static> {
    PersonalityConfig {
        name: "work",
        ram_base: Some(0x6000_0000),
        vcpus: 1,
        cpus: 0b0100,
        ..personal()
    }
}

fn check(personalities: &[PersonalityConfig<'_>]) -> Result<(), ConfigError> {
    validate(personalities, &LIMITS)
}

#[test]
fn two_good_personalities_pass() {
    assert_eq!(check(&[personal(), work()]), Ok(()));
}

#[test]
fn personalities_without_fixed_ram_pass() {
    let personal = PersonalityConfig {
        ram_base: None,
        ..personal()
    };
    let work = PersonalityConfig {
        ram_base: None,
        ..work()
    };
    assert_eq!(check(&[personal, work]), Ok(()));
}

#[test]
fn empty_list_is_refused() {
    assert_eq!(check(&[]), Err(ConfigError::NoPersonalities));
    assert_eq!(ConfigError::NoPersonalities.personality(), None);
}

#[test]
fn third_personality_is_refused_by_default() {
    let third = PersonalityConfig {
        name: "spare",
        ram_base: None,
        vcpus: 1,
        cpus: 0b1000,
        ..personal()
    };
    assert_eq!(
        check(&[personal(), work(), third]),
        Err(ConfigError::TooManyPersonalities { index: 2, max: 2 })
    );
    let roomier = Limits {
        max_personalities: 3,
        ..LIMITS
    };
    assert_eq!(validate(&[personal(), work(), third], &roomier), Ok(()));
}

#[test]
fn bad_names_are_refused() {
    for (name, expected) in [
        ("", ConfigError::NameEmpty { index: 1 }),
        (
            "Work",
            ConfigError::NameBadCharacter {
                index: 1,
                character: 'W',
            },
        ),
        (
            "my work",
            ConfigError::NameBadCharacter {
                index: 1,
                character: ' ',
            },
        ),
        (
            "wörk",
            ConfigError::NameBadCharacter {
                index: 1,
                character: 'ö',
            },
        ),
        (
            "abcdefghijklmnop",
            ConfigError::NameTooLong {
                index: 1,
                length: 16,
            },
        ),
    ] {
        let work = PersonalityConfig { name, ..work() };
        assert_eq!(check(&[personal(), work]), Err(expected), "{name:?}");
        assert_eq!(expected.field(), Some(Field::Name));
    }
    let work = PersonalityConfig {
        name: "work-2-abcdefgh",
        ..work()
    };
    assert_eq!(check(&[personal(), work]), Ok(()));
}

#[test]
fn duplicate_name_is_refused() {
    let work = PersonalityConfig {
        name: "personal",
        ..work()
    };
    let error = check(&[personal(), work]).unwrap_err();
    assert_eq!(error, ConfigError::DuplicateName { index: 1, first: 0 });
    assert_eq!(error.personality(), Some(1));
    assert_eq!(error.field(), Some(Field::Name));
}

#[test]
fn zero_ram_is_refused() {
    let work = PersonalityConfig {
        ram_bytes: 0,
        ..work()
    };
    assert_eq!(
        check(&[personal(), work]),
        Err(ConfigError::RamZero { index: 1 })
    );
}

#[test]
fn ram_not_a_2_mib_multiple_is_refused() {
    let personal = PersonalityConfig {
        ram_bytes: 3 << 20,
        ..personal()
    };
    let error = check(&[personal]).unwrap_err();
    assert_eq!(
        error,
        ConfigError::RamNotAligned {
            index: 0,
            ram_bytes: 3 << 20
        }
    );
    assert_eq!(error.field(), Some(Field::RamBytes));
    assert_eq!(
        error.to_string(),
        "RAM size 3 MiB is not a multiple of 2 MiB"
    );
}

#[test]
fn misaligned_ram_base_is_refused() {
    let work = PersonalityConfig {
        ram_base: Some(0x6010_0000),
        ..work()
    };
    assert_eq!(
        check(&[personal(), work]),
        Err(ConfigError::RamBaseNotAligned {
            index: 1,
            ram_base: 0x6010_0000
        })
    );
}

#[test]
fn ram_past_the_address_space_is_refused() {
    let work = PersonalityConfig {
        ram_base: Some(u64::MAX - (RAM_ALIGN_BYTES - 1)),
        ..work()
    };
    assert!(matches!(
        check(&[personal(), work]),
        Err(ConfigError::RamBaseOverflow { index: 1, .. })
    ));
}

#[test]
fn overlapping_fixed_ram_is_refused() {
    // personal is [0x5000_0000, 0x5400_0000).
    let work = PersonalityConfig {
        ram_base: Some(0x5200_0000),
        ..work()
    };
    let error = check(&[personal(), work]).unwrap_err();
    assert_eq!(error, ConfigError::RamOverlap { index: 1, other: 0 });
    assert_eq!(error.field(), Some(Field::RamBase));
}

#[test]
fn touching_fixed_ram_ranges_pass() {
    let above = PersonalityConfig {
        ram_base: Some(0x5400_0000),
        ..work()
    };
    assert_eq!(check(&[personal(), above]), Ok(()));
    let below = PersonalityConfig {
        ram_base: Some(0x4e00_0000),
        ram_bytes: 32 << 20,
        ..work()
    };
    assert_eq!(check(&[personal(), below]), Ok(()));
}

#[test]
fn zero_vcpus_are_refused() {
    let work = PersonalityConfig { vcpus: 0, ..work() };
    assert_eq!(
        check(&[personal(), work]),
        Err(ConfigError::VcpusZero { index: 1 })
    );
}

#[test]
fn vcpus_past_the_limit_are_refused() {
    let big = PersonalityConfig {
        vcpus: 9,
        cpus: u64::MAX,
        ..personal()
    };
    let limits = Limits::with_physical_cpus(64);
    assert_eq!(
        validate(&[big], &limits),
        Err(ConfigError::TooManyVcpus {
            index: 0,
            vcpus: 9,
            max: 8
        })
    );
}

#[test]
fn more_vcpus_than_cpus_is_refused() {
    let personal = PersonalityConfig {
        vcpus: 4,
        ..personal()
    };
    let error = check(&[personal]).unwrap_err();
    assert_eq!(
        error,
        ConfigError::VcpusExceedCpus {
            index: 0,
            vcpus: 4,
            cpus: 2
        }
    );
    assert_eq!(error.field(), Some(Field::Vcpus));
    assert_eq!(
        error.to_string(),
        "vcpus = 4 but cpus lists only 2 physical CPUs"
    );
}

#[test]
fn empty_cpu_set_is_refused() {
    let personal = PersonalityConfig {
        cpus: 0,
        ..personal()
    };
    assert_eq!(
        check(&[personal]),
        Err(ConfigError::VcpusExceedCpus {
            index: 0,
            vcpus: 2,
            cpus: 0
        })
    );
}

#[test]
fn cpu_past_the_machine_is_refused() {
    let work = PersonalityConfig {
        cpus: 0b1_0100,
        ..work()
    };
    let error = check(&[personal(), work]).unwrap_err();
    assert_eq!(
        error,
        ConfigError::CpuOutOfRange {
            index: 1,
            cpu: 4,
            physical_cpus: 4
        }
    );
    assert_eq!(error.cpu(), Some(4));
    assert_eq!(error.field(), Some(Field::Cpus));
}

#[test]
fn all_64_cpus_can_be_named() {
    let personal = PersonalityConfig {
        cpus: 1 << 63,
        vcpus: 1,
        ..personal()
    };
    assert_eq!(
        validate(&[personal], &Limits::with_physical_cpus(64)),
        Ok(())
    );
    assert_eq!(
        validate(&[personal], &Limits::with_physical_cpus(100)),
        Ok(())
    );
    assert!(validate(&[personal], &Limits::with_physical_cpus(63)).is_err());
}

#[test]
fn shared_cpus_are_refused() {
    let work = PersonalityConfig {
        cpus: 0b0110,
        ..work()
    };
    let error = check(&[personal(), work]).unwrap_err();
    assert_eq!(
        error,
        ConfigError::CpusShared {
            index: 1,
            other: 0,
            cpu: 1
        }
    );
    assert_eq!(error.cpu(), Some(1));
}

#[test]
fn empty_kernel_is_refused() {
    let work = PersonalityConfig {
        kernel: &[],
        ..work()
    };
    let error = check(&[personal(), work]).unwrap_err();
    assert_eq!(error, ConfigError::KernelEmpty { index: 1 });
    assert_eq!(error.field(), Some(Field::Kernel));
}

#[test]
fn every_error_has_a_message() {
    let errors = [
        ConfigError::NoPersonalities,
        ConfigError::TooManyPersonalities { index: 2, max: 2 },
        ConfigError::NameEmpty { index: 0 },
        ConfigError::RamBaseOverflow {
            index: 0,
            ram_base: 1,
        },
        ConfigError::CpuOutOfRange {
            index: 0,
            cpu: 5,
            physical_cpus: 4,
        },
        ConfigError::CpusShared {
            index: 1,
            other: 0,
            cpu: 2,
        },
    ];
    for error in errors {
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(
        errors[4].to_string(),
        "CPU 5 does not exist: the machine has 4 physical CPUs (0 to 3)"
    );
}

#[test]
fn volume_is_optional() {
    let work = PersonalityConfig {
        volume_mib: None,
        ..work()
    };
    assert_eq!(check(&[personal(), work]), Ok(()));
}

#[test]
fn volume_sizes_are_bounded() {
    for volume_mib in [VOLUME_MIN_MIB, 256, VOLUME_MAX_MIB] {
        let work = PersonalityConfig {
            volume_mib: Some(volume_mib),
            ..work()
        };
        assert_eq!(check(&[personal(), work]), Ok(()), "{volume_mib}");
    }
    for volume_mib in [0, VOLUME_MIN_MIB - 1] {
        let work = PersonalityConfig {
            volume_mib: Some(volume_mib),
            ..work()
        };
        let error = ConfigError::VolumeTooSmall {
            index: 1,
            volume_mib,
        };
        assert_eq!(check(&[personal(), work]), Err(error));
        assert_eq!(error.field(), Some(Field::Volume));
        assert_eq!(error.personality(), Some(1));
    }
    let work = PersonalityConfig {
        volume_mib: Some(VOLUME_MAX_MIB + 1),
        ..work()
    };
    assert_eq!(
        check(&[personal(), work]),
        Err(ConfigError::VolumeTooLarge {
            index: 1,
            volume_mib: VOLUME_MAX_MIB + 1
        })
    );
    assert_eq!(
        ConfigError::VolumeTooSmall {
            index: 0,
            volume_mib: 8
        }
        .to_string(),
        "volume_mib = 8 is below the 16 MiB an ext4 volume needs"
    );
}

#[test]
fn disk_partition_names_are_reserved() {
    for name in RESERVED_NAMES {
        let work = PersonalityConfig { name, ..work() };
        let error = ConfigError::NameReserved { index: 1 };
        assert_eq!(check(&[personal(), work]), Err(error), "{name}");
        assert_eq!(error.field(), Some(Field::Name));
    }
    // Only the exact names: a personality may be called "shared-2".
    let work = PersonalityConfig {
        name: "shared-2",
        ..work()
    };
    assert_eq!(check(&[personal(), work]), Ok(()));
}

#[test]
fn default_disk_passes() {
    assert_eq!(
        validate_disk(&[personal(), work()], &DiskConfig::default()),
        Ok(())
    );
    assert_eq!(
        DiskConfig::default(),
        DiskConfig {
            shared_mib: 64,
            janus_mib: 8
        }
    );
}

#[test]
fn disk_partition_sizes_are_bounded() {
    let cases = [
        (DiskPartition::Shared, VOLUME_MIN_MIB - 1),
        (DiskPartition::Shared, VOLUME_MAX_MIB + 1),
        (DiskPartition::Janus, 0),
        (DiskPartition::Janus, JANUS_MIN_MIB - 1),
        (DiskPartition::Janus, JANUS_MAX_MIB + 1),
    ];
    for (partition, mib) in cases {
        let disk = match partition {
            DiskPartition::Shared => DiskConfig {
                shared_mib: mib,
                ..DiskConfig::DEFAULT
            },
            DiskPartition::Janus => DiskConfig {
                janus_mib: mib,
                ..DiskConfig::DEFAULT
            },
        };
        let error = ConfigError::DiskPartitionSize { partition, mib };
        assert_eq!(validate_disk(&[personal()], &disk), Err(error));
        assert_eq!(error.personality(), None);
    }
    assert_eq!(
        ConfigError::DiskPartitionSize {
            partition: DiskPartition::Janus,
            mib: 0
        }
        .field(),
        Some(Field::DiskJanus)
    );
    assert_eq!(
        ConfigError::DiskPartitionSize {
            partition: DiskPartition::Shared,
            mib: 2
        }
        .to_string(),
        "shared_mib = 2 is outside 16 to 1048576 MiB"
    );
    let smallest = DiskConfig {
        shared_mib: VOLUME_MIN_MIB,
        janus_mib: JANUS_MIN_MIB,
    };
    assert_eq!(validate_disk(&[personal()], &smallest), Ok(()));
    // The first MiB of `janus` is reserved; the audit log needs at least one more.
    assert_eq!(JANUS_MIN_MIB, 2);
}

#[test]
fn whole_disk_must_fit() {
    let big = |name| PersonalityConfig {
        name,
        volume_mib: Some(VOLUME_MAX_MIB),
        ..personal()
    };
    // Two 1 TiB volumes, 64 MiB shared, 8 MiB janus and 2 MiB of GPT.
    let total_mib = 2 * u64::from(VOLUME_MAX_MIB) + 64 + 8 + DISK_OVERHEAD_MIB;
    let error = ConfigError::DiskTooLarge { total_mib };
    assert_eq!(
        validate_disk(&[big("personal"), big("work")], &DiskConfig::DEFAULT),
        Err(error)
    );
    assert_eq!(error.personality(), None);
    assert_eq!(error.field(), None);
    assert_eq!(
        validate_disk(&[big("personal")], &DiskConfig::DEFAULT),
        Ok(())
    );
}

//! SMC Calling Convention: sorting a guest's HVC/SMC into PSCI, Arm architecture
//! calls and Janus' own hypercalls (SMCCC v1.4, DEN0028; PSCI 1.1, DEN0022).

use smccc::arch::{SMCCC_ARCH_FEATURES, SMCCC_VERSION};
use smccc::psci::{
    PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64, PSCI_CPU_OFF, PSCI_CPU_ON_32, PSCI_CPU_ON_64,
    PSCI_FEATURES, PSCI_MIGRATE_INFO_TYPE, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_VERSION,
};

/// Janus' hypercalls, in the SMCCC "vendor specific hypervisor service" range
/// (owner 6). See `docs/hypercalls.md`.
pub mod hypercall {
    /// Returns Janus' ABI version: major in bits [31:16], minor in [15:0].
    pub const VERSION: u32 = 0xC600_0000;
    /// Writes `x2` bytes at guest address `x1` to the console; returns the count.
    pub const CONSOLE_WRITE: u32 = 0xC600_0001;
    /// Does nothing and returns 0: the round trip benchmark.
    pub const NULL: u32 = 0xC600_0002;
    /// SMCCC standard query: number of calls in this service.
    pub const CALL_COUNT: u32 = 0x8600_FF00;
    /// SMCCC standard query: the service's UID, in x0-x3.
    pub const CALL_UID: u32 = 0x8600_FF01;
    /// SMCCC standard query: the service's revision, major in x0 and minor in x1.
    pub const REVISION: u32 = 0x8600_FF03;
    /// The ABI version `VERSION` returns: 1.0.
    pub const ABI_VERSION: u64 = 1 << 16;
    /// Largest buffer one `CONSOLE_WRITE` takes.
    pub const CONSOLE_WRITE_MAX_BYTES: u64 = 4096;
    /// Janus' service UID, 6a616e75-732d-4879-702d-454c32000001, as SMCCC returns it
    /// (four 32-bit words in x0-x3).
    pub const UID: [u64; 4] = [0x756e_616a, 0x7948_2d73, 0x4c45_2d70, 0x0100_0032];
}

/// TRNG_VERSION and TRNG_FEATURES (Arm DEN0098, the SMCCC True Random Number
/// Generator interface): how a guest asks whether the service exists.
const TRNG_VERSION: u32 = 0x8400_0050;
const TRNG_FEATURES: u32 = 0x8400_0051;

/// One SMCCC call a guest made, with its arguments taken apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// PSCI_VERSION.
    PsciVersion,
    /// PSCI_FEATURES for a function ID.
    PsciFeatures { function: u32 },
    /// CPU_ON (32- or 64-bit).
    CpuOn {
        target: u64,
        entry: u64,
        context: u64,
    },
    /// CPU_OFF.
    CpuOff,
    /// AFFINITY_INFO (32- or 64-bit).
    AffinityInfo { target: u64, lowest_level: u64 },
    /// MIGRATE_INFO_TYPE.
    MigrateInfoType,
    /// SYSTEM_OFF.
    SystemOff,
    /// SYSTEM_RESET.
    SystemReset,
    /// SMCCC_VERSION.
    SmcccVersion,
    /// SMCCC_ARCH_FEATURES for a function ID.
    SmcccArchFeatures { function: u32 },
    /// Janus: ABI version.
    HypVersion,
    /// Janus: console write of `len` bytes at guest address `ipa`.
    ConsoleWrite { ipa: u64, len: u64 },
    /// Janus: null call.
    Null,
    /// Janus: standard call count query.
    HypCallCount,
    /// Janus: standard UID query.
    HypCallUid,
    /// Janus: standard revision query.
    HypRevision,
    /// A discovery call of a standard service Janus does not offer (the SMCCC
    /// TRNG's version and features queries, which Linux makes at every boot):
    /// NOT_SUPPORTED, without a report.
    UnofferedService { function: u32 },
    /// Anything else; answered NOT_SUPPORTED and never passed to the firmware.
    Unknown { function: u32 },
}

/// Sorts the call in `x0`..`x7`.
///
/// SMC32 calls take their arguments from the low 32 bits of each register
/// (SMCCC §2.6), so 32-bit variants are truncated here on purpose.
pub fn classify(args: &[u64; 8]) -> Call {
    let [x0, x1, x2, x3, ..] = *args;
    let low = |value: u64| value & u64::from(u32::MAX);
    // SMCCC §2.5: bits [63:32] of W0 are ignored for the function ID.
    let function = (x0 & u64::from(u32::MAX)) as u32;
    match function {
        PSCI_VERSION => Call::PsciVersion,
        PSCI_FEATURES => Call::PsciFeatures {
            function: low(x1) as u32,
        },
        PSCI_CPU_ON_64 => Call::CpuOn {
            target: x1,
            entry: x2,
            context: x3,
        },
        PSCI_CPU_ON_32 => Call::CpuOn {
            target: low(x1),
            entry: low(x2),
            context: low(x3),
        },
        PSCI_CPU_OFF => Call::CpuOff,
        PSCI_AFFINITY_INFO_64 => Call::AffinityInfo {
            target: x1,
            lowest_level: x2,
        },
        PSCI_AFFINITY_INFO_32 => Call::AffinityInfo {
            target: low(x1),
            lowest_level: low(x2),
        },
        PSCI_MIGRATE_INFO_TYPE => Call::MigrateInfoType,
        PSCI_SYSTEM_OFF => Call::SystemOff,
        PSCI_SYSTEM_RESET => Call::SystemReset,
        SMCCC_VERSION => Call::SmcccVersion,
        SMCCC_ARCH_FEATURES => Call::SmcccArchFeatures {
            function: low(x1) as u32,
        },
        hypercall::VERSION => Call::HypVersion,
        hypercall::CONSOLE_WRITE => Call::ConsoleWrite { ipa: x1, len: x2 },
        hypercall::NULL => Call::Null,
        hypercall::CALL_COUNT => Call::HypCallCount,
        hypercall::CALL_UID => Call::HypCallUid,
        hypercall::REVISION => Call::HypRevision,
        TRNG_VERSION | TRNG_FEATURES => Call::UnofferedService { function },
        function => Call::Unknown { function },
    }
}

/// Whether PSCI_FEATURES should report `function` as implemented.
pub fn psci_implements(function: u32) -> bool {
    matches!(
        function,
        PSCI_VERSION
            | PSCI_FEATURES
            | PSCI_CPU_ON_32
            | PSCI_CPU_ON_64
            | PSCI_CPU_OFF
            | PSCI_AFFINITY_INFO_32
            | PSCI_AFFINITY_INFO_64
            | PSCI_MIGRATE_INFO_TYPE
            | PSCI_SYSTEM_OFF
            | PSCI_SYSTEM_RESET
            | SMCCC_VERSION
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(x: [u64; 4]) -> Call {
        classify(&[x[0], x[1], x[2], x[3], 0, 0, 0, 0])
    }

    #[test]
    fn cpu_on_64_keeps_full_registers() {
        assert_eq!(
            call([0xC400_0003, 1, 0x1_4000_0000, 0xffff_0000_0000_0001]),
            Call::CpuOn {
                target: 1,
                entry: 0x1_4000_0000,
                context: 0xffff_0000_0000_0001
            }
        );
    }

    #[test]
    fn cpu_on_32_ignores_upper_halves() {
        assert_eq!(
            call([0x8400_0003, 0xdead_0000_0000_0001, 0x1_4000_0000, 7]),
            Call::CpuOn {
                target: 1,
                entry: 0x4000_0000,
                context: 7
            }
        );
    }

    #[test]
    fn function_id_upper_bits_are_ignored() {
        assert_eq!(call([0xffff_ffff_8400_0000, 0, 0, 0]), Call::PsciVersion);
    }

    #[test]
    fn janus_calls_are_recognised() {
        assert_eq!(call([0xC600_0002, 0, 0, 0]), Call::Null);
        assert_eq!(
            call([0xC600_0001, 0x4000_1000, 12, 0]),
            Call::ConsoleWrite {
                ipa: 0x4000_1000,
                len: 12
            }
        );
        assert_eq!(call([0x8600_FF01, 0, 0, 0]), Call::HypCallUid);
    }

    #[test]
    fn firmware_and_unknown_calls_are_unknown() {
        // A SiP service call meant for the firmware, and a made-up hypervisor call.
        assert_eq!(
            call([0xC200_0001, 0, 0, 0]),
            Call::Unknown {
                function: 0xC200_0001
            }
        );
        assert_eq!(
            call([0xC600_00FF, 0, 0, 0]),
            Call::Unknown {
                function: 0xC600_00FF
            }
        );
    }

    #[test]
    fn trng_discovery_is_an_unoffered_service_but_other_trng_calls_are_unknown() {
        assert_eq!(
            call([0x8400_0050, 0, 0, 0]),
            Call::UnofferedService {
                function: 0x8400_0050
            }
        );
        assert_eq!(
            call([0xC400_0053, 0, 0, 0]),
            Call::Unknown {
                function: 0xC400_0053
            }
        );
    }

    #[test]
    fn features_reports_only_what_is_implemented() {
        assert!(psci_implements(PSCI_CPU_ON_64));
        assert!(!psci_implements(0xC400_0001)); // CPU_SUSPEND
        assert!(!psci_implements(0xC600_0002));
    }
}

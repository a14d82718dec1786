//! Stage-2 descriptor attributes: memory kind and access permissions.

use aarch64_paging::descriptor::Stage2Attributes;

/// Memory type bits (`MemAttr[3:0]`, descriptor bits [5:2]).
pub(super) const MEMATTR_MASK: Stage2Attributes =
    Stage2Attributes::MEMATTR_NORMAL_INNER_WB.union(Stage2Attributes::MEMATTR_NORMAL_OUTER_WB);

/// Shareability bits (`SH[1:0]`, descriptor bits [9:8]).
pub(super) const SH_MASK: Stage2Attributes = Stage2Attributes::SH_INNER;

/// Access permission bits (`S2AP[1:0]`, descriptor bits [7:6]).
pub(super) const S2AP_MASK: Stage2Attributes = Stage2Attributes::S2AP_ACCESS_RW;

/// Every bit a permission change may touch.
pub(super) const PERMISSION_MASK: Stage2Attributes = S2AP_MASK.union(Stage2Attributes::XN);

/// What kind of memory a region is, which fixes its stage-2 memory attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemKind {
    /// RAM: Normal memory, inner and outer write-back cacheable, inner shareable.
    Normal,
    /// MMIO: Device-nGnRE (no gathering, no reordering, early write acknowledgement).
    Device,
}

impl MemKind {
    /// Returns the `MemAttr` and `SH` bits for this kind.
    pub(super) fn attributes(self) -> Stage2Attributes {
        match self {
            Self::Normal => {
                Stage2Attributes::MEMATTR_NORMAL_INNER_WB
                    | Stage2Attributes::MEMATTR_NORMAL_OUTER_WB
                    | Stage2Attributes::SH_INNER
            }
            // Device memory is always treated as outer shareable, so SH stays 0.
            Self::Device => Stage2Attributes::MEMATTR_DEVICE_nGnRE,
        }
    }

    /// Recognises the attributes `attributes` wrote, or `None` for any other encoding.
    pub(super) fn from_descriptor(flags: Stage2Attributes) -> Option<Self> {
        let memory_bits = flags & (MEMATTR_MASK | SH_MASK);
        [Self::Normal, Self::Device]
            .into_iter()
            .find(|kind| kind.attributes() == memory_bits)
    }
}

/// What a guest may do with a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Perm {
    /// Read, write and execute.
    ReadWriteExecute,
    /// Read and write; execute-never.
    ReadWrite,
    /// Read only; execute-never.
    ReadOnly,
    /// Read and execute, no write.
    ReadExecute,
}

impl Perm {
    /// Returns whether the guest may write.
    #[must_use]
    pub fn is_writable(self) -> bool {
        matches!(self, Self::ReadWriteExecute | Self::ReadWrite)
    }

    /// Returns whether the guest may execute.
    #[must_use]
    pub fn is_executable(self) -> bool {
        matches!(self, Self::ReadWriteExecute | Self::ReadExecute)
    }

    /// Returns the `S2AP` and `XN` bits for this permission.
    pub(super) fn attributes(self) -> Stage2Attributes {
        let access = if self.is_writable() {
            Stage2Attributes::S2AP_ACCESS_RW
        } else {
            Stage2Attributes::S2AP_ACCESS_RO
        };
        if self.is_executable() {
            access
        } else {
            access | Stage2Attributes::XN
        }
    }

    /// Recognises the bits `attributes` wrote, or `None` for any other encoding.
    pub(super) fn from_descriptor(flags: Stage2Attributes) -> Option<Self> {
        let permission_bits = flags & PERMISSION_MASK;
        [
            Self::ReadWriteExecute,
            Self::ReadWrite,
            Self::ReadOnly,
            Self::ReadExecute,
        ]
        .into_iter()
        .find(|perm| perm.attributes() == permission_bits)
    }
}

/// Returns the attributes of a valid leaf (block or page) for `kind` and `perm`. The access flag
/// is set up front: Janus does not track accesses, and a clear AF would fault on first use.
pub(super) fn leaf_attributes(kind: MemKind, perm: Perm) -> Stage2Attributes {
    Stage2Attributes::VALID | Stage2Attributes::ACCESS_FLAG | kind.attributes() | perm.attributes()
}

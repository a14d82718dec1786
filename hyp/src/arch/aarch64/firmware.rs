//! Calls from Janus to the platform firmware's PSCI (DEN0022), over the conduit
//! the boot device tree names.

use smccc::{Hvc, Smc};
use spin::Once;

/// How the firmware takes PSCI calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// `smc #0` (EL3 firmware, or QEMU's built-in PSCI with virtualization=on).
    Smc,
    /// `hvc #0`: only meaningful below a hypervisor, so Janus cannot use it.
    Hvc,
}

/// Set once by the boot CPU from `/psci/method`, read by all.
static CONDUIT: Once<Conduit> = Once::new();

/// Records the firmware conduit.
pub fn set_conduit(conduit: Conduit) {
    CONDUIT.call_once(|| conduit);
}

/// Starts physical CPU `mpidr` at `entry` with `x0 = context`.
///
/// # Errors
/// The firmware's PSCI error.
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> Result<(), smccc::psci::Error> {
    match CONDUIT.get() {
        Some(Conduit::Hvc) => smccc::psci::cpu_on::<Hvc>(mpidr, entry, context),
        _ => smccc::psci::cpu_on::<Smc>(mpidr, entry, context),
    }
}

/// Powers the board off. Returns only if the firmware refuses.
pub fn system_off() {
    let _ = match CONDUIT.get() {
        Some(Conduit::Hvc) => smccc::psci::system_off::<Hvc>(),
        _ => smccc::psci::system_off::<Smc>(),
    };
}

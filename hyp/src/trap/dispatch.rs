//! Routes a decoded exit to its handler. The one place that moves the guest's PC
//! past a trapped instruction, and the one place that decides to inject a fault.

use core::fmt;

use ::smccc::psci::error::{
    ALREADY_ON, INVALID_ADDRESS, INVALID_PARAMETERS, NOT_SUPPORTED, ON_PENDING, SUCCESS,
};

use super::esr::{Exit, MmioAccess, SysRegAccess};
use super::inject::{self, GuestState, Injection};
use super::smccc::{self, hypercall, Call};
use crate::console::ratelimit::Cause;
use crate::dev::bus::{Route, Target};
use crate::dev::vgic::VirtualGic;
use crate::dev::DevError;
use crate::vm::devices::Effects;
use crate::vm::vcpu::{CpuOnError, ExitCause, GuestRegs, PowerState};
use crate::vm::{Personality, VmState};

/// What the physical CPU does after an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Return to the guest.
    Resume,
    /// This vCPU is off (or its personality stopped): go idle.
    Idle,
}

/// What the dispatcher needs from the CPU and the rest of Janus. The aarch64
/// implementation touches registers and devices; tests use a fake.
pub trait Services {
    /// Writes the EL1 exception state of an injected exception.
    fn inject(&mut self, injection: &Injection);
    /// The guest's VBAR_EL1.
    fn vbar_el1(&self) -> u64;
    /// Copies `personality`'s RAM at `ipa` into `buffer`; the caller has checked the range.
    fn copy_from_guest(&self, personality: &Personality, ipa: u64, buffer: &mut [u8]);
    /// Writes `data` into `personality`'s RAM at `ipa` while it runs (a device
    /// completing a request); the caller has checked the range and prepared it.
    fn write_to_guest(&mut self, personality: &Personality, ipa: u64, data: &[u8]);
    /// Makes `[ipa, ipa + len)` of `personality`'s RAM ready for a device to
    /// read or write directly: chunks not touched since its start are cleared
    /// and mapped first (else the guest's first touch would clear what the
    /// device wrote). The caller has checked the range is its RAM; `false` when
    /// it could not be made ready.
    fn prepare_for_device(&mut self, personality: &Personality, ipa: u64, len: u64) -> bool;
    /// Orders this CPU's guest-memory accesses before it against those after
    /// it, as the guest's other CPUs see them (a device's ring updates).
    fn guest_memory_fence(&mut self);
    /// Shows one complete line of a personality's console hypercall output,
    /// through the console multiplexer like its UART output.
    fn console_line(&mut self, personality: &Personality, line: &[u8]);
    /// Interrupts physical CPU `pcpu` so it looks at its vCPU's state again.
    fn kick(&mut self, pcpu: usize);
    /// Sleeps until an interrupt is pending (a trapped WFI).
    fn wait_for_interrupt(&mut self);
    /// Whether this CPU's list registers hold an interrupt pending for the guest.
    fn listed_interrupt_pending(&self) -> bool;
    /// Shows bytes a personality wrote to its virtual UART (through the console multiplexer).
    fn uart_output(&mut self, personality: &Personality, bytes: &[u8]);
    /// Another vCPU of the running personality is turning on: this vCPU's TLB
    /// maintenance must reach it from now on (stop doing it locally, see
    /// `trap/tlbi.rs`).
    fn share_tlb_maintenance(&mut self);
    /// Prints a `[janus]` line.
    fn report(&mut self, message: fmt::Arguments);
    /// Prints a `[janus]` line that `personality` caused, within its rate
    /// limit for `cause` (`console/ratelimit.rs`): a guest that repeats the
    /// same mistake in a loop makes a few lines, then a count.
    fn guest_report(&mut self, personality: &Personality, cause: Cause, message: fmt::Arguments);
    /// Prints the counts of `personality`'s suppressed reports now, whatever
    /// the rate (it stopped: nothing more is owed after this).
    fn settle_reports(&mut self, personality: &Personality);
    /// Prints the guest's EL1 state (a personality that cannot go on).
    fn report_guest_state(&mut self, personality: &Personality, regs: &GuestRegs);
    /// Drives `vcpu`'s timer PPIs in `vgic` with the timers' outputs now, before
    /// the guest reads or changes the interrupt controller (under the devices lock).
    fn sample_timers(&mut self, vgic: &mut dyn VirtualGic, vcpu: usize);
    /// Under the devices lock, after a device access: brings this CPU's list
    /// registers and `vgic` in step (all of it when the access was to the
    /// interrupt controller, else only what a device changed for this vCPU),
    /// and keeps what must wait for the lock's release.
    fn sync_vgic(&mut self, vgic: &mut dyn VirtualGic, vcpu: usize, interrupt_controller: bool);
    /// After the devices lock is released: finishes what `sync_vgic` kept (list
    /// register writes, physical deactivations, kicks of other vCPUs).
    fn finish_vgic_sync(&mut self, personality: &Personality, vcpu: usize);
}

/// Size of an A64 instruction; trapped SMC, sysreg accesses and WFx return past it.
pub const INSTRUCTION_BYTES: u64 = 4;

/// The statistics bucket of an exit.
fn exit_cause(exit: &Exit) -> ExitCause {
    match exit {
        Exit::Hvc { .. } => ExitCause::Hvc,
        Exit::Smc { .. } => ExitCause::Smc,
        Exit::Mmio(_) => ExitCause::Mmio,
        Exit::SysReg(_) => ExitCause::SysReg,
        Exit::Wfx { wfe: false } => ExitCause::Wfi,
        Exit::Wfx { wfe: true } => ExitCause::Wfe,
        Exit::DataAbort(_)
        | Exit::InstructionAbort(_)
        | Exit::FpAccess
        | Exit::Unhandled { .. } => ExitCause::Fault,
    }
}

/// Handles one synchronous exit of vCPU `vcpu` of `vm`; `far` is FAR_EL2 (the
/// guest's virtual address of an abort), which an injected abort reports.
pub fn handle_exit(
    regs: &mut GuestRegs,
    exit: Exit,
    far: u64,
    vm: &Personality,
    vcpu: usize,
    services: &mut dyn Services,
) -> Action {
    if let Some(slot) = vm.vcpus.get(vcpu) {
        slot.exits.count(exit_cause(&exit));
    }
    match exit {
        Exit::Hvc { .. } => hypercall(regs, vm, vcpu, services),
        Exit::Smc { .. } => {
            // A trapped SMC leaves ELR_EL2 on the SMC itself (Arm ARM D1.10.2:
            // the preferred return is the trapped instruction), unlike HVC.
            regs.pc = regs.pc.wrapping_add(INSTRUCTION_BYTES);
            hypercall(regs, vm, vcpu, services)
        }
        Exit::Wfx { wfe } => {
            // WFI wakes on a pending virtual interrupt too, masked or not: only
            // sleep when none is waiting for this vCPU.
            if !wfe && !services.listed_interrupt_pending() && !deliverable(vm, vcpu) {
                services.wait_for_interrupt();
            }
            regs.pc = regs.pc.wrapping_add(INSTRUCTION_BYTES);
            Action::Resume
        }
        Exit::Mmio(access) => match vm.bus.route(access.ipa) {
            Some(route) => {
                emulate_mmio(regs, &access, route, vm, vcpu, services);
                Action::Resume
            }
            None => {
                // No device backs this address: the access cannot be honoured.
                let fault_kind = Fault::Data {
                    ipa: Some(access.ipa),
                    far,
                    write: access.write,
                };
                fault(regs, vm, services, fault_kind)
            }
        },
        Exit::SysReg(access) if is_sgi_register(&access) && vm.devices.is_some() => {
            if !access.read {
                // ICC_SGI1R_EL1 raises SGIs; ICC_ASGI1R_EL1 (the other security
                // state) and ICC_SGI0R_EL1 (Group 0) have nothing to reach in a
                // single-security-state guest and are ignored.
                if access.op2 == SGI1R_OP2 {
                    if let Some(devices) = &vm.devices {
                        devices
                            .lock()
                            .vgic
                            .sgi_register_write(vcpu, regs.get(access.rt));
                    }
                }
                regs.pc = regs.pc.wrapping_add(INSTRUCTION_BYTES);
                Action::Resume
            } else {
                fault(regs, vm, services, Fault::Undefined)
            }
        }
        Exit::DataAbort(abort) => {
            let fault_kind = Fault::Data {
                ipa: abort.ipa,
                far: abort.far.unwrap_or(far),
                write: abort.write,
            };
            fault(regs, vm, services, fault_kind)
        }
        Exit::InstructionAbort(abort) => {
            let vbar = services.vbar_el1();
            if inject::is_vector_address(vbar, regs.pc) {
                // It faulted fetching its own exception vector: injecting again
                // would loop forever, so this personality cannot recover.
                services.report(format_args!(
                    "{}: instruction abort at its exception vector {:#x}; stopping it",
                    vm.name, regs.pc
                ));
                services.report_guest_state(vm, regs);
                stop(vm, VmState::Off, services);
                return Action::Idle;
            }
            let fault_kind = Fault::Instruction {
                ipa: abort.ipa,
                far: abort.far.unwrap_or(far),
            };
            fault(regs, vm, services, fault_kind)
        }
        Exit::SysReg(_) | Exit::FpAccess | Exit::Unhandled { .. } => {
            fault(regs, vm, services, Fault::Undefined)
        }
    }
}

/// A guest access Janus cannot honour. `ipa` is what Janus reports (absent when
/// the syndrome names none); `far` is the guest virtual address the injected
/// abort carries in FAR_EL1.
/// ICC_SGI1R_EL1, ICC_ASGI1R_EL1 and ICC_SGI0R_EL1 are op0 3, op1 0, CRn 12,
/// CRm 11, op2 5, 6 and 7 (GICv3, IHI 0069 §12.2); with HCR_EL2.IMO set their
/// writes from EL1 trap to EL2.
fn is_sgi_register(access: &SysRegAccess) -> bool {
    (access.op0, access.op1, access.crn, access.crm) == (3, 0, 12, 11)
        && (SGI1R_OP2..=SGI0R_OP2).contains(&access.op2)
}

/// op2 of ICC_SGI1R_EL1.
const SGI1R_OP2: u8 = 5;
/// op2 of ICC_SGI0R_EL1.
const SGI0R_OP2: u8 = 7;

/// Whether the vGIC holds an interrupt `vcpu` could take.
fn deliverable(vm: &Personality, vcpu: usize) -> bool {
    vm.devices
        .as_ref()
        .is_some_and(|devices| devices.lock().vgic.has_deliverable(vcpu))
}

/// Emulates a load or store to the device register `route` names (the bus
/// routed it: the address is decoded once) and steps past it. The device's lock
/// is taken once; the list registers are brought in step under it.
fn emulate_mmio(
    regs: &mut GuestRegs,
    access: &MmioAccess,
    route: Route,
    vm: &Personality,
    vcpu: usize,
    services: &mut dyn Services,
) {
    let write = (access.write).then(|| regs.get(access.reg));
    let mut effects = Effects::default();
    let result = match &vm.devices {
        _ if matches!(route.target, Target::Block | Target::Shared) => {
            super::virtio::access(vm, vcpu, route, access.width, write, services)
        }
        Some(devices) => {
            let mut devices = devices.lock();
            let interrupt_controller = route.target.is_interrupt_controller();
            if interrupt_controller {
                // A read of the pending state must see the timers as they are now.
                services.sample_timers(devices.vgic.as_mut(), vcpu);
            }
            let result = devices.access(route, access.width, write, &mut effects);
            services.sync_vgic(devices.vgic.as_mut(), vcpu, interrupt_controller);
            drop(devices);
            services.finish_vgic_sync(vm, vcpu);
            result
        }
        None => Err(DevError::UnknownRegister),
    };
    if !effects.output.is_empty() {
        services.uart_output(vm, &effects.output);
    }
    if let Err(error) = result {
        services.guest_report(
            vm,
            Cause::DeviceRegister,
            format_args!(
                "{}: {:?} on device register {:#x}; read as zero, write ignored",
                vm.name, error, access.ipa
            ),
        );
    }
    if !access.write {
        regs.set(access.reg, load_value(access, result.unwrap_or(0)));
    }
    regs.pc = regs.pc.wrapping_add(INSTRUCTION_BYTES);
}

/// The register value of a load: sign-extended when the instruction asks
/// (ISS.SSE), to 32 bits for a W register (ISS.SF clear).
fn load_value(access: &MmioAccess, value: u64) -> u64 {
    let bits = (access.width.bytes() * 8) as u32;
    let mut value = if bits < 64 {
        value & ((1u64 << bits) - 1)
    } else {
        value
    };
    if access.sign_extend && bits < 64 {
        let shift = 64 - bits;
        value = (((value << shift) as i64) >> shift) as u64;
    }
    if !access.sixty_four {
        value &= u64::from(u32::MAX);
    }
    value
}

enum Fault {
    Data {
        ipa: Option<u64>,
        far: u64,
        write: bool,
    },
    Instruction {
        ipa: Option<u64>,
        far: u64,
    },
    Undefined,
}

fn fault(
    regs: &mut GuestRegs,
    vm: &Personality,
    services: &mut dyn Services,
    fault: Fault,
) -> Action {
    let guest = GuestState {
        pc: regs.pc,
        pstate: regs.pstate,
        vbar_el1: services.vbar_el1(),
    };
    let injection = match fault {
        Fault::Data { ipa, far, write } => {
            services.guest_report(
                vm,
                Cause::RefusedAccess,
                format_args!(
                    "{}: {} of IPA {:#x} at pc {:#x} refused; data abort injected",
                    vm.name,
                    if write { "write" } else { "read" },
                    ipa.unwrap_or(far),
                    regs.pc
                ),
            );
            inject::data_abort(&guest, far, write)
        }
        Fault::Instruction { ipa, far } => {
            services.guest_report(
                vm,
                Cause::RefusedAccess,
                format_args!(
                    "{}: instruction fetch from IPA {:#x} refused; prefetch abort injected",
                    vm.name,
                    ipa.unwrap_or(far)
                ),
            );
            inject::instruction_abort(&guest, far)
        }
        Fault::Undefined => {
            services.guest_report(
                vm,
                Cause::Undefined,
                format_args!(
                    "{}: unsupported instruction at pc {:#x}; undefined instruction injected",
                    vm.name, regs.pc
                ),
            );
            inject::undefined(&guest)
        }
    };
    services.inject(&injection);
    regs.pc = injection.new_pc;
    regs.pstate = injection.new_pstate;
    Action::Resume
}

/// Stops `vm` (for good, or to restart it) and interrupts its other vCPUs;
/// the counts of its suppressed reports are shown first.
pub fn stop(vm: &Personality, state: VmState, services: &mut dyn Services) {
    services.settle_reports(vm);
    for pcpu in vm.stop(state) {
        services.kick(pcpu);
    }
}

fn psci_code(code: i32) -> u64 {
    i64::from(code) as u64
}

/// Handles an SMCCC call (HVC, or a trapped SMC whose PC was already advanced).
///
/// The exit path calls this directly for HVC, ahead of the full syndrome
/// decode. Janus' null call is answered before anything else: it exists to
/// measure the bare exit and return, so it must not pay for the rest.
#[inline]
pub fn hypercall(
    regs: &mut GuestRegs,
    vm: &Personality,
    vcpu: usize,
    services: &mut dyn Services,
) -> Action {
    if regs.x[0] & u64::from(u32::MAX) == u64::from(hypercall::NULL) {
        regs.x[0] = 0;
        return Action::Resume;
    }
    smccc_call(regs, vm, vcpu, services)
}

#[inline(never)]
fn smccc_call(
    regs: &mut GuestRegs,
    vm: &Personality,
    vcpu: usize,
    services: &mut dyn Services,
) -> Action {
    let call = smccc::classify(regs.smccc_args());
    let result = match call {
        Call::Null => 0,
        Call::HypVersion => hypercall::ABI_VERSION,
        Call::ConsoleWrite { ipa, len } => console_write(vm, ipa, len, services),
        Call::HypCallCount => 3,
        Call::HypCallUid => {
            regs.set_smccc_result(hypercall::UID);
            return Action::Resume;
        }
        Call::HypRevision => {
            regs.set_smccc_result([1, 0, 0, 0]);
            return Action::Resume;
        }
        Call::PsciVersion => PSCI_VERSION_1_1,
        Call::SmcccVersion => SMCCC_VERSION_1_1,
        Call::PsciFeatures { function } => {
            if smccc::psci_implements(function) {
                psci_code(SUCCESS)
            } else {
                psci_code(NOT_SUPPORTED)
            }
        }
        Call::SmcccArchFeatures { .. } | Call::UnofferedService { .. } => psci_code(NOT_SUPPORTED),
        // MIGRATE_INFO_TYPE 2: no Trusted OS that needs migration (PSCI 1.1 §5.7.2).
        Call::MigrateInfoType => 2,
        Call::CpuOn {
            target,
            entry,
            context,
        } => cpu_on(vm, target, entry, context, services),
        Call::AffinityInfo {
            target,
            lowest_level,
        } => affinity_info(vm, target, lowest_level),
        Call::CpuOff => {
            if let Some(slot) = vm.vcpus.get(vcpu) {
                slot.power_off();
            }
            return Action::Idle;
        }
        Call::SystemOff => {
            services.report(format_args!("{}: system off", vm.name));
            stop(vm, VmState::Off, services);
            return Action::Idle;
        }
        Call::SystemReset => {
            services.report(format_args!("{}: system reset", vm.name));
            stop(vm, VmState::Resetting, services);
            return Action::Idle;
        }
        Call::Unknown { function } => {
            services.guest_report(
                vm,
                Cause::UnknownCall,
                format_args!(
                    "{}: unknown SMCCC call {function:#010x} answered NOT_SUPPORTED",
                    vm.name
                ),
            );
            psci_code(NOT_SUPPORTED)
        }
    };
    regs.x[0] = result;
    Action::Resume
}

/// PSCI 1.1: major 1 in bits [31:16], minor 1 in [15:0].
const PSCI_VERSION_1_1: u64 = 0x0001_0001;
/// SMCCC 1.1, same encoding.
const SMCCC_VERSION_1_1: u64 = 0x0001_0001;

fn cpu_on(
    vm: &Personality,
    target: u64,
    entry: u64,
    context: u64,
    services: &mut dyn Services,
) -> u64 {
    let Some((_, slot)) = vm.vcpu_by_mpidr(target) else {
        services.guest_report(
            vm,
            Cause::RefusedCall,
            format_args!(
                "{}: CPU_ON for CPU {target:#x} it does not have refused",
                vm.name
            ),
        );
        return psci_code(INVALID_PARAMETERS);
    };
    if !vm.ram_contains(entry, INSTRUCTION_BYTES) {
        services.guest_report(
            vm,
            Cause::RefusedCall,
            format_args!(
                "{}: CPU_ON with entry {entry:#x} outside its RAM refused",
                vm.name
            ),
        );
        return psci_code(INVALID_ADDRESS);
    }
    match slot.request_on(entry, context) {
        Ok(()) => {
            services.share_tlb_maintenance();
            services.kick(slot.pcpu);
            psci_code(SUCCESS)
        }
        Err(CpuOnError::AlreadyOn) => psci_code(ALREADY_ON),
        Err(CpuOnError::OnPending) => psci_code(ON_PENDING),
    }
}

fn affinity_info(vm: &Personality, target: u64, lowest_level: u64) -> u64 {
    // Only level 0 (individual CPUs) is meaningful with one cluster of vCPUs.
    if lowest_level != 0 {
        return psci_code(INVALID_PARAMETERS);
    }
    match vm.vcpu_by_mpidr(target) {
        None => psci_code(INVALID_PARAMETERS),
        Some((_, slot)) => match slot.state() {
            PowerState::On => 0,
            PowerState::Off => 1,
            PowerState::OnPending | PowerState::Claimed => 2,
        },
    }
}

fn console_write(vm: &Personality, ipa: u64, len: u64, services: &mut dyn Services) -> u64 {
    if len > hypercall::CONSOLE_WRITE_MAX_BYTES || !vm.ram_contains(ipa, len) {
        services.guest_report(
            vm,
            Cause::RefusedCall,
            format_args!(
                "{}: console write of {len} bytes at {ipa:#x} outside its RAM refused",
                vm.name
            ),
        );
        return psci_code(INVALID_PARAMETERS);
    }
    let mut chunk = [0u8; 128];
    let mut done = 0u64;
    let mut line = vm.console.lock();
    while done < len {
        let take = core::cmp::min(len - done, chunk.len() as u64) as usize;
        let Some(buffer) = chunk.get_mut(..take) else {
            break;
        };
        services.copy_from_guest(vm, ipa + done, buffer);
        for &byte in buffer.iter() {
            if byte == b'\n' {
                services.console_line(vm, &line);
                line.clear();
            } else if byte != b'\r' && byte != 0 {
                line.push(byte);
                if line.len() >= crate::vm::personality::CONSOLE_LINE_BYTES {
                    services.console_line(vm, &line);
                    line.clear();
                }
            }
        }
        done += take as u64;
    }
    len
}

#[cfg(test)]
mod tests;

//! Running vCPUs: entering them, taking their exits, and idling in between.
//!
//! Each physical CPU runs at most one vCPU, pinned to it by the configuration.
//! When that vCPU is off the CPU waits for an interrupt (the kick SGI that
//! CPU_ON, SYSTEM_OFF or SYSTEM_RESET send), then looks at its state again.

use core::arch::asm;
use core::fmt;

use aarch64_cpu::registers::{
    ReadWriteable, Readable, Writeable, CNTHCTL_EL2, CNTVOFF_EL2, ESR_EL2, FAR_EL2, HCR_EL2,
    HPFAR_EL2, MIDR_EL1, VMPIDR_EL2, VTCR_EL2, VTTBR_EL2,
};

use super::boot;
use super::context::El1Context;
use super::exception::halt;
use super::vectors::{enter_guest, ExitKind};
use super::vgic_sync::{
    finish, involves_vgic_state, kick_vcpus, sample_timers, settle_locked, settle_vgic,
    sync_locked, update_vgic, Pending,
};
use super::{firmware, gic, hyp_timer, ich, key, memory, percpu, timer, uart};
use crate::console::ratelimit::{Cause, CAUSES};
use crate::dev::vgic::VirtualGic;
use crate::trap::dispatch::{self, Action, Services, INSTRUCTION_BYTES};
use crate::trap::esr;
use crate::trap::inject::Injection;
use crate::trap::tlbi::{self, TlbOperation};
use crate::vm::vcpu::{ExitCause, GuestRegs, EXIT_CAUSE_NAMES};
use crate::vm::{Personality, VmState};

/// CPTR_EL2 with nothing trapped: RES1 bits [13:12] and [9:0] set, TFP (bit 10) clear.
const CPTR_EL2_NO_TRAPS: u64 = 0x33ff;

/// Called by the exit path in `vectors.S` with the guest's registers saved.
///
/// Kept small: HVC, the hot path, is answered here; everything else goes to
/// `slow_exit`, so this function's prologue stays short.
#[unsafe(no_mangle)]
pub extern "C" fn handle_exit(_regs: *mut u8, kind: u64) {
    // SAFETY: the exit path is the only code running on this CPU, and the
    // references of the previous exit were abandoned at guest entry.
    let cpu = unsafe { percpu::current() };
    let Some(vm) = cpu.vm else {
        idle(cpu);
    };
    let syndrome = ESR_EL2.get();
    if kind == ExitKind::Sync as u64 && esr::exception_class(syndrome) == esr::EC_HVC64 {
        if let Some(slot) = vm.vcpus.get(cpu.vcpu) {
            slot.exits.count(ExitCause::Hvc);
        }
        let mut hardware = Hardware::default();
        if dispatch::hypercall(&mut cpu.regs, vm, cpu.vcpu, &mut hardware) == Action::Resume {
            return;
        }
        leave_vcpu(cpu.vm.take(), cpu.vcpu);
        idle(cpu);
    }
    other_exit(cpu, vm, kind, syndrome);
}

/// Every exit but a hypercall: trapped TLB maintenance (frequent while a
/// personality boots on one vCPU) and the first touch of a RAM chunk are
/// handled here at once, the rest goes to `slow_exit`. Apart from
/// `handle_exit` so that the hypercall path keeps its short prologue.
#[inline(never)]
fn other_exit(cpu: &mut percpu::PerCpu, vm: &'static Personality, kind: u64, syndrome: u64) {
    if kind == ExitKind::Sync as u64 {
        let class = esr::exception_class(syndrome);
        if class == esr::EC_SYS64 && tlb_maintenance_exit(cpu, vm, syndrome) {
            return;
        }
        let abort = class == esr::EC_DATA_ABORT_LOWER || class == esr::EC_INSTRUCTION_ABORT_LOWER;
        if let Some(ipa) = abort
            .then(|| esr::stage2_translation_fault(syndrome, HPFAR_EL2.get()))
            .flatten()
        {
            // The first touch of a RAM chunk since the start (`vm/ram.rs`): clear
            // it, map it and let the access run again.
            if boot::fill_on_touch(vm, ipa) {
                if let Some(slot) = vm.vcpus.get(cpu.vcpu) {
                    slot.exits.count(ExitCause::Ram);
                }
                return;
            }
        }
    }
    slow_exit(cpu, vm, kind, syndrome);
}

/// Performs a trapped TLB maintenance instruction and steps past it; `false`
/// when the trapped system instruction is something else.
fn tlb_maintenance_exit(cpu: &mut percpu::PerCpu, vm: &Personality, syndrome: u64) -> bool {
    let esr::Exit::SysReg(access) = esr::decode(syndrome, 0, 0) else {
        return false;
    };
    let Some(operation) = tlbi::classify(&access, cpu.regs.get(access.rt)) else {
        return false;
    };
    if let Some(slot) = vm.vcpus.get(cpu.vcpu) {
        slot.exits.count(ExitCause::Tlbi);
    }
    invalidate_locally(operation);
    cpu.regs.pc = cpu.regs.pc.wrapping_add(INSTRUCTION_BYTES);
    true
}

/// Performs a lone vCPU's trapped TLB maintenance on this CPU only, for the
/// VMID in VTTBR_EL2: executed at EL2 with HCR_EL2.{E2H, TGE} = {0, 0}, the EL1
/// operations act on the EL1&0 regime of the current VMID (Arm ARM D8.13,
/// "TLB maintenance instructions"). See `trap/tlbi.rs` for when this is enough.
fn invalidate_locally(operation: TlbOperation) {
    // SAFETY: TLB invalidation and barriers change no memory. The operand is
    // the guest's, but these EL1 operations only reach the EL1&0 regime of the
    // VMID in VTTBR_EL2, which is this personality's while its vCPU's exit is
    // handled; Janus' own EL2 regime (HCR_EL2.E2H = 0) and the stage-2 tables
    // are not touched, so the guest can drop nothing but its own translations.
    unsafe {
        match operation {
            TlbOperation::All => asm!("tlbi vmalle1", options(nostack)),
            TlbOperation::Address(value) => {
                asm!("tlbi vae1, {v}", v = in(reg) value, options(nostack))
            }
            TlbOperation::Asid(value) => {
                asm!("tlbi aside1, {v}", v = in(reg) value, options(nostack))
            }
            TlbOperation::AddressAllAsids(value) => {
                asm!("tlbi vaae1, {v}", v = in(reg) value, options(nostack))
            }
            TlbOperation::AddressLastLevel(value) => {
                asm!("tlbi vale1, {v}", v = in(reg) value, options(nostack))
            }
            TlbOperation::AddressAllAsidsLastLevel(value) => {
                asm!("tlbi vaale1, {v}", v = in(reg) value, options(nostack))
            }
        }
        asm!("dsb nsh", options(nostack));
    }
}

/// What an exit leaves to do with the vGIC once it is handled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AfterExit {
    /// Bring the list registers and the model in step (a GIC system register).
    Update,
    /// Only what a device changed for this vCPU, and kicks owed to others.
    Settle,
    /// Nothing: the dispatcher did it under the lock of the access (MMIO).
    Nothing,
}

#[inline(never)]
fn slow_exit(cpu: &mut percpu::PerCpu, vm: &'static Personality, kind: u64, syndrome: u64) {
    let mut hardware = Hardware::default();
    let mut after = AfterExit::Settle;
    let action = if kind == ExitKind::Sync as u64 {
        let exit = esr::decode(syndrome, FAR_EL2.get(), HPFAR_EL2.get());
        if matches!(exit, esr::Exit::Mmio(_)) {
            after = AfterExit::Nothing;
        } else if involves_vgic_state(&exit) {
            after = AfterExit::Update;
            // A read of the pending state must see the timers as they are now.
            sample_timers(vm, cpu.vcpu);
        }
        if matches!(exit, esr::Exit::Wfx { wfe: false }) {
            // Whether the vCPU may sleep depends on what its list registers
            // hold now; afterwards an interrupt that woke it exits on its own.
            update_vgic(vm, cpu.vcpu);
        }
        dispatch::handle_exit(
            &mut cpu.regs,
            exit,
            FAR_EL2.get(),
            vm,
            cpu.vcpu,
            &mut hardware,
        )
    } else if kind == ExitKind::Irq as u64 {
        if let Some(slot) = vm.vcpus.get(cpu.vcpu) {
            slot.exits.count(ExitCause::Irq);
        }
        after = AfterExit::Update;
        handle_interrupts(Some((vm, cpu.vcpu)));
        still_runnable(vm, cpu.vcpu)
    } else if kind == ExitKind::AArch32 as u64 {
        let exit = esr::Exit::Unhandled { ec: 0, iss: 0 };
        dispatch::handle_exit(&mut cpu.regs, exit, 0, vm, cpu.vcpu, &mut hardware)
    } else {
        crate::janus_println!(
            "{}: unexpected {} from the guest; stopping it",
            vm.name,
            if kind == ExitKind::Fiq as u64 {
                "FIQ"
            } else {
                "SError"
            }
        );
        hardware.report_guest_state(vm, &cpu.regs);
        dispatch::stop(vm, VmState::Off, &mut hardware);
        Action::Idle
    };
    if action == Action::Idle {
        leave_vcpu(cpu.vm.take(), cpu.vcpu);
        idle(cpu);
    }
    match after {
        AfterExit::Update => update_vgic(vm, cpu.vcpu),
        AfterExit::Settle => settle_vgic(vm, cpu.vcpu),
        AfterExit::Nothing => {}
    }
}

/// Acts on every pending physical interrupt. `current` is the vCPU this CPU
/// was running, if any.
fn handle_interrupts(current: Option<(&Personality, usize)>) {
    gic::handle_pending(|intid| match intid {
        gic::VIRTUAL_TIMER_INTID | gic::PHYSICAL_TIMER_INTID => forward_timer(intid, current),
        // Level-sensitive: drain the UART before the interrupt ends, or it
        // is still asserted and comes straight back.
        intid if intid == gic::spi_intid(CONSOLE_UART_SPI) => {
            console_input();
            gic::Completion::Done
        }
        // The hardware key: a press moves the console to the next personality.
        intid if key::is_key_interrupt(intid) && key::take_press() => {
            crate::console::next_foreground();
            gic::Completion::Done
        }
        // Something on the console has waited long enough.
        hyp_timer::HYP_TIMER_INTID => {
            hyp_timer::disarm();
            crate::console::tick();
            for vm in boot::personalities() {
                crate::console::report_due(&vm.reports, &vm.name);
            }
            gic::Completion::Done
        }
        gic::MAINTENANCE_INTID => {
            // Level-sensitive: it stays asserted until the list registers no
            // longer underflow or hold a deactivated interrupt, so bring them
            // up to date before ending it, or it fires again at once.
            match current {
                Some((vm, vcpu)) => update_vgic(vm, vcpu),
                None => ich::disable(),
            }
            gic::Completion::Done
        }
        // The kick SGI needs nothing beyond the exit it caused: the caller
        // looks at the vCPU and the vGIC again.
        _ => gic::Completion::Done,
    });
}

/// One of the guest's timers fired (its output is high): the vGIC takes the
/// physical PPI, which stays active until the guest deactivates the virtual
/// one through its HW list register (as KVM does), so the guest's CNTx_CTL_EL0
/// keeps exactly what it wrote. With no vCPU here (it just stopped), the timers
/// are turned off and the interrupt ends.
fn forward_timer(intid: u32, current: Option<(&Personality, usize)>) -> gic::Completion {
    let taken = current.is_some_and(|(vm, vcpu)| {
        vm.devices
            .as_ref()
            .is_some_and(|devices| devices.lock().vgic.take_physical(intid, vcpu).is_ok())
    });
    if taken {
        gic::Completion::Forwarded
    } else {
        timer::stop();
        gic::Completion::Done
    }
}

/// The physical console UART's SPI on the virt board.
pub const CONSOLE_UART_SPI: u32 = 1;

/// Audit records the `a` hotkey shows.
const AUDIT_LINES: usize = 20;

/// Typed keys: hotkeys act here, the rest goes to the foreground personality's UART.
fn console_input() {
    let mut buffer = [0u8; 64];
    loop {
        let count = uart::read_input(&mut buffer);
        let Some(typed) = buffer.get(..count) else {
            return;
        };
        if typed.is_empty() {
            return;
        }
        let input = crate::console::input(typed);
        if input.stats {
            print_stats();
        }
        if input.audit {
            crate::console::answer(&super::channel::recent_audit(AUDIT_LINES));
        }
        if input.bytes.is_empty() {
            continue;
        }
        let Some(vm) = boot::personalities().get(input.foreground) else {
            continue;
        };
        if let Some(devices) = &vm.devices {
            let mut guard = devices.lock();
            // A full receive FIFO drops the rest, as a real UART would.
            guard.input(&input.bytes);
            let kicks = guard.vgic.take_kicks();
            drop(guard);
            kick_vcpus(vm, kicks);
        }
    }
}

/// Prints every personality's exits and reports by cause, and its RAM (the
/// `s` hotkey, after the console's own lines).
fn print_stats() {
    use alloc::format;
    use core::fmt::Write;
    let mut lines = alloc::vec::Vec::new();
    for vm in boot::personalities() {
        let counts = vm.exit_counts();
        let mut line = format!("{} exits:", vm.name);
        for (name, count) in EXIT_CAUSE_NAMES.iter().zip(counts) {
            let _ = write!(line, " {name} {count}");
        }
        lines.push(line);
        let totals: [u64; CAUSES] = crate::console::report_totals(&vm.reports);
        let mut line = format!("{} reports:", vm.name);
        for (cause, count) in Cause::ALL.iter().zip(totals) {
            let _ = write!(line, " {} {count}", cause.name());
        }
        lines.push(line);
    }
    for vm in boot::personalities() {
        let ram = boot::stage2(vm).ram.lock();
        let mib = |chunks: usize| (chunks as u64 * crate::vm::ram::CHUNK_BYTES) >> 20;
        let (present, paged, all) = (
            mib(ram.present_chunks()),
            mib(ram.paged_chunks()),
            mib(ram.chunks()),
        );
        drop(ram);
        lines.push(format!(
            "{}: {present} of {all} MiB of RAM in use since its start, {paged} MiB of it in 4 KiB pages",
            vm.name
        ));
    }
    let (used, total) = super::heap::frame_usage();
    lines.push(format!(
        "stage-2 tables use {used} of {total} page-table frames"
    ));
    crate::console::answer(&lines);
}

fn still_runnable(vm: &Personality, vcpu: usize) -> Action {
    let on = vm
        .vcpus
        .get(vcpu)
        .is_some_and(|slot| slot.state() == crate::vm::vcpu::PowerState::On);
    if on && vm.state() == VmState::Running {
        Action::Resume
    } else {
        Action::Idle
    }
}

/// Marks the vCPU as left; a personality waiting to reset is told when its last vCPU leaves.
fn leave_vcpu(vm: Option<&'static Personality>, vcpu: usize) {
    let Some(vm) = vm else { return };
    if let Some(slot) = vm.vcpus.get(vcpu) {
        slot.set_running(false);
    }
    // Its timers stop with it, and their physical PPIs, which the vGIC or a list
    // register may hold active, are deactivated: nothing else would end them.
    timer::release();
    // No vCPU: no virtual CPU interface, and no maintenance interrupts from it.
    ich::disable();
    if vm.state() == VmState::Resetting {
        if let Some(first) = vm.vcpus.first() {
            Hardware::default().kick(first.pcpu);
        }
    }
}

/// The idle loop of a physical CPU. Never returns: it enters a guest, whose next
/// exit starts again from the top of this CPU's stack.
pub fn idle(cpu: &mut percpu::PerCpu) -> ! {
    loop {
        handle_interrupts(None);
        let personalities = boot::personalities();
        if personalities.iter().all(|vm| vm.state() == VmState::Off) {
            for vm in personalities {
                crate::console::report_all_suppressed(&vm.reports, &vm.name);
            }
            // What the background personalities printed last is shown first.
            crate::console::drain();
            crate::janus_println!("every personality is off; powering the board off");
            firmware::system_off();
            halt();
        }
        if let Some((vm, vcpu)) = boot::assignment(cpu.index) {
            if vcpu == 0 && vm.state().awaits_start() && vm.quiescent() {
                boot::restart(vm);
            }
            if vm.state() == VmState::Running {
                if let Some(slot) = vm.vcpus.get(vcpu) {
                    if let Some((entry, context)) = slot.take_pending() {
                        slot.set_running(true);
                        // Stop (SYSTEM_OFF) powers vCPUs off before looking at
                        // `running`: seeing Running and On after setting it means
                        // no stop has missed this CPU.
                        if vm.state() == VmState::Running
                            && slot.state() == crate::vm::vcpu::PowerState::On
                        {
                            cpu.regs.reset(entry, context);
                            cpu.vm = Some(vm);
                            cpu.vcpu = vcpu;
                            slot.exits.clear();
                            load_vcpu(vm, vcpu);
                            update_vgic(vm, vcpu);
                            // SAFETY: `regs` is this CPU's PerCpu::regs, the vCPU's
                            // stage-2 and EL1 state were just loaded, and `stack_top`
                            // is this CPU's stack top.
                            unsafe { enter_guest(&cpu.regs, cpu.stack_top) };
                        }
                        slot.set_running(false);
                    }
                }
            }
        }
        // SAFETY: waiting for an interrupt touches no memory; a pending
        // interrupt wakes it even with interrupts masked at EL2.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

/// Loads the EL2 controls, stage-2 and a reset EL1 state for vCPU `vcpu` of `vm`.
fn load_vcpu(vm: &Personality, vcpu: usize) {
    let image = boot::stage2(vm);
    // A vCPU that starts alone does its TLB maintenance locally until it turns
    // another vCPU on (`trap/tlbi.rs`). No HCR_EL2.FB: a vCPU never leaves its
    // physical CPU, so its local TLB maintenance has nothing elsewhere to reach.
    let alone = vm
        .vcpus
        .iter()
        .enumerate()
        .all(|(index, slot)| index == vcpu || slot.state() == crate::vm::vcpu::PowerState::Off);
    let tlb_traps = if alone {
        HCR_EL2::TTLB::SET
    } else {
        HCR_EL2::TTLB::CLEAR
    };
    HCR_EL2.write(
        HCR_EL2::VM::Enable
            + HCR_EL2::SWIO::SET
            + HCR_EL2::FMO::SET
            + HCR_EL2::IMO::SET
            + HCR_EL2::AMO::SET
            + tlb_traps
            + HCR_EL2::BSU::InnerShareable
            + HCR_EL2::TWI::SET
            + HCR_EL2::TWE::SET
            + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
            + HCR_EL2::TIDCP::SET
            + HCR_EL2::TACR::SET
            + HCR_EL2::RW::EL1IsAarch64
            + HCR_EL2::API::DisableTrapPointerAuthInstToEl2
            + HCR_EL2::APK::DisableTrapPointerAuthKeyRegsToEl2,
    );
    VTCR_EL2.set(image.vtcr);
    VTTBR_EL2.set(image.root | (u64::from(vm.vmid) << 48));
    VMPIDR_EL2.write(VMPIDR_EL2::RES1::SET + VMPIDR_EL2::Aff0.val(vcpu as u64));
    let midr = MIDR_EL1.get();
    // SAFETY: VPIDR_EL2 only changes what the guest reads as MIDR_EL1.
    unsafe { asm!("msr vpidr_el2, {midr}", midr = in(reg) midr, options(nomem, nostack)) };
    // EL1 reads the physical counter and uses the EL1 physical timer directly: Janus
    // never uses that timer, and this CPU runs only this vCPU (its state is reset
    // below and at every stop, `timer::release`).
    CNTHCTL_EL2.write(CNTHCTL_EL2::EL1PCTEN::SET + CNTHCTL_EL2::EL1PCEN::SET);
    CNTVOFF_EL2.set(image.cntvoff.load(core::sync::atomic::Ordering::Relaxed));
    // SAFETY: CPTR_EL2 only controls traps of FP/SIMD and trace from lower ELs.
    unsafe {
        asm!("msr cptr_el2, {value}", value = in(reg) CPTR_EL2_NO_TRAPS, options(nomem, nostack))
    };
    El1Context::reset_state().restore();
    // Both timers are off now; an activation left from before is stale.
    timer::release();
    ich::reset();
    // The new VMID's translations may be stale from an earlier run of this
    // personality (before a reset): drop them.
    // SAFETY: TLB maintenance and barriers change no memory.
    unsafe { asm!("isb", "tlbi vmalls12e1", "dsb nsh", "isb", options(nostack)) };
}

/// The CPU-side services the dispatcher calls, with the list-register work a
/// device access left for after its lock.
#[derive(Default)]
struct Hardware {
    pending: Pending,
}

impl Services for Hardware {
    fn inject(&mut self, injection: &Injection) {
        // SAFETY: the EL1 exception registers only affect the guest, which is
        // stopped while Janus handles its exit.
        unsafe {
            asm!(
                "msr elr_el1, {elr}",
                "msr spsr_el1, {spsr}",
                "msr esr_el1, {esr}",
                elr = in(reg) injection.elr_el1,
                spsr = in(reg) injection.spsr_el1,
                esr = in(reg) injection.esr_el1,
                options(nomem, nostack),
            );
            if let Some(far) = injection.far_el1 {
                asm!("msr far_el1, {far}", far = in(reg) far, options(nomem, nostack));
            }
        }
    }

    fn vbar_el1(&self) -> u64 {
        let vbar: u64;
        // SAFETY: reading VBAR_EL1 has no side effects.
        unsafe { asm!("mrs {vbar}, vbar_el1", vbar = out(reg) vbar, options(nomem, nostack)) };
        vbar
    }

    fn copy_from_guest(&self, personality: &Personality, ipa: u64, buffer: &mut [u8]) {
        // Chunks the guest has not touched since its start are cleared first:
        // behind them is still what the previous occupant left.
        if !boot::fill_range(personality, ipa, buffer.len() as u64) {
            buffer.fill(0);
            return;
        }
        // SAFETY: the dispatcher checked the range against the personality's RAM,
        // which Janus' stage-1 table maps at the same address.
        unsafe { memory::copy_from_guest(ipa, buffer) };
    }

    fn write_to_guest(&mut self, personality: &Personality, ipa: u64, data: &[u8]) {
        if personality.ram_contains(ipa, data.len() as u64) {
            // SAFETY: the range is this personality's RAM (checked just above),
            // which Janus maps at the same address; the caller prepared it, so
            // the guest's first touch will not clear it afterwards.
            unsafe { memory::write_guest(ipa, data) };
        }
    }

    fn prepare_for_device(&mut self, personality: &Personality, ipa: u64, len: u64) -> bool {
        personality.ram_contains(ipa, len) && boot::fill_range(personality, ipa, len)
    }

    fn guest_memory_fence(&mut self) {
        // SAFETY: a barrier changes no memory.
        unsafe { asm!("dmb ish", options(nostack)) };
    }

    fn console_line(&mut self, personality: &Personality, line: &[u8]) {
        let mut bytes = alloc::vec::Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line);
        bytes.extend_from_slice(b"\r\n");
        crate::console::guest_output(personality.id, &bytes);
    }

    fn kick(&mut self, pcpu: usize) {
        if let Some(mpidr) = boot::cpu_mpidr(pcpu) {
            gic::kick(mpidr);
        }
    }

    fn wait_for_interrupt(&mut self) {
        // SAFETY: waiting for an interrupt touches no memory.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }

    fn listed_interrupt_pending(&self) -> bool {
        ich::any_pending()
    }

    fn uart_output(&mut self, personality: &Personality, bytes: &[u8]) {
        crate::console::guest_output(personality.id, bytes);
    }

    fn share_tlb_maintenance(&mut self) {
        HCR_EL2.modify(HCR_EL2::TTLB::CLEAR);
    }

    fn report(&mut self, message: fmt::Arguments) {
        crate::console::report(message);
    }

    fn guest_report(&mut self, personality: &Personality, cause: Cause, message: fmt::Arguments) {
        crate::console::guest_report(&personality.reports, &personality.name, cause, message);
    }

    fn sample_timers(&mut self, vgic: &mut dyn VirtualGic, vcpu: usize) {
        timer::sample(vgic, vcpu);
    }

    fn sync_vgic(&mut self, vgic: &mut dyn VirtualGic, vcpu: usize, interrupt_controller: bool) {
        self.pending = if interrupt_controller {
            sync_locked(vgic, vcpu)
        } else {
            settle_locked(vgic, vcpu)
        };
    }

    fn finish_vgic_sync(&mut self, personality: &Personality, _vcpu: usize) {
        finish(personality, &core::mem::take(&mut self.pending));
    }

    fn settle_reports(&mut self, personality: &Personality) {
        crate::console::report_all_suppressed(&personality.reports, &personality.name);
    }

    fn report_guest_state(&mut self, personality: &Personality, regs: &GuestRegs) {
        let mut el1 = El1Context::default();
        el1.save();
        crate::janus_println!(
            "{}: pc {:#x} pstate {:#x} sp_el1 {:#x} sctlr_el1 {:#x} vbar_el1 {:#x} esr_el1 {:#x} far_el1 {:#x} elr_el1 {:#x}",
            personality.name,
            regs.pc,
            regs.pstate,
            el1.sp_el1,
            el1.sctlr_el1,
            el1.vbar_el1,
            el1.esr_el1,
            el1.far_el1,
            el1.elr_el1
        );
        for (row, chunk) in regs.x.chunks(8).enumerate() {
            let mut line = alloc::string::String::new();
            for (column, value) in chunk.iter().enumerate() {
                let _ = core::fmt::Write::write_fmt(
                    &mut line,
                    format_args!(" x{}={value:#x}", row * 8 + column),
                );
            }
            crate::janus_println!("{}:{line}", personality.name);
        }
    }
}

//! Dispatcher tests against a fake CPU.

use alloc::string::String;
use alloc::vec::Vec;

use super::*;
use crate::console::ratelimit::{summary, ReportLimiter, Verdict, BURST};
use crate::trap::esr;
use crate::vm::bundle::GuestKind;
use crate::vm::vcpu::PSTATE_EL1H_MASKED;

const RAM: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 0x400_0000;
/// HVC #0 from AArch64 (EC 0x16, IL 1).
const ESR_HVC: u64 = 0x5a00_0000;
/// SMC #0 from AArch64 (EC 0x17, IL 1).
const ESR_SMC: u64 = 0x5e00_0000;
/// `ldr x1, [x0]` stage-2 translation fault at level 1, ISV=1, SAS=3, SRT=1, SF=1.
const ESR_LDR_X1_TRANSLATION_L1: u64 = 0x93c1_8005;
/// Instruction abort from a lower EL, translation fault level 1.
const ESR_IABT_TRANSLATION_L1: u64 = 0x8200_0005;
/// WFI (EC 0x01, IL 1, TI 0).
const ESR_WFI: u64 = 0x0600_0000;

#[derive(Default)]
struct FakeCpu {
    vbar: u64,
    injected: Vec<Injection>,
    lines: Vec<String>,
    kicked: Vec<usize>,
    reports: Vec<String>,
    waits: u32,
    memory: Vec<(u64, Vec<u8>)>,
    uart: Vec<u8>,
    shared_tlb_maintenance: bool,
    /// The counter value guest reports are rate limited at (1 kHz).
    clock: u64,
    /// Suppressed-report counts printed by `settle_reports`.
    settled: Vec<String>,
    /// Timer samples, list-register syncs (whether of the interrupt controller)
    /// and finished syncs, in order.
    vgic_steps: Vec<&'static str>,
}

/// The fake CPU's counter frequency.
const FAKE_HZ: u64 = 1000;

impl Services for FakeCpu {
    fn inject(&mut self, injection: &Injection) {
        self.injected.push(*injection);
    }
    fn vbar_el1(&self) -> u64 {
        self.vbar
    }
    fn copy_from_guest(&self, _personality: &Personality, ipa: u64, buffer: &mut [u8]) {
        for (index, byte) in buffer.iter_mut().enumerate() {
            let address = ipa + index as u64;
            *byte = self
                .memory
                .iter()
                .find_map(|(base, bytes)| {
                    address
                        .checked_sub(*base)
                        .and_then(|offset| bytes.get(offset as usize).copied())
                })
                .unwrap_or(0);
        }
    }
    fn write_to_guest(&mut self, _personality: &Personality, ipa: u64, data: &[u8]) {
        self.memory.push((ipa, data.to_vec()));
    }
    fn prepare_for_device(&mut self, _personality: &Personality, _ipa: u64, _len: u64) -> bool {
        true
    }
    fn guest_memory_fence(&mut self) {}
    fn console_line(&mut self, _personality: &Personality, line: &[u8]) {
        self.lines.push(String::from_utf8_lossy(line).into_owned());
    }
    fn kick(&mut self, pcpu: usize) {
        self.kicked.push(pcpu);
    }
    fn wait_for_interrupt(&mut self) {
        self.waits += 1;
    }
    fn share_tlb_maintenance(&mut self) {
        self.shared_tlb_maintenance = true;
    }
    fn listed_interrupt_pending(&self) -> bool {
        false
    }
    fn uart_output(&mut self, _personality: &Personality, bytes: &[u8]) {
        self.uart.extend_from_slice(bytes);
    }
    fn report_guest_state(&mut self, personality: &Personality, regs: &GuestRegs) {
        self.reports.push(alloc::format!(
            "{}: state at pc {:#x}",
            personality.name,
            regs.pc
        ));
    }
    fn report(&mut self, message: fmt::Arguments) {
        self.reports.push(alloc::format!("{message}"));
    }
    fn guest_report(&mut self, personality: &Personality, cause: Cause, message: fmt::Arguments) {
        let clock = self.clock;
        let verdict = personality
            .reports
            .lock()
            .get_or_insert_with(|| ReportLimiter::new(FAKE_HZ, clock))
            .admit(cause, clock);
        if let Verdict::Show { suppressed } = verdict {
            if suppressed != 0 {
                let name = &personality.name;
                self.reports.push(summary(name, cause, suppressed));
            }
            self.reports.push(alloc::format!("{message}"));
        }
    }
    fn sample_timers(&mut self, _vgic: &mut dyn VirtualGic, _vcpu: usize) {
        self.vgic_steps.push("sample");
    }
    fn sync_vgic(&mut self, _vgic: &mut dyn VirtualGic, _vcpu: usize, interrupt_controller: bool) {
        self.vgic_steps.push(if interrupt_controller {
            "sync"
        } else {
            "settle"
        });
    }
    fn finish_vgic_sync(&mut self, _personality: &Personality, _vcpu: usize) {
        self.vgic_steps.push("finish");
    }
    fn settle_reports(&mut self, personality: &Personality) {
        if let Some(limiter) = personality.reports.lock().as_mut() {
            for (cause, count) in limiter.take_all_summaries() {
                self.settled.push(summary(&personality.name, cause, count));
            }
        }
    }
}

fn vm() -> Personality {
    let vm = Personality::new(
        0,
        "work",
        GuestKind::BareMetal,
        RAM,
        RAM_SIZE,
        &[2, 3],
        None,
    );
    vm.set_state(VmState::Running);
    let _ = vm.vcpus[0].request_on(RAM, 0);
    let _ = vm.vcpus[0].take_pending();
    vm.vcpus[0].set_running(true);
    vm
}

fn regs(x: &[u64]) -> GuestRegs {
    let mut regs = GuestRegs::default();
    regs.x[..x.len()].copy_from_slice(x);
    regs.pc = RAM + 0x1000;
    regs.pstate = PSTATE_EL1H_MASKED;
    regs
}

fn run(
    regs: &mut GuestRegs,
    esr: u64,
    far: u64,
    hpfar: u64,
    cpu: &mut FakeCpu,
    vm: &Personality,
) -> Action {
    let exit = esr::decode(esr, far, hpfar);
    handle_exit(regs, exit, far, vm, 0, cpu)
}

#[test]
fn null_hypercall_returns_zero_and_keeps_pc() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    let mut regs = regs(&[0xC600_0002, 5]);
    assert_eq!(run(&mut regs, ESR_HVC, 0, 0, &mut cpu, &vm), Action::Resume);
    assert_eq!(regs.x[0], 0);
    assert_eq!(regs.x[1], 5);
    assert_eq!(regs.pc, RAM + 0x1000);
}

#[test]
fn trapped_smc_returns_past_the_instruction() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    let mut regs = regs(&[0x8400_0000]);
    assert_eq!(run(&mut regs, ESR_SMC, 0, 0, &mut cpu, &vm), Action::Resume);
    assert_eq!(regs.x[0], 0x1_0001);
    assert_eq!(regs.pc, RAM + 0x1004);
}

#[test]
fn unknown_call_is_not_supported_and_reported() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    let mut regs = regs(&[0xC200_0001]);
    run(&mut regs, ESR_SMC, 0, 0, &mut cpu, &vm);
    assert_eq!(regs.x[0] as i64, -1);
    assert!(cpu.reports[0].contains("unknown SMCCC call 0xc2000001"));
}

#[test]
fn trng_discovery_is_not_supported_without_a_report() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    let mut regs = regs(&[0x8400_0050]);
    run(&mut regs, ESR_HVC, 0, 0, &mut cpu, &vm);
    assert_eq!(regs.x[0] as i64, -1);
    assert!(cpu.reports.is_empty());
}

#[test]
fn console_write_prints_whole_lines_from_guest_memory() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    cpu.memory.push((RAM + 0x2000, b"he\0llo\nwor".to_vec()));
    cpu.memory.push((RAM + 0x3000, b"ld\n".to_vec()));
    let mut regs1 = regs(&[0xC600_0001, RAM + 0x2000, 10]);
    run(&mut regs1, ESR_HVC, 0, 0, &mut cpu, &vm);
    assert_eq!(regs1.x[0], 10);
    let mut regs2 = regs(&[0xC600_0001, RAM + 0x3000, 3]);
    run(&mut regs2, ESR_HVC, 0, 0, &mut cpu, &vm);
    // NUL bytes are dropped, as carriage returns are.
    assert_eq!(cpu.lines, ["hello", "world"]);
}

#[test]
fn console_write_outside_ram_is_refused() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    for (ipa, len) in [
        (RAM - 16, 16),
        (RAM + RAM_SIZE - 8, 16),
        (RAM, u64::MAX),
        (u64::MAX - 4, 8),
    ] {
        let mut regs = regs(&[0xC600_0001, ipa, len]);
        run(&mut regs, ESR_HVC, 0, 0, &mut cpu, &vm);
        assert_eq!(regs.x[0] as i64, -2, "ipa {ipa:#x} len {len}");
    }
    assert!(cpu.lines.is_empty());
}

#[test]
fn cpu_on_checks_target_and_entry_then_kicks() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    let mut bad_target = regs(&[0xC400_0003, 2, RAM, 0]);
    run(&mut bad_target, ESR_HVC, 0, 0, &mut cpu, &vm);
    assert_eq!(bad_target.x[0] as i64, -2);
    let mut bad_entry = regs(&[0xC400_0003, 1, 0x4020_0000, 0]);
    run(&mut bad_entry, ESR_HVC, 0, 0, &mut cpu, &vm);
    assert_eq!(bad_entry.x[0] as i64, -9);
    assert!(
        !cpu.shared_tlb_maintenance,
        "a refused CPU_ON leaves the caller alone"
    );
    let mut good = regs(&[0xC400_0003, 1, RAM + 0x100, 42]);
    run(&mut good, ESR_HVC, 0, 0, &mut cpu, &vm);
    assert_eq!(good.x[0], 0);
    assert_eq!(cpu.kicked, [3]);
    assert!(
        cpu.shared_tlb_maintenance,
        "the caller's TLB maintenance must reach the new vCPU"
    );
    assert_eq!(vm.vcpus[1].take_pending(), Some((RAM + 0x100, 42)));
    let mut again = regs(&[0xC400_0003, 1, RAM + 0x100, 42]);
    run(&mut again, ESR_HVC, 0, 0, &mut cpu, &vm);
    assert_eq!(again.x[0] as i64, -4);
}

#[test]
fn affinity_info_reports_on_and_off() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    let mut on = regs(&[0xC400_0004, 0, 0]);
    run(&mut on, ESR_HVC, 0, 0, &mut cpu, &vm);
    assert_eq!(on.x[0], 0);
    let mut off = regs(&[0xC400_0004, 1, 0]);
    run(&mut off, ESR_HVC, 0, 0, &mut cpu, &vm);
    assert_eq!(off.x[0], 1);
    let mut level = regs(&[0xC400_0004, 1, 1]);
    run(&mut level, ESR_HVC, 0, 0, &mut cpu, &vm);
    assert_eq!(level.x[0] as i64, -2);
}

#[test]
fn system_off_stops_only_this_personality_and_kicks_its_running_vcpus() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    let mut regs = regs(&[0x8400_0008]);
    assert_eq!(run(&mut regs, ESR_HVC, 0, 0, &mut cpu, &vm), Action::Idle);
    assert_eq!(vm.state(), VmState::Off);
    assert_eq!(cpu.kicked, [2]);
}

#[test]
fn system_reset_marks_personality_resetting() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    let mut regs = regs(&[0x8400_0009]);
    assert_eq!(run(&mut regs, ESR_HVC, 0, 0, &mut cpu, &vm), Action::Idle);
    assert_eq!(vm.state(), VmState::Resetting);
}

#[test]
fn cpu_off_idles_the_calling_vcpu() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    let mut regs = regs(&[0x8400_0002]);
    assert_eq!(run(&mut regs, ESR_HVC, 0, 0, &mut cpu, &vm), Action::Idle);
    assert_eq!(vm.vcpus[0].state(), PowerState::Off);
    assert_eq!(vm.state(), VmState::Running);
}

#[test]
fn data_abort_outside_ram_injects_abort_at_el1_vector() {
    let (vm, mut cpu) = (
        vm(),
        FakeCpu {
            vbar: RAM + 0x800,
            ..FakeCpu::default()
        },
    );
    let mut regs = regs(&[0x4020_0000]);
    // HPFAR holds IPA[47:12] in bits [43:4].
    let action = run(
        &mut regs,
        ESR_LDR_X1_TRANSLATION_L1,
        0x4020_0000,
        0x4020_0000 >> 8,
        &mut cpu,
        &vm,
    );
    assert_eq!(action, Action::Resume);
    let injection = cpu.injected[0];
    assert_eq!(injection.elr_el1, RAM + 0x1000);
    assert_eq!(injection.far_el1, Some(0x4020_0000));
    assert_eq!(regs.pc, RAM + 0x800 + 0x200);
    assert!(cpu.reports[0].contains("read of IPA 0x40200000"));
}

#[test]
fn fault_while_fetching_own_vector_stops_the_personality() {
    let (vm, mut cpu) = (
        vm(),
        FakeCpu {
            vbar: 0x80_0000_0000,
            ..FakeCpu::default()
        },
    );
    let mut regs = regs(&[]);
    regs.pc = 0x80_0000_0200;
    let action = run(
        &mut regs,
        ESR_IABT_TRANSLATION_L1,
        0x80_0000_0200,
        0x80_0000_0200 >> 8,
        &mut cpu,
        &vm,
    );
    assert_eq!(action, Action::Idle);
    assert_eq!(vm.state(), VmState::Off);
    assert!(cpu.injected.is_empty());
    assert!(cpu
        .reports
        .iter()
        .any(|line| line == "work: state at pc 0x8000000200"));
}

#[test]
fn fault_reports_are_rate_limited_and_counted() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    for _ in 0..100 {
        let mut regs = regs(&[]);
        let exit = esr::decode(ESR_LDR_X1_TRANSLATION_L1, 0x4020_0000, 0x4020_0000 >> 8);
        handle_exit(&mut regs, exit, 0x4020_0000, &vm, 0, &mut cpu);
    }
    // Every fault is injected; only a burst is named.
    assert_eq!(cpu.injected.len(), 100);
    assert_eq!(cpu.reports.len() as u64, BURST);
    // A second later the next one comes after the count of those suppressed.
    cpu.clock += FAKE_HZ;
    let mut regs = regs_at_fault();
    let exit = esr::decode(ESR_LDR_X1_TRANSLATION_L1, 0x4020_0000, 0x4020_0000 >> 8);
    handle_exit(&mut regs, exit, 0x4020_0000, &vm, 0, &mut cpu);
    let tail = &cpu.reports[cpu.reports.len() - 2..];
    assert_eq!(tail[0], "work: 90 more refused-access reports suppressed");
    assert!(tail[1].contains("read of IPA 0x40200000"), "{tail:?}");
    // Stopping the personality settles what is left.
    for _ in 0..5 {
        let mut regs = regs_at_fault();
        let exit = esr::decode(ESR_LDR_X1_TRANSLATION_L1, 0x4020_0000, 0x4020_0000 >> 8);
        handle_exit(&mut regs, exit, 0x4020_0000, &vm, 0, &mut cpu);
    }
    stop(&vm, VmState::Off, &mut cpu);
    assert_eq!(
        cpu.settled,
        ["work: 4 more refused-access reports suppressed"]
    );
}

fn regs_at_fault() -> GuestRegs {
    regs(&[])
}

#[test]
fn wfi_waits_and_skips_the_instruction() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    let mut regs = regs(&[]);
    assert_eq!(run(&mut regs, ESR_WFI, 0, 0, &mut cpu, &vm), Action::Resume);
    assert_eq!(cpu.waits, 1);
    assert_eq!(regs.pc, RAM + 0x1004);
}

#[test]
fn unknown_exception_injects_undefined() {
    let (vm, mut cpu) = (vm(), FakeCpu::default());
    let mut regs = regs(&[]);
    // EC 0x3f is reserved.
    run(&mut regs, 0xfe00_0000, 0, 0, &mut cpu, &vm);
    assert_eq!(cpu.injected.len(), 1);
    assert_eq!(cpu.injected[0].esr_el1 >> 26, 0);
}

fn linux_vm() -> Personality {
    let devices = crate::vm::devices::Devices::new(2).expect("devices");
    let vm = Personality::new(
        0,
        "personal",
        GuestKind::Linux,
        RAM,
        RAM_SIZE,
        &[0, 1],
        Some(devices),
    );
    vm.set_state(VmState::Running);
    let _ = vm.vcpus[0].request_on(RAM, 0);
    let _ = vm.vcpus[0].take_pending();
    vm
}

/// `str w1, [x0]`, 32-bit store, stage-2 translation fault level 1: ISV, SAS=2, SRT=1, WnR.
const ESR_STR_W1: u64 = 0x9381_8045;
/// `ldr w1, [x0]`, 32-bit load, same fault.
const ESR_LDR_W1: u64 = 0x9381_0005;

#[test]
fn uart_data_register_write_reaches_the_console() {
    let (vm, mut cpu) = (linux_vm(), FakeCpu::default());
    let mut regs = regs(&[0x0900_0000, u64::from(b'Z')]);
    let action = run(
        &mut regs,
        ESR_STR_W1,
        0x0900_0000,
        0x0900_0000 >> 8,
        &mut cpu,
        &vm,
    );
    assert_eq!(action, Action::Resume);
    assert_eq!(cpu.uart, b"Z");
    assert_eq!(regs.pc, RAM + 0x1004);
    assert!(cpu.injected.is_empty());
    // Not the interrupt controller: no timer sample, and only what the UART
    // changed is brought in step, under the same lock.
    assert_eq!(cpu.vgic_steps, ["settle", "finish"]);
}

#[test]
fn an_address_between_device_windows_gets_a_data_abort() {
    let (vm, mut cpu) = (linux_vm(), FakeCpu::default());
    // Past the UART's 4 KiB window, before the (absent) block device.
    let ipa = 0x0900_1000;
    let mut regs = regs(&[ipa, 7]);
    run(&mut regs, ESR_STR_W1, ipa, ipa >> 8, &mut cpu, &vm);
    assert_eq!(cpu.injected.len(), 1);
    assert!(cpu.vgic_steps.is_empty());
    assert!(
        cpu.reports[0].contains("write of IPA 0x9001000"),
        "{:?}",
        cpu.reports
    );
}

#[test]
fn distributor_read_returns_the_register_in_a_w_register() {
    let (vm, mut cpu) = (linux_vm(), FakeCpu::default());
    // GICD_PIDR2 at 0xFFE8: ArchRev 3 in bits [7:4].
    let ipa = 0x0800_FFE8;
    let mut regs = regs(&[ipa, u64::MAX]);
    run(&mut regs, ESR_LDR_W1, ipa, ipa >> 8, &mut cpu, &vm);
    assert_eq!((regs.x[1] >> 4) & 0xf, 3);
    assert_eq!(regs.x[1] >> 32, 0);
    assert_eq!(cpu.vgic_steps, ["sample", "sync", "finish"]);
}

#[test]
fn sgi1r_write_pends_an_sgi_on_the_target_vcpu() {
    let (vm, mut cpu) = (linux_vm(), FakeCpu::default());
    // MSR ICC_SGI1R_EL1, x2: EC 0x18, op0 3 op2 5 op1 0 CRn 12 Rt 2 CRm 11, write.
    let iss = (3 << 20) | (5 << 17) | (12 << 10) | (2 << 5) | (11 << 1);
    let esr = (0x18 << 26) | (1 << 25) | iss;
    // SGI 3 to vCPU 1 (TargetList bit 1).
    let mut regs = regs(&[0, 0, (3 << 24) | 0b10]);
    assert_eq!(run(&mut regs, esr, 0, 0, &mut cpu, &vm), Action::Resume);
    assert_eq!(regs.pc, RAM + 0x1004);
    let devices = vm.devices.as_ref().unwrap();
    assert_eq!(devices.lock().vgic.take_kicks() & 0b10, 0b10);
}

#[test]
fn load_value_sign_extends_and_truncates() {
    use crate::trap::esr::{MmioAccess, Width};
    let access = MmioAccess {
        ipa: 0,
        width: Width::Byte,
        write: false,
        reg: 1,
        sign_extend: true,
        sixty_four: true,
        acquire_release: false,
    };
    assert_eq!(load_value(&access, 0x80), 0xffff_ffff_ffff_ff80);
    let w_register = MmioAccess {
        sixty_four: false,
        ..access
    };
    assert_eq!(load_value(&w_register, 0x80), 0xffff_ff80);
    let unsigned = MmioAccess {
        sign_extend: false,
        ..access
    };
    assert_eq!(load_value(&unsigned, 0x1ff), 0xff);
}

/// A volume of `sectors` zero sectors that refuses every transfer (the
/// register tests below never reach it).
struct NoDisk(u64);

impl crate::dev::virtio::blk::BlockBackend for NoDisk {
    fn sectors(&self) -> u64 {
        self.0
    }
    fn read(
        &mut self,
        _sector: u64,
        _buffer: crate::dev::virtio::blk::Buffer<'_>,
    ) -> Result<(), crate::dev::virtio::blk::IoError> {
        Err(crate::dev::virtio::blk::IoError::Device)
    }
    fn write(
        &mut self,
        _sector: u64,
        _buffer: crate::dev::virtio::blk::Buffer<'_>,
    ) -> Result<(), crate::dev::virtio::blk::IoError> {
        Err(crate::dev::virtio::blk::IoError::Device)
    }
    fn flush(&mut self) -> Result<(), crate::dev::virtio::blk::IoError> {
        Ok(())
    }
}

fn linux_vm_with_volume(sectors: u64) -> Personality {
    use crate::dev::virtio::blk::BlkDevice;
    use crate::dev::virtio::mmio::MmioTransport;
    let device = BlkDevice::new(alloc::boxed::Box::new(NoDisk(sectors)), b"janus-personal");
    linux_vm().with_block(MmioTransport::new(device))
}

#[test]
fn the_block_device_answers_in_its_window_only_when_fitted() {
    // MagicValue at offset 0 is "virt"; the capacity is at 0x100 (config space).
    let ipa = 0x0a00_0000;
    let (vm, mut cpu) = (linux_vm_with_volume(2048), FakeCpu::default());
    let mut magic = regs(&[ipa, 0]);
    run(&mut magic, ESR_LDR_W1, ipa, ipa >> 8, &mut cpu, &vm);
    assert_eq!(magic.x[1], 0x7472_6976);
    assert!(cpu.injected.is_empty());
    let capacity = ipa + 0x100;
    let mut at_capacity = regs(&[capacity, 0]);
    run(
        &mut at_capacity,
        ESR_LDR_W1,
        capacity,
        capacity >> 8,
        &mut cpu,
        &vm,
    );
    assert_eq!(at_capacity.x[1], 2048);
    // Its line went to the vGIC under the devices lock, once per access.
    assert_eq!(cpu.vgic_steps, ["settle", "finish", "settle", "finish"]);

    let (vm, mut cpu) = (linux_vm(), FakeCpu::default());
    let mut magic = regs(&[ipa, 0]);
    run(&mut magic, ESR_LDR_W1, ipa, ipa >> 8, &mut cpu, &vm);
    assert_eq!(cpu.injected.len(), 1, "no volume: a data abort");
}

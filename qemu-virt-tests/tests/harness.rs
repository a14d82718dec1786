//! Self-test of the harness against real QEMU, with tiny hand-assembled guests instead of Janus.
//!
//! Each guest is a few AArch64 instructions written to a raw binary. QEMU's
//! `-kernel` loads a file without an Image header as a raw blob and jumps to
//! it at EL2 (`virtualization=on`); with no EL3 firmware QEMU itself answers
//! PSCI calls made with SMC, and PSCI SYSTEM_OFF makes it exit with status 0.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qemu_virt_tests::{find_panic_line, is_panic_line, HarnessError, Qemu, QemuConfig};

/// Tiny AArch64 encoders (Arm ARM, "A64 Instruction Set Encoding"), just
/// enough for the self-test guests. The unit test below checks each against
/// words produced by `llvm-mc -triple=aarch64 -show-encoding`.
mod a64 {
    /// A general-purpose register number (0..=30).
    pub type Register = u32;

    /// MOVZ: `sf 10 100101 hw imm16 Rd`; `shift` is 0, 16, 32 or 48.
    pub fn movz(is_64bit: bool, rd: Register, imm16: u16, shift: u32) -> u32 {
        move_wide(0b10, is_64bit, rd, imm16, shift)
    }

    /// MOVK: `sf 11 100101 hw imm16 Rd`.
    pub fn movk(is_64bit: bool, rd: Register, imm16: u16, shift: u32) -> u32 {
        move_wide(0b11, is_64bit, rd, imm16, shift)
    }

    fn move_wide(opc: u32, is_64bit: bool, rd: Register, imm16: u16, shift: u32) -> u32 {
        assert!(shift.is_multiple_of(16) && shift < if is_64bit { 64 } else { 32 });
        (u32::from(is_64bit) << 31)
            | (opc << 29)
            | (0b100101 << 23)
            | ((shift / 16) << 21)
            | (u32::from(imm16) << 5)
            | rd
    }

    /// STRB Wt, [Xn, #offset] (unsigned offset form).
    pub fn strb(rt: Register, rn: Register, offset: u32) -> u32 {
        load_store_unsigned(0b00, 0b00, rt, rn, offset)
    }

    /// LDRB Wt, [Xn, #offset] (unsigned offset form).
    pub fn ldrb(rt: Register, rn: Register, offset: u32) -> u32 {
        load_store_unsigned(0b00, 0b01, rt, rn, offset)
    }

    /// STR Wt, [Xn, #offset] (32-bit, unsigned offset form).
    pub fn str_w(rt: Register, rn: Register, offset: u32) -> u32 {
        load_store_unsigned(0b10, 0b00, rt, rn, offset)
    }

    /// LDR Wt, [Xn, #offset] (32-bit, unsigned offset form).
    pub fn ldr_w(rt: Register, rn: Register, offset: u32) -> u32 {
        load_store_unsigned(0b10, 0b01, rt, rn, offset)
    }

    /// `size 111 V=0 01 opc imm12 Rn Rt`, imm12 scaled by the access size.
    fn load_store_unsigned(size: u32, opc: u32, rt: Register, rn: Register, offset: u32) -> u32 {
        let scale = 1 << size;
        assert!(offset.is_multiple_of(scale) && offset / scale < 1 << 12);
        (size << 30)
            | (0b111 << 27)
            | (0b01 << 24)
            | (opc << 22)
            | ((offset / scale) << 10)
            | (rn << 5)
            | rt
    }

    /// SMC #imm16: `11010100 000 imm16 000 11`.
    pub fn smc(imm16: u16) -> u32 {
        0xd400_0003 | (u32::from(imm16) << 5)
    }

    /// B with a byte offset from this instruction: `000101 imm26`.
    pub fn b(byte_offset: i32) -> u32 {
        assert!(byte_offset % 4 == 0);
        0x1400_0000 | ((byte_offset / 4) as u32 & 0x03ff_ffff)
    }

    /// TBNZ Wt, #bit, label: `b5 011011 1 b40 imm14 Rt`, bit < 32.
    pub fn tbnz_w(rt: Register, bit: u32, byte_offset: i32) -> u32 {
        assert!(bit < 32 && byte_offset % 4 == 0);
        0x3700_0000 | (bit << 19) | (((byte_offset / 4) as u32 & 0x3fff) << 5) | rt
    }
}

/// QEMU virt's PL011 UART (ARCHITECTURE.md, "QEMU virt facts").
const PL011_BASE: u32 = 0x0900_0000;
/// PL011 data register: a write transmits a byte, a read takes one received.
const UARTDR: u32 = 0x000;
/// PL011 flag register.
const UARTFR: u32 = 0x018;
/// UARTFR.RXFE: the receive FIFO is empty.
const UARTFR_RXFE_BIT: u32 = 4;
/// PL011 control register.
const UARTCR: u32 = 0x030;
/// UARTCR with UARTEN (bit 0), TXE (bit 8) and RXE (bit 9) set.
const UARTCR_ENABLE_TX_RX: u16 = 0x0301;
/// PSCI 0.2 SYSTEM_OFF function id (SMC32 fast call).
const PSCI_SYSTEM_OFF: u32 = 0x8400_0008;

/// Register that holds the PL011 base in every program.
const X_UART: a64::Register = 1;
/// Scratch register for one byte.
const W_BYTE: a64::Register = 2;

/// `x1 = PL011_BASE`.
fn load_uart_base() -> Vec<u32> {
    // The base's low half is zero, so one MOVZ of the high half is enough.
    assert_eq!(PL011_BASE & 0xffff, 0);
    vec![a64::movz(true, X_UART, (PL011_BASE >> 16) as u16, 16)]
}

/// Writes `text` to the UART data register, one byte at a time.
fn print(text: &[u8]) -> Vec<u32> {
    text.iter()
        .flat_map(|&byte| {
            [
                a64::movz(false, W_BYTE, u16::from(byte), 0),
                a64::strb(W_BYTE, X_UART, UARTDR),
            ]
        })
        .collect()
}

/// PSCI SYSTEM_OFF through SMC, then spin should it ever return.
fn power_off() -> Vec<u32> {
    vec![
        a64::movz(true, 0, (PSCI_SYSTEM_OFF & 0xffff) as u16, 0),
        a64::movk(true, 0, (PSCI_SYSTEM_OFF >> 16) as u16, 16),
        a64::smc(0),
        a64::b(0),
    ]
}

/// Prints "hello\n" and powers off.
fn hello_then_power_off() -> Vec<u32> {
    [load_uart_base(), print(b"hello\n"), power_off()].concat()
}

/// Prints "hello\n", then echoes every byte it receives, forever.
fn hello_then_echo() -> Vec<u32> {
    let echo_loop = vec![
        a64::movz(false, 3, UARTCR_ENABLE_TX_RX, 0),
        a64::str_w(3, X_UART, UARTCR),
        // wait: while UARTFR.RXFE, read UARTFR again
        a64::ldr_w(W_BYTE, X_UART, UARTFR),
        a64::tbnz_w(W_BYTE, UARTFR_RXFE_BIT, -4),
        a64::ldrb(W_BYTE, X_UART, UARTDR),
        a64::strb(W_BYTE, X_UART, UARTDR),
        // back to wait
        a64::b(-16),
    ];
    [load_uart_base(), print(b"hello\n"), echo_loop].concat()
}

/// `b .`: runs forever and prints nothing.
fn spin() -> Vec<u32> {
    vec![a64::b(0)]
}

/// Writes `words` little-endian to a raw image named after the test.
fn write_image(name: &str, words: &[u32]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("harness-{name}-{}.bin", std::process::id()));
    let bytes: Vec<u8> = words.iter().flat_map(|word| word.to_le_bytes()).collect();
    std::fs::write(&path, bytes).expect("write test image");
    path
}

/// A small machine: one CPU is all these guests use.
fn small_config(image: PathBuf) -> QemuConfig {
    QemuConfig {
        smp: 1,
        memory: "256M".to_owned(),
        timeout: Duration::from_secs(60),
        ..QemuConfig::new(image)
    }
}

const SHORT: Duration = Duration::from_secs(20);

#[test]
fn encoders_match_assembler_output() {
    // Words from `llvm-mc -triple=aarch64 -show-encoding` (branches through
    // `-filetype=obj` and `llvm-objdump -d`).
    assert_eq!(a64::movz(true, 1, 0x0900, 16), 0xd2a1_2001); // mov x1, #0x9000000
    assert_eq!(a64::movz(false, 2, 0x68, 0), 0x5280_0d02); // mov w2, #104
    assert_eq!(a64::strb(2, 1, 0), 0x3900_0022); // strb w2, [x1]
    assert_eq!(a64::ldrb(2, 1, 0), 0x3940_0022); // ldrb w2, [x1]
    assert_eq!(a64::movz(true, 0, 0x0008, 0), 0xd280_0100); // mov x0, #8
    assert_eq!(a64::movk(true, 0, 0x8400, 16), 0xf2b0_8000); // movk x0, #0x8400, lsl #16
    assert_eq!(a64::smc(0), 0xd400_0003); // smc #0
    assert_eq!(a64::b(0), 0x1400_0000); // b .
    assert_eq!(a64::b(-16), 0x17ff_fffc); // b .-16
    assert_eq!(a64::movz(false, 3, 0x301, 0), 0x5280_6023); // mov w3, #0x301
    assert_eq!(a64::str_w(3, 1, 0x30), 0xb900_3023); // str w3, [x1, #48]
    assert_eq!(a64::ldr_w(2, 1, 0x18), 0xb940_1822); // ldr w2, [x1, #24]
    assert_eq!(a64::tbnz_w(2, 4, -4), 0x3727_ffe2); // tbnz w2, #4, .-4
}

#[test]
fn panic_lines_are_found_in_a_fake_console() {
    let console = "personal: ready\r\n[janus] foreground: work\r\n\
                   [janus] PANIC at hyp/src/mm/stage2.rs:88: out of frames\r\nwork: ready\r\n";
    assert_eq!(
        find_panic_line(console),
        Some("[janus] PANIC at hyp/src/mm/stage2.rs:88: out of frames")
    );
    assert!(is_panic_line("vcpu 1: [janus] panic: bad state"));
    assert!(!is_panic_line("[janus] foreground: personal"));
    assert_eq!(find_panic_line("personal: ready\n"), None);
}

#[test]
fn expect_sees_hello_and_exit_status_is_zero() {
    // Default machine (4 CPUs, 2G, GICv3): the defaults must boot.
    let mut qemu = Qemu::start(QemuConfig::new(write_image(
        "hello-off",
        &hello_then_power_off(),
    )))
    .expect("start QEMU");
    assert_eq!(qemu.expect("hello", SHORT).expect("hello"), "hello");
    let status = qemu.wait_exit(SHORT).expect("QEMU exits");
    assert!(status.success(), "{status}");
    assert!(!qemu.is_running());
    assert_eq!(qemu.output(), "hello\n");
    assert_eq!(qemu.unread_output(), "\n");
}

#[test]
fn gicv2_and_icount_options_boot() {
    let config = QemuConfig {
        gic_version: 2,
        icount_shift: Some(0),
        ..small_config(write_image("hello-off-gicv2", &hello_then_power_off()))
    };
    let mut qemu = Qemu::start(config).expect("start QEMU");
    qemu.expect("hello\n", SHORT).expect("hello");
    assert!(qemu.wait_exit(SHORT).expect("exit").success());
}

#[test]
fn timeout_error_carries_the_needle_and_output_tail() {
    let mut qemu = Qemu::start(small_config(write_image(
        "hello-echo-timeout",
        &hello_then_echo(),
    )))
    .expect("start QEMU");
    qemu.expect("hello", SHORT).expect("hello");
    let started = Instant::now();
    let error = qemu
        .expect("never printed", Duration::from_millis(300))
        .expect_err("the needle never comes");
    assert!(started.elapsed() < Duration::from_secs(5));
    match &error {
        HarnessError::Timeout {
            needle,
            timeout,
            output_tail,
        } => {
            assert_eq!(needle, "never printed");
            assert_eq!(*timeout, Duration::from_millis(300));
            assert!(output_tail.contains("hello"), "{output_tail}");
        }
        other => panic!("expected a timeout, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("never printed") && message.contains("hello"),
        "{message}"
    );
    assert!(qemu.is_running());
}

#[test]
fn send_reaches_the_guest_and_expect_any_picks_the_first() {
    let mut qemu = Qemu::start(small_config(write_image(
        "hello-echo-send",
        &hello_then_echo(),
    )))
    .expect("start QEMU");
    let (index, text) = qemu
        .expect_any(&["not there", "hello"], SHORT)
        .expect("hello");
    assert_eq!((index, text.as_str()), (1, "hello"));
    qemu.send(b"ping\n").expect("send");
    let text = qemu.expect("ping", SHORT).expect("echoed ping");
    assert_eq!(text, "\nping");
    qemu.send_line("pong").expect("send line");
    assert_eq!(
        qemu.expect("pong\n", SHORT).expect("echoed pong"),
        "\npong\n"
    );
}

#[test]
fn echoed_panic_line_fails_a_wait_fast() {
    let mut qemu = Qemu::start(small_config(write_image(
        "hello-echo-panic",
        &hello_then_echo(),
    )))
    .expect("start QEMU");
    qemu.expect("hello", SHORT).expect("hello");
    qemu.send(b"[janus] PANIC: injected by the harness self-test\n")
        .expect("send");
    let started = Instant::now();
    let error = qemu
        .expect("never printed", Duration::from_secs(60))
        .expect_err("the panic ends the wait");
    assert!(started.elapsed() < Duration::from_secs(10));
    match error {
        HarnessError::Panic(line, tail) => {
            assert_eq!(line, "[janus] PANIC: injected by the harness self-test");
            assert!(tail.contains("hello"), "{tail}");
        }
        other => panic!("expected a panic, got {other}"),
    }
}

#[test]
fn exit_while_waiting_fails_fast() {
    let mut qemu = Qemu::start(small_config(write_image(
        "hello-off-exit",
        &hello_then_power_off(),
    )))
    .expect("start QEMU");
    let started = Instant::now();
    let error = qemu
        .expect("never printed", Duration::from_secs(60))
        .expect_err("QEMU exits first");
    assert!(started.elapsed() < Duration::from_secs(10));
    match error {
        HarnessError::Exited {
            needle,
            status,
            output_tail,
        } => {
            assert_eq!(needle, "never printed");
            assert!(status.is_some_and(|status| status.success()), "{status:?}");
            assert!(output_tail.contains("hello"));
        }
        other => panic!("expected an exit, got {other}"),
    }
}

#[test]
fn drop_kills_a_guest_that_runs_forever() {
    let qemu = Qemu::start(small_config(write_image("spin-drop", &spin()))).expect("start QEMU");
    let proc_entry = PathBuf::from(format!("/proc/{}", qemu.pid()));
    let socket_dir = qemu
        .qmp_socket()
        .parent()
        .expect("socket has a directory")
        .to_path_buf();
    assert!(proc_entry.exists());
    assert!(qemu.is_running());
    let started = Instant::now();
    drop(qemu);
    assert!(started.elapsed() < Duration::from_secs(10));
    // Gone, not a zombie: drop also reaped it.
    assert!(
        !proc_entry.exists(),
        "{} still exists",
        proc_entry.display()
    );
    assert!(
        !socket_dir.exists(),
        "{} still exists",
        socket_dir.display()
    );
}

#[test]
fn watchdog_kills_a_run_past_its_limit() {
    let config = QemuConfig {
        timeout: Duration::from_secs(1),
        ..small_config(write_image("spin-watchdog", &spin()))
    };
    let mut qemu = Qemu::start(config).expect("start QEMU");
    let started = Instant::now();
    match qemu.wait_exit(Duration::from_secs(30)) {
        Err(HarnessError::Watchdog { limit, .. }) => assert_eq!(limit, Duration::from_secs(1)),
        other => panic!("expected the watchdog, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!qemu.is_running());
}

#[test]
fn qmp_reports_status_events_and_quits() {
    let mut qemu = Qemu::start(small_config(write_image("spin-qmp", &spin()))).expect("start QEMU");
    let qmp = qemu.qmp().expect("connect QMP");
    assert!(qmp.greeting()["QMP"]["version"]["qemu"]["major"].is_u64());
    let status = qmp.query_status().expect("query-status");
    assert_eq!(status["status"], "running");
    assert_eq!(status["running"], true);
    qmp.system_powerdown().expect("system_powerdown");
    let event = qmp
        .wait_event("POWERDOWN", Duration::from_secs(5))
        .expect("POWERDOWN event");
    assert_eq!(event["event"], "POWERDOWN");
    match qmp.execute("no-such-command", None) {
        Err(HarnessError::Qmp { class, .. }) => assert_eq!(class, "CommandNotFound"),
        other => panic!("expected a QMP error, got {other:?}"),
    }
    qmp.quit().expect("quit");
    let status = qemu.wait_exit(SHORT).expect("QEMU exits after quit");
    assert!(status.success(), "{status}");
}

#[test]
fn missing_kernel_is_not_found() {
    let error = Qemu::start(QemuConfig::new("/nonexistent/janus-harness.bin"))
        .err()
        .expect("no such image");
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert!(error.to_string().contains("/nonexistent/janus-harness.bin"));
}

//! Host tests of `dev/sbsa_uart.rs`.

use super::*;

const DR: u64 = UartReg::Dr as u64;
const FR: u64 = UartReg::Fr as u64;
const IMSC: u64 = UartReg::Imsc as u64;
const RIS: u64 = UartReg::Ris as u64;
const MIS: u64 = UartReg::Mis as u64;
const ICR: u64 = UartReg::Icr as u64;

const FR_BUSY: u64 = 1 << 3;
const FR_RXFE: u64 = 1 << 4;
const FR_TXFF: u64 = 1 << 5;
const FR_RXFF: u64 = 1 << 6;
const FR_TXFE: u64 = 1 << 7;

const RXIS: u64 = 1 << 4;
const TXIS: u64 = 1 << 5;
const RTIS: u64 = 1 << 6;
const OEIS: u64 = 1 << 10;

fn read(uart: &mut SbsaUart, offset: u64) -> u64 {
    uart.read(offset, Width::Word).unwrap()
}

fn write(uart: &mut SbsaUart, offset: u64, value: u64) {
    uart.write(offset, Width::Word, value).unwrap();
}

/// Reads DR until FR.RXFE, as `pl011_fifo_to_tty` does.
fn read_all(uart: &mut SbsaUart) -> Vec<u8> {
    let mut bytes = Vec::new();
    while read(uart, FR) & FR_RXFE == 0 {
        bytes.push(u8::try_from(read(uart, DR)).unwrap());
    }
    bytes
}

#[test]
fn bytes_written_to_dr_come_out_in_order() {
    let mut uart = SbsaUart::new();
    for byte in b"hello\r\n" {
        write(&mut uart, DR, u64::from(*byte));
    }
    assert_eq!(uart.pending_output(), 7);
    assert_eq!(uart.take_output(), b"hello\r\n");
    assert!(uart.take_output().is_empty());
}

#[test]
fn dr_write_keeps_only_the_data_byte() {
    let mut uart = SbsaUart::new();
    write(&mut uart, DR, 0xffff_ff41);
    uart.write(DR, Width::Byte, 0x42).unwrap();
    uart.write(DR, Width::Half, 0x0f43).unwrap();
    assert_eq!(uart.take_output(), b"ABC");
}

#[test]
fn drain_output_fills_the_buffer_and_keeps_the_rest() {
    let mut uart = SbsaUart::new();
    for byte in b"abcdef" {
        write(&mut uart, DR, u64::from(*byte));
    }
    let mut buffer = [0u8; 4];
    assert_eq!(uart.drain_output(&mut buffer), 4);
    assert_eq!(&buffer, b"abcd");
    assert_eq!(uart.drain_output(&mut buffer), 2);
    assert_eq!(&buffer[..2], b"ef");
    assert_eq!(uart.drain_output(&mut buffer), 0);
}

#[test]
fn full_output_queue_drops_the_oldest_bytes_and_counts_them() {
    let mut uart = SbsaUart::new();
    for index in 0..TX_QUEUE_BYTES + 3 {
        write(&mut uart, DR, u64::try_from(index % 256).unwrap());
    }
    // The guest is never held back.
    assert_eq!(read(&mut uart, FR) & FR_TXFF, 0);
    assert_eq!(uart.output_dropped(), 3);
    let output = uart.take_output();
    assert_eq!(output.len(), TX_QUEUE_BYTES);
    assert_eq!(output[0], 3);
    assert_eq!(
        *output.last().unwrap(),
        u8::try_from((TX_QUEUE_BYTES + 2) % 256).unwrap()
    );
}

#[test]
fn pushed_input_reads_back_from_dr_until_rxfe() {
    let mut uart = SbsaUart::new();
    assert_eq!(uart.push_input(b"ls\r"), 3);
    assert_eq!(read(&mut uart, FR) & FR_RXFE, 0);
    assert_eq!(read_all(&mut uart), b"ls\r");
    assert_ne!(read(&mut uart, FR) & FR_RXFE, 0);
}

#[test]
fn dr_read_on_an_empty_fifo_returns_zero() {
    let mut uart = SbsaUart::new();
    assert_eq!(read(&mut uart, DR), 0);
}

#[test]
fn dr_byte_read_pops_one_byte() {
    let mut uart = SbsaUart::new();
    uart.push_input(b"xy");
    assert_eq!(uart.read(DR, Width::Byte), Ok(u64::from(b'x')));
    assert_eq!(uart.read(DR, Width::Half), Ok(u64::from(b'y')));
}

#[test]
fn push_input_stops_at_the_fifo_depth_and_sets_rxff() {
    let mut uart = SbsaUart::new();
    let bytes = [b'a'; RX_FIFO_BYTES + 5];
    assert_eq!(uart.push_input(&bytes), RX_FIFO_BYTES);
    assert_ne!(read(&mut uart, FR) & FR_RXFF, 0);
    assert_eq!(uart.push_input(b"b"), 0);
    read(&mut uart, DR);
    assert_eq!(read(&mut uart, FR) & FR_RXFF, 0);
    assert_eq!(uart.push_input(b"bc"), 1);
    let received = read_all(&mut uart);
    assert_eq!(received.len(), RX_FIFO_BYTES);
    assert_eq!(*received.last().unwrap(), b'b');
}

#[test]
fn flags_report_an_idle_empty_transmitter() {
    let mut uart = SbsaUart::new();
    let flags = read(&mut uart, FR);
    assert_ne!(flags & FR_TXFE, 0);
    assert_ne!(flags & FR_RXFE, 0);
    assert_eq!(flags & (FR_TXFF | FR_BUSY | FR_RXFF), 0);
    write(&mut uart, DR, u64::from(b'a'));
    let flags = read(&mut uart, FR);
    assert_ne!(flags & FR_TXFE, 0);
    assert_eq!(flags & (FR_TXFF | FR_BUSY), 0);
}

#[test]
fn write_to_fr_is_ignored() {
    let mut uart = SbsaUart::new();
    let before = read(&mut uart, FR);
    write(&mut uart, FR, 0xffff);
    assert_eq!(read(&mut uart, FR), before);
}

#[test]
fn writes_to_ris_and_mis_are_ignored() {
    let mut uart = SbsaUart::new();
    write(&mut uart, ICR, 0xffff);
    write(&mut uart, RIS, 0xff);
    write(&mut uart, MIS, 0xff);
    assert_eq!(read(&mut uart, RIS), 0);
    assert_eq!(read(&mut uart, MIS), 0);
}

#[test]
fn received_byte_raises_rx_and_timeout_interrupts() {
    let mut uart = SbsaUart::new();
    uart.push_input(b"q");
    let raw = read(&mut uart, RIS);
    assert_ne!(raw & RXIS, 0);
    assert_ne!(raw & RTIS, 0);
}

#[test]
fn interrupt_line_follows_the_mask() {
    let mut uart = SbsaUart::new();
    uart.push_input(b"q");
    assert!(!uart.irq_level());
    assert_eq!(read(&mut uart, MIS), 0);
    write(&mut uart, IMSC, RTIS);
    assert!(uart.irq_level());
    assert_eq!(read(&mut uart, MIS), RTIS);
    write(&mut uart, IMSC, 0);
    assert!(!uart.irq_level());
}

#[test]
fn draining_the_fifo_clears_the_rx_interrupts() {
    let mut uart = SbsaUart::new();
    write(&mut uart, IMSC, RXIS | RTIS);
    uart.push_input(b"ab");
    assert!(uart.irq_level());
    read(&mut uart, DR);
    assert!(uart.irq_level());
    read(&mut uart, DR);
    assert!(!uart.irq_level());
    assert_eq!(read(&mut uart, RIS) & (RXIS | RTIS), 0);
}

#[test]
fn icr_clears_only_the_written_bits() {
    let mut uart = SbsaUart::new();
    uart.push_input(b"a");
    write(&mut uart, ICR, RXIS);
    let raw = read(&mut uart, RIS);
    assert_eq!(raw & RXIS, 0);
    assert_ne!(raw & RTIS, 0);
    assert_ne!(raw & TXIS, 0);
    write(&mut uart, ICR, RTIS | TXIS);
    assert_eq!(read(&mut uart, RIS), 0);
    // The byte is still there; the next one raises the interrupts again.
    uart.push_input(b"b");
    assert_ne!(read(&mut uart, RIS) & (RXIS | RTIS), 0);
    assert_eq!(read_all(&mut uart), b"ab");
}

#[test]
fn imsc_keeps_only_interrupt_bits() {
    let mut uart = SbsaUart::new();
    write(&mut uart, IMSC, 0xffff_ffff);
    assert_eq!(read(&mut uart, IMSC), 0x7ff);
    assert_eq!(read(&mut uart, IMSC) & OEIS, OEIS);
}

#[test]
fn tx_interrupt_is_raised_from_reset_and_again_after_each_write() {
    let mut uart = SbsaUart::new();
    assert_ne!(read(&mut uart, RIS) & TXIS, 0);
    write(&mut uart, ICR, TXIS);
    assert_eq!(read(&mut uart, RIS) & TXIS, 0);
    write(&mut uart, DR, u64::from(b'x'));
    assert_ne!(read(&mut uart, RIS) & TXIS, 0);
    write(&mut uart, IMSC, TXIS);
    assert!(uart.irq_level());
}

#[test]
fn pl011_only_registers_read_back_what_was_written() {
    let mut uart = SbsaUart::new();
    // pl011_set_termios for 115200 baud from a 24 MHz clock, 8n1 with FIFOs.
    let cases = [
        (UartReg::Fbrd, 0x01),
        (UartReg::Ibrd, 0x0d),
        (UartReg::LcrH, 0x70),
        (UartReg::Cr, 0x0301),
        (UartReg::Ifls, 0x12),
        (UartReg::Ilpr, 0x05),
        (UartReg::Dmacr, 0x04),
    ];
    for (register, value) in cases {
        write(&mut uart, register as u64, value);
    }
    for (register, value) in cases {
        assert_eq!(read(&mut uart, register as u64), value, "{register:?}");
    }
    // Sixteen-bit accesses, as a plain PL011 driver makes them.
    uart.write(UartReg::Cr as u64, Width::Half, 0x0b01).unwrap();
    assert_eq!(uart.read(UartReg::Cr as u64, Width::Half), Ok(0x0b01));
}

#[test]
fn reset_values_match_the_trm() {
    let mut uart = SbsaUart::new();
    assert_eq!(read(&mut uart, UartReg::Cr as u64), 0x0300);
    assert_eq!(read(&mut uart, UartReg::Ifls as u64), 0x12);
    assert_eq!(read(&mut uart, UartReg::LcrH as u64), 0);
    assert_eq!(read(&mut uart, IMSC), 0);
    assert_eq!(read(&mut uart, FR), FR_TXFE | FR_RXFE);
}

#[test]
fn reset_discards_queues_and_settings() {
    let mut uart = SbsaUart::new();
    write(&mut uart, DR, u64::from(b'a'));
    uart.push_input(b"b");
    write(&mut uart, IMSC, RXIS);
    write(&mut uart, UartReg::Ibrd as u64, 13);
    uart.reset();
    assert_eq!(uart.pending_output(), 0);
    assert_ne!(read(&mut uart, FR) & FR_RXFE, 0);
    assert_eq!(read(&mut uart, IMSC), 0);
    assert_eq!(read(&mut uart, UartReg::Ibrd as u64), 0);
    assert!(!uart.irq_level());
}

#[test]
fn identification_registers_read_as_a_pl011() {
    let mut uart = SbsaUart::new();
    // amba_read_periphid reads each register with readl and keeps the low byte.
    let mut periph_id = 0u64;
    let mut cell_id = 0u64;
    for index in 0..4u64 {
        periph_id |= (read(&mut uart, 0xfe0 + 4 * index) & 0xff) << (8 * index);
        cell_id |= (read(&mut uart, 0xff0 + 4 * index) & 0xff) << (8 * index);
    }
    assert_eq!(cell_id, 0xb105_f00d);
    // Matches Linux's pl011_ids entry (id 0x00041011, mask 0x000fffff).
    assert_eq!(periph_id & 0x000f_ffff, 0x0004_1011);
    // Revision 3: Linux picks a 32-byte FIFO.
    assert_eq!((periph_id >> 20) & 0xf, 3);
}

#[test]
fn unknown_offsets_are_refused() {
    let mut uart = SbsaUart::new();
    for offset in [0x008, 0x01c, 0x04c, 0x080, 0xfdc, 0x1000, 0x001, u64::MAX] {
        assert_eq!(
            uart.read(offset, Width::Word),
            Err(DevError::UnknownRegister)
        );
        assert_eq!(
            uart.write(offset, Width::Word, 0),
            Err(DevError::UnknownRegister)
        );
    }
    assert_eq!(uart.pending_output(), 0);
}

#[test]
fn bad_widths_are_refused() {
    let mut uart = SbsaUart::new();
    assert_eq!(uart.read(DR, Width::Double), Err(DevError::BadWidth));
    assert_eq!(uart.write(DR, Width::Double, 0x41), Err(DevError::BadWidth));
    assert_eq!(uart.read(FR, Width::Byte), Err(DevError::BadWidth));
    assert_eq!(uart.write(IMSC, Width::Byte, 0x10), Err(DevError::BadWidth));
    assert_eq!(uart.read(IMSC, Width::Word), Ok(0));
    assert_eq!(uart.pending_output(), 0);
}

/// The SBSA path of drivers/tty/serial/amba-pl011.c, step by step.
#[test]
fn linux_sbsa_driver_sequence_never_stalls() {
    let mut uart = SbsaUart::new();
    // Input typed before the port is opened.
    uart.push_input(b"early");

    // pl011_register_port: mask and clear everything.
    write(&mut uart, IMSC, 0);
    write(&mut uart, ICR, 0xffff);

    // sbsa_uart_startup -> pl011_hwinit: clear errors and RX, unmask RX.
    write(
        &mut uart,
        ICR,
        OEIS | (1 << 9) | (1 << 8) | (1 << 7) | RTIS | RXIS,
    );
    let mut im = read(&mut uart, IMSC);
    write(&mut uart, IMSC, RTIS | RXIS);
    // pl011_allocate_irq restores the saved mask.
    write(&mut uart, IMSC, im);
    // pl011_enable_interrupts: clear RX, drain up to 2 * fifosize bytes.
    write(&mut uart, ICR, RTIS | RXIS);
    for _ in 0..64 {
        if read(&mut uart, FR) & FR_RXFE != 0 {
            break;
        }
        read(&mut uart, DR);
    }
    im = RTIS | RXIS;
    write(&mut uart, IMSC, im);
    assert!(!uart.irq_level());

    // pl011_start_tx_pio -> pl011_tx_chars(from_irq = false): write while !TXFF.
    let message = b"Welcome to Linux\r\n";
    let mut sent = 0;
    while sent < message.len() && read(&mut uart, FR) & FR_TXFF == 0 {
        write(&mut uart, DR, u64::from(message[sent]));
        sent += 1;
    }
    assert_eq!(sent, message.len());
    // Everything went out, so pl011_stop_tx leaves TXIM masked.
    write(&mut uart, IMSC, im);
    assert_eq!(uart.take_output(), message);
    assert!(!uart.irq_level());

    // A key arrives: the line rises, pl011_int reads it and the line falls.
    uart.push_input(b"\r");
    assert!(uart.irq_level());
    let status = read(&mut uart, RIS) & im;
    write(&mut uart, ICR, status & !(TXIS | RTIS | RXIS));
    assert_ne!(status & (RTIS | RXIS), 0);
    assert_eq!(read_all(&mut uart), b"\r");
    assert_eq!(read(&mut uart, RIS) & im, 0);
    assert!(!uart.irq_level());
}

/// The interrupt-driven TX path: pl011_int with TXIM unmasked.
#[test]
fn linux_tx_interrupt_path_drains_and_masks() {
    let mut uart = SbsaUart::new();
    let fifosize = 32;
    let mut pending: VecDeque<u8> = (0..100u8).collect();
    let mut im = RTIS | RXIS | TXIS;
    write(&mut uart, IMSC, im);
    // The TX interrupt is there to take.
    assert!(uart.irq_level());

    let mut passes = 0;
    let mut status = read(&mut uart, RIS) & im;
    while status != 0 {
        passes += 1;
        assert!(passes < 256, "AMBA_ISR_PASS_LIMIT reached");
        write(&mut uart, ICR, status & !(TXIS | RTIS | RXIS));
        if status & TXIS != 0 {
            // pl011_tx_chars(from_irq = true): half a FIFO, no TXFF check.
            for _ in 0..fifosize / 2 {
                match pending.pop_front() {
                    Some(byte) => write(&mut uart, DR, u64::from(byte)),
                    None => break,
                }
            }
            if pending.is_empty() {
                // pl011_stop_tx.
                im &= !TXIS;
                write(&mut uart, IMSC, im);
            }
        }
        status = read(&mut uart, RIS) & im;
    }
    assert_eq!(uart.take_output(), (0..100u8).collect::<Vec<_>>());
    assert!(!uart.irq_level());
    // Clearing TXIS through ICR, as pl011_disable_interrupts does, and
    // unmasking it again waits for the next write, as on hardware.
    write(&mut uart, ICR, 0xffff);
    write(&mut uart, IMSC, TXIS);
    assert!(!uart.irq_level());
    write(&mut uart, DR, u64::from(b'!'));
    assert!(uart.irq_level());
}

//! The EL1 timers of a personality: the physical one works (it is the guest's, not
//! trapped), both fire at their deadline through the vGIC, their pending state follows
//! their output, the guest's CNTV_CTL_EL0 holds what it wrote, and the virtual clock
//! starts near zero at every start while the physical counter runs on.

use std::time::Duration;

use qemu_virt_tests::probe::{self, wait_for_all, LINE_TIMEOUT, SCAN};

/// The line of `name` starting with `prefix`, or a panic showing the output.
fn line<'a>(output: &'a str, name: &str, prefix: &str) -> &'a str {
    let start = format!("{name}: {prefix}");
    output
        .lines()
        .find(|line| line.starts_with(&start))
        .unwrap_or_else(|| panic!("no {start:?} line\n{output}"))
}

#[test]
fn timers_fire_on_time_and_their_pending_state_follows_their_output() {
    let mut qemu = probe::boot("timer_checks", "probe.after=timer", SCAN);
    wait_for_all(&mut qemu, &["personal: timer: checks done"], LINE_TIMEOUT).unwrap();
    let output = qemu.output();
    assert!(!output.contains("unexpected exception"), "{output}");
    for (timer, intid) in [("physical", 30), ("virtual", 27)] {
        let fired = line(&output, "personal", &format!("timer: {timer} timer "));
        assert!(
            fired.contains("fired at its deadline, not before ("),
            "{fired}"
        );
        assert!(
            fired.contains(&format!("through INTID {intid},")),
            "{fired}"
        );
    }
    // The guest's control register is what it wrote: no IMASK Janus set behind it.
    let control = line(&output, "personal", "timer: CNTV_CTL_EL0 reads back");
    assert!(control.contains("reads back exactly what"), "{control}");
    assert!(control.contains("(handler saw 0x1)"), "{control}");
    // Both fired with the probe's interrupts masked: pending (bits 27 and 30). Left
    // asserted, both are taken once unmasked; disabled, moved into the future or
    // masked, neither shows pending any more and neither is taken.
    let prefix = "timer: both fired masked, ISPENDR0 0x48000000; ";
    let control = line(&output, "personal", &format!("{prefix}left asserted"));
    assert!(
        control.ends_with("ISPENDR0 0x48000000, 2 interrupts taken when unmasked"),
        "{control}"
    );
    for change in ["disabled", "reprogrammed into the future", "masked"] {
        let check = line(&output, "personal", &format!("{prefix}{change}:"));
        assert!(
            check.ends_with("ISPENDR0 0x0, 0 interrupts taken when unmasked"),
            "{check}"
        );
    }
    assert!(
        output.contains("personal: timer: checks done, 0 other interrupts"),
        "{output}"
    );
    // The other personality was not disturbed.
    wait_for_all(&mut qemu, &["work: alive 2"], LINE_TIMEOUT).unwrap();
}

/// Milliseconds in `key` ("virtual " or "physical ") of a clock line.
fn clock_ms(clock_line: &str, key: &str) -> u64 {
    probe::field(clock_line, key)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {key:?} in {clock_line:?}"))
}

#[test]
fn the_virtual_clock_starts_near_zero_at_every_start() {
    // work resets itself after running 3 s: its restart must begin its virtual
    // clock again (CNTVOFF_EL2 set at each start), while the physical counter,
    // which Janus does not offset, shows the seconds that went by.
    let reset = format!("{SCAN} probe.after=reset probe.reset_delay_ms=3000");
    let mut qemu = probe::boot("timer_clock_reset", SCAN, &reset);
    wait_for_all(&mut qemu, &["[janus] work: restarted"], LINE_TIMEOUT).unwrap();
    // Work's lines are kept while it is behind: bring it forward.
    probe::switch_to(&mut qemu, 1).unwrap();
    let deadline = std::time::Instant::now() + LINE_TIMEOUT;
    while qemu.output().matches("work: clock at start: ").count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            qemu.output_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = qemu.output();
    let starts: Vec<&str> = output
        .lines()
        .filter(|line| line.starts_with("work: clock at start: "))
        .collect();
    let (first, second) = (starts[0], starts[1]);
    let physical = clock_ms(second, "physical ");
    let first_physical = clock_ms(first, "physical ");
    assert!(
        physical >= first_physical + 3000,
        "the physical counter did not run on: {first} / {second}"
    );
    for start in [first, second] {
        let virtual_ms = clock_ms(start, "virtual ");
        assert!(
            virtual_ms < 2000,
            "the virtual clock did not start near zero: {start}"
        );
    }
}

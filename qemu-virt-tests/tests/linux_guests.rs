//! Two Linux personalities side by side: SMP, time, timer interrupts, reboot
//! and power-off of one while the other keeps answering, and isolation as
//! Linux sees it.

use qemu_virt_tests::linux::{Linux, BOOT_TIMEOUT};

fn uptime_pair(linux: &mut Linux, command: &str) -> (f64, f64) {
    let text = linux.run(command);
    let values: Vec<f64> = text
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    match values[..] {
        [a, b] => (a, b),
        _ => panic!("unexpected uptime output {text:?}"),
    }
}

/// Near zero here only because QEMU's counter also starts at 0 when QEMU does; that a
/// restarted personality's clock starts again near zero is `tests/timer.rs`'
/// `the_virtual_clock_starts_near_zero_at_every_start`.
#[test]
fn each_personality_has_two_cpus_and_a_clock_that_starts_near_zero() {
    let mut linux = Linux::boot();
    assert_eq!(linux.run("nproc"), "2");
    let (uptime, _) = uptime_pair(&mut linux, "cut -d' ' -f1 /proc/uptime; echo 0");
    assert!(
        uptime < 60.0,
        "personal's clock did not start near zero: {uptime}"
    );
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    assert_eq!(linux.run("nproc"), "2");
    assert_eq!(linux.run("grep -c ^processor /proc/cpuinfo"), "2");
}

#[test]
fn sleep_one_second_takes_about_one_second_of_guest_time() {
    let mut linux = Linux::boot();
    let sent = std::time::Instant::now();
    let (before, after) = uptime_pair(
        &mut linux,
        "a=$(cut -d' ' -f1 /proc/uptime); sleep 1; b=$(cut -d' ' -f1 /proc/uptime); echo $a $b",
    );
    // From sending the command to seeing its end marker: at least the second the
    // guest slept, by the host's clock too (a guest clock running fast, or a timer
    // firing early, would end it sooner). A lower bound only: TCG may take longer.
    let host = sent.elapsed().as_secs_f64();
    let elapsed = after - before;
    assert!(
        (0.95..1.5).contains(&elapsed),
        "sleep 1 took {elapsed} s of guest time"
    );
    assert!(host >= 0.99, "sleep 1 took only {host} s of host time");
}

/// The per-CPU counts on the virtual timer's line of /proc/interrupts.
fn timer_counts(linux: &mut Linux) -> Vec<u64> {
    let line = linux.run("grep arch_timer /proc/interrupts");
    line.split_whitespace()
        .skip(1)
        .take(2)
        .map(|count| {
            count
                .parse()
                .unwrap_or_else(|_| panic!("bad line {line:?}"))
        })
        .collect()
}

#[test]
fn virtual_timer_interrupts_arrive_on_both_cpus() {
    let mut linux = Linux::boot();
    let before = timer_counts(&mut linux);
    // Keep both vCPUs busy so neither sleeps tickless through the interval.
    linux.run("(i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done) & (i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done) & sleep 1; wait");
    let after = timer_counts(&mut linux);
    assert_eq!(before.len(), 2);
    for cpu in 0..2 {
        assert!(
            after[cpu] > before[cpu],
            "CPU {cpu}: {before:?} -> {after:?}"
        );
    }
}

/// `personal`'s exits by cause, from the statistics hotkey's `round`-th answer
/// (0 for the first one this boot).
fn exit_counts(linux: &mut Linux, round: usize) -> Vec<(String, u64)> {
    linux
        .qemu
        .send(&[qemu_virt_tests::linux::HOTKEY, b's'])
        .expect("statistics hotkey");
    let deadline = std::time::Instant::now() + BOOT_TIMEOUT;
    // The statistics end with the frame pool's line: the counts have arrived whole.
    while linux.qemu.output().matches("page-table frames\r\n").count() <= round {
        assert!(std::time::Instant::now() < deadline, "no statistics");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = linux.qemu.output();
    let prefix = "[janus] personal exits:";
    let counts = output
        .lines()
        .filter_map(|line| line.find(prefix).map(|at| &line[at + prefix.len()..]))
        .nth(round)
        .unwrap_or_else(|| panic!("no statistics line {round}"));
    let words: Vec<&str> = counts.split_whitespace().collect();
    words
        .chunks(2)
        .filter_map(|pair| Some((pair.first()?.to_string(), pair.get(1)?.parse().ok()?)))
        .collect()
}

/// The `irq` exits among `personal`'s counts.
fn irq_exits(counts: &[(String, u64)]) -> u64 {
    counts
        .iter()
        .find(|(cause, _)| cause == "irq")
        .map_or(0, |&(_, count)| count)
}

/// Busy loops on both vCPUs, `count` iterations each (six digits, so that every
/// command line, and the console traffic it causes, is the same length).
fn busy_both(count: &str) -> String {
    let loop_ = format!("(i=0; while [ $i -lt {count} ]; do i=$((i+1)); done)");
    format!("{loop_} & {loop_} & wait")
}

/// `personal`'s interrupt exits and timer interrupts while it runs `command`.
fn interrupt_exits_and_ticks(linux: &mut Linux, round: usize, command: &str) -> (u64, u64) {
    let ticks: u64 = timer_counts(linux).iter().sum();
    let exits = irq_exits(&exit_counts(linux, round));
    linux.run(command);
    let exits = irq_exits(&exit_counts(linux, round + 1)) - exits;
    let ticks = timer_counts(linux).iter().sum::<u64>() - ticks;
    (exits, ticks)
}

#[test]
fn a_timer_tick_costs_one_exit() {
    let mut linux = Linux::boot();
    // The same command twice, once nearly idle: what typing and echoing it costs
    // (physical UART interrupts, kicks) is the same, and the difference is the ticks'.
    let (idle_exits, idle_ticks) = interrupt_exits_and_ticks(&mut linux, 0, &busy_both("000001"));
    let (busy_exits, busy_ticks) = interrupt_exits_and_ticks(&mut linux, 2, &busy_both("100000"));
    let ticks = busy_ticks.saturating_sub(idle_ticks);
    let exits = busy_exits.saturating_sub(idle_exits);
    eprintln!("{exits} interrupt exits for {ticks} timer interrupts");
    // The timer PPI's own exit, and none for the guest's deactivation (HW list
    // register); an EOI maintenance exit per tick would add one. Besides, about
    // 0.3 kick SGIs per tick reach the busy vCPUs (as before the timers were
    // tied to HW list registers): 1.4 in all, where two exits a tick would be 2.3.
    assert!(ticks > 100, "only {ticks} more timer interrupts");
    assert!(
        exits * 5 < ticks * 9,
        "{exits} more interrupt exits for {ticks} more timer interrupts"
    );
}

/// Waits, with `work` in front, for the `work: ready` line of its restart
/// (its second) and its shell prompt.
fn wait_work_back(linux: &mut Linux) {
    let deadline = std::time::Instant::now() + BOOT_TIMEOUT;
    while linux.qemu.output().matches("work: ready").count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "work did not come back"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    linux.wait_shell("work");
}

#[test]
fn reboot_of_work_leaves_personal_answering() {
    let mut linux = Linux::boot();
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    linux.qemu.send_line("reboot -f").expect("send");
    linux.wait("[janus] work: system reset", BOOT_TIMEOUT);
    linux.wait("[janus] work: restarted", BOOT_TIMEOUT);
    linux.switch_to(0, "personal");
    assert_eq!(linux.run("hostname"), "personal");
    linux.switch_to(1, "work");
    wait_work_back(&mut linux);
    assert_eq!(linux.run("hostname"), "work");
    linux.switch_to(0, "personal");
    assert_eq!(linux.run("hostname"), "personal");
}

#[test]
fn poweroff_of_one_leaves_the_other_running() {
    let mut linux = Linux::boot();
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    linux.qemu.send_line("poweroff -f").expect("send");
    linux.wait("[janus] work: system off", BOOT_TIMEOUT);
    linux.switch_to(0, "personal");
    assert_eq!(linux.run("hostname"), "personal");
    assert_eq!(linux.run("nproc"), "2");
    assert!(linux.qemu.is_running());
    assert!(!linux.qemu.output().contains("powering the board off"));
    // Now personal too: the board powers off and QEMU exits cleanly.
    linux.qemu.send_line("poweroff -f").expect("send");
    let status = linux.qemu.wait_exit(BOOT_TIMEOUT).expect("QEMU exits");
    assert!(status.success(), "{status:?}");
}

/// `devmem ADDRESS` in the foreground shell: its output and exit status.
fn devmem(linux: &mut Linux, address: &str) -> String {
    linux.run(&format!("devmem {address} 32; echo status=$?"))
}

#[test]
fn devmem_of_other_memory_faults_only_that_process() {
    let mut linux = Linux::boot();
    let output = linux.qemu.output();
    let ram_of = |name: &str| -> String {
        let line = output
            .lines()
            .find(|line| line.starts_with(&format!("[janus] {name}: RAM ")))
            .unwrap_or_else(|| panic!("no memory map for {name}"));
        let start = line
            .split("RAM ")
            .nth(1)
            .and_then(|rest| rest.split('-').next());
        start.expect("RAM start").to_string()
    };
    let personal_ram = ram_of("personal");
    linux.switch_to(1, "work");
    linux.wait_shell("work");
    // SIGBUS kills devmem (status 128 + 7); the shell and work go on.
    for address in [personal_ram.as_str(), "0x40200000"] {
        let result = devmem(&mut linux, address);
        assert!(
            result.contains("status=135"),
            "devmem {address}: {result:?}"
        );
        assert!(result.contains("Bus error"), "devmem {address}: {result:?}");
    }
    assert_eq!(linux.run("hostname"), "work");
    let reports = linux.qemu.output();
    let personal_ipa = format!("[janus] work: read of IPA {personal_ram}");
    assert!(
        reports.contains(&personal_ipa),
        "Janus did not report {personal_ipa}"
    );
    assert!(reports.contains("[janus] work: read of IPA 0x40200000"));
    linux.switch_to(0, "personal");
    assert_eq!(linux.run("hostname"), "personal");
}

/// Where this kernel's text starts, from /proc/kallsyms.
fn kernel_text(linux: &mut Linux) -> String {
    let address = linux.run("grep -w _stext /proc/kallsyms | cut -d' ' -f1");
    assert_eq!(
        address.len(),
        16,
        "no _stext in /proc/kallsyms: {address:?}"
    );
    address
}

#[test]
fn each_start_of_each_personality_gets_its_own_boot_entropy() {
    let mut linux = Linux::boot();
    // A seeded CRNG from the first instant, and a kernel placed by its own
    // kaslr-seed.
    for name in ["personal", "work"] {
        if name == "work" {
            linux.switch_to(1, "work");
            linux.wait_shell("work");
        }
        assert_eq!(linux.run("dmesg | grep -c 'KASLR enabled'"), "1", "{name}");
        let crng = linux.run("dmesg | grep 'crng init done'");
        assert!(crng.contains("[    0.000000]"), "{name}: {crng:?}");
    }
    let work = kernel_text(&mut linux);
    linux.switch_to(0, "personal");
    let personal = kernel_text(&mut linux);
    assert_ne!(personal, work, "both personalities got the same kaslr-seed");
    linux.switch_to(1, "work");
    linux.qemu.send_line("reboot -f").expect("send");
    linux.wait("[janus] work: restarted", BOOT_TIMEOUT);
    wait_work_back(&mut linux);
    let rebooted = kernel_text(&mut linux);
    assert_ne!(rebooted, work, "a restart reused the previous kaslr-seed");
    assert_ne!(rebooted, personal);
}

use super::*;

/// Ticks a Janus line may wait in these tests.
const DEFER: u64 = 100;

/// Runs `action` with an `out` that collects everything into one byte string.
fn collect(action: impl FnOnce(&mut dyn FnMut(&[u8]))) -> Vec<u8> {
    let mut printed = Vec::new();
    action(&mut |bytes: &[u8]| printed.extend_from_slice(bytes));
    printed
}

fn two() -> Mux {
    Mux::new(&["linux", "debian"], 16, DEFER)
}

fn text(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or("<not UTF-8>")
}

#[test]
fn first_personality_starts_in_the_foreground() {
    let mux = two();
    assert_eq!(mux.foreground(), 0);
    assert_eq!(mux.count(), 2);
    assert_eq!(mux.name(1), Some("debian"));
    assert_eq!(mux.name(2), None);
}

#[test]
fn foreground_output_passes_straight_through() {
    let mut mux = two();
    let printed = collect(|out| mux.guest_output(0, b"login: ", 0, out));
    assert_eq!(printed, b"login: ");
    assert_eq!(mux.buffered(0), 0);
}

#[test]
fn background_output_is_buffered_then_shown_in_order_on_switch() {
    let mut mux = two();
    let printed = collect(|out| {
        mux.guest_output(1, b"boot ", 0, out);
        mux.guest_output(1, b"done\r\n", 0, out);
    });
    assert!(printed.is_empty());
    assert_eq!(mux.buffered(1), 11);

    let printed = collect(|out| mux.switch_to(1, 0, out));
    assert_eq!(printed, b"[janus] foreground: debian\r\nboot done\r\n");
    assert_eq!(mux.foreground(), 1);
    assert_eq!(mux.buffered(1), 0);

    // Now the other one is buffered.
    let printed = collect(|out| {
        mux.guest_output(0, b"x", 0, out);
        mux.guest_output(1, b"y", 0, out);
    });
    assert_eq!(printed, b"y");
    assert_eq!(mux.buffered(0), 1);
}

#[test]
fn exactly_capacity_is_kept_whole() {
    let mut mux = two();
    let bytes: Vec<u8> = (b'a'..b'a' + 16).collect();
    collect(|out| {
        mux.guest_output(1, &bytes[..10], 0, out);
        mux.guest_output(1, &bytes[10..], 0, out);
    });
    assert_eq!(mux.buffered(1), 16);
    assert_eq!(mux.overflow(1), 0);
    let printed = collect(|out| mux.switch_to(1, 0, out));
    let mut expected = b"[janus] foreground: debian\r\n".to_vec();
    expected.extend_from_slice(&bytes);
    assert_eq!(printed, expected);
}

#[test]
fn overflow_counts_dropped_bytes_and_keeps_the_newest() {
    let mut mux = two();
    collect(|out| {
        mux.guest_output(1, b"0123456789", 0, out);
        mux.guest_output(1, b"abcdefghij", 0, out);
    });
    assert_eq!(mux.buffered(1), 16);
    assert_eq!(mux.overflow(1), 4);
    let printed = collect(|out| mux.switch_to(1, 0, out));
    assert_eq!(
        text(&printed),
        "[janus] foreground: debian\r\n\
         [janus] debian: 4 bytes of output lost while in the background\r\n\
         456789abcdefghij"
    );
    assert_eq!(mux.overflow(1), 0);
}

#[test]
fn one_write_larger_than_capacity_keeps_its_tail() {
    let mut mux = two();
    let bytes: Vec<u8> = (b'A'..b'A' + 40).collect();
    collect(|out| {
        mux.guest_output(1, b"old", 0, out);
        mux.guest_output(1, &bytes, 0, out);
    });
    assert_eq!(mux.overflow(1), 3 + 24);
    let printed = collect(|out| mux.switch_to(1, 0, out));
    assert!(printed.ends_with(&bytes[24..]));
}

#[test]
fn buffer_keeps_order_across_wraparound() {
    let mut mux = two();
    let printed = collect(|out| {
        for chunk in [&b"abcdefgh"[..], b"ijklmnop", b"qrst", b"uv"] {
            mux.guest_output(1, chunk, 0, out);
        }
        mux.switch_to(1, 0, out);
    });
    assert!(printed.ends_with(b"\r\nghijklmnopqrstuv"));
}

#[test]
fn switching_to_the_current_foreground_still_prints_the_line() {
    let mut mux = two();
    let printed = collect(|out| mux.switch_to(0, 0, out));
    assert_eq!(printed, b"[janus] foreground: linux\r\n");
    assert_eq!(mux.foreground(), 0);
}

#[test]
fn next_cycles_in_configuration_order() {
    let mut mux = Mux::new(&["a", "b", "c"], 8, DEFER);
    let printed = collect(|out| {
        mux.next(0, out);
        mux.next(0, out);
        mux.next(0, out);
    });
    assert_eq!(
        text(&printed),
        "[janus] foreground: b\r\n[janus] foreground: c\r\n[janus] foreground: a\r\n"
    );
    assert_eq!(mux.foreground(), 0);
}

#[test]
fn switching_to_an_unknown_personality_changes_nothing() {
    let mut mux = two();
    collect(|out| mux.guest_output(1, b"kept", 0, out));
    let printed = collect(|out| mux.switch_to(5, 0, out));
    assert_eq!(printed, b"[janus] no personality 6 (there are 2)\r\n");
    assert_eq!(mux.foreground(), 0);
    assert_eq!(mux.buffered(1), 4);
}

#[test]
fn output_of_an_unknown_personality_is_dropped() {
    let mut mux = two();
    let printed = collect(|out| mux.guest_output(7, b"lost", 0, out));
    assert!(printed.is_empty());
    assert_eq!(mux.buffered(7), 0);
    assert_eq!(mux.overflow(7), 0);
}

#[test]
fn zero_capacity_counts_everything_as_lost() {
    let mut mux = Mux::new(&["a", "b"], 0, DEFER);
    collect(|out| mux.guest_output(1, b"abc", 0, out));
    assert_eq!(mux.buffered(1), 0);
    assert_eq!(mux.overflow(1), 3);
}

#[test]
fn stats_list_every_personality() {
    let mut mux = two();
    collect(|out| mux.guest_output(1, b"0123456789abcdefXY", 0, out));
    assert_eq!(
        mux.stats(),
        [
            "1 linux: foreground, 0 bytes buffered, 0 bytes lost",
            "2 debian: background, 16 bytes buffered, 2 bytes lost"
        ]
    );
}

#[test]
fn a_janus_line_at_a_line_start_goes_out_at_once() {
    let mut mux = two();
    let printed = collect(|out| {
        mux.guest_output(0, b"one\r\n", 0, out);
        mux.janus_line("note", Urgency::Deferred, 0, out);
    });
    assert_eq!(printed, b"one\r\n[janus] note\r\n");
}

#[test]
fn a_janus_line_waits_for_the_foreground_line_to_end() {
    let mut mux = two();
    let printed = collect(|out| {
        mux.guest_output(0, b"Loading mod", 0, out);
        mux.janus_line("work: refused", Urgency::Deferred, 1, out);
        mux.janus_line("work: refused again", Urgency::Deferred, 2, out);
        mux.guest_output(0, b"ules\r\nnext li", 3, out);
        mux.guest_output(0, b"ne\r\n", 4, out);
    });
    assert_eq!(
        text(&printed),
        "Loading modules\r\n[janus] work: refused\r\n[janus] work: refused again\r\n\
         next line\r\n"
    );
    assert_eq!(mux.next_deadline(), None);
}

#[test]
fn a_waiting_janus_line_breaks_in_after_the_delay_and_the_line_is_shown_again() {
    let mut mux = two();
    let printed = collect(|out| {
        mux.guest_output(0, b"linux:~# ", 0, out);
        mux.janus_line("work: refused", Urgency::Deferred, 10, out);
    });
    assert_eq!(printed, b"linux:~# ");
    assert_eq!(mux.next_deadline(), Some(10 + DEFER));
    let printed = collect(|out| assert_eq!(mux.tick(10 + DEFER - 1, out), Some(10 + DEFER)));
    assert!(printed.is_empty());
    let printed = collect(|out| assert_eq!(mux.tick(10 + DEFER, out), None));
    assert_eq!(text(&printed), "\r\n[janus] work: refused\r\nlinux:~# ");
    // Typing goes on after the prompt shown again.
    let printed = collect(|out| mux.guest_output(0, b"ls", 200, out));
    assert_eq!(printed, b"ls");
}

#[test]
fn lines_the_user_asked_for_break_in_at_once() {
    let mut mux = two();
    let printed = collect(|out| {
        mux.guest_output(0, b"linux:~# ", 0, out);
        mux.janus_line("1 linux: statistics", Urgency::Now, 0, out);
        mux.janus_line("2 debian: statistics", Urgency::Now, 0, out);
        mux.settle(out);
    });
    assert_eq!(
        text(&printed),
        "linux:~# \r\n[janus] 1 linux: statistics\r\n[janus] 2 debian: statistics\r\nlinux:~# "
    );
}

#[test]
fn too_many_waiting_lines_break_in_together() {
    let mut mux = two();
    let printed = collect(|out| {
        mux.guest_output(0, b"partial", 0, out);
        for index in 0..=DEFERRED_LINES {
            mux.janus_line(&format!("line {index}"), Urgency::Deferred, 0, out);
        }
    });
    let printed = text(&printed);
    assert_eq!(printed.matches("[janus] line ").count(), DEFERRED_LINES + 1);
    assert!(printed.starts_with("partial\r\n[janus] line 0\r\n"));
    assert!(printed.ends_with("\r\npartial"));
}

#[test]
fn a_switch_shows_waiting_lines_first_and_the_prompt_of_the_new_foreground() {
    let mut mux = two();
    let printed = collect(|out| {
        mux.guest_output(0, b"linux:~# ", 0, out);
        mux.switch_to(1, 0, out);
        mux.guest_output(1, b"debian:~# ", 0, out);
        mux.janus_line("waiting", Urgency::Deferred, 0, out);
        mux.switch_to(0, 0, out);
    });
    assert_eq!(
        text(&printed),
        "linux:~# \r\n[janus] foreground: debian\r\ndebian:~# \r\n[janus] waiting\r\n\
         [janus] foreground: linux\r\nlinux:~# "
    );
}

#[test]
fn forged_janus_lines_are_shown_behind_the_name_in_front_and_behind() {
    let mut mux = Mux::new(&["linux", "debian"], 256, DEFER);
    let printed = collect(|out| {
        mux.guest_output(0, b"[janus] foreground: debian\r\n", 0, out);
        mux.guest_output(1, b"[janus] foreground: linux\r\n", 0, out);
        mux.switch_to(1, 0, out);
    });
    let printed = text(&printed);
    assert!(printed.starts_with("linux| [janus] foreground: debian\r\n"));
    assert!(
        printed.ends_with("[janus] foreground: debian\r\ndebian| [janus] foreground: linux\r\n"),
        "{printed:?}"
    );
}

#[test]
fn bytes_a_guard_holds_go_out_after_the_delay() {
    let mut mux = two();
    let printed = collect(|out| mux.guest_output(0, b"\r\n[ja", 5, out));
    assert_eq!(printed, b"\r\n");
    assert_eq!(mux.next_deadline(), Some(5 + DEFER));
    let printed = collect(|out| assert_eq!(mux.tick(5 + DEFER, out), None));
    assert_eq!(printed, b"[ja");
}

#[test]
fn drain_shows_what_the_background_kept() {
    let mut mux = two();
    let printed = collect(|out| {
        mux.guest_output(0, b"linux:~# ", 0, out);
        mux.guest_output(1, b"debian: bye", 0, out);
        mux.drain(0, out);
    });
    assert_eq!(
        text(&printed),
        "linux:~# \r\n[janus] debian: its output while in the background (11 bytes, 0 lost):\r\n\
         debian: bye\r\n"
    );
    assert_eq!(mux.buffered(1), 0);
}

#[test]
fn restart_starts_a_fresh_line_for_the_guard() {
    let mut mux = two();
    collect(|out| mux.guest_output(0, b"abc[ja", 0, out));
    mux.restarted(0);
    let printed = collect(|out| mux.guest_output(0, b"[janus]", 0, out));
    assert_eq!(printed, b"linux| [janus]");
}

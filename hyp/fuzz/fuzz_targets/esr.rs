//! Syndrome decoding and the fault injection computed from it, on arbitrary
//! register values: never a panic.
#![no_main]

use hyp::trap::esr::{decode, Exit};
use hyp::trap::inject::{self, GuestState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|words: [u64; 5]| {
    let [esr, far, hpfar, pstate, vbar] = words;
    let state = GuestState {
        pc: far,
        pstate,
        vbar_el1: vbar,
    };
    match decode(esr, far, hpfar) {
        Exit::Mmio(access) => {
            let _ = inject::data_abort(&state, access.ipa, access.write);
        }
        Exit::InstructionAbort(_) => {
            let _ = inject::instruction_abort(&state, far);
        }
        _ => {
            let _ = inject::undefined(&state);
        }
    }
});

//! The boot bundle parser and the configuration check on arbitrary bytes:
//! never a panic, and whatever parses validates without one.
#![no_main]

use hyp::vm::bundle::Bundle;
use hyp::vm::config::{validate, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(bundle) = Bundle::parse(bytes) {
        let _ = validate(bundle.personalities(), &Limits::with_physical_cpus(4));
    }
});

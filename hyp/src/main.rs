//! The `janus` binary: the library's boot path, plus the panic handler.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
use hyp as _;

/// Janus' own broken invariant: say so on the console and stop this CPU.
#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hyp::console::emergency(format_args!("{info}"));
    hyp::arch::aarch64::exception::halt()
}

/// Built for the host only so that `cargo build` of the workspace succeeds.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("janus runs at EL2 on aarch64: build it with `make`");
}

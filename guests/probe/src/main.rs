//! The probe: a bare-metal EL1 guest that prints through Janus' console
//! hypercall, attacks the isolation Janus promises and its virtio block device,
//! checks its timers, and measures trap costs.
//! What it does after starting is chosen by `probe.after=` on its command line.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod attacks;
#[cfg(target_os = "none")]
mod hvc;
#[cfg(target_os = "none")]
mod probe;
#[cfg(target_os = "none")]
mod timer;
#[cfg(target_os = "none")]
mod virtio;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the probe is an aarch64 guest: build it with `make`");
}

//! A guest's register accesses to its emulated devices (virtual GICv3 and
//! UART), SGI writes, typed input and list-register traffic, in any order and
//! with any values: never a panic.
#![no_main]

use hyp::dev::bus::Bus;
use hyp::dev::Width;
use hyp::vm::devices::{Devices, Effects};
use libfuzzer_sys::fuzz_target;

/// Guest addresses around the device windows (GICD, GICR, UART).
const BASES: [u64; 3] = [0x0800_0000, 0x080A_0000, 0x0900_0000];

fuzz_target!(|ops: Vec<(u8, u32, u64)>| {
    let Ok(mut devices) = Devices::new(2) else {
        return;
    };
    let bus = Bus::new(devices.fitted());
    let mut effects = Effects::default();
    let mut lrs = [0u64; 4];
    for (kind, offset, value) in ops {
        let base = BASES[usize::from(kind) % BASES.len()];
        let ipa = base + u64::from(offset % 0x4_0000);
        let width = match (kind >> 2) & 3 {
            0 => Width::Byte,
            1 => Width::Half,
            2 => Width::Word,
            _ => Width::Double,
        };
        let vcpu = usize::from(kind >> 7);
        match (kind >> 4) & 7 {
            0 | 1 => {
                if let Some(route) = bus.route(ipa) {
                    let _ = devices.access(route, width, None, &mut effects);
                }
            }
            2 | 3 => {
                if let Some(route) = bus.route(ipa) {
                    let _ = devices.access(route, width, Some(value), &mut effects);
                }
            }
            4 => {
                let _ = devices.vgic.sgi_register_write(vcpu, value);
            }
            5 => {
                let _ = devices.input(&value.to_le_bytes());
            }
            6 => {
                devices.vgic.sync(vcpu, &mut lrs);
                let count = lrs.len();
                let _ = devices.vgic.flush(vcpu, &mut lrs, count);
                // The guest acknowledges and deactivates what it was given.
                lrs[usize::from(kind) % lrs.len()] = value;
            }
            _ => {
                let _ = devices.vgic.raise_edge(offset % 1100, Some(vcpu));
                let _ = devices.vgic.take_kicks();
            }
        }
    }
});

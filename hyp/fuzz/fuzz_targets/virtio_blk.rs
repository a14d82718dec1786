//! A guest's virtio-blk queue built from arbitrary bytes: descriptor table, rings, request
//! headers and data all come from the input, as do the queue size, ring addresses and the
//! budget. Never a panic, never a backend access outside the volume or with a buffer
//! outside RAM, never a device read or write outside RAM.
#![no_main]

use std::sync::{Arc, Mutex};

use hyp::dev::virtio::blk::{BlkDevice, BlockBackend, Buffer, IoError, FEATURES, SECTOR_BYTES};
use hyp::dev::virtio::mmio::MmioTransport;
use hyp::dev::virtio::{GuestMemory, MemError};
use hyp::dev::{MmioDevice, Width};
use libfuzzer_sys::fuzz_target;

/// Guest-physical base of RAM: small, so that small descriptor addresses land in it.
const RAM_BASE: u64 = 0x1_0000;
/// RAM size.
const RAM_BYTES: usize = 0x1_0000;
/// Volume size in sectors.
const SECTORS: u64 = 32;

/// Guest RAM shared by the device (as `GuestMemory`) and the backend (as a DMA engine).
#[derive(Clone)]
struct Ram(Arc<Mutex<Vec<u8>>>);

impl Ram {
    fn range(addr: u64, len: u64) -> Result<std::ops::Range<usize>, MemError> {
        let end = addr.checked_add(len).ok_or(MemError::Overflow)?;
        if addr < RAM_BASE || end > RAM_BASE + RAM_BYTES as u64 {
            return Err(MemError::OutsideRam);
        }
        Ok((addr - RAM_BASE) as usize..(end - RAM_BASE) as usize)
    }
}

impl GuestMemory for Ram {
    fn check(&mut self, addr: u64, len: u64) -> Result<(), MemError> {
        Ram::range(addr, len).map(|_| ())
    }

    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let range = Ram::range(addr, buf.len() as u64).expect("device read outside RAM");
        buf.copy_from_slice(&self.0.lock().unwrap()[range]);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        let range = Ram::range(addr, data.len() as u64).expect("device write outside RAM");
        self.0.lock().unwrap()[range].copy_from_slice(data);
        Ok(())
    }
}

/// A RAM disk that asserts every call is inside the volume and RAM.
struct Disk {
    ram: Ram,
    data: Vec<u8>,
}

impl Disk {
    fn volume(&self, sector: u64, len: usize) -> std::ops::Range<usize> {
        assert!(len % SECTOR_BYTES == 0, "length {len} not whole sectors");
        let end = sector
            .checked_add((len / SECTOR_BYTES) as u64)
            .expect("sector overflow reached the backend");
        assert!(end <= SECTORS, "sectors {sector}..{end} past the end");
        sector as usize * SECTOR_BYTES..end as usize * SECTOR_BYTES
    }
}

impl BlockBackend for Disk {
    fn sectors(&self) -> u64 {
        SECTORS
    }

    fn read(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError> {
        let volume = self.volume(sector, buffer.len());
        match buffer {
            Buffer::Guest { addr, len } => {
                let range = Ram::range(addr, len as u64).expect("guest buffer outside RAM");
                self.ram.0.lock().unwrap()[range].copy_from_slice(&self.data[volume]);
            }
            Buffer::Janus(bytes) => bytes.copy_from_slice(&self.data[volume]),
        }
        Ok(())
    }

    fn write(&mut self, sector: u64, buffer: Buffer<'_>) -> Result<(), IoError> {
        let volume = self.volume(sector, buffer.len());
        match buffer {
            Buffer::Guest { addr, len } => {
                let range = Ram::range(addr, len as u64).expect("guest buffer outside RAM");
                self.data[volume].copy_from_slice(&self.ram.0.lock().unwrap()[range]);
            }
            Buffer::Janus(bytes) => self.data[volume].copy_from_slice(bytes),
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// Reads a little-endian u16 from the front of `input`, or 0.
fn take_u16(input: &mut &[u8]) -> u16 {
    match input {
        [a, b, rest @ ..] => {
            let value = u16::from_le_bytes([*a, *b]);
            *input = rest;
            value
        }
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let control = take_u16(&mut input);
    let size = 1u32 << (control & 0x7);
    let budget = usize::from((control >> 3) & 0x3f) + 1;
    let features = if control & 0x200 != 0 {
        FEATURES
    } else {
        hyp::dev::virtio::VIRTIO_F_VERSION_1
    };
    let desc = RAM_BASE + u64::from(take_u16(&mut input));
    let avail = RAM_BASE + u64::from(take_u16(&mut input));
    let used = RAM_BASE + u64::from(take_u16(&mut input));

    let ram = Ram(Arc::new(Mutex::new(vec![0; RAM_BYTES])));
    let split = input.len().min(RAM_BYTES);
    ram.0.lock().unwrap()[..split].copy_from_slice(&input[..split]);
    let mutations = &input[split..];

    let disk = Disk {
        ram: ram.clone(),
        data: vec![0; SECTORS as usize * SECTOR_BYTES],
    };
    let mut transport = MmioTransport::new(BlkDevice::new(Box::new(disk), b"fuzz"));
    let mut write = |offset: u64, value: u64| {
        let _ = transport.write(offset, Width::Word, value);
    };
    write(0x070, 1);
    write(0x070, 3);
    write(0x024, 0);
    write(0x020, features & 0xffff_ffff);
    write(0x024, 1);
    write(0x020, features >> 32);
    write(0x070, 11);
    write(0x030, 0);
    write(0x038, u64::from(size));
    write(0x080, desc & 0xffff_ffff);
    write(0x084, desc >> 32);
    write(0x090, avail & 0xffff_ffff);
    write(0x094, avail >> 32);
    write(0x0a0, used & 0xffff_ffff);
    write(0x0a4, used >> 32);
    write(0x044, 1);
    write(0x070, 15);
    write(0x050, 0);

    let mut memory = ram.clone();
    let mut rounds = 0;
    while transport.process(&mut memory, budget).more_pending {
        rounds += 1;
        // Each round but the last completes a full budget, and at most `size` are offered.
        assert!(rounds <= 256, "process never drains");
    }
    // The guest changes its memory and notifies again.
    for chunk in mutations.chunks(3) {
        if let [low, high, value] = *chunk {
            let offset = usize::from(u16::from_le_bytes([low, high])) % RAM_BYTES;
            ram.0.lock().unwrap()[offset] = value;
        }
    }
    let _ = transport.write(0x050, Width::Word, 0);
    let mut rounds = 0;
    while transport.process(&mut memory, budget).more_pending {
        rounds += 1;
        assert!(rounds <= 256, "process never drains");
    }
    let _ = transport.read(0x060, Width::Word);
});

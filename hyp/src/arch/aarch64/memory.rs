//! Guest RAM as Janus sees it: identity mapped by Janus' stage-1 table (the boot
//! map and what `mmu::map_ram` added; placement uses no other RAM), so a guest
//! physical address (IPA == PA for personalities) is a Janus address.
//! Callers check ranges against the personality's RAM before calling.

use core::arch::asm;

/// Bytes the copy and scrub loops move per iteration, as four 16-byte pairs at
/// offsets 0, 16, 32 and 48, with one cache maintenance operation each: they
/// are used only where the smallest data cache line is at least this long
/// (Cortex-A72 and QEMU: 64 bytes), so that no line is left uncleaned.
const CACHE_LINE: u64 = 64;
const _: () = assert!(CACHE_LINE == 64);

/// The smallest data cache line of this CPU (CTR_EL0.DminLine: log2 of the
/// size in words), which cache maintenance by address must step by.
fn dcache_line_bytes() -> u64 {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {v}, ctr_el0", v = out(reg) ctr, options(nomem, nostack)) };
    4 << ((ctr >> 16) & 0xf)
}

/// Copies guest memory at `address` into `buffer`, byte by byte with volatile
/// loads because the guest's other vCPUs may write it concurrently.
///
/// # Safety
/// `[address, address + buffer.len())` must be RAM of a personality, mapped in
/// Janus' stage-1 table.
pub unsafe fn copy_from_guest(address: u64, buffer: &mut [u8]) {
    // A naturally aligned 2-, 4- or 8-byte value (a ring index) is loaded at
    // once, so a concurrent update is never seen half done.
    let pointer = address as usize;
    if address.is_multiple_of(buffer.len().max(1) as u64) {
        match buffer.len() {
            2 => {
                // SAFETY: in range and mapped per the caller's contract; aligned.
                let value = unsafe { core::ptr::read_volatile(pointer as *const u16) };
                buffer.copy_from_slice(&value.to_le_bytes());
                return;
            }
            4 => {
                // SAFETY: in range and mapped per the caller's contract; aligned.
                let value = unsafe { core::ptr::read_volatile(pointer as *const u32) };
                buffer.copy_from_slice(&value.to_le_bytes());
                return;
            }
            8 => {
                // SAFETY: in range and mapped per the caller's contract; aligned.
                let value = unsafe { core::ptr::read_volatile(pointer as *const u64) };
                buffer.copy_from_slice(&value.to_le_bytes());
                return;
            }
            _ => {}
        }
    }
    for (offset, byte) in buffer.iter_mut().enumerate() {
        // SAFETY: in range and mapped per the caller's contract.
        *byte = unsafe { core::ptr::read_volatile((address as usize + offset) as *const u8) };
    }
}

/// Writes `data` into a running guest's memory at `address` (a device's
/// status byte or used-ring entry): volatile stores, since the guest's other
/// vCPUs may read the bytes concurrently. No cache maintenance: a guest that
/// drives a device runs with its caches on, as Janus does (both Normal
/// Write-Back, inner shareable).
///
/// # Safety
/// `[address, address + data.len())` must be RAM of a personality, mapped in
/// Janus' stage-1 table.
pub unsafe fn write_guest(address: u64, data: &[u8]) {
    // A naturally aligned 2-, 4- or 8-byte value (a ring index) is stored at
    // once, so the guest never reads it half updated.
    let aligned = address.is_multiple_of(data.len().max(1) as u64);
    let pointer = address as usize;
    match (aligned, data) {
        (true, &[a, b]) => {
            // SAFETY: in range and mapped per the caller's contract; aligned.
            unsafe { core::ptr::write_volatile(pointer as *mut u16, u16::from_le_bytes([a, b])) };
            return;
        }
        (true, &[a, b, c, d]) => {
            let value = u32::from_le_bytes([a, b, c, d]);
            // SAFETY: in range and mapped per the caller's contract; aligned.
            unsafe { core::ptr::write_volatile(pointer as *mut u32, value) };
            return;
        }
        (true, &[a, b, c, d, e, f, g, h]) => {
            let value = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
            // SAFETY: in range and mapped per the caller's contract; aligned.
            unsafe { core::ptr::write_volatile(pointer as *mut u64, value) };
            return;
        }
        _ => {}
    }
    for (offset, &byte) in data.iter().enumerate() {
        // SAFETY: in range and mapped per the caller's contract.
        unsafe { core::ptr::write_volatile((address as usize + offset) as *mut u8, byte) };
    }
}

/// Copies `data` into guest memory at `address` and cleans it to the point of
/// coherency, since the guest starts with its MMU and caches off.
///
/// Cache-line-aligned copies (a kernel at its 2 MiB aligned base, from a bundle
/// whose blobs are 16-byte aligned) move a line at a time with paired loads
/// and stores and clean each line as it is written: one pass over the data,
/// and a quarter of the instructions of a word-at-a-time copy, which is most of
/// a personality's start time under emulation.
///
/// # Safety
/// The range must be RAM of a personality that is not running.
pub unsafe fn copy_to_guest(address: u64, data: &[u8]) {
    let source = data.as_ptr() as u64;
    let lines = if address.is_multiple_of(CACHE_LINE)
        && source.is_multiple_of(16)
        && dcache_line_bytes() >= CACHE_LINE
    {
        data.len() as u64 / CACHE_LINE
    } else {
        0
    };
    if lines > 0 {
        // SAFETY: `lines` whole 64-byte blocks lie inside both `data` and the
        // caller's range (Normal memory, where LDP and STP need no alignment);
        // each destination block is line aligned and no shorter than a cache
        // line, so its one DC CVAC cleans all of it. The loop clobbers only the
        // registers it declares.
        unsafe {
            asm!(
                "2:",
                "ldp {a}, {b}, [{src}]",
                "ldp {c}, {d}, [{src}, #16]",
                "stp {a}, {b}, [{dst}]",
                "stp {c}, {d}, [{dst}, #16]",
                "ldp {a}, {b}, [{src}, #32]",
                "ldp {c}, {d}, [{src}, #48]",
                "stp {a}, {b}, [{dst}, #32]",
                "stp {c}, {d}, [{dst}, #48]",
                "dc cvac, {dst}",
                "add {src}, {src}, #{line_bytes}",
                "add {dst}, {dst}, #{line_bytes}",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                src = inout(reg) source => _,
                dst = inout(reg) address => _,
                n = inout(reg) lines => _,
                a = out(reg) _,
                b = out(reg) _,
                c = out(reg) _,
                d = out(reg) _,
                line_bytes = const CACHE_LINE,
                options(nostack),
            );
        }
    }
    let done = (lines * CACHE_LINE) as usize;
    let rest = data.get(done..).unwrap_or(&[]);
    let rest_address = address + done as u64;
    // SAFETY: the caller guarantees the range is ours to write and not in use.
    unsafe {
        core::ptr::copy_nonoverlapping(rest.as_ptr(), rest_address as *mut u8, rest.len());
    }
    clean_to_poc(rest_address, rest.len() as u64);
}

/// Zeroes guest memory and cleans it to the point of coherency, so that a
/// guest reading with its MMU off sees the zeros and not what was there.
///
/// Whole blocks go through DC ZVA (a cache line of zeros per instruction,
/// eight times fewer instructions than stores: most of a personality's start
/// time under emulation); the ragged ends, if any, through plain stores.
///
/// # Safety
/// The range must be RAM of a personality that is not running.
pub unsafe fn zero_guest(address: u64, len: u64) {
    let Some(block) = zva_block_bytes() else {
        // SAFETY: the caller guarantees the range is ours to write and not in use.
        unsafe { core::ptr::write_bytes(address as *mut u8, 0, len as usize) };
        clean_to_poc(address, len);
        return;
    };
    let end = address.saturating_add(len);
    let first = address.next_multiple_of(block).min(end);
    let last = (end / block * block).max(first);
    // SAFETY: the caller guarantees the range is ours to write and not in use.
    unsafe {
        core::ptr::write_bytes(address as *mut u8, 0, (first - address) as usize);
        core::ptr::write_bytes(last as *mut u8, 0, (end - last) as usize);
    }
    let mut line = first;
    while line < last {
        // SAFETY: DC ZVA zeroes exactly one block inside the caller's range.
        unsafe { asm!("dc zva, {line}", line = in(reg) line, options(nostack)) };
        line += block;
    }
    // A ZVA block may span several cache lines: clean them all.
    clean_to_poc(address, len);
}

/// Makes guest memory read as zero to every observer: lines that are not zero
/// already are zeroed (DC ZVA) and cleaned to the point of coherency, so a
/// guest reading with its MMU off cannot see older data behind a cached zero.
/// Each line is cleaned and invalidated before it is read, so that the check
/// sees memory and not a stale clean line: the previous occupant may have
/// written it with its MMU off, past the cache.
///
/// Reading first is what makes a personality's first start cheap where RAM
/// is still untouched (QEMU backs it with the host's zero page until it is
/// written): writing zeros there would make the host allocate all of it. One
/// line is checked with four paired loads.
///
/// # Safety
/// The range must be page-aligned RAM of a personality that no vCPU can reach:
/// the personality is not running, or the range is absent from its stage-2
/// tables (and only the caller fills it).
pub unsafe fn scrub_guest(address: u64, len: u64) {
    let end = address.saturating_add(len);
    let Some(block) =
        zva_block_bytes().filter(|&block| block == CACHE_LINE && dcache_line_bytes() >= CACHE_LINE)
    else {
        // No DC ZVA of the loop's size, or shorter cache lines: zero everything
        // with `zero_guest`.
        // SAFETY: forwarded from the caller.
        unsafe { zero_guest(address, len) };
        return;
    };
    let lines = (end - address) / block;
    if lines > 0 {
        // SAFETY: the caller guarantees `lines` whole lines from `address`
        // (page aligned, so line aligned) are RAM nobody uses now; DC CIVAC
        // writes back and drops the line, DC ZVA zeroes exactly the line it
        // names and DC CVAC writes it back.
        unsafe {
            asm!(
                "2:",
                "dc civac, {line}",
                "ldp {a}, {b}, [{line}]",
                "ldp {c}, {d}, [{line}, #16]",
                "orr {a}, {a}, {b}",
                "orr {c}, {c}, {d}",
                "orr {a}, {a}, {c}",
                "ldp {b}, {c}, [{line}, #32]",
                "ldp {d}, {e}, [{line}, #48]",
                "orr {b}, {b}, {c}",
                "orr {d}, {d}, {e}",
                "orr {a}, {a}, {b}",
                "orr {a}, {a}, {d}",
                "cbz {a}, 3f",
                "dc zva, {line}",
                "dc cvac, {line}",
                "3:",
                "add {line}, {line}, #{line_bytes}",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                line = inout(reg) address => _,
                n = inout(reg) lines => _,
                a = out(reg) _,
                b = out(reg) _,
                c = out(reg) _,
                d = out(reg) _,
                e = out(reg) _,
                line_bytes = const CACHE_LINE,
                options(nostack),
            );
        }
    }
    // SAFETY: forwarded from the caller; a ragged end (not page aligned) goes
    // through `zero_guest`.
    unsafe { zero_guest(address + lines * block, end - address - lines * block) };
    // SAFETY: barriers change no data.
    unsafe { asm!("dsb sy", options(nostack)) };
}

/// Bytes DC ZVA zeroes (DCZID_EL0.BS: log2 of the size in words), or `None`
/// when DCZID_EL0.DZP prohibits it.
fn zva_block_bytes() -> Option<u64> {
    const DZP: u64 = 1 << 4;
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { asm!("mrs {v}, dczid_el0", v = out(reg) dczid, options(nomem, nostack)) };
    (dczid & DZP == 0).then(|| 4 << (dczid & 0xf))
}

/// Cleans data cache lines covering `[address, address + len)` to the point of
/// coherency, then invalidates the instruction caches of every CPU in the inner
/// shareable domain (a vCPU may start later on another CPU that still holds
/// the previous occupant's instructions).
fn clean_to_poc(address: u64, len: u64) {
    let step = dcache_line_bytes();
    let mut line = address & !(step - 1);
    let end = address.saturating_add(len);
    while line < end {
        // SAFETY: DC CVAC only writes back cache contents; it changes no data.
        unsafe { asm!("dc cvac, {line}", line = in(reg) line, options(nostack)) };
        line += step;
    }
    // SAFETY: barriers and instruction cache invalidation change no data.
    unsafe { asm!("dsb sy", "ic ialluis", "dsb sy", "isb", options(nostack)) };
}

/// Makes stage-2 descriptor writes visible to every CPU's table walker before
/// a vCPU runs again; the exception return that follows synchronizes this CPU.
pub fn publish_stage2() {
    // SAFETY: a barrier changes no data.
    unsafe { asm!("dsb ish", options(nostack)) };
}

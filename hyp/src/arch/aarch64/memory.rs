//! Guest RAM as Janus sees it: identity mapped by the boot stage-1 table, so a
//! guest physical address (IPA == PA for personalities) is a Janus address.
//! Callers check ranges against the personality's RAM before calling.

use core::arch::asm;

/// Cache line size used for maintenance; Cortex-A72 and QEMU use 64 bytes.
const CACHE_LINE: u64 = 64;

/// Copies guest memory at `address` into `buffer`, byte by byte with volatile
/// loads because the guest's other vCPUs may write it concurrently.
///
/// # Safety
/// `[address, address + buffer.len())` must be RAM of a personality, mapped in
/// Janus' stage-1 table.
pub unsafe fn copy_from_guest(address: u64, buffer: &mut [u8]) {
    for (offset, byte) in buffer.iter_mut().enumerate() {
        // SAFETY: in range and mapped per the caller's contract.
        *byte = unsafe { core::ptr::read_volatile((address as usize + offset) as *const u8) };
    }
}

/// Copies `data` into guest memory at `address` and cleans it to the point of
/// coherency, since the guest starts with its MMU and caches off.
///
/// # Safety
/// The range must be RAM of a personality that is not running.
pub unsafe fn copy_to_guest(address: u64, data: &[u8]) {
    // SAFETY: the caller guarantees the range is ours to write and not in use.
    unsafe {
        core::ptr::copy_nonoverlapping(data.as_ptr(), address as *mut u8, data.len());
    }
    clean_to_poc(address, data.len() as u64);
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
        // SAFETY: DC ZVA zeroes exactly one block inside the caller's range;
        // DC CVAC then writes that line back to memory.
        unsafe { asm!("dc zva, {line}", "dc cvac, {line}", line = in(reg) line, options(nostack)) };
        line += block;
    }
    clean_to_poc(address, first - address);
    clean_to_poc(last, end - last);
}

/// Bytes per check in `scrub_guest`.
const SCRUB_PAGE_BYTES: u64 = 4096;

/// Makes guest memory read as zero to every observer: pages that are not zero
/// already are zeroed; every line is cleaned to the point of coherency, so a
/// guest reading with its MMU off cannot see older data behind a cached zero.
///
/// Reading first is what makes a personality's first start cheap where RAM
/// is still untouched (QEMU backs it with the host's zero page until it is
/// written): writing zeros there would make the host allocate all of it.
///
/// # Safety
/// The range must be RAM of a personality that is not running, page aligned.
pub unsafe fn scrub_guest(address: u64, len: u64) {
    let mut page = address;
    let end = address.saturating_add(len);
    while page < end {
        let size = SCRUB_PAGE_BYTES.min(end - page);
        // SAFETY: the caller guarantees the range is RAM nobody else uses now;
        // a page is 8-byte aligned, so its words can be read as u64.
        let words = unsafe { core::slice::from_raw_parts(page as *const u64, (size / 8) as usize) };
        if words.iter().all(|&word| word == 0) {
            clean_to_poc_lines(page, size);
        } else {
            // SAFETY: forwarded from the caller.
            unsafe { zero_guest(page, size) };
        }
        page += size;
    }
    // SAFETY: barriers change no data.
    unsafe { asm!("dsb sy", options(nostack)) };
}

/// DC CVAC over a range, without the barriers (the caller issues one at the end).
fn clean_to_poc_lines(address: u64, len: u64) {
    let mut line = address & !(CACHE_LINE - 1);
    let end = address.saturating_add(len);
    while line < end {
        // SAFETY: DC CVAC only writes back cache contents; it changes no data.
        unsafe { asm!("dc cvac, {line}", line = in(reg) line, options(nostack)) };
        line += CACHE_LINE;
    }
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
/// coherency, then invalidates the instruction cache.
fn clean_to_poc(address: u64, len: u64) {
    let mut line = address & !(CACHE_LINE - 1);
    let end = address.saturating_add(len);
    while line < end {
        // SAFETY: DC CVAC only writes back cache contents; it changes no data.
        unsafe { asm!("dc cvac, {line}", line = in(reg) line, options(nostack)) };
        line += CACHE_LINE;
    }
    // SAFETY: barriers and instruction cache invalidation change no data.
    unsafe { asm!("dsb sy", "ic iallu", "dsb sy", "isb", options(nostack)) };
}

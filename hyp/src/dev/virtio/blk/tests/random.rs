//! Random descriptor tables, rings and headers: the model never panics, never
//! reaches outside the volume or RAM.

use proptest::prelude::*;

use super::*;

/// A descriptor address: mostly in the buffer area, sometimes at the edges or anywhere.
fn address() -> impl Strategy<Value = u64> {
    let end = RAM_BASE + RAM_BYTES as u64;
    prop_oneof![
        4 => (0u64..0x6000).prop_map(|offset| HEADER + offset),
        4 => (0u64..48).prop_map(|slot| HEADER + 0x200 * slot),
        1 => (0u64..2048).prop_map(move |back| end - back),
        1 => (0u64..2048).prop_map(|back| RAM_BASE.wrapping_sub(back)),
        1 => any::<u64>(),
    ]
}

/// Descriptor flags: mostly NEXT and WRITE, sometimes anything.
fn flags() -> impl Strategy<Value = u16> {
    prop_oneof![8 => 0u16..4, 1 => any::<u16>()]
}

/// A `next` index: mostly the following descriptor (`None`), sometimes anything small.
fn next() -> impl Strategy<Value = Option<u16>> {
    prop_oneof![3 => Just(None), 1 => (0u16..20).prop_map(Some)]
}

fn length() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..2048,
        2 => (0u32..4).prop_map(|sectors| sectors * 512),
        1 => any::<u32>(),
    ]
}

fn request_header() -> impl Strategy<Value = [u8; 16]> {
    let request_type = prop_oneof![
        Just(T_IN),
        Just(T_OUT),
        Just(T_FLUSH),
        Just(T_GET_ID),
        Just(T_DISCARD),
        Just(T_WRITE_ZEROES),
        any::<u32>()
    ];
    let sector = prop_oneof![
        0..SECTORS + 4,
        any::<u64>(),
        (0u64..4).prop_map(|k| u64::MAX - k)
    ];
    (request_type, sector).prop_map(|(t, s)| header(t, s))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random descriptor tables, rings and request bytes never panic, never reach the
    /// backend outside the volume or with a buffer outside RAM, and never make the device
    /// read or write guest memory outside RAM.
    #[test]
    fn random_rings_stay_inside_ram_and_volume(
        size_log in 0u32..5,
        descriptors in proptest::collection::vec((address(), length(), flags(), next()), 16),
        requests in proptest::collection::vec(
            (
                (any::<bool>(), 0u64..16, 1u32..4, any::<bool>()),
                (0u32..1536, any::<bool>(), proptest::option::of(0u64..SECTORS + 2)),
            ),
            4,
        ),
        heads in proptest::collection::vec((proptest::bool::weighted(0.03), any::<u16>()), 1..24),
        avail_extra in prop_oneof![12 => Just(0u16), 1 => 1u16..3],
        headers in proptest::collection::vec(request_header(), 32),
        filler in proptest::collection::vec(any::<u8>(), 0x6000),
        budget in 1usize..40,
        gathers in any::<bool>(),
    ) {
        let size = 1u16 << size_log;
        let mut h = Harness::ready(SECTORS, size, ALL);
        h.disk.lock().gathers = gathers;
        h.ram.put(HEADER, &filler);
        for (i, bytes) in headers.iter().enumerate() {
            h.ram.put(HEADER + 0x200 * i as u64, bytes);
        }
        for (index, &(addr, len, flags, next)) in descriptors.iter().enumerate().take(usize::from(size)) {
            let next = next.unwrap_or(index as u16 + 1);
            h.queue.set_desc(index as u16, addr, len, flags, next);
        }
        // Some well-formed requests among the noise: header slot, data in two parts
        // (adjacent or not, split anywhere), status.
        let mut request_heads = Vec::new();
        for (group, &((apply, slot, sectors, writable), (split, gap, sector))) in
            requests.iter().enumerate()
        {
            let first = 4 * group as u16;
            if !apply || first + 3 >= size {
                continue;
            }
            let total = sectors * 512;
            let split = split.min(total);
            let data = HEADER + 0x6000 + 0x1000 * slot;
            let second = data + u64::from(split) + if gap { 64 } else { 0 };
            let data_flags = if writable { NEXT | WRITE } else { NEXT };
            h.queue.set_desc(first, HEADER + 0x200 * (2 * slot), 16, NEXT, first + 1);
            h.queue.set_desc(first + 1, data, split, data_flags, first + 2);
            h.queue.set_desc(first + 2, second, total - split, data_flags, first + 3);
            h.queue.set_desc(first + 3, STATUS_AT + slot, 1, WRITE, 0);
            if let Some(sector) = sector {
                let request_type = if writable { T_IN } else { T_OUT };
                h.ram.put(HEADER + 0x200 * (2 * slot), &header(request_type, sector));
            }
            request_heads.push(first);
        }
        let random_heads = heads.iter().map(|&(wild, head)| if wild { head } else { head % size });
        for head in request_heads.into_iter().chain(random_heads).take(usize::from(size)) {
            h.queue.offer(head);
        }
        if avail_extra > 0 {
            h.queue.set_avail_idx(h.queue.avail_idx.wrapping_add(avail_extra * size));
        }
        let mut memory = h.ram.clone();
        h.write(reg::QUEUE_NOTIFY, 0);
        for _ in 0..64 {
            if !h.transport.process(&mut memory, budget).more_pending {
                break;
            }
        }
        prop_assert!(!h.transport.more_pending());
        prop_assert_eq!(h.disk.lock().violations, 0);
        prop_assert_eq!(h.ram.stray_accesses(), 0);
        let used = h.queue.used_idx();
        prop_assert!(h.needs_reset() || used == h.queue.avail_idx);
    }
}

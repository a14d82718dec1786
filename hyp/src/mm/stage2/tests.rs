//! Host tests of `mm/stage2/mod.rs`.

use super::attributes::{MEMATTR_MASK, S2AP_MASK, SH_MASK};
use super::*;
use crate::mm::frame::{HeapFrames, PoolFrames};

const RAM_IPA: Ipa = Ipa(0x4000_0000);
const RAM_PA: Pa = Pa(0x8_0020_0000);
const MIB: u64 = 1024 * 1024;

fn table(frames: &mut HeapFrames) -> Stage2Table<&mut HeapFrames> {
    Stage2Table::new(frames).unwrap()
}

fn records<F: FrameSource>(table: &Stage2Table<F>) -> Vec<Region> {
    table.regions().copied().collect()
}

fn region(ipa: u64, size: u64, pa: u64, kind: MemKind, perm: Perm) -> Region {
    Region {
        piece: 0,
        ipa: Ipa(ipa),
        size,
        pa: Pa(pa),
        kind,
        perm,
    }
}

/// Unmapping and changing permissions of live ranges.
mod unmap_protect;

/// Making mapped regions absent and present again.
mod present;

#[test]
fn new_table_holds_only_the_root() {
    let mut frames = HeapFrames::new();
    let table = table(&mut frames);
    assert!(table.root_pa().is_aligned(PAGE_SIZE));
    assert_eq!(table.regions().len(), 0);
    assert_eq!(table.translate(Ipa(0)), None);
    drop(table);
    assert_eq!(frames.live(), 0);
}

#[test]
fn aligned_ram_maps_with_2m_blocks_and_translates() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(
            RAM_IPA,
            RAM_PA,
            4 * MIB,
            MemKind::Normal,
            Perm::ReadWriteExecute,
        )
        .unwrap();
    for offset in [0, 0x1234, 2 * MIB + 0x10, 4 * MIB - 1] {
        let ipa = Ipa(RAM_IPA.0 + offset);
        assert_eq!(
            table.translate(ipa),
            Some((
                Pa(RAM_PA.0 + offset),
                MemKind::Normal,
                Perm::ReadWriteExecute
            ))
        );
        assert_eq!(table.leaf(ipa).unwrap().level, 2, "a 2 MiB block");
    }
    assert_eq!(table.translate(Ipa(RAM_IPA.0 + 4 * MIB)), None);
    assert_eq!(table.translate(Ipa(RAM_IPA.0 - 1)), None);
    drop(table);
    assert_eq!(frames.live(), 0);
}

#[test]
fn gib_aligned_ram_maps_with_a_1g_block_and_no_subtable() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(
            RAM_IPA,
            Pa(0x1_0000_0000),
            BLOCK_1G,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    let leaf = table.leaf(Ipa(RAM_IPA.0 + 0x12_3456)).unwrap();
    assert_eq!(leaf.level, 1);
    assert_eq!(leaf.pa, Pa(0x1_0012_3456));
    drop(table);
    assert_eq!(frames.live(), 0);
}

#[test]
fn single_page_maps_at_level_3() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(
            Ipa(0x1000_3000),
            Pa(0x9000_7000),
            PAGE_SIZE,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    let leaf = table.leaf(Ipa(0x1000_3abc)).unwrap();
    assert_eq!(leaf.level, LEAF_LEVEL);
    assert_eq!(
        table.translate(Ipa(0x1000_3abc)),
        Some((Pa(0x9000_7abc), MemKind::Normal, Perm::ReadWrite))
    );
    assert_eq!(table.translate(Ipa(0x1000_2fff)), None);
    assert_eq!(table.translate(Ipa(0x1000_4000)), None);
}

#[test]
fn pa_not_congruent_with_ipa_falls_back_to_pages() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(
            Ipa(0x20_0000),
            Pa(0x20_1000),
            4 * MIB,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    assert_eq!(table.leaf(Ipa(0x20_0000)).unwrap().level, LEAF_LEVEL);
    assert_eq!(
        table.translate(Ipa(0x5f_f008)).map(|(pa, ..)| pa),
        Some(Pa(0x60_0008))
    );
}

#[test]
fn normal_memory_is_write_back_inner_shareable_with_access_flag() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(RAM_IPA, RAM_PA, BLOCK_2M, MemKind::Normal, Perm::ReadWrite)
        .unwrap();
    let flags = table.leaf(RAM_IPA).unwrap().flags;
    assert_eq!(
        flags & MEMATTR_MASK,
        Stage2Attributes::MEMATTR_NORMAL_INNER_WB | Stage2Attributes::MEMATTR_NORMAL_OUTER_WB
    );
    assert_eq!(flags & SH_MASK, Stage2Attributes::SH_INNER);
    assert_eq!(flags & S2AP_MASK, Stage2Attributes::S2AP_ACCESS_RW);
    assert!(flags.contains(Stage2Attributes::ACCESS_FLAG | Stage2Attributes::XN));
}

#[test]
fn device_memory_is_ngnre_and_execute_never() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(
            Ipa(0x0900_0000),
            Pa(0x0900_0000),
            PAGE_SIZE,
            MemKind::Device,
            Perm::ReadWrite,
        )
        .unwrap();
    let flags = table.leaf(Ipa(0x0900_0000)).unwrap().flags;
    assert_eq!(flags & MEMATTR_MASK, Stage2Attributes::MEMATTR_DEVICE_nGnRE);
    assert!(flags.contains(Stage2Attributes::ACCESS_FLAG | Stage2Attributes::XN));
    assert_eq!(
        table.translate(Ipa(0x0900_0018)),
        Some((Pa(0x0900_0018), MemKind::Device, Perm::ReadWrite))
    );
}

#[test]
fn executable_device_memory_is_refused() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    for perm in [Perm::ReadWriteExecute, Perm::ReadExecute] {
        assert_eq!(
            table.map(
                Ipa(0x0900_0000),
                Pa(0x0900_0000),
                PAGE_SIZE,
                MemKind::Device,
                perm
            ),
            Err(Stage2Error::ExecutableDevice)
        );
    }
    table
        .map(
            Ipa(0x0900_0000),
            Pa(0x0900_0000),
            PAGE_SIZE,
            MemKind::Device,
            Perm::ReadOnly,
        )
        .unwrap();
    assert_eq!(
        table.protect(Ipa(0x0900_0000), PAGE_SIZE, Perm::ReadExecute),
        Err(Stage2Error::ExecutableDevice)
    );
}

#[test]
fn every_permission_round_trips_through_the_descriptor() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    let perms = [
        Perm::ReadWriteExecute,
        Perm::ReadWrite,
        Perm::ReadOnly,
        Perm::ReadExecute,
    ];
    for (index, perm) in perms.into_iter().enumerate() {
        let ipa = Ipa(index as u64 * PAGE_SIZE);
        table
            .map(ipa, Pa(ipa.0 + 0x10_0000), PAGE_SIZE, MemKind::Normal, perm)
            .unwrap();
        assert_eq!(table.translate(ipa).map(|(_, _, perm)| perm), Some(perm));
    }
}

#[test]
fn misaligned_ipa_pa_and_size_are_refused() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    let (normal, rw) = (MemKind::Normal, Perm::ReadWrite);
    assert_eq!(
        table.map(Ipa(0x1800), Pa(0x2000), PAGE_SIZE, normal, rw),
        Err(Stage2Error::MisalignedIpa)
    );
    assert_eq!(
        table.map(Ipa(0x1000), Pa(0x2010), PAGE_SIZE, normal, rw),
        Err(Stage2Error::MisalignedPa)
    );
    assert_eq!(
        table.map(Ipa(0x1000), Pa(0x2000), 0x1800, normal, rw),
        Err(Stage2Error::MisalignedSize)
    );
    assert_eq!(
        table.map(Ipa(0x1000), Pa(0x2000), 0, normal, rw),
        Err(Stage2Error::ZeroSize)
    );
    assert_eq!(
        table.unmap(Ipa(0x1001), PAGE_SIZE),
        Err(Stage2Error::MisalignedIpa)
    );
    assert_eq!(
        table.protect(Ipa(0x1000), 0x10, rw),
        Err(Stage2Error::MisalignedSize)
    );
    assert_eq!(table.regions().len(), 0);
}

#[test]
fn overlap_is_refused_exact_partial_enclosing_and_inside() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    let (normal, rw) = (MemKind::Normal, Perm::ReadWrite);
    table
        .map(Ipa(0x10_0000), Pa(0x10_0000), 0x4000, normal, rw)
        .unwrap();
    let attempts = [
        (0x10_0000, 0x4000),  // exact
        (0x0f_f000, 0x2000),  // partial, from below
        (0x10_3000, 0x2000),  // partial, from above
        (0x0f_0000, 0x20000), // enclosing
        (0x10_1000, 0x1000),  // inside
    ];
    for (ipa, size) in attempts {
        assert_eq!(
            table.map(Ipa(ipa), Pa(0x80_0000), size, normal, rw),
            Err(Stage2Error::Overlap),
            "{ipa:#x}+{size:#x}"
        );
    }
    // Touching at either edge is not an overlap.
    table
        .map(Ipa(0x0f_f000), Pa(0x80_0000), 0x1000, normal, rw)
        .unwrap();
    table
        .map(Ipa(0x10_4000), Pa(0x80_1000), 0x1000, normal, rw)
        .unwrap();
    assert_eq!(table.regions().len(), 3);
    let ipas: Vec<Ipa> = table.regions().map(|region| region.ipa).collect();
    assert_eq!(ipas, vec![Ipa(0x0f_f000), Ipa(0x10_0000), Ipa(0x10_4000)]);
}

#[test]
fn ranges_beyond_the_ipa_or_pa_space_are_refused() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    let (normal, rw) = (MemKind::Normal, Perm::ReadWrite);
    let last_page = Ipa(IPA_SPACE_BYTES - PAGE_SIZE);
    assert_eq!(
        table.map(last_page, Pa(0x1000), 0x2000, normal, rw),
        Err(Stage2Error::IpaOutOfRange)
    );
    assert_eq!(
        table.map(Ipa(IPA_SPACE_BYTES), Pa(0x1000), PAGE_SIZE, normal, rw),
        Err(Stage2Error::IpaOutOfRange)
    );
    assert_eq!(
        table.map(Ipa(u64::MAX - 0xfff), Pa(0x1000), 0x2000, normal, rw),
        Err(Stage2Error::RangeOverflow)
    );
    assert_eq!(
        table.map(Ipa(0x1000), Pa(u64::MAX - 0xfff), 0x2000, normal, rw),
        Err(Stage2Error::RangeOverflow)
    );
    assert_eq!(
        table.map(
            Ipa(0x1000),
            Pa(PA_LIMIT_BYTES - PAGE_SIZE),
            0x2000,
            normal,
            rw
        ),
        Err(Stage2Error::PaOutOfRange)
    );
    assert_eq!(
        table.unmap(Ipa(IPA_SPACE_BYTES), PAGE_SIZE),
        Err(Stage2Error::IpaOutOfRange)
    );
    assert_eq!(table.translate(Ipa(IPA_SPACE_BYTES)), None);
    assert_eq!(table.translate(Ipa(u64::MAX)), None);
    // The very last page of the IPA space is fine.
    table
        .map(
            last_page,
            Pa(PA_LIMIT_BYTES - PAGE_SIZE),
            PAGE_SIZE,
            normal,
            rw,
        )
        .unwrap();
    assert_eq!(
        table.translate(Ipa(IPA_SPACE_BYTES - 1)).map(|(pa, ..)| pa),
        Some(Pa(PA_LIMIT_BYTES - 1))
    );
}

#[test]
fn frames_are_freed_when_the_table_is_dropped() {
    let mut frames = HeapFrames::new();
    {
        let mut table = Stage2Table::new(&mut frames).unwrap();
        let (normal, rw) = (MemKind::Normal, Perm::ReadWrite);
        table
            .map(Ipa(0x1000), Pa(0x1000), PAGE_SIZE, normal, rw)
            .unwrap();
        table
            .map(
                Ipa(0x80_0000_0000 - BLOCK_1G - 0x1000),
                Pa(0x2000),
                0x2000,
                normal,
                rw,
            )
            .unwrap();
        table.map(RAM_IPA, RAM_PA, 6 * MIB, normal, rw).unwrap();
        table
            .protect(Ipa(RAM_IPA.0 + MIB), PAGE_SIZE, Perm::ReadOnly)
            .unwrap();
    }
    assert_eq!(frames.live(), 0);
}

#[test]
fn running_out_of_frames_refuses_cleanly() {
    assert_eq!(
        Stage2Table::new(HeapFrames::with_limit(0)).err(),
        Some(Stage2Error::OutOfFrames)
    );
    let mut frames = HeapFrames::with_limit(2);
    {
        let mut table = Stage2Table::new(&mut frames).unwrap();
        // A single page needs a level-2 and a level-3 table: one more than the limit allows.
        assert_eq!(
            table.map(
                Ipa(0x1000),
                Pa(0x1000),
                PAGE_SIZE,
                MemKind::Normal,
                Perm::ReadWrite
            ),
            Err(Stage2Error::OutOfFrames)
        );
        assert_eq!(table.regions().len(), 0);
        assert_eq!(table.translate(Ipa(0x1000)), None);
        // A 1 GiB block needs no table at all.
        table
            .map(RAM_IPA, Pa(0), BLOCK_1G, MemKind::Normal, Perm::ReadWrite)
            .unwrap();
        assert_eq!(
            table.translate(Ipa(RAM_IPA.0 + 5)).map(|(pa, ..)| pa),
            Some(Pa(5))
        );
    }
    assert_eq!(frames.live(), 0);
}

#[test]
fn reserve_bounds_cover_every_table_an_update_allocates() {
    let cases = [
        (0x0, 0x0, PAGE_SIZE),
        (0x1000, 0x1000, 3 * BLOCK_1G),
        (0x1000, 0x2000, 3 * MIB),
        (
            BLOCK_2M - PAGE_SIZE,
            PAGE_SIZE,
            2 * BLOCK_1G + 2 * PAGE_SIZE,
        ),
        (
            BLOCK_1G - BLOCK_2M,
            0x1234_5000 - BLOCK_2M,
            BLOCK_1G + 2 * BLOCK_2M + PAGE_SIZE,
        ),
        (0x3000, 0x3000, 2 * BLOCK_2M),
    ];
    for (ipa, pa, size) in cases {
        let range = ipa..ipa + size;
        let mut frames = HeapFrames::new();
        let mut table = Stage2Table::new(&mut frames).unwrap();
        let live = |table: &Stage2Table<&mut HeapFrames>| {
            table.mapping.translation().frames.borrow().source.live()
        };
        let before = live(&table);
        table
            .map(Ipa(ipa), Pa(pa), size, MemKind::Normal, Perm::ReadWrite)
            .unwrap();
        let allocated = live(&table) - before;
        assert!(
            allocated <= map_tables_bound(&range, pa),
            "map {ipa:#x}->{pa:#x}+{size:#x}"
        );

        // Cut the range near both ends, splitting whatever blocks sit there.
        let cut = (ipa + PAGE_SIZE)..(ipa + size - PAGE_SIZE).max(ipa + PAGE_SIZE);
        if cut.start < cut.end {
            let before = live(&table);
            let len = cut.end - cut.start;
            table.protect(Ipa(cut.start), len, Perm::ReadOnly).unwrap();
            assert!(live(&table) - before <= split_tables_bound(&cut));
            let before = live(&table);
            table.unmap(Ipa(cut.start), len).unwrap();
            assert!(live(&table) <= before + split_tables_bound(&cut));
        }
    }
}

#[test]
fn live_table_refuses_to_split_a_block() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(RAM_IPA, RAM_PA, BLOCK_2M, MemKind::Normal, Perm::ReadWrite)
        .unwrap();
    table.mark_active();
    assert!(table.is_active());
    let before = records(&table);
    assert_eq!(
        table.protect(RAM_IPA, PAGE_SIZE, Perm::ReadOnly),
        Err(Stage2Error::BreakBeforeMake)
    );
    assert_eq!(
        table.unmap(RAM_IPA, PAGE_SIZE),
        Err(Stage2Error::BreakBeforeMake)
    );
    assert_eq!(records(&table), before);
    // Whole blocks may change permission live, and fresh ranges may be mapped.
    assert_eq!(
        table.protect(
            Ipa(RAM_IPA.0 + BLOCK_2M - PAGE_SIZE),
            PAGE_SIZE,
            Perm::ReadWrite
        ),
        Err(Stage2Error::BreakBeforeMake),
        "even an unchanged permission would split the live block"
    );
    assert_eq!(table.leaf(RAM_IPA).unwrap().level, 2);
    table.protect(RAM_IPA, BLOCK_2M, Perm::ReadOnly).unwrap();
    table
        .map(
            Ipa(0x1000),
            Pa(0x1000),
            PAGE_SIZE,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    assert_eq!(
        table.translate(RAM_IPA).map(|(_, _, perm)| perm),
        Some(Perm::ReadOnly)
    );
    table.mark_inactive();
    assert!(!table.is_active());
}

#[test]
fn region_containing_answers_from_the_records() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(RAM_IPA, RAM_PA, 0x3000, MemKind::Normal, Perm::ReadWrite)
        .unwrap();
    assert_eq!(
        table
            .region_containing(Ipa(RAM_IPA.0 + 0x2fff))
            .map(|r| r.pa),
        Some(RAM_PA)
    );
    assert_eq!(table.region_containing(Ipa(RAM_IPA.0 + 0x3000)), None);
    assert_eq!(table.region_containing(Ipa(RAM_IPA.0 - 1)), None);
}

#[test]
fn pool_frames_back_a_table_on_the_host() {
    const PAGES: usize = 8;
    let layout = std::alloc::Layout::from_size_align(PAGES * 4096, 4096).unwrap();
    // SAFETY: The layout has a non-zero size.
    let buffer = unsafe { std::alloc::alloc(layout) };
    assert!(!buffer.is_null());
    let start = Pa(buffer.expose_provenance() as u64);
    {
        // SAFETY: The buffer is ours alone and, on the host, addressed by its own address.
        let pool = unsafe { PoolFrames::new(start, Pa(start.0 + (PAGES as u64) * PAGE_SIZE)) };
        let mut table = Stage2Table::new(pool).unwrap();
        table
            .map(
                Ipa(0x1000),
                Pa(0x4000_1000),
                PAGE_SIZE,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        assert_eq!(
            table.translate(Ipa(0x1008)).map(|(pa, ..)| pa),
            Some(Pa(0x4000_1008))
        );
        assert!(start <= table.root_pa());
    }
    // SAFETY: Allocated above with this layout; the pool and table are gone.
    unsafe { std::alloc::dealloc(buffer, layout) };
}

#[test]
fn table_over_a_pool_can_live_in_a_static_mutex() {
    fn assert_send<T: Send>() {}
    assert_send::<Stage2Table<PoolFrames>>();
}

#[test]
fn vtcr_el2_matches_hand_checked_values() {
    // RES1 0x8000_0000 | PS | SH0 inner 0x3000 | ORGN0 WBWA 0x400 | IRGN0 WBWA 0x100
    // | SL0 level 1 0x40 | T0SZ 25 0x19; PS 40 bits = 0b010 << 16 = 0x2_0000.
    assert_eq!(vtcr_el2(40), 0x8002_3559);
    // PS 48 bits = 0b101 << 16 = 0x5_0000.
    assert_eq!(vtcr_el2(48), 0x8005_3559);
    assert_eq!(vtcr_el2(32), 0x8000_3559);
    assert_eq!(vtcr_el2(44), 0x8004_3559);
    assert_eq!(vtcr_el2(52), 0x8006_3559);
    // Unlisted widths round down.
    assert_eq!(vtcr_el2(45), vtcr_el2(44));
    assert_eq!(vtcr_el2(20), vtcr_el2(32));
}

#[test]
fn errors_display_a_message() {
    assert_eq!(
        alloc::format!("{}", Stage2Error::Overlap),
        "range overlaps a mapped region"
    );
}

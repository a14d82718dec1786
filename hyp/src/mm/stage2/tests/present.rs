//! Host tests of `Stage2Table::set_presence`: regions that stay recorded while
//! their descriptors are invalid, as guest RAM cleared on first touch is.

use super::*;

/// Two 2 MiB block regions and a page region after them, as demand-filled RAM
/// and a personality's last, page-mapped piece would be.
fn two_blocks_and_a_page(table: &mut Stage2Table<&mut HeapFrames>) {
    for chunk in 0..2 {
        table
            .map(
                Ipa(RAM_IPA.0 + chunk * BLOCK_2M),
                Pa(RAM_PA.0 + chunk * BLOCK_2M),
                BLOCK_2M,
                MemKind::Normal,
                Perm::ReadWriteExecute,
            )
            .unwrap();
    }
    table
        .map(
            Ipa(RAM_IPA.0 + 2 * BLOCK_2M),
            Pa(RAM_PA.0 + 2 * BLOCK_2M),
            PAGE_SIZE,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
}

/// Maps `size` bytes at `ipa` to the same PA in 2 MiB pieces, as guest RAM is.
fn in_pieces(
    table: &mut Stage2Table<&mut HeapFrames>,
    ipa: Ipa,
    size: u64,
    perm: Perm,
) -> Result<(), Stage2Error> {
    table.map_in_pieces(ipa, Pa(ipa.0), size, MemKind::Normal, perm, BLOCK_2M)
}

#[test]
fn absent_regions_stay_recorded_and_come_back_unchanged() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    two_blocks_and_a_page(&mut table);
    let before = records(&table);
    let all = 2 * BLOCK_2M + PAGE_SIZE;
    table.set_presence(RAM_IPA, all, Presence::Absent).unwrap();
    for offset in [0, BLOCK_2M - 8, BLOCK_2M, 2 * BLOCK_2M, all - 1] {
        assert_eq!(
            table.translate(Ipa(RAM_IPA.0 + offset)),
            None,
            "{offset:#x}"
        );
    }
    assert_eq!(records(&table), before);
    assert_eq!(
        table.region_containing(Ipa(RAM_IPA.0 + BLOCK_2M)),
        before.get(1)
    );

    let second = Ipa(RAM_IPA.0 + BLOCK_2M);
    table
        .set_presence(second, BLOCK_2M, Presence::Blocks)
        .unwrap();
    assert_eq!(
        table.translate(Ipa(second.0 + 0x1234)),
        Some((
            Pa(RAM_PA.0 + BLOCK_2M + 0x1234),
            MemKind::Normal,
            Perm::ReadWriteExecute
        ))
    );
    assert_eq!(table.leaf(second).unwrap().level, 2, "a 2 MiB block");
    assert_eq!(table.translate(RAM_IPA), None, "its neighbour stays absent");
    assert_eq!(table.translate(Ipa(RAM_IPA.0 + 2 * BLOCK_2M)), None);

    let page = Ipa(RAM_IPA.0 + 2 * BLOCK_2M);
    table
        .set_presence(page, PAGE_SIZE, Presence::Blocks)
        .unwrap();
    assert_eq!(
        table.translate(page),
        Some((
            Pa(RAM_PA.0 + 2 * BLOCK_2M),
            MemKind::Normal,
            Perm::ReadWrite
        ))
    );
    assert_eq!(records(&table), before);
}

#[test]
fn pages_map_a_block_region_with_a_table_that_absence_frees() {
    let mut frames = HeapFrames::new();
    {
        let mut table = Stage2Table::new(&mut frames).unwrap();
        two_blocks_and_a_page(&mut table);
        table
            .set_presence(RAM_IPA, 2 * BLOCK_2M, Presence::Absent)
            .unwrap();
        table
            .set_presence(RAM_IPA, BLOCK_2M, Presence::Pages)
            .unwrap();
        for offset in [0, 0x1000, BLOCK_2M - 8] {
            let ipa = Ipa(RAM_IPA.0 + offset);
            assert_eq!(table.leaf(ipa).unwrap().level, 3, "{offset:#x}");
            assert_eq!(
                table.translate(ipa),
                Some((
                    Pa(RAM_PA.0 + offset),
                    MemKind::Normal,
                    Perm::ReadWriteExecute
                ))
            );
        }
        assert_eq!(table.translate(Ipa(RAM_IPA.0 + BLOCK_2M)), None);
        table
            .set_presence(RAM_IPA, BLOCK_2M, Presence::Absent)
            .unwrap();
        assert_eq!(table.translate(RAM_IPA), None);
        assert_eq!(table.translate(Ipa(RAM_IPA.0 + BLOCK_2M - 8)), None);
    }
    assert_eq!(frames.live(), 0);
}

#[test]
fn pages_without_a_frame_for_their_table_change_nothing() {
    // Root, level-2 table, and nothing for a level-3 one.
    let mut frames = HeapFrames::with_limit(2);
    let mut table = Stage2Table::new(&mut frames).unwrap();
    table
        .map(RAM_IPA, RAM_PA, BLOCK_2M, MemKind::Normal, Perm::ReadWrite)
        .unwrap();
    table
        .set_presence(RAM_IPA, BLOCK_2M, Presence::Absent)
        .unwrap();
    assert_eq!(
        table.set_presence(RAM_IPA, BLOCK_2M, Presence::Pages),
        Err(Stage2Error::OutOfFrames)
    );
    assert_eq!(table.translate(RAM_IPA), None);
    table
        .set_presence(RAM_IPA, BLOCK_2M, Presence::Blocks)
        .unwrap();
    // Blocks need no new table, even with the frame source empty.
    assert_eq!(table.leaf(RAM_IPA).unwrap().level, 2);
}

#[test]
fn set_presence_takes_whole_regions_only() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    two_blocks_and_a_page(&mut table);
    let before = records(&table);
    assert_eq!(
        table.set_presence(RAM_IPA, PAGE_SIZE, Presence::Absent),
        Err(Stage2Error::PartialRegion)
    );
    assert_eq!(
        table.set_presence(Ipa(RAM_IPA.0 + PAGE_SIZE), BLOCK_2M, Presence::Pages),
        Err(Stage2Error::PartialRegion)
    );
    assert_eq!(
        table.set_presence(
            Ipa(RAM_IPA.0 + 2 * BLOCK_2M),
            2 * PAGE_SIZE,
            Presence::Absent
        ),
        Err(Stage2Error::NotMapped)
    );
    assert_eq!(
        table.set_presence(Ipa(RAM_IPA.0 + 1), PAGE_SIZE, Presence::Absent),
        Err(Stage2Error::MisalignedIpa)
    );
    assert_eq!(records(&table), before);
    assert_eq!(table.leaf(RAM_IPA).unwrap().level, 2, "nothing changed");
}

#[test]
fn a_live_table_changes_presence_and_stays_live() {
    let mut frames = HeapFrames::new();
    let mut table = Stage2Table::new(&mut frames).unwrap();
    two_blocks_and_a_page(&mut table);
    table.mark_active();
    table
        .set_presence(RAM_IPA, 2 * BLOCK_2M, Presence::Absent)
        .unwrap();
    assert_eq!(table.translate(RAM_IPA), None);
    table
        .set_presence(RAM_IPA, BLOCK_2M, Presence::Blocks)
        .unwrap();
    assert_eq!(table.leaf(RAM_IPA).unwrap().level, 2);
    let second = Ipa(RAM_IPA.0 + BLOCK_2M);
    table
        .set_presence(second, BLOCK_2M, Presence::Pages)
        .unwrap();
    assert_eq!(table.leaf(second).unwrap().level, 3);
    assert!(table.is_active());
    table.mark_inactive();
    drop(table);
    assert_eq!(frames.live(), 0);
}

#[test]
fn only_an_absent_range_is_made_present() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    two_blocks_and_a_page(&mut table);
    // Rewriting a valid block with pages would need break-before-make.
    for presence in [Presence::Pages, Presence::Blocks] {
        assert_eq!(
            table.set_presence(RAM_IPA, BLOCK_2M, presence),
            Err(Stage2Error::BreakBeforeMake)
        );
    }
    assert_eq!(table.leaf(RAM_IPA).unwrap().level, 2);
    table
        .set_presence(RAM_IPA, BLOCK_2M, Presence::Absent)
        .unwrap();
    table
        .set_presence(RAM_IPA, BLOCK_2M, Presence::Absent)
        .unwrap();
    table
        .set_presence(RAM_IPA, BLOCK_2M, Presence::Pages)
        .unwrap();
    assert_eq!(table.leaf(RAM_IPA).unwrap().level, 3);
}

#[test]
fn pages_under_a_1g_block_reserve_a_level_2_table_too() {
    const GIB_IPA: Ipa = Ipa(0x8000_0000);
    // Root and nothing else: a 1 GiB block needs no table.
    let mut frames = HeapFrames::with_limit(2);
    let mut table = Stage2Table::new(&mut frames).unwrap();
    table
        .map(
            GIB_IPA,
            Pa(GIB_IPA.0),
            BLOCK_1G,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    assert_eq!(table.leaf(GIB_IPA).unwrap().level, 1);
    table
        .set_presence(GIB_IPA, BLOCK_1G, Presence::Absent)
        .unwrap();
    // 512 level-3 tables and a level-2 one: far more than the source has.
    assert_eq!(
        table.set_presence(GIB_IPA, BLOCK_1G, Presence::Pages),
        Err(Stage2Error::OutOfFrames)
    );
    table
        .set_presence(GIB_IPA, BLOCK_1G, Presence::Blocks)
        .unwrap();
    assert_eq!(table.leaf(GIB_IPA).unwrap().level, 1);
}

#[test]
fn ram_mapped_in_pieces_is_one_region_taken_2m_at_a_time() {
    const GIB_IPA: Ipa = Ipa(0x8000_0000);
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    in_pieces(&mut table, GIB_IPA, BLOCK_1G, Perm::ReadWriteExecute).unwrap();
    assert_eq!(table.regions().len(), 1);
    assert_eq!(table.leaf(GIB_IPA).unwrap().level, 2, "no 1 GiB block");
    let chunk = Ipa(GIB_IPA.0 + 7 * BLOCK_2M);
    table
        .set_presence(chunk, BLOCK_2M, Presence::Absent)
        .unwrap();
    assert_eq!(table.translate(chunk), None);
    assert!(table.translate(Ipa(chunk.0 - 8)).is_some());
    assert!(table.translate(Ipa(chunk.0 + BLOCK_2M)).is_some());
    table
        .set_presence(chunk, BLOCK_2M, Presence::Pages)
        .unwrap();
    assert_eq!(
        table.translate(Ipa(chunk.0 + 0x1008)),
        Some((
            Pa(chunk.0 + 0x1008),
            MemKind::Normal,
            Perm::ReadWriteExecute
        ))
    );
    assert_eq!(table.leaf(chunk).unwrap().level, 3);
    // Half a block, or a range across a block's end, would split a block.
    for (start, size) in [
        (GIB_IPA.0, BLOCK_2M / 2),
        (GIB_IPA.0 + BLOCK_2M / 2, BLOCK_2M),
    ] {
        assert_eq!(
            table.set_presence(Ipa(start), size, Presence::Absent),
            Err(Stage2Error::PartialRegion),
            "{start:#x}+{size:#x}"
        );
    }
    // Pages may be taken one at a time.
    table
        .set_presence(Ipa(chunk.0 + PAGE_SIZE), PAGE_SIZE, Presence::Absent)
        .unwrap();
    assert_eq!(table.translate(Ipa(chunk.0 + PAGE_SIZE)), None);
    assert!(table.translate(chunk).is_some());
    assert_eq!(table.regions().len(), 1);
}

#[test]
fn mapping_in_pieces_without_frames_leaves_nothing_mapped() {
    const GIB_IPA: Ipa = Ipa(0x8000_0000);
    // Enough for the first piece (a level-2 and a level-3 table under the root), not for
    // the second: the first must be taken back.
    let mut frames = HeapFrames::with_limit(3);
    {
        let mut table = Stage2Table::new(&mut frames).unwrap();
        assert_eq!(
            table.map_in_pieces(
                Ipa(GIB_IPA.0 + BLOCK_2M - PAGE_SIZE),
                Pa(GIB_IPA.0 + BLOCK_2M - PAGE_SIZE),
                2 * BLOCK_2M,
                MemKind::Normal,
                Perm::ReadWrite,
                BLOCK_2M,
            ),
            Err(Stage2Error::OutOfFrames)
        );
        assert_eq!(table.regions().len(), 0);
        assert_eq!(table.translate(Ipa(GIB_IPA.0 + BLOCK_2M - PAGE_SIZE)), None);
        assert_eq!(table.translate(Ipa(GIB_IPA.0 + BLOCK_2M)), None);
    }
    assert_eq!(frames.live(), 0);
    let mut frames = HeapFrames::new();
    let mut table = Stage2Table::new(&mut frames).unwrap();
    assert_eq!(
        table.map_in_pieces(
            GIB_IPA,
            Pa(GIB_IPA.0),
            BLOCK_2M,
            MemKind::Normal,
            Perm::ReadWrite,
            3 * PAGE_SIZE
        ),
        Err(Stage2Error::MisalignedSize)
    );
}

#[test]
fn compacted_tables_are_allocated_again_and_never_without_a_frame() {
    const GIB_IPA: Ipa = Ipa(0x4000_0000);
    let mut frames = HeapFrames::with_limit(3);
    let mut table = Stage2Table::new(&mut frames).unwrap();
    table
        .map(
            GIB_IPA,
            Pa(GIB_IPA.0),
            BLOCK_2M,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    let ram = Ipa(GIB_IPA.0 + BLOCK_2M);
    in_pieces(&mut table, ram, 2 * BLOCK_2M, Perm::ReadWrite).unwrap();
    table
        .set_presence(ram, 2 * BLOCK_2M, Presence::Absent)
        .unwrap();
    // Unmapping the other region leaves the level-2 table empty: compaction frees it, and
    // an invalid level-1 entry now spans the absent chunks.
    table.unmap(GIB_IPA, BLOCK_2M).unwrap();
    assert_eq!(table.descriptor_at(ram.0), Some((1, false)));
    // Pages there need a level-2 and a level-3 table: the source has just those two.
    table.set_presence(ram, BLOCK_2M, Presence::Pages).unwrap();
    assert_eq!(table.leaf(ram).unwrap().level, 3);
    // Its neighbour's level-3 table would be a fourth frame: refused, not a panic.
    assert_eq!(
        table.set_presence(Ipa(ram.0 + BLOCK_2M), BLOCK_2M, Presence::Pages),
        Err(Stage2Error::OutOfFrames)
    );
    // A block needs no table there now (the level-2 table exists again).
    table
        .set_presence(Ipa(ram.0 + BLOCK_2M), BLOCK_2M, Presence::Blocks)
        .unwrap();
    assert_eq!(table.leaf(Ipa(ram.0 + BLOCK_2M)).unwrap().level, 2);
}

#[test]
fn blocks_for_a_page_mapped_region_reserve_its_tables() {
    const IPA: Ipa = Ipa(0x4000_0000);
    // IPA and PA not congruent: pages, under a level-2 and a level-3 table.
    let mut frames = HeapFrames::with_limit(3);
    let mut table = Stage2Table::new(&mut frames).unwrap();
    table
        .map(
            IPA,
            Pa(IPA.0 + PAGE_SIZE),
            BLOCK_2M,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    assert_eq!(table.leaf(IPA).unwrap().level, 3);
    table.set_presence(IPA, BLOCK_2M, Presence::Absent).unwrap();
    assert_eq!(table.translate(IPA), None);
    // Its level-3 table was freed; mapping it again takes one, which the source has.
    table.set_presence(IPA, BLOCK_2M, Presence::Blocks).unwrap();
    assert_eq!(
        table.translate(Ipa(IPA.0 + 8)),
        Some((Pa(IPA.0 + PAGE_SIZE + 8), MemKind::Normal, Perm::ReadWrite))
    );
    // With the source full, the same change is refused instead of panicking: make it
    // absent again, and let another 2 MiB mapped with pages take the last frame.
    table.set_presence(IPA, BLOCK_2M, Presence::Absent).unwrap();
    let other = Ipa(IPA.0 + 2 * BLOCK_2M);
    in_pieces(&mut table, other, BLOCK_2M, Perm::ReadWrite).unwrap();
    table
        .set_presence(other, BLOCK_2M, Presence::Absent)
        .unwrap();
    table
        .set_presence(other, BLOCK_2M, Presence::Pages)
        .unwrap();
    assert_eq!(
        table.set_presence(IPA, BLOCK_2M, Presence::Blocks),
        Err(Stage2Error::OutOfFrames)
    );
    assert_eq!(table.translate(IPA), None);
}

#[test]
fn ram_mapped_in_pieces_keeps_its_pieces_after_compaction() {
    const GIB_IPA: Ipa = Ipa(0x4000_0000);
    let mut frames = HeapFrames::new();
    {
        let mut table = Stage2Table::new(&mut frames).unwrap();
        in_pieces(&mut table, GIB_IPA, BLOCK_1G, Perm::ReadWrite).unwrap();
        let other = Ipa(4 * BLOCK_1G);
        table
            .map(
                other,
                Pa(other.0),
                BLOCK_2M,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        table
            .set_presence(GIB_IPA, BLOCK_1G, Presence::Absent)
            .unwrap();
        // Unmapping elsewhere compacts the now empty level-2 table away.
        table.unmap(other, BLOCK_2M).unwrap();
        assert_eq!(table.descriptor_at(GIB_IPA.0), Some((1, false)));
        table
            .set_presence(GIB_IPA, BLOCK_1G, Presence::Blocks)
            .unwrap();
        assert_eq!(table.leaf(GIB_IPA).unwrap().level, 2, "no 1 GiB block");
        // So any 2 MiB of it can still be taken on its own.
        let chunk = Ipa(GIB_IPA.0 + BLOCK_2M);
        table
            .set_presence(chunk, BLOCK_2M, Presence::Absent)
            .unwrap();
        assert_eq!(table.translate(chunk), None);
        assert!(table.translate(GIB_IPA).is_some());
    }
    assert_eq!(frames.live(), 0);
}

#[test]
fn protecting_a_partly_absent_range_changes_nothing() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    two_blocks_and_a_page(&mut table);
    let second = Ipa(RAM_IPA.0 + BLOCK_2M);
    table
        .set_presence(second, BLOCK_2M, Presence::Absent)
        .unwrap();
    let before = records(&table);
    assert_eq!(
        table.protect(RAM_IPA, 2 * BLOCK_2M, Perm::ReadOnly),
        Err(Stage2Error::NotMapped)
    );
    assert_eq!(records(&table), before);
    assert_eq!(
        table.translate(RAM_IPA).map(|(_, _, perm)| perm),
        Some(Perm::ReadWriteExecute)
    );
}

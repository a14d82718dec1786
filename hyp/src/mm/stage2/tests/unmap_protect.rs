//! Host tests of `mm/stage2/mod.rs`: unmapping ranges and changing their
//! permissions, and the refusals when a range does not match what is mapped.

use super::*;

#[test]
fn unmap_makes_translate_none_and_frees_tables() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(RAM_IPA, RAM_PA, 4 * MIB, MemKind::Normal, Perm::ReadWrite)
        .unwrap();
    table
        .map(
            Ipa(0x1000),
            Pa(0x5000),
            PAGE_SIZE,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    table.unmap(RAM_IPA, 4 * MIB).unwrap();
    table.unmap(Ipa(0x1000), PAGE_SIZE).unwrap();
    assert_eq!(table.translate(RAM_IPA), None);
    assert_eq!(table.translate(Ipa(RAM_IPA.0 + 3 * MIB)), None);
    assert_eq!(table.translate(Ipa(0x1000)), None);
    assert_eq!(table.regions().len(), 0);
    drop(table);
    assert_eq!(frames.live(), 0);
}

#[test]
fn unmap_compacts_empty_tables_back_to_the_root() {
    let mut frames = HeapFrames::new();
    {
        let mut table = Stage2Table::new(&mut frames).unwrap();
        table
            .map(
                Ipa(0x1000),
                Pa(0x5000),
                PAGE_SIZE,
                MemKind::Normal,
                Perm::ReadWrite,
            )
            .unwrap();
        table.unmap(Ipa(0x1000), PAGE_SIZE).unwrap();
        // Leak-free check while the table lives: only the root remains.
        let live = table.mapping.translation().frames.borrow().source.live();
        assert_eq!(live, 1);
    }
    assert_eq!(frames.live(), 0);
}

#[test]
fn unmap_of_part_of_a_region_splits_its_record() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(RAM_IPA, RAM_PA, 4 * MIB, MemKind::Normal, Perm::ReadWrite)
        .unwrap();
    let hole = Ipa(RAM_IPA.0 + MIB);
    table.unmap(hole, PAGE_SIZE).unwrap();
    assert_eq!(table.translate(hole), None);
    assert_eq!(
        table.translate(Ipa(hole.0 + PAGE_SIZE)).map(|(pa, ..)| pa),
        Some(Pa(RAM_PA.0 + MIB + PAGE_SIZE))
    );
    assert_eq!(
        table.translate(Ipa(hole.0 - 1)).map(|(pa, ..)| pa),
        Some(Pa(RAM_PA.0 + MIB - 1))
    );
    let (normal, rw) = (MemKind::Normal, Perm::ReadWrite);
    assert_eq!(
        records(&table),
        vec![
            region(RAM_IPA.0, MIB, RAM_PA.0, normal, rw),
            region(
                hole.0 + PAGE_SIZE,
                3 * MIB - PAGE_SIZE,
                RAM_PA.0 + MIB + PAGE_SIZE,
                normal,
                rw
            ),
        ]
    );
}

#[test]
fn unmap_takes_a_run_of_whole_adjacent_regions() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(
            Ipa(0x10_0000),
            Pa(0x10_0000),
            0x2000,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    table
        .map(
            Ipa(0x10_2000),
            Pa(0x90_0000),
            0x1000,
            MemKind::Device,
            Perm::ReadWrite,
        )
        .unwrap();
    table.unmap(Ipa(0x10_0000), 0x3000).unwrap();
    assert_eq!(table.regions().len(), 0);
    assert_eq!(table.translate(Ipa(0x10_2000)), None);
}

#[test]
fn unmap_cutting_a_region_among_several_is_refused() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(
            Ipa(0x10_0000),
            Pa(0x10_0000),
            0x2000,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    table
        .map(
            Ipa(0x10_2000),
            Pa(0x90_0000),
            0x2000,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    let before = records(&table);
    assert_eq!(
        table.unmap(Ipa(0x10_1000), 0x2000),
        Err(Stage2Error::PartialRegion)
    );
    assert_eq!(records(&table), before);
    assert!(table.translate(Ipa(0x10_1000)).is_some());
}

#[test]
fn unmap_of_unmapped_range_is_refused() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    assert_eq!(table.unmap(RAM_IPA, PAGE_SIZE), Err(Stage2Error::NotMapped));
    table
        .map(
            Ipa(0x10_0000),
            Pa(0x10_0000),
            0x1000,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    table
        .map(
            Ipa(0x10_2000),
            Pa(0x10_2000),
            0x1000,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    // A gap in the middle, a page before and a page after.
    assert_eq!(
        table.unmap(Ipa(0x10_0000), 0x3000),
        Err(Stage2Error::NotMapped)
    );
    assert_eq!(
        table.unmap(Ipa(0x0f_f000), 0x2000),
        Err(Stage2Error::NotMapped)
    );
    assert_eq!(
        table.unmap(Ipa(0x10_2000), 0x2000),
        Err(Stage2Error::NotMapped)
    );
    assert_eq!(table.regions().len(), 2);
}

#[test]
fn protect_to_read_only_changes_only_the_range() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(
            RAM_IPA,
            RAM_PA,
            BLOCK_2M,
            MemKind::Normal,
            Perm::ReadWriteExecute,
        )
        .unwrap();
    let page = Ipa(RAM_IPA.0 + 0x3000);
    table.protect(page, PAGE_SIZE, Perm::ReadOnly).unwrap();
    assert_eq!(
        table.translate(page),
        Some((Pa(RAM_PA.0 + 0x3000), MemKind::Normal, Perm::ReadOnly))
    );
    for neighbour in [page.0 - 1, page.0 + PAGE_SIZE] {
        assert_eq!(
            table.translate(Ipa(neighbour)),
            Some((
                Pa(RAM_PA.0 + neighbour - RAM_IPA.0),
                MemKind::Normal,
                Perm::ReadWriteExecute
            ))
        );
    }
    let (normal, rwx) = (MemKind::Normal, Perm::ReadWriteExecute);
    assert_eq!(
        records(&table),
        vec![
            region(RAM_IPA.0, 0x3000, RAM_PA.0, normal, rwx),
            region(page.0, PAGE_SIZE, RAM_PA.0 + 0x3000, normal, Perm::ReadOnly),
            region(
                page.0 + PAGE_SIZE,
                BLOCK_2M - 0x4000,
                RAM_PA.0 + 0x4000,
                normal,
                rwx
            ),
        ]
    );
}

#[test]
fn protect_spans_adjacent_regions_and_keeps_blocks_whole() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(RAM_IPA, RAM_PA, BLOCK_2M, MemKind::Normal, Perm::ReadWrite)
        .unwrap();
    table
        .map(
            Ipa(RAM_IPA.0 + BLOCK_2M),
            Pa(0x20_0000),
            BLOCK_2M,
            MemKind::Normal,
            Perm::ReadWrite,
        )
        .unwrap();
    table
        .protect(RAM_IPA, 2 * BLOCK_2M, Perm::ReadOnly)
        .unwrap();
    assert!(table.regions().all(|region| region.perm == Perm::ReadOnly));
    let leaf = table.leaf(Ipa(RAM_IPA.0 + BLOCK_2M)).unwrap();
    assert_eq!(leaf.level, 2);
    assert_eq!(
        table.translate(Ipa(RAM_IPA.0 + BLOCK_2M + 8)),
        Some((Pa(0x20_0008), MemKind::Normal, Perm::ReadOnly))
    );
}

#[test]
fn protect_of_partly_unmapped_range_is_refused() {
    let mut frames = HeapFrames::new();
    let mut table = table(&mut frames);
    table
        .map(RAM_IPA, RAM_PA, 0x2000, MemKind::Normal, Perm::ReadWrite)
        .unwrap();
    assert_eq!(
        table.protect(RAM_IPA, 0x3000, Perm::ReadOnly),
        Err(Stage2Error::NotMapped)
    );
    assert_eq!(
        table.translate(RAM_IPA).map(|(_, _, perm)| perm),
        Some(Perm::ReadWrite)
    );
}

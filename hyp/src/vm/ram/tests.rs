//! Host tests of `vm/ram.rs`: which chunks are present when, and what gets cleared.

use super::*;
use crate::mm::frame::HeapFrames;

const BASE: u64 = 0xb000_0000;
const MIB: u64 = 1024 * 1024;

fn ram(frames: &mut HeapFrames, chunks: u64) -> GuestRam<&mut HeapFrames> {
    let table = Stage2Table::new(frames).unwrap();
    GuestRam::new(table, BASE, chunks * CHUNK_BYTES).unwrap()
}

fn mapped(ram: &GuestRam<&mut HeapFrames>, ipa: u64) -> bool {
    ram.table().translate(Ipa(ipa)).is_some()
}

#[test]
fn new_ram_is_present_in_2m_chunks_identity_mapped() {
    let mut frames = HeapFrames::new();
    let ram = ram(&mut frames, 3);
    assert_eq!(ram.chunks(), 3);
    assert_eq!(ram.present_chunks(), 3);
    // One region record, whatever the size, and no 1 GiB block even where aligned.
    assert_eq!(ram.table().regions().len(), 1);
    assert_eq!(ram.table().leaf_level(Ipa(BASE)), Some(2));
    assert_eq!(
        ram.table().translate(Ipa(BASE + 5 * MIB + 3)),
        Some((
            Pa(BASE + 5 * MIB + 3),
            MemKind::Normal,
            Perm::ReadWriteExecute
        ))
    );
    assert!(!mapped(&ram, BASE + 6 * MIB));
    assert_eq!(ram.is_present(BASE + 6 * MIB), None);
}

#[test]
fn misaligned_ram_is_refused() {
    let mut frames = HeapFrames::new();
    let table = Stage2Table::new(&mut frames).unwrap();
    assert!(matches!(
        GuestRam::new(table, BASE + MIB, CHUNK_BYTES),
        Err(Stage2Error::MisalignedIpa)
    ));
    let table = Stage2Table::new(&mut frames).unwrap();
    assert!(matches!(
        GuestRam::new(table, BASE, 3 * MIB),
        Err(Stage2Error::MisalignedSize)
    ));
}

#[test]
fn forgotten_chunks_are_filled_once_on_first_touch() {
    let mut frames = HeapFrames::new();
    let mut ram = ram(&mut frames, 4);
    ram.forget().unwrap();
    assert_eq!(ram.present_chunks(), 0);
    assert!(!mapped(&ram, BASE));
    assert_eq!(ram.is_present(BASE + 7 * MIB), Some(false));

    let mut cleared = Vec::new();
    let touch = ram
        .touch(BASE + 5 * MIB + 0x123, |start, len| {
            cleared.push((start, len))
        })
        .unwrap();
    assert_eq!(touch, Touch::Filled(BASE + 4 * MIB..BASE + 6 * MIB));
    assert_eq!(cleared, [(BASE + 4 * MIB, CHUNK_BYTES)]);
    assert!(mapped(&ram, BASE + 4 * MIB) && mapped(&ram, BASE + 6 * MIB - 1));
    assert!(!mapped(&ram, BASE + 6 * MIB) && !mapped(&ram, BASE + 4 * MIB - 1));

    // A second vCPU faulting on the same chunk finds it present: nothing is cleared again.
    let again = ram
        .touch(BASE + 4 * MIB, |_, _| panic!("cleared twice"))
        .unwrap();
    assert_eq!(again, Touch::Present);
    let outside = ram
        .touch(BASE + 8 * MIB, |_, _| panic!("not ours"))
        .unwrap();
    assert_eq!(outside, Touch::Outside);
    assert_eq!(
        ram.touch(BASE - 1, |_, _| panic!()).unwrap(),
        Touch::Outside
    );
    assert_eq!(ram.present_chunks(), 1);

    // The next start forgets it again.
    ram.forget().unwrap();
    assert!(!mapped(&ram, BASE + 4 * MIB));
    assert_eq!(ram.present_chunks(), 0);
}

#[test]
fn touch_range_fills_every_chunk_it_covers() {
    let mut frames = HeapFrames::new();
    let mut ram = ram(&mut frames, 4);
    ram.forget().unwrap();
    ram.touch(BASE + 2 * MIB, |_, _| {}).unwrap();
    let mut cleared = Vec::new();
    // From the end of chunk 0 into chunk 2, over a present chunk 1.
    let filled = ram
        .touch_range(BASE + 2 * MIB - 16, 2 * MIB + 32, |start, len| {
            cleared.push((start, len))
        })
        .unwrap();
    assert_eq!(filled, 2);
    assert_eq!(
        cleared,
        [(BASE, CHUNK_BYTES), (BASE + 4 * MIB, CHUNK_BYTES)]
    );
    assert_eq!(ram.present_chunks(), 3);
    assert_eq!(ram.touch_range(BASE, 1, |_, _| panic!()).unwrap(), 0);
}

#[test]
fn prepare_clears_only_what_loads_leave_and_presents_their_chunks() {
    let mut frames = HeapFrames::new();
    let mut ram = ram(&mut frames, 5);
    ram.forget().unwrap();
    // A kernel over chunks 0-1 ending mid-page in chunk 1, an initrd starting in
    // chunk 1 on a page and ending mid-page, a device tree at the start of chunk 4.
    let kernel = BASE + 0x1000..BASE + 3 * MIB + 0x10;
    let initrd = BASE + 3 * MIB + 0x3000..BASE + 3 * MIB + 0x5800;
    let dtb = BASE + 8 * MIB..BASE + 8 * MIB + 0x900;
    let mut cleared = Vec::new();
    ram.prepare(
        &[dtb.clone(), kernel.clone(), initrd.clone()],
        |start, len| cleared.push(start..start + len),
    )
    .unwrap();
    assert_eq!(
        cleared,
        [
            BASE..BASE + 0x1000,
            BASE + 3 * MIB..BASE + 3 * MIB + 0x3000,
            BASE + 3 * MIB + 0x5000..BASE + 4 * MIB,
            BASE + 8 * MIB..BASE + 10 * MIB,
        ]
    );
    for chunk in [0, 1, 4] {
        assert_eq!(ram.is_present(BASE + chunk * CHUNK_BYTES), Some(true));
    }
    for chunk in [2, 3] {
        assert_eq!(ram.is_present(BASE + chunk * CHUNK_BYTES), Some(false));
    }
    // Prepared chunks are not cleared again by a later touch.
    assert_eq!(
        ram.touch(BASE + 0x10, |_, _| panic!()).unwrap(),
        Touch::Present
    );
}

#[test]
fn uncovered_widens_gaps_to_pages_inside_the_range() {
    let range = 0x10_0000..0x30_0000;
    assert_eq!(uncovered(&range, &[], 0x1000), vec![range.clone()]);
    assert_eq!(
        uncovered(&range, core::slice::from_ref(&(0..0x40_0000)), 0x1000),
        Vec::<Range<u64>>::new()
    );
    // Loads outside the range do not count; overlapping loads merge.
    assert_eq!(
        uncovered(
            &range,
            &[0x20_0800..0x20_1000, 0x0..0x10_0010, 0x20_0000..0x20_0900],
            0x1000
        ),
        [0x10_0000..0x20_0000, 0x20_1000..0x30_0000]
    );
    // Gaps shorter than a page widen into one page on either side, merged.
    assert_eq!(
        uncovered(
            &range,
            &[0x10_0000..0x10_0800, 0x10_0900..0x30_0000],
            0x1000
        ),
        vec![0x10_0000..0x10_1000]
    );
}

#[test]
fn filled_chunks_are_mapped_with_pages_while_frames_last() {
    // The root, the level-2 table and one level-3 table.
    let mut frames = HeapFrames::with_limit(3);
    {
        let mut ram = ram(&mut frames, 3);
        ram.forget().unwrap();
        ram.touch(BASE + 0x10, |_, _| {}).unwrap();
        ram.touch(BASE + 2 * MIB, |_, _| {}).unwrap();
        assert_eq!(ram.table().leaf_level(Ipa(BASE + 0x10)), Some(3), "pages");
        assert_eq!(
            ram.table().leaf_level(Ipa(BASE + 2 * MIB)),
            Some(2),
            "no frame left: a block"
        );
        assert!(mapped(&ram, BASE + 4 * MIB - 1));
        // The next start frees the table again.
        ram.forget().unwrap();
        ram.touch(BASE + 2 * MIB, |_, _| {}).unwrap();
        assert_eq!(ram.table().leaf_level(Ipa(BASE + 2 * MIB)), Some(3));
    }
    assert_eq!(frames.live(), 0);
}

#[test]
fn a_personality_maps_at_most_its_share_of_chunks_with_pages() {
    let mut frames = HeapFrames::new();
    let mut ram = ram(&mut frames, 4);
    ram.limit_paged_chunks(2);
    ram.forget().unwrap();
    for chunk in 0..4 {
        ram.touch(BASE + chunk * CHUNK_BYTES, |_, _| {}).unwrap();
    }
    let levels: Vec<_> = (0..4)
        .map(|chunk| ram.table().leaf_level(Ipa(BASE + chunk * CHUNK_BYTES)))
        .collect();
    assert_eq!(levels, [Some(3), Some(3), Some(2), Some(2)]);
    assert_eq!(ram.paged_chunks(), 2);
    // A new start gives the share back.
    ram.forget().unwrap();
    assert_eq!(ram.paged_chunks(), 0);
    ram.touch(BASE + 3 * CHUNK_BYTES, |_, _| {}).unwrap();
    assert_eq!(ram.table().leaf_level(Ipa(BASE + 3 * CHUNK_BYTES)), Some(3));
}

#[test]
fn a_whole_aligned_gib_of_ram_is_forgotten_and_filled_chunk_by_chunk() {
    const GIB: u64 = 0x4000_0000;
    // The root and the level-2 table, nothing for a level-3 one: chunks get blocks, which
    // need no frame only if forgetting kept the level-2 table.
    let mut frames = HeapFrames::with_limit(2);
    {
        let table = Stage2Table::new(&mut frames).unwrap();
        let mut ram = GuestRam::new(table, GIB, GIB).unwrap();
        assert_eq!(ram.chunks(), 512);
        for _ in 0..2 {
            ram.forget().unwrap();
            assert!(!mapped(&ram, GIB) && !mapped(&ram, 2 * GIB - 1));
            ram.touch(GIB + 5 * CHUNK_BYTES, |_, _| {}).unwrap();
            ram.touch(2 * GIB - 1, |_, _| {}).unwrap();
            assert_eq!(ram.table().leaf_level(Ipa(GIB + 5 * CHUNK_BYTES)), Some(2));
            assert_eq!(ram.table().leaf_level(Ipa(2 * GIB - 1)), Some(2));
            assert_eq!(ram.paged_chunks(), 0);
            assert!(!mapped(&ram, GIB + 4 * CHUNK_BYTES));
        }
    }
    assert_eq!(frames.live(), 0);
}

#[test]
fn ram_above_4_gib_is_identity_mapped_and_filled_on_touch() {
    // Where top-down placement puts a personality on an 8 GiB virt board.
    const HIGH: u64 = 0x2_3000_0000;
    let mut frames = HeapFrames::new();
    let table = Stage2Table::new(&mut frames).unwrap();
    let mut ram = GuestRam::new(table, HIGH, 128 * CHUNK_BYTES).unwrap();
    ram.forget().unwrap();
    let last = HIGH + 128 * CHUNK_BYTES - 1;
    let mut cleared = Vec::new();
    let touch = ram
        .touch(last, |start, len| cleared.push((start, len)))
        .unwrap();
    assert_eq!(touch, Touch::Filled(last + 1 - CHUNK_BYTES..last + 1));
    assert_eq!(cleared, [(last + 1 - CHUNK_BYTES, CHUNK_BYTES)]);
    assert_eq!(
        ram.table().translate(Ipa(last)),
        Some((Pa(last), MemKind::Normal, Perm::ReadWriteExecute))
    );
    assert_eq!(
        ram.touch(HIGH - 1, |_, _| panic!("not ours")).unwrap(),
        Touch::Outside
    );
}

//! Tests of the write-log parser and replay, on logs built in memory (the QEMU
//! test `shared_write_log` parses one QEMU wrote).

use super::*;

fn write(sector: u64, byte: u8, sectors: u64) -> Entry {
    Entry {
        sector,
        sectors,
        flags: 0,
        data: vec![byte; sectors as usize * 512],
    }
}

fn flush() -> Entry {
    Entry {
        sector: 0,
        sectors: 0,
        flags: flags::FLUSH,
        data: Vec::new(),
    }
}

fn log(entries: Vec<Entry>) -> WriteLog {
    WriteLog {
        sector_bytes: 512,
        entries,
        beyond_count: 0,
    }
}

#[test]
fn a_log_parses_back_to_its_entries() {
    let mark = Entry {
        sector: 0,
        sectors: 0,
        flags: flags::MARK,
        data: b"after-mkfs".to_vec(),
    };
    let mut fua = write(7, 0x77, 1);
    fua.flags = flags::FUA;
    let discard = Entry {
        sector: 10,
        sectors: 4,
        flags: flags::DISCARD,
        data: Vec::new(),
    };
    let original = log(vec![write(2, 0xaa, 3), flush(), fua, discard, mark]);
    let bytes = original.to_bytes();
    // Super, then: header + 3 data sectors, flush header, header + 1, discard
    // header, mark header + its text sector.
    assert_eq!(bytes.len(), 512 * (1 + 4 + 1 + 2 + 1 + 2));
    let parsed = WriteLog::parse(&bytes).unwrap();
    assert_eq!(parsed, original);
    assert_eq!(parsed.flushes(), [1]);
    assert_eq!(parsed.marks(), [(4, "after-mkfs".to_owned())]);
    assert!(parsed.entries[2].is_fua() && parsed.entries[2].is_write());
    assert!(parsed.entries[3].is_discard() && !parsed.entries[3].is_write());
}

#[test]
fn entries_past_the_counted_ones_are_read_up_to_the_unwritten_end() {
    let full = log(vec![
        write(1, 1, 1),
        flush(),
        write(2, 2, 2),
        write(3, 3, 1),
    ]);
    let mut bytes = full.to_bytes();
    // The super block counts only the first two (QEMU updates it at flushes).
    bytes[16..24].copy_from_slice(&2u64.to_le_bytes());
    bytes.resize(bytes.len() + 4096, 0); // zeros after the last entry
    let parsed = WriteLog::parse(&bytes).unwrap();
    assert_eq!(parsed.entries, full.entries);
    assert_eq!(parsed.beyond_count, 2);
    // An uncounted entry cut off by the end is dropped, not an error.
    let cut = &bytes[..512 * (1 + 2 + 1 + 1 + 1)];
    let parsed = WriteLog::parse(cut).unwrap();
    assert_eq!(parsed.entries.len(), 2);
}

#[test]
fn broken_logs_are_refused() {
    let good = log(vec![write(1, 1, 2), flush()]).to_bytes();
    assert_eq!(WriteLog::parse(&good[..20]), Err(LogError::NoSuperBlock));
    let mut bad = good.clone();
    bad[0] ^= 1;
    assert!(matches!(WriteLog::parse(&bad), Err(LogError::BadMagic(_))));
    let mut bad = good.clone();
    bad[8] = 2;
    assert_eq!(WriteLog::parse(&bad), Err(LogError::BadVersion(2)));
    let mut bad = good.clone();
    bad[24..28].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(WriteLog::parse(&bad), Err(LogError::BadSectorSize(1000)));
    // A counted entry whose data runs past the end.
    assert_eq!(
        WriteLog::parse(&good[..512 * 3]),
        Err(LogError::Truncated { index: 0 })
    );
    let mut bad = good.clone();
    bad[512 + 16] = 0x80; // unknown flag on entry 0
    assert!(matches!(
        WriteLog::parse(&bad),
        Err(LogError::BadEntry { index: 0, .. })
    ));
    // A huge sector count is cut off, never an allocation.
    let mut bad = good;
    bad[512 + 8..512 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(WriteLog::parse(&bad).is_err());
}

#[test]
fn replay_gives_the_image_at_each_flush() {
    let original = vec![0u8; 8 * 512];
    let entries = log(vec![
        write(0, 1, 1),
        flush(),
        write(1, 2, 2),
        write(0, 3, 1),
        flush(),
        write(4, 4, 1),
    ]);
    let mut images = Vec::new();
    let made = replay(
        &original,
        &entries,
        &ReplayOptions::default(),
        |point, image| images.push((point.clone(), image.to_vec())),
    )
    .unwrap();
    assert_eq!(made, 3);
    let sector = |image: &[u8], index: usize| image[index * 512];
    // The start: nothing durable.
    assert_eq!(images[0].0.flush, 0);
    assert_eq!(images[0].0.entry, None);
    assert!(images[0].1.iter().all(|&byte| byte == 0));
    // First flush: only the first write.
    assert_eq!(images[1].0.entry, Some(1));
    assert_eq!(
        (0..5).map(|s| sector(&images[1].1, s)).collect::<Vec<_>>(),
        [1, 0, 0, 0, 0]
    );
    // Second: later writes win, the one after it is not there.
    assert_eq!(images[2].0.entry, Some(4));
    assert_eq!(
        (0..5).map(|s| sector(&images[2].1, s)).collect::<Vec<_>>(),
        [3, 2, 2, 0, 0]
    );
}

#[test]
fn subsets_add_unflushed_writes_in_any_order_and_always_fua() {
    let original = vec![0u8; 4 * 512];
    let mut fua = write(3, 9, 1);
    fua.flags = flags::FUA;
    let entries = log(vec![
        flush(),
        write(0, 1, 1),
        write(0, 2, 1),
        write(1, 5, 1),
        fua,
    ]);
    let options = ReplayOptions {
        subsets_per_flush: 64,
        ..ReplayOptions::default()
    };
    let mut seen_sector0 = std::collections::BTreeSet::new();
    let mut count = 0;
    replay(&original, &entries, &options, |point, image| {
        if point.flush == 1 && !point.applied_after.is_empty() {
            assert!(point.applied_after.contains(&4), "FUA always there");
            assert_eq!(image[3 * 512], 9);
            seen_sector0.insert(image[0]);
        }
        count += 1;
    })
    .unwrap();
    // 2 points (start and the flush; the start has no pending writes before the
    // flush at index 0), and 64 subsets after the flush.
    assert_eq!(count, 2 + 64);
    // Neither write, either one, and either order for the overlapping pair.
    assert_eq!(seen_sector0, [0, 1, 2].into_iter().collect());
    // The same seed, the same images.
    let collect = || {
        let mut all = Vec::new();
        replay(&original, &entries, &options, |point, _| {
            all.push(point.clone())
        })
        .unwrap();
        all
    };
    assert_eq!(collect(), collect());
}

#[test]
fn a_window_replays_one_partition() {
    // The disk's bytes 1024..3072 (sectors 2..6) are the image.
    let original = vec![0u8; 2048];
    let entries = log(vec![
        write(0, 1, 1),
        write(3, 7, 1),
        flush(),
        write(5, 8, 2),
    ]);
    let options = ReplayOptions {
        window: Some(1024..3072),
        ..ReplayOptions::default()
    };
    let mut last = Vec::new();
    replay(&original, &entries, &options, |_, image| {
        last = image.to_vec()
    })
    .unwrap();
    assert_eq!(
        last[512], 7,
        "sector 3 of the disk is sector 1 of the window"
    );
    assert_eq!(last.iter().filter(|&&byte| byte != 0).count(), 512);
    // A write across the window's end is an error.
    let entries = log(vec![write(5, 8, 2), flush()]);
    assert_eq!(
        replay(&original, &entries, &options, |_, _| {}),
        Err(LogError::OutsideImage { index: 0 })
    );
}

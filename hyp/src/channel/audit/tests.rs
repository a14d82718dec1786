use super::*;
use crate::channel::fs::Timespec;
use alloc::vec;

const SECTOR: usize = 512;

/// A RAM disk that keeps the image as of the last flush and the writes since.
#[derive(Clone)]
struct CrashDisk {
    durable: Vec<u8>,
    current: Vec<u8>,
    /// Every write since the start, with the number of flushes before it.
    writes: Vec<(u64, Vec<u8>, usize)>,
    flushes: usize,
    fail_writes: bool,
}

impl CrashDisk {
    fn new(sectors: u64) -> CrashDisk {
        let image = vec![0u8; sectors as usize * SECTOR];
        CrashDisk {
            durable: image.clone(),
            current: image,
            writes: Vec::new(),
            flushes: 0,
            fail_writes: false,
        }
    }

    fn from_image(image: Vec<u8>) -> CrashDisk {
        CrashDisk {
            durable: image.clone(),
            current: image,
            writes: Vec::new(),
            flushes: 0,
            fail_writes: false,
        }
    }
}

impl BlockDisk for CrashDisk {
    fn sectors(&self) -> u64 {
        (self.current.len() / SECTOR) as u64
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let at = sector as usize * SECTOR;
        let source = self.current.get(at..at + buf.len()).ok_or(DiskError)?;
        buf.copy_from_slice(source);
        Ok(())
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError> {
        if self.fail_writes {
            return Err(DiskError);
        }
        let at = sector as usize * SECTOR;
        self.current
            .get_mut(at..at + data.len())
            .ok_or(DiskError)?
            .copy_from_slice(data);
        self.writes.push((sector, data.to_vec(), self.flushes));
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.durable.clone_from(&self.current);
        self.flushes += 1;
        Ok(())
    }
}

/// 2048 reserved sectors plus `segments` segments.
fn disk(segments: u64) -> CrashDisk {
    CrashDisk::new(LOG_START_SECTOR + segments * 8)
}

fn labels() -> Labels {
    Labels {
        names: owned_names(&["personal", "work"]),
        manager: Some(1),
    }
}

fn record(number: u64) -> Record {
    Record {
        time: Timespec {
            sec: 1_764_773_599 + number,
            nsec: 5,
        },
        who: (number % 2) as u8,
        owner: Some(1),
        op: Op::Write,
        ino: number,
        bytes: number * 10,
        path: RecordPath::new(&alloc::format!("/file-{number}")),
        ..Record::default()
    }
}

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|record| record.seq).collect()
}

#[test]
fn a_blank_partition_is_an_empty_log() {
    let mut log = AuditLog::open(disk(4), labels()).unwrap();
    assert_eq!(log.next_seq(), 1);
    assert_eq!(log.recent(10).unwrap(), vec![]);
    assert_eq!(log.records_lost(), 0);
    assert!(
        log.disk_mut().writes.is_empty(),
        "open wrote to a blank log"
    );
}

#[test]
fn a_partition_without_room_is_refused() {
    assert_eq!(
        AuditLog::open(CrashDisk::new(2048 + 15), labels()).err(),
        Some(AuditError::TooSmall)
    );
    assert_eq!(
        AuditLog::open(CrashDisk::new(0), labels()).err(),
        Some(AuditError::TooSmall)
    );
}

#[test]
fn the_reserved_first_mib_is_never_written() {
    let mut log = AuditLog::open(disk(3), labels()).unwrap();
    for number in 0..50 {
        log.append(&record(number)).unwrap();
    }
    assert!(log
        .disk_mut()
        .writes
        .iter()
        .all(|(sector, _, _)| *sector >= LOG_START_SECTOR));
}

#[test]
fn appended_records_read_back_after_reopen() {
    let mut log = AuditLog::open(disk(8), labels()).unwrap();
    let mut long = record(3);
    long.path = RecordPath::new(&"a".repeat(300));
    long.path2 = RecordPath::new(&"b".repeat(200));
    long.mono_ns = Some(77);
    long.result = 13;
    for number in 0..10 {
        let mut appended = if number == 3 { long } else { record(number) };
        appended.seq = 999; // ignored
        assert_eq!(log.append(&appended).unwrap(), number + 1);
    }
    log.flush().unwrap();
    let mut reopened = AuditLog::open(log.into_disk(), labels()).unwrap();
    let recent = reopened.recent(32).unwrap();
    assert_eq!(seqs(&recent), (1..=10).collect::<Vec<_>>());
    assert_eq!(recent[3].path.as_bytes(), "a".repeat(255).as_bytes());
    assert!(recent[3].path.is_truncated());
    assert_eq!(recent[3].path2.as_bytes(), "b".repeat(200).as_bytes());
    assert_eq!(recent[3].mono_ns, Some(77));
    assert_eq!(recent[3].result, 13);
    assert_eq!(
        Record {
            seq: 0,
            ..recent[5]
        },
        Record {
            seq: 0,
            ..record(5)
        }
    );
    assert_eq!(reopened.next_seq(), 11);
    assert_eq!(reopened.append(&record(11)).unwrap(), 11);
    assert_eq!(seqs(&reopened.recent(2).unwrap()), [10, 11]);
}

#[test]
fn truncation_keeps_the_end_at_a_character_boundary() {
    let path = alloc::format!("/{}é/name", "x".repeat(250));
    let kept = RecordPath::new(&path);
    assert!(kept.is_truncated());
    assert!(core::str::from_utf8(kept.as_bytes()).is_ok());
    assert!(kept.as_bytes().ends_with(b"/name"));
    assert!(kept.as_bytes().len() <= PATH_MAX_BYTES);
    assert!(!RecordPath::new("/short").is_truncated());
}

#[test]
fn rotation_counts_overwritten_segments_and_lost_records() {
    let mut log = AuditLog::open(disk(3), labels()).unwrap();
    // 7 one-sector records per segment; 3 segments hold 21.
    for number in 0..21 {
        log.append(&record(number)).unwrap();
    }
    assert_eq!(log.segments_overwritten(), 0);
    assert_eq!(log.records_lost(), 0);
    log.append(&record(21)).unwrap();
    assert_eq!(log.segments_overwritten(), 1);
    assert_eq!(log.records_lost(), 7);
    for number in 22..100 {
        log.append(&record(number)).unwrap();
    }
    let lost = log.records_lost();
    let overwritten = log.segments_overwritten();
    assert!(lost > 70 && overwritten >= 11, "{lost} {overwritten}");
    log.flush().unwrap();
    let mut reopened = AuditLog::open(log.into_disk(), labels()).unwrap();
    assert_eq!(reopened.records_lost(), lost);
    assert_eq!(reopened.segments_overwritten(), overwritten);
    let recent = reopened.recent(32).unwrap();
    // Everything after the lost ones is still there, in order.
    assert_eq!(seqs(&recent), (lost + 1..=100).collect::<Vec<_>>());
}

/// Opens the image, checks the records are exactly 1..=n for some n in
/// `expected` (at least the acknowledged ones), then appends and reopens.
fn check_recovered(image: Vec<u8>, acknowledged: u64, attempted: u64) {
    let mut log = AuditLog::open(CrashDisk::from_image(image), labels()).unwrap();
    let found = seqs(&log.recent(RECENT_MAX).unwrap());
    let last = found.last().copied().unwrap_or(0);
    assert!(
        last >= acknowledged && last <= attempted,
        "{found:?} {acknowledged} {attempted}"
    );
    // Every acknowledged record still in the ring is there, in order; only
    // unacknowledged ones may be missing (a torn segment before them).
    assert!(found.windows(2).all(|pair| pair[0] < pair[1]), "{found:?}");
    // A write in flight may be rotating the oldest segment away: only what two
    // segments (of the three the tests use) hold before it is certain to stay.
    let oldest = found
        .first()
        .copied()
        .unwrap_or(1)
        .max(attempted.saturating_sub(14) + 1);
    for seq in oldest..=acknowledged {
        assert!(
            found.contains(&seq),
            "{seq} missing from {found:?} ack {acknowledged} attempted {attempted}"
        );
    }
    assert_eq!(log.next_seq(), last + 1);
    // Later appends are fine and nothing stale comes back after them.
    for number in 0..3 {
        log.append(&record(1000 + number)).unwrap();
    }
    log.flush().unwrap();
    let mut again = AuditLog::open(log.into_disk(), labels()).unwrap();
    let after = seqs(&again.recent(RECENT_MAX).unwrap());
    assert_eq!(after.last().copied(), Some(last + 3), "{after:?}");
    let tail = again.recent(3).unwrap();
    assert!(tail.iter().all(|record| record.ino >= 1000), "{tail:?}");
}

#[test]
fn a_crash_at_every_write_keeps_every_acknowledged_record() {
    // The caller flushes after each append, as the store commit does.
    let total = 30u64;
    let mut log = AuditLog::open(disk(3), labels()).unwrap();
    for number in 0..total {
        log.append(&record(number)).unwrap();
        log.flush().unwrap();
    }
    let crash = log.into_disk();
    let blank = disk(3).current;
    for cut in 0..crash.writes.len() {
        // Writes before `cut` are durable (each was followed by a flush).
        let mut image = blank.clone();
        for (sector, data, _) in &crash.writes[..cut] {
            let at = *sector as usize * SECTOR;
            image[at..at + data.len()].copy_from_slice(data);
        }
        let acknowledged = cut as u64;
        let (sector, data, _) = &crash.writes[cut];
        let at = *sector as usize * SECTOR;
        // The write in flight: not applied, its first sector only, or garbage.
        check_recovered(image.clone(), acknowledged, acknowledged);
        let mut first_only = image.clone();
        first_only[at..at + SECTOR].copy_from_slice(&data[..SECTOR]);
        check_recovered(first_only, acknowledged, acknowledged + 1);
        let mut torn = image.clone();
        for (index, byte) in torn[at..at + data.len()].iter_mut().enumerate() {
            *byte = (index as u8).wrapping_mul(151).wrapping_add(cut as u8);
        }
        check_recovered(torn, acknowledged, acknowledged);
        // Half a sector: the short records fit in it whole.
        let mut half = image;
        half[at..at + SECTOR / 2].copy_from_slice(&data[..SECTOR / 2]);
        check_recovered(half, acknowledged, acknowledged + 1);
    }
}

/// A small deterministic generator for the random crash tests.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn any_subset_of_unflushed_writes_recovers_a_clean_prefix() {
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let mut log = AuditLog::open(disk(3), labels()).unwrap();
        let flushed = random.next() % 25;
        let unflushed = 1 + random.next() % 12;
        for number in 0..flushed {
            log.append(&record(number)).unwrap();
        }
        log.flush().unwrap();
        for number in 0..unflushed {
            log.append(&record(100 + number)).unwrap();
        }
        let crash = log.into_disk();
        let mut image = crash.durable.clone();
        for (sector, data, flushes) in &crash.writes {
            if *flushes < crash.flushes || random.next().is_multiple_of(2) {
                continue;
            }
            let at = *sector as usize * SECTOR;
            image[at..at + data.len()].copy_from_slice(data);
            if random.next().is_multiple_of(4) {
                image[at + 7] ^= 0x5a;
            }
        }
        let _ = round;
        check_recovered(image, flushed, flushed + unflushed);
    }
}

#[test]
fn a_failed_write_changes_nothing_and_the_next_append_retries() {
    let mut log = AuditLog::open(disk(3), labels()).unwrap();
    log.append(&record(0)).unwrap();
    log.disk_mut().fail_writes = true;
    assert_eq!(log.append(&record(1)), Err(AuditError::Disk));
    log.disk_mut().fail_writes = false;
    assert_eq!(log.append(&record(1)).unwrap(), 2);
    assert_eq!(seqs(&log.recent(5).unwrap()), [1, 2]);
}

#[test]
fn hostile_partitions_never_panic() {
    let mut random = XorShift(7);
    for round in 0..200 {
        let mut image = vec![0u8; (LOG_START_SECTOR as usize + 4 * 8) * SECTOR];
        // Start from a real log, then damage it.
        let mut log = AuditLog::open(CrashDisk::from_image(image.clone()), labels()).unwrap();
        for number in 0..(random.next() % 40) {
            log.append(&record(number)).unwrap();
        }
        image.clone_from(&log.into_disk().current);
        for _ in 0..(1 + random.next() % 64) {
            let at =
                LOG_START_SECTOR as usize * SECTOR + (random.next() as usize) % (4 * 8 * SECTOR);
            image[at] = random.next() as u8;
        }
        if round % 10 == 0 {
            // Pure noise.
            for byte in &mut image[LOG_START_SECTOR as usize * SECTOR..] {
                *byte = random.next() as u8;
            }
        }
        if let Ok(mut log) = AuditLog::open(CrashDisk::from_image(image), labels()) {
            let _ = log.recent(RECENT_MAX);
            let _ = log.export(1, 0, EXPORT_MAX_BYTES);
            for number in 0..10 {
                let _ = log.append(&record(number));
            }
            let _ = log.recent(RECENT_MAX);
        }
    }
}

#[test]
fn a_forged_header_with_huge_numbers_is_refused_not_overflowed() {
    let mut image = vec![0u8; (LOG_START_SECTOR as usize + 2 * 8) * SECTOR];
    let header = segment::Header {
        seq: u64::MAX - 1, // odd slot in a 2-ring? seq % 2 == 0 → slot 0
        segments: 2,
        first_record_seq: u64::MAX,
        segments_overwritten: 0,
        records_lost: 0,
    };
    let mut sector = [0u8; SECTOR];
    header.encode(&mut sector);
    let at = LOG_START_SECTOR as usize * SECTOR;
    image[at..at + SECTOR].copy_from_slice(&sector);
    let mut log = AuditLog::open(CrashDisk::from_image(image), labels()).unwrap();
    assert_eq!(log.next_seq(), 1, "the forged header counts as blank");
    assert_eq!(log.append(&record(1)).unwrap(), 1);
}

#[test]
fn export_is_for_the_manager_only_and_resumes() {
    let mut log = AuditLog::open(disk(8), labels()).unwrap();
    for number in 0..20 {
        log.append(&record(number)).unwrap();
    }
    assert_eq!(log.export(0, 0, 4096).err(), Some(AuditError::NotManager));
    let first = log.export(1, 0, 1000).unwrap();
    assert!(first
        .text
        .ends_with(&alloc::format!("end next={} lost=0\n", first.next_after)));
    assert!(first.text.len() <= 1000);
    let lines = first.text.lines().count() - 1;
    assert_eq!(first.next_after, lines as u64);
    let rest = log.export(1, first.next_after, EXPORT_MAX_BYTES).unwrap();
    assert_eq!(rest.next_after, 20);
    let all = alloc::format!("{}{}", first.text, rest.text);
    for number in 1..=20u64 {
        assert_eq!(
            all.lines()
                .filter(|line| line.starts_with(&alloc::format!("{number} ")))
                .count(),
            1,
            "record {number}"
        );
    }
    let none = log.export(1, 20, EXPORT_MAX_BYTES).unwrap();
    assert_eq!(none.text, "end next=20 lost=0\n");
}

#[test]
fn an_export_line_has_the_documented_format() {
    let mut line = String::new();
    let mut rename = Record {
        seq: 42,
        time: Timespec {
            sec: 1_764_773_599,
            nsec: 1,
        },
        who: 1,
        owner: Some(1),
        op: Op::Rename,
        ino: 17,
        bytes: 4096,
        path: RecordPath::new("/report.pdf"),
        path2: RecordPath::new("/release/re\"p\n.pdf"),
        ..Record::default()
    };
    export::render_line(&rename, &labels().names, &mut line);
    assert_eq!(
        line,
        "42 2025-12-03T14:53:19.000000001Z who=work op=rename owner=work result=0 ino=17 \
         bytes=4096 path=\"/report.pdf\" to=\"/release/re\\x22p\\x0a.pdf\""
    );
    rename.op = Op::Denied;
    rename.detail = crate::channel::policy::Access::Read.bit();
    rename.who = 0;
    rename.result = 13;
    rename.owner = None;
    rename.path2 = RecordPath::EMPTY;
    rename.path = RecordPath::new(&"z".repeat(300));
    line.clear();
    export::render_line(&rename, &labels().names, &mut line);
    assert!(
        line.contains(" who=personal op=denied owner=- result=13 "),
        "{line}"
    );
    assert!(line.contains(" detail=read path=...\"zzz"), "{line}");
    let mut time = String::new();
    export::render_time(
        Timespec {
            sec: 951_782_400,
            nsec: 0,
        },
        &mut time,
    );
    assert_eq!(time, "2000-02-29T00:00:00.000000000Z");
    time.clear();
    export::render_time(Timespec { sec: 0, nsec: 0 }, &mut time);
    assert_eq!(time, "1970-01-01T00:00:00.000000000Z");
    time.clear();
    export::render_time(
        Timespec {
            sec: u64::MAX,
            nsec: 0,
        },
        &mut time,
    );
    assert_eq!(time, alloc::format!("@{}", u64::MAX));
}

/// The privacy rule, written a second way: the cases where the manager must
/// not see a record.
fn hidden_from_manager(manager: Who, who: Who, owner: Option<Who>, op: Op) -> bool {
    let private_own_activity = owner == Some(who) && who != manager;
    let unowned_other = owner.is_none() && who != JANUS && who != manager && op != Op::Denied;
    private_own_activity || unowned_other
}

#[test]
fn the_privacy_rule_holds_for_every_combination() {
    let people: [Who; 4] = [0, 1, 2, JANUS];
    for manager in [0, 1, 2] {
        for who in people {
            for owner in [None, Some(0), Some(1), Some(2), Some(JANUS)] {
                for op in Op::ALL {
                    let record = Record {
                        who,
                        owner,
                        op,
                        ..Record::default()
                    };
                    assert_eq!(
                        exported_to_manager(manager, &record),
                        !hidden_from_manager(manager, who, owner, op),
                        "manager {manager} who {who} owner {owner:?} {op:?}"
                    );
                }
            }
        }
    }
    // The acceptance case by name: personal on personal's files never reaches work.
    for op in Op::ALL {
        let own = Record {
            who: 0,
            owner: Some(0),
            op,
            ..Record::default()
        };
        assert!(!exported_to_manager(1, &own));
    }
}

#[test]
fn the_export_never_names_personal_files() {
    let mut log = AuditLog::open(disk(8), labels()).unwrap();
    let mut own = Record::new(Op::Create, 0);
    own.owner = Some(0);
    own.path = RecordPath::new("/diary-secret.txt");
    log.append(&own).unwrap();
    own.op = Op::Write;
    log.append(&own).unwrap();
    own.op = Op::QuotaRefused;
    log.append(&own).unwrap();
    let mut crossing = Record::new(Op::Read, 1);
    crossing.owner = Some(0);
    crossing.path = RecordPath::new("/shopping.txt");
    log.append(&crossing).unwrap();
    let mut denied = Record::new(Op::Denied, 0);
    denied.owner = Some(1);
    denied.path = RecordPath::new("/plan.doc");
    log.append(&denied).unwrap();
    let export = log.export(1, 0, EXPORT_MAX_BYTES).unwrap();
    assert!(!export.text.contains("diary"), "{}", export.text);
    assert!(export.text.contains("/shopping.txt"));
    assert!(export.text.contains("/plan.doc"));
    assert_eq!(export.next_after, 5);
    // The console sees everything.
    let recent = log.recent(10).unwrap();
    assert_eq!(recent.len(), 5);
}

#[test]
fn export_after_rotation_starts_at_the_oldest_record() {
    let mut log = AuditLog::open(disk(2), labels()).unwrap();
    for number in 0..40 {
        log.append(&record(number)).unwrap();
    }
    let lost = log.records_lost();
    assert!(lost > 0);
    let export = log.export(1, 0, EXPORT_MAX_BYTES).unwrap();
    let first_line = export.text.lines().next().unwrap();
    assert!(
        first_line.starts_with(&alloc::format!("{} ", lost + 1)),
        "{first_line}"
    );
    assert!(export
        .text
        .ends_with(&alloc::format!("end next=40 lost={lost}\n")));
}

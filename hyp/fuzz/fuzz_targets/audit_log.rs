//! The audit log on an arbitrary `janus` partition: open, append, read back and
//! export never panic, and what is appended after open reads back in order.
//! The input is the log area (after the reserved first MiB), at most 8 segments.
#![no_main]

use hyp::channel::audit::{owned_names, AuditLog, Labels, Op, Record, RecordPath, RECENT_MAX};
use hyp::channel::disk::{BlockDisk, DiskError};
use libfuzzer_sys::fuzz_target;

const SECTOR: usize = 512;
const RESERVED_SECTORS: usize = 2048;
const LOG_BYTES: usize = 8 * 8 * SECTOR;

struct RamDisk(Vec<u8>);

impl BlockDisk for RamDisk {
    fn sectors(&self) -> u64 {
        (self.0.len() / SECTOR) as u64
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let at = usize::try_from(sector).map_err(|_| DiskError)? * SECTOR;
        buf.copy_from_slice(self.0.get(at..at + buf.len()).ok_or(DiskError)?);
        Ok(())
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError> {
        let at = usize::try_from(sector).map_err(|_| DiskError)? * SECTOR;
        self.0
            .get_mut(at..at + data.len())
            .ok_or(DiskError)?
            .copy_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&appends, area)) = input.split_first() else {
        return;
    };
    let area = area.get(..LOG_BYTES).unwrap_or(area);
    let segments = area.len().div_ceil(8 * SECTOR).max(2);
    let mut image = vec![0u8; (RESERVED_SECTORS + segments * 8) * SECTOR];
    image[RESERVED_SECTORS * SECTOR..][..area.len()].copy_from_slice(area);
    let labels = Labels {
        names: owned_names(&["personal", "work"]),
        manager: Some(1),
    };
    let Ok(mut log) = AuditLog::open(RamDisk(image), labels.clone()) else {
        return;
    };
    let _ = log.recent(RECENT_MAX);
    let _ = log.export(1, 0, 64 * 1024);
    let mut appended = Vec::new();
    for number in 0..u64::from(appends % 32) {
        let mut record = Record::new(Op::Write, (number % 2) as u8);
        record.owner = Some(1);
        record.ino = number;
        record.path = RecordPath::new(&"p".repeat((number as usize * 37) % 300));
        if let Ok(seq) = log.append(&record) {
            appended.push(seq);
        }
    }
    let export = log.export(1, 0, 64 * 1024).expect("work is the manager");
    assert!(export.text.len() <= 64 * 1024);
    let Ok(mut reopened) = AuditLog::open(log.into_disk(), labels) else {
        panic!("a log Janus wrote must open again");
    };
    let recent = reopened.recent(appended.len()).expect("RAM disk reads");
    let tail = &appended[appended.len().saturating_sub(recent.len())..];
    let seqs: Vec<u64> = recent.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, tail);
});

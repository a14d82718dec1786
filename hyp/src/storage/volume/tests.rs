//! The volume backend against a fake physical disk that logs every request.

use super::*;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

const DISK_SECTORS: u64 = 64;
const GUEST_BASE: u64 = 0x4000_0000;
const GUEST_BYTES: u64 = 16 * SECTOR_BYTES as u64;
const RAM: (u64, u64) = (GUEST_BASE, GUEST_BYTES);
const VOLUME: Volume = Volume {
    first_lba: 10,
    sectors: 20,
};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Read(u64, usize),
    Write(u64, usize),
    ReadGuest(u64, u64, usize),
    WriteGuest(u64, u64, usize),
    ReadGuestRuns(u64, Vec<GuestRun>),
    WriteGuestRuns(u64, Vec<GuestRun>),
    Flush,
}

/// A disk in memory, with a guest RAM in memory that the "zero-copy" calls use.
struct FakeDisk {
    data: RefCell<Vec<u8>>,
    guest: RefCell<Vec<u8>>,
    log: RefCell<Vec<Op>>,
    fail: bool,
}

impl FakeDisk {
    fn new() -> FakeDisk {
        FakeDisk {
            data: RefCell::new(vec![0; DISK_SECTORS as usize * SECTOR_BYTES]),
            guest: RefCell::new(vec![0; GUEST_BYTES as usize]),
            log: RefCell::new(Vec::new()),
            fail: false,
        }
    }

    fn bytes(sector: u64, len: usize) -> Result<core::ops::Range<usize>, PhysicalError> {
        if len == 0 || !len.is_multiple_of(SECTOR_BYTES) {
            return Err(PhysicalError::BadLength);
        }
        let start = sector as usize * SECTOR_BYTES;
        if sector + (len / SECTOR_BYTES) as u64 > DISK_SECTORS {
            return Err(PhysicalError::OutOfRange);
        }
        Ok(start..start + len)
    }

    fn guest_bytes(addr: u64, len: usize) -> core::ops::Range<usize> {
        let start = (addr - GUEST_BASE) as usize;
        start..start + len
    }

    fn status(&self) -> Result<(), PhysicalError> {
        if self.fail {
            Err(PhysicalError::Device)
        } else {
            Ok(())
        }
    }

    fn sector_bytes(&self, sector: u64) -> Vec<u8> {
        let range = FakeDisk::bytes(sector, SECTOR_BYTES).expect("on the disk");
        self.data.borrow()[range].to_vec()
    }

    fn ops(&self) -> Vec<Op> {
        self.log.borrow().clone()
    }
}

impl PhysicalDisk for FakeDisk {
    fn sectors(&self) -> u64 {
        DISK_SECTORS
    }

    fn read(&self, sector: u64, buffer: &mut [u8]) -> Result<(), PhysicalError> {
        self.log.borrow_mut().push(Op::Read(sector, buffer.len()));
        let range = FakeDisk::bytes(sector, buffer.len())?;
        self.status()?;
        buffer.copy_from_slice(&self.data.borrow()[range]);
        Ok(())
    }

    fn write(&self, sector: u64, data: &[u8]) -> Result<(), PhysicalError> {
        self.log.borrow_mut().push(Op::Write(sector, data.len()));
        let range = FakeDisk::bytes(sector, data.len())?;
        self.status()?;
        self.data.borrow_mut()[range].copy_from_slice(data);
        Ok(())
    }

    fn flush(&self) -> Result<(), PhysicalError> {
        self.log.borrow_mut().push(Op::Flush);
        self.status()
    }

    fn read_guest(&self, sector: u64, addr: u64, len: usize) -> Result<(), PhysicalError> {
        self.log.borrow_mut().push(Op::ReadGuest(sector, addr, len));
        let range = FakeDisk::bytes(sector, len)?;
        self.status()?;
        let data = self.data.borrow();
        self.guest.borrow_mut()[FakeDisk::guest_bytes(addr, len)].copy_from_slice(&data[range]);
        Ok(())
    }

    fn write_guest(&self, sector: u64, addr: u64, len: usize) -> Result<(), PhysicalError> {
        self.log
            .borrow_mut()
            .push(Op::WriteGuest(sector, addr, len));
        let range = FakeDisk::bytes(sector, len)?;
        self.status()?;
        let guest = self.guest.borrow();
        self.data.borrow_mut()[range].copy_from_slice(&guest[FakeDisk::guest_bytes(addr, len)]);
        Ok(())
    }

    fn read_guest_runs(&self, sector: u64, runs: &[GuestRun]) -> Result<(), PhysicalError> {
        self.log
            .borrow_mut()
            .push(Op::ReadGuestRuns(sector, runs.to_vec()));
        let ranges = FakeDisk::run_ranges(sector, runs)?;
        self.status()?;
        let data = self.data.borrow();
        let mut guest = self.guest.borrow_mut();
        for (disk, ram) in ranges {
            guest[ram].copy_from_slice(&data[disk]);
        }
        Ok(())
    }

    fn write_guest_runs(&self, sector: u64, runs: &[GuestRun]) -> Result<(), PhysicalError> {
        self.log
            .borrow_mut()
            .push(Op::WriteGuestRuns(sector, runs.to_vec()));
        let ranges = FakeDisk::run_ranges(sector, runs)?;
        self.status()?;
        let guest = self.guest.borrow();
        let mut data = self.data.borrow_mut();
        for (disk, ram) in ranges {
            data[disk].copy_from_slice(&guest[ram]);
        }
        Ok(())
    }
}

/// A run's byte ranges: on the disk, in guest RAM.
type RunRanges = (core::ops::Range<usize>, core::ops::Range<usize>);

impl FakeDisk {
    /// The disk and guest byte ranges of each run from `sector`.
    fn run_ranges(sector: u64, runs: &[GuestRun]) -> Result<Vec<RunRanges>, PhysicalError> {
        let mut at = sector;
        let mut ranges = Vec::new();
        for run in runs {
            ranges.push((
                FakeDisk::bytes(at, run.len)?,
                FakeDisk::guest_bytes(run.addr, run.len),
            ));
            at += (run.len / SECTOR_BYTES) as u64;
        }
        Ok(ranges)
    }
}

fn backend(disk: &FakeDisk) -> VolumeBackend<'_, FakeDisk> {
    VolumeBackend::new(disk, VOLUME, RAM).expect("volume on the disk")
}

#[test]
fn janus_buffers_land_at_the_volume_offset() {
    let disk = FakeDisk::new();
    let mut volume = backend(&disk);
    assert_eq!(volume.sectors(), 20);
    let mut data = [0xa5u8; SECTOR_BYTES];
    volume.write(3, Buffer::Janus(&mut data)).expect("write");
    assert_eq!(disk.sector_bytes(13), [0xa5; SECTOR_BYTES]);
    let mut back = [0u8; 2 * SECTOR_BYTES];
    volume.read(2, Buffer::Janus(&mut back)).expect("read");
    assert_eq!(&back[..SECTOR_BYTES], &[0; SECTOR_BYTES]);
    assert_eq!(&back[SECTOR_BYTES..], &[0xa5; SECTOR_BYTES]);
    assert_eq!(
        disk.ops(),
        [Op::Write(13, SECTOR_BYTES), Op::Read(12, 2 * SECTOR_BYTES)]
    );
}

#[test]
fn guest_buffers_take_the_zero_copy_calls() {
    let disk = FakeDisk::new();
    let mut volume = backend(&disk);
    let addr = GUEST_BASE + 4 * SECTOR_BYTES as u64;
    disk.guest.borrow_mut()[4 * SECTOR_BYTES..6 * SECTOR_BYTES].fill(0x3c);
    let len = 2 * SECTOR_BYTES;
    volume.write(0, Buffer::Guest { addr, len }).expect("write");
    assert_eq!(disk.sector_bytes(11), [0x3c; SECTOR_BYTES]);
    volume
        .read(
            0,
            Buffer::Guest {
                addr: GUEST_BASE,
                len,
            },
        )
        .expect("read");
    assert_eq!(&disk.guest.borrow()[..len], &[0x3c; 2 * SECTOR_BYTES][..]);
    assert_eq!(
        disk.ops(),
        [
            Op::WriteGuest(10, addr, len),
            Op::ReadGuest(10, GUEST_BASE, len)
        ]
    );
}

#[test]
fn requests_past_the_volume_end_never_reach_the_disk() {
    let disk = FakeDisk::new();
    let mut volume = backend(&disk);
    let mut one = [0u8; SECTOR_BYTES];
    let mut two = [0u8; 2 * SECTOR_BYTES];
    assert!(volume.read(20, Buffer::Janus(&mut one)).is_err());
    assert!(volume.write(19, Buffer::Janus(&mut two)).is_err());
    assert!(volume.write(u64::MAX, Buffer::Janus(&mut one)).is_err());
    let guest = Buffer::Guest {
        addr: GUEST_BASE,
        len: SECTOR_BYTES,
    };
    assert!(volume.write(20, guest).is_err());
    assert_eq!(
        volume.read_volume(19, Buffer::Janus(&mut two)),
        Err(VolumeError::OutOfRange {
            sector: 19,
            count: 2
        })
    );
    // The last sector is fine.
    volume
        .write(19, Buffer::Janus(&mut one))
        .expect("last sector");
    assert_eq!(disk.ops(), [Op::Write(29, SECTOR_BYTES)]);
}

#[test]
fn lengths_that_are_not_whole_sectors_are_refused() {
    let disk = FakeDisk::new();
    let mut volume = backend(&disk);
    let mut short = [0u8; 100];
    assert_eq!(
        volume.read_volume(0, Buffer::Janus(&mut short)),
        Err(VolumeError::BadLength(100))
    );
    assert_eq!(
        volume.write_volume(0, Buffer::Janus(&mut [])),
        Err(VolumeError::BadLength(0))
    );
    let guest = Buffer::Guest {
        addr: GUEST_BASE,
        len: 513,
    };
    assert!(volume.read(0, guest).is_err());
    assert!(disk.ops().is_empty());
}

#[test]
fn guest_buffers_outside_its_ram_are_refused() {
    let disk = FakeDisk::new();
    let mut volume = backend(&disk);
    let len = SECTOR_BYTES;
    for addr in [
        GUEST_BASE - SECTOR_BYTES as u64,
        GUEST_BASE + GUEST_BYTES - 256,
        GUEST_BASE + GUEST_BYTES,
        u64::MAX - 100,
        0,
    ] {
        assert_eq!(
            volume.write_volume(0, Buffer::Guest { addr, len }),
            Err(VolumeError::OutsideRam { addr, len })
        );
        assert!(volume.read(0, Buffer::Guest { addr, len }).is_err());
    }
    assert!(disk.ops().is_empty());
}

#[test]
fn flush_reaches_the_disk_after_the_writes_it_covers() {
    let disk = FakeDisk::new();
    let mut volume = backend(&disk);
    let mut data = [1u8; SECTOR_BYTES];
    volume.write(0, Buffer::Janus(&mut data)).expect("write");
    let guest = Buffer::Guest {
        addr: GUEST_BASE,
        len: SECTOR_BYTES,
    };
    volume.write(1, guest).expect("write");
    volume.flush().expect("flush");
    assert_eq!(
        disk.ops(),
        [
            Op::Write(10, SECTOR_BYTES),
            Op::WriteGuest(11, GUEST_BASE, SECTOR_BYTES),
            Op::Flush
        ]
    );
}

#[test]
fn disk_failures_are_device_errors() {
    let mut disk = FakeDisk::new();
    disk.fail = true;
    let mut volume = backend(&disk);
    let mut data = [0u8; SECTOR_BYTES];
    assert_eq!(
        volume.read_volume(0, Buffer::Janus(&mut data)),
        Err(VolumeError::Disk(PhysicalError::Device))
    );
    assert_eq!(volume.flush(), Err(IoError::Device));
    assert_eq!(
        volume.write(0, Buffer::Janus(&mut data)),
        Err(IoError::Device)
    );
}

#[test]
fn volumes_off_the_disk_get_no_backend() {
    let disk = FakeDisk::new();
    let past = Volume {
        first_lba: 50,
        sectors: 15,
    };
    assert!(VolumeBackend::new(&disk, past, RAM).is_none());
    let wraps = Volume {
        first_lba: u64::MAX,
        sectors: 2,
    };
    assert!(VolumeBackend::new(&disk, wraps, RAM).is_none());
    let whole = Volume {
        first_lba: 0,
        sectors: DISK_SECTORS,
    };
    assert!(VolumeBackend::new(&disk, whole, RAM).is_some());
}

#[test]
fn write_zeroes_and_discard_stay_inside_the_volume() {
    let disk = FakeDisk::new();
    disk.data.borrow_mut().fill(0xff);
    let mut volume = backend(&disk);
    volume.write_zeroes(0, 20).expect("whole volume");
    volume.discard(5, 3).expect("discard");
    for sector in 0..DISK_SECTORS {
        let expected = if (10..30).contains(&sector) { 0 } else { 0xff };
        assert_eq!(
            disk.sector_bytes(sector),
            [expected; SECTOR_BYTES],
            "{sector}"
        );
    }
    assert!(volume.write_zeroes(15, 10).is_err());
    assert_eq!(disk.sector_bytes(30), [0xff; SECTOR_BYTES]);
}

#[test]
fn two_personalities_share_the_disk_without_overlapping() {
    let disk = FakeDisk::new();
    let first = Volume {
        first_lba: 0,
        sectors: 32,
    };
    let second = Volume {
        first_lba: 32,
        sectors: 32,
    };
    let mut personal = VolumeBackend::new(&disk, first, RAM).expect("personal");
    let mut work = VolumeBackend::new(&disk, second, RAM).expect("work");
    personal
        .write(31, Buffer::Janus(&mut [1; SECTOR_BYTES]))
        .expect("personal");
    work.write(0, Buffer::Janus(&mut [2; SECTOR_BYTES]))
        .expect("work");
    assert!(personal
        .write(32, Buffer::Janus(&mut [3; SECTOR_BYTES]))
        .is_err());
    assert_eq!(disk.sector_bytes(31), [1; SECTOR_BYTES]);
    assert_eq!(disk.sector_bytes(32), [2; SECTOR_BYTES]);
}

#[test]
fn errors_reach_the_model_as_its_io_errors() {
    let disk = FakeDisk::new();
    let mut volume = backend(&disk);
    let mut one = [0u8; SECTOR_BYTES];
    assert_eq!(
        volume.read(20, Buffer::Janus(&mut one)),
        Err(IoError::OutOfRange)
    );
    assert_eq!(
        volume.read(0, Buffer::Janus(&mut one[..100])),
        Err(IoError::BadBuffer)
    );
    let outside = Buffer::Guest {
        addr: 0,
        len: SECTOR_BYTES,
    };
    assert_eq!(volume.write(0, outside), Err(IoError::BadBuffer));
    assert_eq!(
        IoError::from(VolumeError::Disk(PhysicalError::NotGuestRam)),
        IoError::BadBuffer
    );
    assert_eq!(
        IoError::from(VolumeError::Disk(PhysicalError::OutOfRange)),
        IoError::OutOfRange
    );
}

fn run(addr: u64, sectors: usize) -> GuestRun {
    GuestRun {
        addr,
        len: sectors * SECTOR_BYTES,
    }
}

#[test]
fn guest_runs_are_one_disk_request_at_the_volume_offset() {
    let disk = FakeDisk::new();
    let mut volume = backend(&disk);
    let sector = SECTOR_BYTES as u64;
    let runs = [run(GUEST_BASE + 8 * sector, 1), run(GUEST_BASE, 2)];
    disk.guest.borrow_mut()[8 * SECTOR_BYTES..9 * SECTOR_BYTES].fill(0x11);
    disk.guest.borrow_mut()[..2 * SECTOR_BYTES].fill(0x22);
    volume.write_runs(3, &runs).expect("write");
    assert_eq!(disk.sector_bytes(13), [0x11; SECTOR_BYTES]);
    assert_eq!(disk.sector_bytes(14), [0x22; SECTOR_BYTES]);
    assert_eq!(disk.sector_bytes(15), [0x22; SECTOR_BYTES]);
    let back = [
        run(GUEST_BASE + 12 * sector, 2),
        run(GUEST_BASE + 4 * sector, 1),
    ];
    volume.read_runs(3, &back).expect("read");
    let guest = disk.guest.borrow();
    assert_eq!(
        &guest[12 * SECTOR_BYTES..13 * SECTOR_BYTES],
        &[0x11; SECTOR_BYTES]
    );
    assert_eq!(
        &guest[13 * SECTOR_BYTES..14 * SECTOR_BYTES],
        &[0x22; SECTOR_BYTES]
    );
    assert_eq!(
        &guest[4 * SECTOR_BYTES..5 * SECTOR_BYTES],
        &[0x22; SECTOR_BYTES]
    );
    drop(guest);
    assert_eq!(
        disk.ops(),
        [
            Op::WriteGuestRuns(13, runs.to_vec()),
            Op::ReadGuestRuns(13, back.to_vec())
        ]
    );
}

#[test]
fn guest_runs_past_the_volume_end_never_reach_the_disk() {
    let disk = FakeDisk::new();
    let mut volume = backend(&disk);
    // 20 sectors in the volume: 19 + 2 pass its end, though each run alone fits.
    let runs = [run(GUEST_BASE, 1), run(GUEST_BASE + 0x1000, 1)];
    assert_eq!(volume.read_runs(19, &runs), Err(IoError::OutOfRange));
    assert_eq!(volume.write_runs(u64::MAX, &runs), Err(IoError::OutOfRange));
    assert_eq!(volume.read_runs(18, &runs), Ok(()));
    assert_eq!(disk.ops(), [Op::ReadGuestRuns(28, runs.to_vec())]);
}

#[test]
fn a_guest_run_outside_its_ram_refuses_the_whole_request() {
    let disk = FakeDisk::new();
    let mut volume = backend(&disk);
    for stray in [
        GUEST_BASE - SECTOR_BYTES as u64,
        GUEST_BASE + GUEST_BYTES - 256,
        GUEST_BASE + GUEST_BYTES,
        u64::MAX - 100,
    ] {
        let runs = [run(GUEST_BASE, 1), run(stray, 1)];
        assert_eq!(
            volume.place_runs(0, &runs),
            Err(VolumeError::OutsideRam {
                addr: stray,
                len: SECTOR_BYTES
            })
        );
        assert_eq!(volume.write_runs(0, &runs), Err(IoError::BadBuffer));
    }
    assert!(disk.ops().is_empty());
}

#[test]
fn guest_run_lists_must_be_whole_sectors_and_bounded() {
    let disk = FakeDisk::new();
    let mut volume = backend(&disk);
    let half = GuestRun {
        addr: GUEST_BASE,
        len: 256,
    };
    assert_eq!(
        volume.place_runs(0, &[run(GUEST_BASE, 1), half]),
        Err(VolumeError::BadLength(256))
    );
    assert_eq!(
        volume.place_runs(0, &[run(GUEST_BASE, 0)]),
        Err(VolumeError::BadLength(0))
    );
    assert_eq!(volume.place_runs(0, &[]), Err(VolumeError::RunCount(0)));
    let many = vec![run(GUEST_BASE, 1); MAX_RUNS + 1];
    assert_eq!(
        volume.place_runs(0, &many),
        Err(VolumeError::RunCount(MAX_RUNS + 1))
    );
    assert_eq!(volume.read_runs(0, &many), Err(IoError::BadBuffer));
    assert!(disk.ops().is_empty());
}

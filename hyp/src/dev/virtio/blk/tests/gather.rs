//! Gathering a request's guest runs into one backend call.

use super::*;

/// A harness whose RAM disk takes `read_runs` / `write_runs` as one call each.
fn gathering_harness(sectors: u64, queue_size: u16) -> Harness {
    let h = Harness::ready(sectors, queue_size, ALL);
    h.disk.lock().gathers = true;
    h
}

#[test]
fn scattered_pieces_of_one_request_take_one_backend_call() {
    let mut h = gathering_harness(SECTORS, 16);
    let data = pattern(2048, 11);
    h.ram.put(DATA, &data[..512]);
    h.ram.put(DATA + 0x2000, &data[512..1536]);
    h.ram.put(DATA + 0x4000, &data[1536..]);
    let buffers = [
        hdr(),
        (DATA, 512, false),
        (DATA + 0x2000, 1024, false),
        (DATA + 0x4000, 512, false),
        st(),
    ];
    assert_eq!(run(&mut h, T_OUT, 5, &buffers), (STATUS_OK, 1));
    assert_eq!(
        h.disk.lock().log,
        [DiskOp::WriteRuns {
            sector: 5,
            lens: vec![512, 1024, 512]
        }]
    );
    assert_eq!(&h.disk.lock().data[5 * 512..9 * 512], &data[..]);
    h.disk.lock().log.clear();
    let buffers = [
        hdr(),
        (DATA + 0x6000, 1024, true),
        (DATA + 0x8000, 512, true),
        (DATA + 0x6400, 512, true),
        st(),
    ];
    assert_eq!(run(&mut h, T_IN, 5, &buffers), (STATUS_OK, 2049));
    assert_eq!(
        h.disk.lock().log,
        [DiskOp::ReadRuns {
            sector: 5,
            lens: vec![1024, 512, 512]
        }]
    );
    let mut back = h.ram.get(DATA + 0x6000, 1024);
    back.extend(h.ram.get(DATA + 0x8000, 512));
    back.extend(h.ram.get(DATA + 0x6400, 512));
    assert_eq!(back, data);
    assert_eq!(h.disk.lock().violations, 0);
}

#[test]
fn adjacent_pieces_merge_inside_the_gathered_runs() {
    let mut h = gathering_harness(SECTORS, 16);
    let buffers = [
        hdr(),
        (DATA, 512, true),
        (DATA + 512, 512, true),
        (DATA + 0x3000, 512, true),
        st(),
    ];
    assert_eq!(run(&mut h, T_IN, 0, &buffers), (STATUS_OK, 1537));
    assert_eq!(
        h.disk.lock().log,
        [DiskOp::ReadRuns {
            sector: 0,
            lens: vec![1024, 512]
        }]
    );
}

#[test]
fn a_bounced_sector_in_the_middle_splits_the_runs_around_it() {
    let mut h = gathering_harness(SECTORS, 16);
    let data = pattern(2048, 12);
    // Sector 20 whole; sector 21 split 256 + 256; sector 22 the rest of that piece;
    // sector 23 elsewhere.
    h.ram.put(DATA, &data[..512]);
    h.ram.put(DATA + 0x2000, &data[512..768]);
    h.ram.put(DATA + 0x3000, &data[768..1536]);
    h.ram.put(DATA + 0x5000, &data[1536..]);
    let buffers = [
        hdr(),
        (DATA, 512, false),
        (DATA + 0x2000, 256, false),
        (DATA + 0x3000, 768, false),
        (DATA + 0x5000, 512, false),
        st(),
    ];
    assert_eq!(run(&mut h, T_OUT, 20, &buffers), (STATUS_OK, 1));
    assert_eq!(
        h.disk.lock().log,
        [
            DiskOp::WriteRuns {
                sector: 20,
                lens: vec![512]
            },
            DiskOp::Write {
                sector: 21,
                len: 512,
                guest: false
            },
            DiskOp::WriteRuns {
                sector: 22,
                lens: vec![512, 512]
            },
        ]
    );
    assert_eq!(&h.disk.lock().data[20 * 512..24 * 512], &data[..]);
    // And back the same way.
    h.disk.lock().log.clear();
    for (addr, len) in [(DATA, 512), (DATA + 0x2000, 256), (DATA + 0x3000, 768)] {
        h.ram.put(addr, &vec![0; len]);
    }
    h.ram.put(DATA + 0x5000, &[0; 512]);
    let buffers: Vec<_> = buffers
        .iter()
        .map(|&(addr, len, _)| (addr, len, addr != HEADER))
        .collect();
    assert_eq!(run(&mut h, T_IN, 20, &buffers), (STATUS_OK, 2049));
    let mut back = h.ram.get(DATA, 512);
    back.extend(h.ram.get(DATA + 0x2000, 256));
    back.extend(h.ram.get(DATA + 0x3000, 768));
    back.extend(h.ram.get(DATA + 0x5000, 512));
    assert_eq!(back, data);
    assert_eq!(h.disk.lock().log.len(), 3);
    assert_eq!(h.disk.lock().violations, 0);
}

#[test]
fn a_full_chain_of_scattered_sectors_is_one_call() {
    let mut h = gathering_harness(512, QUEUE_MAX_SIZE);
    let runs = SEG_MAX as u64;
    let mut buffers = vec![hdr()];
    for i in 0..runs {
        h.ram.put(DATA + 1024 * i, &pattern(512, i as u8));
        buffers.push((DATA + 1024 * i, 512, false));
    }
    buffers.push(st());
    assert_eq!(buffers.len(), usize::from(QUEUE_MAX_SIZE));
    assert_eq!(run(&mut h, T_OUT, 7, &buffers), (STATUS_OK, 1));
    assert_eq!(
        h.disk.lock().log,
        [DiskOp::WriteRuns {
            sector: 7,
            lens: vec![512; MAX_RUNS]
        }]
    );
    for i in 0..runs as usize {
        let sector = 7 + i;
        assert_eq!(
            &h.disk.lock().data[sector * 512..(sector + 1) * 512],
            &pattern(512, i as u8)[..]
        );
    }
}

#[test]
fn more_runs_than_max_runs_take_a_second_call() {
    // The status byte shares the last sector's descriptor, so a chain of the queue's size
    // holds the header and SEG_MAX + 1 runs.
    let mut h = gathering_harness(512, QUEUE_MAX_SIZE);
    let runs = SEG_MAX as u64 + 1;
    h.ram.put(HEADER, &header(T_IN, 3));
    let mut buffers = vec![hdr()];
    for i in 0..runs {
        buffers.push((DATA + 1024 * i, 512, true));
    }
    let status_at = DATA + 1024 * (runs - 1) + 512;
    if let Some(last) = buffers.last_mut() {
        last.1 += 1;
    }
    assert_eq!(buffers.len(), usize::from(QUEUE_MAX_SIZE));
    h.ram.put(status_at, &[0xff]);
    let before = h.queue.used_idx();
    h.queue.add_chain(0, &buffers);
    h.kick();
    assert_eq!(h.queue.used_idx(), before.wrapping_add(1));
    assert_eq!(h.ram.get(status_at, 1)[0], STATUS_OK);
    assert_eq!(
        h.disk.lock().log,
        [
            DiskOp::ReadRuns {
                sector: 3,
                lens: vec![512; MAX_RUNS]
            },
            DiskOp::ReadRuns {
                sector: 3 + MAX_RUNS as u64,
                lens: vec![512]
            },
        ]
    );
}

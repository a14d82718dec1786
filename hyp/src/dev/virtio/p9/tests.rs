//! The device driven as Linux' 9p transport drives it: chains offered on a driver-side
//! queue in fake guest RAM, answered by the server over an in-memory file system.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use std::sync::Mutex;

use super::*;
use crate::channel::p9::memfs::MemFs;
use crate::channel::p9::wire::{
    decode_reply, encode_request, Qid, Reply, Request, WalkNames, MAX_WALK_NAMES, NOFID, NOTAG,
    READ_HEADER_BYTES, VERSION_9P2000_L, WRITE_HEADER_BYTES,
};
use crate::dev::virtio::fake::{DriverQueue, SharedRam};

const BASE: u64 = 0x4000_0000;
/// Where request buffers go (past the rings).
const OUT: u64 = BASE + 0x8000;
/// Where reply buffers go.
const IN: u64 = BASE + 0x4_0000;
const MSIZE: u32 = 65_536;

/// The shared folder behind a lock, as the channel keeps it.
struct SharedFs(Arc<Mutex<MemFs>>);

impl FsAccess for SharedFs {
    fn with_fs(&mut self, f: &mut dyn FnMut(&mut dyn Fs)) {
        f(&mut *self.0.lock().unwrap());
    }
}

struct Setup {
    ram: SharedRam,
    driver: DriverQueue,
    queue: Queue,
    device: P9Device,
    fs: Arc<Mutex<MemFs>>,
    /// The next free descriptor.
    next_desc: u16,
}

fn setup() -> Setup {
    let ram = SharedRam::new(BASE, 0x10_0000);
    let driver = DriverQueue::new(ram.clone(), BASE, 64);
    let mut queue = Queue::new(QUEUE_MAX_SIZE);
    queue.set_size(64);
    queue.set_descriptor_table(driver.desc);
    queue.set_avail_ring(driver.avail);
    queue.set_used_ring(driver.used);
    queue.set_ready(true);
    let fs = Arc::new(Mutex::new(MemFs::new()));
    let device = P9Device::new(0, "shared", Box::new(SharedFs(fs.clone())));
    Setup {
        ram,
        driver,
        queue,
        device,
        fs,
        next_desc: 0,
    }
}

fn encode(tag: u16, request: &Request<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 512];
    let len = encode_request(tag, request, &mut out).unwrap();
    out.truncate(len);
    out
}

impl Setup {
    /// Offers a chain of `(addr, len, writable)` buffers.
    fn offer(&mut self, buffers: &[(u64, u32, bool)]) {
        let first = self.next_desc;
        self.driver.add_chain(first, buffers);
        self.next_desc += buffers.len() as u16;
    }

    /// Processes everything offered.
    fn process(&mut self) {
        let mut memory = self.ram.clone();
        assert_eq!(
            self.device
                .process_queue(0, &mut self.queue, &mut memory, 64),
            Ok(false)
        );
    }

    /// Sends `request` in one buffer with `room` bytes of reply in one; returns the
    /// reply bytes.
    fn send(&mut self, request: &[u8], room: u32) -> Vec<u8> {
        let used = self.driver.used_idx();
        self.ram.put(OUT, request);
        self.offer(&[(OUT, request.len() as u32, false), (IN, room, true)]);
        self.process();
        assert_eq!(self.driver.used_idx(), used.wrapping_add(1));
        let (_, len) = self.driver.used_elem(used);
        self.ram.get(IN, len as usize)
    }

    /// Version, attach fid 0.
    fn mount(&mut self) {
        let version = Request::Version {
            msize: MSIZE,
            version: VERSION_9P2000_L,
        };
        let reply = self.send(&encode(NOTAG, &version), 4096);
        let mut qids = [Qid::default(); MAX_WALK_NAMES];
        assert_eq!(
            decode_reply(&reply, &mut qids).unwrap().1,
            Reply::Version {
                msize: MSIZE,
                version: VERSION_9P2000_L
            }
        );
        let attach = Request::Attach {
            fid: 0,
            afid: NOFID,
            uname: "root",
            aname: "",
            n_uname: 0,
        };
        let reply = self.send(&encode(1, &attach), 4096);
        let (header, reply) = decode_reply(&reply, &mut qids).unwrap();
        assert_eq!(header.tag, 1);
        assert!(matches!(reply, Reply::Attach { .. }), "{reply:?}");
    }
}

#[test]
fn the_config_space_holds_the_tag_and_the_device_offers_the_tag_feature() {
    let setup = setup();
    let device = &setup.device;
    assert_eq!(device.device_id(), DEVICE_ID);
    assert_ne!(device.device_features() & VIRTIO_9P_MOUNT_TAG, 0);
    let mut config = [0xff; 10];
    device.read_config(0, &mut config);
    assert_eq!(&config, b"\x06\x00shared\x00\x00");
    let mut tail = [0xff; 3];
    device.read_config(6, &mut tail);
    assert_eq!(&tail, b"ed\x00");
    let mut far = [0xff; 4];
    device.read_config(usize::MAX - 1, &mut far);
    assert_eq!(far, [0; 4]);
    let long = P9Device::new(
        0,
        &"x".repeat(100),
        Box::new(SharedFs(Arc::new(Mutex::new(MemFs::new())))),
    );
    let mut len = [0; 2];
    long.read_config(0, &mut len);
    assert_eq!(usize::from(u16::from_le_bytes(len)), MAX_TAG_BYTES);
}

#[test]
fn version_attach_and_getattr_round_trip_through_the_queue() {
    let mut setup = setup();
    setup.mount();
    let getattr = Request::Getattr {
        fid: 0,
        request_mask: 0x7ff,
    };
    let reply = setup.send(&encode(2, &getattr), 4096);
    let mut qids = [Qid::default(); MAX_WALK_NAMES];
    let (header, reply) = decode_reply(&reply, &mut qids).unwrap();
    assert_eq!(header.tag, 2);
    let Reply::Getattr(attr) = reply else {
        panic!("not Rgetattr: {reply:?}");
    };
    assert_eq!(attr.mode & 0o170000, 0o040000, "the root is a directory");
    assert_eq!(setup.driver.used_idx(), 3);
    assert_eq!(setup.device.stats(), DeviceStats::default());
    assert_eq!(setup.ram.stray_accesses(), 0);
}

#[test]
fn a_split_twrite_and_a_split_rread_carry_the_data_intact() {
    let mut setup = setup();
    setup.mount();
    let mut qids = [Qid::default(); MAX_WALK_NAMES];
    // Clone fid 0 to fid 1 and create "f" through it, read-write.
    let walk = Request::Walk {
        fid: 0,
        newfid: 1,
        names: WalkNames::new(&[]).unwrap(),
    };
    let reply = setup.send(&encode(3, &walk), 4096);
    assert!(matches!(
        decode_reply(&reply, &mut qids).unwrap().1,
        Reply::Walk { .. }
    ));
    let create = Request::Lcreate {
        fid: 1,
        name: "f",
        flags: 0o2,
        mode: 0o100644,
        gid: 0,
    };
    let reply = setup.send(&encode(4, &create), 4096);
    assert!(matches!(
        decode_reply(&reply, &mut qids).unwrap().1,
        Reply::Lcreate { .. }
    ));

    // 5,000 bytes of data: the header in two pieces (5, then 18 with the first 3 data
    // bytes), the rest over two odd-sized, oddly placed buffers.
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut message = encode(
        5,
        &Request::Write {
            fid: 1,
            offset: 0,
            count: data.len() as u32,
        },
    );
    assert_eq!(message.len(), WRITE_HEADER_BYTES);
    message.extend_from_slice(&data);
    let pieces = [(OUT + 1, 5usize), (OUT + 0x103, 21), (OUT + 0x2005, 1237)];
    let mut buffers = Vec::new();
    let mut start = 0;
    for &(addr, len) in &pieces {
        setup.ram.put(addr, &message[start..start + len]);
        buffers.push((addr, len as u32, false));
        start += len;
    }
    let rest = message.len() - start;
    setup.ram.put(OUT + 0x5003, &message[start..]);
    buffers.push((OUT + 0x5003, rest as u32, false));
    buffers.push((IN + 0x11, 64, true));
    let used = setup.driver.used_idx();
    setup.offer(&buffers);
    setup.process();
    let (_, len) = setup.driver.used_elem(used);
    let reply = setup.ram.get(IN + 0x11, len as usize);
    let (header, reply) = decode_reply(&reply, &mut qids).unwrap();
    assert_eq!(header.tag, 5);
    assert_eq!(reply, Reply::Write { count: 5000 });

    // Read it back as Linux' zero-copy read asks: an 11-byte header buffer, then pages,
    // the first page entered at an odd offset.
    let read = encode(
        6,
        &Request::Read {
            fid: 1,
            offset: 0,
            count: 5000,
        },
    );
    setup.ram.put(OUT, &read);
    let header_at = IN + 0x1_0001;
    let pages = [
        (IN + 0x2_0123, 4096 - 0x123),
        (IN + 0x3_0000, 4096),
        (IN + 0x4_0000, 4096),
    ];
    let mut buffers = vec![
        (OUT, read.len() as u32, false),
        (header_at, READ_HEADER_BYTES as u32, true),
    ];
    buffers.extend(pages.iter().map(|&(addr, len)| (addr, len, true)));
    let used = setup.driver.used_idx();
    setup.offer(&buffers);
    setup.process();
    let (_, len) = setup.driver.used_elem(used);
    assert_eq!(len as usize, READ_HEADER_BYTES + data.len());
    let header_bytes = setup.ram.get(header_at, READ_HEADER_BYTES);
    let (header, reply) = decode_reply(&header_bytes, &mut qids).unwrap();
    assert_eq!(header.tag, 6);
    assert_eq!(reply, Reply::Read { count: 5000 });
    let mut back = Vec::new();
    for &(addr, len) in &pages {
        back.extend(setup.ram.get(addr, len as usize));
    }
    back.truncate(data.len());
    assert_eq!(back, data);
    assert_eq!(setup.ram.stray_accesses(), 0);
    assert_eq!(setup.fs.lock().unwrap().node_count(), 2);
}

#[test]
fn a_chain_without_writable_bytes_is_completed_empty_and_the_queue_goes_on() {
    let mut setup = setup();
    let version = encode(
        NOTAG,
        &Request::Version {
            msize: MSIZE,
            version: VERSION_9P2000_L,
        },
    );
    setup.ram.put(OUT, &version);
    setup.offer(&[(OUT, version.len() as u32, false)]);
    setup.offer(&[(OUT, version.len() as u32, false), (IN, 64, true)]);
    setup.process();
    assert_eq!(setup.driver.used_idx(), 2);
    assert_eq!(setup.driver.used_elem(0), (0, 0));
    let (head, len) = setup.driver.used_elem(1);
    assert_eq!(head, 1);
    assert!(len > 0);
    let mut qids = [Qid::default(); MAX_WALK_NAMES];
    let reply = setup.ram.get(IN, len as usize);
    assert!(matches!(
        decode_reply(&reply, &mut qids).unwrap().1,
        Reply::Version { .. }
    ));
    assert_eq!(setup.device.stats().unanswered, 1);
    assert_eq!(setup.device.stats().bad_chains, 0);
}

#[test]
fn a_chain_with_a_buffer_outside_ram_is_completed_empty_without_reaching_the_server() {
    let mut setup = setup();
    setup.offer(&[(0x10, 16, false), (IN, 64, true)]);
    setup.process();
    assert_eq!(setup.driver.used_idx(), 1);
    setup.mount();
    assert_eq!(setup.driver.used_elem(0), (0, 0));
    assert_eq!(setup.device.stats().bad_chains, 1);
    assert_eq!(setup.device.stats().unanswered, 1);
    // The server never saw it: the two requests of the mount are all it counted.
    assert_eq!(setup.device.server_stats().requests, 2);
    assert_eq!(setup.ram.stray_accesses(), 0);
}

#[test]
fn the_budget_bounds_one_call_and_says_more_remain() {
    let mut setup = setup();
    let version = encode(
        NOTAG,
        &Request::Version {
            msize: MSIZE,
            version: VERSION_9P2000_L,
        },
    );
    setup.ram.put(OUT, &version);
    for _ in 0..4 {
        setup.offer(&[(OUT, version.len() as u32, false), (IN, 64, true)]);
    }
    let mut memory = setup.ram.clone();
    assert_eq!(
        setup
            .device
            .process_queue(0, &mut setup.queue, &mut memory, 3),
        Ok(true)
    );
    assert_eq!(setup.driver.used_idx(), 3);
    assert_eq!(
        setup
            .device
            .process_queue(0, &mut setup.queue, &mut memory, 3),
        Ok(false)
    );
    assert_eq!(setup.driver.used_idx(), 4);
    // Only queue 0 exists.
    assert_eq!(
        setup
            .device
            .process_queue(1, &mut setup.queue, &mut memory, 3),
        Ok(false)
    );
    assert_eq!(setup.device.server_stats().requests, 4);
}

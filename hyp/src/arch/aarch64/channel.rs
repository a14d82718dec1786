//! The shared folder on the board: the channel over the disk's `shared` and
//! `janus` partitions, behind one ticket lock (the two personalities' 9P
//! requests are served whole, in arrival order), and each Linux personality's
//! 9P device's handle on it.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use spin::mutex::TicketMutex;
use spin::Once;

use crate::arch::aarch64::{rtc, storage};
use crate::channel::audit::{owned_names, AuditLog, Labels, Op, Record};
use crate::channel::folder::Channel;
use crate::channel::fs::{Fs, Who};
use crate::channel::policy::Policy;
use crate::channel::store::{Limits, Store, StoreError};
use crate::dev::virtio::mmio::MmioTransport;
use crate::dev::virtio::p9::{FsAccess, P9Device};
use crate::janus_println;
use crate::storage::partition::PartitionDisk;
use crate::storage::Volume;
use crate::trap::virtio::SharedDevice;
use crate::vm::config::channel::{validate_channel, ChannelConfig};
use crate::vm::devicetree::layout::{SHARED_BASE, SHARED_SPI};

/// A partition of the board's disk.
type Part = PartitionDisk<'static, storage::BoardDisk>;

/// The mount tag Linux mounts the folder by.
pub const MOUNT_TAG: &str = "shared";

/// Made once by the boot CPU (`init`); `None` when the disk has no `shared`
/// or `janus` partition, or the store could not be mounted.
static CHANNEL: Once<Option<TicketMutex<Channel<Part, Part>>>> = Once::new();

/// The partition named `name` as a block disk.
fn partition(name: &str) -> Option<Part> {
    let storage = storage::storage()?;
    let volume = Volume::named(&storage.table, name)?;
    PartitionDisk::new(&storage.disk, volume)
}

/// What the store may hold in Janus' heap (see `heap::HEAP_BYTES`).
const LIMITS: Limits = Limits {
    max_nodes: 2048,
    max_extents: 8192,
    max_file_bytes: 1 << 40,
};

/// Mounts the store (formatting a blank partition), opens the audit log and
/// says what it found, for the personalities called `names`, under the bundle's
/// `[channel]` table `config` (checked again here: a bundle is only bytes). Call
/// once, on the boot CPU, after `storage::init` and `rtc::init`.
pub fn init(names: &[&str], config: &ChannelConfig<'_>) {
    CHANNEL.call_once(|| {
        if let Err(why) = validate_channel(config, names.len()) {
            janus_println!("shared folder: the bundle's [channel] table: {why}; none offered");
            return None;
        }
        storage::storage()?;
        let (Some(shared), Some(janus)) = (partition("shared"), partition("janus")) else {
            janus_println!(
                "shared folder: the disk has no \"shared\" and \"janus\" partitions; none offered"
            );
            return None;
        };
        let policy = Policy::new(config, names);
        let labels = Labels {
            names: owned_names(names),
            manager: policy.manager(),
        };
        let mut log = match AuditLog::open(janus, labels) {
            Ok(log) => log,
            Err(why) => {
                janus_println!("shared folder: audit log on \"janus\": {why}; none offered");
                return None;
            }
        };
        let now = rtc::now();
        let (store, fresh) = match Store::mount(shared, LIMITS) {
            Ok(store) => (store, false),
            Err(StoreError::Blank) => {
                match partition("shared").map(|disk| Store::format(disk, LIMITS, now)) {
                    Some(Ok(store)) => (store, true),
                    _ => {
                        janus_println!(
                            "shared folder: cannot format partition \"shared\"; none offered"
                        );
                        return None;
                    }
                }
            }
            Err(why) => {
                janus_println!(
                    "shared folder: partition \"shared\" does not mount ({why:?}); none offered (`janus-store check` reads it)"
                );
                return None;
            }
        };
        let stat = store.statfs();
        let mut mount = Record::new(Op::Mount, crate::channel::audit::JANUS);
        mount.time = now;
        mount.bytes = stat.blocks * u64::from(stat.block_size);
        let _ = log.append(&mount);
        let _ = log.flush();
        let lost = log.records_lost();
        let next = log.next_seq();
        let channel = match Channel::new(store, log, policy, rtc::now) {
            Ok(channel) => channel,
            Err(why) => {
                janus_println!("shared folder: the release folder: {why:?}; none offered");
                return None;
            }
        };
        janus_println!(
            "shared folder: store on partition \"shared\" ({} MiB, {} objects{}), audit log on \"janus\" ({next} records, {lost} lost to rotation)",
            (stat.blocks * u64::from(stat.block_size)) >> 20,
            stat.files.saturating_sub(stat.files_free),
            if fresh { ", new" } else { "" },
        );
        Some(TicketMutex::new(channel))
    });
}

/// Personality `who`'s handle on the channel.
#[derive(Debug)]
struct Handle;

impl FsAccess for Handle {
    fn with_fs(&mut self, f: &mut dyn FnMut(&mut dyn Fs)) {
        if let Some(Some(channel)) = CHANNEL.get() {
            f(&mut *channel.lock());
        }
    }
}

/// The 9P device of personality `who` (named `name`), when there is a channel.
pub fn device(who: Who, name: &str) -> Option<SharedDevice> {
    CHANNEL.get()?.as_ref()?;
    janus_println!("{name}: shared folder at /shared: virtio-9p at {SHARED_BASE:#x} (SPI {SHARED_SPI}), tag \"{MOUNT_TAG}\"");
    let model = P9Device::new(who, MOUNT_TAG, Box::new(Handle));
    Some(MmioTransport::new(Box::new(model)))
}

/// The newest `n` audit records as console lines (the hotkey's command).
pub fn recent_audit(n: usize) -> Vec<String> {
    match CHANNEL.get() {
        Some(Some(channel)) => channel.lock().recent_lines(n),
        _ => alloc::vec![String::from("no shared folder, so no audit log")],
    }
}

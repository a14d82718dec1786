//! The channel's decisions over a store and a log in RAM, under the default
//! policy: personal (0) and work (1), work the manager.

use super::*;
use crate::channel::audit::Labels;
use crate::channel::store::disk::testing::MemDisk;
use crate::channel::store::Limits;

const PERSONAL: Who = 0;
const WORK: Who = 1;
const RW: OpenMode = OpenMode {
    read: true,
    write: true,
    truncate: false,
};
const R: OpenMode = OpenMode {
    read: true,
    write: false,
    truncate: false,
};

fn clock() -> Timespec {
    Timespec {
        sec: 1_800_000_000,
        nsec: 0,
    }
}

fn channel() -> Channel<MemDisk, MemDisk> {
    let names = ["personal", "work"];
    let store = Store::format(MemDisk::new(16 * 2048), Limits::default(), clock()).expect("format");
    let labels = Labels {
        names: names.iter().map(|name| String::from(*name)).collect(),
        manager: Some(WORK),
    };
    let log = AuditLog::open(MemDisk::new(4 * 2048), labels).expect("log");
    Channel::new(store, log, Policy::default_for(&names), clock).expect("channel")
}

/// Creates `name` in the root as `who` with `data`, and closes it.
fn put(channel: &mut Channel<MemDisk, MemDisk>, who: Who, name: &str, data: &[u8]) -> Ino {
    let attr = channel.create(who, ROOT, name, 0o644, RW).expect("create");
    assert_eq!(channel.write(who, attr.ino, 0, data), Ok(data.len()));
    channel.close(who, attr.ino, RW).expect("close");
    attr.ino
}

fn names(channel: &mut Channel<MemDisk, MemDisk>, who: Who, dir: Ino) -> Vec<String> {
    let mut out = Vec::new();
    channel
        .readdir(who, dir, 0, &mut |entry| {
            out.push(String::from(entry.name));
            true
        })
        .expect("readdir");
    out
}

fn log_lines(channel: &mut Channel<MemDisk, MemDisk>) -> Vec<String> {
    channel.recent_lines(32)
}

#[test]
fn personal_files_are_readable_in_work_but_not_writable_or_removable() {
    let mut channel = channel();
    let ino = put(&mut channel, PERSONAL, "photo", b"sunset");
    assert_eq!(channel.lookup(WORK, ROOT, "photo").map(|a| a.ino), Ok(ino));
    channel.open(WORK, ino, R).expect("open to read");
    let mut buf = [0; 16];
    assert_eq!(channel.read(WORK, ino, 0, &mut buf), Ok(6));
    channel.close(WORK, ino, R).expect("close");
    assert_eq!(channel.open(WORK, ino, RW), Err(Errno::EACCES));
    assert_eq!(channel.write(WORK, ino, 0, b"x"), Err(Errno::EACCES));
    assert_eq!(
        channel.unlink(WORK, ROOT, "photo", false),
        Err(Errno::EACCES)
    );
    assert_eq!(
        channel.rename(WORK, ROOT, "photo", ROOT, "mine"),
        Err(Errno::EACCES)
    );
    let lines = log_lines(&mut channel);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("who=work op=read") && l.contains("/photo")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("who=work op=denied") && l.contains("/photo")),
        "{lines:#?}"
    );
}

#[test]
fn work_files_are_hidden_from_personal_until_released() {
    let mut channel = channel();
    let ino = put(&mut channel, WORK, "plan", b"secret");
    assert_eq!(channel.lookup(PERSONAL, ROOT, "plan"), Err(Errno::ENOENT));
    assert_eq!(channel.getattr(PERSONAL, ino), Err(Errno::ENOENT));
    assert_eq!(channel.open(PERSONAL, ino, R), Err(Errno::ENOENT));
    assert!(!names(&mut channel, PERSONAL, ROOT).contains(&String::from("plan")));
    assert!(names(&mut channel, WORK, ROOT).contains(&String::from("plan")));
    // The export is in work's root only.
    assert!(names(&mut channel, WORK, ROOT).contains(&String::from(AUDIT_FILE)));
    assert!(!names(&mut channel, PERSONAL, ROOT).contains(&String::from(AUDIT_FILE)));
    assert_eq!(
        channel.lookup(PERSONAL, ROOT, AUDIT_FILE),
        Err(Errno::ENOENT)
    );

    let release = channel
        .lookup(WORK, ROOT, "release")
        .expect("release folder")
        .ino;
    channel
        .rename(WORK, ROOT, "plan", release, "plan")
        .expect("release");
    assert_eq!(
        channel.lookup(PERSONAL, release, "plan").map(|a| a.ino),
        Ok(ino)
    );
    channel
        .open(PERSONAL, ino, R)
        .expect("open the released file");
    assert_eq!(channel.write(PERSONAL, ino, 0, b"x"), Err(Errno::EACCES));
    channel.close(PERSONAL, ino, R).expect("close");
    // Moving it out withdraws the release, for open files too.
    channel.open(PERSONAL, ino, R).expect("open again");
    channel
        .rename(WORK, release, "plan", ROOT, "plan")
        .expect("withdraw");
    let mut buf = [0; 8];
    assert_eq!(channel.read(PERSONAL, ino, 0, &mut buf), Err(Errno::ENOENT));
    // Nobody removes Janus' folders.
    assert_eq!(
        channel.unlink(WORK, ROOT, "release", true),
        Err(Errno::EBUSY)
    );
    let lines = log_lines(&mut channel);
    for op in ["op=release", "op=withdraw", "who=personal op=denied"] {
        assert!(lines.iter().any(|l| l.contains(op)), "{op}: {lines:#?}");
    }
}

#[test]
fn the_manager_export_names_none_of_personal_own_files() {
    let mut channel = channel();
    put(&mut channel, PERSONAL, "diary-of-personal", b"dear diary");
    put(&mut channel, WORK, "report", b"numbers");
    let _ = channel.lookup(PERSONAL, ROOT, "report");
    let attr = channel.lookup(WORK, ROOT, AUDIT_FILE).expect("the export");
    channel.open(WORK, attr.ino, R).expect("open");
    let mut text = vec![0; 64 * 1024];
    let n = channel.read(WORK, attr.ino, 0, &mut text).expect("read");
    channel.close(WORK, attr.ino, R).expect("close");
    let text = core::str::from_utf8(&text[..n]).expect("text");
    assert!(text.contains("/report"), "{text}");
    assert!(text.contains("who=personal op=denied"), "{text}");
    assert!(!text.contains("diary"), "{text}");
    // The console sees everything.
    assert!(log_lines(&mut channel)
        .iter()
        .any(|l| l.contains("diary-of-personal")));
    // Nobody writes it.
    assert_eq!(channel.open(WORK, attr.ino, RW), Err(Errno::EACCES));
    assert_eq!(channel.open(PERSONAL, attr.ino, R), Err(Errno::ENOENT));
}

#[test]
fn operations_are_durable_when_answered() {
    let mut channel = channel();
    put(&mut channel, PERSONAL, "kept", b"kept bytes");
    channel.mkdir(WORK, ROOT, "dir", 0o755).expect("mkdir");
    // Everything answered is committed: nothing waits in the store.
    assert!(!channel.store().is_dirty());
    let attr = channel
        .create(PERSONAL, ROOT, "open", 0o644, RW)
        .expect("create");
    channel
        .write(PERSONAL, attr.ino, 0, b"pending")
        .expect("write");
    assert!(channel.store().is_dirty());
    channel.fsync(PERSONAL, attr.ino).expect("fsync");
    assert!(!channel.store().is_dirty());
}

#[test]
fn quotas_refuse_with_edquot_and_are_audited() {
    use crate::vm::config::channel::{ChannelConfig, QuotaRule};
    let names = ["personal", "work"];
    let config = ChannelConfig {
        quotas: alloc::vec![QuotaRule {
            who: PERSONAL,
            max_mib: Some(1),
            max_files: Some(3),
        }],
        ..ChannelConfig::default()
    };
    let store = Store::format(MemDisk::new(16 * 2048), Limits::default(), clock()).expect("format");
    let labels = Labels {
        names: names.iter().map(|name| String::from(*name)).collect(),
        manager: Some(WORK),
    };
    let log = AuditLog::open(MemDisk::new(4 * 2048), labels).expect("log");
    let mut channel =
        Channel::new(store, log, Policy::new(&config, &names), clock).expect("channel");
    // Bytes: a 1 MiB quota takes 1 MiB and refuses the next byte.
    let attr = channel
        .create(PERSONAL, ROOT, "big", 0o644, RW)
        .expect("create");
    let chunk = alloc::vec![7u8; 256 * 1024];
    for i in 0..4u64 {
        assert_eq!(
            channel.write(PERSONAL, attr.ino, i * 256 * 1024, &chunk),
            Ok(chunk.len())
        );
    }
    assert_eq!(
        channel.write(PERSONAL, attr.ino, 1 << 20, b"x"),
        Err(Errno::EDQUOT)
    );
    channel.close(PERSONAL, attr.ino, RW).expect("close");
    // Files: two more fit, the fourth does not; work is not limited.
    // (empty ones: the bytes are used up)
    for name in ["a", "b"] {
        let attr = channel.create(PERSONAL, ROOT, name, 0o644, RW).expect(name);
        channel.close(PERSONAL, attr.ino, RW).expect("close");
    }
    assert_eq!(
        channel
            .create(PERSONAL, ROOT, "c", 0o644, RW)
            .map(|a| a.ino),
        Err(Errno::EDQUOT)
    );
    put(&mut channel, WORK, "w", &chunk);
    // statfs shows the quota.
    let stat = channel.statfs(PERSONAL).expect("statfs");
    assert_eq!(stat.blocks * u64::from(stat.block_size), 1 << 20);
    assert_eq!(stat.files_free, 0);
    let lines = log_lines(&mut channel);
    assert!(
        lines.iter().filter(|l| l.contains("op=quota")).count() >= 2,
        "{lines:#?}"
    );
}

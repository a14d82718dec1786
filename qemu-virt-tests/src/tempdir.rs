//! A private, uniquely named temporary directory removed on drop (home of the QMP socket).

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A Unix socket path must fit `sockaddr_un.sun_path` (108 bytes with its NUL
/// on Linux); a directory name under a long `TMPDIR` falls back to `/tmp`.
const SOCKET_DIR_MAX_BYTES: usize = 80;

/// Attempts before giving up on finding an unused name.
const CREATE_ATTEMPTS: u32 = 64;

/// Distinguishes directories made by one process in the same nanosecond.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(0);

/// A directory only this user can enter, removed with its contents on drop.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<temp dir>/<prefix>-<pid>-<serial>-<nanos>` with mode 0700.
    pub(crate) fn new(prefix: &str) -> io::Result<Self> {
        let mut base = std::env::temp_dir();
        if base.as_os_str().len() > SOCKET_DIR_MAX_BYTES {
            base = PathBuf::from("/tmp");
        }
        let mut last_error = None;
        for _ in 0..CREATE_ATTEMPTS {
            let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.subsec_nanos());
            let path = base.join(format!("{prefix}-{}-{serial}-{nanos}", std::process::id()));
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no free temporary directory name")))
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Nothing useful can be done about a failure here: the directory is in
        // the system's temporary area, which is cleaned eventually.
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn directories_are_unique_private_and_removed_on_drop() {
        let first = TempDir::new("harness-unit").expect("create first");
        let second = TempDir::new("harness-unit").expect("create second");
        assert_ne!(first.path(), second.path());
        let mode = fs::metadata(first.path())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        fs::write(first.path().join("file"), b"x").expect("write inside");
        let path = first.path().to_path_buf();
        drop(first);
        assert!(!path.exists());
    }
}

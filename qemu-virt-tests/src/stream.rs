//! Everything one of QEMU's output pipes printed, collected by a reader thread.

use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Size of one read from the pipe.
const READ_CHUNK_BYTES: usize = 4096;

/// Environment variable that, set to `1`, echoes QEMU's output to the test's stderr.
pub(crate) const ECHO_VARIABLE: &str = "JANUS_TEST_ECHO";

/// Whether `JANUS_TEST_ECHO=1` is set.
pub(crate) fn echo_enabled() -> bool {
    std::env::var_os(ECHO_VARIABLE).is_some_and(|value| value == "1")
}

/// What arrived on a pipe so far.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// Every byte read, in order.
    pub(crate) bytes: Vec<u8>,
    /// The pipe reached end of file (QEMU closed it, normally by exiting).
    pub(crate) closed: bool,
}

/// A growing byte buffer fed by one reader thread; waiters sleep on `changed`.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    state: Mutex<StreamState>,
    changed: Condvar,
}

/// Locks `mutex`, ignoring poisoning: the state stays meaningful even if a
/// thread panicked while holding it (every update is a single append or flag).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Stream {
    /// An empty, open stream.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts a thread that appends everything `source` yields until end of
    /// file, then marks the stream closed. With `echo_prefix`, each complete
    /// line is also printed to stderr after that prefix.
    pub(crate) fn spawn_reader(
        self: &Arc<Self>,
        name: &str,
        mut source: impl Read + Send + 'static,
        echo_prefix: Option<&'static str>,
    ) -> io::Result<JoinHandle<()>> {
        let stream = Arc::clone(self);
        thread::Builder::new().name(name.to_owned()).spawn(move || {
            let mut echo = echo_prefix.map(LineEcho::new);
            let mut chunk = [0u8; READ_CHUNK_BYTES];
            loop {
                let count = match source.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(count) => count,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                lock(&stream.state).bytes.extend_from_slice(&chunk[..count]);
                stream.changed.notify_all();
                if let Some(echo) = &mut echo {
                    echo.push(&chunk[..count]);
                }
            }
            if let Some(echo) = &mut echo {
                echo.finish();
            }
            lock(&stream.state).closed = true;
            stream.changed.notify_all();
        })
    }

    /// Locks the state for reading.
    pub(crate) fn lock(&self) -> MutexGuard<'_, StreamState> {
        lock(&self.state)
    }

    /// Sleeps until the stream changes or `timeout` passes, whichever is first.
    pub(crate) fn wait<'a>(
        &self,
        guard: MutexGuard<'a, StreamState>,
        timeout: Duration,
    ) -> MutexGuard<'a, StreamState> {
        self.changed
            .wait_timeout(guard, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// A copy of everything read so far.
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        self.lock().bytes.clone()
    }

    /// Waits up to `timeout` for end of file; returns whether it came.
    pub(crate) fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut guard = self.lock();
        while !guard.closed {
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self.wait(guard, deadline - now);
        }
        true
    }
}

/// Splits a byte stream into lines and prints each to stderr with a prefix.
struct LineEcho {
    prefix: &'static str,
    line: Vec<u8>,
}

impl LineEcho {
    fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            line: Vec::new(),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.emit();
            } else {
                self.line.push(byte);
            }
        }
    }

    fn finish(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }

    fn emit(&mut self) {
        // `eprintln!` rather than a raw stderr handle: the test harness
        // captures it per test (threads inherit the capture), so the echo is
        // shown with a failing test and live with `--nocapture`.
        let text = String::from_utf8_lossy(&self.line);
        eprintln!("{}{}", self.prefix, text.trim_end_matches('\r'));
        self.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_collects_everything_then_closes() {
        let stream = Stream::new();
        let source: &'static [u8] = b"one\ntwo\nthree";
        let reader = stream
            .spawn_reader("test-reader", source, None)
            .expect("spawn reader");
        assert!(stream.wait_closed(Duration::from_secs(5)));
        reader.join().expect("reader thread");
        let state = stream.lock();
        assert_eq!(state.bytes, b"one\ntwo\nthree");
        assert!(state.closed);
    }
}

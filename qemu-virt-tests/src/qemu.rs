//! One running QEMU: its serial console as an expect-style API, its exit, its QMP monitor.

use std::io::{self, Write};
use std::path::Path;
use std::process::{ChildStdin, ExitStatus};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{QemuConfig, QEMU_BINARY};
use crate::error::{HarnessError, Result};
use crate::matcher::{output_tail, tail_of, Scan, Scanner};
use crate::process::Process;
use crate::qmp::{Qmp, QMP_CONNECT_TIMEOUT};
use crate::stream::{echo_enabled, Stream};
use crate::tempdir::TempDir;

/// How long an unterminated panic line may wait for its end before a wait
/// fails with what it has.
const PARTIAL_PANIC_GRACE: Duration = Duration::from_millis(500);

/// How long, after the console closed, to wait for QEMU's exit status.
const EXIT_STATUS_GRACE: Duration = Duration::from_secs(2);

/// How much of QEMU's own stderr an error carries after the console tail.
const STDERR_TAIL_BYTES: usize = 1024;

/// A QEMU virt machine started by the harness; killed and reaped on drop.
///
/// The console methods read QEMU's serial output through a cursor: each
/// successful [`Qemu::expect`] moves it past the match, so a later expect
/// only sees newer output.
pub struct Qemu {
    config: QemuConfig,
    // Field order is drop order: close the QMP connection and stdin first,
    // then kill and reap QEMU, then remove the socket's directory.
    qmp: Option<Qmp>,
    stdin: Option<ChildStdin>,
    process: Process,
    serial: Arc<Stream>,
    stderr: Arc<Stream>,
    readers: Vec<JoinHandle<()>>,
    cursor: usize,
    qmp_socket: std::path::PathBuf,
    /// Holds the QMP socket; removed when dropped, after QEMU is gone.
    _socket_dir: TempDir,
}

impl Qemu {
    /// Starts `qemu-system-aarch64` as [`QemuConfig::args`] describes, with
    /// the serial console on its stdin/stdout and QMP on a socket in a fresh
    /// private temporary directory.
    ///
    /// # Errors
    ///
    /// `NotFound` when the kernel or initrd image, a disk, or QEMU itself, is
    /// missing; any other error from creating the directory, the process or
    /// the reader threads.
    pub fn start(config: QemuConfig) -> io::Result<Self> {
        let disks = config.disks.iter().map(|disk| &disk.path);
        for image in std::iter::once(&config.kernel)
            .chain(config.initrd.as_ref())
            .chain(disks)
        {
            if !image.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("image {} does not exist", image.display()),
                ));
            }
        }
        let socket_dir = TempDir::new("janus-qemu")?;
        let qmp_socket = socket_dir.path().join("qmp.sock");
        let (process, pipes) =
            Process::spawn(QEMU_BINARY, config.args(&qmp_socket), config.timeout)?;
        let echo = echo_enabled();
        let serial = Stream::new();
        let stderr = Stream::new();
        let readers = vec![
            serial.spawn_reader("qemu-serial", pipes.stdout, echo.then_some("[serial] "))?,
            stderr.spawn_reader(
                "qemu-stderr",
                pipes.stderr,
                echo.then_some("[qemu stderr] "),
            )?,
        ];
        Ok(Self {
            config,
            qmp: None,
            stdin: Some(pipes.stdin),
            process,
            serial,
            stderr,
            readers,
            cursor: 0,
            qmp_socket,
            _socket_dir: socket_dir,
        })
    }

    /// The configuration this machine was started with.
    pub fn config(&self) -> &QemuConfig {
        &self.config
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Path of the QMP socket (for a test that wants its own client).
    pub fn qmp_socket(&self) -> &Path {
        &self.qmp_socket
    }

    /// Waits up to `timeout` for `needle` to appear on the console after the
    /// cursor; returns the text from the cursor up to and including the
    /// match, and moves the cursor past it.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Panic`] as soon as a hypervisor panic line shows
    /// before the needle, [`HarnessError::Exited`] or
    /// [`HarnessError::Watchdog`] when QEMU ends first, and
    /// [`HarnessError::Timeout`] otherwise; each carries the console's end.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        self.wait_for(&[needle], timeout).map(|(_, text)| text)
    }

    /// Like [`Qemu::expect`] for several needles: the first one to appear
    /// wins (the one whose match ends first, then the lowest index). Returns
    /// its index and the text up to and including it.
    ///
    /// # Errors
    ///
    /// As [`Qemu::expect`].
    pub fn expect_any(&mut self, needles: &[&str], timeout: Duration) -> Result<(usize, String)> {
        self.wait_for(needles, timeout)
    }

    /// Writes `bytes` to the serial console's input (QEMU's stdin).
    ///
    /// # Errors
    ///
    /// [`HarnessError::Io`] when QEMU no longer reads its input (it exited).
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            HarnessError::Io(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "QEMU's stdin is closed",
            ))
        })?;
        stdin.write_all(bytes)?;
        stdin.flush()?;
        Ok(())
    }

    /// Types `line` followed by `\n` on the serial console.
    ///
    /// # Errors
    ///
    /// As [`Qemu::send`].
    pub fn send_line(&mut self, line: &str) -> Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.send(&bytes)
    }

    /// Everything the console printed so far, as lossy UTF-8.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.serial.snapshot()).into_owned()
    }

    /// What the console printed after the cursor, as lossy UTF-8.
    pub fn unread_output(&self) -> String {
        let state = self.serial.lock();
        let from = self.cursor.min(state.bytes.len());
        String::from_utf8_lossy(&state.bytes[from..]).into_owned()
    }

    /// Everything QEMU printed on its own stderr so far, as lossy UTF-8.
    pub fn stderr_output(&self) -> String {
        String::from_utf8_lossy(&self.stderr.snapshot()).into_owned()
    }

    /// The console's end plus QEMU's stderr, as errors carry it.
    pub fn output_tail(&self) -> String {
        self.tail_with_stderr(&self.serial.snapshot())
    }

    /// Whether QEMU is still running.
    pub fn is_running(&self) -> bool {
        self.process.status().is_none()
    }

    /// Waits up to `timeout` for QEMU to exit and returns its status. The
    /// console output is complete (see [`Qemu::output`]) when this returns.
    ///
    /// # Errors
    ///
    /// [`HarnessError::StillRunning`] when it did not exit in time (it keeps
    /// running), [`HarnessError::Watchdog`] when the watchdog killed it.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let Some(status) = self.process.wait(timeout) else {
            return Err(HarnessError::StillRunning {
                timeout,
                output_tail: self.output_tail(),
            });
        };
        self.serial.wait_closed(EXIT_STATUS_GRACE);
        self.stdin = None;
        if self.process.watchdog_fired() {
            return Err(self.watchdog_error());
        }
        Ok(status)
    }

    /// Kills QEMU now (SIGKILL) and returns its status once reaped, if that
    /// happened within a few seconds.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        self.qmp = None;
        self.stdin = None;
        self.process.kill();
        self.process.wait(EXIT_STATUS_GRACE)
    }

    /// The QMP connection, made on first use (retrying for up to
    /// [`QMP_CONNECT_TIMEOUT`] while QEMU creates the socket).
    ///
    /// # Errors
    ///
    /// As [`Qmp::connect`].
    pub fn qmp(&mut self) -> Result<&mut Qmp> {
        let qmp = match self.qmp.take() {
            Some(qmp) => qmp,
            None => Qmp::connect(&self.qmp_socket, QMP_CONNECT_TIMEOUT)?,
        };
        Ok(self.qmp.insert(qmp))
    }

    /// The wait behind [`Qemu::expect`] and [`Qemu::expect_any`].
    fn wait_for(&mut self, needles: &[&str], timeout: Duration) -> Result<(usize, String)> {
        let started = Instant::now();
        let deadline = started.checked_add(timeout);
        let mut state = self.serial.lock();
        let mut scanner = Scanner::new(needles, self.cursor, &state.bytes);
        let mut partial_panic_since: Option<Instant> = None;
        loop {
            let closed = state.closed;
            match scanner.scan(&state.bytes, closed) {
                Scan::Found { index, end } => {
                    let from = self.cursor.min(end);
                    let text = String::from_utf8_lossy(&state.bytes[from..end]).into_owned();
                    self.cursor = end;
                    return Ok((index, text));
                }
                Scan::Panic(line) => {
                    return Err(HarnessError::Panic(
                        line,
                        self.tail_with_stderr(&state.bytes),
                    ));
                }
                Scan::Pending => {}
            }
            if closed {
                let output = state.bytes.clone();
                drop(state);
                return Err(self.ended_error(needles, &output));
            }
            let now = Instant::now();
            let mut wake_in = deadline.map_or(Duration::from_secs(3600), |deadline| {
                deadline.saturating_duration_since(now)
            });
            if let Some(line) = scanner.trailing_panic_line(&state.bytes) {
                let since = *partial_panic_since.get_or_insert(now);
                let waited = now.duration_since(since);
                if waited >= PARTIAL_PANIC_GRACE {
                    return Err(HarnessError::Panic(
                        line,
                        self.tail_with_stderr(&state.bytes),
                    ));
                }
                wake_in = wake_in.min(PARTIAL_PANIC_GRACE - waited);
            } else {
                partial_panic_since = None;
            }
            if deadline.is_some_and(|deadline| now >= deadline) {
                return Err(HarnessError::Timeout {
                    needle: needles.join(" | "),
                    timeout,
                    output_tail: self.tail_with_stderr(&state.bytes),
                });
            }
            state = self.serial.wait(state, wake_in);
        }
    }

    /// The error for a wait that the console's end cut short.
    fn ended_error(&self, needles: &[&str], output: &[u8]) -> HarnessError {
        let status = self.process.wait(EXIT_STATUS_GRACE);
        if self.process.watchdog_fired() {
            return self.watchdog_error();
        }
        HarnessError::Exited {
            needle: needles.join(" | "),
            status,
            output_tail: self.tail_with_stderr(output),
        }
    }

    fn watchdog_error(&self) -> HarnessError {
        HarnessError::Watchdog {
            limit: self.config.timeout,
            output_tail: self.output_tail(),
        }
    }

    /// The tail of `serial` followed by the tail of QEMU's stderr, if any.
    fn tail_with_stderr(&self, serial: &[u8]) -> String {
        let mut tail = output_tail(serial);
        let stderr = self.stderr.snapshot();
        if !stderr.is_empty() {
            if !tail.is_empty() && !tail.ends_with('\n') {
                tail.push('\n');
            }
            tail.push_str("---- qemu stderr ----\n");
            tail.push_str(&tail_of(&stderr, STDERR_TAIL_BYTES));
        }
        tail
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.qmp = None;
        self.stdin = None;
        self.process.kill();
        // The readers end at end of file, which the kill brings; only join
        // them once QEMU is known to be gone, so a drop can never hang.
        if self.process.wait(EXIT_STATUS_GRACE).is_some() {
            for reader in self.readers.drain(..) {
                let _ = reader.join();
            }
        }
        // `process` (reaping) and `_socket_dir` (removing the socket) finish
        // in their own destructors, in field order.
    }
}

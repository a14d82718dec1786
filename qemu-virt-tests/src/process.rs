//! The QEMU child process: spawned, reaped and, past its time limit, killed by a supervisor thread.
//!
//! One supervisor thread per process spawns the child, polls it until it
//! exits and kills it once the run's limit has passed. The child is only ever
//! reaped by that thread while it holds the state lock, and kills happen
//! under the same lock only while no exit status is recorded, so a kill can
//! never reach a recycled PID.
//!
//! On Linux the child also gets `PR_SET_PDEATHSIG = SIGKILL`: the kernel kills
//! it when the thread that spawned it (the supervisor, which lives until the
//! child is reaped) goes away, which covers a test process that aborts or is
//! killed before any destructor runs.

use std::ffi::OsString;
use std::io;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::stream::lock;

/// How often the supervisor checks whether the child has exited.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How long dropping a [`Process`] waits for the killed child to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);

/// The child's standard streams, handed to the caller.
pub(crate) struct Pipes {
    pub(crate) stdin: ChildStdin,
    pub(crate) stdout: ChildStdout,
    pub(crate) stderr: ChildStderr,
}

/// What the supervisor knows about the child.
struct State {
    child: Child,
    status: Option<ExitStatus>,
    watchdog_fired: bool,
}

/// State shared between the supervisor and the owner.
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>, timeout: Duration) -> MutexGuard<'a, State> {
        self.changed
            .wait_timeout(guard, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }
}

/// A running (or finished) child process, killed and reaped on drop.
pub(crate) struct Process {
    shared: Arc<Shared>,
    pid: u32,
    supervisor: Option<JoinHandle<()>>,
}

/// What the supervisor sends back once the child is started.
type Started = io::Result<(u32, Pipes, Arc<Shared>)>;

impl Process {
    /// Starts `program` with `args` and piped stdin, stdout and stderr; the
    /// supervisor kills it with SIGKILL once `limit` has passed.
    pub(crate) fn spawn(
        program: &str,
        args: Vec<OsString>,
        limit: Duration,
    ) -> io::Result<(Self, Pipes)> {
        let (sender, receiver) = mpsc::channel::<Started>();
        let program = program.to_owned();
        let supervisor = thread::Builder::new()
            .name("qemu-supervisor".to_owned())
            .spawn(move || {
                let mut command = Command::new(&program);
                command
                    .args(&args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                die_with_parent_thread(&mut command);
                let child = match command.spawn() {
                    Ok(child) => child,
                    Err(error) => {
                        let message = format!("cannot start {program}: {error}");
                        let _ = sender.send(Err(io::Error::new(error.kind(), message)));
                        return;
                    }
                };
                let deadline = Instant::now().checked_add(limit);
                let shared = Arc::new(Shared {
                    state: Mutex::new(State {
                        child,
                        status: None,
                        watchdog_fired: false,
                    }),
                    changed: Condvar::new(),
                });
                let started = take_pipes(&mut shared.lock().child);
                let failed = started.is_err();
                let pid = shared.lock().child.id();
                let sent = sender.send(started.map(|pipes| (pid, pipes, Arc::clone(&shared))));
                if failed || sent.is_err() {
                    // Nobody will own this child: do not let it run.
                    kill_locked(&mut shared.lock());
                }
                supervise(&shared, deadline);
            })?;
        let (pid, pipes, shared) = receiver
            .recv()
            .map_err(|_| io::Error::other("the QEMU supervisor thread died"))??;
        let process = Self {
            shared,
            pid,
            supervisor: Some(supervisor),
        };
        Ok((process, pipes))
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status, once the child has exited and been reaped.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        self.shared.lock().status
    }

    /// Whether the supervisor killed the child because its limit passed.
    pub(crate) fn watchdog_fired(&self) -> bool {
        self.shared.lock().watchdog_fired
    }

    /// Waits up to `timeout` for the child to exit; its status if it did.
    pub(crate) fn wait(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.shared.lock();
        loop {
            if let Some(status) = state.status {
                return Some(status);
            }
            let remaining = match deadline {
                Some(deadline) => deadline.checked_duration_since(Instant::now())?,
                None => Duration::from_secs(3600),
            };
            if remaining.is_zero() {
                return None;
            }
            state = self.shared.wait(state, remaining);
        }
    }

    /// Sends SIGKILL to the child if it has not exited yet.
    pub(crate) fn kill(&self) {
        kill_locked(&mut self.shared.lock());
        self.shared.changed.notify_all();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if self.wait(REAP_TIMEOUT).is_some() {
            if let Some(supervisor) = self.supervisor.take() {
                // The supervisor returns right after recording the status.
                let _ = supervisor.join();
            }
        }
    }
}

/// Takes the three piped streams out of `child`.
fn take_pipes(child: &mut Child) -> io::Result<Pipes> {
    match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
        (Some(stdin), Some(stdout), Some(stderr)) => Ok(Pipes {
            stdin,
            stdout,
            stderr,
        }),
        _ => Err(io::Error::other("QEMU was started without its pipes")),
    }
}

/// Kills the child unless it is already reaped (its PID may then belong to another process).
fn kill_locked(state: &mut State) {
    if state.status.is_none() {
        // SIGKILL; an error means the child already exited, which the
        // supervisor's next poll records.
        let _ = state.child.kill();
    }
}

/// Polls the child until it exits, killing it once `deadline` has passed.
fn supervise(shared: &Shared, deadline: Option<Instant>) {
    let mut state = shared.lock();
    loop {
        if let Ok(Some(status)) = state.child.try_wait() {
            state.status = Some(status);
            shared.changed.notify_all();
            return;
        }
        let now = Instant::now();
        if let Some(deadline) = deadline {
            if now >= deadline && !state.watchdog_fired {
                kill_locked(&mut state);
                state.watchdog_fired = true;
                shared.changed.notify_all();
            }
        }
        let until_deadline = deadline
            .and_then(|deadline| deadline.checked_duration_since(now))
            .filter(|remaining| !remaining.is_zero())
            .unwrap_or(POLL_INTERVAL);
        state = shared.wait(state, until_deadline.min(POLL_INTERVAL));
    }
}

/// Asks the kernel to SIGKILL the child when the spawning thread ends (Linux only).
#[cfg(target_os = "linux")]
fn die_with_parent_thread(command: &mut Command) {
    use std::os::unix::process::CommandExt;

    let parent = std::process::id();
    let hook = move || -> io::Result<()> {
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes plain integers, touches no
        // memory of ours and is async-signal-safe, as required between fork
        // and exec.
        let result = unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: getppid has no preconditions and is async-signal-safe.
        let current_parent = unsafe { libc::getppid() };
        // The parent died between fork and prctl: the signal will never come.
        if u32::try_from(current_parent).ok() != Some(parent) {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec; it only makes
    // the async-signal-safe system calls prctl and getppid, allocates
    // nothing and takes no lock.
    unsafe {
        command.pre_exec(hook);
    }
}

/// Elsewhere the destructor and the watchdog are the only guards.
#[cfg(not(target_os = "linux"))]
fn die_with_parent_thread(_command: &mut Command) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_is_collected() {
        let (process, _pipes) = Process::spawn(
            "sh",
            vec!["-c".into(), "exit 3".into()],
            Duration::from_secs(30),
        )
        .expect("spawn sh");
        let status = process.wait(Duration::from_secs(10)).expect("sh exits");
        assert_eq!(status.code(), Some(3));
        assert!(!process.watchdog_fired());
    }

    #[test]
    fn watchdog_kills_after_the_limit() {
        let started = Instant::now();
        let (process, _pipes) =
            Process::spawn("sleep", vec!["60".into()], Duration::from_millis(200))
                .expect("spawn sleep");
        let status = process.wait(Duration::from_secs(10)).expect("killed");
        assert!(!status.success());
        assert!(process.watchdog_fired());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn drop_kills_and_reaps() {
        let (process, _pipes) =
            Process::spawn("sleep", vec!["60".into()], Duration::from_secs(60)).expect("spawn");
        let proc_entry = std::path::PathBuf::from(format!("/proc/{}", process.pid()));
        assert!(process.status().is_none());
        drop(process);
        if cfg!(target_os = "linux") {
            assert!(!proc_entry.exists());
        }
    }

    #[test]
    fn missing_program_is_an_error() {
        let error = Process::spawn(
            "no-such-program-for-harness",
            Vec::new(),
            Duration::from_secs(1),
        )
        .err()
        .expect("spawn fails");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(error.to_string().contains("no-such-program-for-harness"));
    }
}

//! The harness' one error type: what went wrong, and what the console showed up to then.

use std::fmt;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

/// Result of a harness call.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

/// Why a wait, a console write or a QMP command failed.
///
/// The variants about the console carry the last few KiB of output
/// ([`crate::OUTPUT_TAIL_BYTES`]), followed by QEMU's stderr when it said
/// anything, so a failed test shows what the machine was doing. `Debug`
/// prints the same text as `Display`, so `unwrap()` and `?` in a test show it
/// readably.
pub enum HarnessError {
    /// `needle` did not appear on the console within `timeout`.
    Timeout {
        /// What was awaited (several needles are joined with ` | `).
        needle: String,
        /// How long the harness waited.
        timeout: Duration,
        /// The end of the console output.
        output_tail: String,
    },
    /// The console showed a hypervisor panic line (a line starting with
    /// `[janus] PANIC` or containing `[janus] panic`): the line, then the end
    /// of the console output.
    Panic(String, String),
    /// QEMU exited while `needle` was awaited.
    Exited {
        /// What was awaited.
        needle: String,
        /// QEMU's exit status, when it could be collected.
        status: Option<ExitStatus>,
        /// The end of the console output.
        output_tail: String,
    },
    /// The watchdog killed QEMU because the run passed `QemuConfig::timeout`.
    Watchdog {
        /// The configured cap on the whole run.
        limit: Duration,
        /// The end of the console output.
        output_tail: String,
    },
    /// QEMU was still running when `Qemu::wait_exit`'s timeout passed.
    StillRunning {
        /// How long the harness waited.
        timeout: Duration,
        /// The end of the console output.
        output_tail: String,
    },
    /// QMP answered `command` with an error object.
    Qmp {
        /// The command that failed.
        command: String,
        /// The error's `class` (`GenericError`, `CommandNotFound`, ...).
        class: String,
        /// The error's human-readable `desc`.
        desc: String,
    },
    /// The QMP peer sent something that is not a QMP message, or no answer in time.
    Protocol(String),
    /// An I/O error on QEMU's console pipe or QMP socket.
    Io(io::Error),
}

impl HarnessError {
    /// The end of the console output this error carries, if it is about the console.
    pub fn output_tail(&self) -> Option<&str> {
        match self {
            Self::Timeout { output_tail, .. }
            | Self::Panic(_, output_tail)
            | Self::Exited { output_tail, .. }
            | Self::Watchdog { output_tail, .. }
            | Self::StillRunning { output_tail, .. } => Some(output_tail),
            Self::Qmp { .. } | Self::Protocol(_) | Self::Io(_) => None,
        }
    }
}

impl From<io::Error> for HarnessError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

impl From<serde_json::Error> for HarnessError {
    fn from(error: serde_json::Error) -> Self {
        Self::Protocol(format!("malformed QMP JSON: {error}"))
    }
}

/// Writes `tail` between two rulers so it stands out in a test's output.
fn write_tail(f: &mut fmt::Formatter<'_>, tail: &str) -> fmt::Result {
    writeln!(f)?;
    writeln!(f, "---- last console output ----")?;
    if !tail.is_empty() {
        f.write_str(tail)?;
        if !tail.ends_with('\n') {
            writeln!(f)?;
        }
    }
    write!(f, "---- end of console output ----")
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout {
                needle,
                timeout,
                output_tail,
            } => {
                write!(
                    f,
                    "timed out after {timeout:?} waiting for {needle:?} on the console"
                )?;
                write_tail(f, output_tail)
            }
            Self::Panic(line, output_tail) => {
                write!(f, "the hypervisor panicked: {line}")?;
                write_tail(f, output_tail)
            }
            Self::Exited {
                needle,
                status,
                output_tail,
            } => {
                match status {
                    Some(status) => write!(f, "QEMU exited ({status})")?,
                    None => write!(f, "QEMU exited")?,
                }
                write!(f, " while waiting for {needle:?}")?;
                write_tail(f, output_tail)
            }
            Self::Watchdog { limit, output_tail } => {
                write!(
                    f,
                    "the watchdog killed QEMU: the run passed its {limit:?} limit"
                )?;
                write_tail(f, output_tail)
            }
            Self::StillRunning {
                timeout,
                output_tail,
            } => {
                write!(f, "QEMU was still running after {timeout:?}")?;
                write_tail(f, output_tail)
            }
            Self::Qmp {
                command,
                class,
                desc,
            } => write!(f, "QMP command {command:?} failed: {class}: {desc}"),
            Self::Protocol(message) => write!(f, "QMP protocol error: {message}"),
            Self::Io(error) => write!(f, "I/O error talking to QEMU: {error}"),
        }
    }
}

impl fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for HarnessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(error) => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_message_names_needle_and_shows_tail() {
        let error = HarnessError::Timeout {
            needle: "login:".to_owned(),
            timeout: Duration::from_secs(5),
            output_tail: "booting\n".to_owned(),
        };
        let text = error.to_string();
        assert!(text.contains("\"login:\""), "{text}");
        assert!(text.contains("5s"), "{text}");
        assert!(text.contains("booting\n---- end"), "{text}");
        assert_eq!(format!("{error:?}"), text);
        assert_eq!(error.output_tail(), Some("booting\n"));
    }

    #[test]
    fn panic_message_leads_with_the_line() {
        let error = HarnessError::Panic("[janus] PANIC at mm".to_owned(), "x".to_owned());
        assert!(error
            .to_string()
            .starts_with("the hypervisor panicked: [janus] PANIC at mm"));
    }
}

//! Host-side harness: runs images under `qemu-system-aarch64`, drives the serial console and QMP.
//!
//! An integration test starts QEMU with a [`QemuConfig`], waits for console
//! lines with [`Qemu::expect`], types with [`Qemu::send`] and pokes the machine
//! through [`Qmp`]:
//!
//! ```no_run
//! use std::time::Duration;
//! use qemu_virt_tests::{image_path, Qemu, QemuConfig};
//!
//! let mut qemu = Qemu::start(QemuConfig::new(image_path("janus.bin"))).unwrap();
//! qemu.expect("[janus] foreground: personal", Duration::from_secs(60)).unwrap();
//! qemu.send_line("hostname").unwrap();
//! qemu.expect("personal", Duration::from_secs(10)).unwrap();
//! let status = qemu.qmp().unwrap().query_status().unwrap();
//! assert_eq!(status["status"], "running");
//! ```
//!
//! Every wait has a timeout, and a `[janus] PANIC` line on the console ends a
//! wait at once with [`HarnessError::Panic`]. QEMU never outlives its [`Qemu`]:
//! dropping it (also while unwinding from a failed assertion) kills the process,
//! a watchdog kills it once [`QemuConfig::timeout`] has passed, and on Linux
//! the kernel kills it if the test process itself dies.
//!
//! Set `JANUS_TEST_ECHO=1` to copy the console and QEMU's stderr to the test's
//! stderr as they arrive (`cargo test -- --nocapture` shows them live).

// The harness only makes sense on a Unix host; elsewhere (the bare-metal
// targets a workspace-wide build may ask for) the crate is empty.
#![cfg_attr(not(unix), no_std)]

#[cfg(unix)]
pub mod blklog;
#[cfg(unix)]
mod config;
#[cfg(unix)]
pub mod disk;
#[cfg(unix)]
mod error;
#[cfg(unix)]
pub mod linux;
#[cfg(unix)]
mod matcher;
#[cfg(unix)]
pub mod p9_probe;
#[cfg(unix)]
mod paths;
#[cfg(unix)]
pub mod probe;
#[cfg(unix)]
mod process;
#[cfg(unix)]
mod qemu;
#[cfg(unix)]
mod qmp;
#[cfg(unix)]
pub mod shared;
#[cfg(unix)]
mod stream;
#[cfg(unix)]
mod tempdir;

#[cfg(unix)]
pub use config::{Disk, QemuConfig, DEFAULT_TIMEOUT, QEMU_BINARY, WRITE_LOG_SECTOR_BYTES};
#[cfg(unix)]
pub use error::{HarnessError, Result};
#[cfg(unix)]
pub use matcher::{find_panic_line, is_panic_line, output_tail, OUTPUT_TAIL_BYTES};
#[cfg(unix)]
pub use paths::{image_path, images_dir, workspace_root};
#[cfg(unix)]
pub use qemu::Qemu;
#[cfg(unix)]
pub use qmp::{Qmp, QMP_COMMAND_TIMEOUT, QMP_CONNECT_TIMEOUT};

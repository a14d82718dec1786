//! `janus-initramfs --name NAME --busybox PATH [--modules DIR [--module M]...] -o OUT.cpio`:
//! writes the initramfs of Linux personality NAME (see
//! [`janus_pack::initramfs::build`]): an uncompressed `newc` cpio archive with the
//! static arm64 busybox at PATH, `/init` from `guests/linux/init.sh` and, with
//! `--modules`, the kernel modules of the kernel whose `lib/modules/<VERSION>/` is
//! DIR: each `--module` (default: virtio_mmio, virtio_blk and ext4 for the volume,
//! netfs, fscache, 9pnet, 9pnet_virtio and 9p for the shared folder) and everything it
//! needs, in load order (see [`janus_pack::modules`]).
//!
//! Exits 0 on success, 1 when an input is at fault or the output cannot be written,
//! 2 on a usage error.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use janus_pack::{initramfs, modules};

const USAGE: &str =
    "usage: janus-initramfs --name NAME --busybox PATH [--modules DIR [--module NAME]...] -o OUT.cpio";

/// What the command line asked for.
struct Arguments {
    name: String,
    busybox: PathBuf,
    output: PathBuf,
    /// The kernel's `lib/modules/<VERSION>/`, if modules are wanted.
    modules_dir: Option<PathBuf>,
    /// The modules asked for (empty: the default set).
    modules: Vec<String>,
}

/// Reads the command line; `Ok(None)` means help was asked for.
fn parse_arguments(
    mut arguments: impl Iterator<Item = String>,
) -> Result<Option<Arguments>, String> {
    let mut name = None;
    let mut busybox = None;
    let mut output = None;
    let mut modules_dir = None;
    let mut modules = Vec::new();
    while let Some(argument) = arguments.next() {
        let mut value = |option: &str| {
            arguments
                .next()
                .ok_or_else(|| format!("{option} needs a value"))
        };
        match argument.as_str() {
            "-h" | "--help" => return Ok(None),
            "--name" => name = Some(value("--name")?),
            "--busybox" => busybox = Some(PathBuf::from(value("--busybox")?)),
            "-o" | "--output" => output = Some(PathBuf::from(value("-o")?)),
            "--modules" => modules_dir = Some(PathBuf::from(value("--modules")?)),
            "--module" => modules.push(value("--module")?),
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    Ok(Some(Arguments {
        name: name.ok_or("no personality name given (--name NAME)")?,
        busybox: busybox.ok_or("no busybox given (--busybox PATH)")?,
        output: output.ok_or("no output file given (-o OUT.cpio)")?,
        modules_dir,
        modules,
    }))
}

/// Builds and writes the archive; the error is the message to print.
fn run(arguments: &Arguments) -> Result<usize, String> {
    let busybox = fs::read(&arguments.busybox)
        .map_err(|error| format!("{}: cannot read: {error}", arguments.busybox.display()))?;
    let modules = read_modules(arguments)?;
    let kernel_modules: Vec<initramfs::KernelModule<'_>> = modules
        .iter()
        .map(|(file_name, bytes)| initramfs::KernelModule { file_name, bytes })
        .collect();
    let archive = initramfs::build(&arguments.name, &busybox, &kernel_modules).map_err(
        |error| match error {
            initramfs::InitramfsError::NotArm64Busybox => {
                format!("{}: {error}", arguments.busybox.display())
            }
            _ => error.to_string(),
        },
    )?;
    let output = &arguments.output;
    if let Some(parent) = output
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        fs::create_dir_all(parent)
            .map_err(|error| format!("{}: cannot create: {error}", parent.display()))?;
    }
    // Written beside the target and renamed, so a failed run leaves no half archive.
    let mut temporary = output.clone().into_os_string();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    fs::write(&temporary, &archive)
        .and_then(|()| fs::rename(&temporary, output))
        .map_err(|error| {
            let _ = fs::remove_file(&temporary);
            format!("{}: cannot write: {error}", output.display())
        })?;
    Ok(archive.len())
}

/// The modules asked for and what they need, in load order: (file name, bytes).
fn read_modules(arguments: &Arguments) -> Result<Vec<(String, Vec<u8>)>, String> {
    let Some(dir) = &arguments.modules_dir else {
        if !arguments.modules.is_empty() {
            return Err("--module needs --modules DIR".to_owned());
        }
        return Ok(Vec::new());
    };
    let wanted: Vec<&str> = if arguments.modules.is_empty() {
        modules::DEFAULT_MODULES.to_vec()
    } else {
        arguments.modules.iter().map(String::as_str).collect()
    };
    let tree = modules::ModuleTree::open(dir).map_err(|error| error.to_string())?;
    let (order, missing_soft) = tree.resolve(&wanted).map_err(|error| error.to_string())?;
    for soft in missing_soft {
        eprintln!("janus-initramfs: warning: no module provides the soft dependency {soft}");
    }
    order
        .iter()
        .map(|module| {
            fs::read(&module.path)
                .map(|bytes| (module.file_name(), bytes))
                .map_err(|error| format!("{}: cannot read: {error}", module.path.display()))
        })
        .collect()
}

fn main() -> ExitCode {
    let arguments = match parse_arguments(std::env::args().skip(1)) {
        Ok(Some(arguments)) => arguments,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("janus-initramfs: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&arguments) {
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("janus-initramfs: {message}");
            ExitCode::FAILURE
        }
    }
}

//! `janus-disk`: makes, checks and lists Janus' disk image (see [`janus_pack::disk`]).
//!
//! ```text
//! janus-disk create CONFIG.toml -o DISK.img [--replace] [--mkfs PATH]
//! janus-disk check CONFIG.toml DISK.img
//! janus-disk layout DISK.img
//! ```
//!
//! `create` refuses to overwrite an existing image unless `--replace` is given (which
//! destroys what the personalities wrote on it). `check` only reads. `layout` prints
//! one line per partition: its name, first byte and length in bytes.
//!
//! Exits 0 on success, 1 when the config or the disk is at fault (the message goes to
//! stderr), 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use janus_pack::disk::{self, CreateOptions};

const USAGE: &str = "usage: janus-disk create CONFIG.toml -o DISK.img [--replace] [--mkfs PATH]
       janus-disk check CONFIG.toml DISK.img
       janus-disk layout DISK.img";

/// What the command line asked for.
enum Command {
    Help,
    Create {
        config: PathBuf,
        output: PathBuf,
        options: CreateOptions,
    },
    Check {
        config: PathBuf,
        disk: PathBuf,
    },
    Layout {
        disk: PathBuf,
    },
}

/// Reads the command line.
fn parse_arguments(mut arguments: impl Iterator<Item = String>) -> Result<Command, String> {
    let Some(command) = arguments.next() else {
        return Err("no command given".to_owned());
    };
    let mut positional = Vec::new();
    let mut output = None;
    let mut options = CreateOptions::default();
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-o" | "--output" if command == "create" => {
                output = Some(PathBuf::from(
                    arguments.next().ok_or("-o needs a file name")?,
                ));
            }
            "--replace" if command == "create" => options.replace = true,
            "--mkfs" if command == "create" => {
                options.mkfs = Some(PathBuf::from(
                    arguments.next().ok_or("--mkfs needs a path")?,
                ));
            }
            other if other.starts_with('-') && other.len() > 1 => {
                return Err(format!("unknown option `{other}` for `{command}`"));
            }
            _ => positional.push(PathBuf::from(argument)),
        }
    }
    let mut positional = positional.into_iter();
    let mut next = |what: &str| {
        positional
            .next()
            .ok_or_else(|| format!("`{command}` needs {what}"))
    };
    let parsed = match command.as_str() {
        "-h" | "--help" => return Ok(Command::Help),
        "create" => Command::Create {
            config: next("a config file")?,
            output: output.ok_or("`create` needs -o DISK.img")?,
            options,
        },
        "check" => Command::Check {
            config: next("a config file")?,
            disk: next("a disk image")?,
        },
        "layout" => Command::Layout {
            disk: next("a disk image")?,
        },
        other => return Err(format!("unknown command `{other}`")),
    };
    if let Some(extra) = positional.next() {
        return Err(format!("unexpected argument `{}`", extra.display()));
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let command = match parse_arguments(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("janus-disk: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Create {
            config,
            output,
            options,
        } => {
            let started = Instant::now();
            disk::create(&config, &output, &options).map(|plan| {
                let names: Vec<&str> = plan.partitions.iter().map(|p| p.name.as_str()).collect();
                println!(
                    "janus-disk: made {} ({} MiB, sparse: {}) in {} ms",
                    output.display(),
                    plan.total_bytes() >> 20,
                    names.join(", "),
                    started.elapsed().as_millis()
                );
            })
        }
        Command::Check { config, disk } => disk::check(&config, &disk),
        Command::Layout { disk } => disk::read_layout(&disk).map(|entries| {
            for entry in entries {
                println!(
                    "{} {} {}",
                    entry.name,
                    entry.offset_bytes(),
                    entry.size_bytes()
                );
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

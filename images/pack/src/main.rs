//! `janus-pack CONFIG.toml -o OUT.bundle [--physical-cpus N]`: writes a boot bundle.
//!
//! Exits 0 on success, 1 when the config or an image is at fault (the error, as
//! `FILE:LINE: reason`, goes to stderr), 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use janus_pack::DEFAULT_PHYSICAL_CPUS;

const USAGE: &str = "usage: janus-pack CONFIG.toml -o OUT.bundle [--physical-cpus N]";

/// What the command line asked for.
struct Arguments {
    config: PathBuf,
    output: PathBuf,
    physical_cpus: u32,
}

/// Reads the command line; `Ok(None)` means help was asked for.
fn parse_arguments(
    mut arguments: impl Iterator<Item = String>,
) -> Result<Option<Arguments>, String> {
    let mut config = None;
    let mut output = None;
    let mut physical_cpus = DEFAULT_PHYSICAL_CPUS;
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "-h" | "--help" => return Ok(None),
            "-o" | "--output" => {
                let value = arguments.next().ok_or("-o needs a file name")?;
                output = Some(PathBuf::from(value));
            }
            "--physical-cpus" => {
                let value = arguments.next().ok_or("--physical-cpus needs a number")?;
                physical_cpus = value
                    .parse()
                    .map_err(|_| format!("--physical-cpus: `{value}` is not a number"))?;
            }
            other if other.starts_with('-') && other.len() > 1 => {
                return Err(format!("unknown option `{other}`"));
            }
            _ if config.is_none() => config = Some(PathBuf::from(argument)),
            _ => return Err(format!("unexpected argument `{argument}`")),
        }
    }
    Ok(Some(Arguments {
        config: config.ok_or("no config file given")?,
        output: output.ok_or("no output file given (-o OUT.bundle)")?,
        physical_cpus,
    }))
}

fn main() -> ExitCode {
    let arguments = match parse_arguments(std::env::args().skip(1)) {
        Ok(Some(arguments)) => arguments,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("janus-pack: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let bundle = match janus_pack::pack(&arguments.config, arguments.physical_cpus) {
        Ok(bundle) => bundle,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = std::fs::write(&arguments.output, &bundle) {
        eprintln!("{}: cannot write: {error}", arguments.output.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

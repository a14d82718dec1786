//! `janus-store`: reads Janus' shared store from a disk image (see
//! [`janus_pack::store_image`]).
//!
//! ```text
//! janus-store check IMAGE [--offset BYTES --sectors N]
//! janus-store ls [-R] IMAGE [PATH] [--offset BYTES --sectors N]
//! janus-store cat IMAGE PATH [--offset BYTES --sectors N]
//! janus-store stat IMAGE PATH [--offset BYTES --sectors N]
//! ```
//!
//! Without `--offset`, the store is the `shared` partition of the image's GPT (or
//! the whole file when it has none). Nothing is written. `check` mounts the store
//! (which verifies every checksum and the tree), reads every file and prints a
//! summary; `ls` prints `KIND owner=N released=0|1 size=BYTES PATH` per entry.
//!
//! Exits 0 on success, 1 when the store is corrupt or a path is missing, 2 on a
//! usage error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use janus_pack::store_image::{self, Place};

const USAGE: &str = "usage: janus-store check IMAGE [--offset BYTES --sectors N]
       janus-store ls [-R] IMAGE [PATH] [--offset BYTES --sectors N]
       janus-store cat IMAGE PATH [--offset BYTES --sectors N]
       janus-store stat IMAGE PATH [--offset BYTES --sectors N]";

struct Arguments {
    command: String,
    image: PathBuf,
    path: Option<String>,
    recursive: bool,
    offset: Option<u64>,
    sectors: Option<u64>,
}

fn number(value: Option<String>, what: &str) -> Result<u64, String> {
    value
        .ok_or(format!("{what} needs a number"))?
        .parse()
        .map_err(|_| format!("{what} needs a number"))
}

fn parse_arguments(mut arguments: impl Iterator<Item = String>) -> Result<Arguments, String> {
    let command = arguments.next().ok_or("no command given")?;
    let mut positional = Vec::new();
    let (mut recursive, mut offset, mut sectors) = (false, None, None);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "-R" if command == "ls" => recursive = true,
            "--offset" => offset = Some(number(arguments.next(), "--offset")?),
            "--sectors" => sectors = Some(number(arguments.next(), "--sectors")?),
            other if other.starts_with('-') && other.len() > 1 => {
                return Err(format!("unknown option `{other}`"))
            }
            _ => positional.push(argument),
        }
    }
    let mut positional = positional.into_iter();
    let image = PathBuf::from(positional.next().ok_or("no image given")?);
    let path = positional.next();
    if positional.next().is_some() {
        return Err("too many arguments".to_owned());
    }
    match command.as_str() {
        "check" if path.is_some() => return Err("`check` takes no path".to_owned()),
        "cat" | "stat" if path.is_none() => return Err(format!("`{command}` needs a path")),
        "check" | "ls" | "cat" | "stat" => {}
        other => return Err(format!("unknown command `{other}`")),
    }
    if offset.is_some() != sectors.is_some() {
        return Err("--offset and --sectors go together".to_owned());
    }
    Ok(Arguments {
        command,
        image,
        path,
        recursive,
        offset,
        sectors,
    })
}

fn run(arguments: Arguments) -> Result<(), String> {
    let place = match (arguments.offset, arguments.sectors) {
        (Some(offset), Some(sectors)) => Place { offset, sectors },
        _ => store_image::find_shared(&arguments.image)?,
    };
    let mut store = store_image::open(&arguments.image, place)?;
    let path = arguments.path.unwrap_or_else(|| "/".to_owned());
    let mut out = std::io::stdout().lock();
    let io = |error: std::io::Error| error.to_string();
    match arguments.command.as_str() {
        "check" => {
            let summary = store_image::check(&mut store)?;
            writeln!(
                out,
                "janus-store: ok: commit {}, {} files, {} directories, {} bytes, {} free blocks",
                summary.seq, summary.files, summary.dirs, summary.bytes, summary.free_blocks
            )
            .map_err(io)?;
        }
        "ls" => {
            for (path, info) in store_image::list(&store, &path, arguments.recursive)? {
                writeln!(out, "{}", store_image::ls_line(&info, &path)).map_err(io)?;
            }
        }
        "cat" => {
            let ino = store_image::resolve(&store, &path)?;
            let data =
                store_image::read_all(&mut store, ino).map_err(|e| format!("{path}: {e:?}"))?;
            out.write_all(&data).map_err(io)?;
        }
        _ => {
            let ino = store_image::resolve(&store, &path)?;
            let info = store.info(ino).map_err(|e| format!("{path}: {e:?}"))?;
            let attr = info.attr;
            writeln!(
                out,
                "path={path} ino={} kind={:?} mode={:o} size={} nlink={} owner={} released={} \
                 version={} atime={}.{:09} mtime={}.{:09} ctime={}.{:09}",
                attr.ino,
                attr.kind,
                attr.mode,
                attr.size,
                attr.nlink,
                info.owner,
                u8::from(info.released),
                attr.version,
                attr.atime.sec,
                attr.atime.nsec,
                attr.mtime.sec,
                attr.mtime.nsec,
                attr.ctime.sec,
                attr.ctime.nsec
            )
            .map_err(io)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let arguments = match parse_arguments(std::env::args().skip(1)) {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("janus-store: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(arguments) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("janus-store: {message}");
            ExitCode::FAILURE
        }
    }
}

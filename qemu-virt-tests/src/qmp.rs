//! A QMP (QEMU Machine Protocol) client over the monitor's Unix socket.
//!
//! QMP is line-delimited JSON (QEMU's `docs/interop/qmp-spec.rst`): the
//! server greets with `{"QMP": ...}`, stays in capabilities negotiation until
//! `qmp_capabilities`, then answers each `{"execute": ..., "id": ...}` with
//! `{"return": ...}` or `{"error": {"class", "desc"}}` carrying the same id.
//! Asynchronous `{"event": ...}` messages may arrive at any time in between.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::{HarnessError, Result};

/// How long [`Qmp::connect`] retries while QEMU creates its socket.
pub const QMP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a command waits for its answer unless changed with [`Qmp::set_timeout`].
pub const QMP_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause between connection attempts.
const CONNECT_RETRY_INTERVAL: Duration = Duration::from_millis(50);

/// A QMP session in command mode.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    greeting: Value,
    events: Vec<Value>,
    /// Bytes of a message whose end has not arrived yet.
    partial: Vec<u8>,
    next_id: u64,
    timeout: Duration,
}

impl Qmp {
    /// Connects to the QMP socket at `path`, retrying for up to
    /// `connect_timeout` while it does not exist yet, reads the greeting and
    /// enters command mode with `qmp_capabilities`.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Io`] when no connection could be made in time,
    /// [`HarnessError::Protocol`] when the peer does not greet like QMP.
    pub fn connect(path: &Path, connect_timeout: Duration) -> Result<Self> {
        let deadline = Instant::now() + connect_timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(error) if Instant::now() >= deadline => {
                    return Err(HarnessError::Io(io::Error::new(
                        error.kind(),
                        format!("cannot connect to QMP at {}: {error}", path.display()),
                    )));
                }
                Err(_) => thread::sleep(CONNECT_RETRY_INTERVAL),
            }
        };
        let writer = stream.try_clone()?;
        let mut qmp = Self {
            reader: BufReader::new(stream),
            writer,
            greeting: Value::Null,
            events: Vec::new(),
            partial: Vec::new(),
            next_id: 0,
            timeout: QMP_COMMAND_TIMEOUT,
        };
        let greeting = qmp.read_message(Instant::now() + qmp.timeout)?;
        if greeting.get("QMP").is_none() {
            return Err(HarnessError::Protocol(format!(
                "expected the QMP greeting, got {greeting}"
            )));
        }
        qmp.greeting = greeting;
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// The server's greeting (`{"QMP": {"version": ..., "capabilities": ...}}`).
    pub fn greeting(&self) -> &Value {
        &self.greeting
    }

    /// Sets how long later commands wait for their answer.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Runs `command` with optional `arguments` and returns its `return` value.
    /// Events that arrive meanwhile are kept (see [`Qmp::events`]).
    ///
    /// # Errors
    ///
    /// [`HarnessError::Qmp`] when QEMU answers with an error,
    /// [`HarnessError::Protocol`] when no answer comes in time or it is malformed,
    /// [`HarnessError::Io`] when the socket fails (also when QEMU went away).
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({ "execute": command, "id": id });
        if let Some(arguments) = arguments {
            request["arguments"] = arguments;
        }
        let mut line = serde_json::to_vec(&request)?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        self.writer.flush()?;

        let deadline = Instant::now() + self.timeout;
        loop {
            let message = self.read_message(deadline).map_err(|error| match error {
                HarnessError::Protocol(message) => HarnessError::Protocol(format!(
                    "{message} (waiting for the answer to {command:?})"
                )),
                other => other,
            })?;
            if message.get("event").is_some() {
                self.events.push(message);
                continue;
            }
            // An answer without an id can only be for us: QEMU drops the id
            // only when it could not parse the request at all.
            if message
                .get("id")
                .is_some_and(|answer_id| *answer_id != json!(id))
            {
                continue;
            }
            if let Some(value) = message.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = message.get("error") {
                let text = |key: &str| {
                    error
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                return Err(HarnessError::Qmp {
                    command: command.to_owned(),
                    class: text("class"),
                    desc: text("desc"),
                });
            }
            return Err(HarnessError::Protocol(format!(
                "unexpected answer to {command:?}: {message}"
            )));
        }
    }

    /// The asynchronous events received so far, oldest first.
    pub fn events(&self) -> &[Value] {
        &self.events
    }

    /// Removes and returns the events received so far.
    pub fn take_events(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.events)
    }

    /// Waits up to `timeout` for an event named `name` (`"POWERDOWN"`,
    /// `"SHUTDOWN"`, ...), also looking at events already received; removes
    /// and returns the first one.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Protocol`] when none came in time, [`HarnessError::Io`]
    /// when the socket fails.
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Result<Value> {
        let is_named = |event: &Value| event.get("event").and_then(Value::as_str) == Some(name);
        if let Some(position) = self.events.iter().position(is_named) {
            return Ok(self.events.remove(position));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let message = self.read_message(deadline).map_err(|error| match error {
                HarnessError::Protocol(_) => {
                    HarnessError::Protocol(format!("no {name} event within {timeout:?}"))
                }
                other => other,
            })?;
            if is_named(&message) {
                return Ok(message);
            }
            if message.get("event").is_some() {
                self.events.push(message);
            }
        }
    }

    /// `query-status`: `{"status": "running" | "paused" | ..., "running": bool, ...}`.
    ///
    /// # Errors
    ///
    /// As [`Qmp::execute`].
    pub fn query_status(&mut self) -> Result<Value> {
        self.execute("query-status", None)
    }

    /// `system_powerdown`: presses the virt machine's power key (PL061 line 3).
    ///
    /// # Errors
    ///
    /// As [`Qmp::execute`].
    pub fn system_powerdown(&mut self) -> Result<()> {
        self.execute("system_powerdown", None).map(drop)
    }

    /// `quit`: QEMU exits at once. The connection closing before the answer
    /// arrives counts as success.
    ///
    /// # Errors
    ///
    /// As [`Qmp::execute`], except for the connection closing.
    pub fn quit(&mut self) -> Result<()> {
        match self.execute("quit", None) {
            Ok(_) => Ok(()),
            Err(HarnessError::Io(error))
                if matches!(
                    error.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::BrokenPipe
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Reads one JSON message, waiting until `deadline` at most.
    fn read_message(&mut self, deadline: Instant) -> Result<Value> {
        loop {
            let remaining = deadline
                .checked_duration_since(Instant::now())
                .filter(|remaining| !remaining.is_zero())
                .ok_or_else(|| HarnessError::Protocol("no QMP message in time".to_owned()))?;
            self.reader.get_ref().set_read_timeout(Some(remaining))?;
            // read_until keeps what it read even when it fails, so a message
            // cut by a timeout is completed by the next call.
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) => {
                    return Err(HarnessError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "QMP connection closed",
                    )));
                }
                Ok(_) if self.partial.ends_with(b"\n") => {
                    let line = std::mem::take(&mut self.partial);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Ok(serde_json::from_slice(&line)?);
                }
                Ok(_) => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => return Err(HarnessError::Io(error)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    use crate::tempdir::TempDir;

    /// A fake QMP server that greets, then answers scripted lines in order.
    fn fake_server(path: &Path, script: Vec<&'static str>) -> thread::JoinHandle<Vec<String>> {
        let listener = UnixListener::bind(path).expect("bind fake QMP");
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            stream
                .write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
                .expect("greet");
            let mut requests = Vec::new();
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            for reply in script {
                let mut request = String::new();
                reader.read_line(&mut request).expect("request");
                requests.push(request);
                stream.write_all(reply.as_bytes()).expect("reply");
            }
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            requests
        })
    }

    #[test]
    fn execute_skips_events_and_keeps_them() {
        let dir = TempDir::new("qmp-unit").expect("temp dir");
        let path = dir.path().join("qmp.sock");
        let server = fake_server(
            &path,
            vec![
                "{\"return\": {}, \"id\": 0}\r\n",
                "{\"event\": \"POWERDOWN\", \"timestamp\": {}}\r\n{\"return\": {\"status\": \"running\"}, \"id\": 1}\r\n",
                "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"nope\"}, \"id\": 2}\r\n",
            ],
        );
        let mut qmp = Qmp::connect(&path, QMP_CONNECT_TIMEOUT).expect("connect");
        assert!(qmp.greeting().get("QMP").is_some());
        let status = qmp.query_status().expect("query-status");
        assert_eq!(status["status"], "running");
        assert_eq!(qmp.events().len(), 1);
        assert_eq!(
            qmp.wait_event("POWERDOWN", Duration::ZERO).expect("kept")["event"],
            "POWERDOWN"
        );
        match qmp.execute("bogus", Some(json!({"x": 1}))) {
            Err(HarnessError::Qmp {
                command,
                class,
                desc,
            }) => {
                assert_eq!(
                    (command.as_str(), class.as_str(), desc.as_str()),
                    ("bogus", "CommandNotFound", "nope")
                );
            }
            other => panic!("expected a QMP error, got {other:?}"),
        }
        drop(qmp);
        let requests = server.join().expect("server");
        assert!(requests[0].contains("\"qmp_capabilities\""));
        assert!(requests[1].contains("\"query-status\""));
        let bogus: Value = serde_json::from_str(&requests[2]).expect("json request");
        assert_eq!(bogus["arguments"]["x"], 1);
        assert_eq!(bogus["id"], 2);
    }

    #[test]
    fn connect_gives_up_when_no_socket_appears() {
        let dir = TempDir::new("qmp-unit").expect("temp dir");
        let started = Instant::now();
        let result = Qmp::connect(&dir.path().join("absent.sock"), Duration::from_millis(200));
        assert!(matches!(result, Err(HarnessError::Io(_))));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

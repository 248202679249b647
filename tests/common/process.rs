//! The crate's binaries and examples as processes: commands for them, clients run to completion
//! with a deadline, servers whose output lines can be awaited, and the tutorial's transcripts.
//! Only with the `cli` feature, which builds the binaries.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{TIMEOUT, TestResult, port_in};

/// The path of one of the crate's binaries.
pub fn bin(name: &str) -> &'static str {
    match name {
        "tcp-server" => env!("CARGO_BIN_EXE_tcp-server"),
        "tcp-client" => env!("CARGO_BIN_EXE_tcp-client"),
        "udp-server" => env!("CARGO_BIN_EXE_udp-server"),
        "udp-client" => env!("CARGO_BIN_EXE_udp-client"),
        other => panic!("no binary named {other}"),
    }
}

/// A command for one of the crate's examples (the plain ports of the tutorial's scripts), which
/// `cargo test` builds next to the binaries.
pub fn example(name: &str) -> Command {
    let dir = std::path::Path::new(bin("tcp-server"))
        .parent()
        .expect("binaries live in a folder");
    let path = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built: cargo test builds the examples, cargo build --examples too",
        path.display()
    );
    Command::new(path)
}

/// A command for one of the crate's binaries, with a clean environment for backtraces.
pub fn command(name: &str) -> Command {
    let mut command = Command::new(bin(name));
    command
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    command
}

/// Starts server binary `name` on any free port of 127.0.0.1, with `extra` arguments, and
/// waits for its `listening on ADDR` line.
pub fn start_server(name: &str, extra: &[&str]) -> io::Result<ServerProcess> {
    let mut command = command(name);
    command.args(["--port", "0"]).args(extra);
    ServerProcess::start(command)
}

/// A command for client binary `name`, aimed at `port`, with `args`.
pub fn client(name: &str, port: u16, args: &[&str]) -> Command {
    let mut command = command(name);
    command.args(["--port", &port.to_string()]).args(args);
    command
}

/// Runs a client binary to completion with a deadline, feeding it `stdin`.
pub fn run_client(mut command: Command, stdin: &[u8]) -> io::Result<Output> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut input = child.stdin.take().expect("stdin is piped");
    let stdin = stdin.to_vec();
    let feeder = thread::spawn(move || {
        // The client may exit without reading it all; that is its business.
        let _ = input.write_all(&stdin);
    });
    let out = pipe_reader(child.stdout.take().expect("stdout is piped"));
    let err = pipe_reader(child.stderr.take().expect("stderr is piped"));
    let status = wait_with_deadline(&mut child, TIMEOUT * 3)?;
    feeder.join().expect("stdin feeder should not panic");
    Ok(Output {
        code: status,
        stdout: out.join().expect("stdout reader should not panic"),
        stderr: String::from_utf8_lossy(&err.join().expect("stderr reader should not panic"))
            .into_owned(),
    })
}

/// What a finished binary left behind.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

fn pipe_reader(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        all
    })
}

/// Waits for `child`, killing it and failing if it takes longer than `limit`.
pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> io::Result<Option<i32>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.code());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("process did not finish within {limit:?}"),
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Where a [`ServerProcess`]'s stdout goes.
pub enum Stdout {
    /// To the test, line by line.
    Lines,
    /// Into a file.
    File(std::fs::File),
    /// Into a pipe that is read and thrown away, as fast as the server writes.
    Drained,
}

/// A server binary running in the background, killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl ServerProcess {
    /// Starts `command` and waits for its `listening on ADDR` line.
    pub fn start(command: Command) -> io::Result<Self> {
        Self::start_with_stdout(command, Stdout::Lines)
    }

    /// Starts `command` with its stdout going to `stdout` and waits for its `listening on ADDR`
    /// line; [`ServerProcess::stdout_line`] has lines to give only for [`Stdout::Lines`].
    pub fn start_with_stdout(mut command: Command, stdout: Stdout) -> io::Result<Self> {
        let (stdio, keep_lines) = match stdout {
            Stdout::Lines => (Stdio::piped(), true),
            Stdout::Drained => (Stdio::piped(), false),
            Stdout::File(file) => (Stdio::from(file), false),
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(stdio)
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = match child.stdout.take() {
            Some(pipe) if keep_lines => line_channel(pipe),
            Some(mut pipe) => {
                thread::spawn(move || io::copy(&mut pipe, &mut io::sink()));
                mpsc::channel().1
            }
            None => mpsc::channel().1,
        };
        let stderr = line_channel(child.stderr.take().expect("stderr is piped"));
        let mut server = ServerProcess {
            child,
            addr: "0.0.0.0:0".parse().expect("a valid address"),
            stdin: None,
            stdout,
            stderr,
        };
        let line = server.stderr_line()?;
        let addr = line.strip_prefix("listening on ").ok_or_else(|| {
            io::Error::other(format!("expected 'listening on ADDR', got {line:?}"))
        })?;
        server.addr = addr.parse().map_err(io::Error::other)?;
        Ok(server)
    }

    /// The next stdout line, waiting at most [`TIMEOUT`].
    pub fn stdout_line(&self) -> io::Result<String> {
        next_line(&self.stdout, "stdout")
    }

    /// The next stderr line, waiting at most [`TIMEOUT`].
    pub fn stderr_line(&self) -> io::Result<String> {
        next_line(&self.stderr, "stderr")
    }

    /// The stdout lines that come within `wait`.
    pub fn stdout_lines_for(&self, wait: Duration) -> Vec<String> {
        lines_for(&self.stdout, wait)
    }

    /// Returns true if no stdout line comes within `wait`.
    pub fn stdout_silent_for(&self, wait: Duration) -> bool {
        matches!(
            self.stdout.recv_timeout(wait),
            Err(RecvTimeoutError::Timeout)
        )
    }

    /// Returns true if no stderr line comes within `wait`.
    pub fn stderr_silent_for(&self, wait: Duration) -> bool {
        matches!(
            self.stderr.recv_timeout(wait),
            Err(RecvTimeoutError::Timeout)
        )
    }

    /// The process id, for reading `/proc/<pid>/…` on Linux.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn line_channel(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn lines_for(lines: &Receiver<String>, wait: Duration) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return got;
        }
        match lines.recv_timeout(left) {
            Ok(line) => got.push(line),
            Err(_) => return got,
        }
    }
}

fn next_line(lines: &Receiver<String>, which: &str) -> io::Result<String> {
    lines.recv_timeout(TIMEOUT).map_err(|err| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no {which} line from the server: {err}"),
        )
    })
}

/// What the tutorial's TCP client prints against its server.
pub const TCP_CLIENT_TRANSCRIPT: &str =
    "Welcome!\nHello, Jaber!\nHello, Katy!\nHello, Betty!\nHello, huangxin!\n";

/// What the tutorial's UDP client prints against its server.
pub const UDP_CLIENT_TRANSCRIPT: &str = "Hello, Michael!\nHello, Tracy!\nHello, Sarah!\n";

/// Checks that a client run printed `transcript`, exactly, and nothing on stderr.
pub fn assert_client_transcript(out: &Output, transcript: &str) {
    assert_eq!(
        (out.stdout_text(), out.stderr.as_str(), out.code),
        (transcript.to_string(), "", Some(0))
    );
}

/// Checks the TCP server's transcript for one connection from 127.0.0.1: the original's
/// `Accept new connection from …` and `Connection from … closed.`, naming the same port.
pub fn assert_tcp_server_transcript(server: &ServerProcess) -> TestResult {
    let accepted = server.stdout_line()?;
    let port = port_in(&accepted, "Accept new connection from ", "127.0.0.1", "...")
        .ok_or(format!("unexpected line {accepted:?}"))?;
    assert_eq!(
        server.stdout_line()?,
        format!("Connection from 127.0.0.1:{port} closed.")
    );
    Ok(())
}

/// Runs an external tool with `stdin`; fails when it is not installed.
pub fn external(tool: &str, args: &[&str], stdin: &[u8]) -> std::io::Result<Output> {
    let mut command = std::process::Command::new(tool);
    command.args(args);
    super::installed(run_client(command, stdin), tool)
}

//! The server binaries in the surroundings they run in: a console nobody reads, a kill right
//! after the last client, log lines that must not wait for company.

mod common;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// A file in the system's temporary folder, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let unique = format!("greeting-{}-{name}", std::process::id());
        TempFile(std::env::temp_dir().join(unique))
    }

    fn read(&self) -> io::Result<String> {
        std::fs::read_to_string(&self.0)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts a server binary with its stdout in `file`.
fn server_logging_to(name: &str, file: &TempFile) -> io::Result<ServerProcess> {
    let mut command = command(name);
    command.args(["--port", "0"]);
    ServerProcess::start_with_stdout(command, Stdout::File(File::create(&file.0)?))
}

/// Kills `server` (SIGKILL on Unix: nothing of the process runs after it) 10 ms from now.
fn kill_soon(mut server: ServerProcess) -> io::Result<()> {
    std::thread::sleep(Duration::from_millis(10));
    server.child.kill()?;
    server.child.wait()?;
    Ok(())
}

/// A TCP server killed 10 ms after its last client finished has already written that client's
/// `closed` line: each line reaches the kernel when its event happens, not when a timer says.
/// 20 rounds out of 20.
#[test]
fn a_killed_tcp_server_has_written_every_line() -> TestResult {
    for round in 0..20 {
        let file = TempFile::new(&format!("tcp-{round}.log"));
        let server = server_logging_to("tcp-server", &file)?;
        let mut client = connect_welcomed(server.addr)?;
        exchange(&mut client, b"Ada", b"Hello, Ada!")?;
        client.write_all(b"exit")?;
        assert!(is_closed(&mut client)?);
        let me = client.local_addr()?;
        kill_soon(server)?;
        assert_eq!(
            file.read()?,
            format!(
                "TCPServer is waiting for connection...\n\
                 Accept new connection from {me}...\n\
                 Connection from {me} closed.\n"
            ),
            "round {round}"
        );
    }
    Ok(())
}

/// A UDP server killed 10 ms after its last reply has written a line for every datagram, a
/// burst of 50 included. 20 rounds out of 20.
#[test]
fn a_killed_udp_server_has_written_every_line() -> TestResult {
    for round in 0..20 {
        let file = TempFile::new(&format!("udp-{round}.log"));
        let server = server_logging_to("udp-server", &file)?;
        let socket = udp_socket()?;
        let mut buf = [0; 64];
        for i in 0..50 {
            socket.send_to(format!("n{i}").as_bytes(), server.addr)?;
            let (n, _) = socket.recv_from(&mut buf)?;
            assert_eq!(&buf[..n], format!("Hello, n{i}!").as_bytes());
        }
        let port = server.addr.port();
        kill_soon(server)?;
        let me = socket.local_addr()?;
        let expected: String = std::iter::once(format!("Bind UDP on {port}...\n"))
            .chain((0..50).map(|_| format!("Received from {me}.\n")))
            .collect();
        assert_eq!(file.read()?, expected, "round {round}");
    }
    Ok(())
}

/// A stderr that nobody reads (`tcp-server 2>&1 | less`, a stalled supervisor) never stops the
/// server: 2,000 clients that reset their connections, each reported on stderr, fill the pipe
/// many times over, and still every connection is answered, a slot is free for the next client,
/// and once the pipe is read again the reports come out.
#[test]
fn a_stderr_nobody_reads_does_not_stop_the_server() -> TestResult {
    let mut server = KillOnDrop(
        command("tcp-server")
            .args(["--port", "0", "--quiet", "--max-connections", "4"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let mut stderr = BufReader::new(server.0.stderr.take().ok_or("stderr is piped")?);
    let mut first = String::new();
    stderr.read_line(&mut first)?;
    let addr: std::net::SocketAddr = first
        .trim_end()
        .strip_prefix("listening on ")
        .ok_or("no listening line")?
        .parse()?;
    // From here on nobody reads stderr until the end.
    for _ in 0..2000 {
        let resetting = connect(addr)?;
        // Wait for the server's first words, then leave them unread: closing now sends a reset,
        // which the server reports as an error of that connection.
        resetting.peek(&mut [0; 1])?;
        drop(resetting);
    }
    let served = eventually(TIMEOUT, || {
        let mut client = connect(addr)?;
        let mut first = [0; 8];
        client.read_exact(&mut first)?;
        if &first != b"Welcome!" {
            return Ok(false);
        }
        exchange(&mut client, b"Ada", b"Hello, Ada!")?;
        Ok(true)
    })?;
    assert!(served, "no slot came free while stderr was stuck");
    let mut resets = 0;
    for _ in 0..10_000 {
        let mut line = String::new();
        if stderr.read_line(&mut line)? == 0 {
            break;
        }
        if line.contains(": Connection reset") || line.contains("connection was reset") {
            resets += 1;
        }
        if resets >= 1000 {
            break;
        }
    }
    assert!(resets >= 1000, "only {resets} reset reports came out");
    Ok(())
}

/// A child process killed when dropped, so a failed assertion leaves no server behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

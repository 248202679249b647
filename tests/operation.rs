//! The server binaries in the surroundings they run in: a console nobody reads, a kill right
//! after the last client, log lines that must not wait for company.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

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

/// Kills `server` (SIGKILL on Unix: nothing of the process runs after it) 200 ms from now: a
/// line normally reaches the kernel within a millisecond, and the rest is a margin for a
/// machine so loaded that the log's thread waits that long to run. A log that held lines until
/// a flush at exit, or on a timer of its own, loses them all the same.
fn kill_soon(mut server: ServerProcess) -> io::Result<()> {
    std::thread::sleep(Duration::from_millis(200));
    server.child.kill()?;
    server.child.wait()?;
    Ok(())
}

/// A TCP server killed soon after its last client finished has already written that client's
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
        // Finished as the original client finishes: it closes its socket after the exit word.
        drop(client);
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

/// A UDP server killed soon after its last reply has written a line for every datagram, a
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

/// Reads the lines of `pipe` on a thread of its own, folding each into `state` with `take` until
/// it says it has enough or the pipe ends, and returns the state; fails if that takes longer
/// than `limit` (what the pipe was short of would otherwise be a hang).
#[cfg(unix)]
fn fold_lines<T: Send + 'static>(
    pipe: impl Read + Send + 'static,
    limit: Duration,
    mut state: T,
    mut take: impl FnMut(&mut T, &str) -> bool + Send + 'static,
) -> io::Result<T> {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if !take(&mut state, &line) {
                break;
            }
        }
        let _ = done.send(state);
    });
    result.recv_timeout(limit).map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the lines took over {limit:?}"),
        )
    })
}

/// Says whether `line` is one a tcp-server prints, on stdout or stderr, in the runs below.
#[cfg(unix)]
fn is_server_line(line: &str) -> bool {
    let peer = |rest: &str| {
        rest.strip_prefix("127.0.0.1:")
            .is_some_and(|port| port.parse::<u16>().is_ok())
    };
    let counted = |rest: &str, what: &str| {
        rest.split_once(what)
            .is_some_and(|(n, tail)| n.parse::<u64>().is_ok() && tail.is_empty())
    };
    line == "TCPServer is waiting for connection..."
        || line.strip_prefix("listening on ").is_some_and(peer)
        || line
            .strip_prefix("Accept new connection from ")
            .and_then(|rest| rest.strip_suffix("..."))
            .is_some_and(peer)
        || line
            .strip_prefix("Connection from ")
            .and_then(|rest| rest.strip_suffix(" closed."))
            .is_some_and(peer)
        || line
            .split_once(": ")
            .is_some_and(|(who, what)| peer(who) && what.starts_with("Connection reset by peer"))
        || [
            " log lines dropped: standard output is not keeping up",
            " log line dropped: standard output is not keeping up",
            " lines dropped: this output is not keeping up",
            " line dropped: this output is not keeping up",
        ]
        .iter()
        .any(|notice| counted(line, notice))
}

/// stdout and stderr into one pipe (`tcp-server 2>&1 | less`) with a reader that lags: every
/// line that comes out is whole, never two spliced together, though both streams write
/// thousands of lines in large batches. Unix only: bash joins the two streams.
#[cfg(unix)]
#[test]
fn stdout_and_stderr_in_one_pipe_keep_every_line_whole() -> TestResult {
    let spawned = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("exec {} --port 0 2>&1", bin("tcp-server")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let child = installed(spawned, "bash")?;
    let mut server = KillOnDrop(child);
    let mut out = BufReader::new(server.0.stdout.take().ok_or("stdout is piped")?);
    // The two streams' first lines may come in either order.
    let mut listening = None;
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line)?;
        listening = listening.or(line
            .trim_end()
            .strip_prefix("listening on ")
            .map(str::to_string));
    }
    let addr: std::net::SocketAddr = listening.ok_or("no listening line")?.parse()?;
    // Nobody reads while 1,500 clients come and reset: two or three lines each, on both
    // streams.
    for _ in 0..1500 {
        let resetting = connect(addr)?;
        resetting.peek(&mut [0; 1])?;
        drop(resetting);
    }
    let (lines, spliced) = fold_lines(
        out,
        TIMEOUT * 4,
        (0, Vec::new()),
        |(lines, spliced), line| {
            if !is_server_line(line) {
                spliced.push(line.to_string());
            }
            *lines += 1;
            if *lines % 64 == 0 {
                // A slow reader: the writers keep finding the pipe full.
                std::thread::sleep(Duration::from_millis(1));
            }
            *lines < 2900
        },
    )?;
    assert!(spliced.is_empty(), "cut or spliced lines: {spliced:?}");
    assert_eq!(lines, 2900);
    Ok(())
}

/// With stdout on a full disk, the lines it cannot take are not lost without a word: stderr
/// says how many, and why, within a second or so, even when the server goes quiet: all 7
/// lines of a start and three connections are counted. Linux only: /dev/full is always full.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_under_stdout_is_reported() -> TestResult {
    let full = File::options().write(true).open("/dev/full")?;
    let mut command = command("tcp-server");
    command.args(["--port", "0"]);
    let server = ServerProcess::start_with_stdout(command, Stdout::File(full))?;
    for _ in 0..3 {
        let mut client = connect_welcomed(server.addr)?;
        exchange(&mut client, b"Ada", b"Hello, Ada!")?;
        client.write_all(b"exit")?;
        assert!(is_closed(&mut client)?);
    }
    let full_disk = io::Error::from_raw_os_error(28).to_string();
    let mut counted = 0;
    while counted < 7 {
        let line = server.stderr_line()?;
        let (count, why) = line
            .split_once(" log lines lost: standard output failed: ")
            .or_else(|| line.split_once(" log line lost: standard output failed: "))
            .ok_or(format!("unexpected line {line:?}"))?;
        assert_eq!(why, full_disk);
        counted += count.parse::<u64>()?;
    }
    assert_eq!(counted, 7);
    Ok(())
}

/// A stdout pipe that a parent left non-blocking, read only once the server is done: the
/// server's writer waits for room whenever the pipe is full instead of taking "would block" for
/// a failure, and every one of 10,000 lines arrives. Linux only; python3 sets the flag.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs python3: .ci/run runs cargo test -- --ignored"]
fn a_non_blocking_stdout_loses_no_line() -> TestResult {
    const NONBLOCKING_EXEC: &str = "import fcntl, os, sys\n\
        flags = fcntl.fcntl(1, fcntl.F_GETFL)\n\
        fcntl.fcntl(1, fcntl.F_SETFL, flags | os.O_NONBLOCK)\n\
        os.execv(sys.argv[1], sys.argv[1:])\n";
    let spawned = std::process::Command::new("python3")
        .args(["-c", NONBLOCKING_EXEC, bin("udp-server"), "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let child = installed(spawned, "python3")?;
    let mut server = KillOnDrop(child);
    let mut stderr = BufReader::new(server.0.stderr.take().ok_or("stderr is piped")?);
    let mut first = String::new();
    stderr.read_line(&mut first)?;
    let addr: std::net::SocketAddr = first
        .trim_end()
        .strip_prefix("listening on ")
        .ok_or(format!("no listening line: {first:?}"))?
        .parse()?;
    let socket = udp_socket()?;
    let mut buf = [0; 64];
    for i in 0..10_000 {
        socket.send_to(format!("n{i}").as_bytes(), addr)?;
        socket.recv_from(&mut buf)?;
    }
    let out = server.0.stdout.take().ok_or("stdout is piped")?;
    let expected = format!("Received from {}.", socket.local_addr()?);
    let received = fold_lines(out, TIMEOUT, 0, move |received, line| {
        *received += usize::from(line == expected);
        *received < 10_000
    });
    assert_eq!(received?, 10_000, "lines went missing");
    Ok(())
}

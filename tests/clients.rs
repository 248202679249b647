//! The client binaries in surroundings other than a quiet loopback: replies split by a relay,
//! servers that come and go, names and input the protocol cannot carry, extreme settings, and
//! the first things a user sees (`--help`, `--host`).

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::common::*;

/// Asserts that a client failed with exit `code` and one short stderr line holding `part`.
fn assert_one_line(out: &Output, code: i32, part: &str) {
    assert_eq!(out.code, Some(code), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains(part), "{:?} lacks {part:?}", out.stderr);
    assert!(out.stderr.len() < 300, "a long line: {}", out.stderr);
}

/// A relay for one connection that passes bytes on `segment` at a time with a `pause` between,
/// as a slow tunnel or a path with a small MTU might, so every message longer than that
/// reaches the other side in pieces.
fn relay(server: std::net::SocketAddr, segment: usize, pause: Duration) -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || -> std::io::Result<()> {
        // A client that never comes (one that refused its name) must not keep this thread.
        let down = accept_within(&listener, TIMEOUT)?;
        let up = std::net::TcpStream::connect(server)?;
        for stream in [&down, &up] {
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
        }
        let (down2, up2) = (down.try_clone()?, up.try_clone()?);
        let upstream = std::thread::spawn(move || pass_on(down2, up2, segment, pause));
        pass_on(up, down, segment, pause)?;
        upstream.join().expect("relay thread should not panic")
    });
    Ok(port)
}

/// Accepts one connection on `listener`, waiting at most `limit`.
fn accept_within(
    listener: &std::net::TcpListener,
    limit: Duration,
) -> std::io::Result<std::net::TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(err);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(err) => return Err(err),
        }
    }
}

fn pass_on(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    segment: usize,
    pause: Duration,
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut chunk = vec![0; segment];
    for _ in 0..10_000 {
        let n = from.read(&mut chunk)?;
        if n == 0 {
            return to.shutdown(std::net::Shutdown::Write);
        }
        to.write_all(&chunk[..n])?;
        std::thread::sleep(pause);
    }
    Ok(())
}

/// Through a relay that splits every reply, each reply of a paced server (700 ms) gets the whole
/// 1 s timeout, not what the reply before it left over.
#[test]
fn split_replies_through_a_relay_keep_the_whole_timeout() -> TestResult {
    let tcp = start_server("tcp-server", &["--quiet", "--delay", "700ms"])?;
    let relay = relay(tcp.addr, 4, Duration::from_millis(20))?;
    let out = run_client(
        client(
            "tcp-client",
            relay,
            &["--timeout", "1s", "Ada", "Bob", "Cy"],
        ),
        b"",
    )?;
    assert_eq!(
        (out.stdout_text(), out.stderr.as_str(), out.code),
        (
            "Welcome!\nHello, Ada!\nHello, Bob!\nHello, Cy!\n".to_string(),
            "",
            Some(0)
        )
    );
    Ok(())
}

/// Through a relay that cuts the stream into segments (536 bytes, the least any IPv4 path
/// carries, and 1,448, an Ethernet path's), every name tcp-client accepts is answered right,
/// and every longer one is refused before anything is sent, saying why: none comes back as two
/// replies.
#[test]
fn every_name_the_tcp_client_sends_survives_a_segmenting_relay() -> TestResult {
    let tcp = start_server("tcp-server", &["--quiet"])?;
    for segment in [536, 1448] {
        for len in [1, 300, 536, 537, 1449, 2000, 8192] {
            let name = "n".repeat(len);
            let port = relay(tcp.addr, segment, Duration::from_millis(5))?;
            let out = run_client(client("tcp-client", port, &[&name]), b"")?;
            if len <= 536 {
                let expected = format!("Welcome!\nHello, {name}!\n");
                assert_eq!(
                    (out.stdout_text(), out.code),
                    (expected, Some(0)),
                    "{len} bytes through {segment}-byte segments: {}",
                    out.stderr
                );
            } else {
                assert_eq!(out.code, Some(2), "{len} bytes: {}", out.stderr);
                assert!(
                    out.stderr.contains("longer than 536 bytes"),
                    "{}",
                    out.stderr
                );
            }
        }
    }
    Ok(())
}

/// With no server, every try of udp-client waits its timeout, also after "port unreachable":
/// 4 tries of 150 ms take at least 600 ms, and the error names the count.
#[test]
fn udp_retries_wait_even_when_the_port_is_closed() -> TestResult {
    let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let started = Instant::now();
    let out = run_client(
        client(
            "udp-client",
            port,
            &["--timeout", "150ms", "--retries", "3"],
        ),
        b"",
    )?;
    let took = started.elapsed();
    assert_one_line(
        &out,
        1,
        &format!("no reply from 127.0.0.1:{port} after 4 tries"),
    );
    assert!(took >= Duration::from_millis(600), "gave up after {took:?}");
    Ok(())
}

/// Names the servers can never answer are refused before anything is sent: as arguments with a
/// usage error (exit 2), from `--stdin` with one line (exit 1); long ones are quoted short.
#[test]
fn names_that_cannot_be_answered_are_refused_at_once() -> TestResult {
    let silent = UdpSocket::bind("127.0.0.1:0")?;
    let udp_port = silent.local_addr()?.port();
    let long = "n".repeat(10_000);
    let started = Instant::now();
    let out = run_client(client("tcp-client", 9, &[&long]), b"")?;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("longer than 536 bytes"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.len() < 400, "{}", out.stderr);
    let out = run_client(client("udp-client", udp_port, &["Hello, Ada!"]), b"")?;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("shaped like a greeting"),
        "{}",
        out.stderr
    );
    let out = run_client(
        client("udp-client", udp_port, &["--stdin"]),
        b"Hello, Ada!\n",
    )?;
    assert_one_line(&out, 1, "shaped like a greeting");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

/// `--stdin` stops reading at the longest name that could be answered: endless input without a
/// newline is one line and exit 1, not a client that grows without bound.
#[test]
fn stdin_lines_are_read_only_up_to_the_longest_name() -> TestResult {
    let tcp = start_server("tcp-server", &["--quiet"])?;
    let endless = vec![b'z'; 4 << 20];
    let out = run_client(
        client("tcp-client", tcp.addr.port(), &["--stdin"]),
        &endless,
    )?;
    assert_eq!(out.stdout_text(), "Welcome!\n");
    assert_one_line(
        &out,
        1,
        "failed to read stdin: a line is longer than 536 bytes",
    );
    let silent = UdpSocket::bind("127.0.0.1:0")?;
    let port = silent.local_addr()?.port();
    let out = run_client(client("udp-client", port, &["--stdin"]), &endless)?;
    assert_one_line(
        &out,
        1,
        "failed to read stdin: a line is longer than 65499 bytes",
    );
    Ok(())
}

/// A timeout too large for the clock is accepted and means "no deadline": both clients work,
/// exit 0, no panic; and the server's idle timeout, even past what a u64 of seconds holds, means
/// no limit.
#[test]
fn a_huge_timeout_is_no_deadline() -> TestResult {
    let huge = "10000000000000000000";
    let huge_for_u64 = "99999999999999999999";
    let tcp = start_server("tcp-server", &["--quiet"])?;
    let out = run_client(
        client("tcp-client", tcp.addr.port(), &["--timeout", huge, "Ada"]),
        b"",
    )?;
    assert_eq!(
        (out.stdout_text(), out.code),
        ("Welcome!\nHello, Ada!\n".into(), Some(0))
    );
    let udp = start_server("udp-server", &["--quiet"])?;
    let out = run_client(
        client("udp-client", udp.addr.port(), &["--timeout", huge, "Ada"]),
        b"",
    )?;
    assert_eq!(
        (out.stdout_text(), out.code),
        ("Hello, Ada!\n".into(), Some(0))
    );
    // For the server too: no idle limit at all.
    let server = start_server("tcp-server", &["--quiet", "--idle-timeout", huge_for_u64])?;
    let out = run_client(client("tcp-client", server.addr.port(), &["Ada"]), b"")?;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut idle = command("tcp-server");
    idle.args(["--port", "0", "--idle-timeout", "0.0000000001"]);
    let out = run_client(idle, b"")?;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("shorter than a nanosecond"),
        "{}",
        out.stderr
    );
    Ok(())
}

/// Each `--help` opens with what that program does, not the package's description.
#[test]
fn each_help_screen_says_what_its_program_does() -> TestResult {
    for (name, first) in [
        ("tcp-server", "Serves the greeting protocol over TCP"),
        ("tcp-client", "Greets names over TCP"),
        ("udp-server", "Serves the greeting protocol over UDP"),
        ("udp-client", "Greets names over UDP"),
    ] {
        let mut help = command(name);
        help.arg("--help");
        let out = run_client(help, b"")?;
        let text = out.stdout_text();
        assert!(text.starts_with(first), "{name}: {text}");
    }
    Ok(())
}

/// `--host` takes the bracketed IPv6 form copied from URLs, and says where the port goes when
/// one is given with the host.
#[test]
fn hosts_take_brackets_and_send_ports_to_port() -> TestResult {
    for (name, host, says) in [
        ("tcp-client", "127.0.0.1:20020", "port with --port"),
        ("udp-server", "[::1]:20020", "port with --port"),
        ("tcp-server", "::1]", "a bracket is out of place"),
    ] {
        let mut command = command(name);
        command.args(["--host", host]);
        let out = run_client(command, b"")?;
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert!(out.stderr.contains(says), "{}", out.stderr);
    }
    if !has_ipv6() {
        skip("this machine has no IPv6 loopback");
        return Ok(());
    }
    let tcp = start_server("tcp-server", &["--quiet", "--host", "[::1]"])?;
    assert_eq!(tcp.addr.ip().to_string(), "::1");
    let out = run_client(
        client("tcp-client", tcp.addr.port(), &["--host", "[::1]", "Ada"]),
        b"",
    )?;
    assert_eq!(
        (out.stdout_text(), out.code),
        ("Welcome!\nHello, Ada!\n".into(), Some(0))
    );
    Ok(())
}

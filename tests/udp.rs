//! The UDP server and client, in process: one datagram each way, empty and maximum-size
//! datagrams, oversize replies, the log line, and the client's filtering and retries.

use std::io;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::common::*;

/// The largest UDP payload over IPv4: the largest request whose reply (8 bytes longer) is sent
/// is 8 bytes shorter.
const MAX_DATAGRAM: usize = 65_507;
use greeting::{ServerId, UdpClient, UdpServer};

/// Sends `payload` to `server` from `socket` and returns the reply's bytes.
fn ask(socket: &UdpSocket, server: std::net::SocketAddr, payload: &[u8]) -> io::Result<Vec<u8>> {
    socket.send_to(payload, server)?;
    let mut buf = vec![0; 70_000];
    let (n, from) = socket.recv_from(&mut buf)?;
    assert_eq!(from, server, "the reply came from somewhere else");
    buf.truncate(n);
    Ok(buf)
}

/// Each datagram gets `Hello, ` + datagram + `!`, sent back to its sender.
#[test]
fn each_datagram_is_greeted() -> TestResult {
    each_ip(|ip| {
        let server = start_udp(UdpServer::bind((ip, 0))?)?;
        let socket = udp_socket_on(ip)?;
        for name in ["Michael", "Tracy", "Sarah"] {
            assert_eq!(
                ask(&socket, server.addr, name.as_bytes())?,
                format!("Hello, {name}!").as_bytes()
            );
        }
        server.stop()
    })
}

/// A server with an id says it before each reply, `[s1] Hello, Ada!`: a fixed 13 bytes (11 and
/// the id's 2) more than the request, whatever the request. A datagram that is such a reply, from
/// any server with an id, is not answered, as a greeting is not; the client takes the reply
/// and returns it whole.
#[test]
fn a_server_with_an_id_says_it_before_each_reply() -> TestResult {
    each_ip(|ip| {
        let id = ServerId::new("s1")?;
        let server = start_udp(UdpServer::bind((ip, 0))?.id(Some(&id)))?;
        let socket = udp_socket_on(ip)?;
        for name in [&b"Ada"[..], b"", b"\xff\n"] {
            let reply = ask(&socket, server.addr, name)?;
            assert_eq!(reply, [b"[s1] Hello, ", name, b"!"].concat());
            assert_eq!(reply.len(), name.len() + 13);
        }
        socket.send_to(b"[s2] Hello, x!", server.addr)?;
        assert_eq!(ask(&socket, server.addr, b"y")?, b"[s1] Hello, y!");
        let mut client = UdpClient::connect(server.addr, TIMEOUT)?;
        assert_eq!(client.greet(b"Ada")?, b"[s1] Hello, Ada!");
        server.stop()
    })
}

/// Bytes are bytes: invalid UTF-8 and newlines come back as they went.
#[test]
fn datagrams_are_echoed_byte_for_byte() -> TestResult {
    each_ip(|ip| {
        let server = start_udp(UdpServer::bind((ip, 0))?)?;
        let socket = udp_socket_on(ip)?;
        assert_eq!(
            ask(&socket, server.addr, b"\xff\n\x00")?,
            b"Hello, \xff\n\x00!"
        );
        server.stop()
    })
}

/// A zero-length datagram is answered with `Hello, !`.
#[test]
fn an_empty_datagram_is_answered() -> TestResult {
    each_ip(|ip| {
        let server = start_udp(UdpServer::bind((ip, 0))?)?;
        let socket = udp_socket_on(ip)?;
        assert_eq!(ask(&socket, server.addr, b"")?, b"Hello, !");
        server.stop()
    })
}

/// The largest datagram whose reply still fits is answered in full; a reply that would not fit
/// is dropped, not truncated, and the server goes on answering. IPv4 only: over IPv6 the same
/// reply fits (a payload may be 65,527 bytes there).
#[test]
fn oversize_replies_are_dropped_not_truncated() -> TestResult {
    if !udp_carries(MAX_DATAGRAM)? {
        return Ok(());
    }
    let reports = CapturedLog::new();
    let server = start_udp(UdpServer::bind("127.0.0.1:0")?.reports(reports.log()))?;
    let socket = udp_socket()?;
    let fits = vec![b'a'; MAX_DATAGRAM - 8];
    let reply = ask(&socket, server.addr, &fits)?;
    assert_eq!(reply.len(), MAX_DATAGRAM);
    assert_eq!(
        (&reply[..7], &reply[reply.len() - 1..]),
        (&b"Hello, "[..], &b"!"[..])
    );

    let too_big = vec![b'b'; MAX_DATAGRAM];
    socket.send_to(&too_big, server.addr)?;
    // The next reply must be the one to the small datagram: the big one got none.
    assert_eq!(ask(&socket, server.addr, b"after")?, b"Hello, after!");
    server.stop()?;
    let client = socket.local_addr()?;
    let report = reports.text()?;
    assert!(
        report.starts_with(&format!("{client}: dropped a reply of 65515 bytes: ")),
        "{report}"
    );
    Ok(())
}

/// The server logs the original's line for each datagram, naming the sender.
#[test]
fn each_datagram_is_logged_like_the_original() -> TestResult {
    each_ip(|ip| {
        let captured = CapturedLog::new();
        let server = start_udp(UdpServer::bind((ip, 0))?.log(captured.log()))?;
        let socket = udp_socket_on(ip)?;
        ask(&socket, server.addr, b"Michael")?;
        ask(&socket, server.addr, b"Tracy")?;
        server.stop()?;
        let me = socket.local_addr()?;
        assert_eq!(
            captured.text()?,
            format!("Received from {me}.\nReceived from {me}.\n")
        );
        Ok(())
    })
}

/// An IPv4 client of a server on a dual-stack socket (bound to `::ffff:127.0.0.1`, loopback
/// only) is answered, and logged in its IPv4 form, not as `[::ffff:127.0.0.1]:PORT`.
#[test]
fn ipv4_clients_of_a_dual_stack_socket_are_logged_as_ipv4() -> TestResult {
    let server = match UdpServer::bind("[::ffff:127.0.0.1]:0") {
        Ok(server) => server,
        Err(err) => {
            skip(&format!("no dual-stack socket here: {err}"));
            return Ok(());
        }
    };
    let captured = CapturedLog::new();
    let server = start_udp(server.log(captured.log()))?;
    let socket = udp_socket()?;
    let ipv4 = std::net::SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    assert_eq!(ask(&socket, ipv4, b"Michael")?, b"Hello, Michael!");
    server.stop()?;
    let me = socket.local_addr()?;
    assert_eq!(captured.text()?, format!("Received from {me}.\n"));
    Ok(())
}

/// The library client returns each reply; names may be empty or non-ASCII.
#[test]
fn the_client_gets_each_reply() -> TestResult {
    each_ip(|ip| {
        let server = start_udp(UdpServer::bind((ip, 0))?)?;
        let mut client = UdpClient::connect(server.addr, TIMEOUT)?.retries(0);
        assert_eq!(client.greet(b"Michael")?, b"Hello, Michael!");
        assert_eq!(client.greet("Zoë".as_bytes())?, "Hello, Zoë!".as_bytes());
        assert_eq!(client.greet(b"")?, b"Hello, !");
        server.stop()
    })
}

/// With nobody answering, the client gives up after 1 + retries tries, each one timeout long.
#[test]
fn the_client_gives_up_after_its_retries() -> TestResult {
    each_ip(|ip| {
        let silent = udp_socket_on(ip)?;
        let addr = silent.local_addr()?;
        let timeout = Duration::from_millis(100);
        let mut client = UdpClient::connect(addr, timeout)?.retries(2);
        let started = Instant::now();
        let err = client.greet(b"Ada").unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            err.to_string(),
            format!("no reply from {addr} after 3 tries")
        );
        assert!(elapsed >= timeout * 3 && elapsed < TIMEOUT, "{elapsed:?}");
        // Each try sent the name once.
        let mut buf = [0; 16];
        for _ in 0..3 {
            let (n, _) = silent.recv_from(&mut buf)?;
            assert_eq!(&buf[..n], b"Ada");
        }
        Ok(())
    })
}

/// A reply for another name (a late answer to an earlier try) is discarded: only the greeting for
/// the name in flight is accepted.
#[test]
fn the_client_ignores_replies_for_other_names() -> TestResult {
    each_ip(|ip| {
        let fake = udp_socket_on(ip)?;
        let mut client = UdpClient::connect(fake.local_addr()?, TIMEOUT)?.retries(0);
        let answering = std::thread::spawn(move || -> io::Result<()> {
            let mut buf = [0; 64];
            let (_, peer) = fake.recv_from(&mut buf)?;
            fake.send_to(b"Hello, Michael!", peer)?;
            fake.send_to(b"garbage", peer)?;
            fake.send_to(b"Hello, Tracy!", peer)?;
            Ok(())
        });
        assert_eq!(client.greet(b"Tracy")?, b"Hello, Tracy!");
        answering.join().expect("fake server should not panic")?;
        Ok(())
    })
}

/// Datagrams from a port below 1024 are never answered: that is how reflection loops start.
#[test]
fn the_server_ignores_privileged_source_ports() -> TestResult {
    // Binding a low port needs root; without it there is nothing to test from.
    let low = (900..1000).find_map(|port| UdpSocket::bind(("127.0.0.1", port)).ok());
    let Some(low) = low else {
        skip("cannot bind a port below 1024 here (not root)");
        return Ok(());
    };
    low.set_read_timeout(Some(Duration::from_millis(300)))?;
    let reports = CapturedLog::new();
    let server = start_udp(UdpServer::bind("127.0.0.1:0")?.reports(reports.log()))?;
    low.send_to(b"forged", server.addr)?;
    let mut buf = [0; 64];
    let answer = low.recv_from(&mut buf);
    assert!(
        answer.is_err(),
        "a privileged port was answered: {answer:?}"
    );
    // A normal client is still served.
    assert_eq!(ask(&udp_socket()?, server.addr, b"x")?, b"Hello, x!");
    server.stop()?;
    assert_eq!(
        reports.text()?,
        format!(
            "{}: dropped a datagram from a port below 1024\n",
            low.local_addr()?
        )
    );
    Ok(())
}

/// A server that starts after the client's first tries is still reached: each try waits its
/// timeout before the next, so retries bridge a restart instead of failing in a burst.
#[test]
fn retries_bridge_a_server_that_starts_late() -> TestResult {
    each_ip(|ip| {
        let port = UdpSocket::bind((ip, 0))?.local_addr()?.port();
        let mut client = UdpClient::connect((ip, port), Duration::from_millis(200))?.retries(20);
        let asking = std::thread::spawn(move || client.greet(b"Ada"));
        std::thread::sleep(Duration::from_millis(700));
        let server = start_udp(UdpServer::bind((ip, port))?)?;
        let reply = asking.join().expect("client thread should not panic")?;
        assert_eq!(reply, b"Hello, Ada!");
        server.stop()
    })
}

/// Against a server that answers with something else (the original cuts a request at 1,024
/// bytes), the client says what came instead of "no reply", both quoted short.
#[test]
fn the_client_says_what_came_instead() -> TestResult {
    each_ip(|ip| {
        let fake = udp_socket_on(ip)?;
        let addr = fake.local_addr()?;
        let truncating = std::thread::spawn(move || -> io::Result<()> {
            // The original's recvfrom(1024), done by hand: Windows fails a receive into a buffer
            // too small instead of cutting the datagram short.
            let mut buf = [0; 2048];
            for _ in 0..2 {
                let (n, peer) = fake.recv_from(&mut buf)?;
                let mut reply = b"Hello, ".to_vec();
                reply.extend_from_slice(&buf[..n.min(1024)]);
                reply.push(b'!');
                fake.send_to(&reply, peer)?;
            }
            Ok(())
        });
        let mut client = UdpClient::connect(addr, Duration::from_millis(300))?.retries(1);
        let err = client.greet(&[b'a'; 1500]).unwrap_err();
        truncating.join().expect("fake server should not panic")?;
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let a60 = "a".repeat(53);
        assert_eq!(
            err.to_string(),
            format!(
                r#"expected "Hello, {a60}"... (1508 bytes) but got "Hello, {a60}"... (1032 bytes); they differ from byte 1031 on: "{}"... (477 bytes) against "!""#,
                "a".repeat(60)
            )
        );
        Ok(())
    })
}

/// Names the server will never answer (shaped like a greeting, or too long for a reply to fit)
/// are refused at once, before anything is sent.
#[test]
fn the_client_refuses_names_the_server_never_answers() -> TestResult {
    each_ip(|ip| {
        let silent = udp_socket_on(ip)?;
        let mut client = UdpClient::connect(silent.local_addr()?, TIMEOUT)?.retries(3);
        let started = Instant::now();
        for name in [&b"Hello, Ada!"[..], &[b'x'; 65_500]] {
            let err = client.greet(name).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().len() < 200, "{err}");
        }
        assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
        silent.set_read_timeout(Some(Duration::from_millis(100)))?;
        assert!(silent.recv_from(&mut [0; 16]).is_err(), "a name was sent");
        Ok(())
    })
}

/// A server on a host with several addresses may answer from another address than the one the
/// client sent to: that reply is taken, while the exact greeting from any other port is not.
/// Linux only: it sends from 127.0.0.2, which other systems do not configure by default.
#[cfg(target_os = "linux")]
#[test]
fn a_reply_from_another_address_of_the_server_is_taken() -> TestResult {
    let front = udp_socket()?;
    let addr = front.local_addr()?;
    let other_address = UdpSocket::bind(("127.0.0.2", addr.port()))?;
    let other_port = UdpSocket::bind("127.0.0.2:0")?;
    let answering = std::thread::spawn(move || -> io::Result<()> {
        let mut buf = [0; 64];
        let (_, peer) = front.recv_from(&mut buf)?;
        other_port.send_to(b"Hello, Ada!", peer)?;
        let (_, peer) = front.recv_from(&mut buf)?;
        other_address.send_to(b"Hello, Bob!", peer)?;
        Ok(())
    });
    let mut client = UdpClient::connect(addr, Duration::from_millis(300))?.retries(0);
    let err = client.greet(b"Ada").unwrap_err();
    assert_eq!(err.to_string(), format!("no reply from {addr} after 1 try"));
    assert_eq!(client.greet(b"Bob")?, b"Hello, Bob!");
    answering.join().expect("fake server should not panic")?;
    Ok(())
}

/// A timeout too large for the clock means waiting without a deadline, not a panic.
#[test]
fn a_huge_timeout_is_no_deadline() -> TestResult {
    each_ip(|ip| {
        let server = start_udp(UdpServer::bind((ip, 0))?)?;
        let mut client =
            UdpClient::connect(server.addr, Duration::from_secs(u64::MAX / 2))?.retries(0);
        assert_eq!(client.greet(b"Ada")?, b"Hello, Ada!");
        server.stop()
    })
}

/// A timeout shorter than a round trip still lets each try read its reply, so an answered try
/// counts, and retries stay a try every 10 ms at most instead of a burst: 21 tries of a
/// 10-microsecond timeout take at least 210 ms and send 21 datagrams.
#[test]
fn a_timeout_below_a_round_trip_still_reads_and_never_bursts() -> TestResult {
    each_ip(|ip| {
        let server = start_udp(UdpServer::bind((ip, 0))?)?;
        let tiny = Duration::from_micros(10);
        let mut client = UdpClient::connect(server.addr, tiny)?.retries(100_000);
        assert_eq!(client.greet(b"Ada")?, b"Hello, Ada!");
        server.stop()?;
        let silent = udp_socket_on(ip)?;
        let mut client = UdpClient::connect(silent.local_addr()?, tiny)?.retries(20);
        let started = Instant::now();
        let err = client.greet(b"Bob").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(
            started.elapsed() >= UdpClient::SHORTEST_TRY * 21,
            "{:?}",
            started.elapsed()
        );
        silent.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut sent = 0;
        while silent.recv_from(&mut [0; 16]).is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 21);
        Ok(())
    })
}

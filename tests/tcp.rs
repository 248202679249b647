//! The TCP server and client, in process: the wire bytes of both framing modes, concurrency, the
//! log lines, and the client's handling of replies that come in pieces or not at all.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;
use greeting::{ConnectError, ProxyHeader, ServerId, TcpClient, TcpServer};

/// A client that speaks like the original (bare names, then `exit`) gets the original's replies,
/// and `exit` makes the server close the connection.
#[test]
fn original_style_session_gets_the_original_replies() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        let mut stream = connect_welcomed(server.addr)?;
        for name in ["Jaber", "Katy", "Betty", "huangxin"] {
            let expected = format!("Hello, {name}!");
            exchange(&mut stream, name.as_bytes(), expected.as_bytes())?;
        }
        stream.write_all(b"exit")?;
        assert_eq!(read_to_close(&mut stream)?, b"");
        server.stop()
    })
}

/// Ending the stream ends the connection: the server closes its side too.
#[test]
fn end_of_stream_closes_the_connection() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        let mut stream = connect_welcomed(server.addr)?;
        exchange(&mut stream, b"Ada", b"Hello, Ada!")?;
        stream.shutdown(Shutdown::Write)?;
        assert_eq!(read_to_close(&mut stream)?, b"");
        server.stop()
    })
}

/// A newline switches to line mode: each line is answered with its own line ending, CRLF or LF.
#[test]
fn lines_are_answered_with_their_own_endings() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        let mut stream = connect_welcomed(server.addr)?;
        exchange(&mut stream, b"Bob\n", b"Hello, Bob!\n")?;
        exchange(&mut stream, b"Amy\r\n", b"Hello, Amy!\r\n")?;
        stream.write_all(b"exit\r\n")?;
        assert_eq!(read_to_close(&mut stream)?, b"");
        server.stop()
    })
}

/// Several lines in one write are several messages; the replies come back in order.
#[test]
fn pipelined_lines_get_one_reply_each_in_order() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        let mut stream = connect_welcomed(server.addr)?;
        stream.write_all(b"a\nb\r\n\nc\nexit\nnever\n")?;
        assert_eq!(
            read_to_close(&mut stream)?,
            b"Hello, a!\nHello, b!\r\nHello, !\nHello, c!\n"
        );
        server.stop()
    })
}

/// `exit` with more input behind it still gets the replies before it, whatever follows and
/// however late the client reads: the server drains what comes after the exit word before it
/// closes, so the close is no reset that would throw the replies away.
#[test]
fn exit_with_more_behind_it_keeps_the_replies_before_it() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        let mut stream = connect_welcomed(server.addr)?;
        stream.write_all(b"Ada\nexit\n")?;
        stream.write_all(&vec![b'x'; 200_000])?;
        stream.shutdown(Shutdown::Write)?;
        // The client reads late, as a slow reader would: the rest has all arrived by then.
        thread::sleep(Duration::from_millis(200));
        assert_eq!(read_to_close(&mut stream)?, b"Hello, Ada!\n");
        server.stop()
    })
}

/// A line split across writes is answered once, when its end arrives; a raw message before the
/// first newline is still answered raw.
#[test]
fn a_split_line_waits_for_its_end() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        let mut stream = connect_welcomed(server.addr)?;
        exchange(&mut stream, b"raw", b"Hello, raw!")?;
        exchange(&mut stream, b"x\n", b"Hello, x!\n")?;
        stream.write_all(b"huang")?;
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let early = read_n(&mut stream, 1);
        assert!(early.is_err(), "a partial line was answered: {early:?}");
        stream.set_read_timeout(Some(TIMEOUT))?;
        exchange(&mut stream, b"xin\n", b"Hello, huangxin!\n")?;
        server.stop()
    })
}

/// A partial line left when the peer half-closes is still answered, without a line ending.
#[test]
fn a_partial_line_at_end_of_stream_is_answered() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        let mut stream = connect_welcomed(server.addr)?;
        stream.write_all(b"Bob\nAmy")?;
        stream.shutdown(Shutdown::Write)?;
        assert_eq!(read_to_close(&mut stream)?, b"Hello, Bob!\nHello, Amy!");
        server.stop()
    })
}

/// Invalid UTF-8 is echoed byte for byte and the connection goes on (the original's thread dies).
#[test]
fn invalid_utf8_is_echoed_and_the_connection_survives() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        let mut stream = connect_welcomed(server.addr)?;
        exchange(&mut stream, b"\xff\xfe", b"Hello, \xff\xfe!")?;
        exchange(&mut stream, b"Zo\xc3\xab\n", b"Hello, Zo\xc3\xab!\n")?;
        exchange(&mut stream, b"\xc3\n", b"Hello, \xc3!\n")?;
        server.stop()
    })
}

/// The library client greets non-ASCII names and says exit; the server then closes.
#[test]
fn the_client_greets_names_and_exits() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        let mut client = TcpClient::connect(server.addr, TIMEOUT)?;
        assert_eq!(client.greet("黄鑫".as_bytes())?, "Hello, 黄鑫!".as_bytes());
        assert_eq!(client.greet(b"a b\tc")?, b"Hello, a b\tc!");
        client.exit()?;
        server.stop()
    })
}

/// Clients against a server with a delay are served at once, each on its own thread: four
/// clients of two names each take about as long as one, not four times as long.
#[test]
fn clients_are_served_concurrently_despite_the_delay() -> TestResult {
    let delay = Duration::from_millis(400);
    let server = start_tcp(TcpServer::bind("127.0.0.1:0")?.delay(delay))?;
    let addr = server.addr;
    let started = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || -> io::Result<()> {
                let mut client = TcpClient::connect(addr, TIMEOUT)?;
                for round in 0..2 {
                    let name = format!("c{i}r{round}");
                    assert_eq!(
                        client.greet(name.as_bytes())?,
                        format!("Hello, {name}!").as_bytes()
                    );
                }
                client.exit()
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread should not panic")?;
    }
    let elapsed = started.elapsed();
    // One client alone needs 2 delays (0.8 s); served one after another they would need 3.2 s.
    assert!(
        elapsed >= delay * 2,
        "{elapsed:?}: the delay was not applied"
    );
    assert!(
        elapsed < delay * 6,
        "{elapsed:?}: clients were not served concurrently"
    );
    server.stop()
}

/// Every pipelined line waits its own delay, as the original paces each reply.
#[test]
fn the_delay_paces_each_reply() -> TestResult {
    let delay = Duration::from_millis(150);
    let server = start_tcp(TcpServer::bind("127.0.0.1:0")?.delay(delay))?;
    let mut stream = connect_welcomed(server.addr)?;
    let started = Instant::now();
    stream.write_all(b"a\nb\nc\n")?;
    assert_eq!(
        read_n(&mut stream, 30)?,
        b"Hello, a!\nHello, b!\nHello, c!\n"
    );
    assert!(started.elapsed() >= delay * 3, "{:?}", started.elapsed());
    server.stop()
}

/// The server logs the original's two lines per connection, naming the client's own address.
#[test]
fn each_connection_is_logged_like_the_original() -> TestResult {
    each_ip(|ip| {
        let captured = CapturedLog::new();
        let server = start_tcp(TcpServer::bind((ip, 0))?.log(captured.log()))?;
        let mut stream = connect_welcomed(server.addr)?;
        let me = stream.local_addr()?;
        stream.write_all(b"exit")?;
        assert_eq!(read_to_close(&mut stream)?, b"");
        // s.close(), as the original client does once it has sent the exit word.
        drop(stream);
        server.stop()?;
        assert_eq!(
            captured.lines(2)?,
            format!("Accept new connection from {me}...\nConnection from {me} closed.\n")
        );
        Ok(())
    })
}

/// A socket for IPv4 and IPv6 alike (bound to `::ffff:127.0.0.1`, loopback only), if this host
/// makes one by default; says so when not (Windows makes IPv6 sockets IPv6-only).
fn dual_stack<T>(bind: io::Result<T>) -> Option<T> {
    bind.map_err(|err| skip(&format!("no dual-stack socket here: {err}")))
        .ok()
}

/// An IPv4 client of a dual-stack server is logged in its IPv4 form, `127.0.0.1:PORT`, not as
/// `[::ffff:127.0.0.1]:PORT`; so is one that a balancer on such a socket names in a version 1
/// header (`PROXY TCP6 ::ffff:127.0.0.1 …`, as nginx and HAProxy send) and greets.
#[test]
fn ipv4_clients_of_a_dual_stack_socket_are_logged_as_ipv4() -> TestResult {
    for proxied in [false, true] {
        let Some(server) = dual_stack(TcpServer::bind("[::ffff:127.0.0.1]:0")) else {
            return Ok(());
        };
        let log = CapturedLog::new();
        let server = start_tcp(server.proxy_protocol(proxied).log(log.log()))?;
        let me = match proxied {
            false => {
                let ipv4 = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
                let mut plain = connect_welcomed(ipv4)?;
                plain.write_all(b"exit")?;
                assert_eq!(read_to_close(&mut plain)?, b"");
                plain.local_addr()?
            }
            true => {
                let mut client =
                    TcpClient::connect_with_proxy_header(server.addr, TIMEOUT, ProxyHeader::V1)?;
                assert_eq!(client.greet(b"Ada")?, b"Hello, Ada!");
                let me = client.local_addr()?;
                client.exit()?;
                assert!(me.ip().to_string().starts_with("::ffff:"), "{me}");
                SocketAddr::new(me.ip().to_canonical(), me.port())
            }
        };
        server.stop()?;
        assert!(me.is_ipv4());
        assert_eq!(
            log.text()?,
            format!("Accept new connection from {me}...\nConnection from {me} closed.\n")
        );
    }
    Ok(())
}

/// A fake server on `ip` that sends `script` pieces with pauses between them, then closes;
/// returns its address.
fn scripted_server(
    ip: IpAddr,
    script: &'static [&'static [u8]],
) -> io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind((ip, 0))?;
    let addr = listener.local_addr()?;
    thread::spawn(move || -> io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        for piece in script {
            stream.write_all(piece)?;
            thread::sleep(Duration::from_millis(30));
        }
        // Take what the client sent, so the close is a clean FIN rather than a reset.
        stream.set_read_timeout(Some(Duration::from_millis(300)))?;
        let _ = stream.read(&mut [0; 64]);
        Ok(())
    });
    Ok(addr)
}

/// A welcome and a reply that arrive in pieces are put together before the client returns them.
#[test]
fn the_client_reassembles_replies_sent_in_pieces() -> TestResult {
    each_ip(|ip| {
        let addr = scripted_server(ip, &[b"Wel", b"come!", b"Hel", b"lo, A", b"da!"])?;
        let mut client = TcpClient::connect(addr, TIMEOUT)?;
        assert_eq!(client.greet(b"Ada")?, b"Hello, Ada!");
        Ok(())
    })
}

/// A reply that is not the greeting asked for is an `InvalidData` error that shows what came.
#[test]
fn the_client_rejects_a_wrong_reply() -> TestResult {
    each_ip(|ip| {
        let addr = scripted_server(ip, &[b"Welcome!", b"Hello, Bob!"])?;
        let mut client = TcpClient::connect(addr, TIMEOUT)?;
        let err = client.greet(b"Ada").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            r#"expected "Hello, Ada!" but got "Hello, Bob!""#
        );
        Ok(())
    })
}

/// A reply that differs only far in, as one a server answered in two pieces does, is shown
/// where the two part and with the true lengths, not as two identical quotes.
#[test]
fn a_wrong_long_reply_is_shown_where_it_differs() -> TestResult {
    each_ip(|ip| {
        let piece = |n: usize| [&b"Hello, "[..], &vec![b'a'; n], b"!"].concat();
        // Both pieces in one write, so that all of it is there when the client looks.
        let two: &'static [u8] = Box::leak([piece(200), piece(100)].concat().into_boxed_slice());
        let script: &'static [&'static [u8]] = Box::leak(Box::new([b"Welcome!", two]));
        let addr = scripted_server(ip, script)?;
        let mut client = TcpClient::connect(addr, TIMEOUT)?;
        let err = client.greet(&[b'a'; 300]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(msg.contains("... (308 bytes) but got "), "{msg}");
        assert!(
            msg.contains("... (316 bytes); they differ from byte 207 on: "),
            "{msg}"
        );
        assert!(msg.ends_with(r#"... (101 bytes) against "!Hello, aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"... (109 bytes)"#), "{msg}");
        Ok(())
    })
}

/// A wrong reply longer than the client looks at says so (`and more`) instead of passing what
/// it read for the whole.
#[test]
fn a_wrong_reply_longer_than_the_look_says_there_was_more() -> TestResult {
    each_ip(|ip| {
        let long: &'static [u8] = Box::leak([&b"Hello, x?"[..], &[b'X'; 100_000]].concat().into());
        let script: &'static [&'static [u8]] = Box::leak(Box::new([b"Welcome!", long]));
        let addr = scripted_server(ip, script)?;
        let mut client = TcpClient::connect(addr, TIMEOUT)?;
        let err = client.greet(b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(msg.ends_with("... (1033 bytes) and more"), "{msg}");
        Ok(())
    })
}

/// A server that hangs up in the middle of a reply gives `UnexpectedEof`, not a hang.
#[test]
fn the_client_reports_a_hang_up_mid_reply() -> TestResult {
    each_ip(|ip| {
        let addr = scripted_server(ip, &[b"Welcome!", b"Hello, A"])?;
        let mut client = TcpClient::connect(addr, TIMEOUT)?;
        let err = client.greet(b"Ada").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(err.to_string(), r#"closed the connection after "Hello, A""#);
        Ok(())
    })
}

/// A server with an id says it before its welcome, `[s1] Welcome!`, and nowhere else; the
/// client takes that welcome, keeps it as it came, and says which server it reached.
#[test]
fn a_server_with_an_id_says_it_before_its_welcome() -> TestResult {
    each_ip(|ip| {
        let id = ServerId::new("s1")?;
        let server = start_tcp(TcpServer::bind((ip, 0))?.id(Some(&id)))?;
        let mut stream = connect(server.addr)?;
        assert_eq!(read_n(&mut stream, 13)?, b"[s1] Welcome!");
        exchange(&mut stream, b"Ada", b"Hello, Ada!")?;
        let mut client = TcpClient::connect(server.addr, TIMEOUT)?;
        assert_eq!(client.welcome(), b"[s1] Welcome!");
        assert_eq!(client.server_id(), Some(&b"s1"[..]));
        assert_eq!(client.greet(b"Bob")?, b"Hello, Bob!");
        server.stop()
    })
}

/// A server that says nothing makes the client fail with a timeout that names the limit.
#[test]
fn the_client_times_out_on_a_silent_server() -> TestResult {
    each_ip(|ip| {
        let listener = TcpListener::bind((ip, 0))?;
        let started = Instant::now();
        let err =
            TcpClient::connect(listener.local_addr()?, Duration::from_millis(200)).unwrap_err();
        let ConnectError::Welcome(err) = err else {
            panic!("connected, yet {err:?}");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(err.to_string(), "no answer within 200ms");
        assert!(started.elapsed() < TIMEOUT);
        Ok(())
    })
}

/// No connection and a connection without a welcome are two findings: a port nobody listens on
/// is the first; a listener that closes at once, or says something else, the second.
#[test]
fn no_connection_and_no_welcome_are_told_apart() -> TestResult {
    each_ip(|ip| {
        let closed = TcpListener::bind((ip, 0))?.local_addr()?;
        let refused = TcpClient::connect(closed, Duration::from_millis(500)).unwrap_err();
        assert!(matches!(refused, ConnectError::Connect(_)), "{refused:?}");
        for (says, kind, why) in [
            (
                &b""[..],
                io::ErrorKind::UnexpectedEof,
                "closed the connection".to_string(),
            ),
            (
                b"SSH-2.0-OpenSSH_9.2\r\n",
                io::ErrorKind::InvalidData,
                r#"expected "Welcome!" but got "SSH-2.0-OpenSSH_9.2\r\n""#.to_string(),
            ),
        ] {
            let listener = TcpListener::bind((ip, 0))?;
            let addr = listener.local_addr()?;
            let speaker = std::thread::spawn(move || -> io::Result<()> {
                let (mut stream, _) = listener.accept()?;
                stream.write_all(says)?;
                stream.shutdown(Shutdown::Write)
            });
            let err = TcpClient::connect(addr, TIMEOUT).unwrap_err();
            speaker
                .join()
                .expect("the listener's thread should not panic")?;
            let ConnectError::Welcome(err) = err else {
                panic!("connected, yet {err:?}");
            };
            assert_eq!((err.kind(), err.to_string()), (kind, why));
        }
        Ok(())
    })
}

/// Names the protocol cannot carry bare are refused before anything is sent.
#[test]
fn the_client_refuses_names_it_cannot_send() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        let mut client = TcpClient::connect(server.addr, TIMEOUT)?;
        for bad in [&b""[..], b"exit", b"two\nlines"] {
            assert_eq!(
                client.greet(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
        assert_eq!(client.greet(b"still here")?, b"Hello, still here!");
        server.stop()
    })
}

/// `stop` ends `run` even when no client ever connected.
#[test]
fn stop_ends_an_idle_server() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        server.stop()
    })
}

/// A reply that came in pieces does not shorten the next one's timeout: with a 2 s timeout, a
/// welcome whose pieces come 1.2 s late and then a reply that takes 1.4 s both arrive in time.
#[test]
fn each_reply_gets_the_whole_timeout() -> TestResult {
    each_ip(|ip| {
        let listener = TcpListener::bind((ip, 0))?;
        let addr = listener.local_addr()?;
        let fake = thread::spawn(move || -> io::Result<()> {
            let (mut stream, _) = listener.accept()?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            thread::sleep(Duration::from_millis(1200));
            stream.write_all(b"Wel")?;
            thread::sleep(Duration::from_millis(30));
            stream.write_all(b"come!")?;
            let n = stream.read(&mut [0; 64])?;
            assert_eq!(n, 3, "the name should come in one read");
            thread::sleep(Duration::from_millis(1400));
            stream.write_all(b"Hello, Ada!")?;
            let _ = stream.read(&mut [0; 64]);
            Ok(())
        });
        let mut client = TcpClient::connect(addr, Duration::from_secs(2))?;
        assert_eq!(client.greet(b"Ada")?, b"Hello, Ada!");
        client.exit()?;
        fake.join().expect("fake server should not panic")?;
        Ok(())
    })
}

/// A name longer than one TCP segment is sure to carry (536 bytes) could reach the server in
/// two reads and come back as two replies: it is refused before anything is sent, with a
/// message that quotes only the start of it.
#[test]
fn the_client_refuses_a_name_longer_than_one_segment() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        let mut client = TcpClient::connect(server.addr, TIMEOUT)?;
        assert_eq!(client.greet(&[b'a'; 536])?.len(), 536 + 8);
        for long in [537, 10_000] {
            let err = client.greet(&vec![b'b'; long]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            let msg = err.to_string();
            assert!(
                msg.contains("longer than 536 bytes")
                    && msg.contains(&format!("({long} bytes)"))
                    && msg.len() < 200,
                "{msg}"
            );
        }
        assert_eq!(client.greet(b"still here")?, b"Hello, still here!");
        server.stop()
    })
}

/// A timeout too large for the clock (about 300 billion years) means no deadline, not a panic.
#[test]
fn a_huge_timeout_is_no_deadline() -> TestResult {
    each_ip(|ip| {
        let server = start_tcp(TcpServer::bind((ip, 0))?)?;
        let mut client = TcpClient::connect(server.addr, Duration::from_secs(u64::MAX / 2))?;
        assert_eq!(client.greet(b"Ada")?, b"Hello, Ada!");
        client.exit()?;
        server.stop()
    })
}

/// A server told to expect PROXY headers, with its log and reports captured.
fn proxied_server() -> io::Result<(Served, CapturedLog, CapturedLog)> {
    let (log, reports) = (CapturedLog::new(), CapturedLog::new());
    let server = TcpServer::bind("127.0.0.1:0")?
        .proxy_protocol(true)
        .log(log.log())
        .reports(reports.log());
    Ok((start_tcp(server)?, log, reports))
}

/// Behind a balancer, the header's client stands for the connection: nothing is said before
/// the whole header has come, the bytes right behind it are the first message, and the log
/// lines name the client, version 1 and version 2 alike.
#[test]
fn a_proxy_header_names_the_client_in_the_log() -> TestResult {
    let (server, log, _) = proxied_server()?;
    let mut v1 = connect(server.addr)?;
    v1.write_all(b"PROXY TCP4 198.51.100.7 192.0.2.1 40123 99")?;
    v1.set_read_timeout(Some(Duration::from_millis(200)))?;
    assert!(
        read_n(&mut v1, 1).is_err(),
        "the server spoke before the whole header"
    );
    v1.set_read_timeout(Some(TIMEOUT))?;
    v1.write_all(b"99\r\nAda")?;
    assert_eq!(read_n(&mut v1, 8 + 11)?, b"Welcome!Hello, Ada!");
    v1.write_all(b"exit")?;
    assert_eq!(read_to_close(&mut v1)?, b"");
    drop(v1);
    log.lines(2)?;
    let mut v2 = connect(server.addr)?;
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24".to_vec();
    header.extend_from_slice(&"2001:db8::7".parse::<std::net::Ipv6Addr>()?.octets());
    header.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    header.extend_from_slice(&[0x9c, 0x40, 0x27, 0x0f]);
    v2.write_all(&header)?;
    assert_eq!(read_n(&mut v2, 8)?, b"Welcome!");
    exchange(&mut v2, b"Bob", b"Hello, Bob!")?;
    v2.shutdown(Shutdown::Write)?;
    assert_eq!(read_to_close(&mut v2)?, b"");
    server.stop()?;
    assert_eq!(
        log.lines(4)?,
        "Accept new connection from 198.51.100.7:40123...\n\
         Connection from 198.51.100.7:40123 closed.\n\
         Accept new connection from [2001:db8::7]:40000...\n\
         Connection from [2001:db8::7]:40000 closed.\n"
    );
    Ok(())
}

/// A balancer's health check (HAProxy's version 2 LOCAL header, then a reset once it has read
/// `Welcome!`) is welcomed, and leaves no line on stdout or stderr.
#[test]
fn a_health_check_is_welcomed_and_leaves_no_line() -> TestResult {
    let (server, log, reports) = proxied_server()?;
    for _ in 0..3 {
        let mut check = connect(server.addr)?;
        check.write_all(b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00")?;
        assert_eq!(read_n(&mut check, 8)?, b"Welcome!");
        // Unread bytes at the close make it a reset, as HAProxy's checks end.
        check.write_all(b"x")?;
        thread::sleep(Duration::from_millis(20));
    }
    let mut client = TcpClient::connect_with_proxy_header(server.addr, TIMEOUT, ProxyHeader::V2)?;
    let me = client_port(&client)?;
    assert_eq!(client.greet(b"Ada")?, b"Hello, Ada!");
    client.exit()?;
    server.stop()?;
    assert_eq!(
        log.text()?,
        format!(
            "Accept new connection from 127.0.0.1:{me}...\nConnection from 127.0.0.1:{me} closed.\n"
        )
    );
    assert_eq!(reports.text()?, "");
    Ok(())
}

/// The local port of a client's connection, which its PROXY header names as the source.
fn client_port(client: &TcpClient) -> io::Result<u16> {
    client.local_addr().map(|addr| addr.port())
}

/// A connection whose first bytes are not a PROXY header, or whose header never ends, is
/// closed without `Welcome!`, and said so once on stderr.
#[test]
fn a_connection_without_a_proxy_header_is_closed_unwelcomed() -> TestResult {
    let (server, _, reports) = proxied_server()?;
    let mut plain = connect(server.addr)?;
    plain.write_all(b"Ada\n")?;
    assert_eq!(read_to_close(&mut plain)?, b"");
    let started = Instant::now();
    let mut silent = connect(server.addr)?;
    silent.write_all(b"PROXY TCP4 198.51.100.7")?;
    assert_eq!(read_to_close(&mut silent)?, b"");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.stop()?;
    let text = reports.text()?;
    let plain_port = plain.local_addr()?.port();
    assert!(
        text.starts_with(&format!(
            "127.0.0.1:{plain_port}: closed without a welcome: not a PROXY protocol header\n"
        )),
        "{text}"
    );
    Ok(())
}

/// A server not told to expect headers never looks for one: a PROXY line is a name like any.
#[test]
fn without_proxy_protocol_a_header_is_just_a_name() -> TestResult {
    let server = start_tcp_server()?;
    let mut stream = connect_welcomed(server.addr)?;
    exchange(
        &mut stream,
        b"PROXY TCP4 198.51.100.7 192.0.2.1 40123 9999\r\n",
        b"Hello, PROXY TCP4 198.51.100.7 192.0.2.1 40123 9999!\r\n",
    )?;
    server.stop()
}

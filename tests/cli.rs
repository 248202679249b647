//! The real binaries, end to end: the console lines of the tutorial's transcripts, `--stdin`,
//! `--port 0`, and one clear stderr line with the right exit code for every failure.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

/// tcp-client against tcp-server prints the client transcript of the tutorial, and the server
/// prints its own, line for line, naming the client's address.
#[test]
fn tcp_pair_prints_the_tutorial_transcripts() -> TestResult {
    let server = start_server("tcp-server", &[])?;
    assert_eq!(
        server.stdout_line()?,
        "TCPServer is waiting for connection..."
    );
    let out = run_client(client("tcp-client", server.addr.port(), &[]), b"")?;
    assert_client_transcript(&out, TCP_CLIENT_TRANSCRIPT);
    assert_tcp_server_transcript(&server)
}

/// udp-client against udp-server prints the UDP transcripts: the bound port, then one line per
/// datagram from the same client port.
#[test]
fn udp_pair_prints_the_tutorial_transcripts() -> TestResult {
    let server = start_server("udp-server", &[])?;
    assert_eq!(
        server.stdout_line()?,
        format!("Bind UDP on {}...", server.addr.port())
    );
    let out = run_client(client("udp-client", server.addr.port(), &[]), b"")?;
    assert_eq!(
        out.stdout_text(),
        "Hello, Michael!\nHello, Tracy!\nHello, Sarah!\n"
    );
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
    let first = server.stdout_line()?;
    let port = port_in(&first, "Received from ", "127.0.0.1", ".")
        .ok_or(format!("unexpected line {first:?}"))?;
    for _ in 0..2 {
        assert_eq!(
            server.stdout_line()?,
            format!("Received from 127.0.0.1:{port}.")
        );
    }
    Ok(())
}

/// With `--id`, each server says its name in brackets before its welcome (TCP) and before
/// each reply (UDP), and the clients print it: which server answered. The rest is the
/// tutorial's transcript, and the servers' own lines are unchanged.
#[test]
fn servers_with_an_id_say_it_and_the_clients_print_it() -> TestResult {
    let tcp = start_server("tcp-server", &["--id", "s1"])?;
    tcp.stdout_line()?;
    let out = run_client(client("tcp-client", tcp.addr.port(), &[]), b"")?;
    let transcript = TCP_CLIENT_TRANSCRIPT.replacen("Welcome!", "[s1] Welcome!", 1);
    assert_client_transcript(&out, &transcript);
    assert_tcp_server_transcript(&tcp)?;
    let udp = start_server("udp-server", &["--id", "服务器1"])?;
    let out = run_client(client("udp-client", udp.addr.port(), &[]), b"")?;
    let replies = UDP_CLIENT_TRANSCRIPT.replace("Hello", "[服务器1] Hello");
    assert_client_transcript(&out, &replies);
    Ok(())
}

/// The tutorial's own clients, as Python 3 runs them, print what such servers say: the id and
/// all.
#[test]
#[ignore = "needs python3: .ci/run runs cargo test -- --ignored"]
fn the_tutorials_clients_print_a_servers_id() -> TestResult {
    let tcp = start_server("tcp-server", &["--id", "s1"])?;
    let udp = start_server("udp-server", &["--id", "u2"])?;
    let tcp_client = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n\
         s.connect(('127.0.0.1', {}))\n\
         print(s.recv(1024).decode('utf-8'))\n\
         for data in [b'Jaber', b'Katy', b'Betty', b'huangxin']:\n    \
             s.send(data)\n    \
             print(s.recv(1024).decode('utf-8'))\n\
         s.send(b'exit')\n\
         s.close()\n",
        tcp.addr.port()
    );
    let udp_client = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for data in [b'Michael', b'Tracy', b'Sarah']:\n    \
             s.sendto(data, ('127.0.0.1', {}))\n    \
             print(s.recv(1024).decode('utf-8'))\n\
         s.close()\n",
        udp.addr.port()
    );
    for (script, expected) in [
        (
            tcp_client,
            TCP_CLIENT_TRANSCRIPT.replacen("Welcome!", "[s1] Welcome!", 1),
        ),
        (
            udp_client,
            UDP_CLIENT_TRANSCRIPT.replace("Hello", "[u2] Hello"),
        ),
    ] {
        let mut python = std::process::Command::new("python3");
        python.args(["-c", &script]);
        let out = run_client(python, b"")?;
        assert_client_transcript(&out, &expected);
    }
    Ok(())
}

/// Names from arguments replace the defaults, for both clients, non-ASCII included.
#[test]
fn clients_greet_the_names_given() -> TestResult {
    let tcp = start_server("tcp-server", &["--quiet"])?;
    let out = run_client(client("tcp-client", tcp.addr.port(), &["Zoë", "黄鑫"]), b"")?;
    assert_eq!(out.stdout_text(), "Welcome!\nHello, Zoë!\nHello, 黄鑫!\n");
    let udp = start_server("udp-server", &["--quiet"])?;
    let out = run_client(client("udp-client", udp.addr.port(), &["Ada"]), b"")?;
    assert_eq!(out.stdout_text(), "Hello, Ada!\n");
    Ok(())
}

/// `--stdin` reads one name per line (CRLF or LF, blank lines skipped); for TCP, `exit` ends it.
#[test]
fn clients_read_names_from_stdin() -> TestResult {
    let tcp = start_server("tcp-server", &["--quiet"])?;
    let input = b"Ada\r\n\nBob\nexit\nnever\n";
    let out = run_client(client("tcp-client", tcp.addr.port(), &["--stdin"]), input)?;
    assert_eq!(out.stdout_text(), "Welcome!\nHello, Ada!\nHello, Bob!\n");
    assert_eq!(out.code, Some(0));
    let udp = start_server("udp-server", &["--quiet"])?;
    let out = run_client(
        client("udp-client", udp.addr.port(), &["--stdin"]),
        b"Cy\nDi",
    )?;
    assert_eq!(out.stdout_text(), "Hello, Cy!\nHello, Di!\n");
    assert_eq!(out.code, Some(0));
    Ok(())
}

/// `tcp-client --proxy-header` sends, before anything else, a header that names its own
/// connection (the literal bytes, version 1 and version 2), and `tcp-server --proxy-protocol`
/// takes both and logs the client's own port.
#[test]
fn tcp_client_sends_a_proxy_header() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut child = client("tcp-client", port, &["--proxy-header", "v1", "Ada"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (mut stream, peer) = listener.accept()?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    let line = format!("PROXY TCP4 127.0.0.1 127.0.0.1 {} {port}\r\n", peer.port());
    assert_eq!(read_n(&mut stream, line.len())?, line.as_bytes());
    stream.write_all(b"Welcome!")?;
    assert_eq!(read_n(&mut stream, 3)?, b"Ada");
    stream.write_all(b"Hello, Ada!")?;
    assert_eq!(read_n(&mut stream, 4)?, b"exit");
    drop(stream);
    assert_eq!(wait_with_deadline(&mut child, TIMEOUT)?, Some(0));

    let mut child = client("tcp-client", port, &["--proxy-header", "v2", "Ada"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let (mut stream, peer) = listener.accept()?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x7f\0\0\x01\x7f\0\0\x01".to_vec();
    header.extend_from_slice(&peer.port().to_be_bytes());
    header.extend_from_slice(&port.to_be_bytes());
    assert_eq!(read_n(&mut stream, header.len())?, header);
    drop(stream);
    // Connected, but closed without a welcome.
    assert_eq!(wait_with_deadline(&mut child, TIMEOUT)?, Some(3));

    // Also where both ends are a dual-stack socket's, and a version 1 header names the client
    // `::ffff:127.0.0.1` (TCP6): it is greeted, and logged as 127.0.0.1.
    let dual = "::ffff:127.0.0.1";
    let hosts = match TcpListener::bind((dual, 0)) {
        Ok(_) => &["127.0.0.1", dual][..],
        Err(err) => {
            skip(&format!("no dual-stack socket here: {err}"));
            &["127.0.0.1"]
        }
    };
    for (host, version) in hosts.iter().flat_map(|h| [(h, "v1"), (h, "v2")]) {
        let server = start_server("tcp-server", &["--proxy-protocol", "--host", host])?;
        server.stdout_line()?;
        let out = run_client(
            client(
                "tcp-client",
                server.addr.port(),
                &["--host", host, "--proxy-header", version, "Ada"],
            ),
            b"",
        )?;
        assert_eq!(
            (out.stdout_text().as_str(), out.code),
            ("Welcome!\nHello, Ada!\n", Some(0))
        );
        let accepted = server.stdout_line()?;
        let client_port = port_in(&accepted, "Accept new connection from ", "127.0.0.1", "...")
            .ok_or(accepted.clone())?;
        assert_eq!(
            server.stdout_line()?,
            format!("Connection from 127.0.0.1:{client_port} closed.")
        );
    }
    Ok(())
}

/// `--quiet` keeps the start-up line but drops the per-connection lines.
#[test]
fn quiet_servers_print_only_the_start_up_line() -> TestResult {
    let server = start_server("tcp-server", &["-q"])?;
    assert_eq!(
        server.stdout_line()?,
        "TCPServer is waiting for connection..."
    );
    let out = run_client(client("tcp-client", server.addr.port(), &["Ada"]), b"")?;
    assert_eq!(out.code, Some(0));
    assert!(server.stdout_silent_for(Duration::from_millis(300)));
    Ok(())
}

/// The servers take IPv6 and host names; the address actually bound is on stderr. `localhost`
/// is 127.0.0.1 for every program, whatever order the resolver gives, so it meets the default
/// host on the other side.
#[test]
fn servers_bind_ipv6_and_host_names() -> TestResult {
    let named = ServerProcess::start({
        let mut command = command("tcp-server");
        command.args(["--host", "localhost", "--port", "0", "--quiet"]);
        command
    })?;
    assert_eq!(named.addr.ip().to_string(), "127.0.0.1");
    let out = run_client(client("tcp-client", named.addr.port(), &["Ada"]), b"")?;
    assert_eq!(out.stdout_text(), "Welcome!\nHello, Ada!\n");
    let udp = start_server("udp-server", &["--quiet"])?;
    let out = run_client(
        client(
            "udp-client",
            udp.addr.port(),
            &["--host", "localhost", "Ada"],
        ),
        b"",
    )?;
    assert_eq!(
        (out.stdout_text(), out.code),
        ("Hello, Ada!\n".into(), Some(0))
    );
    if !has_ipv6() {
        skip("the IPv6 half: this machine has no IPv6 loopback");
        return Ok(());
    }
    let v6 = ServerProcess::start({
        let mut command = command("udp-server");
        command.args(["--host", "::1", "--port", "0"]);
        command
    })?;
    assert_eq!(v6.addr.ip().to_string(), "::1");
    let port = v6.addr.port().to_string();
    let out = run_client(
        {
            let mut command = command("udp-client");
            command.args(["--host", "::1", "--port", &port, "Ada"]);
            command
        },
        b"",
    )?;
    assert_eq!(out.stdout_text(), "Hello, Ada!\n");
    assert_eq!(v6.stdout_line()?, format!("Bind UDP on {port}..."));
    let line = v6.stdout_line()?;
    assert!(
        port_in(&line, "Received from ", "[::1]", ".").is_some(),
        "{line}"
    );
    Ok(())
}

/// A refused connection is one stderr line naming the address, and exit code 1.
#[test]
fn tcp_client_reports_a_refused_connection() -> TestResult {
    let addr = closed_tcp_port()?;
    let out = run_client(client("tcp-client", addr.port(), &[]), b"")?;
    // The system's own words for a refusal, which differ by platform.
    let refused = std::net::TcpStream::connect(addr).expect_err("the port should be closed");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        format!("tcp-client: failed to connect to {addr}: {refused}\n")
    );
    assert_eq!(out.stdout, b"");
    Ok(())
}

/// A port already in use is one stderr line, exit 1, even with RUST_BACKTRACE set.
#[test]
fn servers_report_a_port_in_use_in_one_line() -> TestResult {
    let taken = TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port();
    let mut command = command("tcp-server");
    command
        .args(["--port", &port.to_string()])
        .env("RUST_BACKTRACE", "1");
    let out = run_client(command, b"")?;
    // The system's own words for a port in use, which differ by platform.
    let in_use = TcpListener::bind(("127.0.0.1", port)).expect_err("the port should be taken");
    assert_eq!(in_use.kind(), std::io::ErrorKind::AddrInUse);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        format!("tcp-server: failed to bind 127.0.0.1:{port}: {in_use}\n")
    );
    let taken = UdpSocket::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port();
    let out = run_client(client("udp-server", port, &[]), b"")?;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .starts_with(&format!("udp-server: failed to bind 127.0.0.1:{port}: "))
    );
    assert_eq!(out.stderr.lines().count(), 1);
    Ok(())
}

/// A host name that does not resolve is one line naming it, exit 1.
#[test]
fn clients_report_an_unknown_host() -> TestResult {
    let out = run_client(
        client("tcp-client", 9, &["--host", "no-such-host.invalid"]),
        b"",
    )?;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .starts_with("tcp-client: failed to connect to no-such-host.invalid:9: "),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
    Ok(())
}

/// With no UDP server, the client says `no reply from ADDR after N tries` (or `1 try`) and exits
/// 1.
#[test]
fn udp_client_reports_no_reply() -> TestResult {
    let silent = UdpSocket::bind("127.0.0.1:0")?;
    let port = silent.local_addr()?.port();
    for (retries, tries) in [("1", "2 tries"), ("0", "1 try")] {
        let out = run_client(
            client(
                "udp-client",
                port,
                &["--timeout", "100ms", "--retries", retries],
            ),
            b"",
        )?;
        assert_eq!(out.code, Some(1));
        assert_eq!(
            out.stderr,
            format!("udp-client: no reply from 127.0.0.1:{port} after {tries}\n")
        );
    }
    Ok(())
}

/// Bad arguments get clap's usage error and exit code 2, never a panic.
#[test]
fn bad_arguments_are_usage_errors() -> TestResult {
    let cases: &[(&str, &[&str])] = &[
        ("tcp-server", &["--port", "70000"]),
        ("tcp-server", &["--delay", "soon"]),
        ("tcp-server", &["--max-connections", "0"]),
        ("udp-server", &["--port", "-1"]),
        ("tcp-client", &["--timeout", "0"]),
        ("tcp-client", &["exit"]),
        ("tcp-client", &[""]),
        ("tcp-client", &["--stdin", "Ada"]),
        ("udp-client", &["--retries", "many"]),
        ("udp-client", &["--bogus"]),
        ("tcp-server", &["--id", "a b"]),
        ("udp-server", &["--id", "[s1]"]),
        ("udp-server", &["--id", ""]),
    ];
    for (name, args) in cases {
        let mut command = command(name);
        command.args(*args);
        let out = run_client(command, b"")?;
        assert_eq!(out.code, Some(2), "{name} {args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: "),
            "{name} {args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    Ok(())
}

/// `--help` shows the defaults and `--version` the version, both with exit code 0.
#[test]
fn help_shows_defaults_and_version_works() -> TestResult {
    let mut help = command("tcp-server");
    help.arg("--help");
    let out = run_client(help, b"")?;
    assert_eq!(out.code, Some(0));
    let text = out.stdout_text();
    for default in [
        "[default: 9999]",
        "[default: 127.0.0.1]",
        "[default: 5m]",
        "[default: 1024]",
    ] {
        assert!(text.contains(default), "missing {default} in\n{text}");
    }
    // Every program's help ends with examples and its exit codes.
    for program in ["tcp-server", "tcp-client", "udp-server", "udp-client"] {
        let mut help = command(program);
        help.arg("--help");
        let text = run_client(help, b"")?.stdout_text();
        assert!(text.contains(&format!("Examples:\n  {program} ")), "{text}");
        let last = text.trim_end().lines().last().unwrap_or_default();
        assert!(last.starts_with("Exit codes: "), "{program}: {last}");
    }
    let mut version = command("udp-client");
    version.arg("--version");
    let out = run_client(version, b"")?;
    assert_eq!(
        out.stdout_text(),
        format!("udp-client {}\n", env!("CARGO_PKG_VERSION"))
    );
    Ok(())
}

/// nc's habit, `tcp-client 127.0.0.1 9999`, is a usage error that says what to write, for
/// both clients and for an address, a host and port, and a port; with both --host and --port
/// given, or from --stdin, such names are greeted like any.
#[test]
fn nc_habits_are_usage_errors_that_say_what_to_write() -> TestResult {
    let cases = [
        (
            "tcp-client",
            &["127.0.0.1", "9999"][..],
            "`tcp-client --host 127.0.0.1 --port 9999`",
        ),
        (
            "udp-client",
            &["127.0.0.1", "8888"],
            "`udp-client --host 127.0.0.1 --port 8888`",
        ),
        (
            "tcp-client",
            &["localhost:9999"],
            "`tcp-client --host localhost --port 9999`",
        ),
        (
            "udp-client",
            &["[::1]:8888"],
            "`udp-client --host ::1 --port 8888`",
        ),
        (
            "tcp-client",
            &["Ada", "9999"],
            "`tcp-client --host Ada --port 9999`",
        ),
        // Half of where the server is on the command line fills in the half the names do not
        // say; only both excuse such names.
        (
            "tcp-client",
            &["192.0.2.1", "--port", "9"],
            "`tcp-client --host 192.0.2.1 --port 9`",
        ),
        (
            "udp-client",
            &["--host", "::1", "8888"],
            "`udp-client --host ::1 --port 8888`",
        ),
        // The server the name points at, not the given port with the name's host cut off.
        (
            "tcp-client",
            &["-p", "43875", "10:30"],
            "`tcp-client --host 10 --port 30`",
        ),
    ];
    for (program, names, written) in cases {
        let mut run = command(program);
        run.args(names);
        let out = run_client(run, b"")?;
        assert_eq!(
            (out.code, out.stdout_text()),
            (Some(2), String::new()),
            "{names:?}"
        );
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: '") && first.contains(written),
            "{first}"
        );
    }
    let tcp = start_server("tcp-server", &["--quiet"])?;
    let both = ["--host", "127.0.0.1", "127.0.0.1", "localhost:9999", "9999"];
    let out = run_client(client("tcp-client", tcp.addr.port(), &both), b"")?;
    assert_eq!(
        out.stdout_text(),
        "Welcome!\nHello, 127.0.0.1!\nHello, localhost:9999!\nHello, 9999!\n"
    );
    let out = run_client(
        client("tcp-client", tcp.addr.port(), &["--stdin"]),
        b"9999\n",
    )?;
    assert_eq!(out.stdout_text(), "Welcome!\nHello, 9999!\n");
    let udp = start_server("udp-server", &["--quiet"])?;
    let both = client(
        "udp-client",
        udp.addr.port(),
        &["--host", "127.0.0.1", "8888"],
    );
    let out = run_client(both, b"")?;
    assert_eq!(out.stdout_text(), "Hello, 8888!\n");
    Ok(())
}

/// A reader that goes away (`| head -1`) ends the client quietly, not with a panic.
#[test]
fn a_closed_stdout_ends_the_client_quietly() -> TestResult {
    let server = start_server("tcp-server", &["--quiet"])?;
    let mut child = client("tcp-client", server.addr.port(), &["--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take().ok_or("stdout is piped")?;
    let mut first = [0; 9];
    stdout.read_exact(&mut first)?;
    assert_eq!(&first, b"Welcome!\n");
    drop(stdout);
    let mut stdin = child.stdin.take().ok_or("stdin is piped")?;
    // The first reply fails to print; the rest of the input may or may not be read.
    let _ = stdin.write_all(b"Ada\nBob\nCy\n");
    drop(stdin);
    let code = wait_with_deadline(&mut child, TIMEOUT)?;
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .ok_or("stderr is piped")?
        .read_to_string(&mut stderr)?;
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    Ok(())
}

/// Server lines reach a pipe promptly, not only when a buffer fills or the server exits.
#[test]
fn server_lines_reach_a_pipe_promptly() -> TestResult {
    let server = start_server("udp-server", &[])?;
    server.stdout_line()?;
    let socket = udp_socket()?;
    socket.send_to(b"Ada", server.addr)?;
    let mut buf = [0; 32];
    socket.recv_from(&mut buf)?;
    let answered = std::time::Instant::now();
    let line = server.stdout_line()?;
    assert!(line.starts_with("Received from 127.0.0.1:"), "{line}");
    // A line after a quiet spell is written at once; a second leaves room for a busy machine.
    let waited = answered.elapsed();
    assert!(waited < Duration::from_secs(1), "the line took {waited:?}");
    Ok(())
}

/// The original client's pacing: with `--delay`, each reply waits, and the client still prints
/// the full transcript.
#[test]
fn delay_paces_the_binary_pair() -> TestResult {
    let server = start_server("tcp-server", &["--delay", "100ms", "--quiet"])?;
    let started = std::time::Instant::now();
    let out = run_client(
        client("tcp-client", server.addr.port(), &["A", "B", "C"]),
        b"",
    )?;
    assert_eq!(
        out.stdout_text(),
        "Welcome!\nHello, A!\nHello, B!\nHello, C!\n"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    Ok(())
}

/// OpenBSD nc is a line client: pipelined CRLF and LF lines each get their reply, and closing
/// its sending side (-N) ends the session.
#[test]
#[ignore = "needs OpenBSD nc: .ci/run installs it and runs cargo test -- --ignored"]
fn nc_is_a_client() -> TestResult {
    let server = start_server("tcp-server", &["--quiet"])?;
    let port = server.addr.port().to_string();
    // An nc without -N (GNU netcat, older BSD ones) cannot end a session: not the nc needed.
    let probe = external("nc", &["-N", "-z", "127.0.0.1", &port], b"")?;
    let stderr = probe.stderr.trim();
    assert_eq!(probe.code, Some(0), "this nc has no -N option: {stderr}");
    let out = external(
        "nc",
        &["-N", "127.0.0.1", &port],
        b"Ada\r\nZo\xc3\xab\nexit\n",
    )?;
    assert_eq!(out.stdout_text(), "Welcome!Hello, Ada!\r\nHello, Zoë!\n");
    assert_eq!(out.code, Some(0));
    let input = [&b"Ada\nexit\n"[..], &vec![b'x'; 200_000]].concat();
    let out = external("nc", &["-N", "127.0.0.1", &port], &input)?;
    assert_eq!(out.stdout_text(), "Welcome!Hello, Ada!\n");
    let udp = start_server("udp-server", &["--quiet"])?;
    let port = udp.addr.port().to_string();
    let out = external("nc", &["-u", "-w1", "127.0.0.1", &port], b"Michael")?;
    assert_eq!(out.stdout_text(), "Hello, Michael!");
    Ok(())
}

/// socat is a line client too, and so is the library's view of a CRLF-sending telnet.
#[test]
#[ignore = "needs socat: .ci/run installs it and runs cargo test -- --ignored"]
fn socat_is_a_client() -> TestResult {
    let server = start_server("tcp-server", &["--quiet"])?;
    let target = format!("TCP:127.0.0.1:{}", server.addr.port());
    let out = external("socat", &["-", &target], b"Ada\nBob\n")?;
    assert_eq!(out.stdout_text(), "Welcome!Hello, Ada!\nHello, Bob!\n");
    assert_eq!(out.code, Some(0));
    // `exit` with 200 kB behind it: the reply before it is not lost to a reset.
    let input = [&b"Ada\nexit\n"[..], &vec![b'x'; 200_000]].concat();
    for _ in 0..5 {
        let out = external("socat", &["-", &target], &input)?;
        assert_eq!(out.stdout_text(), "Welcome!Hello, Ada!\n");
    }
    Ok(())
}

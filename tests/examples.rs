//! The examples, the tutorial's four scripts ported line for line, against the real binaries in
//! both directions: each side prints the tutorial's transcripts, so the port and the original
//! speak the same protocol.

use crate::common::*;

fn on_port(mut command: std::process::Command, port: u16) -> std::process::Command {
    command.arg(port.to_string());
    command
}

/// Our tcp-client against the example server (which keeps the original's one-second pause per
/// reply): the client prints the tutorial's client transcript, the server its own.
#[test]
fn the_tcp_client_talks_to_the_example_server() -> TestResult {
    let server = ServerProcess::start(on_port(example("socket_tcp_server"), 0))?;
    assert_eq!(
        server.stdout_line()?,
        "TCPServer is waiting for connection..."
    );
    let out = run_client(client("tcp-client", server.addr.port(), &[]), b"")?;
    assert_client_transcript(&out, TCP_CLIENT_TRANSCRIPT);
    assert_tcp_server_transcript(&server)
}

/// The example client against our tcp-server: the tutorial's client transcript, and the
/// server's two lines for the connection.
#[test]
fn the_example_client_talks_to_the_tcp_server() -> TestResult {
    let server = start_server("tcp-server", &[])?;
    server.stdout_line()?;
    let out = run_client(
        on_port(example("socket_tcp_client"), server.addr.port()),
        b"",
    )?;
    assert_client_transcript(&out, TCP_CLIENT_TRANSCRIPT);
    assert_tcp_server_transcript(&server)
}

/// Our udp-client against the example server: the tutorial's UDP transcripts on both sides.
#[test]
fn the_udp_client_talks_to_the_example_server() -> TestResult {
    let server = ServerProcess::start(on_port(example("socket_udp_server"), 0))?;
    let port = server.addr.port();
    assert_eq!(server.stdout_line()?, format!("Bind UDP on {port}..."));
    let out = run_client(client("udp-client", port, &[]), b"")?;
    assert_client_transcript(&out, UDP_CLIENT_TRANSCRIPT);
    assert_three_receptions_from_one_port(&server)
}

/// The example client against our udp-server: the tutorial's UDP transcripts on both sides.
#[test]
fn the_example_client_talks_to_the_udp_server() -> TestResult {
    let server = start_server("udp-server", &[])?;
    let port = server.addr.port();
    assert_eq!(server.stdout_line()?, format!("Bind UDP on {port}..."));
    let out = run_client(on_port(example("socket_udp_client"), port), b"")?;
    assert_client_transcript(&out, UDP_CLIENT_TRANSCRIPT);
    assert_three_receptions_from_one_port(&server)
}

/// The UDP server's transcript: one `Received from` line per datagram, all from the client's
/// one port.
fn assert_three_receptions_from_one_port(server: &ServerProcess) -> TestResult {
    let lines = [
        server.stdout_line()?,
        server.stdout_line()?,
        server.stdout_line()?,
    ];
    let ports: Vec<Option<u16>> = lines
        .iter()
        .map(|line| port_in(line, "Received from ", "127.0.0.1", "."))
        .collect();
    assert!(ports[0].is_some(), "unexpected line {:?}", lines[0]);
    assert!(ports.iter().all(|p| *p == ports[0]), "{lines:?}");
    Ok(())
}

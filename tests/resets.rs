//! Turned-away clients are closed without a reset, counted by the kernel itself: the resets
//! this machine sends (`OutRsts` in `/proc/net/snmp`) must not grow while the server turns
//! clients away, past what its lingering close holds and out of descriptors alike. One test in
//! a binary of its own, so that no other test's resets count; Linux only, for the counter.

#![cfg(target_os = "linux")]

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::*;

/// The count of TCP resets this machine has sent.
fn resets_sent() -> io::Result<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp")?;
    let mut tcp = snmp.lines().filter(|line| line.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap_or(""), tcp.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "OutRsts")
        .and_then(|(_, value)| value.parse().ok())
        .ok_or_else(|| io::Error::other("no OutRsts in /proc/net/snmp"))
}

/// A client that sends its name `after` it connects, reads the busy line, waits for the others
/// at `together` (so that the server holds them all at once), and then reads to the end.
fn turned_away(addr: SocketAddr, after: Duration, together: Arc<Barrier>) -> io::Result<Vec<u8>> {
    let mut stream = connect(addr)?;
    thread::sleep(after);
    stream.write_all(b"Ada\n")?;
    let mut reply = read_n(&mut stream, BUSY.len())?;
    together.wait();
    stream.read_to_end(&mut reply)?;
    Ok(reply)
}

/// Connects `count` clients that are welcomed, and keeps them.
fn welcomed(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpStream>> {
    (0..count).map(|_| connect_welcomed(addr)).collect()
}

/// Every client turned away gets the whole busy line and an orderly end, without the server
/// sending a reset: 100 at once that sent their names while the server was paused (more than
/// the 64 its lingering close holds: the rest are closed after what they sent is taken), then
/// 10 that come while the server is out of descriptors (the spare descriptor answers them) and
/// send their names a moment after.
#[test]
fn turned_away_clients_are_closed_without_a_reset() -> TestResult {
    let server = start_server("tcp-server", &["--quiet", "--max-connections", "40"])?;
    let held = welcomed(server.addr, 40)?;
    let descriptors = proc::fd_count(server.pid())?;
    let before = resets_sent()?;
    if !signal(server.pid(), "-STOP") {
        skip("cannot pause the server (needs kill)");
        return Ok(());
    }
    let together = Arc::new(Barrier::new(100));
    let queued: Vec<_> = (0..100)
        .map(|_| {
            let (addr, together) = (server.addr, Arc::clone(&together));
            thread::spawn(move || turned_away(addr, Duration::ZERO, together))
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    assert!(signal(server.pid(), "-CONT"));
    for client in queued {
        assert_eq!(
            client.join().expect("client thread should not panic")?,
            BUSY
        );
    }
    assert_eq!(resets_sent()? - before, 0, "resets sent past the lingerer");
    // Once the lingering connections are closed, the server holds what it held before.
    let settled = eventually(TIMEOUT, || Ok(proc::fd_count(server.pid())? <= descriptors))?;
    assert!(settled, "the turned-away connections were not let go");

    if !proc::lower_file_limit(server.pid(), 32) {
        return Ok(());
    }
    let before = resets_sent()?;
    for _ in 0..10 {
        // One at a time, each name a moment after its connection is answered.
        let alone = Arc::new(Barrier::new(1));
        let reply = turned_away(server.addr, Duration::from_millis(2), alone)?;
        assert_eq!(reply, BUSY);
    }
    assert_eq!(resets_sent()? - before, 0, "resets sent out of descriptors");
    drop(held);
    Ok(())
}

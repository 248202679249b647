//! Shared test support, for the tests and the benchmark alike: in-process servers on
//! 127.0.0.1:0, raw clients with read timeouts, real server binaries whose output lines can be
//! awaited with a deadline (with the `cli` feature, which builds them), and (on Linux) what
//! `/proc` says about a process.

#![allow(dead_code)] // Each test crate, and the benchmark, uses its own part of this module.

pub mod proc;
#[cfg(feature = "cli")]
mod process;

// Not every test crate runs a binary.
#[cfg(feature = "cli")]
#[allow(unused_imports)]
pub use process::*;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use greeting::{Log, StopHandle, TcpServer, UdpServer};
use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// The line a server full up answers with, instead of the welcome.
pub const BUSY: &[u8] = b"busy: too many connections, try again later\n";

/// How long any single wait in a test may take before it counts as a failure.
pub const TIMEOUT: Duration = Duration::from_secs(5);

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A server of the library running on a thread of its own; stopped (and its thread joined)
/// by [`Served::stop`], or when dropped, so a failing test leaves no server behind.
pub struct Served {
    pub addr: SocketAddr,
    stop: StopHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Served {
    /// Stops the server and checks that `run` returned cleanly.
    pub fn stop(mut self) -> TestResult {
        self.stop.stop();
        let thread = self.thread.take().expect("a server is stopped once");
        thread.join().expect("server thread should not panic")?;
        Ok(())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.stop();
            let _ = thread.join();
        }
    }
}

/// Starts `server` (already bound and configured) on a thread of its own.
pub fn start_tcp(server: TcpServer) -> io::Result<Served> {
    let (addr, stop) = (server.local_addr()?, server.stop_handle());
    let thread = Some(thread::spawn(move || server.run()));
    Ok(Served { addr, stop, thread })
}

/// Starts a default TCP server on 127.0.0.1:0.
pub fn start_tcp_server() -> io::Result<Served> {
    start_tcp(TcpServer::bind("127.0.0.1:0")?)
}

/// Starts `server` (already bound and configured) on a thread of its own.
pub fn start_udp(server: UdpServer) -> io::Result<Served> {
    let (addr, stop) = (server.local_addr()?, server.stop_handle());
    let thread = Some(thread::spawn(move || server.run()));
    Ok(Served { addr, stop, thread })
}

/// Starts a default UDP server on 127.0.0.1:0.
pub fn start_udp_server() -> io::Result<Served> {
    start_udp(UdpServer::bind("127.0.0.1:0")?)
}

/// Connects a raw TCP client with read and write timeouts.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Connects and checks that the server's first words are exactly `Welcome!`.
pub fn connect_welcomed(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut stream = connect(addr)?;
    let welcome = read_n(&mut stream, 8)?;
    assert_eq!(welcome, b"Welcome!");
    Ok(stream)
}

/// Reads exactly `n` bytes.
pub fn read_n(stream: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf)?;
    Ok(buf)
}

/// Sends `request`, reads as many bytes as `expected` holds and checks they are exactly it.
pub fn exchange(stream: &mut TcpStream, request: &[u8], expected: &[u8]) -> io::Result<()> {
    stream.write_all(request)?;
    let reply = read_n(stream, expected.len())?;
    assert_eq!(
        reply.escape_ascii().to_string(),
        expected.escape_ascii().to_string(),
        "reply to {:?}",
        request.escape_ascii().to_string()
    );
    Ok(())
}

/// Reads until the peer closes, returning everything after what was already read.
pub fn read_to_close(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    Ok(rest)
}

/// Returns true when the peer has closed (a read gives 0 or a reset), false if bytes came.
pub fn is_closed(stream: &mut TcpStream) -> io::Result<bool> {
    let mut byte = [0; 1];
    match stream.read(&mut byte) {
        Ok(0) => Ok(true),
        Ok(_) => Ok(false),
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset => Ok(true),
        Err(err) => Err(err),
    }
}

/// A UDP socket on 127.0.0.1:0 with a read timeout.
pub fn udp_socket() -> io::Result<UdpSocket> {
    udp_socket_on(Ipv4Addr::LOCALHOST.into())
}

/// A UDP socket on `ip`, port 0, with a read timeout.
pub fn udp_socket_on(ip: IpAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind((ip, 0))?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    Ok(socket)
}

/// Runs `test` on each loopback address, IPv4's and IPv6's, as std's own socket tests do; where
/// the host has no IPv6, says so and runs the IPv4 half only.
pub fn each_ip(mut test: impl FnMut(IpAddr) -> TestResult) -> TestResult {
    test(Ipv4Addr::LOCALHOST.into())?;
    match has_ipv6() {
        true => test(Ipv6Addr::LOCALHOST.into()),
        false => {
            skip("the IPv6 half: this host has no IPv6 loopback");
            Ok(())
        }
    }
}

/// An address on 127.0.0.1 where nothing listens: a port the OS just gave and took back.
pub fn closed_tcp_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Returns whether this machine has an IPv6 loopback to test on.
pub fn has_ipv6() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// Returns whether `line` is `prefix` + `IP:PORT` + `suffix` with the given IP, and the port.
pub fn port_in(line: &str, prefix: &str, ip: &str, suffix: &str) -> Option<u16> {
    let rest = line.strip_prefix(prefix)?.strip_suffix(suffix)?;
    let port = rest.strip_prefix(ip)?.strip_prefix(':')?;
    port.parse().ok()
}

/// A writer that keeps what it is given.
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<u8>>>);

impl Write for Kept {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .expect("log capture lock")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A log that keeps its lines, for a server's `log` or `reports`.
pub struct CapturedLog {
    kept: Kept,
    log: Log,
}

impl CapturedLog {
    pub fn new() -> Self {
        let kept = Kept::default();
        let log = Log::to_writer(kept.clone());
        CapturedLog { kept, log }
    }

    /// A handle to give to the server.
    pub fn log(&self) -> Log {
        self.log.clone()
    }

    /// What has been written so far: call it after the server has stopped, which flushes.
    pub fn text(&self) -> Result<String, std::string::FromUtf8Error> {
        self.log.flush();
        String::from_utf8(self.kept.0.lock().expect("log capture lock").clone())
    }

    /// What has been written once it holds `count` lines, or after 5 s if it never does: a
    /// connection's last line comes when the server is done with it, which may be a moment
    /// after its client has seen the close.
    pub fn lines(&self, count: usize) -> Result<String, std::string::FromUtf8Error> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.text()?;
            if text.lines().count() >= count || Instant::now() > deadline {
                return Ok(text);
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Says on the test run's own stderr, past libtest's capture of `eprintln!`, that a test skipped
/// its check and why, so a skip is visible in the output of a passing run.
pub fn skip(why: &str) {
    let _ = writeln!(io::stderr(), "skipped: {why}");
}

/// Sends `signal` (`-STOP`, `-TERM`, …) to process `pid` with kill(1); false if that cannot
/// be done.
#[cfg(unix)]
pub fn signal(pid: u32, signal: &str) -> bool {
    let sent = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
    sent.is_ok_and(|status| status.success())
}

/// What running `program` gave; when it is not installed, an error that says so. A test that
/// needs a program the machine may lack is `#[ignore]`d: `cargo test` reports it as not run, and
/// `cargo test -- --ignored` (which .ci/run runs once it has installed them) runs it, and it
/// fails, never passes, without the program.
pub fn installed<T>(ran: io::Result<T>, program: &str) -> io::Result<T> {
    ran.map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => io::Error::new(
            err.kind(),
            format!("{program} is not installed (.ci/run installs it)"),
        ),
        _ => err,
    })
}

/// Returns whether this system carries a UDP datagram of `size` bytes on loopback (macOS and
/// the BSDs cap them at 9,216 bytes by default); says so when it does not.
pub fn udp_carries(size: usize) -> io::Result<bool> {
    let socket = udp_socket()?;
    match socket.send_to(&vec![0; size], socket.local_addr()?) {
        Ok(_) => {
            socket.recv_from(&mut vec![0; size + 1])?;
            Ok(true)
        }
        Err(err) => {
            skip(&format!(
                "this system does not send {size}-byte datagrams: {err}"
            ));
            Ok(false)
        }
    }
}

/// The peak resident memory of a process in kB where the platform shows it (Linux's `/proc`);
/// elsewhere `None`.
pub fn peak_memory_kb(pid: u32) -> io::Result<Option<u64>> {
    #[cfg(target_os = "linux")]
    return proc::status_field(pid, "VmHWM").map(Some);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        Ok(None)
    }
}

/// Asserts that peak memory grew by less than `limit_kb` since `before`, where it can be read.
pub fn assert_memory_grew_less_than(pid: u32, before: Option<u64>, limit_kb: u64) -> TestResult {
    match (before, peak_memory_kb(pid)?) {
        (Some(before), Some(after)) => {
            let grown = after.saturating_sub(before);
            assert!(grown < limit_kb, "peak memory grew by {grown} kB");
        }
        _ => skip("the memory check: this system has no /proc to read it in"),
    }
    Ok(())
}

/// Polls `check` every 20 ms until it returns true, for at most `limit`; returns its last answer.
pub fn eventually(
    limit: Duration,
    mut check: impl FnMut() -> io::Result<bool>,
) -> io::Result<bool> {
    let deadline = Instant::now() + limit;
    loop {
        if check()? {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A seed for a random fault pattern, fresh each run; `GREETING_FAULT_SEED=N` replays one. A
/// test that uses one names it when it fails.
pub fn fault_seed() -> u64 {
    let fresh = || RandomState::new().build_hasher().finish();
    let given = std::env::var("GREETING_FAULT_SEED").ok();
    given
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(fresh)
}

/// What a [`FaultyProxy`] did to the datagrams it carried, for a test to check that each fault
/// really happened.
#[derive(Debug, Default, Clone, Copy)]
pub struct Faults {
    pub dropped: u32,
    pub duplicated: u32,
    pub reordered: u32,
    pub forged: u32,
}

/// A UDP proxy between one client and a server that drops, duplicates and reorders datagrams
/// both ways, and sends a forged reply from a port of its own for each request. No more than two
/// datagrams in a row are dropped each way, so a client with enough retries always gets through.
pub struct FaultyProxy {
    pub addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<JoinHandle<io::Result<Faults>>>,
}

impl FaultyProxy {
    pub fn start(server: SocketAddr, seed: u64) -> io::Result<Self> {
        let front = UdpSocket::bind("127.0.0.1:0")?;
        let back = UdpSocket::bind("127.0.0.1:0")?;
        let forger = UdpSocket::bind("127.0.0.1:0")?;
        back.connect(server)?;
        // Short timeouts: the proxy polls both sockets in turn and flushes held datagrams.
        front.set_read_timeout(Some(Duration::from_millis(5)))?;
        back.set_read_timeout(Some(Duration::from_millis(5)))?;
        let addr = front.local_addr()?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let seed = [seed.to_le_bytes(), [0; 8], [0; 8], [0; 8]].concat();
            let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
            // The first datagrams towards the server meet each fault once, so that every run
            // exercises them all; after them, the faults come at random.
            let mut forced = vec![Fault::Duplicate, Fault::Hold, Fault::Drop];
            let mut faults = Faults::default();
            let mut client = None;
            let mut held_up: Option<Vec<u8>> = None;
            let mut held_down: Option<Vec<u8>> = None;
            let (mut drops_up, mut drops_down) = (0, 0);
            let mut buf = vec![0; 70_000];
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stopping.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
                if let Ok((n, from)) = front.recv_from(&mut buf) {
                    client = Some(from);
                    let datagram = buf[..n].to_vec();
                    forger.send_to(&[&b"Hello, "[..], &datagram, b"!"].concat(), from)?;
                    faults.forged += 1;
                    let fault = forced.pop().unwrap_or_else(|| fault(&mut rng));
                    let up = |d: &[u8]| back.send(d).map(|_| ());
                    relay(
                        fault,
                        &mut faults,
                        &mut drops_up,
                        &mut held_up,
                        datagram,
                        up,
                    )?;
                }
                if let (Ok(n), Some(client)) = (back.recv(&mut buf), client) {
                    let datagram = buf[..n].to_vec();
                    let down = |d: &[u8]| front.send_to(d, client).map(|_| ());
                    let fault = fault(&mut rng);
                    relay(
                        fault,
                        &mut faults,
                        &mut drops_down,
                        &mut held_down,
                        datagram,
                        down,
                    )?;
                }
            }
            Ok(faults)
        });
        Ok(FaultyProxy {
            addr,
            stop,
            handle: Some(handle),
        })
    }

    /// Stops the proxy and returns what it did.
    pub fn finish(mut self) -> io::Result<Faults> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle
            .take()
            .expect("the proxy is finished once")
            .join()
            .expect("proxy thread should not panic")
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What the proxy does to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Drop,
    /// Held back, to send after the next one.
    Hold,
    Duplicate,
    Pass,
}

/// A fault at random: a drop 30% of the time, a hold or a duplicate 25% each of the rest.
fn fault(rng: &mut TestRng) -> Fault {
    match rng.random_range(0..100) {
        0..30 => Fault::Drop,
        30..48 => Fault::Hold,
        48..65 => Fault::Duplicate,
        _ => Fault::Pass,
    }
}

/// Passes one datagram on, or drops, duplicates or holds it back, as `fault` says; no more than
/// two drops in a row, and one datagram held at a time.
fn relay(
    fault: Fault,
    faults: &mut Faults,
    drops_in_a_row: &mut u32,
    held: &mut Option<Vec<u8>>,
    datagram: Vec<u8>,
    mut send: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    if fault == Fault::Drop && *drops_in_a_row < 2 {
        *drops_in_a_row += 1;
        faults.dropped += 1;
        return Ok(());
    }
    *drops_in_a_row = 0;
    if fault == Fault::Hold && held.is_none() {
        *held = Some(datagram);
        faults.reordered += 1;
        return Ok(());
    }
    send(&datagram)?;
    if fault == Fault::Duplicate {
        send(&datagram)?;
        faults.duplicated += 1;
    }
    if let Some(earlier) = held.take() {
        send(&earlier)?;
    }
    Ok(())
}

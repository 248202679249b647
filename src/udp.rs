//! The UDP side: [`UdpServer`] answers each datagram with one datagram; [`UdpClient`] sends a
//! name and waits for its answer, trying again when a datagram is lost.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::log::{Log, RateLimited};
use crate::protocol;
use crate::stop::{Poke, StopHandle};

/// The largest UDP payload over IPv4, and so the largest name the server promises to answer
/// (the reply, 8 bytes longer, may then not fit, and is dropped).
pub const MAX_DATAGRAM: usize = 65_507;

/// Room for any datagram the kernel can hand over, IPv6 included.
const RECV_BUFFER: usize = 65_536;

/// Source ports below this are system services (echo, chargen, DNS, NTP, …). A datagram "from"
/// one is either forged or a reply from such a service; answering it is how reflection loops and
/// amplification start, so the server drops it.
pub const LOWEST_PEER_PORT: u16 = 1024;

/// The default time the client waits for each reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The default number of times the client sends a name again after a lost reply.
pub const DEFAULT_RETRIES: u32 = 3;

/// A UDP greeting server: a bound socket, ready to [`run`](UdpServer::run).
pub struct UdpServer {
    socket: UdpSocket,
    stop: StopHandle,
    log: Log,
}

impl UdpServer {
    /// Binds a UDP socket to `addr`, trying each address it resolves to in turn.
    ///
    /// The server starts with a quiet log.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        let stop = StopHandle::new(socket.local_addr()?, Poke::Datagram);
        Ok(UdpServer {
            socket,
            stop,
            log: Log::quiet(),
        })
    }

    /// Sets where the per-datagram lines (`Received from …`) go.
    pub fn log(mut self, log: Log) -> Self {
        self.log = log;
        self
    }

    /// Returns the address actually bound; bind port 0 and ask here for the port the OS picked.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Returns a handle that stops [`run`](UdpServer::run) from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Answers datagrams until stopped, each with `Hello, ` + datagram + `!` to its sender.
    ///
    /// Three kinds of datagram get no answer, each reported on stderr at most once a second:
    /// one from a port below [`LOWEST_PEER_PORT`]; one that is itself a greeting
    /// ([`protocol::is_greeting`]), which only another greeting server sends, so two servers
    /// tricked into talking to each other stop at once; and one whose reply would not fit in a
    /// datagram. Socket errors never end the loop.
    pub fn run(self) -> io::Result<()> {
        let mut buf = vec![0; RECV_BUFFER];
        let mut reply = Vec::with_capacity(protocol::greeting_len(RECV_BUFFER));
        let mut backoff = Backoff::default();
        let mut recv_errors = RateLimited::new(Duration::from_secs(1));
        // One limiter per kind, so that "N more like it" counts lines of the kind it follows.
        let mut from_low_ports = RateLimited::new(Duration::from_secs(1));
        let mut greetings = RateLimited::new(Duration::from_secs(1));
        let mut send_errors = RateLimited::new(Duration::from_secs(1));
        loop {
            let received = self.socket.recv_from(&mut buf);
            if self.stop.is_stopped() {
                break;
            }
            let (n, peer) = match received {
                Ok(received) => received,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => {
                    // On Linux an ICMP error for an earlier reply can surface here.
                    recv_errors.report(format_args!("failed to receive a datagram: {err}"));
                    thread::sleep(backoff.next_pause());
                    continue;
                }
            };
            backoff.reset();
            if peer.port() < LOWEST_PEER_PORT {
                from_low_ports.report(format_args!(
                    "{peer}: dropped a datagram from a port below {LOWEST_PEER_PORT}"
                ));
                continue;
            }
            if protocol::is_greeting(&buf[..n]) {
                greetings.report(format_args!(
                    "{peer}: dropped a datagram that is itself a greeting (a reflection loop?)"
                ));
                continue;
            }
            self.log.line(format_args!("Received from {peer}."));
            reply.clear();
            protocol::push_greeting(&mut reply, &buf[..n], b"");
            if let Err(err) = self.socket.send_to(&reply, peer) {
                send_errors.report(format_args!(
                    "{peer}: dropped a reply of {} bytes: {err}",
                    reply.len()
                ));
            }
        }
        self.log.flush();
        Ok(())
    }
}

/// Binds a UDP socket on any local address and port of the same family as `peer`, to send to it.
pub(crate) fn ephemeral_socket_for(peer: SocketAddr) -> io::Result<UdpSocket> {
    let any = match peer {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    UdpSocket::bind(any)
}

/// A client of the UDP greeting server on a connected socket, so the kernel drops datagrams
/// from anyone but the server.
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    peer: SocketAddr,
    timeout: Duration,
    retries: u32,
    buf: Vec<u8>,
}

impl UdpClient {
    /// Connects a fresh socket to the first address `addr` resolves to.
    ///
    /// Each request waits `timeout` for its reply per try, and tries `retries` more times.
    pub fn connect(addr: impl ToSocketAddrs, timeout: Duration, retries: u32) -> io::Result<Self> {
        let peer = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(ErrorKind::NotFound, "the host name has no addresses"))?;
        let socket = ephemeral_socket_for(peer)?;
        socket.connect(peer)?;
        Ok(UdpClient {
            socket,
            peer,
            timeout,
            retries,
            buf: vec![0; RECV_BUFFER],
        })
    }

    /// Returns the server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Sends `name` and returns its reply, `Hello, NAME!`.
    ///
    /// Any other datagram (a late reply to an earlier name, a duplicate, a stray) is discarded.
    /// When no reply comes within the timeout, or the server's port is closed, the name is sent
    /// again, up to the number of retries.
    ///
    /// # Errors
    ///
    /// `TimedOut` with `no reply from ADDR after N tries`, or a failure to send.
    pub fn request(&mut self, name: &[u8]) -> io::Result<Vec<u8>> {
        let expected = protocol::greeting(name);
        let tries = self.retries.saturating_add(1);
        let mut refused = false;
        for _ in 0..tries {
            match self.socket.send(name) {
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::ConnectionRefused => {
                    refused = true;
                    continue;
                }
                Err(err) => return Err(err),
            }
            match self.await_reply(&expected) {
                Ok(true) => return Ok(expected),
                Ok(false) => {}
                Err(err) if err.kind() == ErrorKind::ConnectionRefused => refused = true,
                Err(err) => return Err(err),
            }
        }
        let why = if refused { " (port unreachable)" } else { "" };
        Err(io::Error::new(
            ErrorKind::TimedOut,
            format!("no reply from {} after {tries} tries{why}", self.peer),
        ))
    }

    /// Waits one timeout for `expected`; returns false when it did not come.
    fn await_reply(&mut self, expected: &[u8]) -> io::Result<bool> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            self.socket.set_read_timeout(Some(left))?;
            match self.socket.recv(&mut self.buf) {
                Ok(n) if self.buf[..n] == *expected => return Ok(true),
                Ok(_) => {}
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(false);
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

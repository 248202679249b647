//! The UDP side of the tutorial: `SocketUdpServer.py` and `SocketUdpClient.py`.
//!
//! # Where the original went
//!
//! | SocketUdpServer.py | here |
//! | --- | --- |
//! | `s.bind(('127.0.0.1', 8888))` | [`UdpServer::bind`] |
//! | `print('Bind UDP on 8888...')` | the `udp-server` binary |
//! | `while True: data, addr = s.recvfrom(1024)` | the loop in [`UdpServer::run`]: receive |
//! | (nothing: the original answers anything) | `verdict`: decide |
//! | `print('Received from %s:%s.' % addr)`, `s.sendto(b'Hello, %s!' % data, addr)` | [`UdpServer::run`]: log, send |
//!
//! | SocketUdpClient.py | here |
//! | --- | --- |
//! | `s = socket.socket(AF_INET, SOCK_DGRAM)` | [`UdpClient::connect`] (a socket, no connection) |
//! | `s.sendto(data, addr)`, `print(s.recv(1024)…)` | [`UdpClient::greet`] |
//!
//! # What was added, and why
//!
//! - **No reflection loops.** A greeting server answers anything, so one forged datagram can set
//!   two of them answering each other for ever. The server does not answer a datagram that is
//!   itself a greeting, nor one from a port below 1024 (echo, DNS, NTP live there), and it never
//!   truncates: a reply that would not fit is dropped, so even a loop would end.
//! - **Whole datagrams.** The original reads 1,024 bytes and cuts the rest; ours takes a datagram
//!   of any size and answers it whole, or not at all.
//! - **Retries.** The original client waits for ever for a lost datagram. Ours waits `timeout`
//!   and sends again, `retries` times, every try its whole timeout, and takes only the exact
//!   greeting for the name in flight, so late, duplicated or forged datagrams change nothing.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use crate::addr::{ephemeral_socket_for, first_that_works, resolve};
use crate::backoff::Backoff;
use crate::log::Log;
use crate::protocol::{self, Shown};
use crate::rate_limit::RateLimited;
use crate::stop::{Poke, StopHandle};

/// The largest UDP payload over IPv4, and so the largest name the server promises to answer
/// (the reply, 8 bytes longer, may then not fit, and is dropped).
const MAX_DATAGRAM: usize = 65_507;

/// Room for any datagram the kernel can hand over, IPv6 included.
const RECV_BUFFER: usize = 65_536;

/// Source ports below this are system services (echo, chargen, DNS, NTP, …). A datagram "from"
/// one is either forged or a reply from such a service; answering it is how reflection loops and
/// amplification start, so the server drops it.
const LOWEST_PEER_PORT: u16 = 1024;

/// A UDP greeting server: a bound socket, ready to [`run`](UdpServer::run).
#[derive(Debug)]
pub struct UdpServer {
    socket: UdpSocket,
    stop: StopHandle,
    log: Log,
    reports: Log,
}

impl UdpServer {
    /// Binds a UDP socket to `addr`, trying each address it resolves to in turn, IPv4 first
    /// (so `localhost` means 127.0.0.1 wherever the resolver puts `::1` first).
    ///
    /// The server starts with a quiet log.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        let socket = first_that_works(addr, UdpSocket::bind)?;
        let stop = StopHandle::new(socket.local_addr()?, Poke::Datagram);
        Ok(UdpServer {
            socket,
            stop,
            log: Log::quiet(),
            reports: Log::stderr(),
        })
    }

    /// Sets where the per-datagram lines (`Received from …`) go.
    #[must_use]
    pub fn log(mut self, log: Log) -> Self {
        self.log = log;
        self
    }

    /// Sets where the server reports dropped datagrams and socket errors; the shared
    /// [`Log::stderr`] unless set.
    #[must_use]
    pub fn reports(mut self, reports: Log) -> Self {
        self.reports = reports;
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

    /// Answers datagrams until stopped, each with `Hello, ` + datagram + `!` to its sender: the
    /// original's `while True: recvfrom` loop, as receive, decide, send.
    ///
    /// Three kinds of datagram get no answer (`verdict` says which), each reported at most once
    /// a second: one from a port below 1024; one that is itself a greeting, which only another
    /// greeting server sends, so two servers tricked into talking to each other stop at once;
    /// and one whose reply would not fit in a datagram. Socket errors never end the loop.
    pub fn run(self) -> io::Result<()> {
        let mut buf = vec![0; RECV_BUFFER];
        let mut reply = Vec::with_capacity(protocol::greeting_len(RECV_BUFFER));
        let mut backoff = Backoff::default();
        // One limiter per kind, so that "N more like it" counts lines of the kind it follows.
        let mut recv_errors = RateLimited::new(Duration::from_secs(1));
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
                // An earlier reply's client had closed its port. Windows says so here, on the
                // next receive (WSAECONNRESET); it is that client's business, not an error of
                // the server, and nothing waits to be retried.
                Err(err) if is_unreachable(&err) => continue,
                Err(err) => {
                    recv_errors.report(
                        &self.reports,
                        format_args!("failed to receive a datagram: {err}"),
                    );
                    thread::sleep(backoff.next_pause());
                    continue;
                }
            };
            backoff.reset();
            let datagram = &buf[..n];
            match verdict(datagram, peer) {
                Verdict::Answer => {}
                Verdict::FromLowPort => {
                    from_low_ports.report(
                        &self.reports,
                        format_args!(
                            "{peer}: dropped a datagram from a port below {LOWEST_PEER_PORT}"
                        ),
                    );
                    continue;
                }
                Verdict::Greeting => {
                    greetings.report(
                        &self.reports,
                        format_args!(
                            "{peer}: dropped a datagram that is itself a greeting \
                             (a reflection loop?)"
                        ),
                    );
                    continue;
                }
            }
            self.log.line(format_args!("Received from {peer}."));
            reply.clear();
            protocol::push_greeting(&mut reply, datagram, b"");
            if let Err(err) = self.socket.send_to(&reply, peer) {
                send_errors.report(
                    &self.reports,
                    format_args!("{peer}: dropped a reply of {} bytes: {err}", reply.len()),
                );
            }
        }
        self.log.flush();
        self.reports.flush();
        Ok(())
    }
}

/// What the server does with a datagram.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Greet it.
    Answer,
    /// Drop it: it comes from a system service's port, or claims to.
    FromLowPort,
    /// Drop it: it is itself a greeting, so its sender is another greeting server.
    Greeting,
}

/// Decides whether the server answers `datagram` from `peer`: the rules that keep it out of
/// reflection loops. Pure: no socket.
fn verdict(datagram: &[u8], peer: SocketAddr) -> Verdict {
    if peer.port() < LOWEST_PEER_PORT {
        Verdict::FromLowPort
    } else if protocol::is_greeting(datagram) {
        Verdict::Greeting
    } else {
        Verdict::Answer
    }
}

/// A client of the UDP greeting server.
///
/// Like the original client, its socket is not connected: a server bound to a wildcard address
/// on a host with several addresses may answer from another address than the one the client
/// sent to, and a connected socket would never see that reply. A datagram counts as the reply
/// when it comes from the server's port and holds exactly the greeting for the name in flight;
/// anything else is ignored. The cost: on Linux and macOS the kernel reports "port unreachable"
/// only to connected sockets, so there a closed port looks like a silent one.
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    peer: SocketAddr,
    timeout: Duration,
    retries: u32,
    buf: Vec<u8>,
    /// The reply to the name before, which may still arrive late or twice.
    previous: Vec<u8>,
}

/// How one try of a request ended.
#[derive(Debug, PartialEq, Eq)]
enum Try {
    /// The expected reply came.
    Answered,
    /// The timeout passed; `refused` if the server's port was reported unreachable meanwhile.
    Unanswered { refused: bool },
}

impl UdpClient {
    /// The wait for each reply that the `udp-client` binary uses unless told otherwise
    /// (`--timeout`).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

    /// How many times a name is sent again when its reply does not come, unless
    /// [`retries`](UdpClient::retries) sets another number.
    pub const DEFAULT_RETRIES: u32 = 3;

    /// The longest name the client sends (65,499 bytes): its reply, 8 bytes longer, is then
    /// the largest datagram IPv4 carries, so the server can answer it.
    pub const MAX_NAME: usize = MAX_DATAGRAM - protocol::greeting_len(0);

    /// Checks that the UDP server can answer `name`.
    ///
    /// # Errors
    ///
    /// A message saying why not: it is longer than [`MAX_NAME`](UdpClient::MAX_NAME), or shaped
    /// like a greeting (`Hello, …!`), which the server never answers ([`UdpServer::run`] says
    /// why).
    pub fn check_name(name: &[u8]) -> Result<(), String> {
        if name.len() > Self::MAX_NAME {
            Err(format!(
                "a name cannot be longer than {} bytes, or its reply would not fit in a \
                 datagram: {}",
                Self::MAX_NAME,
                Shown(name)
            ))
        } else if protocol::is_greeting(name) {
            Err(format!(
                "{} is shaped like a greeting, which the server never answers",
                Shown(name)
            ))
        } else {
            Ok(())
        }
    }

    /// Opens a socket to talk to the first address `addr` resolves to, IPv4 first (so
    /// `localhost` reaches a server on 127.0.0.1 wherever the resolver puts `::1` first).
    ///
    /// Each try of a greeting waits `timeout` for its reply; a name is sent again
    /// [`DEFAULT_RETRIES`](UdpClient::DEFAULT_RETRIES) times unless
    /// [`retries`](UdpClient::retries) says otherwise.
    pub fn connect(addr: impl ToSocketAddrs, timeout: Duration) -> io::Result<Self> {
        let peer = resolve(addr)?[0];
        let socket = ephemeral_socket_for(peer)?;
        Ok(UdpClient {
            socket,
            peer,
            timeout,
            retries: Self::DEFAULT_RETRIES,
            buf: vec![0; RECV_BUFFER],
            previous: Vec::new(),
        })
    }

    /// Sets how many times a name is sent again when its reply does not come.
    #[must_use]
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Returns the server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Sends `name` and returns its reply, `Hello, NAME!`.
    ///
    /// Any other datagram (a late reply to an earlier name, a duplicate, a stray, anything from
    /// another port) is discarded. When no reply comes within the timeout the name is sent
    /// again, up to the number of retries; every try waits its whole timeout, also when the
    /// server's port was reported unreachable, so retries bridge a server restart.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a name [`check_name`](UdpClient::check_name) refuses, before anything
    /// is sent; `InvalidData` (`expected "Hello, …!" but got "…"`) when the server's port sent
    /// only something else; `TimedOut` (`no reply from ADDR after N tries`) when it sent
    /// nothing; a failure to send.
    pub fn greet(&mut self, name: &[u8]) -> io::Result<Vec<u8>> {
        Self::check_name(name).map_err(|msg| io::Error::new(ErrorKind::InvalidInput, msg))?;
        let expected = protocol::greeting(name);
        let tries = self.retries.saturating_add(1);
        let mut refused = false;
        let mut wrong: Option<Vec<u8>> = None;
        for _ in 0..tries {
            match self.try_once(name, &expected, &mut wrong)? {
                Try::Answered => {
                    self.previous.clone_from(&expected);
                    return Ok(expected);
                }
                Try::Unanswered { refused: now } => refused |= now,
            }
        }
        if let Some(got) = wrong {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!("expected {} but got {}", Shown(&expected), Shown(&got)),
            ));
        }
        let why = if refused { " (port unreachable)" } else { "" };
        let plural = if tries == 1 { "try" } else { "tries" };
        Err(io::Error::new(
            ErrorKind::TimedOut,
            format!("no reply from {} after {tries} {plural}{why}", self.peer),
        ))
    }

    /// Sends `name` once and waits one timeout for `expected`, keeping the last datagram from
    /// the server's port that was something else in `wrong`.
    fn try_once(
        &mut self,
        name: &[u8],
        expected: &[u8],
        wrong: &mut Option<Vec<u8>>,
    ) -> io::Result<Try> {
        // A timeout too large for the clock means waiting for good, not a panic.
        let deadline = Instant::now().checked_add(self.timeout);
        let mut refused = false;
        match self.socket.send_to(name, self.peer) {
            Ok(_) => {}
            Err(err) if is_unreachable(&err) => refused = true,
            Err(err) => return Err(err),
        }
        loop {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => self.timeout,
            };
            if left.is_zero() {
                return Ok(Try::Unanswered { refused });
            }
            if refused {
                // Nothing more can come for this try; wait out its timeout all the same, so
                // that no setting of --retries turns into a burst of datagrams.
                thread::sleep(left);
                continue;
            }
            self.socket.set_read_timeout(Some(left))?;
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    match judge(&self.buf[..n], from, self.peer, expected, &self.previous) {
                        Arrival::Reply => return Ok(Try::Answered),
                        Arrival::Wrong => *wrong = Some(self.buf[..n].to_vec()),
                        Arrival::Stray => {}
                    }
                }
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if is_unreachable(&err) => refused = true,
                Err(err) => return Err(err),
            }
        }
    }
}

/// What a datagram that reached the client is.
#[derive(Debug, PartialEq, Eq)]
enum Arrival {
    /// The greeting for the name in flight, from the server's port.
    Reply,
    /// Something else from the server's port: a truncated or mangled reply, or a late one.
    Wrong,
    /// A datagram from another port, or a late copy of the reply to the name before.
    Stray,
}

/// Judges a datagram from `from`: the server at `peer` may answer from any of its addresses
/// (see [`UdpClient`]), but only from its own port; a late copy of the `previous` reply is
/// not news.
fn judge(
    datagram: &[u8],
    from: SocketAddr,
    peer: SocketAddr,
    expected: &[u8],
    previous: &[u8],
) -> Arrival {
    if from.port() != peer.port() || (datagram == previous && datagram != expected) {
        Arrival::Stray
    } else if datagram == expected {
        Arrival::Reply
    } else {
        Arrival::Wrong
    }
}

/// Returns true for the error an ICMP port unreachable becomes on a UDP socket: a refusal on
/// Unix, a reset (`WSAECONNRESET`) on Windows.
fn is_unreachable(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("a valid address")
    }

    #[test]
    fn a_reply_may_come_from_another_address_but_not_another_port() {
        let peer = addr("127.0.0.2:8888");
        let other_ip = addr("127.0.0.1:8888");
        let other_port = addr("127.0.0.2:8889");
        let judged = |datagram: &[u8], from| judge(datagram, from, peer, b"Hello, Ada!", b"");
        assert_eq!(judged(b"Hello, Ada!", peer), Arrival::Reply);
        assert_eq!(judged(b"Hello, Ada!", other_ip), Arrival::Reply);
        assert_eq!(judged(b"Hello, Ada!", other_port), Arrival::Stray);
        assert_eq!(judged(b"Hello, Ad", peer), Arrival::Wrong);
        assert_eq!(judged(b"Hello, Bob!", other_ip), Arrival::Wrong);
        assert_eq!(judged(b"junk", other_port), Arrival::Stray);
    }

    #[test]
    fn a_late_copy_of_the_reply_before_is_not_news() {
        let peer = addr("127.0.0.1:8888");
        let judged = |datagram: &[u8], expected: &[u8]| {
            judge(datagram, peer, peer, expected, b"Hello, Bob!")
        };
        assert_eq!(judged(b"Hello, Bob!", b"Hello, Ada!"), Arrival::Stray);
        assert_eq!(judged(b"Hello, Bob!", b"Hello, Bob!"), Arrival::Reply);
    }

    #[test]
    fn only_a_name_from_a_service_port_or_shaped_like_a_greeting_is_dropped() {
        let client = addr("127.0.0.1:50000");
        assert_eq!(verdict(b"Michael", client), Verdict::Answer);
        assert_eq!(verdict(b"", client), Verdict::Answer);
        assert_eq!(verdict(b"Hello, Ada", client), Verdict::Answer);
        assert_eq!(verdict(b"Hello, Ada!", client), Verdict::Greeting);
        assert_eq!(
            verdict(b"Michael", addr("127.0.0.1:53")),
            Verdict::FromLowPort
        );
        assert_eq!(verdict(b"Michael", addr("127.0.0.1:1024")), Verdict::Answer);
    }

    #[test]
    fn a_refusal_and_a_reset_both_mean_unreachable() {
        assert!(is_unreachable(&ErrorKind::ConnectionRefused.into()));
        assert!(is_unreachable(&ErrorKind::ConnectionReset.into()));
        assert!(!is_unreachable(&ErrorKind::TimedOut.into()));
        assert!(!is_unreachable(&ErrorKind::PermissionDenied.into()));
    }

    #[test]
    fn names_the_server_never_answers_are_refused() {
        let check = UdpClient::check_name;
        assert_eq!(check(b"Michael"), Ok(()));
        assert_eq!(check(b""), Ok(()));
        assert_eq!(check(&vec![b'a'; UdpClient::MAX_NAME]), Ok(()));
        let long = check(&vec![b'a'; UdpClient::MAX_NAME + 1]).unwrap_err();
        assert!(long.contains("65499 bytes") && long.len() < 200, "{long}");
        let shaped = check(b"Hello, Ada!").unwrap_err();
        assert!(shaped.contains("shaped like a greeting"), "{shaped}");
    }
}

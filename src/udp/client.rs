//! The UDP client: the original's `SocketUdpClient.py`, made to survive a lossy network. It sends
//! each name and waits for its greeting, sending again when none comes, and takes only the exact
//! greeting for the name in flight, so late, duplicated or forged datagrams change nothing.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use crate::protocol::{self, Shown};

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

/// What the error says when the server's port was reported unreachable.
const UNREACHABLE: &str = " (port unreachable)";

/// What the tries for one name saw besides its reply.
#[derive(Debug, Default)]
struct Seen {
    /// The server's port was reported unreachable.
    refused: bool,
    /// The last datagram from the server's port that was something else.
    wrong: Option<Vec<u8>>,
}

impl UdpClient {
    /// The wait for each reply that the `udp-client` binary uses unless told otherwise
    /// (`--timeout`).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

    /// How many times a name is sent again when its reply does not come, unless
    /// [`retries`](UdpClient::retries) sets another number.
    pub const DEFAULT_RETRIES: u32 = 3;

    /// The least a try waits for its reply, whatever the timeout: a reply gets a chance to
    /// come, and retries are never a burst of datagrams.
    pub const SHORTEST_TRY: Duration = Duration::from_millis(10);

    /// The longest name the client sends (65,499 bytes): its reply, 8 bytes longer, is then
    /// the largest datagram IPv4 carries, so the server can answer it.
    pub const MAX_NAME: usize = super::MAX_DATAGRAM - protocol::greeting_len(0);

    /// Checks that the UDP server can answer `name`.
    ///
    /// # Errors
    ///
    /// A message saying why not: it is longer than [`MAX_NAME`](UdpClient::MAX_NAME), or shaped
    /// like a greeting (`Hello, …!`), which the server never answers
    /// ([`UdpServer::run`](crate::UdpServer::run) says why).
    pub fn check_name(name: &[u8]) -> Result<(), String> {
        let (max, shown) = (Self::MAX_NAME, Shown(name));
        if name.len() > max {
            Err(format!(
                "a name cannot be longer than {max} bytes, or its reply would not fit in a \
                 datagram: {shown}"
            ))
        } else if protocol::is_greeting(name) {
            Err(format!(
                "{shown} is shaped like a greeting, which the server never answers"
            ))
        } else {
            Ok(())
        }
    }

    /// Opens a socket to talk to the first address `addr` resolves to, IPv4 first (so
    /// `localhost` reaches a server on 127.0.0.1 wherever the resolver puts `::1` first).
    ///
    /// Each try of a greeting waits `timeout` for its reply (at least
    /// [`SHORTEST_TRY`](UdpClient::SHORTEST_TRY)); a name is sent again
    /// [`DEFAULT_RETRIES`](UdpClient::DEFAULT_RETRIES) times unless
    /// [`retries`](UdpClient::retries) says otherwise.
    pub fn connect(addr: impl ToSocketAddrs, timeout: Duration) -> io::Result<Self> {
        let peer = crate::addr::resolve(addr)?[0];
        Ok(UdpClient {
            socket: crate::addr::ephemeral_socket_for(peer)?,
            peer,
            timeout,
            retries: Self::DEFAULT_RETRIES,
            buf: vec![0; super::RECV_BUFFER],
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

    /// Sends `name` and returns its reply, `Hello, NAME!`, after the server's id if it has one
    /// (`[s1] Hello, NAME!`: [`protocol::split_id`] splits it off).
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
        let mut seen = Seen::default();
        for _ in 0..tries {
            if self.try_once(name, &expected, &mut seen)? {
                return Ok(self.previous.clone());
            }
        }
        if let Some(got) = seen.wrong {
            return Err(protocol::mismatch(&expected, &got, false));
        }
        let why = if seen.refused { UNREACHABLE } else { "" };
        let plural = if tries == 1 { "try" } else { "tries" };
        let msg = format!("no reply from {} after {tries} {plural}{why}", self.peer);
        Err(io::Error::new(ErrorKind::TimedOut, msg))
    }

    /// Sends `name` once and waits one timeout for `expected`; returns whether it came, and keeps
    /// it as the reply before the next name's.
    fn try_once(&mut self, name: &[u8], expected: &[u8], seen: &mut Seen) -> io::Result<bool> {
        let deadline = crate::socket::Deadline::after(self.timeout.max(Self::SHORTEST_TRY));
        if let Err(err) = self.socket.send_to(name, self.peer) {
            seen.unless_unreachable(err)?; // s.sendto(data, addr)
        }
        let n = loop {
            // print(s.recv(1024).decode('utf-8')), for the reply to this name only.
            let received = deadline.read(|left| {
                self.socket.set_read_timeout(left)?;
                self.socket.recv_from(&mut self.buf)
            });
            match received {
                Ok((n, from)) => {
                    let datagram = &self.buf[..n];
                    match judge(datagram, from, self.peer, expected, &self.previous) {
                        Arrival::Reply => break n,
                        Arrival::Wrong => seen.wrong = Some(datagram.to_vec()),
                        Arrival::Stray => {}
                    }
                }
                Err(err) if err.kind() == ErrorKind::TimedOut => return Ok(false),
                Err(err) => seen.unless_unreachable(err)?,
            }
        };
        self.previous = self.buf[..n].to_vec();
        Ok(true)
    }
}

impl Seen {
    /// Notes that the server's port was reported unreachable, and returns any other error. A
    /// closed port ends no try early: it still waits its whole timeout, so that no setting of
    /// retries turns into a burst of datagrams.
    fn unless_unreachable(&mut self, err: io::Error) -> io::Result<()> {
        let unreachable = crate::socket::is_unreachable(&err);
        self.refused |= unreachable;
        if unreachable { Ok(()) } else { Err(err) }
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
/// (see [`UdpClient`]), but only from its own port, and may say its id first; a late copy of
/// the `previous` reply is not news.
fn judge(
    datagram: &[u8],
    from: SocketAddr,
    peer: SocketAddr,
    expected: &[u8],
    previous: &[u8],
) -> Arrival {
    let reply = protocol::split_id(datagram).1 == expected;
    match reply {
        _ if from.port() != peer.port() || (datagram == previous && !reply) => Arrival::Stray,
        true => Arrival::Reply,
        false => Arrival::Wrong,
    }
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
        // A server with an id says it first.
        assert_eq!(judged(b"[s1] Hello, Ada!", peer), Arrival::Reply);
        assert_eq!(judged(b"[s1] Hello, Bob!", peer), Arrival::Wrong);
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

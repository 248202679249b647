//! The TCP client: the original's `SocketTcpClient.py`, made to check every reply. It connects
//! and checks the welcome, sends each name bare as the original does, and reads until the whole
//! greeting has come, however the network split it, failing with one clear error otherwise.

use std::io::{self, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::proxy::{self, ProxyHeader};
use crate::addr::first_that_works;
use crate::duration::Dur;
use crate::protocol::{self, Arriving, EXIT, Shown, WELCOME, split_id};
use crate::socket::{Deadline, timed_out};

/// A client of the TCP greeting server that sends names bare, as the original client does.
#[derive(Debug)]
pub struct TcpClient {
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    buf: Vec<u8>,
    /// The welcome as the server said it: `Welcome!`, or `[ID] Welcome!` from one with an id.
    welcome: Vec<u8>,
}

/// Why [`TcpClient::connect`] failed: no connection was made, or one was, and its server did not
/// welcome the client as a greeting server does. Port checks and balancer tests tell the two
/// apart; `?` turns either into its `io::Error`.
#[derive(Debug)]
pub enum ConnectError {
    /// No connection: refused, unreachable, no answer to the connect, or no address to try.
    Connect(io::Error),
    /// Connected, but no welcome came within the timeout, a wrong one, or the server closed
    /// first.
    Welcome(io::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Connect(err) => write!(f, "{err}"),
            ConnectError::Welcome(err) => write!(f, "connected, but no welcome: {err}"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl From<ConnectError> for io::Error {
    fn from(err: ConnectError) -> Self {
        match err {
            ConnectError::Connect(err) => err,
            ConnectError::Welcome(ref inner) => io::Error::new(inner.kind(), err.to_string()),
        }
    }
}

impl TcpClient {
    /// The limit on connecting and on each reply that the `tcp-client` binary uses unless told
    /// otherwise (`--timeout`).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// The longest name the client sends: 536 bytes. The server takes each read as one message,
    /// so a name must reach it in one piece; 536 bytes is what every TCP segment can carry (the
    /// least maximum segment size any IPv4 network uses), and a longer name may come through a
    /// real network in two pieces, and back as two replies.
    pub const MAX_NAME: usize = 536;

    /// Checks that `name` can be sent bare over TCP and come back as one reply.
    ///
    /// # Errors
    ///
    /// A message saying why not: it is empty (nothing would be sent), longer than
    /// [`MAX_NAME`](TcpClient::MAX_NAME), holds a newline (which would switch the server to line
    /// mode), or is the exit word.
    pub fn check_name(name: &[u8]) -> Result<(), String> {
        let (max, shown) = (Self::MAX_NAME, Shown(name));
        match name {
            [] => Err("a name cannot be empty".to_string()),
            _ if name.len() > max => Err(format!(
                "a name cannot be longer than {max} bytes, or a network may split it and the \
                 server answer each piece: {shown}"
            )),
            _ if name.contains(&b'\n') => Err(format!("a name cannot hold a newline: {shown}")),
            EXIT => Err(format!("{shown} is the exit word, not a name")),
            _ => Ok(()),
        }
    }

    /// Connects to `addr` and reads the welcome, checking that it is `Welcome!`, after the
    /// server's id if it has one (`[s1] Welcome!`).
    ///
    /// `timeout` bounds the connect (per address `addr` resolves to, IPv4 first) and each reply
    /// from then on.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Connect`] with the last connect failure; [`ConnectError::Welcome`] when
    /// the server, once connected, says nothing within the timeout (`TimedOut`), closes first
    /// (`UnexpectedEof`), or says something else first (`InvalidData`).
    pub fn connect(addr: impl ToSocketAddrs, timeout: Duration) -> Result<Self, ConnectError> {
        Self::open(addr, timeout, None)
    }

    /// Connects as [`connect`](TcpClient::connect) does, but first sends a PROXY protocol
    /// header of `version` that names the connection's own ends (this client as the source,
    /// the server as the destination), as a load balancer would: to test a server that expects
    /// one, such as `tcp-server --proxy-protocol`.
    ///
    /// # Errors
    ///
    /// As [`connect`](TcpClient::connect); a server that expects no header greets it as a name,
    /// and so fails the check of the welcome only later, if at all.
    pub fn connect_with_proxy_header(
        addr: impl ToSocketAddrs,
        timeout: Duration,
        version: ProxyHeader,
    ) -> Result<Self, ConnectError> {
        Self::open(addr, timeout, Some(version))
    }

    fn open(
        addr: impl ToSocketAddrs,
        timeout: Duration,
        header: Option<ProxyHeader>,
    ) -> Result<Self, ConnectError> {
        let connect = |peer| io::Result::Ok((TcpStream::connect_timeout(&peer, timeout)?, peer));
        let (stream, peer) = first_that_works(addr, connect).map_err(ConnectError::Connect)?;
        let client = TcpClient {
            stream,
            peer,
            timeout,
            buf: Vec::new(),
            welcome: Vec::new(),
        };
        client.welcomed(header).map_err(ConnectError::Welcome)
    }

    /// Sends the PROXY `header` if there is one, and reads the welcome: the client, welcomed.
    fn welcomed(mut self, header: Option<ProxyHeader>) -> io::Result<Self> {
        self.stream.set_nodelay(true)?;
        self.stream.set_write_timeout(Some(self.timeout))?;
        if let Some(version) = header {
            let header = proxy::header(version, self.stream.local_addr()?, self.peer);
            self.stream.write_all(&header)?;
        }
        self.welcome = self.read_reply(WELCOME, true)?;
        Ok(self)
    }

    /// Returns the welcome as the server said it: `Welcome!`, or `[ID] Welcome!` from a server
    /// with an id.
    pub fn welcome(&self) -> &[u8] {
        &self.welcome
    }

    /// Returns the id the server said before its welcome, if it has one: which server a load
    /// balancer chose.
    pub fn server_id(&self) -> Option<&[u8]> {
        split_id(&self.welcome).0
    }

    /// Returns the server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Returns the client's own address: the one a PROXY header it sent names as the source.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// Sends `name` and returns the whole reply, `Hello, NAME!`, however many reads it takes.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a name [`check_name`](TcpClient::check_name) refuses; a timeout;
    /// `UnexpectedEof` if the server hangs up first; `InvalidData` if the reply is not the
    /// greeting for `name`.
    pub fn greet(&mut self, name: &[u8]) -> io::Result<Vec<u8>> {
        Self::check_name(name).map_err(|msg| io::Error::new(ErrorKind::InvalidInput, msg))?;
        self.stream.write_all(name).map_err(|err| self.timed(err))?;
        self.read_reply(&protocol::greeting(name), false)
    }

    /// Sends the exit word and closes the connection.
    pub fn exit(mut self) -> io::Result<()> {
        self.stream.write_all(EXIT).map_err(|err| self.timed(err))
    }

    /// Reads until `expected` has arrived whole, after a server's id if `tagged`, failing as
    /// soon as the bytes differ from it.
    ///
    /// Each reply gets the whole timeout, however the one before it was split.
    fn read_reply(&mut self, expected: &[u8], tagged: bool) -> io::Result<Vec<u8>> {
        let deadline = Deadline::after(self.timeout);
        // Room for one byte more than expected (and an id), so a longer reply shows up as a
        // mismatch.
        let id = if tagged { protocol::MAX_ID + 3 } else { 0 };
        self.buf.resize(expected.len() + id + 1, 0);
        let mut got = 0;
        loop {
            let read = deadline.read_from(&self.stream, &mut self.buf[got..]);
            let n = read.map_err(|err| self.timed(err))?;
            got += n;
            let arrived = &self.buf[..got];
            if n == 0 {
                let after = (got > 0).then(|| format!(" after {}", Shown(arrived)));
                let what = format!("closed the connection{}", after.unwrap_or_default());
                return Err(io::Error::new(ErrorKind::UnexpectedEof, what));
            }
            match protocol::arriving(arrived, expected, tagged) {
                Arriving::More => {}
                Arriving::Whole => return Ok(arrived.to_vec()),
                Arriving::Wrong => return Err(self.unexpected(expected, got)),
            }
        }
    }

    /// Builds the error for a reply that is not `expected`, after a short look for the rest of
    /// what came, so that the message can say how long it was (or that it was longer than the
    /// kilobyte past `expected` the look takes at most).
    fn unexpected(&mut self, expected: &[u8], mut got: usize) -> io::Error {
        let most = expected.len() + 1024;
        self.buf.resize(most + 1, 0);
        let deadline = Deadline::after(Duration::from_millis(50));
        while got <= most {
            match deadline.read_from(&self.stream, &mut self.buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        protocol::mismatch(expected, &self.buf[..got.min(most)], got > most)
    }

    /// Turns a socket timeout into an error that names the limit.
    fn timed(&self, err: io::Error) -> io::Error {
        timed_out(err, || format!("no answer within {}", Dur(self.timeout)))
    }
}

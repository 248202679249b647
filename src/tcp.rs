//! The TCP side of the tutorial: `SocketTcpServer.py` and `SocketTcpClient.py`.
//!
//! # Where the original went
//!
//! | SocketTcpServer.py | here |
//! | --- | --- |
//! | `s.bind(('127.0.0.1', 9999))`, `s.listen(5)` | [`TcpServer::bind`] |
//! | `print('TCPServer is waiting for connection...')` | the `tcp-server` binary |
//! | `while True: sock, addr = s.accept()` | the loop in [`TcpServer::run`] |
//! | `threading.Thread(target=tcplink, ...).start()` | `spawn_connections`: one thread per connection |
//! | `def tcplink(sock, addr)`, its two `print`s | `serve` |
//! | `sock.send(b'Welcome!')`, then `while True: data = sock.recv(1024)`, `time.sleep(1)`, `if not data or … == 'exit': break`, `sock.send(…)` | `handle_connection`: read, decide (`replies`, a pure function), write once |
//! | `sock.close()` | the end of `handle_connection` (the stream is dropped) |
//!
//! | SocketTcpClient.py | here |
//! | --- | --- |
//! | `s.connect(('127.0.0.1', 9999))`, `print(s.recv(1024)…)` | [`TcpClient::connect`], which checks the welcome |
//! | `s.send(data)`, `print(s.recv(1024)…)` | [`TcpClient::greet`] |
//! | `s.send(b'exit')`, `s.close()` | [`TcpClient::exit`] |
//!
//! # What was added, and why
//!
//! The original's loop is the heart of this module and reads the same; what surrounds it keeps
//! one misbehaving peer, or many, from costing anyone else:
//!
//! - **Line mode.** The original takes each `recv` as one message, which works only for a client
//!   that waits for each reply. The framing (`protocol::Framer`) does the same until the first
//!   newline and then reads lines, so `nc` and `telnet` get one reply per line; a line is capped
//!   at 64 KiB, and the peer is told `error: line too long`.
//! - **Timeouts.** A peer that sends nothing, or reads nothing, for the idle timeout is closed;
//!   the original waits forever and keeps the thread.
//! - **A connection limit.** Past it a new connection gets `busy: …` instead of a thread, with a
//!   lingering close so the line is not lost to a reset; the limit also keeps below the
//!   process's open-file limit, and a spare descriptor answers whoever comes when none is left.
//! - **A fast accept loop.** Spawning a thread costs far more than accepting: a helper thread
//!   spawns while the loop only accepts, so a burst of connects does not overflow the kernel's
//!   queue, where connections can hang unanswered.
//! - **The client checks what it gets.** [`TcpClient`] puts a reply split by the network back
//!   together, refuses names the server would answer in pieces or not at all, and turns every
//!   failure into one clear error.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::addr::first_that_works;
use crate::backoff::Backoff;
use crate::duration::Human;
use crate::fdlimit::{self, Spare};
use crate::linger::{Lingerer, close_gracefully};
use crate::log::Log;
use crate::protocol::{self, EXIT, Framer, LINE_TOO_LONG, Message, Shown, WELCOME};
use crate::rate_limit::RateLimited;
use crate::stop::{Poke, StopHandle};

/// The line a connection over the connection limit gets before it is closed.
const BUSY: &[u8] = b"busy: too many connections, try again later\n";

/// The stack each connection thread gets. The handler's frames are small and its buffers live on
/// the heap, so a small stack lets thousands of idle connections fit in little memory.
const CONNECTION_STACK_SIZE: usize = 64 * 1024;

/// What each connection's handler needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnectionConfig {
    /// The pause before each reply, as the original's `time.sleep(1)`; zero for none.
    delay: Duration,
    /// How long the peer may send nothing, or take nothing we send, before the connection is
    /// closed; `None` for no limit.
    idle_timeout: Option<Duration>,
}

/// A TCP greeting server: a bound listener, ready to [`run`](TcpServer::run).
#[derive(Debug)]
pub struct TcpServer {
    listener: TcpListener,
    stop: StopHandle,
    config: ConnectionConfig,
    max_connections: usize,
    log: Log,
    reports: Log,
    /// Whether the descriptor table has room for the connection limit already.
    reserved: bool,
}

impl TcpServer {
    /// The limit on live connections unless [`max_connections`](TcpServer::max_connections)
    /// sets another.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

    /// How long a connection may stay idle unless [`idle_timeout`](TcpServer::idle_timeout) sets
    /// another.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

    /// Binds a TCP listener to `addr`, trying each address it resolves to in turn, IPv4 first
    /// (so `localhost` means 127.0.0.1 wherever the resolver puts `::1` first).
    ///
    /// The server starts with the defaults: no delay, a 5-minute idle timeout, at most 1,024 live
    /// connections, a quiet log, and reports on stderr.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        let listener = first_that_works(addr, TcpListener::bind)?;
        let stop = StopHandle::new(listener.local_addr()?, Poke::Connect);
        Ok(TcpServer {
            listener,
            stop,
            config: ConnectionConfig {
                delay: Duration::ZERO,
                idle_timeout: Some(Self::DEFAULT_IDLE_TIMEOUT),
            },
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            log: Log::quiet(),
            reports: Log::stderr(),
            reserved: false,
        })
    }

    /// Sets the pause before each reply (the original's `time.sleep(1)` is `1s`).
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.config.delay = delay;
        self
    }

    /// Sets how long a connection may stay idle; `None` for no limit.
    #[must_use]
    pub fn idle_timeout(mut self, idle_timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = idle_timeout;
        self
    }

    /// Sets how many connections may be live at once; further ones are turned away.
    ///
    /// Where the process's open-file limit would not leave a descriptor for each, `run` lowers
    /// it and says so on the reports log.
    #[must_use]
    pub fn max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Sets where the per-connection lines (`Accept new connection from …`) go.
    #[must_use]
    pub fn log(mut self, log: Log) -> Self {
        self.log = log;
        self
    }

    /// Sets where the server reports failures and refusals (`IP:PORT: idle for 5m, closed`);
    /// the shared [`Log::stderr`] unless set.
    #[must_use]
    pub fn reports(mut self, reports: Log) -> Self {
        self.reports = reports;
        self
    }

    /// Returns the address actually bound; bind port 0 and ask here for the port the OS picked.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Returns a handle that stops [`run`](TcpServer::run) from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Makes room in the process's descriptor table for as many connections as may be live, now
    /// (on Linux; elsewhere it does nothing).
    ///
    /// Linux grows a descriptor table by doubling, and once threads share the table each growth
    /// waits for an RCU grace period, milliseconds in which nothing is accepted: long enough for
    /// a burst of connects to overflow the listen queue (128 deep in std), where connections can
    /// hang unanswered. Growing it once, while the process has one thread, takes that stall out
    /// of serving. [`run`](TcpServer::run) does it first thing if it has not been done; call it
    /// before anything starts a thread (the first line to a [`Log`] starts one), and before
    /// telling clients the server is there, as the `tcp-server` binary does.
    pub fn reserve_descriptors(&mut self) {
        #[cfg(target_os = "linux")]
        reserve_descriptors(&self.listener, self.connections_allowed().0);
        self.reserved = true;
    }

    /// Accepts connections until stopped, each served on a thread of its own: the original's
    /// `while True: accept()` loop.
    ///
    /// It does not join the connection threads: each one ends when its client sends the exit
    /// word, hangs up or goes idle, also after `run` has returned. Failures of one connection, of
    /// `accept` or of a thread spawn are reported and never end the loop.
    pub fn run(mut self) -> io::Result<()> {
        if !self.reserved {
            self.reserve_descriptors();
        }
        let (max_connections, limit) = self.connections_allowed();
        if let Some(limit) = limit {
            self.reports.line(format_args!(
                "the open-file limit ({limit}) allows {max_connections} live connections, not \
                 {}; raise it with ulimit -n for more",
                self.max_connections
            ));
        }
        let live = Arc::new(AtomicUsize::new(0));
        // Spawning a thread costs far more than accepting. Handing the spawn to a helper keeps
        // the accept loop fast enough to drain the kernel's queue (128 deep in std) during a
        // burst of connects; a connection waits in our queue instead, already established.
        let (handoff, accepted) = mpsc::sync_channel(4096);
        let (config, log, reports) = (self.config, self.log.clone(), self.reports.clone());
        let spawner = thread::Builder::new()
            .name("spawner".into())
            .spawn(move || spawn_connections(accepted, config, log, reports))?;
        let lingerer = Lingerer::start()?;
        let mut spare = Spare::new();
        let mut backoff = Backoff::default();
        let mut accept_errors = RateLimited::new(Duration::from_secs(1));
        let mut turned_away = RateLimited::new(Duration::from_secs(1));
        loop {
            let accepted = self.listener.accept();
            if self.stop.is_stopped() {
                break;
            }
            match accepted {
                Ok((stream, peer)) if live.load(Ordering::Acquire) >= max_connections => {
                    backoff.reset();
                    turn_away(stream, &lingerer);
                    turned_away.report(
                        &self.reports,
                        format_args!("{peer}: turned away, {max_connections} connections are open"),
                    );
                }
                Ok((stream, peer)) => {
                    backoff.reset();
                    if handoff.send((stream, peer, Slot::take(&live))).is_err() {
                        break;
                    }
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                // Out of descriptors, the connection waiting in the kernel's queue is still
                // answered: with the spare descriptor, accepted, told busy, closed.
                Err(err) if fdlimit::is_out_of_descriptors(&err) && spare.is_held() => {
                    if let Ok((mut stream, peer)) = spare.accept(&self.listener) {
                        // A fresh socket's send buffer is empty: this write cannot block.
                        let _ = stream.write_all(BUSY);
                        drop(stream);
                        turned_away.report(
                            &self.reports,
                            format_args!("{peer}: turned away, out of file descriptors ({err})"),
                        );
                    }
                    spare.refill();
                }
                Err(err) => {
                    spare.refill();
                    accept_errors.report(
                        &self.reports,
                        format_args!("failed to accept a connection: {err}"),
                    );
                    thread::sleep(backoff.next_pause());
                }
            }
        }
        drop(handoff);
        if spawner.join().is_err() {
            return Err(io::Error::other("the connection spawner panicked"));
        }
        self.log.flush();
        self.reports.flush();
        Ok(())
    }

    /// Returns how many connections may be live at once: the configured limit, or less where
    /// the open-file limit would not leave a descriptor for each; then also that limit.
    fn connections_allowed(&self) -> (usize, Option<usize>) {
        let limit = fdlimit::open_file_limit();
        let allowed = fdlimit::connections_allowed(self.max_connections, limit);
        (allowed, limit.filter(|_| allowed < self.max_connections))
    }
}

/// Opens throwaway descriptors for `connections` and some headroom and closes them again, so
/// that the table has room for them ([`TcpServer::reserve_descriptors`] says why). The table
/// never shrinks, and this stops at the first failure (the open-file limit). Other systems grow
/// their tables differently, and there this would only slow the start down.
#[cfg(target_os = "linux")]
fn reserve_descriptors(listener: &TcpListener, connections: usize) {
    // The listener, stdio, the logs, a stop poke, connections being turned away.
    const HEADROOM: usize = 64;
    // The table costs 8 bytes a descriptor; past a million, the limit is elsewhere.
    const MOST: usize = 1 << 20;
    let wanted = connections.saturating_add(HEADROOM).min(MOST);
    let mut throwaway = Vec::new();
    while throwaway.len() < wanted {
        match listener.try_clone() {
            Ok(dup) => throwaway.push(dup),
            Err(_) => break,
        }
    }
}

/// Gives each accepted connection its own thread, until the accept loop hangs up: the
/// original's `threading.Thread(target=tcplink, args=(sock, addr)).start()`.
fn spawn_connections(
    accepted: mpsc::Receiver<(TcpStream, SocketAddr, Slot)>,
    config: ConnectionConfig,
    log: Log,
    reports: Log,
) {
    let mut failures = RateLimited::new(Duration::from_secs(1));
    for (stream, peer, slot) in accepted {
        let (log, its_reports) = (log.clone(), reports.clone());
        let spawned = thread::Builder::new()
            .stack_size(CONNECTION_STACK_SIZE)
            .spawn(move || serve(stream, peer, slot, &config, &log, &its_reports));
        if let Err(err) = spawned {
            failures.report(
                &reports,
                format_args!("{peer}: cannot start a thread: {err}"),
            );
        }
    }
}

/// One live connection's claim on the connection limit, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::AcqRel);
        Slot(Arc::clone(live))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn turn_away(mut stream: TcpStream, lingerer: &Lingerer) {
    // A fresh socket's send buffer is empty, so this write cannot block; if the peer is already
    // gone there is nobody to tell.
    let _ = stream.write_all(BUSY);
    // The peer may have sent its name already; a plain close would then reset the connection,
    // and the peer could lose the busy line.
    lingerer.close(stream);
}

/// The original's `tcplink`: logs the connection's start and end around the conversation.
///
/// The slot is given back as soon as the connection is closed, before the line that says so:
/// whoever reads `closed` in the log may connect again at once and find the slot free.
fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    config: &ConnectionConfig,
    log: &Log,
    reports: &Log,
) {
    log.line(format_args!("Accept new connection from {peer}..."));
    let result = handle_connection(stream, config);
    drop(slot);
    if let Err(err) = result {
        reports.line(format_args!("{peer}: {err}"));
    }
    log.line(format_args!("Connection from {peer} closed."));
}

/// The conversation of the original's `tcplink`: the welcome, then for each read the replies
/// to what it held, until the exit word or the end of the stream; then the stream is closed.
///
/// Read, decide, write once: `replies` (pure) turns what was read into the bytes to send, and
/// `send` is the one place that writes, one write per read (with a delay, one per reply, each
/// after its pause). Blocks for the life of the connection.
///
/// # Errors
///
/// I/O failures, an idle peer (kind `TimedOut`), and a line longer than 64 KiB (kind
/// `InvalidData`, after telling the peer).
fn handle_connection(mut stream: TcpStream, config: &ConnectionConfig) -> io::Result<()> {
    // A reply is a single small write; without NODELAY it could wait ~40 ms for a delayed ACK.
    stream.set_nodelay(true)?;
    stream.set_read_timeout(config.idle_timeout)?;
    stream.set_write_timeout(config.idle_timeout)?;
    let idle = |err: io::Error| idle_error(err, config.idle_timeout);
    let mut framer = Framer::new();
    // sock.send(b'Welcome!'): the first thing said, by the same write as every reply.
    let mut out = WELCOME.to_vec();
    let mut ends = Vec::new();
    let mut next = Ok(Next::Read);
    loop {
        send(&mut stream, &out, &ends, config.delay).map_err(idle)?;
        out.clear();
        ends.clear();
        match next {
            Ok(Next::Read) => {}
            Ok(Next::Close) => return Ok(()),
            Err(err) => {
                // The rest of the line is still streaming in; closing on it unread would reset
                // the connection, and the peer could lose the error line.
                close_gracefully(stream);
                return Err(err);
            }
        }
        let read = match stream.read(framer.spare()) {
            Ok(read) => read,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(idle(err)),
        };
        next = replies(&mut framer, read, &mut out, &mut ends);
    }
}

/// What a connection does once the replies to a read are sent.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Read again.
    Read,
    /// Close: the peer said the exit word or ended the stream.
    Close,
}

/// Takes a read of `read` bytes (0: the end of the stream) into `framer` and appends the reply to
/// every whole message to `out`, recording where each reply ends in `ends`. Pure: no socket.
///
/// # Errors
///
/// A line longer than 64 KiB: `out` then ends with the error line for the peer.
fn replies(
    framer: &mut Framer,
    read: usize,
    out: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) -> io::Result<Next> {
    let mut answer = |name: &[u8], ending: &[u8], out: &mut Vec<u8>| {
        protocol::push_greeting(out, name, ending);
        ends.push(out.len());
    };
    if read == 0 {
        // A partial line left at the end of the stream is answered, without a line ending.
        if let Some(Message::Name { name, ending }) = framer.finish() {
            answer(name, ending, out);
        }
        return Ok(Next::Close);
    }
    framer.filled(read);
    loop {
        match framer.next_message() {
            Ok(Some(Message::Name { name, ending })) => answer(name, ending, out),
            Ok(Some(Message::Exit)) => return Ok(Next::Close),
            Ok(None) => return Ok(Next::Read),
            Err(err) => {
                out.extend_from_slice(LINE_TOO_LONG);
                return Err(err);
            }
        }
    }
}

/// Writes `out`: at once, or with a delay one reply at a time, each after its pause, as the
/// original sleeps before every reply. Bytes after the last reply (the error line for a line too
/// long) go without a pause.
fn send(stream: &mut TcpStream, out: &[u8], ends: &[usize], delay: Duration) -> io::Result<()> {
    if delay.is_zero() {
        return stream.write_all(out);
    }
    let mut start = 0;
    for &end in ends {
        thread::sleep(delay);
        stream.write_all(&out[start..end])?;
        start = end;
    }
    stream.write_all(&out[start..])
}

/// Turns the error a socket timeout gives (`WouldBlock` on Unix) into one that says what happened.
fn idle_error(err: io::Error, idle_timeout: Option<Duration>) -> io::Error {
    match (err.kind(), idle_timeout) {
        (ErrorKind::WouldBlock | ErrorKind::TimedOut, Some(limit)) => io::Error::new(
            ErrorKind::TimedOut,
            format!("idle for {}, closed", Human(limit)),
        ),
        _ => err,
    }
}

/// A client of the TCP greeting server that sends names bare, as the original client does.
#[derive(Debug)]
pub struct TcpClient {
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    buf: Vec<u8>,
}

impl TcpClient {
    /// The limit on connecting and on each reply that the `tcp-client` binary uses unless told
    /// otherwise (`--timeout`).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// The longest name the client sends: the server takes one read of up to this many bytes
    /// (8 KiB) as one message, so a longer name would come back as two replies.
    pub const MAX_NAME: usize = protocol::READ_SIZE;

    /// Checks that `name` can be sent bare over TCP and come back as one reply.
    ///
    /// # Errors
    ///
    /// A message saying why not: it is empty (nothing would be sent), longer than
    /// [`MAX_NAME`](TcpClient::MAX_NAME), holds a newline (which would switch the server to line
    /// mode), or is the exit word.
    pub fn check_name(name: &[u8]) -> Result<(), String> {
        if name.is_empty() {
            Err("a name cannot be empty".to_string())
        } else if name.len() > Self::MAX_NAME {
            Err(format!(
                "a name cannot be longer than {} bytes, the most the server reads as one \
                 message: {}",
                Self::MAX_NAME,
                Shown(name)
            ))
        } else if name.contains(&b'\n') {
            Err(format!("a name cannot hold a newline: {}", Shown(name)))
        } else if name == EXIT {
            Err(format!("{} is the exit word, not a name", Shown(name)))
        } else {
            Ok(())
        }
    }

    /// Connects to `addr` and reads the welcome, checking that it is `Welcome!`.
    ///
    /// `timeout` bounds the connect (per address `addr` resolves to, IPv4 first) and each reply
    /// from then on.
    ///
    /// # Errors
    ///
    /// The last connect failure, a timeout, or `InvalidData` if the server's first words are not
    /// `Welcome!`.
    pub fn connect(addr: impl ToSocketAddrs, timeout: Duration) -> io::Result<Self> {
        let (stream, peer) = first_that_works(addr, |peer| {
            Ok((TcpStream::connect_timeout(&peer, timeout)?, peer))
        })?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(timeout))?;
        let mut client = TcpClient {
            stream,
            peer,
            timeout,
            buf: Vec::new(),
        };
        client.read_reply(WELCOME)?;
        Ok(client)
    }

    /// Returns the server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
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
        self.read_reply(&protocol::greeting(name))
    }

    /// Sends the exit word and closes the connection.
    pub fn exit(mut self) -> io::Result<()> {
        self.stream.write_all(EXIT).map_err(|err| self.timed(err))
    }

    /// Reads until `expected` has arrived whole, failing as soon as the bytes differ from it.
    ///
    /// Each reply gets the whole timeout, however the one before it was split.
    fn read_reply(&mut self, expected: &[u8]) -> io::Result<Vec<u8>> {
        // A timeout too large for the clock means no deadline at all, not a panic.
        let deadline = Instant::now().checked_add(self.timeout);
        self.stream.set_read_timeout(Some(self.timeout))?;
        self.buf.clear();
        // Room for one byte more than expected, so a longer reply shows up as a mismatch.
        self.buf.resize(expected.len() + 1, 0);
        let mut got = 0;
        loop {
            let n = match self.stream.read(&mut self.buf[got..]) {
                Ok(n) => n,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => return Err(self.timed(err)),
            };
            got += n;
            let arrived = &self.buf[..got];
            if n == 0 {
                let what = if got == 0 {
                    "closed the connection".to_string()
                } else {
                    format!("closed the connection after {}", Shown(arrived))
                };
                return Err(io::Error::new(ErrorKind::UnexpectedEof, what));
            }
            if !expected.starts_with(arrived) {
                return Err(self.unexpected(expected, got));
            }
            if got == expected.len() {
                return Ok(arrived.to_vec());
            }
            // The rest of the reply gets what is left of this reply's window, not a new one.
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(self.timed(ErrorKind::TimedOut.into()));
                }
                self.stream.set_read_timeout(Some(left))?;
            }
        }
    }

    /// Builds the error for a reply that is not `expected`, after a short look for the rest of it.
    fn unexpected(&mut self, expected: &[u8], mut got: usize) -> io::Error {
        const SHOWN: usize = 80;
        if got < SHOWN {
            self.buf.resize(SHOWN, 0);
            let _ = self
                .stream
                .set_read_timeout(Some(Duration::from_millis(50)));
            if let Ok(n) = self.stream.read(&mut self.buf[got..]) {
                got += n;
            }
        }
        io::Error::new(
            ErrorKind::InvalidData,
            format!(
                "expected {} but got {}",
                Shown(expected),
                Shown(&self.buf[..got])
            ),
        )
    }

    /// Turns a socket timeout (`WouldBlock` on Unix) into an error that names the limit.
    fn timed(&self, err: io::Error) -> io::Error {
        match err.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => io::Error::new(
                ErrorKind::TimedOut,
                format!("no answer within {}", Human(self.timeout)),
            ),
            _ => err,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `replies` made of one read.
    struct Answered {
        out: Vec<u8>,
        ends: Vec<usize>,
        next: io::Result<Next>,
    }

    /// Feeds `bytes` to a fresh framer (in line mode if `lines`) as one read.
    fn answer(bytes: &[u8], lines: bool) -> Answered {
        let mut framer = Framer::new();
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        if lines {
            framer.feed(b"\n");
            framer.next_message().expect("an empty line is a name");
        }
        framer.spare()[..bytes.len()].copy_from_slice(bytes);
        let next = replies(&mut framer, bytes.len(), &mut out, &mut ends);
        Answered { out, ends, next }
    }

    #[test]
    fn a_raw_read_is_one_reply() {
        let answered = answer(b"Jaber", false);
        assert_eq!(answered.out, b"Hello, Jaber!");
        assert_eq!(answered.ends, [13]);
        assert_eq!(answered.next.unwrap(), Next::Read);
    }

    #[test]
    fn pipelined_lines_are_one_write_with_a_boundary_per_reply() {
        let answered = answer(b"Ada\r\nBob\n", true);
        assert_eq!(answered.out, b"Hello, Ada!\r\nHello, Bob!\n");
        assert_eq!(answered.ends, [13, 25]);
        assert_eq!(answered.next.unwrap(), Next::Read);
    }

    #[test]
    fn the_exit_word_closes_after_the_replies_before_it() {
        let answered = answer(b"Ada\nexit\nnever\n", true);
        assert_eq!(answered.out, b"Hello, Ada!\n");
        assert_eq!(answered.next.unwrap(), Next::Close);
        let answered = answer(b"exit", false);
        assert_eq!(answered.out, b"");
        assert_eq!(answered.next.unwrap(), Next::Close);
    }

    #[test]
    fn the_end_of_the_stream_answers_a_partial_line_and_closes() {
        let mut framer = Framer::new();
        framer.feed(b"x\nhalf");
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        let spare = framer.spare();
        spare[..3].copy_from_slice(b"way");
        assert_eq!(
            replies(&mut framer, 3, &mut out, &mut ends).unwrap(),
            Next::Read
        );
        assert_eq!(out, b"Hello, x!\n");
        assert_eq!(
            replies(&mut framer, 0, &mut out, &mut ends).unwrap(),
            Next::Close
        );
        assert_eq!(out, b"Hello, x!\nHello, halfway!");
        assert_eq!(ends, [10, 25]);
    }

    #[test]
    fn a_line_too_long_ends_with_the_error_line() {
        let mut framer = Framer::new();
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        framer.feed(b"Ada\n");
        let mut next = Ok(Next::Read);
        for _ in 0..20 {
            let spare = framer.spare();
            spare[..4096].fill(b'y');
            next = replies(&mut framer, 4096, &mut out, &mut ends);
            if next.is_err() {
                break;
            }
        }
        let err = next.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert_eq!(out, b"Hello, Ada!\nerror: line too long\n");
        assert_eq!(ends, [12]);
    }
}

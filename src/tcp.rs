//! The TCP side: [`TcpServer`] accepts connections and gives each its own thread running
//! [`handle_connection`]; [`TcpClient`] is the other end, one name at a time.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::duration::Human;
use crate::fdlimit::{self, Spare};
use crate::linger::{Lingerer, close_gracefully};
use crate::log::{Log, RateLimited};
use crate::protocol::{self, EXIT, Framer, LINE_TOO_LONG, Message, Shown, WELCOME};
use crate::resolve::first_that_works;
use crate::stop::{Poke, StopHandle};

/// The line a connection over `--max-connections` gets before it is closed.
pub const BUSY: &[u8] = b"busy: too many connections, try again later\n";

/// The default limit on live connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The default time a connection may send nothing (or not read) before it is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Descriptors beyond one per connection: the listener, stdio, the log, a stop poke.
#[cfg(target_os = "linux")]
const DESCRIPTOR_HEADROOM: usize = 64;

/// The most descriptors made room for up front (the table for them costs 8 bytes each).
#[cfg(target_os = "linux")]
const MAX_DESCRIPTOR_RESERVE: usize = 1 << 20;

/// The stack each connection thread gets. The handler's frames are small and its buffers live on
/// the heap, so a small stack lets thousands of idle connections fit in little memory.
pub const CONNECTION_STACK_SIZE: usize = 64 * 1024;

/// What each connection's handler needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// The pause before each reply, as the original's `time.sleep(1)`; zero for none.
    pub delay: Duration,
    /// How long the peer may send nothing, or take nothing we send, before the connection is
    /// closed; `None` for no limit.
    pub idle_timeout: Option<Duration>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            delay: Duration::ZERO,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
        }
    }
}

/// A TCP greeting server: a bound listener, ready to [`run`](TcpServer::run).
pub struct TcpServer {
    listener: TcpListener,
    stop: StopHandle,
    config: ConnectionConfig,
    max_connections: usize,
    log: Log,
    reports: Log,
}

impl TcpServer {
    /// Binds a TCP listener to `addr`, trying each address it resolves to in turn, IPv4 first
    /// (so `localhost` means 127.0.0.1 wherever the resolver puts `::1` first).
    ///
    /// The server starts with the defaults: no delay, a 5-minute idle timeout, at most 1,024 live
    /// connections, and a quiet log.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        let listener = first_that_works(addr, TcpListener::bind)?;
        let stop = StopHandle::new(listener.local_addr()?, Poke::Connect);
        let server = TcpServer {
            listener,
            stop,
            config: ConnectionConfig::default(),
            max_connections: 0,
            log: Log::quiet(),
            reports: Log::stderr(),
        };
        Ok(server.max_connections(DEFAULT_MAX_CONNECTIONS))
    }

    /// Sets the pause before each reply.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.config.delay = delay;
        self
    }

    /// Sets how long a connection may stay idle; `None` for no limit.
    pub fn idle_timeout(mut self, idle_timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = idle_timeout;
        self
    }

    /// Sets how many connections may be live at once; further ones are turned away.
    ///
    /// On Linux it also makes room for that many descriptors in the process now, as far as its
    /// limit on open files allows, so the first burst of connections does not have to wait for it.
    pub fn max_connections(mut self, max_connections: usize) -> Self {
        #[cfg(target_os = "linux")]
        if max_connections > self.max_connections {
            self.grow_descriptor_table(max_connections.saturating_add(DESCRIPTOR_HEADROOM));
        }
        self.max_connections = max_connections;
        self
    }

    /// Opens up to `count` throwaway descriptors and closes them again.
    ///
    /// The kernel grows a process's descriptor table by doubling, and once other threads share
    /// the table each growth waits for an RCU grace period, milliseconds in which `accept` is
    /// stalled: long enough for a burst of connects to overflow std's fixed 128-deep listen
    /// queue, and connections dropped there by SYN cookies hang for good. Growing the table
    /// here, before `run` starts any thread, takes that stall out of the accept path. The table
    /// never shrinks, and this stops at the first failure (the open-file limit). Other systems
    /// grow their tables differently, and there this would only slow the start down.
    #[cfg(target_os = "linux")]
    fn grow_descriptor_table(&self, count: usize) {
        let mut spare = Vec::new();
        while spare.len() < count.min(MAX_DESCRIPTOR_RESERVE) {
            match self.listener.try_clone() {
                Ok(dup) => spare.push(dup),
                Err(_) => break,
            }
        }
    }

    /// Sets where the per-connection lines (`Accept new connection from …`) go.
    pub fn log(mut self, log: Log) -> Self {
        self.log = log;
        self
    }

    /// Sets where the server reports failures and refusals (`IP:PORT: idle for 5m, closed`);
    /// the shared [`Log::stderr`] unless set.
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

    /// Accepts connections until stopped, each served on a thread of its own.
    ///
    /// It does not join the connection threads: each one ends when its client sends the exit
    /// word, hangs up or goes idle, also after `run` has returned. Failures of one connection, of
    /// `accept` or of a thread spawn are reported on stderr and never end the loop.
    pub fn run(self) -> io::Result<()> {
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
        let max_connections = self.connections_allowed();
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
                Ok((stream, peer)) => {
                    backoff.reset();
                    if live.load(Ordering::Acquire) >= max_connections {
                        turn_away(stream, &lingerer);
                        turned_away.report(
                            &self.reports,
                            format_args!(
                                "{peer}: turned away, {max_connections} connections are open"
                            ),
                        );
                        continue;
                    }
                    if handoff.send((stream, peer, Slot::take(&live))).is_err() {
                        break;
                    }
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => {
                    // Out of descriptors, the connection waiting in the kernel's queue is
                    // still answered: with the spare descriptor, accepted, told busy, closed.
                    let refused = fdlimit::is_out_of_descriptors(&err)
                        .then(|| spare.accept(&self.listener))
                        .flatten();
                    if let Some(Ok((mut stream, peer))) = refused {
                        // A fresh socket's send buffer is empty: this write cannot block.
                        let _ = stream.write_all(BUSY);
                        drop(stream);
                        spare.refill();
                        turned_away.report(
                            &self.reports,
                            format_args!("{peer}: turned away, out of file descriptors ({err})"),
                        );
                        continue;
                    }
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

    /// Returns how many connections may be live at once: the configured limit, lowered (and
    /// said so on stderr) where the open-file limit would not leave a descriptor for each.
    fn connections_allowed(&self) -> usize {
        let limit = fdlimit::open_file_limit();
        let allowed = fdlimit::connections_allowed(self.max_connections, limit);
        if let (Some(limit), true) = (limit, allowed < self.max_connections) {
            self.reports.line(format_args!(
                "the open-file limit ({limit}) allows {allowed} live connections, not {}; \
                 raise it with ulimit -n for more",
                self.max_connections
            ));
        }
        allowed
    }
}

/// Gives each accepted connection its own thread, until the accept loop hangs up.
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

/// One live connection's claim on the `--max-connections` budget, given back on drop.
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

/// Serves one accepted connection and logs its start and end, as the original does.
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

/// Greets one TCP peer until it sends the exit word or ends the stream, then closes it.
///
/// Sends [`WELCOME`], then answers each message as [`Framer`] splits them, one write per read
/// (one write per message with a delay). Blocks for the life of the connection.
///
/// # Errors
///
/// I/O failures, an idle peer (kind `TimedOut`), and a line longer than
/// [`MAX_LINE`](protocol::MAX_LINE) (kind `InvalidData`, after telling the peer).
pub fn handle_connection(mut stream: TcpStream, config: &ConnectionConfig) -> io::Result<()> {
    // A reply is a single small write; without NODELAY it could wait ~40 ms for a delayed ACK.
    stream.set_nodelay(true)?;
    stream.set_read_timeout(config.idle_timeout)?;
    stream.set_write_timeout(config.idle_timeout)?;
    let idle = |err: io::Error| idle_error(err, config.idle_timeout);
    stream.write_all(WELCOME).map_err(idle)?;
    let mut framer = Framer::new();
    let mut out = Vec::new();
    loop {
        let n = match stream.read(framer.spare()) {
            Ok(n) => n,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(idle(err)),
        };
        if n == 0 {
            if let Some(Message::Name { name, ending }) = framer.finish() {
                thread::sleep(config.delay);
                protocol::push_greeting(&mut out, name, ending);
                stream.write_all(&out).map_err(idle)?;
            }
            return Ok(());
        }
        framer.filled(n);
        loop {
            match framer.next_message() {
                Ok(Some(Message::Name { name, ending })) => {
                    protocol::push_greeting(&mut out, name, ending);
                    if !config.delay.is_zero() {
                        thread::sleep(config.delay);
                        stream.write_all(&out).map_err(idle)?;
                        out.clear();
                    }
                }
                Ok(Some(Message::Exit)) => {
                    stream.write_all(&out).map_err(idle)?;
                    return Ok(());
                }
                Ok(None) => break,
                Err(err) => {
                    out.extend_from_slice(LINE_TOO_LONG);
                    stream.write_all(&out).map_err(idle)?;
                    // The rest of the line is still streaming in; closing on it unread would
                    // reset the connection, and the peer could lose the error line.
                    close_gracefully(stream);
                    return Err(err);
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).map_err(idle)?;
            out.clear();
        }
    }
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

/// The longest name the client sends: the server takes one read of up to this many bytes as
/// one message, so a longer name would come back as two replies.
pub const MAX_NAME: usize = protocol::READ_SIZE;

/// Checks that `name` can be sent bare over TCP and come back as one reply.
///
/// # Errors
///
/// A message saying why not: it is empty (nothing would be sent), longer than [`MAX_NAME`],
/// holds a newline (which would switch the server to line mode), or is the exit word.
pub fn check_name(name: &[u8]) -> Result<(), String> {
    if name.is_empty() {
        Err("a name cannot be empty".to_string())
    } else if name.len() > MAX_NAME {
        Err(format!(
            "a name cannot be longer than {MAX_NAME} bytes, the most the server reads as one \
             message: {}",
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

/// A client of the TCP greeting server that sends names bare, as the original client does.
#[derive(Debug)]
pub struct TcpClient {
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    buf: Vec<u8>,
}

impl TcpClient {
    /// Connects to `addr` and reads the welcome; returns the client and the welcome's bytes.
    ///
    /// `timeout` bounds the connect (per address `addr` resolves to, IPv4 first) and each reply
    /// from then on.
    ///
    /// # Errors
    ///
    /// The last connect failure, a timeout, or `InvalidData` if the server's first words are not
    /// `Welcome!`.
    pub fn connect(addr: impl ToSocketAddrs, timeout: Duration) -> io::Result<(Self, Vec<u8>)> {
        let (stream, peer) = first_that_works(addr, |peer| {
            Ok((TcpStream::connect_timeout(&peer, timeout)?, peer))
        })?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut client = TcpClient {
            stream,
            peer,
            timeout,
            buf: Vec::new(),
        };
        let welcome = client.read_reply(WELCOME)?;
        Ok((client, welcome))
    }

    /// Returns the server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Sends `name` and returns the whole reply, `Hello, NAME!`, however many reads it takes.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a name [`check_name`] refuses; a timeout; `UnexpectedEof` if the server
    /// hangs up first; `InvalidData` if the reply is not the greeting for `name`.
    pub fn greet(&mut self, name: &[u8]) -> io::Result<Vec<u8>> {
        check_name(name).map_err(|msg| io::Error::new(ErrorKind::InvalidInput, msg))?;
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

//! Closing a connection whose peer may still be sending, so that what we sent last reaches it.
//! Closing a socket with unread input makes the kernel answer with a reset instead of an orderly
//! end, and peers such as socat and `nc -N` then drop the bytes that came before it: the busy line
//! of a turned-away client that already sent its name, the error for a line that is too long.
//! The remedy is a lingering close: end our side, read and discard what still comes for a bounded
//! time and size, then close.

use std::io::{ErrorKind, Read};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use crate::duration::is_timeout;

/// How long a closing connection's input is drained at most.
const LINGER_TIME: Duration = Duration::from_secs(1);

/// How many bytes of a closing connection's input are drained at most.
const LINGER_BYTES: usize = 1 << 20;

/// How often the lingering thread looks at its connections again.
const SWEEP: Duration = Duration::from_millis(10);

/// Ends our side of `stream`, drains its input for at most a second and a MiB, then closes it.
/// Blocks for as long as it drains, never past the second, whatever the peer sends: for a
/// connection's own thread.
pub(crate) fn close_gracefully(stream: TcpStream) {
    close_soon(stream, LINGER_TIME);
}

/// Ends our side of `stream`, drains its input for at most `limit` (or until the peer ends its
/// side), then closes it: a lingering close short enough for the accept loop to wait on, when
/// the descriptor is needed back at once.
pub(crate) fn close_soon(stream: TcpStream, limit: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    Draining::new(stream, limit).read_some(Wait::UntilTheDeadline);
}

/// Ends our side of `stream`, reads and throws away what the peer has sent already, and closes
/// it, without waiting: graceful for a peer that sent before our last words went out, which is
/// when a plain close would reset the connection. For when the descriptor is needed back at
/// once.
pub(crate) fn close_now(stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    if stream.set_nonblocking(true).is_ok() {
        Draining::new(stream, LINGER_TIME).read_some(Wait::No);
    }
}

/// A thread that closes many connections gracefully at once, for the accept loop, which must
/// never wait on a peer. It holds at most as many as its capacity, each one a descriptor: the
/// server's descriptor budget sets it.
#[derive(Debug)]
pub(crate) struct Lingerer {
    queue: Sender<(TcpStream, Held)>,
    held: Arc<AtomicUsize>,
    capacity: usize,
}

/// A connection in the lingerer's hands, counted against its capacity until it is closed.
#[derive(Debug)]
struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Lingerer {
    /// Starts the lingering thread, to hold at most `capacity` connections at once; it ends once
    /// every handle is dropped and its work is done.
    pub(crate) fn start(capacity: usize) -> std::io::Result<Self> {
        let (queue, closing) = mpsc::channel();
        thread::Builder::new()
            .name("lingerer".into())
            .stack_size(64 * 1024)
            .spawn(move || linger(closing))?;
        Ok(Lingerer {
            queue,
            held: Arc::default(),
            capacity,
        })
    }

    /// Ends our side of `stream` now and hands it over to be drained and closed; when the
    /// lingerer holds as many as it may already, takes what the peer sent already and closes it
    /// at once ([`close_now`]), the best left under a flood. Called from one thread only, the
    /// accept loop.
    pub(crate) fn close(&self, stream: TcpStream) {
        if self.held.load(Ordering::Acquire) >= self.capacity {
            return close_now(stream);
        }
        let _ = stream.shutdown(Shutdown::Write);
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        self.held.fetch_add(1, Ordering::AcqRel);
        // If the thread is gone, the stream comes back here and is closed at once.
        let _ = self.queue.send((stream, Held(Arc::clone(&self.held))));
    }
}

fn linger(queue: Receiver<(TcpStream, Held)>) {
    let mut lingering: Vec<(Draining, Held)> = Vec::new();
    loop {
        if lingering.is_empty() {
            match queue.recv() {
                Ok((stream, held)) => lingering.push((Draining::new(stream, LINGER_TIME), held)),
                Err(_) => return,
            }
        }
        loop {
            match queue.try_recv() {
                Ok((stream, held)) => lingering.push((Draining::new(stream, LINGER_TIME), held)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) if lingering.is_empty() => return,
                Err(TryRecvError::Disconnected) => break,
            }
        }
        lingering.retain_mut(|(draining, _)| draining.read_some(Wait::No));
        if !lingering.is_empty() {
            thread::sleep(SWEEP);
        }
    }
}

/// A closing connection whose input is being read and thrown away.
struct Draining {
    stream: TcpStream,
    deadline: Instant,
    drained: usize,
}

/// Whether a read of a draining connection waits for bytes to come.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Not at all: the socket is non-blocking, and one sweep takes only what is there.
    No,
    /// Until the connection's deadline, however its bytes trickle in.
    UntilTheDeadline,
}

impl Draining {
    fn new(stream: TcpStream, limit: Duration) -> Self {
        Draining {
            stream,
            deadline: Instant::now() + limit,
            drained: 0,
        }
    }

    /// Reads and throws away what comes, as `wait` says; returns false once the connection is
    /// done with: ended, failed, over the byte budget, or past its deadline. The deadline is
    /// looked at before every read, so a peer that keeps sending cannot stretch the drain.
    fn read_some(&mut self, wait: Wait) -> bool {
        let mut sink = [0; 8192];
        let room = |drained: usize| (LINGER_BYTES + 1).saturating_sub(drained).min(8192);
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            if wait == Wait::UntilTheDeadline && self.stream.set_read_timeout(Some(left)).is_err() {
                return false;
            }
            match self.stream.read(&mut sink[..room(self.drained)]) {
                Ok(0) => return false,
                Ok(n) => {
                    self.drained += n;
                    if self.drained > LINGER_BYTES {
                        return false;
                    }
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if is_timeout(&err) => {
                    return wait == Wait::No;
                }
                Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A connected pair on loopback whose far end has sent bytes the near end has not read,
    /// and whose near end has sent its last words.
    fn pair_with_unread_input() -> std::io::Result<(TcpStream, TcpStream)> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let mut peer = TcpStream::connect(listener.local_addr()?)?;
        peer.set_read_timeout(Some(Duration::from_secs(5)))?;
        let (mut ours, _) = listener.accept()?;
        peer.write_all(&[b'x'; 50_000])?;
        ours.write_all(b"last words")?;
        Ok((ours, peer))
    }

    #[test]
    fn a_graceful_close_ends_the_stream_instead_of_resetting_it() -> std::io::Result<()> {
        let (ours, mut peer) = pair_with_unread_input()?;
        let closing = thread::spawn(move || close_gracefully(ours));
        let mut got = Vec::new();
        // A reset would make this fail; an orderly end of stream gives Ok.
        peer.read_to_end(&mut got)?;
        assert_eq!(got, b"last words");
        drop(peer);
        closing.join().expect("closing thread should not panic");
        Ok(())
    }

    #[test]
    fn the_lingerer_closes_gracefully_without_blocking_the_caller() -> std::io::Result<()> {
        let lingerer = Lingerer::start(4)?;
        let (ours, mut peer) = pair_with_unread_input()?;
        let started = Instant::now();
        lingerer.close(ours);
        assert!(
            started.elapsed() < LINGER_TIME,
            "close waited for the drain"
        );
        let mut got = Vec::new();
        peer.read_to_end(&mut got)?;
        assert_eq!(got, b"last words");
        Ok(())
    }

    /// Starts a peer that sends a byte every 50 ms for 4 s, or until its writes fail; returns
    /// how long it took them to fail (the other end closed for good), if they did.
    fn trickle(mut peer: TcpStream) -> thread::JoinHandle<Option<Duration>> {
        thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(4) {
                if peer.write_all(b"x").is_err() {
                    return Some(started.elapsed());
                }
                thread::sleep(Duration::from_millis(50));
            }
            None
        })
    }

    #[test]
    fn a_trickling_peer_cannot_stretch_a_graceful_close() -> std::io::Result<()> {
        let (ours, peer) = pair_with_unread_input()?;
        let trickling = trickle(peer);
        let started = Instant::now();
        close_gracefully(ours);
        let took = started.elapsed();
        assert!(took < LINGER_TIME + Duration::from_millis(300), "{took:?}");
        let failed = trickling.join().expect("peer thread should not panic");
        assert!(failed.is_some(), "the connection was never closed");
        Ok(())
    }

    #[test]
    fn a_trickling_peer_cannot_stretch_the_lingerer() -> std::io::Result<()> {
        let lingerer = Lingerer::start(4)?;
        let (ours, peer) = pair_with_unread_input()?;
        let trickling = trickle(peer);
        lingerer.close(ours);
        let failed = trickling.join().expect("peer thread should not panic");
        let took = failed.expect("the connection was never closed");
        assert!(took < LINGER_TIME + Duration::from_millis(500), "{took:?}");
        Ok(())
    }

    #[test]
    fn the_lingerer_holds_no_more_than_its_capacity() -> std::io::Result<()> {
        let lingerer = Lingerer::start(2)?;
        let mut peers = Vec::new();
        for _ in 0..3 {
            let (ours, peer) = pair_with_unread_input()?;
            lingerer.close(ours);
            peers.push(peer);
        }
        // The third was closed at once.
        assert_eq!(lingerer.held.load(Ordering::Acquire), 2);
        // The two held ones are let go at their deadline, and their places with them.
        let deadline = Instant::now() + LINGER_TIME * 3;
        while lingerer.held.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            thread::sleep(SWEEP);
        }
        assert_eq!(lingerer.held.load(Ordering::Acquire), 0);
        Ok(())
    }

    #[test]
    fn a_quick_close_takes_what_came_and_ends_the_stream() -> std::io::Result<()> {
        let (ours, mut peer) = pair_with_unread_input()?;
        thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        close_now(ours);
        assert!(started.elapsed() < Duration::from_millis(500));
        let mut got = Vec::new();
        // A reset would make this fail; an orderly end of stream gives Ok.
        peer.read_to_end(&mut got)?;
        assert_eq!(got, b"last words");
        Ok(())
    }
}

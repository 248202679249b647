//! Closing a connection whose peer may still be sending, so that what we sent last reaches it.
//! Closing a socket with unread input makes the kernel answer with a reset instead of an orderly
//! end, and peers such as socat and `nc -N` then drop the bytes that came before it: the busy line
//! of a turned-away client that already sent its name, the error for a line that is too long.
//! The remedy is a lingering close: end our side, read and throw away what still comes for a
//! bounded time and size, then close.

use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::socket::Deadline;

/// How long a closing connection's input is drained at most, on a thread of its own.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(1);

/// How many bytes of a closing connection's input are drained at most.
const LINGER_BYTES: usize = 1 << 20;

/// Ends our side of `stream`, reads and throws away what the peer sends until it ends its side,
/// for at most `limit` and a MiB, then closes it. Blocks as long as it drains, never past the
/// limit, whatever the peer sends. A zero `limit` takes only what the peer has sent already,
/// without waiting: for when the descriptor is needed back at once.
pub(crate) fn close_draining(stream: TcpStream, limit: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let at_once = limit.is_zero();
    // Without time to wait, a non-blocking socket gives what has come, then "would block".
    if at_once && stream.set_nonblocking(true).is_err() {
        return;
    }
    // The deadline is looked at before every read, so a peer that keeps sending cannot stretch
    // the drain.
    let deadline = Deadline::after(limit);
    let mut sink = [0; 8192];
    let mut drained = 0;
    while drained <= LINGER_BYTES {
        let read = match at_once {
            true => (&stream).read(&mut sink),
            false => deadline.read_from(&stream, &mut sink),
        };
        let Ok(n @ 1..) = read else { return };
        drained += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::thread;
    use std::time::Instant;

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
    fn a_lingering_close_ends_the_stream_instead_of_resetting_it() -> std::io::Result<()> {
        for limit in [LINGER_TIME, Duration::ZERO] {
            let (ours, mut peer) = pair_with_unread_input()?;
            // Long enough for the peer's bytes to have arrived before a close that takes only
            // what has come.
            thread::sleep(Duration::from_millis(50));
            let started = Instant::now();
            let closing = thread::spawn(move || close_draining(ours, limit));
            let mut got = Vec::new();
            // A reset would make this fail; an orderly end of stream gives Ok.
            peer.read_to_end(&mut got)?;
            assert_eq!(got, b"last words");
            drop(peer);
            closing.join().expect("closing thread should not panic");
            assert!(started.elapsed() < limit + Duration::from_millis(500));
        }
        Ok(())
    }

    /// Starts a peer that sends a byte every `every` for 4 s, or until its writes fail; returns
    /// how long it took them to fail (the other end closed for good), if they did.
    fn trickle(mut peer: TcpStream, every: Duration) -> thread::JoinHandle<Option<Duration>> {
        thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(4) {
                if peer.write_all(b"x").is_err() {
                    return Some(started.elapsed());
                }
                thread::sleep(every);
            }
            None
        })
    }

    /// Neither a byte every 50 ms nor one every 100 µs, each in time for the read before it
    /// times out, keeps the close past its limit.
    #[test]
    fn a_trickling_peer_cannot_stretch_a_lingering_close() -> std::io::Result<()> {
        let limit = Duration::from_millis(300);
        for every in [Duration::from_millis(50), Duration::from_micros(100)] {
            let (ours, peer) = pair_with_unread_input()?;
            let trickling = trickle(peer, every);
            let started = Instant::now();
            close_draining(ours, limit);
            let took = started.elapsed();
            assert!(
                took < limit + Duration::from_millis(300),
                "{every:?}: {took:?}"
            );
            let failed = trickling.join().expect("peer thread should not panic");
            assert!(failed.is_some(), "the connection was never closed");
        }
        Ok(())
    }
}

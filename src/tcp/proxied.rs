//! A connection behind a load balancer that speaks the PROXY protocol (`--proxy-protocol`): the
//! header is read off the connection before the server says anything, within the time the spec
//! asks for, and tells whom the connection is from. The parsing is the crate's pure `proxy`
//! module; this is the reading around it.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::duration::{Dur, is_timeout};
use crate::framer::READ_SIZE;
use crate::proxy::{self, Origin};

/// How long a connection has to send its whole PROXY header: the spec asks a receiver to wait at
/// least 3 s, to cover a TCP retransmit.
pub(crate) const HEADER_WAIT: Duration = Duration::from_secs(3);

/// Whom a connection is from, as its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum From {
    /// A client, at this address: its own, or the connection's when the balancer could not
    /// name it.
    Client(SocketAddr),
    /// The balancer itself, such as a health check (a version 2 LOCAL header).
    Balancer,
}

/// Reads the PROXY header at the start of `stream`, whose peer is `peer` (the balancer):
/// whom the connection is from, and the bytes that came after the header, the conversation's
/// first.
///
/// # Errors
///
/// Why there is no valid header: the first bytes are not one, or it is not whole within
/// [`HEADER_WAIT`], or the connection ended or failed first.
// Not inlined, so that its buffer is off the stack again before the log lines are formatted.
#[inline(never)]
pub(crate) fn read_header(
    stream: &mut TcpStream,
    peer: SocketAddr,
) -> Result<(From, Vec<u8>), String> {
    let deadline = Instant::now() + HEADER_WAIT;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no whole PROXY header within {}", Dur(HEADER_WAIT)));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|err| err.to_string())?;
        let start = got.len();
        got.resize(start + READ_SIZE, 0);
        match stream.read(&mut got[start..]) {
            Ok(0) => return Err("the connection ended before a whole PROXY header".into()),
            Ok(n) => got.truncate(start + n),
            // A signal, or the read timeout: the deadline above decides whether to go on.
            Err(err) if err.kind() == ErrorKind::Interrupted || is_timeout(&err) => {
                got.truncate(start);
            }
            Err(err) => return Err(err.to_string()),
        }
        match proxy::parse(&got) {
            Ok(Some(header)) => {
                let from = match header.origin {
                    Origin::Client { source, .. } => From::Client(source),
                    Origin::Unnamed => From::Client(peer),
                    Origin::Balancer => From::Balancer,
                };
                return Ok((from, got.split_off(header.len)));
            }
            Ok(None) => {}
            Err(invalid) => return Err(invalid.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A connection whose far end sends `pieces`, a moment apart; returns the near end and
    /// the far end's address.
    fn sending(pieces: &'static [&'static [u8]]) -> std::io::Result<(TcpStream, SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let mut far = TcpStream::connect(listener.local_addr()?)?;
        let (near, peer) = listener.accept()?;
        std::thread::spawn(move || {
            for piece in pieces {
                let _ = far.write_all(piece);
                std::thread::sleep(Duration::from_millis(20));
            }
            // Open past the header's time, so that the wait is what ends it.
            std::thread::sleep(HEADER_WAIT + Duration::from_secs(1));
        });
        Ok((near, peer))
    }

    #[test]
    fn a_header_in_pieces_is_read_whole_and_what_follows_is_kept() -> std::io::Result<()> {
        let (mut near, peer) =
            sending(&[b"PROXY TCP4 198.51.", b"100.7 192.0.2.1 40123 9999\r\nAda"])?;
        let (from, rest) = read_header(&mut near, peer).expect("a valid header");
        assert_eq!(
            from,
            From::Client("198.51.100.7:40123".parse().expect("an address"))
        );
        assert_eq!(rest, b"Ada");
        Ok(())
    }

    #[test]
    fn a_health_check_and_an_unknown_client_are_told_apart() -> std::io::Result<()> {
        let local: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";
        let (mut near, peer) = sending(Box::leak(Box::new([local])))?;
        assert_eq!(
            read_header(&mut near, peer),
            Ok((From::Balancer, Vec::new()))
        );
        let (mut near, peer) = sending(&[b"PROXY UNKNOWN\r\n"])?;
        assert_eq!(
            read_header(&mut near, peer),
            Ok((From::Client(peer), Vec::new()))
        );
        Ok(())
    }

    #[test]
    fn no_header_is_refused_with_the_reason() -> std::io::Result<()> {
        let (mut near, peer) = sending(&[b"Ada\r\n"])?;
        let why = read_header(&mut near, peer).unwrap_err();
        assert_eq!(why, "not a PROXY protocol header");
        let (mut near, peer) = sending(&[b"PROXY TCP4 1.2.3.4"])?;
        let started = Instant::now();
        let why = read_header(&mut near, peer).unwrap_err();
        assert!(started.elapsed() >= HEADER_WAIT, "{:?}", started.elapsed());
        assert_eq!(why, "no whole PROXY header within 3s");
        Ok(())
    }
}

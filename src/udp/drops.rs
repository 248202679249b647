//! What the UDP server does not answer, and how it says so: `verdict`, the pure rule that keeps
//! it out of reflection loops, and `Drops`, the one place that reports each kind of datagram it
//! drops and each socket error worth a line, each kind at most once a second.

use std::io;
use std::net::SocketAddr;

use crate::addr::canonical;
use crate::log::Log;
use crate::report::{Failures, RateLimited};

/// Source ports below this are system services (echo, chargen, DNS, NTP, …). A datagram "from"
/// one is either forged or a reply from such a service; answering it is how reflection loops and
/// amplification start, so the server drops it.
const LOWEST_PEER_PORT: u16 = 1024;

/// Why the server drops a datagram instead of answering it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// It comes from a system service's port, or claims to.
    FromLowPort,
    /// It is itself a greeting, so its sender is another greeting server.
    Greeting,
}

/// Decides whether the server answers `datagram` from `peer` (`Ok`), or drops it: the rules that
/// keep it out of reflection loops. Pure: no socket.
pub(crate) fn verdict(datagram: &[u8], peer: SocketAddr) -> Result<(), Refusal> {
    if peer.port() < LOWEST_PEER_PORT {
        Err(Refusal::FromLowPort)
    } else if crate::protocol::is_greeting(datagram) {
        Err(Refusal::Greeting)
    } else {
        Ok(())
    }
}

/// The UDP server's reports: one rate limiter per kind of drop, so that "N more like it" counts
/// lines of the kind it follows, and the failures of `recv_from`.
#[derive(Debug)]
pub(crate) struct Drops {
    reports: Log,
    failures: Failures,
    from_low_ports: RateLimited,
    greetings: RateLimited,
    send_errors: RateLimited,
}

impl Drops {
    pub(crate) fn new(reports: Log) -> Self {
        Drops {
            reports,
            failures: Failures::new("receive a datagram"),
            from_low_ports: RateLimited::new("datagrams from ports below 1024 dropped"),
            greetings: RateLimited::new("datagrams that are themselves greetings dropped"),
            send_errors: RateLimited::new("replies that could not be sent dropped"),
        }
    }

    /// Returns the name to answer and its sender, from what `recv_from` put in `buf`, or `None`
    /// for no answer: a failed receive is survived (see [`Failures`]), a gone client's port
    /// unreachable ignored, and a datagram `verdict` refuses reported.
    pub(crate) fn answerable<'a>(
        &mut self,
        received: io::Result<(usize, SocketAddr)>,
        buf: &'a [u8],
    ) -> Option<(&'a [u8], SocketAddr)> {
        let (n, peer) = match received {
            Ok(received) => received,
            // An earlier reply's client had closed its port. Windows says so here, on the next
            // receive (WSAECONNRESET); it is that client's business, not an error of the
            // server, and nothing waits to be retried.
            Err(err) if crate::socket::is_unreachable(&err) => return None,
            Err(err) => {
                self.failures.failed(&self.reports, &err);
                return None;
            }
        };
        self.failures.succeeded();
        let (datagram, reports, shown) = (&buf[..n], &self.reports, canonical(peer));
        match verdict(datagram, peer) {
            Ok(()) => return Some((datagram, peer)),
            Err(Refusal::FromLowPort) => self.from_low_ports.report(
                reports,
                format_args!("{shown}: dropped a datagram from a port below {LOWEST_PEER_PORT}"),
            ),
            Err(Refusal::Greeting) => self.greetings.report(
                reports,
                format_args!(
                    "{shown}: dropped a datagram that is itself a greeting (a reflection loop?)"
                ),
            ),
        }
        None
    }

    /// Reports a reply of `len` bytes to `peer` that could not be sent.
    pub(crate) fn unsent(&mut self, peer: SocketAddr, len: usize, err: &io::Error) {
        self.send_errors.report(
            &self.reports,
            format_args!("{}: dropped a reply of {len} bytes: {err}", canonical(peer)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tests::Tap;
    use std::sync::mpsc;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("a valid address")
    }

    #[test]
    fn only_a_name_from_a_service_port_or_shaped_like_a_greeting_is_dropped() {
        let client = addr("127.0.0.1:50000");
        assert_eq!(verdict(b"Michael", client), Ok(()));
        assert_eq!(verdict(b"", client), Ok(()));
        assert_eq!(verdict(b"Hello, Ada", client), Ok(()));
        assert_eq!(verdict(b"Hello, Ada!", client), Err(Refusal::Greeting));
        assert_eq!(
            verdict(b"Michael", addr("127.0.0.1:53")),
            Err(Refusal::FromLowPort)
        );
        assert_eq!(verdict(b"Michael", addr("127.0.0.1:1024")), Ok(()));
    }

    #[test]
    fn each_kind_of_drop_is_limited_on_its_own() {
        let (tx, rx) = mpsc::channel();
        let log = Log::to_writer(Tap(tx));
        let mut drops = Drops::new(log.clone());
        let peer = addr("127.0.0.1:53");
        let greeting = addr("127.0.0.1:5353");
        for _ in 0..3 {
            assert_eq!(drops.answerable(Ok((3, peer)), b"Ada"), None);
            assert_eq!(drops.answerable(Ok((11, greeting)), b"Hello, Ada!"), None);
            drops.unsent(peer, 9, &io::ErrorKind::InvalidInput.into());
        }
        let answered = drops.answerable(Ok((2, greeting)), b"Ada");
        assert_eq!(answered, Some((&b"Ad"[..], greeting)));
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(drops.answerable(Err(refused), b""), None);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let shown = denied.to_string();
        assert_eq!(drops.answerable(Err(denied), b""), None);
        log.flush();
        let written: Vec<u8> = rx.try_iter().flatten().collect();
        let unsent = io::Error::from(io::ErrorKind::InvalidInput);
        assert_eq!(
            String::from_utf8(written).expect("reports are text"),
            format!(
                "{peer}: dropped a datagram from a port below 1024\n\
                 127.0.0.1:5353: dropped a datagram that is itself a greeting (a reflection loop?)\n\
                 {peer}: dropped a reply of 9 bytes: {unsent}\n\
                 failed to receive a datagram: {shown}\n"
            )
        );
    }
}

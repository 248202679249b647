//! What the UDP server does not answer, and how it says so: `verdict`, the pure rule that keeps
//! it out of reflection loops, and `Drops`, the one place that reports each kind of datagram it
//! drops and each socket error worth a line, each kind at most once a second.

use std::io;
use std::net::SocketAddr;
use std::thread;

use super::is_unreachable;
use crate::backoff::Backoff;
use crate::log::Log;
use crate::protocol;
use crate::rate_limit::RateLimited;

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
    } else if protocol::is_greeting(datagram) {
        Err(Refusal::Greeting)
    } else {
        Ok(())
    }
}

/// The UDP server's reports: one rate limiter per kind of drop, so that "N more like it" counts
/// lines of the kind it follows, and the pause after a failed receive.
#[derive(Debug)]
pub(crate) struct Drops {
    reports: Log,
    backoff: Backoff,
    recv_errors: RateLimited,
    from_low_ports: RateLimited,
    greetings: RateLimited,
    send_errors: RateLimited,
}

impl Drops {
    pub(crate) fn new(reports: Log) -> Self {
        Drops {
            reports,
            backoff: Backoff::default(),
            recv_errors: RateLimited::once_a_second(),
            from_low_ports: RateLimited::once_a_second(),
            greetings: RateLimited::once_a_second(),
            send_errors: RateLimited::once_a_second(),
        }
    }

    /// Returns the length and sender of what `recv_from` received, or `None` when it failed.
    /// A failure is reported and paused after (1 ms, doubling to 100 ms), so one that repeats at
    /// once is no busy loop; a signal and a gone client's port unreachable are neither.
    pub(crate) fn or_report(
        &mut self,
        received: io::Result<(usize, SocketAddr)>,
    ) -> Option<(usize, SocketAddr)> {
        match received {
            Ok(received) => {
                self.backoff.reset();
                Some(received)
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => None,
            // An earlier reply's client had closed its port. Windows says so here, on the next
            // receive (WSAECONNRESET); it is that client's business, not an error of the
            // server, and nothing waits to be retried.
            Err(err) if is_unreachable(&err) => None,
            Err(err) => {
                self.recv_errors.report(
                    &self.reports,
                    format_args!("failed to receive a datagram: {err}"),
                );
                thread::sleep(self.backoff.next_pause());
                None
            }
        }
    }

    /// Reports a datagram from `peer` that `verdict` refused.
    pub(crate) fn refused(&mut self, refusal: Refusal, peer: SocketAddr) {
        match refusal {
            Refusal::FromLowPort => self.from_low_ports.report(
                &self.reports,
                format_args!("{peer}: dropped a datagram from a port below {LOWEST_PEER_PORT}"),
            ),
            Refusal::Greeting => self.greetings.report(
                &self.reports,
                format_args!(
                    "{peer}: dropped a datagram that is itself a greeting (a reflection loop?)"
                ),
            ),
        }
    }

    /// Reports a reply of `len` bytes to `peer` that could not be sent.
    pub(crate) fn unsent(&mut self, peer: SocketAddr, len: usize, err: &io::Error) {
        self.send_errors.report(
            &self.reports,
            format_args!("{peer}: dropped a reply of {len} bytes: {err}"),
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
        for _ in 0..3 {
            drops.refused(Refusal::FromLowPort, peer);
            drops.refused(Refusal::Greeting, peer);
            drops.unsent(peer, 9, &io::ErrorKind::InvalidInput.into());
        }
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(drops.or_report(Err(refused)), None);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let shown = denied.to_string();
        assert_eq!(drops.or_report(Err(denied)), None);
        assert_eq!(drops.or_report(Ok((3, peer))), Some((3, peer)));
        log.flush();
        let written: Vec<u8> = rx.try_iter().flatten().collect();
        let unsent = io::Error::from(io::ErrorKind::InvalidInput);
        assert_eq!(
            String::from_utf8(written).expect("reports are text"),
            format!(
                "{peer}: dropped a datagram from a port below 1024\n\
                 {peer}: dropped a datagram that is itself a greeting (a reflection loop?)\n\
                 {peer}: dropped a reply of 9 bytes: {unsent}\n\
                 failed to receive a datagram: {shown}\n"
            )
        );
    }
}

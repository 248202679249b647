//! Stopping a server that is blocked in `accept` or `recv_from`: a shared flag, and a poke at the
//! server's own address that wakes the blocked call so it sees the flag.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::addr::ephemeral_socket_for;

/// How the stop handle wakes its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poke {
    /// Connect once, for a server blocked in `accept`.
    Connect,
    /// Send one empty datagram, for a server blocked in `recv_from`.
    Datagram,
}

/// A cheap, cloneable handle that stops a running server from any thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    addr: SocketAddr,
    poke: Poke,
}

impl StopHandle {
    pub(crate) fn new(addr: SocketAddr, poke: Poke) -> Self {
        StopHandle {
            flag: Arc::new(AtomicBool::new(false)),
            addr: reachable(addr),
            poke,
        }
    }

    /// Asks the server to stop: its `run` returns soon after.
    ///
    /// Live TCP connections are not cut; each one's thread ends when its client leaves or goes
    /// idle.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        // accept and recv_from have no timeout in std; a throwaway connection or datagram to
        // ourselves is what wakes them. If it fails the server is gone or already awake.
        let addr = self.addr;
        match self.poke {
            Poke::Connect => drop(TcpStream::connect_timeout(&addr, Duration::from_secs(1))),
            Poke::Datagram => drop(ephemeral_socket_for(addr).map(|s| s.send_to(&[], addr))),
        }
    }

    /// Returns true once [`StopHandle::stop`] has been called.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// Turns a wildcard address (0.0.0.0 or [::]) into the loopback address on the same port, which
/// reaches a server bound to the wildcard.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_poked_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:80".parse().unwrap()),
            "127.0.0.1:80".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            reachable("[::]:80".parse().unwrap()),
            "[::1]:80".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            reachable("127.0.0.2:80".parse().unwrap()),
            "127.0.0.2:80".parse::<SocketAddr>().unwrap()
        );
    }
}

//! Addresses: turning what the user typed (`localhost`, `::1`, `example.org`) into the addresses
//! to try, in the order that makes two of our programs meet whatever the system's resolver
//! prefers; and a local socket from which to reach a peer.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};

/// Resolves `addr` and puts IPv4 addresses first, keeping the resolver's order otherwise.
///
/// Where `localhost` resolves to `::1` first (macOS, Windows, Debian with both in /etc/hosts), a
/// server that took the first address would listen on `[::1]` only, out of reach of a client
/// that sends to 127.0.0.1, and the other way round. The original resolves names for IPv4
/// sockets only; preferring IPv4 keeps every pair of programs on the same address, and IPv6
/// still works where a name has no IPv4 address or an IPv6 address is given.
///
/// # Errors
///
/// The resolver's error, or `NotFound` when the name has no address.
pub(crate) fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let mut addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    // A stable sort: within each family the resolver's order stands.
    addrs.sort_by_key(|addr| addr.is_ipv6());
    if addrs.is_empty() {
        let none = "the host name has no addresses";
        return Err(io::Error::new(ErrorKind::NotFound, none));
    }
    Ok(addrs)
}

/// Calls `attempt` with each address `addr` resolves to, IPv4 first, until one succeeds;
/// returns that success or the last failure.
pub(crate) fn first_that_works<T>(
    addr: impl ToSocketAddrs,
    mut attempt: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last_err = None;
    for addr in resolve(addr)? {
        match attempt(addr) {
            Ok(done) => return Ok(done),
            Err(err) => last_err = Some(err),
        }
    }
    Err(last_err.expect("resolve returns at least one address"))
}

/// Returns `addr` as a reader expects it in a log line: an IPv4 address that came as IPv6 (the
/// `::ffff:192.0.2.1` of a dual-stack socket, or of a balancer's header) in its IPv4 form.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Binds a UDP socket on any local address and port of the same family as `peer`, to send to it.
pub(crate) fn ephemeral_socket_for(peer: SocketAddr) -> io::Result<UdpSocket> {
    let any = match peer {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    UdpSocket::bind(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|a| a.parse().expect("a valid address"))
            .collect()
    }

    #[test]
    fn ipv4_comes_first_whatever_the_resolver_order() {
        let ipv4_first = |addrs: &mut Vec<SocketAddr>| *addrs = resolve(&addrs[..]).unwrap();
        let mut ipv6_first = addrs(&["[::1]:80", "127.0.0.1:80"]);
        ipv4_first(&mut ipv6_first);
        assert_eq!(ipv6_first, addrs(&["127.0.0.1:80", "[::1]:80"]));
        let mut mixed = addrs(&["[::2]:1", "10.0.0.2:1", "[::1]:1", "10.0.0.1:1"]);
        ipv4_first(&mut mixed);
        assert_eq!(
            mixed,
            addrs(&["10.0.0.2:1", "10.0.0.1:1", "[::2]:1", "[::1]:1"])
        );
        let mut only_ipv6 = addrs(&["[::1]:80"]);
        ipv4_first(&mut only_ipv6);
        assert_eq!(only_ipv6, addrs(&["[::1]:80"]));
    }

    #[test]
    fn the_first_address_that_works_is_used_and_the_last_error_kept() {
        let tried = first_that_works("[::1]:7", |addr| Ok(addr.port()));
        assert_eq!(tried.unwrap(), 7);
        let failed = first_that_works("127.0.0.1:7", |_| -> io::Result<()> {
            Err(ErrorKind::AddrInUse.into())
        });
        assert_eq!(failed.unwrap_err().kind(), ErrorKind::AddrInUse);
    }
}

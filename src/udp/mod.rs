//! The UDP side of the tutorial: `SocketUdpServer.py` and `SocketUdpClient.py`.
//!
//! # Where the original went
//!
//! | SocketUdpServer.py | here |
//! | --- | --- |
//! | `s.bind(('127.0.0.1', 8888))` | [`UdpServer::bind`] |
//! | `print('Bind UDP on 8888...')` | the `udp-server` binary |
//! | `while True: data, addr = s.recvfrom(1024)` | the loop in [`UdpServer::run`] (server.rs): receive |
//! | (nothing: the original answers anything) | `verdict` (drops.rs): decide |
//! | `print('Received from %s:%s.' % addr)`, `s.sendto(b'Hello, %s!' % data, addr)` | [`UdpServer::run`]: log, send |
//!
//! | SocketUdpClient.py | here |
//! | --- | --- |
//! | `s = socket.socket(AF_INET, SOCK_DGRAM)` | [`UdpClient::connect`] (client.rs; a socket, no connection) |
//! | `s.sendto(data, addr)`, `print(s.recv(1024)…)` | [`UdpClient::greet`] |
//!
//! # What was added, and why
//!
//! - **No reflection loops.** A greeting server answers anything, so one forged datagram can set
//!   two of them answering each other for ever. The server does not answer a datagram that is
//!   itself a greeting, nor one from a port below 1024 (echo, DNS, NTP live there), and it never
//!   truncates: a reply that would not fit is dropped, so even a loop would end. Each kind of
//!   drop is reported at most once a second (drops.rs).
//! - **Whole datagrams.** The original reads 1,024 bytes and cuts the rest; ours takes a datagram
//!   of any size and answers it whole, or not at all.
//! - **Retries.** The original client waits for ever for a lost datagram. Ours waits `timeout`
//!   and sends again, `retries` times, every try its whole timeout, and takes only the exact
//!   greeting for the name in flight, so late, duplicated or forged datagrams change nothing.

use std::io::{self, ErrorKind};

mod client;
mod drops;
mod server;

pub use client::UdpClient;
pub use server::UdpServer;

/// The largest UDP payload over IPv4, and so the largest name the server promises to answer
/// (the reply, 8 bytes longer, may then not fit, and is dropped).
const MAX_DATAGRAM: usize = 65_507;

/// Room for any datagram the kernel can hand over, IPv6 included.
const RECV_BUFFER: usize = 65_536;

/// Returns true for the error an ICMP port unreachable becomes on a UDP socket: a refusal on
/// Unix, a reset (`WSAECONNRESET`) on Windows.
fn is_unreachable(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_and_a_reset_both_mean_unreachable() {
        assert!(is_unreachable(&ErrorKind::ConnectionRefused.into()));
        assert!(is_unreachable(&ErrorKind::ConnectionReset.into()));
        assert!(!is_unreachable(&ErrorKind::TimedOut.into()));
        assert!(!is_unreachable(&ErrorKind::PermissionDenied.into()));
    }
}

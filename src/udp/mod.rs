//! The UDP side of the tutorial: `SocketUdpServer.py` and `SocketUdpClient.py`.
//!
//! Where each line of the Python went is in the package's docs/from-python.md: the receive loop
//! is [`UdpServer::run`] (server.rs), which drops what `verdict` refuses (drops.rs); the client
//! is [`UdpClient`] (client.rs).
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

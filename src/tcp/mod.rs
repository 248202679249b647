//! The TCP side of the tutorial: `SocketTcpServer.py` and `SocketTcpClient.py`, and what keeps
//! the server serving whatever its peers do. Where each line of the Python went, and what was
//! added and why, is in the package's docs/from-python.md.
//!
//! - server.rs: [`TcpServer`], its settings, the accept loop (accept; admit or turn away; hand
//!   over), and the thread that spawns a thread per connection;
//! - connection.rs: one connection's conversation, the original's `tcplink`;
//! - framer.rs: the bytes of a connection cut into messages (raw reads, then lines);
//! - admission.rs: the connection limit, the busy line, the spare descriptor; fdlimit.rs: the
//!   limit kept within the open-file limit; linger.rs: closing without a reset;
//! - proxy.rs: the PROXY protocol header of a load balancer;
//! - client.rs: [`TcpClient`].

mod admission;
mod client;
mod connection;
mod fdlimit;
mod framer;
mod linger;
mod proxy;
mod server;

/// The entry points of the fuzz targets in fuzz/ (cargo fuzz builds with `--cfg fuzzing`): the
/// parsers of untrusted bytes, reached without widening the library for its users.
#[cfg(fuzzing)]
pub mod fuzz {
    pub use super::framer::{Framed, fuzz as framer};
    pub use super::proxy::fuzz as proxy;
}

pub use client::{ConnectError, TcpClient};
pub use proxy::ProxyHeader;
pub use server::TcpServer;

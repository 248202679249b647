//! The greeting protocol of the classic socket-programming tutorial, over TCP and UDP, with the
//! servers and clients that speak it.
//!
//! # Protocol
//!
//! TCP (`S:` server, `C:` client; bytes exactly as shown, no newlines unless written `⏎`):
//!
//! ```text
//! S: Welcome!
//! C: Jaber
//! S: Hello, Jaber!
//! C: exit                      (or the client ends the stream; the server closes)
//! ```
//!
//! Each read is one message, as in the original, until the first newline byte: from then on the
//! connection is in line mode, each line is a message and each reply ends as its line did
//! (`C: Bob⏎` gets `S: Hello, Bob!⏎`), so `nc` and `telnet` are clients too. Messages are bytes,
//! not text: the reply is `Hello, ` + message + `!`, whatever the bytes.
//!
//! UDP: one datagram each way. `C: Michael` gets `S: Hello, Michael!`, sent back to the datagram's
//! source; the reply is always the request plus 8 bytes.
//!
//! A server given an id ([`TcpServer::id`], [`UdpServer::id`]) says it, in square brackets and
//! with a space, before the welcome and before each UDP reply (`S: [s1] Welcome!`,
//! `S: [u1] Hello, Michael!`), so that a client behind a load balancer sees which server
//! answered; [`protocol::split_id`] parts it from the rest. Without one, the bytes are the
//! original's.
//!
//! # Coming from the Python
//!
//! The package's `examples/` hold the tutorial's four scripts ported line for line to plain
//! Rust, and its docs/from-python.md maps every line of the Python to them and to this library:
//! [`TcpServer::run`] is the accept loop, [`UdpServer::run`] the receive loop, [`TcpClient`] and
//! [`UdpClient`] the clients, [`protocol`] the words on the wire; with each thing the library
//! adds, and the test that proves it.
//!
//! # Features
//!
//! The default feature `cli` builds the four programs (`tcp-server`, `tcp-client`,
//! `udp-server`, `udp-client`) with `clap` and `anyhow`. The library itself needs neither: with
//! `default-features = false` it depends on std alone.
//!
//! # Example
//!
//! ```
//! use greeting::{TcpClient, TcpServer};
//! use std::time::Duration;
//!
//! let server = TcpServer::bind("127.0.0.1:0")?;
//! let addr = server.local_addr()?;
//! let stop = server.stop_handle();
//! let running = std::thread::spawn(move || server.run());
//!
//! let mut client = TcpClient::connect(addr, Duration::from_secs(5))?; // checks the welcome
//! assert_eq!(client.greet(b"Ada")?, b"Hello, Ada!");
//! client.exit()?;
//!
//! stop.stop();
//! running.join().expect("server thread should not panic")?;
//! # Ok::<(), std::io::Error>(())
//! ```

#![warn(missing_docs)]

mod addr;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
mod duration;
mod log;
pub mod protocol;
mod report;
mod socket;
mod stop;
mod tcp;
mod udp;

#[cfg(fuzzing)]
#[doc(hidden)]
pub use tcp::fuzz;

pub use log::Log;
pub use protocol::ServerId;
pub use stop::StopHandle;
pub use tcp::{ConnectError, ProxyHeader, TcpClient, TcpServer};
pub use udp::{UdpClient, UdpServer};

//! The TCP side of the tutorial: `SocketTcpServer.py` and `SocketTcpClient.py`.
//!
//! # Where the original went
//!
//! | SocketTcpServer.py | here |
//! | --- | --- |
//! | `s.bind(('127.0.0.1', 9999))`, `s.listen(5)` | [`TcpServer::bind`] (server.rs) |
//! | `print('TCPServer is waiting for connection...')` | the `tcp-server` binary |
//! | `while True: sock, addr = s.accept()` | the loop in [`TcpServer::run`]: accept; admit or turn away (admission.rs); hand over |
//! | `threading.Thread(target=tcplink, ...).start()` | `Spawner` (server.rs): one thread per connection |
//! | `def tcplink(sock, addr)`, its two `print`s | `serve` (connection.rs) |
//! | `sock.send(b'Welcome!')`, then `while True: data = sock.recv(1024)`, `time.sleep(1)`, `if not data or … == 'exit': break`, `sock.send(…)` | `handle_connection` (connection.rs): the welcome, then read, decide (`replies`, a pure function), write once |
//! | `sock.close()` | the end of `handle_connection` (the stream is dropped) |
//!
//! | SocketTcpClient.py | here |
//! | --- | --- |
//! | `s.connect(('127.0.0.1', 9999))`, `print(s.recv(1024)…)` | [`TcpClient::connect`] (client.rs), which checks the welcome |
//! | `s.send(data)`, `print(s.recv(1024)…)` | [`TcpClient::greet`] |
//! | `s.send(b'exit')`, `s.close()` | [`TcpClient::exit`] |
//!
//! # What was added, and why
//!
//! The original's loops are the heart of these files and read the same; what surrounds them keeps
//! one misbehaving peer, or many, from costing anyone else. Each addition is a named piece that a
//! loop calls in one line:
//!
//! - **Line mode.** The original takes each `recv` as one message, which works only for a client
//!   that waits for each reply. The framing (the crate's `framer` module) does the same until the
//!   first newline and then reads lines, so `nc` and `telnet` get one reply per line; a line is
//!   capped at 64 KiB, and the peer is told `error: line too long`.
//! - **Timeouts.** A peer that sends nothing, or reads nothing, for the idle timeout is closed;
//!   the original waits forever and keeps the thread.
//! - **Admission** (admission.rs). Past the connection limit a new connection gets `busy: …`
//!   instead of a thread, with a lingering close so the line is not lost to a reset; the limit
//!   also keeps below the process's open-file limit, and a spare descriptor answers whoever comes
//!   when none is left.
//! - **A fast accept loop.** Spawning a thread costs far more than accepting: a helper thread
//!   spawns while the loop only accepts, so a burst of connects does not overflow the kernel's
//!   queue, where connections can hang unanswered.
//! - **The client checks what it gets.** [`TcpClient`] puts a reply split by the network back
//!   together, refuses names the server would answer in pieces or not at all, and turns every
//!   failure into one clear error.

mod admission;
mod client;
mod connection;
mod proxied;
mod server;

pub use client::TcpClient;
pub use server::TcpServer;

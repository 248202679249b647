//! The UDP server: a bound socket, and the loop of the original's `while True: recvfrom`, as
//! receive, decide, send.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

use super::{RECV_BUFFER, drops::Drops};
use crate::addr::{canonical, first_that_works};
use crate::log::Log;
use crate::protocol::{self, ServerId};
use crate::stop::{Poke, StopHandle};

/// A UDP greeting server: a bound socket, ready to [`run`](UdpServer::run).
#[derive(Debug)]
pub struct UdpServer {
    socket: UdpSocket,
    stop: StopHandle,
    log: Log,
    reports: Log,
    /// What goes before each reply: the server's id, `[s1] `, if it has one.
    id: Vec<u8>,
}

impl UdpServer {
    /// Binds a UDP socket to `addr`, trying each address it resolves to in turn, IPv4 first
    /// (so `localhost` means 127.0.0.1 wherever the resolver puts `::1` first).
    ///
    /// The server starts with a quiet log.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        let socket = first_that_works(addr, UdpSocket::bind)?;
        Ok(UdpServer {
            // Before `socket` moves in.
            stop: StopHandle::new(socket.local_addr()?, Poke::Datagram),
            socket,
            log: Log::quiet(),
            reports: Log::stderr(),
            id: Vec::new(),
        })
    }

    /// Gives the server an id, which it says before each reply (`[s1] Hello, Ada!`), so that a
    /// client behind a load balancer can tell which server answered. Without one (`None`, the
    /// default) each reply is the original's; with one, 3 bytes and the id's longer.
    #[must_use]
    pub fn id(mut self, id: Option<&ServerId>) -> Self {
        self.id = id.map_or(Vec::new(), |id| id.tag(b""));
        self
    }

    /// Sets where the per-datagram lines (`Received from …`) go.
    #[must_use]
    pub fn log(mut self, log: Log) -> Self {
        self.log = log;
        self
    }

    /// Sets where the server reports dropped datagrams and socket errors; the shared
    /// [`Log::stderr`] unless set.
    #[must_use]
    pub fn reports(mut self, reports: Log) -> Self {
        self.reports = reports;
        self
    }

    /// Returns the address actually bound; bind port 0 and ask here for the port the OS picked.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Returns a handle that stops [`run`](UdpServer::run) from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Answers datagrams until stopped, each with `Hello, ` + datagram + `!` (after the server's
    /// id, if it has one) to its sender: the original's `while True: recvfrom` loop, as receive,
    /// decide, send.
    ///
    /// Three kinds of datagram get no answer, each reported at most once a second: two that
    /// the server refuses, one from a port below 1024 and one that is itself a greeting (which
    /// only another greeting server sends, so two servers tricked into talking to each other
    /// stop at once); and one whose reply fails to send, as one too large for a datagram does.
    /// Socket errors never end the loop.
    pub fn run(self) -> io::Result<()> {
        let (mut buf, mut reply) = (vec![0; RECV_BUFFER], Vec::new());
        let mut drops = Drops::new(self.reports.clone());
        loop {
            // data, addr = s.recvfrom(1024), here any datagram whole: a cut name is a wrong answer.
            let received = self.socket.recv_from(&mut buf);
            if self.stop.is_stopped() {
                break;
            }
            let Some((name, peer)) = drops.answerable(received, &buf) else {
                continue;
            };
            // s.sendto(b'Hello, %s!' % data, addr), before print('Received from %s:%s.' % addr):
            // the client need not wait while the line is formatted.
            reply.clone_from(&self.id);
            protocol::push_greeting(&mut reply, name, b"");
            if let Err(err) = self.socket.send_to(&reply, peer) {
                drops.unsent(peer, reply.len(), &err);
            }
            self.log
                .line(format_args!("Received from {}.", canonical(peer)));
        }
        self.log.flush();
        self.reports.flush();
        Ok(())
    }
}

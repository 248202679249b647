//! The load generator's side: a client doing lockstep round trips, and the gate that keeps a
//! cell's set-up from overflowing the listen queue.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Stack for every load-generator thread: they hold a few small buffers only.
pub const CLIENT_STACK: usize = 64 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Proto {
    Tcp,
    Udp,
}

/// One load-generator client: a connected socket that does lockstep round trips.
pub enum Client {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

impl Client {
    pub fn connect(proto: Proto, addr: SocketAddr) -> io::Result<Client> {
        match proto {
            Proto::Tcp => {
                let mut stream = TcpStream::connect(addr)?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                let mut welcome = [0; 8];
                stream.read_exact(&mut welcome)?;
                if &welcome != b"Welcome!" {
                    return Err(io::Error::other("bad welcome"));
                }
                Ok(Client::Tcp(stream))
            }
            Proto::Udp => {
                let socket = UdpSocket::bind("127.0.0.1:0")?;
                socket.connect(addr)?;
                socket.set_read_timeout(Some(Duration::from_secs(1)))?;
                Ok(Client::Udp(socket))
            }
        }
    }

    /// Sends `name`, reads the whole reply into `buf` and checks it is `Hello, NAME!`.
    pub fn round_trip(&mut self, name: &[u8], buf: &mut [u8]) -> io::Result<()> {
        let expected_len = name.len() + 8;
        let got = match self {
            Client::Tcp(stream) => {
                stream.write_all(name)?;
                let mut got = 0;
                while got < expected_len {
                    match stream.read(&mut buf[got..expected_len])? {
                        0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                        n => got += n,
                    }
                }
                got
            }
            Client::Udp(socket) => {
                socket.send(name)?;
                socket.recv(buf)?
            }
        };
        let reply = &buf[..got];
        let ok = got == expected_len
            && reply.starts_with(b"Hello, ")
            && &reply[7..7 + name.len()] == name
            && reply[got - 1] == b'!';
        if ok {
            Ok(())
        } else {
            Err(io::Error::other("wrong reply"))
        }
    }
}

/// How many connections a cell's set-up opens at once. Set-up is not what a cell measures (the
/// scale test is), so it stays well under std's 128-deep listen queue.
pub const SETUP_IN_FLIGHT: usize = 32;

/// A counting gate: at most `limit` callers inside at once.
pub struct Gate {
    inside: Mutex<usize>,
    freed: Condvar,
    limit: usize,
}

impl Gate {
    pub fn new(limit: usize) -> Self {
        Gate {
            inside: Mutex::new(0),
            freed: Condvar::new(),
            limit,
        }
    }

    pub fn through<T>(&self, work: impl FnOnce() -> T) -> T {
        let mut inside = self.inside.lock().expect("gate lock");
        while *inside >= self.limit {
            inside = self.freed.wait(inside).expect("gate lock");
        }
        *inside += 1;
        drop(inside);
        let result = work();
        *self.inside.lock().expect("gate lock") -= 1;
        self.freed.notify_one();
        result
    }
}

/// Writes a name distinct per client and round into `name`, without allocating.
pub fn write_name(name: &mut Vec<u8>, client: usize, round: u64) {
    name.clear();
    let _ = write!(name, "c{client}r{round}");
}

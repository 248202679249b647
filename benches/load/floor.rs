//! The floor: what a greeting server costs at the least, in the same design as ours (a thread
//! per connection, one read and one `write_all` per message, TCP_NODELAY, the original's
//! 1 KiB buffer, on the stack), with no framing, no limits and no logging. It is not the example port of the tutorial: that one prints a line per
//! datagram and sleeps a second per reply, which would measure the console and the clock.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::thread;

pub fn tcp() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    eprintln!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept()?;
        thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = connection(stream);
            })?;
    }
}

fn connection(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.write_all(b"Welcome!")?;
    // The original's recv(1024), on the stack.
    let mut buf = [0; 1024];
    let mut reply = [0; 1024 + 8];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 || &buf[..n] == b"exit" {
            return Ok(());
        }
        reply[..7].copy_from_slice(b"Hello, ");
        reply[7..7 + n].copy_from_slice(&buf[..n]);
        reply[7 + n] = b'!';
        stream.write_all(&reply[..n + 8])?;
    }
}

pub fn udp() -> io::Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    eprintln!("listening on {}", socket.local_addr()?);
    let mut buf = vec![0; 65_536];
    let mut reply = Vec::with_capacity(65_544);
    loop {
        let (n, peer) = socket.recv_from(&mut buf)?;
        reply.clear();
        reply.extend_from_slice(b"Hello, ");
        reply.extend_from_slice(&buf[..n]);
        reply.push(b'!');
        let _ = socket.send_to(&reply, peer);
    }
}

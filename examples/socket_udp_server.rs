//! SocketUdpServer.py from the tutorial, line for line: the "before" picture. The library's
//! `UdpServer` is the same program made robust; docs/from-python.md maps one onto the other.
//!
//! `cargo run --example socket_udp_server [PORT]` (default 8888). Port 0 takes any free port,
//! and only then the address is also said on stderr (`listening on …`).

use std::env;
use std::net::UdpSocket;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = env::args().nth(1).map_or(Ok(8888), |arg| arg.parse())?;
    let s = UdpSocket::bind(("127.0.0.1", port))?; // s.bind(('127.0.0.1', 8888))
    let bound = s.local_addr()?;
    if port == 0 {
        eprintln!("listening on {bound}");
    }
    println!("Bind UDP on {}...", bound.port());
    let mut data = [0; 1024];
    loop {
        let (n, addr) = s.recv_from(&mut data)?; // data, addr = s.recvfrom(1024)
        println!("Received from {addr}.");
        let reply = [&b"Hello, "[..], &data[..n], b"!"].concat(); // b'Hello, %s!' % data
        s.send_to(&reply, addr)?; // s.sendto(..., addr)
    }
}

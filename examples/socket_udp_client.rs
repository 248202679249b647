//! SocketUdpClient.py from the tutorial, line for line: the "before" picture. The library's
//! `UdpClient` is the same program made robust; docs/from-python.md maps one onto the other.
//!
//! `cargo run --example socket_udp_client [PORT]` (default 8888).

use std::env;
use std::net::UdpSocket;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = env::args().nth(1).map_or(Ok(8888), |arg| arg.parse())?;
    // socket(AF_INET, SOCK_DGRAM): Python binds it to any free port on the first sendto.
    let s = UdpSocket::bind("0.0.0.0:0")?;
    let mut buf = [0; 1024];
    for data in [&b"Michael"[..], b"Tracy", b"Sarah"] {
        s.send_to(data, ("127.0.0.1", port))?; // s.sendto(data, ('127.0.0.1', 8888))
        let (n, _) = s.recv_from(&mut buf)?; // print(s.recv(1024).decode('utf-8'))
        println!("{}", std::str::from_utf8(&buf[..n])?);
    }
    Ok(()) // s.close(): dropping the socket closes it
}

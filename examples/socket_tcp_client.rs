//! SocketTcpClient.py from the tutorial, line for line: the "before" picture. The library's
//! `TcpClient` is the same program made robust; docs/from-python.md maps one onto the other.
//!
//! `cargo run --example socket_tcp_client [PORT]` (default 9999).

use std::env;
use std::io::{Read, Write};
use std::net::TcpStream;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = env::args().nth(1).map_or(Ok(9999), |arg| arg.parse())?;
    let mut s = TcpStream::connect(("127.0.0.1", port))?; // s.connect(('127.0.0.1', 9999))
    let mut buf = [0; 1024];
    let n = s.read(&mut buf)?; // print(s.recv(1024).decode('utf-8'))
    println!("{}", std::str::from_utf8(&buf[..n])?);
    for data in [&b"Jaber"[..], b"Katy", b"Betty", b"huangxin"] {
        s.write_all(data)?; // s.send(data)
        let n = s.read(&mut buf)?; // print(s.recv(1024).decode('utf-8'))
        println!("{}", std::str::from_utf8(&buf[..n])?);
    }
    s.write_all(b"exit")?; // s.send(b'exit')
    Ok(()) // s.close(): dropping the stream closes it
}

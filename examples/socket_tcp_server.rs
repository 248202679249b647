//! SocketTcpServer.py from the tutorial, line for line: the "before" picture. The library's
//! `TcpServer` is the same program made robust; docs/from-python.md maps one onto the other.
//!
//! `cargo run --example socket_tcp_server [PORT]` (default 9999). It keeps the original's
//! `time.sleep(1)` before each reply. Port 0 takes any free port, and only then the address is
//! also said on stderr (`listening on …`), since nobody could find the server otherwise.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;
use std::{env, thread};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = env::args().nth(1).map_or(Ok(9999), |arg| arg.parse())?;
    let s = TcpListener::bind(("127.0.0.1", port))?; // s.bind(...); s.listen(5)
    if port == 0 {
        eprintln!("listening on {}", s.local_addr()?);
    }
    println!("TCPServer is waiting for connection...");
    loop {
        let (sock, addr) = s.accept()?; // sock, addr = s.accept()
        thread::spawn(move || tcplink(sock, addr)); // threading.Thread(target=tcplink, ...).start()
    }
}

fn tcplink(mut sock: TcpStream, addr: SocketAddr) -> std::io::Result<()> {
    println!("Accept new connection from {addr}...");
    sock.write_all(b"Welcome!")?; // sock.send(b'Welcome!')
    let mut data = [0; 1024];
    loop {
        let n = sock.read(&mut data)?; // data = sock.recv(1024)
        thread::sleep(Duration::from_secs(1)); // time.sleep(1)
        // data.decode('utf-8'): invalid UTF-8 ends this thread, as in Python (which says why).
        let text = std::str::from_utf8(&data[..n]).map_err(std::io::Error::other)?;
        if n == 0 || text == "exit" {
            break;
        }
        sock.write_all(format!("Hello, {text}!").as_bytes())?;
    }
    drop(sock); // sock.close()
    println!("Connection from {addr} closed.");
    Ok(())
}

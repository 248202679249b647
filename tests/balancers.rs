//! Behind real load balancers that the tests start themselves: HAProxy in TCP mode sending
//! PROXY headers v1 and v2 to two backends with health checks, nginx's stream module with
//! `proxy_protocol on`, and udp-server behind nginx's UDP proxy. Each balancer gets its own
//! config in a temporary folder and listens on a socket the test bound on 127.0.0.1:0 and hands
//! it as its standard input (HAProxy's `bind fd@0`, nginx's `NGINX` variable); it is stopped by
//! the PID the test started. They need haproxy, nginx (with its stream module) and python3
//! (which connects from 127.0.0.5): they are ignored unless asked for with `--ignored`, as
//! .ci/run does once it has installed them. Unix only: a socket is handed over as a file
//! descriptor.

#![cfg(unix)]

use std::io;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// A balancer process and its folder, stopped and removed when dropped.
struct Balancer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Balancer {
    /// Asks the process to stop with SIGTERM, so that nginx's master stops its worker too, and
    /// kills it if it has not gone within five seconds.
    fn drop(&mut self) {
        signal(self.child.id(), "-TERM");
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh folder for one balancer's config, named after the port it listens on, since the
/// tests of this process run side by side.
fn folder(name: &str, port: u16) -> io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("greeting-{name}-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Starts `command` with `socket` as its standard input.
fn spawn(mut command: Command, socket: OwnedFd, dir: PathBuf, port: u16) -> io::Result<Balancer> {
    let log = std::fs::File::create(dir.join("stderr.log"))?;
    command
        .stdin(Stdio::from(socket))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    let program = command.get_program().to_string_lossy().into_owned();
    let child = installed(command.spawn(), &program)?;
    Ok(Balancer { child, dir, port })
}

/// Starts HAProxy in the foreground with `body` after a `defaults` section for TCP, listening
/// on a TCP socket of its own on 127.0.0.1:0 (`bind fd@0` in `body`).
fn haproxy(body: &str) -> io::Result<Balancer> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let dir = folder("haproxy", port)?;
    let config = format!(
        "global\n    nbthread 1\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    \
         timeout server 10s\n    timeout check 2s\n{body}"
    );
    std::fs::write(dir.join("haproxy.cfg"), config)?;
    let mut command = Command::new("haproxy");
    command.arg("-db").arg("-f").arg(dir.join("haproxy.cfg"));
    spawn(command, listener.into(), dir, port)
}

/// How nginx loads its stream module: an empty line when the module is built in, else a
/// `load_module` line; an error when it has none.
fn nginx_stream_module() -> io::Result<String> {
    let out = installed(Command::new("nginx").arg("-V").output(), "nginx")?;
    // nginx -V prints its build options on stderr.
    let options = String::from_utf8_lossy(&out.stderr).into_owned();
    let option = |name: &str| {
        options
            .split_whitespace()
            .find_map(|word| word.strip_prefix(name).map(str::to_string))
    };
    let module = option("--modules-path=")
        .map(|dir| Path::new(&dir).join("ngx_stream_module.so"))
        .filter(|path| path.exists());
    match (option("--with-stream"), module) {
        (Some(built_in), _) if built_in.is_empty() => Ok(String::new()),
        (Some(_), Some(path)) => Ok(format!("load_module {};\n", path.display())),
        _ => Err(io::Error::other(
            "nginx has no stream module (Debian: libnginx-mod-stream)",
        )),
    }
}

/// Starts nginx in the foreground with `server` as its only stream server, listening on
/// `socket` (bound by the test, handed over through the `NGINX` variable).
fn nginx(server: &str, socket: OwnedFd, port: u16) -> io::Result<Balancer> {
    let module = nginx_stream_module()?;
    let dir = folder("nginx", port)?;
    let pid = dir.join("nginx.pid");
    let config = format!(
        // A master and one worker (with `master_process off` nginx drops an inherited socket);
        // SIGTERM to the master stops both.
        "{module}daemon off;\nworker_processes 1;\nerror_log stderr notice;\npid {};\n\
         events {{ worker_connections 64; }}\nstream {{\n    server {{\n{server}    }}\n}}\n",
        pid.display()
    );
    std::fs::write(dir.join("nginx.conf"), config)?;
    let mut command = Command::new("nginx");
    command
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-e", "stderr"])
        .env("NGINX", "0;");
    spawn(command, socket, dir, port)
}

/// Python that connects from 127.0.0.5 to the port it is given, reads the welcome, greets Ada,
/// says exit, and prints its own port and what it read.
const FROM_127_0_0_5: &str = "import socket, sys\n\
s = socket.socket()\n\
s.settimeout(5)\n\
s.bind(('127.0.0.5', 0))\n\
s.connect(('127.0.0.1', int(sys.argv[1])))\n\
w = s.recv(8, socket.MSG_WAITALL)\n\
s.sendall(b'Ada')\n\
r = s.recv(11, socket.MSG_WAITALL)\n\
s.sendall(b'exit')\n\
print(s.getsockname()[1], (w + r).decode())\n";

/// Greets Ada through `port` from 127.0.0.5 and returns the client's own port, or None (and
/// says so) without that address.
fn greet_from_127_0_0_5(port: u16) -> io::Result<Option<u16>> {
    // macOS has only 127.0.0.1 on its loopback interface unless told otherwise.
    if let Err(err) = TcpListener::bind("127.0.0.5:0") {
        skip(&format!("no 127.0.0.5 to connect from: {err}"));
        return Ok(None);
    }
    let ran = Command::new("python3")
        .args(["-c", FROM_127_0_0_5, &port.to_string()])
        .output();
    let out = installed(ran, "python3")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (own, said) = text.trim().split_once(' ').ok_or_else(|| {
        io::Error::other(format!(
            "the client said {text:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    })?;
    assert_eq!(said, "Welcome!Hello, Ada!");
    own.parse().map(Some).map_err(io::Error::other)
}

/// A tcp-server that expects PROXY headers, past its first line.
fn proxied_backend() -> io::Result<ServerProcess> {
    let server = start_server("tcp-server", &["--proxy-protocol"])?;
    server.stdout_line()?;
    Ok(server)
}

/// HAProxy sends version 1 headers to one backend and version 2 to the other, round robin, and
/// checks both five times a second with `Welcome!` expected, one failure enough to mark a
/// backend down. Clients from 127.0.0.5 appear as 127.0.0.5 and their own ports in the backend
/// that serves each. Version 1 checks name the check's own connection, and so look like clients
/// (docs/load-balancers.md says to use v2 with checks); the version 2 backend's checks (LOCAL headers, then
/// a reset) pass, as HAProxy marks no backend down, and leave no line at all.
#[test]
#[ignore = "needs haproxy, nginx with its stream module, python3: .ci/run installs them and runs cargo test -- --ignored"]
fn haproxy_passes_the_client_on_with_both_versions() -> TestResult {
    let (v1, v2) = (proxied_backend()?, proxied_backend()?);
    let body = format!(
        "listen front\n    bind fd@0\n    balance roundrobin\n    option tcp-check\n    \
         tcp-check expect string Welcome!\n    default-server check inter 200ms fall 1 rise 1\n    \
         server v1 127.0.0.1:{} send-proxy check-send-proxy\n    \
         server v2 127.0.0.1:{} send-proxy-v2\n",
        v1.addr.port(),
        v2.addr.port()
    );
    let haproxy = haproxy(&body)?;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let Some(own) = greet_from_127_0_0_5(haproxy.port)? else {
            return Ok(());
        };
        clients.push(format!("127.0.0.5:{own}"));
    }
    // The v1 backend's log, until HAProxy has checked it three times (and so the v2 one too).
    let mut v1_lines = Vec::new();
    let is_check = |line: &String| line.starts_with("Accept new connection from 127.0.0.1:");
    while v1_lines.iter().filter(|line| is_check(line)).count() < 3 && v1_lines.len() < 40 {
        v1_lines.push(v1.stdout_line()?);
    }
    let v2_lines = v2.stdout_lines_for(Duration::from_millis(500));
    let served = |lines: &[String], client: &str| {
        lines.contains(&format!("Accept new connection from {client}..."))
            && lines.contains(&format!("Connection from {client} closed."))
    };
    let (a, b) = (&clients[0], &clients[1]);
    assert!(
        (served(&v1_lines, a) && served(&v2_lines, b))
            || (served(&v1_lines, b) && served(&v2_lines, a)),
        "clients {clients:?}, v1 logged {v1_lines:?}, v2 logged {v2_lines:?}"
    );
    assert_eq!(
        v2_lines.len(),
        2,
        "the v2 backend logged its checks: {v2_lines:?}"
    );
    assert!(v2.stderr_silent_for(Duration::from_millis(100)));
    let said = std::fs::read_to_string(haproxy.dir.join("stderr.log"))?;
    assert!(!said.contains("is DOWN"), "HAProxy said: {said}");
    Ok(())
}

/// nginx's stream proxy with `proxy_protocol on` (version 1): a client from 127.0.0.5 appears as
/// 127.0.0.5 and its own port in the backend's log.
#[test]
#[ignore = "needs haproxy, nginx with its stream module, python3: .ci/run installs them and runs cargo test -- --ignored"]
fn nginx_passes_the_client_on() -> TestResult {
    let backend = proxied_backend()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = format!(
        "        listen 127.0.0.1:{port};\n        proxy_pass 127.0.0.1:{};\n        \
         proxy_protocol on;\n",
        backend.addr.port()
    );
    let nginx = nginx(&server, listener.into(), port)?;
    let Some(own) = greet_from_127_0_0_5(nginx.port)? else {
        return Ok(());
    };
    assert_eq!(
        backend.stdout_line()?,
        format!("Accept new connection from 127.0.0.5:{own}...")
    );
    assert_eq!(
        backend.stdout_line()?,
        format!("Connection from 127.0.0.5:{own} closed.")
    );
    Ok(())
}

/// nginx on a dual-stack listener, as `listen [::]:9999 ipv6only=off;` serves both families
/// (here `[::ffff:127.0.0.1]`, loopback only): it names an IPv4 client `::ffff:127.0.0.1` in a
/// version 1 header (TCP6), and the backend greets it and logs it as 127.0.0.1.
#[test]
#[ignore = "needs nginx with its stream module: .ci/run installs it and runs cargo test -- --ignored"]
fn nginx_on_a_dual_stack_listener_passes_ipv4_clients_on() -> TestResult {
    let backend = proxied_backend()?;
    let listener = TcpListener::bind("[::ffff:127.0.0.1]:0")?;
    let port = listener.local_addr()?.port();
    let server = format!(
        "        listen [::ffff:127.0.0.1]:{port} ipv6only=off;\n        proxy_pass \
         127.0.0.1:{};\n        proxy_protocol on;\n",
        backend.addr.port()
    );
    let nginx = nginx(&server, listener.into(), port)?;
    let mut client = connect_welcomed(SocketAddr::from(([127, 0, 0, 1], nginx.port)))?;
    exchange(&mut client, b"Ada", b"Hello, Ada!")?;
    let me = client.local_addr()?;
    client.write_all(b"exit")?;
    assert_eq!(read_to_close(&mut client)?, b"");
    assert_eq!(
        backend.stdout_line()?,
        format!("Accept new connection from {me}...")
    );
    assert_eq!(
        backend.stdout_line()?,
        format!("Connection from {me} closed.")
    );
    Ok(())
}

/// udp-server behind nginx's UDP proxy (no PROXY header for UDP): udp-client, talking to nginx,
/// gets every greeting back through it, and the server logs nginx as the sender.
#[test]
#[ignore = "needs haproxy, nginx with its stream module, python3: .ci/run installs them and runs cargo test -- --ignored"]
fn udp_server_answers_through_nginx() -> TestResult {
    let backend = start_server("udp-server", &[])?;
    backend.stdout_line()?;
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let port = socket.local_addr()?.port();
    let server = format!(
        "        listen 127.0.0.1:{port} udp;\n        proxy_pass 127.0.0.1:{};\n        \
         proxy_responses 1;\n        proxy_timeout 2s;\n",
        backend.addr.port()
    );
    let nginx = nginx(&server, socket.into(), port)?;
    let out = run_client(client("udp-client", nginx.port, &[]), b"")?;
    assert_client_transcript(&out, UDP_CLIENT_TRANSCRIPT);
    for _ in 0..3 {
        let line = backend.stdout_line()?;
        assert!(
            port_in(&line, "Received from ", "127.0.0.1", ".").is_some(),
            "{line}"
        );
    }
    Ok(())
}

//! Behind real load balancers that the tests start themselves, with the configurations of
//! docs/load-balancers.md, read from the page and changed only in their ports (and nginx's
//! `load_module` line, to what this machine needs): HAProxy in TCP mode sending version 2 PROXY
//! headers to two checked backends, nginx's stream module for TCP (version 1 headers) and UDP.
//! Through each: how the servers share connections (their ids say), the README's nc and socat
//! examples, and a failover. HAProxy also with versions 1 and 2 side by side, and nginx on a
//! dual-stack listener. Each balancer gets a temporary folder and listens on sockets the test
//! bound on 127.0.0.1:0 and hands over as its standard input and output (HAProxy's `bind fd@0`,
//! nginx's `NGINX` variable); it is stopped by the PID the test started. They need haproxy,
//! nginx (with its stream module), nc, socat and python3 (which connects from 127.0.0.5): they
//! are ignored unless asked for with `--ignored`, as .ci/run does once it has installed them.
//! Unix only: a socket is handed over as a file descriptor.

#![cfg(unix)]

use std::collections::BTreeMap;
use std::io;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use greeting::protocol::split_id;

/// A balancer process and its folder, stopped and removed when dropped.
struct Balancer {
    child: Child,
    dir: PathBuf,
    /// Where it listens: for TCP, and for UDP if it does.
    port: u16,
    udp_port: Option<u16>,
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

/// Starts `command` in `dir` with `sockets`, on `ports` (TCP, and UDP if any), as its standard
/// input and output.
fn spawn(
    mut command: Command,
    sockets: [Stdio; 2],
    dir: PathBuf,
    (port, udp_port): (u16, Option<u16>),
) -> io::Result<Balancer> {
    let log = std::fs::File::create(dir.join("stderr.log"))?;
    let [stdin, stdout] = sockets;
    command
        .current_dir(&dir)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::from(log));
    let program = command.get_program().to_string_lossy().into_owned();
    let child = installed(command.spawn(), &program)?;
    Ok(Balancer {
        child,
        dir,
        port,
        udp_port,
    })
}

/// The configuration on docs/load-balancers.md whose first line begins with `first`, as the
/// page writes it.
fn from_the_page(first: &str) -> io::Result<String> {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/load-balancers.md");
    let page = std::fs::read_to_string(page)?;
    // Between the fences, odd pieces are blocks: their info string, then their lines.
    let blocks = page.split("```").skip(1).step_by(2);
    let block = blocks
        .filter_map(|block| block.split_once('\n').map(|(_, lines)| lines))
        .find(|lines| lines.starts_with(first));
    let missing = || io::Error::other(format!("no configuration {first:?} on the page"));
    block.map(str::to_string).ok_or_else(missing)
}

/// `config` with each `(from, to)` made: each `from` must be there exactly once, so that the
/// test changes only what it says it does.
fn changed(config: &str, changes: &[(&str, String)]) -> io::Result<String> {
    let mut config = config.to_string();
    for (from, to) in changes {
        let found = config.matches(from).count();
        if found != 1 {
            let why = format!("{from:?} is {found} times in the configuration, not once");
            return Err(io::Error::other(why));
        }
        config = config.replace(from, to);
    }
    Ok(config)
}

/// Starts HAProxy in the foreground with `config` (the page's command), listening on a TCP
/// socket of its own on 127.0.0.1:0 (`bind fd@0` in `config`).
fn haproxy(config: &str) -> io::Result<Balancer> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let dir = folder("haproxy", port)?;
    std::fs::write(dir.join("greeting.cfg"), config)?;
    let mut command = Command::new("haproxy");
    command.args(["-db", "-f", "greeting.cfg"]);
    let sockets = [Stdio::from(OwnedFd::from(listener)), Stdio::null()];
    spawn(command, sockets, dir, (port, None))
}

/// HAProxy as the page configures it, in front of the tcp-servers on `backends`.
fn haproxy_from_the_page(backends: [u16; 2]) -> io::Result<Balancer> {
    let config = changed(
        &from_the_page("# greeting.cfg: haproxy -db -f greeting.cfg")?,
        &[
            ("bind 127.0.0.1:9999", "bind fd@0".to_string()),
            ("127.0.0.1:10001", format!("127.0.0.1:{}", backends[0])),
            ("127.0.0.1:10002", format!("127.0.0.1:{}", backends[1])),
        ],
    )?;
    haproxy(&config)
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

/// Starts nginx in the foreground with `config` as the page does (`-p` its folder, `-e stderr`),
/// handing it `tcp` as its standard input and `udp`, if any, as its standard output: the
/// sockets its `listen` lines name.
fn nginx(config: &str, tcp: TcpListener, udp: Option<UdpSocket>) -> io::Result<Balancer> {
    let port = tcp.local_addr()?.port();
    let udp_port = udp
        .as_ref()
        .map(UdpSocket::local_addr)
        .transpose()?
        .map(|addr| addr.port());
    let dir = folder("nginx", port)?;
    std::fs::write(dir.join("greeting-nginx.conf"), config)?;
    let mut command = Command::new("nginx");
    command
        .args(["-p", "."])
        .args(["-e", "stderr", "-c", "greeting-nginx.conf"])
        .env("NGINX", if udp.is_some() { "0;1;" } else { "0;" });
    let udp = udp.map_or_else(Stdio::null, |udp| Stdio::from(OwnedFd::from(udp)));
    let sockets = [Stdio::from(OwnedFd::from(tcp)), udp];
    spawn(command, sockets, dir, (port, udp_port))
}

/// nginx as the page configures it, in front of the tcp-servers on `tcp` and the udp-servers on
/// `udp`.
fn nginx_from_the_page(tcp: [u16; 2], udp: [u16; 2]) -> io::Result<Balancer> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let (port, udp_port) = (listener.local_addr()?.port(), socket.local_addr()?.port());
    let page = from_the_page("# greeting-nginx.conf: nginx -p . -e stderr -c greeting-nginx.conf")?;
    let config = changed(
        &page,
        &[
            (
                "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n",
                nginx_stream_module()?,
            ),
            (
                "listen 127.0.0.1:9999;",
                format!("listen 127.0.0.1:{port};"),
            ),
            (
                "listen 127.0.0.1:8888 udp;",
                format!("listen 127.0.0.1:{udp_port} udp;"),
            ),
            ("127.0.0.1:10001;", format!("127.0.0.1:{};", tcp[0])),
            ("127.0.0.1:10002;", format!("127.0.0.1:{};", tcp[1])),
            ("127.0.0.1:8881;", format!("127.0.0.1:{};", udp[0])),
            ("127.0.0.1:8882;", format!("127.0.0.1:{};", udp[1])),
        ],
    )?;
    nginx(&config, listener, Some(socket))
}

/// nginx with `server` as its only stream server, listening on `tcp`, with the page's top
/// level.
fn nginx_serving(server: &str, tcp: TcpListener) -> io::Result<Balancer> {
    let config = format!(
        "{}daemon off;\npid nginx.pid;\nerror_log stderr;\nevents {{}}\n\
         stream {{\n    server {{\n{server}    }}\n}}\n",
        nginx_stream_module()?
    );
    nginx(&config, tcp, None)
}

/// Python that connects from 127.0.0.5 to the port it is given, reads the welcome (after a
/// server's id, if it says one), greets Ada, says exit, and prints its own port and what it read.
const FROM_127_0_0_5: &str = r#"import socket, sys
s = socket.socket()
s.settimeout(5)
s.bind(('127.0.0.5', 0))
s.connect(('127.0.0.1', int(sys.argv[1])))
w = b''
while not w.endswith(b'Welcome!'):
    more = s.recv(64)
    if not more:
        break
    w += more
s.sendall(b'Ada')
r = s.recv(11, socket.MSG_WAITALL)
s.sendall(b'exit')
print(s.getsockname()[1], (w + r).decode())
"#;

/// Greets Ada through `port` from 127.0.0.5 and returns the client's own port and the id of the
/// server that answered, if it said one; or None (and says so) without that address.
fn greet_from_127_0_0_5(port: u16) -> io::Result<Option<(u16, Option<String>)>> {
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
    let (id, said) = split_id(said.as_bytes());
    assert_eq!(said, b"Welcome!Hello, Ada!");
    let id = id.map(|id| String::from_utf8_lossy(id).into_owned());
    Ok(Some((own.parse().map_err(io::Error::other)?, id)))
}

/// A tcp-server that expects PROXY headers, past its first line, with `id` if any.
fn proxied_backend(id: Option<&str>) -> io::Result<ServerProcess> {
    let server = match id {
        Some(id) => start_server("tcp-server", &["--proxy-protocol", "--id", id])?,
        None => start_server("tcp-server", &["--proxy-protocol"])?,
    };
    server.stdout_line()?;
    Ok(server)
}

/// How many of `runs` of a client (`tcp-client Ada` or `udp-client Michael`) through `port` each
/// server answered, by the id it said first; a run that fails counts under its stderr line.
fn answered_by(program: &str, port: u16, runs: usize) -> io::Result<BTreeMap<String, usize>> {
    let mut by = BTreeMap::new();
    for _ in 0..runs {
        let name = if program == "tcp-client" {
            "Ada"
        } else {
            "Michael"
        };
        let out = run_client(client(program, port, &["--timeout", "2s", name]), b"")?;
        let first = out.stdout_text().lines().next().map(str::to_string);
        let key = match (out.code, first) {
            (Some(0), Some(line)) => split_id(line.as_bytes())
                .0
                .map_or(line.clone(), |id| String::from_utf8_lossy(id).into_owned()),
            _ => out.stderr.trim().to_string(),
        };
        *by.entry(key).or_default() += 1;
    }
    Ok(by)
}

/// What the README's examples get through `port` (`udp_port` for UDP): `nc -N` and socat with
/// two lines, each checked against the replies they should get whichever server answers.
fn readme_examples_through(port: u16, udp_port: Option<u16>) -> TestResult {
    let port = port.to_string();
    let target = format!("TCP:127.0.0.1:{port}");
    for (tool, args) in [
        ("nc", vec!["-N", "127.0.0.1", &port]),
        ("socat", vec!["-", &target]),
    ] {
        let out = external(tool, &args, b"Ada\nBob\n")?;
        let (id, said) = split_id(&out.stdout);
        assert!(id.is_some(), "{tool}: {:?}", out.stdout_text());
        assert_eq!(said, b"Welcome!Hello, Ada!\nHello, Bob!\n", "{tool}");
        assert_eq!(out.code, Some(0), "{tool}: {}", out.stderr);
    }
    if let Some(udp_port) = udp_port {
        let udp_port = udp_port.to_string();
        let out = external("nc", &["-u", "-w1", "127.0.0.1", &udp_port], b"Michael")?;
        let (id, said) = split_id(&out.stdout);
        assert!(id.is_some(), "nc -u: {:?}", out.stdout_text());
        assert_eq!(said, b"Hello, Michael!");
    }
    Ok(())
}

/// Stops `stopped`, and checks that the next ten clients through `port`, one right after another,
/// are all greeted by the server left, `left`.
fn a_failover_loses_no_client(stopped: ServerProcess, port: u16, left: &str) -> TestResult {
    let mut stopped = stopped;
    stopped.child.kill()?;
    stopped.child.wait()?;
    let by = answered_by("tcp-client", port, 10)?;
    assert_eq!(by, BTreeMap::from([(left.to_string(), 10)]));
    Ok(())
}

/// HAProxy as docs/load-balancers.md configures it, in front of two tcp-servers with ids: it
/// shares the clients out between them; nc -N and socat, as the README runs them, get their
/// replies; and once one server is stopped, every next client is greeted by the other, none
/// failing while HAProxy's check has not yet noticed.
#[test]
#[ignore = "needs haproxy, nc, socat: .ci/run installs them and runs cargo test -- --ignored"]
fn haproxy_as_the_page_configures_it() -> TestResult {
    let (s1, s2) = (proxied_backend(Some("s1"))?, proxied_backend(Some("s2"))?);
    let haproxy = haproxy_from_the_page([s1.addr.port(), s2.addr.port()])?;
    let by = answered_by("tcp-client", haproxy.port, 10)?;
    assert!(by.get("s1") > Some(&0) && by.get("s2") > Some(&0), "{by:?}");
    assert_eq!(by.values().sum::<usize>(), by["s1"] + by["s2"], "{by:?}");
    readme_examples_through(haproxy.port, None)?;
    a_failover_loses_no_client(s1, haproxy.port, "s2")
}

/// nginx as docs/load-balancers.md configures it, in front of two tcp-servers and two udp-servers
/// with ids: it shares TCP and UDP clients out between them; a client from 127.0.0.5 appears as
/// such in the log of the server that greeted it (version 1 PROXY header); nc -N, socat and nc -u,
/// as the README runs them, get their replies (`proxy_half_close`); and once one server is
/// stopped, every next client is greeted by the other.
#[test]
#[ignore = "needs nginx with its stream module, nc, socat, python3: .ci/run installs them and runs cargo test -- --ignored"]
fn nginx_as_the_page_configures_it() -> TestResult {
    let (s1, s2) = (proxied_backend(Some("s1"))?, proxied_backend(Some("s2"))?);
    let udp = |id| start_server("udp-server", &["--quiet", "--id", id]);
    let (u1, u2) = (udp("u1")?, udp("u2")?);
    let nginx = nginx_from_the_page(
        [s1.addr.port(), s2.addr.port()],
        [u1.addr.port(), u2.addr.port()],
    )?;
    let by = answered_by("tcp-client", nginx.port, 10)?;
    assert_eq!(by, BTreeMap::from([("s1".into(), 5), ("s2".into(), 5)]));
    let udp_port = nginx.udp_port.expect("the page's nginx proxies UDP");
    let by = answered_by("udp-client", udp_port, 4)?;
    assert_eq!(by, BTreeMap::from([("u1".into(), 2), ("u2".into(), 2)]));
    if let Some((own, id)) = greet_from_127_0_0_5(nginx.port)? {
        let backend = if id.as_deref() == Some("s1") {
            &s1
        } else {
            &s2
        };
        let lines = backend.stdout_lines_for(Duration::from_millis(500));
        let accepted = format!("Accept new connection from 127.0.0.5:{own}...");
        assert!(lines.contains(&accepted), "{id:?} logged {lines:?}");
    }
    readme_examples_through(nginx.port, Some(udp_port))?;
    a_failover_loses_no_client(s2, nginx.port, "s1")
}

/// HAProxy sends version 1 headers to one backend and version 2 to the other, round robin, and
/// checks both five times a second with `Welcome!` expected, one failure enough to mark a
/// backend down. Clients from 127.0.0.5 appear as 127.0.0.5 and their own ports in the backend
/// that serves each. Version 1 checks name the check's own connection, and so look like clients
/// (docs/load-balancers.md says to use v2 with checks); the version 2 backend's checks (LOCAL
/// headers, then a reset) pass, as HAProxy marks no backend down, and leave no line at all.
#[test]
#[ignore = "needs haproxy, python3: .ci/run installs them and runs cargo test -- --ignored"]
fn haproxy_passes_the_client_on_with_both_versions() -> TestResult {
    let (v1, v2) = (proxied_backend(None)?, proxied_backend(None)?);
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    \
         timeout server 10s\n    timeout check 2s\n\
         listen front\n    bind fd@0\n    balance roundrobin\n    option tcp-check\n    \
         tcp-check expect string Welcome!\n    default-server check inter 200ms fall 1 rise 1\n    \
         server v1 127.0.0.1:{} send-proxy check-send-proxy\n    \
         server v2 127.0.0.1:{} send-proxy-v2\n",
        v1.addr.port(),
        v2.addr.port()
    );
    let haproxy = haproxy(&config)?;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let Some((own, _)) = greet_from_127_0_0_5(haproxy.port)? else {
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

/// nginx on a dual-stack listener, as `listen [::]:9999 ipv6only=off;` serves both families
/// (here `[::ffff:127.0.0.1]`, loopback only): it names an IPv4 client `::ffff:127.0.0.1` in a
/// version 1 header (TCP6), and the backend greets it and logs it as 127.0.0.1.
#[test]
#[ignore = "needs nginx with its stream module: .ci/run installs it and runs cargo test -- --ignored"]
fn nginx_on_a_dual_stack_listener_passes_ipv4_clients_on() -> TestResult {
    let backend = proxied_backend(None)?;
    let listener = TcpListener::bind("[::ffff:127.0.0.1]:0")?;
    let port = listener.local_addr()?.port();
    let server = format!(
        "        listen [::ffff:127.0.0.1]:{port} ipv6only=off;\n        proxy_pass \
         127.0.0.1:{};\n        proxy_protocol on;\n",
        backend.addr.port()
    );
    let nginx = nginx_serving(&server, listener)?;
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

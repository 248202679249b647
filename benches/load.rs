//! Load benchmark: the real server binaries against the leanest server of the same design (the
//! "floor"), under the same load in the same run, reported as ratios to the floor.
//!
//! `cargo bench --bench load` runs it all (a few minutes on 2 cores). After `--`: `--quick` runs
//! one rep per contender with a shorter window, `--reps N` sets the reps, `--only 'TCP ×256'`
//! runs the cells whose label contains that text, and `--scale N` only the N-connection scale
//! test. The bench executable is also the floor server: run with
//! `--floor-server tcp|udp` it serves the protocol with thread per connection, one read and one
//! `write_all` per message, TCP_NODELAY, no framing state and no logging.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Stack for every load-generator thread: they hold a few small buffers only.
const CLIENT_STACK: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--floor-server") {
        let result = match args.get(i + 1).map(String::as_str) {
            Some("tcp") => floor::tcp(),
            Some("udp") => floor::udp(),
            other => Err(io::Error::other(format!("unknown floor server {other:?}"))),
        };
        if let Err(err) = result {
            eprintln!("floor server: {err}");
            std::process::exit(1);
        }
        return;
    }
    let value = |flag: &str| {
        let i = args.iter().position(|a| a == flag)?;
        Some(args.get(i + 1).cloned().unwrap_or_default())
    };
    let quick = args.iter().any(|a| a == "--quick");
    let options = Options {
        reps: value("--reps")
            .and_then(|n| n.parse().ok())
            .unwrap_or(if quick { 1 } else { 15 }),
        window: Duration::from_millis(500),
        only: value("--only"),
        scale: if quick { 2_000 } else { 10_000 },
    };
    let result = match value("--scale") {
        Some(n) => match n.parse() {
            Ok(connections) => scale_only(connections),
            Err(_) => Err(io::Error::other("--scale takes a number of connections")),
        },
        None => run(&options),
    };
    if let Err(err) = result {
        eprintln!("bench failed: {err}");
        std::process::exit(1);
    }
}

/// The floor: what a greeting server costs at the least, in the same design as ours.
mod floor {
    use super::*;

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
        let mut buf = vec![0; 8 * 1024];
        let mut reply = Vec::with_capacity(8 * 1024 + 8);
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 || &buf[..n] == b"exit" {
                return Ok(());
            }
            reply.clear();
            reply.extend_from_slice(b"Hello, ");
            reply.extend_from_slice(&buf[..n]);
            reply.push(b'!');
            stream.write_all(&reply)?;
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
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proto {
    Tcp,
    Udp,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Contender {
    Floor,
    /// Ours, with `--quiet` for UDP.
    Ours,
    /// Ours, logging every datagram to a file.
    OursLogging,
    /// Ours, logging every datagram to a pipe that the bench drains.
    OursLoggingPipe,
}

impl Contender {
    fn label(self) -> &'static str {
        match self {
            Contender::Floor => "floor",
            Contender::Ours => "ours",
            Contender::OursLogging => "ours, log to file",
            Contender::OursLoggingPipe => "ours, log to pipe",
        }
    }
}

/// A server process under test, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(proto: Proto, contender: Contender, log_dir: &std::path::Path) -> io::Result<Server> {
    let mut command = match (contender, proto) {
        (Contender::Floor, proto) => {
            let mut command = Command::new(std::env::current_exe()?);
            command.args([
                "--floor-server",
                if proto == Proto::Tcp { "tcp" } else { "udp" },
            ]);
            command
        }
        (_, Proto::Tcp) => {
            let mut command = Command::new(env!("CARGO_BIN_EXE_tcp-server"));
            command.args([
                "--port",
                "0",
                "--max-connections",
                "100000",
                "--idle-timeout",
                "0",
            ]);
            command
        }
        (_, Proto::Udp) => {
            let mut command = Command::new(env!("CARGO_BIN_EXE_udp-server"));
            command.args(["--port", "0"]);
            if contender == Contender::Ours {
                command.arg("--quiet");
            }
            command
        }
    };
    let stdout = if contender == Contender::OursLoggingPipe {
        Stdio::piped()
    } else {
        Stdio::from(File::create(log_dir.join("server.log"))?)
    };
    let mut child = command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut pipe) = child.stdout.take() {
        thread::spawn(move || io::copy(&mut pipe, &mut io::sink()));
    }
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
    // Owned from here on, so that the process is killed on every way out.
    let mut server = Server {
        child,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    let mut line = String::new();
    stderr.read_line(&mut line)?;
    server.addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected first line {line:?}")))?;
    // Keep draining stderr so the server never blocks on it; show anything it says.
    thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            eprintln!("  server: {line}");
        }
    });
    Ok(server)
}

/// CPU time of every live thread of `pid`, in nanoseconds (from `/proc/<pid>/task/*/schedstat`).
fn cpu_ns(pid: u32) -> io::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(total)
}

fn status_field(pid: u32, field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)?
                .strip_prefix(':')?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .ok_or_else(|| io::Error::other(format!("no {field} for {pid}")))
}

/// What one run of one contender in one cell measured.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    cpu_us_per_msg: f64,
    threads: u64,
    peak_rss_kb: u64,
    errors: u64,
}

/// One load-generator client: a connected socket that does lockstep round trips.
enum Client {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

impl Client {
    fn connect(proto: Proto, addr: SocketAddr) -> io::Result<Client> {
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
    fn round_trip(&mut self, name: &[u8], buf: &mut [u8]) -> io::Result<()> {
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
const SETUP_IN_FLIGHT: usize = 32;

/// A counting gate: at most `limit` callers inside at once.
struct Gate {
    inside: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
    limit: usize,
}

impl Gate {
    fn new(limit: usize) -> Self {
        Gate {
            inside: std::sync::Mutex::new(0),
            freed: std::sync::Condvar::new(),
            limit,
        }
    }

    fn through<T>(&self, work: impl FnOnce() -> T) -> T {
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
fn write_name(name: &mut Vec<u8>, client: usize, round: u64) {
    name.clear();
    let _ = write!(name, "c{client}r{round}");
}

/// Runs one contender in one cell: `clients` connections doing lockstep round trips for `window`.
fn measure(
    proto: Proto,
    contender: Contender,
    clients: usize,
    window: Duration,
    log_dir: &std::path::Path,
) -> io::Result<Sample> {
    let server = start(proto, contender, log_dir)?;
    let pid = server.child.id();
    let addr = server.addr;
    let ready = Arc::new(Barrier::new(clients + 1));
    let go = Arc::new(Barrier::new(clients + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Gate::new(SETUP_IN_FLIGHT));
    let mut handles = Vec::with_capacity(clients);
    for id in 0..clients {
        let (ready, go, stop, errors, gate) = (
            Arc::clone(&ready),
            Arc::clone(&go),
            Arc::clone(&stop),
            Arc::clone(&errors),
            Arc::clone(&gate),
        );
        let handle = thread::Builder::new().stack_size(CLIENT_STACK).spawn(
            move || -> (Vec<u32>, Option<Client>) {
                let client = gate.through(|| Client::connect(proto, addr));
                ready.wait();
                go.wait();
                let Ok(mut client) = client else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return (Vec::new(), None);
                };
                let mut latencies = Vec::with_capacity(4096);
                let mut name = Vec::with_capacity(32);
                let mut buf = vec![0; 256];
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    write_name(&mut name, id, round);
                    round += 1;
                    let started = Instant::now();
                    match client.round_trip(&name, &mut buf) {
                        Ok(()) => latencies
                            .push(started.elapsed().as_nanos().min(u32::MAX as u128) as u32),
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            if proto == Proto::Tcp {
                                break;
                            }
                        }
                    }
                }
                // The connection stays open until the server's CPU time has been read: a thread
                // that has ended takes its CPU time out of /proc/<pid>/task.
                (latencies, Some(client))
            },
        )?;
        handles.push(handle);
    }
    // Connection set-up is outside the timed window: start the clock once all are connected.
    ready.wait();
    let cpu_before = cpu_ns(pid)?;
    let started = Instant::now();
    go.wait();
    thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let threads = status_field(pid, "Threads")?;
    let mut latencies = Vec::new();
    let mut open = Vec::with_capacity(clients);
    for handle in handles {
        let (times, client) = handle.join().expect("client thread should not panic");
        latencies.extend(times);
        open.push(client);
    }
    let elapsed = started.elapsed();
    let cpu = cpu_ns(pid)?.saturating_sub(cpu_before);
    drop(open);
    let peak_rss_kb = status_field(pid, "VmHWM")?;
    latencies.sort_unstable();
    let pick = |q: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies[i] as f64 / 1000.0
    };
    let count = latencies.len() as f64;
    Ok(Sample {
        rate: count / elapsed.as_secs_f64(),
        p50_us: pick(0.5),
        p99_us: pick(0.99),
        max_us: pick(1.0),
        cpu_us_per_msg: cpu as f64 / 1000.0 / count.max(1.0),
        threads,
        peak_rss_kb,
        errors: errors.load(Ordering::Relaxed),
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// The median of each figure over several runs of one contender.
fn medians(samples: &[Sample]) -> Sample {
    let of = |f: fn(&Sample) -> f64| median(&mut samples.iter().map(f).collect::<Vec<_>>());
    Sample {
        rate: of(|s| s.rate),
        p50_us: of(|s| s.p50_us),
        p99_us: of(|s| s.p99_us),
        max_us: of(|s| s.max_us),
        cpu_us_per_msg: of(|s| s.cpu_us_per_msg),
        threads: samples.iter().map(|s| s.threads).max().unwrap_or(0),
        peak_rss_kb: samples.iter().map(|s| s.peak_rss_kb).max().unwrap_or(0),
        errors: samples.iter().map(|s| s.errors).sum(),
    }
}

struct Cell {
    proto: Proto,
    clients: usize,
    contenders: [Contender; 2],
}

/// What to run, from the command line.
struct Options {
    reps: usize,
    window: Duration,
    /// Run only the cells whose label (`TCP ×256`) contains this, and no scale test.
    only: Option<String>,
    scale: usize,
}

fn run(options: &Options) -> io::Result<()> {
    let (reps, window) = (options.reps, options.window);
    let log_dir = std::env::temp_dir().join(format!("greeting-bench-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir)?;
    let tcp = |clients| Cell {
        proto: Proto::Tcp,
        clients,
        contenders: [Contender::Floor, Contender::Ours],
    };
    let udp = |clients, ours| Cell {
        proto: Proto::Udp,
        clients,
        contenders: [Contender::Floor, ours],
    };
    let cells = [
        tcp(1),
        tcp(16),
        tcp(256),
        tcp(2000),
        udp(1, Contender::Ours),
        udp(16, Contender::Ours),
        udp(1, Contender::OursLogging),
        udp(16, Contender::OursLogging),
        udp(1, Contender::OursLoggingPipe),
        udp(16, Contender::OursLoggingPipe),
    ];
    let bench_started = Instant::now();
    println!(
        "{} reps per contender, {} ms windows, medians; ×floor is the median of each rep's ours / floor",
        reps,
        window.as_millis()
    );
    println!();
    println!(
        "| cell | contender | round trips/s | ×floor | p50 µs | p99 µs | ×floor | max µs | CPU µs/msg | ×floor | threads | peak RSS KiB | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for cell in &cells {
        let label = format!("{:?} ×{}", cell.proto, cell.clients).to_uppercase();
        if options
            .only
            .as_ref()
            .is_some_and(|only| !label.contains(only.as_str()))
        {
            continue;
        }
        let mut samples: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
        for rep in 0..reps {
            // Alternate who goes first, so drift on a noisy machine hits both alike.
            let order = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let sample = measure(
                    cell.proto,
                    cell.contenders[i],
                    cell.clients,
                    window,
                    &log_dir,
                )?;
                samples[i].push(sample);
            }
        }
        // Ratios are the median of each rep's ratio: the two runs of a rep are seconds apart,
        // so slow drift on a shared machine cancels out of them.
        let ratio = |f: fn(&Sample) -> f64| {
            let mut ratios: Vec<f64> = samples[1]
                .iter()
                .zip(&samples[0])
                .map(|(ours, floor)| f(ours) / f(floor))
                .collect();
            median(&mut ratios)
        };
        let ratios = [
            ratio(|s| s.rate),
            ratio(|s| s.p99_us),
            ratio(|s| s.cpu_us_per_msg),
        ];
        for (i, contender) in cell.contenders.iter().enumerate() {
            let m = medians(&samples[i]);
            let [rate, p99, cpu] = if i == 0 { [1.0; 3] } else { ratios };
            println!(
                "| {label} | {} | {:.0} | {rate:.2} | {:.1} | {:.1} | {p99:.2} | {:.0} | {:.2} | {cpu:.2} | {} | {} | {} |",
                contender.label(),
                m.rate,
                m.p50_us,
                m.p99_us,
                m.max_us,
                m.cpu_us_per_msg,
                m.threads,
                m.peak_rss_kb,
                m.errors,
            );
        }
    }
    println!();
    if options.only.is_none() {
        for contender in [Contender::Floor, Contender::Ours] {
            scale(contender, options.scale, &log_dir)?;
        }
    }
    let _ = std::fs::remove_dir_all(&log_dir);
    println!();
    println!("bench took {:.0} s", bench_started.elapsed().as_secs_f64());
    Ok(())
}

/// The kernel's count of connections dropped because a listen queue was full (all listeners on
/// the machine; during the scale test, that is the server under test).
fn listen_overflows() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/netstat") else {
        return 0;
    };
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if !names.starts_with("TcpExt:") {
            continue;
        }
        let pairs = names.split_whitespace().zip(values.split_whitespace());
        for (name, value) in pairs {
            if name == "ListenOverflows" {
                return value.parse().unwrap_or(0);
            }
        }
    }
    0
}

/// Runs only the scale test, for both contenders.
fn scale_only(connections: usize) -> io::Result<()> {
    let log_dir = std::env::temp_dir().join(format!("greeting-bench-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir)?;
    for contender in [Contender::Floor, Contender::Ours] {
        scale(contender, connections, &log_dir)?;
    }
    std::fs::remove_dir_all(&log_dir)
}

/// Opens `connections` TCP connections at once, one client thread each, greets on every one while
/// all are open, and reports the connect time and the server's memory per connection.
fn scale(contender: Contender, connections: usize, log_dir: &std::path::Path) -> io::Result<()> {
    let server = start(Proto::Tcp, contender, log_dir)?;
    let pid = server.child.id();
    let addr = server.addr;
    let rss_before = status_field(pid, "VmRSS")?;
    let overflows_before = listen_overflows();
    let connected = Arc::new(Barrier::new(connections + 1));
    let answered = Arc::new(Barrier::new(connections + 1));
    let release = Arc::new(Barrier::new(connections + 1));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(connections);
    for id in 0..connections {
        let (connected, answered, release, errors) = (
            Arc::clone(&connected),
            Arc::clone(&answered),
            Arc::clone(&release),
            Arc::clone(&errors),
        );
        handles.push(
            thread::Builder::new()
                .stack_size(CLIENT_STACK)
                .spawn(move || {
                    let client = Client::connect(Proto::Tcp, addr);
                    connected.wait();
                    let result = client.and_then(|mut client| {
                        let mut name = Vec::new();
                        write_name(&mut name, id, 0);
                        client.round_trip(&name, &mut [0; 64])?;
                        Ok(client)
                    });
                    if let Err(err) = &result {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("  scale: connection {id}: {err}");
                        }
                    }
                    answered.wait();
                    release.wait();
                    drop(result);
                })?,
        );
    }
    connected.wait();
    let connect_time = started.elapsed();
    let overflows = listen_overflows() - overflows_before;
    answered.wait();
    let threads = status_field(pid, "Threads")?;
    let rss = status_field(pid, "VmRSS")?;
    release.wait();
    for handle in handles {
        handle.join().expect("client thread should not panic");
    }
    let per_connection = (rss.saturating_sub(rss_before)) as f64 / connections as f64;
    println!(
        "scale, {}: {connections} connections connected and welcomed in {:.2} s ({overflows} listen queue overflows), {} errors; server threads {threads}, RSS {rss} KiB ({per_connection:.1} KiB per connection)",
        contender.label(),
        connect_time.as_secs_f64(),
        errors.load(Ordering::Relaxed),
    );
    Ok(())
}

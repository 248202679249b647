//! Hostile and broken peers against the real server binaries: idle and non-reading clients,
//! connection floods, huge input, resets, running out of descriptors, a lossy network for the UDP
//! client, and a reflection loop between two UDP servers.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
#[cfg(target_os = "linux")]
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

/// Starts tcp-server with `extra` arguments, past its first stdout line.
fn tcp_server(extra: &[&str]) -> io::Result<ServerProcess> {
    let server = start_server("tcp-server", extra)?;
    assert_eq!(
        server.stdout_line()?,
        "TCPServer is waiting for connection..."
    );
    Ok(server)
}

/// Waits for the server's stdout line saying the connection from `client` closed, skipping
/// other lines.
fn await_closed(server: &ServerProcess, client: SocketAddr) -> io::Result<()> {
    let wanted = format!("Connection from {client} closed.");
    for _ in 0..1000 {
        if server.stdout_line()? == wanted {
            return Ok(());
        }
    }
    Err(io::Error::other(format!("never saw {wanted:?}")))
}

/// A connection that sends nothing is closed after the idle timeout and logged as closed.
#[test]
fn idle_connections_are_closed() -> TestResult {
    let server = tcp_server(&["--idle-timeout", "300ms"])?;
    let mut stream = connect_welcomed(server.addr)?;
    let started = Instant::now();
    assert!(
        is_closed(&mut stream)?,
        "the server sent bytes to an idle client"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250),
        "closed too early: {elapsed:?}"
    );
    await_closed(&server, stream.local_addr()?)?;
    let line = server.stderr_line()?;
    assert_eq!(
        line,
        format!("{}: idle for 300ms, closed", stream.local_addr()?)
    );
    Ok(())
}

/// A peer that sends but never reads fills the socket buffers; the write timeout frees its
/// thread instead of pinning it in `write` forever.
#[test]
fn a_peer_that_never_reads_is_closed() -> TestResult {
    let server = tcp_server(&["--idle-timeout", "300ms"])?;
    let stream = connect(server.addr)?;
    let local = stream.local_addr()?;
    let mut writer = stream.try_clone()?;
    writer.set_write_timeout(Some(Duration::from_millis(500)))?;
    let flooding = thread::spawn(move || {
        let lines = b"a\n".repeat(32 * 1024);
        for _ in 0..200 {
            if writer.write_all(&lines).is_err() {
                return;
            }
        }
    });
    await_closed(&server, local)?;
    flooding.join().expect("flooding thread should not panic");
    Ok(())
}

/// Beyond `--max-connections`, a new connection gets the busy line instead of `Welcome!` and is
/// closed; live connections go on, and a slot frees as soon as one ends.
#[test]
fn connections_over_the_limit_are_turned_away_and_slots_reused() -> TestResult {
    let server = tcp_server(&["--max-connections", "2"])?;
    let mut first = connect_welcomed(server.addr)?;
    let mut second = connect_welcomed(server.addr)?;
    let mut third = connect(server.addr)?;
    assert_eq!(
        read_to_close(&mut third)?,
        b"busy: too many connections, try again later\n"
    );
    let turned_away = server.stderr_line()?;
    assert_eq!(
        turned_away,
        format!(
            "{}: turned away, 2 connections are open",
            third.local_addr()?
        )
    );
    exchange(&mut first, b"Ada", b"Hello, Ada!")?;
    exchange(&mut second, b"Bob", b"Hello, Bob!")?;
    first.write_all(b"exit")?;
    assert!(is_closed(&mut first)?);
    await_closed(&server, first.local_addr()?)?;
    let mut fourth = connect_welcomed(server.addr)?;
    exchange(&mut fourth, b"Cy", b"Hello, Cy!")?;
    Ok(())
}

/// A turned-away client that already sent its name still gets the whole busy line and an orderly
/// end of stream: the server drains what it sent instead of resetting the connection, and the
/// A burst of refusals is one stderr line at once, and the count of the rest in a line of its
/// own within about a second of the burst, with nothing after it: 50 clients turned away by a
/// server full at one connection.
#[test]
fn a_burst_of_refusals_is_one_line_and_its_count() -> TestResult {
    let server = tcp_server(&["--max-connections", "1"])?;
    let _held = connect_welcomed(server.addr)?;
    let started = Instant::now();
    let mut first = None;
    for _ in 0..50 {
        let mut turned_away = connect(server.addr)?;
        first = first.or(Some(turned_away.local_addr()?));
        assert_eq!(read_to_close(&mut turned_away)?, BUSY);
    }
    let first = first.ok_or("no client")?;
    let burst = started.elapsed();
    assert_eq!(
        server.stderr_line()?,
        format!("{first}: turned away, 1 connection is open")
    );
    let count = server.stderr_line()?;
    let counted = started.elapsed();
    assert_eq!(
        count,
        "49 more connections turned away (reported at most once a second)"
    );
    assert!(
        counted < burst + Duration::from_secs(2),
        "{counted:?} after {burst:?}"
    );
    assert!(server.stderr_silent_for(Duration::from_millis(1500)));
    Ok(())
}

/// accept loop goes on serving meanwhile.
#[test]
fn the_busy_line_survives_a_client_that_already_sent() -> TestResult {
    let server = tcp_server(&["--max-connections", "1", "--quiet"])?;
    let _first = connect_welcomed(server.addr)?;
    for _ in 0..5 {
        let mut eager = connect(server.addr)?;
        eager.write_all(&vec![b'n'; 64 * 1024])?;
        let mut reply = Vec::new();
        eager.read_to_end(&mut reply)?;
        assert_eq!(reply, b"busy: too many connections, try again later\n");
    }
    Ok(())
}

/// Two peers that send a line too long and then trickle a byte every half second cannot keep
/// their slots: the drain after `error: line too long` ends at its deadline (1 s) whatever they
/// send, so a new client is welcomed soon after, well before the idle timeout (3 s).
#[test]
fn a_trickle_after_a_line_too_long_does_not_hold_the_slot() -> TestResult {
    let server = tcp_server(&["--max-connections", "2", "--idle-timeout", "3s", "--quiet"])?;
    let mut tricklers = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_welcomed(server.addr)?;
        exchange(&mut stream, b"Ada\n", b"Hello, Ada!\n")?;
        stream.write_all(&vec![b'y'; 70_000])?;
        assert_eq!(read_n(&mut stream, 21)?, b"error: line too long\n");
        tricklers.push(thread::spawn(move || {
            for _ in 0..10 {
                if stream.write_all(b"y").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(500));
            }
        }));
    }
    let welcomed = eventually(Duration::from_millis(2500), || {
        let mut stream = connect(server.addr)?;
        let mut first = [0; 8];
        stream.read_exact(&mut first)?;
        Ok(&first == b"Welcome!")
    })?;
    assert!(welcomed, "the trickling peers kept both slots");
    for trickler in tricklers {
        trickler.join().expect("trickling thread should not panic");
    }
    Ok(())
}

/// A gigabyte-class raw stream costs no more memory than a short one: each 1 KiB read is one
/// message, answered and forgotten.
#[test]
fn huge_raw_input_costs_bounded_memory() -> TestResult {
    let server = tcp_server(&["--quiet"])?;
    let before = peak_memory_kb(server.pid())?;
    let mut stream = connect_welcomed(server.addr)?;
    let mut writer = stream.try_clone()?;
    const TOTAL: usize = 64 * 1024 * 1024;
    let sending = thread::spawn(move || -> io::Result<()> {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..TOTAL / chunk.len() {
            writer.write_all(&chunk)?;
        }
        writer.shutdown(Shutdown::Write)
    });
    // Each message of n bytes comes back as n + 8 bytes; read it all.
    let mut received = 0usize;
    let mut buf = vec![0; 256 * 1024];
    loop {
        match stream.read(&mut buf)? {
            0 => break,
            n => received += n,
        }
    }
    sending.join().expect("sending thread should not panic")?;
    assert!(received > TOTAL, "got {received} bytes back for {TOTAL}");
    assert_memory_grew_less_than(server.pid(), before, 8 * 1024)
}

/// A line that never ends is cut off at 64 KiB: the peer gets a short error line and an orderly
/// close, every time (the rest of its line is drained a while, so no reset overtakes the line;
/// 20 rounds, since without that a reset wins only now and then), while memory stays bounded.
#[test]
fn an_endless_line_ends_the_connection() -> TestResult {
    let server = tcp_server(&["--quiet"])?;
    let before = peak_memory_kb(server.pid())?;
    for _ in 0..20 {
        let mut stream = connect_welcomed(server.addr)?;
        exchange(&mut stream, b"Ada\n", b"Hello, Ada!\n")?;
        let mut writer = stream.try_clone()?;
        let sending = thread::spawn(move || {
            // Large writes, so that bytes the server has not read are waiting when it gives up.
            let chunk = vec![b'y'; 256 * 1024];
            for _ in 0..256 {
                if writer.write_all(&chunk).is_err() {
                    return;
                }
            }
        });
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        assert_eq!(reply, b"error: line too long\n");
        sending.join().expect("sending thread should not panic");
        let line = server.stderr_line()?;
        assert!(line.ends_with(": line longer than 65536 bytes"), "{line}");
    }
    assert_memory_grew_less_than(server.pid(), before, 8 * 1024)
}

/// A line of 64 KiB and one byte is too long even when its newline comes in the same write as
/// the rest of it, and a line of exactly 64 KiB is answered however it is split: the limit does
/// not depend on how TCP cuts the bytes.
#[test]
fn the_line_limit_is_64_kib_whatever_the_segmentation() -> TestResult {
    let server = tcp_server(&["--quiet"])?;
    let longest = vec![b'a'; 65_536];
    for pieces in [1, 7, 300] {
        let mut stream = connect_welcomed(server.addr)?;
        exchange(&mut stream, b"Ada\n", b"Hello, Ada!\n")?;
        let line = [&longest[..], b"\n"].concat();
        for piece in line.chunks(line.len().div_ceil(pieces)) {
            stream.write_all(piece)?;
        }
        let reply = read_n(&mut stream, 65_536 + 9)?;
        assert!(reply.starts_with(b"Hello, aaa") && reply.ends_with(b"a!\n"));
    }
    let mut stream = connect_welcomed(server.addr)?;
    exchange(&mut stream, b"Ada\n", b"Hello, Ada!\n")?;
    stream.write_all(&[&longest[..], b"a\n"].concat())?;
    assert_eq!(read_to_close(&mut stream)?, b"error: line too long\n");
    let line = server.stderr_line()?;
    assert!(line.ends_with(": line longer than 65536 bytes"), "{line}");
    Ok(())
}

/// A burst of 73,000 empty lines after a 65,000-byte line, answered in full, costs the
/// connection nothing once it is over: 30 connections take turns at it, and the server's peak
/// memory grows by a few bursts' worth, not by 30 (each kept over a MiB before). Linux only: it
/// reads the peak in `/proc`.
#[cfg(target_os = "linux")]
#[test]
fn a_burst_of_lines_leaves_no_memory_behind() -> TestResult {
    let server = tcp_server(&["--quiet"])?;
    let mut streams = Vec::new();
    for _ in 0..30 {
        let mut stream = connect_welcomed(server.addr)?;
        exchange(&mut stream, b"warm\n", b"Hello, warm!\n")?;
        streams.push(stream);
    }
    let before = proc::status_field(server.pid(), "VmHWM")?;
    let burst = [vec![b'x'; 65_000], b"\n".repeat(73_001)].concat();
    let replies = 65_000 + 9 + 73_000 * 9;
    for stream in &mut streams {
        let mut writer = stream.try_clone()?;
        let burst = burst.clone();
        let sending = thread::spawn(move || writer.write_all(&burst));
        let reply = read_n(stream, replies)?;
        assert!(reply.ends_with(b"!\nHello, !\n"));
        sending.join().expect("sending thread should not panic")?;
    }
    let grown = proc::status_field(server.pid(), "VmHWM")? - before;
    assert!(grown < 10 * 1024, "peak memory grew by {grown} kB");
    for stream in &mut streams {
        exchange(stream, b"after\n", b"Hello, after!\n")?;
    }
    Ok(())
}

/// Peers that reset, half-close or vanish mid-reply leave nothing behind: threads and open
/// descriptors return to their baseline, and the server still serves. Linux only: it counts
/// threads and descriptors in `/proc`.
#[cfg(target_os = "linux")]
#[test]
fn broken_peers_leak_no_threads_or_descriptors() -> TestResult {
    let server = tcp_server(&["--quiet"])?;
    let pid = server.pid();
    // One plain round first, so lazily created state (the log writers) is in the baseline.
    let mut warm = connect_welcomed(server.addr)?;
    exchange(&mut warm, b"warm", b"Hello, warm!")?;
    warm.write_all(b"exit")?;
    assert!(is_closed(&mut warm)?);
    let base = || -> io::Result<(u64, usize)> {
        Ok((proc::status_field(pid, "Threads")?, proc::fd_count(pid)?))
    };
    // Once the warm-up connection has ended: main (accepting), the spawner, and the writers of
    // stdout and stderr.
    let idle_threads = eventually(TIMEOUT, || Ok(proc::status_field(pid, "Threads")? == 4))?;
    assert!(
        idle_threads,
        "{} threads",
        proc::status_field(pid, "Threads")?
    );
    let baseline = base()?;
    for round in 0..20 {
        // Reset: close with the welcome unread, which makes the kernel send RST.
        let reset = connect(server.addr)?;
        thread::sleep(Duration::from_millis(1));
        drop(reset);
        // Half-close: end the stream with a partial line pending and read the answer.
        let mut half = connect_welcomed(server.addr)?;
        half.write_all(format!("x\nhalf{round}").as_bytes())?;
        half.shutdown(Shutdown::Write)?;
        let expected = format!("Hello, x!\nHello, half{round}!");
        assert_eq!(read_to_close(&mut half)?, expected.as_bytes());
        // Vanish mid-reply: ask for a lot and leave without reading it.
        let mut vanish = connect(server.addr)?;
        vanish.write_all(&b"v\n".repeat(10_000))?;
        drop(vanish);
    }
    let settled = eventually(TIMEOUT, || Ok(base()? == baseline))?;
    assert!(
        settled,
        "threads and fds {:?}, baseline {baseline:?}",
        base()?
    );
    let mut after = connect_welcomed(server.addr)?;
    exchange(&mut after, b"after", b"Hello, after!")?;
    Ok(())
}

/// The stock soft limit on open files, which the tests below start tcp-server under.
#[cfg(target_os = "linux")]
const STOCK_FILE_LIMIT: usize = 1024;

/// A tcp-server started by bash under `ulimit -n 1024`, with `inherited` more descriptors open
/// (as a parent may leave them), past its start-up lines: the server, and how many live
/// connections it says the limit allows. None, saying so, when this test process may not open
/// the 1,100 connections the tests need.
#[cfg(target_os = "linux")]
fn server_under_the_stock_limit(inherited: usize) -> io::Result<Option<(ServerProcess, usize)>> {
    if proc::open_file_limit()? < 1200 {
        skip("this test process may not open the 1,100 connections it needs");
        return Ok(None);
    }
    let server = ServerProcess::start(limited_server(STOCK_FILE_LIMIT, inherited))?;
    server.stdout_line()?;
    let line = server.stderr_line()?;
    let prefix = format!("the open-file limit ({STOCK_FILE_LIMIT}) allows ");
    let count = line
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok());
    let allowed = count.ok_or_else(|| io::Error::other(format!("unexpected line {line:?}")))?;
    Ok(Some((server, allowed)))
}

/// The command that starts tcp-server under `ulimit -n LIMIT` with `inherited` more
/// descriptors open.
#[cfg(target_os = "linux")]
fn limited_server(limit: usize, inherited: usize) -> Command {
    let opens: String = (0..inherited)
        .map(|i| format!("exec {}</dev/null; ", 20 + i))
        .collect();
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!(
            "{opens}ulimit -n {limit} && exec {} --port 0 --quiet",
            bin("tcp-server")
        ))
        .env_remove("RUST_BACKTRACE");
    command
}

/// Clients held open, and how many of them the server welcomed (the rest got the busy line).
#[cfg(target_os = "linux")]
struct HeldClients {
    streams: Vec<std::net::TcpStream>,
    welcomed: usize,
}

/// Connects `count` clients and keeps them open; a client that gets neither `Welcome!` nor the
/// busy line within [`TIMEOUT`] fails the test.
#[cfg(target_os = "linux")]
fn hold_clients(addr: SocketAddr, count: usize) -> io::Result<HeldClients> {
    let mut held = HeldClients {
        streams: Vec::new(),
        welcomed: 0,
    };
    for _ in 0..count {
        let mut stream = connect(addr)?;
        let mut first = [0; 8];
        stream.read_exact(&mut first)?;
        match &first {
            b"Welcome!" => held.welcomed += 1,
            b"busy: to" => {}
            other => panic!(
                "unexpected first words {:?}",
                other.escape_ascii().to_string()
            ),
        }
        held.streams.push(stream);
    }
    Ok(held)
}

/// Under the stock soft limit of 1,024 open files, 1,100 clients held open at once all get an
/// answer, `Welcome!` or the busy line, none silent: the server says at start how many live
/// connections the limit leaves room for, and welcomes exactly that many. Linux only: it sets
/// the limit with `ulimit -n`, and only Linux shows it to the server.
#[cfg(target_os = "linux")]
#[test]
fn under_the_stock_file_limit_every_client_gets_an_answer() -> TestResult {
    let Some((server, allowed)) = server_under_the_stock_limit(0)? else {
        return Ok(());
    };
    assert!((900..1024).contains(&allowed), "{allowed}");
    let held = hold_clients(server.addr, allowed + 92)?;
    assert_eq!(
        (held.welcomed, held.streams.len() - held.welcomed),
        (allowed, 92)
    );
    Ok(())
}

/// Under the stock limit with every slot taken, 40 turned-away clients that keep sending while
/// they wait all get the whole busy line and an orderly end, none a reset: the connections
/// being closed gracefully fit in the descriptors the limit leaves (the old reserve of 16 did
/// not). Linux only, as above.
#[cfg(target_os = "linux")]
#[test]
fn under_the_stock_file_limit_every_turned_away_client_gets_the_busy_line() -> TestResult {
    let Some((server, allowed)) = server_under_the_stock_limit(0)? else {
        return Ok(());
    };
    let held = hold_clients(server.addr, allowed)?;
    assert_eq!(held.welcomed, allowed);
    let eager: Vec<_> = (0..40)
        .map(|_| {
            let addr = server.addr;
            thread::spawn(move || -> io::Result<Vec<u8>> {
                let mut stream = connect(addr)?;
                let mut writer = stream.try_clone()?;
                let sending = thread::spawn(move || {
                    for _ in 0..100 {
                        if writer.write_all(b"Ada\n").is_err() {
                            return;
                        }
                        thread::sleep(Duration::from_millis(10));
                    }
                });
                let mut reply = Vec::new();
                stream.read_to_end(&mut reply)?;
                sending.join().expect("sending thread should not panic");
                Ok(reply)
            })
        })
        .collect();
    let mut answered = 0;
    for client in eager {
        let reply = client.join().expect("client thread should not panic");
        if reply.is_ok_and(|reply| reply == b"busy: too many connections, try again later\n") {
            answered += 1;
        }
    }
    assert_eq!(answered, 40, "clients that got the whole busy line");
    Ok(())
}

/// Under the stock limit with every slot taken, while 40 turned-away clients keep reconnecting
/// and sending, a client that sends its name right after connecting, ends its side and reads
/// gets the busy line, not a reset, however fast it sends: 40 such clients, one after another,
/// at least 38 of them. Linux only, as above.
#[cfg(target_os = "linux")]
#[test]
fn under_a_flood_of_refusals_a_quick_client_still_gets_the_busy_line() -> TestResult {
    let Some((server, allowed)) = server_under_the_stock_limit(0)? else {
        return Ok(());
    };
    let held = hold_clients(server.addr, allowed)?;
    assert_eq!(held.welcomed, allowed);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..40)
        .map(|_| {
            let (addr, stop) = (server.addr, std::sync::Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(mut stream) = connect(addr) else {
                        continue;
                    };
                    for _ in 0..20 {
                        if stream.write_all(b"Ada\n").is_err() {
                            break;
                        }
                        thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let mut answered = 0;
    for _ in 0..40 {
        let mut quick = connect(server.addr)?;
        quick.write_all(b"Ada\n")?;
        quick.shutdown(Shutdown::Write)?;
        let mut reply = Vec::new();
        if quick.read_to_end(&mut reply).is_ok() && reply == BUSY {
            answered += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in flood {
        client.join().expect("flood thread should not panic");
    }
    assert!(
        answered >= 38,
        "{answered} of 40 quick clients got the busy line"
    );
    Ok(())
}

/// Descriptors the server inherited count against the limit: started with 40 of them, it
/// announces fewer connections and welcomes every one it announces.
#[cfg(target_os = "linux")]
#[test]
fn inherited_descriptors_count_against_the_limit() -> TestResult {
    let Some((server, allowed)) = server_under_the_stock_limit(40)? else {
        return Ok(());
    };
    let held = hold_clients(server.addr, allowed + 1)?;
    assert_eq!(held.welcomed, allowed);
    Ok(())
}

/// A limit that leaves no descriptor for a connection is said at once, in one line with exit
/// code 1, instead of a server that turns everyone away. Linux only, as above.
#[cfg(target_os = "linux")]
#[test]
fn a_file_limit_too_small_to_serve_stops_the_server_at_once() -> TestResult {
    // Four: stdio and the listener fill it, and not even the limit can be read.
    let out = run_client(limited_server(4, 0), b"")?;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    let no_room = "tcp-server: the open-file limit leaves no descriptor for a connection, not \
                   even one to read the limit with";
    assert!(out.stderr.starts_with(no_room), "{}", out.stderr);
    let out = run_client(limited_server(5, 0), b"")?;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "tcp-server: the open-file limit (5) leaves no descriptor for a connection"
        ),
        "{}",
        out.stderr
    );
    Ok(())
}

/// Out of file descriptors all the same (here the limit is lowered under the running server,
/// below what it reckoned with at start), every client is still answered, at worst with the
/// busy line; the server does not spin, and it welcomes again as soon as descriptors are free.
/// Linux only: it lowers the limit with `prlimit` and reads CPU time in `/proc`.
#[cfg(target_os = "linux")]
#[test]
fn the_server_recovers_after_running_out_of_descriptors() -> TestResult {
    // On an IPv6 socket its IPv4 clients come as mapped addresses, logged in their IPv4 form.
    let server = start_server("tcp-server", &["--quiet", "--host", "::ffff:127.0.0.1"])?;
    if !proc::lower_file_limit(server.pid(), 32) {
        return Ok(());
    }
    let held = hold_clients(server.addr, 40)?;
    assert!(
        held.welcomed > 10 && held.welcomed < 32,
        "{}",
        held.welcomed
    );
    let line = server.stderr_line()?;
    assert!(
        line.starts_with("127.0.0.1:") && line.contains(": turned away, out of file descriptors"),
        "{line}"
    );
    // Half a second out of descriptors: a busy loop would burn most of it on the CPU, and print
    // a line per call.
    let cpu_before = proc::cpu_ticks(server.pid())?;
    thread::sleep(Duration::from_millis(500));
    let cpu = proc::cpu_ticks(server.pid())? - cpu_before;
    assert!(
        cpu < 20,
        "the server used {cpu} ticks of CPU while out of descriptors"
    );
    drop(held);
    let recovered = welcomes_again(server.addr)?;
    assert!(
        recovered,
        "the server did not serve again after descriptors were freed"
    );
    Ok(())
}

/// When no thread can be started (here: a limit of 20 threads for the server's user), the
/// connection is dropped with a log line, and the server serves again once threads end. Linux
/// only: it uses `setpriv` and `ulimit -u`.
#[cfg(target_os = "linux")]
#[test]
fn a_failed_thread_spawn_drops_only_that_connection() -> TestResult {
    // Thread limits do not bind root, so the server runs as nobody, which needs root to arrange.
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            "-c",
        ])
        .arg(format!(
            "ulimit -u 20 && exec {} --port 0 --quiet",
            bin("tcp-server")
        ))
        .env_remove("RUST_BACKTRACE");
    let Ok(server) = ServerProcess::start(command) else {
        skip("cannot run the server as nobody with a thread limit (needs root)");
        return Ok(());
    };
    server.stdout_line()?;
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(connect(server.addr)?);
    }
    let line = server.stderr_line()?;
    assert!(line.contains(": cannot start a thread: "), "{line}");
    drop(held);
    let recovered = welcomes_again(server.addr)?;
    assert!(
        recovered,
        "the server did not serve again after threads ended"
    );
    Ok(())
}

/// Returns whether a new connection to `addr` gets `Welcome!` again within [`TIMEOUT`], trying
/// every 20 ms.
#[cfg(target_os = "linux")]
fn welcomes_again(addr: SocketAddr) -> io::Result<bool> {
    eventually(TIMEOUT, || {
        let Ok(mut stream) = connect(addr) else {
            return Ok(false);
        };
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        let mut welcome = [0; 8];
        Ok(stream.read_exact(&mut welcome).is_ok() && &welcome == b"Welcome!")
    })
}

/// tcp-client failures are one stderr line naming the address, in bounded time, and tell "no
/// connection" (exit 1: a port nobody listens on) from "connected, but" (exit 3: a listener that
/// hangs up at once, says nothing, hangs up or goes silent after the welcome, or is some other
/// service, such as SSH).
#[test]
fn tcp_client_failures_are_one_line_each() -> TestResult {
    /// What the fake server does after its opening words.
    #[derive(Clone, Copy)]
    enum Then {
        Close,
        ReadAndClose,
        StaySilent,
    }
    // Once connected, every failure says so, and exits with 3.
    let cases: &[(&[u8], Then, &str)] = &[
        (
            b"",
            Then::Close,
            "connected to 127.0.0.1:PORT, but no welcome: closed the connection",
        ),
        (
            b"",
            Then::StaySilent,
            "connected to 127.0.0.1:PORT, but no welcome: no answer within 300ms",
        ),
        (
            b"Welcome!",
            Then::ReadAndClose,
            "connected to 127.0.0.1:PORT, but failed to greet 'Jaber': closed the connection",
        ),
        (
            b"Welcome!",
            Then::StaySilent,
            "connected to 127.0.0.1:PORT, but failed to greet 'Jaber': no answer within 300ms",
        ),
        (
            b"SSH-2.0-OpenSSH_9.2\r\n",
            Then::StaySilent,
            r#"connected to 127.0.0.1:PORT, but no welcome: expected "Welcome!" but got "SSH-2.0-OpenSSH_9.2\r\n""#,
        ),
    ];
    for (opening, then, expected) in cases {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let (opening, then) = (opening.to_vec(), *then);
        let fake = thread::spawn(move || -> io::Result<()> {
            let (mut stream, _) = listener.accept()?;
            stream.write_all(&opening)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            match then {
                Then::Close => {}
                // Taking the name first makes the close a clean FIN, not a reset.
                Then::ReadAndClose => drop(stream.read(&mut [0; 64])),
                Then::StaySilent => drop(stream.read_to_end(&mut Vec::new())),
            }
            Ok(())
        });
        let out = run_client(client("tcp-client", port, &["--timeout", "300ms"]), b"")?;
        fake.join().expect("fake server should not panic")?;
        let expected = format!(
            "tcp-client: {}\n",
            expected.replace("PORT", &port.to_string())
        );
        assert_eq!((out.code, out.stderr), (Some(3), expected));
    }
    // No connection at all: a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let out = run_client(client("tcp-client", closed, &["--timeout", "300ms"]), b"")?;
    let refused = format!("tcp-client: failed to connect to 127.0.0.1:{closed}: ");
    assert!(out.stderr.starts_with(&refused), "{}", out.stderr);
    assert_eq!((out.code, out.stderr.lines().count()), (Some(1), 1));
    Ok(())
}

/// Through a network that drops, duplicates and reorders datagrams both ways, and with forged
/// replies from another port, udp-client still prints exactly one right line per name, in order.
#[test]
fn udp_client_output_is_exact_through_a_faulty_network() -> TestResult {
    let server = start_server("udp-server", &["--quiet"])?;
    let seed = fault_seed();
    let proxy = FaultyProxy::start(server.addr, seed)?;
    let names: Vec<String> = (0..12).map(|i| format!("name{i}")).collect();
    let mut command = client(
        "udp-client",
        proxy.addr.port(),
        &["--timeout", "150ms", "--retries", "10"],
    );
    command.args(&names);
    let out = run_client(command, b"")?;
    let faults = proxy.finish()?;
    let expected: String = names.iter().map(|n| format!("Hello, {n}!\n")).collect();
    assert_eq!(
        (out.stdout_text(), out.stderr.as_str(), out.code),
        (expected, "", Some(0)),
        "with GREETING_FAULT_SEED={seed}"
    );
    assert!(
        faults.dropped > 0 && faults.duplicated > 0 && faults.reordered > 0 && faults.forged > 0,
        "the proxy did not exercise every fault: {faults:?}"
    );
    Ok(())
}

/// Python that sends one UDP datagram with a forged source, through a raw socket (needs root).
#[cfg(target_os = "linux")]
const FORGE: &str = r#"
import socket, struct, sys
src, dst, payload = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
udp = struct.pack("!HHHH", src, dst, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                 socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1"))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(ip + udp, ("127.0.0.1", 0))
"#;

/// Two UDP servers tricked into answering each other (one datagram that seems to come from the
/// other) stop at once: the second server does not answer a datagram that is itself a greeting.
/// Linux only: it forges the datagram through a raw socket from Python, as root.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs python3: .ci/run runs cargo test -- --ignored"]
fn a_reflection_loop_between_two_servers_dies_at_once() -> TestResult {
    // Without ids and with them: a reply after an id is a greeting too.
    for ids in [[None, None], [Some("a"), Some("b")]] {
        if !reflection_dies_at_once(ids)? {
            return Ok(());
        }
    }
    Ok(())
}

/// Tricks two servers, with `ids`, into a loop; false if a datagram cannot be forged here.
#[cfg(target_os = "linux")]
fn reflection_dies_at_once(ids: [Option<&str>; 2]) -> io::Result<bool> {
    let start = |id: Option<&str>| match id {
        Some(id) => start_server("udp-server", &["--id", id]),
        None => start_server("udp-server", &[]),
    };
    let (a, b) = (start(ids[0])?, start(ids[1])?);
    a.stdout_line()?;
    b.stdout_line()?;
    let ports = [a.addr.port().to_string(), b.addr.port().to_string()];
    let forged = Command::new("python3")
        .args(["-c", FORGE, &ports[0], &ports[1], "loop"])
        .output();
    let forged = installed(forged, "python3")?;
    if !forged.status.success() {
        let why = String::from_utf8_lossy(&forged.stderr);
        skip(&format!("cannot forge a datagram here (needs root): {why}"));
        return Ok(false);
    }
    // B answers the forged datagram, "from" A; A drops the greeting instead of answering it.
    assert_eq!(b.stdout_line()?, format!("Received from {}.", a.addr));
    assert_eq!(
        a.stderr_line()?,
        format!(
            "{}: dropped a datagram that is itself a greeting (a reflection loop?)",
            b.addr
        )
    );
    let quiet = Duration::from_millis(500);
    assert!(
        a.stdout_silent_for(quiet) && b.stdout_silent_for(quiet),
        "the loop went on"
    );
    Ok(true)
}

/// Two servers that did answer greetings would still stop: each reply is 8 bytes longer than its
/// request and is never truncated, so the exchange ends once a reply no longer fits.
#[test]
fn replies_grow_until_they_no_longer_fit() -> TestResult {
    if !udp_carries(65_507)? {
        return Ok(());
    }
    let server = start_server("udp-server", &["--quiet"])?;
    let socket = udp_socket()?;
    // Play the other server of a loop, answering each reply as a greeting server would, and
    // count the hops until the server stops answering.
    let mut payload = vec![b'x'; 65_000];
    let mut buf = vec![0; 70_000];
    socket.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut hops = 0;
    for _ in 0..200 {
        socket.send_to(&payload, server.addr)?;
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => {
                assert_eq!(n, payload.len() + 8);
                hops += 1;
                // Send the reply straight back, with one byte changed so that it is not
                // greeting-shaped: only the size rule can end this.
                payload = buf[..n].to_vec();
                payload[0] = b'h';
            }
            Err(_) => break,
        }
    }
    // Requests of 65,000 + 8k bytes are answered while the reply fits in 65,507 bytes.
    assert_eq!(hops, (65_507 - 8 - 65_000) / 8 + 1);
    // The system's own words for a datagram too large, which differ by platform.
    let too_long = socket
        .send_to(&vec![0; 65_512], server.addr)
        .expect_err("a datagram over 65,507 bytes should not be sent");
    let line = server.stderr_line()?;
    assert!(
        line.ends_with(&format!("dropped a reply of 65512 bytes: {too_long}")),
        "{line}"
    );
    Ok(())
}

/// Clients that leave before their reply arrives close their port, and the server's reply draws
/// an ICMP port unreachable, which Windows reports on the server's next receive
/// (WSAECONNRESET). That is the gone client's business: the server logs no error for it and
/// answers the next client at once.
#[test]
fn clients_that_leave_early_cost_the_udp_server_nothing() -> TestResult {
    let server = start_server("udp-server", &["--quiet"])?;
    for i in 0..5 {
        let gone = udp_socket()?;
        gone.send_to(format!("gone{i}").as_bytes(), server.addr)?;
    }
    let socket = udp_socket()?;
    for name in ["Ada", "Bob"] {
        socket.send_to(name.as_bytes(), server.addr)?;
        let mut buf = [0; 64];
        let (n, _) = socket.recv_from(&mut buf)?;
        assert_eq!(&buf[..n], format!("Hello, {name}!").as_bytes());
    }
    assert!(
        server.stderr_silent_for(Duration::from_millis(300)),
        "the server reported an error"
    );
    Ok(())
}

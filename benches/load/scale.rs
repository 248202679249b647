//! The scale tests: thousands of connections opened at once, where a thread-per-connection
//! server's accept path shows; and thousands opened a few at a time that then go idle, for what
//! each idle connection costs in memory.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{CLIENT_STACK, Client, Gate, Proto, SETUP_IN_FLIGHT, write_name};
use crate::common::proc::{listen_overflows, status_field};
use crate::measure::{Contender, start};

/// Runs only the scale tests, for both contenders: the idle one, then the burst `runs` times.
pub fn scale_only(connections: usize, runs: usize) -> io::Result<()> {
    let log_dir = std::env::temp_dir().join(format!("greeting-bench-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir)?;
    for contender in [Contender::Floor, Contender::Ours] {
        idle(contender, connections, &log_dir)?;
    }
    for _ in 0..runs {
        for contender in [Contender::Floor, Contender::Ours] {
            scale(contender, connections, &log_dir)?;
        }
    }
    std::fs::remove_dir_all(&log_dir)
}

/// Greets once on `client`, with client `id`'s first name, and hands it back still open.
fn greet_once(mut client: Client, id: usize) -> io::Result<Client> {
    let mut name = Vec::new();
    write_name(&mut name, id, 0);
    client.round_trip(&name, &mut [0; 64])?;
    Ok(client)
}

/// Opens `connections` TCP connections a few at a time (never more than the listen queue
/// holds), greets once on each, and reports the server's resident memory per connection while
/// all of them are idle.
pub fn idle(contender: Contender, connections: usize, log_dir: &Path) -> io::Result<()> {
    let server = start(Proto::Tcp, contender, log_dir)?;
    let (pid, addr) = (server.pid(), server.addr);
    let rss_before = status_field(pid, "VmRSS")?;
    let gate = Arc::new(Gate::new(SETUP_IN_FLIGHT));
    let greeted = Arc::new(Barrier::new(connections + 1));
    let release = Arc::new(Barrier::new(connections + 1));
    let errors = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::with_capacity(connections);
    for id in 0..connections {
        let (gate, greeted, release, errors) = (
            Arc::clone(&gate),
            Arc::clone(&greeted),
            Arc::clone(&release),
            Arc::clone(&errors),
        );
        handles.push(
            thread::Builder::new()
                .stack_size(CLIENT_STACK)
                .spawn(move || {
                    let client = gate.through(|| -> io::Result<Client> {
                        greet_once(Client::connect(Proto::Tcp, addr)?, id)
                    });
                    if client.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    greeted.wait();
                    release.wait();
                    drop(client);
                })?,
        );
    }
    greeted.wait();
    // Every reply is out; a moment more for the server's threads to be back in their reads.
    thread::sleep(Duration::from_millis(300));
    let threads = status_field(pid, "Threads")?;
    let rss = status_field(pid, "VmRSS")?;
    release.wait();
    for handle in handles {
        handle.join().expect("client thread should not panic");
    }
    let errors = errors.load(Ordering::Relaxed);
    let idle = connections - errors as usize;
    let per_connection = rss.saturating_sub(rss_before) as f64 / idle.max(1) as f64;
    println!(
        "idle, {}: {idle} connections greeted once and idle, {errors} errors; server threads {threads}, RSS {rss} KiB ({per_connection:.1} KiB per connection)",
        contender.label(),
    );
    Ok(())
}

/// Opens `connections` TCP connections at once, one client thread each, greets on every one while
/// all are open, and reports the connect time and the server's memory per connection.
pub fn scale(contender: Contender, connections: usize, log_dir: &Path) -> io::Result<()> {
    let server = start(Proto::Tcp, contender, log_dir)?;
    let pid = server.pid();
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
                    let result = client.and_then(|client| greet_once(client, id));
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
    let errors = errors.load(Ordering::Relaxed);
    let answered = connections - errors as usize;
    let per_connection = rss.saturating_sub(rss_before) as f64 / answered.max(1) as f64;
    println!(
        "scale, {}: {connections} connections opened at once, {answered} welcomed and answered in {:.2} s, {errors} failed; {overflows} listen queue overflows; server threads {threads}, RSS {rss} KiB ({per_connection:.1} KiB per connection answered)",
        contender.label(),
        connect_time.as_secs_f64(),
    );
    Ok(())
}

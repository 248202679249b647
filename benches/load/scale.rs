//! The scale test: thousands of connections opened at once, where a thread-per-connection
//! server's accept path shows.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use crate::client::{CLIENT_STACK, Client, Proto, write_name};
use crate::common::proc::{listen_overflows, status_field};
use crate::measure::{Contender, start};

/// Runs only the scale test, for both contenders.
pub fn scale_only(connections: usize) -> io::Result<()> {
    let log_dir = std::env::temp_dir().join(format!("greeting-bench-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir)?;
    for contender in [Contender::Floor, Contender::Ours] {
        scale(contender, connections, &log_dir)?;
    }
    std::fs::remove_dir_all(&log_dir)
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

//! One measurement: a server under test, the contenders, and what a run of one of them in one
//! cell measured.

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{CLIENT_STACK, Client, Gate, Proto, SETUP_IN_FLIGHT, write_name};
use crate::common::proc::{cpu_ns, status_field};
use crate::common::{ServerProcess, Stdout, bin};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Contender {
    Floor,
    /// Ours, with `--quiet` for UDP.
    Ours,
    /// Ours, logging every datagram to a file.
    OursLogging,
    /// Ours, logging every datagram to a pipe that the bench drains.
    OursLoggingPipe,
}

impl Contender {
    pub fn label(self) -> &'static str {
        match self {
            Contender::Floor => "floor",
            Contender::Ours => "ours",
            Contender::OursLogging => "ours, log to file",
            Contender::OursLoggingPipe => "ours, log to pipe",
        }
    }
}

/// Starts `contender`'s server for `proto`, on any free port of 127.0.0.1.
pub fn start(proto: Proto, contender: Contender, log_dir: &Path) -> io::Result<ServerProcess> {
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
            let mut command = Command::new(bin("tcp-server"));
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
            let mut command = Command::new(bin("udp-server"));
            command.args(["--port", "0"]);
            if contender == Contender::Ours {
                command.arg("--quiet");
            }
            command
        }
    };
    command.env_remove("RUST_BACKTRACE");
    let stdout = if contender == Contender::OursLoggingPipe {
        Stdout::Drained
    } else {
        Stdout::File(File::create(log_dir.join("server.log"))?)
    };
    ServerProcess::start_with_stdout(command, stdout)
}

/// What one run of one contender in one cell measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub rate: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub cpu_us_per_msg: f64,
    pub threads: u64,
    pub peak_rss_kb: u64,
    pub errors: u64,
}

/// Runs one contender in one cell: `clients` connections doing lockstep round trips for `window`.
pub fn measure(
    proto: Proto,
    contender: Contender,
    clients: usize,
    window: Duration,
    log_dir: &Path,
) -> io::Result<Sample> {
    let server = start(proto, contender, log_dir)?;
    let pid = server.pid();
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

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// The median of each figure over several runs of one contender.
pub fn medians(samples: &[Sample]) -> Sample {
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

//! Load benchmark: the real server binaries against the leanest server of the same design (the
//! "floor"), under the same load in the same run, reported as ratios to the floor.
//!
//! `cargo bench --bench load` runs it all (a few minutes on 2 cores). After `--`: `--quick` runs
//! one rep per contender with a shorter window, `--reps N` sets the reps, `--only 'TCP ×256'`
//! runs the cells whose label and contender contain that text (`--only log` the logging ones), `--scale N` only the scale tests with N
//! connections (`--runs K` repeats the burst K times), and `--hog` runs everything with one
//! CPU-bound process beside it, as on any real host. The bench executable is also the floor
//! server: run with `--floor-server tcp|udp` it serves the protocol with thread per connection,
//! one read and one `write_all` per message, TCP_NODELAY, the original's 1 KiB buffer on the
//! stack, no framing state and no logging; and the hog, with `--spin`.

#[path = "../../tests/common/mod.rs"]
mod common;

mod client;
mod floor;
mod measure;
mod scale;

use std::io;
use std::time::{Duration, Instant};

use client::Proto;
use measure::{Contender, Sample, measure, median, medians};
use scale::{idle, scale, scale_only};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !cfg!(target_os = "linux") && !args.iter().any(|a| a == "--floor-server") {
        // It reads the server's CPU time, threads and memory, and the kernel's listen-queue
        // drops, in /proc.
        println!("the load benchmark runs on Linux only");
        return;
    }
    if args.iter().any(|a| a == "--spin") {
        spin();
    }
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
    let hog = match args.iter().any(|a| a == "--hog") {
        true => match Hog::start() {
            Ok(hog) => Some(hog),
            Err(err) => {
                eprintln!("bench failed: cannot start the CPU hog: {err}");
                std::process::exit(1);
            }
        },
        false => None,
    };
    if hog.is_some() {
        println!("with one CPU-bound process beside it");
    }
    let runs = value("--runs").and_then(|n| n.parse().ok()).unwrap_or(1);
    let result = match value("--scale") {
        Some(n) => match n.parse() {
            Ok(connections) => scale_only(connections, runs),
            Err(_) => Err(io::Error::other("--scale takes a number of connections")),
        },
        None => run(&options),
    };
    drop(hog);
    if let Err(err) = result {
        eprintln!("bench failed: {err}");
        std::process::exit(1);
    }
}

/// Keeps one core busy for as long as the bench runs, as one CPU-bound process would.
fn spin() -> ! {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// A CPU-bound process beside the bench (this executable with `--spin`), killed when dropped.
struct Hog(std::process::Child);

impl Hog {
    fn start() -> io::Result<Self> {
        let child = std::process::Command::new(std::env::current_exe()?)
            .arg("--spin")
            .spawn()?;
        Ok(Hog(child))
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
    /// Run only the cells whose label and contender (`TCP ×256 ours`, `UDP ×16 ours, log to
    /// pipe`) contain this, and no scale test.
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
        "{} reps per contender, {} ms windows (4 times that with 1,000 clients or more), medians; ×floor is the median of each rep's ours / floor",
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
        let name = format!("{label} {}", cell.contenders[1].label());
        if options
            .only
            .as_ref()
            .is_some_and(|only| !name.contains(only.as_str()))
        {
            continue;
        }
        let mut samples: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
        // With thousands of clients each does only a few round trips in a short window, and
        // which of them the scheduler happens to favour swings a rep by a third: a longer
        // window for those cells.
        let window = if cell.clients >= 1000 {
            window * 4
        } else {
            window
        };
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
            idle(contender, options.scale, &log_dir)?;
        }
        for contender in [Contender::Floor, Contender::Ours] {
            scale(contender, options.scale, &log_dir)?;
        }
    }
    let _ = std::fs::remove_dir_all(&log_dir);
    println!();
    println!("bench took {:.0} s", bench_started.elapsed().as_secs_f64());
    Ok(())
}
